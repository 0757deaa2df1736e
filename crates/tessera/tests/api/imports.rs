//! `tessera import` from the secrets managers teams leave: dotenv files (as
//! `infisical export --format=dotenv` and people write them), Infisical's
//! JSON export, and a Vault KV v2 subtree on a real OpenBao. Every key
//! becomes a tenant secret that reads back as it was; a bad line is reported
//! by number and not written; a second run changes nothing and says so; a
//! changed value is a new version; no value is printed, logged or stored in
//! the clear. The files are written by the tests in those formats.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Bao, Db, TestApp, ROOT_TOKEN};

crate::on_both_databases!(
    db:
    a_dotenv_file_becomes_tenant_secrets_and_a_second_run_changes_nothing,
    an_infisical_json_export_keeps_its_folders_and_a_changed_value_is_a_new_version,
);

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn import(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = app.cli(&all);
    let (stdout, stderr) = text(&out);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

async fn value(app: &TestApp, path: &str) -> Value {
    let r = app.get(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    r.body.clone()
}

async fn versions(app: &TestApp, path: &str) -> usize {
    let r = app.get(&format!("/tenants/acme/secrets/{path}?versions"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    r.body["versions"].as_array().expect("versions").len()
}

fn assert_not_printed(outputs: &[&str], values: &[&str]) {
    for o in outputs {
        for v in values {
            for line in v.lines().filter(|l| l.len() >= 6) {
                assert!(!o.contains(line), "a value was printed: {line:?} in\n{o}");
            }
        }
    }
}

async fn a_dotenv_file_becomes_tenant_secrets_and_a_second_run_changes_nothing(db: Db) {
    let app = TestApp::start(db, &[]).await;
    app.tenant("acme").await;
    // What `infisical export --format=dotenv` writes (KEY='value', verbatim), and what people write.
    let dotenv = "# exported from the old vault\n\
        STRIPE_SECRET_KEY='sk_live_dotenv_4242'\n\
        PEM='-----BEGIN KEY-----\nMIIdotenvPEMline2\n-----END KEY-----'\n\
        \n\
        export   DATABASE_URL = postgres://app:dotenv-db-pass@db/app   # the app's database\n\
        QUOTED=\"tab\\tand \\\"quotes\\\" and\\nnewline-dotenv\"\n\
        MULTI=\"first dotenv line\nsecond dotenv line\"\n\
        APOSTROPHE='it's-a-dotenv-value'\n\
        this line is not an assignment\n\
        9STARTS_WITH_DIGIT=bad-key-dotenv-value\n\
        TWICE=first-dotenv-twice\n\
        TWICE=second-dotenv-twice\n\
        UNCLOSED=\"never-closed-dotenv-value\n";
    let expected: [(&str, &str); 6] = [
        ("STRIPE_SECRET_KEY", "sk_live_dotenv_4242"),
        ("PEM", "-----BEGIN KEY-----\nMIIdotenvPEMline2\n-----END KEY-----"),
        ("DATABASE_URL", "postgres://app:dotenv-db-pass@db/app"),
        ("QUOTED", "tab\tand \"quotes\" and\nnewline-dotenv"),
        ("MULTI", "first dotenv line\nsecond dotenv line"),
        ("APOSTROPHE", "it's-a-dotenv-value"),
    ];
    let file = app.dir.path().join("app.env");
    std::fs::write(&file, dotenv).expect("written");
    let file = file.to_str().expect("path");

    let (code, stdout, stderr) = import(&app, &["--format", "dotenv", "--tenant", "acme", "--prefix", "legacy", file]);
    assert_eq!(code, 1, "a bad line makes the exit status 1:\n{stdout}\n{stderr}");
    for (key, _) in &expected {
        assert!(stdout.contains(&format!("({key}) -> legacy/{key}: created (version 1)")), "{key}:\n{stdout}");
    }
    // Each refused line by number: no assignment, a bad key, the key given twice (both), the unclosed quote.
    for line in ["line 12:", "line 13:", "line 14 (TWICE):", "line 15 (TWICE):", "line 16 (UNCLOSED):"] {
        assert!(stderr.contains(line), "{line} not reported:\n{stderr}");
    }
    assert!(stdout.contains("imported 6 (created 6, updated 0, unchanged 0), failed 5"), "{stdout}");
    for (key, v) in &expected {
        assert_eq!(value(&app, &format!("legacy/{key}")).await["value"], *v, "{key}");
    }
    for missing in ["legacy/TWICE", "legacy/UNCLOSED", "legacy/9STARTS_WITH_DIGIT"] {
        let r = app.get(&format!("/tenants/acme/secrets/{missing}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing} was not written: {}", r.text);
    }

    // The same file again: nothing changes, and the summary says so.
    let (code2, stdout2, stderr2) =
        import(&app, &["--format", "dotenv", "--tenant", "acme", "--prefix", "legacy", file]);
    assert_eq!(code2, 1);
    assert!(stdout2.contains("imported 6 (created 0, updated 0, unchanged 6), failed 5; nothing changed"), "{stdout2}");
    for (key, _) in &expected {
        assert!(stdout2.contains(&format!("legacy/{key}: unchanged (version 1)")), "{stdout2}");
        assert_eq!(versions(&app, &format!("legacy/{key}")).await, 1, "{key} has no second version");
    }

    let mut values: Vec<&str> = expected.iter().map(|(_, v)| *v).collect();
    values.extend(["bad-key-dotenv-value", "first-dotenv-twice", "second-dotenv-twice", "never-closed-dotenv-value"]);
    assert_not_printed(&[&stdout, &stderr, &stdout2, &stderr2], &values);
    let single_line: Vec<&str> = values.iter().copied().filter(|v| !v.contains('\n')).collect();
    app.assert_plaintext_absent(&single_line, &[]).await;
    let audit = app.get("/audit?action=secret.write&limit=1000", ROOT_TOKEN).await;
    assert_eq!(audit.body["events"].as_array().expect("events").len(), 6, "one audited write per key, once");
}

async fn an_infisical_json_export_keeps_its_folders_and_a_changed_value_is_a_new_version(db: Db) {
    let app = TestApp::start(db, &[]).await;
    app.tenant("acme").await;
    // The shape `infisical export --format=json` writes (json.Marshal of its secrets, one line).
    let export = |webhook: &str| {
        json!([
            {"key": "STRIPE_SECRET_KEY", "value": "sk_live_infisical_7777", "type": "shared", "_id": "65a1",
             "workspace": "ws1", "secretPath": "/", "tags": [], "comment": "", "Etag": "", "skipMultilineEncoding": false},
            {"key": "WEBHOOK_SECRET", "value": webhook, "type": "shared", "_id": "65a2", "workspace": "ws1",
             "secretPath": "/stripe/live", "tags": [{"id": "t1", "name": "prod", "slug": "prod", "color": ""}],
             "comment": "rotated yearly", "Etag": "", "skipMultilineEncoding": false},
            {"key": "PRIVATE_KEY", "value": "-----BEGIN-----\ninfisical-multi-line\n-----END-----", "type": "shared",
             "secretPath": "/certs"},
            {"key": "NO_VALUE", "type": "shared", "secretPath": "/"},
            {"key": "_RESERVED", "value": "reserved-infisical-value", "secretPath": "/"}
        ])
        .to_string()
    };
    let path = app.dir.path().join("infisical.json");
    std::fs::write(&path, export("whsec_infisical_first")).expect("written");
    let file = path.to_str().expect("path");
    let (code, stdout, stderr) = import(&app, &["--format", "infisical-json", "--tenant", "acme", file]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("entry 1 (STRIPE_SECRET_KEY) -> STRIPE_SECRET_KEY: created (version 1)"), "{stdout}");
    assert!(stdout.contains("-> stripe/live/WEBHOOK_SECRET: created (version 1)"), "{stdout}");
    assert!(stderr.contains("entry 4 (NO_VALUE): value must be a string"), "{stderr}");
    assert!(stderr.contains("entry 5 (_RESERVED):") && stderr.contains("reserved"), "{stderr}");
    assert_eq!(value(&app, "STRIPE_SECRET_KEY").await["value"], "sk_live_infisical_7777");
    assert_eq!(value(&app, "stripe/live/WEBHOOK_SECRET").await["value"], "whsec_infisical_first");
    assert_eq!(value(&app, "certs/PRIVATE_KEY").await["value"], "-----BEGIN-----\ninfisical-multi-line\n-----END-----");

    // Rotated in Infisical meanwhile: that key alone gets a new version, reported.
    std::fs::write(&path, export("whsec_infisical_second")).expect("written");
    let (_, stdout2, stderr2) = import(&app, &["--format", "infisical-json", "--tenant", "acme", file]);
    assert!(stdout2.contains("-> stripe/live/WEBHOOK_SECRET: new version 2 (was 1)"), "{stdout2}");
    assert!(stdout2.contains("imported 3 (created 0, updated 1, unchanged 2), failed 2"), "{stdout2}");
    assert_eq!(value(&app, "stripe/live/WEBHOOK_SECRET").await["value"], "whsec_infisical_second");
    assert_eq!(versions(&app, "STRIPE_SECRET_KEY").await, 1);
    let (_, stdout3, _) = import(&app, &["--format", "infisical-json", "--tenant", "acme", file]);
    assert!(stdout3.ends_with("failed 2; nothing changed\n"), "{stdout3}");

    let values = ["sk_live_infisical_7777", "whsec_infisical_first", "whsec_infisical_second", "infisical-multi-line"];
    assert_not_printed(&[&stdout, &stderr, &stdout2, &stderr2, &stdout3], &values);
    app.assert_plaintext_absent(&values, &[]).await;
}

/// A KV v2 subtree of a real OpenBao, each secret's fields as one `data`
/// secret at its path under the subtree; deleted ones skipped; a second run
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_subtree_is_copied_into_a_tenant_and_a_second_run_changes_nothing() {
    let Some(bao) = Bao::start().await else { return };
    let mut app = TestApp::sqlite().await;
    app.tenant("acme").await;
    let client = reqwest::Client::new();
    let kv = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req =
            client.request(method, format!("{}/v1/secret/{path}", bao.addr)).header("X-Vault-Token", &bao.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let path = path.to_owned();
        async move {
            let r = req.send().await.expect("bao answers");
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    };
    kv(
        reqwest::Method::POST,
        "data/apps/billing/stripe",
        Some(json!({"data": {"key": "sk_live_vault_1111", "webhook": "whsec_vault_2222"}})),
    )
    .await;
    kv(
        reqwest::Method::POST,
        "data/apps/billing/db/primary",
        Some(json!({"data": {"password": "vault-db-pass-3333", "port": 5432}})),
    )
    .await;
    kv(reqwest::Method::POST, "data/apps/billing/old", Some(json!({"data": {"token": "vault-old-token-4444"}}))).await;
    kv(reqwest::Method::DELETE, "data/apps/billing/old", None).await;
    kv(reqwest::Method::POST, "data/apps/other/not-copied", Some(json!({"data": {"x": "vault-other-5555"}}))).await;

    app.set_env("VAULT_ADDR", &bao.addr);
    app.set_env("VAULT_TOKEN", &bao.token);
    let args = ["--from-vault", "--tenant", "acme", "--path", "apps/billing", "--prefix", "billing"];
    let (code, stdout, stderr) = import(&app, &args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("vault secret/apps/billing/stripe -> billing/stripe: created (version 1)"), "{stdout}");
    assert!(
        stdout.contains("vault secret/apps/billing/db/primary -> billing/db/primary: created (version 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("vault secret/apps/billing/old: skipped"), "{stdout}");
    assert!(stdout.contains("imported 2 (created 2, updated 0, unchanged 0), failed 0, skipped 1"), "{stdout}");
    assert_eq!(
        value(&app, "billing/stripe").await["data"],
        json!({"key": "sk_live_vault_1111", "webhook": "whsec_vault_2222"})
    );
    assert_eq!(
        value(&app, "billing/db/primary").await["data"],
        json!({"password": "vault-db-pass-3333", "port": 5432})
    );
    for absent in ["billing/old", "billing/not-copied", "other/not-copied"] {
        let r = app.get(&format!("/tenants/acme/secrets/{absent}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{absent}");
    }
    let (code2, stdout2, _) = import(&app, &args);
    assert_eq!(code2, 0);
    assert!(
        stdout2.contains("imported 2 (created 0, updated 0, unchanged 2), failed 0, skipped 1; nothing changed"),
        "{stdout2}"
    );
    assert_eq!(versions(&app, "billing/stripe").await, 1);

    // A token Vault refuses: one line, nothing written.
    app.set_env("VAULT_TOKEN", "not-a-bao-token");
    let (code3, stdout3, stderr3) = import(&app, &["--from-vault", "--tenant", "acme", "--prefix", "refused"]);
    assert_eq!(code3, 2, "{stdout3}\n{stderr3}");
    assert!(stderr3.contains("Vault answered 403"), "{stderr3}");
    assert!(!stderr3.contains("not-a-bao-token"), "the token is never echoed");
    let values =
        ["sk_live_vault_1111", "whsec_vault_2222", "vault-db-pass-3333", "vault-old-token-4444", "vault-other-5555"];
    assert_not_printed(&[&stdout, &stderr, &stdout2, &stdout3, &stderr3], &values);
    app.assert_plaintext_absent(&values, &[]).await;
}

/// Bad arguments exit 2 with one line, before the store is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_import_arguments_exit_2_and_write_nothing() {
    let app = TestApp::sqlite().await;
    app.tenant("acme").await;
    let file = app.dir.path().join("ok.env");
    std::fs::write(&file, "A=bad-args-value-1\n").expect("written");
    let file = file.to_str().expect("path");
    let not_json = app.dir.path().join("bad.json");
    std::fs::write(&not_json, "{\"key\": \"bad-args-value-2\"").expect("written");
    let cases: [(&[&str], &str); 7] = [
        (&["--format", "dotenv", file], "--tenant is required"),
        (&["--format", "dotenv", "--tenant", "acme"], "needs the FILE"),
        (&["--format", "dotenv", "--tenant", "Not A Tenant", file], "--tenant"),
        (&["--format", "dotenv", "--tenant", "nobody", file], "create the tenant first"),
        (&["--format", "dotenv", "--tenant", "acme", "--prefix", "_reserved", file], "--prefix"),
        (&["--format", "infisical-json", "--tenant", "acme", not_json.to_str().expect("path")], "not JSON"),
        (&["--from-vault", "--tenant", "acme"], "VAULT_ADDR"),
    ];
    for (args, mentions) in cases {
        let (code, stdout, stderr) = import(&app, args);
        assert_eq!(code, 2, "{args:?}: {stdout} {stderr}");
        let line = stderr.lines().find(|l| l.starts_with("tessera: ")).expect("one error line");
        assert!(line.contains(mentions), "{args:?}: {line}");
        assert!(!stderr.contains("bad-args-value"), "no value is echoed");
    }
    let r = app.get("/tenants/acme/secrets?prefix=", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["paths"], json!([]), "nothing was written: {}", r.text);
}
