//! `/connect/sessions`: a platform backend mints a Hosted Connect session
//! for one tenant and sends its user to the answer's `url` (the page itself
//! is the console crate's connect adapter); reads where a session stands;
//! ends one early.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tessera_core::service::{ConnectSessionInput, ConnectSessionView, CreatedConnectSession};

use crate::error::ApiResult;
use crate::extract::{Body, Caller, Path};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/connect/sessions", post(create)).route("/connect/sessions/{id}", get(read).delete(end))
}

/// Creates a connect session (admins, or the tenant's `tenant_admin`); the
/// token (also inside `url`) is in this answer only.
#[utoipa::path(post, path = "/connect/sessions", operation_id = "createConnectSession", tag = "connect",
    request_body = ConnectSessionInput,
    responses((status = 201, body = CreatedConnectSession), (status = 400), (status = 404)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body(b): Body<ConnectSessionInput>,
) -> ApiResult<impl IntoResponse> {
    let created = s.svc.create_connect_session(&ctx, b).await?;
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(created)))
}

/// Where a connect session stands: `pending`, `completed`, `expired` or
/// `failed` (cancelled), and what it connected.
#[utoipa::path(get, path = "/connect/sessions/{id}", operation_id = "getConnectSession", tag = "connect",
    params(("id" = String, Path, pattern = r"^cs_[0-9a-f]{32}$", description = "the session's id")),
    responses((status = 200, body = ConnectSessionView), (status = 404)))]
pub(crate) async fn read(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.get_connect_session(&ctx, &id).await?))
}

/// Ends a connect session now and forgets it: its link stops working.
#[utoipa::path(delete, path = "/connect/sessions/{id}", operation_id = "endConnectSession", tag = "connect",
    params(("id" = String, Path, pattern = r"^cs_[0-9a-f]{32}$", description = "the session's id")),
    responses((status = 204), (status = 404)))]
pub(crate) async fn end(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.svc.end_connect_session(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
