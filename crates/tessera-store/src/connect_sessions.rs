//! Hosted Connect sessions (token hashes only).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tessera_core::ports::{ConnectSessionRecord, ConnectSessionRepo, ConnectStatus, StoreError, StoreResult};

use crate::db::{query, Row};
use crate::tx::{json_value, micros, opt_time, time, SqlTx};
use crate::Dialect;

fn cols(d: Dialect) -> String {
    format!(
        "id, token_hash, tenant_id, {} AS integrations, redirect_uri, {} AS end_user, status, {} AS connected, \
         created_by, created_role, created_at, expires_at, ended_at",
        d.json_col("integrations"),
        d.json_col("end_user"),
        d.json_col("connected"),
    )
}

fn session(row: &Row) -> StoreResult<ConnectSessionRecord> {
    let integrations = match row.get::<Option<String>>("integrations")? {
        Some(text) => Some(
            serde_json::from_str::<Vec<String>>(&text)
                .map_err(|_| StoreError::other("a connect session's integrations are not a list"))?,
        ),
        None => None,
    };
    let status: String = row.get("status")?;
    Ok(ConnectSessionRecord {
        id: row.get("id")?,
        token_hash: row.get("token_hash")?,
        tenant_id: row.get("tenant_id")?,
        integrations,
        redirect_uri: row.get("redirect_uri")?,
        end_user: row.get::<Option<String>>("end_user")?.as_deref().map(json_value).transpose()?,
        status: ConnectStatus::parse(&status)
            .ok_or_else(|| StoreError::other(format!("unknown connect session status {status:?}")))?,
        connected: match json_value(&row.get::<String>("connected")?)? {
            Value::Array(items) => items,
            _ => return Err(StoreError::other("a connect session's connected list is not a list")),
        },
        created_by: row.get("created_by")?,
        created_role: row.get("created_role")?,
        created_at: time(row.get("created_at")?),
        expires_at: time(row.get("expires_at")?),
        ended_at: opt_time(row.get("ended_at")?),
    })
}

fn list_json(items: &[Value]) -> String {
    Value::Array(items.to_vec()).to_string()
}

#[async_trait]
impl ConnectSessionRepo for SqlTx {
    async fn insert_connect_session(&mut self, s: &ConnectSessionRecord) -> StoreResult<()> {
        let d = self.dialect;
        let sql = format!(
            "INSERT INTO connect_sessions (id, token_hash, tenant_id, integrations, redirect_uri, end_user, status, \
             connected, created_by, created_role, created_at, expires_at, ended_at) \
             VALUES ($1, $2, $3, {}, $5, {}, $7, {}, $9, $10, $11, $12, $13)",
            d.json_param(4),
            d.json_param(6),
            d.json_param(8),
        );
        query(&sql)
            .bind(&s.id)
            .bind(&s.token_hash)
            .bind(&s.tenant_id)
            .bind(s.integrations.as_ref().map(|i| Value::from(i.clone()).to_string()))
            .bind(s.redirect_uri.clone())
            .bind(s.end_user.as_ref().map(Value::to_string))
            .bind(s.status.as_str())
            .bind(list_json(&s.connected))
            .bind(&s.created_by)
            .bind(&s.created_role)
            .bind(micros(s.created_at))
            .bind(micros(s.expires_at))
            .bind(s.ended_at.map(micros))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_connect_session(&mut self, id: &str) -> StoreResult<Option<ConnectSessionRecord>> {
        let sql = format!("SELECT {} FROM connect_sessions WHERE id = $1", cols(self.dialect));
        let row = query(&sql).bind(id).fetch_optional(self).await?;
        row.as_ref().map(session).transpose()
    }

    async fn find_connect_session(&mut self, token_hash: &str) -> StoreResult<Option<ConnectSessionRecord>> {
        let sql = format!("SELECT {} FROM connect_sessions WHERE token_hash = $1", cols(self.dialect));
        let row = query(&sql).bind(token_hash).fetch_optional(self).await?;
        row.as_ref().map(session).transpose()
    }

    async fn delete_connect_session(&mut self, id: &str) -> StoreResult<bool> {
        let done = query("DELETE FROM connect_sessions WHERE id = $1").bind(id).execute(self).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_connect_session(&mut self, s: &ConnectSessionRecord) -> StoreResult<()> {
        let sql = format!(
            "UPDATE connect_sessions SET status = $2, connected = {}, ended_at = $4 WHERE id = $1",
            self.dialect.json_param(3)
        );
        query(&sql)
            .bind(&s.id)
            .bind(s.status.as_str())
            .bind(list_json(&s.connected))
            .bind(s.ended_at.map(micros))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn expire_connect_sessions(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ConnectSessionRecord>> {
        // The outer `status = 'pending'` is checked again on the row another
        // replica may have just updated, so each session is returned once.
        let sql = format!(
            "UPDATE connect_sessions SET status = 'expired', ended_at = $1 \
             WHERE status = 'pending' AND id IN (SELECT id FROM connect_sessions \
             WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2) RETURNING {}",
            cols(self.dialect)
        );
        let rows = query(&sql).bind(micros(now)).bind(limit).fetch_all(self).await?;
        rows.iter().map(session).collect()
    }

    async fn purge_connect_sessions(&mut self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = query("DELETE FROM connect_sessions WHERE status <> 'pending' AND ended_at < $1")
            .bind(micros(before))
            .execute(self)
            .await?;
        Ok(done.rows_affected())
    }
}
