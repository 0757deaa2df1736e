//! Secrets: a tenant's paths, a secret's versions, and Reveal — an explicit,
//! audited POST whose answer is the only page that ever shows a value (not
//! stored by the browser: every console page is `Cache-Control: no-store`).

use askama::Template;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use tessera_core::service::{SecretMetadataView, TenantView};
use zeroize::Zeroizing;

use crate::form::Posted;
use crate::page::{html, Chrome, PageError, PageResult};
use crate::session::Signed;
use crate::ConsoleState;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    prefix: String,
}

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    chrome: Chrome,
    tenant: TenantView,
    prefix: String,
    paths: Vec<String>,
}

/// `GET /console/tenants/{tenant}/secrets`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let s = &signed.session;
    let view = state.svc.get_tenant(&s.ctx, &tenant).await?;
    let paths = state.svc.list_secrets(&s.ctx, &tenant, q.prefix.trim()).await?.paths;
    Ok(html(&SecretsPage { chrome: Chrome::new(s, "tenants"), tenant: view, prefix: q.prefix, paths }))
}

#[derive(Deserialize)]
pub(crate) struct ShowQuery {
    path: String,
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    chrome: Chrome,
    tenant: String,
    meta: SecretMetadataView,
    /// The revealed version and its value (pretty JSON), on the Reveal answer only.
    revealed: Option<(u32, Zeroizing<String>)>,
}

/// `GET /console/tenants/{tenant}/secret?path=`: versions, no values.
pub(crate) async fn show(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(tenant): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let s = &signed.session;
    let meta = state.svc.secret_metadata(&s.ctx, &tenant, &q.path).await?;
    Ok(html(&SecretPage { chrome: Chrome::new(s, "tenants"), tenant, meta, revealed: None }))
}

#[derive(Deserialize)]
pub(crate) struct RevealForm {
    path: String,
    version: u32,
}

/// `POST /console/tenants/{tenant}/secret/reveal`: one version's value, once.
pub(crate) async fn reveal(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<RevealForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    let doc = state.svc.get_secret(&s.ctx, &tenant, &f.path, Some(f.version)).await?;
    let shown = shown_value(&doc).ok_or(PageError::NotFound)?;
    let meta = state.svc.secret_metadata(&s.ctx, &tenant, &f.path).await?;
    Ok(html(&SecretPage { chrome: Chrome::new(s, "tenants"), tenant, meta, revealed: Some((f.version, shown)) }))
}

/// The value (or data) of a secret document, as it should be read: a string
/// as itself, anything else as indented JSON.
fn shown_value(doc: &[u8]) -> Option<Zeroizing<String>> {
    let parsed: serde_json::Value = serde_json::from_slice(doc).ok()?;
    let value = parsed.get("value").or_else(|| parsed.get("data"))?;
    Some(Zeroizing::new(match value {
        serde_json::Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).ok()?,
    }))
}
