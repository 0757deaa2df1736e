//! What the client sends to the token endpoint, and how it reads the answers.

mod support;

use secrecy::{ExposeSecret, SecretString};
use support::{oauth_client, FakeProvider, Reply, CLIENT_SECRET};
use tessera_core::oauth::{ClientAuth, OAuthClient, OAuthClientConfig, OAuthError};

const TOKENS: &str =
    r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","scope":"read write"}"#;
const REDIRECT: &str = "https://tessera.example/oauth/callback?x=1";

#[tokio::test]
async fn exchange_code_with_basic_auth_sends_the_grant_redirect_and_verifier() {
    let provider = FakeProvider::token(Reply::json(200, TOKENS)).await;
    let tokens = oauth_client()
        .exchange_code(&provider.client(ClientAuth::ClientSecretBasic), "code-1", REDIRECT, Some("verifier-1"))
        .await
        .expect("exchange succeeds");

    let sent = provider.only_request();
    assert_eq!(sent.field("grant_type"), Some("authorization_code"));
    assert_eq!(sent.field("code"), Some("code-1"));
    assert_eq!(sent.field("redirect_uri"), Some(REDIRECT));
    assert_eq!(sent.field("code_verifier"), Some("verifier-1"));
    // RFC 6749 2.3.1: id and secret are form-encoded before Basic.
    assert_eq!(sent.basic().as_deref(), Some("tessera+app:cl1ent-s3cret%2B%2F%3D"));
    assert_eq!(sent.field("client_id"), None);
    assert_eq!(sent.field("client_secret"), None);
    assert_eq!(sent.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.accept.as_deref(), Some("application/json"));
    assert_eq!(sent.user_agent, Some(format!("tessera/{}", env!("CARGO_PKG_VERSION"))));

    assert_eq!(tokens.access_token.expose_secret(), "at-1");
    assert_eq!(tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()).as_deref(), Some("rt-1"));
    assert_eq!(tokens.token_type, "bearer");
    assert_eq!(tokens.expires_in, Some(3600));
    assert_eq!(tokens.scopes, Some(vec!["read".to_owned(), "write".to_owned()]));
}

#[tokio::test]
async fn exchange_code_with_client_secret_post_sends_the_credentials_in_the_form() {
    let provider = FakeProvider::token(Reply::json(200, TOKENS)).await;
    oauth_client()
        .exchange_code(&provider.client(ClientAuth::ClientSecretPost), "code-1", REDIRECT, None)
        .await
        .expect("exchange succeeds");

    let sent = provider.only_request();
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.field("client_id"), Some("tessera app"));
    assert_eq!(sent.field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(sent.field("code_verifier"), None);
}

#[tokio::test]
async fn a_public_client_sends_only_its_id() {
    let provider = FakeProvider::token(Reply::json(200, TOKENS)).await;
    let public = OAuthClientConfig { client_secret: None, ..provider.client(ClientAuth::ClientSecretBasic) };
    oauth_client().exchange_code(&public, "code-1", REDIRECT, Some("verifier-1")).await.expect("exchange succeeds");

    let sent = provider.only_request();
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.field("client_id"), Some("tessera app"));
    assert_eq!(sent.field("client_secret"), None);
    assert_eq!(sent.field("code_verifier"), Some("verifier-1"));
}

#[tokio::test]
async fn refresh_sends_the_refresh_token_and_returns_the_rotated_one() {
    let provider = FakeProvider::token(Reply::json(
        200,
        r#"{"access_token":"at-2","token_type":"bearer","refresh_token":"rt-2"}"#,
    ))
    .await;
    let tokens = oauth_client()
        .refresh(&provider.client(ClientAuth::ClientSecretPost), &SecretString::from("rt-1"))
        .await
        .expect("refresh succeeds");

    let sent = provider.only_request();
    assert_eq!(sent.field("grant_type"), Some("refresh_token"));
    assert_eq!(sent.field("refresh_token"), Some("rt-1"));
    assert_eq!(sent.field("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(tokens.access_token.expose_secret(), "at-2");
    assert_eq!(tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()).as_deref(), Some("rt-2"));
    assert_eq!(tokens.expires_in, None);
    assert_eq!(tokens.scopes, None);
}

#[tokio::test]
async fn lenient_parsing_accepts_what_real_providers_send() {
    // No token_type, expires_in as a string, GitHub's comma-separated scopes,
    // and a Content-Type with a charset.
    let body = r#"{"access_token":"gho_1","expires_in":"28800","scope":"repo,read:org"}"#;
    let provider = FakeProvider::token(Reply::text(200, "application/json; charset=utf-8", body)).await;
    let tokens = oauth_client()
        .refresh(&provider.client(ClientAuth::ClientSecretBasic), &SecretString::from("rt-1"))
        .await
        .expect("refresh succeeds");

    assert_eq!(tokens.token_type, "bearer");
    assert_eq!(tokens.expires_in, Some(28800));
    assert_eq!(tokens.scopes, Some(vec!["repo".to_owned(), "read:org".to_owned()]));
    assert!(tokens.refresh_token.is_none());
}

#[tokio::test]
async fn token_type_keeps_the_providers_word_lower_cased() {
    let provider = FakeProvider::token(Reply::json(200, r#"{"access_token":"at","token_type":"DPoP"}"#)).await;
    let tokens = oauth_client()
        .refresh(&provider.client(ClientAuth::ClientSecretBasic), &SecretString::from("rt-1"))
        .await
        .expect("refresh succeeds");
    assert_eq!(tokens.token_type, "dpop");
}

#[tokio::test]
async fn http_token_urls_are_refused_without_the_loopback_opt_in() {
    let provider = FakeProvider::token(Reply::json(200, TOKENS)).await;
    let strict = tessera_outbound::HttpOAuthClient::new(std::time::Duration::from_secs(2)).expect("client builds");
    let err = strict
        .refresh(&provider.client(ClientAuth::ClientSecretBasic), &SecretString::from("rt-1"))
        .await
        .err()
        .expect("refused");
    assert!(matches!(&err, OAuthError::Invalid(reason) if reason.contains("https")), "{err:?}");
    assert!(provider.received().is_empty());
}
