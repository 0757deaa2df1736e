//! Tenant data key versions: rotate (new writes use the newest; every older
//! version still decrypts) and list.

use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use super::{rfc3339, Ctx, KeyVersionView, KeysView, Tessera};
use crate::domain::WebhookEvent;
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::ports::{DataKeyRecord, KeyProvider, StoreTx};
use tessera_crypto::KeyOwner;

/// How many data keys `rotate_master_key` unwraps and wraps at once.
const WRAP_CONCURRENCY: usize = 16;
/// How many of its batches are under way at once on PostgreSQL.
const PIPELINE_DEPTH: usize = 2;

impl Tessera {
    /// `POST /tenants/{t}/keys/rotate` (admin).
    pub async fn rotate_tenant_key(&self, ctx: &Ctx, tenant: &str) -> Result<KeyVersionView, ServiceError> {
        self.allow_admin(ctx).await?;
        let tenant = TenantId::parse(tenant)?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let record = self.keyring.add_version(tx.as_mut(), tenant.as_str()).await?;
        let resource = format!("tenants/{tenant}/keys/v{}", record.version);
        let data = serde_json::json!({"version": record.version, "createdAt": rfc3339(record.created_at)});
        self.enqueue(tx.as_mut(), tenant.as_str(), WebhookEvent::KeyRotated, data).await?;
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("key.rotate", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(KeyVersionView { version: record.version, created_at: rfc3339(record.created_at), kek_id: record.kek_id })
    }

    /// `GET /tenants/{t}/keys` (admin).
    pub async fn list_tenant_keys(&self, ctx: &Ctx, tenant: &str) -> Result<KeysView, ServiceError> {
        self.allow_admin(ctx).await?;
        let tenant = TenantId::parse(tenant)?;
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let keys = tx.list_data_keys(tenant.as_str()).await?;
        tx.commit().await?;
        Ok(KeysView {
            tenant_id: tenant.to_string(),
            latest_version: keys.last().map_or(0, |k| k.version),
            versions: keys
                .into_iter()
                .map(|k| KeyVersionView { version: k.version, created_at: rfc3339(k.created_at), kek_id: k.kek_id })
                .collect(),
        })
    }
}

/// What a master-key rotation did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterRotation {
    /// Data keys rewrapped by this run.
    pub rewrapped: u64,
    /// Data keys already under the new key (from an interrupted earlier run).
    pub already: u64,
    /// The new key-encryption key's id.
    pub kek_id: String,
}

