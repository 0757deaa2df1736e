//! A tenant's connections: the OAuth connection wizard, revoking tokens
//! (after a confirmation), and a health check on demand.
//!
//! The wizard leaves for the provider from an interstitial page (a link and
//! a meta refresh), not a redirect of the form post: the console's CSP only
//! lets forms post to the console itself. The provider comes back through
//! the API's callback to `/console/connected`, a page without a session that
//! moves on to the tenant's page: a browser withholds the `SameSite=Strict`
//! session cookie on a navigation that started at another site, and sends
//! it on one this page starts.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use crate::form::Posted;
use crate::page::{html, Chrome, PageResult};
use crate::views::confirm::{ask, Confirm};
use crate::ConsoleState;

#[derive(Deserialize)]
pub(crate) struct ConnectForm {
    integration: String,
}

#[derive(Template)]
#[template(path = "leaving.html")]
struct LeavingPage {
    url: String,
    integration: String,
}

/// `POST /console/tenants/{tenant}/connect`: starts the provider's flow.
pub(crate) async fn connect(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<ConnectForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let start = state.svc.start_console_authorization(&s.ctx, &posted.form.integration, &tenant).await?;
    Ok(html(&LeavingPage { url: start.authorization_url, integration: posted.form.integration }))
}

#[derive(Deserialize, Default)]
pub(crate) struct Back {
    #[serde(default)]
    status: String,
    #[serde(default)]
    integration: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    error: String,
}

#[derive(Template)]
#[template(path = "returning.html")]
struct ReturningPage {
    url: String,
}

fn slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `GET /console/connected`: where a console flow comes back (no session
/// needed: it only moves on to the tenant's page, which checks the session).
pub(crate) async fn connected(Query(b): Query<Back>) -> PageResult {
    if !slug(&b.tenant_id) || !slug(&b.integration) || !matches!(b.status.as_str(), "success" | "error") {
        return Ok(Redirect::to("/console").into_response());
    }
    let mut query = vec![("connected", b.integration.as_str()), ("status", b.status.as_str())];
    if slug(&b.error) {
        query.push(("error", b.error.as_str()));
    }
    let qs = serde_urlencoded::to_string(&query).unwrap_or_default();
    Ok(html(&ReturningPage { url: format!("/console/tenants/{}?{qs}", b.tenant_id) }))
}

/// An error code of a failed flow in words a person understands.
pub(crate) fn words(code: &str) -> &'static str {
    match code {
        "access_denied" => "the authorization was declined at the provider.",
        "state_expired" => "the flow took too long. Start it again.",
        "oauth_exchange_failed" => "the provider did not issue tokens. Check the integration's client id and secret.",
        "invalid_scope" => "the provider refused the requested scopes.",
        "server_error" | "temporarily_unavailable" => "the provider had a problem. Try again in a moment.",
        _ => "the provider ended the flow with an error. Try again, or check the integration's OAuth settings.",
    }
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    integration: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/tenants/{tenant}/revoke`: asks first, then revokes the
/// tokens at the provider and deletes them.
pub(crate) async fn revoke(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<RevokeForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let f = posted.form;
    if f.confirm != "yes" {
        return Ok(ask(Confirm {
            chrome: Chrome::new(s, "tenants"),
            title: format!("Revoke {}'s {} tokens?", tenant, f.integration),
            message: "The tokens are revoked at the provider and deleted here. The tenant must connect again to use this integration.".into(),
            action: format!("/console/tenants/{tenant}/revoke"),
            fields: vec![("integration".into(), f.integration)],
            button: "Revoke tokens".into(),
            back: format!("/console/tenants/{tenant}"),
        }));
    }
    state.svc.revoke_credentials(&s.ctx, &tenant, &f.integration).await?;
    Ok(Redirect::to(&format!("/console/tenants/{tenant}?revoked={}", f.integration)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CheckForm {
    integration: String,
}

/// `POST /console/tenants/{tenant}/health-check`: one check now.
pub(crate) async fn check(
    State(state): State<ConsoleState>,
    Path(tenant): Path<String>,
    posted: Posted<CheckForm>,
) -> PageResult {
    let s = &posted.signed.session;
    let r = state.svc.run_health_check(&s.ctx, &tenant, &posted.form.integration).await?;
    let qs = serde_urlencoded::to_string([("checked", r.integration.as_str()), ("health", r.health_status.as_str())])
        .unwrap_or_default();
    Ok(Redirect::to(&format!("/console/tenants/{tenant}?{qs}")).into_response())
}
