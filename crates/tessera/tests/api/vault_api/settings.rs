//! KV v2's version settings are rules of the tenant secret itself, whoever
//! writes it: `max_versions` (set through `/v1/`) bounds the versions the
//! native API writes and really deletes the pruned ones, `cas_required`
//! refuses the native API's blind writes, `delete_version_after` hides an
//! expired version from native reads, the mount's settings hold for every
//! secret of the tenant, and settings go with the secret and the tenant.
//! Every change is audited; another tenant and a read-only key cannot make one.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::v1;
use crate::helpers::{contains, Db, TestApp, ROOT_TOKEN};

fn versions(meta: &Value) -> Vec<u64> {
    meta["versions"].as_array().expect("versions").iter().filter_map(|v| v["version"].as_u64()).collect()
}

fn count(sql_where: &str) -> String {
    format!("SELECT CAST(COUNT(*) AS TEXT) FROM {sql_where}")
}

async fn max_versions_bounds_native_writes_and_pruned_ciphertext_is_gone(app: TestApp) {
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let r = v1(&app, "POST", "secret/metadata/lim/x", Some(&key), None, Some(json!({"max_versions": 2}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let values = ["prune-value-one", "prune-value-two", "prune-value-three", "prune-value-four"];
    let mut first_ciphertext = String::new();
    for (n, value) in values.iter().enumerate() {
        let r = app.put("/tenants/acme/secrets/lim/x", &key, json!({"value": value})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if n == 0 {
            first_ciphertext = app
                .sql_text("SELECT ciphertext FROM secret_versions WHERE tenant_id = 'acme' AND path = 'lim/x' AND version = 1")
                .await;
        }
    }
    let meta = app.get("/tenants/acme/secrets/lim/x?versions", &key).await;
    assert_eq!((versions(&meta.body), meta.body["maxVersions"].clone()), (vec![3, 4], json!(2)), "{}", meta.text);
    // The pruned versions' rows and ciphertext are gone, not hidden.
    let rows = count("secret_versions WHERE tenant_id = 'acme' AND path = 'lim/x'");
    assert_eq!(app.sql_text(&rows).await, "2");
    assert!(first_ciphertext.starts_with("tsr:v"), "{first_ciphertext}");
    let holding = count(&format!("secret_versions WHERE ciphertext = '{first_ciphertext}'"));
    assert_eq!(app.sql_text(&holding).await, "0");
    if matches!(app.db, Db::Postgres { .. }) {
        // A logical dump of every table: nothing of it anywhere.
        assert!(!contains(&app.storage_bytes().await, first_ciphertext.as_bytes()), "pruned ciphertext in the dump");
    }
    let r = app.get("/tenants/acme/secrets/lim/x?version=1", &key).await;
    assert_eq!((r.status, r.body["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("version_not_found")));
    let r = v1(&app, "GET", "secret/data/lim/x?version=2", Some(&key), None, None).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::NOT_FOUND, json!({"errors": []})));
    let r = v1(&app, "GET", "secret/metadata/lim/x", Some(&key), None, None).await;
    assert_eq!(
        (r.body["data"]["oldest_version"].clone(), r.body["data"]["current_version"].clone()),
        (json!(3), json!(4)),
        "{}",
        r.text
    );
    // The mount's number holds for a secret with none of its own, and the larger of the two wins.
    let r = v1(&app, "POST", "secret/config", Some(&key), None, Some(json!({"max_versions": 3}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for n in 0..4 {
        let r = app.put("/tenants/acme/secrets/lim/y", &key, json!({"value": format!("mount-kept-{n}")})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let meta = app.get("/tenants/acme/secrets/lim/y?versions", &key).await;
    assert_eq!((versions(&meta.body), meta.body["maxVersions"].clone()), (vec![2, 3, 4], json!(3)), "{}", meta.text);
    let r = app.put("/tenants/acme/secrets/lim/x", &key, json!({"value": "prune-value-five"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let meta = app.get("/tenants/acme/secrets/lim/x?versions", &key).await;
    assert_eq!(versions(&meta.body), vec![3, 4, 5], "max(2, 3) versions: {}", meta.text);
    let mut secrets = values.to_vec();
    secrets.push("prune-value-five");
    app.assert_plaintext_absent(&secrets, &[&meta]).await;
}

async fn check_and_set_required_refuses_native_blind_writes(app: TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let reader = app.key("tenant_service", Some("acme")).await;
    let beta = app.key("tenant_admin", Some("beta")).await;
    let r = v1(&app, "POST", "secret/metadata/cas/x", Some(&key), None, Some(json!({"cas_required": true}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/cas/x", &key, json!({"value": "cas-blind"})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("cas_required")),
        "{}",
        r.text
    );
    let r = app.put("/tenants/acme/secrets/cas/x", &key, json!({"value": "cas-first", "cas": 0})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/cas/x", &key, json!({"value": "cas-second", "cas": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A rollback replaces the version it read, as `kv rollback` does with check-and-set.
    let r = app.post("/tenants/acme/secrets/cas/x:rollback", &key, json!({"version": 1})).await;
    assert_eq!((r.status, r.body["version"].clone()), (StatusCode::OK, json!(3)), "{}", r.text);
    // The mount's cas_required holds for every secret of the tenant, and only of that tenant.
    let r = v1(&app, "POST", "secret/config", Some(&key), None, Some(json!({"cas_required": true}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/cas/y", &key, json!({"value": "cas-mount"})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("cas_required")),
        "{}",
        r.text
    );
    let r = app.put("/tenants/beta/secrets/cas/y", &beta, json!({"value": "cas-other-tenant"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Turning it off for a secret the mount requires it of is ignored, with Vault's warning.
    let r = v1(&app, "POST", "secret/metadata/cas/y", Some(&key), None, Some(json!({"cas_required": false}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["warnings"][0].as_str().is_some_and(|w| w.contains("mandated by backend config")), "{}", r.text);
    let r = app.put("/tenants/acme/secrets/cas/y", &key, json!({"value": "cas-mount"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // A read-only key reads the settings but cannot change them; another tenant cannot reach them.
    let r = v1(&app, "GET", "secret/config", Some(&reader), None, None).await;
    assert_eq!((r.status, r.body["data"]["cas_required"].clone()), (StatusCode::OK, json!(true)), "{}", r.text);
    for (path, body) in
        [("secret/config", json!({"cas_required": false})), ("secret/metadata/cas/x", json!({"max_versions": 1}))]
    {
        let r = v1(&app, "POST", path, Some(&reader), None, Some(body.clone())).await;
        assert_eq!((r.status, r.body.clone()), (StatusCode::FORBIDDEN, json!({"errors": ["permission denied"]})));
        let r = v1(&app, "POST", path, Some(&beta), Some("acme"), Some(body)).await;
        assert_eq!((r.status, r.body.clone()), (StatusCode::FORBIDDEN, json!({"errors": ["permission denied"]})));
    }
    let r = v1(&app, "GET", "secret/config", Some(&beta), None, None).await;
    assert_eq!(r.body["data"]["cas_required"], json!(false), "beta's mount is its own: {}", r.text);
    // Each change is audited.
    let audit = app.get("/audit?limit=1000", ROOT_TOKEN).await;
    assert!(audit.text.contains("tenants/acme/secrets?config"), "{}", audit.text);
    assert!(audit.text.contains("tenants/acme/secrets/cas/x?metadata"), "{}", audit.text);
    app.assert_plaintext_absent(&["cas-blind", "cas-first", "cas-second", "cas-mount", "cas-other-tenant"], &[]).await;
}

async fn delete_version_after_hides_expired_versions_from_native_reads(app: TestApp) {
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let body = json!({"delete_version_after": "1s"});
    let r = v1(&app, "POST", "secret/metadata/brief/x", Some(&key), None, Some(body)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/brief/x", &key, json!({"data": {"k": "brief-value"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get("/tenants/acme/secrets/brief/x", &key).await;
    assert_eq!(r.body["data"], json!({"k": "brief-value"}), "readable until its deletion time: {}", r.text);
    let r = v1(&app, "GET", "secret/data/brief/x", Some(&key), None, None).await;
    assert!(r.body["data"]["metadata"]["deletion_time"].as_str().is_some_and(|t| !t.is_empty()), "{}", r.text);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = app.get("/tenants/acme/secrets/brief/x", &key).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("version_deleted")),
        "{}",
        r.text
    );
    let r = v1(&app, "GET", "secret/data/brief/x", Some(&key), None, None).await;
    assert_eq!((r.status, r.body["data"]["data"].clone()), (StatusCode::NOT_FOUND, Value::Null), "{}", r.text);
    // Undeleting gives it a new deletion time, as in Vault.
    let r = app.post("/tenants/acme/secrets/brief/x:undelete", &key, json!({"versions": [1]})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get("/tenants/acme/secrets/brief/x", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.assert_plaintext_absent(&["brief-value"], &[]).await;
}

async fn settings_go_with_the_secret_and_the_tenant(app: TestApp) {
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let settings = json!({"max_versions": 3, "cas_required": true, "delete_version_after": "2h"});
    let r = v1(&app, "POST", "secret/metadata/gone/x", Some(&key), None, Some(settings)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = v1(&app, "POST", "secret/config", Some(&key), None, Some(json!({"max_versions": 4}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = v1(&app, "DELETE", "secret/metadata/gone/x", Some(&key), None, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = v1(&app, "POST", "secret/data/gone/x", Some(&key), None, Some(json!({"data": {"k": "gone-value"}}))).await;
    assert_eq!((r.status, r.body["data"]["deletion_time"].clone()), (StatusCode::OK, json!("")), "{}", r.text);
    let r = v1(&app, "GET", "secret/metadata/gone/x", Some(&key), None, None).await;
    let shown = &r.body["data"];
    assert_eq!(
        (shown["max_versions"].clone(), shown["cas_required"].clone(), shown["delete_version_after"].clone()),
        (json!(0), json!(false), json!("0s")),
        "a secret made again starts with no settings: {}",
        r.text
    );
    assert_eq!(app.sql_text(&count("kv_configs WHERE tenant_id = 'acme'")).await, "1");
    let r = app.delete("/tenants/acme", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.sql_text(&count("kv_configs WHERE tenant_id = 'acme'")).await, "0");
    assert_eq!(app.sql_text(&count("secrets WHERE tenant_id = 'acme'")).await, "0");
}

crate::on_both_databases!(
    max_versions_bounds_native_writes_and_pruned_ciphertext_is_gone,
    check_and_set_required_refuses_native_blind_writes,
    delete_version_after_hides_expired_versions_from_native_reads,
    settings_go_with_the_secret_and_the_tenant,
);

/// The `file` backend keeps no settings: asking for any is a clear 400,
/// and the defaults clients send with every metadata write are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_without_settings_refuse_them_and_accept_the_defaults() {
    let app = TestApp::start(Db::Sqlite, &[("CREDENTIAL_BACKEND", "file")]).await;
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let r = v1(&app, "POST", "secret/metadata/f/x", Some(&key), None, Some(json!({"max_versions": 2}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["errors"][0].as_str().is_some_and(|e| e.contains("database credential backend")), "{}", r.text);
    let r = v1(&app, "POST", "secret/config", Some(&key), None, Some(json!({"cas_required": true}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let defaults = json!({"max_versions": 0, "cas_required": false, "delete_version_after": "0s"});
    let r = v1(&app, "POST", "secret/metadata/f/x", Some(&key), None, Some(defaults.clone())).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = v1(&app, "POST", "secret/config", Some(&key), None, Some(defaults)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = v1(&app, "GET", "secret/config", Some(&key), None, None).await;
    assert_eq!(
        r.body["data"],
        json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 0}),
        "{}",
        r.text
    );
}
