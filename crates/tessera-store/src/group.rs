//! Group commit of SQLite write transactions.
//!
//! SQLite has one writer, and a durable commit costs an fsync (0.2–4 ms on
//! this kind of disk), so committing every request's transaction on its own
//! caps writes at one per fsync. Here the write transactions that arrive
//! while one is running share a single SQLite transaction: each runs inside
//! its own SAVEPOINT (a failed or abandoned one undoes only itself), and one
//! COMMIT makes the whole group durable before any member hears that its
//! commit succeeded. If that COMMIT fails, every member of the group fails.
//! The member that opens a group needs no savepoint: while it runs, the
//! transaction holds its changes only, so undoing it is a ROLLBACK of the
//! group. That spares the audit committer (which opens most groups under a
//! read load) a savepoint and the copy of every page it changes.
//!
//! The order comes from Tokio's mutex, which is first-in first-out: a member
//! that has released its savepoint queues again to commit, behind everyone
//! who arrived meanwhile, so they join its group; whoever reaches the lock
//! first with the group still open commits it.
//!
//! Members run their statements in place (see `db`), and so does the COMMIT
//! (see `settle_and_commit`); waiting for another process's write lock is an
//! asynchronous retry, so no Tokio worker thread waits on another process.
//!
//! A group is durable (`PRAGMA synchronous = FULL`: its COMMIT fsyncs the
//! WAL) unless every member is a deferred one (the audit events of reads,
//! see [`Durability::Deferred`]): such a group commits with `synchronous = NORMAL`,
//! which writes its WAL frames (so a crash of this process loses nothing)
//! without waiting for the disk. The setting is per connection and may only
//! change between transactions, so a group's kind is its opener's, and a
//! durable write that finds a deferred group open commits that group first
//! (quick: no fsync) and opens its own. The next durable COMMIT's fsync
//! makes the deferred frames before it durable too; when none comes, the
//! `wal` module's flusher fsyncs the WAL shortly after.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusqlite::Connection;
use tessera_core::ports::{StoreError, StoreResult};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::db::{is_busy, lite_batch, lite_err, off_the_runtime};
use crate::wal::WalSync;

type Outcome = Arc<OnceLock<Result<(), StoreError>>>;

/// How long a write waits for the writer: this process's, then SQLite's lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// When a write's commit may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Once it is on disk (fsync): every change.
    Full,
    /// Once it is committed (in the WAL, in the OS's cache): the audit
    /// events of accesses; on disk by the next durable commit or the
    /// flusher, whichever comes first.
    Deferred,
}

/// The writer of one SQLite database.
#[derive(Clone)]
pub(crate) struct WriteGroups {
    state: Arc<Mutex<GroupState>>,
    wal: Arc<WalSync>,
}

pub(crate) struct GroupState {
    /// The one write connection; its busy timeout is zero (see `begin_immediate`).
    conn: Connection,
    /// The open group's outcome, shared by its members; none when no
    /// transaction is open.
    open: Option<Outcome>,
    /// How the open group commits (meaningless while none is open).
    open_sync: Durability,
    /// The connection's `PRAGMA synchronous` now (FULL when opened, see `lite::open`).
    level: Durability,
    /// Which deferred commits are on disk (shared with the flusher).
    wal: Arc<WalSync>,
    /// A member went away without committing: its changes are undone by
    /// the next holder of the lock before anything else. (Members run one
    /// after another, so one savepoint name serves them all.)
    abandoned: Option<Undo>,
}

/// How a member's changes are undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Undo {
    /// It joined an open group: back to its savepoint.
    Savepoint,
    /// It opened the group, alone in it while it runs: the whole transaction.
    Group,
}

/// One write transaction inside a group.
pub(crate) struct Member {
    /// Held from `begin` to `commit` (or drop): the group's connection.
    guard: Option<OwnedMutexGuard<GroupState>>,
    outcome: Outcome,
    state: Arc<Mutex<GroupState>>,
    undo: Undo,
}

impl WriteGroups {
    /// Takes over the write connection (opened by `lite::open`, so at
    /// `synchronous = FULL`) of the database whose WAL `wal` syncs.
    pub(crate) fn new(conn: Connection, wal: Arc<WalSync>) -> StoreResult<Self> {
        conn.busy_timeout(Duration::ZERO).map_err(lite_err)?;
        let state = GroupState {
            conn,
            open: None,
            open_sync: Durability::Full,
            level: Durability::Full,
            wal: wal.clone(),
            abandoned: None,
        };
        Ok(Self { state: Arc::new(Mutex::new(state)), wal })
    }

    /// Which deferred commits are on disk.
    pub(crate) fn wal(&self) -> &Arc<WalSync> {
        &self.wal
    }

