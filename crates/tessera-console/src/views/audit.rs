//! Audit log: filters, newest first with keyset paging, and the chain's
//! verification on request.

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;
use tessera_core::access::Role;
use tessera_core::audit::VerifyReport;
use tessera_core::service::{AuditEventView, AuditQuery};

use crate::page::{html, Chrome, PageResult};
use crate::session::Signed;
use crate::ConsoleState;

const PAGE: i64 = 50;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct Filters {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    outcome: String,
    /// First day (UTC), `YYYY-MM-DD`.
    #[serde(default)]
    from: String,
    /// Last day (UTC), `YYYY-MM-DD`.
    #[serde(default)]
    to: String,
    before: Option<i64>,
    verify: Option<String>,
    /// Export format (`jsonl` or `csv`), for the export route.
    pub(crate) format: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    f: Filters,
    events: Vec<AuditEventView>,
    /// The query string of the next (older) page.
    older: Option<String>,
    may_verify: bool,
    verified: Option<VerifyReport>,
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A day as the start of it in UTC (RFC 3339); `next` gives the day after.
fn day(raw: &str, next: bool) -> Option<String> {
    let d = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()?;
    let d = if next { d.succ_opt()? } else { d };
    Some(format!("{d}T00:00:00Z"))
}

/// The service query of a page's filters.
pub(crate) fn query_of(f: &Filters) -> AuditQuery {
    AuditQuery {
        tenant_id: some(&f.tenant),
        action: some(&f.action),
        actor: some(&f.actor),
        outcome: some(&f.outcome),
        since: day(&f.from, false),
        until: day(&f.to, true),
        before_seq: f.before,
        newest_first: true,
        limit: Some(PAGE),
        ..AuditQuery::default()
    }
}

impl AuditPage {
    /// The filters as a query string (for the export links).
    fn filters_query(&self) -> String {
        serde_urlencoded::to_string([
            ("tenant", self.f.tenant.as_str()),
            ("action", self.f.action.as_str()),
            ("actor", self.f.actor.as_str()),
            ("outcome", self.f.outcome.as_str()),
            ("from", self.f.from.as_str()),
            ("to", self.f.to.as_str()),
        ])
        .unwrap_or_default()
    }
}

/// `GET /console/audit`.
pub(crate) async fn list(State(state): State<ConsoleState>, signed: Signed, Query(f): Query<Filters>) -> PageResult {
    let s = &signed.session;
    let q = query_of(&f);
    let events = state.svc.list_audit(&s.ctx, q).await?.events;
    let older = (events.len() == usize::try_from(PAGE).unwrap_or(50))
        .then(|| events.last().map(|e| e.seq))
        .flatten()
        .and_then(|seq| {
            serde_urlencoded::to_string([
                ("tenant", f.tenant.as_str()),
                ("action", f.action.as_str()),
                ("actor", f.actor.as_str()),
                ("outcome", f.outcome.as_str()),
                ("from", f.from.as_str()),
                ("to", f.to.as_str()),
                ("before", seq.to_string().as_str()),
            ])
            .ok()
        });
    let may_verify = matches!(s.ctx.principal.role, Role::Admin | Role::Auditor);
    let verified = if may_verify && f.verify.is_some() { Some(state.svc.verify_audit(&s.ctx).await?) } else { None };
    Ok(html(&AuditPage { chrome: Chrome::new(s, "audit"), f, events, older, may_verify, verified }))
}