impl Tessera {
    /// Rewraps every tenant data key under `new` (the values are untouched),
    /// in batches, resumably. The previous wrap of each key is kept beside the
    /// new one, so servers still running with the old master key keep reading
    /// throughout; once they all run with the new key, `prune_key_wraps`
    /// deletes the old wraps. Finally the store's key check moves to the new
    /// key, so a server started with the old key from then on is refused.
    pub async fn rotate_master_key(
        &self,
        ctx: &Ctx,
        new: Arc<dyn KeyProvider>,
        batch: i64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<MasterRotation, ServiceError> {
        self.allow_admin(ctx).await?;
        let new_id = new.kek_id();
        let mut report = MasterRotation { kek_id: new_id.clone(), ..MasterRotation::default() };
        let (from, to): (&dyn KeyProvider, &dyn KeyProvider) = (self.keyring.provider().as_ref(), new.as_ref());
        let from_provider = from;
        let new_id_ref = new_id.as_str();
        // PostgreSQL writes on several connections at once, so while one batch
        // is written the next is read and rewrapped; SQLite has one writer.
        let depth = if self.store.backend_name() == "postgres" { PIPELINE_DEPTH } else { 1 };
        // Passes until one finds nothing left: data keys made meanwhile are caught too.
        let mut first_pass = true;
        loop {
            let mut moved_this_pass = 0;
            // Each batch is read and written in one transaction of its own.
            let pages = stream::try_unfold(None::<(String, u32)>, |after| async move {
                let mut tx = self.store.begin_write().await?;
                let page = tx.list_all_data_keys(after.as_ref().map(|(t, v)| (t.as_str(), *v)), batch).await?;
                let Some(last) = page.last() else { return Ok(None) };
                let after = Some((last.tenant_id.clone(), last.version));
                Ok::<_, ServiceError>(Some(((tx, page), after)))
            });
            let mut batches = std::pin::pin!(pages
                .map_ok(|(tx, page)| Self::rewrap_batch(tx, page, from, to, new_id_ref))
                .try_buffer_unordered(depth));
            while let Some((moved, already)) = batches.try_next().await? {
                moved_this_pass += moved;
                if first_pass {
                    report.already += already;
                }
                progress(report.rewrapped + moved_this_pass + report.already);
            }
            report.rewrapped += moved_this_pass;
            if moved_this_pass == 0 {
                break;
            }
            first_pass = false;
        }
        let mut tx = self.store.begin_write().await?;
        tx.replace_kek_check(&new_id, &new.check_value().await?).await?;
        // The audit key moves to the new master key with the data keys.
        if let Some((wrapped, from)) = tx.get_audit_key().await? {
            let from_text = from.to_string();
            let owner = super::audit_key_owner(&from_text);
            let key = from_provider.unwrap(owner, 1, &tessera_crypto::WrappedDataKey(wrapped)).await?;
            tx.replace_audit_key(&new.wrap(owner, 1, &key).await?.0).await?;
        }
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("key.rotate_master", None, format!("keyring/{new_id}"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// One batch of [`Tessera::rotate_master_key`], in the transaction it was
    /// read in: rewraps the keys not yet under `new_id` and commits. Returns
    /// (rewrapped, already under the new key).
    async fn rewrap_batch(
        mut tx: Box<dyn StoreTx>,
        page: Vec<DataKeyRecord>,
        from: &dyn KeyProvider,
        to: &dyn KeyProvider,
        new_id: &str,
    ) -> Result<(u64, u64), ServiceError> {
        let (done, todo): (Vec<_>, Vec<_>) = page.into_iter().partition(|record| record.kek_id == new_id);
        // Unwrap and wrap a few keys at a time: with a remote provider (Vault
        // Transit) each is a round trip; the local one never waits.
        let rewrapped: Vec<(DataKeyRecord, String)> = stream::iter(todo)
            .map(|record| async move {
                let wrapped = tessera_crypto::WrappedDataKey(record.wrapped.clone());
                let owner = KeyOwner { tenant: &record.tenant_id, incarnation: &record.incarnation };
                let dek = from.unwrap(owner, record.version, &wrapped).await?;
                let rewrapped = to.wrap(owner, record.version, &dek).await?;
                Ok::<_, ServiceError>((record, rewrapped.0))
            })
            .buffered(WRAP_CONCURRENCY)
            .try_collect()
            .await?;
        tx.rewrap_data_keys(&rewrapped, new_id).await?;
        tx.commit().await?;
        Ok((rewrapped.len() as u64, done.len() as u64))
    }

    /// Deletes the wraps under retired master keys (after every server runs
    /// with the new key). Returns how many were deleted.
    pub async fn prune_key_wraps(&self, ctx: &Ctx) -> Result<u64, ServiceError> {
        self.allow_admin(ctx).await?;
        let mut tx = self.store.begin_write().await?;
        let n = tx.delete_extra_wraps().await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("key.prune_wraps", None, format!("keyring/wraps?deleted={n}"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// What a rewrap did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewrapReport {
    /// Tenants looked at.
    pub tenants: u64,
    /// Secrets looked at.
    pub secrets: u64,
    /// Versions re-encrypted under their tenant's newest data key (and in
    /// the current ciphertext format).
    pub rewrapped: u64,
    /// Versions already under the newest key in the current format (or destroyed).
    pub current: u64,
}

/// Whether a stored ciphertext needs no rewrap: under the tenant's newest
/// data key (or a newer one written meanwhile), in the current format.
/// Anything unreadable is not current: the rewrap then reports why.
fn is_current(ciphertext: &str, latest: u32) -> bool {
    tessera_crypto::ciphertext_key_version(ciphertext).is_ok_and(|kv| kv >= latest)
        && tessera_crypto::ciphertext_format(ciphertext) == Ok(tessera_crypto::ValueFormat::V2)
}

impl Tessera {
    /// Re-encrypts every kept secret version of every tenant (or one) under
    /// the tenant's newest data key and in the current ciphertext format
    /// (values of format 1 are rewritten even under the newest key), one
    /// transaction per secret. Resumable and idempotent: only ciphertexts
    /// under an older key or in an older format are touched.
    pub async fn rewrap(
        &self,
        ctx: &Ctx,
        tenant: Option<&str>,
        progress: &(dyn Fn(&RewrapReport) + Sync),
    ) -> Result<RewrapReport, ServiceError> {
        self.allow_admin(ctx).await?;
        let mut tx = self.store.begin_read().await?;
        let tenants: Vec<String> = match tenant {
            Some(t) => {
                let id = TenantId::parse(t)?;
                Self::require_tenant(tx.as_mut(), &id).await?;
                vec![id.to_string()]
            }
            None => {
                let mut all: Vec<String> = tx.list_tenants().await?.into_iter().map(|t| t.id).collect();
                all.push(crate::ids::PLATFORM_TENANT.to_owned());
                all
            }
        };
        tx.commit().await?;
        let mut report = RewrapReport::default();
        for t in &tenants {
            report.tenants += 1;
            let mut tx = self.store.begin_read().await?;
            let paths = self.secrets.list_paths(tx.as_mut(), t, "").await?;
            let latest = tx.latest_data_key_version(t).await?.unwrap_or(0);
            let incarnation = self.incarnation(tx.as_mut(), t).await?;
            tx.commit().await?;
            let owner = KeyOwner { tenant: t, incarnation: &incarnation };
            for path in paths {
                report.secrets += 1;
                let mut tx = self.store.begin_write().await?;
                let mut changed = 0;
                for v in self.secrets.versions(tx.as_mut(), t, &path).await? {
                    let Some(full) = self.secrets.version(tx.as_mut(), t, &path, v.version).await? else { continue };
                    let Some(ct) = full.ciphertext.as_deref() else {
                        report.current += 1;
                        continue;
                    };
                    if is_current(ct, latest) {
                        report.current += 1;
                        continue;
                    }
                    let plain = self.keyring.decrypt(tx.as_mut(), owner, &path, &full.kind, ct).await?;
                    let fresh = self.keyring.encrypt(tx.as_mut(), t, &path, &full.kind, &plain).await?;
                    self.secrets.replace_ciphertext(tx.as_mut(), t, &path, v.version, &fresh).await?;
                    changed += 1;
                }
                if changed > 0 {
                    let resource = format!("tenants/{t}/secrets/{path}?rewrapped={changed}");
                    self.audit
                        .append_in_tx(tx.as_mut(), vec![ctx.event("key.rewrap", Some(t), resource, "success")])
                        .await?;
                }
                tx.commit().await?;
                report.rewrapped += changed;
                progress(&report);
            }
        }
        Ok(report)
    }
}
