//! Console sessions (hashed ids only).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ports::{ConsoleSessionRecord, SessionRepo, StoreResult};

use crate::db::{query, Row};
use crate::tx::{micros, time, SqlTx};

const COLS: &str = "id_hash, key_id, root_fingerprint, created_at, last_seen_at, expires_at";

fn session(row: &Row) -> StoreResult<ConsoleSessionRecord> {
    Ok(ConsoleSessionRecord {
        id_hash: row.get("id_hash")?,
        key_id: row.get("key_id")?,
        root_fingerprint: row.get("root_fingerprint")?,
        created_at: time(row.get("created_at")?),
        last_seen_at: time(row.get("last_seen_at")?),
        expires_at: time(row.get("expires_at")?),
    })
}

#[async_trait]
impl SessionRepo for SqlTx {
    async fn insert_console_session(&mut self, s: &ConsoleSessionRecord) -> StoreResult<()> {
        let sql = format!("INSERT INTO console_sessions ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)");
        query(&sql)
            .bind(&s.id_hash)
            .bind(s.key_id.clone())
            .bind(s.root_fingerprint.clone())
            .bind(micros(s.created_at))
            .bind(micros(s.last_seen_at))
            .bind(micros(s.expires_at))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_console_session(&mut self, id_hash: &str) -> StoreResult<Option<ConsoleSessionRecord>> {
        let sql = format!("SELECT {COLS} FROM console_sessions WHERE id_hash = $1");
        let row = query(&sql).bind(id_hash).fetch_optional(self).await?;
        row.as_ref().map(session).transpose()
    }

    async fn touch_console_session(&mut self, id_hash: &str, at: DateTime<Utc>) -> StoreResult<()> {
        query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(micros(at))
            .bind(id_hash)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn delete_console_session(&mut self, id_hash: &str) -> StoreResult<bool> {
        let done = query("DELETE FROM console_sessions WHERE id_hash = $1").bind(id_hash).execute(self).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_stale_console_sessions(
        &mut self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = query("DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
            .bind(micros(now))
            .bind(micros(idle_before))
            .execute(self)
            .await?;
        Ok(done.rows_affected())
    }
}
