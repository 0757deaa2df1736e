//! `/tenants` and `/tenants/{tenantId}`, and tenant data keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tessera_core::service::{KeyVersionView, KeysView, TenantList, TenantView};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Body, Caller, Path};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants", post(create).get(list))
        .route("/tenants/{tenant_id}", get(read).delete(remove))
        .route("/tenants/{tenant_id}/keys", get(keys))
        .route("/tenants/{tenant_id}/keys/rotate", post(rotate))
}

/// Body of `POST /tenants`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenant {
    /// Slug `^[a-z0-9][a-z0-9_-]{0,62}$`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    id: String,
    /// Display name.
    #[schema(schema_with = tessera_core::ids::name_schema)]
    name: String,
}

/// Creates a tenant and its first data key (admin).
#[utoipa::path(post, path = "/tenants", operation_id = "createTenant", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = TenantView), (status = 400), (status = 409)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body(b): Body<NewTenant>,
) -> ApiResult<impl IntoResponse> {
    let t = s.svc.create_tenant(&ctx, &b.id, &b.name).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Lists the tenants the caller may see.
#[utoipa::path(get, path = "/tenants", operation_id = "listTenants", tag = "tenants", responses((status = 200, body = TenantList)))]
pub(crate) async fn list(State(s): State<AppState>, Caller(ctx): Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(TenantList { tenants: s.svc.list_tenants(&ctx).await? }))
}

/// One tenant.
#[utoipa::path(get, path = "/tenants/{tenantId}", operation_id = "getTenant", tag = "tenants", params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")),
    responses((status = 200, body = TenantView), (status = 404)))]
pub(crate) async fn read(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.get_tenant(&ctx, &id).await?))
}

/// Deletes a tenant, its data keys (crypto-shredding) and its rows (admin).
#[utoipa::path(delete, path = "/tenants/{tenantId}", operation_id = "deleteTenant", tag = "tenants", params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")),
    responses((status = 204), (status = 404)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.svc.delete_tenant(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists a tenant's data key versions (admin).
#[utoipa::path(get, path = "/tenants/{tenantId}/keys", operation_id = "listTenantKeys", tag = "keys", params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")),
    responses((status = 200, body = KeysView)))]
pub(crate) async fn keys(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.list_tenant_keys(&ctx, &id).await?))
}

/// Adds a data key version; new writes use it, old versions still decrypt (admin).
#[utoipa::path(post, path = "/tenants/{tenantId}/keys/rotate", operation_id = "rotateTenantKey", tag = "keys", params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")),
    responses((status = 200, body = KeyVersionView)))]
pub(crate) async fn rotate(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.rotate_tenant_key(&ctx, &id).await?))
}
