//! Integrations: the registry, and registering one (from an OAuth template
//! or by hand). The OAuth client secret is write-only: the form never shows
//! it, and the list says only whether one is stored.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_core::domain::AuthType;
use tessera_core::service::{ConsoleSession, IntegrationInput, IntegrationView};
use tessera_core::ErrorKind;

use crate::form::Posted;
use crate::page::{html, html_with, Chrome, PageError, PageResult};
use crate::session::Signed;
use crate::ConsoleState;

/// A registry row as shown.
struct Row {
    key: String,
    name: String,
    category: String,
    auth_type: String,
    /// "client secret stored", "no client secret" or "" (not OAuth).
    oauth: String,
}

impl From<IntegrationView> for Row {
    fn from(i: IntegrationView) -> Self {
        let oauth = match &i.oauth {
            Some(o) if o.get("clientSecretSet").and_then(Value::as_bool) == Some(true) => "client secret stored",
            Some(_) => "no client secret",
            None => "",
        };
        Self {
            key: i.key,
            name: i.name,
            category: i.category.unwrap_or_default(),
            auth_type: i.auth_type.as_str().to_owned(),
            oauth: oauth.to_owned(),
        }
    }
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct NewIntegration {
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    auth_type: String,
    #[serde(default)]
    client_id: String,
    /// Write-only: used for the request, never put back into a page.
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    config_schema: String,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    templates: Vec<&'static str>,
    auth_types: Vec<&'static str>,
    form: NewIntegration,
    error: Option<(String, String)>,
    created: Option<String>,
}

impl IntegrationsPage {
    /// The form's text inputs: (name, label, value).
    fn text_fields(&self) -> Vec<(&'static str, &'static str, &str)> {
        vec![
            ("key", "Key (lowercase letters, digits, - and _)", self.form.key.as_str()),
            ("name", "Name", self.form.name.as_str()),
            ("category", "Category", self.form.category.as_str()),
            ("client_id", "OAuth client id", self.form.client_id.as_str()),
        ]
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    created: Option<String>,
}

async fn page(
    state: &ConsoleState,
    session: &ConsoleSession,
    form: NewIntegration,
    error: Option<(String, String)>,
    created: Option<String>,
) -> Result<IntegrationsPage, PageError> {
    let chrome = Chrome::new(session, "integrations");
    let rows = state.svc.list_integrations(&session.ctx).await?.into_iter().map(Row::from).collect();
    let templates = state.svc.oauth_templates().iter().map(|t| t.name).collect();
    Ok(IntegrationsPage {
        chrome,
        rows,
        templates,
        auth_types: AuthType::ALL.iter().map(|a| a.as_str()).collect(),
        form,
        error,
        created,
    })
}

/// `GET /console/integrations`.
pub(crate) async fn list(State(state): State<ConsoleState>, signed: Signed, Query(q): Query<ListQuery>) -> PageResult {
    Ok(html(&page(&state, &signed.session, NewIntegration::default(), None, q.created).await?))
}

/// The API's request body for a form (the JSON the API would be sent).
fn input_of(f: &NewIntegration) -> Result<IntegrationInput, (String, String)> {
    let mut body = Map::new();
    body.insert("key".into(), json!(f.key.trim()));
    body.insert("name".into(), json!(f.name.trim()));
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(t) = opt(&f.template) {
        body.insert("template".into(), json!(t));
    }
    if let Some(c) = opt(&f.category) {
        body.insert("category".into(), json!(c));
    }
    if let Some(a) = opt(&f.auth_type) {
        body.insert("authType".into(), json!(a));
    }
    if let Some(raw) = opt(&f.config_schema) {
        let schema: Value = serde_json::from_str(&raw).map_err(|_| {
            ("config_schema".to_owned(), "The schema must be JSON (a JSON Schema object or a field list).".to_owned())
        })?;
        body.insert("configSchema".into(), schema);
    }
    let mut oauth = Map::new();
    if let Some(id) = opt(&f.client_id) {
        oauth.insert("clientId".into(), json!(id));
    }
    if !f.client_secret.is_empty() {
        oauth.insert("clientSecret".into(), json!(f.client_secret));
    }
    if !oauth.is_empty() {
        body.insert("oauth".into(), Value::Object(oauth));
    }
    serde_json::from_value(Value::Object(body)).map_err(|_| ("name".to_owned(), "Fill in a name.".to_owned()))
}

/// `POST /console/integrations`: registers an integration.
pub(crate) async fn create(State(state): State<ConsoleState>, posted: Posted<NewIntegration>) -> PageResult {
    let s = &posted.signed.session;
    let mut f = posted.form;
    let outcome = match input_of(&f) {
        Ok(input) => state.svc.create_integration(&s.ctx, input).await.map_err(|e| match e.kind {
            ErrorKind::Invalid | ErrorKind::Unprocessable | ErrorKind::Conflict => {
                let field = match e.field.as_deref().unwrap_or("key") {
                    f if f.starts_with("oauth.clientId") => "client_id",
                    f if f.starts_with("oauth.clientSecret") => "client_secret",
                    f if f.starts_with("configSchema") => "config_schema",
                    "name" => "name",
                    "template" => "template",
                    "category" => "category",
                    "authType" => "auth_type",
                    _ => "key",
                };
                Ok((field.to_owned(), e.message))
            }
            _ => Err(e),
        }),
        Err(field_error) => Err(Ok(field_error)),
    };
    // The client secret is never sent back into a page.
    f.client_secret.clear();
    match outcome {
        Ok(view) => Ok(Redirect::to(&format!("/console/integrations?created={}", view.key)).into_response()),
        Err(Ok(error)) => Ok(html_with(StatusCode::BAD_REQUEST, &page(&state, s, f, Some(error), None).await?)),
        Err(Err(e)) => Err(e.into()),
    }
}
