//! The keyring: per-tenant data keys, wrapped by the key provider, cached
//! unwrapped for a short while, and the one place values are encrypted and
//! decrypted.
//!
//! Decrypted values are never cached; only unwrapped data keys are, bounded
//! and with a time limit, and they zeroize when evicted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tessera_crypto::{ciphertext_key_version, Aad, CryptoError, DataKey, MasterKey, WrappedDataKey};
use zeroize::Zeroizing;

use crate::error::{ErrorKind, ServiceError};
use crate::ports::{DataKeyRecord, KeyProvider, StoreTx};

/// Reserved "tenant" under which the key-encryption key's check value is wrapped.
const KEK_CHECK_TENANT: &str = "\u{0}kek-check";

/// The `local` key provider: a 32-byte master key held in memory.
pub struct LocalKeyProvider {
    master: MasterKey,
}

impl LocalKeyProvider {
    /// Uses this master key.
    pub fn new(master: MasterKey) -> Self {
        Self { master }
    }
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    fn kek_id(&self) -> String {
        format!("local:{}", self.master.id())
    }

    async fn wrap(&self, tenant: &str, version: u32, dek: &DataKey) -> Result<WrappedDataKey, ServiceError> {
        Ok(self.master.wrap(tenant, version, dek))
    }

    async fn unwrap(&self, tenant: &str, version: u32, wrapped: &WrappedDataKey) -> Result<DataKey, ServiceError> {
        match self.master.unwrap(tenant, version, wrapped) {
            Ok(k) => Ok(k),
            Err(CryptoError::Authentication) if wrapped.kek_id() != Some(self.master.id()) => Err(ServiceError::new(
                ErrorKind::Integrity,
                "wrong_master_key",
                format!(
                    "the data key of tenant {tenant} (version {version}) was wrapped by another master key; check TESSERA_MASTER_KEY",
                ),
            )),
            Err(e) => Err(integrity(&format!("data key of tenant {tenant} version {version}"), &e)),
        }
    }

    async fn check_value(&self) -> Result<String, ServiceError> {
        Ok(self.master.wrap(KEK_CHECK_TENANT, 0, &DataKey::generate(0)).0)
    }

    async fn verify_check_value(&self, check: &str) -> Result<(), ServiceError> {
        self.master
            .unwrap(KEK_CHECK_TENANT, 0, &WrappedDataKey(check.to_owned()))
            .map(|_| ())
            .map_err(|_| {
                ServiceError::new(
                    ErrorKind::Integrity,
                    "wrong_master_key",
                    "the master key does not match the one this store was created with (TESSERA_MASTER_KEY / PLATFORM_CREDENTIAL_KEY)",
                )
            })
    }
}

fn integrity(what: &str, e: &CryptoError) -> ServiceError {
    ServiceError::new(ErrorKind::Integrity, "decryption_failed", format!("{what} could not be decrypted: {e}"))
}

/// Per-tenant data keys and value encryption.
pub struct Keyring {
    provider: Arc<dyn KeyProvider>,
    deks: moka::sync::Cache<(String, u32), Arc<DataKey>>,
    latest: moka::sync::Cache<String, u32>,
}

impl Keyring {
    /// A keyring over a provider; caches at most `capacity` unwrapped keys for `ttl`.
    pub fn new(provider: Arc<dyn KeyProvider>, capacity: u64, ttl: Duration) -> Self {
        // A zero time-to-live turns the cache off (every use unwraps).
        let (capacity, ttl) = if ttl.is_zero() { (0, Duration::from_millis(1)) } else { (capacity, ttl) };
        Self {
            provider,
            deks: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            // Another replica may rotate a tenant's key; new writes pick the new
            // version up within this time. Old versions stay readable regardless.
            latest: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(Duration::from_secs(30)).build(),
        }
    }

    /// The key provider in use.
    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    /// Verifies (or, on an empty store, records) the key-encryption key's check value.
    pub async fn verify_or_record_kek(&self, tx: &mut dyn StoreTx) -> Result<(), ServiceError> {
        match tx.get_kek_check().await? {
            Some((_, check)) => self.provider.verify_check_value(&check).await,
            None => {
                let check = self.provider.check_value().await?;
                tx.set_kek_check(&self.provider.kek_id(), &check).await?;
                Ok(())
            }
        }
    }

