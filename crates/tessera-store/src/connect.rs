//! Opening the store: pools, pragmas, migrations.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor};
use tessera_core::ports::{MetadataStore, StoreError, StoreResult, StoreTx};

use crate::group::{Durability, WriteGroups};
use crate::lite::{self, Readers};
use crate::tx::{map_err, AuditHead, Conn, Generations, SqlTx, CHANGES_CHANNEL, REVOKED_PAYLOAD};
use crate::wal::WalSync;

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

/// How soon the audit events of accesses (reads, denials, proxy and tool
/// calls) are on disk: `TESSERA_AUDIT_READS`. Changes are always on disk
/// before they are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAudit {
    /// Committed before the answer, so a crash of the process loses none;
    /// the commit does not wait for the disk. SQLite: `synchronous = NORMAL`
    /// for commits that hold only such events, fsynced by the next durable
    /// commit or within 10 ms by a flusher. PostgreSQL: `SET LOCAL
    /// synchronous_commit = off` (flushed within three `wal_writer_delay`s).
    Committed,
    /// On disk before the answer, as changes are.
    Durable,
}

/// The metadata store.
#[derive(Clone)]
pub struct SqlStore {
    dialect: Dialect,
    read_audit: ReadAudit,
    /// See [`MetadataStore::change_generation`] and
    /// [`MetadataStore::revocation_generation`].
    changes: Arc<Generations>,
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    Sqlite {
        /// Group commit of write transactions on the one write connection.
        groups: WriteGroups,
        readers: Readers,
        /// The audit head as our last write transaction left it.
        audit_head: AuditHead,
    },
    Postgres {
        pool: AnyPool,
        /// Where to listen for other replicas' writes.
        listen_url: String,
    },
}

/// Connects to `url` (`sqlite://path` or `postgres://...`) and brings the
/// schema up to date. Read audit starts [`ReadAudit::Durable`] (see
/// [`SqlStore::with_read_audit`]).
pub async fn connect(url: &str) -> StoreResult<SqlStore> {
    let dialect = dialect_of(url)?;
    let engine = match dialect {
        Dialect::Sqlite => {
            let path = migrate_sqlite(url).await?;
            let wal = Arc::new(WalSync::new(&path));
            Engine::Sqlite {
                groups: WriteGroups::new(lite::open(&path)?, wal)?,
                readers: Readers::new(path, sqlite_readers()),
                audit_head: AuditHead::default(),
            }
        }
        Dialect::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                // PostgreSQL's NOTICEs (`relation "_sqlx_migrations" already
                // exists, skipping` on every start) are not news to an operator.
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("SET client_min_messages = warning").await?;
                        Ok(())
                    })
                })
                .connect_with(any_options(url)?)
                .await
                .map_err(unavailable)?;
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .map_err(|e| StoreError::other(format!("migration failed: {e}")))?;
            Engine::Postgres { pool, listen_url: url.to_owned() }
        }
    };
    let changes = Arc::new(Generations::default());
    // SQLite has no other replica whose revocations could be missed.
    changes.listening.store(dialect == Dialect::Sqlite, Ordering::Release);
    Ok(SqlStore { dialect, read_audit: ReadAudit::Durable, changes, engine })
}

/// The dialect a `DATABASE_URL` names.
pub(crate) fn dialect_of(url: &str) -> StoreResult<Dialect> {
    if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Dialect::Postgres)
    } else {
        Err(StoreError::other("DATABASE_URL must start with sqlite:// or postgres://"))
    }
}

fn any_options(url: &str) -> StoreResult<AnyConnectOptions> {
    sqlx::any::install_default_drivers();
    Ok(AnyConnectOptions::from_str(url)
        .map_err(|e| StoreError::other(format!("DATABASE_URL is not valid: {e}")))?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2)))
}

/// The file a `sqlite://` URL names (in-memory databases are refused).
pub(crate) fn sqlite_path(url: &str) -> StoreResult<PathBuf> {
    let path = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::other(format!("DATABASE_URL is not valid: {e}")))?
        .get_filename()
        .to_owned();
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Err(StoreError::other("DATABASE_URL must name a SQLite file (in-memory is not supported)"));
    }
    Ok(path)
}

