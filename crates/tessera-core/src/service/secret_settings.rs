//! KV v2's version settings, as the Vault-compatible API serves them: each
//! secret's `max_versions`, `cas_required` and `delete_version_after`
//! (`metadata/<path>`), and the same three for a tenant's whole KV mount
//! (`<mount>/config`). They are rules of the tenant secret itself, so they
//! hold for every writer, the native API's too: the number of versions a
//! write keeps, whether a write must name the version it replaces, and when
//! a new version starts to count as deleted.
//!
//! Where it sits: the service layer, over the metadata store's secret rows
//! (`database` credential backend only; the others keep no such fields, and
//! follow `TESSERA_MAX_VERSIONS` alone). Settings are metadata, never secret
//! values, and every change is one audited write transaction.

use chrono::{DateTime, Duration, Utc};

use super::secret_kv::CustomMetadata;
use super::secrets::secret_missing;
use super::{Ctx, SecretMetadataView, Tessera};
use crate::access::Access;
use crate::error::ServiceError;
use crate::ids::{SecretPath, TenantId};
use crate::ports::{KvSettings, StoreTx};
use crate::ErrorCode;

/// The longest `delete_version_after` taken: a hundred years, so that a
/// version's deletion time always fits a timestamp.
const MAX_DELETE_AFTER_SECS: u64 = 100 * 366 * 24 * 3600;

/// What a write to one secret follows: its own settings over its tenant's
/// mount settings over `TESSERA_MAX_VERSIONS`, combined as OpenBao does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionRules {
    /// Versions a write keeps.
    pub max_versions: u32,
    /// A write must name the version it replaces.
    pub cas_required: bool,
    /// How long a new version stays readable, if limited.
    pub delete_after: Option<Duration>,
}

impl VersionRules {
    /// Only `TESSERA_MAX_VERSIONS`.
    pub(crate) fn plain(max_versions: u32) -> Self {
        Self { max_versions, cas_required: false, delete_after: None }
    }

    /// OpenBao's rules: the larger of the two `max_versions` (neither set:
    /// the default); check-and-set if either asks for it; the smaller of the
    /// two non-zero `delete_version_after`, none when the mount turned it off.
    pub(crate) fn of(secret: Option<KvSettings>, mount: Option<KvSettings>, default_max: u32) -> Self {
        let (s, m) = (secret.unwrap_or_default(), mount.unwrap_or_default());
        let max_versions = match s.max_versions.max(m.max_versions) {
            0 => default_max,
            n => n,
        };
        let delete_after = match (m.delete_version_after, s.delete_version_after) {
            (mount, _) if mount < 0 => None,
            (0, 0) => None,
            (0, one) | (one, 0) => Some(one),
            (mount, meta) => Some(mount.min(meta)),
        };
        Self {
            max_versions,
            cas_required: s.cas_required || m.cas_required,
            delete_after: delete_after.map(Duration::seconds),
        }
    }

    /// When a version made at `created` starts to count as deleted.
    pub(crate) fn deletion_time(&self, created: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.delete_after.and_then(|d| created.checked_add_signed(d))
    }

    /// Refuses a write that names no version where one is required.
    pub(crate) fn require_cas(&self, cas: Option<u32>) -> Result<(), ServiceError> {
        if self.cas_required && cas.is_none() {
            return Err(ServiceError::invalid(
                ErrorCode::CasRequired,
                "check-and-set parameter required for this call",
                Some("cas"),
            ));
        }
        Ok(())
    }
}

/// A change of a secret's metadata (KV v2's `POST metadata/<path>`): each
/// field given replaces the stored one; the others stay.
#[derive(Debug, Clone, Default)]
pub struct SecretMetadataChange {
    /// Versions to keep; 0: the mount's (or Tessera's) number.
    pub max_versions: Option<u32>,
    /// Whether every write must name the version it replaces.
    pub cas_required: Option<bool>,
    /// Seconds a new version stays readable; 0: the mount's setting.
    pub delete_version_after: Option<u64>,
    /// The custom metadata, replaced whole (an empty map clears it).
    pub custom_metadata: Option<CustomMetadata>,
}

