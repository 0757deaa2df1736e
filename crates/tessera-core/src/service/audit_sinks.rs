//! Audit streaming: each sink's worker delivers the committed audit events
//! after its stored position, in `seq` order, and moves the position only
//! once the sink confirmed the batch, so every event arrives at least once
//! and a restart resumes where delivery stopped.
//!
//! Requests never wait for a sink: events are read back from the audit
//! table, which every request already writes (transactionally, hash
//! chained); a sink that is down only falls behind and catches up from the
//! table when it is back. With several replicas one delivers to each sink:
//! its worker holds the sink's lease in the store, renewed every step, and
//! the position moves only under that lease.

use std::time::Duration;

use chrono::Utc;

use super::retry::delta;
use super::{AuditEventView, Tessera};
use crate::audit_sink::AuditSink;
use crate::error::ServiceError;
use crate::ports::AuditFilter;

/// How the sink workers run.
#[derive(Debug, Clone)]
pub struct AuditSinkOptions {
    /// Most events one delivery carries.
    pub batch: i64,
    /// How long a replica's claim on a sink lasts without renewal (longer
    /// than any one delivery takes).
    pub lease: Duration,
    /// Wait between steps once caught up (`TESSERA_AUDIT_SINK_INTERVAL`).
    pub interval: Duration,
    /// First wait after a failed delivery, doubling (`TESSERA_AUDIT_SINK_RETRY_BASE`).
    pub retry_base: Duration,
    /// Longest wait after failures (`TESSERA_AUDIT_SINK_RETRY_MAX`).
    pub retry_max: Duration,
}

impl Default for AuditSinkOptions {
    fn default() -> Self {
        Self {
            batch: 500,
            lease: Duration::from_secs(30),
            interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// What one step of a sink's worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkStep {
    /// Another replica holds the sink's lease: nothing sent.
    Standby,
    /// Nothing after the stored position.
    CaughtUp {
        /// The seq of the last event the sink has.
        position: i64,
    },
    /// A batch was delivered and the position moved past it.
    Delivered {
        /// Events in the batch.
        count: usize,
        /// The new position.
        position: i64,
        /// Whether the batch was full (more may be waiting).
        full: bool,
    },
    /// The sink did not take the batch; the position stays, and the batch
    /// is sent again.
    Failed {
        /// The position, unchanged.
        position: i64,
        /// Why, in a few words.
        error: String,
    },
}

/// A sink worker's pacing: at once after a full batch, the interval once
/// caught up or on standby, and a doubling wait (at most `retry_max`) after
/// failures in a row.
#[derive(Debug, Default)]
pub struct SinkPacing {
    failures: u32,
}

impl SinkPacing {
    /// How long to wait before the next step, after `step`.
    pub fn after(&mut self, step: &SinkStep, opts: &AuditSinkOptions) -> Duration {
        match step {
            SinkStep::Failed { .. } => {
                self.failures = self.failures.saturating_add(1);
                let factor = 1u32.checked_shl(self.failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
                opts.retry_base.saturating_mul(factor).min(opts.retry_max)
            }
            SinkStep::Delivered { full: true, .. } => {
                self.failures = 0;
                Duration::ZERO
            }
            SinkStep::Delivered { .. } | SinkStep::CaughtUp { .. } => {
                self.failures = 0;
                opts.interval
            }
            SinkStep::Standby => opts.interval,
        }
    }

    /// Failed deliveries in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl Tessera {
    /// One step of a sink's worker: takes or renews the sink's lease, reads
    /// the next batch of committed events after its position, delivers it,
    /// and moves the position past it once the sink confirmed it.
    pub async fn deliver_audit_batch(
        &self,
        sink: &dyn AuditSink,
        opts: &AuditSinkOptions,
    ) -> Result<SinkStep, ServiceError> {
        let name = sink.name();
        let now = Utc::now();
        let mut tx = self.store.begin_log_write().await?;
        let claimed = tx.claim_audit_sink(name, &self.instance_id, now, now + delta(opts.lease)).await?;
        tx.commit().await?;
        let Some(position) = claimed else { return Ok(SinkStep::Standby) };
        let mut tx = self.store.read().await?;
        let (head, _) = tx.audit_head().await?;
        let filter =
            AuditFilter { after_seq: Some(position), limit: opts.batch.clamp(1, 10_000), ..AuditFilter::default() };
        let records = tx.list_audit(&filter).await?;
        tx.commit().await?;
        metrics::gauge!("tessera_audit_sink_lag", "sink" => name.to_owned()).set((head - position).max(0) as f64);
        let Some(last) = records.last().map(|r| r.seq) else { return Ok(SinkStep::CaughtUp { position }) };
        // An event outside the database must never be one a power loss could
        // still take from it (an access event committed but not yet on disk):
        // the chain would then go on without it, under the same seq.
        self.store.sync_log().await?;
        let count = records.len();
        let full = i64::try_from(count).unwrap_or(i64::MAX) >= opts.batch;
        let events: Vec<AuditEventView> = records.into_iter().map(Into::into).collect();
        if let Err(e) = sink.deliver(&events).await {
            metrics::counter!("tessera_audit_sink_failures_total", "sink" => name.to_owned()).increment(1);
            return Ok(SinkStep::Failed { position, error: e.0 });
        }
        metrics::counter!("tessera_audit_sink_events_total", "sink" => name.to_owned())
            .increment(u64::try_from(count).unwrap_or(0));
        let mut tx = self.store.begin_log_write().await?;
        let moved = tx.advance_audit_sink(name, &self.instance_id, last).await?;
        tx.commit().await?;
        if !moved {
            // Another replica took the sink over meanwhile (this one's lease
            // ran out): it resends from its own reading of the position.
            tracing::warn!(sink = name, "the audit sink's lease was lost during a delivery; another replica resends");
            return Ok(SinkStep::Standby);
        }
        metrics::gauge!("tessera_audit_sink_lag", "sink" => name.to_owned()).set((head - last).max(0) as f64);
        Ok(SinkStep::Delivered { count, position: last, full })
    }

    /// Gives up this process's lease on a sink (at shutdown), so another
    /// replica, or this one restarted, takes over at once.
    pub async fn release_audit_sink(&self, name: &str) -> Result<(), ServiceError> {
        let mut tx = self.store.begin_log_write().await?;
        tx.release_audit_sink(name, &self.instance_id).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_sink_waits_longer_each_time_up_to_the_maximum_and_a_success_resets_it() {
        let opts = AuditSinkOptions {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
            ..AuditSinkOptions::default()
        };
        let mut pacing = SinkPacing::default();
        let failed = SinkStep::Failed { position: 3, error: "down".into() };
        let waits: Vec<u64> = (0..5).map(|_| pacing.after(&failed, &opts).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(pacing.after(&SinkStep::Delivered { count: 500, position: 9, full: true }, &opts), Duration::ZERO);
        assert_eq!(pacing.failures(), 0);
        assert_eq!(pacing.after(&failed, &opts), Duration::from_secs(1));
        assert_eq!(pacing.after(&SinkStep::CaughtUp { position: 9 }, &opts), opts.interval);
    }
}
