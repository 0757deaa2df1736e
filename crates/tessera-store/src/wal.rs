//! When deferred SQLite commits reach the disk.
//!
//! A deferred commit (see `group`) has written its frames to the WAL, so the
//! OS holds them and a crash of this process loses nothing, but it did not
//! fsync, so a power loss could. Two things make them durable: the next
//! durable COMMIT, whose fsync of the same WAL covers every frame written
//! before it, and, when none comes, the flusher below, which fsyncs the WAL
//! [`FLUSH_DELAY`] after a deferred commit. So a power loss can drop only the
//! deferred commits of the last `FLUSH_DELAY` plus one or two fsyncs.
//!
//! The flusher fsyncs the `-wal` file through a descriptor of its own: on
//! Linux (as POSIX intends) `fdatasync` writes back the file's data whoever
//! wrote it, and SQLite's own connection is never touched from another
//! thread. A WAL that no longer exists has been checkpointed into the
//! database file, which the checkpoint itself synced.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How long after a deferred commit the flusher fsyncs the WAL, unless a
/// durable commit did it first. Short enough that a power loss drops at most
/// ~10 ms of read events; long enough that under load one fsync covers
/// hundreds of commits and a stream of writes (each fsyncing) leaves the
/// flusher nothing to do.
pub(crate) const FLUSH_DELAY: Duration = Duration::from_millis(10);

/// Which deferred commits are on disk.
pub(crate) struct WalSync {
    /// The database's `-wal` file.
    path: PathBuf,
    /// Deferred commits made so far.
    deferred: AtomicU64,
    /// How many of the first deferred commits are known to be on disk.
    synced: AtomicU64,
    /// Wakes the flusher after a deferred commit.
    wake: Notify,
}

impl WalSync {
    /// For the SQLite database at `db_path`.
    pub(crate) fn new(db_path: &Path) -> Self {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        Self { path: PathBuf::from(wal), deferred: AtomicU64::new(0), synced: AtomicU64::new(0), wake: Notify::new() }
    }

    /// Deferred commits made so far.
    pub(crate) fn deferred(&self) -> u64 {
        self.deferred.load(Ordering::Acquire)
    }

    /// The first `n` deferred commits are on disk.
    pub(crate) fn synced_up_to(&self, n: u64) {
        self.synced.fetch_max(n, Ordering::AcqRel);
    }

    /// A deferred commit has just written its frames.
    pub(crate) fn committed_deferred(&self) {
        self.deferred.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Whether every deferred commit so far is on disk.
    pub(crate) fn all_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire) >= self.deferred()
    }

    /// Makes every commit made before the call durable (one fsync of the
    /// WAL, none when nothing deferred is waiting). Blocks on the disk.
    pub(crate) fn sync_now(&self) -> std::io::Result<()> {
        let target = self.deferred();
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        match std::fs::File::open(&self.path) {
            Ok(file) => file.sync_data()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.synced_up_to(target);
        Ok(())
    }

    /// The flusher: after each deferred commit, waits [`FLUSH_DELAY`] and
    /// fsyncs the WAL unless a durable commit already has. Runs until the
    /// runtime stops.
    pub(crate) async fn flush_forever(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            tokio::time::sleep(FLUSH_DELAY).await;
            if self.all_synced() {
                continue;
            }
            let this = self.clone();
            let synced = tokio::task::spawn_blocking(move || this.sync_now()).await;
            let failed = match synced {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            // The read events stay committed (a crash of the process keeps
            // them) but are not known to be on disk: say so, and try again.
            tracing::error!(error = failed, "cannot fsync the SQLite WAL; read audit events may not be on disk yet");
            self.wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_path_is_the_database_path_with_a_suffix() {
        let w = WalSync::new(Path::new("/data/tessera.db"));
        assert_eq!(w.path, Path::new("/data/tessera.db-wal"));
    }

    #[test]
    fn counts_say_what_is_on_disk() {
        let dir = tempfile::tempdir().expect("dir");
        let w = WalSync::new(&dir.path().join("t.db"));
        assert!(w.all_synced());
        w.committed_deferred();
        w.committed_deferred();
        assert!(!w.all_synced());
        w.synced_up_to(1);
        assert!(!w.all_synced());
        // No WAL file: nothing to fsync, and nothing is waiting any more.
        w.sync_now().expect("sync");
        assert!(w.all_synced());
        // An older durable commit's count never moves it back.
        w.synced_up_to(1);
        assert!(w.all_synced());
    }
}
