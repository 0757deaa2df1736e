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
        let mut guard = self.state.clone().lock_owned().await;
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
        let mut guard = self.state.clone().lock_owned().await;
        if self.outcome.get().is_none() {
            // Still open, so it is this member's group: commit it for everyone in it.
            settle_abandoned(&mut guard).await;
            commit_open(&mut guard).await;
        }
        drop(guard);
        match self.outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StoreError::Unavailable(format!("the write could not be committed: {e}"))),
            None => unreachable!("commit_open always decides the outcome"),
        }
    }
}

impl Drop for Member {
    /// Dropped without commit: its savepoint is undone (by whoever locks next;
    /// a task does it now so that an idle group never keeps the write lock).
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else { return };
        guard.abandoned = true;
        drop(guard);
        let state = self.state.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut guard = state.lock_owned().await;
                settle_abandoned(&mut guard).await;
                commit_open(&mut guard).await;
            });
        }
    }
}

/// One statement on the group's connection.
async fn run(conn: &mut AnyConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

async fn settle_abandoned(state: &mut GroupState) {
    if !std::mem::take(&mut state.abandoned) {
        return;
    }
    let Some(open) = state.open.as_mut() else { return };
    let undone = match run(&mut open.tx, "ROLLBACK TO member").await {
        Ok(()) => run(&mut open.tx, "RELEASE member").await,
        Err(e) => Err(e),
    };
    if let Err(e) = undone {
        fail_group(state, &e.to_string());
    }
}

/// Commits the open group, if any, and tells its members how it went.
async fn commit_open(state: &mut GroupState) {
    let Some(open) = state.open.take() else { return };
    let result = open.tx.commit().await.map_err(|e| e.to_string());
    if let Err(e) = &result {
        tracing::error!(error = %e, "a group commit failed; every write in it fails");
    }
    let _ = open.outcome.set(result);
}

/// Ends the open group as failed (its transaction rolls back when dropped).
fn fail_group(state: &mut GroupState, error: &str) {
    if let Some(open) = state.open.take() {
        tracing::error!(error, "a write group broke; every write in it fails");
        let _ = open.outcome.set(Err(error.to_owned()));
    }
}
