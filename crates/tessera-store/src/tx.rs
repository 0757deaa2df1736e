//! One handle over every repository (a transaction, or a plain pooled
//! connection for reads), and the helpers rows share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::pool::PoolConnection;
use sqlx::{Any, Transaction};
use tessera_core::ports::{StoreError, StoreResult, StoreTx};

use crate::group::Member;
use crate::lite::Reader;
use crate::Dialect;

/// What a [`SqlTx`] runs its statements on.
pub(crate) enum Conn {
    /// A PostgreSQL transaction; dropped without commit, it rolls back.
    PgTx(Transaction<'static, Any>),
    /// A pooled PostgreSQL connection in autocommit mode (no BEGIN/COMMIT):
    /// each statement sees the latest committed data. For reads only.
    PgPlain(PoolConnection<Any>),
    /// A SQLite write transaction committed with others (see `group`).
    LiteGroup(Member),
    /// A SQLite read connection, in a read transaction or in autocommit mode.
    LiteRead(Reader),
}

/// The handle behind [`StoreTx`].
pub(crate) struct SqlTx {
    pub(crate) tx: Conn,
    pub(crate) dialect: Dialect,
    /// For a write transaction whose commit may change what cached views
    /// show: the store's generations, moved once the commit is done.
    pub(crate) changes: Option<Arc<Generations>>,
    /// Whether this transaction deleted a tenant or an API key: its commit
    /// also moves the revocation generation, here and on every replica.
    pub(crate) revokes: bool,
    /// SQLite write transactions: the audit head as this process last left
    /// it (see `access`). None elsewhere: the head is read every time.
    pub(crate) audit_head: Option<AuditHead>,
}

/// The audit chain head `(seq, hash)` this process remembers; `None` when
/// unknown. Only a hint: an append that does not continue the real head
/// moves nothing and is refused (`append_audit`), and then it is read again.
pub(crate) type AuditHead = Arc<Mutex<Option<(i64, String)>>>;

impl SqlTx {
    pub(crate) fn new(tx: Conn, dialect: Dialect) -> Self {
        Self { tx, dialect, changes: None, revokes: false, audit_head: None }
    }
}

/// What cached state must be checked against (see
/// [`tessera_core::ports::MetadataStore::change_generation`] and
/// [`tessera_core::ports::MetadataStore::revocation_generation`]).
#[derive(Default)]
pub(crate) struct Generations {
    /// Moves after every committed write (other than log appends).
    pub(crate) changes: AtomicU64,
    /// Moves after every committed deletion of a tenant or an API key.
    pub(crate) revocations: AtomicU64,
    /// PostgreSQL: whether the listener for other replicas' notices is up
    /// (SQLite has no other replicas: always true).
    pub(crate) listening: AtomicBool,
}

impl Generations {
    /// After a commit (or a lost channel): caches filled before are stale.
    pub(crate) fn moved(&self, revoked: bool) {
        self.changes.fetch_add(1, Ordering::Release);
        if revoked {
            self.revocations.fetch_add(1, Ordering::Release);
        }
    }
}

/// The payload of a notice for a commit that deleted a tenant or an API key.
pub(crate) const REVOKED_PAYLOAD: &str = "revoked";

/// The PostgreSQL channel on which replicas tell each other that they wrote.
pub(crate) const CHANGES_CHANNEL: &str = "tessera_changes";

#[async_trait]
impl StoreTx for SqlTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let SqlTx { tx, changes, revokes, audit_head, .. } = *self;
        match tx {
            Conn::LiteGroup(member) => {
                let outcome = member.commit().await;
                if outcome.is_err() {
                    // The group rolled back, and with it any audit rows of its members.
                    if let Some(head) = audit_head {
                        *head.lock().expect("audit head lock") = None;
                    }
                }
                if let Some(changes) = changes {
                    changes.moved(revokes);
                }
                outcome
            }
            Conn::PgTx(mut tx) => {
                if changes.is_some() {
                    // Delivered to every listening replica when (and only if) this commits.
                    let payload = if revokes { REVOKED_PAYLOAD } else { "" };
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANGES_CHANNEL)
                        .bind(payload)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                let outcome = tx.commit().await.map_err(map_err);
                // Moved after the commit, even a failed one (it may have
                // landed): a reader that saw the old generation then read the
                // old rows must not keep them.
                if let Some(changes) = changes {
                    changes.moved(revokes);
                }
                outcome
            }
            Conn::LiteRead(mut reader) => reader.finish(),
            // Nothing to commit; dropping it returns the connection to the pool.
            Conn::PgPlain(_) => Ok(()),
        }
    }
}

/// Maps a driver error to the port's error.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("row".into()),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::unavailable("the database cannot be reached").caused_by(e)
        }
        _ => StoreError::other("the database refused the statement").caused_by(e),
    }
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn time(m: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(m).unwrap_or_default()
}

pub(crate) fn opt_time(m: Option<i64>) -> Option<DateTime<Utc>> {
    m.map(time)
}

pub(crate) fn to_json(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).expect("a JSON map serialises")
}

pub(crate) fn json_map(text: &str) -> StoreResult<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(StoreError::other("a stored JSON column is not an object")),
    }
}

/// A stored word as its enum: a word no version of Tessera wrote fails the
/// read rather than being guessed at.
pub(crate) fn word<T>(raw: &str, parse: impl Fn(&str) -> Option<T>, column: &str) -> StoreResult<T> {
    parse(raw).ok_or_else(|| StoreError::other(format!("{column} holds {raw:?}, which this version does not know")))
}

/// A stored JSON column as the type it holds.
pub(crate) fn json_of<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::other(format!("the stored {column} is unreadable: {e}")))
}

/// A typed value as its JSON column.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a typed column value serialises")
}

pub(crate) fn json_value(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|_| StoreError::other("a stored JSON column is not JSON"))
}

/// Escapes `%`, `_` and `\` so a prefix matches literally in `LIKE ... ESCAPE '\'`.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
