//! What a replica does last before it exits (`serve` on SIGTERM, once its
//! requests and claimed work are done or the shutdown timeout ran out).

use crate::{ServiceError, Tessera};

/// Leases a replica gave back.
#[derive(Debug, Default)]
pub struct ReleasedLeases {
    /// Token refreshes this replica had claimed and not finished.
    pub refreshes: u64,
    /// Webhook deliveries this replica had claimed and not finished.
    pub deliveries: u64,
}

impl Tessera {
    /// Frees every worker lease this process holds, so another replica
    /// claims that work at its next scan instead of when the lease expires.
    /// Work this process still runs after the call may then run twice
    /// (a webhook is delivered at least once): call it once the workers
    /// stopped or the time to wait for them ran out, just before exiting.
    pub async fn release_worker_leases(&self) -> Result<ReleasedLeases, ServiceError> {
        let mut tx = self.store.begin_log_write().await?;
        let refreshes = tx.release_credential_leases(&self.instance_id).await?;
        let deliveries = tx.release_outbox_leases(&self.instance_id).await?;
        tx.commit().await?;
        Ok(ReleasedLeases { refreshes, deliveries })
    }
}
