//! RFC 7009 revocation: what is sent and how answers are read.

mod support;

use secrecy::SecretString;
use support::{oauth_client, FakeProvider, Reply, CLIENT_SECRET};
use tessera_core::oauth::{ClientAuth, OAuthClient, OAuthError, TokenHint};

const TOKEN: &str = "token-to-revoke";

async fn revoke(provider: &FakeProvider, auth: ClientAuth, hint: TokenHint) -> Result<(), OAuthError> {
    oauth_client().revoke(&provider.client(auth), &provider.url("/revoke"), &SecretString::from(TOKEN), hint).await
}

#[tokio::test]
async fn revoke_sends_the_token_its_hint_and_basic_credentials() {
    let provider = FakeProvider::start(&[("/revoke", Reply::empty(200))]).await;
    revoke(&provider, ClientAuth::ClientSecretBasic, TokenHint::RefreshToken).await.expect("revoked");

    let sent = provider.only_request();
    assert_eq!(sent.path, "/revoke");
    assert_eq!(sent.field("token"), Some(TOKEN));
    assert_eq!(sent.field("token_type_hint"), Some("refresh_token"));
    assert_eq!(sent.basic().as_deref(), Some("tessera+app:cl1ent-s3cret%2B%2F%3D"));
    assert_eq!(sent.field("client_id"), None);
    assert_eq!(sent.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(sent.user_agent, Some(format!("tessera/{}", env!("CARGO_PKG_VERSION"))));
}

#[tokio::test]
async fn revoke_with_client_secret_post_sends_the_credentials_in_the_form() {
    let provider = FakeProvider::start(&[("/revoke", Reply::json(200, "{}"))]).await;
    revoke(&provider, ClientAuth::ClientSecretPost, TokenHint::AccessToken).await.expect("revoked");

    let sent = provider.only_request();
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.field("token_type_hint"), Some("access_token"));
    assert_eq!(sent.field("client_id"), Some("tessera app"));
    assert_eq!(sent.field("client_secret"), Some(CLIENT_SECRET));
}

#[tokio::test]
async fn a_public_client_revokes_with_its_id_only() {
    let provider = FakeProvider::start(&[("/revoke", Reply::empty(200))]).await;
    let mut client = provider.client(ClientAuth::ClientSecretBasic);
    client.client_secret = None;
    oauth_client()
        .revoke(&client, &provider.url("/revoke"), &SecretString::from(TOKEN), TokenHint::AccessToken)
        .await
        .expect("revoked");
    let sent = provider.only_request();
    assert_eq!(sent.authorization, None);
    assert_eq!(sent.field("client_id"), Some("tessera app"));
    assert_eq!(sent.field("client_secret"), None);
}

#[tokio::test]
async fn a_503_is_unavailable() {
    let provider = FakeProvider::start(&[("/revoke", Reply::empty(503))]).await;
    let err = revoke(&provider, ClientAuth::ClientSecretBasic, TokenHint::AccessToken).await.expect_err("fails");
    assert!(matches!(&err, OAuthError::Unavailable(r) if r.contains("503")), "{err:?}");
}

#[tokio::test]
async fn an_error_body_is_rejected() {
    let provider = FakeProvider::start(&[("/revoke", Reply::json(400, r#"{"error":"unsupported_token_type"}"#))]).await;
    let err = revoke(&provider, ClientAuth::ClientSecretBasic, TokenHint::AccessToken).await.expect_err("fails");
    assert!(matches!(&err, OAuthError::Rejected { code, description: None } if code == "unsupported_token_type"));
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_token_is_not_shown() {
    let provider = FakeProvider::start(&[
        ("/revoke", Reply::redirect(&format!("/moved?token={TOKEN}"))),
        ("/moved", Reply::empty(200)),
    ])
    .await;
    let err = revoke(&provider, ClientAuth::ClientSecretBasic, TokenHint::AccessToken).await.expect_err("fails");
    assert!(matches!(err, OAuthError::Invalid(_)), "{err:?}");
    assert_eq!(provider.received().len(), 1);
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(TOKEN) && !shown.contains(CLIENT_SECRET), "{shown}");
    }
}

#[tokio::test]
async fn an_echoed_token_is_scrubbed_from_a_rejection() {
    let body = format!(r#"{{"error":"invalid_request","error_description":"unknown token {TOKEN}"}}"#);
    let provider = FakeProvider::start(&[("/revoke", Reply::json(400, &body))]).await;
    let err = revoke(&provider, ClientAuth::ClientSecretPost, TokenHint::AccessToken).await.expect_err("fails");
    assert_eq!(err.to_string(), "the provider refused the request: invalid_request (unknown token [redacted])");
}