/// Creates the SQLite file (as the URL's mode says) and brings its schema up
/// to date with sqlx; from then on Tessera's own connections use it (see
/// `db`). Returns the file's path.
pub(crate) async fn migrate_sqlite(url: &str) -> StoreResult<PathBuf> {
    let path = sqlite_path(url)?;
    // Only where the URL asks for the file to be created (`mode=rwc`).
    if url.contains("mode=rwc") {
        create_private(&path)?;
    }
    let migrator = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                Ok(())
            })
        })
        .connect_with(any_options(url)?)
        .await
        .map_err(unavailable)?;
    let migrated = sqlx::migrate!("./migrations/sqlite").run(&migrator).await;
    migrator.close().await;
    migrated.map_err(|e| StoreError::other(format!("migration failed: {e}")))?;
    Ok(path)
}

/// Creates a new database file readable by its owner only (0600), like the
/// dev master key: SQLite gives its `-wal` and `-shm` files the database
/// file's permissions. An existing file (or a URL whose mode does not create
/// one) is left as it is; an empty file is a new SQLite database.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // No such folder, or not writable: sqlx reports it with the URL's context.
            Err(_) => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// How many SQLite read connections to open: two per core, 4 to 16. A read
/// runs on the task's own thread, so more connections than threads that can
/// read at once only hold memory.
fn sqlite_readers() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).saturating_mul(2).clamp(4, 16)
}

async fn listen(url: &str, changes: &Generations) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    // Whatever changed while nobody listened.
    changes.moved(true);
    changes.listening.store(true, Ordering::Release);
    loop {
        match listener.try_recv().await {
            Ok(Some(notice)) => changes.moved(notice.payload() == REVOKED_PAYLOAD),
            // The connection dropped: notices may be lost until the next
            // call reconnects, so nothing cached may be trusted meanwhile.
            Ok(None) => {
                changes.listening.store(false, Ordering::Release);
                changes.moved(true);
            }
            Err(e) => {
                changes.listening.store(false, Ordering::Release);
                return Err(e);
            }
        }
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::unavailable("the database cannot be reached").caused_by(e)
}

impl SqlStore {
    /// The dialect in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// How soon access audit events are on disk, from now on. On SQLite,
    /// [`ReadAudit::Committed`] starts the flusher (see `wal`), so this is
    /// called inside the runtime, once, before serving.
    pub fn with_read_audit(mut self, mode: ReadAudit) -> Self {
        if let (ReadAudit::Committed, Engine::Sqlite { groups, .. }) = (mode, &self.engine) {
            if self.read_audit != mode {
                tokio::spawn(groups.wal().clone().flush_forever());
            }
        }
        self.read_audit = mode;
        self
    }

    async fn write_tx(&self, changes: Option<Arc<Generations>>, sync: Durability) -> StoreResult<Box<dyn StoreTx>> {
        let (tx, audit_head) = match &self.engine {
            // Every SQLite write of this process runs in a group, one after
            // another: the remembered head is the one it left.
            Engine::Sqlite { groups, audit_head, .. } => {
                (Conn::LiteGroup(groups.begin(sync).await?), Some(audit_head.clone()))
            }
            Engine::Postgres { pool, .. } => {
                let mut tx = pool.begin().await.map_err(map_err)?;
                if sync == Durability::Deferred {
                    // PostgreSQL's asynchronous commit, for this transaction only.
                    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await.map_err(map_err)?;
                }
                (Conn::PgTx(tx), None)
            }
        };
        Ok(Box::new(SqlTx { tx, dialect: self.dialect, changes, revokes: false, audit_head }))
    }

