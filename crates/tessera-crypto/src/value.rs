//! Value ciphertexts, in two formats that differ only in how the associated
//! data is encoded (the header's `v<N>` is the data key's version in both):
//!
//! - [`ValueFormat::V2`], written by [`DataKey::encrypt`]:
//!   `tsr:v<dekVersion>:f2:<base64(nonce || ciphertext || tag)>`, associated
//!   data = label, tenant, path and field, each prefixed by its length.
//! - [`ValueFormat::V1`], read only: `tsr:v<dekVersion>:<base64(...)>`,
//!   associated data = the same parts joined by NUL bytes. A NUL inside a
//!   part could shift bytes from one part to the next; `tessera keys rewrap`
//!   rewrites such values in format 2.
//!
//! Standard base64 has no `:`, so a version 1 body can never be taken for
//! the `f2:` mark, and both formats start with [`CIPHERTEXT_PREFIX`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::aead;
use crate::keys::{length_prefixed, DataKey};
use crate::CryptoError;

/// Every value ciphertext starts with this, like Vault's `vault:`.
pub const CIPHERTEXT_PREFIX: &str = "tsr:v";
/// After the key version: the body is in [`ValueFormat::V2`].
const V2_MARK: &str = "f2:";
const VALUE_LABEL_V1: &[u8] = b"tessera.value.v1";
const VALUE_LABEL_V2: &[u8] = b"tessera.value.v2";

/// How a value's associated data is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFormat {
    /// Parts joined by NUL bytes (read only).
    V1,
    /// Parts prefixed by their length (4 bytes, big-endian): every new value.
    V2,
}

/// Associated data: where a ciphertext belongs (tenant, path, field).
#[derive(Clone, Copy)]
pub struct Aad<'a> {
    tenant: &'a str,
    path: &'a str,
    field: &'a str,
}

impl<'a> Aad<'a> {
    /// Binds a value to its tenant, secret path and field within that secret.
    pub fn new(tenant: &'a str, path: &'a str, field: &'a str) -> Self {
        Self { tenant, path, field }
    }

    /// The bytes authenticated with a value in `format`.
    pub fn bytes(&self, format: ValueFormat) -> Vec<u8> {
        let parts = [self.tenant.as_bytes(), self.path.as_bytes(), self.field.as_bytes()];
        match format {
            ValueFormat::V1 => {
                let mut aad =
                    Vec::with_capacity(VALUE_LABEL_V1.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
                aad.extend_from_slice(VALUE_LABEL_V1);
                for part in parts {
                    aad.push(0);
                    aad.extend_from_slice(part);
                }
                aad
            }
            ValueFormat::V2 => length_prefixed(&[VALUE_LABEL_V2, parts[0], parts[1], parts[2]]),
        }
    }
}

impl DataKey {
    /// Encrypts `plaintext` (fresh random nonce) into the current text form,
    /// `tsr:v<N>:f2:`.
    pub fn encrypt(&self, aad: &Aad<'_>, plaintext: &[u8]) -> String {
        let sealed = aead::seal(&self.cipher, &aad.bytes(ValueFormat::V2), plaintext);
        self.text(ValueFormat::V2, &sealed)
    }

    /// Encrypts in the old [`ValueFormat::V1`] (random nonce). Never used to
    /// store anything: only for tests that show such values stay readable
    /// and are rewritten.
    #[doc(hidden)]
    pub fn encrypt_v1_for_tests(&self, aad: &Aad<'_>, plaintext: &[u8]) -> String {
        let sealed = aead::seal(&self.cipher, &aad.bytes(ValueFormat::V1), plaintext);
        self.text(ValueFormat::V1, &sealed)
    }

    /// Encrypts with a given nonce: the known-answer tests only.
    #[cfg(test)]
    pub(crate) fn encrypt_with_nonce(
        &self,
        format: ValueFormat,
        aad: &Aad<'_>,
        nonce: &[u8; aead::NONCE_LEN],
        plaintext: &[u8],
    ) -> String {
        let sealed = aead::seal_with_nonce(&self.cipher, nonce, &aad.bytes(format), plaintext);
        self.text(format, &sealed)
    }

    fn text(&self, format: ValueFormat, sealed: &[u8]) -> String {
        let mark = match format {
            ValueFormat::V1 => "",
            ValueFormat::V2 => V2_MARK,
        };
        format!("{CIPHERTEXT_PREFIX}{}:{mark}{}", self.version(), B64.encode(sealed))
    }

    /// Decrypts a `tsr:v<N>:` ciphertext (either format) made with this key version.
    pub fn decrypt(&self, aad: &Aad<'_>, ciphertext: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let header = split(ciphertext)?;
        if header.key_version != self.version() {
            return Err(CryptoError::Malformed("key version does not match"));
        }
        let sealed = B64.decode(header.body).map_err(|_| CryptoError::Malformed("body is not base64"))?;
        aead::open(&self.cipher, &aad.bytes(header.format), &sealed)
    }
}

/// The data-key version a ciphertext was made with, read from its header.
pub fn ciphertext_key_version(ciphertext: &str) -> Result<u32, CryptoError> {
    split(ciphertext).map(|h| h.key_version)
}

/// The format a ciphertext was written in, read from its header.
pub fn ciphertext_format(ciphertext: &str) -> Result<ValueFormat, CryptoError> {
    split(ciphertext).map(|h| h.format)
}

struct Header<'a> {
    key_version: u32,
    format: ValueFormat,
    body: &'a str,
}

