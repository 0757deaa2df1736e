//! One statement type for both databases: parameters and rows behave the
//! same whether a statement runs on PostgreSQL (sqlx, asynchronous) or on
//! SQLite (rusqlite, in place on the calling thread).
//!
//! Why SQLite does not go through sqlx: sqlx runs each SQLite connection on
//! a thread of its own and hands every statement over to it and back, about
//! 75 µs per statement on this kind of machine, where the statement itself
//! takes a few µs. A secret write runs about six statements while it holds
//! SQLite's one write lock, so those hand-offs, not the work, bounded writes
//! and audited reads. Only what can wait long leaves the calling thread: a
//! COMMIT's fsync, and waiting for another process's write lock (`group`).

use std::borrow::Cow;
use std::sync::Arc;

use rusqlite::types::{FromSql, ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Row as _};
use tessera_core::ports::{StoreError, StoreResult};

use crate::tx::{map_err, Conn, SqlTx};

/// A bound parameter: the store binds integers and text only (times are
/// microseconds, JSON is text, flags are 0 or 1).
pub(crate) enum Arg {
    Null(Kind),
    Int(i64),
    Text(String),
}

/// The type of a NULL parameter (PostgreSQL wants one).
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Int,
    Text,
}

/// A Rust value a statement can bind.
pub(crate) trait IntoArg {
    /// The type its NULL binds as.
    const KIND: Kind;
    fn into_arg(self) -> Arg;
}

macro_rules! into_arg {
    ($t:ty, $kind:ident, $v:ident => $arg:expr) => {
        impl IntoArg for $t {
            const KIND: Kind = Kind::$kind;
            fn into_arg(self) -> Arg {
                let $v = self;
                $arg
            }
        }
    };
}
into_arg!(i64, Int, v => Arg::Int(v));
into_arg!(String, Text, v => Arg::Text(v));
into_arg!(&str, Text, v => Arg::Text(v.to_owned()));
into_arg!(&String, Text, v => Arg::Text(v.clone()));

impl<T: IntoArg> IntoArg for Option<T> {
    const KIND: Kind = T::KIND;
    fn into_arg(self) -> Arg {
        self.map_or(Arg::Null(T::KIND), IntoArg::into_arg)
    }
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null(_) => ValueRef::Null,
            Self::Int(v) => ValueRef::Integer(*v),
            Self::Text(v) => ValueRef::Text(v.as_bytes()),
        }))
    }
}

/// A statement and its parameters.
pub(crate) struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Arg>,
}

/// A statement: `$1`, `$2`, ... (or anonymous `?`, bound in order) for parameters.
pub(crate) fn query<'q>(sql: impl Into<Cow<'q, str>>) -> Query<'q> {
    Query { sql: sql.into(), args: Vec::new() }
}

/// What an executed statement changed.
pub(crate) struct Done(u64);

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A result row, read by column name.
pub(crate) enum Row {
    Any(AnyRow),
    Lite(LiteRow),
}

/// A SQLite row, copied out of its statement.
pub(crate) struct LiteRow {
    names: Arc<[String]>,
    values: Vec<Value>,
}

/// A type a column can be read as, on either database.
pub(crate) trait Col: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql {}
impl<T> Col for T where T: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> + FromSql {}

/// A column by name or by position.
pub(crate) trait At: sqlx::ColumnIndex<AnyRow> + std::fmt::Display + Copy {
    fn position(self, names: &[String]) -> Option<usize>;
}

impl At for &str {
    fn position(self, names: &[String]) -> Option<usize> {
        names.iter().position(|n| n == self)
    }
}

impl At for usize {
    fn position(self, names: &[String]) -> Option<usize> {
        (self < names.len()).then_some(self)
    }
}

impl Row {
    /// The column `at` (a name or a position) as a `T`.
    pub(crate) fn get<T: Col>(&self, at: impl At) -> StoreResult<T> {
        match self {
            Self::Any(row) => row.try_get(at).map_err(map_err),
            Self::Lite(row) => {
                let i = at
                    .position(&row.names)
                    .ok_or_else(|| StoreError::other(format!("no column {at} in the result")))?;
                T::column_result(ValueRef::from(&row.values[i]))
                    .map_err(|e| StoreError::other(format!("column {at}: {e}")))
            }
        }
    }
}

/// Where a statement runs.
enum Target<'c> {
    Lite(&'c mut Connection),
    Pg(&'c mut AnyConnection),
}

fn target(tx: &mut SqlTx) -> Target<'_> {
    match &mut tx.tx {
        Conn::LiteGroup(member) => Target::Lite(member.connection()),
        Conn::LiteRead(reader) => Target::Lite(reader.connection()),
        Conn::PgTx(t) => Target::Pg(t),
        Conn::PgPlain(c) => Target::Pg(c),
    }
}

impl<'q> Query<'q> {
    /// Adds the next parameter.
    pub(crate) fn bind(mut self, v: impl IntoArg) -> Self {
        self.args.push(v.into_arg());
        self
    }

