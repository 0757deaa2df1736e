//! `ANY /proxy/{key}/{path...}`: forwards to the integration's base URL
//! with the tenant's credential injected. The caller's own `Authorization`
//! and cookies never leave; the target cannot leave the base URL (see
//! `tessera_core::proxy::target_url`); redirects are passed back, never
//! followed. Small request bodies are held (so a call refused with 401 can
//! be retried after a token refresh), larger or chunked ones stream through;
//! both ways are cut at a size limit, and the call has a time limit.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use futures::StreamExt;
use secrecy::ExposeSecret;
use tessera_core::service::{Injection, ProxyCall, ProxyPlan};
use tessera_core::ServiceError;
use tessera_outbound::{ForwardError, Forwarder};

use crate::error::{ApiError, ApiResult, Passthrough};
use crate::extract::{Caller, Path};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/proxy/{key}", forwarded()).route("/proxy/{key}/{*path}", forwarded())
}

/// The methods the proxy forwards (the OpenAPI document lists the same, see
/// [`FORWARDED_METHODS`]); others, `CONNECT` and `TRACE` among them (a
/// reflecting upstream would hand the injected credential back), get 405
/// with `Allow`.
fn forwarded() -> MethodRouter<AppState> {
    get(forward).head(forward).post(forward).put(forward).patch(forward).delete(forward).options(forward)
}

/// The methods [`forwarded`] routes, as the OpenAPI document lists them.
pub(crate) const FORWARDED_METHODS: [&str; 7] = ["get", "head", "post", "put", "patch", "delete", "options"];

/// Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy owns.
const DROPPED_REQUEST: [&str; 13] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "cookie",
    "x-tenant-id",
    "content-length",
];
const DROPPED_RESPONSE: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "content-length",
];

/// Forwards one call (any method) to the integration's API.
#[utoipa::path(get, path = "/proxy/{key}/{path}", operation_id = "proxyCall", tag = "proxy",
    params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key"), ("path" = String, Path), ("X-Tenant-Id" = String, Header, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "the tenant whose credential is injected: admins must name it; a tenant key may omit it or name only its own tenant")),
    responses((status = 200, description = "the upstream's answer, streamed"), (status = 400), (status = 404), (status = 409), (status = 413), (status = 502)))]
pub(crate) async fn forward(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(params): Path<Vec<(String, String)>>,
    req: Request,
) -> ApiResult<Response> {
    let key = params.iter().find(|(k, _)| k == "key").map(|(_, v)| v.clone()).unwrap_or_default();
    let Some(forwarder) = s.proxy.forwarder.clone() else {
        return Err(ServiceError::unavailable("proxy_unavailable", "this server does not forward calls").into());
    };
    let (parts, body) = req.into_parts();
    let tenant_header = parts.headers.get("x-tenant-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut plan = s.svc.proxy_plan(&ctx, parts.method.as_str(), &key, tenant_header.as_deref()).await?;
    // The raw (still percent-encoded) path after /proxy/<key>/.
    let raw = parts.uri.path().strip_prefix("/proxy/").and_then(|r| r.strip_prefix(key.as_str())).unwrap_or("");
    let raw = raw.strip_prefix('/').unwrap_or(raw);
    let target = tessera_core::proxy::target_url(&plan.base_url, raw, parts.uri.query())?;
    let headers = forwardable(&parts.headers);
    let method = parts.method.clone();
    let outgoing = Outgoing::from_request(&parts.headers, body, s.proxy.max_body_bytes).await?;
    let started = Instant::now();
    let replayable = outgoing.replayable();
    let mut answer = send(&forwarder, &plan, method.clone(), target.clone(), headers.clone(), outgoing.body()).await?;
    if plan.uses_oauth && replayable && answer.as_ref().is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED) {
        // The token may have been revoked or rotated early: refresh once and retry once.
        plan = s.svc.proxy_replan_after_401(&plan).await?;
        answer = send(&forwarder, &plan, method.clone(), target, headers, outgoing.body()).await?;
    }
    let call = |status| ProxyCall { method: method.as_str(), path: raw, status, duration: started.elapsed() };
    match answer {
        Ok(upstream) => {
            s.svc.record_proxy_call(&ctx, &plan, call(Some(upstream.status().as_u16()))).await?;
            Ok(stream_back(upstream, s.proxy.max_response_bytes))
        }
        Err(e) => {
            s.svc.record_proxy_call(&ctx, &plan, call(None)).await?;
            let code = match e {
                ForwardError::Timeout => "upstream_timeout",
                ForwardError::Unreachable => "upstream_unavailable",
            };
            Err(ServiceError::upstream(code, format!("{}: {e}", plan.integration)).into())
        }
    }
}

