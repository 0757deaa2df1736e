//! Value ciphertexts: `tsr:v<dekVersion>:<base64(nonce || ciphertext || tag)>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::aead;
use crate::keys::DataKey;
use crate::CryptoError;

/// Every value ciphertext starts with this, like Vault's `vault:`.
pub const CIPHERTEXT_PREFIX: &str = "tsr:v";
const VALUE_LABEL: &[u8] = b"tessera.value.v1";

/// Associated data: where a ciphertext belongs (tenant, path, field).
pub struct Aad(Vec<u8>);

impl Aad {
    /// Binds a value to its tenant, secret path and field within that secret.
    pub fn new(tenant: &str, path: &str, field: &str) -> Self {
        let mut aad = Vec::with_capacity(VALUE_LABEL.len() + tenant.len() + path.len() + field.len() + 3);
        for (i, part) in [VALUE_LABEL, tenant.as_bytes(), path.as_bytes(), field.as_bytes()].into_iter().enumerate() {
            if i > 0 {
                aad.push(0);
            }
            aad.extend_from_slice(part);
        }
        Self(aad)
    }
}

impl DataKey {
    /// Encrypts `plaintext` into the `tsr:v<N>:` text form.
    pub fn encrypt(&self, aad: &Aad, plaintext: &[u8]) -> String {
        let sealed = aead::seal(&self.cipher, &aad.0, plaintext);
        format!("{CIPHERTEXT_PREFIX}{}:{}", self.version(), B64.encode(sealed))
    }

    /// Decrypts a `tsr:v<N>:` ciphertext made with this key version.
    pub fn decrypt(&self, aad: &Aad, ciphertext: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (version, body) = split(ciphertext)?;
        if version != self.version() {
            return Err(CryptoError::Malformed("key version does not match"));
        }
        let sealed = B64.decode(body).map_err(|_| CryptoError::Malformed("body is not base64"))?;
        aead::open(&self.cipher, &aad.0, &sealed)
    }
}

/// The data-key version a ciphertext was made with, read from its header.
pub fn ciphertext_key_version(ciphertext: &str) -> Result<u32, CryptoError> {
    split(ciphertext).map(|(v, _)| v)
}

fn split(ciphertext: &str) -> Result<(u32, &str), CryptoError> {
    let rest = ciphertext.strip_prefix(CIPHERTEXT_PREFIX).ok_or(CryptoError::Malformed("missing tsr:v prefix"))?;
    let (version, body) = rest.split_once(':').ok_or(CryptoError::Malformed("missing key version"))?;
    let version = version.parse::<u32>().map_err(|_| CryptoError::Malformed("key version is not a number"))?;
    Ok((version, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_value_decrypts_only_where_it_was_written() {
        let dek = DataKey::generate(1);
        let ct = dek.encrypt(&Aad::new("acme", "stripe/KEY", "value"), b"sk_live_1");
        assert!(ct.starts_with("tsr:v1:"));
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
        // "a\0b" + "c" must differ from "a" + "b\0c": the separators make them distinct.
        let dek = DataKey::generate(1);
        let ct = dek.encrypt(&Aad::new("t", "ab", "c"), b"x");
        assert!(dek.decrypt(&Aad::new("t", "a", "bc"), &ct).is_err());
    }

    #[test]
    fn tampering_and_truncation_are_detected_without_panicking() {
        let dek = DataKey::generate(2);
        let aad = Aad::new("acme", "p", "f");
        let ct = dek.encrypt(&aad, b"secret");
        let mut bytes = B64.decode(&ct["tsr:v2:".len()..]).expect("b64");
        bytes[14] ^= 1;
        let tampered = format!("tsr:v2:{}", B64.encode(&bytes));
        assert_eq!(dek.decrypt(&aad, &tampered).err(), Some(CryptoError::Authentication));
        assert!(matches!(dek.decrypt(&aad, "tsr:v2:AAAA"), Err(CryptoError::Malformed(_))));
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
