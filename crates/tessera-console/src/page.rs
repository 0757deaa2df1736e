//! Rendering: the layout's shared parts, templates to responses, and error pages.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tessera_core::access::Role;
use tessera_core::service::ConsoleSession;
use tessera_core::{ErrorKind, ServiceError};

/// What the layout shows around every signed-in page.
pub(crate) struct Chrome {
    /// The signed-in principal's id.
    pub(crate) who: String,
    /// Its role, as the API names it.
    pub(crate) role: &'static str,
    /// Its tenant, for a tenant-bound key.
    pub(crate) tenant: Option<String>,
    /// The CSRF token every form carries.
    pub(crate) csrf: String,
    /// The navigation entry of this page.
    pub(crate) section: &'static str,
    /// Whether the principal is an admin (creation forms).
    pub(crate) admin: bool,
    /// Whether the principal may read tenant data (auditors may not).
    pub(crate) reads_tenants: bool,
    /// Whether the principal manages API keys (admins, tenant admins).
    pub(crate) manages_keys: bool,
}

impl Chrome {
    pub(crate) fn new(s: &ConsoleSession, section: &'static str) -> Self {
        let p = &s.ctx.principal;
        Self {
            who: p.id.clone(),
            role: p.role.as_str(),
            tenant: p.tenant.as_ref().map(ToString::to_string),
            csrf: s.csrf.clone(),
            section,
            admin: p.role == Role::Admin,
            reads_tenants: p.role != Role::Auditor,
            manages_keys: matches!(p.role, Role::Admin | Role::TenantAdmin),
        }
    }
}

/// Renders a page.
pub(crate) fn html<T: Template>(page: &T) -> Response {
    html_with(StatusCode::OK, page)
}

/// Renders a page with a status.
pub(crate) fn html_with<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// Why a page could not be shown; rendered as an HTML page that says what to do.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The service refused or failed.
    Service(ServiceError),
    /// A form came without this session's CSRF token.
    Csrf,
    /// A form could not be read.
    BadForm(String),
    /// No such page.
    NotFound,
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message, retry) = match &self {
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from your current console session. Go back, reload the page and submit it again."
                    .to_owned(),
                None,
            ),
            Self::BadForm(why) => (StatusCode::BAD_REQUEST, "Form not understood", why.clone(), None),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page, or you may not see it.".to_owned(),
                None,
            ),
            Self::Service(e) => {
                let (status, title) = status_of(e);
                // Service messages never carry secrets; internal ones are replaced.
                let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
                    "Tessera could not complete this request; the server log has the details.".to_owned()
                } else {
                    e.message.clone()
                };
                (status, title, message, e.retry_after)
            }
        };
        let mut resp = html_with(status, &ErrorPage { title, message: &message });
        if let Some(secs) = retry {
            if let Ok(v) = secs.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// The HTTP status and page title of a service error.
pub(crate) fn status_of(e: &ServiceError) -> (StatusCode, &'static str) {
    match e.kind {
        ErrorKind::Invalid | ErrorKind::Unprocessable => (StatusCode::BAD_REQUEST, "Not accepted"),
        ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "Sign-in needed"),
        ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "Not allowed"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
        ErrorKind::Conflict => (StatusCode::CONFLICT, "Conflict"),
        ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Too large"),
        ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        ErrorKind::Upstream => (StatusCode::BAD_GATEWAY, "A provider failed"),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    }
}

/// A page's result.
pub(crate) type PageResult = Result<Response, PageError>;
