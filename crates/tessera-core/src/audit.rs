//! The audit log: events, their hash chain, and the group committer.
//!
//! Changes append their event inside their own transaction
//! ([`append_in_tx`]), so a change without its audit row cannot commit. Reads
//! and denials have no transaction of their own; they go through
//! [`AuditWriter`], which batches events from concurrent requests into one
//! transaction (group commit) and answers each request only once its event is
//! committed. If the audit row cannot be written the request fails (fail closed).
//!
//! How soon a committed access event is on disk is the store's to say
//! ([`MetadataStore::begin_access_log_write`]): by default a crash of the
//! process loses none, and a power loss only those of the last few
//! milliseconds, as Vault's file audit device (which does not fsync) would.
//! An event that precedes a change the database cannot hold in the same
//! transaction (an `attempt` before a write to an outside backend) is made
//! durable before the change is tried ([`AuditWriter::record_durable`]).
//!
//! An event never holds a secret value: resources are paths and ids only.
//!
//! The chain is keyed: from the seq recorded with the audit key on, an
//! event's hash is an HMAC-SHA256 under that key (random, wrapped by the
//! key-encryption key like a data key), so whoever can write the database
//! but does not hold the master key cannot rewrite events and recompute the
//! chain. Events written before the key existed keep their SHA-256 hashes.
//! Signed checkpoints of the head ([`Checkpoint`]), kept outside the
//! database, also reveal a chain cut short at its end.

use crate::ErrorCode;
use std::sync::Arc;

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
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
    /// `success`, `denied` or `failure`; `started` for a proxied call
    /// about to be sent (its outcome follows in a second event).
    pub outcome: String,
    /// Request id.
    pub request_id: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
}

/// Domain-separation labels of the keyed chain and its checkpoints.
const KEYED_LABEL: &[u8] = b"tessera.audit-event.v2";
const CHECKPOINT_LABEL: &[u8] = b"tessera.audit-checkpoint.v1";

/// How events are hashed: SHA-256 before the chain was keyed, HMAC-SHA256
/// under the audit key from `keyed_from` on.
#[derive(Clone)]
pub struct AuditChain {
    keyed: Option<(Hmac<Sha256>, i64)>,
}

impl AuditChain {
    /// A chain with no key (every event SHA-256): only stores that predate
    /// the audit key, and tests.
    pub fn unkeyed() -> Self {
        Self { keyed: None }
    }

    /// A chain keyed with `key` from seq `keyed_from` on.
    pub fn keyed(key: &[u8], keyed_from: i64) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        Self { keyed: Some((mac, keyed_from)) }
    }

    /// The hash of a record: over every field but its own hash (see [`record_hash`]).
    pub fn hash(&self, r: &AuditRecord) -> String {
        match &self.keyed {
            Some((mac, from)) if r.seq >= *from => {
                let mut mac = mac.clone();
                mac.update(KEYED_LABEL);
                mac.update(&canonical(r));
                hex::encode(mac.finalize().into_bytes())
            }
            _ => record_hash(r),
        }
    }

    /// Places events in the chain after `(seq, hash)`.
    pub fn chain(&self, seq: i64, prev: String, events: Vec<AuditEvent>) -> Vec<AuditRecord> {
        chain_with(seq, prev, events, |r| self.hash(r))
    }

    /// Appends events inside an open write transaction.
    pub async fn append_in_tx(&self, tx: &mut dyn StoreTx, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
        let (seq, hash) = tx.lock_audit_head().await?;
        let mut records = self.chain(seq, hash, events);
        match tx.append_audit(&records).await {
            // The head the store remembered was stale (another process appended,
            // or a transaction that appended rolled back): once more from the
            // head as it is now. A second refusal is an error.
            Err(StoreError::AuditHeadMoved) => {
                let (seq, hash) = tx.lock_audit_head().await?;
                self.rechain(seq, hash, &mut records);
                tx.append_audit(&records).await?;
            }
            other => other?,
        }
        Ok(())
    }

    /// Places already chained records after `(seq, hash)` instead (same ids and times).
    fn rechain(&self, mut seq: i64, mut prev: String, records: &mut [AuditRecord]) {
        for r in records {
            seq += 1;
            r.seq = seq;
            r.prev_hash = prev;
            r.hash = self.hash(r);
            prev = r.hash.clone();
        }
    }

    /// A signed statement that the chain's head was `(seq, hash)` at `at`.
    /// None for an unkeyed chain (nothing to sign with).
    pub fn checkpoint(&self, seq: i64, hash: &str) -> Option<Checkpoint> {
        let at = crate::service::rfc3339(Utc::now());
        let mac = self.checkpoint_mac(seq, hash, &at)?;
        Some(Checkpoint { seq, hash: hash.to_owned(), at, mac })
    }

    fn checkpoint_mac(&self, seq: i64, hash: &str, at: &str) -> Option<String> {
        let (mac, _) = self.keyed.as_ref()?;
        let mut mac = mac.clone();
        mac.update(CHECKPOINT_LABEL);
        let body = serde_json::to_vec(&(seq, hash, at)).expect("a tuple of a number and strings serialises");
        mac.update(&body);
        Some(hex::encode(mac.finalize().into_bytes()))
    }

    /// Whether a checkpoint was signed with this chain's key (in constant time).
    pub fn checkpoint_is_genuine(&self, c: &Checkpoint) -> bool {
        use subtle::ConstantTimeEq;
        self.checkpoint_mac(c.seq, &c.hash, &c.at).is_some_and(|m| bool::from(m.as_bytes().ct_eq(c.mac.as_bytes())))
    }
}

