//! The `vault-transit` key provider (`TESSERA_KEYRING=vault-transit`): one
//! Transit key per tenant (`<engine>/keys/<tenantId>`, created on first use
//! as `aes256-gcm96`, as seed 001 describes) wraps that tenant's data keys.
//! The key material never leaves Vault: Tessera sends a data key to
//! `encrypt/<tenantId>` and gets `vault:v<N>:...` back, with associated data
//! binding the wrap to tenant and data-key version.

use std::collections::HashSet;
use tessera_core::ErrorCode;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_core::ports::KeyProvider;
use tessera_core::{ErrorKind, ServiceError};
use tessera_crypto::{check, wrap_aad, DataKey, KeyOwner, WrapFormat, WrappedDataKey};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::error::BackendError;
use crate::vault_client::{VaultClient, VaultConnection};

/// Data keys wrapped by Vault Transit.
pub struct TransitKeyProvider {
    vault: VaultClient,
    engine: String,
    ensured: Mutex<HashSet<String>>,
}

impl TransitKeyProvider {
    /// A provider on `<engine>` (`VAULT_TRANSIT_ENGINE`, default `transit`).
    pub fn new(connection: VaultConnection, engine: String) -> Result<Self, BackendError> {
        Ok(Self { vault: VaultClient::new(connection)?, engine, ensured: Mutex::new(HashSet::new()) })
    }

    fn key_name(tenant: &str) -> &str {
        if tenant.starts_with('\u{0}') {
            check::TRANSIT_KEY
        } else {
            tenant
        }
    }

    /// Creates the tenant's Transit key if it does not exist (idempotent in Vault).
    async fn ensure_key(&self, name: &str) -> Result<(), ServiceError> {
        if self.ensured.lock().await.contains(name) {
            return Ok(());
        }
        let url = self.vault.url(&format!("{}/keys/{name}", self.engine));
        let r = self.vault.call(Method::POST, &url, Some(json!({"type": "aes256-gcm96"}))).await?;
        if !r.status.is_success() {
            return Err(self.vault.unexpected("create a Transit key", &r));
        }
        self.ensured.lock().await.insert(name.to_owned());
        Ok(())
    }

    /// The wrap's associated data, as Tessera's own master key binds it
    /// (the same bytes: one definition, in tessera-crypto).
    fn aad(format: WrapFormat, owner: KeyOwner<'_>, version: u32) -> String {
        B64.encode(wrap_aad(format, owner, version))
    }
}

#[async_trait]
impl KeyProvider for TransitKeyProvider {
    fn kek_id(&self) -> String {
        format!("vault-transit:{}", self.engine)
    }

    async fn wrap(&self, owner: KeyOwner<'_>, version: u32, dek: &DataKey) -> Result<WrappedDataKey, ServiceError> {
        let name = Self::key_name(owner.tenant);
        self.ensure_key(name).await?;
        let plaintext = Zeroizing::new(B64.encode(dek.expose_bytes()));
        let aad = Self::aad(WrapFormat::V2, owner, version);
        let body = json!({"plaintext": plaintext.as_str(), "associated_data": aad});
        let url = self.vault.url(&format!("{}/encrypt/{name}", self.engine));
        let r = self.vault.call(Method::POST, &url, Some(body)).await?;
        match r.body["data"]["ciphertext"].as_str() {
            Some(ct) if r.status.is_success() => Ok(WrappedDataKey::external_v2(ct)),
            _ => Err(self.vault.unexpected("wrap a data key with Transit", &r)),
        }
    }

    async fn unwrap(
        &self,
        owner: KeyOwner<'_>,
        version: u32,
        wrapped: &WrappedDataKey,
    ) -> Result<DataKey, ServiceError> {
        let tenant = owner.tenant;
        let name = Self::key_name(tenant);
        let (format, ciphertext) = wrapped.external();
        let body = json!({"ciphertext": ciphertext, "associated_data": Self::aad(format, owner, version)});
        let url = self.vault.url(&format!("{}/decrypt/{name}", self.engine));
        let r = self.vault.call(Method::POST, &url, Some(body)).await?;
        if r.status == StatusCode::BAD_REQUEST {
            return Err(ServiceError::new(
                ErrorKind::Integrity,
                ErrorCode::WrongMasterKey,
                format!("Vault Transit could not unwrap the data key of tenant {tenant} (version {version}): wrong key or altered"),
            ));
        }
        let Some(b64) = r.body["data"]["plaintext"].as_str().filter(|_| r.status.is_success()) else {
            return Err(self.vault.unexpected("unwrap a data key with Transit", &r));
        };
        let bytes = Zeroizing::new(B64.decode(b64).map_err(|_| ServiceError::internal("Transit returned non-base64"))?);
        DataKey::from_unwrapped(version, &bytes)
            .map_err(|_| ServiceError::internal("Transit returned a key of the wrong size"))
    }

    async fn check_value(&self) -> Result<String, ServiceError> {
        Ok(self.wrap(check::TRANSIT_OWNER, check::VERSION, &DataKey::generate(check::VERSION)).await?.0)
    }

    async fn verify_check_value(&self, check: &str) -> Result<(), ServiceError> {
        match self.unwrap(check::TRANSIT_OWNER, check::VERSION, &WrappedDataKey(check.to_owned())).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::Integrity => Err(ServiceError::new(
                ErrorKind::Integrity,
                ErrorCode::WrongMasterKey,
                "the Vault Transit keys do not match the ones this store was created with (check VAULT_ADDR and VAULT_TRANSIT_ENGINE)",
            )),
            Err(e) => Err(e),
        }
    }
}
