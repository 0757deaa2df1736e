//! Versioned tenant secrets under `/tenants/{tenantId}/secrets`.
//!
//! Actions on a path use a suffix (`POST .../secrets/{path}:undelete`),
//! since a path may have any number of segments; `:` cannot occur in a path.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::service::{
    SecretList, SecretMetadataView, SecretPayload, SecretReadAnswer, SecretWrite, SecretWritten,
};
use tessera_core::ErrorCode;
use utoipa::{IntoParams, ToSchema};

use super::connections::secret_json;
use crate::error::{bad_request, ApiError, ApiResult};
use crate::extract::{Body, Caller, Path, Query};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/tenants/{tenant_id}/secrets", get(list)).route(
        "/tenants/{tenant_id}/secrets/{*path}",
        get(read).put(write).delete(remove).post(action).fallback(other_method),
    )
}

/// Query of the secret list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only paths starting with this (a leading `_` is reserved).
    #[serde(default)]
    #[param(pattern = r"^(?!_)")]
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
    #[param(schema_with = version_schema)]
    version: Option<u32>,
    /// Present: answer the version metadata instead of the value.
    versions: Option<String>,
}

/// Reads the newest (or `?version=N`) value; `?versions` gives metadata. Audited.
#[utoipa::path(get, path = "/tenants/{tenantId}/secrets/{path}", operation_id = "readSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^(?!_)(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)"), ReadQuery),
    responses((status = 200, body = SecretReadAnswer, description = "the value (`SecretRead`), or with `?versions` the metadata (`SecretMetadataView`)"), (status = 404)))]
pub(crate) async fn read(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<Response> {
    if is_action(&path) {
        return Ok(wrong_method(ACTION_METHODS));
    }
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
    #[serde(default, deserialize_with = "tessera_core::json_int::opt_integer")]
    cas: Option<u32>,
    /// Rotation policy: a `secret.rotation_due` webhook event once
    /// the secret has not been written for this many days; 0 clears it.
    #[serde(rename = "rotateAfterDays", default, deserialize_with = "tessera_core::json_int::opt_integer")]
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
                    "rotateAfterDays": {"type": ["integer", "null"], "minimum": 0, "maximum": 36_500,
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
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^(?!_)(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)")), request_body = WriteBody,
    responses((status = 200, body = SecretWritten), (status = 400), (status = 409)))]
pub(crate) async fn write(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    body: Request,
) -> ApiResult<Response> {
    if is_action(&path) {
        return Ok(wrong_method(ACTION_METHODS));
    }
    let Body(b) = match Body::<WriteBody>::from_request(body, &()).await {
        Ok(b) => b,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let payload = match (b.value, b.data) {
        (Some(v), None) if !v.is_null() => SecretPayload::Value(v),
        (None, Some(d)) => SecretPayload::Data(d),
        _ => {
            return Err(bad_request(
                ErrorCode::InvalidBody,
                "send exactly one of \"value\" (not null) and \"data\"",
                Some("value"),
            ))
        }
    };
    Ok(Json(
        s.svc
            .put_secret(&ctx, &t, &path, SecretWrite { payload, cas: b.cas, rotate_after_days: b.rotate_after_days })
            .await?,
    )
    .into_response())
}

/// Query of a delete.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteQuery {
    /// Comma-separated versions (default: the newest).
    #[param(pattern = r"^[0-9]{1,9}(,[0-9]{1,9})*$")]
    versions: Option<String>,
}

/// Soft-deletes the newest version (or `?versions=1,2`); undelete restores it.
#[utoipa::path(delete, path = "/tenants/{tenantId}/secrets/{path}", operation_id = "deleteSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^(?!_)(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)"), DeleteQuery), responses((status = 204), (status = 404)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Response> {
    if is_action(&path) {
        return Ok(wrong_method(ACTION_METHODS));
    }
    let versions = q.versions.as_deref().map(parse_versions).transpose()?;
    s.svc.delete_secret(&ctx, &t, &path, versions).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Body of `:undelete` and `:destroy`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionsBody {
    /// The versions (at least one).
    #[serde(deserialize_with = "tessera_core::json_int::integers")]
    #[schema(schema_with = versions_schema)]
    versions: Vec<u32>,
}

/// Body of `:rollback`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    /// The version to copy as the newest.
    #[serde(deserialize_with = "tessera_core::json_int::integer")]
    #[schema(schema_with = version_schema)]
    version: u32,
}

