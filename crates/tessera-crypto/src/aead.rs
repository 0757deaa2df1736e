//! The one AES-256-GCM primitive every layer uses: `nonce || ciphertext || tag`.
//!
//! Nonces are random, 96 bits, drawn from the operating system for every
//! encryption. NIST SP 800-38D (section 8.3) allows at most 2^32 encryptions
//! under one key with random nonces (the chance of any nonce repeating is
//! then about 2^-33). Tessera does not count encryptions: a count would be
//! a write to the key's row in every transaction that encrypts, and all
//! writes of a tenant would queue on that row. The bound is far from reach
//! instead, because every encryption is one stored write:
//! - a data key encrypts one value per write of its tenant (a secret
//!   version, a config field, a token, an OAuth state, a webhook secret):
//!   2^32 writes is 136 years at one write per second, or 1.4 years at a
//!   sustained 100 per second for a single tenant; rotating the tenant's
//!   key (`POST /tenants/{t}/keys/rotate`) starts a fresh key, so a tenant
//!   that writes at such a rate must rotate at least yearly;
//! - the master key encrypts one data key per tenant and key version (and
//!   one check value): a million tenants rotating monthly for a century is
//!   about 2^30.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::CryptoError;

pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

pub(crate) fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Seals `plaintext` with a fresh random nonce; returns `nonce || ct || tag`.
pub(crate) fn seal(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&Aes256Gcm::generate_nonce(&mut OsRng));
    seal_with_nonce(cipher, &nonce, aad, plaintext)
}

/// Seals with a given nonce. Only [`seal`] (random nonces) and the
/// known-answer tests call this: a fixed nonce in production would repeat.
pub(crate) fn seal_with_nonce(cipher: &Aes256Gcm, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let sealed = cipher
        .encrypt(Nonce::from_slice(nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encryption cannot fail for inputs under 64 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    out
}

/// Opens `nonce || ct || tag`, checking the length before slicing.
pub(crate) fn open(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Authentication)
}
