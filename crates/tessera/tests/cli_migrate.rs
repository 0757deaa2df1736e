//! `tessera migrate`: secrets written over HTTP on one credential backend are
//! copied offline to another with every kept version (soft-deleted,
//! destroyed and pruned ones included), a second run copies nothing,
//! `--verify` compares every value without printing it, and the server
//! started on the new backend serves the same answers.
//!
//! Flow: write over HTTP on `database`, stop the server, migrate to an
//! OpenBao dev server, read back with `CREDENTIAL_BACKEND=vault`, migrate on
//! to `file`, read back with `CREDENTIAL_BACKEND=file`, then tamper a
//! ciphertext in the file and see `--verify` name it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[path = "common/bao.rs"]
mod bao;
use bao::Bao;

#[path = "common/offline.rs"]
mod offline;
use offline::{Output, Server, Vault};

/// A deployment: one data dir shared by the server and the migrations,
/// keeping at most 4 versions per secret.
fn deployment() -> Vault {
    let mut dep = Vault::new();
    dep.set("TESSERA_MAX_VERSIONS", "4");
    dep
}

impl Vault {
    async fn migrate(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        self.run_with("migrate", args, extra_env).await
    }
}

impl Server {
    async fn ok(&self, method: Method, path: &str, body: Value, expected: StatusCode) -> Value {
        let (status, answer) = self.call(method, path, Some(body)).await;
        assert_eq!(status, expected, "{path}: {answer}");
        answer
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        self.ok(Method::PUT, path, body, StatusCode::OK).await
    }
}

/// Every plaintext a scenario writes, unique per run.
struct Values {
    default_key: String,
    acme_key_1: String,
    acme_key_2: String,
    pw: [String; 3],
    sendgrid: String,
    rotating: Vec<String>,
    globex: [String; 3],
}

impl Values {
    fn new() -> Self {
        Self {
            default_key: unique("sk_default_platform"),
            acme_key_1: unique("sk_acme_first"),
            acme_key_2: unique("sk_acme_second"),
            pw: [unique("pw-one"), unique("pw-two-deleted"), unique("pw-three")],
            sendgrid: unique("SG.data-secret"),
            rotating: (1..=6).map(|i| unique(&format!("rotating-{i}"))).collect(),
            globex: [unique("gx-destroyed"), unique("gx-two"), unique("gx-three")],
        }
    }

    fn all(&self) -> Vec<&str> {
        let mut all = vec![self.default_key.as_str(), &self.acme_key_1, &self.acme_key_2, &self.sendgrid];
        all.extend(self.pw.iter().map(String::as_str));
        all.extend(self.rotating.iter().map(String::as_str));
        all.extend(self.globex.iter().map(String::as_str));
        all
    }
}

