//! Usage analytics: how often each connection is used (resolved reads,
//! proxy calls, tool calls). Counted in memory per hour and added to the
//! store by a worker every minute ([`Tessera::flush_usage`]), since a write
//! per call would cost more than the call; a killed process loses at most
//! the counts since its last flush. The map is also flushed as soon as it
//! holds [`MAX_PENDING`] connections, so its memory stays bounded however
//! many tenants are read within a minute (100,000 tenants read at random
//! would otherwise hold one entry per connection until the next minute).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// In the order of [`PerKind`].
    const ALL: [Use; 3] = [Use::Resolve, Use::Proxy, Use::Tool];

    fn as_str(self) -> &'static str {
        match self {
            Self::Resolve => "resolve",
            Self::Proxy => "proxy",
            Self::Tool => "tool",
        }
    }
}

/// Uses of one connection in one hour, by [`Use`] (resolve, proxy, tool).
type PerKind = [i64; 3];

/// Counts not yet in the store: hour -> tenant -> integration -> uses. Nested
/// so that a use of a connection already counted this hour is found by
/// borrowed names (no allocation on the per-call path).
pub(crate) struct UsageCounts {
    counts: Mutex<ByHour>,
    /// How many (hour, tenant, integration) entries `counts` holds.
    entries: AtomicUsize,
    /// When the counts were last taken for the store.
    taken_at: Mutex<Instant>,
}

impl Default for UsageCounts {
    fn default() -> Self {
        Self { counts: Mutex::default(), entries: AtomicUsize::new(0), taken_at: Mutex::new(Instant::now()) }
    }
}

/// Connections counted in memory at most before the counts go to the store
/// early (about 3 MB of map).
pub(crate) const MAX_PENDING: usize = 10_000;

/// hour -> tenant -> integration -> uses.
type ByHour = HashMap<i64, HashMap<String, HashMap<String, PerKind>>>;

