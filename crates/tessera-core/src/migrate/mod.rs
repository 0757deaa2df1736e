//! Moving secrets between credential backends (`tessera migrate`).
//!
//! Every tenant's secrets (the tenants of the metadata store plus the reserved
//! `_platform`, every path including the internal `_config/...` ones) are
//! copied from one [`SecretStore`] to another with every kept version, oldest
//! first: kind, ciphertext, author and soft-deleted state. Values are copied
//! as ciphertext, untouched: their associated data binds tenant, path and
//! field, not the backend. The read-only `environment` backend holds the
//! operator's plaintext; its values are encrypted on the way.
//!
//! Rules, each chosen to be simple and to say what it did:
//!
//! - **Idempotent and resumable.** A secret whose target already holds the
//!   same versions (same ciphertext, or the same decrypted value and kind) is
//!   skipped. A target holding the first part of the source's history (an
//!   interrupted run, or writes to the source since) gets the rest appended.
//!   Any other target history is a *conflict*: reported, never overwritten.
//! - **Destroyed versions** have no value left to copy. Their place is kept:
//!   the target gets a marker version ([`DESTROYED_PLACEHOLDER`], which no key
//!   decrypts) that is destroyed at once, so later version numbers stay the
//!   same and the target shows the version as destroyed. They are counted.
//! - **Version numbers** are the target's to give: versions are appended, so
//!   a source whose oldest kept version is not 1 (older ones pruned by
//!   `maxVersions`) is renumbered from 1 in the target. Such secrets are
//!   reported and counted; reads of the newest version are unaffected.
//! - **Soft-deleted versions** stay deleted. Vault KV v2 withholds the data
//!   of a deleted version; to copy (or verify) it, it is undeleted, read and
//!   deleted again at once in that store (its `deletion_time` becomes now;
//!   a process killed in between leaves that one version undeleted). A dry
//!   run never does this: such versions are counted as not compared.
//! - **Audit and atomicity.** Writes to the target for one secret run in one
//!   metadata write transaction with a `secret.migrate` audit event (no
//!   values). For a backend outside the metadata store an `attempt` event is
//!   committed first, as for every other external write. A target that can
//!   hold its changes in memory (`file`) gets them in batches of
//!   [`HELD_BATCH`] secrets: the batch's `attempt` events are committed, the
//!   target makes the batch durable in one write, then its `success` events
//!   are committed. A run cut short loses at most the batch in memory, which
//!   the next run copies again.
//!
//! [`verify`] compares, per secret, the number of versions, their destroyed
//! and deleted states, kinds, and every decrypted value by HMAC-SHA256 under
//! a random key made for the run: no value or hash of a value is ever shown.

use crate::ErrorCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::ServiceError;
use crate::ids::PLATFORM_TENANT;
use crate::keyring::Keyring;
use crate::ports::MetadataStore;
use crate::secret_store::SecretStore;
use crate::service::Ctx;

mod check;
mod copy;
mod source;

use check::verify_secret;
use copy::copy_secret;

/// The ciphertext written in place of a destroyed version (then destroyed at
/// once). It has key version 0, which no tenant has: it never decrypts.
pub const DESTROYED_PLACEHOLDER: &str = "tsr:v0:destroyed-by-migration";

/// Secrets copied into a holding target between two flushes.
pub const HELD_BATCH: usize = 2000;

/// What a migration works on.
pub struct Sides<'a> {
    /// Tenants, data keys, audit.
    pub store: &'a dyn MetadataStore,
    /// Decrypts for comparisons; encrypts plaintext from `environment`.
    pub keyring: &'a Keyring,
    /// Chains the audit events of the copies.
    pub audit: &'a crate::audit::AuditChain,
    /// Copied from.
    pub from: &'a dyn SecretStore,
    /// Copied to.
    pub to: &'a dyn SecretStore,
}

/// How to migrate.
pub struct MigrateOptions {
    /// Only count; write nothing (not even an undelete in Vault).
    pub dry_run: bool,
    /// Versions kept by the target when the source does not say (environment).
    pub default_max_versions: u32,
}

