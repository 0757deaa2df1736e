//! Group commit of SQLite write transactions.
//!
//! SQLite has one writer, and a durable commit costs an fsync (0.2–4 ms on
//! this kind of disk), so committing every request's transaction on its own
//! caps writes at one per fsync. Here the write transactions that arrive
//! while one is running share a single SQLite transaction: each runs inside
//! its own SAVEPOINT (a failed or abandoned one undoes only itself), and one
//! COMMIT makes the whole group durable before any member hears that its
//! commit succeeded. If that COMMIT fails, every member of the group fails.
//!
//! The order comes from Tokio's mutex, which is first-in first-out: a member
//! that has released its savepoint queues again to commit, behind everyone
//! who arrived meanwhile, so they join its group; whoever reaches the lock
//! first with the group still open commits it.
//!
//! Members run their statements in place (see `db`), and so does the COMMIT
//! (see `settle_and_commit`); waiting for another process's write lock is an
//! asynchronous retry, so no Tokio worker thread waits on another process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusqlite::Connection;
use tessera_core::ports::{StoreError, StoreResult};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::db::{is_busy, lite_batch, lite_err, off_the_runtime};

type Outcome = Arc<OnceLock<Result<(), String>>>;

/// How long a write waits for the writer: this process's, then SQLite's lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The writer of one SQLite database.
#[derive(Clone)]
pub(crate) struct WriteGroups {
    state: Arc<Mutex<GroupState>>,
}

pub(crate) struct GroupState {
    /// The one write connection; its busy timeout is zero (see `begin_immediate`).
    conn: Connection,
    /// The open group's outcome, shared by its members; none when no
    /// transaction is open.
    open: Option<Outcome>,
    /// A member went away without committing: its savepoint is undone by
    /// the next holder of the lock before anything else. (Members run one
    /// after another, so one savepoint name serves them all.)
    abandoned: bool,
}

/// One write transaction inside a group.
pub(crate) struct Member {
    /// Held from `begin` to `commit` (or drop): the group's connection.
    guard: Option<OwnedMutexGuard<GroupState>>,
    outcome: Outcome,
    state: Arc<Mutex<GroupState>>,
}

impl WriteGroups {
    /// Takes over the write connection.
    pub(crate) fn new(conn: Connection) -> StoreResult<Self> {
        conn.busy_timeout(Duration::ZERO).map_err(lite_err)?;
        let state = GroupState { conn, open: None, abandoned: false };
        Ok(Self { state: Arc::new(Mutex::new(state)) })
    }

    /// Starts a write transaction: joins the open group or opens one.
    pub(crate) async fn begin(&self) -> StoreResult<Member> {
        let started = tokio::time::Instant::now();
        // As a pool's acquire timeout would: a writer stuck this long is
        // reported, not waited on forever.
        let mut guard = tokio::time::timeout(LOCK_TIMEOUT, self.state.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Unavailable("the database writer stayed busy for 10 s".into()))?;
        settle_abandoned(&mut guard);
        if guard.open.is_none() {
            if !guard.conn.is_autocommit() {
                // Left open by a commit whose thread panicked: nothing in it was acknowledged.
                lite_batch(&guard.conn, "ROLLBACK")?;
            }
            begin_immediate(&mut guard, started + LOCK_TIMEOUT).await?;
            guard.open = Some(Outcome::default());
        }
        let outcome = guard.open.clone().expect("opened above");
        if let Err(e) = lite_batch(&guard.conn, "SAVEPOINT member") {
            fail_group(&mut guard, &e.to_string());
            return Err(e);
        }
        Ok(Member { guard: Some(guard), outcome, state: self.state.clone() })
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
                return Err(StoreError::Unavailable("another process held the database's write lock for 10 s".into()))
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
        if let Err(e) = lite_batch(&guard.conn, "RELEASE member") {
            fail_group(&mut guard, &e.to_string());
            return Err(e);
        }
        drop(guard);
        let guard = self.state.clone().lock_owned().await;
        if self.outcome.get().is_none() {
            // Still open, so it is this member's group: commit it for everyone in it.
            settle_and_commit(guard);
        }
        match self.outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StoreError::Unavailable(format!("the write could not be committed: {e}"))),
            None => Err(StoreError::Unavailable("the write's group commit did not finish".into())),
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
            guard.abandoned = true;
        } else if self.outcome.get().is_some() {
            return;
        }
        let state = self.state.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { settle_and_commit(state.lock_owned().await) });
        }
    }
}

/// Undoes an abandoned member's savepoint (a failure ends the group).
fn settle_abandoned(state: &mut GroupState) {
    if !std::mem::take(&mut state.abandoned) || state.open.is_none() {
        return;
    }
    if let Err(e) = lite_batch(&state.conn, "ROLLBACK TO member; RELEASE member") {
        fail_group(state, &e.to_string());
    }
}

/// Settles and commits the open group, if any, and tells its members how it
/// went, without an await: a caller cancelled before this point left the
/// group to the next holder of the lock, and from here on it finishes.
///
/// The COMMIT waits for the disk where it is (a hand-off to another thread
/// and back cost more than the fsync itself on this kind of machine), with
/// the worker's other tasks moved away meanwhile (`off_the_runtime`).
fn settle_and_commit(mut guard: OwnedMutexGuard<GroupState>) {
    settle_abandoned(&mut guard);
    let Some(outcome) = guard.open.take() else { return };
    let result = off_the_runtime(|| commit(&guard.conn));
    if let Err(e) = &result {
        tracing::error!(error = %e, "a group commit failed; every write in it fails");
    }
    let _ = outcome.set(result);
}

/// COMMIT, waiting out another connection's brief hold (a checkpoint) for up
/// to 10 s; on failure the transaction is rolled back.
fn commit(conn: &Connection) -> Result<(), String> {
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
                return Err(e.to_string());
            }
        }
    }
}

/// Ends the open group as failed: its transaction is rolled back.
fn fail_group(state: &mut GroupState, error: &str) {
    if let Some(outcome) = state.open.take() {
        tracing::error!(error, "a write group broke; every write in it fails");
        if !state.conn.is_autocommit() {
            let _ = state.conn.execute_batch("ROLLBACK");
        }
        let _ = outcome.set(Err(error.to_owned()));
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
        (WriteGroups::new(conn).expect("groups"), path, dir)
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
                    let mut m = groups.begin().await.expect("begin");
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
    async fn members_cancelled_at_any_point_of_their_commit_leave_no_open_group() {
        let (groups, path, _dir) = groups();
        let mut asked = Vec::new();
        for v in 1..=60 {
            let mut m = groups.begin().await.expect("begin");
            insert(&mut m, v).expect("insert");
            // A second member waits to join the same group, so the cancelled one may be
            // the one that has to commit for both.
            let other = {
                let groups = groups.clone();
                tokio::spawn(async move {
                    let mut o = groups.begin().await.expect("begin");
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
        let mut m = groups.begin().await.expect("begin after the other writer commits");
        insert(&mut m, 2).expect("insert");
        m.commit().await.expect("commit");
        release.await.expect("release");
        assert_eq!(values(&path), vec![1, 2]);
    }
}
