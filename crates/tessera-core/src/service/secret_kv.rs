//! The tenant-secret use cases a Vault KV v2 client needs beyond the native
//! API's: a read that answers a deleted or destroyed version with its
//! metadata (KV v2 shows it, without data), a JSON merge patch of a secret's
//! fields (`bao kv patch`), and removing a secret with every version
//! (`DELETE metadata/<path>`). Same store, keys, versions and audit as
//! `secrets.rs`; only the shape of the answers differs.

use crate::ErrorCode;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::secrets::{secret_missing, version_missing, VersionWrite};
use super::{rfc3339, Ctx, SecretWritten, Tessera};
use crate::access::Access;
use crate::error::ServiceError;
use crate::ids::{SecretPath, TenantId};

/// A secret's custom metadata (KV v2's `custom_metadata`): key to value.
pub type CustomMetadata = BTreeMap<String, String>;

/// One version as a KV v2 read shows it: its metadata always, its plaintext
/// only while it is readable (neither deleted nor destroyed).
pub struct SecretVersionRead {
    /// The version number.
    pub version: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when soft-deleted.
    pub deleted_at: Option<String>,
    /// Erased for good.
    pub destroyed: bool,
    /// `value` (one JSON value) or `data` (a JSON object of fields).
    pub kind: String,
    /// The stored JSON text, in a buffer that zeroizes; none when deleted or destroyed.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The secret's custom metadata (database backend), if set.
    pub custom_metadata: Option<CustomMetadata>,
}

/// Most pairs of custom metadata a secret may have, and the longest key and
/// value in bytes (Vault's limits, so what Vault accepts Tessera accepts).
const MAX_CUSTOM_PAIRS: usize = 64;
const MAX_CUSTOM_KEY: usize = 128;
const MAX_CUSTOM_VALUE: usize = 512;

