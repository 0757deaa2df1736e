//! `tessera apply -f FILE [--dry-run]`: seed 001's tenants file with
//! `${VAULT:..}` (a real OpenBao dev server), `${ENV:..}` and `${FILE:..}`
//! references. Dry runs write nothing, a second apply changes nothing, one
//! unresolvable reference fails the whole apply before any write, YAML works,
//! and no token shows in the output or the stored bytes.

#[path = "common/bao.rs"]
mod bao;
#[path = "common/offline.rs"]
mod offline;

use offline::{contains, Output, Server, Vault};
use reqwest::StatusCode;
use serde_json::{json, Value};

impl Vault {
    async fn apply(&self, args: &[&str]) -> Output {
        self.run("apply", args).await
    }
}

impl Server {
    async fn integration(&self, body: Value) {
        let (status, answer) = self.call(reqwest::Method::POST, "/integrations", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }

    /// `notion` (no schema) and `github` with a public and a secret config field.
    async fn integrations(&self) {
        self.integration(json!({"key": "notion", "name": "Notion"})).await;
        let schema = json!([
            {"key": "org", "type": "string"},
            {"key": "webhook_secret", "type": "secret"},
        ]);
        self.integration(json!({"key": "github", "name": "GitHub", "configSchema": schema})).await;
    }

    async fn audit_count(&self, action: &str) -> usize {
        let (status, body) = self.get(&format!("/audit?action={action}&limit=1000")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["events"].as_array().map_or(0, Vec::len)
    }

    async fn tenant_exists(&self, id: &str) -> bool {
        let (status, _) = self.get(&format!("/tenants/{id}")).await;
        status == StatusCode::OK
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

async fn kv_put(bao: &bao::Bao, path: &str, data: Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/secret/data/{path}", bao.addr))
        .header("X-Vault-Token", &bao.token)
        .json(&json!({ "data": data }))
        .send()
        .await
        .expect("bao answers");
    assert!(resp.status().is_success(), "KV write {path}: {}", resp.status());
}

fn assert_hidden(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(!out.stdout.contains(s) && !out.stderr.contains(s), "a token leaked into the output");
    }
}

/// Seed 001's file, plus config and ENV/FILE references.
fn seed_file(github_refresh_field: &str) -> String {
    json!({"tenants": [
        {"id": "tenant-001", "name": "Acme Corporation", "integrations": [
            {"name": "notion", "credentials": {
                "accessToken": "${VAULT:secret/data/tenant-001/notion:access_token}",
                "tokenType": "bearer"}},
            {"name": "github",
             "config": {"org": "acme-${ENV:APPLY_TEST_ORG}", "webhook_secret": "${FILE:webhook.txt}"},
             "credentials": {
                "accessToken": "${VAULT:secret/data/tenant-001/github:access_token}",
                "refreshToken": format!("${{VAULT:secret/data/tenant-001/github:{github_refresh_field}}}"),
                "expiresAt": "${VAULT:secret/data/tenant-001/github:expires_at}",
                "tokenType": "bearer",
                "scopes": ["repo", "user"]}}
        ]},
        {"id": "tenant-002", "name": "Beta Industries", "integrations": [
            {"name": "notion", "credentials": {
                "accessToken": "${VAULT:secret/tenant-002/notion:access_token}",
                "tokenType": "bearer"}}
        ]}
    ]})
    .to_string()
}

struct Setup {
    vault: Vault,
    _bao: bao::Bao,
    tokens: Vec<String>,
}

async fn setup() -> Option<Setup> {
    let bao = bao::Bao::start().await?;
    let mut vault = Vault::new();
    vault.set("VAULT_ADDR", &bao.addr);
    vault.set("VAULT_TOKEN", &bao.token);
    vault.set("APPLY_TEST_ORG", "corp");
    let tokens = vec![unique("notion1"), unique("ghp"), unique("ghr"), unique("notion2"), unique("whsec")];
    kv_put(&bao, "tenant-001/notion", json!({"access_token": tokens[0], "token_type": "bearer"})).await;
    kv_put(
        &bao,
        "tenant-001/github",
        json!({"access_token": tokens[1], "refresh_token": tokens[2], "expires_at": "2030-01-01T00:00:00Z"}),
    )
    .await;
    kv_put(&bao, "tenant-002/notion", json!({"access_token": tokens[3]})).await;
    vault.write("webhook.txt", &format!("{}\n", tokens[4]));
    let server = vault.serve().await;
    server.integrations().await;
    server.stop().await;
    Some(Setup { vault, _bao: bao, tokens })
}

#[tokio::test]
async fn seed_001_file_applies_once_and_then_changes_nothing() {
    let Some(Setup { mut vault, _bao, tokens }) = setup().await else { return };
    let secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let file = vault.write("tenants.json", &seed_file("refresh_token"));
    let file = file.to_str().expect("utf-8");

    let dry = vault.apply(&["-f", file, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_hidden(&dry, &secrets);
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "create tenant tenant-001",
            "store credentials tenant-001/notion",
            "update config tenant-001/github",
            "store credentials tenant-001/github",
            "create tenant tenant-002",
            "store credentials tenant-002/notion",
        ],
        "{}",
        dry.stdout
    );
    let server = vault.serve().await;
    assert!(!server.tenant_exists("tenant-001").await, "a dry run writes nothing");
    server.stop().await;

    let applied = vault.apply(&["-f", file]).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert_eq!(applied.stdout, dry.stdout);
    assert_hidden(&applied, &secrets);

    let server = vault.serve().await;
    let (status, body) = server.get("/tenants/tenant-001").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme Corporation");
    let (status, body) = server.get("/tenants/tenant-001/integrations").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["integrations"].as_array().expect("list");
    for key in ["notion", "github"] {
        let item = items.iter().find(|i| i["name"] == key).expect("listed");
        assert_eq!(item["hasCredentials"], true, "{key}: {item}");
    }
    let (status, body) = server.get("/tenants/tenant-001/integrations/notion/resolved").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["accessToken"], tokens[0].as_str());
    let (status, body) = server.get("/tenants/tenant-001/integrations/github/resolved").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["accessToken"], tokens[1].as_str());
    assert_eq!(body["config"]["org"], "acme-corp");
    assert_eq!(body["config"]["webhook_secret"], tokens[4].as_str());
    let (_, body) = server.get("/tenants/tenant-001/integrations/github/credentials").await;
    assert_eq!(body["hasRefreshToken"], true, "{body}");
    assert_eq!(body["scopes"], json!(["repo", "user"]));
    assert_eq!(body["source"], "apply");
    let (_, body) = server.get("/tenants/tenant-002/integrations/notion/resolved").await;
    assert_eq!(body["config"]["accessToken"], tokens[3].as_str());
    let stores = server.audit_count("credential.store").await;
    let configs = server.audit_count("config.update").await;
    assert_eq!(stores, 3);
    server.stop().await;

    let again = vault.apply(&["-f", file]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.lines().all(|l| l.starts_with("unchanged ")), "{}", again.stdout);
    assert_eq!(again.stdout.lines().count(), 6, "{}", again.stdout);
    let server = vault.serve().await;
    assert_eq!(server.audit_count("credential.store").await, stores, "a second apply stores nothing");
    assert_eq!(server.audit_count("config.update").await, configs, "a second apply updates no config");
    server.stop().await;

    let stored = vault.stored_bytes();
    for s in &secrets {
        assert!(!contains(&stored, s.as_bytes()), "a token is stored in plain text");
    }
}

#[tokio::test]
async fn one_unresolvable_reference_fails_the_whole_apply_and_writes_nothing() {
    let Some(Setup { mut vault, _bao, tokens }) = setup().await else { return };
    let secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let file = vault.write("tenants.json", &seed_file("no_such_field"));
    let out = vault.apply(&["-f", file.to_str().expect("utf-8")]).await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "tenant tenant-001, integration github: ${VAULT:secret/data/tenant-001/github:no_such_field} \
             could not be resolved: no field no_such_field"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_hidden(&out, &secrets);

    // An unregistered integration fails the same way, before any write.
    let unknown = json!({"tenants": [{"id": "tenant-003", "name": "Gamma", "integrations": [
        {"name": "jira", "credentials": {"accessToken": "${ENV:APPLY_TEST_ORG}"}}]}]});
    let file = vault.write("unknown.json", &unknown.to_string());
    let out = vault.apply(&["-f", file.to_str().expect("utf-8")]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("tenant tenant-003, integration jira"), "{}", out.stderr);

    // Unknown fields are errors.
    let file = vault.write("typo.json", r#"{"tenants": [{"id": "t-9", "name": "T", "integration": []}]}"#);
    let out = vault.apply(&["-f", file.to_str().expect("utf-8")]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("unknown field"), "{}", out.stderr);

    let server = vault.serve().await;
    for t in ["tenant-001", "tenant-002", "tenant-003"] {
        assert!(!server.tenant_exists(t).await, "{t} was created by a failed apply");
    }
    assert_eq!(server.audit_count("credential.store").await, 0);
    server.stop().await;
    let stored = vault.stored_bytes();
    for s in &secrets {
        assert!(!contains(&stored, s.as_bytes()), "a token is stored in plain text");
    }
}

#[tokio::test]
async fn yaml_file_applies() {
    let Some(Setup { mut vault, _bao, tokens }) = setup().await else { return };
    let yaml =
        "tenants:\n  - id: tenant-001\n    name: Acme Corporation\n    integrations:\n      - name: notion\n        \
                credentials:\n          accessToken: \"${VAULT:secret/tenant-001/notion:access_token}\"\n          \
                tokenType: bearer\n";
    let file = vault.write("tenants.yaml", yaml);
    let file = file.to_str().expect("utf-8");
    let out = vault.apply(&["-f", file]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "create tenant tenant-001\nstore credentials tenant-001/notion\n");
    assert_hidden(&out, &[&tokens[0]]);
    let again = vault.apply(&["-f", file]).await;
    assert_eq!(again.stdout, "unchanged tenant tenant-001\nunchanged credentials tenant-001/notion\n");
    let server = vault.serve().await;
    let (status, body) = server.get("/tenants/tenant-001/integrations/notion/resolved").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["accessToken"], tokens[0].as_str());
    server.stop().await;
}

#[tokio::test]
async fn serve_applies_the_file_at_start_when_enabled() {
    let Some(Setup { mut vault, _bao, tokens }) = setup().await else { return };
    std::fs::create_dir_all(vault.dir.path().join("config")).expect("config dir");
    vault.write("config/tenants.json", &seed_file("refresh_token"));
    vault.set("ENABLE_TENANT_CONFIG_FILE", "true");
    let server = vault.serve().await;
    let (_, body) = server.get("/tenants/tenant-002/integrations/notion/resolved").await;
    assert_eq!(body["config"]["accessToken"], tokens[3].as_str());
    server.stop().await;

    vault.set("ENABLE_TENANT_CONFIG_FILE", "yes");
    let out = vault.command().arg("serve").output().await.expect("run serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ENABLE_TENANT_CONFIG_FILE"));
}
