//! Secrets: a tenant's paths, a secret's versions, and Reveal — an explicit,
//! audited POST whose answer is the only page that ever shows a value (not
//! stored by the browser: every console page is `Cache-Control: no-store`).

use askama::Template;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use tessera_core::service::{SecretMetadataView, TenantView};
use zeroize::Zeroizing;

use axum::response::{IntoResponse, Redirect};

use crate::form::Posted;
use crate::page::{html, Chrome, PageError, PageResult};
use crate::session::Signed;
use crate::views::confirm::{ask, Confirm};
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
    /// The version change that led here.
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    chrome: Chrome,
    tenant: String,
    meta: SecretMetadataView,
    /// The revealed version and its value (pretty JSON), on the Reveal answer only.
    revealed: Option<(u32, Zeroizing<String>)>,
    done: Option<&'static str>,
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
    let done = match q.done.as_deref() {
        Some("rollback") => Some("Rolled back: a new current version holds that value."),
        Some("delete") => Some("Version deleted."),
        Some("undelete") => Some("Version undeleted."),
        Some("destroy") => Some("Version destroyed."),
        _ => None,
    };
    Ok(html(&SecretPage { chrome: Chrome::new(s, "tenants"), tenant, meta, revealed: None, done }))
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
    Ok(html(&SecretPage {
        chrome: Chrome::new(s, "tenants"),
        tenant,
        meta,
        revealed: Some((f.version, shown)),
        done: None,
    }))
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

#[derive(Deserialize)]
pub(crate) struct VersionForm {
    path: String,
    version: u32,
    /// `rollback`, `delete`, `undelete` or `destroy`.
    action: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/tenants/{tenant}/secret/version`: roll back to a version,
/// or delete, undelete or destroy one; each asks for a confirmation first.
pub(crate) async fn change(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<VersionForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    let (title, message, button) = match f.action.as_str() {
        "rollback" => (
            format!("Roll {} back to version {}?", f.path, f.version),
            "Version's value becomes a new current version; older versions stay as they are.".to_owned(),
            "Roll back",
        ),
        "delete" => (
            format!("Delete version {} of {}?", f.version, f.path),
            "The version can no longer be read; it can be undeleted later.".to_owned(),
            "Delete version",
        ),
        "undelete" => (
            format!("Undelete version {} of {}?", f.version, f.path),
            "The version can be read again.".to_owned(),
            "Undelete version",
        ),
        "destroy" => (
            format!("Destroy version {} of {}?", f.version, f.path),
            "Its ciphertext is erased for good. This cannot be undone.".to_owned(),
            "Destroy version",
        ),
        _ => return Err(PageError::BadForm("Choose rollback, delete, undelete or destroy.".into())),
    };
    if f.confirm != "yes" {
        return Ok(ask(Confirm {
            chrome: Chrome::new(s, "tenants"),
            title,
            message,
            action: format!("/console/tenants/{tenant}/secret/version"),
            fields: vec![
                ("path".into(), f.path.clone()),
                ("version".into(), f.version.to_string()),
                ("action".into(), f.action.clone()),
            ],
            button: button.into(),
            back: secret_url(&tenant, &f.path),
        }));
    }
    let svc = &state.svc;
    match f.action.as_str() {
        "rollback" => svc.rollback_secret(&s.ctx, &tenant, &f.path, f.version).await.map(|_| ())?,
        "delete" => svc.delete_secret(&s.ctx, &tenant, &f.path, Some(vec![f.version])).await?,
        "undelete" => svc.undelete_secret(&s.ctx, &tenant, &f.path, vec![f.version]).await?,
        _ => svc.destroy_secret(&s.ctx, &tenant, &f.path, vec![f.version]).await?,
    }
    Ok(Redirect::to(&format!("{}&done={}", secret_url(&tenant, &f.path), f.action)).into_response())
}

fn secret_url(tenant: &str, path: &str) -> String {
    let q = serde_urlencoded::to_string([("path", path)]).unwrap_or_default();
    format!("/console/tenants/{tenant}/secret?{q}")
}
