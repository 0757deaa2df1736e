//! The session cookie and the signed-in caller of a page.
//!
//! The cookie holds only the random session token; the server keeps the
//! session (see `tessera_core::service::console_sessions`). It is `HttpOnly`
//! (no script reads it), `SameSite=Strict` (no other site's page sends it),
//! scoped to `/console`, and `Secure` when the public URL is https.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use tessera_core::service::ConsoleSession;
use tessera_core::ClientAddr;

use crate::page::PageError;
use crate::ConsoleState;

const COOKIE: &str = "tessera_session";

/// Where a request comes from: its id and the client's address.
pub(crate) struct Origin {
    pub(crate) request_id: Option<String>,
    pub(crate) client_ip: Option<String>,
}

impl Origin {
    pub(crate) fn of(parts: &Parts) -> Self {
        let request_id =
            tessera_core::ids::request_id_or_new(parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()));
        let client_ip = match parts.extensions.get::<ClientAddr>() {
            Some(ClientAddr(ip)) => Some(ip.to_string()),
            None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical().to_string()),
        };
        Self { request_id: Some(request_id), client_ip }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// The session token a request's cookie carries, if any.
pub(crate) fn token_of(headers: &HeaderMap) -> Option<SecretString> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(|v| SecretString::from(v.to_owned()))
}

/// `Set-Cookie` for a new session.
pub(crate) fn set_cookie(token: &SecretString, secure: bool, max_age_secs: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}",
        token.expose_secret()
    )
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// A signed-in caller: the session (its `Ctx` and CSRF token) and the
/// session token it was found by (for sign-out).
pub(crate) struct Signed {
    pub(crate) session: ConsoleSession,
    pub(crate) token: SecretString,
}

/// Sends a request without a valid session to the sign-in page.
pub(crate) struct SignInFirst(Response);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let origin = Origin::of(parts);
        let Some(token) = token_of(&parts.headers) else {
            return Err(SignInFirst(Redirect::to("/console").into_response()));
        };
        match state.svc.console_session(token.expose_secret(), origin.request_id, origin.client_ip).await {
            Ok(Some(session)) => Ok(Self { session, token }),
            Ok(None) => Err(SignInFirst(
                ([(header::SET_COOKIE, clear_cookie(state.opts.secure_cookies))], Redirect::to("/console"))
                    .into_response(),
            )),
            Err(e) => Err(SignInFirst(PageError::from(e).into_response())),
        }
    }
}

/// A session if the request has a valid one (the sign-in page's choice).
pub(crate) struct MaybeSigned(pub(crate) Option<Signed>);

impl FromRequestParts<ConsoleState> for MaybeSigned {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        if token_of(&parts.headers).is_none() {
            return Ok(Self(None));
        }
        match Signed::from_request_parts(parts, state).await {
            Ok(s) => Ok(Self(Some(s))),
            Err(_) => Ok(Self(None)),
        }
    }
}