impl Tessera {
    /// Reads one version (the newest when `version` is none) with its
    /// metadata; a deleted or destroyed version comes back without plaintext
    /// rather than as an error. Audited as `secret.read` (outcome `failure`
    /// when no plaintext was revealed).
    pub async fn read_secret_version(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        version: Option<u32>,
    ) -> Result<SecretVersionRead, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Read).await?;
        let resource = format!("tenants/{tenant}/secrets/{path}");
        let mut tx = self.store.read().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let read = async {
            let (t, p) = (tenant.as_str(), path.as_str());
            let (wanted, found) = match version {
                None => self.secrets.latest(tx.as_mut(), t, p).await?.ok_or_else(|| secret_missing(p))?,
                Some(wanted) => {
                    self.secrets.head(tx.as_mut(), t, p).await?.ok_or_else(|| secret_missing(p))?;
                    (wanted, self.secrets.version(tx.as_mut(), t, p, wanted).await?)
                }
            };
            let v = found.ok_or_else(|| version_missing(p, wanted))?;
            let readable = v.deleted_at.is_none() && v.ciphertext.is_some();
            let plaintext = if readable {
                Some(self.reveal(Some(tx.as_mut()), record.key_owner(), p, &v, wanted).await?)
            } else {
                None
            };
            let custom_metadata = self.custom_metadata_in(tx.as_mut(), t, p).await?;
            Ok::<_, ServiceError>(SecretVersionRead {
                custom_metadata,
                version: v.version,
                created_at: rfc3339(v.created_at),
                deleted_at: v.deleted_at.map(rfc3339),
                destroyed: v.ciphertext.is_none(),
                kind: v.kind,
                plaintext,
            })
        }
        .await;
        tx.commit().await?;
        let outcome = if read.as_ref().is_ok_and(|r| r.plaintext.is_some()) { "success" } else { "failure" };
        self.audit.record(ctx.event("secret.read", Some(tenant.as_str()), resource, outcome)).await?;
        read
    }

    /// Applies a JSON merge patch (RFC 7396) to the fields of the newest
    /// version and writes the result as a new version: a `null` removes a
    /// field, an object merges into an object, anything else replaces. The
    /// newest version must be readable and hold fields (`data`). With `cas`,
    /// the newest version must be that one; without, the write still checks
    /// the version it patched is the newest, so two concurrent patches never
    /// lose one's change (the later one fails instead).
    pub async fn patch_secret(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        patch: Map<String, Value>,
        cas: Option<u32>,
    ) -> Result<SecretWritten, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        let resource = format!("tenants/{tenant}/secrets/{path}");
        self.audit_before_external_write(ctx, "secret.write", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let current = self.read_version(tx.as_mut(), record.key_owner(), path.as_str(), None).await?;
        let newest = current.version.version;
        if let Some(expected) = cas {
            crate::secret_store::check_cas(Some(expected), newest)?;
        }
        if current.version.kind != "data" {
            return Err(ServiceError::invalid(
                ErrorCode::NotAFieldMap,
                format!("{path} holds one value, not fields; write it whole instead of patching it"),
                Some("data"),
            ));
        }
        let mut fields: Map<String, Value> = serde_json::from_slice(&current.plaintext)
            .map_err(|_| ServiceError::internal("a stored field map is not a JSON object"))?;
        merge_patch(&mut fields, patch);
        let plaintext = Zeroizing::new(serde_json::to_vec(&fields).expect("JSON values serialise"));
        let (version, at) = self
            .write_version(
                tx.as_mut(),
                ctx,
                VersionWrite {
                    tenant: tenant.as_str(),
                    path: path.as_str(),
                    kind: "data",
                    plaintext: &plaintext,
                    cas: Some(newest),
                },
            )
            .await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("secret.write", Some(tenant.as_str()), format!("{resource}?patch"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(SecretWritten { path: path.to_string(), version, created_at: rfc3339(at) })
    }

    /// A secret's custom metadata (KV v2's `custom_metadata`), if set.
    pub async fn secret_custom_metadata(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<CustomMetadata>, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Read).await?;
        if !self.secrets.is_transactional() {
            return Ok(None); // only the database backend keeps it
        }
        let mut tx = self.store.read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let custom = self.custom_metadata_in(tx.as_mut(), tenant.as_str(), path.as_str()).await;
        tx.commit().await?;
        custom
    }

    /// Replaces a secret's custom metadata: string keys (1-128 bytes) and
    /// values (up to 512 bytes), at most 64 pairs; an empty map clears it.
    /// Database credential backend only (the others keep no such field). A
    /// path with no secret yet gets one with no version, as Vault keeps
    /// metadata before data. Audited as `secret.metadata`.
    pub async fn set_secret_custom_metadata(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        custom: CustomMetadata,
    ) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        if !self.secrets.is_transactional() {
            return Err(ServiceError::invalid(
                ErrorCode::CustomMetadataUnsupported,
                "custom metadata needs the database credential backend",
                Some("custom_metadata"),
            ));
        }
        let fits = custom.len() <= MAX_CUSTOM_PAIRS
            && custom.iter().all(|(k, v)| !k.is_empty() && k.len() <= MAX_CUSTOM_KEY && v.len() <= MAX_CUSTOM_VALUE);
        if !fits {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidCustomMetadata,
                "custom_metadata may hold at most 64 pairs, keys of 1-128 bytes and values of at most 512 bytes",
                Some("custom_metadata"),
            ));
        }
        let json = (!custom.is_empty()).then(|| serde_json::to_string(&custom).expect("a map of strings serialises"));
        let resource = format!("tenants/{tenant}/secrets/{path}?metadata");
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let (t, p) = (tenant.as_str(), path.as_str());
        tx.lock_secret_path(t, p).await?;
        if !tx.set_secret_custom_metadata(t, p, json.as_deref()).await? {
            // As in Vault, metadata may come before the first version (a
            // writer that marks what it owns first): a head with no version.
            let now = chrono::Utc::now();
            let head = crate::ports::SecretRecord {
                tenant_id: t.to_owned(),
                path: p.to_owned(),
                current_version: 0,
                max_versions: self.opts.max_versions,
                created_at: now,
                updated_at: now,
            };
            tx.upsert_secret(&head).await?;
            tx.set_secret_custom_metadata(t, p, json.as_deref()).await?;
        }
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("secret.metadata", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn custom_metadata_in(
        &self,
        tx: &mut dyn crate::ports::StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<CustomMetadata>, ServiceError> {
        if !self.secrets.is_transactional() {
            return Ok(None);
        }
        match tx.get_secret_custom_metadata(tenant, path).await? {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|_| ServiceError::internal("stored custom metadata does not parse")),
            None => Ok(None),
        }
    }

    /// Removes a secret with every version and its metadata (KV v2's
    /// `DELETE metadata/<path>`); nothing of it can be undeleted. Audited as
    /// `secret.remove`.
    pub async fn remove_secret(&self, ctx: &Ctx, tenant: &str, path: &str) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        let resource = format!("tenants/{tenant}/secrets/{path}");
        self.audit_before_external_write(ctx, "secret.remove", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        self.secrets
            .head(tx.as_mut(), tenant.as_str(), path.as_str())
            .await?
            .ok_or_else(|| secret_missing(path.as_str()))?;
        self.secrets.remove(tx.as_mut(), tenant.as_str(), path.as_str()).await?;
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("secret.remove", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// RFC 7396 on a map of fields.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) => match target.get_mut(&key) {
                Some(Value::Object(existing)) => merge_patch(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge_patch(&mut fresh, inner);
                    target.insert(key, Value::Object(fresh));
                }
            },
            other => {
                target.insert(key, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::{json, Value};

    #[test]
    fn a_merge_patch_removes_nulls_merges_objects_and_replaces_the_rest() {
        let Value::Object(mut target) = json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1], "d": "keep"}) else {
            unreachable!()
        };
        let Value::Object(patch) = json!({"a": null, "b": {"y": null, "z": 3}, "c": {"n": null}, "e": "new"}) else {
            unreachable!()
        };
        merge_patch(&mut target, patch);
        assert_eq!(Value::Object(target), json!({"b": {"x": 1, "z": 3}, "c": {}, "d": "keep", "e": "new"}));
    }
}
