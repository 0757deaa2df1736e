//! Opening the store: pools, pragmas, migrations.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use tessera_core::ports::{MetadataStore, StoreError, StoreResult, StoreTx};

use crate::group::WriteGroups;
use crate::tx::{map_err, AuditHead, Conn, SqlTx, CHANGES_CHANNEL};

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded SQLite (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// A bound parameter that goes into a JSON column.
    pub(crate) fn json_param(self, n: u8) -> String {
        match self {
            Self::Sqlite => format!("${n}"),
            Self::Postgres => format!("${n}::jsonb"),
        }
    }

    /// A JSON column read back as text.
    pub(crate) fn json_col(self, col: &'static str) -> String {
        match self {
            Self::Sqlite => col.to_owned(),
            Self::Postgres => format!("{col}::text"),
        }
    }
}

/// The metadata store.
#[derive(Clone)]
pub struct SqlStore {
    /// SQLite: one connection, so our own writers never contend for the lock
    /// (used through `groups`).
    /// PostgreSQL: the same pool as `read`.
    write: AnyPool,
    read: AnyPool,
    dialect: Dialect,
    /// See [`MetadataStore::change_generation`].
    changes: Arc<AtomicU64>,
    /// PostgreSQL: where to listen for other replicas' writes.
    listen_url: Option<String>,
    /// SQLite: group commit of write transactions.
    groups: Option<WriteGroups>,
    /// SQLite: the audit head as our last write transaction left it.
    audit_head: AuditHead,
}

/// Connects to `url` (`sqlite://path` or `postgres://...`) and brings the
/// schema up to date.
pub async fn connect(url: &str) -> StoreResult<SqlStore> {
    sqlx::any::install_default_drivers();
    let dialect = if url.starts_with("sqlite:") {
        Dialect::Sqlite
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Dialect::Postgres
    } else {
        return Err(StoreError::Other("DATABASE_URL must start with sqlite:// or postgres://".into()));
    };
    let options = AnyConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("DATABASE_URL is not valid: {e}")))?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
    let store = match dialect {
        Dialect::Sqlite => {
            let pool = |max: u32| {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(10))
                    // An embedded connection cannot drop off like a network one; the
                    // default ping on every acquire is a hand-off to its worker thread.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; synchronous=FULL makes a
                            // commit durable before we answer; foreign keys enforce cascades.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Deleted rows (old ciphertext, backfilled plain values) are zeroed on disk.
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
            };
            let write = pool(1).connect_with(options.clone()).await.map_err(unavailable)?;
            sqlx::migrate!("./migrations/sqlite")
                .run(&write)
                .await
                .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
            let read = pool(sqlite_readers()).connect_with(options).await.map_err(unavailable)?;
            SqlStore {
                groups: Some(WriteGroups::new(write.clone())),
                write,
                read,
                dialect,
                changes: Arc::default(),
                listen_url: None,
                audit_head: AuditHead::default(),
            }
        }
        Dialect::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
            SqlStore {
                write: pool.clone(),
                read: pool,
                dialect,
                changes: Arc::default(),
                listen_url: Some(url.to_owned()),
                groups: None,
                audit_head: AuditHead::default(),
            }
        }
    };
    Ok(store)
}

/// How many SQLite read connections to open: two per core, 4 to 16. SQLite
/// reads are CPU work on the connection's own worker thread; threads beyond
/// the cores only add context switches (on 2 cores, 4 read faster than 8).
fn sqlite_readers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    cores.saturating_mul(2).clamp(4, 16)
}

async fn listen(url: &str, changes: &AtomicU64) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    // Whatever changed while nobody listened.
    changes.fetch_add(1, Ordering::Release);
    loop {
        // `None`: the connection dropped (notices may be lost); the next call reconnects.
        let _notice = listener.try_recv().await?;
        changes.fetch_add(1, Ordering::Release);
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqlStore {
    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn write_tx(&self, changes: Option<Arc<AtomicU64>>) -> StoreResult<Box<dyn StoreTx>> {
        let (tx, audit_head) = match &self.groups {
            // Every SQLite write of this process runs in a group, one after
            // another: the remembered head is the one it left.
            Some(groups) => (Conn::Group(groups.begin().await?), Some(self.audit_head.clone())),
            None => (Conn::Tx(self.write.begin().await.map_err(map_err)?), None),
        };
        Ok(Box::new(SqlTx { tx, dialect: self.dialect, changes, audit_head }))
    }

    /// On PostgreSQL, follows the other replicas' writes (each write commit
    /// notifies [`CHANGES_CHANNEL`]) so that views cached here are dropped
    /// within milliseconds of a change elsewhere. A lost or failed listener
    /// counts as a change, and until it is back the cache's time-to-live
    /// bounds how stale a view can be. For the server; one-shot commands
    /// need not call it. Runs until the runtime stops.
    pub fn follow_other_replicas(&self) {
        let Some(url) = self.listen_url.clone() else { return };
        let changes = self.changes.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&url, &changes).await {
                    tracing::warn!(error = %e, "not listening for other replicas' writes; retrying in 1 s");
                }
                changes.fetch_add(1, Ordering::Release);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Closes the pools (waits for connections to be returned).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

#[async_trait]
impl MetadataStore for SqlStore {
    async fn begin_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.write_tx(Some(self.changes.clone())).await
    }

    async fn begin_log_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.write_tx(None).await
    }

    fn change_generation(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    async fn begin_read(&self) -> StoreResult<Box<dyn StoreTx>> {
        let tx = self.read.begin().await.map_err(map_err)?;
        Ok(Box::new(SqlTx::new(Conn::Tx(tx), self.dialect)))
    }

    async fn read(&self) -> StoreResult<Box<dyn StoreTx>> {
        // No BEGIN/COMMIT: two statements (and, on SQLite, two hand-offs to the
        // connection's worker thread) fewer per request.
        let conn = self.read.acquire().await.map_err(map_err)?;
        Ok(Box::new(SqlTx::new(Conn::Plain(conn), self.dialect)))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await.map_err(map_err)?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}
