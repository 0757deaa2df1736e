//! Verifying one secret: versions, states, kinds and keyed hashes of values.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ServiceError;

use super::source::{load, plaintext, reveal};
use super::*;

/// Compares one secret; `Some(reason)` when it differs.
pub(super) async fn verify_secret(
    sides: &Sides<'_>,
    key: &[u8],
    reveal_hidden: bool,
    tenant: &str,
    path: &str,
    report: &mut VerifyReport,
) -> Result<Option<String>, ServiceError> {
    let mut tx = sides.store.begin_read().await?;
    let mut src = load(sides.from, tx.as_mut(), tenant, path).await?;
    let mut tgt = load(sides.to, tx.as_mut(), tenant, path).await?;
    if src.len() != tgt.len() {
        tx.commit().await?;
        return Ok(Some(format!("the source keeps {} version(s), the target {}", src.len(), tgt.len())));
    }
    if reveal_hidden {
        for (backend, items) in [(sides.from, &mut src), (sides.to, &mut tgt)] {
            for item in items.iter_mut() {
                if matches!(item.content, Content::Hidden) && item.deleted_at.is_some() {
                    reveal(backend, tx.as_mut(), tenant, path, item).await?;
                }
            }
        }
    }
    let mut differs = None;
    for (s, t) in src.iter().zip(&tgt) {
        let at = if s.version == t.version {
            format!("version {}", t.version)
        } else {
            format!("version {} (source version {})", t.version, s.version)
        };
        let reason = if matches!(s.content, Content::Placeholder) || matches!(t.content, Content::Placeholder) {
            Some(format!("{at} holds a migration placeholder that was not destroyed"))
        } else if s.is_destroyed() != t.is_destroyed() {
            Some(format!("{at} is destroyed on one side only"))
        } else if s.deleted_at.is_some() != t.deleted_at.is_some() {
            Some(format!("{at} is deleted on one side only"))
        } else if s.is_destroyed() {
            None
        } else if matches!(s.content, Content::Hidden) || matches!(t.content, Content::Hidden) {
            report.versions_not_compared += 1;
            None
        } else if s.kind != t.kind {
            Some(format!("{at} has kind {} in the source, {} in the target", s.kind, t.kind))
        } else {
            report.versions_compared += 1;
            let a = plaintext(sides.keyring, tx.as_mut(), tenant, path, s).await?;
            let b = plaintext(sides.keyring, tx.as_mut(), tenant, path, t).await?;
            match (a, b) {
                (None, _) => Some(format!("{at} does not decrypt in the source")),
                (_, None) => Some(format!("{at} does not decrypt in the target")),
                (Some(a), Some(b)) if !bool::from(keyed_hash(key, &a)[..].ct_eq(&keyed_hash(key, &b)[..])) => {
                    Some(format!("{at} has a different value"))
                }
                _ => None,
            }
        };
        if reason.is_some() {
            differs = reason;
            break;
        }
    }
    tx.commit().await?;
    Ok(differs)
}

/// HMAC-SHA256 of a value under the run's random key.
pub(super) fn keyed_hash(key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}
