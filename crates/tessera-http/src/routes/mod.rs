//! Routes, one module per area; [`api`] merges them.

pub(crate) mod access;
pub(crate) mod connect;
pub(crate) mod connections;
pub(crate) mod health;
pub(crate) mod integrations;
pub(crate) mod oauth;
pub(crate) mod proxy;
pub(crate) mod secrets;
pub(crate) mod service;
pub(crate) mod tenants;
pub(crate) mod tools;
pub(crate) mod webhooks;

use axum::Router;

use crate::AppState;

/// Every route of the API.
pub(crate) fn api() -> Router<AppState> {
    Router::new()
        .merge(service::router())
        .merge(tenants::router())
        .merge(integrations::router())
        .merge(connections::router())
        .merge(secrets::router())
        .merge(access::router())
        .merge(oauth::router())
        .merge(proxy::router())
        .merge(tools::router())
        .merge(health::router())
        .merge(webhooks::router())
        .merge(connect::router())
}
