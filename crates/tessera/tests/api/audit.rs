//! The audit log: what is recorded, that it holds no secrets, and that
//! tampering is detected online and offline.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{Db, TestApp, ROOT_TOKEN};
use crate::{on_both_databases, on_every_store};

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
    // Offline, with the server's settings: the keyed hashes need the master key.
    let out = app.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "a broken chain exits 1: {}", String::from_utf8_lossy(&out.stderr));
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

/// Every event as the JSON array its hash covers, by seq.
async fn events(app: &TestApp) -> Vec<Value> {
    let cols = "seq, id, at, actor, actor_role, tenant_id, action, resource, outcome, request_id, client_ip, prev_hash";
    let sql = match app.db {
        Db::Sqlite => {
            format!("SELECT json_group_array(json_array({cols})) FROM (SELECT * FROM audit_events ORDER BY seq)")
        }
        Db::Postgres { .. } => {
            format!("SELECT json_agg(json_build_array({cols}) ORDER BY seq)::text FROM audit_events")
        }
    };
    serde_json::from_str::<Vec<Value>>(&app.sql_text(&sql).await).expect("rows")
}

/// What someone who can write the database but does not hold the master
/// key would do: edit an event, then recompute every hash from it on with
/// plain SHA-256 (the chain's documented form) and move the head.
async fn rewrite_and_rechain(app: &TestApp, seq: i64) {
    let mut prev: Option<String> = None;
    for mut e in events(app).await {
        let n = e[0].as_i64().expect("seq");
        if n < seq {
            prev = Some(app.sql_text(&format!("SELECT hash FROM audit_events WHERE seq = {n}")).await);
            continue;
        }
        if n == seq {
            e[8] = json!("denied");
        }
        if let Some(p) = &prev {
            e[11] = json!(p);
        }
        let hash = hex::encode(Sha256::digest(serde_json::to_vec(&e).expect("json")));
        let sql = format!(
            "UPDATE audit_events SET outcome = '{}', prev_hash = '{}', hash = '{hash}' WHERE seq = {n}",
            e[8].as_str().expect("outcome"),
            e[11].as_str().expect("prev")
        );
        app.sql(&sql).await;
        app.sql(&format!("UPDATE audit_head SET seq = {n}, hash = '{hash}' WHERE id = 1")).await;
        prev = Some(hash);
    }
}

async fn rewriting_events_and_recomputing_the_chain_without_the_master_key_is_detected(app: TestApp) {
    app.tenant("acme").await;
    for i in 0..4 {
        app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": format!("v{i}")})).await;
    }
    let head = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(head.body["ok"], true, "{}", head.text);
    let seq = head.body["headSeq"].as_i64().expect("head") - 2;
    rewrite_and_rechain(&app, seq).await;
    let r = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(r.body["ok"], false, "a rechained forgery must not verify: {}", r.text);
    assert_eq!(r.body["broken"]["seq"], seq, "{}", r.text);
}

async fn cutting_the_chain_short_is_detected_by_the_checkpoints_beside_the_data(mut app: TestApp) {
    app.tenant("acme").await;
    for i in 0..4 {
        app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": format!("v{i}")})).await;
    }
    let head = app.get("/audit/verify", ROOT_TOKEN).await.body["headSeq"].as_i64().expect("head");
    // The worker records the head within a second or two.
    let file = app.data_dir().join("audit-checkpoints.jsonl");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&file).unwrap_or_default().contains(&format!("\"seq\":{head}")) {
        assert!(started.elapsed() < Duration::from_secs(10), "no checkpoint of seq {head} was recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
    let out = app.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // Drop the last two events and move the head back: the chain itself
    // is a valid prefix, so only the checkpoint can tell.
    let keep = head - 2;
    let keep_hash = app.sql_text(&format!("SELECT hash FROM audit_events WHERE seq = {keep}")).await;
    app.sql(&format!("DELETE FROM audit_events WHERE seq > {keep}")).await;
    app.sql(&format!("UPDATE audit_head SET seq = {keep}, hash = '{keep_hash}' WHERE id = 1")).await;
    let out = app.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "a chain cut short must not verify");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let reason = report["broken"]["reason"].as_str().expect("reason");
    assert!(reason.contains("removed"), "{reason}");
    // A forged checkpoint line (no audit key) is refused too.
    std::fs::write(&file, "{\"seq\":1,\"hash\":\"00\",\"at\":\"2026-01-01T00:00:00.000Z\",\"mac\":\"00\"}\n")
        .expect("write");
    let out = app.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
}

mod checkpoints {
    use super::*;

    async fn with_checkpoints(db: Db) -> TestApp {
        TestApp::start(db, &[("TESSERA_AUDIT_CHECKPOINT_INTERVAL", "1")]).await
    }

    async fn cutting_the_chain_short_is_detected(db: Db) {
        cutting_the_chain_short_is_detected_by_the_checkpoints_beside_the_data(with_checkpoints(db).await).await;
    }

    crate::on_both_databases!(db: cutting_the_chain_short_is_detected);
}

mod keyed {
    use super::*;
    on_both_databases!(rewriting_events_and_recomputing_the_chain_without_the_master_key_is_detected);
}

on_every_store!(
    secret_reads_writes_and_config_changes_are_audited_without_values,
    the_chain_verifies_and_a_tampered_row_is_named_online_and_offline,
    removing_an_event_breaks_the_chain,
);
