//! Token refresh: the worker's scan (claims due tokens with a lease, so
//! replicas never refresh one twice), the single-flight refresh of an
//! expired token a reader asked for, and what a failure does (backoff,
//! then `unhealthy`, audited).

use crate::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, Utc};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

use super::credentials::Tokens;
use super::oauth_flow::oauth_settings_of;
use super::retry::{backoff, delta};
use super::{Ctx, Tessera};
use crate::access::Principal;
use crate::domain::Health;
use crate::domain::WebhookEvent;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, TenantId};
use crate::oauth::OAuthError;
use crate::ports::CredentialRecord;

/// How long a reader waits for another replica's refresh of the same token.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);
/// How many claimed tokens one replica refreshes at once.
const CONCURRENCY: usize = 8;

/// What one scan of the refresh worker did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    /// Tokens claimed.
    pub claimed: usize,
    /// Refreshed.
    pub refreshed: usize,
    /// Failed (to be retried with backoff, or needing a new flow).
    pub failed: usize,
}

/// The outcome of one refresh attempt.
enum Attempt {
    Refreshed,
    /// The provider refused, failed or could not be reached.
    Failed(OAuthError),
    /// Not refreshable as configured (no OAuth settings or client, no
    /// refresh token): nothing was asked of any provider.
    NotRefreshable(OAuthError),
}

