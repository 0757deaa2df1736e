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

use super::secrets::{secret_missing, version_missing, Appended, VersionWrite};
use super::{rfc3339, Ctx, Tessera};
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

/// A version written through KV v2, as its write answer shows it.
pub struct KvWritten {
    /// The path.
    pub path: String,
    /// The new version.
    pub version: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: when it is to count as deleted (`delete_version_after`), if set.
    pub deletion_time: Option<String>,
    /// The secret's custom metadata, if asked for and set.
    pub custom_metadata: Option<CustomMetadata>,
}

impl KvWritten {
    pub(crate) fn new(path: &SecretPath, done: &Appended, custom_metadata: Option<CustomMetadata>) -> Self {
        Self {
            path: path.to_string(),
            version: done.version,
            created_at: rfc3339(done.at),
            deletion_time: done.deletion_at.map(rfc3339),
            custom_metadata,
        }
    }
}

/// Checks custom metadata against Vault's limits and gives its stored JSON
/// text (none for an empty map: cleared).
pub(crate) fn custom_metadata_json(custom: &CustomMetadata) -> Result<Option<String>, ServiceError> {
    let fits = custom.len() <= MAX_CUSTOM_PAIRS
        && custom.iter().all(|(k, v)| !k.is_empty() && k.len() <= MAX_CUSTOM_KEY && v.len() <= MAX_CUSTOM_VALUE);
    if !fits {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidCustomMetadata,
            "custom_metadata may hold at most 64 pairs, keys of 1-128 bytes and values of at most 512 bytes",
            Some("custom_metadata"),
        ));
    }
    Ok((!custom.is_empty()).then(|| serde_json::to_string(custom).expect("a map of strings serialises")))
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
        self.read_kv_version(ctx, tenant, path, version, "").await
    }

    /// [`Tessera::read_secret_version`], audited on the resource with `suffix` (`?subkeys`).
    pub(crate) async fn read_kv_version(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        version: Option<u32>,
        suffix: &str,
    ) -> Result<SecretVersionRead, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Read).await?;
        let resource = format!("tenants/{tenant}/secrets/{path}{suffix}");
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
            let readable = !v.is_deleted_at(chrono::Utc::now()) && v.ciphertext.is_some();
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
    ) -> Result<KvWritten, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        let resource = format!("tenants/{tenant}/secrets/{path}");
        self.audit_before_external_write(ctx, "secret.write", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let record = Self::require_tenant(tx.as_mut(), &tenant).await?;
        let (t, p) = (tenant.as_str(), path.as_str());
        // As Vault: a missing secret first, then a missing check-and-set, then an unreadable version.
        self.secrets.head(tx.as_mut(), t, p).await?.ok_or_else(|| secret_missing(p))?;
        let rules = self.version_rules(tx.as_mut(), t, p).await?;
        rules.require_cas(cas)?;
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
        let done = self
            .write_version_under(
                tx.as_mut(),
                ctx,
                VersionWrite { tenant: t, path: p, kind: "data", plaintext: &plaintext, cas: Some(newest) },
                &rules,
            )
            .await?;
        let custom_metadata = self.custom_metadata_in(tx.as_mut(), t, p).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("secret.write", Some(tenant.as_str()), format!("{resource}?patch"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(KvWritten::new(&path, &done, custom_metadata))
    }

    pub(crate) async fn custom_metadata_in(
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
