//! The registry: `/integrations`, defaults, and connection queries.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::service::{ConnectionMatches, DefaultsView, IntegrationInput, IntegrationList, IntegrationView};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Body, Caller, Path, Query};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list).post(create))
        .route("/integrations/{key}", get(read).put(update).delete(remove))
        .route("/integrations/{key}/defaults", put(put_defaults).get(get_defaults))
        .route("/integrations/{key}/connections", get(connections))
}

/// Registers an integration (admin).
#[utoipa::path(post, path = "/integrations", operation_id = "createIntegration", tag = "integrations", request_body = IntegrationInput,
    responses((status = 201, body = IntegrationView), (status = 400), (status = 409)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body(b): Body<IntegrationInput>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(s.svc.create_integration(&ctx, b).await?)))
}

/// Lists the registry.
#[utoipa::path(get, path = "/integrations", operation_id = "listIntegrations", tag = "integrations", responses((status = 200, body = IntegrationList)))]
pub(crate) async fn list(State(s): State<AppState>, Caller(ctx): Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(IntegrationList { integrations: s.svc.list_integrations(&ctx).await? }))
}

/// One integration.
#[utoipa::path(get, path = "/integrations/{key}", operation_id = "getIntegration", tag = "integrations", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = IntegrationView), (status = 404)))]
pub(crate) async fn read(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.get_integration(&ctx, &key).await?))
}

/// Replaces an integration's definition (admin).
#[utoipa::path(put, path = "/integrations/{key}", operation_id = "updateIntegration", tag = "integrations", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")), request_body = IntegrationInput,
    responses((status = 200, body = IntegrationView), (status = 404)))]
pub(crate) async fn update(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
    Body(b): Body<IntegrationInput>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.update_integration(&ctx, &key, b).await?))
}

/// Removes an integration, its connections and their secrets (admin).
#[utoipa::path(delete, path = "/integrations/{key}", operation_id = "deleteIntegration", tag = "integrations", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 204), (status = 404)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.svc.delete_integration(&ctx, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a config write.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigBody {
    /// Field values; `null` or `""` removes an override.
    #[schema(value_type = Object)]
    pub(crate) config: Map<String, Value>,
    /// Enables or disables the connection (tenant config only).
    #[serde(default)]
    pub(crate) is_enabled: Option<bool>,
}

/// Sets global defaults; secret fields are encrypted (admin).
#[utoipa::path(put, path = "/integrations/{key}/defaults", operation_id = "putIntegrationDefaults", tag = "integrations", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")), request_body = ConfigBody,
    responses((status = 200, body = DefaultsView), (status = 400), (status = 404)))]
pub(crate) async fn put_defaults(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
    Body(b): Body<ConfigBody>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.put_defaults(&ctx, &key, b.config).await?))
}

/// Global defaults, secrets masked (admin).
#[utoipa::path(get, path = "/integrations/{key}/defaults", operation_id = "getIntegrationDefaults", tag = "integrations", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = DefaultsView)))]
pub(crate) async fn get_defaults(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.get_defaults(&ctx, &key).await?))
}

/// Tenants whose public config matches every `config.<field>=<value>` (admin).
#[utoipa::path(get, path = "/integrations/{key}/connections", operation_id = "findConnections", tag = "integrations", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = ConnectionMatches)))]
pub(crate) async fn connections(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult<impl IntoResponse> {
    let filters = q.into_iter().filter_map(|(k, v)| k.strip_prefix("config.").map(|f| (f.to_owned(), v))).collect();
    let found = s.svc.find_connections(&ctx, &key, filters).await?;
    Ok(Json(ConnectionMatches { connections: found, integration: key }))
}