    /// Starts a write transaction: joins the open group or opens one.
    pub(crate) async fn begin(&self, sync: Durability) -> StoreResult<Member> {
        let started = tokio::time::Instant::now();
        // As a pool's acquire timeout would: a writer stuck this long is
        // reported, not waited on forever.
        let mut guard = tokio::time::timeout(LOCK_TIMEOUT, self.state.clone().lock_owned())
            .await
            .map_err(|_| StoreError::unavailable("the database writer stayed busy for 10 s"))?;
        settle_abandoned(&mut guard);
        if sync == Durability::Full && guard.open.is_some() && guard.open_sync == Durability::Deferred {
            // This write must not be answered before the disk has it, and the
            // open group's COMMIT would not wait for the disk: that group
            // commits now (no fsync, so at once) and this write opens its own.
            settle_and_commit(&mut guard);
        }
        let undo = if guard.open.is_some() { Undo::Savepoint } else { Undo::Group };
        if guard.open.is_none() {
            if !guard.conn.is_autocommit() {
                // Left open by a commit whose thread panicked: nothing in it was acknowledged.
                lite_batch(&guard.conn, "ROLLBACK")?;
            }
            if guard.level != sync {
                // Only between transactions: SQLite refuses to change it inside one.
                let pragma = match sync {
                    Durability::Full => "PRAGMA synchronous = FULL",
                    Durability::Deferred => "PRAGMA synchronous = NORMAL",
                };
                lite_batch(&guard.conn, pragma)?;
                guard.level = sync;
            }
            begin_immediate(&mut guard, started + LOCK_TIMEOUT).await?;
            guard.open = Some(Outcome::default());
            guard.open_sync = sync;
        }
        let outcome = guard.open.clone().expect("opened above");
        if undo == Undo::Savepoint {
            if let Err(e) = lite_batch(&guard.conn, "SAVEPOINT member") {
                fail_group(&mut guard, &e);
                return Err(e);
            }
        }
        Ok(Member { guard: Some(guard), outcome, state: self.state.clone(), undo })
    }
}

/// `BEGIN IMMEDIATE`, which takes SQLite's write lock at once, so a
/// transaction never fails half-way on a lock upgrade. Another process (an
/// offline command) may hold the lock: then it is tried again after a pause,
/// without holding up a thread, until `deadline`.
async fn begin_immediate(state: &mut GroupState, deadline: tokio::time::Instant) -> StoreResult<()> {
    let mut pause = Duration::from_millis(1);
    loop {
        match state.conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => return Ok(()),
            Err(e) if is_busy(&e) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) if is_busy(&e) => {
                return Err(StoreError::unavailable("another process held the database's write lock for 10 s"))
            }
            Err(e) => return Err(lite_err(e)),
        }
    }
}

impl Member {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.guard.as_mut().expect("a member holds the lock until it commits").conn
    }

    /// Keeps this member's changes and returns once its group is durable.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let mut guard = self.guard.take().expect("a member holds the lock until it commits");
        if self.undo == Undo::Savepoint {
            if let Err(e) = lite_batch(&guard.conn, "RELEASE member") {
                fail_group(&mut guard, &e);
                return Err(e);
            }
        }
        drop(guard);
        let mut guard = self.state.clone().lock_owned().await;
        if self.outcome.get().is_none() {
            // Still open, so it is this member's group: commit it for everyone in it.
            settle_and_commit(&mut guard);
        }
        match self.outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StoreError::unavailable("the write could not be committed").caused_by(e.clone())),
            None => Err(StoreError::unavailable("the write's group commit did not finish")),
        }
    }
}

impl Drop for Member {
    /// Dropped before its group's outcome is known: never committed (its
    /// savepoint must be undone), or cancelled while waiting to commit (a
    /// client that went away). A task then settles the group, so that no
    /// open group is left holding SQLite's write lock.
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            guard.abandoned = Some(self.undo);
        } else if self.outcome.get().is_some() {
            return;
        }
        let state = self.state.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { settle_and_commit(&mut *state.lock_owned().await) });
        }
    }
}

/// Undoes an abandoned member's changes (a failure ends the group).
fn settle_abandoned(state: &mut GroupState) {
    let Some(undo) = state.abandoned.take() else { return };
    if state.open.is_none() {
        return;
    }
    match undo {
        Undo::Savepoint => {
            if let Err(e) = lite_batch(&state.conn, "ROLLBACK TO member; RELEASE member") {
                fail_group(state, &e);
            }
        }
        // Nobody else is in the group: it ends with nothing in it.
        Undo::Group => {
            let outcome = state.open.take().expect("checked above");
            let result = match lite_batch(&state.conn, "ROLLBACK") {
                Ok(()) => Err(StoreError::other("the write was abandoned before it committed")),
                Err(e) => Err(e),
            };
            let _ = outcome.set(result);
        }
    }
}

