//! Transit (encryption as a service, as Vault's `transit` engine) for a
//! tenant's own named keys. A key's versions are one `data` secret of the
//! tenant at the reserved path `_transit/<name>`, so the key material is
//! encrypted under the tenant's data key, versioned, audited and kept by the
//! configured backend like every other secret; deleting the tenant shreds it.
//! Ciphertexts are Vault's `vault:v<N>:` form (`tessera_crypto::TransitKey`).
//!
//! Access: creating and rotating keys (and an encrypt that creates its key)
//! changes the tenant; encrypting, decrypting, rewrapping and data keys with
//! an existing key are uses, open to read-only keys too.

use crate::ErrorCode;
use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_crypto::TransitKey;
use zeroize::{Zeroize, Zeroizing};

use super::secrets::VersionWrite;
use super::{Ctx, Tessera};
use crate::error::ServiceError;
use crate::ids::{SecretPath, TenantId};
use crate::ports::{StoreTx, TenantRecord};

/// A Transit key's public description (never key material).
#[derive(Debug, Clone)]
pub struct TransitKeyView {
    /// The key's name.
    pub name: String,
    /// Newest version (encryptions use it).
    pub latest_version: u32,
    /// Oldest version that still decrypts.
    pub min_decryption_version: u32,
    /// Each version's creation time, Unix seconds.
    pub keys: BTreeMap<u32, i64>,
}

/// One encryption's result: the ciphertext and the key version used.
pub type Sealed = Result<(String, u32), ServiceError>;

/// A generated data key: its plaintext and its ciphertext under the named key.
pub struct DataKeyOut {
    /// The 32 random bytes, in a buffer that zeroizes.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// `vault:v<N>:...`.
    pub ciphertext: String,
    /// The key version that sealed it.
    pub key_version: u32,
}

/// The stored form of a key: every version's material (base64) and time.
#[derive(Serialize, Deserialize)]
struct KeyRing {
    latest: u32,
    min_decryption_version: u32,
    versions: BTreeMap<u32, StoredVersion>,
}

#[derive(Serialize, Deserialize)]
struct StoredVersion {
    created: i64,
    key: String,
}

impl Drop for KeyRing {
    fn drop(&mut self) {
        for v in self.versions.values_mut() {
            v.key.zeroize();
        }
    }
}

impl KeyRing {
    fn new() -> Self {
        let mut ring = Self { latest: 0, min_decryption_version: 1, versions: BTreeMap::new() };
        ring.add_version();
        ring
    }

    fn add_version(&mut self) {
        self.latest += 1;
        let key = TransitKey::generate();
        let stored =
            StoredVersion { created: chrono::Utc::now().timestamp(), key: STANDARD.encode(key.expose_bytes()) };
        self.versions.insert(self.latest, stored);
    }

    fn view(&self, name: &str) -> TransitKeyView {
        TransitKeyView {
            name: name.to_owned(),
            latest_version: self.latest,
            min_decryption_version: self.min_decryption_version,
            keys: self.versions.iter().map(|(v, s)| (*v, s.created)).collect(),
        }
    }

    /// The key of `version` (the newest when none), if it may be used.
    fn key(&self, version: Option<u32>) -> Result<(TransitKey, u32), ServiceError> {
        let v = version.filter(|v| *v > 0).unwrap_or(self.latest);
        if v < self.min_decryption_version {
            return Err(ServiceError::invalid(
                ErrorCode::KeyVersionDisallowed,
                "ciphertext or signature version is disallowed by policy (too old)",
                None,
            ));
        }
        let stored = self
            .versions
            .get(&v)
            .ok_or_else(|| ServiceError::invalid(ErrorCode::InvalidKeyVersion, "invalid key version", None))?;
        let bytes = Zeroizing::new(
            STANDARD.decode(&stored.key).map_err(|_| ServiceError::internal("a stored transit key is not base64"))?,
        );
        let key =
            TransitKey::from_bytes(&bytes).map_err(|_| ServiceError::internal("a stored transit key is damaged"))?;
        Ok((key, v))
    }

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).expect("a key ring serialises"))
    }
}

