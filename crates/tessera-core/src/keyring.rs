//! The keyring: per-tenant data keys, wrapped by the key provider, cached
//! unwrapped for a short while, and the one place values are encrypted and
//! decrypted.
//!
//! Decrypted values are never cached; only unwrapped data keys are, bounded
//! and with a time limit, and they zeroize when evicted.

use crate::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tessera_crypto::{check, ciphertext_key_version, Aad, CryptoError, DataKey, KeyOwner, MasterKey, WrappedDataKey};
use zeroize::Zeroizing;

use crate::error::{ErrorKind, ServiceError};
use crate::ports::{DataKeyRecord, KeyProvider, StoreTx};

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

    async fn wrap(&self, owner: KeyOwner<'_>, version: u32, dek: &DataKey) -> Result<WrappedDataKey, ServiceError> {
        Ok(self.master.wrap(owner, version, dek))
    }

    async fn unwrap(
        &self,
        owner: KeyOwner<'_>,
        version: u32,
        wrapped: &WrappedDataKey,
    ) -> Result<DataKey, ServiceError> {
        let tenant = owner.tenant;
        match self.master.unwrap(owner, version, wrapped) {
            Ok(k) => Ok(k),
            Err(CryptoError::Authentication) if wrapped.kek_id() != Some(self.master.id()) => Err(ServiceError::new(
                ErrorKind::Integrity,
                ErrorCode::WrongMasterKey,
                format!(
                    "the data key of tenant {tenant} (version {version}) was wrapped by another master key; check TESSERA_MASTER_KEY",
                ),
            )),
            Err(e) => Err(integrity(&format!("data key of tenant {tenant} version {version}"), &e)),
        }
    }

    async fn check_value(&self) -> Result<String, ServiceError> {
        Ok(self.master.wrap(check::LOCAL_OWNER, check::VERSION, &DataKey::generate(check::VERSION)).0)
    }

    async fn verify_check_value(&self, check: &str) -> Result<(), ServiceError> {
        self.master
              .unwrap(check::LOCAL_OWNER, check::VERSION, &WrappedDataKey(check.to_owned()))
            .map(|_| ())
            .map_err(|_| {
                ServiceError::new(
                    ErrorKind::Integrity,
                    ErrorCode::WrongMasterKey,
                    "the master key does not match the one this store was created with (TESSERA_MASTER_KEY / PLATFORM_CREDENTIAL_KEY)",
                )
            })
    }
}

fn integrity(what: &str, e: &CryptoError) -> ServiceError {
    ServiceError::new(ErrorKind::Integrity, ErrorCode::DecryptionFailed, format!("{what} could not be decrypted: {e}"))
}

/// Per-tenant data keys and value encryption.
pub struct Keyring {
    provider: Arc<dyn KeyProvider>,
    /// Unwrapped data keys by (tenant, incarnation, version): a tenant
    /// deleted and created again has another incarnation, so a key of the
    /// old one can never serve the new one, whatever this cache still holds.
    deks: moka::sync::Cache<(String, String, u32), Arc<DataKey>>,
    /// The store's revocation generation when the cache was last checked.
    revocations: std::sync::atomic::AtomicU64,
}