fn split(ciphertext: &str) -> Result<Header<'_>, CryptoError> {
    let rest = ciphertext.strip_prefix(CIPHERTEXT_PREFIX).ok_or(CryptoError::Malformed("missing tsr:v prefix"))?;
    let (version, body) = rest.split_once(':').ok_or(CryptoError::Malformed("missing key version"))?;
    let key_version = version.parse::<u32>().map_err(|_| CryptoError::Malformed("key version is not a number"))?;
    let (format, body) = match body.strip_prefix(V2_MARK) {
        Some(body) => (ValueFormat::V2, body),
        None => (ValueFormat::V1, body),
    };
    Ok(Header { key_version, format, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_value_decrypts_only_where_it_was_written() {
        let dek = DataKey::generate(1);
        let ct = dek.encrypt(&Aad::new("acme", "stripe/KEY", "value"), b"sk_live_1");
        assert!(ct.starts_with("tsr:v1:f2:"));
        let ok = dek.decrypt(&Aad::new("acme", "stripe/KEY", "value"), &ct).expect("same place");
        assert_eq!(&ok[..], b"sk_live_1");
        for aad in [
            Aad::new("beta", "stripe/KEY", "value"),
            Aad::new("acme", "stripe/OTHER", "value"),
            Aad::new("acme", "stripe/KEY", "data"),
        ] {
            assert_eq!(dek.decrypt(&aad, &ct).err(), Some(CryptoError::Authentication));
        }
    }

    #[test]
    fn aad_parts_cannot_be_shifted_between_fields() {
        let dek = DataKey::generate(1);
        let ct = dek.encrypt(&Aad::new("t", "ab", "c"), b"x");
        assert!(dek.decrypt(&Aad::new("t", "a", "bc"), &ct).is_err());
        // With NUL-joined parts (format 1), a NUL inside a part shifts the
        // boundary unnoticed; length prefixes tell the two apart.
        let (a, b) = (Aad::new("t", "a\0b", "c"), Aad::new("t", "a", "b\0c"));
        assert_eq!(a.bytes(ValueFormat::V1), b.bytes(ValueFormat::V1));
        assert_ne!(a.bytes(ValueFormat::V2), b.bytes(ValueFormat::V2));
        assert!(dek.decrypt(&b, &dek.encrypt(&a, b"x")).is_err());
    }

    #[test]
    fn format_1_values_stay_readable() {
        let dek = DataKey::generate(3);
        let aad = Aad::new("acme", "p", "f");
        let old = dek.encrypt_v1_for_tests(&aad, b"old value");
        assert!(old.starts_with("tsr:v3:") && !old.starts_with("tsr:v3:f2:"), "{old}");
        assert_eq!(ciphertext_format(&old), Ok(ValueFormat::V1));
        assert_eq!(ciphertext_key_version(&old), Ok(3));
        assert_eq!(&dek.decrypt(&aad, &old).expect("v1 reads")[..], b"old value");
        assert_eq!(dek.decrypt(&Aad::new("acme", "p", "g"), &old).err(), Some(CryptoError::Authentication));
        let new = dek.encrypt(&aad, b"new value");
        assert_eq!(ciphertext_format(&new), Ok(ValueFormat::V2));
        // A format mark changed on a stored value fails authentication: the formats' bytes differ.
        let relabelled = new.replacen(":f2:", ":", 1);
        assert_eq!(dek.decrypt(&aad, &relabelled).err(), Some(CryptoError::Authentication));
    }

    #[test]
    fn tampering_and_truncation_are_detected_without_panicking() {
        let dek = DataKey::generate(2);
        let aad = Aad::new("acme", "p", "f");
        let ct = dek.encrypt(&aad, b"secret");
        let mut bytes = B64.decode(&ct["tsr:v2:f2:".len()..]).expect("b64");
        bytes[14] ^= 1;
        let tampered = format!("tsr:v2:f2:{}", B64.encode(&bytes));
        assert_eq!(dek.decrypt(&aad, &tampered).err(), Some(CryptoError::Authentication));
        assert!(matches!(dek.decrypt(&aad, "tsr:v2:AAAA"), Err(CryptoError::Malformed(_))));
        assert!(matches!(dek.decrypt(&aad, "tsr:v2:f2:AAAA"), Err(CryptoError::Malformed(_))));
        assert!(matches!(dek.decrypt(&aad, "tsr:v2:f2:"), Err(CryptoError::Malformed(_))));
        assert!(matches!(dek.decrypt(&aad, "tsr:v1:AAAA"), Err(CryptoError::Malformed(_))));
        assert!(matches!(dek.decrypt(&aad, "gAAAAAB"), Err(CryptoError::Malformed(_))));
        assert!(matches!(dek.decrypt(&aad, "tsr:vX:AAAA"), Err(CryptoError::Malformed(_))));
    }

    #[test]
    fn two_encryptions_of_one_value_differ() {
        let dek = DataKey::generate(1);
        let aad = Aad::new("t", "p", "f");
        assert_ne!(dek.encrypt(&aad, b"same"), dek.encrypt(&aad, b"same"));
    }

    #[test]
    fn the_header_names_the_key_version() {
        let ct = DataKey::generate(42).encrypt(&Aad::new("t", "p", "f"), b"v");
        assert_eq!(ciphertext_key_version(&ct), Ok(42));
    }

    proptest! {
        #[test]
        fn any_value_round_trips(value in proptest::collection::vec(any::<u8>(), 0..2048),
                                 tenant in "[a-z0-9]{1,20}", path in "[A-Za-z0-9/_.-]{1,40}") {
            let dek = DataKey::generate(7);
            let ct = dek.encrypt(&Aad::new(&tenant, &path, "f"), &value);
            let back = dek.decrypt(&Aad::new(&tenant, &path, "f"), &ct).expect("round trip");
            prop_assert_eq!(&back[..], &value[..]);
        }
    }
}
