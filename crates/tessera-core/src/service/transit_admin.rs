//! Transit key administration beyond create and rotate, as Vault's
//! `keys/<name>/config`, `DELETE keys/<name>` and `export/...`: a key's
//! configuration (minimum decryption and encryption versions, whether it may
//! be deleted, exported, backed up in plaintext), its deletion, and the
//! export of its material.
//!
//! Each is a change or an access of the tenant's own key ring (`_transit/
//! <name>`, encrypted under the tenant's data key): configuring and deleting
//! are audited writes; an export hands out key material, so it needs a key
//! that may change the tenant, is refused unless the key was made
//! exportable, and is audited whether it is given or refused. Exported
//! material is built in zeroizing buffers and never logged.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::transit::{RingChange, TransitExport, TransitExportKind, TransitKeyConfig, TransitKeyView};
use super::{Ctx, Tessera};
use crate::error::ServiceError;
use crate::ids::{SecretPath, TenantId};
use crate::ErrorCode;

impl Tessera {
    /// Changes a Transit key's configuration as Vault's `keys/<name>/config`
    /// does (nothing stored when nothing changes); answers the key as it is
    /// now, with Vault's warning if one applies. Audited as `transit.key_config`.
    pub async fn configure_transit_key(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
        config: &TransitKeyConfig,
    ) -> Result<(TransitKeyView, Option<&'static str>), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let (ring, warning) = self.change_ring(ctx, &tenant, name, RingChange::Configure(config)).await?;
        Ok((ring.view(name), warning))
    }

    /// Deletes a Transit key with every version of its material, if its
    /// configuration allows deletion; what it encrypted can no longer be
    /// decrypted. Audited as `transit.key_delete`.
    pub async fn delete_transit_key(&self, ctx: &Ctx, tenant: &str, name: &str) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let path = SecretPath::transit_key(name)?;
        let resource = format!("tenants/{tenant}/transit/keys/{name}");
        self.audit_before_external_write(ctx, "transit.key_delete", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let Some((ring, _)) = self.load_ring(tx.as_mut(), &record, &path).await? else {
            return Err(ServiceError::invalid(
                ErrorCode::TransitKeyNotFound,
                format!("error deleting policy {name}: could not delete key; not found"),
                None,
            ));
        };
        if !ring.deletion_allowed {
            return Err(ServiceError::invalid(
                ErrorCode::DeletionNotAllowed,
                format!("error deleting policy {name}: deletion is not allowed for this key"),
                None,
            ));
        }
        drop(ring);
        self.secrets.remove(tx.as_mut(), tenant.as_str(), path.as_str()).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("transit.key_delete", Some(tenant.as_str()), resource, "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Exports a Transit key's material as Vault's `export/<kind>/<name>
    /// [/<version>]`: every version that still decrypts, or one (`latest`,
    /// a number, `v<number>`). Only an exportable key; audited as
    /// `transit.key_export`, refusals too.
    pub async fn export_transit_key(
        &self,
        ctx: &Ctx,
        tenant: &str,
        name: &str,
        kind: TransitExportKind,
        version: Option<&str>,
    ) -> Result<TransitExport, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let path = SecretPath::transit_key(name)?;
        let mut tx = self.store.read().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let ring = self.load_ring(tx.as_mut(), &record, &path).await;
        tx.commit().await?;
        let ring = match ring? {
            Some((ring, _)) => ring,
            None => return Err(ServiceError::not_found(ErrorCode::TransitKeyNotFound, "no such transit key")),
        };
        let exported = export(&ring, name, kind, version);
        let shown = version.map_or_else(String::new, |v| format!("&version={v}"));
        let resource = format!("tenants/{tenant}/transit/keys/{name}?export={}{shown}", kind.as_str());
        let outcome = if exported.is_ok() { "success" } else { "failure" };
        self.audit.record(ctx.event("transit.key_export", Some(tenant.as_str()), resource, outcome)).await?;
        exported
    }
}

impl TransitExportKind {
    /// Vault's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encryption => "encryption-key",
            Self::Hmac => "hmac-key",
            Self::Signing => "signing-key",
        }
    }
}

