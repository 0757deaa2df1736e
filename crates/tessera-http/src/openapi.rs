//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::OnceLock;
use tessera_core::service::SecretMetadataView;
use tessera_core::webhook::WebhookDelivery;
use tessera_core::ErrorCode;

use utoipa::OpenApi;

use crate::routes::{
    access, connect, connections, health, integrations, oauth, proxy, secrets, service, tenants, tools, webhooks,
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
        secrets::list, secrets::read, secrets::write, secrets::remove, secrets::undelete, secrets::destroy,
        secrets::rollback,
        access::create_key, access::list_keys, access::delete_key, access::audit, access::verify,
        oauth::authorize, oauth::callback, oauth::store_credentials, oauth::read_credentials,
        oauth::revoke_credentials, oauth::templates, proxy::forward, tools::invoke, health::check_now, health::all,
        webhooks::create, webhooks::list, webhooks::remove, webhooks::deliveries,
        connect::create, connect::read, connect::end,
    ),
    // SecretMetadataView and WebhookDelivery are also reached from answers
    // (readSecret's oneOf, the `webhooks` section); listed so they are
    // components whatever a handler's annotation names.
    components(schemas(ErrorBody, ErrorDetail, SecretMetadataView, WebhookDelivery)),
    modifiers(&ProxyMethods, &BearerAuth, &ErrorResponses, &Outgoing),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: error.rs writes the body
struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// A stable code, e.g. `invalid_query`, `tenant_not_found`: one of the list.
    #[schema(schema_with = error_code_schema)]
    code: String,
    /// For people; never holds a secret.
    message: String,
    /// The field or parameter at fault, when there is one.
    field: Option<String>,
}

/// Every code the API can answer ([`ErrorCode`]), with what each means.
fn error_code_schema() -> utoipa::openapi::Object {
    let meanings: Vec<String> =
        ErrorCode::ALL.iter().map(|c| format!("- `{}`: {}", c.as_str(), c.description())).collect();
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .description(Some(format!(
            "A stable code a client may match on (the message may change):\n\n{}",
            meanings.join("\n")
        )))
        .build()
}

/// Documents the error answers every operation can give, each with the
/// error body: 400 (a path, query or body that does not parse), 401 and 403
/// (authenticated routes), 404 (routes naming a resource), 413 and 415
/// (routes with a body), 429 (rate limits), and a `default` for the rest
/// (408, 414, 5xx, ...). Listed here once, so no handler can forget one.
struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let named = path.contains('{');
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                document_errors(op, named);
            }
        }
    }
}

fn document_errors(op: &mut utoipa::openapi::path::Operation, named: bool) {
    use utoipa::openapi::{Content, RefOr, Response};
    let public = op.security.as_ref().is_some_and(|reqs| {
        reqs.iter().all(|r| serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty())))
    });
    let has_query =
        op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query));
    let has_body = op.request_body.is_some();
    let mut add = vec![("default", "an error")];
    if named || has_query || has_body {
        add.push(("400", "the request is not valid"));
    }
    if !public {
        add.extend([
            ("401", "no or an unknown API key"),
            ("403", "the key's role may not do this"),
            ("429", "over the rate limit (see Retry-After)"),
        ]);
    }
    if named {
        add.push(("404", "no such resource"));
    }
    if has_body {
        add.extend([("413", "the body is over the size limit"), ("415", "the body is not application/json")]);
    }
    let responses = &mut op.responses.responses;
    for (status, description) in add {
        responses.entry(status.to_owned()).or_insert_with(|| RefOr::T(Response::new(description)));
    }
    // Every error answer (ours, or one a handler listed) carries the error body.
    for (status, response) in responses.iter_mut() {
        let is_error = status == "default" || status.starts_with('4') || status.starts_with('5');
        let RefOr::T(r) = response else { continue };
        if r.description.is_empty() {
            r.description = standard_description(status).to_owned();
        }
        if is_error && r.content.is_empty() {
            r.content.insert(
                "application/json".to_owned(),
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))),
            );
        }
    }
}

fn standard_description(status: &str) -> &'static str {
    match status {
        "400" => "the request is not valid",
        "404" => "no such resource",
        "409" => "the request conflicts with the current state",
        "422" => "the values do not satisfy the schema",
        "502" => "the upstream failed",
        "503" => "a backend is down",
        s if s.starts_with('2') || s.starts_with('3') => "success",
        _ => "an error",
    }
}

/// The proxy forwards several methods with one handler: its operation is
/// listed once per method (`proxyCall`, `proxyCallPost`, ...), so the
/// document names exactly the methods the route takes.
struct ProxyMethods;

impl utoipa::Modify for ProxyMethods {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(item) = openapi.paths.paths.get_mut("/proxy/{key}/{path}") else { return };
        let Some(get) = item.get.clone() else { return };
        for method in crate::routes::proxy::FORWARDED_METHODS {
            let mut op = get.clone();
            let mut suffix = method.to_owned();
            suffix[..1].make_ascii_uppercase();
            op.operation_id = Some(format!("proxyCall{suffix}"));
            let slot = match method {
                "head" => &mut item.head,
                "post" => &mut item.post,
                "put" => &mut item.put,
                "patch" => &mut item.patch,
                "delete" => &mut item.delete,
                "options" => &mut item.options,
                _ => continue, // get: the annotated operation itself
            };
            *slot = Some(op);
        }
    }
}

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

/// The requests Tessera sends rather than answers: OpenAPI 3.1's `webhooks`
/// section. utoipa 5's document type has no field for it, so its operations
/// are annotated like any other (`webhooks::delivery`), gathered here, and
/// put under `webhooks` by [`Outgoing`]; the schemas they name are
/// components of [`ApiDoc`].
#[derive(OpenApi)]
#[openapi(paths(webhooks::delivery))]
struct OutgoingDoc;

/// Adds the `webhooks` section. The document's extensions are the one
/// place utoipa 5 writes a top-level key it does not model (flattened, after
/// the others); the key is set directly, since `webhooks` is no `x-` name.
struct Outgoing;

impl utoipa::Modify for Outgoing {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let webhooks = serde_json::to_value(OutgoingDoc::openapi().paths).expect("the webhooks serialise");
        openapi.extensions.get_or_insert_with(Default::default).insert("webhooks".to_owned(), webhooks);
    }
}

/// The OpenAPI document as JSON text (built once).
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises")).clone()
}
