//! `tessera import`: secrets encrypted by the seeds' systems (Fernet tokens made
//! by Python's `cryptography`, seed 002's AES-256-GCM made by Node's `crypto`)
//! come back out of Tessera with their values, bad lines are reported by
//! number, and no plaintext shows in the command's output or the stored bytes.
//!
//! Flow: set up tenants and integrations over HTTP, stop the server, import
//! offline into the same data dir, start the server again and read back.

#[path = "common/offline.rs"]
mod offline;

use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use offline::{contains, random_bytes, Output, Server, Vault};
use reqwest::StatusCode;
use serde_json::{json, Value};

impl Vault {
    async fn import(&self, args: &[&str]) -> Output {
        self.run("import", args).await
    }

    fn write_input(&self, name: &str, lines: &[String]) -> PathBuf {
        self.write(name, &(lines.join("\n") + "\n"))
    }
}

impl Server {
    async fn ok(&self, method: reqwest::Method, path: &str, body: Value, expected: StatusCode) {
        let (status, answer) = self.call(method, path, Some(body)).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }

    async fn tenant(&self, id: &str) {
        self.ok(
            reqwest::Method::POST,
            "/tenants",
            json!({"id": id, "name": format!("Tenant {id}")}),
            StatusCode::CREATED,
        )
        .await;
    }

    /// An integration with a public `base_url` (set in the defaults) and two secret fields.
    async fn integration(&self, key: &str) {
        let schema = json!([
            {"key": "base_url", "type": "string", "required": true},
            {"key": "api_key", "type": "secret", "required": true},
            {"key": "webhook_secret", "type": "secret"},
        ]);
        let body =
            json!({"key": key, "name": format!("Integration {key}"), "category": "test", "configSchema": schema});
        self.ok(reqwest::Method::POST, "/integrations", body, StatusCode::CREATED).await;
        let defaults = json!({"config": {"base_url": "https://api.example.com"}});
        self.ok(reqwest::Method::PUT, &format!("/integrations/{key}/defaults"), defaults, StatusCode::OK).await;
    }

    async fn secret_value(&self, tenant: &str, path: &str) -> Value {
        let (status, body) = self.get(&format!("/tenants/{tenant}/secrets/{path}")).await;
        assert_eq!(status, StatusCode::OK, "{tenant}/{path}: {body}");
        body["value"].clone()
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Whether a reference tool works; in CI its absence is a failure, not a skip.
fn tool_available(program: &str, args: &[&str], what: &str) -> bool {
    let ok =
        std::process::Command::new(program).args(args).stdin(Stdio::null()).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{what} is required in CI: import tests may not skip (scripts/services.sh installs cryptography)"
        );
        eprintln!("skipping: {what} is not available");
    }
    ok
}

