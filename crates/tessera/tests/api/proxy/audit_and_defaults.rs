//! The proxy's audit trail (written before the upstream is contacted, the
//! outcome after) and the default injection of an `oauth2` integration.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{call, proxied_integration, Upstream, TOKEN};
use crate::helpers::{Db, TestApp, ROOT_TOKEN};

/// The `proxy.call` events of the audit log, oldest first.
async fn proxy_events(app: &TestApp) -> Vec<Value> {
    let r = app.get("/audit?action=proxy.call&limit=100", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut events = r.body["events"].as_array().cloned().unwrap_or_default();
    events.sort_by_key(|e| e["seq"].as_i64());
    events
}

async fn a_call_is_audited_before_the_upstream_is_contacted(app: TestApp) {
    // An upstream that takes connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let held = Arc::new(Mutex::new(Vec::new()));
    let accepted = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            accepted.lock().expect("lock").push(socket);
        }
    });
    proxied_integration(&app, "silent", &base, json!({"type": "none"}), json!({})).await;
    proxied_integration(&app, "down", "http://127.0.0.1:9", json!({"type": "none"}), json!({})).await;
    app.tenant("acme").await;
    for key in ["silent", "down"] {
        let r = app.put(&format!("/tenants/acme/integrations/{key}/config"), ROOT_TOKEN, json!({"config": {}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let (client, url) = (app.client.clone(), format!("{}/proxy/silent/wait", app.base));
    let pending = tokio::spawn(async move {
        let r = client.get(url).bearer_auth(ROOT_TOKEN).header("x-tenant-id", "acme").send().await.expect("answer");
        (r.status(), r.text().await.unwrap_or_default())
    });
    // While the upstream holds the call, its event is already in the audit log.
    let deadline = Instant::now() + Duration::from_secs(2);
    while held.lock().expect("lock").is_empty() {
        assert!(Instant::now() < deadline, "the upstream was never contacted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = proxy_events(&app).await;
    assert!(!pending.is_finished(), "the upstream has not answered yet");
    let started = events
        .iter()
        .find(|e| e["resource"] == "proxy/silent/wait?method=GET")
        .cloned()
        .unwrap_or_else(|| panic!("no proxy.call event while the upstream holds the call: {events:?}"));
    assert_eq!((started["outcome"].as_str(), started["tenantId"].as_str()), (Some("started"), Some("acme")));
    // Then the call times out, and its outcome follows.
    let (status, text) = pending.await.expect("call");
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    assert!(text.contains("upstream_timeout"), "{text}");
    let events = proxy_events(&app).await;
    let outcome = events
        .iter()
        .find(|e| e["resource"].as_str().is_some_and(|r| r.starts_with("proxy/silent/wait?method=GET&status=none&ms=")))
        .unwrap_or_else(|| panic!("no outcome event: {events:?}"));
    assert_eq!(outcome["outcome"], "failure");
    assert!(outcome["seq"].as_i64() > started["seq"].as_i64());
    assert_eq!(outcome["requestId"], started["requestId"], "both events name the same request");

    // An upstream that cannot be reached: the call is audited all the same, before and after.
    let (status, text, _) = call(&app, Method::GET, "/proxy/down/x", ROOT_TOKEN, &[("x-tenant-id", "acme")], "").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    let events = proxy_events(&app).await;
    let down: Vec<&str> = events
        .iter()
        .filter(|e| e["resource"].as_str().is_some_and(|r| r.starts_with("proxy/down/x?")))
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert_eq!(down, ["started", "failure"], "{events:?}");
}

async fn an_oauth2_integration_without_named_auth_sends_its_access_token_as_bearer(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    let base = format!("{}/api", up.base);
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "crm", "name": "CRM", "authType": "oauth2", "proxy": {"baseUrl": base}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bearer = json!({"type": "bearer", "from": "credentials"});
    assert_eq!(r.body["proxy"]["auth"], bearer, "the answer says what is injected: {}", r.text);
    let shown = app.get("/integrations/crm", ROOT_TOKEN).await;
    assert_eq!(shown.body["proxy"]["auth"], bearer, "{}", shown.text);
    // An integration of another kind injects nothing unless told, and says so.
    proxied_integration(&app, "plain", &up.base, Value::Null, json!({})).await;
    assert_eq!(app.get("/integrations/plain", ROOT_TOKEN).await.body["proxy"]["auth"], json!({"type": "none"}));
    // An explicit none on an oauth2 integration is kept.
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "bare", "name": "Bare", "authType": "oauth2",
                   "proxy": {"baseUrl": base, "auth": {"type": "none"}}}),
        )
        .await;
    assert_eq!(r.body["proxy"]["auth"], json!({"type": "none"}), "{}", r.text);

    app.tenant("acme").await;
    let r = app.post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    assert!(r.status.is_success(), "{}", r.text);
    let (status, text, _) = call(&app, Method::GET, "/proxy/crm/me", ROOT_TOKEN, &[("x-tenant-id", "acme")], "").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(up.last()["headers"]["authorization"], format!("Bearer {TOKEN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_audited_before_the_upstream_is_contacted_on_sqlite() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_PROXY_TIMEOUT", "3")]).await;
    a_call_is_audited_before_the_upstream_is_contacted(app).await;
}

crate::on_both_databases!(an_oauth2_integration_without_named_auth_sends_its_access_token_as_bearer);
