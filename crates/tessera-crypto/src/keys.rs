//! Key types: the master key (KEK) and per-tenant data keys (DEKs).

use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead;
use crate::CryptoError;

/// Length in bytes of every symmetric key here (AES-256).
pub const KEY_LEN: usize = 32;

/// Domain-separation labels, so a value from one use can never be accepted in another.
const DEK_WRAP_LABEL: &[u8] = b"tessera.dek-wrap.v1";
const KEK_ID_LABEL: &[u8] = b"tessera.kek-id.v1";
const WRAPPED_PREFIX: &str = "tsrk:";

/// Fills a fresh buffer with `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// The key-encryption key of the `local` key provider.
///
/// Deliberately not `Debug`, `Clone` or `Serialize`.
pub struct MasterKey {
    bytes: SecretBox<[u8; KEY_LEN]>,
    cipher: Aes256Gcm,
    id: String,
}

impl MasterKey {
    /// Builds a master key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::InvalidKey("must be exactly 32 bytes"))?;
        let bytes = SecretBox::new(Box::new(arr));
        let cipher = aead::cipher(bytes.expose_secret());
        let id = key_id(bytes.expose_secret());
        Ok(Self { bytes, cipher, id })
    }

    /// Parses base64 (standard or URL-safe, padded or not) of 32 bytes, or 64 hex digits.
    pub fn from_text(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text)
        } else {
            decode_base64(text)
        }
        .ok_or(CryptoError::InvalidKey("not base64 or hex"))?;
        Self::from_bytes(&decoded)
    }

    /// A fresh random master key.
    pub fn generate() -> Self {
        Self::from_bytes(&random_bytes(KEY_LEN)).expect("32 random bytes make a valid key")
    }

    /// The key as standard base64, for writing a dev key file. Handle with care.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.bytes.expose_secret()))
    }

    /// A short public fingerprint that names this key without revealing it
    /// (HMAC of a fixed label), stored beside every wrapped data key so a wrong
    /// master key is reported as such rather than as corruption.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps a data key for `tenant`, version `version`.
    pub fn wrap(&self, tenant: &str, version: u32, dek: &DataKey) -> WrappedDataKey {
        let sealed = aead::seal(&self.cipher, &wrap_aad(tenant, version), dek.bytes.expose_secret());
        WrappedDataKey(format!("{WRAPPED_PREFIX}{}:{}", self.id, B64.encode(sealed)))
    }

    /// Unwraps a data key; fails if it was wrapped for another tenant or version,
    /// under another master key, or altered.
    pub fn unwrap(&self, tenant: &str, version: u32, wrapped: &WrappedDataKey) -> Result<DataKey, CryptoError> {
        let rest = wrapped
            .0
            .strip_prefix(WRAPPED_PREFIX)
            .ok_or(CryptoError::Malformed("wrapped key lacks the tsrk: prefix"))?;
        let (kek_id, body) = rest.split_once(':').ok_or(CryptoError::Malformed("wrapped key lacks a key id"))?;
        if kek_id != self.id {
            return Err(CryptoError::Authentication);
        }
        let sealed = B64.decode(body).map_err(|_| CryptoError::Malformed("wrapped key is not base64"))?;
        let plain = aead::open(&self.cipher, &wrap_aad(tenant, version), &sealed)?;
        DataKey::from_bytes(version, &plain)
    }
}

fn wrap_aad(tenant: &str, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DEK_WRAP_LABEL.len() + tenant.len() + 12);
    aad.extend_from_slice(DEK_WRAP_LABEL);
    aad.push(0);
    aad.extend_from_slice(tenant.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn key_id(key: &[u8; KEY_LEN]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(KEK_ID_LABEL);
    let tag = mac.finalize().into_bytes();
    tag[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
    for pair in bytes.chunks(2) {
        let s = std::str::from_utf8(pair).ok()?;
        out.push(u8::from_str_radix(s, 16).ok()?);
    }
    Some(out)
}

fn decode_base64(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [&B64, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(Zeroizing::new)
}

/// A data key wrapped by a master key: `tsrk:<kekId>:<base64>`. Safe to store.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDataKey(pub String);

impl WrappedDataKey {
    /// The id of the master key that wrapped this data key, if well formed.
    pub fn kek_id(&self) -> Option<&str> {
        self.0.strip_prefix(WRAPPED_PREFIX)?.split_once(':').map(|(id, _)| id)
    }
}

/// One version of a tenant's data key, unwrapped, ready to encrypt values.
///
/// Deliberately not `Debug` or `Serialize`; the bytes zeroize on drop.
pub struct DataKey {
    version: u32,
    bytes: SecretBox<[u8; KEY_LEN]>,
    pub(crate) cipher: Aes256Gcm,
}

impl DataKey {
    /// A fresh random data key with the given version.
    pub fn generate(version: u32) -> Self {
        Self::from_bytes(version, &random_bytes(KEY_LEN)).expect("32 random bytes make a valid key")
    }

    pub(crate) fn from_bytes(version: u32, bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::InvalidKey("data key must be 32 bytes"))?;
        let bytes = SecretBox::new(Box::new(arr));
        let cipher = aead::cipher(bytes.expose_secret());
        Ok(Self { version, bytes, cipher })
    }

    /// This key's version, as written in `tsr:v<N>:`.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The raw key bytes, for a key provider that wraps them elsewhere
    /// (Vault Transit). Exposed at the last moment only.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        self.bytes.expose_secret()
    }

    /// Rebuilds a data key from bytes a key provider unwrapped.
    pub fn from_unwrapped(version: u32, bytes: &[u8]) -> Result<Self, CryptoError> {
        Self::from_bytes(version, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_data_key_unwraps_only_for_its_tenant_and_version() {
        let kek = MasterKey::generate();
        let dek = DataKey::generate(3);
        let wrapped = kek.wrap("acme", 3, &dek);
        let back = kek.unwrap("acme", 3, &wrapped).expect("same tenant and version");
        assert_eq!(back.expose_bytes(), dek.expose_bytes());
        assert_eq!(kek.unwrap("other", 3, &wrapped).err(), Some(CryptoError::Authentication));
        assert_eq!(kek.unwrap("acme", 4, &wrapped).err(), Some(CryptoError::Authentication));
    }

    #[test]
    fn another_master_key_cannot_unwrap() {
        let wrapped = MasterKey::generate().wrap("acme", 1, &DataKey::generate(1));
        let err = MasterKey::generate().unwrap("acme", 1, &wrapped).err();
        assert_eq!(err, Some(CryptoError::Authentication));
    }

    #[test]
    fn master_keys_parse_from_base64_and_hex_but_not_short_text() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        assert_eq!(MasterKey::from_text(&b64).expect("base64").id(), key.id());
        let hex: String = B64.decode(b64.as_bytes()).expect("b64").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(MasterKey::from_text(&hex).expect("hex").id(), key.id());
        assert!(matches!(MasterKey::from_text("c2hvcnQ="), Err(CryptoError::InvalidKey(_))));
        assert!(matches!(MasterKey::from_text("not a key!"), Err(CryptoError::InvalidKey(_))));
    }
}