/// The material an export shows, checked in Vault's order.
fn export(
    ring: &super::transit::KeyRing,
    name: &str,
    kind: TransitExportKind,
    version: Option<&str>,
) -> Result<TransitExport, ServiceError> {
    let refuse = |code, message: &str| ServiceError::invalid(code, message.to_owned(), None);
    if !ring.exportable {
        return Err(refuse(ErrorCode::NotExportable, "private key material is not exportable"));
    }
    if kind == TransitExportKind::Signing {
        return Err(refuse(ErrorCode::InvalidKeyVersion, "signing not supported for the key"));
    }
    let wanted: Vec<u32> = match version {
        None => ring.versions.range(ring.min_decryption_version..).map(|(v, _)| *v).collect(),
        Some(v) => {
            let number = if v == "latest" {
                i64::from(ring.latest)
            } else {
                v.strip_prefix('v')
                    .unwrap_or(v)
                    .parse::<i64>()
                    .map_err(|_| refuse(ErrorCode::InvalidKeyVersion, "invalid key version"))?
            };
            if number < i64::from(ring.min_decryption_version) {
                return Err(refuse(
                    ErrorCode::KeyVersionDisallowed,
                    "version for export is below minimum decryption version",
                ));
            }
            match u32::try_from(number).ok().filter(|n| ring.versions.contains_key(n)) {
                Some(n) => vec![n],
                None => return Err(refuse(ErrorCode::InvalidKeyVersion, "version does not exist or cannot be found")),
            }
        }
    };
    let mut keys = BTreeMap::new();
    for v in wanted {
        let stored = &ring.versions[&v];
        let text = match kind {
            TransitExportKind::Hmac => stored
                .hmac
                .as_deref()
                .ok_or_else(|| ServiceError::internal("an exportable transit key version has no HMAC key"))?,
            _ => stored.key.as_str(),
        };
        keys.insert(v, Zeroizing::new(text.to_owned()));
    }
    Ok(TransitExport { name: name.to_owned(), keys })
}

#[cfg(test)]
mod tests {
    use super::export;
    use crate::service::transit::{KeyRing, TransitExportKind, TransitKeyConfig};
    use crate::ErrorCode;

    fn ring_of(versions: u32) -> KeyRing {
        let mut ring = KeyRing::new();
        for _ in 1..versions {
            ring.add_version();
        }
        ring
    }

    #[test]
    fn nothing_is_exported_until_the_key_is_made_exportable_and_that_cannot_be_undone() {
        let mut ring = ring_of(2);
        let refused = export(&ring, "k", TransitExportKind::Encryption, None).err().expect("refused");
        assert_eq!(
            (refused.code, refused.message.as_str()),
            (ErrorCode::NotExportable, "private key material is not exportable")
        );
        let on = TransitKeyConfig { exportable: Some(true), ..TransitKeyConfig::default() };
        assert_eq!(ring.configure(&on).expect("configured"), (true, None));
        let off = TransitKeyConfig { exportable: Some(false), ..TransitKeyConfig::default() };
        assert_eq!(ring.configure(&off).expect("configured"), (false, None), "exportable stays set");
        let all = export(&ring, "k", TransitExportKind::Encryption, None).expect("exported");
        assert_eq!(all.keys.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        let hmac = export(&ring, "k", TransitExportKind::Hmac, Some("latest")).expect("exported");
        assert_ne!(*hmac.keys[&2], *all.keys[&2], "the HMAC key is a key of its own");
    }

    #[test]
    fn versions_below_min_decryption_are_neither_listed_nor_exported() {
        let mut ring = ring_of(3);
        let config =
            TransitKeyConfig { exportable: Some(true), min_decryption_version: Some(2), ..TransitKeyConfig::default() };
        ring.configure(&config).expect("configured");
        assert_eq!(ring.view("k").keys.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        let all = export(&ring, "k", TransitExportKind::Encryption, None).expect("exported");
        assert_eq!(all.keys.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        let below = export(&ring, "k", TransitExportKind::Encryption, Some("1")).err().expect("refused");
        assert_eq!(below.message, "version for export is below minimum decryption version");
        let missing = export(&ring, "k", TransitExportKind::Encryption, Some("v9")).err().expect("refused");
        assert_eq!(missing.message, "version does not exist or cannot be found");
        let bad = export(&ring, "k", TransitExportKind::Encryption, Some("x")).err().expect("refused");
        assert_eq!(bad.message, "invalid key version");
    }

    #[test]
    fn configuration_is_checked_as_vault_checks_it() {
        let mut ring = ring_of(3);
        let set = |d: Option<i64>, e: Option<i64>| TransitKeyConfig {
            min_decryption_version: d,
            min_encryption_version: e,
            ..TransitKeyConfig::default()
        };
        let beyond = ring.configure(&set(Some(5), None)).expect_err("refused");
        assert_eq!(beyond.message, "cannot set min decryption version of 5, latest key version is 3");
        assert!(ring.configure(&set(Some(0), None)).expect("configured").1.is_some(), "0 means 1, with a warning");
        ring.configure(&set(Some(2), Some(3))).expect("configured");
        let e = ring.key_to_encrypt(Some(2)).err().expect("refused");
        assert_eq!(e.message, "requested version for encryption is less than the minimum encryption key version");
        let e = ring.key_to_encrypt(Some(4)).err().expect("refused");
        assert_eq!(e.message, "requested version for encryption is higher than the latest key version");
        assert_eq!(ring.key_to_encrypt(None).expect("the newest").1, 3);
        assert!(ring.configure(&set(Some(-1), None)).is_err());
    }
}
