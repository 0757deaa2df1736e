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

/// Adds the in-memory usage counts to the store every `interval`, or
/// sooner once they hold many connections (`flush_usage_when_due`), so
/// memory stays bounded under many tenants. (`serve` writes the last counts
/// itself once stopped.)
pub fn spawn_usage_flush(svc: &Arc<Tessera>, interval: Duration, stop: &Stop) {
    let s = svc.clone();
    // Asked every second: the counts also go early once they hold many connections.
    let check = interval.min(Duration::from_secs(1));
    tokio::spawn(every(check, "usage counts", stop.clone(), move || {
        let s = s.clone();
        async move {
            s.flush_usage_when_due(interval).await?;
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

/// Starts one worker per audit sink (`TESSERA_AUDIT_SINKS`). Each step
/// delivers the next batch of committed events after the sink's stored
/// position, under the sink's lease; the pacing (at once after a full batch,
/// the interval once caught up, a doubling wait after failures) is the
/// service's. Returns the workers, to stop them at shutdown.
pub fn spawn_audit_sinks(
    svc: &Arc<Tessera>,
    sinks: Vec<Arc<dyn tessera_core::audit_sink::AuditSink>>,
    opts: tessera_core::service::AuditSinkOptions,
) -> Vec<tokio::task::JoinHandle<()>> {
    use tessera_core::service::{SinkPacing, SinkStep};
    sinks
        .into_iter()
        .map(|sink| {
            let s = svc.clone();
            let opts = opts.clone();
            tokio::spawn(async move {
                let mut pacing = SinkPacing::default();
                loop {
                    let step = match s.deliver_audit_batch(sink.as_ref(), &opts).await {
                        Ok(step) => step,
                        Err(e) => SinkStep::Failed { position: -1, error: format!("the store: {}", e.message) },
                    };
                    let failures_before = pacing.failures();
                    let wait = pacing.after(&step, &opts);
                    match &step {
                        // Logged on the first failure and then every tenth, not at every retry.
                        SinkStep::Failed { error, .. } if failures_before % 10 == 0 => {
                            tracing::warn!(sink = sink.name(), error = %error, retry_in_s = wait.as_secs(), "audit sink delivery failed");
                        }
                        SinkStep::Delivered { count, position, .. } if failures_before > 0 => {
                            tracing::info!(sink = sink.name(), count, position, "audit sink delivering again");
                        }
                        _ => {}
                    }
                    tokio::time::sleep(wait).await;
                }
            })
        })
        .collect()
}
