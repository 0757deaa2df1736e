//! The service: one struct, [`Tessera`], whose methods are every use case.
//! Adapters call these methods with a [`Ctx`] naming the caller; each method
//! checks access, validates, opens one transaction, and audits.

mod api_keys;
mod apply;
mod audit_log;
mod backfill;
mod configs;
mod connect_page;
mod connect_sessions;
mod connections;
mod console_sessions;
mod credentials;
mod denials;
mod health;
mod integrations;
mod keys;
mod limits;
mod oauth_flow;
mod proxy;
mod proxy_call;
mod readiness;
mod refresh;
mod retry;
mod secret_kv;
mod secrets;
mod shutdown;
mod tenants;
mod tools;
mod transit;
mod usage;
mod usage_stats;
mod view_cache;
mod views;
mod webhooks;

use crate::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::SecretString;

pub use api_keys::{CreatedApiKey, ScopeInput};
pub use audit_log::{AuditEventView, AuditEvents, AuditQuery};
pub use backfill::BackfillReport;
pub use configs::{ConfigEntry, ConfigList};
pub use connect_page::{ConnectEnd, ConnectFields, ConnectItem, ConnectKind, ConnectOrigin, ConnectPageView};
pub use connect_sessions::{
    ConnectSessionInput, ConnectSessionView, ConnectedIntegration, CreatedConnectSession, EndUser, MAX_EXPIRES_IN,
};
pub use console_sessions::{ConsoleSession, OpenedSession};
pub use credentials::{
    env_prefix, split_scopes, CredentialInput, CredentialView, RevokedCredentials, Scopes, StoredCredentials,
};
pub use health::{HealthResult, MetricsSnapshot, TenantHealth, TenantsHealth, TroubledConnection};
pub use integrations::IntegrationInput;
pub use keys::{MasterRotation, RewrapReport};
pub use limits::RateLimit;
pub use oauth_flow::{AuthorizationStart, CallbackOutcome, CallbackParams};
pub use proxy_call::{ProxyAnswer, ProxyLimits, ProxyRequest};
pub use readiness::{Readiness, ReadinessCheck};
pub use refresh::RefreshReport;
pub use secret_kv::SecretVersionRead;
pub use secrets::{SecretPayload, SecretWrite};
pub use shutdown::ReleasedLeases;
pub use tools::{ToolInvocation, ToolResult};
pub use transit::{DataKeyOut, Sealed, TransitKeyView};
pub use usage_stats::{UsageReport, UsageRow};
pub use views::*;
pub use webhooks::{
    CreatedWebhook, DeliveryLog, DeliveryView, WebhookList, WebhookOptions, WebhookReport, WebhookView,
};

use crate::access::{hash_token, root_token_matches, Principal, Role, API_KEY_PREFIX};
use crate::audit::{AuditChain, AuditEvent, AuditWriter};
use crate::error::ServiceError;
use crate::ids::{TenantId, PLATFORM_TENANT};
use crate::keyring::Keyring;
use crate::oauth::OAuthClient;
use crate::ports::{KeyProvider, MetadataStore, StoreTx, TenantRecord};
use crate::secret_store::SecretStore;
use tessera_crypto::KeyOwner;

/// Settings of the service layer.
pub struct TesseraOptions {
    /// How many versions of a secret are kept.
    pub max_versions: u32,
    /// `TESSERA_ROOT_TOKEN`, accepted as an admin token.
    pub root_token: Option<SecretString>,
    /// How long an API key lookup is cached (deletions take effect on other
    /// replicas within this time; on this replica at once).
    pub principal_cache_ttl: Duration,
    /// How long an unwrapped data key stays cached.
    pub key_cache_ttl: Duration,
    /// Longest a cached connection view (rows and ciphertext, never
    /// plaintext) is used; zero turns the cache off. Writes here invalidate it
    /// at once, other replicas' writes as soon as their notice arrives.
    pub view_cache_ttl: Duration,
    /// OAuth flows and token refresh.
    pub oauth: OAuthOptions,
    /// Per-caller rate limit (`TESSERA_RATE_LIMIT`); none: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Per-client-address limit of anonymous requests (`TESSERA_RATE_LIMIT_ANONYMOUS`):
    /// requests that fail authentication and OAuth callbacks; none: unlimited.
    pub anonymous_rate_limit: Option<RateLimit>,
    /// Webhook delivery.
    pub webhooks: WebhookOptions,
    /// `TESSERA_ALLOW_LOOPBACK_HTTP`: webhooks may target this machine.
    pub allow_loopback: bool,
    /// Console sign-in sessions.
    pub console: ConsoleOptions,
}

