//! Overview: tenants, connections by health, recent audit events.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::access::Role;
use tessera_core::service::{AuditEventView, AuditQuery};

use crate::page::{html, Chrome, PageResult};
use crate::session::MaybeSigned;
use crate::views::sign_in;
use crate::ConsoleState;

/// Connections by health.
pub(crate) struct HealthCounts {
    pub(crate) total: usize,
    pub(crate) healthy: usize,
    pub(crate) degraded: usize,
    pub(crate) unhealthy: usize,
    pub(crate) unknown: usize,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    tenants: Option<usize>,
    health: Option<HealthCounts>,
    events: Vec<AuditEventView>,
}

/// `GET /console`: the overview, or the sign-in page without a session.
pub(crate) async fn home(State(state): State<ConsoleState>, MaybeSigned(signed): MaybeSigned) -> PageResult {
    let Some(signed) = signed else {
        return Ok(sign_in::page(StatusCode::OK, None));
    };
    let s = &signed.session;
    let ctx = &s.ctx;
    let (tenants, health) = match ctx.principal.role {
        Role::Admin => {
            let h = state.svc.tenants_health(ctx).await?;
            (
                Some(h.total_tenants),
                Some(HealthCounts {
                    total: h.total_integrations,
                    healthy: h.healthy,
                    degraded: h.degraded,
                    unhealthy: h.unhealthy,
                    unknown: h.unknown,
                }),
            )
        }
        Role::TenantAdmin => {
            let own = ctx.principal.tenant.as_ref().map(ToString::to_string).unwrap_or_default();
            let list = state.svc.list_tenant_integrations(ctx, &own).await?;
            let mut counts = HealthCounts { total: 0, healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 };
            for i in list.integrations.iter().filter(|i| i.connected) {
                counts.total += 1;
                match i.health_status.as_deref() {
                    Some("healthy") => counts.healthy += 1,
                    Some("degraded") => counts.degraded += 1,
                    Some("unhealthy") => counts.unhealthy += 1,
                    _ => counts.unknown += 1,
                }
            }
            (Some(1), Some(counts))
        }
        _ => (None, None),
    };
    let events = state
        .svc
        .list_audit(ctx, AuditQuery { limit: Some(10), newest_first: true, ..AuditQuery::default() })
        .await?
        .events;
    Ok(overview(OverviewPage { chrome: Chrome::new(s, "overview"), tenants, health, events }))
}

fn overview(page: OverviewPage) -> Response {
    html(&page)
}
