//! The audit log: what is recorded, that it holds no secrets, and that
//! tampering is detected online and offline.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_every_store;

async fn secret_reads_writes_and_config_changes_are_audited_without_values(app: TestApp) {
    app.tenant("acme").await;
    app.integration("svc", json!([{"key": "api_key", "type": "secret"}])).await;
    app.put("/tenants/acme/integrations/svc/config", ROOT_TOKEN, json!({"config": {"api_key": "audited-secret-1"}}))
        .await;
    app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": "audited-secret-2"})).await;
    app.get("/tenants/acme/secrets/s", ROOT_TOKEN).await;
    app.get("/tenants/acme/integrations/svc/resolved", ROOT_TOKEN).await;
    let r = app.get("/audit?tenantId=acme", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK);
    // Backends outside the database also record a durable "attempt" first.
    let events: Vec<&serde_json::Value> =
        r.body["events"].as_array().expect("events").iter().filter(|e| e["outcome"] != "attempt").collect();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["tenant.create", "config.update", "secret.write", "secret.read", "config.resolve"]);
    let e = events[3];
    assert_eq!(e["actor"], "root");
    assert_eq!(e["resource"], "tenants/acme/secrets/s");
    assert_eq!(e["outcome"], "success");
    assert!(e["requestId"].is_string() && e["clientIp"] == "127.0.0.1");
    let since = app.get("/audit?action=secret.write&since=2000-01-01T00:00:00Z", ROOT_TOKEN).await;
    let writes = since.body["events"].as_array().expect("events").iter().filter(|e| e["outcome"] == "success").count();
    assert_eq!(writes, 1);
    let future = app.get("/audit?since=2999-01-01T00:00:00Z", ROOT_TOKEN).await;
    assert_eq!(future.body["events"], json!([]));
    let bad = app.get("/audit?since=yesterday", ROOT_TOKEN).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    app.assert_plaintext_absent(&["audited-secret-1", "audited-secret-2"], &[&r]).await;
}

async fn the_chain_verifies_and_a_tampered_row_is_named_online_and_offline(mut app: TestApp) {
    app.tenant("acme").await;
    for i in 0..5 {
        app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": format!("v{i}")})).await;
    }
    let ok = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(ok.body["ok"], true, "{}", ok.text);
    assert_eq!(ok.body["checked"], ok.body["headSeq"]);
    app.sql("UPDATE audit_events SET outcome = 'denied' WHERE seq = 3").await;
    let broken = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(broken.body["ok"], false, "{}", broken.text);
    assert_eq!(broken.body["broken"]["seq"], 3);
    app.stop().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["audit", "verify"])
        .env_clear()
        .env("DATABASE_URL", app.env_value("DATABASE_URL").expect("url"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "a broken chain exits 1");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["broken"]["seq"], 3);
}

async fn removing_an_event_breaks_the_chain(app: TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    app.tenant("gamma").await;
    app.sql("DELETE FROM audit_events WHERE seq = 2").await;
    let r = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(r.body["ok"], false);
    assert!(r.body["broken"]["reason"].as_str().expect("reason").contains("removed"), "{}", r.text);
}

on_every_store!(
    secret_reads_writes_and_config_changes_are_audited_without_values,
    the_chain_verifies_and_a_tampered_row_is_named_online_and_offline,
    removing_an_event_breaks_the_chain,
);
