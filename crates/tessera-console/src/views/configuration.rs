//! Configuration: every config value, defaults and tenant overrides, with
//! its integration; secret values are always `[SECRET]` (the service masks
//! them; this page never asks for a value).

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;
use tessera_core::service::ConfigEntry;

use crate::page::{html, Chrome, PageResult};
use crate::session::Signed;
use crate::ConsoleState;

#[derive(Deserialize, Default)]
pub(crate) struct Filters {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    integration: String,
}

/// A row as shown.
struct Row {
    key: String,
    integration: String,
    integration_key: String,
    field_type: String,
    scope: String,
    value: String,
}

impl From<ConfigEntry> for Row {
    fn from(e: ConfigEntry) -> Self {
        let scope = match &e.tenant_id {
            Some(t) => format!("{t} (override)"),
            None => "default".to_owned(),
        };
        let value = match &e.value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Self {
            key: e.key,
            integration: e.integration_name,
            integration_key: e.integration_key,
            field_type: e.field_type,
            scope,
            value,
        }
    }
}

#[derive(Template)]
#[template(path = "configuration.html")]
struct ConfigurationPage {
    chrome: Chrome,
    tenant: String,
    integration: String,
    integrations: Vec<(String, String)>,
    rows: Vec<Row>,
}

/// `GET /console/configuration?tenant=&integration=`.
pub(crate) async fn list(State(state): State<ConsoleState>, signed: Signed, Query(f): Query<Filters>) -> PageResult {
    let s = &signed.session;
    let tenant = f.tenant.trim().to_owned();
    let integration = f.integration.trim().to_owned();
    let configs = state
        .svc
        .list_configs(
            &s.ctx,
            Some(tenant.as_str()).filter(|t| !t.is_empty()),
            Some(integration.as_str()).filter(|i| !i.is_empty()),
        )
        .await?;
    let integrations =
        state.svc.list_integrations(&s.ctx).await?.into_iter().map(|i| (i.key, i.name)).collect::<Vec<_>>();
    Ok(html(&ConfigurationPage {
        chrome: Chrome::new(s, "configuration"),
        tenant,
        integration,
        integrations,
        rows: configs.configs.into_iter().map(Row::from).collect(),
    }))
}
