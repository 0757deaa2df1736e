//! The cache of connection views (`TESSERA_VIEW_CACHE_SECONDS`): a write
//! through any replica is seen by the next read, an outside write (an
//! offline command, SQL) within the time-to-live.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

const RESOLVED: &str = "/tenants/acme/integrations/crm/resolved";

async fn connected(app: &TestApp, api_key: &str) {
    app.integration("crm", json!([{"key": "base_url", "type": "string"}, {"key": "api_key", "type": "secret"}])).await;
    app.tenant("acme").await;
    let r = app.put("/integrations/crm/defaults", ROOT_TOKEN, json!({"config": {"base_url": "https://one"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    set_key(app, api_key).await;
}

async fn set_key(app: &TestApp, api_key: &str) {
    let r = app.put("/tenants/acme/integrations/crm/config", ROOT_TOKEN, json!({"config": {"api_key": api_key}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn resolved_key(app: &TestApp, token: &str) -> String {
    let r = app.get(RESOLVED, token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["config"]["api_key"].as_str().expect("api_key").to_owned()
}

/// Every read right after a write through the API shows the write, though
/// each read before it filled the cache.
async fn a_write_is_seen_by_the_very_next_read(app: TestApp) {
    connected(&app, "sk-view-cache-first-7301").await;
    let service = app.key("tenant_service", Some("acme")).await;
    for _ in 0..3 {
        assert_eq!(resolved_key(&app, &service).await, "sk-view-cache-first-7301");
    }
    set_key(&app, "sk-view-cache-second-7302").await;
    assert_eq!(resolved_key(&app, &service).await, "sk-view-cache-second-7302");

    let r = app.put("/integrations/crm/defaults", ROOT_TOKEN, json!({"config": {"base_url": "https://two"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(RESOLVED, &service).await;
    assert_eq!(r.body["config"]["base_url"], "https://two", "{}", r.text);

    // A rotated data key: new writes use it, the cached (older) ciphertext stays readable.
    let r = app.post("/tenants/acme/keys/rotate", ROOT_TOKEN, json!({})).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(resolved_key(&app, &service).await, "sk-view-cache-second-7302");
    set_key(&app, "sk-view-cache-third-7303").await;
    assert_eq!(resolved_key(&app, &service).await, "sk-view-cache-third-7303");

    let r =
        app.put("/tenants/acme/integrations/crm/config", ROOT_TOKEN, json!({"config": {}, "isEnabled": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(RESOLVED, &service).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a disabled connection is refused at once: {}", r.text);

    let r = app.delete("/tenants/acme", ROOT_TOKEN).await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app.get(RESOLVED, ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a deleted tenant's view is gone at once: {}", r.text);

    // The cache holds ciphertext only: no plaintext reached logs or storage.
    app.assert_plaintext_absent(
        &["sk-view-cache-first-7301", "sk-view-cache-second-7302", "sk-view-cache-third-7303"],
        &[],
    )
    .await;
}

crate::on_both_databases!(a_write_is_seen_by_the_very_next_read);

/// A write behind the service's back (here SQL; in practice an offline
/// command on the same database) shows once the time-to-live is over, not
/// before: the reads in between are served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_write_shows_within_the_time_to_live() {
    let ttl = Duration::from_secs(3);
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_VIEW_CACHE_SECONDS", "3")]).await;
    connected(&app, "sk-view-cache-outside-7304").await;
    let filled = Instant::now();
    let r = app.get(RESOLVED, ROOT_TOKEN).await;
    assert_eq!(r.body["config"]["base_url"], "https://one", "{}", r.text);
    app.sql("UPDATE integrations SET defaults = '{\"base_url\":\"https://outside\"}' WHERE integration_key = 'crm'")
        .await;
    let r = app.get(RESOLVED, ROOT_TOKEN).await;
    if filled.elapsed() < ttl {
        assert_eq!(r.body["config"]["base_url"], "https://one", "served from the cache: {}", r.text);
    }
    loop {
        let r = app.get(RESOLVED, ROOT_TOKEN).await;
        if r.body["config"]["base_url"] == "https://outside" {
            break;
        }
        assert!(filled.elapsed() < ttl + Duration::from_secs(2), "the outside write never showed: {}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(filled.elapsed() >= ttl - Duration::from_millis(100), "shown before the time-to-live was over");
}

/// Replicas on one PostgreSQL tell each other about writes (NOTIFY), so a
/// cached view on one replica follows a write on another within moments,
/// far inside a long time-to-live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_seen_on_another_at_once() {
    let Some(db) = TestApp::fresh_postgres().await else { return };
    let vars = [("TESSERA_VIEW_CACHE_SECONDS", "300")];
    let first = TestApp::start(db.clone(), &vars).await;
    let master = first.env_value("TESSERA_MASTER_KEY").expect("master key");
    let second = TestApp::start(db, &[vars[0], ("TESSERA_MASTER_KEY", &master)]).await;
    connected(&first, "sk-view-cache-replica-7305").await;
    for _ in 0..3 {
        assert_eq!(resolved_key(&second, ROOT_TOKEN).await, "sk-view-cache-replica-7305");
    }
    set_key(&first, "sk-view-cache-replica-7306").await;
    let written = Instant::now();
    while resolved_key(&second, ROOT_TOKEN).await != "sk-view-cache-replica-7306" {
        assert!(written.elapsed() < Duration::from_secs(5), "the other replica kept its cached view");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = first.delete("/tenants/acme", ROOT_TOKEN).await;
    assert!(r.status.is_success(), "{}", r.text);
    let deleted = Instant::now();
    while second.get(RESOLVED, ROOT_TOKEN).await.status != StatusCode::NOT_FOUND {
        assert!(deleted.elapsed() < Duration::from_secs(5), "the other replica still served a deleted tenant");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
