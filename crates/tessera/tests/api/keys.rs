//! Master-key rotation: every data key rewrapped, values untouched, reads
//! served throughout, the old key refused afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_both_databases;

const NEW_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

async fn rotating_the_master_key_rewraps_every_data_key_while_reads_go_on(mut app: TestApp) {
    // Every read unwraps its data key: the rotation cannot hide behind a cache.
    app.set_env("TESSERA_KEY_CACHE_SECONDS", "0");
    app.restart().await;
    let tenants: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    for t in &tenants {
        app.tenant(t).await;
        let r =
            app.put(&format!("/tenants/{t}/secrets/k"), ROOT_TOKEN, json!({"value": format!("value-of-{t}")})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (client, base, tenants) = (app.client.clone(), app.base.clone(), tenants.clone());
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for t in &tenants {
                    let r = client.get(format!("{base}/tenants/{t}/secrets/k")).bearer_auth(ROOT_TOKEN).send().await;
                    let good = match r {
                        Ok(resp) if resp.status().is_success() => {
                            resp.json::<Value>().await.ok().is_some_and(|b| b["value"] == format!("value-of-{t}"))
                        }
                        _ => false,
                    };
                    if good { &ok } else { &failed }.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let key_file = app.dir.path().join("new.key");
    std::fs::write(&key_file, NEW_KEY).expect("key file");
    let before = ok.load(Ordering::SeqCst);
    let out = app.cli(&["keys", "rotate-master", "--new-key-file", key_file.to_str().expect("utf-8"), "--batch", "3"]);
    let during = ok.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    reader.await.expect("reader");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["rewrapped"], 13, "12 tenants and _platform, one data key each");
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no read failed during the rotation");
    assert!(during > 0, "reads went on while the rotation ran");
    let left = app
        .sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM data_keys WHERE kek_id <> (SELECT kek_id FROM keyring_meta)")
        .await;
    assert_eq!(left, "0", "every data key is wrapped by the new key");
    let old_key = app.env_value("TESSERA_MASTER_KEY").expect("old key");
    app.set_env("TESSERA_MASTER_KEY", NEW_KEY);
    app.restart().await;
    for t in &tenants {
        assert_eq!(
            app.get(&format!("/tenants/{t}/secrets/k"), ROOT_TOKEN).await.body["value"],
            format!("value-of-{t}")
        );
    }
    let again = app.cli(&["keys", "rotate-master", "--new-key-file", key_file.to_str().expect("utf-8")]);
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    assert_eq!(
        (again["rewrapped"].as_u64(), again["already"].as_u64()),
        (Some(0), Some(13)),
        "resumable and idempotent"
    );
    let pruned = app.cli(&["keys", "prune-wraps"]);
    assert!(pruned.status.success(), "{}", String::from_utf8_lossy(&pruned.stderr));
    assert_eq!(app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM data_key_wraps").await, "0");
    assert_eq!(app.get("/tenants/t00/secrets/k", ROOT_TOKEN).await.body["value"], "value-of-t00");
    app.stop().await;
    app.set_env("TESSERA_MASTER_KEY", &old_key);
    let out = app.cli(&["serve"]);
    assert!(!out.status.success(), "the old master key is refused after the rotation");
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key does not match"));
    // The keyed chain verifies with the key the store is under now.
    app.set_env("TESSERA_MASTER_KEY", NEW_KEY);
    let audit = app.cli(&["audit", "verify"]);
    assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stdout));
}

async fn rewrap_moves_every_value_to_the_newest_tenant_key_and_is_idempotent(mut app: TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    app.integration("svc", json!([{"key": "api_key", "type": "secret"}])).await;
    app.put("/tenants/acme/integrations/svc/config", ROOT_TOKEN, json!({"config": {"api_key": "rewrap-config"}})).await;
    for v in ["one", "two", "three"] {
        app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": format!("rewrap-{v}")})).await;
    }
    app.put("/tenants/beta/secrets/s", ROOT_TOKEN, json!({"value": "beta-untouched"})).await;
    app.post("/tenants/acme/secrets/s:destroy", ROOT_TOKEN, json!({"versions": [1]})).await;
    assert_eq!(app.post("/tenants/acme/keys/rotate", ROOT_TOKEN, json!({})).await.status, StatusCode::OK);
    app.stop().await;
    let out = app.cli(&["keys", "rewrap", "--tenant", "acme"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["rewrapped"], 3, "two live versions of s and the config secret; the destroyed one is skipped");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("rewrap-two"), "{all}");
    // The summary line carries the same counts as the JSON report.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stderr.lines().find(|l| l.starts_with("rewrap: done: ")).expect("a summary line");
    assert!(
        summary.contains(&format!(
            "{} secrets, {} versions rewrapped, {} already current",
            report["secrets"], report["rewrapped"], report["current"]
        )),
        "{summary} vs {report}"
    );
    let again: Value = serde_json::from_slice(&app.cli(&["keys", "rewrap"]).stdout).expect("JSON report");
    assert_eq!(again["rewrapped"], 0, "a second run changes nothing");
    app.restart().await;
    let v2 = app.get("/tenants/acme/secrets/s?version=2", ROOT_TOKEN).await;
    assert_eq!(v2.body["value"], "rewrap-two");
    assert_eq!(app.get("/tenants/acme/secrets/s", ROOT_TOKEN).await.body["version"], 3, "no new version");
    let r = app.get("/tenants/acme/integrations/svc/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"]["api_key"], "rewrap-config");
    assert_eq!(app.get("/tenants/beta/secrets/s", ROOT_TOKEN).await.body["value"], "beta-untouched");
    if app.bao.is_none() && app.env_value("CREDENTIAL_BACKEND").is_none() {
        let old = app
            .sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM secret_versions WHERE tenant_id = 'acme' AND ciphertext LIKE 'tsr:v1:%'")
            .await;
        assert_eq!(old, "0", "no value of acme is left under its old data key");
    }
}

