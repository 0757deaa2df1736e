//! A tenant's data keys (admins): versions, rotate, rewrap — the last two
//! after a confirmation.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use tessera_core::service::KeysView;

use crate::form::Posted;
use crate::page::{html, Chrome, PageResult};
use crate::session::Signed;
use crate::views::confirm::{ask, Confirm};
use crate::ConsoleState;

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: KeysView,
    done: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
}

/// `GET /console/tenants/{tenant}/keys`.
pub(crate) async fn list(
    State(state): State<ConsoleState>,
    signed: Signed,
    Path(tenant): Path<String>,
    Query(q): Query<Done>,
) -> PageResult {
    let s = &signed.session;
    let keys = state.svc.list_tenant_keys(&s.ctx, &tenant).await?;
    let done = match q.done.as_deref() {
        Some("rotate") => Some("A new data key version encrypts every write from now on.".to_owned()),
        Some(n) if n.starts_with("rewrap-") => {
            Some(format!("Rewrapped: {} values now under the newest key.", n.trim_start_matches("rewrap-")))
        }
        _ => None,
    };
    Ok(html(&KeysPage { chrome: Chrome::new(s, "tenants"), keys, done }))
}

#[derive(Deserialize)]
pub(crate) struct KeyAction {
    action: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/tenants/{tenant}/keys`: `action` is `rotate` or `rewrap`.
pub(crate) async fn act(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<KeyAction>,
) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    let (title, message, button) = match f.action.as_str() {
        "rotate" => (
            format!("Rotate {tenant}'s data key?"),
            "New writes use a new key version; existing values stay readable under their version until rewrapped.",
            "Rotate key",
        ),
        _ => (
            format!("Rewrap {tenant}'s values?"),
            "Every stored value is re-encrypted under the newest key version. This may take a while for many values.",
            "Rewrap values",
        ),
    };
    if f.confirm != "yes" {
        return Ok(ask(Confirm {
            chrome: Chrome::new(s, "tenants"),
            title,
            message: message.into(),
            action: format!("/console/tenants/{tenant}/keys"),
            fields: vec![("action".into(), if f.action == "rotate" { "rotate".into() } else { "rewrap".into() })],
            button: button.into(),
            back: format!("/console/tenants/{tenant}/keys"),
        }));
    }
    let done = if f.action == "rotate" {
        state.svc.rotate_tenant_key(&s.ctx, &tenant).await?;
        "rotate".to_owned()
    } else {
        let report = state.svc.rewrap(&s.ctx, Some(&tenant), &|_| {}).await?;
        format!("rewrap-{}", report.rewrapped)
    };
    Ok(Redirect::to(&format!("/console/tenants/{tenant}/keys?done={done}")).into_response())
}
