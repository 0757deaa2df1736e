//! How failures reach the service: `Rejected`, `Unavailable` or `Invalid`,
//! and never with a token or secret in their text.

mod support;

use secrecy::SecretString;
use std::time::Duration;
use support::{oauth_client, FakeProvider, Reply, CLIENT_SECRET};
use tessera_core::oauth::{ClientAuth, OAuthClient, OAuthClientConfig, OAuthError};

const REFRESH_TOKEN: &str = "rt-very-secret-value";

async fn refresh_against(reply: Reply) -> OAuthError {
    let provider = FakeProvider::token(reply).await;
    refresh_with(&provider.client(ClientAuth::ClientSecretBasic)).await
}

async fn refresh_with(client: &OAuthClientConfig) -> OAuthError {
    oauth_client().refresh(client, &SecretString::from(REFRESH_TOKEN)).await.err().expect("the call fails")
}

#[tokio::test]
async fn an_rfc6749_error_is_rejected_with_its_code_and_description() {
    let err =
        refresh_against(Reply::json(400, r#"{"error":"invalid_grant","error_description":"Token expired"}"#)).await;
    assert!(
        matches!(&err, OAuthError::Rejected { code, description: Some(d) } if code == "invalid_grant" && d == "Token expired"),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(err.code(), "invalid_grant");
}

#[tokio::test]
async fn a_200_carrying_an_error_body_is_rejected_github_style() {
    let err = refresh_against(Reply::json(200, r#"{"error":"bad_refresh_token","error_description":"bad"}"#)).await;
    assert!(matches!(&err, OAuthError::Rejected { code, .. } if code == "bad_refresh_token"), "{err:?}");
}

#[tokio::test]
async fn a_401_without_a_body_is_invalid_client() {
    let err = refresh_against(Reply::empty(401)).await;
    assert!(matches!(&err, OAuthError::Rejected { code, .. } if code == "invalid_client"), "{err:?}");
}

#[tokio::test]
async fn a_4xx_without_an_rfc6749_body_is_invalid() {
    let err = refresh_against(Reply::text(404, "text/html", "<h1>Not here</h1>")).await;
    assert!(matches!(&err, OAuthError::Invalid(r) if r.contains("404")), "{err:?}");
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    for status in [500, 502, 503] {
        let err = refresh_against(Reply::text(status, "text/html", "<h1>oops</h1>")).await;
        assert!(matches!(&err, OAuthError::Unavailable(r) if r.contains(&status.to_string())), "{err:?}");
        assert!(err.is_transient());
    }
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = OAuthClientConfig {
        client_id: "app".to_owned(),
        client_secret: Some(SecretString::from(CLIENT_SECRET)),
        auth: ClientAuth::ClientSecretBasic,
        token_url: format!("http://{addr}/token"),
    };
    let err = refresh_with(&client).await;
    assert!(matches!(&err, OAuthError::Unavailable(r) if r == "could not connect"), "{err:?}");
}

#[tokio::test]
async fn a_provider_slower_than_the_timeout_is_unavailable() {
    let provider =
        FakeProvider::token(Reply::json(200, r#"{"access_token":"at"}"#).after(Duration::from_secs(5))).await;
    let client =
        tessera_outbound::HttpOAuthClient::new(Duration::from_millis(300)).expect("builds").allow_loopback_http();
    let err = client
        .refresh(&provider.client(ClientAuth::ClientSecretBasic), &SecretString::from(REFRESH_TOKEN))
        .await
        .err()
        .expect("times out");
    assert!(matches!(&err, OAuthError::Unavailable(r) if r == "timed out"), "{err:?}");
}

#[tokio::test]
async fn a_2xx_that_is_not_a_token_response_is_invalid() {
    for (reply, reason) in [
        (Reply::json(200, "this is not json"), "the body is not JSON"),
        (Reply::text(200, "text/html", "<html>login page</html>"), "Content-Type"),
        (Reply::json(200, r#"{"token_type":"bearer"}"#), "field `access_token` is missing"),
        (
            Reply::json(200, r#"{"access_token":"at","expires_in":"soon"}"#),
            "field `expires_in` has an unexpected value",
        ),
        (Reply::json(200, r#"{"access_token":""}"#), "access_token is empty"),
        (Reply::empty(200), "empty response body"),
    ] {
        let err = refresh_against(reply).await;
        assert!(matches!(&err, OAuthError::Invalid(r) if r.contains(reason)), "{err:?}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let provider = FakeProvider::start(&[
        ("/token", Reply::redirect("/elsewhere")),
        ("/elsewhere", Reply::json(200, r#"{"access_token":"at"}"#)),
    ])
    .await;
    let err = refresh_with(&provider.client(ClientAuth::ClientSecretBasic)).await;
    assert!(matches!(&err, OAuthError::Invalid(r) if r.contains("302")), "{err:?}");
    let paths: Vec<String> = provider.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/token"]);
}

#[tokio::test]
async fn an_oversized_answer_is_invalid() {
    let huge = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    let err = refresh_against(Reply::json(200, &huge)).await;
    assert!(matches!(&err, OAuthError::Invalid(r) if r.contains("1 MiB")), "{err:?}");
}

#[tokio::test]
async fn errors_never_show_the_tokens_or_secret_they_were_sent() {
    let echo =
        format!(r#"{{"error":"invalid_grant","error_description":"{REFRESH_TOKEN} with {CLIENT_SECRET} is bad"}}"#);
    let echoed_in_garbage = format!("not json: {REFRESH_TOKEN}");
    let value_in_bad_field = format!(r#"{{"access_token":"at","expires_in":"{REFRESH_TOKEN}"}}"#);
    let value_as_wrong_type = format!(r#"{{"access_token":["{REFRESH_TOKEN}"]}}"#);
    for reply in [
        Reply::json(400, &echo),
        Reply::json(200, &echoed_in_garbage),
        Reply::json(200, &value_in_bad_field),
        Reply::json(200, &value_as_wrong_type),
        Reply::text(500, "text/plain", &echo),
    ] {
        let err = refresh_against(reply).await;
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(REFRESH_TOKEN) && !shown.contains(CLIENT_SECRET), "{shown}");
        }
    }

    // A code and verifier echoed back by the token endpoint are scrubbed too.
    let provider =
        FakeProvider::token(Reply::json(400, r#"{"error":"invalid_grant","error_description":"code c-42 / v-42"}"#))
            .await;
    let err = oauth_client()
        .exchange_code(&provider.client(ClientAuth::ClientSecretPost), "c-42", "https://t.example/cb", Some("v-42"))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.to_string(), "the provider refused the request: invalid_grant (code [redacted] / [redacted])");
}
