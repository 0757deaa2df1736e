//! SQLite connections: how they are opened, and the pool of readers.
//!
//! Statements run in place on the caller's thread (see `db`). In WAL mode a
//! reader never waits for the writer, so a read statement takes only its own
//! few µs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tessera_core::ports::{StoreError, StoreResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::{lite_batch, lite_err};

/// Prepared statements kept per connection: every statement the store has,
/// with room to spare (an uncached one is compiled again, ~10-50 µs).
const STATEMENT_CACHE: usize = 256;

/// How long a read waits out another process's exclusive lock (rare in WAL).
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `path` (created beforehand by the migrations) with the pragmas
/// every connection needs. Its busy timeout is the caller's to set: readers
/// wait (`Readers`), the writer never does (`WriteGroups`).
pub(crate) fn open(path: &Path) -> StoreResult<Connection> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| StoreError::unavailable(format!("cannot open the SQLite database {}: {e}", path.display())))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // WAL lets readers run beside the writer; synchronous=FULL makes a commit
    // durable before we answer; foreign keys enforce cascades; deleted rows
    // (old ciphertext, backfilled plain values) are zeroed on disk. Temporary
    // storage in memory: a group commit's statement journal (old page images)
    // would otherwise be a new file in /var/tmp for each group.
    lite_batch(
        &conn,
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

/// A bounded pool of read connections.
#[derive(Clone)]
pub(crate) struct Readers {
    inner: Arc<ReadersInner>,
}

struct ReadersInner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A read connection, back to its pool when dropped. Inside a transaction
/// (`begin`) until `finish`; dropped inside one, it is rolled back first.
pub(crate) struct Reader {
    conn: Option<Connection>,
    in_tx: bool,
    pool: Arc<ReadersInner>,
    _permit: OwnedSemaphorePermit,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max: usize) -> Self {
        let inner = ReadersInner { path, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(max)) };
        Self { inner: Arc::new(inner) }
    }

    /// A connection; waits while `max` are in use.
    pub(crate) async fn acquire(&self) -> StoreResult<Reader> {
        let permit = tokio::time::timeout(Duration::from_secs(10), self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::unavailable("every SQLite read connection stayed busy for 10 s"))?
            .map_err(|_| StoreError::unavailable("the store is closed"))?;
        let idle = self.inner.idle.lock().expect("reader pool lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = open(&self.inner.path)?;
                conn.busy_timeout(READ_BUSY_TIMEOUT).map_err(lite_err)?;
                conn
            }
        };
        Ok(Reader { conn: Some(conn), in_tx: false, pool: self.inner.clone(), _permit: permit })
    }
}

impl Reader {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a reader holds its connection until dropped")
    }

    /// Starts a read transaction: every later statement sees one snapshot.
    pub(crate) fn begin(&mut self) -> StoreResult<()> {
        lite_batch(self.connection(), "BEGIN")?;
        self.in_tx = true;
        Ok(())
    }

    /// Ends the read transaction, if any.
    pub(crate) fn finish(&mut self) -> StoreResult<()> {
        if std::mem::take(&mut self.in_tx) {
            lite_batch(self.connection(), "COMMIT")?;
        }
        Ok(())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // A connection left inside a transaction is not pooled: it would pin an
        // old snapshot (and the WAL with it). Closing it is the rollback.
        if self.in_tx && lite_batch(&conn, "ROLLBACK").is_err() {
            return;
        }
        self.pool.idle.lock().expect("reader pool lock").push(conn);
    }
}