/// How long console sessions last.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// A session unused this long ends (`TESSERA_CONSOLE_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, whatever its use
    /// (`TESSERA_CONSOLE_SESSION_MAX_AGE`).
    pub max_age: Duration,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self { idle_timeout: Duration::from_secs(30 * 60), max_age: Duration::from_secs(12 * 3600) }
    }
}

/// Settings of OAuth flows and token refresh.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// `redirect_uri`s a flow may end at (`TESSERA_ALLOWED_REDIRECT_URIS`), exact matches.
    pub allowed_redirect_uris: Vec<String>,
    /// Tessera's public base URL, for default callback URLs (`TESSERA_PUBLIC_URL`).
    pub public_url: String,
    /// `<INTEGRATION>_CLIENT_ID` / `_CLIENT_SECRET` / `_REDIRECT_URI`, by prefix (`NOTION`).
    pub env_clients: HashMap<String, EnvClient>,
    /// How long an authorization flow may take.
    pub state_ttl: Duration,
    /// Refresh this long before expiry (`TESSERA_REFRESH_BEFORE`).
    pub refresh_before: Duration,
    /// First retry delay after a failed refresh; doubles per failure, at most an hour.
    pub retry_base: Duration,
    /// Failures in a row after which the connection is marked unhealthy.
    pub max_failures: u32,
    /// How long a replica's claim on a token lasts (longer than any provider call).
    pub lease: Duration,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        Self {
            allowed_redirect_uris: Vec::new(),
            public_url: "http://127.0.0.1:7300".into(),
            env_clients: HashMap::new(),
            state_ttl: Duration::from_secs(600),
            refresh_before: Duration::from_secs(300),
            retry_base: Duration::from_secs(30),
            max_failures: 5,
            lease: Duration::from_secs(60),
        }
    }
}

impl OAuthOptions {
    /// The environment's client settings for an integration key.
    pub fn env_client(&self, key: &str) -> Option<&EnvClient> {
        self.env_clients.get(&env_prefix(key))
    }
}

/// An OAuth client from the environment.
#[derive(Debug, Clone, Default)]
pub struct EnvClient {
    /// `<I>_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `<I>_CLIENT_SECRET`.
    pub client_secret: Option<SecretString>,
    /// `<I>_REDIRECT_URI`.
    pub redirect_uri: Option<String>,
}

impl Default for TesseraOptions {
    fn default() -> Self {
        Self {
            max_versions: 10,
            root_token: None,
            principal_cache_ttl: Duration::from_secs(5),
            key_cache_ttl: Duration::from_secs(300),
            view_cache_ttl: Duration::from_secs(5),
            oauth: OAuthOptions::default(),
            rate_limit: None,
            anonymous_rate_limit: None,
            webhooks: WebhookOptions::default(),
            allow_loopback: false,
            console: ConsoleOptions::default(),
        }
    }
}

/// Who is calling, for access checks and audit rows.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The authenticated caller.
    pub principal: Principal,
    /// The request id, if the adapter has one.
    pub request_id: Option<String>,
    /// The client's address, if known.
    pub client_ip: Option<String>,
}

impl Ctx {
    /// A context for an admin CLI command.
    pub fn cli() -> Self {
        Self { principal: Principal::local_admin(), request_id: None, client_ip: None }
    }

    pub(crate) fn event(&self, action: &str, tenant: Option<&str>, resource: String, outcome: &str) -> AuditEvent {
        AuditEvent {
            actor: self.principal.id.clone(),
            actor_role: self.principal.role.as_str().to_owned(),
            tenant_id: tenant.map(str::to_owned),
            action: action.to_owned(),
            resource,
            outcome: outcome.to_owned(),
            request_id: self.request_id.clone(),
            client_ip: self.client_ip.clone(),
        }
    }
}

