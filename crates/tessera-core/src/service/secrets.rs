//! Versioned tenant secrets (seed 002, shaped like Vault KV v2): every write is
//! a new version; reads by version; soft delete, undelete, destroy, rollback;
//! at most `max_versions` kept. Connection secret fields use the same path
//! internally, so there is one encryption path for everything.

use crate::ErrorCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::secret_kv::KvWritten;
use super::secret_settings::VersionRules;
use super::{rfc3339, Ctx, SecretList, SecretMetadataView, SecretVersionView, SecretWritten, Tessera};
use crate::access::Access;
use crate::error::ServiceError;
use crate::ids::{SecretPath, TenantId};
use crate::ports::{SecretVersionRecord, StoreTx};
use crate::secret_json::SecretJson;
use crate::secret_store::NewVersion;
use tessera_crypto::KeyOwner;

/// What a caller stores: one value, or a map of fields.
pub enum SecretPayload {
    /// `{"value": ...}`
    Value(Value),
    /// `{"data": {...}}`
    Data(Map<String, Value>),
}

impl SecretPayload {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Value(_) => "value",
            Self::Data(_) => "data",
        }
    }

    pub(crate) fn plaintext(&self) -> Zeroizing<Vec<u8>> {
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
    /// The rotation policy: a `secret.rotation_due` webhook event once
    /// the secret has not been written for this many days (0 clears it;
    /// none leaves it as it is). Database backend only.
    pub rotate_after_days: Option<u32>,
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

pub(crate) fn version_missing(path: &str, wanted: u32) -> ServiceError {
    ServiceError::not_found(
        ErrorCode::VersionNotFound,
        format!("{path} has no version {wanted} (it may have been pruned)"),
    )
}

/// The ciphertext of a version that may be read: not deleted, not destroyed.
pub(crate) fn readable_ciphertext<'v>(
    v: &'v SecretVersionRecord,
    path: &str,
    wanted: u32,
) -> Result<&'v str, ServiceError> {
    if v.is_deleted_at(Utc::now()) {
        return Err(ServiceError::not_found(
            ErrorCode::VersionDeleted,
            format!("version {wanted} of {path} is deleted; undelete it to read it"),
        ));
    }
    v.ciphertext.as_deref().ok_or_else(|| {
        ServiceError::not_found(ErrorCode::VersionDestroyed, format!("version {wanted} of {path} was destroyed"))
    })
}

pub(crate) fn secret_missing(path: &str) -> ServiceError {
    ServiceError::not_found(ErrorCode::SecretNotFound, format!("no secret at {path}"))
}

/// A version just written.
pub(crate) struct Appended {
    pub version: u32,
    pub at: DateTime<Utc>,
    /// When it is to count as deleted (`delete_version_after`), if set.
    pub deletion_at: Option<DateTime<Utc>>,
}

impl Tessera {
    /// Writes a new version inside `tx`, under the secret's version rules.
    /// Returns its number and time.
    pub(crate) async fn write_version(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        w: VersionWrite<'_>,
    ) -> Result<(u32, DateTime<Utc>), ServiceError> {
        let rules = self.version_rules(tx, w.tenant, w.path).await?;
        let done = self.write_version_under(tx, ctx, w, &rules).await?;
        Ok((done.version, done.at))
    }

    /// Writes a new version inside `tx` under `rules`: a write without
    /// check-and-set is refused where one is required; the version gets its
    /// deletion time; at most the rules' number of versions stay.
    pub(crate) async fn write_version_under(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        w: VersionWrite<'_>,
        rules: &VersionRules,
    ) -> Result<Appended, ServiceError> {
        let VersionWrite { tenant, path, kind, plaintext, cas } = w;
        rules.require_cas(cas)?;
        let now = Utc::now();
        let ciphertext = self.keyring.encrypt(tx, tenant, path, kind, plaintext).await?;
        let deletion_at = rules.deletion_time(now);
        let new = NewVersion {
            kind: kind.to_owned(),
            ciphertext,
            created_by: ctx.principal.id.clone(),
            created_at: now,
            deleted_at: deletion_at,
        };
        let version = self.secrets.append(tx, tenant, path, new, cas, rules.max_versions).await?;
        metrics::counter!("tessera_secret_operations_total", "kind" => "write", "backend" => self.secrets.name())
            .increment(1);
        Ok(Appended { version, at: now, deletion_at })
    }

