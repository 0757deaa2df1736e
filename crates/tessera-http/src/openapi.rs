//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;

use crate::routes::{
    access, connections, health, integrations, oauth, proxy, secrets, service, tenants, tools, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "Multi-tenant vault for integration configuration and credentials."),
    paths(
        service::healthz, service::readyz, service::openapi, crate::metrics::render,
        tenants::create, tenants::list, tenants::read, tenants::remove, tenants::keys, tenants::rotate,
        integrations::create, integrations::list, integrations::read, integrations::update, integrations::remove,
        integrations::put_defaults, integrations::get_defaults, integrations::connections,
        connections::list, connections::read, connections::remove, connections::put_config, connections::resolved,
        connections::configs,
        secrets::list, secrets::read, secrets::write, secrets::remove, secrets::action,
        access::create_key, access::list_keys, access::delete_key, access::audit, access::verify,
        oauth::authorize, oauth::callback, oauth::store_credentials, oauth::read_credentials,
        oauth::revoke_credentials, oauth::templates, proxy::forward, tools::invoke, health::check_now, health::all,
        webhooks::create, webhooks::list, webhooks::remove, webhooks::deliveries,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as JSON text (built once).
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises")).clone()
}
