//! Tessera's HTTP adapter (axum).
//!
//! Where it sits: on top of the service layer. It parses requests,
//! authenticates the bearer token into a [`tessera_core::Ctx`], calls one
//! service method, and renders the answer or the error. It never touches SQL
//! or crypto, and never logs a request or response body.

mod client_addr;
mod declared_length;
mod error;
mod extract;
mod metrics;
mod openapi;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tessera_core::Tessera;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use client_addr::{ClientAddr, TrustedProxies};
pub use error::ApiError;
pub use openapi::openapi_json;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The service layer.
    pub svc: Arc<Tessera>,
}

/// HTTP settings.
#[derive(Clone)]
pub struct HttpOptions {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Longest a request may take before a 408.
    pub request_timeout: Duration,
    /// Peers whose `X-Forwarded-For` names the client (`TESSERA_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// The whole API as one router.
pub fn router(svc: Arc<Tessera>, opts: &HttpOptions) -> Router {
    router_with(svc, opts, Router::new())
}

/// A request path as logs may show it: a connect page's token (the page's
/// only credential, `/connect/{token}/...`) is replaced.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/connect/") {
        Some(rest) if rest != "sessions" && !rest.starts_with("sessions/") => {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            std::borrow::Cow::Owned(format!("/connect/[token]{tail}"))
        }
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// The API with other adapters' routes (the console) beside it, under the
/// same outer layers (client address, size and time limits, tracing, panic
/// catching). Their responses are their own: the API's JSON error bodies
/// never replace them.
pub fn router_with(svc: Arc<Tessera>, opts: &HttpOptions, adapters: Router) -> Router {
    metrics::handle();
    metrics::register_counters(svc.secret_backend());
    let adapters = adapters.layer(axum::middleware::map_response(|mut resp: axum::response::Response| async move {
        resp.extensions_mut().insert(error::Passthrough);
        resp
    }));
    routes::api()
        .route("/metrics", axum::routing::get(metrics::render))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(error::not_found_fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(AppState { svc })
        .merge(adapters)
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(axum::middleware::from_fn(error::limit_uri))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, opts.request_timeout))
        // Outside the time limit, so its 408 gets the JSON error body too.
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn({
            let max = opts.max_body_bytes;
            move |req, next| declared_length::refuse_oversized(max, req, next)
        }))
        .layer(axum::middleware::from_fn({
            let proxies = opts.trusted_proxies.clone();
            move |req, next| client_addr::resolve(proxies.clone(), req, next)
        }))
        // Spans name the path, never the query: callbacks carry codes and states there.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()))
                })
                // A failed request is logged once, with its cause, where the
                // error is answered (error.rs); this one would only repeat its status.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(CatchPanicLayer::custom(error::panic_response))
}