impl SecretMetadataChange {
    fn sets_versions(&self) -> bool {
        self.max_versions.is_some() || self.cas_required.is_some() || self.delete_version_after.is_some()
    }

    /// Whether it asks for more than the defaults (what a backend with no
    /// settings does anyway; clients send them with every metadata write).
    fn asks_for_settings(&self) -> bool {
        self.max_versions.is_some_and(|n| n > 0)
            || self.cas_required == Some(true)
            || self.delete_version_after.is_some_and(|s| s > 0)
    }
}

/// What changing a secret's metadata should tell the caller.
#[derive(Debug, Clone, Default)]
pub struct SecretMetadataSet {
    /// `cas_required` was set to false on a secret whose mount requires it
    /// anyway (Vault warns that the value is ignored).
    pub cas_required_by_mount: bool,
}

/// A change of a tenant's KV mount settings (`POST <mount>/config`).
#[derive(Debug, Clone, Default)]
pub struct KvConfigChange {
    /// Versions each secret keeps; 0: `TESSERA_MAX_VERSIONS`.
    pub max_versions: Option<u32>,
    /// Whether every write of every secret must use check-and-set.
    pub cas_required: Option<bool>,
    /// Seconds a new version stays readable; 0: no limit; negative: turned
    /// off for every secret, their own settings included.
    pub delete_version_after: Option<i64>,
}

/// A secret's metadata as KV v2 shows it (`GET metadata/<path>`).
pub struct KvMetadata {
    /// Versions and times, as the native API shows them.
    pub view: SecretMetadataView,
    /// Its custom metadata, if set.
    pub custom_metadata: Option<CustomMetadata>,
    /// Its own settings (zeros: not set).
    pub settings: KvSettings,
    /// KV v2's `oldest_version`: 0 until a write first reached the number
    /// of versions kept, then the oldest kept.
    pub oldest_version: u32,
}

fn settings_unsupported() -> ServiceError {
    ServiceError::invalid(
        ErrorCode::SecretSettingsUnsupported,
        "max_versions, cas_required and delete_version_after need the database credential backend",
        None,
    )
}

fn check_delete_after(secs: i64, field: &'static str) -> Result<(), ServiceError> {
    if secs.unsigned_abs() > MAX_DELETE_AFTER_SECS {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidSecretSettings,
            format!("{field} may be at most 100 years"),
            Some(field),
        ));
    }
    Ok(())
}

impl Tessera {
    /// The rules a write to `path` follows. Reserved paths (`_...`: Transit
    /// keys, connection fields) and backends outside the database have none
    /// of their own.
    pub(crate) async fn version_rules(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<VersionRules, ServiceError> {
        if !self.secrets.is_transactional() || path.starts_with('_') {
            return Ok(VersionRules::plain(self.opts.max_versions));
        }
        let (secret, mount) = tx.get_version_rules(tenant, path).await?;
        Ok(VersionRules::of(secret, mount, self.opts.max_versions))
    }

    /// A tenant's KV mount settings (all zeros until set, and on backends
    /// that keep none).
    pub async fn kv_config(&self, ctx: &Ctx, tenant: &str) -> Result<KvSettings, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        let mut tx = self.store.read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let config = if self.secrets.is_transactional() { tx.get_kv_config(tenant.as_str()).await } else { Ok(None) };
        tx.commit().await?;
        Ok(config?.unwrap_or_default())
    }

