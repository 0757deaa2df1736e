//! `GET /metrics` (Prometheus text, no tenant ids) and per-caller rate limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

async fn metrics_count_requests_by_route_and_show_the_gauges(app: TestApp) {
    app.tenant("acme-metrics-tenant").await;
    app.integration("notion", json!({})).await;
    let stored = app
        .post(
            "/tenants/acme-metrics-tenant/integrations/notion/credentials",
            ROOT_TOKEN,
            json!({"accessToken": "tok-metrics-1"}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::CREATED);
    app.get("/tenants/acme-metrics-tenant/integrations/notion/resolved", ROOT_TOKEN).await;
    app.get("/tenants/nobody/integrations", ROOT_TOKEN).await;
    // No token needed, like /healthz.
    let r = app.client.get(format!("{}/metrics", app.base)).send().await.expect("metrics");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    let text = r.text().await.expect("text");
    for line in [
        r#"tessera_http_requests_total{route="/tenants/{tenant_id}/integrations/{key}/resolved",method="GET",status="200"} 1"#,
        r#"tessera_http_requests_total{route="/tenants/{tenant_id}/integrations",method="GET",status="404"} 1"#,
        "tessera_tenants 1",
        "tessera_credentials 1",
        "tessera_refresh_queue 0",
        r#"tessera_connections{health="unknown"} 1"#,
        r#"tessera_secret_operations_total{kind="write",backend="database"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    assert!(text.contains("tessera_http_request_duration_seconds_bucket"), "latency histograms");
    assert!(!text.contains("acme-metrics-tenant") && !text.contains("nobody"), "no tenant id in any label");
}

async fn a_caller_over_its_rate_limit_gets_429_with_retry_after(app: TestApp) {
    let other = app.key("auditor", None).await;
    // Let the root caller's bucket fill up again after creating that key.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get("/tenants", ROOT_TOKEN).await);
    }
    let ok = statuses.iter().filter(|r| r.status == StatusCode::OK).count();
    let limited: Vec<_> = statuses.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(
        ok == 3 && limited.len() == 3,
        "a burst of 3 passes, then 429: {:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(limited[0].body["error"]["code"], "rate_limited");
    let r = app.client.get(format!("{}/tenants", app.base)).bearer_auth(ROOT_TOKEN).send().await.expect("answer");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // Another caller has its own bucket.
    assert_eq!(app.get("/tenants", &other).await.status, StatusCode::OK);
    // After the wait the caller may go on.
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(app.get("/tenants", ROOT_TOKEN).await.status, StatusCode::OK);
}

crate::on_both_databases!(metrics_count_requests_by_route_and_show_the_gauges);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_on_sqlite() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_RATE_LIMIT", "1"), ("TESSERA_RATE_LIMIT_BURST", "3")]).await;
    a_caller_over_its_rate_limit_gets_429_with_retry_after(app).await;
}

#[tokio::test]
async fn every_documented_counter_is_listed_from_the_start() {
    let app = TestApp::sqlite().await;
    let text = app.get("/metrics", ROOT_TOKEN).await.text;
    for line in [
        "tessera_secret_operations_total{kind=\"read\",backend=\"database\"} 0",
        "tessera_secret_operations_total{kind=\"write\",backend=\"database\"} 0",
        "tessera_token_refresh_attempts_total 0",
        "tessera_token_refresh_failures_total 0",
        "tessera_webhook_deliveries_total{outcome=\"delivered\"} 0",
        "tessera_connections_refused_total{reason=\"total\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} is not listed:\n{text}");
    }
}
