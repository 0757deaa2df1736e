//! Webhooks: a tenant's subscriptions (the signing secret shown once, stored
//! encrypted under the tenant's data key), the outbox every reported change
//! writes in its own transaction ([`Tessera::enqueue`]), and the delivery
//! worker's scan: `secret.rotation_due` events for secrets past their
//! rotation policy, then due deliveries claimed with a lease, POSTed signed,
//! retried with exponential backoff, every attempt logged.

use crate::ErrorCode;
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use futures::StreamExt;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::retry::{backoff, delta};
use super::{rfc3339, Ctx, Tessera};
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::oauth::settings::random_token;
use crate::ports::{DeliveryRecord, OutboxRecord, StoreTx, WebhookRecord};
use crate::webhook::{signature, validate_url, SendOutcome, WebhookDelivery, WebhookEvent};

/// How many deliveries one replica sends at once.
const CONCURRENCY: usize = 8;
/// Most webhooks a tenant may have.
const MAX_WEBHOOKS: usize = 50;

/// Settings of webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// First retry delay (`TESSERA_WEBHOOK_RETRY_BASE`); doubles per attempt, at most an hour.
    pub retry_base: Duration,
    /// Attempts before a delivery is marked failed (`TESSERA_WEBHOOK_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// How long a replica's claim on a delivery lasts (longer than any send).
    pub lease: Duration,
    /// How long a delivered or failed event and its delivery log are kept
    /// (`TESSERA_WEBHOOK_RETENTION_DAYS`); none: forever.
    pub retention: Option<Duration>,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(10),
            max_attempts: 8,
            lease: Duration::from_secs(60),
            retention: Some(Duration::from_secs(30 * 86_400)),
        }
    }
}

/// A webhook as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// `wh_...`.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Subscribed events.
    pub events: Vec<WebhookEvent>,
    /// Whether events are sent.
    pub enabled: bool,
    /// Created.
    pub created_at: String,
    /// Created by.
    pub created_by: String,
}

impl WebhookView {
    fn from_record(w: &WebhookRecord) -> Self {
        Self {
            id: w.id.clone(),
            tenant_id: w.tenant_id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            enabled: w.enabled,
            created_at: rfc3339(w.created_at),
            created_by: w.created_by.clone(),
        }
    }
}

/// A new webhook and its signing secret (in this answer only).
pub struct CreatedWebhook {
    /// The webhook.
    pub view: WebhookView,
    /// `whsec_...`: shown once.
    pub secret: SecretString,
}

/// A tenant's webhooks.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookList {
    /// Tenant.
    pub tenant_id: String,
    /// Oldest first.
    pub webhooks: Vec<WebhookView>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The event's id (`Tessera-Delivery`).
    pub delivery_id: String,
    /// The event.
    pub event: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When it was sent.
    pub at: String,
    /// The receiver's status; null if it did not answer.
    pub status_code: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// A webhook's delivery log, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryLog {
    /// The webhook.
    pub webhook_id: String,
    /// Attempts, newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// What one scan of the delivery worker did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReport {
    /// `secret.rotation_due` events raised.
    pub rotation_due: usize,
    /// Deliveries claimed.
    pub claimed: usize,
    /// Delivered.
    pub delivered: usize,
    /// To be retried.
    pub retrying: usize,
    /// Given up.
    pub failed: usize,
    /// Finished events (with their delivery log) deleted for being older than the retention.
    pub purged: u64,
    /// Connect sessions that ran out of time (`connect.session_expired` raised).
    pub connect_expired: u64,
}

enum Outcome {
    Delivered,
    Retrying,
    Failed,
    Skipped,
}

