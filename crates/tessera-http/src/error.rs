//! The one place a service error becomes an HTTP status and body:
//! `{"error": {"code", "message", "field"}}`. Errors the adapter finds in a
//! request before any service call ([`Rejection`]) and statuses the HTTP stack
//! produces itself ([`json_errors`]) get the same body.

use std::any::Any;
use tessera_core::ErrorCode;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tessera_core::{ErrorKind, ServiceError};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Integrity | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error body every error answer carries.
fn render(status: StatusCode, code: ErrorCode, message: &str, field: Option<&str>) -> Response {
    let mut body = json!({"code": code.as_str(), "message": message});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    (status, Json(json!({ "error": body }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let code = status(e.kind);
        if code.is_server_error() {
            tracing::warn!(code = %e.code, message = %e.message, "request failed");
        }
        let mut resp = render(code, e.code, &e.message, e.field.as_deref());
        if let Some(secs) = e.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if code == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Bad request with a code and an optional field.
pub fn bad_request(code: ErrorCode, message: impl Into<String>, field: Option<&str>) -> ApiError {
    ApiError(ServiceError::invalid(code, message, field))
}

/// A request the adapter refuses before calling the service: a path, query,
/// header or body it cannot read. Its message names the part, never its value.
#[derive(Debug)]
pub struct Rejection {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    field: Option<String>,
}

impl Rejection {
    /// A 400 naming the field at fault.
    pub(crate) fn bad_request(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message: message.into(), field }
    }

    /// Any status with a code.
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        render(self.status, self.code, &self.message, self.field.as_deref())
    }
}

pub(crate) async fn not_found_fallback() -> ApiError {
    ApiError(ServiceError::not_found(ErrorCode::RouteNotFound, "no such route"))
}

pub(crate) async fn method_not_allowed() -> Response {
    method_not_allowed_response()
}

/// A 405 in the API's format (the caller adds `Allow`).
pub(crate) fn method_not_allowed_response() -> Response {
    render(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, "this route does not accept that method", None)
}

pub(crate) fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    render(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error; see the server log", None)
}

/// Marks a response whose status and body are someone else's (the proxy's
/// upstream answer): [`json_errors`] leaves it as it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Passthrough;

/// Gives every error answer without a JSON body (statuses the HTTP stack
/// makes itself: a time-out's 408, the method router's 405, a body limit's
/// 413, ...) the API's error body, so clients parse one format.
pub(crate) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.extensions().get::<Passthrough>().is_some()
        || resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return resp;
    }
    let (code, message) = describe(status);
    let (mut parts, _) = resp.into_parts();
    let fresh = render(status, code, message, None);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &fresh_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, Body::new(body))
}

/// A code and message for a status the HTTP stack produced.
fn describe(status: StatusCode) -> (ErrorCode, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => (ErrorCode::BadRequest, "the request could not be read"),
        StatusCode::NOT_FOUND => (ErrorCode::RouteNotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "this route does not accept that method"),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::RequestTimeout, "the request took longer than the time limit"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "the request body is larger than the limit"),
        StatusCode::URI_TOO_LONG => (ErrorCode::UriTooLong, "the request URI is longer than the limit"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, "send Content-Type: application/json"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            (ErrorCode::HeadersTooLarge, "the request headers are larger than the limit")
        }
        s if s.is_server_error() => (ErrorCode::Internal, "internal error; see the server log"),
        _ => (ErrorCode::BadRequest, "the request was refused"),
    }
}

/// Longest request URI (path and query) accepted: 414 beyond. Common servers
/// (nginx, Apache) stop near 8 KiB too; no route needs more.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// Refuses an over-long URI with a JSON 414 before routing (the HTTP parser's
/// own 414, for URIs over 64 KiB, has no body and is out of reach).
pub(crate) async fn limit_uri(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        return Rejection::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}
