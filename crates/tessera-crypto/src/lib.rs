//! Envelope encryption for Tessera, with no I/O.
//!
//! Where it sits: below the service layer's keyring and secret paths. A
//! key-encryption key ([`MasterKey`]) wraps per-tenant data keys ([`DataKey`]);
//! data keys encrypt values. Both layers use AES-256-GCM with a fresh random
//! 96-bit nonce and associated data that binds the ciphertext to where it
//! belongs, so a ciphertext copied to another tenant, path or field fails to
//! decrypt.
//!
//! The formats written here are pinned by known-answer vectors
//! (`known_answers.rs`): what is stored today must decrypt after any
//! refactor. [`legacy`] holds the ciphers of other systems that `tessera
//! import` reads; no crate outside this one holds cipher code.
//!
//! What it must never do: print key material (no type here implements `Debug`
//! with key bytes), reuse a nonce, or slice a ciphertext before checking its
//! length.
#![deny(missing_docs)]

mod aead;
mod error;
mod keys;
#[cfg(test)]
mod known_answers;
pub mod legacy;
mod transit;
mod value;

pub use error::CryptoError;
pub use keys::{
    check, random_bytes, wrap_aad, DataKey, KeyOwner, MasterKey, WrapFormat, WrappedDataKey, EXTERNAL_WRAP_V2_PREFIX,
    KEY_LEN,
};
pub use transit::{transit_key_version, TransitKey, TRANSIT_PREFIX};
pub use value::{ciphertext_format, ciphertext_key_version, Aad, ValueFormat, CIPHERTEXT_PREFIX};
