//! Posted forms: every state-changing request is a form POST that must carry
//! its session's CSRF token. [`Posted`] checks the session and the token
//! before the handler runs, so no handler can forget either.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::page::PageError;
use crate::session::Signed;
use crate::ConsoleState;

/// A signed-in caller's form, its CSRF token checked.
pub(crate) struct Posted<T> {
    pub(crate) signed: Signed,
    pub(crate) form: T,
}

impl<T: DeserializeOwned> FromRequest<ConsoleState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        let csrf = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        if !csrf.is_some_and(|c| signed.session.csrf_matches(&c)) {
            return Err(PageError::Csrf.into_response());
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes)
            .map_err(|e| PageError::BadForm(format!("The form could not be read: {e}.")).into_response())?;
        Ok(Self { signed, form })
    }
}

/// Whether a form was posted from one of Tessera's own pages: a browser says
/// so in `Sec-Fetch-Site` or `Origin`; another site's page posting a key of
/// its own (login CSRF), or posting to a connect page, is refused.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => url::Url::parse(origin)
            .ok()
            .and_then(|u| u.host_str().map(|h| (h.to_owned(), u.port())))
            .is_some_and(|(h, port)| {
                let expected = match port {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                };
                host.to_str().is_ok_and(|host| host.eq_ignore_ascii_case(&expected))
            }),
        _ => true,
    }
}
