//! The audit log: events, their hash chain, and the group committer.
//!
//! Changes append their event inside their own transaction
//! ([`append_in_tx`]), so a change without its audit row cannot commit. Reads
//! and denials have no transaction of their own; they go through
//! [`AuditWriter`], which batches events from concurrent requests into one
//! transaction (group commit) and answers each request only once its event is
//! durable. If the audit row cannot be written the request fails (fail closed).
//!
//! An event never holds a secret value: resources are paths and ids only.

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::error::ServiceError;
use crate::ports::{AuditFilter, AuditRecord, MetadataStore, StoreError, StoreTx};

/// The hash the first event points back to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many events one group commit writes at most.
const MAX_BATCH: usize = 1024;

/// An event before it has a place in the chain.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Principal id (`anonymous` when unauthenticated).
    pub actor: String,
    /// Principal role (`none` when unauthenticated).
    pub actor_role: String,
    /// Tenant concerned.
    pub tenant_id: Option<String>,
    /// What happened: `secret.read`, `config.update`, `auth.denied`, ...
    pub action: String,
    /// What was touched.
    pub resource: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Request id.
    pub request_id: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
}

/// Places events in the chain after `(seq, hash)`.
pub fn chain(mut seq: i64, mut prev: String, events: Vec<AuditEvent>) -> Vec<AuditRecord> {
    let at_micros = Utc::now().timestamp_micros();
    events
        .into_iter()
        .map(|e| {
            seq += 1;
            let mut r = AuditRecord {
                seq,
                id: uuid::Uuid::now_v7().to_string(),
                at_micros,
                actor: e.actor,
                actor_role: e.actor_role,
                tenant_id: e.tenant_id,
                action: e.action,
                resource: e.resource,
                outcome: e.outcome,
                request_id: e.request_id,
                client_ip: e.client_ip,
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            r.hash = record_hash(&r);
            prev = r.hash.clone();
            r
        })
        .collect()
}

/// SHA-256 over every field of the record but its own hash, in a fixed order:
/// the JSON array `[seq, id, at, actor, ..., prevHash]` (a tuple serialises to
/// the same bytes without copying the fields into a `Value` first).
pub fn record_hash(r: &AuditRecord) -> String {
    let canonical = (
        r.seq,
        &r.id,
        r.at_micros,
        &r.actor,
        &r.actor_role,
        &r.tenant_id,
        &r.action,
        &r.resource,
        &r.outcome,
        &r.request_id,
        &r.client_ip,
        &r.prev_hash,
    );
    let bytes = serde_json::to_vec(&canonical).expect("a JSON array of strings and numbers serialises");
    hex::encode(Sha256::digest(&bytes))
}

/// Appends events inside an open write transaction.
pub async fn append_in_tx(tx: &mut dyn StoreTx, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
    let (seq, hash) = tx.lock_audit_head().await?;
    let mut records = chain(seq, hash, events);
    match tx.append_audit(&records).await {
        // The head the store remembered was stale (another process appended,
        // or a transaction that appended rolled back): once more from the
        // head as it is now. A second refusal is an error.
        Err(StoreError::AuditHeadMoved) => {
            let (seq, hash) = tx.lock_audit_head().await?;
            rechain(seq, hash, &mut records);
            tx.append_audit(&records).await?;
        }
        other => other?,
    }
    Ok(())
}

/// Places already chained records after `(seq, hash)` instead (same ids and times).
fn rechain(mut seq: i64, mut prev: String, records: &mut [AuditRecord]) {
    for r in records {
        seq += 1;
        r.seq = seq;
        r.prev_hash = prev;
        r.hash = record_hash(r);
        prev = r.hash.clone();
    }
}

/// The outcome of verifying the chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Whether every event checked out.
    pub ok: bool,
    /// Events checked.
    pub checked: i64,
    /// Seq of the chain head.
    pub head_seq: i64,
    /// The first broken event, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken: Option<BrokenEvent>,
}

/// Where the chain breaks.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokenEvent {
    /// Its seq.
    pub seq: i64,
    /// Its id.
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

