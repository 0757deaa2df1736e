//! Group commit of SQLite write transactions.
//!
//! SQLite has one writer, and a durable commit costs an fsync (0.5–4 ms on
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

use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use std::sync::{Arc, OnceLock};
use tessera_core::ports::{StoreError, StoreResult};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::tx::map_err;

type Outcome = Arc<OnceLock<Result<(), String>>>;

const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The writer of one SQLite database.
#[derive(Clone)]
pub(crate) struct WriteGroups {
    pool: AnyPool,
    state: Arc<Mutex<GroupState>>,
}

pub(crate) struct GroupState {
    open: Option<OpenGroup>,
    /// A member went away without committing: its savepoint is undone by
    /// the next holder of the lock before anything else. (Members run one
    /// after another, so one savepoint name serves them all.)
    abandoned: bool,
}

struct OpenGroup {
    tx: Transaction<'static, Any>,
    outcome: Outcome,
}

/// One write transaction inside a group.
pub(crate) struct Member {
    /// Held from `begin` to `commit` (or drop): the group's connection.
    guard: Option<OwnedMutexGuard<GroupState>>,
    outcome: Outcome,
    state: Arc<Mutex<GroupState>>,
}

impl WriteGroups {
    pub(crate) fn new(pool: AnyPool) -> Self {
        let state = GroupState { open: None, abandoned: false };
        Self { pool, state: Arc::new(Mutex::new(state)) }
    }

    /// Starts a write transaction: joins the open group or opens one.
    pub(crate) async fn begin(&self) -> StoreResult<Member> {
        // As the pool's acquire timeout did: a writer stuck this long is
        // reported, not waited on forever.
        let mut guard = tokio::time::timeout(LOCK_TIMEOUT, self.state.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Unavailable("the database writer stayed busy for 10 s".into()))?;
        settle_abandoned(&mut guard).await;
        if guard.open.is_none() {
            // IMMEDIATE takes the write lock at BEGIN, so a transaction never
            // fails half-way on a lock upgrade when another process writes too.
            let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
            guard.open = Some(OpenGroup { tx, outcome: Arc::default() });
        }
        let open = guard.open.as_mut().expect("opened above");
        let outcome = open.outcome.clone();
        if let Err(e) = run(&mut open.tx, "SAVEPOINT member").await {
            fail_group(&mut guard, &e.to_string());
            return Err(map_err(e));
        }
        Ok(Member { guard: Some(guard), outcome, state: self.state.clone() })
    }
}

impl Member {
    pub(crate) fn connection(&self) -> &AnyConnection {
        let guard = self.guard.as_ref().expect("a member holds the lock until it commits");
        &guard.open.as_ref().expect("the group stays open while a member runs").tx
    }

    /// The group's connection, for this member's statements.
    pub(crate) fn connection_mut(&mut self) -> &mut AnyConnection {
        let guard = self.guard.as_mut().expect("a member holds the lock until it commits");
        &mut guard.open.as_mut().expect("the group stays open while a member runs").tx
    }

    /// Keeps this member's changes and returns once its group is durable.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let mut guard = self.guard.take().expect("a member holds the lock until it commits");
        let open = guard.open.as_mut().expect("the group stays open while a member runs");
        if let Err(e) = run(&mut open.tx, "RELEASE member").await {
            fail_group(&mut guard, &e.to_string());
            return Err(map_err(e));
        }
        drop(guard);
        let guard = self.state.clone().lock_owned().await;
        if self.outcome.get().is_none() {
            // Still open, so it is this member's group: commit it for everyone in it.
            settle_and_commit(guard).await;
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
            runtime.spawn(async move { settle_and_commit(state.lock_owned().await).await });
        }
    }
}

