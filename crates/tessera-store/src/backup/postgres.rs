//! Backup and restore on PostgreSQL (sqlx's PostgreSQL driver).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};
use sqlx::{Connection, Executor, PgConnection, Row};

use super::format::{Rows, Writer};
use super::sqlite::no_keyring;
use super::{not_empty, unknown_column, BackupError, AUDIT_HEAD, TABLES};

fn err(what: &str) -> impl Fn(sqlx::Error) -> BackupError + '_ {
    move |e| BackupError::new(format!("{what}: {e}"))
}

async fn open(url: &str) -> Result<PgConnection, BackupError> {
    PgConnection::connect(url).await.map_err(|e| BackupError::new(format!("cannot connect to DATABASE_URL: {e}")))
}

/// A column: its name, its type (`udt_name`: int8, text, jsonb...) and
/// whether a sequence fills it.
struct Column {
    name: String,
    udt: String,
    serial: bool,
}

async fn columns(conn: &mut PgConnection, table: &str) -> Result<Vec<Column>, BackupError> {
    let rows = sqlx::query(
        "SELECT column_name::text AS name, udt_name::text AS udt, \
                COALESCE(column_default LIKE 'nextval(%', false) AS serial \
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(err("information_schema"))?;
    let cols = rows
        .iter()
        .map(|r| Ok(Column { name: r.try_get("name")?, udt: r.try_get("udt")?, serial: r.try_get("serial")? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(err("information_schema"))?;
    if cols.is_empty() {
        return Err(BackupError::new(format!("the store has no table {table}: is DATABASE_URL a Tessera store?")));
    }
    Ok(cols)
}

fn is_integer(udt: &str) -> bool {
    matches!(udt, "int2" | "int4" | "int8")
}

/// Writes every table from one repeatable-read, read-only transaction: one
/// snapshot while the servers keep writing. Rows are read through a cursor,
/// a batch at a time, so a large table is never held in memory.
pub(super) async fn export(url: &str, mut out: Writer) -> Result<Writer, BackupError> {
    let mut conn = open(url).await?;
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(err("begin"))?;
    let schema: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::bigint FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .map_err(err("schema version"))?;
    let kek_id: Option<String> = sqlx::query_scalar("SELECT kek_id FROM keyring_meta WHERE id = 1")
        .fetch_optional(&mut conn)
        .await
        .map_err(err("keyring"))?;
    out.header(&kek_id.ok_or_else(no_keyring)?, schema, "postgres")?;
    for (table, order) in TABLES {
        let cols = columns(&mut conn, table).await?;
        // Every column as text (JSONB as its JSON text); integers become numbers again below.
        let list = cols.iter().map(|c| format!("\"{}\"::text", c.name)).collect::<Vec<_>>().join(", ");
        // One cursor name per table: sqlx caches a prepared FETCH with the
        // row shape of the first cursor it fetched from.
        let cursor = format!("backup_{table}");
        conn.execute(
            format!("DECLARE {cursor} NO SCROLL CURSOR FOR SELECT {list} FROM \"{table}\" ORDER BY {order}").as_str(),
        )
        .await
        .map_err(err(table))?;
        loop {
            let batch =
                sqlx::query(&format!("FETCH 1000 FROM {cursor}")).fetch_all(&mut conn).await.map_err(err(table))?;
            if batch.is_empty() {
                break;
            }
            for r in &batch {
                let mut row = Map::new();
                for (i, col) in cols.iter().enumerate() {
                    let text: Option<String> = r.try_get(i).map_err(err(table))?;
                    let value = match text {
                        None => Value::Null,
                        Some(t) if is_integer(&col.udt) => Value::from(
                            t.parse::<i64>()
                                .map_err(|_| BackupError::new(format!("{table}.{} is not an integer", col.name)))?,
                        ),
                        Some(t) => Value::String(t),
                    };
                    row.insert(col.name.clone(), value);
                }
                out.row(table, row)?;
            }
        }
        conn.execute(format!("CLOSE {cursor}").as_str()).await.map_err(err(table))?;
    }
    conn.execute("COMMIT").await.map_err(err("commit"))?;
    Ok(out)
}

/// Runs the migrations, then inserts every row of `file` (checked already)
/// into the empty database in one transaction: all or nothing.
pub(super) async fn import(url: &str, file: &Path) -> Result<(), BackupError> {
    let mut conn = open(url).await?;
    sqlx::migrate!("./migrations/postgres")
        .run(&mut conn)
        .await
        .map_err(|e| BackupError::new(format!("migration failed: {e}")))?;
    conn.execute("BEGIN").await.map_err(err("begin"))?;
    ensure_empty(&mut conn).await?;
    let mut known: HashMap<String, Vec<Column>> = HashMap::new();
    let mut seen_head = false;
    let rows = Rows::open(file)?;
    for row in rows {
        let row = row?;
        let table = row.table.clone();
        if !known.contains_key(&table) {
            let cols = columns(&mut conn, &table).await?;
            known.insert(table.clone(), cols);
        }
        let cols = &known[&table];
        if table == AUDIT_HEAD && !seen_head {
            // The backup's head replaces the genesis row the migration made.
            seen_head = true;
            conn.execute("DELETE FROM audit_head").await.map_err(err("audit head"))?;
        }
        let mut names = Vec::with_capacity(row.row.len());
        let mut marks = Vec::with_capacity(row.row.len());
        let mut values = Vec::with_capacity(row.row.len());
        for (i, (name, value)) in row.row.into_iter().enumerate() {
            let col = cols.iter().find(|c| c.name == name).ok_or_else(|| unknown_column(&table, &name))?;
            // Bound as text and cast by the column's type: one path for
            // integers, text and JSONB alike.
            marks.push(format!("${}::text::{}", i + 1, col.udt));
            names.push(format!("\"{name}\""));
            values.push(match value {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            });
        }
        let sql = format!("INSERT INTO \"{table}\" ({}) VALUES ({})", names.join(", "), marks.join(", "));
        values
            .into_iter()
            .fold(sqlx::query(&sql), |q, v| q.bind(v))
            .execute(&mut conn)
            .await
            .map_err(|e| BackupError::new(format!("cannot restore a row of {table}: {e}")))?;
    }
    // Sequences (webhook_deliveries.id) continue after the restored rows.
    for (table, _) in TABLES {
        if !known.contains_key(*table) {
            known.insert((*table).to_owned(), columns(&mut conn, table).await?);
        }
        for col in known[*table].iter().filter(|c| c.serial) {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX(\"{0}\"), 0) + 1, false) FROM \"{table}\"",
                col.name
            );
            sqlx::query(&sql).bind(*table).bind(&col.name).execute(&mut conn).await.map_err(err("sequence"))?;
        }
    }
    conn.execute("COMMIT").await.map_err(err("commit"))?;
    Ok(())
}

/// Refuses a store holding any row beyond the migrations' genesis audit head.
async fn ensure_empty(conn: &mut PgConnection) -> Result<(), BackupError> {
    for (table, _) in TABLES {
        let sql = if *table == AUDIT_HEAD {
            "SELECT 1 FROM audit_head WHERE seq <> 0 LIMIT 1".to_owned()
        } else {
            format!("SELECT 1 FROM \"{table}\" LIMIT 1")
        };
        let any: Option<i32> = sqlx::query_scalar(&sql).fetch_optional(&mut *conn).await.map_err(err(table))?;
        if any.is_some() {
            return Err(not_empty(table));
        }
    }
    Ok(())
}
