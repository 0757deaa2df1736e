//! Tenants, bad input, keys, deletion, restart, master key faults.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_both_databases;
use crate::on_every_store;

async fn a_tenant_can_be_created_read_listed_and_deleted(app: TestApp) {
    let r = app.post("/tenants", ROOT_TOKEN, json!({"id": "acme-corp", "name": "Acme Corporation"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["id"], "acme-corp");
    assert_eq!(r.body["status"], "active");
    let r = app.get("/tenants/acme-corp", ROOT_TOKEN).await;
    assert_eq!(r.body["name"], "Acme Corporation");
    let r = app.get("/tenants", ROOT_TOKEN).await;
    let ids: Vec<&str> = r.body["tenants"].as_array().expect("list").iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["acme-corp"], "the reserved _platform tenant is not listed");
    let r = app.post("/tenants", ROOT_TOKEN, json!({"id": "acme-corp", "name": "Again"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["error"]["code"], "tenant_exists");
    assert_eq!(app.delete("/tenants/acme-corp", ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    let r = app.get("/tenants/acme-corp", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "tenant_not_found");
}

async fn malformed_tenant_ids_and_bodies_are_refused_with_clear_errors(app: TestApp) {
    for bad in ["Acme", "-acme", "_platform", "acme corp", "a/b", ""] {
        let r = app.post("/tenants", ROOT_TOKEN, json!({"id": bad, "name": "x"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "invalid_tenant_id");
        assert_eq!(r.body["error"]["field"], "id");
    }
    let long = "a".repeat(64);
    let r = app.post("/tenants", ROOT_TOKEN, json!({"id": long, "name": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.post("/tenants", ROOT_TOKEN, json!({"id": "ok", "name": "x", "extra": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"]["message"].as_str().expect("message").contains("unknown field"));
    let r = app.post("/tenants", ROOT_TOKEN, json!({"id": 5, "name": "x"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let raw = app
        .client
        .post(format!("{}/tenants", app.base))
        .bearer_auth(ROOT_TOKEN)
        .header("content-type", "application/json")
        .body("{\"id\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = raw.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "malformed_json");
    let huge = json!({"id": "big", "name": "x".repeat(70_000)});
    let r = app.post("/tenants", ROOT_TOKEN, huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "payload_too_large");
    assert_eq!(app.get("/tenants/big", ROOT_TOKEN).await.status, StatusCode::NOT_FOUND, "nothing half-written");
    assert_eq!(app.get("/tenants", ROOT_TOKEN).await.body["tenants"], json!([]));
}

async fn rotating_a_tenant_key_keeps_old_values_readable_and_new_writes_use_the_new_key(app: TestApp) {
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/old", ROOT_TOKEN, json!({"value": "written-under-v1"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.post("/tenants/acme/keys/rotate", ROOT_TOKEN, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["version"], 2);
    let keys = app.get("/tenants/acme/keys", ROOT_TOKEN).await;
    assert_eq!(keys.body["latestVersion"], 2);
    assert_eq!(keys.body["versions"].as_array().expect("versions").len(), 2);
    app.put("/tenants/acme/secrets/new", ROOT_TOKEN, json!({"value": "written-under-v2"})).await;
    let old_ct = app.sql_text("SELECT ciphertext FROM secret_versions WHERE path = 'old'").await;
    let new_ct = app.sql_text("SELECT ciphertext FROM secret_versions WHERE path = 'new'").await;
    assert!(old_ct.starts_with("tsr:v1:"), "{old_ct}");
    assert!(new_ct.starts_with("tsr:v2:"), "{new_ct}");
    assert_eq!(app.get("/tenants/acme/secrets/old", ROOT_TOKEN).await.body["value"], "written-under-v1");
    assert_eq!(app.get("/tenants/acme/secrets/new", ROOT_TOKEN).await.body["value"], "written-under-v2");
    let r = app.get("/audit?action=key.rotate", ROOT_TOKEN).await;
    assert_eq!(r.body["events"].as_array().expect("events").len(), 1);
}

async fn deleting_a_tenant_destroys_its_data_keys_and_rows(app: TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": "shredded-secret"})).await;
    app.put("/tenants/beta/secrets/s", ROOT_TOKEN, json!({"value": "kept-secret"})).await;
    assert_eq!(app.delete("/tenants/acme", ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    let n = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM data_keys WHERE tenant_id = 'acme'").await;
    assert_eq!(n, "0");
    let n = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM secret_versions WHERE tenant_id = 'acme'").await;
    assert_eq!(n, "0");
    assert_eq!(app.get("/tenants/acme/secrets/s", ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/tenants/beta/secrets/s", ROOT_TOKEN).await.body["value"], "kept-secret");
    assert_eq!(app.delete("/tenants/_platform", ROOT_TOKEN).await.status, StatusCode::CONFLICT);
    assert_eq!(app.delete("/tenants/acme", ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
}

async fn everything_stays_readable_after_a_restart(mut app: TestApp) {
    app.tenant("acme").await;
    app.integration("svc", json!([{"key": "base_url", "type": "string"}, {"key": "api_key", "type": "secret"}])).await;
    app.put(
        "/integrations/svc/defaults",
        ROOT_TOKEN,
        json!({"config": {"base_url": "https://d", "api_key": "restart-default"}}),
    )
    .await;
    app.put("/tenants/acme/secrets/a/b", ROOT_TOKEN, json!({"data": {"k": "restart-secret"}})).await;
    app.put("/tenants/acme/integrations/svc/config", ROOT_TOKEN, json!({"config": {}})).await;
    let tenant_key = app.key("tenant_service", Some("acme")).await;
    app.restart().await;
    let r = app.get("/tenants/acme/secrets/a/b", &tenant_key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["k"], "restart-secret");
    let r = app.get("/tenants/acme/integrations/svc/resolved", &tenant_key).await;
    assert_eq!(r.body["config"]["api_key"], "restart-default");
    assert_eq!(app.get("/audit/verify", ROOT_TOKEN).await.body["ok"], true);
}

async fn a_wrong_master_key_stops_start_up_with_one_clear_line(mut app: TestApp) {
    app.tenant("acme").await;
    app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": "v"})).await;
    app.stop().await;
    let other = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_clear()
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_DATA_DIR", app.data_dir())
        .env("DATABASE_URL", app.env_value("DATABASE_URL").expect("url"))
        .env("TESSERA_MASTER_KEY", other)
        .env("TESSERA_ROOT_TOKEN", ROOT_TOKEN)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("master key does not match"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

async fn malformed_settings_stop_start_up_naming_the_variable(app: TestApp) {
    for (var, value) in [
        ("TESSERA_MASTER_KEY", "too-short"),
        ("TESSERA_LISTEN", "not-an-address"),
        ("TESSERA_ROOT_TOKEN", "short"),
        ("DATABASE_URL", "mysql://x"),
        ("TESSERA_LOG", "debugg"),
        ("TESSERA_LOG_FORMAT", "yaml"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env_clear()
            .env("TESSERA_DATA_DIR", app.data_dir())
            .env(var, value)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{var}={value} must stop start-up");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "the running server is unaffected");
}

on_every_store!(
    a_tenant_can_be_created_read_listed_and_deleted,
    malformed_tenant_ids_and_bodies_are_refused_with_clear_errors,
    everything_stays_readable_after_a_restart,
    a_wrong_master_key_stops_start_up_with_one_clear_line,
    malformed_settings_stop_start_up_naming_the_variable,
);

/// These read the database tables of the `database` backend directly.
mod db_only {
    use super::*;
    on_both_databases!(
        rotating_a_tenant_key_keeps_old_values_readable_and_new_writes_use_the_new_key,
        deleting_a_tenant_destroys_its_data_keys_and_rows,
    );
}