impl UsageCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, ByHour> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the counts should go to the store now: `interval` has passed
    /// since they last did, or they hold [`MAX_PENDING`] connections.
    fn due(&self, interval: Duration) -> bool {
        let taken_at = *self.taken_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.entries.load(Ordering::Relaxed) >= MAX_PENDING || taken_at.elapsed() >= interval
    }

    fn add(&self, hour: i64, tenant: &str, key: &str, counts: PerKind) {
        let mut all = self.lock();
        let by_tenant = all.entry(hour).or_default();
        if !by_tenant.contains_key(tenant) {
            by_tenant.insert(tenant.to_owned(), HashMap::new());
        }
        let by_key = by_tenant.get_mut(tenant).expect("inserted above");
        if !by_key.contains_key(key) {
            by_key.insert(key.to_owned(), [0; 3]);
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        let slot = by_key.get_mut(key).expect("inserted above");
        for (s, n) in slot.iter_mut().zip(counts) {
            *s += n;
        }
    }

    /// Takes every count as store rows.
    fn take(&self) -> Vec<UsageRecord> {
        let all = {
            let mut counts = self.lock();
            self.entries.store(0, Ordering::Relaxed);
            std::mem::take(&mut *counts)
        };
        *self.taken_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        let mut rows = Vec::new();
        for (hour, by_tenant) in all {
            for (tenant, by_key) in by_tenant {
                for (key, counts) in by_key {
                    for (what, n) in Use::ALL.iter().zip(counts).filter(|(_, n)| *n > 0) {
                        rows.push(UsageRecord {
                            tenant_id: tenant.clone(),
                            integration_key: key.clone(),
                            kind: what.as_str().to_owned(),
                            hour_micros: hour,
                            count: n,
                        });
                    }
                }
            }
        }
        rows
    }

    /// Puts rows that could not be stored back, for the next flush.
    fn restore(&self, rows: &[UsageRecord]) {
        for r in rows {
            let mut counts = [0; 3];
            if let Some(i) = Use::ALL.iter().position(|u| u.as_str() == r.kind) {
                counts[i] = r.count;
            }
            self.add(r.hour_micros, &r.tenant_id, &r.integration_key, counts);
        }
    }
}

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
        let mut counts = [0; 3];
        counts[Use::ALL.iter().position(|u| *u == what).unwrap_or(0)] = 1;
        self.usage.add(hour_start(Utc::now()), tenant.as_str(), key.as_str(), counts);
    }

    /// Adds the counts to the store when [`Self::flush_usage`] is due: every
    /// `interval`, or early once [`MAX_PENDING`] connections are counted (the
    /// worker asks every second). Returns how many rows were written.
    pub async fn flush_usage_when_due(&self, interval: Duration) -> Result<usize, ServiceError> {
        if !self.usage.due(interval) {
            return Ok(0);
        }
        self.flush_usage().await
    }

    /// Adds the counts kept in memory to the store (every minute, and at
    /// shutdown). On failure they are kept for the next try.
    pub async fn flush_usage(&self) -> Result<usize, ServiceError> {
        let rows = self.usage.take();
        if rows.is_empty() {
            return Ok(0);
        }
        let written = async {
            // Counts change nothing a cached view shows.
            let mut tx = self.store.begin_log_write().await?;
            tx.add_usage(&rows).await?;
            tx.commit().await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(e) = written {
            self.usage.restore(&rows);
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

#[cfg(test)]
mod tests {
    use super::{UsageCounts, MAX_PENDING};
    use std::time::Duration;

    #[test]
    fn counts_add_up_per_connection_and_kind_and_survive_a_failed_flush() {
        let counts = UsageCounts::default();
        counts.add(7, "acme", "crm", [1, 0, 0]);
        counts.add(7, "acme", "crm", [1, 2, 0]);
        counts.add(7, "beta", "crm", [0, 0, 1]);
        let mut rows: Vec<_> = counts
            .take()
            .into_iter()
            .map(|r| (r.tenant_id, r.integration_key, r.kind, r.hour_micros, r.count))
            .collect();
        rows.sort();
        let expected = [("acme", "resolve", 2), ("acme", "proxy", 2), ("beta", "tool", 1)];
        let mut want: Vec<_> =
            expected.iter().map(|(t, k, n)| ((*t).to_owned(), "crm".to_owned(), (*k).to_owned(), 7, *n)).collect();
        want.sort();
        assert_eq!(rows, want);
        assert!(counts.take().is_empty(), "taken once");
        let rows = vec![row("acme", "proxy", 3)];
        counts.restore(&rows);
        counts.add(7, "acme", "crm", [0, 1, 0]);
        assert_eq!(counts.take().iter().map(|r| r.count).sum::<i64>(), 4);
    }

    #[test]
    fn counts_are_due_every_interval_or_as_soon_as_they_hold_too_many_connections() {
        let counts = UsageCounts::default();
        let hour = Duration::from_secs(3600);
        assert!(!counts.due(hour), "nothing counted, just taken");
        assert!(counts.due(Duration::ZERO), "the interval has passed");
        for i in 0..MAX_PENDING - 1 {
            counts.add(7, &format!("t{i}"), "crm", [1, 0, 0]);
            counts.add(7, &format!("t{i}"), "crm", [1, 0, 0]);
        }
        assert!(!counts.due(hour), "a connection counted twice is one entry");
        counts.add(7, "one-more", "crm", [0, 1, 0]);
        assert!(counts.due(hour), "at MAX_PENDING connections the counts go early");
        assert_eq!(counts.take().len(), MAX_PENDING);
        assert!(!counts.due(hour), "taking them starts over");
    }

    fn row(tenant: &str, kind: &str, count: i64) -> crate::ports::UsageRecord {
        crate::ports::UsageRecord {
            tenant_id: tenant.into(),
            integration_key: "crm".into(),
            kind: kind.into(),
            hour_micros: 7,
            count,
        }
    }
}