    /// Reads and decrypts one version (the newest when `version` is none).
    pub(crate) async fn read_version(
        &self,
        tx: &mut dyn StoreTx,
        owner: KeyOwner<'_>,
        path: &str,
        version: Option<u32>,
    ) -> Result<Revealed, ServiceError> {
        let tenant = owner.tenant;
        metrics::counter!("tessera_secret_operations_total", "kind" => "read", "backend" => self.secrets.name())
            .increment(1);
        let no_secret = || secret_missing(path);
        let (wanted, found) = match version {
            // The newest version: head and version in one step where the backend can.
            None => self.secrets.latest(tx, tenant, path).await?.ok_or_else(no_secret)?,
            Some(wanted) => {
                self.secrets.head(tx, tenant, path).await?.ok_or_else(no_secret)?;
                (wanted, self.secrets.version(tx, tenant, path, wanted).await?)
            }
        };
        let v = found.ok_or_else(|| version_missing(path, wanted))?;
        let plaintext = self.reveal(Some(tx), owner, path, &v, wanted).await?;
        Ok(Revealed { version: v, plaintext })
    }

    /// The plaintext of a readable version (not deleted, not destroyed). The
    /// data key comes from the keyring's cache, else through `tx`; with no
    /// `tx` (a cached read) one is opened only if the key is not cached.
    pub(crate) async fn reveal(
        &self,
        tx: Option<&mut dyn StoreTx>,
        owner: KeyOwner<'_>,
        path: &str,
        v: &SecretVersionRecord,
        wanted: u32,
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let ciphertext = readable_ciphertext(v, path, wanted)?;
        if self.secrets.holds_plaintext() {
            return Ok(Zeroizing::new(ciphertext.as_bytes().to_vec()));
        }
        if let Some(done) = self.keyring.decrypt_cached(owner, path, &v.kind, ciphertext) {
            return done;
        }
        match tx {
            Some(tx) => self.keyring.decrypt(tx, owner, path, &v.kind, ciphertext).await,
            None => {
                let mut tx = self.store.read().await?;
                let plaintext = self.keyring.decrypt(tx.as_mut(), owner, path, &v.kind, ciphertext).await?;
                tx.commit().await?;
                Ok(plaintext)
            }
        }
    }

