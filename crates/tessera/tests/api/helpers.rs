//! `TestApp`: one `tessera serve` process on a fresh database, with typed
//! request helpers, its logs, and a dump of everything it stored.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::process::{Child, Command};

#[path = "../common/process.rs"]
mod process;
pub use process::{contains, ROOT_TOKEN};

#[path = "../common/bao.rs"]
mod bao;
pub use bao::Bao;

#[path = "../common/oauth.rs"]
mod oauth;
pub use oauth::OAuthProvider;

#[path = "../common/mcp.rs"]
mod mcp;
pub use mcp::McpServer;

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    Postgres { admin_url: String, db_name: String },
}

impl Db {
    /// `sqlite` or `postgres` (for artifacts' folder names).
    pub fn label(&self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }
}

/// An app on `db` with `env`: the setup of `on_both_databases!(with app_with: ...)`.
pub async fn app_with(db: Db, env: &[(&str, &str)]) -> Option<TestApp> {
    Some(TestApp::start(db, env).await)
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub db: Db,
    env: Vec<(String, String)>,
    child: Option<Child>,
    run: u32,
    /// The OpenBao dev server of a `vault` backend test.
    pub bao: Option<Bao>,
}

/// A response: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    /// Starts on SQLite.
    pub async fn sqlite() -> Self {
        Self::start(Db::Sqlite, &[]).await
    }

    /// Starts on a fresh PostgreSQL database, or None (with a printed reason)
    /// when no server is configured. In CI the variable must be set.
    pub async fn postgres() -> Option<Self> {
        Some(Self::start(Self::fresh_postgres().await?, &[]).await)
    }

    /// A fresh PostgreSQL database (dropped with the last app on it), or
    /// None (with a printed reason) when no server is configured.
    pub async fn fresh_postgres() -> Option<Db> {
        let Ok(admin_url) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CI").is_err(),
                "TESSERA_TEST_POSTGRES_URL must be set in CI: PostgreSQL tests may not skip"
            );
            eprintln!("skipping: TESSERA_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
            return None;
        };
        let db_name = format!("tessera_t_{}", uuid::Uuid::new_v4().simple());
        admin_sql(&admin_url, &format!("CREATE DATABASE {db_name}")).await;
        Some(Db::Postgres { admin_url, db_name })
    }

    /// Starts on SQLite with the `vault` backend on a fresh OpenBao dev
    /// server, or None when OpenBao is not available.
    pub async fn vault() -> Option<Self> {
        let bao = Bao::start().await?;
        let env =
            [("CREDENTIAL_BACKEND", "vault"), ("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", bao.token.as_str())];
        let mut app = Self::start(Db::Sqlite, &env).await;
        app.bao = Some(bao);
        Some(app)
    }

    /// Starts on the given database with extra environment variables.
    pub async fn start(db: Db, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let master = base64::engine::general_purpose::STANDARD.encode(process::random_bytes());
        let database_url = match &db {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("data/tessera.db").display()),
            Db::Postgres { admin_url, db_name } => replace_db(admin_url, db_name),
        };
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        let mut env: Vec<(String, String)> = vec![
            ("TESSERA_LISTEN".into(), "127.0.0.1:0".into()),
            ("TESSERA_DATA_DIR".into(), dir.path().join("data").display().to_string()),
            ("DATABASE_URL".into(), database_url),
            ("TESSERA_MASTER_KEY".into(), master),
            ("TESSERA_ROOT_TOKEN".into(), ROOT_TOKEN.into()),
            ("TESSERA_LOG".into(), "debug,sqlx=debug,hyper=info,h2=info".into()),
            ("TESSERA_MAX_BODY_BYTES".into(), "65536".into()),
            ("TESSERA_MAX_VERSIONS".into(), "5".into()),
        ];
        for (k, v) in extra_env {
            env.retain(|(ek, _)| ek != k);
            env.push(((*k).into(), (*v).into()));
        }
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let mut app = Self { base: String::new(), client, dir, db, env, child: None, run: 0, bao: None };
        app.launch().await;
        app
    }

    async fn launch(&mut self) {
        self.run += 1;
        let cmd = process::tessera(&self.env, self.dir.path());
        let (child, base) = process::serve(cmd, self.dir.path(), &format!("serve.{}", self.run)).await;
        self.child = Some(child);
        self.base = base;
    }

    /// What run `n` (from 1) of `serve` printed on stdout.
    pub fn stdout_of_run(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("serve.{n}.out.log"))).expect("stdout of the run")
    }

    /// What run `n` (from 1) of `serve` logged on stderr.
    pub fn stderr_of_run(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("serve.{n}.err.log"))).unwrap_or_default()
    }

    /// The running server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).expect("a running server")
    }

    /// Stops the process (SIGKILL) and starts it again on the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    /// Stops the process gracefully (SIGTERM) and waits for it to exit.
    pub async fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().expect("a running process").to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
            assert!(sent.success(), "SIGTERM sent");
            let exited = tokio::time::timeout(Duration::from_secs(30), c.wait()).await;
            assert!(exited.is_ok_and(|s| s.is_ok_and(|s| s.success())), "tessera exits cleanly on SIGTERM");
        }
    }

    /// Starts the process again on the same data (after `stop` or `terminate`).
    pub async fn start_again(&mut self) {
        self.launch().await;
    }

    /// Stops the process.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }

    /// Runs an admin command (`tessera <args>`) with this app's settings.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = process::tessera(&self.env, self.dir.path());
        cmd.as_std_mut().args(args).output().expect("tessera runs")
    }

    /// Sets an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// Sends a request with a bearer token (None: no Authorization header).
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(&body)).await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), Some(&body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a tenant as root, asserting success.
    pub async fn tenant(&self, id: &str) {
        let r = self.post("/tenants", ROOT_TOKEN, serde_json::json!({"id": id, "name": format!("Tenant {id}")})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    /// Creates an API key as root and returns it.
    pub async fn key(&self, role: &str, tenant: Option<&str>) -> String {
        let r = self
            .post("/api-keys", ROOT_TOKEN, serde_json::json!({"name": role, "role": role, "tenantId": tenant}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["key"].as_str().expect("key").to_owned()
    }

    /// Registers an integration as root.
    pub async fn integration(&self, key: &str, schema: Value) {
        let body = serde_json::json!({"key": key, "name": format!("Integration {key}"), "category": "test", "configSchema": schema});
        let r = self.post("/integrations", ROOT_TOKEN, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    /// Everything the server wrote to its logs so far (all runs).
    pub fn logs(&self) -> String {
        process::logs_in(self.dir.path())
    }

    /// Every byte the store holds: the SQLite files, or a pg_dump.
    pub async fn storage_bytes(&self) -> Vec<u8> {
        let vault = match &self.bao {
            Some(b) => b.dump().await.into_bytes(),
            None => Vec::new(),
        };
        match &self.db {
            Db::Sqlite => [vault, process::bytes_under(&self.data_dir())].concat(),
            Db::Postgres { admin_url, db_name } => {
                let out = Command::new("pg_dump")
                    .arg("--data-only")
                    .arg(replace_db(admin_url, db_name))
                    .output()
                    .await
                    .expect("pg_dump runs");
                assert!(out.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
                out.stdout
            }
        }
    }

    /// Asserts a plaintext appears nowhere it must not: stored bytes, logs,
    /// the audit log and the given list responses.
    pub async fn assert_plaintext_absent(&self, secrets: &[&str], responses: &[&Resp]) {
        let stored = self.storage_bytes().await;
        let logs = self.logs();
        let audit = self.get("/audit?limit=1000", ROOT_TOKEN).await.text;
        for s in secrets {
            assert!(!contains(&stored, s.as_bytes()), "plaintext {s:?} found in the database ({:?})", self.db);
            assert!(!logs.contains(s), "plaintext {s:?} found in the server logs");
            assert!(!audit.contains(s), "plaintext {s:?} found in audit rows");
            for r in responses {
                assert!(!r.text.contains(s), "plaintext {s:?} found in a list response: {}", r.text);
            }
        }
    }

    /// Runs SQL against this app's own database, then waits until no view the
    /// server cached before it is still in use (`TESSERA_VIEW_CACHE_SECONDS`):
    /// a write behind the service's back shows only after that.
    pub async fn sql_then_wait_for_views(&self, statement: &str) {
        self.sql(statement).await;
        let ttl = self.env_value("TESSERA_VIEW_CACHE_SECONDS").map_or(5, |s| s.parse::<u64>().expect("seconds"));
        tokio::time::sleep(Duration::from_secs(ttl) + Duration::from_millis(100)).await;
    }

    /// Runs SQL against this app's own database (for tampering tests).
    pub async fn sql(&self, statement: &str) {
        self.try_sql(statement).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// Runs SQL against this app's own database, returning the database's refusal.
    pub async fn try_sql(&self, statement: &str) -> Result<(), String> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db_url()).await.expect("connect");
        sqlx::query(statement).execute(&mut conn).await.map(|_| ()).map_err(|e| e.to_string())
    }

    fn db_url(&self) -> String {
        match &self.db {
            Db::Sqlite => format!("sqlite://{}", self.dir.path().join("data/tessera.db").display()),
            Db::Postgres { admin_url, db_name } => replace_db(admin_url, db_name),
        }
    }

    /// Reads one text value with SQL from this app's database.
    pub async fn sql_text(&self, query: &str) -> String {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db_url()).await.expect("connect");
        let row = sqlx::query(query).fetch_one(&mut conn).await.expect("query");
        row.try_get::<String, _>(0).expect("text column")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        if let Db::Postgres { admin_url, db_name } = &self.db {
            // Best effort: a separate runtime, since Drop cannot await.
            let (url, name) = (admin_url.clone(), db_name.clone());
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    admin_sql(&url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                });
            })
            .join();
        }
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn admin_sql(url: &str, statement: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect to the test database");
    sqlx::query(statement).execute(&mut conn).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Runs each named scenario on SQLite, PostgreSQL, and the `file` credential
/// backend (over SQLite): the scenarios that hold for every writable store.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_databases!($($name),*);
        mod vault_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::helpers::TestApp::vault().await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod file_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::TestApp::start(
                        $crate::helpers::Db::Sqlite,
                        &[("CREDENTIAL_BACKEND", "file")],
                    )
                    .await;
                    super::$name(app).await;
                }
            )*
        }
    };
}

/// Runs each named scenario on SQLite and on a fresh PostgreSQL database
/// (skipped with a reason when none is configured, failing in CI):
/// - `on_both_databases!(a, b)`: `async fn a(app: TestApp)`;
/// - `on_both_databases!(db: a, b)`: `async fn a(db: Db)`, which starts its own app;
/// - `on_both_databases!(with setup: a("K" = "v"), b)`: `setup(db, &[("K", "v")])`
///   returns `Option<T>` (None: a reference component is missing, skip) and
///   `async fn a(t: T)` runs on it.
#[macro_export]
macro_rules! on_both_databases {
    (with $setup:path: $($name:ident $(($($k:literal = $v:literal),*))?),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(t) = $setup($crate::helpers::Db::Sqlite, &[$($(($k, $v)),*)?]).await {
                        super::$name(t).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::helpers::TestApp::fresh_postgres().await else { return };
                    if let Some(t) = $setup(db, &[$($(($k, $v)),*)?]).await {
                        super::$name(t).await;
                    }
                }
            )*
        }
    };
    (db: $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::helpers::TestApp::fresh_postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::helpers::TestApp::postgres().await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}
