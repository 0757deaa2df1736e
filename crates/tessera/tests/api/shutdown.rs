//! Graceful restarts: SIGTERM under steady load loses no acknowledged write
//! and leaves no request half-answered; a webhook delivery the worker had
//! claimed is finished, and one that cannot finish in time goes back to the
//! queue for another replica at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

crate::on_both_databases!(
    db:
    sigterm_under_load_loses_no_acknowledged_write_and_leaves_no_request_half_answered,
    sigterm_finishes_a_claimed_delivery_and_gives_back_one_it_cannot_finish,
);

/// What became of one request.
#[derive(Debug)]
enum Outcome {
    /// A whole answer: status and body.
    Answered(u16, Vec<u8>, bool),
    /// The connection closed before any byte of an answer.
    ClosedClean,
    /// Some bytes of an answer, then the connection ended: what must never happen.
    Torn(Vec<u8>),
}

/// Sends one HTTP/1.1 request on a kept-alive connection and reads the answer.
async fn exchange(s: &mut TcpStream, method: &str, path: &str, body: Option<&Value>) -> Outcome {
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: tessera\r\nAuthorization: Bearer {ROOT_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(head.as_bytes()).await.is_err() {
        return Outcome::ClosedClean;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
                let close = head.contains("\r\nconnection: close");
                return Outcome::Answered(status, seen[end + 4..end + 4 + length].to_vec(), close);
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) if seen.is_empty() => return Outcome::ClosedClean,
            Ok(Ok(0) | Err(_)) | Err(_) => return Outcome::Torn(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    closed_clean: AtomicUsize,
    torn: Mutex<Vec<String>>,
    /// (path, version, value) of every acknowledged write.
    acked: Mutex<Vec<(String, u64, String)>>,
}

/// One client: writes (or reads) on a kept-alive connection until the server is gone.
async fn load(addr: String, n: usize, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let path = format!("/tenants/acme/secrets/load/w{n}");
    let mut conn: Option<TcpStream> = None;
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let s = match conn.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(&addr).await {
                Ok(s) => conn.insert(s),
                // The listener is closed: the server is stopping or gone.
                Err(_) => return,
            },
        };
        let value = format!("w{n}-value-{i}");
        let outcome = if n % 3 == 2 {
            exchange(s, "GET", "/tenants/acme/secrets/load/w0", None).await
        } else {
            exchange(s, "PUT", &path, Some(&json!({ "value": value }))).await
        };
        match outcome {
            Outcome::Answered(status, body, close) => {
                tally.answered.fetch_add(1, Ordering::SeqCst);
                if status == 200 && n % 3 != 2 {
                    let v: Value = serde_json::from_slice(&body).expect("a JSON answer");
                    let version = v["version"].as_u64().expect("version");
                    tally.acked.lock().expect("lock").push((path.clone(), version, value));
                }
                if close {
                    conn = None;
                }
            }
            Outcome::ClosedClean => {
                tally.closed_clean.fetch_add(1, Ordering::SeqCst);
                conn = None;
            }
            Outcome::Torn(bytes) => {
                tally.torn.lock().expect("lock").push(String::from_utf8_lossy(&bytes).into_owned());
                conn = None;
            }
        }
    }
}

async fn sigterm_under_load_loses_no_acknowledged_write_and_leaves_no_request_half_answered(db: Db) {
    let mut app = TestApp::start(db, &[("TESSERA_MAX_VERSIONS", "1000")]).await;
    app.tenant("acme").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..9).map(|n| tokio::spawn(load(addr.clone(), n, tally.clone(), stop.clone()))).collect();
    // Steady load first, then SIGTERM in the middle of it.
    let started = Instant::now();
    while tally.acked.lock().expect("lock").len() < 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "the load did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = tally.answered.load(Ordering::SeqCst);
    app.terminate().await; // asserts exit status 0
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client");
    }
    let torn = tally.torn.lock().expect("lock").clone();
    assert!(torn.is_empty(), "requests cut off in the middle of their answer: {torn:?}");
    assert!(tally.answered.load(Ordering::SeqCst) > before, "requests in flight at the signal were answered");
    let logs = app.logs();
    assert!(logs.contains("draining connections"), "{logs}");

    // Every acknowledged write is there after the restart, version and value.
    app.start_again().await;
    let acked = tally.acked.lock().expect("lock").clone();
    let mut newest = std::collections::BTreeMap::<String, u64>::new();
    for (path, version, _) in &acked {
        let v = newest.entry(path.clone()).or_default();
        *v = (*v).max(*version);
    }
    for (path, version, value) in &acked {
        let r = app.get(&format!("{path}?version={version}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{path} v{version}: {}", r.text);
        assert_eq!(r.body["value"], value.as_str(), "{path} v{version}");
    }
    for (path, version) in &newest {
        let r = app.get(path, ROOT_TOKEN).await;
        assert!(r.body["version"].as_u64().expect("version") >= *version, "{path}: {}", r.text);
    }
    println!(
        "{} writes acknowledged, {} answers, {} connections closed before an answer, 0 torn",
        acked.len(),
        tally.answered.load(Ordering::SeqCst),
        tally.closed_clean.load(Ordering::SeqCst)
    );
}

