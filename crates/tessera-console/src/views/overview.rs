//! Overview: tenants, connections by health, recent audit events.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::access::Role;
use tessera_core::domain::Health;
use tessera_core::service::{AuditEventView, AuditQuery, TroubledConnection, UsageReport};

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

/// One bar of a chart drawn server-side (SVG user units).
pub(crate) struct Bar {
    x: u32,
    y: u32,
    height: u32,
    value: i64,
    label: String,
}

/// A bar chart: `values` oldest first, labelled by `label(i)`.
pub(crate) struct Chart {
    bars: Vec<Bar>,
    max: i64,
}

const CHART_W: u32 = 600;
const CHART_H: u32 = 120;

impl Chart {
    fn new(values: &[i64], label: impl Fn(usize) -> String) -> Self {
        let max = values.iter().copied().max().unwrap_or(0).max(1);
        let slot = CHART_W / u32::try_from(values.len().max(1)).unwrap_or(1);
        let bars = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let height = u32::try_from((*v).max(0) * i64::from(CHART_H) / max).unwrap_or(CHART_H);
                Bar {
                    x: u32::try_from(i).unwrap_or(0) * slot + 1,
                    y: CHART_H - height,
                    height,
                    value: *v,
                    label: label(i),
                }
            })
            .collect();
        Self { bars, max }
    }

    fn bar_width(&self) -> u32 {
        (CHART_W / u32::try_from(self.bars.len().max(1)).unwrap_or(1)).saturating_sub(2).max(1)
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    tenants: Option<usize>,
    health: Option<HealthCounts>,
    events: Vec<AuditEventView>,
    usage: Option<UsageReport>,
    /// (caption, element id, chart).
    charts: Vec<(&'static str, &'static str, Chart)>,
    troubled: Vec<TroubledConnection>,
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
                match i.health_status {
                    Some(Health::Healthy) => counts.healthy += 1,
                    Some(Health::Degraded) => counts.degraded += 1,
                    Some(Health::Unhealthy) => counts.unhealthy += 1,
                    None => counts.unknown += 1,
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
    let usage = match ctx.principal.role {
        Role::TenantService => None,
        _ => Some(state.svc.usage_report(ctx).await?),
    };
    let charts = match &usage {
        Some(u) => vec![
            ("Last 24 hours, by hour", "chart-hourly", Chart::new(&u.hourly, |i| format!("{} hours ago", 23 - i))),
            ("Last 30 days, by day", "chart-daily", Chart::new(&u.daily, |i| format!("{} days ago", 29 - i))),
        ],
        None => Vec::new(),
    };
    let troubled = match ctx.principal.role {
        Role::TenantService => Vec::new(),
        _ => state.svc.troubled_connections(ctx, 20).await?,
    };
    Ok(overview(OverviewPage { chrome: Chrome::new(s, "overview"), tenants, health, events, usage, charts, troubled }))
}

fn overview(page: OverviewPage) -> Response {
    html(&page)
}
