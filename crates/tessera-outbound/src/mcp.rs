//! [`HttpMcpClient`], the implementation of the outbound MCP port: MCP's
//! Streamable HTTP transport (spec 2025-03-26 and later), client side.
//!
//! - `initialize` (protocol version, no capabilities, `clientInfo`), the
//!   `Mcp-Session-Id` the server answers with, then
//!   `notifications/initialized`; every later request carries the session id
//!   and `MCP-Protocol-Version`.
//! - Sessions are cached per session key (tenant and integration) in a
//!   bounded map; a server that no longer knows a session (HTTP 404 as the
//!   spec says, or 400 as some servers answer an unknown session id) gets one
//!   new `initialize` and the call is sent once more.
//! - Answers may be `application/json` or `text/event-stream`: the SSE
//!   stream is read event by event until the JSON-RPC response with the
//!   request's id arrives (server notifications on the way are skipped).
//! - A JSON-RPC error, or a result with `isError: true`, is checked against
//!   `tools/list`: a tool the server does not list is [`McpError::UnknownTool`].
//! - One time limit covers the whole call (initialization and retry
//!   included), a 5 s connect limit each request; redirects are never
//!   followed; answers are read up to 16 MiB. Neither the bearer token nor
//!   the arguments are ever logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tessera_core::mcp::{McpClient, McpError};

/// The protocol version asked for in `initialize`.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// Sessions kept at most (the least recently used goes first).
const MAX_SESSIONS: usize = 10_000;
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Pages of `tools/list` read at most when checking whether a tool exists.
const MAX_LIST_PAGES: usize = 20;
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// An initialized session.
#[derive(Clone)]
struct Session {
    url: url::Url,
    /// None when the server runs stateless (it issued no id).
    id: Option<String>,
    protocol_version: String,
    last_used: Instant,
}

/// What one request got back.
enum Answer {
    /// The JSON-RPC response with the request's id.
    Response(Value),
    /// The server does not know the session (any more).
    SessionGone,
}

/// The MCP client: one `reqwest::Client` (rustls, no redirects, no
/// `HTTP(S)_PROXY`), sessions by key.
pub struct HttpMcpClient {
    client: reqwest::Client,
    timeout: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    next_id: AtomicU64,
}

