//! Vault Transit's `aes256-gcm96` keys and ciphertexts, for the
//! Vault-compatible API: `vault:v<N>:<base64(nonce || ciphertext || tag)>`,
//! N the key version, a fresh random 96-bit nonce each time, and no
//! associated data (as Vault's, without a derivation context). A tenant's
//! key material is itself stored encrypted under the tenant's data key; this
//! module only seals and opens with it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::aead::{cipher, open, seal};
use crate::CryptoError;

/// The prefix of a Transit ciphertext.
pub const TRANSIT_PREFIX: &str = "vault:v";

/// One version of a Transit key: 32 random bytes, zeroized on drop, never printed.
pub struct TransitKey(Zeroizing<[u8; 32]>);

impl TransitKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let bytes = crate::random_bytes(32);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Self(key)
    }

    /// A key from its stored bytes (exactly 32).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err(CryptoError::InvalidKey("a transit key is 32 bytes"));
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The key bytes, to store them encrypted.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// Seals `plaintext` as version `version`'s ciphertext text.
    pub fn seal(&self, version: u32, plaintext: &[u8]) -> String {
        let sealed = seal(&cipher(&self.0), &[], plaintext);
        format!("{TRANSIT_PREFIX}{version}:{}", STANDARD.encode(sealed))
    }

    /// Opens a ciphertext text made by [`TransitKey::seal`] with this key.
    pub fn open(&self, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (_, body) = split(text)?;
        let sealed = STANDARD.decode(body).map_err(|_| CryptoError::Malformed("not base64"))?;
        open(&cipher(&self.0), &[], &sealed)
    }
}

/// The key version a Transit ciphertext names.
pub fn transit_key_version(text: &str) -> Result<u32, CryptoError> {
    split(text).map(|(v, _)| v)
}

fn split(text: &str) -> Result<(u32, &str), CryptoError> {
    let rest = text.strip_prefix(TRANSIT_PREFIX).ok_or(CryptoError::Malformed("not a vault:v<N>: ciphertext"))?;
    let (version, body) = rest.split_once(':').ok_or(CryptoError::Malformed("no key version"))?;
    let digits = !version.is_empty() && version.len() <= 9 && version.bytes().all(|b| b.is_ascii_digit());
    match version.parse::<u32>() {
        Ok(v) if digits && v > 0 => Ok((v, body)),
        _ => Err(CryptoError::Malformed("the key version is not a positive number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_opens_with_its_key_only_and_names_its_version() {
        let key = TransitKey::generate();
        let text = key.seal(3, b"hello");
        assert!(text.starts_with("vault:v3:"), "{text}");
        assert_eq!(transit_key_version(&text), Ok(3));
        assert_eq!(&key.open(&text).expect("opens")[..], b"hello");
        assert_eq!(TransitKey::generate().open(&text).err(), Some(CryptoError::Authentication));
        assert_ne!(key.seal(3, b"hello"), text, "a fresh nonce each time");
        for bad in ["vault:v0:AAAA", "vault:vx:AAAA", "tsr:v1:AAAA", "vault:v1", "vault:v1:!!"] {
            assert!(key.open(bad).is_err(), "{bad}");
        }
    }
}
