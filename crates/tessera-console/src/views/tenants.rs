//! Tenants: search with keyset paging, create, and a tenant's connections.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tessera_core::domain::AuthType;
use tessera_core::service::{TenantIntegrationItem, TenantView};
use tessera_core::ErrorKind;

use crate::form::Posted;
use crate::page::{html, html_with, Chrome, PageResult};
use crate::session::Signed;
use crate::ConsoleState;

const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    q: String,
    tenants: Vec<TenantView>,
    /// Connections by health per listed tenant: healthy, degraded, unhealthy, not checked.
    health: std::collections::HashMap<String, [usize; 4]>,
    next: Option<String>,
    /// The create form's values and error, when it was refused.
    new_id: String,
    new_name: String,
    error: Option<(String, String)>,
}

/// `GET /console/tenants`.
pub(crate) async fn list(State(state): State<ConsoleState>, signed: Signed, Query(q): Query<ListQuery>) -> PageResult {
    let s = &signed.session;
    let search = Some(q.q.trim()).filter(|v| !v.is_empty());
    let (tenants, next) = state.svc.list_tenants_page(&s.ctx, search, q.after.as_deref(), PAGE).await?;
    let ids: Vec<String> = tenants.iter().map(|t| t.id.clone()).collect();
    let health = state.svc.health_of_tenants(&s.ctx, &ids).await?;
    Ok(html(&TenantsPage {
        chrome: Chrome::new(s, "tenants"),
        q: q.q,
        tenants,
        health,
        next,
        new_id: String::new(),
        new_name: String::new(),
        error: None,
    }))
}

impl TenantsPage {
    /// "2 healthy, 1 unhealthy"-style words for a tenant's connections.
    fn badges(&self, tenant: &str) -> Vec<(&'static str, usize)> {
        let Some(c) = self.health.get(tenant) else { return Vec::new() };
        [("healthy", c[0]), ("degraded", c[1]), ("unhealthy", c[2]), ("not checked", c[3])]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    id: String,
    name: String,
}

/// `POST /console/tenants`: creates a tenant, then shows its page. A refused
/// form comes back with the error next to its field.
pub(crate) async fn create(State(state): State<ConsoleState>, posted: Posted<CreateForm>) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    let name = if f.name.trim().is_empty() { f.id.clone() } else { f.name.clone() };
    match state.svc.create_tenant(&s.ctx, f.id.trim(), &name).await {
        Ok(t) => Ok(Redirect::to(&format!("/console/tenants/{}?created=1", t.id)).into_response()),
        Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Conflict) => {
            let field = match e.field.as_deref() {
                Some("name") => "name",
                _ => "id",
            };
            let (tenants, next) = state.svc.list_tenants_page(&s.ctx, None, None, PAGE).await?;
            let ids: Vec<String> = tenants.iter().map(|t| t.id.clone()).collect();
            let health = state.svc.health_of_tenants(&s.ctx, &ids).await?;
            let status = if e.kind == ErrorKind::Conflict { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            Ok(html_with(
                status,
                &TenantsPage {
                    chrome: Chrome::new(s, "tenants"),
                    q: String::new(),
                    tenants,
                    health,
                    next,
                    new_id: f.id,
                    new_name: f.name,
                    error: Some((field.to_owned(), e.message)),
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ShowQuery {
    created: Option<String>,
    /// Back from the connection wizard: the integration, `status` and `error`.
    connected: Option<String>,
    status: Option<String>,
    error: Option<String>,
    revoked: Option<String>,
    checked: Option<String>,
    health: Option<String>,
}

/// What the page says about the action that led to it.
enum Notice {
    Done(String),
    Failed(String),
}

impl ShowQuery {
    fn notice(&self) -> Option<Notice> {
        if self.created.is_some() {
            return Some(Notice::Done("Tenant created.".into()));
        }
        if let Some(i) = &self.connected {
            return Some(match self.status.as_deref() {
                Some("success") => Notice::Done(format!("Connected to {i}.")),
                _ => Notice::Failed(format!(
                    "Connecting {i} failed: {}",
                    super::connections::words(self.error.as_deref().unwrap_or_default())
                )),
            });
        }
        if let Some(i) = &self.revoked {
            return Some(Notice::Done(format!("The {i} tokens were revoked and deleted.")));
        }
        if let Some(i) = &self.checked {
            return Some(Notice::Done(format!(
                "Health check of {i}: {}.",
                self.health.as_deref().unwrap_or("unknown")
            )));
        }
        None
    }
}

#[derive(Template)]
#[template(path = "tenant.html")]
struct TenantPage {
    chrome: Chrome,
    tenant: TenantView,
    connections: Vec<TenantIntegrationItem>,
    /// Integrations a flow can connect: (key, name).
    oauth: Vec<(String, String)>,
    notice: Option<Notice>,
}

/// `GET /console/tenants/{tenant}`: the tenant and its connections.
pub(crate) async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(tenant): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let s = &signed.session;
    let view = state.svc.get_tenant(&s.ctx, &tenant).await?;
    let chrome = Chrome::new(s, "tenants");
    let (connections, oauth) = if chrome.reads_tenants {
        let oauth = state
            .svc
            .list_integrations(&s.ctx)
            .await?
            .into_iter()
            .filter(|i| i.auth_type == AuthType::OAuth2)
            .map(|i| (i.key, i.name))
            .collect();
        (state.svc.list_tenant_integrations(&s.ctx, &tenant).await?.integrations, oauth)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(html(&TenantPage { chrome, tenant: view, connections, oauth, notice: q.notice() }))
}
