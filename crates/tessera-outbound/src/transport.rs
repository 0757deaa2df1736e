//! The one `reqwest::Client` and how an answer is read. The token calls go
//! through the `oauth2` crate's `AsyncHttpClient` plumbing: `oauth2` builds
//! the request, [`Transport`] sends it and classifies every non-success
//! itself (see [`crate::classify`]), so `oauth2` only ever parses 2xx token
//! responses. That is needed because `oauth2`'s own errors drop the HTTP
//! status, which is what tells a 503 (retry) from a 400 (refused).

use crate::classify;
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tessera_core::oauth::OAuthError;

/// Connect timeout, below the total timeout when that is longer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Answers larger than this are refused (a token response is a few KiB).
const MAX_BODY: usize = 1024 * 1024;
/// `User-Agent` on every call.
const USER_AGENT: &str = concat!("tessera/", env!("CARGO_PKG_VERSION"));

/// A provider's answer, read in full.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// The shared HTTP client: rustls, no redirects, bounded in time and size.
pub(crate) struct Transport {
    http: reqwest::Client,
}

/// How a token call failed before `oauth2` could parse anything.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TransportError(pub(crate) OAuthError);

impl Transport {
    pub(crate) fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            // Following redirects would let a provider point us anywhere (SSRF),
            // as the oauth2 crate's docs warn.
            .redirect(Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(Self { http })
    }

    /// Sends `request` and reads the answer, whatever its status.
    pub(crate) async fn send(&self, request: reqwest::Request) -> Result<Answer, OAuthError> {
        let mut response = self.http.execute(request).await.map_err(unavailable)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(OAuthError::Invalid("the answer is larger than 1 MiB".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body })
    }

    /// A token-endpoint call: every non-success is classified here.
    async fn token_call(&self, request: HttpRequest) -> Result<HttpResponse, OAuthError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|_| OAuthError::Invalid("the token request could not be built".to_owned()))?;
        let answer = self.send(request).await?;
        if !answer.status.is_success() {
            return Err(classify::failure(answer.status, &answer.body));
        }
        // Some providers (GitHub) answer errors with 200 and an RFC 6749 body.
        if !has_access_token(&answer.body) {
            if let Some(rejected) = classify::rfc6749_error(&answer.body) {
                return Err(rejected);
            }
        }
        // oauth2 insists on 200; any 2xx with a token body is a success.
        let mut response = http_response(StatusCode::OK, answer.body);
        *response.headers_mut() = answer.headers;
        Ok(response)
    }
}

impl<'c> AsyncHttpClient<'c> for Transport {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move { self.token_call(request).await.map_err(TransportError) })
    }
}

fn http_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::new(body);
    *response.status_mut() = status;
    response
}

fn has_access_token(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        access_token: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|p| p.access_token.is_some())
}

/// A transport failure, with a short reason and no URL.
fn unavailable(err: reqwest::Error) -> OAuthError {
    let reason = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    };
    tracing::debug!(error = %err.without_url(), "outbound OAuth call failed");
    OAuthError::Unavailable(reason.to_owned())
}
