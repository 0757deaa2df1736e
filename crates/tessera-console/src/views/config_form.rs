//! Editing a connection's configuration with a form built from the
//! integration's schema. Secret inputs are write-only: never pre-filled;
//! keep, replace or clear. Every field is checked before anything is
//! written; a refused form comes back with each error next to its field.

use std::collections::BTreeMap;
use tessera_core::ErrorCode;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde_json::{Map, Value};
use tessera_core::schema::ConfigSchema;
use tessera_core::service::ConsoleSession;
use tessera_core::{ErrorKind, ServiceError};

use crate::form::Posted;
use crate::page::{html_with, Chrome, PageError, PageResult};
use crate::schema_form::{fields_of, parse, Field, Input};
use crate::session::Signed;
use crate::ConsoleState;

#[derive(Template)]
#[template(path = "config_form.html")]
struct ConfigPage {
    chrome: Chrome,
    /// The tenant, or none for the integration's defaults.
    tenant: Option<String>,
    integration: String,
    integration_name: String,
    /// Where the form posts.
    action: String,
    enabled: bool,
    fields: Vec<Field>,
    saved: bool,
    form_error: Option<String>,
}

/// The schema and the current values of a tenant's connection, or (no
/// tenant) of the integration's defaults; secret values never leave the
/// service (the defaults show them as `[SECRET]`, which only says one is set).
async fn load(
    state: &ConsoleState,
    s: &ConsoleSession,
    tenant: Option<&str>,
    key: &str,
) -> Result<(String, ConfigSchema, Map<String, Value>, Vec<String>, bool), PageError> {
    let integration = state.svc.get_integration(&s.ctx, key).await?;
    let schema = ConfigSchema::from_stored(&integration.config_schema)?;
    let Some(tenant) = tenant else {
        let defaults = state.svc.get_defaults(&s.ctx, key).await?.config;
        let secrets: Vec<String> = defaults.keys().filter(|k| schema.is_secret(k)).cloned().collect();
        let public = defaults.into_iter().filter(|(k, _)| !schema.is_secret(k)).collect();
        return Ok((integration.name, schema, public, secrets, true));
    };
    let (config, secrets, enabled) = match state.svc.get_connection(&s.ctx, tenant, key).await {
        Ok(c) => (c.config, c.secret_fields, c.is_enabled),
        // No connection yet: an empty form (the tenant must exist all the same).
        Err(e) if e.kind == ErrorKind::NotFound && e.code != ErrorCode::TenantNotFound => {
            state.svc.get_tenant(&s.ctx, tenant).await?;
            (Map::new(), Vec::new(), true)
        }
        Err(e) => return Err(e.into()),
    };
    Ok((integration.name, schema, config, secrets, enabled))
}

