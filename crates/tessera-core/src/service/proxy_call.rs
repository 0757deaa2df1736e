//! The proxy use case, `ANY /proxy/{key}/{path...}`: one call to an
//! integration's API on a tenant's behalf, from the caller's request to the
//! upstream's answer, over the [`Upstream`] port.
//!
//! In order: plan (tenant, connection, credential: see [`super::proxy`]),
//! target URL under the base, the caller's headers minus what must not
//! leave, the body (held when small, so a call refused with 401 can be sent
//! again after a token refresh; streamed otherwise; cut at the limit either
//! way), the audit event, the call with the credential injected, at most one
//! refresh and retry, the outcome's audit event, the answer streamed back
//! (cut at the limit). Bodies are never logged, audited or copied whole
//! beyond what the retry needs.

use crate::ErrorCode;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use secrecy::ExposeSecret;

use super::proxy::{Injection, ProxyCall, ProxyPlan};
use super::{Ctx, Tessera};
use crate::error::{ErrorKind, ServiceError};
use crate::ports::{BodyStream, Upstream, UpstreamBody, UpstreamError, UpstreamRequest, UpstreamResponse};

/// Bodies up to this size (with a `Content-Length`) are held, so a call
/// refused with 401 can be sent again after a refresh; larger or chunked
/// bodies stream through (and are not retried).
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// Size limits of proxied calls.
#[derive(Debug, Clone, Copy)]
pub struct ProxyLimits {
    /// Largest request body sent on (413 beyond; a streamed one is cut).
    pub max_body_bytes: usize,
    /// Largest answer body passed back (the stream is cut beyond).
    pub max_response_bytes: usize,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, max_response_bytes: 64 * 1024 * 1024 }
    }
}

/// A call as the caller made it.
pub struct ProxyRequest<'a> {
    /// Integration key (from the route).
    pub integration: &'a str,
    /// Method.
    pub method: http::Method,
    /// The path after `/proxy/<key>/`, still percent-encoded.
    pub path: &'a str,
    /// The query, as sent.
    pub query: Option<&'a str>,
    /// The caller's headers, all of them (the service drops what must not
    /// leave; an admin names the tenant with `X-Tenant-Id`).
    pub headers: &'a http::HeaderMap,
    /// The caller's body.
    pub body: BodyStream,
}

/// The upstream's answer, for the caller: its status, its headers minus
/// those the caller never gets, and its body, streaming, cut at the limit.
pub struct ProxyAnswer {
    /// Status.
    pub status: http::StatusCode,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: BodyStream,
}

impl Tessera {
    /// Forwards one call to the integration's API with the tenant's
    /// credential injected. The call is audited before the upstream is
    /// contacted and its outcome after; when the outcome cannot be audited
    /// the caller gets an error, not the answer (fail closed).
    pub async fn proxy(&self, ctx: &Ctx, req: ProxyRequest<'_>) -> Result<ProxyAnswer, ServiceError> {
        let limits = self.opts.proxy;
        let tenant_header = req.headers.get("x-tenant-id").and_then(|v| v.to_str().ok());
        let plan = self.proxy_plan(ctx, req.method.as_str(), req.integration, tenant_header).await?;
        let target = crate::proxy::target_url(&plan.base_url, req.path, req.query)?;
        let headers = crate::proxy::forwardable_headers(req.headers);
        let body = Outgoing::read(req.headers, req.body, limits.max_body_bytes).await?;
        let call = ProxyCall { method: req.method.as_str(), path: req.path };
        self.record_proxy_start(ctx, &plan, &call).await?;
        let started = Instant::now();
        let (plan, answer) =
            self.exchange(self.outbound.upstream.as_ref(), plan, &req.method, target, headers, body).await;
        let status = answer.as_ref().ok().map(|r| r.status.as_u16());
        self.record_proxy_outcome(ctx, &plan, &call, status, started.elapsed()).await?;
        let mut upstream = answer?;
        crate::proxy::strip_response_headers(&mut upstream.headers);
        let body = cut_at(upstream.body, limits.max_response_bytes, "the upstream's answer is over the size limit");
        Ok(ProxyAnswer { status: upstream.status, headers: upstream.headers, body })
    }

    /// Sends the call; when an OAuth token is refused (401) and the body can
    /// be sent again, refreshes the token once and retries once. Returns the
    /// plan the last attempt used.
    async fn exchange(
        &self,
        upstream: &dyn Upstream,
        plan: ProxyPlan,
        method: &http::Method,
        target: url::Url,
        headers: http::HeaderMap,
        mut body: Outgoing,
    ) -> (ProxyPlan, Result<UpstreamResponse, ServiceError>) {
        // Copies for a second attempt only when one can happen.
        let retry = (plan.uses_oauth && body.replayable()).then(|| (target.clone(), headers.clone()));
        let first = send(upstream, &plan, method.clone(), target, headers, body.take()).await;
        let (Some((target, headers)), Ok(answer)) = (retry, &first) else { return (plan, first) };
        if answer.status != http::StatusCode::UNAUTHORIZED {
            return (plan, first);
        }
        drop(first);
        // The token may have been revoked or rotated early: refresh once and retry once.
        let plan = match self.proxy_replan_after_401(&plan).await {
            Ok(fresh) => fresh,
            Err(e) => return (plan, Err(e)),
        };
        let second = send(upstream, &plan, method.clone(), target, headers, body.take()).await;
        (plan, second)
    }
}