/// Settles and commits the open group, if any, and tells its members how it
/// went, without an await: a caller cancelled before this point left the
/// group to the next holder of the lock, and from here on it finishes.
///
/// A durable COMMIT waits for the disk where it is (a hand-off to another
/// thread and back cost more than the fsync itself on this kind of
/// machine), with the worker's other tasks moved away meanwhile
/// (`off_the_runtime`). A deferred one only writes to the OS's cache, which
/// takes microseconds, so it runs as any statement does.
fn settle_and_commit(state: &mut GroupState) {
    settle_abandoned(state);
    let Some(outcome) = state.open.take() else { return };
    let result = match state.open_sync {
        Durability::Full => {
            // Every deferred commit so far has written its frames before this
            // COMMIT's fsync of the same WAL: that fsync makes them durable too.
            let deferred = state.wal.deferred();
            let result = off_the_runtime(|| commit(&state.conn));
            if result.is_ok() {
                state.wal.synced_up_to(deferred);
            }
            result
        }
        Durability::Deferred => {
            let result = commit(&state.conn);
            if result.is_ok() {
                state.wal.committed_deferred();
            }
            result
        }
    };
    if let Err(e) = &result {
        tracing::error!(error = %e.chain(), "a group commit failed; every write in it fails");
    }
    let _ = outcome.set(result);
}

/// COMMIT, waiting out another connection's brief hold (a checkpoint) for up
/// to 10 s; on failure the transaction is rolled back.
fn commit(conn: &Connection) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + LOCK_TIMEOUT;
    loop {
        match conn.execute_batch("COMMIT") {
            Ok(()) => return Ok(()),
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                return Err(lite_err(e));
            }
        }
    }
}

