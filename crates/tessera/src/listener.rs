//! The accept loop of `tessera serve` (instead of `axum::serve`, which has no
//! header timeout): HTTP/1 and HTTP/2 over hyper-util, in clear text (h2c) or
//! over TLS ([`crate::tls`]), with
//! - a header read timeout: a client must finish a request head within
//!   `TESSERA_HEADER_READ_TIMEOUT` (the first one counted from the accept,
//!   TLS handshake included, so a connection that never sends a byte is
//!   closed too);
//! - connection caps, in total (`TESSERA_MAX_CONNECTIONS`, never above 80 %
//!   of the open-file limit, so `accept` keeps working and `/healthz` keeps
//!   answering) and per client address (`TESSERA_MAX_CONNECTIONS_PER_CLIENT`):
//!   a connection over a cap is answered 503 and closed at once (over TLS
//!   after a handshake of at most [`REFUSAL_HANDSHAKE`], so the client can
//!   read the answer; at most [`MAX_TLS_REFUSALS`] such at a time, more are
//!   closed without one);
//! - graceful shutdown: on the signal, stop accepting, let requests in
//!   flight finish (at most `TESSERA_SHUTDOWN_TIMEOUT`), close idle
//!   connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::tls::Tls;

/// Longest a refused TLS connection may take to read its 503.
const REFUSAL_HANDSHAKE: Duration = Duration::from_secs(2);

/// Refused TLS connections answered at once; beyond, they are closed unanswered.
const MAX_TLS_REFUSALS: usize = 64;

/// At most one log line per this interval for refused connections and accept errors.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The listener's settings.
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    /// `TESSERA_HEADER_READ_TIMEOUT`.
    pub header_read_timeout: Duration,
    /// `TESSERA_MAX_CONNECTIONS`, already capped by the open-file limit.
    pub max_connections: usize,
    /// `TESSERA_MAX_CONNECTIONS_PER_CLIENT`.
    pub max_connections_per_client: usize,
    /// `TESSERA_TRUSTED_PROXIES`: peers that carry many clients' connections,
    /// held only to the total cap (the client behind them is known per
    /// request, not per connection).
    pub trusted_proxies: tessera_http::TrustedProxies,
    /// `TESSERA_SHUTDOWN_TIMEOUT`: longest the drain waits for requests in flight.
    pub drain: Duration,
    /// HTTPS when set (`TESSERA_TLS_CERT_FILE`), else clear text.
    pub tls: Option<Arc<Tls>>,
}

/// Raises the open-file soft limit to the hard limit (where the platform
/// allows) and returns the connection cap: `wanted`, but at most 80 % of the
/// soft limit, leaving room for the database, log files and outbound calls.
pub fn connection_cap(wanted: usize) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            current_soft_limit()
        }
    };
    let Some(soft) = soft.filter(|&s| s > 0) else { return wanted };
    let budget = usize::try_from(soft / 10 * 8).unwrap_or(usize::MAX).max(1);
    if wanted > budget {
        tracing::warn!(
            wanted,
            budget,
            open_file_limit = soft,
            "TESSERA_MAX_CONNECTIONS lowered to 80% of the open-file limit"
        );
    }
    wanted.min(budget)
}

#[cfg(unix)]
fn current_soft_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
}

#[cfg(not(unix))]
fn current_soft_limit() -> Option<u64> {
    None
}

