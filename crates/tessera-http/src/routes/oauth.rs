//! OAuth (seed 001): starting a flow, the provider's callback, the
//! credentials API, and the ready templates.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::oauth::templates::Template;
use tessera_core::service::{
    AuthorizationStart, CallbackOutcome, CallbackParams, CredentialInput, CredentialView, RevokedCredentials,
    StoredCredentials,
};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::extract::{Body, Caller, Origin, Path, Query};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize/{key}", get(authorize))
        .route("/oauth/callback/{key}", get(callback))
        .route(
            "/tenants/{tenant_id}/integrations/{key}/credentials",
            get(read_credentials).post(store_credentials).delete(revoke_credentials),
        )
        .route("/integrations/templates", get(templates))
}

/// `?tenant_id=&redirect_uri=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuthorizeQuery {
    /// The tenant connecting.
    #[serde(default)]
    #[param(required = true, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$")]
    tenant_id: String,
    /// Where the browser goes afterwards; must be in `TESSERA_ALLOWED_REDIRECT_URIS`.
    #[serde(default)]
    redirect_uri: Option<String>,
}

/// Starts an authorization-code flow: a single-use state (10 minutes), PKCE S256.
#[utoipa::path(get, path = "/oauth/authorize/{key}", operation_id = "startAuthorization", tag = "oauth", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key"), AuthorizeQuery),
    responses((status = 200, body = AuthorizationStart), (status = 400), (status = 404), (status = 409)))]
pub(crate) async fn authorize(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(key): Path<String>,
    Query(q): Query<AuthorizeQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.start_authorization(&ctx, &key, &q.tenant_id, q.redirect_uri.as_deref()).await?))
}

/// What the provider appends to the callback URL (no `Debug`: it holds the code).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's redirect back (no bearer token: the state is the proof).
/// Redirects (302) to the flow's redirect URI with `status=success|error`,
/// or answers JSON when the flow had none.
#[utoipa::path(get, path = "/oauth/callback/{key}", operation_id = "completeAuthorization", security(()), tag = "oauth", params(("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key"), CallbackQuery),
    responses((status = 302), (status = 200), (status = 400), (status = 502)))]
pub(crate) async fn callback(
    State(s): State<AppState>,
    Path(key): Path<String>,
    origin: Origin,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let params =
        CallbackParams { code: q.code, state: q.state, error: q.error, error_description: q.error_description };
    match s.svc.complete_authorization(&key, params, Some(origin.request_id), origin.client_ip).await? {
        CallbackOutcome::Redirect(location) => {
            Ok((StatusCode::FOUND, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_owned())])
                .into_response())
        }
        CallbackOutcome::Connected { tenant_id, integration, expires_at } => Ok(Json(json!({
            "success": true, "tenantId": tenant_id, "integration": integration, "expiresAt": expires_at
        }))
        .into_response()),
    }
}

/// Stores tokens for a connection; `expiresIn: 0` never expires.
#[utoipa::path(post, path = "/tenants/{tenantId}/integrations/{key}/credentials", operation_id = "storeCredentials", tag = "oauth",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")), request_body = CredentialInput,
    responses((status = 201, body = StoredCredentials), (status = 400), (status = 404)))]
pub(crate) async fn store_credentials(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
    Body(b): Body<CredentialInput>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, Json(s.svc.store_credentials(&ctx, &t, &key, b).await?)))
}

/// Credential metadata: type, scopes, expiry, refresh state; never a token.
#[utoipa::path(get, path = "/tenants/{tenantId}/integrations/{key}/credentials", operation_id = "getCredentials", tag = "oauth",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = CredentialView), (status = 404)))]
pub(crate) async fn read_credentials(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.get_credentials(&ctx, &t, &key).await?))
}

/// Revokes at the provider (RFC 7009, when configured) and deletes the tokens.
#[utoipa::path(delete, path = "/tenants/{tenantId}/integrations/{key}/credentials", operation_id = "revokeCredentials", tag = "oauth",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("key" = String, Path, pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$", description = "integration key")),
    responses((status = 200, body = RevokedCredentials), (status = 404)))]
pub(crate) async fn revoke_credentials(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, key)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.revoke_credentials(&ctx, &t, &key).await?))
}

/// The answer of `GET /integrations/templates`.
#[derive(Serialize, ToSchema)]
pub(crate) struct TemplateList {
    /// Every template.
    templates: Vec<Template>,
}

/// Ready OAuth settings for Notion, GitHub, Slack, Google and a generic provider.
#[utoipa::path(get, path = "/integrations/templates", operation_id = "listOAuthTemplates", tag = "oauth",
    responses((status = 200, body = TemplateList)))]
pub(crate) async fn templates(State(s): State<AppState>, Caller(_ctx): Caller) -> ApiResult<impl IntoResponse> {
    Ok(Json(TemplateList { templates: s.svc.oauth_templates() }))
}
