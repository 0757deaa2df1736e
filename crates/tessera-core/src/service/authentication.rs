//! Who is calling: bearer tokens to principals, with the caches and the
//! per-address limits that keep a neighbour's bad tokens from costing a
//! valid caller anything.

use super::{api_keys, denials, Tessera};
use crate::access::{hash_token, root_token_matches, Principal, API_KEY_PREFIX};
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::ids::TenantId;

impl Tessera {
    /// Resolves a bearer token to a principal; unknown tokens are audited
    /// denials. A token that is not valid takes one from its client address's
    /// anonymous bucket; an address whose bucket is empty gets 429 before any
    /// lookup. The root token, cached keys and keys valid within the last
    /// hour pass before that check, so valid callers do not wait on their
    /// neighbours' bad tokens (a key never used before may, for at most the
    /// time until the address's next token).
    pub async fn authenticate(
        &self,
        token: &str,
        request_id: Option<String>,
        client_ip: Option<String>,
    ) -> Result<Principal, ServiceError> {
        if let Some(root) = &self.opts.root_token {
            if root_token_matches(token, root) {
                return self.within_limit(Principal::root());
            }
        }
        let hash = token.starts_with(API_KEY_PREFIX).then(|| hash_token(token));
        let generation = self.store.revocation_generation();
        if let Some(Some(p)) = hash.as_ref().and_then(|h| self.cached_principal(h, generation)) {
            self.note_key_use(&p);
            return self.within_limit(p);
        }
        let recently_valid = hash.as_ref().is_some_and(|h| self.recent_keys.contains_key(h));
        if !recently_valid {
            if let Err(limited) = self.anonymous_bucket_has_tokens(client_ip.as_deref()) {
                self.denials.count(client_ip.as_deref(), denials::Denied::Token);
                return Err(limited);
            }
        }
        let principal = match hash {
            Some(hash) => self.lookup_api_key(hash).await?,
            None => None,
        };
        if let Some(p) = principal {
            self.note_key_use(&p);
            return self.within_limit(p);
        }
        // No principal to borrow a role from: the event says who knocked, not who they claimed to be.
        let event = AuditEvent {
            actor: "anonymous".into(),
            actor_role: "none".into(),
            tenant_id: None,
            action: "auth.denied".into(),
            resource: "token".into(),
            outcome: "denied".into(),
            request_id,
            client_ip,
        };
        Err(self
            .anonymous_denial(
                denials::Denied::Token,
                event,
                ServiceError::unauthenticated("the bearer token is not valid"),
            )
            .await)
    }

    /// A request that sent no bearer token: it takes a token from its
    /// address's anonymous bucket (no audit event, as before).
    pub fn refuse_without_token(&self, client_ip: Option<&str>) -> ServiceError {
        match self.take_anonymous(client_ip) {
            Err(limited) => limited,
            Ok(()) => ServiceError::unauthenticated("send Authorization: Bearer <API key>"),
        }
    }

    /// Refuses at once an address whose anonymous bucket is empty.
    fn anonymous_bucket_has_tokens(&self, client_ip: Option<&str>) -> Result<(), ServiceError> {
        match &self.anonymous {
            Some(limits) => limits.refuse_if_empty(client_ip.unwrap_or("unknown")),
            None => Ok(()),
        }
    }

    /// Takes a token from the address's anonymous bucket.
    pub(crate) fn take_anonymous(&self, client_ip: Option<&str>) -> Result<(), ServiceError> {
        let taken = match &self.anonymous {
            Some(limits) => limits.take(client_ip.unwrap_or("unknown")),
            None => Ok(()),
        };
        if taken.is_err() {
            metrics::counter!("tessera_anonymous_rate_limited_total").increment(1);
        }
        taken
    }

    /// Answers an anonymous request that was denied: takes a token from its
    /// address's bucket (429 when empty, only counted), writes the event if it
    /// is the address's first denial in this interval (durable before the
    /// answer), or else counts it for the interval's aggregated event.
    pub(crate) async fn anonymous_denial(
        &self,
        what: denials::Denied,
        event: AuditEvent,
        refusal: ServiceError,
    ) -> ServiceError {
        let client_ip = event.client_ip.clone();
        if let Err(limited) = self.take_anonymous(client_ip.as_deref()) {
            self.denials.count(client_ip.as_deref(), what);
            return limited;
        }
        self.note_denial(what, event, refusal).await
    }