fn action_of(tenant: Option<&str>, key: &str) -> String {
    match tenant {
        Some(t) => format!("/console/tenants/{t}/integrations/{key}/config"),
        None => format!("/console/integrations/{key}/defaults"),
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct Saved {
    saved: Option<String>,
}

/// `GET /console/tenants/{tenant}/integrations/{key}/config`.
pub(crate) async fn edit(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path((tenant, key)): Path<(String, String)>,
    Query(q): Query<Saved>,
) -> PageResult {
    show(&state, &signed.session, Some(tenant), key, q.saved.is_some()).await
}

/// `GET /console/integrations/{key}/defaults` (admins): the defaults every tenant inherits.
pub(crate) async fn edit_defaults(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(q): Query<Saved>,
) -> PageResult {
    show(&state, &signed.session, None, key, q.saved.is_some()).await
}

async fn show(
    state: &ConsoleState,
    s: &ConsoleSession,
    tenant: Option<String>,
    key: String,
    saved: bool,
) -> PageResult {
    let (name, schema, config, secrets, enabled) = load(state, s, tenant.as_deref(), &key).await?;
    let page = ConfigPage {
        chrome: Chrome::new(s, if tenant.is_some() { "configuration" } else { "integrations" }),
        action: action_of(tenant.as_deref(), &key),
        tenant,
        integration: key,
        integration_name: name,
        enabled,
        fields: fields_of(&schema, &config, &secrets),
        saved,
        form_error: None,
    };
    Ok(html_with(StatusCode::OK, &page))
}

/// `POST /console/tenants/{tenant}/integrations/{key}/config`.
pub(crate) async fn save(
    State(state): State<ConsoleState>,
    Path((tenant, key)): Path<(String, String)>,
    posted: Posted<Vec<(String, String)>>,
) -> PageResult {
    store(&state, &posted.signed.session, Some(tenant), key, posted.form).await
}

/// `POST /console/integrations/{key}/defaults`.
pub(crate) async fn save_defaults(
    State(state): State<ConsoleState>,
    Path(key): Path<String>,
    posted: Posted<Vec<(String, String)>>,
) -> PageResult {
    store(&state, &posted.signed.session, None, key, posted.form).await
}

async fn store(
    state: &ConsoleState,
    s: &ConsoleSession,
    tenant: Option<String>,
    key: String,
    form: Vec<(String, String)>,
) -> PageResult {
    let posted_values: BTreeMap<String, String> = form.into_iter().collect();
    let (name, schema, config, secrets, _) = load(state, s, tenant.as_deref(), &key).await?;
    let mut fields = fields_of(&schema, &config, &secrets);
    let mut change = Map::new();
    for f in &mut fields {
        let raw = posted_values.get(&format!("f.{}", f.name)).cloned().unwrap_or_default();
        if f.kind == Input::Secret {
            match posted_values.get(&format!("a.{}", f.name)).map(String::as_str) {
                Some("replace") if raw.is_empty() => f.error = Some("Enter the new value, or choose Keep.".into()),
                Some("replace") => {
                    change.insert(f.name.clone(), Value::String(raw));
                }
                Some("clear") => {
                    change.insert(f.name.clone(), Value::Null);
                }
                _ => {}
            }
            continue;
        }
        let had = !f.value.is_empty();
        f.value = raw.clone();
        if raw.trim().is_empty() {
            if had {
                change.insert(f.name.clone(), Value::Null);
            }
            continue;
        }
        match parse(f, &raw) {
            Ok(v) => {
                change.insert(f.name.clone(), v);
            }
            Err(why) => f.error = Some(why.message().to_owned()),
        }
    }
    let enabled = posted_values.get("enabled").map(String::as_str) == Some("true");
    let chrome = Chrome::new(s, if tenant.is_some() { "configuration" } else { "integrations" });
    let action = action_of(tenant.as_deref(), &key);
    let mut page = ConfigPage {
        chrome,
        action: action.clone(),
        tenant: tenant.clone(),
        integration: key.clone(),
        integration_name: name,
        enabled,
        fields,
        saved: false,
        form_error: None,
    };
    if page.fields.iter().any(|f| f.error.is_some()) {
        page.form_error = Some("Nothing was saved: correct the fields marked below.".into());
        return Ok(html_with(StatusCode::BAD_REQUEST, &page));
    }
    let written = match &tenant {
        Some(t) => state.svc.put_connection_config(&s.ctx, t, &key, change, Some(enabled)).await.map(|_| ()),
        None => state.svc.put_defaults(&s.ctx, &key, change).await.map(|_| ()),
    };
    match written {
        Ok(()) => Ok(Redirect::to(&format!("{action}?saved=1")).into_response()),
        Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Unprocessable) => {
            mark(&mut page, &e);
            page.form_error = Some("Nothing was saved: correct the fields marked below.".into());
            Ok(html_with(StatusCode::BAD_REQUEST, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// Puts a service refusal next to the field it names.
fn mark(page: &mut ConfigPage, e: &ServiceError) {
    let name = e.field.as_deref().and_then(|f| f.strip_prefix("config.")).unwrap_or_default();
    match page.fields.iter_mut().find(|f| f.name == name) {
        Some(f) => f.error = Some(e.message.clone()),
        None => page.form_error = Some(e.message.clone()),
    }
}
