//! `ANY /proxy/{key}/{path...}`: the credential-injecting proxy. The call
//! itself is the service's use case ([`tessera_core::Tessera::proxy`]: plan,
//! inject, refresh and retry, audit, limits); this handler only turns the
//! axum request into the use case's types and its answer back into a
//! response, streaming both bodies.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use futures::TryStreamExt;
use tessera_core::service::ProxyRequest;

use crate::error::{ApiResult, Passthrough};
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
    let key = params.iter().find(|(k, _)| k == "key").map(|(_, v)| v.as_str()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    // The raw (still percent-encoded) path after /proxy/<key>/.
    let raw = parts.uri.path().strip_prefix("/proxy/").and_then(|r| r.strip_prefix(key)).unwrap_or("");
    let raw = raw.strip_prefix('/').unwrap_or(raw);
    let call = ProxyRequest {
        integration: key,
        method: parts.method.clone(),
        path: raw,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: Box::pin(body.into_data_stream().map_err(std::io::Error::other)),
    };
    let answer = s.svc.proxy(&ctx, call).await?;
    let mut resp = (answer.status, Body::from_stream(answer.body)).into_response();
    *resp.headers_mut() = answer.headers;
    // The upstream's status and body are its own, errors included.
    resp.extensions_mut().insert(Passthrough);
    Ok(resp)
}
