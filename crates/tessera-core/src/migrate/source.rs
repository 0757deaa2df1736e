//! Reading a secret's versions (and plaintext, to compare) from either side.

use crate::ErrorCode;
use chrono::Utc;

use zeroize::Zeroizing;

use crate::error::{ErrorKind, ServiceError};
use crate::keyring::Keyring;
use crate::ports::{SecretVersionRecord, StoreTx};
use crate::secret_store::SecretStore;

use super::*;

/// Every kept version of a secret, oldest first, with its content.
pub(super) async fn load(
    backend: &dyn SecretStore,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
) -> Result<Vec<Item>, ServiceError> {
    let mut items = Vec::new();
    for listed in backend.versions(tx, tenant, path).await? {
        let destroyed = listed.ciphertext.is_none();
        // A backend may list metadata only (Vault): then each version is read for its kind and ciphertext.
        let partial = listed.kind.is_empty() || listed.ciphertext.as_deref() == Some("");
        let record = if destroyed || !partial {
            listed
        } else {
            match backend.version(tx, tenant, path, listed.version).await? {
                Some(r) => r,
                None => continue, // pruned meanwhile
            }
        };
        let SecretVersionRecord { version, kind, ciphertext, created_at, created_by, deleted_at } = record;
        let content = match ciphertext {
            _ if destroyed => Content::Destroyed,
            Some(c) if backend.holds_plaintext() => Content::Plain(Zeroizing::new(c.into_bytes())),
            Some(c) if c == DESTROYED_PLACEHOLDER => Content::Placeholder,
            Some(c) if !c.is_empty() => Content::Cipher(c),
            _ => Content::Hidden,
        };
        items.push(Item { version, kind, content, created_at, created_by, deleted_at });
    }
    Ok(items)
}

/// Undeletes a deleted version whose data the store withholds, reads it, and
/// deletes it again (whatever the read gave).
pub(super) async fn reveal(
    backend: &dyn SecretStore,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
    item: &mut Item,
) -> Result<(), ServiceError> {
    let at = item.deleted_at.unwrap_or_else(Utc::now);
    backend.set_deleted(tx, tenant, path, &[item.version], None).await?;
    let read = backend.version(tx, tenant, path, item.version).await;
    backend.set_deleted(tx, tenant, path, &[item.version], Some(at)).await?;
    match read?.and_then(|r| r.ciphertext.filter(|c| !c.is_empty()).map(|c| (r.kind, r.created_by, c))) {
        Some((kind, created_by, c)) => {
            item.kind = kind;
            item.created_by = created_by;
            item.content = if c == DESTROYED_PLACEHOLDER { Content::Placeholder } else { Content::Cipher(c) };
            Ok(())
        }
        None => Err(ServiceError::new(
            ErrorKind::Integrity,
            ErrorCode::VersionUnreadable,
            format!("deleted version {} of {path} (tenant {tenant}) stays unreadable once undeleted", item.version),
        )),
    }
}

/// The value of a version, or `None` when there is none or it does not decrypt.
pub(super) async fn plaintext(
    keyring: &Keyring,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
    item: &Item,
) -> Result<Option<Zeroizing<Vec<u8>>>, ServiceError> {
    match &item.content {
        Content::Plain(p) => Ok(Some(p.clone())),
        Content::Cipher(c) => {
            let record = tx.get_tenant(tenant).await?.ok_or_else(ServiceError::tenant_not_found)?;
            match keyring.decrypt(tx, record.key_owner(), path, &item.kind, c).await {
                Ok(p) => Ok(Some(p)),
                Err(e) if e.kind == ErrorKind::Integrity => Ok(None),
                Err(e) => Err(e),
            }
        }
        _ => Ok(None),
    }
}