impl Tessera {
    /// One scan: claims up to `limit` tokens due within `refresh_before`
    /// and refreshes them. Also drops expired authorization states.
    pub async fn refresh_due(&self, limit: i64) -> Result<RefreshReport, ServiceError> {
        let now = Utc::now();
        let due_by = now + delta(self.opts.oauth.refresh_before);
        let lease_until = now + delta(self.opts.oauth.lease);
        let mut tx = self.store.begin_log_write().await?;
        let claimed = tx.claim_due_credentials(now, due_by, &self.instance_id, lease_until, limit).await?;
        tx.delete_expired_oauth_states(now).await?;
        tx.commit().await?;
        let mut report = RefreshReport { claimed: claimed.len(), ..RefreshReport::default() };
        // At most CONCURRENCY provider calls in flight; a slow answer holds up only its own slot.
        let attempts: Vec<_> =
            claimed.into_iter().map(|(t, k)| async move { self.refresh_claimed(&t, &k).await }).collect();
        let mut attempts = futures::stream::iter(attempts).buffer_unordered(CONCURRENCY);
        while let Some(result) = attempts.next().await {
            match result {
                Ok(Attempt::Refreshed) => report.refreshed += 1,
                Ok(Attempt::Failed(_) | Attempt::NotRefreshable(_)) => report.failed += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "refresh could not run");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// How many refreshable tokens are due within `refresh_before` (the queue size).
    pub async fn refresh_queue_size(&self) -> Result<i64, ServiceError> {
        let mut tx = self.store.read().await?;
        let n = tx.count_due_credentials(Utc::now() + delta(self.opts.oauth.refresh_before)).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Makes sure an expired access token (or, given `stale_before`, one
    /// stored before then: an upstream just refused it) is refreshed before
    /// a reader gets it: one refresh per token however many readers ask at
    /// once (a lock per connection in this process, a lease across replicas).
    pub(crate) async fn refresh_stale(
        &self,
        tenant: &TenantId,
        key: &IntegrationKey,
        stale_before: Option<DateTime<Utc>>,
    ) -> Result<(), ServiceError> {
        let lock = self
            .refresh_locks
            .get_with((tenant.to_string(), key.to_string()), || Arc::new(tokio::sync::Mutex::new(())));
        let _one_at_a_time = lock.lock().await;
        let started = std::time::Instant::now();
        loop {
            let now = Utc::now();
            let mut tx = self.store.read().await?;
            let current = tx.get_credential(tenant.as_str(), key.as_str()).await?;
            tx.commit().await?;
            let Some(current) = current else { return Ok(()) };
            let stale = stale_before.is_some_and(|t| current.updated_at < t);
            if !is_expired(&current, now) && !stale {
                return Ok(());
            }
            if !current.has_refresh_token {
                return Err(ServiceError::conflict(
                    ErrorCode::CredentialExpired,
                    format!("the access token for {key} expired and there is no refresh token; connect again"),
                ));
            }
            let mut tx = self.store.begin_write().await?;
            let claimed = tx
                .claim_credential(
                    tenant.as_str(),
                    key.as_str(),
                    now,
                    &self.instance_id,
                    now + delta(self.opts.oauth.lease),
                )
                .await?;
            tx.commit().await?;
            if claimed {
                return match self.refresh_claimed(tenant.as_str(), key.as_str()).await? {
                    Attempt::Refreshed => Ok(()),
                    Attempt::Failed(e) => Err(ServiceError::upstream(
                        ErrorCode::OauthRefreshFailed,
                        format!("the access token for {key} expired and the provider did not refresh it: {}", e.code()),
                    )),
                    // A state to fix here, not an upstream failure: 409 as with no refresh token.
                    Attempt::NotRefreshable(e) => Err(ServiceError::conflict(
                        ErrorCode::CredentialExpired,
                        format!(
                            "the access token for {key} expired and cannot be refreshed ({}); connect again",
                            e.code()
                        ),
                    )),
                };
            }
            // Another replica holds the lease: wait for its answer.
            if started.elapsed() > WAIT_FOR_OTHER {
                return Err(ServiceError::unavailable(
                    ErrorCode::RefreshInProgress,
                    "another replica is refreshing this token; retry shortly",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Refreshes a token this process holds the lease on, and records the outcome.
    async fn refresh_claimed(&self, tenant: &str, key: &str) -> Result<Attempt, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        let ctx = worker_ctx();
        let mut tx = self.store.read().await?;
        let integration = Self::require_integration(tx.as_mut(), &key).await?;
        let prepared = match oauth_settings_of(&integration) {
            Ok(settings) => match self.client_config(tx.as_mut(), &integration, &settings).await {
                Ok(client) => Ok((settings, client, self.read_tokens(tx.as_mut(), &tenant, &key).await?)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        tx.commit().await?;
        let (_settings, client, old) = match prepared {
            Ok(p) => p,
            Err(e) => {
                // Not refreshable as configured: a permanent failure until an admin fixes it.
                let why = OAuthError::Rejected { code: e.code.as_str().to_owned(), description: None };
                self.record_failure(&ctx, &tenant, &key, &why).await?;
                return Ok(Attempt::NotRefreshable(why));
            }
        };
        let Some(refresh_token) = old.refresh.as_ref().map(|r| SecretString::from(r.as_str())) else {
            let why = OAuthError::Rejected { code: "no_refresh_token".into(), description: None };
            self.record_failure(&ctx, &tenant, &key, &why).await?;
            return Ok(Attempt::NotRefreshable(why));
        };
        metrics::counter!("tessera_token_refresh_attempts_total").increment(1);
        match self.outbound.oauth.refresh(&client, &refresh_token).await {
            Ok(answer) => {
                let now = Utc::now();
                let tokens = Tokens {
                    access: Zeroizing::new(answer.access_token.expose_secret().to_owned()),
                    // A provider that rotates refresh tokens sends a new one; else the old one stays valid.
                    refresh: match &answer.refresh_token {
                        Some(r) => Some(Zeroizing::new(r.expose_secret().to_owned())),
                        None => old.refresh.clone(),
                    },
                };
                let expires_at =
                    answer.expires_in.filter(|s| *s > 0).map(|s| now + TimeDelta::seconds(s.min(315_360_000) as i64));
                self.record_refresh(&ctx, &tenant, &key, tokens, answer.token_type, answer.scopes, expires_at, now)
                    .await?;
                Ok(Attempt::Refreshed)
            }
            Err(e) => {
                metrics::counter!("tessera_token_refresh_failures_total").increment(1);
                tracing::warn!(%tenant, integration = %key, error = %e, "token refresh failed");
                self.record_failure(&ctx, &tenant, &key, &e).await?;
                Ok(Attempt::Failed(e))
            }
        }
    }

    /// Stores refreshed tokens (access and a rotated refresh token in one
    /// version, with the metadata, in one transaction) and releases the lease.
    #[allow(clippy::too_many_arguments)]
    async fn record_refresh(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
        tokens: Tokens,
        token_type: String,
        scopes: Option<Vec<String>>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let resource = format!("tenants/{tenant}/integrations/{key}/credentials");
        self.audit_before_external_write(ctx, "oauth.refresh", tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let Some(mut cred) = tx.lock_credential(tenant.as_str(), key.as_str()).await? else {
            // Revoked while the provider answered: keep nothing.
            return Ok(());
        };
        if cred.lease_owner.as_deref() != Some(self.instance_id.as_str()) {
            // The lease outlived: the tokens just issued are still the newest, so they are kept.
            tracing::warn!(%tenant, integration = %key, "refresh lease lost before the answer was stored");
        }
        self.write_tokens(tx.as_mut(), ctx, tenant, key, &tokens).await?;
        let recovered = cred.refresh_failures > 0 || cred.needs_reauth;
        cred.token_type = token_type;
        if let Some(s) = scopes {
            cred.scopes = s;
        }
        cred.has_refresh_token = tokens.refresh.is_some();
        cred.expires_at = expires_at;
        cred.updated_at = now;
        cred.last_refreshed_at = Some(now);
        cred.refresh_failures = 0;
        cred.next_attempt_at = None;
        cred.needs_reauth = false;
        cred.lease_owner = None;
        cred.lease_until = None;
        tx.upsert_credential(&cred).await?;
        if recovered {
            self.set_health(tx.as_mut(), tenant, key, Some(Health::Healthy), now).await?;
        }
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("oauth.refresh", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed refresh: backoff, `needs_reauth` on a permanent
    /// refusal, `unhealthy` after too many failures; audited.
    async fn record_failure(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
        error: &OAuthError,
    ) -> Result<(), ServiceError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        let Some(mut cred) = tx.lock_credential(tenant.as_str(), key.as_str()).await? else { return Ok(()) };
        cred.refresh_failures = cred.refresh_failures.saturating_add(1);
        cred.needs_reauth = !error.is_transient();
        cred.next_attempt_at = Some(now + delta(backoff(self.opts.oauth.retry_base, cred.refresh_failures)));
        cred.lease_owner = None;
        cred.lease_until = None;
        tx.upsert_credential(&cred).await?;
        let unhealthy = cred.needs_reauth || cred.refresh_failures >= self.opts.oauth.max_failures;
        if unhealthy {
            self.set_health(tx.as_mut(), tenant, key, Some(Health::Unhealthy), now).await?;
        }
        let data = serde_json::json!({
            "integration": key.as_str(),
            "error": error.code(),
            "attempt": cred.refresh_failures,
            "needsReauth": cred.needs_reauth,
            "nextAttemptAt": super::webhooks::opt_time(cred.next_attempt_at),
        });
        self.enqueue(tx.as_mut(), tenant.as_str(), WebhookEvent::OAuthRefreshFailed, data).await?;
        let resource = format!(
            "tenants/{tenant}/integrations/{key}/credentials?error={}&attempt={}",
            error.code(),
            cred.refresh_failures
        );
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("oauth.refresh", Some(tenant.as_str()), resource, "failure")])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_health(
        &self,
        tx: &mut dyn crate::ports::StoreTx,
        tenant: &TenantId,
        key: &IntegrationKey,
        status: Option<Health>,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        if let Some(mut conn) = tx.get_connection(tenant.as_str(), key.as_str()).await? {
            let previous = conn.health_status.take();
            conn.health_status = status;
            conn.last_health_check = Some(now);
            tx.upsert_connection(&conn).await?;
            if previous != status {
                let data = serde_json::json!({"integration": key.as_str(), "previous": previous, "status": status});
                self.enqueue(tx, tenant.as_str(), WebhookEvent::HealthChanged, data).await?;
            }
        }
        Ok(())
    }
}

/// Whether the access token has expired (with a little margin for the
/// time the caller needs to use it).
pub(crate) fn is_expired(cred: &CredentialRecord, now: DateTime<Utc>) -> bool {
    cred.expires_at.is_some_and(|at| at <= now + TimeDelta::seconds(5))
}

fn worker_ctx() -> Ctx {
    Ctx { principal: Principal::worker("refresh-worker"), request_id: None, client_ip: None }
}
