//! Vault's answer shapes: the response envelope (`request_id`, `lease_id`,
//! `renewable`, `lease_duration`, `data`, `wrap_info`, `warnings`, `auth`,
//! `mount_type`) and the error body `{"errors": [...]}`, with the status codes
//! Vault uses. The one place a [`ServiceError`] becomes a Vault answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tessera_core::secret_json::SecretJson;
use tessera_core::ErrorCode;
use tessera_core::{ErrorKind, ServiceError};
use zeroize::Zeroizing;

/// Vault's answer to a path or namespace the token may not use: the same
/// for a namespace that does not exist, so tenants cannot be probed.
pub(crate) fn permission_denied() -> Response {
    errors(StatusCode::FORBIDDEN, &["permission denied"])
}

/// Vault's "nothing here": 404 with an empty error list.
pub(crate) fn not_found() -> Response {
    errors(StatusCode::NOT_FOUND, &[])
}

/// `{"errors": [...]}` with a status.
pub(crate) fn errors(status: StatusCode, messages: &[&str]) -> Response {
    json_bytes(status, serde_json::to_vec(&json!({ "errors": messages })).expect("JSON serialises"))
}

/// A path this API does not serve, worded as Vault words it.
/// Vault's answer to a body that is not the JSON it wants.
pub(crate) fn bad_json() -> Response {
    errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"])
}

pub(crate) fn no_handler(path: &str) -> Response {
    let message = format!("no handler for route \"{path}\". route entry not found.");
    errors(StatusCode::NOT_FOUND, &[message.as_str()])
}

/// An admin key (bound to no tenant) that named no namespace.
pub(crate) fn no_tenant() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        &["this token belongs to no tenant: name one as the namespace (X-Vault-Namespace, BAO_NAMESPACE)"],
    )
}

/// A method the path does not take.
pub(crate) fn unsupported() -> Response {
    errors(StatusCode::METHOD_NOT_ALLOWED, &["1 error occurred:\n\t* unsupported operation\n\n"])
}

/// 204, as Vault answers a change with nothing to say.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The envelope around public `data`.
pub(crate) fn envelope(status: StatusCode, request_id: &str, data: &Value, mount_type: &str) -> Response {
    warned(status, request_id, data, &[], mount_type)
}

/// The envelope around public `data` (`null` for none) with Vault's warnings.
pub(crate) fn warned(
    status: StatusCode,
    request_id: &str,
    data: &Value,
    warnings: &[&str],
    mount_type: &str,
) -> Response {
    let mut doc = SecretJson::new();
    head(&mut doc, request_id);
    doc.public("data", data);
    tail_warned(&mut doc, warnings, mount_type);
    secret_bytes(status, doc.finish())
}

/// Vault's refusal of a field that does not convert, on paths that check
/// their fields first (`Field validation failed: ...`).
pub(crate) fn field_invalid(message: &str) -> Response {
    let message = format!("Field validation failed: {message}");
    errors(StatusCode::BAD_REQUEST, &[message.as_str()])
}

/// The envelope around `data` that holds decrypted values, built in a
/// zeroizing buffer up to the HTTP body (as the native API's reads are).
pub(crate) fn secret_envelope(status: StatusCode, request_id: &str, data: SecretJson, mount_type: &str) -> Response {
    let mut doc = SecretJson::new();
    head(&mut doc, request_id);
    doc.object("data", data);
    tail(&mut doc, mount_type);
    secret_bytes(status, doc.finish())
}

fn head(doc: &mut SecretJson, request_id: &str) {
    doc.public("request_id", &json!(request_id));
    doc.public("lease_id", &json!(""));
    doc.public("renewable", &json!(false));
    doc.public("lease_duration", &json!(0));
}

fn tail(doc: &mut SecretJson, mount_type: &str) {
    tail_warned(doc, &[], mount_type);
}

fn tail_warned(doc: &mut SecretJson, warnings: &[&str], mount_type: &str) {
    doc.public("wrap_info", &Value::Null);
    doc.public("warnings", &if warnings.is_empty() { Value::Null } else { json!(warnings) });
    doc.public("auth", &Value::Null);
    doc.public("mount_type", &json!(mount_type));
}

fn secret_bytes(status: StatusCode, doc: Zeroizing<Vec<u8>>) -> Response {
    // Moving the bytes out leaves the zeroizing buffer empty: from here the
    // HTTP stack owns them, on their way to the caller who asked for them.
    let mut doc = doc;
    let mut resp = json_bytes(status, std::mem::take(&mut *doc));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// A service error as Vault would answer it: a tenant the caller may not
/// see (or that does not exist), a role that may not do this and a bad
/// token are all `permission denied`; a missing secret or version is 404
/// with no message; bad input is 400 with the service's sentence.
pub(crate) fn service_error(e: &ServiceError) -> Response {
    match e.kind {
        ErrorKind::NotFound if e.code == ErrorCode::TenantNotFound => permission_denied(),
        ErrorKind::NotFound => not_found(),
        ErrorKind::Forbidden | ErrorKind::Unauthenticated => permission_denied(),
        ErrorKind::Invalid if e.code == ErrorCode::InvalidTenantId => permission_denied(),
        ErrorKind::Conflict if e.code == ErrorCode::CasMismatch => {
            errors(StatusCode::BAD_REQUEST, &["check-and-set parameter did not match the current version"])
        }
        ErrorKind::Invalid | ErrorKind::Unprocessable | ErrorKind::Conflict => {
            errors(StatusCode::BAD_REQUEST, &[e.message.as_str()])
        }
        ErrorKind::TooLarge => errors(StatusCode::PAYLOAD_TOO_LARGE, &[e.message.as_str()]),
        ErrorKind::RateLimited => {
            let mut resp = errors(StatusCode::TOO_MANY_REQUESTS, &[e.message.as_str()]);
            if let Some(secs) = e.retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        ErrorKind::Unavailable => errors(StatusCode::SERVICE_UNAVAILABLE, &[e.message.as_str()]),
        ErrorKind::Upstream => errors(StatusCode::BAD_GATEWAY, &[e.message.as_str()]),
        _ => errors(StatusCode::INTERNAL_SERVER_ERROR, &["internal error"]),
    }
}