fn key_missing() -> ServiceError {
    ServiceError::invalid(ErrorCode::TransitKeyNotFound, "encryption key not found", None)
}

impl Tessera {
    /// The key ring at `path` and its secret version, if it exists.
    async fn load_ring(
        &self,
        tx: &mut dyn StoreTx,
        record: &TenantRecord,
        path: &SecretPath,
    ) -> Result<Option<(KeyRing, u32)>, ServiceError> {
        match self.read_version(tx, record.key_owner(), path.as_str(), None).await {
            Ok(revealed) => {
                let ring: KeyRing = serde_json::from_slice(&revealed.plaintext)
                    .map_err(|_| ServiceError::internal("a stored transit key ring does not parse"))?;
                Ok(Some((ring, revealed.version.version)))
            }
            Err(e) if e.code == ErrorCode::SecretNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the ring for a use (read-only access), or none.
    async fn ring_for_use(&self, ctx: &Ctx, tenant: &TenantId, name: &str) -> Result<Option<KeyRing>, ServiceError> {
        self.allow_tenant(ctx, tenant).await?;
        let path = SecretPath::transit_key(name)?;
        let mut tx = self.store.read().await?;
        let record = Self::require_tenant(tx.as_mut(), tenant).await?;
        let ring = self.load_ring(tx.as_mut(), &record, &path).await;
        tx.commit().await?;
        Ok(ring?.map(|(r, _)| r))
    }

    /// Creates the key (if `create_only`, only when missing) or adds a version,
    /// in one write transaction; audited as `action`.
    async fn change_ring(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        name: &str,
        rotate: bool,
        action: &str,
    ) -> Result<KeyRing, ServiceError> {
        self.allow_tenant_write(ctx, tenant).await?;
        let path = SecretPath::transit_key(name)?;
        let resource = format!("tenants/{tenant}/transit/keys/{name}");
        self.audit_before_external_write(ctx, action, tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let record = Self::require_tenant(tx.as_mut(), tenant).await?;
        let (ring, cas) = match self.load_ring(tx.as_mut(), &record, &path).await? {
            Some((mut ring, version)) if rotate => {
                ring.add_version();
                (ring, version)
            }
            // Creating a key that exists changes nothing, as in Vault.
            Some((ring, _)) => {
                tx.commit().await?;
                return Ok(ring);
            }
            None if rotate => {
                return Err(ServiceError::not_found(ErrorCode::TransitKeyNotFound, "no such transit key"))
            }
            None => (KeyRing::new(), 0),
        };
        let plaintext = ring.plaintext();
        self.write_version(
            tx.as_mut(),
            ctx,
            VersionWrite {
                tenant: tenant.as_str(),
                path: path.as_str(),
                kind: "data",
                plaintext: &plaintext,
                cas: Some(cas),
            },
        )
        .await?;
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event(action, Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(ring)
    }

    /// Creates a Transit key (a key that exists is left as it is).
    pub async fn create_transit_key(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
    ) -> Result<TransitKeyView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        Ok(self.change_ring(ctx, &tenant, name, false, "transit.key_create").await?.view(name))
    }

    /// Adds a version to a Transit key; new encryptions use it.
    pub async fn rotate_transit_key(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
    ) -> Result<TransitKeyView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        Ok(self.change_ring(ctx, &tenant, name, true, "transit.key_rotate").await?.view(name))
    }

    /// A Transit key's description.
    pub async fn read_transit_key(&self, ctx: &Ctx, tenant: &str, name: &str) -> Result<TransitKeyView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let ring = self.ring_for_use(ctx, &tenant, name).await?;
        ring.map(|r| r.view(name))
            .ok_or_else(|| ServiceError::not_found(ErrorCode::TransitKeyNotFound, "no such transit key"))
    }

    /// Encrypts each plaintext with the key's newest version (or
    /// `key_version`). A missing key is created first, as Vault's encrypt
    /// does (which needs write access). Audited once per call.
    pub async fn transit_encrypt(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
        plaintexts: &[Zeroizing<Vec<u8>>],
        key_version: Option<u32>,
    ) -> Result<Vec<Sealed>, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let ring = match self.ring_for_use(ctx, &tenant, name).await? {
            Some(ring) => ring,
            None => match self.change_ring(ctx, &tenant, name, false, "transit.key_create").await {
                Ok(ring) => ring,
                // Another request created it meanwhile: use that one.
                Err(e) if e.code == ErrorCode::CasMismatch => {
                    self.ring_for_use(ctx, &tenant, name).await?.ok_or_else(key_missing)?
                }
                Err(e) => return Err(e),
            },
        };
        let sealed = plaintexts.iter().map(|p| ring.key(key_version).map(|(key, v)| (key.seal(v, p), v))).collect();
        self.audit_transit(ctx, &tenant, name, "transit.encrypt").await?;
        Ok(sealed)
    }

