//! `tessera backup` and `tessera restore`: a store filled over HTTP is backed
//! up while the server keeps serving (and writing), restored into a fresh
//! data dir or database under the same master key, and a server started on
//! it reads every secret back with its versions, accepts the old API key and
//! verifies the audit chain. Restore refuses a non-empty store, a truncated
//! or edited file and another master key, writing nothing; the backup holds
//! no plaintext. SQLite, PostgreSQL, and SQLite into PostgreSQL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[path = "common/offline.rs"]
mod offline;
use offline::{Server, Vault};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh PostgreSQL database URL, or None (printed) without a server; in CI it must be set.
async fn fresh_postgres() -> Option<(String, String)> {
    let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "TESSERA_TEST_POSTGRES_URL must be set in CI");
        eprintln!("skipping: TESSERA_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("tessera_t_{}", uuid::Uuid::new_v4().simple());
    admin_sql(&admin, &format!("CREATE DATABASE {name}")).await;
    let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let url = match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    };
    Some((url, name))
}

async fn admin_sql(url: &str, statement: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to PostgreSQL");
    sqlx::query(statement).execute(&mut conn).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn drop_postgres(name: &str) {
    if let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") {
        admin_sql(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

/// Where a store lives: the vault's SQLite file, or a PostgreSQL database.
#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

/// A vault (data dir and environment) on `db`; None when PostgreSQL is not available.
async fn vault(db: Db, master_key: Option<&str>, dbs: &mut Vec<String>) -> Option<Vault> {
    let mut v = Vault::new();
    if let Db::Postgres = db {
        let (url, name) = fresh_postgres().await?;
        v.set("DATABASE_URL", &url);
        dbs.push(name);
    }
    if let Some(key) = master_key {
        v.set("TESSERA_MASTER_KEY", key);
    }
    Some(v)
}

async fn ok(server: &Server, method: Method, path: &str, body: Value, expected: StatusCode) -> Value {
    let (status, answer) = server.call(method, path, Some(body)).await;
    assert_eq!(status, expected, "{path}: {answer}");
    answer
}

/// Every plaintext the scenario writes.
struct Values {
    config_key: String,
    pw: [String; 3],
    data: String,
    other: String,
    busy_prefix: String,
}

async fn fill(server: &Server, v: &Values) -> String {
    for id in ["acme", "globex"] {
        ok(server, Method::POST, "/tenants", json!({"id": id, "name": id}), StatusCode::CREATED).await;
    }
    let schema = json!([
        {"key": "base_url", "type": "string", "required": true},
        {"key": "api_key", "type": "secret", "required": true},
    ]);
    let body = json!({"key": "stripe", "name": "Stripe", "configSchema": schema});
    ok(server, Method::POST, "/integrations", body, StatusCode::CREATED).await;
    let config = json!({"config": {"base_url": "https://api.stripe.test", "api_key": v.config_key}});
    ok(server, Method::PUT, "/tenants/acme/integrations/stripe/config", config, StatusCode::OK).await;
    for pw in &v.pw {
        ok(server, Method::PUT, "/tenants/acme/secrets/app/db-password", json!({"value": pw}), StatusCode::OK).await;
    }
    let data = json!({"data": {"api_key": v.data, "from": "a@b"}});
    ok(server, Method::PUT, "/tenants/acme/secrets/app/sendgrid", data, StatusCode::OK).await;
    ok(server, Method::PUT, "/tenants/globex/secrets/KEY", json!({"value": v.other}), StatusCode::OK).await;
    let key = json!({"name": "acme-admin", "role": "tenant_admin", "tenantId": "acme"});
    let created = ok(server, Method::POST, "/api-keys", key, StatusCode::CREATED).await;
    created["key"].as_str().expect("the new key").to_owned()
}

/// Writes `busy` secrets until told to stop; counts the acknowledged ones.
fn keep_writing(
    server: &Server,
    prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    let (client, base) = (server.client.clone(), server.base.clone());
    tokio::spawn(async move {
        let mut i = 0u64;
        while !stop.load(Ordering::Acquire) {
            i += 1;
            let resp = client
                .put(format!("{base}/tenants/globex/secrets/busy"))
                .bearer_auth(offline::ROOT_TOKEN)
                .json(&json!({"value": format!("{prefix}-{i}")}))
                .send()
                .await
                .expect("write sent");
            assert_eq!(resp.status(), StatusCode::OK);
            acked.store(i, Ordering::Release);
        }
    })
}

async fn read_back(server: &Server, v: &Values, api_key: &str, busy_at_least: u64) {
    let (status, resolved) = server.get("/tenants/acme/integrations/stripe/resolved").await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["config"]["api_key"], json!(v.config_key));
    for (i, pw) in v.pw.iter().enumerate() {
        let (status, r) = server.get(&format!("/tenants/acme/secrets/app/db-password?version={}", i + 1)).await;
        assert_eq!((status, &r["value"]), (StatusCode::OK, &json!(pw)), "version {}", i + 1);
    }
    let (_, latest) = server.get("/tenants/acme/secrets/app/db-password").await;
    assert_eq!(latest["version"], 3);
    assert_eq!(server.get("/tenants/acme/secrets/app/sendgrid").await.1["data"]["api_key"], json!(v.data));
    assert_eq!(server.get("/tenants/globex/secrets/KEY").await.1["value"], json!(v.other));
    let (status, busy) = server.get("/tenants/globex/secrets/busy").await;
    assert_eq!(status, StatusCode::OK, "{busy}");
    let version = busy["version"].as_u64().expect("version");
    assert!(
        version >= busy_at_least,
        "a write acknowledged before the backup began is in it ({version} < {busy_at_least})"
    );
    assert_eq!(busy["value"], json!(format!("{}-{version}", v.busy_prefix)), "the snapshot is consistent");
    // The old API key, its tenant only.
    let resp = server
        .client
        .get(format!("{}/tenants/acme/secrets/app/db-password", server.base))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = server
        .client
        .get(format!("{}/tenants/globex/secrets/KEY", server.base))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("sent");
    assert!(resp.status() == StatusCode::FORBIDDEN || resp.status() == StatusCode::NOT_FOUND, "{}", resp.status());
    let (status, verify) = server.get("/audit/verify").await;
    assert_eq!((status, &verify["ok"]), (StatusCode::OK, &json!(true)), "{verify}");
}

/// Fills a store on `from`, backs it up while writing, restores into `to`
/// and reads everything back; then the refusals.
async fn backup_and_restore(from: Db, to: Db) {
    let mut dbs = Vec::new();
    let Some(mut source) = vault(from, None, &mut dbs).await else { return };
    let master = source.env_value("TESSERA_MASTER_KEY").expect("master key");
    let Some(mut target) = vault(to, Some(&master), &mut dbs).await else { return };
    let v = Values {
        config_key: unique("sk_live_config"),
        pw: [unique("pw-one"), unique("pw-two"), unique("pw-three")],
        data: unique("SG.data"),
        other: unique("globex-key"),
        busy_prefix: unique("busy-plaintext"),
    };
    let server = source.serve().await;
    let api_key = fill(&server, &v).await;

    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let writer = keep_writing(&server, v.busy_prefix.clone(), stop.clone(), acked.clone());
    while acked.load(Ordering::Acquire) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = acked.load(Ordering::Acquire);
    let file = source.dir.path().join("tessera.backup");
    let out = source.run("backup", &[file.to_str().expect("path")]).await;
    stop.store(true, Ordering::Release);
    writer.await.expect("writer");
    assert!(acked.load(Ordering::Acquire) > before, "the server kept writing during the backup");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(" rows, ") && out.stdout.contains(" bytes"), "{}", out.stdout);
    assert!(out.stderr.contains("master key is NOT in the backup"), "{}", out.stderr);
    server.stop().await;

    let bytes = std::fs::read(&file).expect("backup file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
    }
    let text = String::from_utf8(bytes).expect("UTF-8");
    for plain in [&v.config_key, &v.pw[0], &v.pw[1], &v.pw[2], &v.data, &v.other, &v.busy_prefix, &api_key] {
        assert!(!text.contains(plain.as_str()), "the backup holds no plaintext");
    }
    let header: Value = serde_json::from_str(text.lines().next().expect("header")).expect("header JSON");
    assert_eq!(header["format"], "tessera-backup");
    let kek_id = header["kekId"].as_str().expect("kekId").to_owned();
    assert!(kek_id.starts_with("local:"), "{kek_id}");
    let file = file.to_str().expect("path").to_owned();

    // Another master key: refused, both ids named.
    let Some(stranger) = vault(to, None, &mut dbs).await else { return };
    let out = stranger.run("restore", &[&file]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains(&kek_id) && out.stderr.contains("configured with local:"), "{}", out.stderr);

    // A truncated file and an edited one: refused, nothing written.
    let lines: Vec<&str> = text.lines().collect();
    let cut = target.write("cut.backup", &(lines[..lines.len() / 2].join("\n") + "\n"));
    let out = target.run("restore", &[cut.to_str().expect("path")]).await;
    assert!(out.code != 0 && out.stderr.contains("truncated"), "{}", out.all());
    let edited = target.write("edited.backup", &text.replacen("\"status\":\"active\"", "\"status\":\"suspended\"", 1));
    let out = target.run("restore", &[edited.to_str().expect("path")]).await;
    assert!(out.code != 0 && out.stderr.contains("edited"), "{}", out.all());

    let out = target.run("restore", &[&file]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(&kek_id), "{}", out.stdout);
    let server = target.serve().await;
    read_back(&server, &v, &api_key, before).await;
    // Writes continue the restored chain.
    ok(&server, Method::PUT, "/tenants/acme/secrets/after", json!({"value": "x"}), StatusCode::OK).await;
    let (_, verify) = server.get("/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");

    // The store now holds data: a second restore is refused.
    let out = target.run("restore", &[&file]).await;
    assert!(out.code != 0 && out.stderr.contains("not empty"), "{}", out.all());
    server.stop().await;
    let out = target.run("audit", &["verify"]).await;
    assert_eq!(out.code, 0, "{}", out.all());
    for name in dbs {
        drop_postgres(&name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_backed_up_while_serving_restores_into_a_fresh_data_dir_and_bad_restores_are_refused() {
    backup_and_restore(Db::Sqlite, Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_backed_up_while_serving_restores_into_a_fresh_database_and_bad_restores_are_refused() {
    backup_and_restore(Db::Postgres, Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_restores_into_postgres() {
    backup_and_restore(Db::Sqlite, Db::Postgres).await;
}
