//! Integration health: one check now, and seed 001's admin aggregate.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tessera_core::service::{HealthResult, TenantsHealth};

use crate::error::ApiResult;
use crate::extract::{Caller, Path};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant_id}/integrations/{key}/health-check", post(check_now))
        .route("/admin/tenants/health", get(all))
}

/// Checks one connection now (through the proxy path) and records the result.
#[utoipa::path(post, path = "/tenants/{tenantId}/integrations/{key}/health-check", operation_id = "runHealthCheck", tag = "health",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = HealthResult), (status = 404), (status = 409)))]
pub(crate) async fn check_now(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.run_health_check(&ctx, &t, &key).await?))
}

/// Every tenant's connections and their health, admins only.
#[utoipa::path(get, path = "/admin/tenants/health", operation_id = "listTenantsHealth", tag = "health", responses((status = 200, body = TenantsHealth)))]
pub(crate) async fn all(State(s): State<AppState>, Caller(ctx): Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.tenants_health(&ctx).await?))
}
