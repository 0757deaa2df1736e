//! Slow and greedy clients: header read timeout, connection caps in total and
//! per client address, and a declared body over the limit refused at once.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

const HALF_A_HEADER: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tessera\r\nX-Slow: ";

fn server_addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().expect("the server's address")
}

/// A TCP connection to the server from the loopback address `source`.
async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(source.parse().expect("source address"), 0)).expect("bind the source address");
    socket.connect(server).await.expect("connect")
}

/// Whether the server closes the connection within `within` (anything it
/// sends first, such as a 503, is read and returned).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET /healthz` from the loopback address `source`.
async fn healthz_from(app: &TestApp, source: &str) -> Result<StatusCode, reqwest::Error> {
    let client = reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().expect("source address"))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    Ok(client.get(format!("{}/healthz", app.base)).send().await?.status())
}

/// Opens `n` connections from `source`, each sending half a request head.
async fn half_open(source: &str, server: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::new();
    for _ in 0..n {
        let mut s = connect_from(source, server).await;
        // The server may already have closed a connection over a cap.
        let _ = s.write_all(HALF_A_HEADER).await;
        all.push(s);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_half_a_header_or_nothing_is_closed_after_the_header_read_timeout() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_HEADER_READ_TIMEOUT", "1")]).await;
    let server = server_addr(&app);
    let mut half = half_open("127.0.0.1", server, 1).await.remove(0);
    let mut silent = connect_from("127.0.0.1", server).await;
    let started = Instant::now();
    assert!(closed_within(&mut half, Duration::from_secs(5)).await.is_some(), "half a header: closed");
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await.is_some(), "no byte at all: closed");
    assert!(started.elapsed() < Duration::from_secs(4), "closed after about a second: {:?}", started.elapsed());
    // A prompt client is served as before.
    assert_eq!(healthz_from(&app, "127.0.0.1").await.expect("healthz"), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_cannot_hold_more_than_its_share_of_connections() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_MAX_CONNECTIONS_PER_CLIENT", "20")]).await;
    let server = server_addr(&app);
    let mut held = half_open("127.0.0.1", server, 30).await;
    let mut closed = 0;
    let mut answers = Vec::new();
    for s in &mut held {
        if let Some(answer) = closed_within(s, Duration::from_millis(300)).await {
            closed += 1;
            answers.push(answer);
        }
    }
    assert_eq!(closed, 10, "the 21st and later connections from 127.0.0.1 are closed at once");
    assert!(answers.iter().all(|a| a.is_empty() || a.starts_with("HTTP/1.1 503")), "{answers:?}");
    assert_eq!(
        healthz_from(&app, "127.0.0.2").await.expect("another client is served"),
        StatusCode::OK,
        "another client address is still served"
    );
    drop(held);
    let r = reqwest::get(format!("{}/metrics", app.base)).await.expect("metrics").text().await.expect("text");
    assert!(r.contains(r#"tessera_connections_refused_total{reason="per_client"} 10"#), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_total_cap_are_closed_and_places_free_up_when_clients_leave() {
    let env = [("TESSERA_MAX_CONNECTIONS", "10"), ("TESSERA_MAX_CONNECTIONS_PER_CLIENT", "6")];
    let app = TestApp::start(Db::Sqlite, &env).await;
    let server = server_addr(&app);
    let mut first = half_open("127.0.0.1", server, 8).await;
    let mut second = half_open("127.0.0.3", server, 6).await;
    let mut closed = 0;
    for s in first.iter_mut().chain(second.iter_mut()) {
        if closed_within(s, Duration::from_millis(300)).await.is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, 4, "2 over the per-client cap from 127.0.0.1, 2 over the total from 127.0.0.3");
    let mut probe = connect_from("127.0.0.2", server).await;
    assert!(closed_within(&mut probe, Duration::from_secs(2)).await.is_some(), "the server is full");
    drop(first);
    drop(second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthz_from(&app, "127.0.0.2").await.expect("healthz"), StatusCode::OK, "places free up");
}

/// Sends a request head declaring a 10 MB body, and no body; the answer.
async fn declare_ten_megabytes(app: &TestApp, token: Option<&str>) -> String {
    let mut s = connect_from("127.0.0.1", server_addr(app)).await;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "PUT /tenants/acme/secrets/app/KEY HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\n{auth}Content-Length: 10000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head sent");
    closed_within(&mut s, Duration::from_secs(3)).await.expect("answered and closed at once, without the body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_gets_413_at_once_before_authentication() {
    let app = TestApp::sqlite().await;
    app.tenant("acme").await;
    for token in [None, Some("tsr_not-a-valid-key"), Some(ROOT_TOKEN)] {
        let answer = declare_ten_megabytes(&app, token).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{token:?}: {answer}");
        assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
    }
    // No denial was audited: the request never reached authentication.
    let r = app.get("/audit?action=auth.denied&limit=100", ROOT_TOKEN).await;
    assert_eq!(r.body["events"].as_array().map(Vec::len), Some(0), "{}", r.text);
}
