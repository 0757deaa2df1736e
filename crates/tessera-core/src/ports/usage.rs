//! Port for usage counts: how often each connection was used, per hour.

use async_trait::async_trait;

use super::StoreResult;

/// Uses of one connection in one hour, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Tenant (empty in sums over every tenant).
    pub tenant_id: String,
    /// Integration.
    pub integration_key: String,
    /// `resolve`, `proxy` or `tool`.
    pub kind: String,
    /// Start of the hour (micros since the epoch, UTC).
    pub hour_micros: i64,
    /// Uses in that hour.
    pub count: i64,
}

/// Usage counts.
#[async_trait]
pub trait UsageRepo {
    /// Adds counts (to the existing ones of the same tenant, integration, kind and hour).
    async fn add_usage(&mut self, rows: &[UsageRecord]) -> StoreResult<()>;
    /// Counts from `since` on, summed over tenants (or one tenant's), by
    /// integration, kind and hour.
    async fn usage_since(&mut self, since_micros: i64, tenant: Option<&str>) -> StoreResult<Vec<UsageRecord>>;
}
