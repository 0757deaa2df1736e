//! The background workers of `tessera serve`: token refresh, health checks,
//! webhook delivery. Each scan claims its rows in the database (leases,
//! `SKIP LOCKED`), so any number of replicas can run them side by side.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{ServiceError, Tessera};

/// Rows one scan claims at most; a full batch means more may be waiting.
const BATCH: i64 = 100;

/// Starts every worker.
pub fn spawn_all(svc: &Arc<Tessera>, refresh: Duration, health: Duration, webhooks: Duration) {
    let s = svc.clone();
    tokio::spawn(every(refresh, "token refresh", move || {
        let s = s.clone();
        async move {
            let r = s.refresh_due(BATCH).await?;
            if r.claimed > 0 {
                tracing::info!(refreshed = r.refreshed, failed = r.failed, "token refresh scan");
            }
            Ok(r.claimed as i64 == BATCH)
        }
    }));
    let s = svc.clone();
    tokio::spawn(every(health, "health check", move || {
        let s = s.clone();
        async move { Ok(s.check_due_health(BATCH).await? as i64 >= BATCH) }
    }));
    let s = svc.clone();
    tokio::spawn(every(webhooks, "webhook delivery", move || {
        let s = s.clone();
        async move {
            let r = s.deliver_webhooks(BATCH).await?;
            if r.claimed > 0 || r.rotation_due > 0 {
                tracing::debug!(
                    delivered = r.delivered,
                    retrying = r.retrying,
                    failed = r.failed,
                    rotation_due = r.rotation_due,
                    "webhook scan"
                );
            }
            Ok(r.claimed as i64 == BATCH)
        }
    }));
}

/// Writes the aggregated denial events every `interval` (`TESSERA_AUDIT_DENIAL_INTERVAL`).
pub fn spawn_denial_flush(svc: &Arc<Tessera>, interval: Duration) {
    let s = svc.clone();
    tokio::spawn(every(interval, "denial aggregation", move || {
        let s = s.clone();
        async move {
            s.flush_denials().await?;
            Ok(false)
        }
    }));
}

/// Adds the in-memory usage counts to the store every `interval`.
pub fn spawn_usage_flush(svc: &Arc<Tessera>, interval: Duration) {
    let s = svc.clone();
    tokio::spawn(every(interval, "usage counts", move || {
        let s = s.clone();
        async move {
            s.flush_usage().await?;
            Ok(false)
        }
    }));
}

/// Runs `scan` every `interval` (a late tick is delayed, never bunched up);
/// a scan that answers `true` (it took a full batch) runs again at once.
async fn every<F, Fut>(interval: Duration, name: &'static str, mut scan: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ServiceError>>,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match scan().await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(worker = name, error = %e, "scan failed");
                    break;
                }
            }
        }
    }
}
