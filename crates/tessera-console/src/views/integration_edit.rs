//! Editing a registered integration: name, category, authentication, config
//! schema, OAuth settings (the client secret is write-only: left empty, the
//! stored one is kept), proxy and health-check settings.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_core::domain::AuthType;
use tessera_core::service::{IntegrationInput, IntegrationView};
use tessera_core::ErrorKind;

use crate::form::Posted;
use crate::page::{html_with, Chrome, PageResult};
use crate::session::Signed;
use crate::ConsoleState;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    auth_type: String,
    #[serde(default)]
    config_schema: String,
    #[serde(default)]
    authorize_url: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    client_id: String,
    /// Write-only: empty keeps the stored secret; never put back into a page.
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    pkce: String,
    #[serde(default)]
    proxy: String,
    #[serde(default)]
    health_check: String,
}

#[derive(Template)]
#[template(path = "integration_edit.html")]
struct EditPage {
    chrome: Chrome,
    key: String,
    form: EditForm,
    secret_set: bool,
    auth_types: Vec<&'static str>,
    error: Option<(String, String)>,
    saved: bool,
}

impl EditPage {
    /// Text inputs: (name, label, value, multi-line).
    fn fields(&self) -> Vec<(&'static str, &'static str, &str, bool)> {
        let f = &self.form;
        vec![
            ("name", "Name", f.name.as_str(), false),
            ("category", "Category", f.category.as_str(), false),
            ("config_schema", "Config schema (JSON)", f.config_schema.as_str(), true),
            ("authorize_url", "OAuth authorize URL", f.authorize_url.as_str(), false),
            ("token_url", "OAuth token URL", f.token_url.as_str(), false),
            ("scopes", "OAuth scopes (separated by spaces)", f.scopes.as_str(), false),
            ("client_id", "OAuth client id", f.client_id.as_str(), false),
            ("proxy", "Proxy settings (JSON)", f.proxy.as_str(), true),
            ("health_check", "Health check settings (JSON)", f.health_check.as_str(), true),
        ]
    }

    fn is_error(&self, field: &str) -> bool {
        self.error.as_ref().is_some_and(|(f, _)| f == field)
    }
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn pretty(v: Option<&Value>) -> String {
    v.filter(|v| !v.is_null()).and_then(|v| serde_json::to_string_pretty(v).ok()).unwrap_or_default()
}

fn form_of(i: &IntegrationView) -> (EditForm, bool) {
    let o = i.oauth.as_ref();
    let scopes = o
        .and_then(|o| o.get("scopes"))
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let form = EditForm {
        name: i.name.clone(),
        category: i.category.clone().unwrap_or_default(),
        auth_type: i.auth_type.as_str().to_owned(),
        config_schema: pretty(Some(&i.config_schema)),
        authorize_url: text(o.and_then(|o| o.get("authorizeUrl"))),
        token_url: text(o.and_then(|o| o.get("tokenUrl"))),
        scopes,
        client_id: text(o.and_then(|o| o.get("clientId"))),
        client_secret: String::new(),
        pkce: if o.and_then(|o| o.get("pkce")).and_then(Value::as_bool) == Some(false) { "off" } else { "on" }.into(),
        proxy: pretty(i.proxy.as_ref()),
        health_check: pretty(i.health_check.as_ref()),
    };
    let secret_set = o.and_then(|o| o.get("clientSecretSet")).and_then(Value::as_bool) == Some(true);
    (form, secret_set)
}

#[derive(Deserialize, Default)]
pub(crate) struct Saved {
    saved: Option<String>,
}

/// `GET /console/integrations/{key}`.
pub(crate) async fn edit(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(q): Query<Saved>,
) -> PageResult {
    let s = &signed.session;
    let view = state.svc.get_integration(&s.ctx, &key).await?;
    let (form, secret_set) = form_of(&view);
    let page = EditPage {
        chrome: Chrome::new(s, "integrations"),
        key,
        form,
        secret_set,
        auth_types: AuthType::ALL.iter().map(|a| a.as_str()).collect(),
        error: None,
        saved: q.saved.is_some(),
    };
    Ok(html_with(StatusCode::OK, &page))
}

fn json_field(raw: &str, field: &str, what: &str) -> Result<Option<Value>, (String, String)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(raw).map(Some).map_err(|_| (field.to_owned(), format!("{what} must be JSON.")))
}

