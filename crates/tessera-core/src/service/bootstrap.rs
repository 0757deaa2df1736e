//! Opening the service: the builder that requires what the service calls
//! out with, the master-key check, the platform tenant and the audit key.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::{connect_page, denials, limits, proxy, usage_stats, view_cache, Ctx, Outbound, Tessera, TesseraOptions};
use crate::audit::{AuditChain, AuditWriter};
use crate::error::ServiceError;
use crate::ids::PLATFORM_TENANT;
use crate::keyring::Keyring;
use crate::ports::{KeyProvider, MetadataStore, StoreTx, TenantRecord};
use crate::secret_store::SecretStore;
use crate::ErrorCode;
use tessera_crypto::KeyOwner;

/// Builds a [`Tessera`]: the store, key provider and credential backend
/// first, then the outbound clients, which cannot be left out ([`open`]
/// exists only once they are given, or the process said it is offline).
///
/// [`open`]: TesseraBuilder::open
pub struct TesseraBuilder<State = NeedsOutbound> {
    store: Arc<dyn MetadataStore>,
    provider: Arc<dyn KeyProvider>,
    secrets: Arc<dyn SecretStore>,
    opts: TesseraOptions,
    outbound: Option<Outbound>,
    state: PhantomData<State>,
}

/// A builder still waiting for its outbound clients.
pub struct NeedsOutbound;
/// A builder that has everything [`TesseraBuilder::open`] needs.
pub struct Complete;

impl Tessera {
    /// Starts building the service over its metadata store, key provider
    /// and credential backend, with default options.
    pub fn builder(
        store: Arc<dyn MetadataStore>,
        provider: Arc<dyn KeyProvider>,
        secrets: Arc<dyn SecretStore>,
    ) -> TesseraBuilder {
        TesseraBuilder { store, provider, secrets, opts: TesseraOptions::default(), outbound: None, state: PhantomData }
    }
}

impl<State> TesseraBuilder<State> {
    /// The service's settings.
    pub fn options(mut self, opts: TesseraOptions) -> Self {
        self.opts = opts;
        self
    }
}

impl TesseraBuilder<NeedsOutbound> {
    /// The clients the service calls providers, MCP servers, probes,
    /// webhook receivers and proxied APIs with.
    pub fn outbound(self, outbound: Outbound) -> TesseraBuilder<Complete> {
        TesseraBuilder {
            store: self.store,
            provider: self.provider,
            secrets: self.secrets,
            opts: self.opts,
            outbound: Some(outbound),
            state: PhantomData,
        }
    }

    /// For a process that calls nothing outside (an admin command): every
    /// outbound call fails with that reason.
    pub fn offline(self) -> TesseraBuilder<Complete> {
        self.outbound(Outbound::offline())
    }
}

impl TesseraBuilder<Complete> {
    /// Opens the service: checks the master key against the store (a wrong
    /// key stops here with a clear error) and makes sure the platform tenant
    /// exists. Must run inside a Tokio runtime (it starts the audit committer).
    pub async fn open(self) -> Result<Tessera, ServiceError> {
        let outbound = self.outbound.expect("a Complete builder holds its outbound clients");
        Tessera::open(self.store, self.provider, self.secrets, self.opts, outbound).await
    }
}

impl Tessera {
    async fn open(
        store: Arc<dyn MetadataStore>,
        provider: Arc<dyn KeyProvider>,
        secrets: Arc<dyn SecretStore>,
        opts: TesseraOptions,
        outbound: Outbound,
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
            outbound,
            instance_id,
            refresh_locks,
            recent_touches,
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
}

/// The owner the audit key is wrapped for: no tenant, and the first keyed seq.
pub(crate) fn audit_key_owner(keyed_from: &str) -> KeyOwner<'_> {
    KeyOwner { tenant: "\u{0}audit", incarnation: keyed_from }
}