    /// Writes a denied anonymous request's event if it is its address's first
    /// in this interval (durable before the answer), or else counts it.
    pub(crate) async fn note_denial(
        &self,
        what: denials::Denied,
        event: AuditEvent,
        refusal: ServiceError,
    ) -> ServiceError {
        if self.denials.note(event.client_ip.as_deref(), what) == denials::Record::Write {
            if let Err(e) = self.audit.record(event).await {
                return e;
            }
        }
        refusal
    }

    /// Counts a denied anonymous request (a 429) for the interval's aggregated event.
    pub(crate) fn count_denial(&self, client_ip: Option<&str>, what: denials::Denied) {
        self.denials.count(client_ip, what);
    }

    /// Writes one aggregated event per client address for the denials counted
    /// since the last call (the end of an interval, and at shutdown).
    pub async fn flush_denials(&self) -> Result<usize, ServiceError> {
        let events = self.denials.take();
        let n = events.len();
        let written = futures::future::join_all(events.into_iter().map(|e| self.audit.record(e))).await;
        written.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(n)
    }

    /// Records, at most once a minute per key and off the request's path,
    /// that an API key was accepted (the API keys page's "last used").
    fn note_key_use(&self, p: &Principal) {
        if self.key_touches.contains_key(&p.id) {
            return;
        }
        self.key_touches.insert(p.id.clone(), ());
        let store = self.store.clone();
        let id = p.id.clone();
        tokio::spawn(async move {
            let touched = async {
                // Nothing a cached view shows.
                let mut tx = store.begin_log_write().await?;
                tx.touch_api_key(&id, chrono::Utc::now()).await?;
                tx.commit().await
            };
            if let Err(e) = touched.await {
                tracing::warn!(error = %e, "cannot record an API key's last use");
            }
        });
    }

    /// Passes the principal on if its rate limit allows another request.
    fn within_limit(&self, principal: Principal) -> Result<Principal, ServiceError> {
        if let Some(limits) = &self.limits {
            limits.check(&principal.id)?;
        }
        Ok(principal)
    }

    /// A cached key lookup, if nothing was revoked since it was cached (and
    /// this replica follows revocations at all). When a revocation happened,
    /// every cached data key and recently valid key is dropped too.
    fn cached_principal(&self, hash: &str, generation: u64) -> Option<Option<Principal>> {
        if self.keyring.follow_revocations(generation) {
            self.recent_keys.invalidate_all();
        }
        if !self.store.sees_revocations() {
            return None;
        }
        self.principals.get(hash).filter(|(seen, _)| *seen == generation).map(|(_, p)| p)
    }

    async fn lookup_api_key(&self, hash: String) -> Result<Option<Principal>, ServiceError> {
        // Read before the lookup: a revocation committed meanwhile moves it.
        let generation = self.store.revocation_generation();
        let cacheable = self.store.sees_revocations();
        if let Some(hit) = self.cached_principal(&hash, generation) {
            return Ok(hit);
        }
        let mut tx = self.store.read().await?;
        let found = tx.find_api_key_by_hash(&hash).await?;
        tx.commit().await?;
        let principal = found.map(principal_of_key).transpose()?;
        if principal.is_some() {
            self.recent_keys.insert(hash.clone(), ());
        }
        if cacheable {
            self.principals.insert(hash, (generation, principal.clone()));
        }
        Ok(principal)
    }

    /// Forgets a cached principal (after its key is deleted).
    pub(crate) fn forget_principal(&self, key_hash: &str) {
        self.principals.invalidate(key_hash);
        self.recent_keys.invalidate(key_hash);
    }
}

/// The principal an API key row stands for (the API's bearer token and a
/// console session opened with the key).
pub(crate) fn principal_of_key(rec: crate::ports::ApiKeyRecord) -> Result<Principal, ServiceError> {
    let role = rec.role;
    Ok(Principal {
        scopes: api_keys::scopes_of(rec.scopes.as_ref(), role)?,
        id: rec.id,
        role,
        tenant: rec.tenant_id.as_deref().map(TenantId::parse).transpose()?,
    })
}