/// Ends the open group as failed: its transaction is rolled back.
fn fail_group(state: &mut GroupState, error: &StoreError) {
    if let Some(outcome) = state.open.take() {
        tracing::error!(error = %error.chain(), "a write group broke; every write in it fails");
        if !state.conn.is_autocommit() {
            let _ = state.conn.execute_batch("ROLLBACK");
        }
        let _ = outcome.set(Err(error.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn groups() -> (WriteGroups, std::path::PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER PRIMARY KEY)").expect("table");
        let wal = Arc::new(WalSync::new(&path));
        (WriteGroups::new(conn, wal).expect("groups"), path, dir)
    }

    fn insert(member: &mut Member, v: i64) -> rusqlite::Result<usize> {
        member.connection().execute("INSERT INTO t (v) VALUES (?1)", [v])
    }

    fn values(path: &std::path::Path) -> Vec<i64> {
        let reader = Connection::open(path).expect("open");
        let mut st = reader.prepare("SELECT v FROM t ORDER BY v").expect("select");
        let rows = st.query_map([], |r| r.get(0)).expect("rows");
        rows.map(|r| r.expect("v")).collect()
    }

    /// Waits until nothing holds the writer (spawned settlements included).
    async fn idle(groups: &WriteGroups) {
        let guard =
            tokio::time::timeout(Duration::from_secs(5), groups.state.clone().lock_owned()).await.expect("idle");
        assert!(guard.open.is_none(), "no group is left open");
        assert!(guard.conn.is_autocommit(), "no transaction is left open");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_members_commit_together_and_a_failed_or_dropped_one_undoes_only_itself() {
        let (groups, path, _dir) = groups();
        let tasks: Vec<_> = (1..=40)
            .map(|v| {
                let groups = groups.clone();
                tokio::spawn(async move {
                    // Changes and read events mixed: either kind of group may form.
                    let sync = if v % 2 == 0 { Durability::Full } else { Durability::Deferred };
                    let mut m = groups.begin(sync).await.expect("begin");
                    insert(&mut m, v).expect("insert");
                    // Let others queue behind this member, so groups form.
                    tokio::task::yield_now().await;
                    match v % 10 {
                        // A statement fails inside the group: the member gives up.
                        3 => {
                            assert!(insert(&mut m, v).is_err(), "duplicate key");
                            drop(m);
                            false
                        }
                        // Dropped without commit (an error path returning early).
                        7 => false,
                        _ => {
                            m.commit().await.expect("commit");
                            true
                        }
                    }
                })
            })
            .collect();
        let mut kept = Vec::new();
        for (v, t) in (1..=40).zip(tasks) {
            if t.await.expect("task") {
                kept.push(v);
            }
        }
        idle(&groups).await;
        assert_eq!(values(&path), kept);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_opener_dropped_before_committing_leaves_nothing_and_the_next_group_works() {
        let (groups, path, _dir) = groups();
        let mut opener = groups.begin(Durability::Full).await.expect("begin");
        insert(&mut opener, 1).expect("insert");
        drop(opener);
        let mut next = groups.begin(Durability::Full).await.expect("begin");
        insert(&mut next, 2).expect("insert");
        next.commit().await.expect("commit");
        idle(&groups).await;
        assert_eq!(values(&path), vec![2]);
        // An opener's statement that fails undoes only itself, as in a savepoint.
        let mut opener = groups.begin(Durability::Full).await.expect("begin");
        insert(&mut opener, 3).expect("insert");
        assert!(insert(&mut opener, 2).is_err(), "a duplicate key is refused");
        opener.commit().await.expect("commit");
        idle(&groups).await;
        assert_eq!(values(&path), vec![2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_cancelled_at_any_point_of_their_commit_leave_no_open_group() {
        let (groups, path, _dir) = groups();
        let mut asked = Vec::new();
        for v in 1..=60 {
            let mut m = groups.begin(Durability::Full).await.expect("begin");
            insert(&mut m, v).expect("insert");
            // A second member waits to join the same group, so the cancelled one may be
            // the one that has to commit for both.
            let other = {
                let groups = groups.clone();
                tokio::spawn(async move {
                    let sync = if v % 3 == 0 { Durability::Deferred } else { Durability::Full };
                    let mut o = groups.begin(sync).await.expect("begin");
                    insert(&mut o, 1000 + v).expect("insert");
                    o.commit().await
                })
            };
            // Cancelled after a varying time: during RELEASE, the wait for the lock or COMMIT.
            let cancel_after = Duration::from_micros(u64::try_from(v % 12).expect("small") * 40);
            let _ = tokio::time::timeout(cancel_after, m.commit()).await;
            other.await.expect("task").expect("the other member's commit");
            asked.extend([v, 1000 + v]);
        }
        idle(&groups).await;
        asked.sort_unstable();
        // Every member asked to commit, so every write is there, and the writer is free.
        assert_eq!(values(&path), asked);
    }

    #[tokio::test]
    async fn a_write_lock_held_by_another_process_is_waited_for_without_blocking() {
        let (groups, path, _dir) = groups();
        let other = Connection::open(&path).expect("open");
        other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (1)").expect("other writer");
        // On a current-thread runtime: were the wait blocking, the release below would never run.
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            other.execute_batch("COMMIT").expect("commit");
        });
        let mut m = groups.begin(Durability::Full).await.expect("begin after the other writer commits");
        insert(&mut m, 2).expect("insert");
        m.commit().await.expect("commit");
        release.await.expect("release");
        assert_eq!(values(&path), vec![1, 2]);
    }

    fn synchronous(member: &mut Member) -> i64 {
        member.connection().query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deferred_group_commits_without_fsync_and_the_next_durable_commit_syncs_it() {
        let (groups, path, _dir) = groups();
        let mut m = groups.begin(Durability::Deferred).await.expect("begin");
        assert_eq!(synchronous(&mut m), 1, "NORMAL: the COMMIT writes the WAL without fsync");
        insert(&mut m, 1).expect("insert");
        m.commit().await.expect("commit");
        // Committed: another connection sees it at once (and a crash would keep it).
        assert_eq!(values(&path), vec![1]);
        assert!(!groups.wal().all_synced(), "not yet known to be on disk");

        // A durable write that finds a deferred group open does not join it:
        // that group commits first, and the write's own group fsyncs.
        let mut deferred = groups.begin(Durability::Deferred).await.expect("begin");
        insert(&mut deferred, 2).expect("insert");
        let durable = {
            let groups = groups.clone();
            tokio::spawn(async move {
                let mut d = groups.begin(Durability::Full).await.expect("begin");
                assert_eq!(synchronous(&mut d), 2, "FULL: the COMMIT fsyncs");
                insert(&mut d, 3).expect("insert");
                d.commit().await
            })
        };
        // Let the durable writer queue for the lock before this member releases it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        deferred.commit().await.expect("the deferred group committed");
        durable.await.expect("task").expect("durable commit");
        assert_eq!(groups.wal().deferred(), 2, "two deferred groups committed");
        assert!(groups.wal().all_synced(), "the durable COMMIT's fsync covered the deferred frames before it");
        idle(&groups).await;
        assert_eq!(values(&path), vec![1, 2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_flusher_syncs_deferred_commits_when_no_durable_commit_does() {
        let (groups, _path, _dir) = groups();
        tokio::spawn(groups.wal().clone().flush_forever());
        for v in 1..=5 {
            let mut m = groups.begin(Durability::Deferred).await.expect("begin");
            insert(&mut m, v).expect("insert");
            m.commit().await.expect("commit");
            let committed = std::time::Instant::now();
            // 10 ms and an fsync on a quiet machine; the bound here leaves room for a loaded one.
            while !groups.wal().all_synced() {
                assert!(committed.elapsed() < Duration::from_secs(2), "no fsync 2 s after a deferred commit");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
