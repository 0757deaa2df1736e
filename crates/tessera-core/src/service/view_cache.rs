//! Cached reads for the paths that use a connection on every call (resolved
//! view, proxy, tool calls), so that a call costs no database statement.
//!
//! What is cached is what the database holds: the connection's rows and each
//! secret's newest ciphertext, never a plaintext. Values are decrypted on each
//! use with the data keys the keyring already keeps. An entry is used only
//! while the store's change generation is still the one read before the entry
//! was filled, and never after the time-to-live (`TESSERA_CACHE_TTL`). So a
//! write in this process is seen by the very next read; one on another
//! replica as soon as its notice arrives (PostgreSQL), and at the latest after
//! the time-to-live (also for offline commands writing to the same database).

use std::sync::Arc;
use std::time::Duration;

use super::credentials::Tokens;
use super::secrets::{secret_missing, Revealed};
use super::Tessera;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, SecretPath, TenantId};
use crate::ports::{ConnectionContext, IntegrationRecord, SecretVersionRecord, StoreTx};
use tessera_crypto::KeyOwner;

type Latest = Option<(u32, Option<SecretVersionRecord>)>;

struct Stamped<T> {
    generation: u64,
    value: Arc<T>,
}

// By hand: the derive would ask `T: Clone`; only the `Arc` is cloned.
impl<T> Clone for Stamped<T> {
    fn clone(&self) -> Self {
        Self { generation: self.generation, value: self.value.clone() }
    }
}

type Rows<T> = moka::sync::Cache<(String, String), Stamped<T>>;

/// The cached rows, keyed by (tenant, integration) and (tenant, path).
pub(crate) struct ViewCache {
    contexts: Option<Rows<ConnectionContext>>,
    secrets: Option<Rows<Latest>>,
    /// One copy of each integration's record (schema, settings) for every
    /// tenant's cached context: with many tenants the contexts would
    /// otherwise hold as many copies as connections.
    integrations: Option<moka::sync::Cache<String, Arc<IntegrationRecord>>>,
}

impl ViewCache {
    /// Off when `ttl` is zero. Secrets are cached only when their backend
    /// commits with the metadata store, whose change generation covers them.
    pub(crate) fn new(ttl: Duration, secrets_in_store: bool) -> Self {
        if ttl.is_zero() {
            return Self { contexts: None, secrets: None, integrations: None };
        }
        Self {
            contexts: Some(rows(ttl)),
            secrets: secrets_in_store.then(|| rows(ttl)),
            integrations: Some(moka::sync::Cache::builder().max_capacity(10_000).time_to_live(ttl).build()),
        }
    }
}

fn rows<T: Send + Sync + 'static>(ttl: Duration) -> Rows<T> {
    moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build()
}

fn fresh<T: Send + Sync + 'static>(cache: Option<&Rows<T>>, key: &(String, String), generation: u64) -> Option<Arc<T>> {
    cache?.get(key).filter(|s| s.generation == generation).map(|s| s.value)
}

/// One call's reads: from the cache where it can, else from the store
/// (a handle opened on first need, as [`super::MetadataStore::read`]).
pub(crate) struct ViewReader<'a> {
    svc: &'a Tessera,
    /// Read before any row, so an entry filled from rows older than a
    /// concurrent write carries a generation that write has already left.
    generation: u64,
    use_cache: bool,
    tx: Option<Box<dyn StoreTx>>,
    /// Incarnations of the tenants whose context this call read: the data
    /// keys that decrypt their secrets are the ones of that incarnation.
    incarnations: Vec<(String, String)>,
}

impl<'a> ViewReader<'a> {
    pub(crate) fn new(svc: &'a Tessera) -> Self {
        Self { svc, generation: svc.store.change_generation(), use_cache: true, tx: None, incarnations: Vec::new() }
    }

    /// Reads the store only (and refills the cache): after a refresh, whose
    /// result another replica may have written before its notice arrived.
    pub(crate) fn uncached(svc: &'a Tessera) -> Self {
        Self { use_cache: false, ..Self::new(svc) }
    }

    async fn tx(&mut self) -> Result<&mut dyn StoreTx, ServiceError> {
        if self.tx.is_none() {
            self.tx = Some(self.svc.store.read().await?);
        }
        Ok(self.tx.as_deref_mut().expect("opened above"))
    }

