//! Webhooks against a real receiver started by the test, which checks every
//! `Tessera-Signature` with the secret shown once: the events of seed 002's
//! rotation automation and the changes Tessera reports, retries with
//! backoff, the delivery log, validation and tenant isolation.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{Db, OAuthProvider, TestApp, ROOT_TOKEN};
use crate::proxy::Upstream;

crate::on_both_databases!(
    db:
    credential_events_arrive_signed_and_the_secret_is_shown_once,
    a_failing_receiver_gets_the_event_on_the_third_attempt,
    rotation_due_fires_once_per_write,
    old_finished_events_are_purged_with_their_log,
);

/// A receiver that records every delivery and can be told to fail (also
/// used by `openapi::answers`).
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicU32>,
    /// Answer 500 to every request.
    fail_all: Arc<AtomicBool>,
    pub(crate) url: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Got {
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
    /// What the receiver answered.
    status: u16,
}

impl Got {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks/tessera", listener.local_addr().expect("addr"));
        let me = Self { url, ..Self::default() };
        let state = me.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let state = state.clone();
            async move { state.answer(req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
        me
    }

    async fn answer(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default().to_vec();
        let fail = self.fail_all.load(Ordering::SeqCst)
            || self.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        let status = if fail { 500 } else { 200 };
        self.got.lock().expect("lock").push(Got { headers: parts.headers, body, status });
        (axum::http::StatusCode::from_u16(status).expect("status"), "ok").into_response()
    }

    /// Delivered (answered 200) events named `event`.
    fn delivered(&self, event: &str) -> Vec<Got> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|g| g.status == 200 && g.header("tessera-event") == event)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until `n` deliveries of `event` arrived, each checked against `secret`.
    pub(crate) async fn wait_for(&self, event: &str, n: usize, secret: &str) -> Vec<Got> {
        let started = Instant::now();
        loop {
            let got = self.delivered(event);
            if got.len() >= n {
                for g in &got {
                    verify(g, secret);
                }
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{event} x{n} did not arrive; got {:?}",
                self.all().iter().map(|g| g.header("tessera-event").to_owned()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Checks a delivery as a receiver should: recompute HMAC-SHA256(secret,
/// "<t>.<body>") and compare; the timestamp must be recent.
fn verify(g: &Got, secret: &str) {
    let header = g.header("tessera-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("bad Tessera-Signature {header:?}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&g.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, expected, "the signature does not verify");
    let t: i64 = t.parse().expect("unix seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((now - t).abs() < 120, "stale timestamp {t}");
    assert_eq!(g.header("content-type"), "application/json");
    let body = g.json();
    assert_eq!(g.header("tessera-delivery"), body["id"].as_str().expect("id"));
    assert_eq!(g.header("tessera-event"), body["event"].as_str().expect("event"));
    assert!(body["createdAt"].is_string() && body["data"].is_object(), "{body}");
}

async fn start(db: Db, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("TESSERA_WEBHOOK_INTERVAL", "1"),
        ("TESSERA_WEBHOOK_RETRY_BASE", "1"),
        // The receivers run on loopback; by default a webhook may not target this machine.
        ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
    ];
    env.extend_from_slice(extra);
    TestApp::start(db, &env).await
}

/// Creates a webhook as `token`; returns (id, secret).
async fn webhook(app: &TestApp, token: &str, tenant: &str, url: &str, events: &[&str]) -> (String, String) {
    let r = app.post(&format!("/tenants/{tenant}/webhooks"), token, json!({"url": url, "events": events})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let secret = r.body["secret"].as_str().expect("secret shown once").to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() >= 40, "{secret}");
    (r.body["id"].as_str().expect("id").to_owned(), secret)
}

async fn deliveries(app: &TestApp, tenant: &str, id: &str) -> Vec<Value> {
    let r = app.get(&format!("/tenants/{tenant}/webhooks/{id}/deliveries"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["deliveries"].as_array().expect("deliveries").clone()
}

async fn credential_events_arrive_signed_and_the_secret_is_shown_once(db: Db) {
    let app = start(db, &[]).await;
    let rx = Receiver::start().await;
    app.tenant("acme").await;
    app.integration("crm", json!([])).await;
    let admin = app.key("tenant_admin", Some("acme")).await;
    let (id, secret) = webhook(&app, &admin, "acme", &rx.url, &["credential.stored", "credential.revoked"]).await;

    let list = app.get("/tenants/acme/webhooks", &admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let hooks = list.body["webhooks"].as_array().expect("webhooks");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["id"], id.as_str());
    assert_eq!(hooks[0]["url"], rx.url.as_str());
    assert!(hooks[0].get("secret").is_none(), "{}", list.text);

    let (access, refresh) = ("crm-access-token-31337", "crm-refresh-token-31337");
    let r = app
        .post(
            "/tenants/acme/integrations/crm/credentials",
            &admin,
            json!({"accessToken": access, "refreshToken": refresh, "expiresIn": 3600, "scopes": ["read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let stored = rx.wait_for("credential.stored", 1, &secret).await;
    let body = stored[0].json();
    assert_eq!(body["tenantId"], "acme");
    assert_eq!(body["data"]["integration"], "crm");
    assert_eq!(body["data"]["hasRefreshToken"], true);
    assert_eq!(body["data"]["scopes"], json!(["read"]));
    assert!(body["data"]["expiresAt"].is_string(), "{body}");

    let r = app.delete("/tenants/acme/integrations/crm/credentials", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let revoked = rx.wait_for("credential.revoked", 1, &secret).await;
    assert_eq!(revoked[0].json()["data"]["integration"], "crm");

    // Not subscribed: no event.
    app.post("/tenants/acme/keys/rotate", ROOT_TOKEN, json!({})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rx.delivered("key.rotated").is_empty());

    for g in rx.all() {
        let text = String::from_utf8_lossy(&g.body).into_owned();
        assert!(!text.contains(access) && !text.contains(refresh) && !text.contains(&secret), "{text}");
    }
    let log = deliveries(&app, "acme", &id).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|d| d["statusCode"] == 200 && d["attempt"] == 1 && d["error"].is_null()), "{log:?}");
    assert_eq!(log[0]["event"], "credential.revoked");

    // Deleted: gone from the list, nothing more is sent.
    let r = app.delete(&format!("/tenants/acme/webhooks/{id}"), &admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.delete(&format!("/tenants/acme/webhooks/{id}"), &admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let after = app.get("/tenants/acme/webhooks", &admin).await;
    assert_eq!(after.body["webhooks"], json!([]));
    let audit = app.get("/audit?limit=1000", ROOT_TOKEN).await.text;
    assert!(audit.contains("webhook.create") && audit.contains("webhook.delete"));
    app.assert_plaintext_absent(&[&secret, access, refresh], &[&list, &after]).await;
}

async fn a_failing_receiver_gets_the_event_on_the_third_attempt(db: Db) {
    let app = start(db, &[]).await;
    let rx = Receiver::start().await;
    rx.fail_first.store(2, Ordering::SeqCst);
    app.tenant("acme").await;
    let (id, secret) = webhook(&app, ROOT_TOKEN, "acme", &rx.url, &["key.rotated"]).await;
    let r = app.post("/tenants/acme/keys/rotate", ROOT_TOKEN, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = rx.wait_for("key.rotated", 1, &secret).await;
    assert_eq!(got[0].json()["data"]["version"], 2);
    let all = rx.all();
    assert_eq!(all.len(), 3, "two failures, then the delivery");
    // One event: every attempt carries the same delivery id.
    assert!(all.iter().all(|g| g.header("tessera-delivery") == got[0].header("tessera-delivery")));
    // The receiver has the delivery a moment before Tessera records its answer.
    let started = Instant::now();
    let log = loop {
        let log = deliveries(&app, "acme", &id).await;
        if log.len() >= 3 || started.elapsed() > Duration::from_secs(10) {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attempts: Vec<(u64, Option<u64>)> =
        log.iter().map(|d| (d["attempt"].as_u64().expect("attempt"), d["statusCode"].as_u64())).collect();
    assert_eq!(attempts, vec![(3, Some(200)), (2, Some(500)), (1, Some(500))], "{log:?}");
    assert_eq!(log[1]["error"], "answered 500");
    let metrics = app.get("/metrics", ROOT_TOKEN).await.text;
    assert!(metrics.contains("tessera_webhook_deliveries_total{outcome=\"retry\"} 2"), "{metrics}");
    assert!(metrics.contains("tessera_webhook_deliveries_total{outcome=\"delivered\"} 1"), "{metrics}");
}

async fn rotation_due_fires_once_per_write(db: Db) {
    let app = start(db, &[]).await;
    let rx = Receiver::start().await;
    app.tenant("acme").await;
    let (_, secret) = webhook(&app, ROOT_TOKEN, "acme", &rx.url, &["secret.rotation_due"]).await;
    let value = "sk_live_rotate_me_998877";
    let r =
        app.put("/tenants/acme/secrets/stripe/key", ROOT_TOKEN, json!({"value": value, "rotateAfterDays": 30})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let meta = app.get("/tenants/acme/secrets/stripe/key?versions", ROOT_TOKEN).await;
    assert_eq!(meta.body["rotateAfterDays"], 30, "{}", meta.text);
    let r = app.put("/tenants/acme/secrets/other", ROOT_TOKEN, json!({"value": "x", "rotateAfterDays": -1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Not due yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rx.all().is_empty());
    // Written 31 days ago: due.
    let backdate = "UPDATE secrets SET updated_at = updated_at - 2678400000000 WHERE path = 'stripe/key'";
    app.sql(backdate).await;
    let got = rx.wait_for("secret.rotation_due", 1, &secret).await;
    let body = got[0].json();
    assert_eq!(body["data"]["path"], "stripe/key");
    assert_eq!(body["data"]["rotateAfterDays"], 30);
    // Once, not on every scan.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.delivered("secret.rotation_due").len(), 1);
    // A new write starts the clock again; due again, one more event.
    let r = app.put("/tenants/acme/secrets/stripe/key", ROOT_TOKEN, json!({"value": "sk_live_rotated_1"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.delivered("secret.rotation_due").len(), 1);
    app.sql(backdate).await;
    rx.wait_for("secret.rotation_due", 2, &secret).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.delivered("secret.rotation_due").len(), 2);
    for g in rx.all() {
        assert!(!String::from_utf8_lossy(&g.body).contains("sk_live"), "no secret value in a payload");
    }
    app.assert_plaintext_absent(&[&secret, value], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_max_attempts_a_delivery_is_failed_and_kept_in_the_log() {
    let app = start(Db::Sqlite, &[("TESSERA_WEBHOOK_MAX_ATTEMPTS", "2")]).await;
    let rx = Receiver::start().await;
    rx.fail_all.store(true, Ordering::SeqCst);
    app.tenant("acme").await;
    let (id, _) = webhook(&app, ROOT_TOKEN, "acme", &rx.url, &["key.rotated"]).await;
    app.post("/tenants/acme/keys/rotate", ROOT_TOKEN, json!({})).await;
    let started = Instant::now();
    while deliveries(&app, "acme", &id).await.len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "two attempts did not happen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let log = deliveries(&app, "acme", &id).await;
    assert_eq!(log.len(), 2, "no third attempt: {log:?}");
    assert_eq!(rx.all().len(), 2);
    let failed = app
        .sql_text(
            "SELECT CAST(COUNT(*) AS TEXT) FROM webhook_outbox WHERE failed_at IS NOT NULL AND delivered_at IS NULL",
        )
        .await;
    assert_eq!(failed, "1");
    let metrics = app.get("/metrics", ROOT_TOKEN).await.text;
    assert!(metrics.contains("tessera_webhook_deliveries_total{outcome=\"failed\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_changes_are_reported() {
    let app = start(Db::Sqlite, &[]).await;
    let rx = Receiver::start().await;
    let up = Upstream::start("http://127.0.0.1:9/").await;
    app.tenant("acme").await;
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "crm", "name": "crm", "proxy": {"baseUrl": format!("{}/api", up.base), "auth": {"type": "bearer"}},
                   "healthCheck": {"path": "/me", "intervalSeconds": 3600}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": "tok-acme-health"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (_, secret) = webhook(&app, ROOT_TOKEN, "acme", &rx.url, &["health.changed"]).await;
    let check = || app.post("/tenants/acme/integrations/crm/health-check", ROOT_TOKEN, json!({}));
    assert_eq!(check().await.body["healthStatus"], "healthy");
    let first = rx.wait_for("health.changed", 1, &secret).await;
    assert_eq!(first[0].json()["data"], json!({"integration": "crm", "previous": null, "status": "healthy"}));
    // Unchanged: no event.
    assert_eq!(check().await.body["healthStatus"], "healthy");
    up.refuse_all.store(true, Ordering::SeqCst);
    assert_eq!(check().await.body["healthStatus"], "unhealthy");
    let got = rx.wait_for("health.changed", 2, &secret).await;
    assert_eq!(got[1].json()["data"], json!({"integration": "crm", "previous": "healthy", "status": "unhealthy"}));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx.delivered("health.changed").len(), 2);
    app.assert_plaintext_absent(&[&secret, "tok-acme-health"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_webhooks() {
    let app = start(Db::Sqlite, &[]).await;
    app.tenant("acme").await;
    app.tenant("globex").await;
    let acme = app.key("tenant_admin", Some("acme")).await;
    let acme_reader = app.key("tenant_service", Some("acme")).await;
    let (theirs, _) = webhook(&app, ROOT_TOKEN, "globex", "https://hooks.globex.example/t", &["key.rotated"]).await;
    let body = json!({"url": "https://hooks.acme.example/t", "events": ["key.rotated"]});
    for r in [
        app.get("/tenants/globex/webhooks", &acme).await,
        app.post("/tenants/globex/webhooks", &acme, body.clone()).await,
        app.delete(&format!("/tenants/globex/webhooks/{theirs}"), &acme).await,
        app.get(&format!("/tenants/globex/webhooks/{theirs}/deliveries"), &acme).await,
        // Another tenant's webhook id under one's own tenant: no such webhook.
        app.delete(&format!("/tenants/acme/webhooks/{theirs}"), &acme).await,
        app.get(&format!("/tenants/acme/webhooks/{theirs}/deliveries"), &acme).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    }
    let r = app.post("/tenants/acme/webhooks", &acme_reader, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.get("/tenants/globex/webhooks", ROOT_TOKEN).await;
    assert_eq!(r.body["webhooks"].as_array().expect("list").len(), 1, "still there: {}", r.text);
    webhook(&app, &acme, "acme", "https://hooks.acme.example/t", &["key.rotated"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_unknown_events_are_refused() {
    // The default: no TESSERA_ALLOW_LOOPBACK_HTTP, so this machine is off limits too.
    let app = TestApp::start(Db::Sqlite, &[]).await;
    app.tenant("acme").await;
    for url in [
        "http://127.0.0.1:7300/admin",
        "https://localhost/t",
        "https://10.1.2.3/t",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd12::1]/t",
        "ftp://hooks.example.com/t",
        "https://user:pw@hooks.example.com/t",
        "http://hooks.example.com/t",
        "https://hooks.example.com/t#frag",
        "/relative",
        "",
    ] {
        let r = app.post("/tenants/acme/webhooks", ROOT_TOKEN, json!({"url": url, "events": ["key.rotated"]})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "invalid_webhook_url", "{}", r.text);
    }
    for events in [json!(["key.rotated", "secret.read"]), json!([])] {
        let r = app
            .post("/tenants/acme/webhooks", ROOT_TOKEN, json!({"url": "https://h.example/t", "events": events}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["error"]["code"], "invalid_events", "{}", r.text);
    }
    let r = app
        .post("/tenants/nobody/webhooks", ROOT_TOKEN, json!({"url": "https://h.example/t", "events": ["key.rotated"]}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app.get("/tenants/acme/webhooks", ROOT_TOKEN).await;
    assert_eq!(r.body["webhooks"], json!([]));
}

/// Internal addresses written in other forms: IPv6 ones that carry an
/// internal IPv4 address (NAT64, 6to4, IPv4-compatible, IPv4-mapped), and
/// multicast, broadcast, documentation and reserved ranges. Refused even
/// with loopback allowed: a translator's loopback is not this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_in_other_forms_and_reserved_ranges_are_refused() {
    let app = start(Db::Sqlite, &[]).await;
    app.tenant("acme").await;
    for url in [
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "https://[64:ff9b::7f00:1]/t",
        "http://[64:ff9b::7f00:1]:7300/t",
        "https://[64:ff9b:1::a00:1]/t",
        "https://[2002:7f00:1::]/t",
        "https://[2002:a9fe:a9fe::]/t",
        "https://[::127.0.0.1]/t",
        "http://[::127.0.0.1]:7300/t",
        "https://[::ffff:169.254.169.254]/t",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/t",
        "https://224.0.0.1/t",
        "https://[ff02::1]/t",
        "https://255.255.255.255/t",
        "https://240.0.0.1/t",
        "https://192.0.2.10/t",
        "https://198.51.100.10/t",
        "https://203.0.113.10/t",
        "https://[2001:db8::1]/t",
    ] {
        let r = app.post("/tenants/acme/webhooks", ROOT_TOKEN, json!({"url": url, "events": ["key.rotated"]})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "invalid_webhook_url", "{}", r.text);
    }
    // A public address, also in its NAT64 and 6to4 forms, is still fine.
    for url in ["https://93.184.215.14/t", "https://[64:ff9b::5db8:d70e]/t", "https://[2002:5db8:d70e::1]/t"] {
        webhook(&app, ROOT_TOKEN, "acme", url, &["key.rotated"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_is_reported() {
    let Some(p) = OAuthProvider::start().await else { return };
    let env = [("TESSERA_ALLOW_LOOPBACK_HTTP", "true"), ("TESSERA_REFRESH_INTERVAL", "3600")];
    let app = start(Db::Sqlite, &env).await;
    let rx = Receiver::start().await;
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "acme-crm", "name": "Acme CRM", "authType": "oauth2", "template": "generic",
                   "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url,
                             "clientId": p.client_id, "clientSecret": p.client_secret}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.tenant("acme").await;
    let (_, secret) = webhook(&app, ROOT_TOKEN, "acme", &rx.url, &["oauth.refresh_failed"]).await;
    let (access, refresh) = ("at-webhook-refresh-5150", "rt-webhook-refresh-5150");
    let r = app
        .post(
            "/tenants/acme/integrations/acme-crm/credentials",
            ROOT_TOKEN,
            json!({"accessToken": access, "refreshToken": refresh, "expiresIn": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.sql("UPDATE credentials SET expires_at = 0").await;
    p.fail_next("refresh_token", 400, 1).await;
    let r = app.get("/tenants/acme/integrations/acme-crm/resolved", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    let got = rx.wait_for("oauth.refresh_failed", 1, &secret).await;
    let data = &got[0].json()["data"];
    assert_eq!(data["integration"], "acme-crm", "{data}");
    assert_eq!(data["error"], "invalid_grant", "{data}");
    assert_eq!(data["attempt"], 1);
    assert_eq!(data["needsReauth"], true);
    app.assert_plaintext_absent(&[&secret, access, refresh], &[]).await;
}

/// A host name is checked where it leads, at delivery: one that resolves to
/// this machine (here the machine's own name, which resolves to a loopback or
/// private address) gets no connection, and the delivery log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_leading_to_this_machine_gets_no_delivery() {
    let name = std::process::Command::new("hostname").output().expect("hostname");
    let name = String::from_utf8(name.stdout).expect("utf-8").trim().to_owned();
    let resolved: Vec<_> = tokio::net::lookup_host((name.as_str(), 0)).await.expect("resolve").collect();
    let here = resolved
        .iter()
        .find(|a| a.ip().is_loopback() || matches!(a.ip(), std::net::IpAddr::V4(v4) if v4.is_private()))
        .unwrap_or_else(|| panic!("this test needs the machine's name ({name}) to resolve to itself: {resolved:?}"));
    // Listens where the name leads, to see whether anything connects.
    let listener = tokio::net::TcpListener::bind((here.ip(), 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicU32::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });

    // Loopback not allowed (the default): the name passes the URL check, not the delivery.
    let app =
        TestApp::start(Db::Sqlite, &[("TESSERA_WEBHOOK_INTERVAL", "1"), ("TESSERA_WEBHOOK_RETRY_BASE", "1")]).await;
    app.tenant("acme").await;
    app.integration("crm", json!([])).await;
    let url = format!("https://{name}:{port}/hook");
    let (id, _) = webhook(&app, ROOT_TOKEN, "acme", &url, &["credential.stored"]).await;
    let r = app
        .post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": "at-ssrf-7391"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let started = Instant::now();
    let log = loop {
        let log = deliveries(&app, "acme", &id).await;
        if !log.is_empty() {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no delivery attempt");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let error = log[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("may not reach"), "{log:?}");
    assert!(log[0]["statusCode"].is_null(), "{log:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no connection reached this machine");
}

async fn stored(app: &TestApp, token: &str) -> crate::helpers::Resp {
    app.post("/tenants/acme/integrations/crm/credentials", ROOT_TOKEN, json!({"accessToken": token})).await
}

/// Delivered (and failed) events are kept `TESSERA_WEBHOOK_RETENTION_DAYS`,
/// then deleted with their delivery log; pending ones are never.
async fn old_finished_events_are_purged_with_their_log(db: Db) {
    let mut app = start(db, &[]).await;
    let rx = Receiver::start().await;
    app.tenant("acme").await;
    app.integration("crm", json!([])).await;
    let (id, secret) = webhook(&app, ROOT_TOKEN, "acme", &rx.url, &["credential.stored"]).await;
    assert_eq!(stored(&app, "at-retention-1").await.status, StatusCode::CREATED);
    rx.wait_for("credential.stored", 1, &secret).await;
    // The delivery is logged once the receiver's answer is back.
    let started = Instant::now();
    while deliveries(&app, "acme", &id).await.len() != 1 {
        assert!(started.elapsed() < Duration::from_secs(10), "the delivery was not logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Delivered 31 days ago, as far as the table says.
    app.sql("UPDATE webhook_outbox SET delivered_at = delivered_at - CAST(2678400000000 AS BIGINT)").await;
    // A new process purges on its first scan; the recent event stays.
    app.restart().await;
    assert_eq!(stored(&app, "at-retention-2").await.status, StatusCode::CREATED);
    rx.wait_for("credential.stored", 2, &secret).await;
    let started = Instant::now();
    loop {
        let log = deliveries(&app, "acme", &id).await;
        if log.len() == 1 {
            assert_eq!(log[0]["statusCode"], 200, "{log:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the old delivery was not purged: {log:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_outbox").await;
    assert_eq!(left, "1");
}
