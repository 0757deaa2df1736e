//! `/api-keys` and `/audit`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use tessera_core::audit::VerifyReport;
use tessera_core::service::{ApiKeyCreated, ApiKeyList, AuditEvents, AuditQuery};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{Body, Caller, Path, Query};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api-keys", post(create_key).get(list_keys))
        .route("/api-keys/{id}", delete(delete_key))
        .route("/audit", get(audit))
        .route("/audit/verify", get(verify))
}

/// Body of `POST /api-keys` (its schema, a `oneOf`, is written by hand
/// below: a tenant-bound role needs `tenantId`, the others refuse it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewKey {
    /// Human name.
    name: String,
    /// `admin`, `tenant_admin`, `tenant_service` or `auditor`.
    role: String,
    /// Required for tenant-bound roles, refused for the others.
    tenant_id: Option<String>,
    /// Makes a scoped key (tenant-bound roles only).
    #[serde(default)]
    scopes: Option<Vec<tessera_core::service::ScopeInput>>,
}

impl utoipa::ToSchema for NewKey {}

impl utoipa::PartialSchema for NewKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let name = serde_json::to_value(tessera_core::ids::name_schema()).expect("the name schema serialises");
        // A scope names secrets (a path, a prefix ending in `*`, or `*`) or one integration.
        let scopes = |accesses: &[&str]| {
            let access = json!({"type": "string", "enum": accesses});
            json!({
                "type": ["array", "null"], "minItems": 1, "maxItems": 32,
                "description": "Makes a scoped key: it may do only what one of these allows (never widened later).",
                "items": {"oneOf": [
                    {"type": "object", "additionalProperties": false, "required": ["secrets", "access"],
                     "properties": {"secrets": {"type": "string", "maxLength": 512,
                         "pattern": r"^(\*|[A-Za-z0-9.-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*(/\*|\*)?)$"},
                         "access": access}},
                    {"type": "object", "additionalProperties": false, "required": ["integration", "access"],
                     "properties": {"integration": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,62}$"},
                         "access": access}},
                ]}
            })
        };
        let variant = |roles: &[&str], tenant: serde_json::Value, required: &[&str], scopes: serde_json::Value| {
            let mut properties = json!({
                "name": name,
                "role": {"type": "string", "enum": roles,
                    "description": "`admin`, `tenant_admin`, `tenant_service` or `auditor`."},
                "tenantId": tenant,
            });
            // Admin and auditor keys take no scopes (null is the same as none).
            properties["scopes"] = if scopes.is_null() { json!({"type": "null"}) } else { scopes };
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": required,
                "properties": properties,
            })
        };
        let doc = json!({
            "description": "A tenant_admin or tenant_service key names its tenant; an admin or auditor key names none.",
            "oneOf": [
                variant(&["admin", "auditor"], json!({"type": "null"}), &["name", "role"], serde_json::Value::Null),
                variant(&["tenant_admin"],
                    json!({"type": "string", "pattern": r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$"}),
                    &["name", "role", "tenantId"], scopes(&["read", "write"])),
                variant(&["tenant_service"],
                    json!({"type": "string", "pattern": r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$"}),
                    &["name", "role", "tenantId"], scopes(&["read"])),
            ]
        });
        serde_json::from_value(doc).expect("the NewKey schema is a valid schema")
    }
}

/// Creates an API key; the key is in this answer only.
#[utoipa::path(post, path = "/api-keys", operation_id = "createApiKey", tag = "access", request_body = NewKey,
    responses((status = 201, body = ApiKeyCreated), (status = 400), (status = 403)))]
pub(crate) async fn create_key(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body(b): Body<NewKey>,
) -> ApiResult<impl IntoResponse> {
    let created = s.svc.create_api_key(&ctx, &b.name, &b.role, b.tenant_id.as_deref(), b.scopes.as_deref()).await?;
    // `ApiKeyCreated` documents this object in /openapi.json.
    let body = json!({
        "id": created.view.id,
        "key": created.key.expose_secret(),
        "name": created.view.name,
        "role": created.view.role,
        "tenantId": created.view.tenant_id,
        "scopes": created.view.scopes,
        "createdAt": created.view.created_at,
    });
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// Lists API keys (never the keys themselves).
#[utoipa::path(get, path = "/api-keys", operation_id = "listApiKeys", tag = "access", responses((status = 200, body = ApiKeyList)))]
pub(crate) async fn list_keys(State(s): State<AppState>, Caller(ctx): Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(ApiKeyList { api_keys: s.svc.list_api_keys(&ctx).await? }))
}

/// Deletes an API key; it stops working at once on this replica.
#[utoipa::path(delete, path = "/api-keys/{id}", operation_id = "deleteApiKey", tag = "access", params(("id" = String, Path)), responses((status = 204), (status = 404)))]
pub(crate) async fn delete_key(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.svc.delete_api_key(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /audit`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditParams {
    /// Only this tenant.
    #[param(pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$")]
    tenant_id: Option<String>,
    /// Only this action.
    action: Option<String>,
    /// RFC 3339 lower bound.
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only events after this seq (paging).
    after: Option<i64>,
    /// At most this many (default 100; below 1 counts as 1, above 1000 as 1000).
    limit: Option<i64>,
}

/// Audit events, oldest first.
#[utoipa::path(get, path = "/audit", operation_id = "listAudit", tag = "audit", params(AuditParams), responses((status = 200, body = AuditEvents)))]
pub(crate) async fn audit(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Query(q): Query<AuditParams>,
) -> ApiResult<impl IntoResponse> {
    let query = AuditQuery {
        tenant_id: q.tenant_id,
        action: q.action,
        since: q.since,
        after_seq: q.after,
        limit: q.limit,
        ..AuditQuery::default()
    };
    Ok(Json(s.svc.list_audit(&ctx, query).await?))
}

/// Recomputes the hash chain; `ok: false` names the first broken event.
#[utoipa::path(get, path = "/audit/verify", operation_id = "verifyAudit", tag = "audit", responses((status = 200, body = VerifyReport)))]
pub(crate) async fn verify(State(s): State<AppState>, Caller(ctx): Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.verify_audit(&ctx).await?))
}
