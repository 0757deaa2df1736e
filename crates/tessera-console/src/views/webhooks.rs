//! A tenant's webhooks: list, create (the signing secret is shown once),
//! delete after a confirmation, and each one's delivery log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use secrecy::ExposeSecret;
use tessera_core::service::{DeliveryView, WebhookView};
use tessera_core::webhook::WebhookEvent;
use tessera_core::ErrorKind;
use zeroize::Zeroizing;

use crate::form::Posted;
use crate::page::{html, html_with, Chrome, PageResult};
use crate::session::Signed;
use crate::views::confirm::{ask, Confirm};
use crate::ConsoleState;

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    tenant: String,
    hooks: Vec<WebhookView>,
    events: Vec<&'static str>,
    url: String,
    chosen: Vec<String>,
    error: Option<String>,
    /// The new webhook's id and signing secret, shown once.
    created: Option<(String, Zeroizing<String>)>,
}

impl WebhooksPage {
    fn is_chosen(&self, event: &str) -> bool {
        self.chosen.iter().any(|c| c == event)
    }
}

/// `GET /console/tenants/{tenant}/webhooks`.
pub(crate) async fn list(State(state): State<ConsoleState>, signed: Signed, Path(tenant): Path<String>) -> PageResult {
    let s = &signed.session;
    let hooks = state.svc.list_webhooks(&s.ctx, &tenant).await?.webhooks;
    Ok(html(&WebhooksPage {
        chrome: Chrome::new(s, "tenants"),
        tenant,
        hooks,
        events: WebhookEvent::ALL.iter().map(|e| e.as_str()).collect(),
        url: String::new(),
        chosen: Vec::new(),
        error: None,
        created: None,
    }))
}

/// `POST /console/tenants/{tenant}/webhooks`: `url` and `event` (repeated).
pub(crate) async fn create(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<Vec<(String, String)>>,
) -> PageResult {
    let s = &posted.signed.session;
    let url = posted.form.iter().find(|(k, _)| k == "url").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    let chosen: Vec<String> = posted.form.iter().filter(|(k, _)| k == "event").map(|(_, v)| v.clone()).collect();
    let outcome = state.svc.create_webhook(&s.ctx, &tenant, &url, &chosen).await;
    let (status, created, error) = match outcome {
        Ok(c) => (StatusCode::OK, Some((c.view.id, Zeroizing::new(c.secret.expose_secret().to_owned()))), None),
        Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Unprocessable) => {
            (StatusCode::BAD_REQUEST, None, Some(e.message))
        }
        Err(e) => return Err(e.into()),
    };
    let hooks = state.svc.list_webhooks(&s.ctx, &tenant).await?.webhooks;
    let keep = created.is_none();
    Ok(html_with(
        status,
        &WebhooksPage {
            chrome: Chrome::new(s, "tenants"),
            tenant,
            hooks,
            events: WebhookEvent::ALL.iter().map(|e| e.as_str()).collect(),
            url: if keep { url } else { String::new() },
            chosen: if keep { chosen } else { Vec::new() },
            error,
            created,
        },
    ))
}

#[derive(serde::Deserialize)]
pub(crate) struct DeleteForm {
    id: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/tenants/{tenant}/webhooks/delete`.
pub(crate) async fn delete(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<DeleteForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    if f.confirm != "yes" {
        return Ok(ask(Confirm {
            chrome: Chrome::new(s, "tenants"),
            title: format!("Delete webhook {}?", f.id),
            message: "No more events are sent to it; its delivery log goes with it.".into(),
            action: format!("/console/tenants/{tenant}/webhooks/delete"),
            fields: vec![("id".into(), f.id)],
            button: "Delete webhook".into(),
            back: format!("/console/tenants/{tenant}/webhooks"),
        }));
    }
    state.svc.delete_webhook(&s.ctx, &tenant, &f.id).await?;
    Ok(Redirect::to(&format!("/console/tenants/{tenant}/webhooks")).into_response())
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    tenant: String,
    id: String,
    deliveries: Vec<DeliveryView>,
}

/// `GET /console/tenants/{tenant}/webhooks/{id}`: the delivery log.
pub(crate) async fn deliveries(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path((tenant, id)): Path<(String, String)>,
) -> PageResult {
    let s = &signed.session;
    let log = state.svc.webhook_deliveries(&s.ctx, &tenant, &id).await?;
    Ok(html(&DeliveriesPage { chrome: Chrome::new(s, "tenants"), tenant, id, deliveries: log.deliveries }))
}
