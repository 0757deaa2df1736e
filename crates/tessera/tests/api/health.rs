//! Integration health through the proxy path: one check now, the worker,
//! seed 000's statuses and seed 001's admin view.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::proxy::Upstream;

async fn register(app: &TestApp, key: &str, base: &str, check: Value) {
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": key, "name": key, "category": "crm",
            "proxy": {"baseUrl": format!("{base}/api"), "auth": {"type": "bearer"}}, "healthCheck": check}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn connect(app: &TestApp, tenant: &str, key: &str) {
    let r = app
        .post(
            &format!("/tenants/{tenant}/integrations/{key}/credentials"),
            ROOT_TOKEN,
            json!({"accessToken": format!("tok-{tenant}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn check(app: &TestApp, tenant: &str, key: &str) -> Value {
    let r = app.post(&format!("/tenants/{tenant}/integrations/{key}/health-check"), ROOT_TOKEN, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn checks_judge_answers_and_the_admin_view_counts_them(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    register(&app, "crm", &up.base, json!({"path": "/me", "slowMs": 1500, "intervalSeconds": 3600})).await;
    register(&app, "half", &up.base, json!({"path": "/status/404", "intervalSeconds": 3600})).await;
    register(&app, "slow", &up.base, json!({"path": "/slow", "slowMs": 100, "intervalSeconds": 3600})).await;
    for t in ["acme", "globex"] {
        app.tenant(t).await;
    }
    for key in ["crm", "half", "slow"] {
        connect(&app, "acme", key).await;
    }
    app.put("/tenants/globex/integrations/crm/config", ROOT_TOKEN, json!({"config": {}})).await;

    let ok = check(&app, "acme", "crm").await;
    assert_eq!(ok["healthStatus"], "healthy", "{ok}");
    assert_eq!(ok["statusCode"], 200);
    assert_eq!(up.seen.lock().expect("lock").last().expect("probe")["headers"]["authorization"], "Bearer tok-acme");
    assert_eq!(check(&app, "acme", "half").await["healthStatus"], "degraded");
    assert_eq!(check(&app, "acme", "slow").await["healthStatus"], "degraded");
    // No credentials: the connection cannot work.
    let none = check(&app, "globex", "crm").await;
    assert_eq!(none["healthStatus"], "unhealthy", "{none}");
    assert_eq!(none["detail"], "credentials_not_found");
    // The upstream starts refusing the token.
    up.refuse_all.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = check(&app, "acme", "crm").await;
    assert_eq!(refused["healthStatus"], "unhealthy");
    assert_eq!(refused["statusCode"], 401);

    let conn = app.get("/tenants/acme/integrations/crm", ROOT_TOKEN).await;
    assert_eq!(conn.body["healthStatus"], "unhealthy");
    assert!(conn.body["lastHealthCheck"].is_string());
    let all = app.get("/admin/tenants/health", ROOT_TOKEN).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["totalTenants"], 2);
    assert_eq!(all.body["totalIntegrations"], 4);
    assert_eq!(all.body["healthy"], 0);
    assert_eq!(all.body["unhealthy"], 2);
    assert_eq!(all.body["degraded"], 2);
    let acme = all.body["details"].as_array().expect("details").iter().find(|d| d["tenantId"] == "acme").cloned();
    assert_eq!(acme.expect("acme")["integrations"]["half"], "degraded");
    let tenant_admin = app.key("tenant_admin", Some("acme")).await;
    assert_eq!(app.get("/admin/tenants/health", &tenant_admin).await.status, StatusCode::FORBIDDEN);
    let other = app.post("/tenants/globex/integrations/crm/health-check", &tenant_admin, json!({})).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let audit = app.get("/audit?action=health.check&limit=50", ROOT_TOKEN).await;
    assert!(audit.text.contains("health?status=unhealthy&changed=true"), "{}", audit.text);
    app.assert_plaintext_absent(&["tok-acme"], &[&all, &audit]).await;
}

async fn the_worker_checks_connections_on_their_interval(app: TestApp) {
    let up = Upstream::start("http://127.0.0.1:9/").await;
    register(&app, "crm", &up.base, json!({"path": "/me", "intervalSeconds": 3600})).await;
    app.tenant("acme").await;
    connect(&app, "acme", "crm").await;
    let started = Instant::now();
    loop {
        let conn = app.get("/tenants/acme/integrations/crm", ROOT_TOKEN).await;
        if conn.body["healthStatus"] == "healthy" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the worker never checked: {}", conn.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Checked once per interval, however many scans run meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(up.hits(), 1);
}

crate::on_both_databases!(with crate::helpers::app_with:
    checks_judge_answers_and_the_admin_view_counts_them("TESSERA_PROXY_TIMEOUT" = "5", "TESSERA_HEALTH_SCAN_INTERVAL" = "3600"),
    the_worker_checks_connections_on_their_interval("TESSERA_HEALTH_SCAN_INTERVAL" = "1"),
);
