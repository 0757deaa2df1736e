//! The connect page's handlers: each turns the request into one call of the
//! service's `connect_*` use cases and renders its answer. Every POST must
//! come from the page itself (`Sec-Fetch-Site`/`Origin`).

use std::collections::BTreeMap;
use tessera_core::ErrorCode;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::service::{ConnectItem, ConnectKind, ConnectOrigin};
use tessera_core::{ErrorKind, ServiceError};

use super::ConnectState;
use crate::form::same_origin;
use crate::page::{html_with, status_of};
use crate::schema_form::{fields_of, parse, Field, Input};
use crate::session::Origin;

/// A failed flow's error code in words the person who tried understands.
fn words(code: &str) -> &'static str {
    match code {
        "access_denied" => "the authorization was declined at the provider.",
        "state_expired" => "it took too long. Try again.",
        "server_error" | "temporarily_unavailable" => "the provider had a problem. Try again in a moment.",
        "connect_link_invalid"
        | "connect_session_expired"
        | "connect_session_completed"
        | "connect_session_cancelled" => "this link is no longer valid. Ask the app that sent you here for a new one.",
        _ => "the provider did not complete the connection. Try again; if it keeps failing, contact the app's support.",
    }
}

/// The deployment's name and logo, on every page.
struct Brand {
    title: String,
    logo: Option<String>,
}

impl Brand {
    fn of(st: &ConnectState) -> Self {
        Self { title: st.opts.title.clone(), logo: st.opts.logo_url.clone() }
    }
}

fn origin_of(o: Origin) -> ConnectOrigin {
    ConnectOrigin { request_id: o.request_id, client_ip: o.client_ip }
}

#[derive(Template)]
#[template(path = "connect_error.html")]
struct ErrorPage {
    brand: Brand,
    title: &'static str,
    message: String,
}

/// A refusal as a page in words a person understands (no internal detail).
fn error_page(st: &ConnectState, e: &ServiceError) -> Response {
    let (status, title) = status_of(e);
    let message = match status {
        StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on our side. Try again in a moment.".to_owned(),
        StatusCode::TOO_MANY_REQUESTS => "Too many requests. Wait a moment, then reload the page.".to_owned(),
        _ => e.message.clone(),
    };
    let title = match e.code.as_str() {
        "connect_link_invalid" => "Link not valid",
        "connect_session_expired" => "Link expired",
        "connect_session_completed" | "connect_session_cancelled" => "Link already used",
        _ => title,
    };
    html_with(status, &ErrorPage { brand: Brand::of(st), title, message })
}

fn not_from_page(st: &ConnectState) -> Response {
    let e = ServiceError::forbidden("This form did not come from the connect page. Go back and try again.");
    error_page(st, &e)
}

/// The outcome of the last step, from the query the page was sent to.
#[derive(Deserialize, Default)]
pub(crate) struct Banner {
    #[serde(default)]
    connected: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: String,
}

enum Notice {
    Done(String),
    Failed(String),
}

#[derive(Template)]
#[template(path = "connect_page.html")]
struct Page {
    brand: Brand,
    token: String,
    end_user: Option<String>,
    items: Vec<ConnectItem>,
    notice: Option<Notice>,
    any_connected_here: bool,
}

impl Page {
    fn is_oauth(item: &ConnectItem) -> bool {
        item.kind == ConnectKind::OAuth
    }
}

/// `GET /connect/{token}`.
pub(crate) async fn page(
    State(st): State<ConnectState>,
    Path(token): Path<String>,
    origin: Origin,
    Query(b): Query<Banner>,
) -> Response {
    let view = match st.svc.connect_view(&token, &origin_of(origin)).await {
        Ok(v) => v,
        Err(e) => return error_page(&st, &e),
    };
    let name_of = |key: &str| view.items.iter().find(|i| i.key == key).map(|i| i.name.clone());
    let notice = match (b.status.as_str(), name_of(&b.connected)) {
        ("success", Some(name)) => Some(Notice::Done(format!("{name} is connected."))),
        ("error", Some(name)) => Some(Notice::Failed(format!("{name} was not connected: {}", words(&b.error)))),
        _ => None,
    };
    let any_connected_here = view.items.iter().any(|i| i.connected_here);
    let page =
        Page { brand: Brand::of(&st), token, end_user: view.end_user, items: view.items, notice, any_connected_here };
    html_with(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "connect_form.html")]
struct FormPage {
    brand: Brand,
    token: String,
    key: String,
    name: String,
    fields: Vec<Field>,
    form_error: Option<String>,
}

/// `GET /connect/{token}/integrations/{key}`: the integration's credential form.
pub(crate) async fn form(
    State(st): State<ConnectState>,
    Path((token, key)): Path<(String, String)>,
    origin: Origin,
) -> Response {
    match st.svc.connect_fields(&token, &key, &origin_of(origin)).await {
        Ok(f) => {
            let fields = fields_of(&f.schema, &f.config, &f.stored_secrets);
            let page = FormPage { brand: Brand::of(&st), token, key: f.key, name: f.name, fields, form_error: None };
            html_with(StatusCode::OK, &page)
        }
        Err(e) => error_page(&st, &e),
    }
}

