//! Console sign-in sessions: opened with an API key or the root token, kept
//! server-side (only the token's hash is stored), ended by sign-out, by idle
//! or absolute expiry, by deleting the key, or by changing the root token.
//!
//! The console is an adapter like the JSON API: a session only yields the
//! same [`Ctx`] the key itself would, so every page is subject to the same
//! access checks and audited under the same principal.

use chrono::Utc;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Ctx, Tessera};
use crate::access::{hash_token, Principal, Role};
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::ports::ConsoleSessionRecord;

/// Activity is written at most this often (a page view is not a write).
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A session just opened: the token goes into the cookie, never anywhere else.
pub struct OpenedSession {
    /// The session token (random, 32 bytes, base64url).
    pub token: SecretString,
    /// Who signed in.
    pub principal: Principal,
}

/// A valid session, resolved for one request.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The caller, exactly as the key would authenticate on the API.
    pub ctx: Ctx,
    /// The CSRF token of this session (derived from the session token, so
    /// nothing more is stored; knowing it does not reveal the session).
    pub csrf: String,
}

impl ConsoleSession {
    /// Whether a form's CSRF token is this session's (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf.len() && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The CSRF token of a session token.
fn csrf_of(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tessera-console-csrf\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

fn new_session_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Tessera {
    /// Signs in to the console with an API key or the root token. A bad
    /// token is refused exactly as on the API (rate-limited per address and
    /// audited); a `tenant_service` key may not sign in (audited denial).
    pub async fn console_sign_in(
        &self,
        token: &str,
        request_id: Option<String>,
        client_ip: Option<String>,
    ) -> Result<OpenedSession, ServiceError> {
        let principal = self.authenticate(token, request_id.clone(), client_ip.clone()).await?;
        let ctx = Ctx { principal: principal.clone(), request_id, client_ip };
        if principal.role == Role::TenantService || principal.scopes.is_some() {
            self.audit
                .record(ctx.event(
                    "console.sign_in",
                    principal.tenant.as_ref().map(TenantId::as_str),
                    "console".into(),
                    "denied",
                ))
                .await?;
            return Err(ServiceError::forbidden(
                "a tenant_service key or a scoped key cannot sign in to the console: use an unscoped tenant_admin, \
                 auditor or admin key",
            ));
        }
        // Only the root token authenticates as the root principal.
        let is_root = principal == Principal::root();
        let now = Utc::now();
        let session_token = new_session_token();
        let record = ConsoleSessionRecord {
            id_hash: hash_token(&session_token),
            key_id: (!is_root).then(|| principal.id.clone()),
            root_fingerprint: is_root.then(|| hash_token(token)),
            created_at: now,
            last_seen_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.opts.console.max_age).unwrap_or(chrono::Duration::hours(12)),
        };
        let mut tx = self.store.begin_log_write().await?;
        tx.delete_stale_console_sessions(now, now - self.idle_limit()).await?;
        tx.insert_console_session(&record).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "console.sign_in",
                    principal.tenant.as_ref().map(TenantId::as_str),
                    "console".into(),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(OpenedSession { token: SecretString::from(session_token), principal })
    }

    /// The session a cookie names, if it is still valid: not expired, not
    /// idle too long, its key not deleted, the root token unchanged.
    /// `None` means "sign in again" (nothing is audited: the token is random
    /// and 256 bits long, and it takes from the address's anonymous bucket).
    pub async fn console_session(
        &self,
        token: &str,
        request_id: Option<String>,
        client_ip: Option<String>,
    ) -> Result<Option<ConsoleSession>, ServiceError> {
        let hash = hash_token(token);
        let now = Utc::now();
        let mut tx = self.store.read().await?;
        let found = tx.get_console_session(&hash).await?;
        let principal = match &found {
            Some(s) if s.expires_at > now && s.last_seen_at > now - self.idle_limit() => match &s.key_id {
                Some(key_id) => tx.get_api_key(key_id).await?.map(super::principal_of_key).transpose()?,
                None => {
                    let root_now = self.opts.root_token.as_ref().map(|r| hash_token(r.expose_secret()));
                    let same = match (&root_now, &s.root_fingerprint) {
                        (Some(a), Some(b)) => bool::from(a.as_bytes().ct_eq(b.as_bytes())),
                        _ => false,
                    };
                    same.then(Principal::root)
                }
            },
            _ => None,
        };
        tx.commit().await?;
        let Some(principal) = principal else {
            self.take_anonymous(client_ip.as_deref())?;
            return Ok(None);
        };
        if principal.role == Role::TenantService || principal.scopes.is_some() {
            return Ok(None);
        }
        if let Some(s) = found.filter(|s| now - s.last_seen_at >= TOUCH_EVERY) {
            let mut tx = self.store.begin_log_write().await?;
            tx.touch_console_session(&s.id_hash, now).await?;
            tx.commit().await?;
        }
        Ok(Some(ConsoleSession { ctx: Ctx { principal, request_id, client_ip }, csrf: csrf_of(token) }))
    }

    /// Ends a session (sign-out), audited.
    pub async fn console_sign_out(&self, session: &ConsoleSession, token: &str) -> Result<(), ServiceError> {
        let ctx = &session.ctx;
        let mut tx = self.store.begin_log_write().await?;
        tx.delete_console_session(&hash_token(token)).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "console.sign_out",
                    ctx.principal.tenant.as_ref().map(TenantId::as_str),
                    "console".into(),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How long a session lasts at most (the cookie's `Max-Age`).
    pub fn console_max_age(&self) -> std::time::Duration {
        self.opts.console.max_age
    }

    fn idle_limit(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.opts.console.idle_timeout).unwrap_or(chrono::Duration::minutes(30))
    }
}
