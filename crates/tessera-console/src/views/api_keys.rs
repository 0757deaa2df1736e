//! API keys: list, create (the key is shown once, on the answer that made
//! it), revoke after a confirmation (which ends the key's console sessions).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tessera_core::service::ApiKeyView;
use tessera_core::ErrorKind;
use zeroize::Zeroizing;

use crate::form::Posted;
use crate::page::{html, html_with, Chrome, PageResult};
use crate::session::Signed;
use crate::views::confirm::{ask, Confirm};
use crate::ConsoleState;

/// Roles a form may ask for, as the API names them.
const ROLES: &[&str] = &["admin", "tenant_admin", "tenant_service", "auditor"];

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<ApiKeyView>,
    roles: Vec<&'static str>,
    /// The key just created: (name, key), shown once.
    created: Option<(String, Zeroizing<String>)>,
    error: Option<(String, String)>,
    form: NewKeyForm,
    revoked: bool,
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    revoked: Option<String>,
}

fn roles_for(chrome: &Chrome) -> Vec<&'static str> {
    if chrome.admin {
        ROLES.to_vec()
    } else {
        vec!["tenant_admin", "tenant_service"]
    }
}

/// `GET /console/api-keys`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    signed: Signed,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> PageResult {
    let s = &signed.session;
    let keys = state.svc.list_api_keys(&s.ctx).await?;
    let chrome = Chrome::new(s, "api-keys");
    let form = NewKeyForm { tenant: chrome.tenant.clone().unwrap_or_default(), ..NewKeyForm::default() };
    Ok(html(&KeysPage {
        roles: roles_for(&chrome),
        chrome,
        keys,
        created: None,
        error: None,
        form,
        revoked: q.revoked.is_some(),
    }))
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct NewKeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant: String,
}

/// `POST /console/api-keys`: creates a key and shows it once.
pub(crate) async fn create(State(state): State<ConsoleState>, posted: Posted<NewKeyForm>) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    let tenant = Some(f.tenant.trim()).filter(|t| !t.is_empty());
    let outcome = state.svc.create_api_key(&s.ctx, &f.name, &f.role, tenant, None).await;
    let chrome = Chrome::new(s, "api-keys");
    let (status, created, error) = match outcome {
        Ok(k) => (StatusCode::OK, Some((k.view.name, Zeroizing::new(k.key.expose_secret().to_owned()))), None),
        Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::NotFound | ErrorKind::Conflict) => {
            let field = match e.field.as_deref() {
                Some("role") => "role",
                Some("tenantId" | "tenant_id" | "tenant") => "tenant",
                _ if e.code.as_str().starts_with("tenant") => "tenant",
                _ => "name",
            };
            (StatusCode::BAD_REQUEST, None, Some((field.to_owned(), e.message)))
        }
        Err(e) => return Err(e.into()),
    };
    let keys = state.svc.list_api_keys(&s.ctx).await?;
    let form = if created.is_some() { NewKeyForm::default() } else { f };
    Ok(html_with(status, &KeysPage { roles: roles_for(&chrome), chrome, keys, created, error, form, revoked: false }))
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    id: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/api-keys/revoke`.
pub(crate) async fn revoke(State(state): State<ConsoleState>, posted: Posted<RevokeForm>) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    if f.confirm != "yes" {
        return Ok(ask(Confirm {
            chrome: Chrome::new(s, "api-keys"),
            title: format!("Revoke API key {}?", f.id),
            message: "Callers using this key are refused at once, on every replica, and its console sessions end."
                .into(),
            action: "/console/api-keys/revoke".into(),
            fields: vec![("id".into(), f.id)],
            button: "Revoke key".into(),
            back: "/console/api-keys".into(),
        }));
    }
    state.svc.delete_api_key(&s.ctx, &f.id).await?;
    Ok(Redirect::to("/console/api-keys?revoked=1").into_response())
}