/// Serves `app` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ListenerOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(opts.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Slots::new(opts.max_connections, opts.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let accept_errors = Throttled::default();
    let tls_refusals = Arc::new(AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the caps should prevent it.
                    if let Some(suppressed) = accept_errors.due() {
                        tracing::error!(error = %e, suppressed, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let per_client = !opts.trusted_proxies.contains(peer.ip());
        let slot = match slots.admit(peer.ip(), per_client) {
            Ok(slot) => slot,
            Err(reason) => {
                match &opts.tls {
                    None => refuse(&stream, reason, &slots.refusals),
                    Some(tls) => refuse_tls(stream, tls, reason, &slots.refusals, &tls_refusals),
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            app: app.clone(),
            peer,
            slot,
            deadline: tokio::time::Instant::now() + opts.header_read_timeout,
        };
        match &opts.tls {
            None => {
                tokio::spawn(conn.serve(stream));
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                tokio::spawn(async move {
                    // The handshake counts against the first request head's time.
                    match tokio::time::timeout_at(conn.deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => conn.serve(tls_stream).await,
                        Ok(Err(e)) => tracing::debug!(peer = %conn.peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            tracing::debug!(peer = %conn.peer, "TLS handshake not done within the header timeout")
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "draining connections");
    if tokio::time::timeout(opts.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after TESSERA_SHUTDOWN_TIMEOUT; closing them");
    }
    Ok(())
}

/// One admitted connection, before its transport is known to be ready.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    app: Router,
    peer: SocketAddr,
    slot: Slot,
    /// When the first request head must be in.
    deadline: tokio::time::Instant,
}

impl Connection {
    /// Serves HTTP on `io` until the connection ends; the slot is released then.
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self { builder, watcher, app, peer, slot, deadline } = self;
        let _slot = slot;
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            // Handlers read the peer as axum's ConnectInfo, as with axum::serve.
            req.extensions_mut().insert(ConnectInfo(peer));
            req.map(axum::body::Body::new)
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        let conn = watcher.watch(conn.into_owned());
        tokio::pin!(conn);
        // hyper's header timeout starts once it knows the protocol; this one
        // covers a client that sends nothing, or half an h2 preface.
        tokio::select! {
            _ = &mut conn => return,
            () = tokio::time::sleep_until(deadline) => {}
        }
        if started.load(Ordering::Relaxed) {
            let _ = conn.await;
        }
    }
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    Total,
    PerClient,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::PerClient => "per_client",
        }
    }
}

/// The answer to a connection over a cap.
fn refusal_answer() -> String {
    const BODY: &str =
        r#"{"error":{"code":"too_many_connections","message":"too many open connections; retry later"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    )
}

fn count_refusal(reason: Refusal, log: &Throttled) {
    metrics::counter!("tessera_connections_refused_total", "reason" => reason.label()).increment(1);
    if let Some(suppressed) = log.due() {
        tracing::warn!(reason = reason.label(), suppressed, "connection refused: over the connection cap");
    }
}

/// Answers 503 if the socket takes it without waiting, and closes.
fn refuse(stream: &TcpStream, reason: Refusal, log: &Throttled) {
    count_refusal(reason, log);
    let _ = stream.try_write(refusal_answer().as_bytes());
}

/// Over TLS a clear-text answer would be unreadable: the 503 goes after a
/// short handshake, on a task of its own, a bounded number at a time.
fn refuse_tls(stream: TcpStream, tls: &Tls, reason: Refusal, log: &Throttled, in_flight: &Arc<AtomicUsize>) {
    count_refusal(reason, log);
    if in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_TLS_REFUSALS {
        in_flight.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let (acceptor, in_flight) = (tls.acceptor(), in_flight.clone());
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_HANDSHAKE, async move {
            let mut s = acceptor.accept(stream).await?;
            s.write_all(refusal_answer().as_bytes()).await?;
            s.shutdown().await
        })
        .await;
        in_flight.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Open connections, in total and per client address.
struct Slots {
    inner: Arc<SlotsInner>,
    refusals: Throttled,
}

struct SlotsInner {
    total: AtomicUsize,
    max_total: usize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    max_per_client: usize,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    inner: Arc<SlotsInner>,
    ip: IpAddr,
}

impl Slots {
    fn new(max_total: usize, max_per_client: usize) -> Self {
        let inner = SlotsInner {
            total: AtomicUsize::new(0),
            max_total,
            per_client: Mutex::new(HashMap::new()),
            max_per_client,
        };
        Self { inner: Arc::new(inner), refusals: Throttled::default() }
    }

    fn admit(&self, ip: IpAddr, per_client_cap: bool) -> Result<Slot, Refusal> {
        let ip = ip.to_canonical();
        let mut per_client = self.inner.per_client.lock().expect("the connection table is never poisoned");
        if self.inner.total.load(Ordering::Relaxed) >= self.inner.max_total {
            return Err(Refusal::Total);
        }
        let n = per_client.entry(ip).or_insert(0);
        if per_client_cap && *n >= self.inner.max_per_client {
            return Err(Refusal::PerClient);
        }
        *n += 1;
        let total = self.inner.total.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("tessera_open_connections").set(total as f64);
        Ok(Slot { inner: self.inner.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_client = self.inner.per_client.lock().expect("the connection table is never poisoned");
        if let Some(n) = per_client.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.ip);
            }
        }
        let total = self.inner.total.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("tessera_open_connections").set(total as f64);
    }
}

/// Lets one log line through per [`LOG_EVERY`], counting the ones held back.
#[derive(Default)]
struct Throttled {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttled {
    /// Some(lines held back since the last one) when a line is due.
    fn due(&self) -> Option<u64> {
        let mut last = self.last.lock().expect("the log throttle is never poisoned");
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(Instant::now());
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_client_and_in_total_and_free_on_drop() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let a1 = slots.admit(a, true).expect("first");
        let _a2 = slots.admit(a, true).expect("second");
        assert!(matches!(slots.admit(a, true), Err(Refusal::PerClient)));
        let _b1 = slots.admit(b, true).expect("another client");
        assert!(matches!(slots.admit(b, true), Err(Refusal::Total)));
        drop(a1);
        assert!(slots.admit(b, true).is_ok(), "a closed connection frees its place");
        let proxies = Slots::new(3, 1);
        let _p1 = proxies.admit(a, false).expect("a trusted proxy");
        assert!(proxies.admit(a, false).is_ok(), "a trusted proxy is held to the total only");
    }

    #[test]
    fn the_cap_never_exceeds_the_open_file_budget() {
        let cap = connection_cap(usize::MAX);
        assert!(cap < usize::MAX);
        assert_eq!(connection_cap(1), 1);
    }
}
