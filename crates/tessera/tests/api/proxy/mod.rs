//! The credential-injecting proxy, against a real HTTP upstream started by
//! the test: what reaches the upstream (the tenant's credential, never the
//! caller's), paths that try to leave the base URL, redirects, limits, and
//! the refresh-and-retry of an OAuth token the upstream refuses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Db, OAuthProvider, TestApp, ROOT_TOKEN};

mod audit_and_defaults;

const TOKEN: &str = "acme-upstream-token-4711";

/// An upstream that records every request and answers by path.
#[derive(Clone, Default)]
pub(crate) struct Upstream {
    pub(crate) seen: Arc<Mutex<Vec<Value>>>,
    /// Bearer tokens it answers 401 to.
    pub(crate) refused: Arc<Mutex<Vec<String>>>,
    /// Answer 401 to every token.
    pub(crate) refuse_all: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) base: String,
}

impl Upstream {
    pub(crate) async fn start(redirect_to: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let up = Self { base, ..Self::default() };
        let (state, to) = (up.clone(), redirect_to.to_owned());
        let app = axum::Router::new().fallback(move |req: Request| {
            let (state, to) = (state.clone(), to.clone());
            async move { state.answer(req, &to).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("upstream serves") });
        up
    }

    async fn answer(&self, req: Request, redirect_to: &str) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
        let headers: serde_json::Map<String, Value> =
            parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default()))).collect();
        let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let seen = json!({"method": parts.method.as_str(), "path": parts.uri.path(), "query": parts.uri.query(),
                          "headers": headers, "body": String::from_utf8_lossy(&body)});
        self.seen.lock().expect("lock").push(seen.clone());
        let path = parts.uri.path();
        let refuse_all = self.refuse_all.load(std::sync::atomic::Ordering::SeqCst);
        if refuse_all || self.refused.lock().expect("lock").iter().any(|t| auth == format!("Bearer {t}")) {
            return (axum::http::StatusCode::UNAUTHORIZED, "token refused").into_response();
        }
        if let Some(code) = path.strip_prefix("/api/status/").and_then(|c| c.parse::<u16>().ok()) {
            let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
            return (status, "as asked").into_response();
        }
        match path {
            "/api/redirect" => (axum::http::StatusCode::FOUND, [("location", redirect_to)]).into_response(),
            "/api/slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late".into_response()
            }
            "/api/big" => {
                let n: usize =
                    parts.uri.query().and_then(|q| q.strip_prefix("bytes=")).and_then(|n| n.parse().ok()).unwrap_or(0);
                let chunks = futures::stream::iter((0..n.div_ceil(65536)).map(move |i| {
                    let len = (n - i * 65536).min(65536);
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; len]))
                }));
                Response::new(Body::from_stream(chunks))
            }
            _ => ([("set-cookie", "upstream=1"), ("x-upstream", "yes")], axum::Json(seen)).into_response(),
        }
    }

    pub(crate) fn hits(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    pub(crate) fn last(&self) -> Value {
        self.seen.lock().expect("lock").last().cloned().unwrap_or(Value::Null)
    }
}

pub(crate) async fn proxied_integration(app: &TestApp, key: &str, base: &str, auth: Value, schema: Value) {
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": key, "name": key, "configSchema": schema,
            "proxy": {"baseUrl": format!("{base}/api"), "auth": auth}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut req = app.client.request(method, format!("{}{path}", app.base)).bearer_auth(token).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("tessera answers");
    let (status, headers) = (r.status(), r.headers().clone());
    (status, r.text().await.unwrap_or_default(), headers)
}

/// Sends a request line exactly as written (clients normalise `..`).
async fn raw_get(app: &TestApp, target: &str) -> u16 {
    raw_request(app, "GET", target).await
}