impl HttpMcpClient {
    /// A client whose tool calls (initialization and retry included) take at most `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, crate::BuildError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(crate::BuildError)?;
        Ok(Self { client, timeout, sessions: Mutex::new(HashMap::new()), next_id: AtomicU64::new(1) })
    }

    /// How many sessions are cached (for tests and metrics).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn cached(&self, key: &str, url: &url::Url) -> Option<Session> {
        let mut sessions = self.sessions.lock().ok()?;
        let s = sessions.get_mut(key).filter(|s| &s.url == url)?;
        s.last_used = Instant::now();
        Some(s.clone())
    }

    fn remember(&self, key: &str, session: Session) {
        let Ok(mut sessions) = self.sessions.lock() else { return };
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(key) {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(key.to_owned(), session);
    }

    fn forget(&self, key: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(key);
        }
    }

    async fn call(
        &self,
        key: &str,
        url: &url::Url,
        bearer: Option<&SecretString>,
        tool: &str,
        arguments: Value,
    ) -> Result<Value, McpError> {
        let params = json!({"name": tool, "arguments": arguments});
        let (mut session, mut fresh) = match self.cached(key, url) {
            Some(s) => (s, false),
            None => (self.initialize(key, url, bearer).await?, true),
        };
        let response = loop {
            match self.request(&session, bearer, "tools/call", &params).await? {
                Answer::Response(r) => break r,
                Answer::SessionGone if !fresh => {
                    tracing::debug!(session_key = key, "MCP session expired; initializing again");
                    self.forget(key);
                    session = self.initialize(key, url, bearer).await?;
                    fresh = true;
                }
                Answer::SessionGone => {
                    return Err(McpError::Protocol("the server refused the session it had just created".into()))
                }
            }
        };
        if let Some(error) = response.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("no message").to_owned();
            if !self.lists_tool(&session, bearer, tool).await? {
                return Err(McpError::UnknownTool(tool.to_owned()));
            }
            return Err(McpError::ToolError(message));
        }
        let result =
            response.get("result").cloned().ok_or_else(|| McpError::Protocol("a response without result".into()))?;
        if result.get("isError").and_then(Value::as_bool) == Some(true)
            && !self.lists_tool(&session, bearer, tool).await?
        {
            return Err(McpError::UnknownTool(tool.to_owned()));
        }
        Ok(result)
    }

    /// `initialize` and `notifications/initialized`; the session is cached.
    async fn initialize(&self, key: &str, url: &url::Url, bearer: Option<&SecretString>) -> Result<Session, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "tessera", "version": env!("CARGO_PKG_VERSION")},
        }});
        let resp = self.post(url, None, None, bearer, &body).await?;
        let session_id = resp.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if !resp.status().is_success() {
            return Err(status_error(resp.status()));
        }
        let response = read_response(resp, id).await?;
        if let Some(error) = response.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
            return Err(McpError::Protocol(format!("initialize was refused: {message}")));
        }
        let protocol_version = response
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::Protocol("initialize answered no protocolVersion".into()))?
            .to_owned();
        let session = Session { url: url.clone(), id: session_id, protocol_version, last_used: Instant::now() };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let resp = self.post(url, session.id.as_deref(), Some(&session.protocol_version), bearer, &note).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status()));
        }
        self.remember(key, session.clone());
        Ok(session)
    }

    /// One request in a session.
    async fn request(
        &self,
        session: &Session,
        bearer: Option<&SecretString>,
        method: &str,
        params: &Value,
    ) -> Result<Answer, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp =
            self.post(&session.url, session.id.as_deref(), Some(&session.protocol_version), bearer, &body).await?;
        let status = resp.status();
        let gone = status == StatusCode::NOT_FOUND || (status == StatusCode::BAD_REQUEST && session.id.is_some());
        if gone {
            return Ok(Answer::SessionGone);
        }
        if !status.is_success() {
            return Err(status_error(status));
        }
        Ok(Answer::Response(read_response(resp, id).await?))
    }

    /// Whether the server's `tools/list` names `tool`.
    async fn lists_tool(&self, session: &Session, bearer: Option<&SecretString>, tool: &str) -> Result<bool, McpError> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let Answer::Response(r) = self.request(session, bearer, "tools/list", &params).await? else {
                return Ok(true);
            };
            let Some(result) = r.get("result") else { return Ok(true) };
            let tools = result.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
            if tools.iter().any(|t| t.get("name").and_then(Value::as_str) == Some(tool)) {
                return Ok(true);
            }
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return Ok(false),
            }
        }
        // Too many pages to be sure: do not claim the tool is unknown.
        Ok(true)
    }

    async fn post(
        &self,
        url: &url::Url,
        session_id: Option<&str>,
        protocol_version: Option<&str>,
        bearer: Option<&SecretString>,
        body: &Value,
    ) -> Result<reqwest::Response, McpError> {
        let mut req = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(serde_json::to_vec(body).expect("JSON serialises"));
        if let Some(id) = session_id {
            req = req.header(SESSION_HEADER, id);
        }
        if let Some(v) = protocol_version {
            req = req.header(VERSION_HEADER, v);
        }
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| McpError::Protocol("the access token cannot be sent in a header".into()))?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let resp = req.send().await.map_err(|e| transport_error(e, Some(url)))?;
        if resp.status().is_redirection() {
            return Err(McpError::Protocol(format!("HTTP {} (redirects are not followed)", resp.status().as_u16())));
        }
        Ok(resp)
    }
}

#[async_trait]
impl McpClient for HttpMcpClient {
    async fn call_tool(
        &self,
        session_key: &str,
        url: &url::Url,
        bearer: Option<&SecretString>,
        tool: &str,
        arguments: Value,
    ) -> Result<Value, McpError> {
        match tokio::time::timeout(self.timeout, self.call(session_key, url, bearer, tool, arguments)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(McpError::Timeout),
        }
    }
}

