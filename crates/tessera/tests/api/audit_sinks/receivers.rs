//! The receivers the audit sink tests deliver to, all on loopback: an HTTP
//! server that checks every batch's signature (and can be taken down and
//! brought back on its port), and a private `rsyslogd` (Debian's, from
//! `TESSERA_TEST_RSYSLOGD`) with its own config, on a free port, writing
//! what it parsed to a file in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One POST the HTTP receiver took.
#[derive(Clone, Debug)]
pub struct Batch {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Batch {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// An HTTP receiver that records every batch after checking its signature.
pub struct HttpReceiver {
    pub url: String,
    addr: std::net::SocketAddr,
    secret: String,
    got: Arc<Mutex<Vec<Batch>>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl HttpReceiver {
    pub async fn start(secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut me = Self {
            url: format!("http://{addr}/collect/audit"),
            addr,
            secret: secret.to_owned(),
            got: Arc::default(),
            server: None,
        };
        me.serve(listener);
        me
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (got, secret) = (self.got.clone(), self.secret.clone());
        let app = axum::Router::new().fallback(move |req: Request| {
            let (got, secret) = (got.clone(), secret.clone());
            async move { answer(req, &got, &secret).await }
        });
        self.server = Some(tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") }));
    }

    /// Takes the receiver down: nothing listens on its port any more (each
    /// answer closed its connection, so no kept connection lingers either).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        assert!(tokio::net::TcpStream::connect(self.addr).await.is_err(), "the receiver is down");
    }

    /// Brings it back on the same port.
    pub async fn start_again(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("bind the same port again");
        self.serve(listener);
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.got.lock().expect("lock").clone()
    }

    /// Every event received, in arrival order (repeats included).
    pub fn events(&self) -> Vec<Value> {
        self.batches().iter().flat_map(|b| json_lines(&b.body)).collect()
    }

    /// Every byte received.
    pub fn bytes(&self) -> Vec<u8> {
        self.batches().into_iter().flat_map(|b| b.body).collect()
    }
}

async fn answer(req: Request, got: &Mutex<Vec<Batch>>, secret: &str) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default().to_vec();
    let batch = Batch { headers: parts.headers, body };
    verify(&batch, secret);
    got.lock().expect("lock").push(batch);
    // No kept connections: taking the receiver down must leave nothing that still answers.
    ([(axum::http::header::CONNECTION, "close")], "ok").into_response()
}

/// Checks a batch as a receiver should: HMAC-SHA256(secret, "<t>.<body>"),
/// a recent `t`, JSON Lines, and seq headers that match the lines.
fn verify(b: &Batch, secret: &str) {
    let header = b.header("tessera-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("bad Tessera-Signature {header:?}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&b.body);
    assert_eq!(v1, hex::encode(mac.finalize().into_bytes()), "the signature does not verify");
    let t: i64 = t.parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - t).abs() < 120, "stale timestamp {t}");
    assert_eq!(b.header("content-type"), "application/jsonl; charset=utf-8");
    assert_eq!(b.header("tessera-event"), "audit");
    let lines = json_lines(&b.body);
    assert_eq!(b.header("tessera-audit-first-seq"), lines[0]["seq"].to_string());
    assert_eq!(b.header("tessera-audit-last-seq"), lines[lines.len() - 1]["seq"].to_string());
}

pub fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// One message as rsyslog parsed it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub pri: u32,
    pub version: String,
    pub app_name: String,
    pub msgid: String,
    pub msg: Value,
}

/// A private rsyslogd: its own config, port and output file.
pub struct Rsyslog {
    bin: String,
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<std::process::Child>,
}

impl Rsyslog {
    /// Starts one, or None (with a printed reason) when `TESSERA_TEST_RSYSLOGD`
    /// is unset. In CI the variable must be set.
    pub async fn start() -> Option<Self> {
        let Ok(bin) = std::env::var("TESSERA_TEST_RSYSLOGD") else {
            assert!(std::env::var("CI").is_err(), "TESSERA_TEST_RSYSLOGD must be set in CI: syslog tests may not skip");
            eprintln!("skipping: TESSERA_TEST_RSYSLOGD is not set (scripts/services.sh installs rsyslog and sets it)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let mut me = Self { bin, dir: tempfile::tempdir().expect("temp dir"), port, child: None };
        me.launch().await;
        Some(me)
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("received.log")
    }

    async fn launch(&mut self) {
        let dir = self.dir.path();
        // Only Tessera's messages, as rsyslog's RFC 5424 parser split them, one a line.
        let conf = format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             template(name=\"fields\" type=\"string\" string=\"%pri%|%protocol-version%|%app-name%|%msgid%|%msg%\\n\")\n\
             if $app-name == \"tessera\" then {{\n  action(type=\"omfile\" file=\"{out}\" template=\"fields\")\n}}\n",
            dir = dir.display(),
            port = self.port,
            out = self.out().display(),
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("config written");
        let child = std::process::Command::new(&self.bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout")).expect("stdout"))
            .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr"))
            .spawn()
            .expect("rsyslogd starts");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "rsyslogd did not listen in 20 s: {}",
                std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it (SIGTERM, as a service manager would) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let started = Instant::now();
            while child.try_wait().expect("wait").is_none() {
                assert!(started.elapsed() < Duration::from_secs(20), "rsyslogd did not stop");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(), "rsyslogd is down");
    }

    pub async fn start_again(&mut self) {
        self.launch().await;
    }

    /// Everything rsyslog wrote so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(self.out()).unwrap_or_default()
    }

    pub fn parsed(&self) -> Vec<Parsed> {
        parse_lines(&self.text())
    }
}

fn parse_lines(text: &str) -> Vec<Parsed> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(5, '|');
            let mut next = || parts.next().unwrap_or_else(|| panic!("a line of five fields: {l}")).to_owned();
            let (pri, version, app_name, msgid, msg) = (next(), next(), next(), next(), next());
            Parsed {
                pri: pri.parse().expect("a priority"),
                version,
                app_name,
                msgid,
                msg: serde_json::from_str(&msg).unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {l}")),
            }
        })
        .collect()
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every event of a JSON Lines file (and its rotated files, oldest first).
pub fn file_events(path: &Path) -> Vec<Value> {
    let mut files = vec![path.to_owned()];
    for n in 1.. {
        let rotated = PathBuf::from(format!("{}.{n}", path.display()));
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
    }
    files.reverse();
    files.iter().flat_map(|f| json_lines(&std::fs::read(f).unwrap_or_default())).collect()
}