/// Tenants, an integration with a secret field, its defaults, tenant config
/// and tenant secrets with versions: one deleted, one destroyed, one secret
/// written more often than TESSERA_MAX_VERSIONS=4 keeps.
async fn write_everything(server: &Server, v: &Values) {
    for id in ["acme", "globex"] {
        server.ok(Method::POST, "/tenants", json!({"id": id, "name": id}), StatusCode::CREATED).await;
    }
    let schema = json!([
        {"key": "base_url", "type": "string", "required": true},
        {"key": "api_key", "type": "secret", "required": true},
    ]);
    let body = json!({"key": "stripe", "name": "Stripe", "category": "payments", "configSchema": schema});
    server.ok(Method::POST, "/integrations", body, StatusCode::CREATED).await;
    server
        .put(
            "/integrations/stripe/defaults",
            json!({"config": {"base_url": "https://api.stripe.test", "api_key": v.default_key}}),
        )
        .await;
    server.put("/tenants/acme/integrations/stripe/config", json!({"config": {"api_key": v.acme_key_1}})).await;
    server.put("/tenants/acme/integrations/stripe/config", json!({"config": {"api_key": v.acme_key_2}})).await;
    server.put("/tenants/globex/integrations/stripe/config", json!({"config": {}})).await;
    for pw in &v.pw {
        server.put("/tenants/acme/secrets/app/db-password", json!({"value": pw})).await;
    }
    let (status, _) = server.call(Method::DELETE, "/tenants/acme/secrets/app/db-password?versions=2", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.put("/tenants/acme/secrets/app/sendgrid", json!({"data": {"api_key": v.sendgrid, "from": "a@b"}})).await;
    for r in &v.rotating {
        server.put("/tenants/acme/secrets/rotating", json!({"value": r})).await;
    }
    for g in &v.globex {
        server.put("/tenants/globex/secrets/stripe/KEY", json!({"value": g})).await;
    }
    server
        .ok(
            Method::POST,
            "/tenants/globex/secrets/stripe/KEY:destroy",
            json!({"versions": [1]}),
            StatusCode::NO_CONTENT,
        )
        .await;
}

/// Reads everything back. `rotating_first` is the number the oldest kept
/// version of `rotating` has on this backend (3 where it was written, 1 once migrated).
/// The `vault` backend's version list shows no authors (KV v2 metadata has none).
async fn read_everything(server: &Server, v: &Values, rotating_first: u64, lists_authors: bool) {
    let (status, acme) = server.get("/tenants/acme/integrations/stripe/resolved").await;
    assert_eq!(status, StatusCode::OK, "{acme}");
    assert_eq!(acme["config"]["api_key"], json!(v.acme_key_2));
    assert_eq!(acme["config"]["base_url"], "https://api.stripe.test");
    let (_, globex) = server.get("/tenants/globex/integrations/stripe/resolved").await;
    assert_eq!(globex["config"]["api_key"], json!(v.default_key), "the default comes from _platform");

    let p = "/tenants/acme/secrets/app/db-password";
    let (_, latest) = server.get(p).await;
    assert_eq!((latest["version"].as_u64(), &latest["value"]), (Some(3), &json!(v.pw[2])));
    assert_eq!(server.get(&format!("{p}?version=1")).await.1["value"], json!(v.pw[0]));
    let (status, deleted) = server.get(&format!("{p}?version=2")).await;
    assert_eq!((status, deleted["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("version_deleted")));
    let (_, meta) = server.get(&format!("{p}?versions")).await;
    let states: Vec<(u64, bool)> = meta["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|x| (x["version"].as_u64().expect("number"), x["deletedAt"].is_string()))
        .collect();
    assert_eq!(states, [(1, false), (2, true), (3, false)], "{meta}");
    let by: Vec<&str> =
        meta["versions"].as_array().expect("versions").iter().filter_map(|x| x["createdBy"].as_str()).collect();
    assert!(!lists_authors || by.iter().all(|b| *b == "root"), "authors are kept: {meta}");

    let (_, sendgrid) = server.get("/tenants/acme/secrets/app/sendgrid").await;
    assert_eq!(sendgrid["data"], json!({"api_key": v.sendgrid, "from": "a@b"}));

    let r = "/tenants/acme/secrets/rotating";
    let (_, newest) = server.get(r).await;
    assert_eq!((newest["version"].as_u64(), &newest["value"]), (Some(rotating_first + 3), &json!(v.rotating[5])));
    let (_, oldest) = server.get(&format!("{r}?version={rotating_first}")).await;
    assert_eq!(oldest["value"], json!(v.rotating[2]), "the oldest kept version is the third write");

    let g = "/tenants/globex/secrets/stripe/KEY";
    let (status, destroyed) = server.get(&format!("{g}?version=1")).await;
    assert_eq!((status, destroyed["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("version_destroyed")));
    assert_eq!(server.get(&format!("{g}?version=2")).await.1["value"], json!(v.globex[1]));
    assert_eq!(server.get(g).await.1["value"], json!(v.globex[2]));
    let (_, meta) = server.get(&format!("{g}?versions")).await;
    assert_eq!(meta["versions"][0]["destroyed"], true, "{meta}");
}

fn assert_hidden(out: &Output, v: &Values) {
    for p in v.all() {
        assert!(!out.all().contains(p), "plaintext {p:?} in the migrate output:\n{}", out.all());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_move_from_database_to_vault_to_file_with_every_version_and_verify_catches_tampering() {
    let Some(bao) = Bao::start().await else { return };
    let mut dep = deployment();
    let v = Values::new();
    let server = dep.serve().await;
    write_everything(&server, &v).await;
    read_everything(&server, &v, 3, true).await;
    server.stop().await;

    // database -> vault; the token comes from a variable named by a flag, never the command line.
    let to_vault =
        ["--from", "database", "--to", "vault", "--to-vault-addr", &bao.addr, "--to-vault-token-env", "BAO_T"];
    let token_env = [("BAO_T", bao.token.as_str())];
    let dry = dep.migrate(&[&to_vault[..], &["--dry-run"]].concat(), &token_env).await;
    assert_eq!(dry.code, 0, "{}", dry.all());
    let s = dry.summary();
    assert_eq!((s["dryRun"].as_bool(), s["versionsCopied"].as_u64()), (Some(true), Some(13)), "{s}");
    let first = dep.migrate(&[&to_vault[..], &["--verify"]].concat(), &token_env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let s = first.summary();
    let expected = json!({
        "tenants": 3, "secrets": 6, "secretsCopied": 6, "versionsCopied": 13, "secretsSkipped": 0,
        "conflicts": 0, "destroyedVersionsNotCopied": 1, "renumberedSecrets": 1, "revealedDeletedVersions": 0,
    });
    for (k, want) in expected.as_object().expect("object") {
        assert_eq!(&s[k], want, "{k} in {s}");
    }
    assert_eq!(s["verify"]["ok"], true, "{s}");
    assert_eq!(s["verify"]["versionsCompared"], 13, "{s}");
    assert!(first.stdout.contains("renumbered acme/rotating: source version 3 is version 1"), "{}", first.stdout);
    assert!(first.stdout.contains("tenant acme: 4 secrets"), "{}", first.stdout);
    assert_hidden(&first, &v);
    assert!(!first.all().contains(&bao.token), "the Vault token is never printed");

    let second = dep.migrate(&[&to_vault[..], &["--verify"]].concat(), &token_env).await;
    assert_eq!(second.code, 0, "{}", second.all());
    let s = second.summary();
    assert_eq!((s["versionsCopied"].as_u64(), s["secretsSkipped"].as_u64()), (Some(0), Some(6)), "{s}");
    assert_eq!((s["secretsCopied"].as_u64(), s["verify"]["ok"].as_bool()), (Some(0), Some(true)), "{s}");

    // The server on the vault backend answers as before.
    let vault_env = [("CREDENTIAL_BACKEND", "vault"), ("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", &bao.token)];
    let server = dep.serve_with(&vault_env).await;
    read_everything(&server, &v, 1, false).await;
    let (_, audit) = server.get("/audit?action=secret.migrate&limit=100").await;
    let events = audit["events"].as_array().expect("events");
    assert_eq!(events.iter().filter(|e| e["outcome"] == "success").count(), 6, "{audit}");
    assert!(!audit.to_string().contains(&v.pw[0]));
    server.stop().await;

    // vault -> file, with the usual variables for Vault.
    let file = dep.data("moved.json");
    let file_arg = file.display().to_string();
    let to_file = ["--from", "vault", "--to", "file", "--to-file-path", &file_arg, "--verify"];
    let third = dep.migrate(&to_file, &vault_env[1..]).await;
    assert_eq!(third.code, 0, "{}", third.all());
    let s = third.summary();
    assert_eq!((s["versionsCopied"].as_u64(), s["destroyedVersionsNotCopied"].as_u64()), (Some(13), Some(1)), "{s}");
    assert_eq!((s["renumberedSecrets"].as_u64(), s["revealedDeletedVersions"].as_u64()), (Some(0), Some(1)), "{s}");
    assert_eq!((s["verify"]["ok"].as_bool(), s["verify"]["versionsCompared"].as_u64()), (Some(true), Some(13)));
    assert_hidden(&third, &v);
    let stored = std::fs::read_to_string(&file).expect("file written");
    for p in v.all() {
        assert!(!stored.contains(p), "plaintext {p:?} in the credential file");
    }

    let file_env = [("CREDENTIAL_BACKEND", "file"), ("CREDENTIAL_FILE_PATH", file_arg.as_str())];
    let server = dep.serve_with(&file_env).await;
    read_everything(&server, &v, 1, true).await;
    // The file got the copies in one write: every secret's attempt is audited before it, every success after.
    let (_, audit) = server.get("/audit?action=secret.migrate&limit=200").await;
    let into_file: Vec<&Value> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["resource"].as_str().is_some_and(|r| r.contains("to=file")))
        .collect();
    let seqs = |outcome: &str| -> Vec<i64> {
        into_file.iter().filter(|e| e["outcome"] == outcome).filter_map(|e| e["seq"].as_i64()).collect()
    };
    let (attempts, successes) = (seqs("attempt"), seqs("success"));
    assert_eq!((attempts.len(), successes.len()), (6, 6), "{audit}");
    assert!(attempts.iter().max() < successes.iter().min(), "attempts {attempts:?} precede successes {successes:?}");
    let (_, verified) = server.get("/audit/verify").await;
    assert_eq!(verified["ok"], true, "{verified}");
    server.stop().await;

    // Tamper one ciphertext in the file: verify names the path and exits 1;
    // a copy reports a conflict and leaves the target alone.
    let mut doc: Value = serde_json::from_str(&stored).expect("json");
    let versions = doc["tenants"]["acme"]["app/db-password"]["versions"].as_array_mut().expect("versions");
    let last = versions.last_mut().expect("a version");
    let ct = last["ciphertext"].as_str().expect("ciphertext").to_owned();
    let mut chars: Vec<char> = ct.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    last["ciphertext"] = json!(tampered);
    std::fs::write(&file, serde_json::to_vec(&doc).expect("json")).expect("write");

    let check = dep
        .migrate(
            &["--from", "vault", "--to", "file", "--to-file-path", &file_arg, "--dry-run", "--verify"],
            &vault_env[1..],
        )
        .await;
    assert_eq!(check.code, 1, "{}", check.all());
    assert!(check.stdout.contains("differs acme/app/db-password: version 3"), "{}", check.stdout);
    let s = check.summary();
    assert_eq!(s["verify"]["differences"].as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(s["verify"]["differences"][0]["path"], "app/db-password");
    assert_eq!(s["conflictPaths"], json!(["acme/app/db-password"]), "{s}");
    assert_hidden(&check, &v);

    let copy = dep.migrate(&to_file[..6], &vault_env[1..]).await;
    assert_eq!(copy.code, 1, "{}", copy.all());
    assert!(copy.stdout.contains("conflict acme/app/db-password"), "{}", copy.stdout);
    let after = std::fs::read_to_string(&file).expect("file");
    assert!(after.contains(&tampered), "a conflicting target is not overwritten");
    drop(bao);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_credentials_move_into_the_database_and_a_dry_run_writes_nothing() {
    let mut dep = deployment();
    let v = Values::new();
    let server = dep.serve().await;
    write_everything(&server, &v).await;
    server.stop().await;

    // A dry run to a file counts and writes nothing.
    let file = dep.data("dry.json");
    let file_arg = file.display().to_string();
    let dry = dep.migrate(&["--from", "database", "--to", "file", "--to-file-path", &file_arg, "--dry-run"], &[]).await;
    assert_eq!(dry.code, 0, "{}", dry.all());
    let s = dry.summary();
    assert_eq!((s["secretsCopied"].as_u64(), s["versionsCopied"].as_u64()), (Some(6), Some(13)), "{s}");
    assert!(!file.exists(), "a dry run creates no file");

    // PLATFORM_CRED_* values are plaintext by nature: encrypted on the way in, once.
    let n8n = unique("n8n-api-key");
    let cred = json!({"api_key": n8n, "base_url": "https://n8n.test"}).to_string();
    let env = [("PLATFORM_CRED_N8N_API", cred.as_str())];
    let first = dep.migrate(&["--from", "environment", "--to", "database", "--verify"], &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let s = first.summary();
    assert_eq!((s["versionsCopied"].as_u64(), s["verify"]["ok"].as_bool()), (Some(1), Some(true)), "{s}");
    assert!(!first.all().contains(&n8n), "{}", first.all());
    let again = dep.migrate(&["--from", "environment", "--to", "database", "--verify"], &env).await;
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.summary()["secretsSkipped"], 1, "{}", again.stdout);

    let server = dep.serve().await;
    let (status, body) = server.get("/tenants/_platform/secrets/n8n_api").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["api_key"], json!(n8n));
    server.stop().await;

    // Bad arguments: exit 2 with one line.
    for args in [
        &["--from", "nowhere", "--to", "file"][..],
        &["--from", "database", "--to", "environment"],
        &["--from", "database", "--to", "database"],
        &["--from", "database", "--to", "file", "--to-vault-addr", "http://127.0.0.1:1"],
        &["--from", "database", "--to", "vault"],
    ] {
        let out = dep.migrate(args, &[]).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        assert_eq!(out.stderr.lines().filter(|l| l.starts_with("tessera: ")).count(), 1, "{args:?}: {}", out.stderr);
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
