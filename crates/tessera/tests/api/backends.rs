//! Behaviour particular to the `file` and `environment` credential backends
//! (the shared scenarios run on every store through `on_every_store!`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

async fn file_app() -> TestApp {
    TestApp::start(Db::Sqlite, &[("CREDENTIAL_BACKEND", "file")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_backend_keeps_only_ciphertext_in_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let app = file_app().await;
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN, json!({"value": "file-backed-secret"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let path = app.data_dir().join("credentials.json");
    let text = std::fs::read_to_string(&path).expect("credential file written");
    assert!(text.contains("tsr:v1:"), "{text}");
    assert!(!text.contains("file-backed-secret"));
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    let rows = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM secret_versions").await;
    assert_eq!(rows, "0", "nothing goes to the database backend's tables");
    assert_eq!(app.get("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN).await.body["value"], "file-backed-secret");
    let attempts = app.get("/audit?action=secret.write", ROOT_TOKEN).await;
    let outcomes: Vec<&str> =
        attempts.body["events"].as_array().expect("events").iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["attempt", "success"], "the attempt is durable before the file changes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_at_any_moment_leaves_the_old_or_the_new_file_and_loses_no_acknowledged_write() {
    let mut app = file_app().await;
    app.tenant("acme").await;
    let acked = Arc::new(AtomicU64::new(0));
    for round in 0..8u64 {
        let (client, base) = (app.client.clone(), app.base.clone());
        let acked_w = acked.clone();
        let writer = tokio::spawn(async move {
            for i in 0.. {
                let r = client
                    .put(format!("{base}/tenants/acme/secrets/churn"))
                    .bearer_auth(ROOT_TOKEN)
                    .json(&json!({"value": format!("round-{round}-write-{i}")}))
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let body: serde_json::Value = resp.json().await.unwrap_or_default();
                        if let Some(v) = body["version"].as_u64() {
                            acked_w.fetch_max(v, Ordering::SeqCst);
                        }
                    }
                    _ => break,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(40 + 37 * round)).await;
        app.restart().await; // SIGKILL mid-write, then start again on the same file
        writer.abort();
        let text = std::fs::read_to_string(app.data_dir().join("credentials.json")).expect("file exists");
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("never a torn file");
        assert_eq!(parsed["format"], "tessera-credentials-v1");
        let r = app.get("/tenants/acme/secrets/churn", ROOT_TOKEN).await;
        if acked.load(Ordering::SeqCst) > 0 {
            assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.text);
            let v = r.body["version"].as_u64().expect("version");
            assert!(v >= acked.load(Ordering::SeqCst), "round {round}: acknowledged version lost ({v})");
        }
    }
    assert!(acked.load(Ordering::SeqCst) > 0, "some writes were acknowledged");
    let leftovers: Vec<_> = std::fs::read_dir(app.data_dir())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.len() <= 8, "at most one temp file per killed write is left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_credentials_are_readable_platform_secrets_and_every_write_is_refused() {
    let app = TestApp::start(
        Db::Sqlite,
        &[
            ("CREDENTIAL_BACKEND", "environment"),
            ("PLATFORM_CRED_N8N_API", r#"{"api_key":"env-secret-n8n","base_url":"https://n8n.example.com"}"#),
        ],
    )
    .await;
    let r = app.get("/tenants/_platform/secrets/n8n_api", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"], json!({"api_key": "env-secret-n8n", "base_url": "https://n8n.example.com"}));
    assert_eq!(r.body["version"], 1);
    let list = app.get("/tenants/_platform/secrets", ROOT_TOKEN).await;
    assert_eq!(list.body["paths"], json!(["n8n_api"]));
    app.tenant("acme").await;
    for (path, body) in [
        ("/tenants/_platform/secrets/n8n_api", json!({"value": "x"})),
        ("/tenants/acme/secrets/new", json!({"value": "x"})),
    ] {
        let r = app.put(path, ROOT_TOKEN, body).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "backend_read_only");
        assert!(r.body["error"]["message"].as_str().expect("message").contains("switch CREDENTIAL_BACKEND"));
    }
    let r = app.delete("/tenants/_platform/secrets/n8n_api", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        app.get("/tenants/_platform/secrets/n8n_api", ROOT_TOKEN).await.status,
        StatusCode::OK,
        "nothing changed"
    );
    let audit = app.get("/audit?limit=1000", ROOT_TOKEN).await;
    assert!(!audit.text.contains("env-secret-n8n"));
    assert!(!app.logs().contains("env-secret-n8n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_unavailable_backend_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().expect("dir");
    for value in ["s3", "vault"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env_clear()
            .env("TESSERA_DATA_DIR", dir.path())
            .env("CREDENTIAL_BACKEND", value)
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("CREDENTIAL_BACKEND"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_backend_stores_tessera_ciphertext_in_kv_v2_versions() {
    let Some(app) = TestApp::vault().await else { return };
    let bao = app.bao.as_ref().expect("bao");
    app.tenant("acme").await;
    for v in ["kv-one", "kv-two"] {
        let r = app.put("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN, json!({"value": v})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let client = reqwest::Client::new();
    let raw: serde_json::Value = client
        .get(format!("{}/v1/secret/data/tessera/acme/stripe/KEY", bao.addr))
        .header("X-Vault-Token", &bao.token)
        .send()
        .await
        .expect("bao answers")
        .json()
        .await
        .expect("json");
    assert_eq!(raw["data"]["metadata"]["version"], 2, "KV v2 versions are Tessera's versions");
    let ct = raw["data"]["data"]["ciphertext"].as_str().expect("ciphertext stored");
    assert!(ct.starts_with("tsr:v1:"), "{ct}");
    assert!(!raw.to_string().contains("kv-two"), "never plaintext in Vault");
    assert_eq!(app.get("/tenants/acme/secrets/stripe/KEY?version=1", ROOT_TOKEN).await.body["value"], "kv-one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_down_is_a_clear_503_and_it_works_again_without_a_restart() {
    let Some(mut app) = TestApp::vault().await else { return };
    app.tenant("acme").await;
    app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": "before-outage"})).await;
    app.bao.as_mut().expect("bao").stop();
    let r = app.get("/tenants/acme/secrets/s", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "vault_unavailable");
    assert!(r.body["error"]["message"].as_str().expect("message").contains("unreachable"));
    let r = app.put("/tenants/acme/secrets/s", ROOT_TOKEN, json!({"value": "during-outage"})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    app.bao.as_mut().expect("bao").start_again().await;
    let r = app.put("/tenants/acme/secrets/after", ROOT_TOKEN, json!({"value": "after-outage"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.get("/tenants/acme/secrets/after", ROOT_TOKEN).await.body["value"], "after-outage");
    assert!(!app.logs().contains("before-outage") && !app.logs().contains("during-outage"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_transit_wraps_each_tenants_data_keys_with_its_own_transit_key() {
    let Some(bao) = crate::helpers::Bao::start().await else { return };
    let env = bao.transit_env().await;
    let client = reqwest::Client::new();
    let mut app = TestApp::start(Db::Sqlite, &env).await;
    app.tenant("acme").await;
    app.integration("svc", json!([{"key": "api_key", "type": "secret"}])).await;
    app.put("/integrations/svc/defaults", ROOT_TOKEN, json!({"config": {"api_key": "transit-default"}})).await;
    app.put("/tenants/acme/integrations/svc/config", ROOT_TOKEN, json!({"config": {}})).await;
    let r = app.put("/tenants/acme/secrets/k", ROOT_TOKEN, json!({"value": "transit-wrapped-value"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let wrapped = app.sql_text("SELECT wrapped FROM data_keys WHERE tenant_id = 'acme'").await;
    // Transit's own ciphertext, marked as a wrap that binds the tenant's incarnation.
    assert!(wrapped.starts_with("tsrx:v2:vault:v1:"), "{wrapped}");
    let kek = app.sql_text("SELECT kek_id FROM data_keys WHERE tenant_id = 'acme'").await;
    assert_eq!(kek, "vault-transit:transit");
    for tenant in ["acme", "_platform"] {
        let key = client
            .get(format!("{}/v1/transit/keys/{tenant}", bao.addr))
            .header("X-Vault-Token", &bao.token)
            .send()
            .await
            .expect("bao answers");
        assert!(key.status().is_success(), "transit/keys/{tenant} exists");
        let body: serde_json::Value = key.json().await.expect("json");
        assert_eq!(body["data"]["type"], "aes256-gcm96");
        assert_eq!(body["data"]["exportable"], false, "key material never leaves Vault");
    }
    app.restart().await;
    assert_eq!(app.get("/tenants/acme/secrets/k", ROOT_TOKEN).await.body["value"], "transit-wrapped-value");
    let r = app.get("/tenants/acme/integrations/svc/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"]["api_key"], "transit-default");
    app.bao = Some(bao);
    app.bao.as_mut().expect("bao").stop();
    let r = app.get("/tenants/acme/secrets/k", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "vault_unavailable");
    assert!(!app.logs().contains("transit-wrapped-value"));
}