impl Keyring {
    /// A keyring over a provider; caches at most `capacity` unwrapped keys for `ttl`.
    pub fn new(provider: Arc<dyn KeyProvider>, capacity: u64, ttl: Duration) -> Self {
        // A zero time-to-live turns the cache off (every use unwraps).
        let (capacity, ttl) = if ttl.is_zero() { (0, Duration::from_millis(1)) } else { (capacity, ttl) };
        Self {
            provider,
            deks: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                // `forget_tenant` drops one tenant's keys by predicate.
                .support_invalidation_closures()
                .build(),
            revocations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Drops every cached key once the store's revocation generation moved
    /// (a tenant was deleted here or on another replica): no unwrapped key of
    /// a shredded tenant stays in memory anywhere. Called on every
    /// authenticated request, so within one request of the notice.
    /// Returns whether it moved.
    pub fn follow_revocations(&self, generation: u64) -> bool {
        use std::sync::atomic::Ordering;
        let moved = self.revocations.swap(generation, Ordering::AcqRel) != generation;
        if moved {
            self.deks.invalidate_all();
        }
        moved
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

    /// Adds the next data key version for `tenant` (version 1 for a new
    /// tenant, whose row `tx` has already inserted).
    pub async fn add_version(&self, tx: &mut dyn StoreTx, tenant: &str) -> Result<DataKeyRecord, ServiceError> {
        let (incarnation, latest) = tx.current_data_key(tenant).await?.ok_or_else(ServiceError::tenant_not_found)?;
        let next = latest.unwrap_or(0) + 1;
        let dek = DataKey::generate(next);
        let owner = KeyOwner { tenant, incarnation: &incarnation };
        let wrapped = self.provider.wrap(owner, next, &dek).await?;
        let record = DataKeyRecord {
            tenant_id: tenant.to_owned(),
            incarnation: incarnation.clone(),
            version: next,
            wrapped: wrapped.0,
            kek_id: self.provider.kek_id(),
            created_at: Utc::now(),
        };
        tx.insert_data_key(&record).await?;
        Ok(record)
    }

    /// Drops every cached key of a tenant at once (after its deletion), so
    /// no unwrapped key of a shredded tenant stays in memory.
    pub fn forget_tenant(&self, tenant: &str) {
        let tenant = tenant.to_owned();
        if let Err(e) = self.deks.invalidate_entries_if(move |(t, _, _), _| *t == tenant) {
            // Only if the cache was built without closure support: drop all.
            tracing::warn!(error = %e, "dropping every cached data key");
            self.deks.invalidate_all();
        }
    }

    /// Drops every cached key (another replica deleted a tenant, or this one
    /// cannot tell whether one did).
    pub fn forget_all(&self) {
        self.deks.invalidate_all();
    }

    async fn key(&self, tx: &mut dyn StoreTx, owner: KeyOwner<'_>, version: u32) -> Result<Arc<DataKey>, ServiceError> {
        let tenant = owner.tenant;
        let cache_key = (tenant.to_owned(), owner.incarnation.to_owned(), version);
        if let Some(k) = self.deks.get(&cache_key) {
            return Ok(k);
        }
        let missing = || {
            ServiceError::new(
                ErrorKind::Integrity,
                ErrorCode::DataKeyMissing,
                format!("tenant {tenant} has no data key version {version}"),
            )
        };
        let record = tx.get_data_key(tenant, version).await?.ok_or_else(missing)?;
        if record.incarnation != owner.incarnation {
            // The tenant was deleted and created again since the caller read it.
            return Err(missing());
        }
        // While the master key rotates, a row may already be wrapped by the
        // other key; the wrap under ours is then kept beside it.
        let mine = self.provider.kek_id();
        let wrapped = if record.kek_id == mine {
            record.wrapped
        } else {
            tx.get_data_key_wrap(tenant, version, &mine).await?.unwrap_or(record.wrapped)
        };
        let key = Arc::new(self.provider.unwrap(owner, version, &WrappedDataKey(wrapped)).await?);
        self.deks.insert(cache_key, key.clone());
        Ok(key)
    }

    /// Encrypts a value for `tenant` at `path`/`field` under its newest data
    /// key. The tenant's incarnation and newest key version are read in `tx`
    /// (one statement), never from a cache: a write must not land under a key
    /// another replica has just rotated or shredded.
    pub async fn encrypt(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        field: &str,
        plaintext: &[u8],
    ) -> Result<String, ServiceError> {
        let (incarnation, version) = tx.current_data_key(tenant).await?.ok_or_else(ServiceError::tenant_not_found)?;
        let version = version.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::Integrity,
                ErrorCode::DataKeyMissing,
                format!("tenant {tenant} has no data key"),
            )
        })?;
        let key = self.key(tx, KeyOwner { tenant, incarnation: &incarnation }, version).await?;
        Ok(key.encrypt(&Aad::new(tenant, path, field), plaintext))
    }

    /// Decrypts with a data key already in memory; `None` when it is not
    /// (then [`Keyring::decrypt`] fetches and unwraps it).
    pub fn decrypt_cached(
        &self,
        owner: KeyOwner<'_>,
        path: &str,
        field: &str,
        ciphertext: &str,
    ) -> Option<Result<Zeroizing<Vec<u8>>, ServiceError>> {
        let tenant = owner.tenant;
        let what = || format!("secret {path} of tenant {tenant}");
        let version = match ciphertext_key_version(ciphertext) {
            Ok(v) => v,
            Err(e) => return Some(Err(integrity(&what(), &e))),
        };
        let key = self.deks.get(&(tenant.to_owned(), owner.incarnation.to_owned(), version))?;
        Some(key.decrypt(&Aad::new(tenant, path, field), ciphertext).map_err(|e| integrity(&what(), &e)))
    }

    /// Decrypts a value stored for `owner` at `path`/`field`.
    pub async fn decrypt(
        &self,
        tx: &mut dyn StoreTx,
        owner: KeyOwner<'_>,
        path: &str,
        field: &str,
        ciphertext: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let tenant = owner.tenant;
        let what = format!("secret {path} of tenant {tenant}");
        let version = ciphertext_key_version(ciphertext).map_err(|e| integrity(&what, &e))?;
        let key = self.key(tx, owner, version).await?;
        key.decrypt(&Aad::new(tenant, path, field), ciphertext).map_err(|e| integrity(&what, &e))
    }
}