/// `POST /connect/{token}/integrations/{key}`: checks every field, then
/// writes them; a refused form comes back with each error by its field.
/// A secret left blank keeps the stored value.
pub(crate) async fn save(
    State(st): State<ConnectState>,
    Path((token, key)): Path<(String, String)>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return not_from_page(&st);
    }
    let origin = origin_of(origin);
    let f = match st.svc.connect_fields(&token, &key, &origin).await {
        Ok(f) => f,
        Err(e) => return error_page(&st, &e),
    };
    let posted: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let mut fields = fields_of(&f.schema, &f.config, &f.stored_secrets);
    let mut change = Map::new();
    for field in &mut fields {
        let raw = posted.get(&format!("f.{}", field.name)).cloned().unwrap_or_default();
        if field.kind == Input::Secret {
            if !raw.is_empty() {
                change.insert(field.name.clone(), Value::String(raw));
            } else if field.required && !field.stored {
                field.error = Some("Enter a value.".into());
            }
            continue;
        }
        let had = !field.value.is_empty();
        field.value = raw.clone();
        if raw.trim().is_empty() {
            if field.required {
                field.error = Some("Enter a value.".into());
            } else if had {
                change.insert(field.name.clone(), Value::Null);
            }
            continue;
        }
        match parse(field, &raw) {
            Ok(v) => {
                change.insert(field.name.clone(), v);
            }
            Err(why) => field.error = Some(why.message().to_owned()),
        }
    }
    let mut page = FormPage { brand: Brand::of(&st), token, key: f.key, name: f.name, fields, form_error: None };
    if page.fields.iter().any(|f| f.error.is_some()) {
        page.form_error = Some("Nothing was saved: correct the fields marked below.".into());
        return html_with(StatusCode::BAD_REQUEST, &page);
    }
    match st.svc.connect_save_fields(&page.token, &page.key, change, &origin).await {
        Ok(()) => {
            let qs = serde_urlencoded::to_string([("connected", page.key.as_str()), ("status", "success")])
                .unwrap_or_default();
            Redirect::to(&format!("/connect/{}?{qs}", page.token)).into_response()
        }
        Err(e) if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Unprocessable) => {
            let name = e.field.as_deref().and_then(|f| f.strip_prefix("config.")).unwrap_or_default();
            match page.fields.iter_mut().find(|f| f.name == name) {
                Some(f) => f.error = Some(e.message.clone()),
                None => page.form_error = Some(e.message.clone()),
            }
            if page.form_error.is_none() {
                page.form_error = Some("Nothing was saved: correct the fields marked below.".into());
            }
            html_with(StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => error_page(&st, &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct AuthorizeForm {
    integration: String,
}

#[derive(Template)]
#[template(path = "connect_leaving.html")]
struct Leaving {
    brand: Brand,
    url: String,
}

/// `POST /connect/{token}/authorize`: leaves for the provider from an
/// interstitial (the page's CSP lets forms post only to Tessera).
pub(crate) async fn authorize(
    State(st): State<ConnectState>,
    Path(token): Path<String>,
    origin: Origin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return not_from_page(&st);
    }
    let Ok(f) = serde_urlencoded::from_bytes::<AuthorizeForm>(&body) else {
        return error_page(&st, &ServiceError::invalid(ErrorCode::InvalidForm, "The form could not be read.", None));
    };
    match st.svc.connect_authorize(&token, &f.integration, &origin_of(origin)).await {
        Ok(start) => html_with(StatusCode::OK, &Leaving { brand: Brand::of(&st), url: start.authorization_url }),
        Err(e) => error_page(&st, &e),
    }
}

#[derive(Template)]
#[template(path = "connect_done.html")]
struct Done {
    brand: Brand,
    status: &'static str,
    session_id: String,
    integrations: String,
    redirect: Option<String>,
    /// Where the completion message may go (JSON list for the script).
    origins: String,
}

/// `POST /connect/{token}/finish`.
pub(crate) async fn finish(
    State(st): State<ConnectState>,
    Path(token): Path<String>,
    origin: Origin,
    headers: HeaderMap,
) -> Response {
    end(st, token, origin, headers, false).await
}

/// `POST /connect/{token}/cancel`.
pub(crate) async fn cancel(
    State(st): State<ConnectState>,
    Path(token): Path<String>,
    origin: Origin,
    headers: HeaderMap,
) -> Response {
    end(st, token, origin, headers, true).await
}

/// Ends the session, then shows a page whose script tells the opener or the
/// framing page (only at `TESSERA_CONNECT_ORIGINS`) or goes to the
/// platform's `redirectUri`; without script, a link does.
async fn end(st: ConnectState, token: String, origin: Origin, headers: HeaderMap, cancel: bool) -> Response {
    if !same_origin(&headers) {
        return not_from_page(&st);
    }
    match st.svc.connect_finish(&token, cancel, &origin_of(origin)).await {
        Ok(end) => {
            let done = Done {
                brand: Brand::of(&st),
                status: end.status,
                session_id: end.session_id,
                integrations: end.integrations.join(","),
                redirect: end.redirect,
                origins: serde_json::to_string(&st.opts.origins).unwrap_or_else(|_| "[]".into()),
            };
            html_with(StatusCode::OK, &done)
        }
        Err(e) => error_page(&st, &e),
    }
}
