//! The background workers of `tessera serve`: token refresh, health checks,
//! webhook delivery. Each scan claims its rows in the database (leases,
//! `SKIP LOCKED`), so any number of replicas can run them side by side.
//!
//! On shutdown (the [`Stop`] signal) a worker starts no new scan; a scan in
//! progress finishes what it claimed (a webhook being delivered is
//! delivered and recorded), and `serve` waits for that, up to
//! `TESSERA_SHUTDOWN_TIMEOUT`, before it gives back whatever leases are left.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{ServiceError, Tessera};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Set to true once the server is shutting down.
pub type Stop = watch::Receiver<bool>;

/// Rows one scan claims at most; a full batch means more may be waiting.
const BATCH: i64 = 100;

/// Starts every worker; each ends after the scan it is in when `stop` is set.
pub fn spawn_all(
    svc: &Arc<Tessera>,
    refresh: Duration,
    health: Duration,
    webhooks: Duration,
    stop: &Stop,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let s = svc.clone();
    set.spawn(every(refresh, "token refresh", stop.clone(), move || {
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
    set.spawn(every(health, "health check", stop.clone(), move || {
        let s = s.clone();
        async move { Ok(s.check_due_health(BATCH).await? as i64 >= BATCH) }
    }));
    let s = svc.clone();
    set.spawn(every(webhooks, "webhook delivery", stop.clone(), move || {
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
    set
}

/// Writes the aggregated denial events every `interval` (`TESSERA_AUDIT_DENIAL_INTERVAL`).
/// (`serve` writes the last counts itself once stopped.)
pub fn spawn_denial_flush(svc: &Arc<Tessera>, interval: Duration, stop: &Stop) {
    let s = svc.clone();
    tokio::spawn(every(interval, "denial aggregation", stop.clone(), move || {
        let s = s.clone();
        async move {
            s.flush_denials().await?;
            Ok(false)
        }
    }));
}

/// Adds the in-memory usage counts to the store every `interval`.
/// (`serve` writes the last counts itself once stopped.)
pub fn spawn_usage_flush(svc: &Arc<Tessera>, interval: Duration, stop: &Stop) {
    let s = svc.clone();
    tokio::spawn(every(interval, "usage counts", stop.clone(), move || {
        let s = s.clone();
        async move {
            s.flush_usage().await?;
            Ok(false)
        }
    }));
}

/// Runs `scan` every `interval` (a late tick is delayed, never bunched up);
/// a scan that answers `true` (it took a full batch) runs again at once.
/// Returns once `stop` is set, never in the middle of a scan.
async fn every<F, Fut>(interval: Duration, name: &'static str, mut stop: Stop, mut scan: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ServiceError>>,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        loop {
            if *stop.borrow() {
                return;
            }
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