/// The update body the API would be sent.
fn input_of(f: &EditForm) -> Result<IntegrationInput, (String, String)> {
    let mut body = Map::new();
    body.insert("name".into(), json!(f.name.trim()));
    if !f.category.trim().is_empty() {
        body.insert("category".into(), json!(f.category.trim()));
    }
    if !f.auth_type.is_empty() {
        body.insert("authType".into(), json!(f.auth_type));
    }
    if let Some(schema) = json_field(&f.config_schema, "config_schema", "The config schema")? {
        body.insert("configSchema".into(), schema);
    }
    let mut oauth = Map::new();
    for (k, v) in [("authorizeUrl", &f.authorize_url), ("tokenUrl", &f.token_url), ("clientId", &f.client_id)] {
        if !v.trim().is_empty() {
            oauth.insert(k.into(), json!(v.trim()));
        }
    }
    if !f.scopes.trim().is_empty() {
        oauth.insert("scopes".into(), json!(f.scopes.split_whitespace().collect::<Vec<_>>()));
    }
    if !f.client_secret.is_empty() {
        oauth.insert("clientSecret".into(), json!(f.client_secret));
    }
    if f.auth_type == AuthType::OAuth2.as_str() || !oauth.is_empty() {
        oauth.insert("pkce".into(), json!(f.pkce != "off"));
        body.insert("oauth".into(), Value::Object(oauth));
    }
    if let Some(p) = json_field(&f.proxy, "proxy", "The proxy settings")? {
        body.insert("proxy".into(), p);
    }
    if let Some(h) = json_field(&f.health_check, "health_check", "The health check settings")? {
        body.insert("healthCheck".into(), h);
    }
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ("name".to_owned(), format!("The settings could not be read: {e}.")))
}

/// `POST /console/integrations/{key}`.
pub(crate) async fn save(
    State(state): State<ConsoleState>,
    Path(key): Path<String>,
    posted: Posted<EditForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let mut f = posted.form;
    let outcome = match input_of(&f) {
        Ok(input) => match state.svc.update_integration(&s.ctx, &key, input).await {
            Ok(_) => return Ok(Redirect::to(&format!("/console/integrations/{key}?saved=1")).into_response()),
            Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Unprocessable) => {
                let field = match e.field.as_deref().unwrap_or("name") {
                    x if x.starts_with("configSchema") => "config_schema",
                    x if x.starts_with("oauth.authorizeUrl") => "authorize_url",
                    x if x.starts_with("oauth.tokenUrl") => "token_url",
                    x if x.starts_with("oauth.clientSecret") => "client_secret",
                    x if x.starts_with("oauth") => "client_id",
                    x if x.starts_with("proxy") => "proxy",
                    x if x.starts_with("healthCheck") => "health_check",
                    "category" => "category",
                    "authType" => "auth_type",
                    _ => "name",
                };
                (field.to_owned(), e.message)
            }
            Err(e) => return Err(e.into()),
        },
        Err(error) => error,
    };
    f.client_secret.clear();
    let secret_set = state.svc.get_integration(&s.ctx, &key).await.ok().map(|v| form_of(&v).1).unwrap_or(false);
    let page = EditPage {
        chrome: Chrome::new(s, "integrations"),
        key,
        form: f,
        secret_set,
        auth_types: AuthType::ALL.iter().map(|a| a.as_str()).collect(),
        error: Some(outcome),
        saved: false,
    };
    Ok(html_with(StatusCode::BAD_REQUEST, &page))
}