/// A call that got no (whole) answer; `url` names the host when known.
fn transport_error(e: reqwest::Error, url: Option<&url::Url>) -> McpError {
    if e.is_timeout() && !e.is_connect() {
        McpError::Timeout
    } else {
        let host = url.map_or_else(|| "the server".to_owned(), crate::why::host_of);
        let cause = crate::why::cause(&e);
        tracing::debug!(error = %e.without_url(), "MCP call failed");
        McpError::Unreachable(format!("{host}: {cause}"))
    }
}

fn status_error(status: StatusCode) -> McpError {
    match status.as_u16() {
        401 | 403 => McpError::Unauthorized(status.as_u16()),
        502..=504 => McpError::Unreachable(format!("it answered HTTP {}", status.as_u16())),
        s => McpError::Protocol(format!("HTTP {s}")),
    }
}

/// The JSON-RPC response with id `id`, from a JSON or an SSE answer.
async fn read_response(mut resp: reqwest::Response, id: u64) -> Result<Value, McpError> {
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_default();
    let mut buf: Vec<u8> = Vec::new();
    if content_type.starts_with("text/event-stream") {
        let mut events = SseEvents::default();
        loop {
            let chunk = resp.chunk().await.map_err(|e| transport_error(e, None))?;
            let Some(chunk) = chunk else {
                return Err(McpError::Protocol("the event stream ended without the response".into()));
            };
            if events.pending_len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(McpError::Protocol("the answer is over 16 MiB".into()));
            }
            for data in events.push(&chunk) {
                if let Ok(message) = serde_json::from_str::<Value>(&data) {
                    if let Some(found) = matching(message, id) {
                        return Ok(found);
                    }
                }
            }
        }
    }
    if !content_type.starts_with("application/json") {
        return Err(McpError::Protocol(format!("unexpected content type {content_type:?}")));
    }
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(e, None))? {
        if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(McpError::Protocol("the answer is over 16 MiB".into()));
        }
        buf.extend_from_slice(&chunk);
    }
    let message: Value =
        serde_json::from_slice(&buf).map_err(|_| McpError::Protocol("the answer is not JSON".into()))?;
    matching(message, id).ok_or_else(|| McpError::Protocol("no response with the request's id".into()))
}

/// The response with id `id` in a message or a batch.
fn matching(message: Value, id: u64) -> Option<Value> {
    let is_ours = |m: &Value| {
        m.get("id").and_then(Value::as_u64) == Some(id) && (m.get("result").is_some() || m.get("error").is_some())
    };
    match message {
        Value::Array(items) => items.into_iter().find(is_ours),
        m if is_ours(&m) => Some(m),
        _ => None,
    }
}

/// A server-sent events parser: bytes in, the `data` of each complete event out.
#[derive(Default)]
struct SseEvents {
    pending: Vec<u8>,
    data: Vec<String>,
}

impl SseEvents {
    fn pending_len(&self) -> usize {
        self.pending.len() + self.data.iter().map(String::len).sum::<usize>()
    }

    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\n').trim_end_matches('\r');
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data.push(rest.strip_prefix(' ').unwrap_or(rest).to_owned());
            }
            // `event:`, `id:`, `retry:` and comments do not matter here.
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_across_chunks() {
        let mut p = SseEvents::default();
        assert!(p.push(b"event: message\r\nid: 1\r\ndata: {\"a\":").is_empty());
        assert_eq!(p.push(b"1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\n"), vec!["{\"a\":1}", "x\ny"]);
    }

    #[test]
    fn only_the_response_with_our_id_matches() {
        assert!(matching(json!({"jsonrpc": "2.0", "method": "notifications/message"}), 3).is_none());
        assert!(matching(json!({"jsonrpc": "2.0", "id": 2, "result": {}}), 3).is_none());
        assert!(matching(json!({"jsonrpc": "2.0", "id": 3, "result": {}}), 3).is_some());
        assert!(matching(json!([{"id": 1, "result": {}}, {"id": 3, "error": {"code": -1}}]), 3).is_some());
    }
}