async fn a_value_in_the_first_ciphertext_format_still_reads_and_rewrap_rewrites_it(mut app: TestApp) {
    use tessera_crypto::{Aad, KeyOwner, MasterKey, WrappedDataKey};
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/legacy", ROOT_TOKEN, json!({"value": "written-in-format-one"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.stop().await;
    // Store the value as the code before format 2 wrote it: the same data key,
    // associated data joined by NUL bytes, `tsr:v1:` without `f2:`.
    let master = MasterKey::from_text(&app.env_value("TESSERA_MASTER_KEY").expect("master key")).expect("key");
    let incarnation = app.sql_text("SELECT incarnation FROM tenants WHERE id = 'acme'").await;
    let wrapped = app.sql_text("SELECT wrapped FROM data_keys WHERE tenant_id = 'acme' AND version = 1").await;
    let owner = KeyOwner { tenant: "acme", incarnation: &incarnation };
    let dek = master.unwrap(owner, 1, &WrappedDataKey(wrapped)).expect("the tenant's data key");
    let (table, row) = ("secret_versions", "tenant_id = 'acme' AND path = 'legacy' AND version = 1");
    let kind = app.sql_text(&format!("SELECT kind FROM {table} WHERE {row}")).await;
    let stored = app.sql_text(&format!("SELECT ciphertext FROM {table} WHERE {row}")).await;
    assert!(stored.starts_with("tsr:v1:f2:"), "new values are written in format 2: {stored}");
    let aad = Aad::new("acme", "legacy", &kind);
    let old = dek.encrypt_v1_for_tests(&aad, &dek.decrypt(&aad, &stored).expect("decrypts"));
    assert!(old.starts_with("tsr:v1:") && !old.starts_with("tsr:v1:f2:"), "{old}");
    app.sql(&format!("UPDATE {table} SET ciphertext = '{old}' WHERE {row}")).await;
    app.start_again().await;
    let r = app.get("/tenants/acme/secrets/legacy", ROOT_TOKEN).await;
    assert_eq!(r.body["value"], "written-in-format-one", "a format 1 value still reads: {}", r.text);
    app.stop().await;
    // Under the newest data key already, but in the old format: rewrap rewrites it.
    let out = app.cli(&["keys", "rewrap", "--tenant", "acme"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["rewrapped"], 1, "{report}");
    let rewritten = app.sql_text(&format!("SELECT ciphertext FROM {table} WHERE {row}")).await;
    assert!(rewritten.starts_with("tsr:v1:f2:"), "stored in format 2 after the rewrap: {rewritten}");
    let again: Value = serde_json::from_slice(&app.cli(&["keys", "rewrap"]).stdout).expect("JSON report");
    assert_eq!(again["rewrapped"], 0, "a second run changes nothing");
    app.start_again().await;
    let r = app.get("/tenants/acme/secrets/legacy", ROOT_TOKEN).await;
    assert_eq!(r.body["value"], "written-in-format-one", "{}", r.text);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("written-in-format-one"));
}

