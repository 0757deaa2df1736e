//! Ciphers of the systems Tessera replaces, for `tessera import` only:
//! decryption, never encryption of anything Tessera stores.
//!
//! - [`LegacyFormat::Fernet`]: Fernet tokens (`gAAAA...`, AES-128-CBC with
//!   HMAC-SHA256, as Python's `cryptography` writes them), the key 32 bytes.
//!   Token lifetimes are ignored: an old token still decrypts.
//! - [`LegacyFormat::AesGcmHex`]: `ivHex:cipherHex:tagHex`, AES-256-GCM with
//!   no associated data and a 16-byte tag, as Node's
//!   `createCipheriv("aes-256-gcm")` writes it; the IV is 12 bytes, or 16
//!   (GCM then derives the counter block from the IV with GHASH).
//!
//! Errors name what is wrong with the input, never a value or the key.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aes::Aes256;
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::KEY_LEN;

/// Which old system's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyFormat {
    /// Fernet tokens.
    Fernet,
    /// `ivHex:cipherHex:tagHex` AES-256-GCM.
    AesGcmHex,
}

/// Why a legacy value could not be decrypted. The message never holds a
/// plaintext, a ciphertext or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// The key is not 32 bytes.
    #[error("the key must be 32 bytes")]
    InvalidKey,
    /// The ciphertext is not in the format's shape.
    #[error("{0}")]
    Malformed(String),
    /// Wrong key, or the ciphertext was altered.
    #[error("{0}")]
    Authentication(&'static str),
}

type Aes256Gcm12 = AesGcm<Aes256, U12>;
type Aes256Gcm16 = AesGcm<Aes256, U16>;

/// An old system's cipher, keyed. Deliberately not `Debug` or `Clone`.
pub struct LegacyCipher(Inner);

enum Inner {
    Fernet(fernet::Fernet),
    AesGcmHex { iv12: Box<Aes256Gcm12>, iv16: Box<Aes256Gcm16> },
}

impl LegacyCipher {
    /// The cipher of `format` under `key` (32 raw bytes).
    pub fn new(format: LegacyFormat, key: &[u8]) -> Result<Self, LegacyError> {
        if key.len() != KEY_LEN {
            return Err(LegacyError::InvalidKey);
        }
        Ok(Self(match format {
            LegacyFormat::Fernet => {
                let text = Zeroizing::new(base64::engine::general_purpose::URL_SAFE.encode(key));
                Inner::Fernet(fernet::Fernet::new(&text).ok_or(LegacyError::InvalidKey)?)
            }
            LegacyFormat::AesGcmHex => Inner::AesGcmHex {
                iv12: Box::new(Aes256Gcm12::new_from_slice(key).map_err(|_| LegacyError::InvalidKey)?),
                iv16: Box::new(Aes256Gcm16::new_from_slice(key).map_err(|_| LegacyError::InvalidKey)?),
            },
        }))
    }

    /// Decrypts one value (surrounding whitespace ignored).
    pub fn decrypt(&self, ciphertext: &str) -> Result<Zeroizing<Vec<u8>>, LegacyError> {
        let ciphertext = ciphertext.trim();
        match &self.0 {
            Inner::Fernet(f) => {
                if ciphertext.is_empty() {
                    return Err(LegacyError::Malformed("empty ciphertext".into()));
                }
                f.decrypt(ciphertext).map(Zeroizing::new).map_err(|_| {
                    LegacyError::Authentication("cannot decrypt the Fernet token: wrong key, or the token is corrupt")
                })
            }
            Inner::AesGcmHex { iv12, iv16 } => decrypt_gcm_hex(iv12, iv16, ciphertext),
        }
    }
}