/// One statement on the group's connection.
async fn run(conn: &mut AnyConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

/// Undoes an abandoned member's savepoint. The flag is cleared only once
/// that worked: if this is cancelled half-way, the next holder tries again
/// (and a second undo of a savepoint already gone fails the group: safe).
async fn settle_abandoned(state: &mut GroupState) {
    if !state.abandoned {
        return;
    }
    let Some(open) = state.open.as_mut() else {
        state.abandoned = false;
        return;
    };
    let undone = match run(&mut open.tx, "ROLLBACK TO member").await {
        Ok(()) => run(&mut open.tx, "RELEASE member").await,
        Err(e) => Err(e),
    };
    state.abandoned = false;
    if let Err(e) = undone {
        fail_group(state, &e.to_string());
    }
}

/// Settles and commits the open group, if any, and tells its members how it
/// went, in a task of its own that keeps the lock until done: neither the
/// commit nor the outcome may be lost when the caller is cancelled.
async fn settle_and_commit(mut guard: OwnedMutexGuard<GroupState>) {
    let task = tokio::spawn(async move {
        settle_abandoned(&mut guard).await;
        let Some(OpenGroup { tx, outcome }) = guard.open.take() else { return };
        let result = tx.commit().await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "a group commit failed; every write in it fails");
        }
        let _ = outcome.set(result);
    });
    // A panic in the task leaves the outcome unset; the member reports that.
    let _ = task.await;
}

/// Ends the open group as failed (its transaction rolls back when dropped).
fn fail_group(state: &mut GroupState, error: &str) {
    if let Some(open) = state.open.take() {
        tracing::error!(error, "a write group broke; every write in it fails");
        let _ = open.outcome.set(Err(error.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::any::AnyPoolOptions;
    use sqlx::Row;

    use super::*;

    async fn groups() -> (WriteGroups, AnyPool, tempfile::TempDir) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("open");
        sqlx::query("CREATE TABLE t (v INTEGER PRIMARY KEY)").execute(&pool).await.expect("table");
        let reader = AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("open");
        (WriteGroups::new(pool), reader, dir)
    }

    async fn insert(member: &mut Member, v: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(v).execute(member.connection_mut()).await.map(|_| ())
    }

    async fn values(reader: &AnyPool) -> Vec<i64> {
        let rows = sqlx::query("SELECT v FROM t ORDER BY v").fetch_all(reader).await.expect("select");
        rows.iter().map(|r| r.try_get(0).expect("v")).collect()
    }

    /// Waits until nothing holds the writer (spawned settlements included).
    async fn idle(groups: &WriteGroups) {
        let guard =
            tokio::time::timeout(Duration::from_secs(5), groups.state.clone().lock_owned()).await.expect("idle");
        assert!(guard.open.is_none(), "no group is left open");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_members_commit_together_and_a_failed_or_dropped_one_undoes_only_itself() {
        let (groups, reader, _dir) = groups().await;
        let tasks: Vec<_> = (1..=40)
            .map(|v| {
                let groups = groups.clone();
                tokio::spawn(async move {
                    let mut m = groups.begin().await.expect("begin");
                    insert(&mut m, v).await.expect("insert");
                    match v % 10 {
                        // A statement fails inside the group: the member gives up.
                        3 => {
                            assert!(insert(&mut m, v).await.is_err(), "duplicate key");
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
        assert_eq!(values(&reader).await, kept);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_cancelled_at_any_point_of_their_commit_leave_no_open_group() {
        let (groups, reader, _dir) = groups().await;
        let mut asked = Vec::new();
        for v in 1..=60 {
            let mut m = groups.begin().await.expect("begin");
            insert(&mut m, v).await.expect("insert");
            // A second member waits to join the same group, so the cancelled one may be
            // the one that has to commit for both.
            let other = {
                let groups = groups.clone();
                tokio::spawn(async move {
                    let mut o = groups.begin().await.expect("begin");
                    insert(&mut o, 1000 + v).await.expect("insert");
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
        assert_eq!(values(&reader).await, asked);
    }
}
