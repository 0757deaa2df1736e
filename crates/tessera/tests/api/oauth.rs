//! OAuth flows against a real authorization server (`oauth2-mock-server`
//! from npm, wrapped by harness/oauth-provider): authorize and callback with
//! state and PKCE, refusals that store nothing, refresh (single flight,
//! rotation, backoff, two replicas), revocation.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Db, OAuthProvider, TestApp, ROOT_TOKEN};

const APP_REDIRECT: &str = "https://app.example/oauth/done";
const KEY: &str = "acme-crm";

/// Registers an oauth2 integration pointing at the provider.
async fn register(app: &TestApp, p: &OAuthProvider, key: &str, secret: &str) {
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": key, "name": "Acme CRM", "category": "crm", "authType": "oauth2", "template": "generic",
                   "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url, "revokeUrl": p.revoke_url,
                             "clientId": p.client_id, "clientSecret": secret, "scopes": ["read", "write"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TESSERA_ALLOWED_REDIRECT_URIS", APP_REDIRECT),
        ("TESSERA_REFRESH_INTERVAL", "3600"),
        ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
        // Short, for the tests that expire tokens with SQL after a read.
        ("TESSERA_VIEW_CACHE_SECONDS", "1"),
    ]
}

/// A client that shows redirects instead of following them (the browser's view).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Starts a flow and plays the user approving; returns the callback URL.
async fn approved_callback(app: &TestApp, p: &OAuthProvider, key: &str, tenant: &str) -> String {
    let start =
        app.get(&format!("/oauth/authorize/{key}?tenant_id={tenant}&redirect_uri={APP_REDIRECT}"), ROOT_TOKEN).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    p.approve(start.body["authorizationUrl"].as_str().expect("url")).await
}

/// Calls the callback like a browser; returns status and Location.
async fn follow(url: &str) -> (StatusCode, String, String) {
    let r = browser().get(url).send().await.expect("callback answers");
    let status = r.status();
    let location = r.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
    (status, location, r.text().await.unwrap_or_default())
}

/// Runs a whole flow for `tenant`, asserting success.
async fn connect(app: &TestApp, p: &OAuthProvider, key: &str, tenant: &str) {
    let (status, location, body) = follow(&approved_callback(app, p, key, tenant).await).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    let why: Vec<String> = app.logs().lines().filter(|l| l.contains("exchange")).map(str::to_owned).collect();
    assert!(location.starts_with(&format!("{APP_REDIRECT}?status=success")), "{location}: {why:?}");
}