    /// `PUT /tenants/{t}/secrets/{path}`. Where the secret (or its tenant's
    /// KV mount) requires check-and-set, a write without `cas` is refused.
    pub async fn put_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        write: SecretWrite,
    ) -> Result<SecretWritten, ServiceError> {
        let written = self.put_secret_kv(ctx, tenant, path, write, false).await?;
        Ok(SecretWritten { path: written.path, version: written.version, created_at: written.created_at })
    }

    /// [`Tessera::put_secret`], answered as KV v2 answers a write: with the
    /// version's deletion time and (`with_custom`) the secret's custom metadata.
    pub async fn put_secret_kv(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        write: SecretWrite,
        with_custom: bool,
    ) -> Result<KvWritten, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        if write.rotate_after_days.is_some() && !self.secrets.is_transactional() {
            return Err(ServiceError::invalid(
                ErrorCode::RotationUnsupported,
                "rotateAfterDays needs the database credential backend",
                Some("rotateAfterDays"),
            ));
        }
        if write.rotate_after_days.is_some_and(|d| d > 36_500) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidRotation,
                "rotateAfterDays must be 0 (none) to 36500",
                Some("rotateAfterDays"),
            ));
        }
        self.audit_before_external_write(ctx, "secret.write", &tenant, &secret_resource(&tenant, &path)).await?;
        let mut tx = self.store.begin_write().await?;
        let transactional = self.secrets.is_transactional();
        if !transactional {
            Self::require_tenant(tx.as_mut(), &tenant).await?;
        }
        let plaintext = write.payload.plaintext();
        let rules = self.version_rules(tx.as_mut(), tenant.as_str(), path.as_str()).await?;
        let written = self
            .write_version_under(
                tx.as_mut(),
                ctx,
                VersionWrite {
                    tenant: tenant.as_str(),
                    path: path.as_str(),
                    kind: write.payload.kind(),
                    plaintext: &plaintext,
                    cas: write.cas,
                },
                &rules,
            )
            .await;
        // In the database the tenant is checked where it matters, by the
        // foreign key of the secret's row (and by finding its data key): one
        // statement fewer inside the write lock. Only a failed write asks
        // whether the tenant is missing, to say so.
        let done = match written {
            Ok(done) => done,
            Err(e) if transactional => {
                Self::require_tenant(tx.as_mut(), &tenant).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if let Some(days) = write.rotate_after_days {
            tx.set_secret_rotation(tenant.as_str(), path.as_str(), Some(days).filter(|d| *d > 0)).await?;
        }
        let custom_metadata = if with_custom {
            self.custom_metadata_in(tx.as_mut(), tenant.as_str(), path.as_str()).await?
        } else {
            None
        };
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("secret.write", Some(tenant.as_str()), secret_resource(&tenant, &path), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(KvWritten::new(&path, &done, custom_metadata))
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
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Read).await?;
        let resource = secret_resource(&tenant, &path);
        let mut tx = self.store.read().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let read = self.read_version(tx.as_mut(), record.key_owner(), path.as_str(), version).await;
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
        self.audit_denial(ctx, Some(&tenant), ctx.principal.ensure_secret_listing(&tenant, prefix)).await?;
        if prefix.starts_with('_') {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidSecretPath,
                "prefixes starting with '_' are reserved",
                Some("prefix"),
            ));
        }
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let paths: Vec<String> = self
            .secrets
            .list_paths(tx.as_mut(), tenant.as_str(), prefix)
            .await?
            .into_iter()
            .filter(|p| !p.starts_with('_'))
            .collect();
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
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Read).await?;
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let head = self
            .secrets
            .head(tx.as_mut(), tenant.as_str(), path.as_str())
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::SecretNotFound, format!("no secret at {path}")))?;
        let versions = self.secrets.versions(tx.as_mut(), tenant.as_str(), path.as_str()).await?;
        // What the next write keeps: the secret's and its mount's settings may have changed since the last.
        let max_versions = if self.secrets.is_transactional() {
            self.version_rules(tx.as_mut(), tenant.as_str(), path.as_str()).await?.max_versions
        } else {
            head.max_versions
        };
        let rotate_after_days = if self.secrets.is_transactional() {
            tx.get_secret_rotation(tenant.as_str(), path.as_str()).await?
        } else {
            None
        };
        tx.commit().await?;
        Ok(SecretMetadataView {
            path: path.to_string(),
            current_version: head.current_version,
            max_versions,
            created_at: rfc3339(head.created_at),
            updated_at: rfc3339(head.updated_at),
            rotate_after_days,
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
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        if versions.as_ref().is_some_and(Vec::is_empty) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidVersions,
                "versions must name at least one version",
                Some("versions"),
            ));
        }
        self.audit_before_external_write(ctx, change.action(), &tenant, &secret_resource(&tenant, &path)).await?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let head = self
            .secrets
            .head(tx.as_mut(), tenant.as_str(), path.as_str())
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::SecretNotFound, format!("no secret at {path}")))?;
        let versions = versions.unwrap_or_else(|| vec![head.current_version]);
        for v in &versions {
            if self.secrets.version(tx.as_mut(), tenant.as_str(), path.as_str(), *v).await?.is_none() {
                return Err(ServiceError::not_found(ErrorCode::VersionNotFound, format!("{path} has no version {v}")));
            }
        }
        let resource = format!("{}?versions={}", secret_resource(&tenant, &path), join(&versions));
        let (t, p) = (tenant.as_str(), path.as_str());
        match change {
            VersionChange::Delete => self.secrets.set_deleted(tx.as_mut(), t, p, &versions, Some(Utc::now())).await?,
            VersionChange::Undelete => {
                // As in Vault, an undeleted version gets a new deletion time where `delete_version_after` is set.
                let at = self.version_rules(tx.as_mut(), t, p).await?.deletion_time(Utc::now());
                self.secrets.set_deleted(tx.as_mut(), t, p, &versions, at).await?;
            }
            VersionChange::Destroy => self.secrets.destroy(tx.as_mut(), t, p, &versions).await?,
        }
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event(change.action(), Some(tenant.as_str()), resource, "success")])
            .await?;
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
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        self.audit_before_external_write(ctx, "secret.rollback", &tenant, &secret_resource(&tenant, &path)).await?;
        let mut tx = self.store.begin_write().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let old = self.read_version(tx.as_mut(), record.key_owner(), path.as_str(), Some(version)).await?;
        // A rollback replaces the newest version it saw, as `kv rollback` does with check-and-set,
        // so a secret that requires check-and-set can be rolled back too.
        let current =
            self.secrets.head(tx.as_mut(), tenant.as_str(), path.as_str()).await?.map_or(0, |h| h.current_version);
        let (new_version, at) = self
            .write_version(
                tx.as_mut(),
                ctx,
                VersionWrite {
                    tenant: tenant.as_str(),
                    path: path.as_str(),
                    kind: &old.version.kind,
                    plaintext: &old.plaintext,
                    cas: Some(current),
                },
            )
            .await?;
        let resource = format!("{}?from={version}", secret_resource(&tenant, &path));
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("secret.rollback", Some(tenant.as_str()), resource, "success")])
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
