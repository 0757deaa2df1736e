//! The secret store port: where versioned ciphertext lives
//! (`CREDENTIAL_BACKEND`), and its `database` implementation.
//!
//! Operations are coarse (append a version, mark versions deleted, ...) so
//! each maps to one atomic step of any backend: one SQL transaction, one
//! atomic file replace, one KV v2 call. The `database` backend works inside
//! the caller's metadata transaction, so a secret change and its audit event
//! commit together. A backend only ever sees ciphertext; the read-only
//! `environment` backend is the one exception, by nature (see
//! [`SecretStore::holds_plaintext`]).

use crate::ErrorCode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::ServiceError;
use crate::ports::{SecretRecord, SecretVersionRecord, StoreTx};

/// A version to append.
pub struct NewVersion {
    /// `value` or `data`.
    pub kind: String,
    /// `tsr:v..` ciphertext.
    pub ciphertext: String,
    /// Principal id.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it is to count as deleted (KV v2's `delete_version_after`);
    /// none: until someone deletes it. Only the `database` backend keeps a
    /// time set ahead like this.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Where secret versions are kept.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// `database`, `file`, `environment` or `vault`.
    fn name(&self) -> &'static str;

    /// True when changes commit with the caller's metadata transaction.
    fn is_transactional(&self) -> bool {
        false
    }

    /// Readiness (`/readyz`): whether the backend can serve requests now,
    /// with a message naming the problem when not. Backends with nothing of
    /// their own to reach (the database, a file, the environment) are ready.
    async fn ready(&self) -> Result<(), ServiceError> {
        Ok(())
    }

    /// True for the read-only `environment` backend, whose values are the
    /// operator's plaintext JSON rather than Tessera ciphertext.
    fn holds_plaintext(&self) -> bool {
        false
    }

    /// Asks the store to keep its changes in memory until [`SecretStore::flush`]
    /// makes them durable all at once, so a bulk copy writes once per batch
    /// rather than once per version. Only for a process that owns the store
    /// alone (`tessera migrate`). Returns false, holding nothing, for stores
    /// whose changes are each durable on their own.
    async fn hold_changes(&self) -> bool {
        false
    }

    /// Makes the held changes durable and stops holding. On failure the held
    /// changes are dropped: the store is as it was at [`SecretStore::hold_changes`].
    async fn flush(&self) -> Result<(), ServiceError> {
        Ok(())
    }

    /// The head of a secret.
    async fn head(&self, tx: &mut dyn StoreTx, tenant: &str, path: &str) -> Result<Option<SecretRecord>, ServiceError>;

