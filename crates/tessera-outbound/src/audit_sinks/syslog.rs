//! `syslog+tcp://host:port`: each event one RFC 5424 message (facility 13,
//! "log audit"; severity informational, notice for a failure, warning for a
//! denial; APP-NAME `tessera`, MSGID the action, MSG the event's JSON line),
//! framed by octet counting (RFC 6587 3.4.1: `<length> <message>`) on one
//! kept connection.
//!
//! Syslog over TCP has no acknowledgement. Before each batch the connection
//! is checked for the receiver having closed it (a receiver that stopped
//! would otherwise swallow the next batch into a dead socket); a write that
//! fails drops the connection and the batch is sent again on a new one. What
//! this cannot see is a receiver that dies after taking a batch into its
//! socket but before reading it; the HTTP sink confirms every batch.

use std::time::Duration;

use async_trait::async_trait;
use tessera_core::audit_sink::{json_line, AuditSink, SinkError};
use tessera_core::service::AuditEventView;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// RFC 5424 facility 13: log audit.
const FACILITY_LOG_AUDIT: u8 = 13;

/// A syslog-over-TCP sink.
pub struct SyslogSink {
    name: String,
    host: String,
    port: u16,
    timeout: Duration,
    /// HOSTNAME of the messages: this machine's name.
    hostname: String,
    conn: Mutex<Option<TcpStream>>,
}

impl SyslogSink {
    /// A sink sending to `host:port`.
    pub fn new(name: String, host: String, port: u16, timeout: Duration) -> Self {
        Self { name, host, port, timeout, hostname: hostname(), conn: Mutex::new(None) }
    }
}

/// This machine's name as RFC 5424 allows it (printable US-ASCII, at most
/// 255), or `-` (the NILVALUE) when unknown.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    printable(raw.trim(), 255)
}

/// Keeps the printable US-ASCII characters (33..=126), at most `max`; `-` if none.
fn printable(raw: &str, max: usize) -> String {
    let s: String = raw.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

/// One event as an RFC 5424 message.
pub(crate) fn message(e: &AuditEventView, hostname: &str, procid: u32) -> String {
    let severity = match e.outcome.as_str() {
        "denied" => 4,
        "failure" => 5,
        _ => 6,
    };
    let pri = FACILITY_LOG_AUDIT * 8 + severity;
    // STRUCTURED-DATA is the NILVALUE: the JSON line in MSG holds every field.
    format!("<{pri}>1 {} {hostname} tessera {procid} {} - {}", e.at, printable(&e.action, 32), json_line(e))
}

/// A batch, octet-counted: `<length> <message>` per event.
pub(crate) fn frames(events: &[AuditEventView], hostname: &str, procid: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * 400);
    for e in events {
        let m = message(e, hostname, procid);
        out.extend_from_slice(format!("{} ", m.len()).as_bytes());
        out.extend_from_slice(m.as_bytes());
    }
    out
}

/// Whether the receiver has not closed the connection: a receiver never
/// sends anything, so end of stream (or an error) means it is gone.
fn still_open(stream: &TcpStream) -> bool {
    let mut scratch = [0u8; 256];
    loop {
        match stream.try_read(&mut scratch) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[async_trait]
impl AuditSink for SyslogSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[AuditEventView]) -> Result<(), SinkError> {
        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_some_and(|s| !still_open(s)) {
            *conn = None;
        }
        if conn.is_none() {
            let connect = TcpStream::connect((self.host.as_str(), self.port));
            let stream = match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(SinkError(format!("cannot connect to the syslog receiver: {e}"))),
                Err(_) => return Err(SinkError("the syslog receiver did not accept a connection in 5 s".into())),
            };
            let _ = stream.set_nodelay(true);
            *conn = Some(stream);
        }
        let stream = conn.as_mut().expect("connected just above");
        let buf = frames(events, &self.hostname, std::process::id());
        let written = tokio::time::timeout(self.timeout, async {
            stream.write_all(&buf).await?;
            stream.flush().await
        })
        .await;
        let failed = match written {
            Ok(Ok(())) if still_open(stream) => None,
            Ok(Ok(())) => Some("the syslog receiver closed the connection".to_owned()),
            Ok(Err(e)) => Some(format!("cannot write to the syslog receiver: {e}")),
            Err(_) => Some("the syslog receiver did not take the batch in time".to_owned()),
        };
        match failed {
            None => Ok(()),
            Some(why) => {
                *conn = None;
                Err(SinkError(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_rfc_5424_with_the_event_as_its_json_and_frames_count_octets() {
        let e = AuditEventView {
            seq: 7,
            id: "id".into(),
            at: "2026-12-01T10:00:00.123Z".into(),
            actor: "k".into(),
            actor_role: "admin".into(),
            tenant_id: None,
            action: "auth.denied".into(),
            resource: "token".into(),
            outcome: "denied".into(),
            request_id: None,
            client_ip: None,
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
        };
        let m = message(&e, "host-1", 42);
        assert!(m.starts_with("<108>1 2026-12-01T10:00:00.123Z host-1 tessera 42 auth.denied - {\"seq\":7,"), "{m}");
        let framed = String::from_utf8(frames(&[e.clone(), e], "h", 1)).expect("utf-8");
        let (len, rest) = framed.split_once(' ').expect("a length");
        let len: usize = len.parse().expect("a number");
        assert!(rest[len..].starts_with(&format!("{len} <108>1")), "the second frame follows the first exactly");
        assert_eq!(printable("a b\u{e9}c", 32), "abc");
        assert_eq!(printable("", 32), "-");
    }
}
