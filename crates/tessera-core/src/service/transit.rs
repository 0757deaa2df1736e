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
    /// Oldest version an encryption may ask for (0: any that decrypts).
    pub min_encryption_version: u32,
    /// Whether the key may be deleted.
    pub deletion_allowed: bool,
    /// Whether its material may be exported (once set, for good).
    pub exportable: bool,
    /// Whether a plaintext backup may be taken (once set, for good).
    pub allow_plaintext_backup: bool,
    /// Each version still decrypting and its creation time, Unix seconds.
    pub keys: BTreeMap<u32, i64>,
}

/// A change of a Transit key's configuration (`keys/<name>/config`): each
/// field given is applied as Vault applies it; the others stay.
#[derive(Debug, Clone, Default)]
pub struct TransitKeyConfig {
    /// Oldest version that still decrypts (0 means 1).
    pub min_decryption_version: Option<i64>,
    /// Oldest version an encryption may ask for (0: any).
    pub min_encryption_version: Option<i64>,
    /// Whether the key may be deleted.
    pub deletion_allowed: Option<bool>,
    /// Makes the key exportable; false leaves an exportable key exportable.
    pub exportable: Option<bool>,
    /// Allows plaintext backups; false leaves that as it is.
    pub allow_plaintext_backup: Option<bool>,
}

/// Which material an export shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitExportKind {
    /// `encryption-key`: the AES-256-GCM key of each version.
    Encryption,
    /// `hmac-key`: the HMAC key of each version.
    Hmac,
    /// `signing-key`: refused, as Vault refuses it for a key that does not sign.
    Signing,
}

/// Exported key material: each version's key, base64, in buffers that zeroize.
pub struct TransitExport {
    /// The key's name.
    pub name: String,
    /// Version to base64 key bytes.
    pub keys: BTreeMap<u32, Zeroizing<String>>,
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

/// The stored form of a key: its configuration, and every version's
/// material (base64) and time. Rings stored before a field existed read it
/// as its default.
#[derive(Serialize, Deserialize)]
pub(super) struct KeyRing {
    pub(super) latest: u32,
    pub(super) min_decryption_version: u32,
    #[serde(default)]
    min_encryption_version: u32,
    #[serde(default)]
    pub(super) deletion_allowed: bool,
    #[serde(default)]
    pub(super) exportable: bool,
    #[serde(default)]
    allow_plaintext_backup: bool,
    pub(super) versions: BTreeMap<u32, StoredVersion>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct StoredVersion {
    created: i64,
    pub(super) key: String,
    /// The version's HMAC key (base64), as each Vault key version has one
    /// beside its encryption key; versions made before it existed get one
    /// when the key is made exportable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) hmac: Option<String>,
}

impl Drop for KeyRing {
    fn drop(&mut self) {
        for v in self.versions.values_mut() {
            v.key.zeroize();
            if let Some(h) = v.hmac.as_mut() {
                h.zeroize();
            }
        }
    }
}

/// 32 random bytes, as base64, in a string that is zeroized with the ring.
fn random_key_text() -> String {
    STANDARD.encode(tessera_crypto::random_bytes(32))
}

impl KeyRing {
    pub(super) fn new() -> Self {
        let mut ring = Self {
            latest: 0,
            min_decryption_version: 1,
            min_encryption_version: 0,
            deletion_allowed: false,
            exportable: false,
            allow_plaintext_backup: false,
            versions: BTreeMap::new(),
        };
        ring.add_version();
        ring
    }

    pub(super) fn add_version(&mut self) {
        self.latest += 1;
        let key = TransitKey::generate();
        let stored = StoredVersion {
            created: chrono::Utc::now().timestamp(),
            key: STANDARD.encode(key.expose_bytes()),
            hmac: Some(random_key_text()),
        };
        self.versions.insert(self.latest, stored);
    }

    pub(super) fn view(&self, name: &str) -> TransitKeyView {
        TransitKeyView {
            name: name.to_owned(),
            latest_version: self.latest,
            min_decryption_version: self.min_decryption_version,
            min_encryption_version: self.min_encryption_version,
            deletion_allowed: self.deletion_allowed,
            exportable: self.exportable,
            allow_plaintext_backup: self.allow_plaintext_backup,
            // As Vault: the versions below min_decryption_version are archived, not listed.
            keys: self.versions.range(self.min_decryption_version..).map(|(v, s)| (*v, s.created)).collect(),
        }
    }

    /// The key an encryption uses: the newest, or `version` if it may be asked for.
    pub(super) fn key_to_encrypt(&self, version: Option<u32>) -> Result<(TransitKey, u32), ServiceError> {
        match version.filter(|v| *v > 0) {
            Some(v) if v > self.latest => Err(ServiceError::invalid(
                ErrorCode::InvalidKeyVersion,
                "requested version for encryption is higher than the latest key version",
                Some("key_version"),
            )),
            Some(v) if v < self.min_encryption_version => Err(ServiceError::invalid(
                ErrorCode::KeyVersionDisallowed,
                "requested version for encryption is less than the minimum encryption key version",
                Some("key_version"),
            )),
            other => self.key(other),
        }
    }

