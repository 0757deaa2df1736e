//! Console sessions over plain HTTP (no browser): what the cookie carries,
//! how a session ends, and the refusals that guard sign-in.

use std::time::Duration;

use reqwest::{header, redirect, StatusCode};

use crate::helpers::{contains, Db, TestApp, ROOT_TOKEN};

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(redirect::Policy::none()).build().expect("client")
}

/// Signs in; returns the `Set-Cookie` header and the `name=value` pair.
async fn sign_in(app: &TestApp, token: &str) -> (reqwest::Response, Option<(String, String)>) {
    let r = client()
        .post(format!("{}/console/sign-in", app.base))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token)])
        .send()
        .await
        .expect("sign in");
    let cookie = r.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).map(|set| {
        let pair = set.split(';').next().expect("pair").to_owned();
        (set.to_owned(), pair)
    });
    (r, cookie)
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    client().get(format!("{}{path}", app.base)).header(header::COOKIE, cookie).send().await.expect("page")
}

#[tokio::test]
async fn a_session_cookie_is_http_only_strict_scoped_and_only_its_hash_is_stored() {
    let app = TestApp::sqlite().await;
    let (r, cookie) = sign_in(&app, ROOT_TOKEN).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (set, pair) = cookie.expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure flag ({set})");
    let ok = page(&app, &pair, "/console").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let h = ok.headers();
    let csp = h.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h.get(header::X_FRAME_OPTIONS).and_then(|v| v.to_str().ok()), Some("DENY"));
    assert_eq!(h.get(header::REFERRER_POLICY).and_then(|v| v.to_str().ok()), Some("no-referrer"));
    assert_eq!(h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    let body = ok.text().await.expect("body");
    assert!(body.contains("Overview"), "{body}");
    // The session token itself is nowhere in the database.
    let token = pair.split_once('=').expect("value").1;
    assert!(!contains(&app.storage_bytes().await, token.as_bytes()), "the session token is stored in clear");
    // Nor the root token it was opened with.
    assert!(!contains(&app.storage_bytes().await, ROOT_TOKEN.as_bytes()));
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_PUBLIC_URL", "https://vault.example.com")]).await;
    let (_, cookie) = sign_in(&app, ROOT_TOKEN).await;
    let (set, _) = cookie.expect("cookie");
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions_and_sign_out_ends_the_session() {
    let app = TestApp::sqlite().await;
    app.tenant("acme").await;
    let created = app
        .post("/api-keys", ROOT_TOKEN, serde_json::json!({"name": "ops", "role": "tenant_admin", "tenantId": "acme"}))
        .await;
    let key = created.body["key"].as_str().expect("key").to_owned();
    let id = created.body["id"].as_str().expect("id").to_owned();
    let (_, cookie) = sign_in(&app, &key).await;
    let (_, pair) = cookie.expect("cookie");
    assert_eq!(page(&app, &pair, "/console/tenants/acme").await.status(), StatusCode::OK);
    let r = app.delete(&format!("/api-keys/{id}"), ROOT_TOKEN).await;
    assert!(r.status.is_success(), "{}", r.text);
    let after = page(&app, &pair, "/console/tenants/acme").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "a revoked key's session still works");
    assert_eq!(after.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/console"));

    // Sign-out (with the page's CSRF token) ends the root session at once.
    let (_, cookie) = sign_in(&app, ROOT_TOKEN).await;
    let (_, pair) = cookie.expect("cookie");
    let html = page(&app, &pair, "/console").await.text().await.expect("body");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).expect("csrf").to_owned();
    let out = client()
        .post(format!("{}/console/sign-out", app.base))
        .header(header::COOKIE, &pair)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign out");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(page(&app, &pair, "/console/tenants").await.status(), StatusCode::SEE_OTHER);
    let events = app.get("/audit?action=console.sign_out", ROOT_TOKEN).await;
    assert_eq!(events.body["events"].as_array().map(Vec::len), Some(1), "{}", events.text);
}

