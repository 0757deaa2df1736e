//! Usage analytics: how often each connection is used (resolved reads,
//! proxy calls, tool calls). Counted in memory per hour and added to the
//! store by a worker every minute ([`Tessera::flush_usage`]), since a write
//! per call would cost more than the call; a killed process loses at most
//! the counts since its last flush.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::{Ctx, Tessera};
use crate::access::Role;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, TenantId};
use crate::ports::UsageRecord;

/// What a use was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Use {
    /// A resolved view was read.
    Resolve,
    /// A call went through the proxy.
    Proxy,
    /// A tool was invoked.
    Tool,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Self::Resolve => "resolve",
            Self::Proxy => "proxy",
            Self::Tool => "tool",
        }
    }
}

/// Counts not yet in the store: (tenant, integration, use, hour) -> uses.
#[derive(Default)]
pub(crate) struct UsageCounts(Mutex<HashMap<(String, String, Use, i64), i64>>);

/// Uses of one integration, by kind, over a period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsageRow {
    /// Integration.
    pub integration: String,
    /// Resolved reads.
    pub resolve: i64,
    /// Proxy calls.
    pub proxy: i64,
    /// Tool calls.
    pub tool: i64,
}

impl UsageRow {
    /// All uses.
    pub fn total(&self) -> i64 {
        self.resolve + self.proxy + self.tool
    }
}

/// Usage over the last 24 hours (by hour) and 30 days (by day).
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsageReport {
    /// Per integration, last 24 hours.
    pub last_day: Vec<UsageRow>,
    /// Per integration, last 30 days.
    pub last_month: Vec<UsageRow>,
    /// All uses per hour, oldest first (24 values, the last is this hour).
    pub hourly: Vec<i64>,
    /// All uses per day, oldest first (30 values, the last is today, UTC).
    pub daily: Vec<i64>,
}

fn hour_start(t: chrono::DateTime<Utc>) -> i64 {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t).timestamp_micros()
}

impl Tessera {
    /// Counts one use of a connection.
    pub(crate) fn count_use(&self, tenant: &TenantId, key: &IntegrationKey, what: Use) {
        let hour = hour_start(Utc::now());
        let mut counts = self.usage.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry((tenant.to_string(), key.to_string(), what, hour)).or_default() += 1;
    }

    /// Adds the counts kept in memory to the store (every minute, and at
    /// shutdown). On failure they are kept for the next try.
    pub async fn flush_usage(&self) -> Result<usize, ServiceError> {
        let taken = std::mem::take(&mut *self.usage.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if taken.is_empty() {
            return Ok(0);
        }
        let rows: Vec<UsageRecord> = taken
            .iter()
            .map(|((tenant, key, what, hour), n)| UsageRecord {
                tenant_id: tenant.clone(),
                integration_key: key.clone(),
                kind: what.as_str().to_owned(),
                hour_micros: *hour,
                count: *n,
            })
            .collect();
        let written = async {
            // Counts change nothing a cached view shows.
            let mut tx = self.store.begin_log_write().await?;
            tx.add_usage(&rows).await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(e) = written {
            let mut counts = self.usage.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (k, n) in taken {
                *counts.entry(k).or_default() += n;
            }
            return Err(e);
        }
        Ok(rows.len())
    }

    /// Usage over the last 24 hours and 30 days: every tenant's for admins
    /// and auditors, its own for a tenant admin. Counts of the last minute
    /// may not be in yet.
    pub async fn usage_report(&self, ctx: &Ctx) -> Result<UsageReport, ServiceError> {
        let tenant = match ctx.principal.role {
            Role::Admin | Role::Auditor => None,
            Role::TenantAdmin => ctx.principal.tenant.clone(),
            Role::TenantService => {
                self.allow_admin(ctx).await?;
                None
            }
        };
        let now = Utc::now();
        let this_hour = hour_start(now);
        let today = now.duration_trunc(TimeDelta::days(1)).unwrap_or(now).timestamp_micros();
        let day_micros = TimeDelta::days(1).num_microseconds().unwrap_or(86_400_000_000);
        let hour_micros = TimeDelta::hours(1).num_microseconds().unwrap_or(3_600_000_000);
        let month_start = today - 29 * day_micros;
        let day_start = this_hour - 23 * hour_micros;
        let mut tx = self.store.read().await?;
        let rows = tx.usage_since(month_start, tenant.as_ref().map(TenantId::as_str)).await?;
        tx.commit().await?;
        let mut report = UsageReport { hourly: vec![0; 24], daily: vec![0; 30], ..UsageReport::default() };
        let mut day_rows: HashMap<String, UsageRow> = HashMap::new();
        let mut month_rows: HashMap<String, UsageRow> = HashMap::new();
        for r in rows {
            let add = |row: &mut UsageRow| match r.kind.as_str() {
                "resolve" => row.resolve += r.count,
                "proxy" => row.proxy += r.count,
                _ => row.tool += r.count,
            };
            add(month_rows
                .entry(r.integration_key.clone())
                .or_insert_with(|| UsageRow { integration: r.integration_key.clone(), ..UsageRow::default() }));
            if let Some(d) = usize::try_from((r.hour_micros - month_start) / day_micros).ok().filter(|d| *d < 30) {
                report.daily[d] += r.count;
            }
            if r.hour_micros >= day_start {
                add(day_rows
                    .entry(r.integration_key.clone())
                    .or_insert_with(|| UsageRow { integration: r.integration_key.clone(), ..UsageRow::default() }));
                if let Some(h) = usize::try_from((r.hour_micros - day_start) / hour_micros).ok().filter(|h| *h < 24) {
                    report.hourly[h] += r.count;
                }
            }
        }
        let sorted = |m: HashMap<String, UsageRow>| {
            let mut v: Vec<UsageRow> = m.into_values().collect();
            v.sort_by(|a, b| b.total().cmp(&a.total()).then_with(|| a.integration.cmp(&b.integration)));
            v
        };
        report.last_day = sorted(day_rows);
        report.last_month = sorted(month_rows);
        Ok(report)
    }
}
