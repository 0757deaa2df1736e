//! Versioned tenant secrets under `/tenants/{tenantId}/secrets`.
//!
//! Actions on a path use a suffix (`POST .../secrets/{path}:undelete`),
//! since a path may have any number of segments; `:` cannot occur in a path.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::service::{SecretList, SecretMetadataView, SecretPayload, SecretWrite, SecretWritten};
use utoipa::{IntoParams, ToSchema};

use super::connections::secret_json;
use crate::error::{bad_request, ApiResult};
use crate::extract::{Body, Caller, Path, Query};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant_id}/secrets", get(list))
        .route("/tenants/{tenant_id}/secrets/{*path}", get(read).put(write).delete(remove).post(action))
}

/// Query of the secret list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only paths starting with this.
    #[serde(default)]
    prefix: String,
}

/// Lists secret paths (never values).
#[utoipa::path(get, path = "/tenants/{tenantId}/secrets", operation_id = "listSecrets", tag = "secrets", params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ListQuery),
    responses((status = 200, body = SecretList)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(t): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.list_secrets(&ctx, &t, &q.prefix).await?))
}

/// Query of a secret read.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadQuery {
    /// A version other than the newest.
    version: Option<u32>,
    /// Present: answer the version metadata instead of the value.
    versions: Option<String>,
}

/// Reads the newest (or `?version=N`) value; `?versions` gives metadata. Audited.
#[utoipa::path(get, path = "/tenants/{tenantId}/secrets/{path}", operation_id = "readSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^[A-Za-z0-9.-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)"), ReadQuery),
    responses((status = 200, description = "{\"path\",\"version\",\"createdAt\",\"value\"|\"data\"} or SecretMetadataView"), (status = 404)))]
pub(crate) async fn read(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<Response> {
    if q.versions.is_some() {
        let meta: SecretMetadataView = s.svc.secret_metadata(&ctx, &t, &path).await?;
        return Ok(Json(meta).into_response());
    }
    Ok(secret_json(s.svc.get_secret(&ctx, &t, &path, q.version).await?).into_response())
}

/// Body of a secret write: exactly one of `value` and `data` (its schema,
/// a `oneOf`, is written by hand below: the derive cannot say "one of").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteBody {
    /// One value.
    value: Option<Value>,
    /// A map of fields.
    data: Option<Map<String, Value>>,
    /// Check-and-set: write only if the current version is this (0: only if new).
    cas: Option<u32>,
    /// Rotation policy (seed 002): a `secret.rotation_due` webhook event once
    /// the secret has not been written for this many days; 0 clears it.
    #[serde(rename = "rotateAfterDays")]
    rotate_after_days: Option<u32>,
}

impl utoipa::ToSchema for WriteBody {}

impl utoipa::PartialSchema for WriteBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let common = |name: &str, payload: Value| {
            serde_json::json!({
                "type": "object",
                "required": [name],
                "additionalProperties": false,
                "properties": {
                    name: payload,
                    "cas": {"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX,
                        "description": "Check-and-set: write only if the current version is this (0: only if new)."},
                    "rotateAfterDays": {"type": ["integer", "null"], "minimum": 0, "maximum": u32::MAX,
                        "description": "A `secret.rotation_due` webhook event once the secret has not been written for this many days; 0 clears it."}
                }
            })
        };
        let doc = serde_json::json!({
            "description": "Exactly one of `value` (any JSON but null) and `data` (a map of fields).",
            "oneOf": [
                common("value", serde_json::json!({"type": ["string", "number", "boolean", "object", "array"], "description": "One value."})),
                common("data", serde_json::json!({"type": "object", "description": "A map of fields."})),
            ]
        });
        serde_json::from_value(doc).expect("the WriteBody schema is a valid schema")
    }
}

/// Writes a new version.
#[utoipa::path(put, path = "/tenants/{tenantId}/secrets/{path}", operation_id = "writeSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^[A-Za-z0-9.-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)")), request_body = WriteBody,
    responses((status = 200, body = SecretWritten), (status = 400), (status = 409)))]
pub(crate) async fn write(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    Body(b): Body<WriteBody>,
) -> ApiResult<impl IntoResponse> {
    let payload = match (b.value, b.data) {
        (Some(v), None) if !v.is_null() => SecretPayload::Value(v),
        (None, Some(d)) => SecretPayload::Data(d),
        _ => {
            return Err(bad_request(
                "invalid_body",
                "send exactly one of \"value\" (not null) and \"data\"",
                Some("value"),
            ))
        }
    };
    Ok(Json(
        s.svc
            .put_secret(&ctx, &t, &path, SecretWrite { payload, cas: b.cas, rotate_after_days: b.rotate_after_days })
            .await?,
    ))
}

/// Query of a delete.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Comma-separated versions (default: the newest).
    versions: Option<String>,
}

/// Soft-deletes the newest version (or `?versions=1,2`); undelete restores it.
#[utoipa::path(delete, path = "/tenants/{tenantId}/secrets/{path}", operation_id = "deleteSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^[A-Za-z0-9.-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)"), DeleteQuery), responses((status = 204), (status = 404)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<impl IntoResponse> {
    let versions = q.versions.as_deref().map(parse_versions).transpose()?;
    s.svc.delete_secret(&ctx, &t, &path, versions).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The action suffix of `POST .../secrets/{path}:{action}` (documentation
/// only: the handler matches the text).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum ActionVerb {
    /// Restore soft-deleted versions.
    Undelete,
    /// Erase versions for good.
    Destroy,
    /// Copy a version as the newest.
    Rollback,
}

/// Body of `:undelete`, `:destroy` and `:rollback`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionBody {
    /// Versions to undelete or destroy.
    #[serde(default)]
    versions: Vec<u32>,
    /// Version to roll back to.
    version: Option<u32>,
}

/// `{path}:undelete`, `{path}:destroy` (erase versions for good) or `{path}:rollback` (copy a version as the newest).
#[utoipa::path(post, path = "/tenants/{tenantId}/secrets/{path}:{action}", operation_id = "secretAction", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^[A-Za-z0-9.-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)"), ("action" = inline(ActionVerb), Path)),
    request_body = ActionBody, responses((status = 200, body = SecretWritten), (status = 204), (status = 404)))]
pub(crate) async fn action(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    Body(b): Body<ActionBody>,
) -> ApiResult<Response> {
    let Some((path, verb)) = path.rsplit_once(':') else {
        return Err(bad_request(
            "unknown_action",
            "POST needs an action suffix: :undelete, :destroy or :rollback",
            None,
        ));
    };
    match verb {
        "undelete" => s.svc.undelete_secret(&ctx, &t, path, b.versions).await?,
        "destroy" => s.svc.destroy_secret(&ctx, &t, path, b.versions).await?,
        "rollback" => {
            let version =
                b.version.ok_or_else(|| bad_request("invalid_body", "rollback needs \"version\"", Some("version")))?;
            return Ok(Json(s.svc.rollback_secret(&ctx, &t, path, version).await?).into_response());
        }
        _ => return Err(bad_request("unknown_action", "the action must be :undelete, :destroy or :rollback", None)),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse_versions(raw: &str) -> ApiResult<Vec<u32>> {
    raw.split(',')
        .map(|v| {
            v.trim().parse::<u32>().map_err(|_| {
                bad_request("invalid_versions", "versions must be comma-separated numbers", Some("versions"))
            })
        })
        .collect()
}