/// Sends `method target` exactly as written; returns the status.
async fn raw_request(app: &TestApp, method: &str, target: &str) -> u16 {
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ROOT_TOKEN}\r\nX-Tenant-Id: acme\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn the_tenant_credential_is_injected_and_nothing_of_the_caller_leaves(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    proxied_integration(&app, "crm", &up.base, json!({"type": "bearer"}), json!({})).await;
    app.tenant("acme").await;
    app.tenant("globex").await;
    let stored =
        app.post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    let service = app.key("tenant_service", Some("acme")).await;

    let (status, text, headers) = call(
        &app,
        Method::POST,
        "/proxy/crm/items/42?x=1&y=a%2Fb",
        &service,
        &[
            ("cookie", "session=caller-cookie"),
            ("x-custom", "kept"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("content-type", "application/json"),
        ],
        r#"{"a":1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let seen = up.last();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/api/items/42");
    assert_eq!(seen["query"], "x=1&y=a%2Fb");
    assert_eq!(seen["body"], r#"{"a":1}"#);
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {TOKEN}"), "the tenant's token, not the caller's key");
    assert_eq!(seen["headers"]["x-custom"], "kept");
    for dropped in ["cookie", "x-hop", "x-tenant-id", "proxy-authorization"] {
        assert!(seen["headers"].get(dropped).is_none(), "{dropped} must not reach the upstream: {seen}");
    }
    assert!(!seen.to_string().contains(&service), "the caller's key never reaches the upstream");
    assert!(headers.get("set-cookie").is_none(), "upstream cookies are not passed back");
    assert_eq!(headers.get("x-upstream").and_then(|v| v.to_str().ok()), Some("yes"));

    // An admin names the tenant; without it there is no tenant to act for.
    let (status, text, _) = call(&app, Method::GET, "/proxy/crm/items", ROOT_TOKEN, &[], "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("missing_tenant"));
    let (status, _, _) = call(&app, Method::GET, "/proxy/crm/items", ROOT_TOKEN, &[("x-tenant-id", "acme")], "").await;
    assert_eq!(status, StatusCode::OK);
    // A tenant-bound key naming another tenant gets what a missing tenant gets.
    let (status, _, _) = call(&app, Method::GET, "/proxy/crm/items", &service, &[("x-tenant-id", "globex")], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A tenant without a connection, an integration without proxy settings.
    let (status, _, _) =
        call(&app, Method::GET, "/proxy/crm/items", ROOT_TOKEN, &[("x-tenant-id", "globex")], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let hits = up.hits();

    let conn = app.get("/tenants/acme/integrations/crm", ROOT_TOKEN).await;
    assert!(conn.body["lastUsedAt"].is_string(), "{}", conn.text);
    let audit = app.get("/audit?action=proxy.call&limit=50", ROOT_TOKEN).await;
    assert!(audit.text.contains("proxy/crm/items/42?method=POST&status=200"), "{}", audit.text);
    assert!(!audit.text.contains("x=1"), "no query in audit rows");
    assert_eq!(up.hits(), hits);
    app.assert_plaintext_absent(&[TOKEN], &[&audit, &conn]).await;
}

async fn paths_cannot_leave_the_base_url_and_redirects_are_not_followed(app: TestApp) {
    let elsewhere = Upstream::start("http://127.0.0.1:9/").await;
    let up = Upstream::start(&format!("{}/stolen", elsewhere.base)).await;
    proxied_integration(&app, "crm", &up.base, json!({"type": "bearer"}), json!({})).await;
    app.tenant("acme").await;
    app.post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    for target in [
        "/proxy/crm/../../admin",
        "/proxy/crm/x/../../admin",
        "/proxy/crm/%2e%2e/admin",
        "/proxy/crm/%2E%2E/%2E%2E/admin",
        "/proxy/crm/a%2fb",
        "/proxy/crm/a%5cb",
        "/proxy/crm/@evil.example/x",
        "/proxy/crm//evil.example/x",
        "/proxy/crm/http:%2F%2Fevil.example/x",
        "/proxy/crm/https:evil.example",
    ] {
        let status = raw_get(&app, target).await;
        assert_eq!(status, 400, "{target} must be refused");
    }
    assert_eq!(up.hits(), 0, "no escape attempt reached the upstream");
    // A redirect to another host comes back to the caller; Tessera does not follow it.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = browser
        .get(format!("{}/proxy/crm/redirect", app.base))
        .bearer_auth(ROOT_TOKEN)
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(elsewhere.hits(), 0, "the other host never saw the tenant's token");
    assert_eq!(raw_get(&app, "/proxy/crm/ok").await, 200);
}

async fn config_fields_can_be_injected_as_basic_auth_a_header_or_a_query_parameter(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    let schema = json!([{"key": "public_key", "type": "string"}, {"key": "secret_key", "type": "secret"}]);
    proxied_integration(
        &app,
        "langfuse",
        &up.base,
        json!({"type": "basic", "username": "config:public_key", "password": "config:secret_key"}),
        schema.clone(),
    )
    .await;
    proxied_integration(
        &app,
        "keyed",
        &up.base,
        json!({"type": "header", "name": "X-Api-Key", "prefix": "Key ", "from": "config:secret_key"}),
        schema.clone(),
    )
    .await;
    proxied_integration(
        &app,
        "queried",
        &up.base,
        json!({"type": "query", "name": "api_key", "from": "config:secret_key"}),
        schema,
    )
    .await;
    app.tenant("acme").await;
    for key in ["langfuse", "keyed", "queried"] {
        let r = app
            .put(
                &format!("/tenants/acme/integrations/{key}/config"),
                ROOT_TOKEN,
                json!({"config": {"public_key": "pk-lf-1", "secret_key": "sk-lf-secret-9"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let h = [("x-tenant-id", "acme")];
    assert_eq!(call(&app, Method::GET, "/proxy/langfuse/traces", ROOT_TOKEN, &h, "").await.0, StatusCode::OK);
    // base64("pk-lf-1:sk-lf-secret-9")
    assert_eq!(up.last()["headers"]["authorization"], "Basic cGstbGYtMTpzay1sZi1zZWNyZXQtOQ==");
    assert_eq!(call(&app, Method::GET, "/proxy/keyed/traces", ROOT_TOKEN, &h, "").await.0, StatusCode::OK);
    assert_eq!(up.last()["headers"]["x-api-key"], "Key sk-lf-secret-9");
    assert_eq!(call(&app, Method::GET, "/proxy/queried/traces?limit=5", ROOT_TOKEN, &h, "").await.0, StatusCode::OK);
    assert_eq!(up.last()["query"], "limit=5&api_key=sk-lf-secret-9");
    let audit = app.get("/audit?limit=200", ROOT_TOKEN).await;
    assert!(!audit.text.contains("sk-lf-secret-9"));
    app.assert_plaintext_absent(&["sk-lf-secret-9"], &[]).await;
}

/// Nothing reaches the upstream for a tunnel (`CONNECT`) or an echo
/// (`TRACE`), a caller's query parameter never shadows the injected one, and
/// a credential that cannot be sent in a header fails the call instead of
/// going out without it.
async fn tunnels_echoes_shadowed_parameters_and_unsendable_credentials_are_refused(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    let schema = json!([{"key": "secret_key", "type": "secret"}]);
    proxied_integration(&app, "crm", &up.base, json!({"type": "bearer"}), json!({})).await;
    proxied_integration(
        &app,
        "queried",
        &up.base,
        json!({"type": "query", "name": "api_key", "from": "config:secret_key"}),
        schema.clone(),
    )
    .await;
    proxied_integration(
        &app,
        "keyed",
        &up.base,
        json!({"type": "header", "name": "X-Api-Key", "from": "config:secret_key"}),
        schema.clone(),
    )
    .await;
    proxied_integration(
        &app,
        "bearer-config",
        &up.base,
        json!({"type": "bearer", "from": "config:secret_key"}),
        schema,
    )
    .await;
    app.tenant("acme").await;
    app.post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    let h = [("x-tenant-id", "acme")];

    // CONNECT and TRACE (any case) are answered by Tessera, never sent on.
    for method in ["TRACE", "trace", "TRACK"] {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, text, _) = call(&app, m, "/proxy/crm/echo", ROOT_TOKEN, &h, "").await;
        assert!(matches!(status.as_u16(), 400 | 405), "{method}: {status} {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method}: a JSON error: {text}"));
        assert!(body["error"]["code"].is_string(), "{text}");
    }
    for target in ["/proxy/crm/echo", "/proxy/crm"] {
        let status = raw_request(&app, "CONNECT", target).await;
        assert!(matches!(status, 400 | 405), "CONNECT {target}: {status}");
    }
    assert_eq!(up.hits(), 0, "no tunnel or echo reached the upstream: {:?}", up.seen.lock().expect("lock"));

    // With query auth the caller's parameters of that name are removed, whatever their case or encoding.
    let r = app
        .put("/tenants/acme/integrations/queried/config", ROOT_TOKEN, json!({"config": {"secret_key": "sk-q-77"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let path = "/proxy/queried/traces?api_key=mine&limit=5&API_KEY=x&api%5Fkey=y";
    let (status, text, _) = call(&app, Method::GET, path, ROOT_TOKEN, &h, "").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(up.last()["query"], "limit=5&api_key=sk-q-77");

    // A value with CR/LF cannot be a header: the call fails, naming the integration and the source, and nothing is sent.
    let evil = "abc\r\nX-Evil: 1";
    for key in ["keyed", "bearer-config"] {
        let r = app
            .put(
                &format!("/tenants/acme/integrations/{key}/config"),
                ROOT_TOKEN,
                json!({"config": {"secret_key": evil}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let before = up.hits();
        let (status, text, _) = call(&app, Method::GET, &format!("/proxy/{key}/traces"), ROOT_TOKEN, &h, "").await;
        assert_eq!(status, StatusCode::CONFLICT, "{key}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON error");
        assert_eq!(body["error"]["code"], "proxy_credential_invalid", "{text}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(key) && message.contains("config:secret_key"), "{text}");
        assert!(!text.contains("abc") && !text.contains("X-Evil"), "the value is never shown: {text}");
        assert_eq!(up.hits(), before, "{key}: nothing was sent without the credential");
    }
    let logs = app.logs();
    assert!(!logs.contains("X-Evil"), "the value is never logged");
}

async fn limits_and_failures_give_clear_answers(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    proxied_integration(&app, "crm", &up.base, json!({"type": "bearer"}), json!({})).await;
    proxied_integration(&app, "down", "http://127.0.0.1:9", json!({"type": "none"}), json!({})).await;
    app.tenant("acme").await;
    app.post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    app.put("/tenants/acme/integrations/down/config", ROOT_TOKEN, json!({"config": {}})).await;
    let h = [("x-tenant-id", "acme")];
    let (status, text, _) = call(&app, Method::POST, "/proxy/crm/upload", ROOT_TOKEN, &h, &"y".repeat(70_000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    // A chunked upload (no length) streams through whole when under the limit ...
    // (A fresh client: the 413 above closed its connection without reading the body.)
    let client = reqwest::Client::new();
    let chunks = futures::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![b'z'; 20_000])));
    let r = client
        .post(format!("{}/proxy/crm/upload", app.base))
        .bearer_auth(ROOT_TOKEN)
        .header("x-tenant-id", "acme")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(up.last()["body"].as_str().map(str::len), Some(60_000));
    // ... and is cut, not delivered whole, over it.
    let before = up.hits();
    let chunks = futures::stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![b'z'; 20_000])));
    let r = reqwest::Client::new()
        .post(format!("{}/proxy/crm/upload", app.base))
        .bearer_auth(ROOT_TOKEN)
        .header("x-tenant-id", "acme")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    assert!(r.map_or(true, |r| r.status() != StatusCode::OK), "an upload over the limit does not succeed");
    assert!(up.seen.lock().expect("lock")[before..].iter().all(|s| s["body"].as_str().map_or(0, str::len) < 100_000));
    let (status, text, _) = call(&app, Method::GET, "/proxy/crm/slow", ROOT_TOKEN, &h, "").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    assert!(text.contains("upstream_timeout"), "{text}");
    let (status, text, _) = call(&app, Method::GET, "/proxy/down/x", ROOT_TOKEN, &h, "").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    assert!(text.contains("upstream_unavailable"), "{text}");
    // The answer and the one log line name the host and the cause.
    assert!(text.contains("127.0.0.1:9 could not be reached: connection refused"), "{text}");
    let logs = app.logs();
    let lines: Vec<&str> =
        logs.lines().filter(|l| l.contains("/proxy/down/x") && (l.contains("WARN") || l.contains("ERROR"))).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("connection refused"), "{lines:?}");
    // Under the response limit the body streams through whole; over it the stream is cut.
    let (status, text, _) = call(&app, Method::GET, "/proxy/crm/big?bytes=900000", ROOT_TOKEN, &h, "").await;
    assert_eq!((status, text.len()), (StatusCode::OK, 900_000));
    let cut = app
        .client
        .get(format!("{}/proxy/crm/big?bytes=3000000", app.base))
        .bearer_auth(ROOT_TOKEN)
        .header("x-tenant-id", "acme")
        .send()
        .await
        .expect("head arrives");
    assert!(cut.bytes().await.is_err(), "an answer over the limit is cut, not delivered as if whole");
}

async fn a_refused_oauth_token_is_refreshed_and_the_call_retried_once(app: TestApp, p: OAuthProvider) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "crm", "name": "CRM", "authType": "oauth2",
            "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url, "clientId": p.client_id,
                      "clientSecret": p.client_secret, "pkce": true},
            "proxy": {"baseUrl": format!("{}/api", up.base), "auth": {"type": "bearer"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.tenant("acme").await;
    let start = app.get("/oauth/authorize/crm?tenant_id=acme", ROOT_TOKEN).await;
    let callback = p.approve(start.body["authorizationUrl"].as_str().expect("url")).await;
    let done = reqwest::get(callback).await.expect("callback");
    assert_eq!(done.status(), StatusCode::OK);
    let old = app.get("/tenants/acme/integrations/crm/resolved", ROOT_TOKEN).await.body["config"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    // The upstream stops accepting the token (revoked early, say).
    up.refused.lock().expect("lock").push(old.clone());
    let h = [("x-tenant-id", "acme")];
    let (status, text, _) = call(&app, Method::GET, "/proxy/crm/me", ROOT_TOKEN, &h, "").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(up.hits(), 2, "one refused call, one retry");
    assert_ne!(up.last()["headers"]["authorization"], format!("Bearer {old}"));
    assert_eq!(p.stats().await["refresh"], 1);
    // Refused again later: again exactly one refresh and one retry.
    let new = app.get("/tenants/acme/integrations/crm/resolved", ROOT_TOKEN).await.body["config"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    up.refused.lock().expect("lock").push(new);
    p.reset().await;
    let before = up.hits();
    let (status, _, _) = call(&app, Method::GET, "/proxy/crm/me", ROOT_TOKEN, &h, "").await;
    assert_eq!(status, StatusCode::OK, "the refreshed token is accepted");
    assert_eq!(up.hits() - before, 2);
    assert_eq!(p.stats().await["refresh"], 1);
    // An upstream that refuses every token: one refresh, one retry, then its 401 comes back.
    p.reset().await;
    up.refuse_all.store(true, std::sync::atomic::Ordering::SeqCst);
    let before = up.hits();
    let (status, _, _) = call(&app, Method::GET, "/proxy/crm/me", ROOT_TOKEN, &h, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(up.hits() - before, 2, "never more than one retry");
    assert_eq!(p.stats().await["refresh"], 1);
}

crate::on_both_databases!(
    the_tenant_credential_is_injected_and_nothing_of_the_caller_leaves,
    paths_cannot_leave_the_base_url_and_redirects_are_not_followed,
    tunnels_echoes_shadowed_parameters_and_unsendable_credentials_are_refused,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_fields_can_be_injected_on_sqlite() {
    config_fields_can_be_injected_as_basic_auth_a_header_or_a_query_parameter(TestApp::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_failures_on_sqlite() {
    let app =
        TestApp::start(Db::Sqlite, &[("TESSERA_PROXY_TIMEOUT", "1"), ("TESSERA_PROXY_MAX_RESPONSE_BYTES", "1000000")])
            .await;
    limits_and_failures_give_clear_answers(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_oauth_token_is_refreshed_on_sqlite() {
    let Some(p) = OAuthProvider::start().await else { return };
    let app =
        TestApp::start(Db::Sqlite, &[("TESSERA_ALLOW_LOOPBACK_HTTP", "true"), ("TESSERA_REFRESH_INTERVAL", "3600")])
            .await;
    a_refused_oauth_token_is_refreshed_and_the_call_retried_once(app, p).await;
}