/// A signed record of the audit chain's head at a moment, kept outside the
/// database (a file beside the data): the chain must still contain this
/// event with this hash, so a chain rewritten or cut short is detected.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The head's seq.
    pub seq: i64,
    /// The head's hash.
    pub hash: String,
    /// When (RFC 3339).
    pub at: String,
    /// HMAC-SHA256 of `[seq, hash, at]` under the audit key (hex).
    pub mac: String,
}

fn chain_with(
    mut seq: i64,
    mut prev: String,
    events: Vec<AuditEvent>,
    hash: impl Fn(&AuditRecord) -> String,
) -> Vec<AuditRecord> {
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
            r.hash = hash(&r);
            prev = r.hash.clone();
            r
        })
        .collect()
}

/// SHA-256 over every field of the record but its own hash, in a fixed order:
/// the JSON array `[seq, id, at, actor, ..., prevHash]` (a tuple serialises to
/// the same bytes without copying the fields into a `Value` first).
pub fn record_hash(r: &AuditRecord) -> String {
    hex::encode(Sha256::digest(canonical(r)))
}

/// The bytes an event's hash covers.
fn canonical(r: &AuditRecord) -> Vec<u8> {
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
    serde_json::to_vec(&canonical).expect("a JSON array of strings and numbers serialises")
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

/// Walks the whole chain, page by page, recomputing every hash, then checks
/// every checkpoint against it: genuine (signed with the audit key), and
/// naming an event the chain still holds with the same hash.
pub async fn verify(
    store: &dyn MetadataStore,
    chain: &AuditChain,
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport, ServiceError> {
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
            } else if chain.hash(&r) != r.hash {
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
    for c in checkpoints {
        let reason = if !chain.checkpoint_is_genuine(c) {
            Some(format!("the checkpoint of seq {} written at {} is not signed with the audit key", c.seq, c.at))
        } else if c.seq > head_seq {
            Some(format!(
                "the chain ends at seq {head_seq} but a checkpoint written at {} saw seq {} (events were removed)",
                c.at, c.seq
            ))
        } else {
            let found =
                tx.list_audit(&AuditFilter { after_seq: Some(c.seq - 1), limit: 1, ..AuditFilter::default() }).await?;
            match found.first() {
                Some(r) if r.seq == c.seq && r.hash == c.hash => None,
                _ => Some(format!(
                    "event {} no longer has the hash a checkpoint written at {} recorded (the chain was rewritten)",
                    c.seq, c.at
                )),
            }
        };
        if let Some(reason) = reason {
            let broken = BrokenEvent { seq: c.seq, id: String::new(), reason };
            return Ok(VerifyReport { ok: false, checked, head_seq, broken: Some(broken) });
        }
    }
    Ok(VerifyReport { ok: true, checked, head_seq, broken: None })
}

/// An event, whether it must be on disk before its request goes on, and
/// who waits for it.
type Pending = (AuditEvent, bool, oneshot::Sender<Result<(), ServiceError>>);

/// Writes read and denial events with group commit, and chains every event.
#[derive(Clone)]
pub struct AuditWriter {
    queue: mpsc::Sender<Pending>,
    chain: Arc<AuditChain>,
}

impl AuditWriter {
    /// Starts the committer task on the current runtime.
    pub fn spawn(store: Arc<dyn MetadataStore>, chain: AuditChain) -> Self {
        let (queue, rx) = mpsc::channel(MAX_BATCH * 8);
        let chain = Arc::new(chain);
        tokio::spawn(run_committer(store, chain.clone(), rx));
        Self { queue, chain }
    }

    /// How events are hashed.
    pub fn chain(&self) -> &AuditChain {
        &self.chain
    }

    /// Appends a change's events inside its own write transaction.
    pub async fn append_in_tx(&self, tx: &mut dyn StoreTx, events: Vec<AuditEvent>) -> Result<(), ServiceError> {
        self.chain.append_in_tx(tx, events).await
    }

    /// Records an access's event (a read, a denial, a proxy or tool call)
    /// and returns once it is committed: a crash of the process no longer
    /// loses it; when it reaches the disk is the store's read-audit setting.
    pub async fn record(&self, event: AuditEvent) -> Result<(), ServiceError> {
        self.send(event, false).await
    }

    /// Records an event and returns once it is on disk: for an event that
    /// precedes a change outside the database (no change may be unaudited,
    /// even after a power loss).
    pub async fn record_durable(&self, event: AuditEvent) -> Result<(), ServiceError> {
        self.send(event, true).await
    }

    async fn send(&self, event: AuditEvent, durable: bool) -> Result<(), ServiceError> {
        let (done, wait) = oneshot::channel();
        self.queue.send((event, durable, done)).await.map_err(|_| {
            ServiceError::unavailable(ErrorCode::AuditUnavailable, "the audit log is not accepting events")
        })?;
        wait.await.map_err(|_| {
            ServiceError::unavailable(ErrorCode::AuditUnavailable, "the audit log stopped before the event was written")
        })?
    }
}

async fn run_committer(store: Arc<dyn MetadataStore>, chain: Arc<AuditChain>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        gather(&mut rx, &mut batch).await;
        // One event that must be on disk makes the whole batch wait for the disk.
        let durable = batch.iter().any(|(_, durable, _)| *durable);
        let (events, waiters): (Vec<_>, Vec<_>) = batch.drain(..).map(|(e, _, w)| (e, w)).unzip();
        let outcome = commit_batch(store.as_ref(), &chain, events, durable).await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "audit group commit failed; the requests waiting on it fail closed");
        }
        for w in waiters {
            let _ = w.send(outcome.clone());
        }
    }
}

