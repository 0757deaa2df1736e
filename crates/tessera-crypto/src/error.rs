use thiserror::Error;

/// Why an encryption or decryption did not happen.
///
/// Messages name the problem but never contain key material or plaintext.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The text is not in the `tsr:v<N>:<base64>` (or wrapped-key) form.
    #[error("ciphertext is malformed: {0}")]
    Malformed(&'static str),
    /// Authentication failed: wrong key, tampered bytes, or moved to another
    /// tenant, path or field.
    #[error("ciphertext failed authentication (wrong key, tampered, or moved to another record)")]
    Authentication,
    /// A key given as text was not 32 bytes of base64 or hex.
    #[error("key is invalid: {0}")]
    InvalidKey(&'static str),
}
