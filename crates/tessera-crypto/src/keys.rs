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
const DEK_WRAP_LABEL_V1: &[u8] = b"tessera.dek-wrap.v1";
const DEK_WRAP_LABEL_V2: &[u8] = b"tessera.dek-wrap.v2";
const KEK_ID_LABEL: &[u8] = b"tessera.kek-id.v1";
const WRAPPED_PREFIX: &str = "tsrk:";
/// After [`WRAPPED_PREFIX`]: the wrap's associated data is [`WrapFormat::V2`].
/// (A version 1 wrap goes on with the key id, 12 hex digits, never `v`.)
const V2_MARK: &str = "v2:";
/// A data key wrapped outside Tessera (Vault Transit) in [`WrapFormat::V2`]:
/// this prefix, then the provider's own ciphertext.
pub const EXTERNAL_WRAP_V2_PREFIX: &str = "tsrx:v2:";

/// The start-up check values: a throw-away data key wrapped for a reserved
/// owner (a tenant id no real tenant can have), stored on first start and
/// unwrapped on every later one, so a wrong key-encryption key stops
/// start-up instead of failing reads. Stored data depends on these: changing
/// one makes every existing store fail its check.
pub mod check {
    use super::KeyOwner;

    /// The data-key version a check value is wrapped with.
    pub const VERSION: u32 = 0;
    /// The owner the `local` master key's check value is wrapped for.
    pub const LOCAL_OWNER: KeyOwner<'static> = KeyOwner { tenant: "\u{0}kek-check", incarnation: "" };
    /// The owner the `vault-transit` provider's check value is wrapped for.
    pub const TRANSIT_OWNER: KeyOwner<'static> = KeyOwner { tenant: "\u{0}check", incarnation: "" };
    /// The Transit key the `vault-transit` check value is wrapped with
    /// (tenants' keys are named by tenant id, which never starts with NUL).
    pub const TRANSIT_KEY: &str = "tessera-kek-check";
}

/// Whose data key this is: a tenant, and which incarnation of it. A tenant
/// id may be deleted and created again; each creation is a new incarnation
/// (a random id stored with the tenant), so that a data key, or anything
/// cached about one, can never be taken for the key of a later tenant with
/// the same id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyOwner<'a> {
    /// The tenant id.
    pub tenant: &'a str,
    /// The tenant's incarnation.
    pub incarnation: &'a str,
}

/// How a data key's wrap is bound to its owner (its associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapFormat {
    /// Label, tenant and version joined by NUL bytes; no incarnation. Read
    /// only: every new wrap is [`WrapFormat::V2`], and `tessera keys
    /// rotate-master` rewraps old ones.
    V1,
    /// Label, tenant, incarnation and version, each prefixed by its length
    /// (4 bytes, big-endian), so no two different owners encode alike.
    V2,
}

/// The associated data of a data key's wrap: what the wrap is bound to.
/// Shared by every key provider (the local master key and Vault Transit).
pub fn wrap_aad(format: WrapFormat, owner: KeyOwner<'_>, version: u32) -> Vec<u8> {
    match format {
        WrapFormat::V1 => {
            let mut aad = Vec::with_capacity(DEK_WRAP_LABEL_V1.len() + owner.tenant.len() + 6);
            aad.extend_from_slice(DEK_WRAP_LABEL_V1);
            aad.push(0);
            aad.extend_from_slice(owner.tenant.as_bytes());
            aad.push(0);
            aad.extend_from_slice(&version.to_be_bytes());
            aad
        }
        WrapFormat::V2 => length_prefixed(&[
            DEK_WRAP_LABEL_V2,
            owner.tenant.as_bytes(),
            owner.incarnation.as_bytes(),
            &version.to_be_bytes(),
        ]),
    }
}

