//! Versioned tenant secrets (seed 002, shaped like Vault KV v2): every write is
//! a new version; reads by version; soft delete, undelete, destroy, rollback;
//! at most `max_versions` kept. Connection secret fields use the same path
//! internally, so there is one encryption path for everything.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::{rfc3339, Ctx, SecretList, SecretMetadataView, SecretVersionView, SecretWritten, Tessera};
use crate::audit::append_in_tx;
use crate::error::ServiceError;
use crate::ids::{SecretPath, TenantId};
use crate::ports::{SecretRecord, SecretVersionRecord, StoreTx};
use crate::secret_json::SecretJson;

/// What a caller stores: one value, or a map of fields.
pub enum SecretPayload {
    /// `{"value": ...}`
    Value(Value),
    /// `{"data": {...}}`
    Data(Map<String, Value>),
}

impl SecretPayload {
    fn kind(&self) -> &'static str {
        match self {
            Self::Value(_) => "value",
            Self::Data(_) => "data",
        }
    }

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        let bytes = match self {
            Self::Value(v) => serde_json::to_vec(v),
            Self::Data(d) => serde_json::to_vec(d),
        };
        Zeroizing::new(bytes.expect("JSON values serialise"))
    }
}

/// A write request.
pub struct SecretWrite {
    /// The new content.
    pub payload: SecretPayload,
    /// Check-and-set: the write succeeds only if the current version is this
    /// (0: only if the secret does not exist yet).
    pub cas: Option<u32>,
}

/// One new version to write inside a transaction.
pub(crate) struct VersionWrite<'a> {
    pub tenant: &'a str,
    pub path: &'a str,
    /// `value` or `data`.
    pub kind: &'a str,
    pub plaintext: &'a [u8],
    /// Check-and-set expectation.
    pub cas: Option<u32>,
}