/// Bodies up to this size (with a `Content-Length`) are held, so a call
/// refused with 401 can be sent again after a refresh; larger or chunked
/// bodies stream through (and are not retried).
const REPLAYABLE_BODY: u64 = 64 * 1024;

/// A request body on its way out.
enum Outgoing {
    /// Read whole (small, or none).
    Held(axum::body::Bytes),
    /// Streamed once, cut beyond the limit.
    Streamed(std::sync::Mutex<Option<reqwest::Body>>),
}

impl Outgoing {
    async fn from_request(headers: &HeaderMap, body: Body, limit: usize) -> Result<Self, ApiError> {
        let too_large = || {
            ApiError(ServiceError::new(
                tessera_core::ErrorKind::TooLarge,
                "payload_too_large",
                "the request body is over the limit",
            ))
        };
        let declared = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let chunked = headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        if !chunked && declared.is_none_or(|n| n <= REPLAYABLE_BODY) {
            return Ok(Self::Held(axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?));
        }
        let mut seen = 0usize;
        let stream = body.into_data_stream().map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            seen += chunk.len();
            if seen > limit {
                return Err(std::io::Error::other("the request body is over the limit"));
            }
            Ok(chunk)
        });
        Ok(Self::Streamed(std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(stream)))))
    }

    fn replayable(&self) -> bool {
        matches!(self, Self::Held(_))
    }

    /// The body to send (a streamed one only once; afterwards empty).
    fn body(&self) -> reqwest::Body {
        match self {
            Self::Held(bytes) => reqwest::Body::from(bytes.clone()),
            Self::Streamed(once) => {
                once.lock().ok().and_then(|mut b| b.take()).unwrap_or_else(|| reqwest::Body::from(Vec::new()))
            }
        }
    }
}

/// Injects the plan's credential and sends the call. A credential that
/// cannot be injected fails the call before anything is sent (the service
/// refuses such values already; this holds whatever the header type accepts).
async fn send(
    forwarder: &Forwarder,
    plan: &ProxyPlan,
    method: axum::http::Method,
    mut url: url::Url,
    mut headers: HeaderMap,
    body: reqwest::Body,
) -> Result<Result<reqwest::Response, ForwardError>, ApiError> {
    match &plan.injection {
        Injection::None => {}
        Injection::Header { name, value } => {
            let (Ok(n), Ok(mut v)) =
                (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value.expose_secret()))
            else {
                return Err(ServiceError::conflict(
                    "proxy_credential_invalid",
                    format!(
                        "{}: the credential for the {name} header cannot be sent; nothing was sent",
                        plan.integration
                    ),
                )
                .into());
            };
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Injection::Query { name, value } => tessera_core::proxy::inject_query(&mut url, name, value.expose_secret()),
    }
    Ok(forwarder.send(method, url, headers, body).await)
}

/// The caller's headers minus hop-by-hop ones, those a `Connection` header
/// names, and the caller's own credentials.
fn forwardable(incoming: &HeaderMap) -> HeaderMap {
    let named_by_connection: Vec<String> = incoming
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let n = name.as_str();
        if DROPPED_REQUEST.contains(&n) || named_by_connection.iter().any(|c| c == n) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

fn stream_back(upstream: reqwest::Response, limit: usize) -> Response {
    let status = upstream.status();
    let mut headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !DROPPED_RESPONSE.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut seen = 0usize;
    let body = upstream.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len();
        if seen > limit {
            // Cutting the stream tells the caller the answer is incomplete.
            return Err(std::io::Error::other("the upstream's answer is over the size limit"));
        }
        Ok(chunk)
    });
    let mut resp = (status, Body::from_stream(body)).into_response();
    *resp.headers_mut() = headers;
    // The upstream's status and body are its own, errors included.
    resp.extensions_mut().insert(Passthrough);
    resp
}