/// Tenant `k<i>` has `i % 3 + 1` data key versions, a secret `s<v>` written
/// under each; returns (tenant, secret, value) of every one.
async fn tenants_with_several_key_versions(app: &TestApp) -> Vec<(String, String, String)> {
    let mut written = Vec::new();
    for i in 0..5 {
        let t = format!("k{i}");
        app.tenant(&t).await;
        for v in 1..=(i % 3 + 1) {
            if v > 1 {
                let r = app.post(&format!("/tenants/{t}/keys/rotate"), ROOT_TOKEN, json!({})).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
            let (path, value) = (format!("s{v}"), format!("{t}-under-key-v{v}"));
            let r = app.put(&format!("/tenants/{t}/secrets/{path}"), ROOT_TOKEN, json!({"value": value})).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            written.push((t.clone(), path, value));
        }
    }
    written
}

async fn assert_all_readable(app: &TestApp, written: &[(String, String, String)]) {
    for (t, path, value) in written {
        let r = app.get(&format!("/tenants/{t}/secrets/{path}"), ROOT_TOKEN).await;
        assert_eq!(r.body["value"], value.as_str(), "{t}/{path}: {}", r.text);
    }
}

async fn an_interrupted_master_rotation_resumes_over_tenants_with_several_key_versions(mut app: TestApp) {
    app.set_env("TESSERA_KEY_CACHE_SECONDS", "0");
    app.restart().await;
    let written = tenants_with_several_key_versions(&app).await;
    let count = |sql: &str| format!("SELECT CAST(COUNT(*) AS TEXT) FROM {sql}");
    let keys: u64 = app.sql_text(&count("data_keys")).await.parse().expect("a count");
    assert_eq!(keys, 10, "versions 1+2+3+1+2 and _platform's one");
    let old_kek = app.sql_text("SELECT kek_id FROM keyring_meta").await;
    let old_check = app.sql_text("SELECT kek_check FROM keyring_meta").await;
    let old_audit_key = app.sql_text("SELECT audit_key FROM keyring_meta").await;
    app.stop().await;
    let key_file = app.dir.path().join("new.key");
    std::fs::write(&key_file, NEW_KEY).expect("key file");
    let key_file = key_file.to_str().expect("utf-8").to_owned();
    // Batches of 4 split tenants' versions between batches.
    let out = app.cli(&["keys", "rotate-master", "--new-key-file", &key_file, "--batch", "4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!((report["rewrapped"].as_u64(), report["already"].as_u64()), (Some(keys), Some(0)));
    let new_kek = report["kekId"].as_str().expect("kekId").to_owned();
    assert_eq!(app.sql_text(&count(&format!("data_keys WHERE kek_id = '{new_kek}'"))).await, keys.to_string());
    assert_eq!(
        app.sql_text(&count(&format!("data_key_wraps WHERE kek_id = '{old_kek}'"))).await,
        keys.to_string(),
        "every previous wrap is kept beside the new one"
    );
    // Put back the state of a run interrupted in the middle of tenant k2:
    // its version 1 and everything before it rewrapped, the rest not yet, and
    // the key check still the old key's.
    let undone = "(tenant_id = 'k2' AND version > 1) OR tenant_id IN ('k3', 'k4')";
    app.sql(&format!(
        "UPDATE data_keys SET kek_id = '{old_kek}', wrapped = (SELECT w.wrapped FROM data_key_wraps w \
         WHERE w.tenant_id = data_keys.tenant_id AND w.version = data_keys.version AND w.kek_id = '{old_kek}') \
         WHERE {undone}"
    ))
    .await;
    app.sql(&format!("DELETE FROM data_key_wraps WHERE {undone}")).await;
    // The run's last transaction (key check and audit key) never happened.
    app.sql(&format!(
        "UPDATE keyring_meta SET kek_id = '{old_kek}', kek_check = '{old_check}', audit_key = '{old_audit_key}'"
    ))
    .await;
    assert_eq!(app.sql_text(&count(&format!("data_keys WHERE kek_id = '{old_kek}'"))).await, "5");
    // A server on the old key reads every version before, during and after the resumed run.
    app.restart().await;
    assert_all_readable(&app, &written).await;
    let out = app.cli(&["keys", "rotate-master", "--new-key-file", &key_file, "--batch", "4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_all_readable(&app, &written).await;
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        (report["rewrapped"].as_u64(), report["already"].as_u64()),
        (Some(5), Some(keys - 5)),
        "the resumed run rewraps only what the interrupted one left"
    );
    assert_eq!(app.sql_text(&count(&format!("data_keys WHERE kek_id = '{new_kek}'"))).await, keys.to_string());
    assert_eq!(app.sql_text(&count(&format!("data_key_wraps WHERE kek_id = '{old_kek}'"))).await, keys.to_string());
    assert_eq!(app.sql_text(&count("data_key_wraps")).await, keys.to_string(), "one extra wrap per key, no more");
    app.set_env("TESSERA_MASTER_KEY", NEW_KEY);
    app.restart().await;
    assert_all_readable(&app, &written).await;
    let pruned = app.cli(&["keys", "prune-wraps"]);
    assert!(pruned.status.success(), "{}", String::from_utf8_lossy(&pruned.stderr));
    app.restart().await;
    assert_all_readable(&app, &written).await;
}

/// From Vault Transit to a local master key: the old wraps are unwrapped by
/// Transit, several at a time, and a server still on Transit keeps reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_from_vault_transit_to_a_local_master_key() {
    let Some(bao) = crate::helpers::Bao::start().await else { return };
    let env = bao.transit_env().await;
    let mut app = TestApp::start(crate::helpers::Db::Sqlite, &env).await;
    let written = tenants_with_several_key_versions(&app).await;
    let transit = "vault-transit:transit";
    let count = |sql: &str| format!("SELECT CAST(COUNT(*) AS TEXT) FROM {sql}");
    assert_eq!(app.sql_text(&count(&format!("data_keys WHERE kek_id = '{transit}'"))).await, "10");
    let key_file = app.dir.path().join("new.key");
    std::fs::write(&key_file, NEW_KEY).expect("key file");
    let out = app.cli(&["keys", "rotate-master", "--new-key-file", key_file.to_str().expect("utf-8"), "--batch", "4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!((report["rewrapped"].as_u64(), report["already"].as_u64()), (Some(10), Some(0)));
    let local = report["kekId"].as_str().expect("kekId").to_owned();
    assert!(local.starts_with("local:"), "{local}");
    assert_eq!(app.sql_text(&count(&format!("data_keys WHERE kek_id = '{local}'"))).await, "10");
    assert_eq!(app.sql_text(&count(&format!("data_key_wraps WHERE kek_id = '{transit}'"))).await, "10");
    assert!(app.sql_text("SELECT MIN(wrapped) FROM data_key_wraps").await.starts_with("tsrx:v2:vault:v1:"));
    // The server started on Transit still reads every version.
    assert_all_readable(&app, &written).await;
    app.set_env("TESSERA_KEYRING", "local");
    app.set_env("TESSERA_MASTER_KEY", NEW_KEY);
    app.restart().await;
    assert_all_readable(&app, &written).await;
    drop(bao);
    assert_all_readable(&app, &written).await;
}

/// The rotation steps work with the dev key file too: the file is replaced
/// by the new key, so a restart reads it, and prune-wraps leaves a store the
/// next start opens. Each progress count is printed once.
async fn rotating_the_dev_master_key_leaves_a_store_the_next_start_opens(db: crate::helpers::Db) {
    // No TESSERA_MASTER_KEY: the dev key file in the data dir, as after the README's set-up.
    let mut app = TestApp::start(db, &[("TESSERA_MASTER_KEY", "")]).await;
    let data = std::path::PathBuf::from(app.env_value("TESSERA_DATA_DIR").expect("data dir"));
    let key_file = data.join("master.key");
    assert!(key_file.exists(), "dev mode made its key file");
    for t in ["acme", "beta"] {
        app.tenant(t).await;
        let r = app.put(&format!("/tenants/{t}/secrets/k"), ROOT_TOKEN, json!({"value": format!("dev-{t}")})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let new_key = app.dir.path().join("new.key");
    std::fs::write(&new_key, NEW_KEY).expect("key file");
    let out = app.cli(&["keys", "rotate-master", "--new-key-file", new_key.to_str().expect("utf-8"), "--batch", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("dev key file {}", key_file.display())), "names the key's source: {stderr}");
    let steps = stderr.lines().last().expect("the next steps");
    assert!(!steps.contains("TESSERA_MASTER_KEY"), "no variable is involved in dev mode: {steps}");
    let counts: Vec<&str> = stderr.lines().filter(|l| l.contains("data keys under the new key")).collect();
    let mut unique = counts.clone();
    unique.dedup();
    assert_eq!(counts, unique, "no progress line is repeated: {stderr}");
    assert!(stderr.contains("done: 3 data keys rewrapped, 0 already"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key_file).expect("key file").trim(), NEW_KEY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The server still running with the old key keeps reading until restarted.
    assert_eq!(app.get("/tenants/acme/secrets/k", ROOT_TOKEN).await.body["value"], "dev-acme");
    app.restart().await;
    let pruned = app.cli(&["keys", "prune-wraps"]);
    assert!(pruned.status.success(), "{}", String::from_utf8_lossy(&pruned.stderr));
    app.restart().await;
    for t in ["acme", "beta"] {
        assert_eq!(app.get(&format!("/tenants/{t}/secrets/k"), ROOT_TOKEN).await.body["value"], format!("dev-{t}"));
    }
}

mod dev_key {
    crate::on_both_databases!(db: rotating_the_dev_master_key_leaves_a_store_the_next_start_opens);
    use super::rotating_the_dev_master_key_leaves_a_store_the_next_start_opens;
}

on_both_databases!(
    rotating_the_master_key_rewraps_every_data_key_while_reads_go_on,
    an_interrupted_master_rotation_resumes_over_tenants_with_several_key_versions,
    a_value_in_the_first_ciphertext_format_still_reads_and_rewrap_rewrites_it,
);

mod every_rewritable_store {
    use super::*;
    use crate::helpers::Db;

    on_both_databases!(rewrap_moves_every_value_to_the_newest_tenant_key_and_is_idempotent);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rewrap_on_the_file_backend() {
        let app = TestApp::start(Db::Sqlite, &[("CREDENTIAL_BACKEND", "file")]).await;
        rewrap_moves_every_value_to_the_newest_tenant_key_and_is_idempotent(app).await;
    }
}
