//! A request whose declared `Content-Length` is above the body limit is
//! refused with 413 at once: before authentication and before a byte of the
//! body is read, so a client cannot hold a connection (and a token lookup)
//! by announcing a body it never sends.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_core::ErrorCode;
use tessera_core::{ErrorKind, ServiceError};

use crate::error::ApiError;

/// Middleware: 413 when `Content-Length` exceeds `max_body_bytes`.
pub(crate) async fn refuse_oversized(max_body_bytes: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body_bytes as u64) {
        let mut resp = ApiError(ServiceError::new(
            ErrorKind::TooLarge,
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the limit",
        ))
        .into_response();
        // The unread body makes the connection unusable for another request.
        resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return resp;
    }
    next.run(req).await
}