async fn access_token(app: &TestApp, tenant: &str) -> String {
    let r = app.get(&format!("/tenants/{tenant}/integrations/{KEY}/resolved"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["config"]["accessToken"].as_str().expect("an access token").to_owned()
}

async fn the_authorization_code_flow_stores_tokens_and_redirects((app, p): (TestApp, OAuthProvider)) {
    register(&app, &p, KEY, &p.client_secret).await;
    app.tenant("acme").await;
    let start =
        app.get(&format!("/oauth/authorize/{KEY}?tenant_id=acme&redirect_uri={APP_REDIRECT}"), ROOT_TOKEN).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    let url = start.body["authorizationUrl"].as_str().expect("url");
    let state = start.body["state"].as_str().expect("state");
    assert!(url.starts_with(&p.authorize_url), "{url}");
    for part in ["code_challenge=", "code_challenge_method=S256", "scope=read+write", &format!("state={state}")] {
        assert!(url.contains(part), "{part} in {url}");
    }
    // The state is stored only as a hash.
    assert!(!crate::helpers::contains(&app.storage_bytes().await, state.as_bytes()));

    let callback = p.approve(url).await;
    let (status, location, body) = follow(&callback).await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    assert_eq!(location, format!("{APP_REDIRECT}?status=success&integration={KEY}&tenant_id=acme"));
    assert_eq!(p.stats().await["authorizationCode"], 1);

    let meta = app.get(&format!("/tenants/acme/integrations/{KEY}/credentials"), ROOT_TOKEN).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.text);
    assert_eq!(meta.body["source"], "oauth");
    assert_eq!(meta.body["hasRefreshToken"], true);
    assert!(meta.body["expiresAt"].is_string(), "{}", meta.text);
    let token = access_token(&app, "acme").await;

    // Single use: the same callback again is refused and exchanges nothing.
    let (status, _, body) = follow(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid_state"), "{body}");
    assert_eq!(p.stats().await["authorizationCode"], 1);

    // Revocation reaches the provider (refresh token, then access token) and removes the tokens.
    let revoked = app.delete(&format!("/tenants/acme/integrations/{KEY}/credentials"), ROOT_TOKEN).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["providerRevoked"], true);
    let stats = p.stats().await;
    assert_eq!(stats["revoke"], 2, "{stats}");
    let resolved = app.get(&format!("/tenants/acme/integrations/{KEY}/resolved"), ROOT_TOKEN).await;
    assert!(resolved.body["config"].get("accessToken").is_none(), "{}", resolved.text);

    let audit = app.get("/audit?tenantId=acme&limit=200", ROOT_TOKEN).await;
    for action in ["oauth.authorize", "oauth.callback", "credential.store", "credential.revoke"] {
        assert!(audit.text.contains(action), "{action}: {}", audit.text);
    }
    app.assert_plaintext_absent(&[&token, &p.client_secret], &[&meta, &audit]).await;
}

async fn refused_and_tampered_flows_store_nothing((app, p): (TestApp, OAuthProvider)) {
    register(&app, &p, KEY, &p.client_secret).await;
    register(&app, &p, "other-crm", &p.client_secret).await;
    app.tenant("acme").await;
    app.tenant("globex").await;
    let creds = format!("/tenants/acme/integrations/{KEY}/credentials");

    // Redirect URIs outside the allow-list: no open redirect.
    for bad in ["https://evil.example/steal", "https://app.example/oauth/done/../x", "javascript:alert(1)"] {
        let r = app.get(&format!("/oauth/authorize/{KEY}?tenant_id=acme&redirect_uri={bad}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "redirect_uri_not_allowed");
    }
    // Starting a flow (a GET) for a tenant that does not exist creates nothing.
    let r = app.get(&format!("/oauth/authorize/{KEY}?tenant_id=ghost-typo"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "tenant_not_found");
    assert_eq!(app.get("/tenants/ghost-typo", ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
    // A tenant-bound caller starts flows for its own tenant only.
    let globex_admin = app.key("tenant_admin", Some("globex")).await;
    let r = app.get(&format!("/oauth/authorize/{KEY}?tenant_id=acme"), &globex_admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let own = app.get(&format!("/oauth/authorize/{KEY}?tenant_id=globex"), &globex_admin).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    // No bearer token, no flow.
    assert_eq!(
        app.call(reqwest::Method::GET, &format!("/oauth/authorize/{KEY}?tenant_id=acme"), None, None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A tampered state.
    let callback = approved_callback(&app, &p, KEY, "acme").await;
    let tampered = callback.replace("state=", "state=x");
    let (status, _, body) = follow(&tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // The state of one integration presented at another's callback is refused, and spent.
    let (status, _, body) =
        follow(&callback.replace(&format!("/oauth/callback/{KEY}"), "/oauth/callback/other-crm")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = follow(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a state is spent by its first use: {body}");

    // An expired state.
    let callback = approved_callback(&app, &p, KEY, "acme").await;
    app.sql("UPDATE oauth_states SET expires_at = 0").await;
    let (status, _, body) = follow(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("state_expired"), "{body}");

    // The user says no at the provider.
    p.deny_next().await;
    let (status, location, _) = follow(&approved_callback(&app, &p, KEY, "acme").await).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(location.starts_with(&format!("{APP_REDIRECT}?status=error&error=access_denied")), "{location}");

    // The provider refuses the exchange (this integration's client secret is wrong).
    register(&app, &p, "wrong-secret", "not-the-client-secret").await;
    let (status, location, _) = follow(&approved_callback(&app, &p, "wrong-secret", "acme").await).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(location.contains("status=error&error=oauth_exchange_failed"), "{location}");

    assert_eq!(app.get(&creds, ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/tenants/acme/integrations/wrong-secret/credentials", ROOT_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(p.stats().await["authorizationCode"], 0, "no code was ever exchanged successfully");
    let audit = app.get("/audit?action=oauth.callback&limit=100", ROOT_TOKEN).await;
    let outcomes: Vec<&str> =
        audit.body["events"].as_array().expect("events").iter().filter_map(|e| e["outcome"].as_str()).collect();
    // Six refusals; the second unknown state from this address is counted for
    // the interval's aggregated event rather than written on its own.
    assert!(outcomes.len() >= 5 && outcomes.iter().all(|o| *o != "success"), "{}", audit.text);
}

/// PKCE S256 is on without a template: a code obtained in tenant A's flow,
/// sent to the callback with tenant B's state, is refused by the provider
/// (B's verifier does not match A's challenge) and B gets no credentials.
async fn a_code_from_one_tenants_flow_cannot_complete_anothers((app, p): (TestApp, OAuthProvider)) {
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": KEY, "name": "Acme CRM", "authType": "oauth2",
                   "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url,
                             "clientId": p.client_id, "clientSecret": p.client_secret, "scopes": ["read"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["oauth"]["pkce"], true, "{}", r.text);
    let shown = app.get(&format!("/integrations/{KEY}"), ROOT_TOKEN).await;
    assert_eq!(shown.body["oauth"]["pkce"], true, "{}", shown.text);
    app.tenant("acme").await;
    app.tenant("globex").await;

    let a = app.get(&format!("/oauth/authorize/{KEY}?tenant_id=acme"), ROOT_TOKEN).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a_url = a.body["authorizationUrl"].as_str().expect("url");
    assert!(a_url.contains("code_challenge_method=S256") && a_url.contains("code_challenge="), "{a_url}");
    let a_state = a.body["state"].as_str().expect("state");
    let a_callback = p.approve(a_url).await;
    let b = app.get(&format!("/oauth/authorize/{KEY}?tenant_id=globex"), ROOT_TOKEN).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    let b_state = b.body["state"].as_str().expect("state");

    // A's code with B's state: the provider refuses B's verifier.
    let a_state_param = format!("state={a_state}");
    assert!(a_callback.contains(&a_state_param), "{a_callback}");
    let mixed = a_callback.replace(&a_state_param, &format!("state={b_state}"));
    let (status, _, body) = follow(&mixed).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("oauth_exchange_failed"), "{body}");
    let globex = app.get(&format!("/tenants/globex/integrations/{KEY}/credentials"), ROOT_TOKEN).await;
    assert_eq!(globex.status, StatusCode::NOT_FOUND, "tenant B has no credentials: {}", globex.text);
    assert_eq!(p.stats().await["authorizationCode"], 0, "{}", p.stats().await);

    // The code still completes the flow that asked for it, in tenant A.
    let (status, _, body) = follow(&a_callback).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.get(&format!("/tenants/acme/integrations/{KEY}/credentials"), ROOT_TOKEN).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/tenants/globex/integrations/{KEY}/credentials"), ROOT_TOKEN).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn an_expired_token_is_refreshed_once_for_many_concurrent_readers((app, p): (TestApp, OAuthProvider)) {
    register(&app, &p, KEY, &p.client_secret).await;
    app.tenant("acme").await;
    // Tokens that expire at once: the first read must refresh.
    p.set_expires_in(1).await;
    connect(&app, &p, KEY, "acme").await;
    // Refreshed tokens live an hour, so one refresh satisfies every reader.
    p.set_expires_in(3600).await;
    p.delay_refresh(300).await;
    let path = format!("/tenants/acme/integrations/{KEY}/resolved");
    let reads = (0..16).map(|_| app.get(&path, ROOT_TOKEN));
    let answers = futures::future::join_all(reads).await;
    let tokens: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body["config"]["accessToken"].as_str().expect("token").to_owned()
        })
        .collect();
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "every reader got the one refreshed token");
    let stats = p.stats().await;
    assert_eq!(stats["refresh"], 1, "one refresh for sixteen readers: {stats}");

    // The provider rotated the refresh token; the next refresh must present the new one
    // (the provider refuses a used refresh token, so a stale one would fail).
    app.sql_then_wait_for_views("UPDATE credentials SET expires_at = 0").await;
    let again = app.get(&path, ROOT_TOKEN).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let stats = p.stats().await;
    assert_eq!(stats["refresh"], 2, "{stats}");
    let presented = stats["refreshTokensPresented"].as_array().expect("list");
    assert_ne!(presented[0], presented[1], "the rotated refresh token was stored and used");
    let meta = app.get(&format!("/tenants/acme/integrations/{KEY}/credentials"), ROOT_TOKEN).await;
    assert!(meta.body["lastRefreshedAt"].is_string(), "{}", meta.text);
    let refresh_tokens: Vec<String> = presented.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect();
    let secrets: Vec<&str> =
        refresh_tokens.iter().map(String::as_str).chain(tokens.iter().map(String::as_str)).collect();
    app.assert_plaintext_absent(&secrets, &[&meta]).await;
}

async fn failed_refreshes_back_off_then_mark_the_connection_unhealthy((app, p): (TestApp, OAuthProvider)) {
    register(&app, &p, KEY, &p.client_secret).await;
    app.tenant("acme").await;
    p.set_expires_in(60).await;
    connect(&app, &p, KEY, "acme").await;
    p.fail_next("refresh_token", 500, 1000).await;
    let conn = format!("/tenants/acme/integrations/{KEY}");
    let unhealthy = wait_for(&app, &conn, |v| v["healthStatus"] == "unhealthy").await;
    assert!(unhealthy["credentials"]["refreshFailures"].as_u64().is_some_and(|n| n >= 2), "{unhealthy}");
    assert_eq!(unhealthy["credentials"]["needsReauth"], false, "a 500 is worth retrying");
    let audit = app.get("/audit?action=oauth.refresh&limit=100", ROOT_TOKEN).await;
    assert!(audit.text.contains("error=provider_unavailable"), "{}", audit.text);
    // The provider recovers: the next retry succeeds and the connection is healthy again.
    p.reset().await;
    p.set_expires_in(3600).await;
    let healthy = wait_for(&app, &conn, |v| v["healthStatus"] == "healthy").await;
    assert_eq!(healthy["credentials"]["refreshFailures"], 0, "{healthy}");
    assert!(p.stats().await["refresh"].as_u64().is_some_and(|n| n >= 1));
}

async fn a_refused_refresh_token_needs_a_new_flow_and_is_not_retried((app, p): (TestApp, OAuthProvider)) {
    register(&app, &p, KEY, &p.client_secret).await;
    app.tenant("acme").await;
    connect(&app, &p, KEY, "acme").await;
    app.sql("UPDATE credentials SET expires_at = 0").await;
    // The provider no longer accepts the refresh token (revoked, or the user removed the app).
    p.fail_next("refresh_token", 400, 1).await;
    let r = app.get(&format!("/tenants/acme/integrations/{KEY}/resolved"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "oauth_refresh_failed");
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.contains("invalid_grant")), "{}", r.text);
    let conn = app.get(&format!("/tenants/acme/integrations/{KEY}"), ROOT_TOKEN).await;
    assert_eq!(conn.body["healthStatus"], "unhealthy", "{}", conn.text);
    assert_eq!(conn.body["credentials"]["needsReauth"], true);
    // The worker leaves it alone (retrying a refused token cannot help) ...
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(p.stats().await["refresh"], 0);
    // ... and a new flow makes it healthy and refreshable again.
    connect(&app, &p, KEY, "acme").await;
    let meta = app.get(&format!("/tenants/acme/integrations/{KEY}/credentials"), ROOT_TOKEN).await;
    assert_eq!(meta.body["needsReauth"], false, "{}", meta.text);
    assert_eq!(meta.body["refreshFailures"], 0);
}

async fn the_client_can_come_from_the_environment(app: TestApp, p: OAuthProvider) {
    // No clientId or secret in the registry: ACME_CRM_CLIENT_ID / _CLIENT_SECRET (set below) fill them.
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": KEY, "name": "Acme CRM", "authType": "oauth2",
                   "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url, "pkce": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["oauth"]["clientSecretSet"], false);
    app.tenant("acme").await;
    connect(&app, &p, KEY, "acme").await;
    assert_eq!(p.stats().await["authorizationCode"], 1);
    // Without any client id a flow cannot start, and says why.
    let bare = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "bare", "name": "Bare", "authType": "oauth2",
            "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url}}),
        )
        .await;
    assert_eq!(bare.status, StatusCode::CREATED);
    let r = app.get("/oauth/authorize/bare?tenant_id=acme", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "oauth_not_configured");
    assert!(r.text.contains("BARE_CLIENT_ID"), "{}", r.text);
    app.assert_plaintext_absent(&[&p.client_secret], &[]).await;
}

async fn wait_for(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let r = app.get(path, ROOT_TOKEN).await;
        if done(&r.body) {
            return r.body;
        }
        assert!(started.elapsed() < Duration::from_secs(40), "timed out waiting on {path}: {}", r.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the provider and the app (None: provider not installed, skipped).
async fn with_provider(db: Db, extra: &[(&str, &str)]) -> Option<(TestApp, OAuthProvider)> {
    let p = OAuthProvider::start().await?;
    let mut vars = env();
    vars.extend_from_slice(extra);
    Some((TestApp::start(db, &vars).await, p))
}

crate::on_both_databases!(with super::with_provider:
    the_authorization_code_flow_stores_tokens_and_redirects,
    a_refused_refresh_token_needs_a_new_flow_and_is_not_retried("TESSERA_REFRESH_INTERVAL" = "1"),
    refused_and_tampered_flows_store_nothing,
    a_code_from_one_tenants_flow_cannot_complete_anothers,
    an_expired_token_is_refreshed_once_for_many_concurrent_readers,
    failed_refreshes_back_off_then_mark_the_connection_unhealthy(
        "TESSERA_REFRESH_INTERVAL" = "1",
        "TESSERA_REFRESH_RETRY_BASE" = "1",
        "TESSERA_REFRESH_MAX_FAILURES" = "2"
    ),
);

/// Without a template (none sets a separator), scopes are joined with a
/// space as RFC 6749 says, not run together (`scope=readwrite`).
async fn scopes_without_a_template_are_joined_with_a_space(app: TestApp) {
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "plain", "name": "Plain", "authType": "oauth2",
                   "oauth": {"authorizeUrl": "https://idp.example/authorize", "tokenUrl": "https://idp.example/token",
                             "clientId": "cid", "clientSecret": "cs", "scopes": ["read", "write"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["oauth"]["scopeSeparator"], " ", "{}", r.text);
    app.tenant("acme").await;
    let start = app.get("/oauth/authorize/plain?tenant_id=acme", ROOT_TOKEN).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    let url = start.body["authorizationUrl"].as_str().expect("url");
    assert!(url.contains("&scope=read+write&"), "{url}");
}

/// No registry URL may carry credentials (the registry is readable by every
/// key): refused at registration and update, naming the field, never
/// repeating the password.
async fn registry_urls_with_credentials_are_refused(app: TestApp) {
    let good = json!({"key": "good", "name": "Good", "authType": "oauth2",
                      "oauth": {"authorizeUrl": "https://idp.example/authorize", "tokenUrl": "https://idp.example/token"}});
    let r = app.post("/integrations", ROOT_TOKEN, good).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let with_password = "https://svc:hunter2@idp.example/x";
    let cases = [
        (json!({"oauth": {"authorizeUrl": with_password}}), "oauth.authorizeUrl", "invalid_url"),
        (json!({"oauth": {"tokenUrl": with_password}}), "oauth.tokenUrl", "invalid_url"),
        (json!({"oauth": {"tokenUrl": "https://svc@idp.example/token"}}), "oauth.tokenUrl", "invalid_url"),
        (json!({"oauth": {"revokeUrl": with_password}}), "oauth.revokeUrl", "invalid_url"),
        (json!({"oauth": {"redirectUri": with_password}}), "oauth.redirectUri", "invalid_url"),
        (json!({"template": "github", "oauth": {"tokenUrl": with_password}}), "oauth.tokenUrl", "invalid_url"),
        (json!({"proxy": {"baseUrl": with_password}}), "proxy.baseUrl", "invalid_proxy_settings"),
        (json!({"mcp": {"url": with_password}}), "mcp.url", "invalid_mcp_settings"),
    ];
    for (i, (part, field, code)) in cases.into_iter().enumerate() {
        let mut body = json!({"key": format!("bad-{i}"), "name": "Bad", "authType": "oauth2"});
        for (k, v) in part.as_object().expect("object") {
            body[k] = v.clone();
        }
        let created = app.post("/integrations", ROOT_TOKEN, body.clone()).await;
        body["key"] = json!("good");
        let updated = app.put("/integrations/good", ROOT_TOKEN, body).await;
        for (what, r) in [("create", created), ("update", updated)] {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what} {field}: {}", r.text);
            assert_eq!(r.body["error"]["code"], code, "{what}: {}", r.text);
            assert_eq!(r.body["error"]["field"], field, "{what}: {}", r.text);
            let message = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("may not contain credentials"), "{what}: {}", r.text);
            assert!(!r.text.contains("hunter2") && !r.text.contains("svc@"), "{what}: {}", r.text);
        }
    }
    let all = app.get("/integrations", ROOT_TOKEN).await;
    assert!(!all.text.contains("hunter2"), "{}", all.text);
    let good = app.get("/integrations/good", ROOT_TOKEN).await;
    assert_eq!(good.body["oauth"]["tokenUrl"], "https://idp.example/token", "{}", good.text);
}

/// Integrations stored before PKCE was on by default hold `"pkce": false`
/// whether or not a registration asked for it, so the upgrade turns PKCE on
/// for every one of them; a registration that turns it off afterwards stays off.
async fn the_upgrade_turns_pkce_on_for_integrations_stored_with_it_off(mut app: TestApp) {
    let oauth = json!({"authorizeUrl": "https://idp.example/authorize", "tokenUrl": "https://idp.example/token"});
    for key in ["legacy", "notion-like"] {
        let body = json!({"key": key, "name": key, "authType": "oauth2", "oauth": oauth});
        let r = app.post("/integrations", ROOT_TOKEN, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let plain = json!({"key": "plain", "name": "Plain"});
    assert_eq!(app.post("/integrations", ROOT_TOKEN, plain).await.status, StatusCode::CREATED);
    // What an older build stored: the field always written, false by default.
    app.stop().await;
    let (pkce_off, pkce_migration) = match &app.db {
        Db::Sqlite => ("json_set(settings, '$.oauth.pkce', json('false'))", 10),
        Db::Postgres { .. } => ("jsonb_set(settings, '{oauth,pkce}', 'false'::jsonb)", 9),
    };
    app.sql(&format!("UPDATE integrations SET settings = {pkce_off} WHERE integration_key <> 'plain'")).await;
    app.sql(&format!("DELETE FROM _sqlx_migrations WHERE version = {pkce_migration}")).await;
    app.start_again().await;
    for key in ["legacy", "notion-like"] {
        let r = app.get(&format!("/integrations/{key}"), ROOT_TOKEN).await;
        assert_eq!(r.body["oauth"]["pkce"], true, "{key}: {}", r.text);
    }
    let r = app.get("/integrations/plain", ROOT_TOKEN).await;
    assert_eq!(r.body["oauth"], Value::Null, "no OAuth settings appear: {}", r.text);
    // A provider that rejects PKCE: registered again with it off, it stays off.
    let off = json!({"name": "legacy", "authType": "oauth2", "oauth": {"pkce": false}});
    let r = app.put("/integrations/legacy", ROOT_TOKEN, off).await;
    assert_eq!(r.body["oauth"]["pkce"], false, "{}", r.text);
    app.restart().await;
    let r = app.get("/integrations/legacy", ROOT_TOKEN).await;
    assert_eq!(r.body["oauth"]["pkce"], false, "{}", r.text);
}

/// The scenarios that need no OAuth provider.
mod without_provider {
    use super::{
        registry_urls_with_credentials_are_refused, scopes_without_a_template_are_joined_with_a_space,
        the_upgrade_turns_pkce_on_for_integrations_stored_with_it_off,
    };
    crate::on_both_databases!(
        scopes_without_a_template_are_joined_with_a_space,
        registry_urls_with_credentials_are_refused,
        the_upgrade_turns_pkce_on_for_integrations_stored_with_it_off
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_can_come_from_the_environment_on_sqlite() {
    let Some(p) = OAuthProvider::start().await else { return };
    let mut vars = env();
    vars.push(("ACME_CRM_CLIENT_ID", &p.client_id));
    vars.push(("ACME_CRM_CLIENT_SECRET", &p.client_secret));
    let app = TestApp::start(Db::Sqlite, &vars).await;
    the_client_can_come_from_the_environment(app, p).await;
}

/// Two replicas on one PostgreSQL: each due token is refreshed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_refresh_each_token_exactly_once() {
    let Some(db) = TestApp::fresh_postgres().await else { return };
    let Some(p) = OAuthProvider::start().await else { return };
    let mut vars = env();
    vars.retain(|(k, _)| *k != "TESSERA_REFRESH_INTERVAL");
    vars.push(("TESSERA_REFRESH_INTERVAL", "1"));
    let first = TestApp::start(db.clone(), &vars).await;
    let master = first.env_value("TESSERA_MASTER_KEY").expect("master key");
    vars.push(("TESSERA_MASTER_KEY", &master));
    let second = TestApp::start(db, &vars).await;
    register(&first, &p, KEY, &p.client_secret).await;
    // Tokens that live an hour (not due), so nothing is refreshed while the tenants connect ...
    let tenants: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    for t in &tenants {
        first.tenant(t).await;
        connect(&first, &p, KEY, t).await;
    }
    assert_eq!(p.stats().await["refresh"], 0);
    // ... then all due at once, and slow to refresh, so the replicas' scans overlap. Refreshed
    // tokens live an hour again, so each is refreshed once.
    p.delay_refresh(150).await;
    first.sql("UPDATE credentials SET expires_at = 0").await;
    for t in &tenants {
        wait_for(&second, &format!("/tenants/{t}/integrations/{KEY}/credentials"), |v| {
            v["lastRefreshedAt"].is_string()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = p.stats().await;
    assert_eq!(stats["refresh"], 12, "each token refreshed exactly once: {stats}");
    let mut presented: Vec<&str> =
        stats["refreshTokensPresented"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    presented.sort_unstable();
    presented.dedup();
    assert_eq!(presented.len(), 12);
    assert_eq!(stats["failedRefresh"], 0, "{stats}");
    drop(second);
}

#[tokio::test]
async fn oauth_endpoints_without_tls_are_refused_at_registration() {
    let app = TestApp::sqlite().await;
    for (url, field) in [("http://idp.example/token", "oauth.tokenUrl"), ("http://127.0.0.1:9/token", "oauth.tokenUrl")]
    {
        let body = json!({"key": "plain-http", "name": "Plain", "authType": "oauth2",
                          "oauth": {"authorizeUrl": "https://idp.example/authorize", "tokenUrl": url}});
        let r = app.post("/integrations", ROOT_TOKEN, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "insecure_url", "{}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
        assert!(
            r.body["error"]["message"].as_str().is_some_and(|m| m.contains("TESSERA_ALLOW_LOOPBACK_HTTP")),
            "{}",
            r.text
        );
    }
    let r = app.get("/integrations/plain-http", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing was stored: {}", r.text);
}