fn decrypt_gcm_hex(
    iv12: &Aes256Gcm12,
    iv16: &Aes256Gcm16,
    ciphertext: &str,
) -> Result<Zeroizing<Vec<u8>>, LegacyError> {
    const SHAPE: &str = "malformed ciphertext: expected ivHex:cipherHex:tagHex";
    let malformed = |why: &str| LegacyError::Malformed(format!("{SHAPE}{why}"));
    let mut parts = ciphertext.split(':');
    let (Some(iv), Some(body), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed(""));
    };
    let iv = hex::decode(iv).map_err(|_| malformed(" (the IV is not hex)"))?;
    let tag = hex::decode(tag).map_err(|_| malformed(" (the tag is not hex)"))?;
    let mut buf = Zeroizing::new(hex::decode(body).map_err(|_| malformed(" (the ciphertext is not hex)"))?);
    if tag.len() != 16 {
        return Err(LegacyError::Malformed(format!("the tag is {} bytes; expected 16", tag.len())));
    }
    let tag = GenericArray::from_slice(&tag);
    let ok = match iv.len() {
        12 => iv12.decrypt_in_place_detached(GenericArray::from_slice(&iv), b"", &mut buf, tag).is_ok(),
        16 => iv16.decrypt_in_place_detached(GenericArray::from_slice(&iv), b"", &mut buf, tag).is_ok(),
        n => return Err(LegacyError::Malformed(format!("the IV is {n} bytes; expected 12 (or 16)"))),
    };
    if !ok {
        return Err(LegacyError::Authentication("cannot decrypt: wrong key, or the ciphertext or tag is corrupt"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key bytes 0x40..0x5f.
    fn key() -> Vec<u8> {
        (0x40u8..0x60).collect()
    }

    // Vectors made with Python's `cryptography` (AESGCM, Fernet), not with this code.
    const GCM_IV12: &str = "c0c1c2c3c4c5c6c7c8c9cacb:332157af19e31d9811da5653df:c6c46010ef608d1db47f65322e1de3cf";
    const GCM_IV16: &str =
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf:5d5461a322ccb86da5047fd788:241150c1f1292ca34dd9280b27d77f3e";
    /// `Fernet(urlsafe_b64(key)).encrypt_at_time(b"legacy secret", 1700000000)`.
    const FERNET_TOKEN: &str =
        "gAAAAABlU_EAqpkppOYaWGUwkZ2cwn_SoaWmirFBNoDQITprOI7vY__wrnXoXLeDO8bjJXtCUq1XY85ICoA1JZxsXcqa_8QStw==";

    #[test]
    fn aes_gcm_hex_vectors_with_12_and_16_byte_ivs_decrypt() {
        let c = LegacyCipher::new(LegacyFormat::AesGcmHex, &key()).expect("key");
        assert_eq!(&c.decrypt(GCM_IV12).expect("12-byte IV")[..], b"legacy secret");
        assert_eq!(&c.decrypt(&format!(" {GCM_IV16}\n")).expect("16-byte IV")[..], b"legacy secret");
    }

    #[test]
    fn the_fernet_vector_decrypts_whatever_its_age() {
        let c = LegacyCipher::new(LegacyFormat::Fernet, &key()).expect("key");
        assert_eq!(&c.decrypt(FERNET_TOKEN).expect("token from 2023")[..], b"legacy secret");
    }

    #[test]
    fn wrong_keys_and_altered_values_fail_authentication() {
        let other: Vec<u8> = (0u8..32).collect();
        let gcm = LegacyCipher::new(LegacyFormat::AesGcmHex, &other).expect("key");
        assert!(matches!(gcm.decrypt(GCM_IV12), Err(LegacyError::Authentication(_))));
        let fernet = LegacyCipher::new(LegacyFormat::Fernet, &other).expect("key");
        assert!(matches!(fernet.decrypt(FERNET_TOKEN), Err(LegacyError::Authentication(_))));
        let right = LegacyCipher::new(LegacyFormat::AesGcmHex, &key()).expect("key");
        let flipped = GCM_IV12.replacen(":33", ":32", 1);
        assert!(matches!(right.decrypt(&flipped), Err(LegacyError::Authentication(_))));
    }

    #[test]
    fn shapes_and_keys_are_checked_without_echoing_input() {
        assert_eq!(LegacyCipher::new(LegacyFormat::Fernet, b"short").err(), Some(LegacyError::InvalidKey));
        assert_eq!(LegacyCipher::new(LegacyFormat::AesGcmHex, &[0; 31]).err(), Some(LegacyError::InvalidKey));
        let c = LegacyCipher::new(LegacyFormat::AesGcmHex, &[0x11; 32]).expect("key");
        for bad in [
            "".to_owned(),
            "00:00".to_owned(),
            "zz:00:00".to_owned(),
            format!("{}:00:{}", "00".repeat(12), "00".repeat(8)),
            format!("{}:00:{}", "00".repeat(10), "00".repeat(16)),
            "secretish:0:0:0".to_owned(),
        ] {
            let Err(err) = c.decrypt(&bad) else { panic!("{bad}: accepted") };
            assert!(matches!(err, LegacyError::Malformed(_)), "{bad}: {err}");
            assert!(!err.to_string().contains("secretish"), "{err}");
        }
        let zeros = format!("{}:00:{}", "00".repeat(12), "00".repeat(16));
        assert!(matches!(c.decrypt(&zeros), Err(LegacyError::Authentication(_))));
        let f = LegacyCipher::new(LegacyFormat::Fernet, &[0x11; 32]).expect("key");
        assert!(matches!(f.decrypt("  "), Err(LegacyError::Malformed(_))));
    }
}