    /// Changes a tenant's KV mount settings; they hold for each of its
    /// secrets from its next write on. Database credential backend only.
    /// Audited as `secret.config`.
    pub async fn set_kv_config(&self, ctx: &Ctx, tenant: &str, change: KvConfigChange) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        if change.max_versions.is_none() && change.cas_required.is_none() && change.delete_version_after.is_none() {
            return Ok(());
        }
        if !self.secrets.is_transactional() {
            let asks = change.max_versions.is_some_and(|n| n > 0)
                || change.cas_required == Some(true)
                || change.delete_version_after.is_some_and(|s| s != 0);
            return if asks { Err(settings_unsupported()) } else { Ok(()) };
        }
        if let Some(secs) = change.delete_version_after {
            check_delete_after(secs, "delete_version_after")?;
        }
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let mut config = tx.get_kv_config(tenant.as_str()).await?.unwrap_or_default();
        if let Some(n) = change.max_versions {
            config.max_versions = n;
        }
        if let Some(c) = change.cas_required {
            config.cas_required = c;
        }
        if let Some(secs) = change.delete_version_after {
            // Any negative duration turns it off (Vault keeps -1s).
            config.delete_version_after = secs.max(-1);
        }
        tx.set_kv_config(tenant.as_str(), &config, Utc::now()).await?;
        let resource = format!("tenants/{tenant}/secrets?config");
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("secret.config", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a secret's metadata: its version settings and custom
    /// metadata (string keys of 1-128 bytes, values up to 512 bytes, at most
    /// 64 pairs). Database credential backend only. A path with no secret
    /// yet gets one with no version, as Vault keeps metadata before data.
    /// Nothing to change changes nothing. Audited as `secret.metadata`.
    pub async fn set_secret_metadata(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        change: SecretMetadataChange,
    ) -> Result<SecretMetadataSet, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        self.allow_secret(ctx, &tenant, path.as_str(), Access::Write).await?;
        if !change.sets_versions() && change.custom_metadata.is_none() {
            return Ok(SecretMetadataSet::default());
        }
        if !self.secrets.is_transactional() {
            if change.custom_metadata.is_some() {
                return Err(ServiceError::invalid(
                    ErrorCode::CustomMetadataUnsupported,
                    "custom metadata needs the database credential backend",
                    Some("custom_metadata"),
                ));
            }
            if change.asks_for_settings() {
                return Err(settings_unsupported());
            }
            return Ok(SecretMetadataSet::default());
        }
        let custom_json = match &change.custom_metadata {
            Some(custom) => Some(super::secret_kv::custom_metadata_json(custom)?),
            None => None,
        };
        if let Some(secs) = change.delete_version_after {
            check_delete_after(i64::try_from(secs).unwrap_or(i64::MAX), "delete_version_after")?;
        }
        let resource = format!("tenants/{tenant}/secrets/{path}?metadata");
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let (t, p) = (tenant.as_str(), path.as_str());
        tx.lock_secret_path(t, p).await?;
        let mut settings = match tx.get_secret_settings(t, p).await? {
            Some((settings, _)) => settings,
            None => {
                // A head with no version, for the metadata to sit on.
                let now = Utc::now();
                let head = crate::ports::SecretRecord {
                    tenant_id: t.to_owned(),
                    path: p.to_owned(),
                    current_version: 0,
                    max_versions: self.opts.max_versions,
                    created_at: now,
                    updated_at: now,
                };
                tx.upsert_secret(&head).await?;
                KvSettings::default()
            }
        };
        let mut set = SecretMetadataSet::default();
        if change.sets_versions() {
            if let Some(n) = change.max_versions {
                settings.max_versions = n;
            }
            if let Some(c) = change.cas_required {
                settings.cas_required = c;
                set.cas_required_by_mount = !c && tx.get_kv_config(t).await?.is_some_and(|m| m.cas_required);
            }
            if let Some(secs) = change.delete_version_after {
                settings.delete_version_after = i64::try_from(secs).unwrap_or(i64::MAX);
            }
            tx.set_secret_settings(t, p, &settings).await?;
        }
        if let Some(json) = custom_json {
            tx.set_secret_custom_metadata(t, p, json.as_deref()).await?;
        }
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("secret.metadata", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(set)
    }

    /// A secret's metadata as KV v2 shows it, in one read: versions, custom
    /// metadata, its own settings and its oldest version.
    pub async fn secret_kv_metadata(&self, ctx: &Ctx, tenant: &str, path: &str) -> Result<KvMetadata, ServiceError> {
        let view = self.secret_metadata(ctx, tenant, path).await?;
        let tenant = TenantId::parse(tenant)?;
        let path = SecretPath::parse_user(path)?;
        let (t, p) = (tenant.as_str(), path.as_str());
        if !self.secrets.is_transactional() {
            // Vault counts from the oldest version kept once older ones were pruned.
            let oldest = view.versions.first().map_or(0, |v| v.version);
            let oldest_version = if oldest > 1 { oldest } else { 0 };
            return Ok(KvMetadata { view, custom_metadata: None, settings: KvSettings::default(), oldest_version });
        }
        let mut tx = self.store.read().await?;
        let read = async {
            let (settings, oldest_version) = tx.get_secret_settings(t, p).await?.ok_or_else(|| secret_missing(p))?;
            let custom_metadata = self.custom_metadata_in(tx.as_mut(), t, p).await?;
            Ok::<_, ServiceError>((settings, oldest_version, custom_metadata))
        }
        .await;
        tx.commit().await?;
        let (settings, oldest_version, custom_metadata) = read?;
        Ok(KvMetadata { view, custom_metadata, settings, oldest_version })
    }
}

#[cfg(test)]
mod tests {
    use super::{KvSettings, VersionRules};
    use chrono::Duration;