/// A version number: any `u32` (utoipa would say `int32`, half the range).
fn version_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0))
        .maximum(Some(u32::MAX))
        .build()
}

/// At least one version number.
fn versions_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new().items(version_schema()).min_items(Some(1)).build()
}

/// `POST .../secrets/{path}:{action}`: parses the body the action takes.
pub(crate) async fn action(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, path)): Path<(String, String)>,
    req: Request,
) -> Result<Response, Response> {
    let Some((path, verb)) = path.rsplit_once(':').filter(|_| is_action(&path)) else {
        return Err(wrong_method(PLAIN_METHODS));
    };
    let done = match verb {
        "undelete" | "destroy" => {
            let Body(b) = Body::<VersionsBody>::from_request(req, &()).await.map_err(IntoResponse::into_response)?;
            if verb == "undelete" {
                s.svc.undelete_secret(&ctx, &t, path, b.versions).await
            } else {
                s.svc.destroy_secret(&ctx, &t, path, b.versions).await
            }
        }
        "rollback" => {
            let Body(b) = Body::<RollbackBody>::from_request(req, &()).await.map_err(IntoResponse::into_response)?;
            return match s.svc.rollback_secret(&ctx, &t, path, b.version).await {
                Ok(written) => Ok(Json(written).into_response()),
                Err(e) => Err(ApiError(e).into_response()),
            };
        }
        _ => {
            return Err(bad_request(
                ErrorCode::UnknownAction,
                "the action must be :undelete, :destroy or :rollback",
                None,
            )
            .into_response())
        }
    };
    done.map(|()| StatusCode::NO_CONTENT.into_response()).map_err(|e| ApiError(e).into_response())
}

/// Restores soft-deleted versions.
#[utoipa::path(post, path = "/tenants/{tenantId}/secrets/{path}:undelete", operation_id = "undeleteSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^(?!_)(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)")),
    request_body = VersionsBody, responses((status = 204), (status = 404)))]
#[allow(dead_code)] // documentation: `action` serves it
pub(crate) async fn undelete() {}

/// Erases versions for good.
#[utoipa::path(post, path = "/tenants/{tenantId}/secrets/{path}:destroy", operation_id = "destroySecretVersions", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^(?!_)(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)")),
    request_body = VersionsBody, responses((status = 204), (status = 404)))]
#[allow(dead_code)] // documentation: `action` serves it
pub(crate) async fn destroy() {}

/// Copies a version as the newest.
#[utoipa::path(post, path = "/tenants/{tenantId}/secrets/{path}:rollback", operation_id = "rollbackSecret", tag = "secrets",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("path" = String, Path, pattern = r"^(?!_)(?!\.\.?(/|$))[A-Za-z0-9._-]+(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)*$", max_length = 512, description = "secret path: segments of [A-Za-z0-9._-] joined by `/` (no `.` or `..` segment; a leading `_` is reserved)")),
    request_body = RollbackBody, responses((status = 200, body = SecretWritten), (status = 404)))]
#[allow(dead_code)] // documentation: `action` serves it
pub(crate) async fn rollback() {}

/// The methods of a plain secret path, and of its `:action` form. Both
/// share one route (a path may have any number of segments), so the handlers
/// answer a method the form does not take with 405 and the form's own `Allow`.
const PLAIN_METHODS: &str = "GET,HEAD,PUT,DELETE";
const ACTION_METHODS: &str = "POST";

/// Whether the captured path is the `:action` form: a suffix `:verb` after
/// the last `/` (`:` is never in a secret path).
fn is_action(path: &str) -> bool {
    path.rsplit_once(':').is_some_and(|(_, verb)| !verb.contains('/'))
}

/// 405 with the form's `Allow`, in the API's error format.
fn wrong_method(allow: &'static str) -> Response {
    let mut resp = crate::error::method_not_allowed_response();
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// Any method the route has no handler for (PATCH, ...).
pub(crate) async fn other_method(Path((_, path)): Path<(String, String)>) -> Response {
    wrong_method(if is_action(&path) { ACTION_METHODS } else { PLAIN_METHODS })
}

/// `?versions=1,2`: 1-9 digits each, no spaces (the documented pattern).
fn parse_versions(raw: &str) -> ApiResult<Vec<u32>> {
    raw.split(',')
        .map(|v| {
            let digits = !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit());
            v.parse::<u32>().ok().filter(|_| digits).ok_or_else(|| {
                bad_request(ErrorCode::InvalidVersions, "versions must be comma-separated numbers", Some("versions"))
            })
        })
        .collect()
}