/// What a migration did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// Source backend.
    pub from: String,
    /// Target backend.
    pub to: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Tenants looked at (`_platform` included).
    pub tenants: u64,
    /// Secrets found in the source.
    pub secrets: u64,
    /// Secrets written to (versions appended, or deletion/destroy states set).
    pub secrets_copied: u64,
    /// Versions whose ciphertext was copied.
    pub versions_copied: u64,
    /// Secrets the target already held in full.
    pub secrets_skipped: u64,
    /// Secrets whose target history differs (left as they are).
    pub conflicts: u64,
    /// `tenant/path` of each conflict.
    pub conflict_paths: Vec<String>,
    /// Destroyed source versions: no value copied, a destroyed marker kept in their place.
    pub destroyed_versions_not_copied: u64,
    /// Secrets whose versions got other numbers in the target.
    pub renumbered_secrets: u64,
    /// Deleted versions undeleted, read and deleted again in a Vault source.
    pub revealed_deleted_versions: u64,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// No difference was found.
    pub ok: bool,
    /// Secrets compared.
    pub secrets: u64,
    /// Versions whose decrypted values were compared.
    pub versions_compared: u64,
    /// Deleted versions whose data a store withholds (dry run): compared by state only.
    pub versions_not_compared: u64,
    /// Every difference, by path (never a value).
    pub differences: Vec<Difference>,
}

/// One secret that differs between the two sides.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Tenant.
    pub tenant_id: String,
    /// Path.
    pub path: String,
    /// What differs (counts, states, "value differs"; never a value).
    pub reason: String,
}

/// A version's content as a store gave it.
enum Content {
    /// Tessera ciphertext.
    Cipher(String),
    /// The operator's plaintext (`environment`).
    Plain(Zeroizing<Vec<u8>>),
    /// Destroyed: no value.
    Destroyed,
    /// Deleted, and the store withholds its data (Vault KV v2).
    Hidden,
    /// A [`DESTROYED_PLACEHOLDER`] left by an interrupted migration.
    Placeholder,
}

/// One version, loaded.
struct Item {
    version: u32,
    kind: String,
    content: Content,
    created_at: DateTime<Utc>,
    created_by: String,
    deleted_at: Option<DateTime<Utc>>,
}

impl Item {
    fn is_destroyed(&self) -> bool {
        matches!(self.content, Content::Destroyed | Content::Placeholder)
    }
}

/// How a target version relates to the source version it stands for.
enum Pair {
    /// Different content or deletion state.
    Differ,
    /// Same; `true` when shown by the value itself (not by destroyed states).
    Same(bool),
    /// Both deleted and a store withholds the data: taken as the same.
    Assumed,
}

/// What one secret needs.
enum Outcome {
    Skipped,
    Conflict(String),
    Copied(Copied),
}

#[derive(Default)]
struct Copied {
    versions: u64,
    destroyed: u64,
    revealed: u64,
    /// `(first source version, first target version)` when numbers differ.
    renumbered: Option<(u32, u32)>,
}

/// The writes a secret needs.
struct Plan {
    /// Source versions to append, by index.
    append: std::ops::Range<usize>,
    /// Target versions holding a placeholder still to destroy.
    repair: Vec<u32>,
    /// Target versions to mark deleted, and when.
    delete: Vec<(u32, DateTime<Utc>)>,
    /// The target's current version (check-and-set for the first append).
    target_current: u32,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.append.is_empty() && self.repair.is_empty() && self.delete.is_empty()
    }
}

/// Copies into a target that holds its changes: the audit events of the
/// secrets copied since the last flush.
pub(crate) struct Held {
    /// Tenant, resource (without the version count), versions copied.
    copies: Vec<(String, String, u64)>,
}

impl Held {
    fn queue(&mut self, tenant: &str, resource: String, versions: u64) {
        self.copies.push((tenant.to_owned(), resource, versions));
    }

    /// Audits the attempt, makes the target durable, audits the success;
    /// then holds again when `more` is true.
    async fn flush(&mut self, sides: &Sides<'_>, ctx: &Ctx, more: bool) -> Result<(), ServiceError> {
        let events = |outcome: &str| -> Vec<_> {
            self.copies
                .iter()
                .map(|(tenant, resource, versions)| {
                    let resource =
                        if outcome == "success" { format!("{resource}&versions={versions}") } else { resource.clone() };
                    ctx.event("secret.migrate", Some(tenant), resource, outcome)
                })
                .collect()
        };
        if !self.copies.is_empty() {
            let mut tx = sides.store.begin_write().await?;
            sides.audit.append_in_tx(tx.as_mut(), events("attempt")).await?;
            tx.commit().await?;
        }
        sides.to.flush().await?;
        if !self.copies.is_empty() {
            let mut tx = sides.store.begin_write().await?;
            sides.audit.append_in_tx(tx.as_mut(), events("success")).await?;
            tx.commit().await?;
        }
        self.copies.clear();
        if more {
            sides.to.hold_changes().await;
        }
        Ok(())
    }
}

