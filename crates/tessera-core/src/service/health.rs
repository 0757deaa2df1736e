//! Integration health (seed 000's `healthStatus`, seed 001's admin view):
//! one check of a connection through the proxy path, the worker's scan
//! (connections claimed by bumping `lastHealthCheck`, so replicas never check
//! one twice in an interval), and the aggregate for admins.

use crate::ErrorCode;
use chrono::{DateTime, Duration as TimeDelta, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::proxy::Injection;
use super::{rfc3339, Ctx, Tessera};
use crate::access::Access;
use crate::access::Principal;
use crate::domain::Health;
use crate::domain::WebhookEvent;
use crate::error::{ErrorKind, ServiceError};
use crate::health::{judge, HealthCheckSettings, ProbeAuth, ProbeOutcome};
use crate::ids::{IntegrationKey, TenantId};
use crate::ports::IntegrationRecord;

/// How many connections one replica checks at once.
const CONCURRENCY: usize = 8;

/// The result of one check.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration: String,
    /// The verdict.
    pub health_status: Health,
    /// When.
    pub last_health_check: String,
    /// The upstream's status, if it answered.
    pub status_code: Option<u16>,
    /// Time to its answer.
    pub latency_ms: Option<u64>,
    /// Why, in a few words.
    pub detail: String,
}

/// `GET /admin/tenants/health`: every tenant's connections by health.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantsHealth {
    /// Tenants (the platform tenant aside).
    pub total_tenants: usize,
    /// Connections.
    pub total_integrations: usize,
    /// Connections `healthy`.
    pub healthy: usize,
    /// Connections `unhealthy`.
    pub unhealthy: usize,
    /// Connections `degraded`.
    pub degraded: usize,
    /// Connections never checked.
    pub unknown: usize,
    /// Per tenant: integration -> status (`unknown` when never checked).
    pub details: Vec<TenantHealth>,
}

/// What `GET /metrics` shows besides the counters.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    /// Tenants.
    pub tenants: usize,
    /// Connections per health status.
    pub connections_by_health: [(&'static str, usize); 4],
    /// Stored credentials.
    pub credentials: i64,
    /// Tokens due for refresh.
    pub refresh_queue: i64,
}

/// One tenant's connections.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantHealth {
    /// Tenant.
    pub tenant_id: String,
    /// Integration -> status.
    pub integrations: BTreeMap<String, String>,
}

/// A connection whose tokens need attention.
#[derive(Debug, Clone, Serialize)]
pub struct TroubledConnection {
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration: String,
    /// The provider refused the refresh token for good: connect again.
    pub needs_reauth: bool,
    /// Refresh failures in a row.
    pub refresh_failures: u32,
    /// The next refresh attempt (backoff).
    pub next_attempt_at: Option<String>,
}