impl Tessera {
    /// `POST /tenants/{t}/webhooks`: the secret is in this answer only.
    pub async fn create_webhook(
        &self,
        ctx: &Ctx,
        tenant: &str,
        url: &str,
        events: &[String],
    ) -> Result<CreatedWebhook, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let url = validate_url(url, self.opts.allow_loopback)?;
        if events.is_empty() {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidEvents,
                "events must name at least one event",
                Some("events"),
            ));
        }
        let mut subscribed: Vec<WebhookEvent> = Vec::new();
        for e in events {
            let event = WebhookEvent::parse(e).ok_or_else(|| {
                ServiceError::invalid(
                    ErrorCode::InvalidEvents,
                    format!("unknown event {e:?}; events are {}", WebhookEvent::words()),
                    Some("events"),
                )
            })?;
            if !subscribed.contains(&event) {
                subscribed.push(event);
            }
        }
        let id = format!("wh_{}", uuid::Uuid::new_v4().simple());
        let secret = new_secret();
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        if tx.list_webhooks(tenant.as_str()).await?.len() >= MAX_WEBHOOKS {
            return Err(ServiceError::conflict(
                ErrorCode::TooManyWebhooks,
                format!("a tenant has at most {MAX_WEBHOOKS} webhooks"),
            ));
        }
        let ciphertext =
            self.keyring.encrypt(tx.as_mut(), tenant.as_str(), &secret_path(&id), "secret", secret.as_bytes()).await?;
        let record = WebhookRecord {
            id: id.clone(),
            tenant_id: tenant.to_string(),
            url: url.to_string(),
            events: subscribed,
            secret_ciphertext: ciphertext,
            enabled: true,
            created_at: now,
            created_by: ctx.principal.id.clone(),
        };
        tx.insert_webhook(&record).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "webhook.create",
                    Some(tenant.as_str()),
                    format!("tenants/{tenant}/webhooks/{id}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(CreatedWebhook { view: WebhookView::from_record(&record), secret: SecretString::from(secret.as_str()) })
    }

    /// `GET /tenants/{t}/webhooks`: never a secret.
    pub async fn list_webhooks(&self, ctx: &Ctx, tenant: &str) -> Result<WebhookList, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        let mut tx = self.store.read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let hooks = tx.list_webhooks(tenant.as_str()).await?;
        tx.commit().await?;
        Ok(WebhookList {
            tenant_id: tenant.to_string(),
            webhooks: hooks.iter().map(WebhookView::from_record).collect(),
        })
    }

    /// `DELETE /tenants/{t}/webhooks/{id}`: its pending events and log go with it.
    pub async fn delete_webhook(&self, ctx: &Ctx, tenant: &str, id: &str) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        if !tx.delete_webhook(tenant.as_str(), id).await? {
            return Err(no_webhook(id));
        }
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "webhook.delete",
                    Some(tenant.as_str()),
                    format!("tenants/{tenant}/webhooks/{id}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `GET /tenants/{t}/webhooks/{id}/deliveries`: every attempt, newest first.
    pub async fn webhook_deliveries(&self, ctx: &Ctx, tenant: &str, id: &str) -> Result<DeliveryLog, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        let mut tx = self.store.read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let hook =
            tx.get_webhook(id).await?.filter(|w| w.tenant_id == tenant.as_str()).ok_or_else(|| no_webhook(id))?;
        let log = tx.list_deliveries(&hook.id, 500).await?;
        tx.commit().await?;
        Ok(DeliveryLog {
            webhook_id: hook.id,
            deliveries: log
                .into_iter()
                .map(|d| DeliveryView {
                    delivery_id: d.outbox_id,
                    event: d.event,
                    attempt: d.attempt,
                    at: rfc3339(d.at),
                    status_code: d.status_code,
                    error: d.error,
                    duration_ms: d.duration_ms,
                })
                .collect(),
        })
    }

    /// Adds `event` to the outbox of every enabled webhook of `tenant`
    /// subscribed to it, inside the caller's transaction (so the event
    /// exists exactly when the change does). `data` is metadata only: never
    /// a secret value or token.
    pub(crate) async fn enqueue(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        event: WebhookEvent,
        data: Value,
    ) -> Result<(), ServiceError> {
        let hooks = tx.list_webhooks(tenant).await?;
        let now = Utc::now();
        for hook in hooks.iter().filter(|w| w.enabled && w.events.contains(&event)) {
            tx.insert_outbox(&OutboxRecord {
                id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
                webhook_id: hook.id.clone(),
                tenant_id: tenant.to_owned(),
                event,
                payload: data.clone(),
                created_at: now,
                attempts: 0,
                next_attempt_at: now,
                delivered_at: None,
                failed_at: None,
            })
            .await?;
        }
        Ok(())
    }

    /// One scan of the delivery worker: raises `secret.rotation_due` for
    /// secrets past their policy (once per write) and `connect.session_expired`
    /// for connect sessions that ran out of time, then claims up to `limit`
    /// due deliveries and sends them.
    pub async fn deliver_webhooks(&self, limit: i64) -> Result<WebhookReport, ServiceError> {
        let mut report = WebhookReport {
            rotation_due: self.raise_rotation_due(limit).await?,
            purged: self.purge_finished_webhook_events().await?,
            connect_expired: self.expire_connect_sessions(limit).await?,
            ..WebhookReport::default()
        };
        let sender = self.outbound.webhooks.clone();
        let now = Utc::now();
        let lease_until = now + delta(self.opts.webhooks.lease);
        let mut tx = self.store.begin_log_write().await?;
        let claimed = tx.claim_due_outbox(now, &self.instance_id, lease_until, limit).await?;
        tx.commit().await?;
        report.claimed = claimed.len();
        let sends: Vec<_> = claimed
            .into_iter()
            .map(|o| {
                let sender = sender.clone();
                async move {
                    let id = o.id.clone();
                    (self.deliver_one(sender.as_ref(), o).await, id)
                }
            })
            .collect();
        let mut sends = futures::stream::iter(sends).buffer_unordered(CONCURRENCY);
        while let Some((result, id)) = sends.next().await {
            match result {
                Ok(Outcome::Delivered) => report.delivered += 1,
                Ok(Outcome::Retrying) => report.retrying += 1,
                Ok(Outcome::Failed) => report.failed += 1,
                Ok(Outcome::Skipped) => {}
                Err(e) => tracing::warn!(delivery = %id, error = %e, "webhook delivery could not run"),
            }
        }
        Ok(report)
    }

    /// Deletes finished events older than the retention, at most once a
    /// minute per process and a bounded batch at a time (the next scans
    /// continue a large backlog).
    async fn purge_finished_webhook_events(&self) -> Result<u64, ServiceError> {
        let Some(retention) = self.opts.webhooks.retention else { return Ok(0) };
        {
            let mut last = self.webhook_purged_at.lock().expect("not poisoned");
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
                return Ok(0);
            }
            *last = Some(std::time::Instant::now());
        }
        let mut tx = self.store.begin_log_write().await?;
        let purged = tx.purge_finished_outbox(Utc::now() - delta(retention), 10_000).await?;
        tx.commit().await?;
        if purged > 0 {
            tracing::info!(purged, "old webhook events and their delivery log deleted");
        }
        Ok(purged)
    }

    async fn raise_rotation_due(&self, limit: i64) -> Result<usize, ServiceError> {
        let mut tx = self.store.begin_log_write().await?;
        let due = tx.claim_rotation_due(Utc::now(), limit).await?;
        for d in &due {
            let data = json!({
                "path": d.path,
                "rotateAfterDays": d.rotate_after_days,
                "lastWrittenAt": rfc3339(d.updated_at),
                "dueAt": rfc3339(d.updated_at + TimeDelta::days(i64::from(d.rotate_after_days))),
            });
            self.enqueue(tx.as_mut(), &d.tenant_id, WebhookEvent::SecretRotationDue, data).await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }

    async fn deliver_one(
        &self,
        sender: &dyn crate::webhook::WebhookSender,
        o: OutboxRecord,
    ) -> Result<Outcome, ServiceError> {
        let mut tx = self.store.read().await?;
        let Some(hook) = tx.get_webhook(&o.webhook_id).await? else {
            tx.commit().await?;
            return Ok(Outcome::Skipped);
        };
        let incarnation = self.incarnation(tx.as_mut(), &hook.tenant_id).await?;
        let owner = tessera_crypto::KeyOwner { tenant: &hook.tenant_id, incarnation: &incarnation };
        let secret =
            self.keyring.decrypt(tx.as_mut(), owner, &secret_path(&hook.id), "secret", &hook.secret_ciphertext).await?;
        tx.commit().await?;
        let body = serde_json::to_vec(&WebhookDelivery {
            created_at: rfc3339(o.created_at),
            data: o.payload,
            event: o.event,
            id: o.id.clone(),
            tenant_id: o.tenant_id,
        })
        .map_err(|e| ServiceError::internal(format!("a webhook body did not serialise: {e}")))?;
        let started = std::time::Instant::now();
        let at = Utc::now();
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("tessera-event", o.event.as_str().to_owned()),
            ("tessera-delivery", o.id.clone()),
            ("tessera-signature", signature(&secret, at.timestamp(), &body)),
        ];
        drop(secret);
        let outcome = match validate_url(&hook.url, self.opts.allow_loopback) {
            Ok(url) => sender.post(url, headers, body).await,
            Err(_) => SendOutcome::NoAnswer("the stored url is no longer valid".into()),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let attempt = o.attempts.saturating_add(1);
        let (status_code, error) = match &outcome {
            SendOutcome::Answered(s) if (200..300).contains(s) => (Some(*s), None),
            SendOutcome::Answered(s) => (Some(*s), Some(format!("answered {s}"))),
            SendOutcome::NoAnswer(why) => (None, Some(why.chars().take(200).collect::<String>())),
        };
        let now = Utc::now();
        let (result, delivered_at, failed_at, next) = if error.is_none() {
            (Outcome::Delivered, Some(now), None, now)
        } else if attempt >= self.opts.webhooks.max_attempts {
            (Outcome::Failed, None, Some(now), now)
        } else {
            (Outcome::Retrying, None, None, now + delta(backoff(self.opts.webhooks.retry_base, attempt)))
        };
        let label = match result {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            _ => "retry",
        };
        metrics::counter!("tessera_webhook_deliveries_total", "outcome" => label).increment(1);
        if error.is_some() {
            tracing::info!(webhook = %hook.id, delivery = %o.id, attempt, outcome = label, error = ?error, "webhook delivery failed");
        }
        let mut tx = self.store.begin_log_write().await?;
        tx.insert_delivery(&DeliveryRecord {
            outbox_id: o.id.clone(),
            webhook_id: hook.id.clone(),
            event: o.event.as_str().to_owned(),
            attempt,
            at,
            status_code,
            error,
            duration_ms,
        })
        .await?;
        tx.finish_outbox(&o.id, attempt, next, delivered_at, failed_at).await?;
        tx.commit().await?;
        Ok(result)
    }
}

/// `whsec_` + 32 random bytes, base64url.
fn new_secret() -> Zeroizing<String> {
    Zeroizing::new(format!("whsec_{}", random_token().as_str()))
}

/// The associated-data path of a webhook's secret.
fn secret_path(id: &str) -> String {
    format!("_webhooks/{id}")
}

fn no_webhook(id: &str) -> ServiceError {
    ServiceError::not_found(ErrorCode::WebhookNotFound, format!("no webhook {id}"))
}

/// When a data map's time is shown.
pub(crate) fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_long() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(s.len(), 6 + 43);
    }
}