/// Copies every tenant's secrets from `sides.from` to `sides.to`. `progress`
/// gets one line per tenant with secrets and one per notable secret
/// (conflict, renumbered, destroyed or revealed versions).
pub async fn migrate(
    sides: &Sides<'_>,
    ctx: &Ctx,
    opts: &MigrateOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<MigrateReport, ServiceError> {
    refuse_plaintext_target(sides)?;
    let mut report = MigrateReport {
        from: sides.from.name().to_owned(),
        to: sides.to.name().to_owned(),
        dry_run: opts.dry_run,
        ..MigrateReport::default()
    };
    let holding = !opts.dry_run && !sides.to.is_transactional() && sides.to.hold_changes().await;
    let mut held = holding.then(|| Held { copies: Vec::new() });
    for tenant in tenants(sides.store).await? {
        report.tenants += 1;
        let paths = paths(sides, &tenant).await?;
        let (mut copied, mut versions, mut skipped, mut conflicts) = (0u64, 0u64, 0u64, 0u64);
        for path in &paths {
            report.secrets += 1;
            if let Some(h) = held.as_mut().filter(|h| h.copies.len() >= HELD_BATCH) {
                h.flush(sides, ctx, true).await?;
            }
            match copy_secret(sides, ctx, opts, &tenant, path, held.as_mut()).await? {
                Outcome::Skipped => skipped += 1,
                Outcome::Conflict(reason) => {
                    conflicts += 1;
                    report.conflict_paths.push(format!("{tenant}/{path}"));
                    progress(&format!("  conflict {tenant}/{path}: {reason}; left as it is"));
                }
                Outcome::Copied(c) => {
                    copied += 1;
                    versions += c.versions;
                    report.destroyed_versions_not_copied += c.destroyed;
                    report.revealed_deleted_versions += c.revealed;
                    if let Some((from, to)) = c.renumbered {
                        report.renumbered_secrets += 1;
                        progress(&format!(
                            "  renumbered {tenant}/{path}: source version {from} is version {to} in the target"
                        ));
                    }
                    if c.destroyed > 0 {
                        progress(&format!(
                            "  {tenant}/{path}: {} destroyed version(s) have no value; kept as destroyed",
                            c.destroyed
                        ));
                    }
                    if c.revealed > 0 {
                        progress(&format!(
                            "  {tenant}/{path}: {} deleted version(s) undeleted to read them, deleted again",
                            c.revealed
                        ));
                    }
                }
            }
        }
        report.secrets_copied += copied;
        report.versions_copied += versions;
        report.secrets_skipped += skipped;
        report.conflicts += conflicts;
        if !paths.is_empty() {
            let verb = if opts.dry_run { "to copy" } else { "copied" };
            progress(&format!(
                "tenant {tenant}: {} secrets: {copied} {verb} ({versions} versions), {skipped} already there, \
                 {conflicts} conflicts",
                paths.len()
            ));
        }
    }
    if let Some(h) = held.as_mut() {
        h.flush(sides, ctx, false).await?;
    }
    Ok(report)
}

/// Compares every secret of the source with the target (see the module notes).
/// `reveal` allows undeleting Vault versions for a moment to read them.
pub async fn verify(
    sides: &Sides<'_>,
    reveal: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<VerifyReport, ServiceError> {
    let key = tessera_crypto::random_bytes(32);
    let mut report = VerifyReport::default();
    for tenant in tenants(sides.store).await? {
        for path in paths(sides, &tenant).await? {
            report.secrets += 1;
            if let Some(reason) = verify_secret(sides, &key, reveal, &tenant, &path, &mut report).await? {
                progress(&format!("  differs {tenant}/{path}: {reason}"));
                report.differences.push(Difference { tenant_id: tenant.clone(), path, reason });
            }
        }
    }
    report.ok = report.differences.is_empty();
    Ok(report)
}

fn refuse_plaintext_target(sides: &Sides<'_>) -> Result<(), ServiceError> {
    if sides.to.holds_plaintext() {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidTarget,
            format!("the {} backend is read-only and cannot be a migration target", sides.to.name()),
            Some("to"),
        ));
    }
    Ok(())
}

/// `_platform` first, then every tenant of the metadata store.
async fn tenants(store: &dyn MetadataStore) -> Result<Vec<String>, ServiceError> {
    let mut tx = store.begin_read().await?;
    let mut ids = vec![PLATFORM_TENANT.to_owned()];
    ids.extend(tx.list_tenants().await?.into_iter().map(|t| t.id).filter(|id| id != PLATFORM_TENANT));
    tx.commit().await?;
    Ok(ids)
}

async fn paths(sides: &Sides<'_>, tenant: &str) -> Result<Vec<String>, ServiceError> {
    let mut tx = sides.store.begin_read().await?;
    let paths = sides.from.list_paths(tx.as_mut(), tenant, "").await?;
    tx.commit().await?;
    Ok(paths)
}
