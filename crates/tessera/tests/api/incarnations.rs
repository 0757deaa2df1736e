//! A tenant deleted and created again under the same id is a new tenant:
//! nothing cached about the old one (its data keys, its API keys) may serve
//! the new one, on this replica or any other, and deleting takes effect at once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::{on_both_databases, on_every_store};

async fn write(app: &TestApp, path: &str, value: &str) {
    let r = app.put(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN, json!({"value": value})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn read(app: &TestApp, path: &str) -> String {
    let r = app.get(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["value"].as_str().expect("value").to_owned()
}

async fn a_tenant_created_again_keeps_every_acknowledged_write_across_a_restart(mut app: TestApp) {
    app.tenant("acme").await;
    write(&app, "old/KEY", "first-incarnation-value-4411").await;
    assert_eq!(read(&app, "old/KEY").await, "first-incarnation-value-4411");
    assert_eq!(app.delete("/tenants/acme", ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    app.tenant("acme").await;
    write(&app, "new/KEY", "second-incarnation-value-4412").await;
    assert_eq!(read(&app, "new/KEY").await, "second-incarnation-value-4412");
    let r = app.get("/tenants/acme/secrets/old/KEY", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the first incarnation's secret is gone: {}", r.text);
    // A restart empties every cache: what was acknowledged must still decrypt.
    app.restart().await;
    assert_eq!(read(&app, "new/KEY").await, "second-incarnation-value-4412");
    write(&app, "new/KEY", "second-incarnation-value-4413").await;
    assert_eq!(read(&app, "new/KEY").await, "second-incarnation-value-4413");
}

async fn a_deleted_tenants_keys_stop_working_at_once_also_for_a_tenant_created_again(app: TestApp) {
    app.tenant("acme").await;
    let admin = app.key("tenant_admin", Some("acme")).await;
    let service = app.key("tenant_service", Some("acme")).await;
    for key in [&admin, &service] {
        // Used once, so a cache would hold it.
        assert_eq!(app.get("/tenants/acme", key).await.status, StatusCode::OK);
    }
    assert_eq!(app.delete("/tenants/acme", ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    for key in [&admin, &service] {
        let r = app.get("/tenants/acme", key).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a deleted tenant's key still works: {}", r.text);
    }
    app.tenant("acme").await;
    for key in [&admin, &service] {
        let r = app.get("/tenants/acme/secrets", key).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the old tenant's key works on the new one: {}", r.text);
    }
}

async fn a_deleted_api_key_stops_working_at_once(app: TestApp) {
    app.tenant("acme").await;
    let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": "k", "role": "tenant_admin", "tenantId": "acme"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (id, key) = (r.body["id"].as_str().expect("id").to_owned(), r.body["key"].as_str().expect("key").to_owned());
    assert_eq!(app.get("/tenants/acme", &key).await.status, StatusCode::OK);
    assert_eq!(app.delete(&format!("/api-keys/{id}"), ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/tenants/acme", &key).await.status, StatusCode::UNAUTHORIZED);
}

on_every_store!(a_tenant_created_again_keeps_every_acknowledged_write_across_a_restart);

mod keys {
    use super::*;
    on_both_databases!(
        a_deleted_tenants_keys_stop_working_at_once_also_for_a_tenant_created_again,
        a_deleted_api_key_stops_working_at_once,
    );
}

/// Two replicas on one PostgreSQL: the second has the tenant's data key and
/// API key cached when the first deletes the tenant and creates it again.
/// Its next write must land under the new tenant's key (readable by the
/// first replica and after restarts), and the old API key must stop working
/// there within moments, not after a cache's time-to-live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_never_writes_under_a_deleted_tenants_cached_key_nor_honours_its_api_keys() {
    let Some(db) = TestApp::fresh_postgres().await else { return };
    let mut first = TestApp::start(db.clone(), &[]).await;
    let master = first.env_value("TESSERA_MASTER_KEY").expect("master key");
    let mut second = TestApp::start(db, &[("TESSERA_MASTER_KEY", &master)]).await;
    first.tenant("acme").await;
    let key = first.key("tenant_admin", Some("acme")).await;
    write(&second, "cached/KEY", "cached-key-value-5521").await;
    assert_eq!(read(&second, "cached/KEY").await, "cached-key-value-5521");
    assert_eq!(second.get("/tenants/acme", &key).await.status, StatusCode::OK);

    assert_eq!(first.delete("/tenants/acme", ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    let deleted = Instant::now();
    while second.get("/tenants/acme", &key).await.status != StatusCode::UNAUTHORIZED {
        assert!(deleted.elapsed() < Duration::from_secs(2), "the other replica still honours a deleted tenant's key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.tenant("acme").await;
    // At once, before any notice could matter: the write reads the tenant's
    // incarnation in its own transaction.
    write(&second, "fresh/KEY", "new-incarnation-value-5522").await;
    assert_eq!(read(&first, "fresh/KEY").await, "new-incarnation-value-5522");
    first.restart().await;
    second.restart().await;
    assert_eq!(read(&first, "fresh/KEY").await, "new-incarnation-value-5522");
    assert_eq!(read(&second, "fresh/KEY").await, "new-incarnation-value-5522");
    assert_eq!(second.get("/tenants/acme", &key).await.status, StatusCode::UNAUTHORIZED);
}
