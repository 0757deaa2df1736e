//! A data dir and environment shared by every `tessera` process of one
//! admin-command test: `serve` for the HTTP side, the offline command under
//! test (`import`, `apply`, `migrate`) against the same data, and what it all stored
//! and logged. `#[path]`-included by the CLI test binaries.

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::process::{Child, Command};

#[path = "process.rs"]
mod process;
#[allow(unused_imports)] // each test binary uses a different part of it
pub use process::{contains, random_bytes, ROOT_TOKEN};

/// A data dir and the environment every `tessera` process of a test shares.
pub struct Vault {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    runs: u32,
}

/// The result of one offline command.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The summary JSON: the last thing printed, from a line that is just `{`.
    pub fn summary(&self) -> Value {
        let start = self.stdout.rfind("\n{\n").map(|i| i + 1).unwrap_or_else(|| panic!("no summary:\n{}", self.stdout));
        serde_json::from_str(&self.stdout[start..]).unwrap_or_else(|e| panic!("summary: {e}\n{}", self.stdout))
    }

    /// stdout then stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A running `tessera serve`.
pub struct Server {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Vault {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let master = base64::engine::general_purpose::STANDARD.encode(random_bytes());
        let env = vec![
            ("TESSERA_LISTEN".into(), "127.0.0.1:0".into()),
            ("TESSERA_DATA_DIR".into(), data.display().to_string()),
            ("DATABASE_URL".into(), format!("sqlite://{}?mode=rwc", data.join("tessera.db").display())),
            ("TESSERA_MASTER_KEY".into(), master),
            ("TESSERA_ROOT_TOKEN".into(), ROOT_TOKEN.into()),
            // The most verbose logs: a plaintext logged anywhere would show.
            ("TESSERA_LOG".into(), "debug,sqlx=debug,hyper=info,h2=info,reqwest=info".into()),
        ];
        Self { dir, env, runs: 0 }
    }

    /// Adds an environment variable for every later process.
    pub fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// The value a variable has for this vault's processes.
    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// A file of the data dir.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.path().join("data").join(name)
    }

    pub fn command(&self) -> Command {
        self.command_with(&[])
    }

    /// A `tessera` process with the shared environment plus `extra_env` (for this process only).
    pub fn command_with(&self, extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = process::tessera(&self.env, self.dir.path());
        cmd.envs(extra_env.iter().copied());
        cmd
    }

    /// Starts `tessera serve` and waits until it listens.
    pub async fn serve(&mut self) -> Server {
        self.serve_with(&[]).await
    }

    /// Starts `tessera serve` with `extra_env` too.
    pub async fn serve_with(&mut self, extra_env: &[(&str, &str)]) -> Server {
        self.runs += 1;
        let cmd = self.command_with(extra_env);
        let (child, base) = process::serve(cmd, self.dir.path(), &format!("serve.{}", self.runs)).await;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Server { child, base, client }
    }

    /// Runs `tessera <subcommand> <args>` to completion.
    pub async fn run(&self, subcommand: &str, args: &[&str]) -> Output {
        self.run_with(subcommand, args, &[]).await
    }

    /// Runs `tessera <subcommand> <args>` with `extra_env` too.
    pub async fn run_with(&self, subcommand: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let out = self.command_with(extra_env).arg(subcommand).args(args).output().await.expect("run tessera");
        Output {
            code: out.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes a file into the test's folder.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Every byte of every file under the data dir (database, WAL, key files).
    pub fn stored_bytes(&self) -> Vec<u8> {
        let all = process::bytes_under(&self.dir.path().join("data"));
        assert!(!all.is_empty(), "the data dir holds the database");
        all
    }

    /// Every log line `tessera serve` wrote.
    pub fn server_logs(&self) -> String {
        process::logs_in(self.dir.path())
    }
}

impl Server {
    /// A request as root; the answer's status and JSON (Null if not JSON).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path)).bearer_auth(ROOT_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Stops the server (SIGKILL; SQLite's WAL keeps every committed write).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}
