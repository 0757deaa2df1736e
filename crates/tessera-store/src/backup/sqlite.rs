//! Backup and restore on SQLite (rusqlite, on a blocking thread).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{Value as Lite, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value};

use super::format::{Rows, Writer};
use super::{not_empty, unknown_column, BackupError, AUDIT_HEAD, TABLES};

fn err(what: &str) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::new(format!("{what}: {e}"))
}

/// Opens an existing database file (a backup never creates one).
fn open(path: &Path) -> Result<Connection, BackupError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| BackupError::new(format!("cannot open the SQLite database {}: {e}", path.display())))?;
    // Waits out a writer's checkpoint or another restore; never the servers'
    // writes (WAL readers do not wait for writers).
    conn.busy_timeout(Duration::from_secs(30)).map_err(err("busy timeout"))?;
    Ok(conn)
}

/// A table's columns, as the database has them.
fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, BackupError> {
    let mut st = conn.prepare(&format!("PRAGMA table_info(\"{table}\")")).map_err(err("table_info"))?;
    let names = st.query_map([], |r| r.get::<_, String>("name")).map_err(err("table_info"))?;
    let names = names.collect::<Result<Vec<_>, _>>().map_err(err("table_info"))?;
    if names.is_empty() {
        return Err(BackupError::new(format!("the store has no table {table}: is DATABASE_URL a Tessera store?")));
    }
    Ok(names)
}

fn quoted(columns: &[String]) -> String {
    columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

/// Writes every table from one read transaction: WAL gives it a snapshot
/// while the servers keep writing.
pub(super) fn export(path: &Path, mut out: Writer) -> Result<Writer, BackupError> {
    let conn = open(path)?;
    conn.execute_batch("BEGIN").map_err(err("begin"))?;
    let schema: i64 = conn
        .query_row("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success", [], |r| r.get(0))
        .map_err(err("schema version"))?;
    let kek_id: Option<String> = conn
        .query_row("SELECT kek_id FROM keyring_meta WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(err("keyring"))?;
    let kek_id = kek_id.ok_or_else(no_keyring)?;
    out.header(&kek_id, schema, "sqlite")?;
    for (table, order) in TABLES {
        let cols = columns(&conn, table)?;
        let sql = format!("SELECT {} FROM \"{table}\" ORDER BY {order}", quoted(&cols));
        let mut st = conn.prepare(&sql).map_err(err(table))?;
        let mut rows = st.query([]).map_err(err(table))?;
        while let Some(r) = rows.next().map_err(err(table))? {
            let mut row = Map::new();
            for (i, col) in cols.iter().enumerate() {
                row.insert(col.clone(), json(r.get_ref(i).map_err(err(table))?, table, col)?);
            }
            out.row(table, row)?;
        }
    }
    conn.execute_batch("COMMIT").map_err(err("commit"))?;
    Ok(out)
}

pub(super) fn no_keyring() -> BackupError {
    BackupError::new("the store has no master key check yet (no server has started on it): nothing to back up")
}

fn json(v: ValueRef<'_>, table: &str, col: &str) -> Result<Value, BackupError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::String(
            String::from_utf8(t.to_vec())
                .map_err(|_| BackupError::new(format!("{table}.{col} holds invalid UTF-8")))?,
        ),
        ValueRef::Blob(_) => return Err(BackupError::new(format!("{table}.{col} holds a blob; Tessera stores none"))),
    })
}

fn lite(v: Value) -> Lite {
    match v {
        Value::Number(n) => n.as_i64().map_or_else(|| Lite::Real(n.as_f64().unwrap_or_default()), Lite::Integer),
        Value::String(s) => Lite::Text(s),
        _ => Lite::Null,
    }
}

/// Inserts every row of `file` (checked already) into the empty, migrated
/// database at `path`, in one transaction: all or nothing.
pub(super) fn import(path: &Path, file: &Path) -> Result<(), BackupError> {
    let conn = open(path)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; BEGIN IMMEDIATE").map_err(err("begin"))?;
    ensure_empty(&conn)?;
    let mut known = std::collections::HashMap::new();
    let mut seen_head = false;
    for row in Rows::open(file)? {
        let row = row?;
        let table = row.table.as_str();
        if !known.contains_key(table) {
            known.insert(table.to_owned(), columns(&conn, table)?);
        }
        let cols = &known[table];
        if let Some(col) = row.row.keys().find(|c| !cols.contains(c)) {
            return Err(unknown_column(table, col));
        }
        if table == AUDIT_HEAD && !seen_head {
            // The backup's head replaces the genesis row the migration made.
            seen_head = true;
            conn.execute("DELETE FROM audit_head", []).map_err(err("audit head"))?;
        }
        let names: Vec<String> = row.row.keys().cloned().collect();
        let marks = (1..=names.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("INSERT INTO \"{table}\" ({}) VALUES ({marks})", quoted(&names));
        let mut st = conn.prepare_cached(&sql).map_err(err(table))?;
        let values: Vec<Lite> = row.row.into_iter().map(|(_, v)| lite(v)).collect();
        st.execute(rusqlite::params_from_iter(values))
            .map_err(|e| BackupError::new(format!("cannot restore a row of {table}: {e}")))?;
    }
    conn.execute_batch("COMMIT").map_err(err("commit"))?;
    Ok(())
}

/// Refuses a store holding any row beyond the migrations' genesis audit head.
fn ensure_empty(conn: &Connection) -> Result<(), BackupError> {
    for (table, _) in TABLES {
        let sql = if *table == AUDIT_HEAD {
            "SELECT 1 FROM audit_head WHERE seq <> 0 LIMIT 1".to_owned()
        } else {
            format!("SELECT 1 FROM \"{table}\" LIMIT 1")
        };
        let any: Option<i64> = conn.query_row(&sql, [], |r| r.get(0)).optional().map_err(err(table))?;
        if any.is_some() {
            return Err(not_empty(table));
        }
    }
    Ok(())
}