    /// Adds the next data key version for `tenant` (version 1 for a new tenant).
    pub async fn add_version(&self, tx: &mut dyn StoreTx, tenant: &str) -> Result<DataKeyRecord, ServiceError> {
        let next = tx.latest_data_key_version(tenant).await?.unwrap_or(0) + 1;
        let dek = DataKey::generate(next);
        let wrapped = self.provider.wrap(tenant, next, &dek).await?;
        let record = DataKeyRecord {
            tenant_id: tenant.to_owned(),
            version: next,
            wrapped: wrapped.0,
            kek_id: self.provider.kek_id(),
            created_at: Utc::now(),
        };
        tx.insert_data_key(&record).await?;
        self.latest.invalidate(tenant);
        Ok(record)
    }

    /// Forgets every cached key of a tenant (after its deletion).
    pub fn forget_tenant(&self, tenant: &str) {
        self.latest.invalidate(tenant);
        let tenant = tenant.to_owned();
        // Bounded scan of a bounded cache; deletion of a tenant is rare.
        let _ = self.deks.invalidate_entries_if(move |(t, _), _| *t == tenant);
    }

    async fn key(&self, tx: &mut dyn StoreTx, tenant: &str, version: u32) -> Result<Arc<DataKey>, ServiceError> {
        let cache_key = (tenant.to_owned(), version);
        if let Some(k) = self.deks.get(&cache_key) {
            return Ok(k);
        }
        let record = tx.get_data_key(tenant, version).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::Integrity,
                "data_key_missing",
                format!("tenant {tenant} has no data key version {version}"),
            )
        })?;
        // While the master key rotates, a row may already be wrapped by the
        // other key; the wrap under ours is then kept beside it.
        let mine = self.provider.kek_id();
        let wrapped = if record.kek_id == mine {
            record.wrapped
        } else {
            tx.get_data_key_wrap(tenant, version, &mine).await?.unwrap_or(record.wrapped)
        };
        let key = Arc::new(self.provider.unwrap(tenant, version, &WrappedDataKey(wrapped)).await?);
        self.deks.insert(cache_key, key.clone());
        Ok(key)
    }

    async fn current(&self, tx: &mut dyn StoreTx, tenant: &str) -> Result<Arc<DataKey>, ServiceError> {
        let version = match self.latest.get(tenant) {
            Some(v) => v,
            None => {
                let v = tx.latest_data_key_version(tenant).await?.ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::Integrity,
                        "data_key_missing",
                        format!("tenant {tenant} has no data key"),
                    )
                })?;
                self.latest.insert(tenant.to_owned(), v);
                v
            }
        };
        self.key(tx, tenant, version).await
    }

    /// Encrypts a value for `tenant` at `path`/`field` under its newest data key.
    pub async fn encrypt(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        field: &str,
        plaintext: &[u8],
    ) -> Result<String, ServiceError> {
        let key = self.current(tx, tenant).await?;
        Ok(key.encrypt(&Aad::new(tenant, path, field), plaintext))
    }

    /// Decrypts with a data key already in memory; `None` when it is not
    /// (then [`Keyring::decrypt`] fetches and unwraps it).
    pub fn decrypt_cached(
        &self,
        tenant: &str,
        path: &str,
        field: &str,
        ciphertext: &str,
    ) -> Option<Result<Zeroizing<Vec<u8>>, ServiceError>> {
        let what = || format!("secret {path} of tenant {tenant}");
        let version = match ciphertext_key_version(ciphertext) {
            Ok(v) => v,
            Err(e) => return Some(Err(integrity(&what(), &e))),
        };
        let key = self.deks.get(&(tenant.to_owned(), version))?;
        Some(key.decrypt(&Aad::new(tenant, path, field), ciphertext).map_err(|e| integrity(&what(), &e)))
    }

    /// Decrypts a value stored for `tenant` at `path`/`field`.
    pub async fn decrypt(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        field: &str,
        ciphertext: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let what = format!("secret {path} of tenant {tenant}");
        let version = ciphertext_key_version(ciphertext).map_err(|e| integrity(&what, &e))?;
        let key = self.key(tx, tenant, version).await?;
        key.decrypt(&Aad::new(tenant, path, field), ciphertext).map_err(|e| integrity(&what, &e))
    }
}
