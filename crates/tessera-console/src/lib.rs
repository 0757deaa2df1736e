//! Tessera's web console: the operators' pages under `/console`.
//!
//! Where it sits: an adapter beside the JSON API, over the same service
//! layer. A page reads the session cookie into the same [`tessera_core::Ctx`]
//! the signed-in key would have on the API, calls service methods, and renders
//! a typed template (askama, compiled into the binary). It holds no business
//! rule, never touches SQL or crypto, and never puts a secret in HTML except
//! the one Reveal answer that asked for it.
//!
//! Security, in one place each: session cookies in [`session`], CSRF checks
//! in [`form`], the security headers (CSP without inline script or style,
//! no framing, no referrer) in [`headers`].

mod assets;
pub mod connect;
mod form;
mod headers;
mod page;
mod schema_form;
mod session;
mod views;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tessera_core::Tessera;

/// Settings of the console.
#[derive(Clone, Debug, Default)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure` (when `TESSERA_PUBLIC_URL` is https).
    pub secure_cookies: bool,
}

/// What every page shares.
#[derive(Clone)]
pub(crate) struct ConsoleState {
    pub(crate) svc: Arc<Tessera>,
    pub(crate) opts: ConsoleOptions,
}

/// Every route of the console, under `/console`.
pub fn router(svc: Arc<Tessera>, opts: ConsoleOptions) -> Router {
    Router::new()
        .route("/console", get(views::overview::home))
        .route("/console/sign-in", post(views::sign_in::sign_in))
        .route("/console/sign-out", post(views::sign_in::sign_out))
        .route("/console/tenants", get(views::tenants::list).post(views::tenants::create))
        .route("/console/tenants/{tenant}", get(views::tenants::show))
        .route("/console/tenants/{tenant}/connect", post(views::connections::connect))
        .route("/console/tenants/{tenant}/revoke", post(views::connections::revoke))
        .route("/console/tenants/{tenant}/health-check", post(views::connections::check))
        .route(
            "/console/tenants/{tenant}/integrations/{key}/config",
            get(views::config_form::edit).post(views::config_form::save),
        )
        .route("/console/tenants/{tenant}/webhooks", get(views::webhooks::list).post(views::webhooks::create))
        .route("/console/tenants/{tenant}/webhooks/delete", post(views::webhooks::delete))
        .route("/console/tenants/{tenant}/webhooks/{id}", get(views::webhooks::deliveries))
        .route("/console/tenants/{tenant}/keys", get(views::keys::list).post(views::keys::act))
        .route("/console/connected", get(views::connections::connected))
        .route("/console/tenants/{tenant}/secrets", get(views::secrets::list))
        .route("/console/tenants/{tenant}/secret", get(views::secrets::show))
        .route("/console/tenants/{tenant}/secret/reveal", post(views::secrets::reveal))
        .route("/console/tenants/{tenant}/secret/version", post(views::secrets::change))
        .route("/console/configuration", get(views::configuration::list))
        .route("/console/integrations", get(views::integrations::list).post(views::integrations::create))
        .route("/console/integrations/{key}", get(views::integration_edit::edit).post(views::integration_edit::save))
        .route(
            "/console/integrations/{key}/defaults",
            get(views::config_form::edit_defaults).post(views::config_form::save_defaults),
        )
        .route("/console/audit", get(views::audit::list))
        .route("/console/audit/export", get(views::audit_export::export))
        .route("/console/api-keys", get(views::api_keys::list).post(views::api_keys::create))
        .route("/console/api-keys/revoke", post(views::api_keys::revoke))
        .route("/console/static/{file}", get(assets::serve))
        // Its own "not found" page for the rest of /console (the API keeps the fallback).
        .route("/console/{*rest}", axum::routing::any(views::not_found))
        .with_state(ConsoleState { svc, opts })
        .layer(axum::middleware::map_response(headers::secure))
}