    /// The tenant, the integration, the tenant's connection and credential row.
    pub(crate) async fn context(
        &mut self,
        tenant: &TenantId,
        key: &IntegrationKey,
    ) -> Result<Arc<ConnectionContext>, ServiceError> {
        let cache = self.svc.views.contexts.as_ref();
        let cache_key = (tenant.to_string(), key.to_string());
        let hit = if self.use_cache { fresh(cache, &cache_key, self.generation) } else { None };
        let found = match hit {
            Some(hit) => hit,
            None => {
                let mut context = self.tx().await?.get_connection_context(tenant.as_str(), key.as_str()).await?;
                if let (Some(shared), Some(read)) = (self.svc.views.integrations.as_ref(), context.integration.as_mut())
                {
                    // The same record as the shared copy: use that one (equal
                    // in every field, so nothing a reader sees changes).
                    match shared.get(key.as_str()) {
                        Some(known) if *known == **read => *read = known,
                        _ => shared.insert(key.to_string(), read.clone()),
                    }
                }
                let found = Arc::new(context);
                if let Some(cache) = cache {
                    cache.insert(cache_key, Stamped { generation: self.generation, value: found.clone() });
                }
                found
            }
        };
        if let Some(incarnation) = &found.tenant_incarnation {
            if !self.incarnations.iter().any(|(t, _)| t == tenant.as_str()) {
                self.incarnations.push((tenant.to_string(), incarnation.clone()));
            }
        }
        Ok(found)
    }

    /// The incarnation of `tenant`: the platform's, one this call's context
    /// read, or else the store's.
    async fn incarnation(&mut self, tenant: &str) -> Result<String, ServiceError> {
        if let Some((_, i)) = self.incarnations.iter().find(|(t, _)| t == tenant) {
            return Ok(i.clone());
        }
        let svc = self.svc;
        if tenant == crate::ids::PLATFORM_TENANT {
            // Known without a store handle: the platform tenant is never re-created.
            return Ok(svc.platform_owner().incarnation.to_owned());
        }
        let found = svc.incarnation(self.tx().await?, tenant).await?;
        self.incarnations.push((tenant.to_owned(), found.clone()));
        Ok(found)
    }

    /// The newest version of a secret, decrypted (as
    /// [`Tessera::read_version`] with no version asked for).
    pub(crate) async fn latest_secret(&mut self, tenant: &str, path: &str) -> Result<Revealed, ServiceError> {
        let svc = self.svc;
        metrics::counter!("tessera_secret_operations_total", "kind" => "read", "backend" => svc.secrets.name())
            .increment(1);
        let cache = svc.views.secrets.as_ref();
        let cache_key = (tenant.to_owned(), path.to_owned());
        let hit = if self.use_cache { fresh(cache, &cache_key, self.generation) } else { None };
        let latest = match hit {
            Some(hit) => hit,
            None => {
                let found = Arc::new(svc.secrets.latest(self.tx().await?, tenant, path).await?);
                if let Some(cache) = cache {
                    cache.insert(cache_key, Stamped { generation: self.generation, value: found.clone() });
                }
                found
            }
        };
        let (wanted, current) = latest.as_ref().as_ref().ok_or_else(|| secret_missing(path))?;
        let wanted = *wanted;
        let version = current.clone().ok_or_else(|| super::secrets::version_missing(path, wanted))?;
        let incarnation = self.incarnation(tenant).await?;
        let owner = KeyOwner { tenant, incarnation: &incarnation };
        let plaintext = svc
            .reveal(self.tx.as_mut().map(|tx| -> &mut dyn StoreTx { tx.as_mut() }), owner, path, &version, wanted)
            .await?;
        Ok(Revealed { version, plaintext })
    }

    /// The connection's newest tokens (as [`Tessera::read_tokens`]).
    pub(crate) async fn tokens(&mut self, tenant: &TenantId, key: &IntegrationKey) -> Result<Tokens, ServiceError> {
        let revealed = self.latest_secret(tenant.as_str(), SecretPath::credentials(key).as_str()).await?;
        Tokens::from_plaintext(&revealed.plaintext)
    }

    /// Gives the store handle back, if one was opened.
    pub(crate) async fn finish(self) -> Result<(), ServiceError> {
        if let Some(tx) = self.tx {
            tx.commit().await?;
        }
        Ok(())
    }
}