/// A webhook receiver that takes `hold` to answer each delivery, counting
/// deliveries started and finished.
#[derive(Clone)]
struct SlowReceiver {
    url: String,
    started: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    hold: Arc<Mutex<Duration>>,
}

impl SlowReceiver {
    async fn start(hold: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let me = Self {
            url: format!("http://{}/hooks", listener.local_addr().expect("addr")),
            started: Arc::default(),
            answered: Arc::default(),
            hold: Arc::new(Mutex::new(hold)),
        };
        let state = me.clone();
        let app = axum::Router::new().fallback(move |_req: Request| {
            let state = state.clone();
            async move {
                state.started.fetch_add(1, Ordering::SeqCst);
                let hold = *state.hold.lock().expect("lock");
                tokio::time::sleep(hold).await;
                state.answered.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
        me
    }

    async fn wait_started(&self, n: usize) {
        let t = Instant::now();
        while self.started.load(Ordering::SeqCst) < n {
            assert!(t.elapsed() < Duration::from_secs(30), "no delivery {n} started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Subscribes `tenant` to `credential.stored` at `url` and stores a credential (one event).
async fn one_event(app: &TestApp, tenant: &str, url: &str) {
    app.tenant(tenant).await;
    let hook = json!({"url": url, "events": ["credential.stored"]});
    let r = app.post(&format!("/tenants/{tenant}/webhooks"), ROOT_TOKEN, hook).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            &format!("/tenants/{tenant}/integrations/crm/credentials"),
            ROOT_TOKEN,
            json!({"accessToken": "crm-access-0001", "expiresIn": 3600}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn sigterm_finishes_a_claimed_delivery_and_gives_back_one_it_cannot_finish(db: Db) {
    let env = [
        ("TESSERA_WEBHOOK_INTERVAL", "1"),
        ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
        ("TESSERA_SHUTDOWN_TIMEOUT", "15"),
    ];
    let mut app = TestApp::start(db, &env).await;
    app.integration("crm", json!([])).await;

    // A delivery in flight at SIGTERM is finished and recorded before the exit.
    let rx = SlowReceiver::start(Duration::from_secs(2)).await;
    one_event(&app, "acme", &rx.url).await;
    rx.wait_started(1).await;
    app.terminate().await;
    assert_eq!(rx.answered.load(Ordering::SeqCst), 1, "the receiver's answer was awaited");
    let pending = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_outbox WHERE delivered_at IS NULL").await;
    assert_eq!(pending, "0", "the delivery was recorded as done before the exit");

    // One that cannot finish within TESSERA_SHUTDOWN_TIMEOUT is given back, not left leased.
    app.set_env("TESSERA_SHUTDOWN_TIMEOUT", "2");
    app.start_again().await;
    let stuck = SlowReceiver::start(Duration::from_secs(300)).await;
    one_event(&app, "beta", &stuck.url).await;
    stuck.wait_started(1).await;
    let t = Instant::now();
    app.terminate().await;
    assert!(t.elapsed() < Duration::from_secs(10), "exited after the shutdown timeout: {:?}", t.elapsed());
    let leased = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_outbox WHERE lease_owner IS NOT NULL").await;
    assert_eq!(leased, "0", "no lease left behind");
    assert!(app.logs().contains("unfinished worker leases given back"), "{}", app.logs());

    // The next replica delivers it at its first scan, not when a lease would have expired (60 s).
    *stuck.hold.lock().expect("lock") = Duration::ZERO;
    let t = Instant::now();
    app.start_again().await;
    stuck.wait_started(2).await;
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let started = Instant::now();
    loop {
        let pending =
            app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM webhook_outbox WHERE delivered_at IS NULL").await;
        if pending == "0" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the given-back delivery was not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