    fn s(max_versions: u32, cas_required: bool, delete_version_after: i64) -> Option<KvSettings> {
        Some(KvSettings { max_versions, cas_required, delete_version_after })
    }

    #[test]
    fn nothing_set_keeps_tessera_s_number_and_no_other_rule() {
        assert_eq!(VersionRules::of(None, None, 10), VersionRules::plain(10));
        assert_eq!(VersionRules::of(s(0, false, 0), s(0, false, 0), 7), VersionRules::plain(7));
    }

    #[test]
    fn the_larger_max_versions_of_secret_and_mount_holds_as_in_openbao() {
        assert_eq!(VersionRules::of(s(2, false, 0), None, 10).max_versions, 2);
        assert_eq!(VersionRules::of(s(2, false, 0), s(3, false, 0), 10).max_versions, 3);
        assert_eq!(VersionRules::of(s(5, false, 0), s(3, false, 0), 10).max_versions, 5);
        assert_eq!(VersionRules::of(None, s(4, false, 0), 10).max_versions, 4);
    }

    #[test]
    fn check_and_set_is_required_if_either_asks_and_a_write_naming_none_is_refused() {
        let rules = VersionRules::of(s(0, false, 0), s(0, true, 0), 10);
        assert!(rules.cas_required);
        let e = rules.require_cas(None).expect_err("refused");
        assert_eq!(
            (e.code, e.message.as_str()),
            (crate::ErrorCode::CasRequired, "check-and-set parameter required for this call")
        );
        assert!(rules.require_cas(Some(0)).is_ok());
        assert!(VersionRules::of(s(0, true, 0), None, 10).cas_required);
    }

    #[test]
    fn the_shorter_non_zero_delete_after_holds_and_a_negative_mount_turns_it_off() {
        let after = |secret, mount| VersionRules::of(s(0, false, secret), s(0, false, mount), 10).delete_after;
        assert_eq!(after(0, 0), None);
        assert_eq!(after(60, 0), Some(Duration::seconds(60)));
        assert_eq!(after(0, 3600), Some(Duration::seconds(3600)));
        assert_eq!(after(10_800, 3600), Some(Duration::seconds(3600)));
        assert_eq!(after(1800, 3600), Some(Duration::seconds(1800)));
        assert_eq!(after(1800, -1), None);
    }
}
