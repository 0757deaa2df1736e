//! Port for audit streaming: where each sink's worker stands in the audit
//! chain, and which replica may deliver to it. One row per sink; the
//! position is the seq of the last event the sink confirmed, so a restart
//! (or another replica taking over) resumes right after it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// Delivery positions and leases of the audit sinks.
#[async_trait]
pub trait AuditSinkRepo {
    /// Takes (or renews) the lease on `sink` for `owner` until `lease_until`,
    /// creating the sink's row at position 0 the first time. Succeeds when
    /// the sink has no holder, `owner` already holds it, or the holder's
    /// lease ran out before `now`; then returns the stored position. None:
    /// another replica holds it.
    async fn claim_audit_sink(
        &mut self,
        sink: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<i64>>;
    /// Moves the position of `sink` to `position`, only while `owner` holds
    /// its lease (a replica that lost it must not move another's position).
    /// Returns whether it moved.
    async fn advance_audit_sink(&mut self, sink: &str, owner: &str, position: i64) -> StoreResult<bool>;
    /// Gives up `owner`'s lease on `sink` (at shutdown, so another replica,
    /// or this one restarted, takes over at once).
    async fn release_audit_sink(&mut self, sink: &str, owner: &str) -> StoreResult<()>;
}