    /// Applies a configuration change as Vault does; returns whether
    /// anything changed and a warning to show, if any.
    pub(super) fn configure(
        &mut self,
        change: &TransitKeyConfig,
    ) -> Result<(bool, Option<&'static str>), ServiceError> {
        let mut changed = false;
        let mut warning = None;
        let bad = |message: String| ServiceError::invalid(ErrorCode::InvalidKeyVersion, message, None);
        if let Some(wanted) = change.min_decryption_version {
            if wanted < 0 {
                return Err(bad("min decryption version cannot be negative".into()));
            }
            let wanted = if wanted == 0 {
                warning = Some(
                    "since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; forcing minimum to 1",
                );
                1
            } else {
                wanted
            };
            if wanted != i64::from(self.min_decryption_version) {
                if wanted > i64::from(self.latest) {
                    return Err(bad(format!(
                        "cannot set min decryption version of {wanted}, latest key version is {}",
                        self.latest
                    )));
                }
                self.min_decryption_version = u32::try_from(wanted).expect("at most the latest version");
                changed = true;
            }
        }
        if let Some(wanted) = change.min_encryption_version {
            if wanted < 0 {
                return Err(bad("min encryption version cannot be negative".into()));
            }
            if wanted != i64::from(self.min_encryption_version) {
                if wanted > i64::from(self.latest) {
                    return Err(bad(format!(
                        "cannot set min encryption version of {wanted}, latest key version is {}",
                        self.latest
                    )));
                }
                self.min_encryption_version = u32::try_from(wanted).expect("at most the latest version");
                changed = true;
            }
        }
        if self.min_encryption_version > 0 && self.min_encryption_version < self.min_decryption_version {
            return Err(bad(format!(
                "cannot set min encryption/decryption values; min encryption version of {} must be greater than or equal to min decryption version of {}",
                self.min_encryption_version, self.min_decryption_version
            )));
        }
        if let Some(allowed) = change.deletion_allowed {
            changed |= allowed != self.deletion_allowed;
            self.deletion_allowed = allowed;
        }
        // Both are one-way, as in Vault: false leaves them set.
        if change.exportable == Some(true) && !self.exportable {
            self.exportable = true;
            changed = true;
            for v in self.versions.values_mut() {
                v.hmac.get_or_insert_with(random_key_text);
            }
        }
        if change.allow_plaintext_backup == Some(true) && !self.allow_plaintext_backup {
            self.allow_plaintext_backup = true;
            changed = true;
        }
        Ok((changed, warning))
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

/// What [`Tessera::change_ring`] does to a key.
#[derive(Clone, Copy)]
pub(super) enum RingChange<'a> {
    /// Creates it if missing.
    Create,
    /// Adds a version.
    Rotate,
    /// Changes its configuration.
    Configure(&'a TransitKeyConfig),
}

impl RingChange<'_> {
    fn action(self) -> &'static str {
        match self {
            Self::Create => "transit.key_create",
            Self::Rotate => "transit.key_rotate",
            Self::Configure(_) => "transit.key_config",
        }
    }
}

fn key_missing() -> ServiceError {
    ServiceError::invalid(ErrorCode::TransitKeyNotFound, "encryption key not found", None)
}

impl Tessera {
    /// The key ring at `path` and its secret version, if it exists.
    pub(super) async fn load_ring(
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
    pub(super) async fn change_ring(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        name: &str,
        change: RingChange<'_>,
    ) -> Result<(KeyRing, Option<&'static str>), ServiceError> {
        self.allow_tenant_write(ctx, tenant).await?;
        let path = SecretPath::transit_key(name)?;
        let action = change.action();
        let resource = format!("tenants/{tenant}/transit/keys/{name}");
        self.audit_before_external_write(ctx, action, tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let record = Self::require_tenant(tx.as_mut(), tenant).await?;
        let mut warning = None;
        let (ring, cas) = match (self.load_ring(tx.as_mut(), &record, &path).await?, change) {
            (Some((mut ring, version)), RingChange::Rotate) => {
                ring.add_version();
                (ring, version)
            }
            (Some((mut ring, version)), RingChange::Configure(config)) => {
                let (changed, said) = ring.configure(config)?;
                warning = said;
                if !changed {
                    tx.commit().await?;
                    return Ok((ring, warning));
                }
                (ring, version)
            }
            // Creating a key that exists changes nothing, as in Vault.
            (Some((ring, _)), RingChange::Create) => {
                tx.commit().await?;
                return Ok((ring, None));
            }
            (None, RingChange::Rotate) => {
                return Err(ServiceError::not_found(ErrorCode::TransitKeyNotFound, "no such transit key"))
            }
            (None, RingChange::Configure(_)) => {
                return Err(ServiceError::invalid(
                    ErrorCode::TransitKeyNotFound,
                    format!("no existing key named {name} could be found"),
                    None,
                ))
            }
            (None, RingChange::Create) => (KeyRing::new(), 0),
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
        Ok((ring, warning))
    }

    /// Creates a Transit key (a key that exists is left as it is).
    pub async fn create_transit_key(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
    ) -> Result<TransitKeyView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        Ok(self.change_ring(ctx, &tenant, name, RingChange::Create).await?.0.view(name))
    }

    /// Adds a version to a Transit key; new encryptions use it.
    pub async fn rotate_transit_key(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
    ) -> Result<TransitKeyView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        Ok(self.change_ring(ctx, &tenant, name, RingChange::Rotate).await?.0.view(name))
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
            None => match self.change_ring(ctx, &tenant, name, RingChange::Create).await {
                Ok((ring, _)) => ring,
                // Another request created it meanwhile: use that one.
                Err(e) if e.code == ErrorCode::CasMismatch => {
                    self.ring_for_use(ctx, &tenant, name).await?.ok_or_else(key_missing)?
                }
                Err(e) => return Err(e),
            },
        };
        let sealed =
            plaintexts.iter().map(|p| ring.key_to_encrypt(key_version).map(|(key, v)| (key.seal(v, p), v))).collect();
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
                ring.key_to_encrypt(key_version).map(|(key, v)| (key.seal(v, &plaintext), v))
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
