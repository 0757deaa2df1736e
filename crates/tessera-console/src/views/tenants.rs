//! Tenants: search with keyset paging, create, and a tenant's connections.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
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
    Ok(html(&TenantsPage {
        chrome: Chrome::new(s, "tenants"),
        q: q.q,
        tenants,
        next,
        new_id: String::new(),
        new_name: String::new(),
        error: None,
    }))
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
            let status = if e.kind == ErrorKind::Conflict { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            Ok(html_with(
                status,
                &TenantsPage {
                    chrome: Chrome::new(s, "tenants"),
                    q: String::new(),
                    tenants,
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
}

#[derive(Template)]
#[template(path = "tenant.html")]
struct TenantPage {
    chrome: Chrome,
    tenant: TenantView,
    connections: Vec<TenantIntegrationItem>,
    created: bool,
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
    let connections = if Chrome::new(s, "").reads_tenants {
        state.svc.list_tenant_integrations(&s.ctx, &tenant).await?.integrations
    } else {
        Vec::new()
    };
    Ok(html(&TenantPage { chrome: Chrome::new(s, "tenants"), tenant: view, connections, created: q.created.is_some() }))
}
