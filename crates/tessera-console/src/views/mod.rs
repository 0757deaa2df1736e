//! One module per area of the console, as the navigation names them.

pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod audit_export;
pub(crate) mod config_form;
pub(crate) mod configuration;
pub(crate) mod confirm;
pub(crate) mod connections;
pub(crate) mod integration_edit;
pub(crate) mod integrations;
pub(crate) mod keys;
pub(crate) mod overview;
pub(crate) mod secrets;
pub(crate) mod sign_in;
pub(crate) mod tenants;
pub(crate) mod webhooks;

use axum::response::{IntoResponse, Response};

use crate::page::PageError;

/// Any other path under `/console`.
pub(crate) async fn not_found() -> Response {
    PageError::NotFound.into_response()
}