/// The service layer.
pub struct Tessera {
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) keyring: Keyring,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) audit: AuditWriter,
    pub(crate) opts: TesseraOptions,
    /// API key lookups by key hash, with the revocation generation read
    /// before each lookup: used only while no tenant or key was deleted since.
    principals: moka::sync::Cache<String, (u64, Option<Principal>)>,
    /// Hashes of keys that were valid within the last hour: while its address's
    /// anonymous bucket is empty, only such a key is still looked up, so a
    /// neighbour's bad tokens (same NAT or proxy) do not lock out a valid key
    /// whose cached principal expired.
    recent_keys: moka::sync::Cache<String, ()>,
    /// Keys whose `last_used_at` was written within the last minute.
    key_touches: moka::sync::Cache<String, ()>,
    /// Calls OAuth providers; none in offline admin commands.
    pub(crate) oauth_client: Option<Arc<dyn OAuthClient>>,
    /// Names this process in refresh leases.
    pub(crate) instance_id: String,
    /// One lock per connection, so concurrent readers of an expired token
    /// wait for one refresh instead of each starting their own.
    pub(crate) refresh_locks: moka::sync::Cache<(String, String), Arc<tokio::sync::Mutex<()>>>,
    /// Connections whose `lastUsedAt` was written recently (the write is throttled).
    pub(crate) recent_touches: moka::sync::Cache<(String, String), ()>,
    /// Calls tools on MCP servers; none in offline admin commands.
    pub(crate) mcp_client: Option<Arc<dyn crate::mcp::McpClient>>,
    /// Sends health probes; none in offline admin commands.
    pub(crate) http_probe: Option<Arc<dyn crate::health::HttpProbe>>,
    /// Sends webhook deliveries; none in offline admin commands.
    pub(crate) webhook_sender: Option<Arc<dyn crate::webhook::WebhookSender>>,
    /// Sends proxied calls; none in offline admin commands.
    pub(crate) upstream: Option<proxy_call::ProxyLeg>,
    /// Per-caller token buckets, when a rate limit is set.
    limits: Option<limits::CallerLimits>,
    /// Per-address token buckets of anonymous requests, when that limit is set.
    anonymous: Option<limits::AddressLimits>,
    /// This interval's denials of anonymous requests, per client address.
    denials: denials::DenialLog,
    /// Rate limits of the connect page, per session and per client address.
    connect_limits: connect_page::ConnectLimits,
    /// Connection rows and ciphertext of the per-call paths.
    pub(crate) views: view_cache::ViewCache,
    /// Uses of connections not yet added to the store.
    pub(crate) usage: usage_stats::UsageCounts,
    /// When this process last purged old webhook events.
    pub(crate) webhook_purged_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// The platform tenant's incarnation (it can never be deleted).
    platform_incarnation: String,
}

