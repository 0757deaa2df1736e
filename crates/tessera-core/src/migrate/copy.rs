//! Copying one secret: planning against the target's history, then appending.

use crate::ErrorCode;
use subtle::ConstantTimeEq;

use crate::error::{ErrorKind, ServiceError};
use crate::ports::StoreTx;
use crate::secret_store::NewVersion;
use crate::service::Ctx;

use super::source::{load, plaintext, reveal};
use super::*;

/// Copies one secret. With `held` (a target holding its changes until a
/// flush), the writes stay in the target's memory and the secret's audit
/// events are queued for [`super::Held::flush`] instead of committed here.
pub(super) async fn copy_secret(
    sides: &Sides<'_>,
    ctx: &Ctx,
    opts: &MigrateOptions,
    tenant: &str,
    path: &str,
    held: Option<&mut Held>,
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
    if let Some(held) = held {
        let copied = apply(sides, tx.as_mut(), tenant, path, &mut src, &plan, max_versions).await?;
        tx.commit().await?;
        held.queue(tenant, resource, copied.versions);
        return Ok(Outcome::Copied(copied));
    }
    if !sides.to.is_transactional() {
        // The writes cannot commit with the audit event: make an attempt durable first.
        sides
            .audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("secret.migrate", Some(tenant), resource.clone(), "attempt")])
            .await?;
        tx.commit().await?;
        tx = sides.store.begin_write().await?;
    }
    let copied = apply(sides, tx.as_mut(), tenant, path, &mut src, &plan, max_versions).await?;
    let resource = format!("{resource}&versions={}", copied.versions);
    sides.audit.append_in_tx(tx.as_mut(), vec![ctx.event("secret.migrate", Some(tenant), resource, "success")]).await?;
    tx.commit().await?;
    Ok(Outcome::Copied(copied))
}

/// Finds where the target's history sits in the source's: the target's
/// versions from `offset` on must be the source's first ones. `None`: conflict.
pub(super) async fn plan(
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
pub(super) async fn pair(
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
pub(super) async fn apply(
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
                    ErrorCode::VersionUnreadable,
                    format!("version {} of {path} (tenant {tenant}) cannot be read from the source", s.version),
                ))
            }
        };
        // A deletion time is copied after the append, as the target's own delete.
        let new = NewVersion {
            kind: s.kind.clone(),
            ciphertext,
            created_by: s.created_by.clone(),
            created_at: s.created_at,
            deleted_at: None,
        };
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
