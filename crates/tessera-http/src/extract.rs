//! Extractors: the authenticated caller, and the path, query and JSON body
//! readers whose rejections use the API's error format (400 naming the
//! parameter, 413 for an oversized body, 415 for a body that is not JSON).
//! Handlers use these, never axum's own, whose rejections are plain text.

use std::net::SocketAddr;
use tessera_core::ErrorCode;

use axum::body::Bytes;
use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use tessera_core::Ctx;

use crate::client_addr::ClientAddr;
use crate::error::{ApiError, Rejection};
use crate::AppState;

/// The authenticated caller of a request.
pub struct Caller(pub Ctx);

/// The request id (`X-Request-Id`, or a new one) and the client's address,
/// for routes without a bearer token.
pub struct Origin {
    /// Request id.
    pub request_id: String,
    /// Client address, if known.
    pub client_ip: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request_id =
            tessera_core::ids::request_id_or_new(parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()));
        // The address the client_addr layer decided (trusted proxies); the peer otherwise.
        let client_ip = match parts.extensions.get::<ClientAddr>() {
            Some(ClientAddr(ip)) => Some(ip.to_string()),
            None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical().to_string()),
        };
        Ok(Self { request_id, client_ip })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Origin { request_id, client_ip } = Origin::from_request_parts(parts, state).await?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(ApiError(state.svc.refuse_without_token(client_ip.as_deref())));
        };
        let principal = state.svc.authenticate(token, Some(request_id.clone()), client_ip.clone()).await?;
        Ok(Self(Ctx { principal, request_id: Some(request_id), client_ip }))
    }
}

/// A JSON object body; malformed input (or another JSON value: serde would
/// read a struct from an array too) is a 400, a body over the limit a 413, a
/// missing or other content type a 415.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Rejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(json_rejection(&JsonRejection::MissingJsonContentType(Default::default())));
        }
        let bytes =
            Bytes::from_request(req, state).await.map_err(|e| json_rejection(&JsonRejection::BytesRejection(e)))?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
            return Err(Rejection::bad_request(ErrorCode::InvalidBody, "the request body must be a JSON object", None));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// `Content-Type: application/json` or `application/<something>+json`, as axum's `Json` takes.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.strip_prefix("application/").is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

fn json_rejection(r: &JsonRejection) -> Rejection {
    match r {
        JsonRejection::MissingJsonContentType(_) => Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => {
            Rejection::bad_request(ErrorCode::MalformedJson, "the request body is not valid JSON", None)
        }
        JsonRejection::JsonDataError(e) => {
            // serde's message may quote a value; keep only the field-naming kinds.
            let text = e.body_text();
            let detail = ["unknown field", "missing field"]
                .iter()
                .find_map(|k| text.find(k).map(|i| text[i..].split(',').next().unwrap_or_default().to_owned()))
                .unwrap_or_else(|| "a field has the wrong type".to_owned());
            Rejection::bad_request(ErrorCode::InvalidBody, format!("the request body does not match: {detail}"), None)
        }
        JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the limit",
        ),
        _ => Rejection::bad_request(ErrorCode::InvalidBody, "the request body could not be read", None),
    }
}

/// The query string, deserialised like axum's `Query`; a value that does not
/// parse, or a parameter given twice, is a 400 naming the parameter (never
/// quoting its value: a callback's query carries codes).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| query_rejection(&e))
    }
}

fn query_rejection(e: &serde_path_to_error::Error<serde_urlencoded::de::Error>) -> Rejection {
    let text = e.inner().to_string();
    // A duplicated or missing parameter is reported at the top level, naming
    // it between backticks (a field of ours, never the caller's input).
    let named = ["duplicate field `", "missing field `"].iter().find_map(|k| {
        let rest = &text[text.find(k)? + k.len()..];
        let name = &rest[..rest.find('`')?];
        Some((*k, name.to_owned()))
    });
    let path = e.path().to_string();
    let (name, what) = match named {
        Some((k, name)) if k.starts_with("duplicate") => (name, "is given more than once"),
        Some((_, name)) => (name, "is required"),
        None => (path, "has a value that is not valid here"),
    };
    if !is_parameter_name(&name) {
        return Rejection::bad_request(ErrorCode::InvalidQuery, "the query string is not valid here", None);
    }
    Rejection::bad_request(ErrorCode::InvalidQuery, format!("the query parameter `{name}` {what}"), Some(name))
}

/// Path parameters, deserialised like axum's `Path`; a segment that is not
/// UTF-8 (after percent-decoding) or does not parse is a 400 naming the
/// parameter, never quoting it.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(path_rejection(e.kind())),
            Err(_) => Err(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error; see the server log",
            )),
        }
    }
}

fn path_rejection(kind: &PathErrorKind) -> Rejection {
    let key = match kind {
        PathErrorKind::ParseErrorAtKey { key, .. }
        | PathErrorKind::InvalidUtf8InPathParam { key }
        | PathErrorKind::DeserializeError { key, .. } => Some(documented_name(key)),
        _ => None,
    };
    let what = if matches!(kind, PathErrorKind::InvalidUtf8InPathParam { .. }) {
        "is not UTF-8 once percent-decoded"
    } else {
        "is not valid here"
    };
    match key {
        Some(name) => {
            Rejection::bad_request(ErrorCode::InvalidPath, format!("the path parameter `{name}` {what}"), Some(name))
        }
        None => Rejection::bad_request(ErrorCode::InvalidPath, "the request path is not valid here", None),
    }
}

/// A route's capture name as the OpenAPI document spells it
/// (`tenant_id` is `tenantId`).
fn documented_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn is_parameter_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}