/// Runs a reference implementation, returning its stdout lines.
/// The Python with `cryptography`: the project's venv (`TESSERA_TEST_PYTHON`,
/// set by scripts/services.sh), else `python3` on PATH.
fn python() -> String {
    std::env::var("TESSERA_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn reference(program: &str, args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(program).args(args).stdin(Stdio::null()).output().expect("run reference tool");
    assert!(out.status.success(), "{program} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

/// Fernet tokens from Python's `cryptography`; `@<unix time>:` in front of a
/// plaintext encrypts it at that time.
fn fernet_tokens(key: &str, plaintexts: &[&str]) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys
from cryptography.fernet import Fernet
f = Fernet(sys.argv[1].encode())
for p in sys.argv[2:]:
    if p.startswith("@"):
        at, p = p[1:].split(":", 1)
        print(f.encrypt_at_time(p.encode("utf-8"), int(at)).decode())
    else:
        print(f.encrypt(p.encode("utf-8")).decode())
"#;
    let mut args = vec!["-c", SCRIPT, key];
    args.extend_from_slice(plaintexts);
    let tokens = reference(&python(), &args);
    assert_eq!(tokens.len(), plaintexts.len());
    tokens
}

/// Seed 002's `encryptSecret`, verbatim but for the key and IV length, run by Node.
fn gcm_hex(key_hex: &str, iv_len: usize, plaintext: &str) -> String {
    const SCRIPT: &str = r#"
const crypto = require("crypto");
const [masterKey, ivLen, value] = process.argv.slice(1);
const iv = crypto.randomBytes(Number(ivLen));
const cipher = crypto.createCipheriv("aes-256-gcm", Buffer.from(masterKey, "hex"), iv);
let encrypted = cipher.update(value, "utf8", "hex");
encrypted += cipher.final("hex");
const authTag = cipher.getAuthTag().toString("hex");
console.log(`${iv.toString("hex")}:${encrypted}:${authTag}`);
"#;
    let out = reference("node", &["-e", SCRIPT, key_hex, &iv_len.to_string(), plaintext]);
    assert_eq!(out.len(), 1);
    out[0].clone()
}

/// Changes one character in the middle of a token, keeping its alphabet.
fn corrupt(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn secret_line(tenant: &str, path: &str, ciphertext: &str) -> String {
    json!({"tenantId": tenant, "path": path, "ciphertext": ciphertext}).to_string()
}

fn field_line(tenant: &str, integration: &str, field: &str, ciphertext: &str) -> String {
    json!({"tenantId": tenant, "integration": integration, "field": field, "ciphertext": ciphertext}).to_string()
}

/// Asserts exactly these line numbers were reported, and none of `hidden` shows.
fn assert_reported(out: &Output, bad: &[usize], total: usize, hidden: &[&str]) {
    for n in 1..=total {
        let reported = out.stderr.lines().any(|l| l.starts_with(&format!("line {n}: ")));
        assert_eq!(reported, bad.contains(&n), "line {n} reported: {reported}; stderr:\n{}", out.stderr);
    }
    for h in hidden {
        assert!(!out.stdout.contains(h), "{h:?} in the import's stdout:\n{}", out.stdout);
        assert!(!out.stderr.contains(h), "{h:?} in the import's stderr:\n{}", out.stderr);
    }
}

fn assert_not_stored(vault: &Vault, plaintexts: &[&str]) {
    let stored = vault.stored_bytes();
    let logs = vault.server_logs();
    for p in plaintexts {
        assert!(!contains(&stored, p.as_bytes()), "plaintext {p:?} found in the data dir");
        assert!(!logs.contains(p), "plaintext {p:?} found in the server logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fernet_tokens_from_python_import_and_bad_lines_are_reported() {
    if !tool_available(&python(), &["-c", "import cryptography.fernet"], "python3 with the cryptography package") {
        return;
    }
    let mut vault = Vault::new();
    let server = vault.serve().await;
    server.tenant("acme").await;
    server.integration("stripe").await;
    server.stop().await;

    let key = base64::engine::general_purpose::URL_SAFE.encode(random_bytes());
    let other_key = base64::engine::general_purpose::URL_SAFE.encode(random_bytes());
    let secret = unique("sk_live_fernet_secret");
    let field = unique("clé-secrète-field");
    let platform = unique("whsec_platform_default");
    let old = unique("sk_from_2001");
    let wrong = unique("made-under-another-key");
    let corrupted = unique("token-corrupted");
    let ghost = unique("for-an-unknown-tenant");
    let public = unique("for-a-public-field");
    let tokens =
        fernet_tokens(&key, &[&secret, &field, &platform, &format!("@1000000000:{old}"), &corrupted, &ghost, &public]);
    let wrong_token = fernet_tokens(&other_key, &[&wrong]).remove(0);
    let lines = vec![
        secret_line("acme", "stripe/secret-key", &tokens[0]),
        String::new(),
        field_line("acme", "stripe", "api_key", &tokens[1]),
        field_line("_platform", "stripe", "webhook_secret", &tokens[2]),
        secret_line("acme", "legacy/old", &tokens[3]),
        secret_line("acme", "wrong-key", &wrong_token),
        secret_line("acme", "corrupt", &corrupt(&tokens[4])),
        format!(r#"{{"tenantId": "acme", "path": "malformed", "ciphertext": "{}""#, tokens[4]),
        secret_line("ghost", "stripe/secret-key", &tokens[5]),
        field_line("acme", "stripe", "base_url", &tokens[6]),
    ];
    let input = vault.write_input("fernet.jsonl", &lines);
    let out = vault.import(&["--format", "fernet", "--key", &key, "--input", input.to_str().expect("path")]).await;
    assert_eq!(out.code, 1, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("imported 4, failed 5"), "{}", out.stdout);
    let all = [&secret, &field, &platform, &old, &wrong, &corrupted, &ghost, &public];
    let mut hidden: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    hidden.extend(tokens.iter().map(String::as_str));
    hidden.extend([wrong_token.as_str(), key.as_str()]);
    assert_reported(&out, &[6, 7, 8, 9, 10], lines.len(), &hidden);

    let server = vault.serve().await;
    assert_eq!(server.secret_value("acme", "stripe/secret-key").await, json!(secret));
    assert_eq!(server.secret_value("acme", "legacy/old").await, json!(old), "an old token imports (no TTL)");
    for path in ["wrong-key", "corrupt", "malformed"] {
        assert_eq!(server.get(&format!("/tenants/acme/secrets/{path}")).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, resolved) = server.get("/tenants/acme/integrations/stripe/resolved").await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["config"]["api_key"], json!(field));
    assert_eq!(resolved["config"]["webhook_secret"], json!(platform), "the _platform line set the default");
    assert_eq!(resolved["config"]["base_url"], "https://api.example.com", "the public field was not overwritten");
    server.stop().await;
    assert_not_stored(&vault, &all.iter().map(|s| s.as_str()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_gcm_hex_from_node_imports_and_bad_lines_are_reported() {
    if !tool_available("node", &["-e", "require('crypto')"], "node") {
        return;
    }
    let mut vault = Vault::new();
    let server = vault.serve().await;
    server.tenant("acme").await;
    server.integration("mailer").await;
    server.stop().await;

    let key = hex::encode(random_bytes());
    let other_key = hex::encode(random_bytes());
    let secret = unique("sk_live_gcm_secret");
    let wide_iv = unique("sixteen-byte-iv-ünïcode");
    let platform = unique("whsec_gcm_platform");
    let wrong = unique("gcm-under-another-key");
    let tampered = unique("gcm-tampered-tag");
    let malformed = unique("gcm-malformed-line");
    let c_secret = gcm_hex(&key, 12, &secret);
    let c_wide = gcm_hex(&key, 16, &wide_iv);
    let c_platform = gcm_hex(&key, 12, &platform);
    let c_wrong = gcm_hex(&other_key, 12, &wrong);
    let c_tampered = {
        let c = gcm_hex(&key, 12, &tampered);
        let (rest, tag) = c.rsplit_once(':').expect("three parts");
        let (first, rest_of_tag) = tag.split_at(1);
        let flipped = format!("{}{rest_of_tag}", if first == "0" { "1" } else { "0" });
        format!("{rest}:{flipped}")
    };
    let c_malformed = gcm_hex(&key, 12, &malformed);
    let lines = vec![
        secret_line("acme", "mail/token", &c_secret),
        field_line("acme", "mailer", "api_key", &c_wide),
        field_line("_platform", "mailer", "webhook_secret", &c_platform),
        secret_line("acme", "wrong-key", &c_wrong),
        secret_line("acme", "tampered", &c_tampered),
        format!("not json {c_malformed}"),
        secret_line("acme", "shape", "deadbeef"),
        String::new(),
    ];
    let input = vault.write_input("gcm.jsonl", &lines);
    let out = vault.import(&["--format", "aes-gcm-hex", "--key", &key, "--input", input.to_str().expect("path")]).await;
    assert_eq!(out.code, 1, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("imported 3, failed 4"), "{}", out.stdout);
    let all = [&secret, &wide_iv, &platform, &wrong, &tampered, &malformed];
    let mut hidden: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    hidden.extend([c_secret.as_str(), &c_wide, &c_platform, &c_wrong, &c_tampered, &c_malformed, &key]);
    assert_reported(&out, &[4, 5, 6, 7], lines.len(), &hidden);

    let server = vault.serve().await;
    assert_eq!(server.secret_value("acme", "mail/token").await, json!(secret));
    for path in ["wrong-key", "tampered", "shape"] {
        assert_eq!(server.get(&format!("/tenants/acme/secrets/{path}")).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, resolved) = server.get("/tenants/acme/integrations/mailer/resolved").await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["config"]["api_key"], json!(wide_iv), "a 16-byte IV decrypts");
    assert_eq!(resolved["config"]["webhook_secret"], json!(platform));
    server.stop().await;
    assert_not_stored(&vault, &all.iter().map(|s| s.as_str()).collect::<Vec<_>>());

    // The same key as base64 works too, and a clean file exits 0.
    let b64_key = base64::engine::general_purpose::STANDARD.encode(hex::decode(&key).expect("hex"));
    let again = unique("gcm-second-run");
    let input = vault.write_input("gcm2.jsonl", &[secret_line("acme", "second", &gcm_hex(&key, 12, &again))]);
    let out =
        vault.import(&["--format", "aes-gcm-hex", "--key", &b64_key, "--input", input.to_str().expect("path")]).await;
    assert_eq!(out.code, 0, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("imported 1, failed 0"), "{}", out.stdout);
    assert!(!out.stderr.contains(&again) && !out.stdout.contains(&again));
    assert_not_stored(&vault, &[&again]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_exit_2_without_touching_the_store() {
    let vault = Vault::new();
    let input = vault.write_input("empty.jsonl", &[]);
    let input = input.to_str().expect("path");
    let hex_key = "11".repeat(32);
    let cases: [(&[&str], &str); 4] = [
        (&["--format", "nope", "--key", &hex_key, "--input", input], "nope"),
        (&["--format", "aes-gcm-hex", "--key", "not-a-key!", "--input", input], "--key"),
        (&["--format", "fernet", "--key", "c2hvcnQ=", "--input", input], "--key"),
        (&["--format", "fernet", "--key", &hex_key, "--input", "/nonexistent/in.jsonl"], "/nonexistent/in.jsonl"),
    ];
    for (args, mentions) in cases {
        let out = vault.import(args).await;
        assert_eq!(out.code, 2, "{args:?}: stdout {} stderr {}", out.stdout, out.stderr);
        let line = out.stderr.lines().find(|l| l.starts_with("tessera: ")).expect("one error line");
        assert!(line.contains(mentions), "{args:?}: {line}");
        assert!(!out.stderr.contains("not-a-key!"), "the key is never echoed");
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    assert!(!vault.dir.path().join("data/tessera.db").exists(), "bad arguments are refused before the store opens");
}