/// Walks the whole chain, page by page, recomputing every hash.
pub async fn verify(store: &dyn MetadataStore) -> Result<VerifyReport, ServiceError> {
    let mut tx = store.begin_read().await?;
    let (head_seq, head_hash) = tx.audit_head().await?;
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut checked = 0;
    loop {
        let page =
            tx.list_audit(&AuditFilter { after_seq: Some(prev_seq), limit: 5000, ..AuditFilter::default() }).await?;
        if page.is_empty() {
            break;
        }
        for r in page {
            let reason = if r.seq != prev_seq + 1 {
                Some(format!("expected seq {} but found {} (an event was removed)", prev_seq + 1, r.seq))
            } else if r.prev_hash != prev_hash {
                Some("prevHash does not match the previous event's hash".to_owned())
            } else if record_hash(&r) != r.hash {
                Some("hash does not match the event's contents (it was altered)".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                let broken = BrokenEvent { seq: r.seq, id: r.id, reason };
                return Ok(VerifyReport { ok: false, checked, head_seq, broken: Some(broken) });
            }
            checked += 1;
            prev_seq = r.seq;
            prev_hash = r.hash;
        }
    }
    if prev_seq != head_seq || (head_seq > 0 && prev_hash != head_hash) {
        let broken = BrokenEvent {
            seq: prev_seq,
            id: String::new(),
            reason: format!(
                "the chain ends at seq {prev_seq} but the recorded head is seq {head_seq} (events were removed)"
            ),
        };
        return Ok(VerifyReport { ok: false, checked, head_seq, broken: Some(broken) });
    }
    Ok(VerifyReport { ok: true, checked, head_seq, broken: None })
}

type Pending = (AuditEvent, oneshot::Sender<Result<(), ServiceError>>);

/// Writes read and denial events with group commit.
#[derive(Clone)]
pub struct AuditWriter {
    queue: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Starts the committer task on the current runtime.
    pub fn spawn(store: Arc<dyn MetadataStore>) -> Self {
        let (queue, rx) = mpsc::channel(MAX_BATCH * 8);
        tokio::spawn(run_committer(store, rx));
        Self { queue }
    }

    /// Records an event and returns once it is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<(), ServiceError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send((event, done))
            .await
            .map_err(|_| ServiceError::unavailable("audit_unavailable", "the audit log is not accepting events"))?;
        wait.await.map_err(|_| {
            ServiceError::unavailable("audit_unavailable", "the audit log stopped before the event was written")
        })?
    }
}

async fn run_committer(store: Arc<dyn MetadataStore>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, waiters): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let outcome = commit_batch(store.as_ref(), events).await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "audit group commit failed; the requests waiting on it fail closed");
        }
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}

async fn commit_batch(store: &dyn MetadataStore, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
    let mut tx = store.begin_log_write().await?;
    append_in_tx(tx.as_mut(), events).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            actor: "k1".into(),
            actor_role: "admin".into(),
            tenant_id: Some("acme".into()),
            action: action.into(),
            resource: "tenants/acme".into(),
            outcome: "success".into(),
            request_id: None,
            client_ip: None,
        }
    }

    #[test]
    fn chained_events_point_at_their_predecessor_and_any_edit_changes_the_hash() {
        let records = chain(0, GENESIS_HASH.into(), vec![event("a"), event("b")]);
        assert_eq!(records[0].seq, 1);
        assert_eq!(records[0].prev_hash, GENESIS_HASH);
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(record_hash(&records[1]), records[1].hash);
        let mut edited = records[1].clone();
        edited.outcome = "denied".into();
        assert_ne!(record_hash(&edited), records[1].hash);
    }

    #[test]
    fn rechained_records_are_what_chaining_from_the_new_head_gives() {
        let mut records = chain(0, GENESIS_HASH.into(), vec![event("a"), event("b")]);
        rechain(7, "ab".repeat(32), &mut records);
        assert_eq!((records[0].seq, records[1].seq), (8, 9));
        assert_eq!(records[0].prev_hash, "ab".repeat(32));
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(record_hash(&records[0]), records[0].hash);
        assert_eq!(record_hash(&records[1]), records[1].hash);
    }

    #[test]
    fn the_hash_is_over_the_same_json_array_as_ever() {
        // Stored chains must keep verifying: the canonical form may not change.
        let mut r = chain(41, GENESIS_HASH.into(), vec![event("secret.read")]).remove(0);
        r.request_id = Some("req \"1\"\u{e9}".into());
        let canonical = serde_json::json!([
            r.seq,
            r.id,
            r.at_micros,
            r.actor,
            r.actor_role,
            r.tenant_id,
            r.action,
            r.resource,
            r.outcome,
            r.request_id,
            r.client_ip,
            r.prev_hash
        ]);
        let expected = hex::encode(Sha256::digest(serde_json::to_vec(&canonical).expect("serialises")));
        assert_eq!(record_hash(&r), expected);
    }
}
