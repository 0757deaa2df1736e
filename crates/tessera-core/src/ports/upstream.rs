//! The proxy's outbound port: one HTTP exchange with an integration's API.
//!
//! The service layer decides everything about a proxied call (tenant, target
//! URL, credential, headers, body limits, retry, audit); an implementation of
//! [`Upstream`] only sends what it is given and hands back what came, the
//! body still streaming. The types are the `http` crate's (a vocabulary
//! crate, no I/O), which the HTTP adapter and the HTTP client both use, so
//! headers and bodies cross this boundary without being copied.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A body on its way through, chunk by chunk.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A request body for the upstream.
pub enum UpstreamBody {
    /// Held whole (small): can be sent again.
    Full(Bytes),
    /// Streamed once.
    Stream(BodyStream),
}

/// One call to send. Its headers already hold the injected credential
/// (marked sensitive), and its URL stays under the integration's base.
pub struct UpstreamRequest {
    /// Method.
    pub method: http::Method,
    /// Target.
    pub url: url::Url,
    /// Headers to send as they are.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: UpstreamBody,
}

/// The upstream's answer: its head, and its body still streaming.
pub struct UpstreamResponse {
    /// Status.
    pub status: http::StatusCode,
    /// Headers as the upstream sent them.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: BodyStream,
}

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream took longer than the time limit.
    #[error("{host} did not answer in time")]
    Timeout {
        /// `host:port`.
        host: String,
    },
    /// The upstream could not be reached.
    #[error("{host} could not be reached: {cause}")]
    Unreachable {
        /// `host:port`.
        host: String,
        /// Why, in words: name not resolved, connection refused, TLS, ...
        cause: String,
    },
}

/// Sends proxied calls: never follows a redirect (it would take the
/// credential elsewhere), never goes through an environment's HTTP proxy,
/// and gives up after its time limit.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Sends one call and returns the answer's head.
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError>;
}
