//! The Hosted Connect page: where a tenant's own users connect their
//! accounts, at `/connect/{token}` (the URL a connect session's creator got).
//!
//! Where it sits: a second adapter in this crate beside the console, over the
//! same service layer (`Tessera::connect_*`). There is no sign-in: the token
//! in the path is the page's only credential, and the service decides what
//! it opens. This module adds what a page needs around that: its own
//! security headers (framing only by `TESSERA_CONNECT_ORIGINS`), a check that
//! every form post comes from the page itself, and the deployment's title
//! and logo. Tokens never reach a log: the request span names the path with
//! the token replaced (see `tessera_http`).

mod views;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tessera_core::Tessera;

/// Settings of the connect page.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// `TESSERA_CONNECT_ORIGINS`: origins (`https://app.example.com`) that may
    /// frame the page and receive its completion message; empty: none.
    pub origins: Vec<String>,
    /// `TESSERA_CONNECT_TITLE`: the page's heading (the platform's name).
    pub title: String,
    /// `TESSERA_CONNECT_LOGO_URL`: an https image shown beside the title.
    pub logo_url: Option<String>,
}

#[derive(Clone)]
pub(crate) struct ConnectState {
    pub(crate) svc: Arc<Tessera>,
    pub(crate) opts: Arc<ConnectOptions>,
}

/// Every route of the connect page.
pub fn router(svc: Arc<Tessera>, opts: ConnectOptions) -> Router {
    let csp = csp(&opts);
    let framed = !opts.origins.is_empty();
    Router::new()
        .route("/connect/{token}", get(views::page))
        .route("/connect/{token}/integrations/{key}", get(views::form).post(views::save))
        .route("/connect/{token}/authorize", post(views::authorize))
        .route("/connect/{token}/finish", post(views::finish))
        .route("/connect/{token}/cancel", post(views::cancel))
        .with_state(ConnectState { svc, opts: Arc::new(opts) })
        .layer(axum::middleware::map_response(move |resp: Response| {
            let csp = csp.clone();
            async move { secure(resp, &csp, framed) }
        }))
}

/// The console's policy, except who may frame the page and the logo's origin.
fn csp(opts: &ConnectOptions) -> HeaderValue {
    let ancestors = if opts.origins.is_empty() { "'none'".to_owned() } else { opts.origins.join(" ") };
    let logo = opts
        .logo_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{logo}; \
         form-action 'self'; frame-ancestors {ancestors}; base-uri 'none'; object-src 'none'"
    );
    // Origins and the logo URL were checked at startup; a value that still
    // cannot be a header falls back to the strictest policy.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
    })
}

fn secure(mut resp: Response, csp: &HeaderValue, framed: bool) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    if !framed {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    // The token is in the URL: never sent on as a referrer.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
