//! Extractors: the authenticated caller, and JSON bodies whose rejections
//! use the API's error format (413 for an oversized body).

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use tessera_core::{Ctx, ServiceError};

use crate::client_addr::ClientAddr;
use crate::error::{bad_request, ApiError};
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
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
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

/// A JSON body; malformed input is a 400, a body over the limit a 413.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            bad_request("unsupported_media_type", "send Content-Type: application/json", None)
        }
        JsonRejection::JsonSyntaxError(_) => bad_request("malformed_json", "the request body is not valid JSON", None),
        JsonRejection::JsonDataError(e) => {
            // serde's message may quote a value; keep only the field-naming kinds.
            let text = e.body_text();
            let detail = ["unknown field", "missing field"]
                .iter()
                .find_map(|k| text.find(k).map(|i| text[i..].split(',').next().unwrap_or_default().to_owned()))
                .unwrap_or_else(|| "a field has the wrong type".to_owned());
            bad_request("invalid_body", format!("the request body does not match: {detail}"), None)
        }
        JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError(ServiceError::new(
            tessera_core::ErrorKind::TooLarge,
            "payload_too_large",
            "the request body is larger than the limit",
        )),
        _ => bad_request("invalid_body", "the request body could not be read", None),
    }
}
