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
pub(crate) struct ListQuery {
    /// Only paths starting with this.
    #[serde(default)]
    prefix: String,
}

/// Lists secret paths (never values).
#[utoipa::path(get, path = "/tenants/{tenantId}/secrets", tag = "secrets", params(("tenantId" = String, Path), ListQuery),
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
pub(crate) struct ReadQuery {
    /// A version other than the newest.
    version: Option<u32>,
    /// Present: answer the version metadata instead of the value.
    versions: Option<String>,
}

/// Reads the newest (or `?version=N`) value; `?versions` gives metadata. Audited.
#[utoipa::path(get, path = "/tenants/{tenantId}/secrets/{path}", tag = "secrets",
    params(("tenantId" = String, Path), ("path" = String, Path), ReadQuery),
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

/// Body of a secret write: exactly one of `value` and `data`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteBody {
    /// One value.
    #[schema(value_type = Object)]
    value: Option<Value>,
    /// A map of fields.
    #[schema(value_type = Object)]
    data: Option<Map<String, Value>>,
    /// Check-and-set: write only if the current version is this (0: only if new).
    cas: Option<u32>,
    /// Rotation policy (seed 002): a `secret.rotation_due` webhook event once
    /// the secret has not been written for this many days; 0 clears it.
    #[serde(rename = "rotateAfterDays")]
    rotate_after_days: Option<u32>,
}

/// Writes a new version.
#[utoipa::path(put, path = "/tenants/{tenantId}/secrets/{path}", tag = "secrets",
    params(("tenantId" = String, Path), ("path" = String, Path)), request_body = WriteBody,
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
pub(crate) struct DeleteQuery {
    /// Comma-separated versions (default: the newest).
    versions: Option<String>,
}

/// Soft-deletes the newest version (or `?versions=1,2`); undelete restores it.
#[utoipa::path(delete, path = "/tenants/{tenantId}/secrets/{path}", tag = "secrets",
    params(("tenantId" = String, Path), ("path" = String, Path), DeleteQuery), responses((status = 204), (status = 404)))]
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
#[utoipa::path(post, path = "/tenants/{tenantId}/secrets/{path}:{action}", tag = "secrets",
    params(("tenantId" = String, Path), ("path" = String, Path), ("action" = String, Path, description = "undelete, destroy or rollback")),
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