/// Each part prefixed by its length as 4 big-endian bytes.
pub(crate) fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).expect("associated data parts are far shorter than 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

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

    /// Wraps a data key of `owner`, version `version` ([`WrapFormat::V2`]).
    pub fn wrap(&self, owner: KeyOwner<'_>, version: u32, dek: &DataKey) -> WrappedDataKey {
        let aad = wrap_aad(WrapFormat::V2, owner, version);
        let sealed = aead::seal(&self.cipher, &aad, dek.bytes.expose_secret());
        self.wrapped(WrapFormat::V2, &sealed)
    }

    /// Wraps with a given nonce: the known-answer tests only.
    #[cfg(test)]
    pub(crate) fn wrap_with_nonce(
        &self,
        format: WrapFormat,
        owner: KeyOwner<'_>,
        version: u32,
        dek: &DataKey,
        nonce: &[u8; aead::NONCE_LEN],
    ) -> WrappedDataKey {
        let aad = wrap_aad(format, owner, version);
        self.wrapped(format, &aead::seal_with_nonce(&self.cipher, nonce, &aad, dek.bytes.expose_secret()))
    }

    fn wrapped(&self, format: WrapFormat, sealed: &[u8]) -> WrappedDataKey {
        let mark = match format {
            WrapFormat::V1 => "",
            WrapFormat::V2 => V2_MARK,
        };
        WrappedDataKey(format!("{WRAPPED_PREFIX}{mark}{}:{}", self.id, B64.encode(sealed)))
    }

    /// Unwraps a data key; fails if it was wrapped for another owner or
    /// version, under another master key, or altered.
    pub fn unwrap(&self, owner: KeyOwner<'_>, version: u32, wrapped: &WrappedDataKey) -> Result<DataKey, CryptoError> {
        let (format, kek_id, body) = wrapped.parts()?;
        if kek_id != self.id {
            return Err(CryptoError::Authentication);
        }
        let sealed = B64.decode(body).map_err(|_| CryptoError::Malformed("wrapped key is not base64"))?;
        let plain = aead::open(&self.cipher, &wrap_aad(format, owner, version), &sealed)?;
        DataKey::from_bytes(version, &plain)
    }
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

/// A data key wrapped by a master key: `tsrk:v2:<kekId>:<base64>` (or
/// `tsrk:<kekId>:<base64>` in [`WrapFormat::V1`]), or by an external
/// provider (see [`WrappedDataKey::external`]). Safe to store.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDataKey(pub String);

impl WrappedDataKey {
    /// The id of the master key that wrapped this data key, if well formed.
    pub fn kek_id(&self) -> Option<&str> {
        self.parts().ok().map(|(_, id, _)| id)
    }

    /// Format, master key id and base64 body of a `tsrk:` wrap.
    fn parts(&self) -> Result<(WrapFormat, &str, &str), CryptoError> {
        let rest =
            self.0.strip_prefix(WRAPPED_PREFIX).ok_or(CryptoError::Malformed("wrapped key lacks the tsrk: prefix"))?;
        let (format, rest) = match rest.strip_prefix(V2_MARK) {
            Some(rest) => (WrapFormat::V2, rest),
            None => (WrapFormat::V1, rest),
        };
        let (kek_id, body) = rest.split_once(':').ok_or(CryptoError::Malformed("wrapped key lacks a key id"))?;
        Ok((format, kek_id, body))
    }

    /// A wrap made by an external provider (Vault Transit): its format, and
    /// the provider's own ciphertext. Text without [`EXTERNAL_WRAP_V2_PREFIX`]
    /// is a version 1 wrap, stored as the provider returned it.
    pub fn external(&self) -> (WrapFormat, &str) {
        match self.0.strip_prefix(EXTERNAL_WRAP_V2_PREFIX) {
            Some(provider_text) => (WrapFormat::V2, provider_text),
            None => (WrapFormat::V1, &self.0),
        }
    }

    /// Marks a provider's ciphertext as a [`WrapFormat::V2`] wrap.
    pub fn external_v2(provider_text: &str) -> Self {
        Self(format!("{EXTERNAL_WRAP_V2_PREFIX}{provider_text}"))
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

    const ACME: KeyOwner<'static> = KeyOwner { tenant: "acme", incarnation: "i1" };

    #[test]
    fn a_wrapped_data_key_unwraps_only_for_its_tenant_incarnation_and_version() {
        let kek = MasterKey::generate();
        let dek = DataKey::generate(3);
        let wrapped = kek.wrap(ACME, 3, &dek);
        assert!(wrapped.0.starts_with("tsrk:v2:"));
        assert_eq!(wrapped.kek_id(), Some(kek.id()));
        let back = kek.unwrap(ACME, 3, &wrapped).expect("same owner and version");
        assert_eq!(back.expose_bytes(), dek.expose_bytes());
        let other = KeyOwner { tenant: "other", incarnation: "i1" };
        let reborn = KeyOwner { tenant: "acme", incarnation: "i2" };
        for (owner, version) in [(other, 3), (reborn, 3), (ACME, 4)] {
            assert_eq!(kek.unwrap(owner, version, &wrapped).err(), Some(CryptoError::Authentication));
        }
    }

    #[test]
    fn another_master_key_cannot_unwrap() {
        let wrapped = MasterKey::generate().wrap(ACME, 1, &DataKey::generate(1));
        let err = MasterKey::generate().unwrap(ACME, 1, &wrapped).err();
        assert_eq!(err, Some(CryptoError::Authentication));
    }

    #[test]
    fn a_version_1_wrap_still_unwraps_whatever_the_incarnation() {
        // Wraps written before incarnations existed bind tenant and version only.
        let kek = MasterKey::generate();
        let dek = DataKey::generate(2);
        let aad = wrap_aad(WrapFormat::V1, ACME, 2);
        let sealed = aead::seal(&kek.cipher, &aad, dek.expose_bytes());
        let wrapped = WrappedDataKey(format!("tsrk:{}:{}", kek.id(), B64.encode(sealed)));
        assert_eq!(wrapped.kek_id(), Some(kek.id()));
        let back = kek.unwrap(KeyOwner { tenant: "acme", incarnation: "any" }, 2, &wrapped).expect("v1");
        assert_eq!(back.expose_bytes(), dek.expose_bytes());
        assert!(kek.unwrap(KeyOwner { tenant: "beta", incarnation: "any" }, 2, &wrapped).is_err());
    }

    #[test]
    fn length_prefixed_owners_never_encode_alike() {
        let a = wrap_aad(WrapFormat::V2, KeyOwner { tenant: "ab", incarnation: "c" }, 1);
        let b = wrap_aad(WrapFormat::V2, KeyOwner { tenant: "a", incarnation: "bc" }, 1);
        assert_ne!(a, b);
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
