//! `/healthz`, `/readyz`, `/openapi.json`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiResult;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/openapi.json", get(openapi))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", security(()), tag = "service", responses((status = 200, description = "alive")))]
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Readiness: the metadata store answers, the credential backend can serve
/// (Vault reachable, unsealed, logged in) and the key provider works. A 503
/// names each backend that is not usable and why.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", security(()), tag = "service",
    responses((status = 200, description = "ready: every backend with its status"), (status = 503, description = "a backend is not usable: the message names which and why")))]
pub(crate) async fn readyz(State(s): State<AppState>) -> ApiResult<impl IntoResponse> {
    let ready = s.svc.readiness().await.into_result()?;
    let checks: serde_json::Map<String, serde_json::Value> = ready
        .checks
        .iter()
        .map(|c| (c.component.as_str().to_owned(), json!({"backend": c.backend, "status": "ok"})))
        .collect();
    Ok(Json(json!({"status": "ready", "store": s.svc.store_backend(), "checks": checks})))
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", security(()), tag = "service", responses((status = 200, description = "OpenAPI 3.1")))]
pub(crate) async fn openapi() -> impl IntoResponse {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], crate::openapi_json())
}
