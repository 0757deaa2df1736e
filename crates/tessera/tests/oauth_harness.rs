//! The OAuth provider harness itself (tests/common/oauth.rs) against the real
//! oauth2-mock-server: the flows Tessera's OAuth tests rely on behave like a
//! strict provider. Skips when `TESSERA_TEST_OAUTH_PROVIDER` is unset.

#[path = "common/process.rs"]
mod process;

#[path = "common/oauth.rs"]
mod oauth;

use std::time::{Duration, Instant};

use oauth::OAuthProvider;
use reqwest::Url;
use serde_json::Value;

const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

/// base64url(sha256(verifier)), from Node: sha2 is not a dev-dependency here.
fn s256(verifier: &str) -> String {
    let out = std::process::Command::new("node")
        .args([
            "-e",
            "process.stdout.write(require('crypto').createHash('sha256').update(process.argv[1]).digest('base64url'))",
        ])
        .arg(verifier)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "node: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn authorization_url(p: &OAuthProvider, state: &str, challenge: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", p.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("state", state),
        ("scope", "read write"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    Url::parse_with_params(&p.authorize_url, params).expect("url").to_string()
}

/// The query parameter `name` of a callback URL.
fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url).expect("callback url").query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// POSTs a form with HTTP Basic client authentication; returns status and JSON (Null when empty).
async fn post(url: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("provider answers");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn token(p: &OAuthProvider, form: &[(&str, &str)]) -> (u16, Value) {
    post(&p.token_url, &p.client_id, &p.client_secret, form).await
}

fn exchange<'a>(code: &'a str, verifier: &'a str, redirect_uri: &'a str) -> [(&'static str, &'a str); 4] {
    [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri), ("code_verifier", verifier)]
}

/// Authorizes and exchanges the code; returns the refresh token.
async fn log_in(p: &OAuthProvider) -> String {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let callback = p.approve(&authorization_url(p, "s", &s256(&verifier))).await;
    let code = param(&callback, "code").expect("code");
    let (status, body) = token(p, &exchange(&code, &verifier, REDIRECT_URI)).await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"].as_str().expect("refresh_token").to_owned()
}

async fn refresh(p: &OAuthProvider, refresh_token: &str) -> (u16, Value) {
    token(p, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

#[tokio::test]
async fn code_with_pkce_refresh_rotation_and_revocation() {
    let Some(p) = OAuthProvider::start().await else { return };
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());

    let callback = p.approve(&authorization_url(&p, "state-1", &s256(&verifier))).await;
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    assert_eq!(param(&callback, "state").as_deref(), Some("state-1"));
    let code = param(&callback, "code").expect("code in callback");

    let wrong = "x".repeat(64);
    // Refused without using the code up: wrong verifier, no verifier, other redirect_uri, wrong secret.
    let refused = token(&p, &exchange(&code, &wrong, REDIRECT_URI)).await;
    assert_eq!(refused, (400, serde_json::json!({"error": "invalid_grant"})));
    assert_eq!(token(&p, &exchange(&code, &verifier, REDIRECT_URI)[..3]).await.0, 400);
    assert_eq!(token(&p, &exchange(&code, &verifier, "http://127.0.0.1:9/other")).await.0, 400);
    let refused = post(&p.token_url, &p.client_id, "wrong", &exchange(&code, &verifier, REDIRECT_URI)).await;
    assert_eq!(refused, (401, serde_json::json!({"error": "invalid_client"})));

    let (status, tokens) = token(&p, &exchange(&code, &verifier, REDIRECT_URI)).await;
    assert_eq!(status, 200, "{tokens}");
    for field in ["access_token", "token_type", "refresh_token", "scope"] {
        assert!(tokens[field].is_string(), "{field} in {tokens}");
    }
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "read write");
    // Single use.
    assert_eq!(token(&p, &exchange(&code, &verifier, REDIRECT_URI)).await.0, 400);

    // Refresh twice, the second time with client_secret_post; each rotates.
    let rt1 = tokens["refresh_token"].as_str().expect("rt").to_owned();
    let (status, second) = token(&p, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(second["scope"], "read write");
    let form_auth = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt2.as_str()),
        ("client_id", p.client_id.as_str()),
        ("client_secret", p.client_secret.as_str()),
    ];
    let r = reqwest::Client::new().post(&p.token_url).form(&form_auth).send().await.expect("answers");
    assert_eq!(r.status(), 200);
    let third: Value = r.json().await.expect("json");
    let rt3 = third["refresh_token"].as_str().expect("rotated").to_owned();
    assert!(rt3 != rt1 && rt3 != rt2);
    // The used one is refused.
    assert_eq!(token(&p, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await.0, 400);

    // RFC 7009: client authentication required; a revoked refresh token is dead.
    let revoke = [("token", rt3.as_str()), ("token_type_hint", "refresh_token")];
    assert_eq!(post(&p.revoke_url, &p.client_id, "wrong", &revoke).await.0, 401);
    assert_eq!(post(&p.revoke_url, &p.client_id, &p.client_secret, &revoke).await, (200, Value::Null));
    assert_eq!(token(&p, &[("grant_type", "refresh_token"), ("refresh_token", &rt3)]).await.0, 400);

    let stats = p.stats().await;
    assert_eq!(stats["authorizationCode"], 1, "{stats}");
    assert_eq!(stats["refresh"], 2, "{stats}");
    assert_eq!(stats["failedRefresh"], 2, "{stats}");
    assert_eq!(stats["revoke"], 1, "{stats}");
    assert_eq!(stats["revoked"], serde_json::json!([{"token_type_hint": "refresh_token", "tokenPrefix": &rt3[..6]}]));
    assert_eq!(stats["refreshTokensPresented"], serde_json::json!([rt1, rt2, rt1, rt3]));
}

#[tokio::test]
async fn control_denies_fails_delays_and_shortens() {
    let Some(p) = OAuthProvider::start().await else { return };

    p.deny_next().await;
    let denied = p.approve(&authorization_url(&p, "state-2", &s256(&"v".repeat(43)))).await;
    assert_eq!(param(&denied, "error").as_deref(), Some("access_denied"), "{denied}");
    assert_eq!(param(&denied, "state").as_deref(), Some("state-2"));
    assert_eq!(param(&denied, "code"), None);

    p.set_expires_in(5).await;
    let rt = log_in(&p).await; // one-shot: the next authorization is approved

    // Injected failures leave the refresh token usable afterwards.
    p.fail_next("refresh_token", 503, 2).await;
    for _ in 0..2 {
        assert_eq!(refresh(&p, &rt).await, (503, serde_json::json!({"error": "server_error"})));
    }
    p.delay_refresh(300).await;
    let started = Instant::now();
    let (status, body) = refresh(&p, &rt).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(body["expires_in"], 5);
    let stats = p.stats().await;
    assert_eq!((stats["refresh"].as_u64(), stats["failedRefresh"].as_u64()), (Some(1), Some(2)), "{stats}");

    p.reset().await;
    let started = Instant::now();
    let (status, body) = refresh(&p, body["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_millis(300), "reset turns the delay off");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(p.stats().await["refresh"], 1);
}