/// Injects the plan's credential and sends the call. A credential that
/// cannot go out fails the call before anything is sent (the plan refuses
/// such values already; this holds whatever the header type accepts).
async fn send(
    upstream: &dyn Upstream,
    plan: &ProxyPlan,
    method: http::Method,
    mut url: url::Url,
    mut headers: http::HeaderMap,
    body: UpstreamBody,
) -> Result<UpstreamResponse, ServiceError> {
    match &plan.injection {
        Injection::None => {}
        Injection::Header { name, value } => {
            let (Ok(n), Ok(mut v)) =
                (http::HeaderName::try_from(name.as_str()), http::HeaderValue::from_str(value.expose_secret()))
            else {
                return Err(ServiceError::conflict(
                    ErrorCode::ProxyCredentialInvalid,
                    format!(
                        "{}: the credential for the {name} header cannot be sent; nothing was sent",
                        plan.integration
                    ),
                ));
            };
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Injection::Query { name, value } => crate::proxy::inject_query(&mut url, name, value.expose_secret()),
    }
    upstream.send(UpstreamRequest { method, url, headers, body }).await.map_err(|e| {
        let code = match e {
            UpstreamError::Timeout { .. } => ErrorCode::UpstreamTimeout,
            UpstreamError::Unreachable { .. } => ErrorCode::UpstreamUnavailable,
        };
        ServiceError::upstream(code, format!("{}: {e}", plan.integration))
    })
}

fn too_large() -> ServiceError {
    ServiceError::new(ErrorKind::TooLarge, ErrorCode::PayloadTooLarge, "the request body is over the limit")
}

/// A request body on its way out.
enum Outgoing {
    /// Read whole (small, or none): can be sent twice.
    Held(Bytes),
    /// Streamed once, cut beyond the limit; afterwards empty.
    Streamed(Option<BodyStream>),
}

impl Outgoing {
    /// Holds a body whose declared length is small, streams any other; a
    /// declared length over `limit` is refused before anything is read.
    async fn read(headers: &http::HeaderMap, body: BodyStream, limit: usize) -> Result<Self, ServiceError> {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let chunked = headers.contains_key(http::header::TRANSFER_ENCODING);
        if !chunked && declared.is_none_or(|n| n <= REPLAYABLE_BODY) {
            return Ok(Self::Held(collect(body, limit, declared).await?));
        }
        Ok(Self::Streamed(Some(cut_at(body, limit, "the request body is over the limit"))))
    }

    fn replayable(&self) -> bool {
        matches!(self, Self::Held(_))
    }

    /// The body to send (a held one again and again, without copying).
    fn take(&mut self) -> UpstreamBody {
        match self {
            Self::Held(bytes) => UpstreamBody::Full(bytes.clone()),
            Self::Streamed(once) => once.take().map_or_else(|| UpstreamBody::Full(Bytes::new()), UpstreamBody::Stream),
        }
    }
}

/// Reads a small body whole. One chunk (the usual case) is kept as it is;
/// more are joined once.
async fn collect(mut body: BodyStream, limit: usize, declared: Option<u64>) -> Result<Bytes, ServiceError> {
    let unreadable = |_| ServiceError::invalid(ErrorCode::BodyUnreadable, "the request body could not be read", None);
    let Some(first) = body.next().await.transpose().map_err(unreadable)? else { return Ok(Bytes::new()) };
    if first.len() > limit {
        return Err(too_large());
    }
    let Some(second) = body.next().await.transpose().map_err(unreadable)? else { return Ok(first) };
    let hint = declared.map_or(first.len() + second.len(), |n| usize::try_from(n).unwrap_or(limit));
    let mut joined = BytesMut::with_capacity(hint.min(limit));
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&second);
    while let Some(chunk) = body.next().await.transpose().map_err(unreadable)? {
        if joined.len() + chunk.len() > limit {
            return Err(too_large());
        }
        joined.extend_from_slice(&chunk);
    }
    if joined.len() > limit {
        return Err(too_large());
    }
    Ok(joined.freeze())
}

/// The stream, ending in an error once more than `limit` bytes went
/// through: cutting it tells the receiver the body is incomplete.
fn cut_at(body: BodyStream, limit: usize, why: &'static str) -> BodyStream {
    let mut seen = 0usize;
    Box::pin(body.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len();
        if seen > limit {
            return Err(std::io::Error::other(why));
        }
        Ok(chunk)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> BodyStream {
        let items: Vec<Result<Bytes, std::io::Error>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn small_bodies_are_held_whole_and_cut_at_the_limit() {
        assert_eq!(collect(chunks(&[]), 10, None).await.expect("empty"), Bytes::new());
        assert_eq!(collect(chunks(&[b"abc"]), 10, Some(3)).await.expect("one"), Bytes::from_static(b"abc"));
        assert_eq!(
            collect(chunks(&[b"ab", b"cd", b"e"]), 10, None).await.expect("three"),
            Bytes::from_static(b"abcde")
        );
        let over = collect(chunks(&[b"abcdef", b"ghijkl"]), 10, None).await.expect_err("over");
        assert_eq!(over.kind, ErrorKind::TooLarge);
    }

    #[tokio::test]
    async fn a_streamed_body_ends_in_an_error_past_the_limit() {
        let mut cut = cut_at(chunks(&[b"12345", b"67890", b"x"]), 10, "over");
        assert!(cut.next().await.expect("first").is_ok());
        assert!(cut.next().await.expect("second").is_ok());
        assert!(cut.next().await.expect("third").is_err());
    }
}