    /// Runs the statement; any rows it returns are read and dropped.
    pub(crate) async fn execute(self, tx: &mut SqlTx) -> StoreResult<Done> {
        match target(tx) {
            Target::Lite(conn) => timed(&self.sql, || lite_execute(conn, &self)).map(Done).map_err(lite_err),
            Target::Pg(conn) => self.sqlx().execute(conn).await.map(|r| Done(r.rows_affected())).map_err(map_err),
        }
    }

    /// The first row; none is an error.
    pub(crate) async fn fetch_one(self, tx: &mut SqlTx) -> StoreResult<Row> {
        self.fetch_optional(tx).await?.ok_or_else(|| StoreError::other("the statement returned no row"))
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional(self, tx: &mut SqlTx) -> StoreResult<Option<Row>> {
        match target(tx) {
            Target::Lite(conn) => {
                timed(&self.sql, || lite_fetch(conn, &self, Some(1))).map(|mut rows| rows.pop()).map_err(lite_err)
            }
            Target::Pg(conn) => Ok(self.sqlx().fetch_optional(conn).await.map_err(map_err)?.map(Row::Any)),
        }
    }

    /// Every row. On SQLite the rows may be many (a list, a page of the audit
    /// log), so this worker's other tasks move to another thread meanwhile.
    pub(crate) async fn fetch_all(self, tx: &mut SqlTx) -> StoreResult<Vec<Row>> {
        match target(tx) {
            Target::Lite(conn) => {
                off_the_runtime(|| timed(&self.sql, || lite_fetch(conn, &self, None))).map_err(lite_err)
            }
            Target::Pg(conn) => {
                Ok(self.sqlx().fetch_all(conn).await.map_err(map_err)?.into_iter().map(Row::Any).collect())
            }
        }
    }

    fn sqlx(&self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        self.args.iter().fold(sqlx::query(&self.sql), |q, arg| match arg {
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.as_str()),
            Arg::Null(Kind::Int) => q.bind(None::<i64>),
            Arg::Null(Kind::Text) => q.bind(None::<String>),
        })
    }
}

/// Runs `work`, which may wait (for the disk) or take long, where it is; on
/// the multi-threaded runtime `block_in_place` first moves this worker's
/// other tasks to another thread, so none of them waits behind it. A
/// hand-off to another thread and back would cost more than most such work.
pub(crate) fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    let multi_threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_threaded {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Statements slower than this are logged, as sqlx does on PostgreSQL.
const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a SQLite statement, logging it (its text: parameters are bound, never
/// in it) when it was slow.
fn timed<T>(sql: &str, run: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = run();
    let took = started.elapsed();
    if took >= SLOW_STATEMENT {
        tracing::warn!(sql, took_ms = took.as_millis(), "slow SQLite statement");
    }
    out
}

/// Prepares (from the connection's cache) and binds: `$N` and `?N` take the
/// N-th parameter, anonymous `?` the next one.
fn lite_prepare<'c>(conn: &'c Connection, q: &Query<'_>) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut st = conn.prepare_cached(&q.sql)?;
    let mut next = 0;
    for i in 1..=st.parameter_count() {
        let n = match st.parameter_name(i).and_then(|name| name.get(1..)).map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => n - 1,
            _ => {
                next += 1;
                next - 1
            }
        };
        let arg = q.args.get(n).ok_or(rusqlite::Error::InvalidParameterCount(n + 1, q.args.len()))?;
        st.raw_bind_parameter(i, arg)?;
    }
    Ok(st)
}

fn lite_execute(conn: &Connection, q: &Query<'_>) -> rusqlite::Result<u64> {
    let mut st = lite_prepare(conn, q)?;
    let mut rows = st.raw_query();
    while rows.next()?.is_some() {}
    drop(rows);
    Ok(conn.changes())
}

fn lite_fetch(conn: &Connection, q: &Query<'_>, limit: Option<usize>) -> rusqlite::Result<Vec<Row>> {
    let mut st = lite_prepare(conn, q)?;
    let names: Arc<[String]> = st.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while limit.is_none_or(|l| out.len() < l) {
        let Some(row) = rows.next()? else { break };
        let values = (0..names.len()).map(|i| row.get_ref(i).map(Value::from)).collect::<rusqlite::Result<_>>()?;
        out.push(Row::Lite(LiteRow { names: names.clone(), values }));
    }
    Ok(out)
}

/// Runs statements without parameters (transaction control, pragmas).
pub(crate) fn lite_batch(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.execute_batch(sql).map_err(lite_err)
}

/// Maps a SQLite error to the port's error, as `map_err` does for sqlx's.
pub(crate) fn lite_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict("row".into())
        }
        _ if is_busy(&e) => StoreError::unavailable("the database stayed busy").caused_by(e),
        _ => StoreError::other("the database refused the statement").caused_by(e),
    }
}

/// Whether `e` says the database was busy (another process holds the lock).
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}
