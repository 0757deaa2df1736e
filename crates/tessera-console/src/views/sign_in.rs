//! Sign-in and sign-out.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tessera_core::ErrorKind;

use crate::form::{same_origin, Posted};
use crate::page::{html_with, PageError, PageResult};
use crate::session::{clear_cookie, set_cookie, Origin};
use crate::ConsoleState;

#[derive(Template)]
#[template(path = "sign_in.html")]
pub(crate) struct SignInPage<'a> {
    pub(crate) error: Option<&'a str>,
}

/// The sign-in page (what `/console` shows without a session).
pub(crate) fn page(status: StatusCode, error: Option<&str>) -> Response {
    html_with(status, &SignInPage { error })
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    token: String,
}

/// `POST /console/sign-in`.
pub(crate) async fn sign_in(
    State(state): State<ConsoleState>,
    origin: Origin,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&headers) {
        return PageError::Csrf.into_response();
    }
    let Ok(form) = serde_urlencoded::from_bytes::<SignInForm>(&body) else {
        return page(StatusCode::BAD_REQUEST, Some("Enter an API key or the root token."));
    };
    let token = SecretString::from(form.token);
    let token = token.expose_secret().trim();
    if token.is_empty() {
        return page(StatusCode::BAD_REQUEST, Some("Enter an API key or the root token."));
    }
    match state.svc.console_sign_in(token, origin.request_id, origin.client_ip).await {
        Ok(opened) => {
            let max_age = state.svc.console_max_age().as_secs();
            let cookie = set_cookie(&opened.token, state.opts.secure_cookies, max_age);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/console")).into_response()
        }
        Err(e) => match e.kind {
            ErrorKind::Unauthenticated => {
                page(StatusCode::UNAUTHORIZED, Some("That key is not valid. Check it and try again."))
            }
            ErrorKind::Forbidden => page(StatusCode::FORBIDDEN, Some(&e.message)),
            ErrorKind::RateLimited => page(
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed attempts from your address. Wait a minute and try again."),
            ),
            _ => PageError::from(e).into_response(),
        },
    }
}

#[derive(Deserialize)]
pub(crate) struct Nothing {}

/// `POST /console/sign-out`.
pub(crate) async fn sign_out(State(state): State<ConsoleState>, posted: Posted<Nothing>) -> PageResult {
    let signed = posted.signed;
    state.svc.console_sign_out(&signed.session, signed.token.expose_secret()).await?;
    Ok(([(header::SET_COOKIE, clear_cookie(state.opts.secure_cookies))], Redirect::to("/console")).into_response())
}