impl Tessera {
    /// `POST /tenants/{t}/integrations/{key}/health-check`: one check now.
    pub async fn run_health_check(&self, ctx: &Ctx, tenant: &str, key: &str) -> Result<HealthResult, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Write).await?;
        self.check_one(ctx, &tenant, &key).await
    }

    /// One scan of the health worker: every enabled connection whose
    /// integration has a `healthCheck` and whose last check is older than
    /// its interval. Returns how many were checked.
    pub async fn check_due_health(&self, limit: i64) -> Result<usize, ServiceError> {
        let now = Utc::now();
        let mut tx = self.store.read().await?;
        let integrations = tx.list_integrations().await?;
        tx.commit().await?;
        let ctx = Ctx { principal: Principal::worker("health-worker"), request_id: None, client_ip: None };
        let mut checked = 0;
        for integration in integrations {
            let Some(settings) = health_settings(&integration)? else { continue };
            let due_before = now - TimeDelta::seconds(i64::try_from(settings.interval_seconds).unwrap_or(300));
            let mut tx = self.store.begin_log_write().await?;
            let tenants = tx.claim_due_health_checks(&integration.key, due_before, now, limit).await?;
            tx.commit().await?;
            let key = IntegrationKey::parse(&integration.key)?;
            for chunk in tenants.chunks(CONCURRENCY) {
                let checks = chunk.iter().filter_map(|t| TenantId::parse(t).ok()).map(|t| {
                    let (ctx, key) = (&ctx, &key);
                    async move { (self.check_one(ctx, &t, key).await, t) }
                });
                for (result, tenant) in futures::future::join_all(checks).await {
                    if let Err(e) = result {
                        tracing::warn!(%tenant, integration = %key, error = %e, "health check could not run");
                    }
                    checked += 1;
                }
            }
        }
        Ok(checked)
    }

    async fn check_one(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
    ) -> Result<HealthResult, ServiceError> {
        let mut tx = self.store.read().await?;
        let integration = Self::require_integration(tx.as_mut(), key).await?;
        tx.commit().await?;
        let settings = health_settings(&integration)?.ok_or_else(|| {
            ServiceError::conflict(ErrorCode::HealthCheckNotConfigured, format!("{key} has no healthCheck settings"))
        })?;
        let (outcome, detail) = match self.probe_connection(tenant, key, &settings).await {
            Ok(outcome) => {
                let (_, detail) = judge(&settings, &outcome);
                (Some(outcome), detail)
            }
            // A missing or unrefreshable credential is the connection's state, not the caller's error.
            Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::Upstream) => (None, e.code.as_str().to_owned()),
            Err(e) => return Err(e),
        };
        let status = outcome.as_ref().map_or(Health::Unhealthy, |o| judge(&settings, o).0);
        let now = Utc::now();
        self.record_health(ctx, tenant, key, status, &detail, now).await?;
        let (status_code, latency_ms) = match outcome {
            Some(ProbeOutcome::Answered { status, latency }) => {
                (Some(status), Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)))
            }
            _ => (None, None),
        };
        Ok(HealthResult {
            tenant_id: tenant.to_string(),
            integration: key.to_string(),
            health_status: status,
            last_health_check: rfc3339(now),
            status_code,
            latency_ms,
            detail,
        })
    }

    /// Sends the probe through the proxy's plan: same base URL, same credential.
    async fn probe_connection(
        &self,
        tenant: &TenantId,
        key: &IntegrationKey,
        settings: &HealthCheckSettings,
    ) -> Result<ProbeOutcome, ServiceError> {
        let probe = &self.outbound.probe;
        let plan = self.plan_for(tenant, key, None).await?;
        let mut url = crate::proxy::target_url(&plan.base_url, settings.path.trim_start_matches('/'), None)?;
        let auth = match plan.injection {
            Injection::None => ProbeAuth::None,
            Injection::Header { ref name, ref value } => ProbeAuth::Header(name, value),
            Injection::Query { ref name, ref value } => {
                url.query_pairs_mut().append_pair(name, secrecy::ExposeSecret::expose_secret(value));
                ProbeAuth::None
            }
        };
        Ok(probe.probe(&settings.method, url, auth).await)
    }

    async fn record_health(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
        status: Health,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let Some(mut conn) = tx.get_connection(tenant.as_str(), key.as_str()).await? else { return Ok(()) };
        let previous = conn.health_status;
        conn.health_status = Some(status);
        conn.last_health_check = Some(now);
        tx.upsert_connection(&conn).await?;
        let changed = if previous == Some(status) { "" } else { "&changed=true" };
        if !changed.is_empty() {
            let data = serde_json::json!({"integration": key.as_str(), "previous": previous, "status": status});
            self.enqueue(tx.as_mut(), tenant.as_str(), WebhookEvent::HealthChanged, data).await?;
        }
        let resource = format!("tenants/{tenant}/integrations/{key}/health?status={status}{changed}");
        let outcome = if status == Health::Healthy { "success" } else { "failure" };
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("health.check", Some(tenant.as_str()), resource, outcome)])
            .await?;
        tx.commit().await?;
        if !detail.is_empty() && status != Health::Healthy {
            tracing::info!(%tenant, integration = %key, status = status.as_str(), detail, "health check");
        }
        Ok(())
    }

    /// `GET /admin/tenants/health`, admins only.
    pub async fn tenants_health(&self, ctx: &Ctx) -> Result<TenantsHealth, ServiceError> {
        self.allow_admin(ctx).await?;
        self.health_overview().await
    }

    /// Connections whose tokens need attention (admins and auditors: every
    /// tenant's; a tenant admin: its own): a provider refused the refresh
    /// token for good (connect again), or refreshes are failing.
    pub async fn troubled_connections(&self, ctx: &Ctx, limit: usize) -> Result<Vec<TroubledConnection>, ServiceError> {
        let own = match ctx.principal.role {
            crate::access::Role::Admin | crate::access::Role::Auditor => None,
            crate::access::Role::TenantAdmin => ctx.principal.tenant.clone(),
            crate::access::Role::TenantService => {
                self.allow_admin(ctx).await?;
                None
            }
        };
        let mut tx = self.store.read().await?;
        let creds = match &own {
            Some(t) => tx.list_tenant_credentials(t.as_str()).await?,
            None => tx.list_troubled_credentials(i64::try_from(limit).unwrap_or(50)).await?,
        };
        tx.commit().await?;
        Ok(creds
            .into_iter()
            .filter(|c| c.needs_reauth || c.refresh_failures > 0)
            .take(limit)
            .map(|c| TroubledConnection {
                tenant_id: c.tenant_id,
                integration: c.integration_key,
                needs_reauth: c.needs_reauth,
                refresh_failures: c.refresh_failures,
                next_attempt_at: c.next_attempt_at.map(super::rfc3339),
            })
            .collect())
    }

    /// Connections by health of each of `tenants` (a page of a tenant list):
    /// (healthy, degraded, unhealthy, not checked). Tenants the caller may
    /// not see are skipped.
    pub async fn health_of_tenants(
        &self,
        ctx: &Ctx,
        tenants: &[String],
    ) -> Result<std::collections::HashMap<String, [usize; 4]>, ServiceError> {
        let mut out = std::collections::HashMap::new();
        let mut tx = self.store.read().await?;
        for t in tenants {
            let Ok(id) = TenantId::parse(t) else { continue };
            if ctx.principal.ensure_tenant(&id).is_err() {
                continue;
            }
            let mut counts = [0usize; 4];
            for c in tx.list_tenant_connections(id.as_str()).await? {
                let slot = match c.health_status {
                    Some(Health::Healthy) => 0,
                    Some(Health::Degraded) => 1,
                    Some(Health::Unhealthy) => 2,
                    None => 3,
                };
                counts[slot] += 1;
            }
            out.insert(t.clone(), counts);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Gauges for `GET /metrics`: tenants, connections by health, credentials,
    /// and the refresh queue. No tenant ids.
    pub async fn metrics_snapshot(&self) -> Result<MetricsSnapshot, ServiceError> {
        let mut tx = self.store.read().await?;
        let (tenants, by_status) = tx.count_health().await?;
        let credentials = tx.count_credentials().await?;
        tx.commit().await?;
        let count = |wanted: Option<Health>| -> usize {
            by_status.iter().filter(|(s, _)| *s == wanted).map(|(_, n)| usize::try_from(*n).unwrap_or(0)).sum()
        };
        Ok(MetricsSnapshot {
            tenants: usize::try_from(tenants).unwrap_or(0),
            connections_by_health: [
                ("healthy", count(Some(Health::Healthy))),
                ("degraded", count(Some(Health::Degraded))),
                ("unhealthy", count(Some(Health::Unhealthy))),
                ("unknown", count(None)),
            ],
            credentials,
            refresh_queue: self.refresh_queue_size().await?,
        })
    }

    async fn health_overview(&self) -> Result<TenantsHealth, ServiceError> {
        let mut tx = self.store.begin_read().await?;
        let tenants = tx.list_tenants().await?;
        let connections = tx.list_connection_health().await?;
        tx.commit().await?;
        let mut details: BTreeMap<String, BTreeMap<String, String>> =
            tenants.iter().map(|t| (t.id.clone(), BTreeMap::new())).collect();
        let (mut healthy, mut unhealthy, mut degraded, mut unknown, mut total) = (0, 0, 0, 0, 0);
        for (tenant, integration, status) in connections {
            let Some(entry) = details.get_mut(&tenant) else { continue };
            total += 1;
            match status {
                Some(Health::Healthy) => healthy += 1,
                Some(Health::Unhealthy) => unhealthy += 1,
                Some(Health::Degraded) => degraded += 1,
                None => unknown += 1,
            }
            entry.insert(integration, status.map_or("unknown", Health::as_str).to_owned());
        }
        Ok(TenantsHealth {
            total_tenants: tenants.len(),
            total_integrations: total,
            healthy,
            unhealthy,
            degraded,
            unknown,
            details: details
                .into_iter()
                .map(|(tenant_id, integrations)| TenantHealth { tenant_id, integrations })
                .collect(),
        })
    }
}

fn health_settings(integration: &IntegrationRecord) -> Result<Option<HealthCheckSettings>, ServiceError> {
    integration
        .settings
        .get("healthCheck")
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .map_err(|e| ServiceError::internal(format!("stored healthCheck of {} is unreadable: {e}", integration.key)))
}