impl Tessera {
    /// Opens the service: checks the master key against the store (a wrong key
    /// stops here with a clear error) and makes sure the platform tenant exists.
    /// Must run inside a Tokio runtime (it starts the audit committer).
    pub async fn open(
        store: Arc<dyn MetadataStore>,
        provider: Arc<dyn KeyProvider>,
        secrets: Arc<dyn SecretStore>,
        opts: TesseraOptions,
    ) -> Result<Self, ServiceError> {
        let keyring = Keyring::new(provider, 10_000, opts.key_cache_ttl);
        // Replicas starting together on an empty PostgreSQL race to record the
        // key check and the platform tenant; the loser retries and finds them.
        let mut attempt = 0;
        let (platform_incarnation, chain) = loop {
            attempt += 1;
            match Self::initialise(store.as_ref(), &keyring).await {
                Err(e) if e.kind == crate::ErrorKind::Conflict && attempt < 3 => continue,
                other => break other?,
            }
        };
        let principals =
            moka::sync::Cache::builder().max_capacity(100_000).time_to_live(opts.principal_cache_ttl).build();
        let audit = AuditWriter::spawn(store.clone(), chain);
        let recent_keys =
            moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(3600)).build();
        let key_touches =
            moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(60)).build();
        let refresh_locks = moka::sync::Cache::builder().time_to_idle(Duration::from_secs(600)).build();
        let instance_id = format!("tessera-{}", uuid::Uuid::new_v4().simple());
        let recent_touches =
            moka::sync::Cache::builder().max_capacity(100_000).time_to_live(proxy::touch_interval()).build();
        let views = view_cache::ViewCache::new(opts.view_cache_ttl, secrets.is_transactional());
        Ok(Self {
            store,
            keyring,
            secrets,
            audit,
            principals,
            recent_keys,
            key_touches,
            oauth_client: None,
            instance_id,
            refresh_locks,
            recent_touches,
            mcp_client: None,
            http_probe: None,
            webhook_sender: None,
            upstream: None,
            limits: opts.rate_limit.map(limits::CallerLimits::new),
            anonymous: opts.anonymous_rate_limit.map(limits::AddressLimits::new),
            denials: denials::DenialLog::default(),
            connect_limits: connect_page::ConnectLimits::default(),
            views,
            usage: usage_stats::UsageCounts::default(),
            webhook_purged_at: std::sync::Mutex::new(None),
            platform_incarnation,
            opts,
        })
    }

    /// Checks the master key, creates the platform tenant and the audit key
    /// if missing; returns the platform tenant's incarnation and the chain.
    async fn initialise(store: &dyn MetadataStore, keyring: &Keyring) -> Result<(String, AuditChain), ServiceError> {
        let mut tx = store.begin_write().await?;
        keyring.verify_or_record_kek(tx.as_mut()).await?;
        let chain = Self::audit_chain_of(tx.as_mut(), keyring).await?;
        let incarnation = match tx.get_tenant(PLATFORM_TENANT).await? {
            Some(platform) => platform.incarnation,
            None => {
                let platform = TenantRecord::new(PLATFORM_TENANT, "Platform");
                tx.insert_tenant(&platform).await?;
                keyring.add_version(tx.as_mut(), PLATFORM_TENANT).await?;
                platform.incarnation
            }
        };
        tx.commit().await?;
        Ok((incarnation, chain))
    }

    /// The store's audit chain: its key unwrapped, or (a store that predates
    /// it, or a new one) a new key that keys every event from the next seq on;
    /// the first keyed event records that.
    async fn audit_chain_of(tx: &mut dyn StoreTx, keyring: &Keyring) -> Result<AuditChain, ServiceError> {
        if let Some((wrapped, from)) = tx.get_audit_key().await? {
            let from_text = from.to_string();
            let owner = audit_key_owner(&from_text);
            let key = keyring.provider().unwrap(owner, 1, &tessera_crypto::WrappedDataKey(wrapped)).await.map_err(
                |e| match e.code {
                    ErrorCode::WrongMasterKey => ServiceError::new(
                        crate::ErrorKind::Integrity,
                        ErrorCode::WrongMasterKey,
                        "the audit key was wrapped by another master key; check TESSERA_MASTER_KEY",
                    ),
                    _ => e,
                },
            )?;
            return Ok(AuditChain::keyed(key.expose_bytes(), from));
        }
        let (head, _) = tx.lock_audit_head().await?;
        let from = head + 1;
        let from_text = from.to_string();
        // A random 32-byte key, wrapped like a data key; its wrap binds the
        // first keyed seq, so the start of the keyed chain cannot be moved.
        let key = tessera_crypto::DataKey::generate(1);
        let wrapped = keyring.provider().wrap(audit_key_owner(&from_text), 1, &key).await?;
        tx.set_audit_key(&wrapped.0, from).await?;
        let chain = AuditChain::keyed(key.expose_bytes(), from);
        let event = Ctx::cli().event("audit.key_create", None, format!("audit/key?keyedFrom={from}"), "success");
        chain.append_in_tx(tx, vec![event]).await?;
        Ok(chain)
    }

    /// How audit events are hashed (for offline commands and checkpoints).
    pub fn audit_chain(&self) -> &AuditChain {
        self.audit.chain()
    }

    /// Whose data keys the platform tenant's are.
    pub(crate) fn platform_owner(&self) -> KeyOwner<'_> {
        KeyOwner { tenant: PLATFORM_TENANT, incarnation: &self.platform_incarnation }
    }

    /// The incarnation of `tenant` as `tx` sees it; "no such tenant" if none.
    pub(crate) async fn incarnation(&self, tx: &mut dyn StoreTx, tenant: &str) -> Result<String, ServiceError> {
        if tenant == PLATFORM_TENANT {
            return Ok(self.platform_incarnation.clone());
        }
        Ok(tx.get_tenant(tenant).await?.ok_or_else(ServiceError::tenant_not_found)?.incarnation)
    }

    /// Sets the client that calls OAuth providers (flows, refresh, revocation).
    pub fn set_oauth_client(&mut self, client: Arc<dyn OAuthClient>) {
        self.oauth_client = Some(client);
    }

    /// Sets the client that calls tools on MCP servers.
    pub fn set_mcp_client(&mut self, client: Arc<dyn crate::mcp::McpClient>) {
        self.mcp_client = Some(client);
    }

    /// The OAuth client, or a clear error where none is set.
    pub(crate) fn outbound(&self) -> Result<&Arc<dyn OAuthClient>, ServiceError> {
        self.oauth_client
            .as_ref()
            .ok_or_else(|| ServiceError::unavailable(ErrorCode::OauthUnavailable, "this process makes no OAuth calls"))
    }

    /// The credential backend's name.
    pub fn secret_backend(&self) -> &'static str {
        self.secrets.name()
    }

    /// The metadata store's backend name.
    pub fn store_backend(&self) -> &'static str {
        self.store.backend_name()
    }

    /// The metadata store (for offline admin commands such as `migrate`).
    pub fn metadata_store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// The credential backend in use.
    pub fn secret_store(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }

    /// The keyring (for offline admin commands such as `migrate`).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

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

    /// Checks the caller may read `tenant`; a refusal is an audited denial.
    pub(crate) async fn allow_tenant(&self, ctx: &Ctx, tenant: &TenantId) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_tenant(tenant)).await
    }

    /// Checks the caller may `access` the tenant secret at `path` (a scoped
    /// key: within its scopes); a refusal is an audited denial.
    pub(crate) async fn allow_secret(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        path: &str,
        access: crate::access::Access,
    ) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_secret(tenant, path, access)).await
    }

    /// Checks the caller may `access` the tenant's connection to `key`.
    pub(crate) async fn allow_integration(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &str,
        access: crate::access::Access,
    ) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_integration(tenant, key, access)).await
    }

    /// Checks the caller may change `tenant`; a refusal is an audited denial.
    pub(crate) async fn allow_tenant_write(&self, ctx: &Ctx, tenant: &TenantId) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_tenant_write(tenant)).await
    }

    /// Checks the caller is an admin; a refusal is an audited denial.
    pub(crate) async fn allow_admin(&self, ctx: &Ctx) -> Result<(), ServiceError> {
        self.audit_denial(ctx, None, ctx.principal.ensure_admin()).await
    }

    pub(crate) async fn audit_denial(
        &self,
        ctx: &Ctx,
        tenant: Option<&TenantId>,
        check: Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        if let Err(denied) = check {
            let resource = tenant.map_or_else(|| "admin".to_owned(), |t| format!("tenants/{t}"));
            self.audit.record(ctx.event("auth.denied", tenant.map(TenantId::as_str), resource, "denied")).await?;
            return Err(denied);
        }
        Ok(())
    }

    /// With a backend outside the metadata store (file, vault), a change
    /// cannot commit atomically with its audit event; so that no change is
    /// ever unaudited, an `attempt` event is made durable first. (With the
    /// database backend the change and its `success` event share one
    /// transaction and this does nothing.)
    pub(crate) async fn audit_before_external_write(
        &self,
        ctx: &Ctx,
        action: &str,
        tenant: &TenantId,
        resource: &str,
    ) -> Result<(), ServiceError> {
        if self.secrets.is_transactional() {
            return Ok(());
        }
        self.audit.record_durable(ctx.event(action, Some(tenant.as_str()), resource.to_owned(), "attempt")).await
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
    let role = Role::parse(&rec.role)?;
    Ok(Principal {
        scopes: api_keys::scopes_of(rec.scopes.as_ref(), role)?,
        id: rec.id,
        role,
        tenant: rec.tenant_id.as_deref().map(TenantId::parse).transpose()?,
    })
}

/// The owner the audit key is wrapped for: no tenant, and the first keyed seq.
pub(crate) fn audit_key_owner(keyed_from: &str) -> KeyOwner<'_> {
    KeyOwner { tenant: "\u{0}audit", incarnation: keyed_from }
}

/// Timestamps as the API shows them: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
