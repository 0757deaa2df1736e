//! `/tenants/{tenantId}/webhooks`: subscriptions (the signing secret is in
//! the creation answer only) and each webhook's delivery log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use tessera_core::service::{DeliveryLog, WebhookCreated, WebhookList};
use tessera_core::webhook::{WebhookDelivery, WebhookEvent};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::{Body, Caller, Path};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant_id}/webhooks", post(create).get(list))
        .route("/tenants/{tenant_id}/webhooks/{id}", delete(remove))
        .route("/tenants/{tenant_id}/webhooks/{id}/deliveries", get(deliveries))
}

/// Body of `POST /tenants/{tenantId}/webhooks`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// Where events are POSTed: https (plain http only to a loopback address),
    /// no credentials, no fragment; never a private, link-local, multicast,
    /// reserved or documentation address.
    #[schema(max_length = 2048, pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://")]
    url: String,
    /// At least one of `credential.stored`, `credential.revoked`,
    /// `oauth.refresh_failed`, `health.changed`, `secret.rotation_due`, `key.rotated`,
    /// `connection.created`, `connect.session_completed`, `connect.session_expired`.
    #[schema(schema_with = events_schema)]
    events: Vec<String>,
}

/// The events a webhook may subscribe to: a non-empty list of known names.
fn events_schema() -> utoipa::openapi::Array {
    let event = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(tessera_core::webhook::WebhookEvent::ALL.iter().map(|e| e.as_str())));
    utoipa::openapi::ArrayBuilder::new().items(event).min_items(Some(1)).build()
}

/// Creates a webhook; its signing secret (`whsec_...`) is in this answer only.
///
/// Each event is then POSTed to `url` as a `WebhookDelivery` (the document's
/// `webhooks` section, `delivery`), signed with that secret.
#[utoipa::path(post, path = "/tenants/{tenantId}/webhooks", operation_id = "createWebhook", tag = "webhooks",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")), request_body = NewWebhook,
    responses((status = 201, body = WebhookCreated), (status = 400), (status = 404)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(t): Path<String>,
    Body(b): Body<NewWebhook>,
) -> ApiResult<impl IntoResponse> {
    let created = s.svc.create_webhook(&ctx, &t, &b.url, &b.events).await?;
    // `WebhookCreated` documents this object in /openapi.json.
    let v = created.view;
    let body = json!({
        "id": v.id,
        "tenantId": v.tenant_id,
        "url": v.url,
        "events": v.events,
        "enabled": v.enabled,
        "createdAt": v.created_at,
        "createdBy": v.created_by,
        "secret": created.secret.expose_secret(),
    });
    Ok((StatusCode::CREATED, [(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// Lists a tenant's webhooks (never their secrets).
#[utoipa::path(get, path = "/tenants/{tenantId}/webhooks", operation_id = "listWebhooks", tag = "webhooks",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)")), responses((status = 200, body = WebhookList), (status = 404)))]
pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path(t): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.list_webhooks(&ctx, &t).await?))
}

/// Deletes a webhook with its pending events and delivery log.
#[utoipa::path(delete, path = "/tenants/{tenantId}/webhooks/{id}", operation_id = "deleteWebhook", tag = "webhooks",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("id" = String, Path)), responses((status = 204), (status = 404)))]
pub(crate) async fn remove(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    s.svc.delete_webhook(&ctx, &t, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's delivery attempts, newest first.
#[utoipa::path(get, path = "/tenants/{tenantId}/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks",
    params(("tenantId" = String, Path, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$", description = "tenant id (`_platform`: the platform tenant, admins only)"), ("id" = String, Path)),
    responses((status = 200, body = DeliveryLog), (status = 404)))]
pub(crate) async fn deliveries(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Path((t, id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.webhook_deliveries(&ctx, &t, &id).await?))
}

/// What Tessera POSTs to a webhook's `url` for each event it subscribed to.
///
/// `Tessera-Signature` is `t=<unix seconds>,v1=<hex>`: HMAC-SHA256 keyed with
/// the webhook's secret (`whsec_...`, its UTF-8 bytes) over `<t>.<body>`, the
/// body exactly as received. Check it before parsing the body, and refuse an
/// old `t` (a replay). Any 2xx answer delivers the event; anything else, or
/// no answer in time, is retried with backoff (the same `Tessera-Delivery`),
/// and redirects are not followed.
#[utoipa::path(post, path = "delivery", operation_id = "webhookDelivery", tag = "webhooks",
    params(
        ("Tessera-Event" = WebhookEvent, Header, description = "the event, as in the body"),
        ("Tessera-Delivery" = String, Header, description = "the event's id (`evt_...`), as in the body: the same on every retry, deduplicate on it"),
        ("Tessera-Signature" = String, Header, pattern = r"^t=[0-9]+,v1=[0-9a-f]{64}$", description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`"),
    ),
    request_body = WebhookDelivery,
    responses((status = "2XX", description = "delivered; any other answer is retried")),
    security(()))]
#[allow(dead_code)] // documentation: the webhook worker (tessera-core) sends it; it is no route of ours
pub(crate) async fn delivery() {}
