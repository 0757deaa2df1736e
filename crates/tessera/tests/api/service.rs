//! Service routes: health, readiness, OpenAPI, unknown routes.

use reqwest::{Method, StatusCode};

use crate::helpers::TestApp;
use crate::on_both_databases;

async fn health_and_readiness_need_no_token(app: TestApp) {
    let h = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["status"], "ok");
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
}

async fn the_openapi_document_lists_the_routes(app: TestApp) {
    let r = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().expect("paths");
    for p in ["/tenants", "/tenants/{tenantId}/integrations/{key}/resolved", "/configs", "/audit/verify", "/api-keys"] {
        assert!(paths.contains_key(p), "{p} missing from openapi.json");
    }
}

async fn unknown_routes_and_methods_answer_json_errors(app: TestApp) {
    let r = app.call(Method::GET, "/nope", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "route_not_found");
    let r = app.call(Method::PATCH, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

on_both_databases!(
    health_and_readiness_need_no_token,
    the_openapi_document_lists_the_routes,
    unknown_routes_and_methods_answer_json_errors,
);

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = crate::helpers::TestApp::sqlite().await;
    app.tenant("acme").await;
    let data = app.data_dir();
    for name in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
        let path = data.join(name);
        let mode = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{name}: {e}")).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
}

#[tokio::test]
async fn the_listen_address_may_name_localhost() {
    let app = crate::helpers::TestApp::start(crate::helpers::Db::Sqlite, &[("TESSERA_LISTEN", "localhost:0")]).await;
    assert!(app.base.starts_with("http://127.0.0.1:"), "{}", app.base);
    let h = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(h.status, StatusCode::OK);
}

#[tokio::test]
async fn logs_are_plain_text_off_a_terminal_or_json_when_asked() {
    // The test harness writes the server's stderr to a file: no colour codes there.
    let app = crate::helpers::TestApp::start(crate::helpers::Db::Sqlite, &[("TESSERA_LOG", "info")]).await;
    app.tenant("acme").await;
    let logs = app.logs();
    assert!(logs.contains("listening"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI escape codes in a log file: {logs}");

    let app = crate::helpers::TestApp::start(
        crate::helpers::Db::Sqlite,
        &[("TESSERA_LOG", "info"), ("TESSERA_LOG_FORMAT", "json")],
    )
    .await;
    app.tenant("acme").await;
    let logs = app.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with('{')).collect();
    assert!(lines.iter().any(|l| l.contains("listening")), "{logs}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
    }
}

#[test]
fn keys_generate_prints_a_new_master_key_each_time() {
    use base64::Engine as _;
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["keys", "generate"])
            .env_clear()
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("text").trim().to_owned()
    };
    let (a, b) = (run(), run());
    assert_ne!(a, b);
    let bytes = base64::engine::general_purpose::STANDARD.decode(&a).expect("base64");
    assert_eq!(bytes.len(), 32, "{a}");
}

#[test]
fn a_database_that_cannot_be_opened_stops_start_up_before_a_dev_key_is_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_clear()
        .env("TESSERA_DATA_DIR", &data)
        // Nothing listens on port 1.
        .env("DATABASE_URL", "postgres://tessera@127.0.0.1:1/tessera")
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("DEV MODE"), "a dev key was made for a server that cannot start: {stderr}");
    assert!(!data.exists(), "the data dir (and a master.key in it) was created for a server that cannot start");
}

#[test]
fn a_bad_setting_stops_start_up_before_anything_is_created() {
    for (var, value) in [
        ("TESSERA_MAX_VERSIONS", "many"),
        ("TESSERA_CONNECT_ORIGINS", "not a url"),
        ("CREDENTIAL_BACKEND", "floppy"),
        ("TESSERA_LOG", "debugg"),
        ("TESSERA_LISTEN", "nowhere"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env_clear()
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env(var, value)
            .current_dir(dir.path())
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "the message names {var}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "{var}={value}: {left:?} was created");
    }
}

#[tokio::test]
async fn a_postgres_restart_logs_no_notice_about_existing_tables() {
    let Some(db) = crate::helpers::TestApp::fresh_postgres().await else { return };
    let mut app = crate::helpers::TestApp::start(db, &[("TESSERA_LOG", "info")]).await;
    app.restart().await;
    let logs = app.logs();
    assert!(logs.matches("listening").count() >= 2, "{logs}");
    assert!(!logs.contains("already exists"), "{logs}");
}

#[test]
fn serve_help_lists_every_setting_the_server_reads() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("text");
    let source = include_str!("../../src/settings.rs");
    let mut checked = 0;
    for prefix in ["\"TESSERA_", "\"DATABASE_URL", "\"CREDENTIAL_", "\"VAULT_", "\"PLATFORM_CREDENTIAL_KEY"] {
        for (at, _) in source.match_indices(prefix) {
            let name: String = source[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            assert!(help.contains(&name), "tessera serve --help does not list {name}:\n{help}");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} settings found");
}

#[test]
fn every_command_help_shows_an_example() {
    let commands: &[&[&str]] = &[
        &["serve"],
        &["backfill"],
        &["apply"],
        &["import"],
        &["migrate"],
        &["backup"],
        &["restore"],
        &["keys", "generate"],
        &["keys", "rotate-master"],
        &["keys", "prune-wraps"],
        &["keys", "rewrap"],
        &["audit", "verify"],
        &["audit", "export"],
    ];
    for args in commands {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(*args)
            .arg("--help")
            .env_clear()
            .output()
            .expect("runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && help.contains("Example: "), "{args:?}:\n{help}");
    }
    let import = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["import", "--help"])
        .env_clear()
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&import.stdout);
    for part in ["\"tenantId\"", "\"path\"", "\"integration\"", "\"field\"", "\"ciphertext\"", "fernet", "aes-gcm-hex"]
    {
        assert!(help.contains(part), "import --help does not document {part}:\n{help}");
    }
}
