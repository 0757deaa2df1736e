//! Webhooks, their outbox (claimed with leases) and delivery log, and the
//! rotation policy of secrets.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use tessera_core::ports::{
    DeliveryRecord, OutboxRecord, RotationDue, StoreError, StoreResult, WebhookRecord, WebhookRepo,
};

use crate::tx::{json_value, map_err, micros, opt_time, time, SqlTx};
use crate::Dialect;

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

fn u32_of(row: &AnyRow, col: &str) -> StoreResult<u32> {
    let v: i64 = row.try_get(col).map_err(map_err)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

fn webhook(row: &AnyRow) -> StoreResult<WebhookRecord> {
    let events: String = row.try_get("events").map_err(map_err)?;
    Ok(WebhookRecord {
        id: row.try_get("id").map_err(map_err)?,
        tenant_id: row.try_get("tenant_id").map_err(map_err)?,
        url: row.try_get("url").map_err(map_err)?,
        events: serde_json::from_str(&events).map_err(|e| StoreError::Other(format!("bad events JSON: {e}")))?,
        secret_ciphertext: row.try_get("secret_ciphertext").map_err(map_err)?,
        enabled: row.try_get::<i64, _>("enabled").map_err(map_err)? == 1,
        created_at: time(row.try_get("created_at").map_err(map_err)?),
        created_by: row.try_get("created_by").map_err(map_err)?,
    })
}

fn webhook_select(d: Dialect) -> String {
    format!(
        "SELECT id, tenant_id, url, {} AS events, secret_ciphertext, enabled, created_at, created_by FROM webhooks",
        d.json_col("events")
    )
}

fn outbox(row: &AnyRow) -> StoreResult<OutboxRecord> {
    let payload: String = row.try_get("payload").map_err(map_err)?;
    Ok(OutboxRecord {
        id: row.try_get("id").map_err(map_err)?,
        webhook_id: row.try_get("webhook_id").map_err(map_err)?,
        tenant_id: row.try_get("tenant_id").map_err(map_err)?,
        event: row.try_get("event").map_err(map_err)?,
        payload: json_value(&payload)?,
        created_at: time(row.try_get("created_at").map_err(map_err)?),
        attempts: u32_of(row, "attempts")?,
        next_attempt_at: time(row.try_get("next_attempt_at").map_err(map_err)?),
        delivered_at: opt_time(row.try_get("delivered_at").map_err(map_err)?),
        failed_at: opt_time(row.try_get("failed_at").map_err(map_err)?),
    })
}

#[async_trait]
impl WebhookRepo for SqlTx {
    async fn insert_webhook(&mut self, w: &WebhookRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO webhooks (id, tenant_id, url, events, secret_ciphertext, enabled, created_at, created_by) \
             VALUES ($1, $2, $3, {}, $5, $6, $7, $8)",
            self.dialect.json_param(4)
        );
        sqlx::query(&sql)
            .bind(&w.id)
            .bind(&w.tenant_id)
            .bind(&w.url)
            .bind(serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into()))
            .bind(&w.secret_ciphertext)
            .bind(i64::from(w.enabled))
            .bind(micros(w.created_at))
            .bind(&w.created_by)
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_webhook(&mut self, id: &str) -> StoreResult<Option<WebhookRecord>> {
        let sql = format!("{} WHERE id = $1", webhook_select(self.dialect));
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *self.tx).await.map_err(map_err)?;
        row.as_ref().map(webhook).transpose()
    }

    async fn list_webhooks(&mut self, tenant: &str) -> StoreResult<Vec<WebhookRecord>> {
        let sql = format!("{} WHERE tenant_id = $1 ORDER BY created_at, id", webhook_select(self.dialect));
        let rows = sqlx::query(&sql).bind(tenant).fetch_all(&mut *self.tx).await.map_err(map_err)?;
        rows.iter().map(webhook).collect()
    }

    async fn delete_webhook(&mut self, tenant: &str, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_outbox(&mut self, o: &OutboxRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO webhook_outbox (id, webhook_id, tenant_id, event, payload, created_at, attempts, \
             next_attempt_at, delivered_at, failed_at) VALUES ($1, $2, $3, $4, {}, $6, $7, $8, $9, $10)",
            self.dialect.json_param(5)
        );
        sqlx::query(&sql)
            .bind(&o.id)
            .bind(&o.webhook_id)
            .bind(&o.tenant_id)
            .bind(&o.event)
            .bind(o.payload.to_string())
            .bind(micros(o.created_at))
            .bind(i64::from(o.attempts))
            .bind(micros(o.next_attempt_at))
            .bind(o.delivered_at.map(micros))
            .bind(o.failed_at.map(micros))
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn claim_due_outbox(
        &mut self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRecord>> {
        // As the refresh claim: SKIP LOCKED on PostgreSQL (SQLite has a single
        // writer), and the limit written into the statement (an integer, not input).
        let limit = limit.clamp(1, 10_000);
        let skip_locked = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE webhook_outbox SET lease_owner = $2, lease_until = $3 \
             WHERE id IN (SELECT id FROM webhook_outbox \
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY next_attempt_at LIMIT {limit}{skip_locked}) \
             RETURNING id, webhook_id, tenant_id, event, {} AS payload, created_at, attempts, next_attempt_at, \
             delivered_at, failed_at",
            self.dialect.json_col("payload")
        );
        let rows = sqlx::query(&sql)
            .bind(micros(now))
            .bind(owner)
            .bind(micros(lease_until))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_err)?;
        let mut claimed = rows.iter().map(outbox).collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|o| o.next_attempt_at);
        Ok(claimed)
    }

    async fn finish_outbox(
        &mut self,
        id: &str,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        delivered_at: Option<DateTime<Utc>>,
        failed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE webhook_outbox SET attempts = $2, next_attempt_at = $3, delivered_at = $4, failed_at = $5, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(micros(next_attempt_at))
        .bind(delivered_at.map(micros))
        .bind(failed_at.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn insert_delivery(&mut self, d: &DeliveryRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (outbox_id, webhook_id, attempt, at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.outbox_id)
        .bind(&d.webhook_id)
        .bind(i64::from(d.attempt))
        .bind(micros(d.at))
        .bind(d.status_code.map(i64::from))
        .bind(d.error.clone())
        .bind(i64::try_from(d.duration_ms).unwrap_or(i64::MAX))
        .execute(&mut *self.tx)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn purge_finished_outbox(&mut self, before: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        // The delivery log goes with its outbox row (ON DELETE CASCADE); a bounded
        // batch per scan keeps each write transaction short.
        let sql = format!(
            "DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox \
             WHERE COALESCE(delivered_at, failed_at) < $1 LIMIT {})",
            limit.clamp(1, 100_000)
        );
        let done = sqlx::query(&sql).bind(micros(before)).execute(&mut *self.tx).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn list_deliveries(&mut self, webhook_id: &str, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        let limit = limit.clamp(1, 10_000);
        let sql = format!(
            "SELECT d.outbox_id AS outbox_id, d.webhook_id AS webhook_id, o.event AS event, d.attempt AS attempt, \
             d.at AS at, d.status_code AS status_code, d.error AS error, d.duration_ms AS duration_ms \
             FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox_id \
             WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT {limit}"
        );
        let rows = sqlx::query(&sql).bind(webhook_id).fetch_all(&mut *self.tx).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRecord {
                    outbox_id: r.try_get("outbox_id").map_err(map_err)?,
                    webhook_id: r.try_get("webhook_id").map_err(map_err)?,
                    event: r.try_get("event").map_err(map_err)?,
                    attempt: u32_of(r, "attempt")?,
                    at: time(r.try_get("at").map_err(map_err)?),
                    status_code: r
                        .try_get::<Option<i64>, _>("status_code")
                        .map_err(map_err)?
                        .and_then(|s| u16::try_from(s).ok()),
                    error: r.try_get("error").map_err(map_err)?,
                    duration_ms: u64::try_from(r.try_get::<i64, _>("duration_ms").map_err(map_err)?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn set_secret_rotation(&mut self, tenant: &str, path: &str, days: Option<u32>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE secrets SET rotate_after_days = $3 WHERE tenant_id = $1 AND path = $2")
            .bind(tenant)
            .bind(path)
            .bind(days.map(i64::from))
            .execute(&mut *self.tx)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_secret_rotation(&mut self, tenant: &str, path: &str) -> StoreResult<Option<u32>> {
        let row = sqlx::query("SELECT rotate_after_days FROM secrets WHERE tenant_id = $1 AND path = $2")
            .bind(tenant)
            .bind(path)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let days: Option<i64> = row.try_get(0).map_err(map_err)?;
        Ok(days.and_then(|d| u32::try_from(d).ok()))
    }

    async fn claim_rotation_due(&mut self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<RotationDue>> {
        let limit = limit.clamp(1, 10_000);
        let skip_locked = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE secrets SET rotation_notified_at = $1 \
             WHERE (tenant_id, path) IN (SELECT tenant_id, path FROM secrets \
             WHERE rotate_after_days IS NOT NULL AND updated_at + rotate_after_days * {DAY_MICROS} <= $1 \
             AND rotation_notified_at IS NULL \
             ORDER BY updated_at LIMIT {limit}{skip_locked}) \
             RETURNING tenant_id, path, rotate_after_days, updated_at"
        );
        let rows = sqlx::query(&sql).bind(micros(now)).fetch_all(&mut *self.tx).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(RotationDue {
                    tenant_id: r.try_get("tenant_id").map_err(map_err)?,
                    path: r.try_get("path").map_err(map_err)?,
                    rotate_after_days: u32_of(r, "rotate_after_days")?,
                    updated_at: time(r.try_get("updated_at").map_err(map_err)?),
                })
            })
            .collect()
    }
}
