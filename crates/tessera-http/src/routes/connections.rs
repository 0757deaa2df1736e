//! A tenant's connections, the resolved view, and the config list.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use tessera_core::service::{ConfigList, ConnectionView, ResolvedConnection, TenantIntegrations};
use utoipa::IntoParams;

use super::integrations::ConfigBody;
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Path, Query};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant_id}/integrations", get(list))
        .route("/tenants/{tenant_id}/integrations/{key}", get(read).delete(remove))
        .route("/tenants/{tenant_id}/integrations/{key}/config", put(put_config))
        .route("/tenants/{tenant_id}/integrations/{key}/resolved", get(resolved))
        .route("/configs", get(configs))
}

/// Every registered integration with this tenant's connection state.
#[utoipa::path(get, path = "/tenants/{tenantId}/integrations", operation_id = "listTenantIntegrations", tag = "connections", params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")),
    responses((status = 200, body = TenantIntegrations), (status = 404)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(t): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.list_tenant_integrations(&ctx, &t).await?))
}

/// One connection: public config, which secret fields are set, health.
#[utoipa::path(get, path = "/tenants/{tenantId}/integrations/{key}", operation_id = "getConnection", tag = "connections",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = ConnectionView), (status = 404)))]
pub(crate) async fn read(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.get_connection(&ctx, &t, &key).await?))
}

/// Removes a connection and its secret values.
#[utoipa::path(delete, path = "/tenants/{tenantId}/integrations/{key}", operation_id = "deleteConnection", tag = "connections",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")), responses((status = 204), (status = 404)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    s.svc.delete_connection(&ctx, &t, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the tenant's overrides; secret fields are encrypted under the tenant's key.
#[utoipa::path(put, path = "/tenants/{tenantId}/integrations/{key}/config", operation_id = "putConnectionConfig", tag = "connections",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")), request_body = ConfigBody,
    responses((status = 200, body = ConnectionView), (status = 400), (status = 422)))]
pub(crate) async fn put_config(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
    Body(b): Body<ConfigBody>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.put_connection_config(&ctx, &t, &key, b.config, b.is_enabled).await?))
}

/// The SDK view: defaults and overrides merged, secrets decrypted. Audited.
#[utoipa::path(get, path = "/tenants/{tenantId}/integrations/{key}/resolved", operation_id = "resolveConnection", tag = "connections",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = ResolvedConnection, description = "the merged config, secrets decrypted"), (status = 404), (status = 409)))]
pub(crate) async fn resolved(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let doc = s.svc.resolve(&ctx, &t, &key).await?;
    Ok(secret_json(doc))
}

/// Query of `GET /configs`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigQuery {
    /// Only this tenant's overrides (and the global defaults).
    tenant_id: Option<String>,
    /// Only this integration.
    integration: Option<String>,
}

/// Global defaults and tenant overrides, secrets masked as `[SECRET]`.
#[utoipa::path(get, path = "/configs", operation_id = "listConfigs", tag = "connections", params(ConfigQuery), responses((status = 200, body = ConfigList)))]
pub(crate) async fn configs(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Query(q): Query<ConfigQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.list_configs(&ctx, q.tenant_id.as_deref(), q.integration.as_deref()).await?))
}

/// A JSON response carrying decrypted values. The buffer moves into the
/// response body without another copy.
pub(crate) fn secret_json(doc: zeroize::Zeroizing<Vec<u8>>) -> impl IntoResponse {
    // Moving the bytes out (leaving the zeroizing buffer empty) avoids a copy:
    // from here the HTTP stack owns them, the one place plaintext leaves
    // zeroizing memory, on its way to the caller who asked for it.
    let mut doc = doc;
    let bytes = std::mem::take(&mut *doc);
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], Bytes::from(bytes))
}