    /// PostgreSQL: waits until the WAL is flushed past everything inserted
    /// before the call (asynchronous commits included); the WAL writer does
    /// that within three `wal_writer_delay`s.
    async fn wait_for_pg_flush(pool: &AnyPool) -> StoreResult<()> {
        let row = sqlx::query("SELECT pg_current_wal_insert_lsn()::text").fetch_one(pool).await.map_err(map_err)?;
        let lsn: String = sqlx::Row::try_get(&row, 0).map_err(map_err)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let row = sqlx::query(
                "SELECT CAST(CASE WHEN pg_current_wal_flush_lsn() >= $1::pg_lsn THEN 1 ELSE 0 END AS BIGINT)",
            )
            .bind(&lsn)
            .fetch_one(pool)
            .await
            .map_err(map_err)?;
            let flushed: i64 = sqlx::Row::try_get(&row, 0).map_err(map_err)?;
            if flushed == 1 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::unavailable("PostgreSQL did not flush its WAL within 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// On PostgreSQL, follows the other replicas' writes (each write commit
    /// notifies [`CHANGES_CHANNEL`]) so that views cached here are dropped
    /// within milliseconds of a change elsewhere. A lost or failed listener
    /// counts as a change, and until it is back the cache's time-to-live
    /// bounds how stale a view can be. For the server; one-shot commands
    /// need not call it. Runs until the runtime stops.
    pub fn follow_other_replicas(&self) {
        let Engine::Postgres { listen_url: url, .. } = &self.engine else { return };
        let url = url.clone();
        let changes = self.changes.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&url, &changes).await {
                    tracing::warn!(error = %e, "not listening for other replicas' writes; retrying in 1 s");
                }
                changes.listening.store(false, Ordering::Release);
                changes.moved(true);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

#[async_trait]
impl MetadataStore for SqlStore {
    async fn begin_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.write_tx(Some(self.changes.clone()), Durability::Full).await
    }

    async fn begin_log_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.write_tx(None, Durability::Full).await
    }

    async fn begin_access_log_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        let sync = match self.read_audit {
            ReadAudit::Committed => Durability::Deferred,
            ReadAudit::Durable => Durability::Full,
        };
        self.write_tx(None, sync).await
    }

    async fn sync_log(&self) -> StoreResult<()> {
        match &self.engine {
            Engine::Sqlite { groups, .. } => {
                let wal = groups.wal().clone();
                tokio::task::spawn_blocking(move || wal.sync_now())
                    .await
                    .map_err(|e| StoreError::other("the WAL sync task failed").caused_by(e))?
                    .map_err(|e| StoreError::unavailable("cannot fsync the SQLite WAL").caused_by(e))
            }
            Engine::Postgres { .. } if self.read_audit == ReadAudit::Durable => Ok(()),
            Engine::Postgres { pool, .. } => Self::wait_for_pg_flush(pool).await,
        }
    }

    fn change_generation(&self) -> u64 {
        self.changes.changes.load(Ordering::Acquire)
    }

    fn revocation_generation(&self) -> u64 {
        self.changes.revocations.load(Ordering::Acquire)
    }

    fn sees_revocations(&self) -> bool {
        self.changes.listening.load(Ordering::Acquire)
    }

    async fn begin_read(&self) -> StoreResult<Box<dyn StoreTx>> {
        let tx = match &self.engine {
            Engine::Sqlite { readers, .. } => {
                let mut reader = readers.acquire().await?;
                reader.begin()?;
                Conn::LiteRead(reader)
            }
            Engine::Postgres { pool, .. } => Conn::PgTx(pool.begin().await.map_err(map_err)?),
        };
        Ok(Box::new(SqlTx::new(tx, self.dialect)))
    }

    async fn read(&self) -> StoreResult<Box<dyn StoreTx>> {
        // No BEGIN/COMMIT: two statements fewer per request.
        let tx = match &self.engine {
            Engine::Sqlite { readers, .. } => Conn::LiteRead(readers.acquire().await?),
            Engine::Postgres { pool, .. } => Conn::PgPlain(pool.acquire().await.map_err(map_err)?),
        };
        Ok(Box::new(SqlTx::new(tx, self.dialect)))
    }

    async fn ping(&self) -> StoreResult<()> {
        match &self.engine {
            Engine::Sqlite { readers, .. } => crate::db::lite_batch(readers.acquire().await?.connection(), "SELECT 1"),
            Engine::Postgres { pool, .. } => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()).map_err(map_err),
        }
    }

    fn backend_name(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}
