//! `tessera backup` and `tessera restore`: a logical export of every table,
//! the same on SQLite and PostgreSQL, so a backup of one restores into the
//! other.
//!
//! A backup is JSON Lines: a header naming the format, the master key id
//! (`keyring_meta.kek_id`), the source's schema version and store; then one
//! line per row, table by table in foreign-key order; then a trailer with the
//! row count of each table and the SHA-256 of every byte before it, so that
//! a truncated or edited file is refused before anything is written. It
//! holds what the store holds: ciphertext, wrapped keys, hashes and the audit
//! chain; never a plaintext and never the master key.
//!
//! A backup reads one snapshot (a SQLite read transaction in WAL mode; on
//! PostgreSQL one `REPEATABLE READ, READ ONLY` transaction) while servers
//! keep writing. A restore fills an empty store in one transaction.

mod format;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::connect::dialect_of;
use crate::Dialect;

/// The tables a backup holds, in foreign-key order (parents first), each with
/// the columns its rows are ordered by. Columns are discovered from the
/// database, so a new column is never forgotten; a new table must be added
/// here (a test checks this list names every table the migrations create).
/// `audit_events` goes in `seq` order: a restore appends the chain as it was
/// written. sqlx's `_sqlx_migrations` is not data: the restore runs its own.
pub(crate) const TABLES: &[(&str, &str)] = &[
    ("tenants", "id"),
    ("keyring_meta", "id"),
    ("data_keys", "tenant_id, version"),
    ("data_key_wraps", "tenant_id, version, kek_id"),
    ("integrations", "integration_key"),
    ("connections", "tenant_id, integration_key"),
    ("credentials", "tenant_id, integration_key"),
    ("oauth_states", "state_hash"),
    ("secrets", "tenant_id, path"),
    ("secret_versions", "tenant_id, path, version"),
    ("kv_configs", "tenant_id"),
    ("api_keys", "id"),
    ("webhooks", "id"),
    ("webhook_outbox", "id"),
    ("webhook_deliveries", "id"),
    ("usage_hourly", "tenant_id, integration_key, kind, hour"),
    ("audit_events", "seq"),
    ("audit_head", "id"),
    ("audit_sink_positions", "sink"),
];

/// Tables a backup leaves out on purpose: console sign-in sessions and
/// Hosted Connect sessions are credentials of a moment; a restored server
/// starts with none. (Only the
/// test that checks [`TABLES`] against the migrations needs the list.)
#[cfg(test)]
pub(crate) const NOT_BACKED_UP: &[&str] = &["console_sessions", "connect_sessions"];

/// The one table the migrations fill: `audit_head`'s genesis row. A store
/// whose head is still at `seq` 0 holds no audit event.
const AUDIT_HEAD: &str = "audit_head";

/// Why a backup or restore did not happen; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackupError(pub String);

impl BackupError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<tessera_core::ports::StoreError> for BackupError {
    fn from(e: tessera_core::ports::StoreError) -> Self {
        Self(e.to_string())
    }
}

/// What a backup wrote or a restore read.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// `keyring_meta.kek_id`: the master key the wrapped data keys need.
    pub kek_id: String,
    /// The source's latest migration.
    pub schema: i64,
    /// `sqlite` or `postgres`: where the backup was made.
    pub store: String,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// Bytes of the file.
    pub bytes: u64,
}

impl BackupSummary {
    /// Rows in every table.
    pub fn rows(&self) -> u64 {
        self.tables.values().sum()
    }
}

/// Writes a backup of the store at `url` to `file` (mode 0600; written
/// beside it under a temporary name, then renamed, so `file` is never half
/// written). Does not migrate the store: it exports the schema it finds.
pub async fn backup(url: &str, file: &Path) -> Result<BackupSummary, BackupError> {
    let out = format::Writer::create(file)?;
    let written = match dialect_of(url)? {
        Dialect::Sqlite => {
            let path = crate::connect::sqlite_path(url)?;
            tokio::task::spawn_blocking(move || sqlite::export(&path, out))
                .await
                .map_err(|e| BackupError::new(format!("the backup stopped: {e}")))?
        }
        Dialect::Postgres => postgres::export(url, out).await,
    };
    written?.finish(file)
}

/// Restores `file` into the empty store at `url`, whose configured master
/// key has the id `kek_id` (`local:<id>` or `vault-transit:<engine>`).
/// Runs the migrations first. Refuses, writing nothing, a file whose trailer
/// or checksum is wrong, whose format or schema version is unknown, or whose
/// master key id differs; and a store that holds anything.
pub async fn restore(url: &str, file: &Path, kek_id: &str) -> Result<BackupSummary, BackupError> {
    let checked = format::check(file)?;
    if checked.kek_id != kek_id {
        return Err(BackupError::new(format!(
            "the backup's data keys are wrapped by master key {}, but this process is configured with {kek_id}: \
             set TESSERA_MASTER_KEY (or TESSERA_KEYRING) to the key the backup was made with",
            checked.kek_id
        )));
    }
    match dialect_of(url)? {
        Dialect::Sqlite => {
            let path = crate::connect::migrate_sqlite(url).await?;
            let file = file.to_owned();
            tokio::task::spawn_blocking(move || sqlite::import(&path, &file))
                .await
                .map_err(|e| BackupError::new(format!("the restore stopped: {e}")))??;
        }
        Dialect::Postgres => postgres::import(url, file).await?,
    }
    Ok(checked)
}

/// Reads and checks a backup file (trailer, checksum, versions) without
/// touching any store.
pub fn inspect(file: &Path) -> Result<BackupSummary, BackupError> {
    format::check(file)
}

/// The migration versions this build knows for a store kind.
fn known_schemas(store: &str) -> Vec<i64> {
    let migrator = match store {
        "sqlite" => sqlx::migrate!("./migrations/sqlite"),
        "postgres" => sqlx::migrate!("./migrations/postgres"),
        _ => return Vec::new(),
    };
    migrator.iter().map(|m| m.version).collect()
}

/// The message for a store that already holds data.
fn not_empty(table: &str) -> BackupError {
    BackupError::new(format!(
        "the store is not empty (table {table} has rows): restore fills only an empty data dir or database; \
         point DATABASE_URL (or TESSERA_DATA_DIR) at a fresh one"
    ))
}

/// A column the backup has and the store has not.
fn unknown_column(table: &str, column: &str) -> BackupError {
    BackupError::new(format!(
        "the backup has column {table}.{column}, which this store does not: restore with the tessera version that \
         made the backup (or a newer one)"
    ))
}

/// One row of the file: its table and its columns.
pub(crate) struct FileRow {
    pub(crate) table: String,
    pub(crate) row: Map<String, Value>,
}

#[cfg(test)]
mod tests;
