//! A real OAuth 2.0 authorization server for tests, shared by the test
//! binaries (`#[path]`-included): `harness/oauth-provider/provider.mjs`
//! (oauth2-mock-server behind a front that authenticates the client, binds
//! codes to redirect_uri and PKCE, rotates refresh tokens and records
//! revocations), named by `TESSERA_TEST_OAUTH_PROVIDER`, on free loopback
//! ports, stopped on drop. Its control API counts grants and injects
//! failures, denials, delays and short lifetimes.

#![allow(dead_code)] // each test binary uses a different part of it

use std::process::Stdio;

use serde_json::{json, Value};

/// The provider process, stopped on drop.
pub struct OAuthProvider {
    pub issuer: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub client_id: String,
    pub client_secret: String,
    control: String,
    child: std::process::Child,
}

impl OAuthProvider {
    /// Starts one, or None (with a printed reason) when
    /// `TESSERA_TEST_OAUTH_PROVIDER` is unset. In CI the variable must be set.
    pub async fn start() -> Option<Self> {
        let Ok(script) = std::env::var("TESSERA_TEST_OAUTH_PROVIDER") else {
            assert!(
                std::env::var("CI").is_err(),
                "TESSERA_TEST_OAUTH_PROVIDER must be set in CI: OAuth tests may not skip"
            );
            eprintln!("skipping: TESSERA_TEST_OAUTH_PROVIDER is not set (scripts/services.sh installs the OAuth provider and sets it)");
            return None;
        };
        let client_id = "tessera-test".to_owned();
        let client_secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let mut child = std::process::Command::new("node")
            .arg(&script)
            .env("CLIENT_ID", &client_id)
            .env("CLIENT_SECRET", &client_secret)
            // The provider exits when its stdin closes: it cannot outlive us.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts the OAuth provider");
        let urls: Value = super::process::first_json_line(&mut child, "the OAuth provider").await;
        let url = |key: &str| urls[key].as_str().unwrap_or_else(|| panic!("{key} in {urls}")).to_owned();
        Some(Self {
            issuer: url("issuer"),
            authorize_url: url("authorizeUrl"),
            token_url: url("tokenUrl"),
            revoke_url: url("revokeUrl"),
            control: url("control"),
            client_id,
            client_secret,
            child,
        })
    }

    /// `{"authorizationCode","refresh","revoke","failedRefresh","revoked":[{"token_type_hint","tokenPrefix"}],
    /// "refreshTokensPresented":[..]}`: successful grants, refresh-grant requests refused (injected or not),
    /// recorded revocations, and every refresh token presented, in arrival order.
    pub async fn stats(&self) -> Value {
        let r = reqwest::get(format!("{}/stats", self.control)).await.expect("provider control answers");
        assert!(r.status().is_success(), "GET /stats: {}", r.status());
        r.json().await.expect("stats are JSON")
    }

    /// The next `count` requests of `grant` ("authorization_code", "refresh_token", or
    /// "revoke" for the revocation endpoint) answer `status` with `{"error":..}`:
    /// invalid_grant for 400, invalid_client for 401, server_error otherwise.
    pub async fn fail_next(&self, grant: &str, status: u16, count: u32) {
        self.control("fail", json!({"grant": grant, "status": status, "count": count})).await;
    }

    /// The next authorization redirects with `error=access_denied` (and the state), no code.
    pub async fn deny_next(&self) {
        self.control("deny-next", json!({})).await;
    }

    /// Every refresh-grant request is held this long before it is answered (0: off).
    pub async fn delay_refresh(&self, ms: u64) {
        self.control("delay", json!({"ms": ms})).await;
    }

    /// Tokens issued from now on say `expires_in: secs` (default 3600).
    pub async fn set_expires_in(&self, secs: u64) {
        self.control("expires-in", json!({"seconds": secs})).await;
    }

    /// Clears counters and modes; issued codes and tokens stay valid.
    pub async fn reset(&self) {
        self.control("reset", json!({})).await;
    }

    /// Plays the user who approves: GETs the authorization URL without
    /// following the redirect and returns its `Location` (the callback URL
    /// with code and state, or error and state).
    pub async fn approve(&self, authorization_url: &str) -> String {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let r = client.get(authorization_url).send().await.expect("provider answers /authorize");
        assert!(
            r.status().is_redirection(),
            "authorize answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        r.headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .expect("authorize redirect has a Location")
            .to_owned()
    }

    async fn control(&self, path: &str, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/{path}", self.control))
            .json(&body)
            .send()
            .await
            .expect("provider control answers");
        assert!(r.status().is_success(), "POST /{path}: {}", r.status());
    }
}

impl Drop for OAuthProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