#[tokio::test]
async fn an_idle_session_ends() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_CONSOLE_IDLE_TIMEOUT", "1")]).await;
    let (_, cookie) = sign_in(&app, ROOT_TOKEN).await;
    let (_, pair) = cookie.expect("cookie");
    assert_eq!(page(&app, &pair, "/console/tenants").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(page(&app, &pair, "/console/tenants").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused_and_bad_keys_are_rate_limited() {
    let app = TestApp::start(
        Db::Sqlite,
        &[("TESSERA_RATE_LIMIT_ANONYMOUS", "1"), ("TESSERA_RATE_LIMIT_ANONYMOUS_BURST", "3")],
    )
    .await;
    let r = client()
        .post(format!("{}/console/sign-in", app.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", ROOT_TOKEN)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (r, cookie) = sign_in(&app, "tsr_wrong-key-000000000000000000000").await;
        assert!(cookie.is_none());
        statuses.push(r.status());
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "failed sign-ins are not limited: {statuses:?}");
    let denied = app.get("/audit?action=auth.denied", ROOT_TOKEN).await;
    assert!(denied.body["events"].as_array().is_some_and(|e| !e.is_empty()), "{}", denied.text);
}

#[tokio::test]
async fn a_page_without_a_session_goes_to_sign_in_and_unknown_pages_are_html_404() {
    let app = TestApp::sqlite().await;
    let r = client().get(format!("{}/console/tenants", app.base)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = client().get(format!("{}/console/nowhere", app.base)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html")));
    // The API's own unknown routes stay JSON.
    let r = client().get(format!("{}/nowhere", app.base)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json")));
}

#[tokio::test]
async fn the_overview_lists_connections_that_need_connecting_again_and_tenants_show_their_health() {
    let app = TestApp::sqlite().await;
    app.tenant("acme").await;
    app.integration("crm", serde_json::json!({})).await;
    let r = app
        .post(
            "/tenants/acme/integrations/crm/credentials",
            ROOT_TOKEN,
            serde_json::json!({"accessToken": "tok_overview_123", "expiresIn": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (_, cookie) = sign_in(&app, ROOT_TOKEN).await;
    let (_, pair) = cookie.expect("cookie");
    let before = page(&app, &pair, "/console").await.text().await.expect("body");
    assert!(before.contains("No connection needs re-authorization"), "{before}");
    // What the refresh worker records when a provider refuses a refresh token for good.
    app.sql("UPDATE credentials SET needs_reauth = 1 WHERE tenant_id = 'acme'").await;
    let after = page(&app, &pair, "/console").await.text().await.expect("body");
    let table = after.split("id=\"troubled\"").nth(1).expect("a table of connections needing attention");
    assert!(table.contains("acme") && table.contains("crm") && table.contains("connect again"), "{after}");
    let tenants = page(&app, &pair, "/console/tenants").await.text().await.expect("body");
    assert!(tenants.contains("1 not checked"), "{tenants}");
}

#[tokio::test]
async fn an_auditor_sees_tenants_and_the_audit_log_but_no_tenant_data() {
    let app = TestApp::sqlite().await;
    app.tenant("acme").await;
    let auditor = app.key("auditor", None).await;
    let (_, cookie) = sign_in(&app, &auditor).await;
    let (_, pair) = cookie.expect("an auditor signs in");
    let list = page(&app, &pair, "/console/tenants").await.text().await.expect("body");
    assert!(list.contains("acme") && !list.contains("href=\"/console/tenants/acme\""), "{list}");
    assert_eq!(page(&app, &pair, "/console/audit").await.status(), StatusCode::OK);
    assert_eq!(page(&app, &pair, "/console/tenants/acme/secrets").await.status(), StatusCode::NOT_FOUND);
    let overview = page(&app, &pair, "/console").await.text().await.expect("body");
    assert!(!overview.contains("href=\"/console/configuration\""), "auditors get no Configuration link");
}
