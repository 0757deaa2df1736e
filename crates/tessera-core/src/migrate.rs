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
//!   committed first, as for every other external write.
//!
//! [`verify`] compares, per secret, the number of versions, their destroyed
//! and deleted states, kinds, and every decrypted value by HMAC-SHA256 under
//! a random key made for the run: no value or hash of a value is ever shown.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::audit::append_in_tx;
use crate::error::{ErrorKind, ServiceError};
use crate::ids::PLATFORM_TENANT;
use crate::keyring::Keyring;
use crate::ports::{MetadataStore, SecretVersionRecord, StoreTx};
use crate::secret_store::{NewVersion, SecretStore};
use crate::service::Ctx;

/// The ciphertext written in place of a destroyed version (then destroyed at
/// once). It has key version 0, which no tenant has: it never decrypts.
pub const DESTROYED_PLACEHOLDER: &str = "tsr:v0:destroyed-by-migration";

/// What a migration works on.
pub struct Sides<'a> {
    /// Tenants, data keys, audit.
    pub store: &'a dyn MetadataStore,
    /// Decrypts for comparisons; encrypts plaintext from `environment`.
    pub keyring: &'a Keyring,
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
    for tenant in tenants(sides.store).await? {
        report.tenants += 1;
        let paths = paths(sides, &tenant).await?;
        let (mut copied, mut versions, mut skipped, mut conflicts) = (0u64, 0u64, 0u64, 0u64);
        for path in &paths {
            report.secrets += 1;
            match copy_secret(sides, ctx, opts, &tenant, path).await? {
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
            "invalid_target",
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

async fn copy_secret(
    sides: &Sides<'_>,
    ctx: &Ctx,
    opts: &MigrateOptions,
    tenant: &str,
    path: &str,
) -> Result<Outcome, ServiceError> {
    let mut tx = if opts.dry_run { sides.store.begin_read().await? } else { sides.store.begin_write().await? };
    let Some(head) = sides.from.head(tx.as_mut(), tenant, path).await? else {
        tx.commit().await?;
        return Ok(Outcome::Skipped);
    };
    let mut src = load(sides.from, tx.as_mut(), tenant, path).await?;
    for item in &mut src {
        // A placeholder in the source is a destroyed version (an earlier migration into it was cut short).
        if matches!(item.content, Content::Placeholder) {
            item.content = Content::Destroyed;
        }
    }
    let tgt = load(sides.to, tx.as_mut(), tenant, path).await?;
    let target_current = match sides.to.head(tx.as_mut(), tenant, path).await? {
        Some(h) => h.current_version,
        None => 0,
    };
    let Some(plan) = plan(sides, tx.as_mut(), tenant, path, &src, &tgt, target_current).await? else {
        tx.commit().await?;
        return Ok(Outcome::Conflict(format!(
            "the target's {} version(s) are not a copy of the source's {}",
            tgt.len(),
            src.len()
        )));
    };
    if plan.is_empty() {
        tx.commit().await?;
        return Ok(Outcome::Skipped);
    }
    if opts.dry_run {
        tx.commit().await?;
        let mut c = Copied::default();
        for s in &src[plan.append.clone()] {
            if s.is_destroyed() {
                c.destroyed += 1;
            } else {
                c.versions += 1;
            }
        }
        return Ok(Outcome::Copied(c));
    }
    let max_versions = if sides.from.holds_plaintext() || head.max_versions == 0 {
        opts.default_max_versions
    } else {
        head.max_versions
    }
    .max(u32::try_from(src.len()).unwrap_or(u32::MAX))
    .max(1);
    let resource = format!("tenants/{tenant}/secrets/{path}?from={}&to={}", sides.from.name(), sides.to.name());
    if !sides.to.is_transactional() {
        // The writes cannot commit with the audit event: make an attempt durable first.
        append_in_tx(tx.as_mut(), vec![ctx.event("secret.migrate", Some(tenant), resource.clone(), "attempt")]).await?;
        tx.commit().await?;
        tx = sides.store.begin_write().await?;
    }
    let copied = apply(sides, tx.as_mut(), tenant, path, &mut src, &plan, max_versions).await?;
    let resource = format!("{resource}&versions={}", copied.versions);
    append_in_tx(tx.as_mut(), vec![ctx.event("secret.migrate", Some(tenant), resource, "success")]).await?;
    tx.commit().await?;
    Ok(Outcome::Copied(copied))
}

/// Finds where the target's history sits in the source's: the target's
/// versions from `offset` on must be the source's first ones. `None`: conflict.
async fn plan(
    sides: &Sides<'_>,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
    src: &[Item],
    tgt: &[Item],
    target_current: u32,
) -> Result<Option<Plan>, ServiceError> {
    let n = tgt.len();
    for offset in 0..=n {
        let overlap = n - offset;
        if overlap > src.len() {
            continue;
        }
        if n > 0 && overlap == 0 {
            break;
        }
        let (mut fits, mut shown) = (true, false);
        for j in 0..overlap {
            match pair(sides, tx, tenant, path, &tgt[offset + j], &src[j]).await? {
                Pair::Differ => {
                    fits = false;
                    break;
                }
                Pair::Same(by_value) => shown |= by_value,
                Pair::Assumed => {}
            }
        }
        // Older target versions the source has pruned since are fine, but only
        // when a value shows the histories are the same one.
        if !fits || (offset > 0 && !shown) {
            continue;
        }
        let mut plan = Plan { append: overlap..src.len(), repair: Vec::new(), delete: Vec::new(), target_current };
        for j in 0..overlap {
            let (t, s) = (&tgt[offset + j], &src[j]);
            if matches!(t.content, Content::Placeholder) {
                plan.repair.push(t.version);
            }
            if let (Some(at), None) = (s.deleted_at, t.deleted_at) {
                plan.delete.push((t.version, at));
            }
        }
        return Ok(Some(plan));
    }
    Ok(None)
}

/// Compares a target version with the source version at the same place.
async fn pair(
    sides: &Sides<'_>,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
    t: &Item,
    s: &Item,
) -> Result<Pair, ServiceError> {
    // Deleted in the target but live in the source: not something a copy makes.
    if t.deleted_at.is_some() && s.deleted_at.is_none() {
        return Ok(Pair::Differ);
    }
    Ok(match (&t.content, &s.content) {
        (Content::Destroyed | Content::Placeholder, Content::Destroyed | Content::Placeholder) => Pair::Same(false),
        (Content::Destroyed | Content::Placeholder, _) | (_, Content::Destroyed | Content::Placeholder) => Pair::Differ,
        (Content::Hidden, _) | (_, Content::Hidden) => {
            if t.deleted_at.is_some() && s.deleted_at.is_some() {
                Pair::Assumed
            } else {
                Pair::Differ
            }
        }
        (Content::Cipher(a), Content::Cipher(b)) if a == b && t.kind == s.kind => Pair::Same(true),
        _ if t.kind != s.kind => Pair::Differ,
        _ => {
            // Re-encrypted on one side (rewrap), or plaintext from `environment`: compare values.
            let a = plaintext(sides.keyring, tx, tenant, path, t).await?;
            let b = plaintext(sides.keyring, tx, tenant, path, s).await?;
            match (a, b) {
                (Some(a), Some(b)) if bool::from(a.as_slice().ct_eq(b.as_slice())) => Pair::Same(true),
                _ => Pair::Differ,
            }
        }
    })
}

/// Writes the plan to the target.
async fn apply(
    sides: &Sides<'_>,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
    src: &mut [Item],
    plan: &Plan,
    max_versions: u32,
) -> Result<Copied, ServiceError> {
    let mut copied = Copied::default();
    let mut destroy = plan.repair.clone();
    let mut delete = plan.delete.clone();
    let mut current = plan.target_current;
    for s in &mut src[plan.append.clone()] {
        if matches!(s.content, Content::Hidden) && s.deleted_at.is_some() {
            reveal(sides.from, tx, tenant, path, s).await?;
            copied.revealed += 1;
        }
        let ciphertext = match &s.content {
            Content::Cipher(c) => c.clone(),
            Content::Plain(p) => sides.keyring.encrypt(tx, tenant, path, &s.kind, p).await?,
            Content::Destroyed | Content::Placeholder => DESTROYED_PLACEHOLDER.to_owned(),
            Content::Hidden => {
                return Err(ServiceError::new(
                    ErrorKind::Integrity,
                    "version_unreadable",
                    format!("version {} of {path} (tenant {tenant}) cannot be read from the source", s.version),
                ))
            }
        };
        let new =
            NewVersion { kind: s.kind.clone(), ciphertext, created_by: s.created_by.clone(), created_at: s.created_at };
        // Check-and-set: a writer on the target at the same time stops the copy of this secret.
        let v = sides.to.append(tx, tenant, path, new, Some(current), max_versions).await?;
        current = v;
        if v != s.version && copied.renumbered.is_none() {
            copied.renumbered = Some((s.version, v));
        }
        if s.is_destroyed() {
            copied.destroyed += 1;
            destroy.push(v);
        } else {
            copied.versions += 1;
        }
        if let Some(at) = s.deleted_at {
            delete.push((v, at));
        }
    }
    if !destroy.is_empty() {
        sides.to.destroy(tx, tenant, path, &destroy).await?;
    }
    for (v, at) in delete {
        sides.to.set_deleted(tx, tenant, path, &[v], Some(at)).await?;
    }
    Ok(copied)
}

/// Every kept version of a secret, oldest first, with its content.
async fn load(
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
async fn reveal(
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
            "version_unreadable",
            format!("deleted version {} of {path} (tenant {tenant}) stays unreadable once undeleted", item.version),
        )),
    }
}

/// The value of a version, or `None` when there is none or it does not decrypt.
async fn plaintext(
    keyring: &Keyring,
    tx: &mut dyn StoreTx,
    tenant: &str,
    path: &str,
    item: &Item,
) -> Result<Option<Zeroizing<Vec<u8>>>, ServiceError> {
    match &item.content {
        Content::Plain(p) => Ok(Some(p.clone())),
        Content::Cipher(c) => match keyring.decrypt(tx, tenant, path, &item.kind, c).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.kind == ErrorKind::Integrity => Ok(None),
            Err(e) => Err(e),
        },
        _ => Ok(None),
    }
}

/// Compares one secret; `Some(reason)` when it differs.
async fn verify_secret(
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
fn keyed_hash(key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}
