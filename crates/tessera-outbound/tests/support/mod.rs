//! A fake provider on 127.0.0.1:0: answers each path with a canned reply and
//! records what it received (path, headers of interest, form fields).

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use secrecy::SecretString;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::oauth::{ClientAuth, OAuthClientConfig};
use tessera_outbound::HttpOAuthClient;

/// What the provider answers on one path.
#[derive(Clone)]
pub struct Reply {
    status: u16,
    body: String,
    content_type: Option<&'static str>,
    location: Option<String>,
    delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            content_type: Some("application/json"),
            location: None,
            delay: Duration::ZERO,
        }
    }
    pub fn text(status: u16, content_type: &'static str, body: &str) -> Self {
        Self { content_type: Some(content_type), ..Self::json(status, body) }
    }
    pub fn empty(status: u16) -> Self {
        Self { content_type: None, ..Self::json(status, "") }
    }
    pub fn redirect(location: &str) -> Self {
        Self { location: Some(location.to_owned()), ..Self::empty(302) }
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Received {
    /// The one value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        let mut values = self.form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "field {name} sent twice");
        first
    }

    /// The decoded `user:password` of a Basic header.
    pub fn basic(&self) -> Option<String> {
        let encoded = self.authorization.as_deref()?.strip_prefix("Basic ")?;
        String::from_utf8(BASE64_STANDARD.decode(encoded).ok()?).ok()
    }
}

#[derive(Clone, Default)]
struct Shared {
    replies: Arc<HashMap<String, Reply>>,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct FakeProvider {
    addr: SocketAddr,
    shared: Shared,
}

impl FakeProvider {
    /// Starts a provider answering `path` with `reply` for each pair.
    pub async fn start(replies: &[(&str, Reply)]) -> Self {
        let shared = Shared {
            replies: Arc::new(replies.iter().map(|(p, r)| ((*p).to_owned(), r.clone())).collect()),
            received: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, shared }
    }

    /// A provider answering `/token` only.
    pub async fn token(reply: Reply) -> Self {
        Self::start(&[("/token", reply)]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// The single request received.
    pub fn only_request(&self) -> Received {
        let mut all = self.received();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    /// A confidential client of this provider's `/token`.
    pub fn client(&self, auth: ClientAuth) -> OAuthClientConfig {
        OAuthClientConfig {
            client_id: "tessera app".to_owned(),
            client_secret: Some(SecretString::from(CLIENT_SECRET)),
            auth,
            token_url: self.url("/token"),
        }
    }
}

/// Has characters RFC 6749 2.3.1 wants form-encoded in the Basic header.
pub const CLIENT_SECRET: &str = "cl1ent-s3cret+/=";

/// The client the tests use: short timeout, http to loopback allowed.
pub fn oauth_client() -> HttpOAuthClient {
    HttpOAuthClient::new(Duration::from_secs(2)).expect("client builds").allow_loopback_http()
}

async fn handle(State(shared): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let form = url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    shared.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        accept: header("accept"),
        user_agent: header("user-agent"),
        form,
    });
    let Some(reply) = shared.replies.get(uri.path()).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).expect("status"), reply.body).into_response();
    let headers = response.headers_mut();
    headers.remove("content-type");
    if let Some(content_type) = reply.content_type {
        headers.insert("content-type", content_type.parse().expect("header"));
    }
    if let Some(location) = reply.location {
        headers.insert("location", location.parse().expect("header"));
    }
    response
}
