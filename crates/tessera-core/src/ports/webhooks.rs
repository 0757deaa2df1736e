//! Ports for webhooks: subscriptions, the outbox the delivery worker drains
//! (written in the same transaction as the change it reports), the log of
//! delivery attempts, and the rotation policy of tenant secrets whose due
//! dates produce `secret.rotation_due` events.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::StoreResult;
use crate::domain::WebhookEvent;

/// A tenant's webhook.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// `wh_...`.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Subscribed events.
    pub events: Vec<WebhookEvent>,
    /// The signing secret, encrypted under the tenant's data key (`tsr:v..`).
    pub secret_ciphertext: String,
    /// Whether events are sent.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Created by (principal id).
    pub created_by: String,
}

/// One event for one webhook, waiting for (or past) delivery.
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    /// `evt_...`: the `Tessera-Delivery` header and the body's `id`.
    pub id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// What happened.
    pub event: WebhookEvent,
    /// Metadata only: never a secret value or token.
    pub payload: Value,
    /// When the change happened.
    pub created_at: DateTime<Utc>,
    /// Attempts so far.
    pub attempts: u32,
    /// No attempt before this.
    pub next_attempt_at: DateTime<Utc>,
    /// Delivered (a 2xx answer).
    pub delivered_at: Option<DateTime<Utc>>,
    /// Given up after the last attempt.
    pub failed_at: Option<DateTime<Utc>>,
}

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// The outbox row.
    pub outbox_id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The event (filled in when listed).
    pub event: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// The receiver's status; none if it did not answer.
    pub status_code: Option<u16>,
    /// Why it failed, in a few words.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// A secret whose rotation is due.
#[derive(Debug, Clone)]
pub struct RotationDue {
    /// Tenant.
    pub tenant_id: String,
    /// Secret path.
    pub path: String,
    /// The policy.
    pub rotate_after_days: u32,
    /// When the secret was last written.
    pub updated_at: DateTime<Utc>,
}

/// Webhooks, their outbox and delivery log, and secret rotation policies.
#[async_trait]
pub trait WebhookRepo {
    /// Inserts a webhook.
    async fn insert_webhook(&mut self, w: &WebhookRecord) -> StoreResult<()>;
    /// One webhook.
    async fn get_webhook(&mut self, id: &str) -> StoreResult<Option<WebhookRecord>>;
    /// A tenant's webhooks, oldest first.
    async fn list_webhooks(&mut self, tenant: &str) -> StoreResult<Vec<WebhookRecord>>;
    /// Deletes a tenant's webhook (its outbox and log go with it).
    async fn delete_webhook(&mut self, tenant: &str, id: &str) -> StoreResult<bool>;
    /// Adds an event to the outbox.
    async fn insert_outbox(&mut self, o: &OutboxRecord) -> StoreResult<()>;
    /// Claims up to `limit` pending events due at `now` that no live lease
    /// holds (rows another transaction holds are skipped).
    async fn claim_due_outbox(
        &mut self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRecord>>;
    /// Frees every delivery lease `owner` holds (a replica shutting down), so
    /// another replica may claim those events at once. Returns how many.
    async fn release_outbox_leases(&mut self, owner: &str) -> StoreResult<u64>;
    /// Records the outcome of an attempt and releases the lease.
    async fn finish_outbox(
        &mut self,
        id: &str,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        delivered_at: Option<DateTime<Utc>>,
        failed_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Logs an attempt.
    async fn insert_delivery(&mut self, d: &DeliveryRecord) -> StoreResult<()>;
    /// A webhook's newest attempts first, at most `limit`.
    async fn list_deliveries(&mut self, webhook_id: &str, limit: i64) -> StoreResult<Vec<DeliveryRecord>>;
    /// Deletes up to `limit` outbox rows delivered or given up before
    /// `before`, with their delivery log (cascade). Returns how many.
    async fn purge_finished_outbox(&mut self, before: DateTime<Utc>, limit: i64) -> StoreResult<u64>;
    /// Sets (or, with none, clears) a secret's rotation policy; false if the
    /// secret has no head row here.
    async fn set_secret_rotation(&mut self, tenant: &str, path: &str, days: Option<u32>) -> StoreResult<bool>;
    /// A secret's rotation policy.
    async fn get_secret_rotation(&mut self, tenant: &str, path: &str) -> StoreResult<Option<u32>>;
    /// Claims up to `limit` secrets whose last write is older than their
    /// policy and not yet notified since, marking them notified at `now`.
    async fn claim_rotation_due(&mut self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<RotationDue>>;
}