/// How many times the committer lets other tasks run before a commit, to
/// collect the events they are about to queue.
const GATHER_ROUNDS: usize = 4;

/// Before committing, lets the tasks that are ready run (each a request
/// about to queue its event), for as long as that brings more events. Every
/// commit writes the pages it touched to the WAL whatever it holds, so one
/// commit of thirty events costs far less than thirty of one; a commit that
/// waited for an fsync gathered them meanwhile, one that does not (see
/// `MetadataStore::begin_access_log_write`) would otherwise hold one or two.
/// A yield costs microseconds, and when nothing else is ready it returns at once.
async fn gather(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    for _ in 0..GATHER_ROUNDS {
        let before = batch.len();
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if batch.len() == before || batch.len() >= MAX_BATCH {
            return;
        }
    }
}

async fn commit_batch(
    store: &dyn MetadataStore,
    chain: &AuditChain,
    events: Vec<AuditEvent>,
    durable: bool,
) -> Result<(), ServiceError> {
    let mut tx = if durable { store.begin_log_write().await? } else { store.begin_access_log_write().await? };
    chain.append_in_tx(tx.as_mut(), events).await?;
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
        let records = AuditChain::unkeyed().chain(0, GENESIS_HASH.into(), vec![event("a"), event("b")]);
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
        let mut records = AuditChain::unkeyed().chain(0, GENESIS_HASH.into(), vec![event("a"), event("b")]);
        AuditChain::unkeyed().rechain(7, "ab".repeat(32), &mut records);
        assert_eq!((records[0].seq, records[1].seq), (8, 9));
        assert_eq!(records[0].prev_hash, "ab".repeat(32));
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(record_hash(&records[0]), records[0].hash);
        assert_eq!(record_hash(&records[1]), records[1].hash);
    }

    #[test]
    fn keyed_events_need_the_key_and_earlier_events_keep_their_plain_hash() {
        let keyed = AuditChain::keyed(&[7u8; 32], 2);
        let records = keyed.chain(0, GENESIS_HASH.into(), vec![event("a"), event("b")]);
        assert_eq!(records[0].hash, record_hash(&records[0]), "seq 1 is before the key");
        assert_ne!(records[1].hash, record_hash(&records[1]), "seq 2 is keyed");
        assert_eq!(keyed.hash(&records[1]), records[1].hash);
        // Whoever rewrites an event without the key cannot produce its hash.
        let mut forged = records[1].clone();
        forged.outcome = "denied".into();
        assert_ne!(AuditChain::keyed(&[8u8; 32], 2).hash(&forged), keyed.hash(&forged));
        assert_ne!(record_hash(&forged), keyed.hash(&forged));
    }

    #[test]
    fn checkpoints_are_genuine_only_under_their_key_and_unaltered() {
        let keyed = AuditChain::keyed(&[7u8; 32], 1);
        let c = keyed.checkpoint(41, &"ab".repeat(32)).expect("keyed");
        assert!(keyed.checkpoint_is_genuine(&c));
        assert!(!AuditChain::keyed(&[8u8; 32], 1).checkpoint_is_genuine(&c));
        assert!(!keyed.checkpoint_is_genuine(&Checkpoint { seq: 40, ..c.clone() }));
        assert!(AuditChain::unkeyed().checkpoint(1, "x").is_none());
    }

    #[test]
    fn the_hash_is_over_the_same_json_array_as_ever() {
        // Stored chains must keep verifying: the canonical form may not change.
        let mut r = AuditChain::unkeyed().chain(41, GENESIS_HASH.into(), vec![event("secret.read")]).remove(0);
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
