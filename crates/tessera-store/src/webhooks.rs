//! Webhooks, their outbox (claimed with leases) and delivery log, and the
//! rotation policy of secrets.

use crate::db::{query, Row};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ports::{
    DeliveryRecord, OutboxRecord, RotationDue, StoreError, StoreResult, WebhookRecord, WebhookRepo,
};

use crate::tx::{json_value, micros, opt_time, time, word, SqlTx};
use crate::Dialect;
use tessera_core::domain::WebhookEvent;

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

fn u32_of(row: &Row, col: &str) -> StoreResult<u32> {
    let v: i64 = row.get(col)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

fn webhook(row: &Row) -> StoreResult<WebhookRecord> {
    let events: String = row.get("events")?;
    Ok(WebhookRecord {
        id: row.get("id")?,
        tenant_id: row.get("tenant_id")?,
        url: row.get("url")?,
        events: serde_json::from_str(&events).map_err(|e| StoreError::other(format!("bad events JSON: {e}")))?,
        secret_ciphertext: row.get("secret_ciphertext")?,
        enabled: row.get::<i64>("enabled")? == 1,
        created_at: time(row.get("created_at")?),
        created_by: row.get("created_by")?,
    })
}

fn webhook_select(d: Dialect) -> String {
    format!(
        "SELECT id, tenant_id, url, {} AS events, secret_ciphertext, enabled, created_at, created_by FROM webhooks",
        d.json_col("events")
    )
}

fn outbox(row: &Row) -> StoreResult<OutboxRecord> {
    let payload: String = row.get("payload")?;
    Ok(OutboxRecord {
        id: row.get("id")?,
        webhook_id: row.get("webhook_id")?,
        tenant_id: row.get("tenant_id")?,
        event: word(&row.get::<String>("event")?, WebhookEvent::parse, "event")?,
        payload: json_value(&payload)?,
        created_at: time(row.get("created_at")?),
        attempts: u32_of(row, "attempts")?,
        next_attempt_at: time(row.get("next_attempt_at")?),
        delivered_at: opt_time(row.get("delivered_at")?),
        failed_at: opt_time(row.get("failed_at")?),
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
        query(&sql)
            .bind(&w.id)
            .bind(&w.tenant_id)
            .bind(&w.url)
            .bind(serde_json::to_string(&w.events).unwrap_or_else(|_| "[]".into()))
            .bind(&w.secret_ciphertext)
            .bind(i64::from(w.enabled))
            .bind(micros(w.created_at))
            .bind(&w.created_by)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_webhook(&mut self, id: &str) -> StoreResult<Option<WebhookRecord>> {
        let sql = format!("{} WHERE id = $1", webhook_select(self.dialect));
        let row = query(&sql).bind(id).fetch_optional(self).await?;
        row.as_ref().map(webhook).transpose()
    }

    async fn list_webhooks(&mut self, tenant: &str) -> StoreResult<Vec<WebhookRecord>> {
        let sql = format!("{} WHERE tenant_id = $1 ORDER BY created_at, id", webhook_select(self.dialect));
        let rows = query(&sql).bind(tenant).fetch_all(self).await?;
        rows.iter().map(webhook).collect()
    }

    async fn delete_webhook(&mut self, tenant: &str, id: &str) -> StoreResult<bool> {
        let done =
            query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2").bind(tenant).bind(id).execute(self).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_outbox(&mut self, o: &OutboxRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO webhook_outbox (id, webhook_id, tenant_id, event, payload, created_at, attempts, \
             next_attempt_at, delivered_at, failed_at) VALUES ($1, $2, $3, $4, {}, $6, $7, $8, $9, $10)",
            self.dialect.json_param(5)
        );
        query(&sql)
            .bind(&o.id)
            .bind(&o.webhook_id)
            .bind(&o.tenant_id)
            .bind(o.event.as_str())
            .bind(o.payload.to_string())
            .bind(micros(o.created_at))
            .bind(i64::from(o.attempts))
            .bind(micros(o.next_attempt_at))
            .bind(o.delivered_at.map(micros))
            .bind(o.failed_at.map(micros))
            .execute(self)
            .await?;
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
        let rows = query(&sql).bind(micros(now)).bind(owner).bind(micros(lease_until)).fetch_all(self).await?;
        let mut claimed = rows.iter().map(outbox).collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|o| o.next_attempt_at);
        Ok(claimed)
    }

    async fn release_outbox_leases(&mut self, owner: &str) -> StoreResult<u64> {
        let done = query(
            "UPDATE webhook_outbox SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner = $1 AND delivered_at IS NULL AND failed_at IS NULL",
        )
        .bind(owner)
        .execute(self)
        .await?;
        Ok(done.rows_affected())
    }

    async fn finish_outbox(
        &mut self,
        id: &str,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        delivered_at: Option<DateTime<Utc>>,
        failed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        query(
            "UPDATE webhook_outbox SET attempts = $2, next_attempt_at = $3, delivered_at = $4, failed_at = $5, \
             lease_owner = NULL, lease_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(micros(next_attempt_at))
        .bind(delivered_at.map(micros))
        .bind(failed_at.map(micros))
        .execute(self)
        .await?;
        Ok(())
    }

    async fn insert_delivery(&mut self, d: &DeliveryRecord) -> StoreResult<()> {
        query(
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
        .execute(self)
        .await?;
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
        let done = query(&sql).bind(micros(before)).execute(self).await?;
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
        let rows = query(&sql).bind(webhook_id).fetch_all(self).await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryRecord {
                    outbox_id: r.get("outbox_id")?,
                    webhook_id: r.get("webhook_id")?,
                    event: r.get("event")?,
                    attempt: u32_of(r, "attempt")?,
                    at: time(r.get("at")?),
                    status_code: r.get::<Option<i64>>("status_code")?.and_then(|s| u16::try_from(s).ok()),
                    error: r.get("error")?,
                    duration_ms: u64::try_from(r.get::<i64>("duration_ms")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn set_secret_rotation(&mut self, tenant: &str, path: &str, days: Option<u32>) -> StoreResult<bool> {
        let done = query("UPDATE secrets SET rotate_after_days = $3 WHERE tenant_id = $1 AND path = $2")
            .bind(tenant)
            .bind(path)
            .bind(days.map(i64::from))
            .execute(self)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_secret_rotation(&mut self, tenant: &str, path: &str) -> StoreResult<Option<u32>> {
        let row = query("SELECT rotate_after_days FROM secrets WHERE tenant_id = $1 AND path = $2")
            .bind(tenant)
            .bind(path)
            .fetch_optional(self)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let days: Option<i64> = row.get(0)?;
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
        let rows = query(&sql).bind(micros(now)).fetch_all(self).await?;
        rows.iter()
            .map(|r| {
                Ok(RotationDue {
                    tenant_id: r.get("tenant_id")?,
                    path: r.get("path")?,
                    rotate_after_days: u32_of(r, "rotate_after_days")?,
                    updated_at: time(r.get("updated_at")?),
                })
            })
            .collect()
    }
}