    /// One version.
    async fn version(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> Result<Option<SecretVersionRecord>, ServiceError>;

    /// A secret's current version number with that version (none if it is
    /// missing). Backends that can fetch both at once override this.
    async fn latest(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<(u32, Option<SecretVersionRecord>)>, ServiceError> {
        let Some(head) = self.head(tx, tenant, path).await? else { return Ok(None) };
        let current = self.version(tx, tenant, path, head.current_version).await?;
        Ok(Some((head.current_version, current)))
    }

    /// Every kept version, oldest first.
    async fn versions(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Vec<SecretVersionRecord>, ServiceError>;

    /// Appends a version (check-and-set against the current version when
    /// `cas` is given; 0 means "only if new"), keeps at most `max_versions`,
    /// and returns the new version number.
    async fn append(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        new: NewVersion,
        cas: Option<u32>,
        max_versions: u32,
    ) -> Result<u32, ServiceError>;

    /// Sets (or clears, with `None`) the soft-delete time of versions.
    async fn set_deleted(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ServiceError>;

    /// Erases the ciphertext of versions for good.
    async fn destroy(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
    ) -> Result<(), ServiceError>;

    /// Paths of a tenant starting with `prefix`, sorted.
    async fn list_paths(&self, tx: &mut dyn StoreTx, tenant: &str, prefix: &str) -> Result<Vec<String>, ServiceError>;

    /// Removes a secret with every version.
    async fn remove(&self, tx: &mut dyn StoreTx, tenant: &str, path: &str) -> Result<(), ServiceError>;

    /// Removes every secret whose path starts with `prefix`, in every tenant.
    async fn remove_prefix(&self, tx: &mut dyn StoreTx, prefix: &str) -> Result<(), ServiceError>;

    /// Replaces the ciphertext of one version in place (rewrap to a newer
    /// data key; the plaintext is unchanged). Backends whose versions are
    /// immutable refuse.
    async fn replace_ciphertext(
        &self,
        _tx: &mut dyn StoreTx,
        _tenant: &str,
        _path: &str,
        _version: u32,
        _ciphertext: &str,
    ) -> Result<(), ServiceError> {
        Err(ServiceError::conflict(
            ErrorCode::RewrapUnsupported,
            format!("the {} backend keeps versions immutable; values cannot be rewrapped in place", self.name()),
        ))
    }

    /// Removes every secret of a tenant (after the tenant and its data keys
    /// are gone, so what is left is unreadable ciphertext).
    async fn remove_tenant(&self, tenant: &str) -> Result<(), ServiceError>;
}

/// The refusal every write to a read-only backend gets.
pub fn read_only(backend: &str) -> ServiceError {
    ServiceError::conflict(
        ErrorCode::BackendReadOnly,
        format!(
            "the {backend} credential backend is read-only; switch CREDENTIAL_BACKEND to database, file or vault to store secrets"
        ),
    )
}

/// The check-and-set rule every record-keeping backend applies.
pub fn check_cas(cas: Option<u32>, current: u32) -> Result<(), ServiceError> {
    match cas {
        Some(expected) if expected != current => Err(ServiceError::conflict(
            ErrorCode::CasMismatch,
            format!("check-and-set expected version {expected} but the current version is {current}"),
        )),
        _ => Ok(()),
    }
}

/// The `database` backend: rows in the metadata store, in the caller's transaction.
pub struct DatabaseSecrets;

#[async_trait]
impl SecretStore for DatabaseSecrets {
    fn name(&self) -> &'static str {
        "database"
    }

    fn is_transactional(&self) -> bool {
        true
    }

    async fn head(&self, tx: &mut dyn StoreTx, tenant: &str, path: &str) -> Result<Option<SecretRecord>, ServiceError> {
        Ok(tx.get_secret(tenant, path).await?)
    }

    async fn version(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> Result<Option<SecretVersionRecord>, ServiceError> {
        Ok(tx.get_secret_version(tenant, path, version).await?)
    }

    async fn latest(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<(u32, Option<SecretVersionRecord>)>, ServiceError> {
        // One statement instead of head then version.
        Ok(tx.get_secret_latest(tenant, path).await?.map(|(head, current)| (head.current_version, current)))
    }

    async fn versions(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Vec<SecretVersionRecord>, ServiceError> {
        Ok(tx.list_secret_versions(tenant, path).await?)
    }

    async fn append(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        new: NewVersion,
        cas: Option<u32>,
        max_versions: u32,
    ) -> Result<u32, ServiceError> {
        tx.lock_secret_path(tenant, path).await?;
        let version = if cas.is_none() {
            // No check-and-set: read and move the head in one statement.
            tx.next_secret_version(tenant, path, max_versions, new.created_at).await?
        } else {
            let head = tx.get_secret(tenant, path).await?;
            let current = head.as_ref().map_or(0, |h| h.current_version);
            check_cas(cas, current)?;
            tx.upsert_secret(&SecretRecord {
                tenant_id: tenant.to_owned(),
                path: path.to_owned(),
                current_version: current + 1,
                max_versions,
                created_at: head.as_ref().map_or(new.created_at, |h| h.created_at),
                updated_at: new.created_at,
            })
            .await?;
            current + 1
        };
        let record = SecretVersionRecord {
            version,
            kind: new.kind,
            ciphertext: Some(new.ciphertext),
            created_at: new.created_at,
            created_by: new.created_by,
            deleted_at: new.deleted_at,
        };
        tx.insert_secret_version(tenant, path, &record).await?;
        if version > max_versions {
            tx.prune_versions(tenant, path, version - max_versions + 1).await?;
        }
        Ok(version)
    }

    async fn set_deleted(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ServiceError> {
        for v in versions {
            tx.set_version_deleted(tenant, path, *v, at).await?;
        }
        Ok(())
    }

    async fn destroy(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
    ) -> Result<(), ServiceError> {
        for v in versions {
            tx.destroy_version(tenant, path, *v).await?;
        }
        Ok(())
    }

    async fn list_paths(&self, tx: &mut dyn StoreTx, tenant: &str, prefix: &str) -> Result<Vec<String>, ServiceError> {
        Ok(tx.list_secret_paths(tenant, prefix).await?)
    }

    async fn remove(&self, tx: &mut dyn StoreTx, tenant: &str, path: &str) -> Result<(), ServiceError> {
        Ok(tx.delete_secret(tenant, path).await?)
    }

    async fn remove_prefix(&self, tx: &mut dyn StoreTx, prefix: &str) -> Result<(), ServiceError> {
        tx.delete_secrets_with_prefix(prefix).await?;
        Ok(())
    }

    async fn replace_ciphertext(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
        ciphertext: &str,
    ) -> Result<(), ServiceError> {
        Ok(tx.set_version_ciphertext(tenant, path, version, ciphertext).await?)
    }

    async fn remove_tenant(&self, _tenant: &str) -> Result<(), ServiceError> {
        // The tenant row's delete cascades to its secrets in the same transaction.
        Ok(())
    }
}
