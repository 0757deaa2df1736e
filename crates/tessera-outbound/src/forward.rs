//! The proxy's outbound leg, behind tessera-core's [`Upstream`] port (and
//! the health probe's and webhooks' ports): one `reqwest` client that never
//! follows a redirect (a redirect to another host must not take the tenant's
//! credential with it) and ignores `HTTP(S)_PROXY` variables, with a time
//! limit per call. It sends what the service layer built, nothing more.

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::HeaderMap;
use tessera_core::ports::{Upstream, UpstreamBody, UpstreamError, UpstreamRequest, UpstreamResponse};

/// Sends proxied calls.
pub struct Forwarder {
    client: reqwest::Client,
    timeout: Duration,
}

impl Forwarder {
    /// A forwarder whose calls (head and body) take at most `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, crate::BuildError> {
        Self::build(timeout, None)
    }

    /// A client for webhook deliveries: as [`Forwarder::new`], but host names
    /// resolve only to addresses a tenant-chosen URL may reach (loopback only
    /// with `allow_loopback`; never private or link-local ones).
    pub fn for_webhooks(timeout: Duration, allow_loopback: bool) -> Result<Self, crate::BuildError> {
        Self::build(timeout, Some(std::sync::Arc::new(crate::public_dns::PublicOnly { allow_loopback })))
    }

    fn build(
        timeout: Duration,
        resolver: Option<std::sync::Arc<crate::public_dns::PublicOnly>>,
    ) -> Result<Self, crate::BuildError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(resolver) = resolver {
            builder = builder.dns_resolver(resolver);
        }
        let client = builder.build().map_err(crate::BuildError)?;
        Ok(Self { client, timeout })
    }

    /// Sends one call and returns the upstream's answer (its body still streaming).
    async fn request(
        &self,
        method: reqwest::Method,
        url: url::Url,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, UpstreamError> {
        let host = crate::why::host_of(&url);
        self.client.request(method, url).headers(headers).body(body).send().await.map_err(|e| {
            if e.is_timeout() && !e.is_connect() {
                UpstreamError::Timeout { host }
            } else {
                let cause = crate::why::cause(&e);
                tracing::debug!(error = %e.without_url(), "proxied call failed");
                UpstreamError::Unreachable { host, cause }
            }
        })
    }

    /// The time limit of a call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[async_trait::async_trait]
impl Upstream for Forwarder {
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let body = match request.body {
            UpstreamBody::Full(bytes) => reqwest::Body::from(bytes),
            UpstreamBody::Stream(stream) => reqwest::Body::wrap_stream(stream),
        };
        let mut answer = self.request(request.method, request.url, request.headers, body).await?;
        let (status, headers) = (answer.status(), std::mem::take(answer.headers_mut()));
        let body = answer.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other));
        Ok(UpstreamResponse { status, headers, body: Box::pin(body) })
    }
}

#[async_trait::async_trait]
impl tessera_core::health::HttpProbe for Forwarder {
    async fn probe(
        &self,
        method: &str,
        url: url::Url,
        auth: tessera_core::health::ProbeAuth<'_>,
    ) -> tessera_core::health::ProbeOutcome {
        use secrecy::ExposeSecret;
        use tessera_core::health::{ProbeAuth, ProbeOutcome};
        let method = if method == "HEAD" { reqwest::Method::HEAD } else { reqwest::Method::GET };
        let mut headers = HeaderMap::new();
        if let ProbeAuth::Header(name, value) = auth {
            if let (Ok(n), Ok(mut v)) = (
                reqwest::header::HeaderName::try_from(name),
                reqwest::header::HeaderValue::from_str(value.expose_secret()),
            ) {
                v.set_sensitive(true);
                headers.insert(n, v);
            }
        }
        let started = std::time::Instant::now();
        match self.request(method, url, headers, reqwest::Body::from(Vec::new())).await {
            // Only the head matters; the body is dropped unread.
            Ok(r) => ProbeOutcome::Answered { status: r.status().as_u16(), latency: started.elapsed() },
            Err(e) => ProbeOutcome::NoAnswer(e.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl tessera_core::webhook::WebhookSender for Forwarder {
    async fn post(
        &self,
        url: url::Url,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> tessera_core::webhook::SendOutcome {
        use tessera_core::webhook::SendOutcome;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&value) {
                map.insert(reqwest::header::HeaderName::from_static(name), v);
            }
        }
        let host = crate::why::host_of(&url);
        match self.client.post(url).headers(map).body(body).send().await {
            // Only the status matters; the body is dropped unread.
            Ok(r) => SendOutcome::Answered(r.status().as_u16()),
            Err(e) if e.is_timeout() && !e.is_connect() => {
                SendOutcome::NoAnswer(UpstreamError::Timeout { host }.to_string())
            }
            // Which host and why; never the URL's path or query.
            Err(e) => {
                SendOutcome::NoAnswer(UpstreamError::Unreachable { host, cause: crate::why::cause(&e) }.to_string())
            }
        }
    }
}