    /// Decrypts each `vault:v<N>:` ciphertext.
    pub async fn transit_decrypt(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
        ciphertexts: &[String],
    ) -> Result<Vec<Result<Zeroizing<Vec<u8>>, ServiceError>>, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let ring = self.ring_for_use(ctx, &tenant, name).await?.ok_or_else(key_missing)?;
        let opened = ciphertexts.iter().map(|c| open(&ring, c)).collect();
        self.audit_transit(ctx, &tenant, name, "transit.decrypt").await?;
        Ok(opened)
    }

    /// Decrypts each ciphertext and encrypts it again with the newest (or
    /// `key_version`) version; the plaintext never leaves the service.
    pub async fn transit_rewrap(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
        ciphertexts: &[String],
        key_version: Option<u32>,
    ) -> Result<Vec<Sealed>, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let ring = self.ring_for_use(ctx, &tenant, name).await?.ok_or_else(key_missing)?;
        let rewrapped = ciphertexts
            .iter()
            .map(|c| {
                let plaintext = open(&ring, c)?;
                ring.key(key_version).map(|(key, v)| (key.seal(v, &plaintext), v))
            })
            .collect();
        self.audit_transit(ctx, &tenant, name, "transit.rewrap").await?;
        Ok(rewrapped)
    }

    /// A new 256-bit data key, sealed under the named key (and its plaintext).
    pub async fn transit_datakey(&self, ctx: &Ctx, tenant: &str, name: &str) -> Result<DataKeyOut, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let ring = self.ring_for_use(ctx, &tenant, name).await?.ok_or_else(key_missing)?;
        let plaintext = tessera_crypto::random_bytes(32);
        let (key, key_version) = ring.key(None)?;
        let ciphertext = key.seal(key_version, &plaintext);
        self.audit_transit(ctx, &tenant, name, "transit.datakey").await?;
        Ok(DataKeyOut { plaintext, ciphertext, key_version })
    }

    async fn audit_transit(&self, ctx: &Ctx, tenant: &TenantId, name: &str, action: &str) -> Result<(), ServiceError> {
        let resource = format!("tenants/{tenant}/transit/keys/{name}");
        self.audit.record(ctx.event(action, Some(tenant.as_str()), resource, "success")).await
    }
}

fn open(ring: &KeyRing, ciphertext: &str) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let version = tessera_crypto::transit_key_version(ciphertext)
        .map_err(|_| ServiceError::invalid(ErrorCode::InvalidCiphertext, "invalid ciphertext: no prefix", None))?;
    let (key, _) = ring.key(Some(version))?;
    key.open(ciphertext)
        .map_err(|_| ServiceError::invalid(ErrorCode::DecryptFailed, "cipher: message authentication failed", None))
}