/// A decrypted version, in a buffer that zeroizes.
pub(crate) struct Revealed {
    pub version: SecretVersionRecord,
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl Tessera {
    /// Writes a new version inside `tx`. Returns its number and time.
    pub(crate) async fn write_version(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        w: VersionWrite<'_>,
    ) -> Result<(u32, DateTime<Utc>), ServiceError> {
        let VersionWrite { tenant, path, kind, plaintext, cas } = w;
        let now = Utc::now();
        let head = tx.get_secret(tenant, path).await?;
        let current = head.as_ref().map_or(0, |h| h.current_version);
        if let Some(expected) = cas {
            if expected != current {
                return Err(ServiceError::conflict(
                    "cas_mismatch",
                    format!("check-and-set expected version {expected} but the current version is {current}"),
                ));
            }
        }
        let version = current + 1;
        let ciphertext = self.keyring.encrypt(tx, tenant, path, kind, plaintext).await?;
        let max_versions = head.as_ref().map_or(self.opts.max_versions, |h| h.max_versions);
        tx.upsert_secret(&SecretRecord {
            tenant_id: tenant.to_owned(),
            path: path.to_owned(),
            current_version: version,
            max_versions,
            created_at: head.as_ref().map_or(now, |h| h.created_at),
            updated_at: now,
        })
        .await?;
        tx.insert_secret_version(
            tenant,
            path,
            &SecretVersionRecord {
                version,
                kind: kind.to_owned(),
                ciphertext: Some(ciphertext),
                created_at: now,
                created_by: ctx.principal.id.clone(),
                deleted_at: None,
            },
        )
        .await?;
        if version > max_versions {
            tx.prune_versions(tenant, path, version - max_versions + 1).await?;
        }
        Ok((version, now))
    }

    /// Reads and decrypts one version (the newest when `version` is none).
    pub(crate) async fn read_version(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: Option<u32>,
    ) -> Result<Revealed, ServiceError> {
        let head = tx
            .get_secret(tenant, path)
            .await?
            .ok_or_else(|| ServiceError::not_found("secret_not_found", format!("no secret at {path}")))?;
        let wanted = version.unwrap_or(head.current_version);
        let v = tx.get_secret_version(tenant, path, wanted).await?.ok_or_else(|| {
            ServiceError::not_found(
                "version_not_found",
                format!("{path} has no version {wanted} (it may have been pruned)"),
            )
        })?;
        if v.deleted_at.is_some() {
            return Err(ServiceError::not_found(
                "version_deleted",
                format!("version {wanted} of {path} is deleted; undelete it to read it"),
            ));
        }
        let Some(ciphertext) = v.ciphertext.as_deref() else {
            return Err(ServiceError::not_found(
                "version_destroyed",
                format!("version {wanted} of {path} was destroyed"),
            ));
        };
        let plaintext = self.keyring.decrypt(tx, tenant, path, &v.kind, ciphertext).await?;
        Ok(Revealed { version: v, plaintext })
    }

    /// `PUT /tenants/{t}/secrets/{path}`.
    pub async fn put_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        write: SecretWrite,
    ) -> Result<SecretWritten, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let path = SecretPath::parse_user(path)?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let plaintext = write.payload.plaintext();
        let (version, at) = self
            .write_version(
                tx.as_mut(),
                ctx,
                VersionWrite {
                    tenant: tenant.as_str(),
                    path: path.as_str(),
                    kind: write.payload.kind(),
                    plaintext: &plaintext,
                    cas: write.cas,
                },
            )
            .await?;
        append_in_tx(
            tx.as_mut(),
            vec![ctx.event("secret.write", Some(tenant.as_str()), secret_resource(&tenant, &path), "success")],
        )
        .await?;
        tx.commit().await?;
        Ok(SecretWritten { path: path.to_string(), version, created_at: rfc3339(at) })
    }

    /// `GET /tenants/{t}/secrets/{path}[?version=N]`: the decrypted value as a
    /// JSON document `{"path","version","createdAt","value"|"data"}`. Audited.
    pub async fn get_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        version: Option<u32>,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        let path = SecretPath::parse_user(path)?;
        let resource = secret_resource(&tenant, &path);
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let read = self.read_version(tx.as_mut(), tenant.as_str(), path.as_str(), version).await;
        tx.commit().await?;
        let outcome = if read.is_ok() { "success" } else { "failure" };
        self.audit.record(ctx.event("secret.read", Some(tenant.as_str()), resource, outcome)).await?;
        let revealed = read?;
        let mut doc = SecretJson::new();
        doc.public("path", &json!(path.as_str()));
        doc.public("version", &json!(revealed.version.version));
        doc.public("createdAt", &json!(rfc3339(revealed.version.created_at)));
        doc.raw(&revealed.version.kind, &revealed.plaintext);
        Ok(doc.finish())
    }

    /// `GET /tenants/{t}/secrets?prefix=`: paths only.
    pub async fn list_secrets(&self, ctx: &Ctx, tenant: &str, prefix: &str) -> Result<SecretList, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        if prefix.starts_with('_') {
            return Err(ServiceError::invalid(
                "invalid_secret_path",
                "prefixes starting with '_' are reserved",
                Some("prefix"),
            ));
        }
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let paths: Vec<String> =
            tx.list_secret_paths(tenant.as_str(), prefix).await?.into_iter().filter(|p| !p.starts_with('_')).collect();
        tx.commit().await?;
        self.audit
            .record(ctx.event(
                "secret.list",
                Some(tenant.as_str()),
                format!("tenants/{tenant}/secrets?prefix={prefix}"),
                "success",
            ))
            .await?;
        Ok(SecretList { tenant_id: tenant.to_string(), paths })
    }

    /// Version metadata of a secret (no values).
    pub async fn secret_metadata(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
    ) -> Result<SecretMetadataView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        let path = SecretPath::parse_user(path)?;
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let head = tx
            .get_secret(tenant.as_str(), path.as_str())
            .await?
            .ok_or_else(|| ServiceError::not_found("secret_not_found", format!("no secret at {path}")))?;
        let versions = tx.list_secret_versions(tenant.as_str(), path.as_str()).await?;
        tx.commit().await?;
        Ok(SecretMetadataView {
            path: path.to_string(),
            current_version: head.current_version,
            max_versions: head.max_versions,
            created_at: rfc3339(head.created_at),
            updated_at: rfc3339(head.updated_at),
            versions: versions
                .into_iter()
                .map(|v| SecretVersionView {
                    version: v.version,
                    created_at: rfc3339(v.created_at),
                    created_by: v.created_by,
                    deleted_at: v.deleted_at.map(rfc3339),
                    destroyed: v.ciphertext.is_none(),
                })
                .collect(),
        })
    }

    /// Soft-deletes versions (the newest when none are named).
    pub async fn delete_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        versions: Option<Vec<u32>>,
    ) -> Result<(), ServiceError> {
        self.change_versions(ctx, tenant, path, versions, VersionChange::Delete).await
    }

    /// Restores soft-deleted versions.
    pub async fn undelete_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        versions: Vec<u32>,
    ) -> Result<(), ServiceError> {
        self.change_versions(ctx, tenant, path, Some(versions), VersionChange::Undelete).await
    }

    /// Erases the ciphertext of versions for good.
    pub async fn destroy_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        versions: Vec<u32>,
    ) -> Result<(), ServiceError> {
        self.change_versions(ctx, tenant, path, Some(versions), VersionChange::Destroy).await
    }

    async fn change_versions(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        versions: Option<Vec<u32>>,
        change: VersionChange,
    ) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let path = SecretPath::parse_user(path)?;
        if versions.as_ref().is_some_and(Vec::is_empty) {
            return Err(ServiceError::invalid(
                "invalid_versions",
                "versions must name at least one version",
                Some("versions"),
            ));
        }
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let head = tx
            .get_secret(tenant.as_str(), path.as_str())
            .await?
            .ok_or_else(|| ServiceError::not_found("secret_not_found", format!("no secret at {path}")))?;
        let versions = versions.unwrap_or_else(|| vec![head.current_version]);
        let now = Utc::now();
        for v in &versions {
            if tx.get_secret_version(tenant.as_str(), path.as_str(), *v).await?.is_none() {
                return Err(ServiceError::not_found("version_not_found", format!("{path} has no version {v}")));
            }
            match change {
                VersionChange::Delete => tx.set_version_deleted(tenant.as_str(), path.as_str(), *v, Some(now)).await?,
                VersionChange::Undelete => tx.set_version_deleted(tenant.as_str(), path.as_str(), *v, None).await?,
                VersionChange::Destroy => tx.destroy_version(tenant.as_str(), path.as_str(), *v).await?,
            }
        }
        let resource = format!("{}?versions={}", secret_resource(&tenant, &path), join(&versions));
        append_in_tx(tx.as_mut(), vec![ctx.event(change.action(), Some(tenant.as_str()), resource, "success")]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes an old version's content as a new version.
    pub async fn rollback_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> Result<SecretWritten, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let path = SecretPath::parse_user(path)?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let old = self.read_version(tx.as_mut(), tenant.as_str(), path.as_str(), Some(version)).await?;
        let (new_version, at) = self
            .write_version(
                tx.as_mut(),
                ctx,
                VersionWrite {
                    tenant: tenant.as_str(),
                    path: path.as_str(),
                    kind: &old.version.kind,
                    plaintext: &old.plaintext,
                    cas: None,
                },
            )
            .await?;
        let resource = format!("{}?from={version}", secret_resource(&tenant, &path));
        append_in_tx(tx.as_mut(), vec![ctx.event("secret.rollback", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(SecretWritten { path: path.to_string(), version: new_version, created_at: rfc3339(at) })
    }
}

#[derive(Clone, Copy)]
enum VersionChange {
    Delete,
    Undelete,
    Destroy,
}

impl VersionChange {
    fn action(self) -> &'static str {
        match self {
            Self::Delete => "secret.delete",
            Self::Undelete => "secret.undelete",
            Self::Destroy => "secret.destroy",
        }
    }
}

fn secret_resource(tenant: &TenantId, path: &SecretPath) -> String {
    format!("tenants/{tenant}/secrets/{path}")
}

fn join(versions: &[u32]) -> String {
    versions.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
