//! `tessera apply` (seed 001's tenants file): what differs between a desired
//! connection and what is stored, so a second apply of the same file writes
//! nothing. Stored tokens and secret config values are decrypted only to be
//! compared, in constant time, and never leave this module.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::credentials::{NewCredential, StoredCredentials};
use super::{Ctx, Tessera};
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, SecretPath, TenantId};
use crate::ports::{CredentialRecord, StoreTx};
use crate::service::CredentialInput;

/// What applying one connection would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionPlan {
    /// The config (or `isEnabled`) differs from what is stored.
    pub config_changes: bool,
    /// The credentials differ from what is stored (or none are stored).
    pub credentials_change: bool,
}

impl Tessera {
    /// The stored name of a tenant, or None when it does not exist (admin only).
    pub async fn apply_tenant_name(&self, ctx: &Ctx, tenant: &str) -> Result<Option<String>, ServiceError> {
        self.allow_admin(ctx).await?;
        let tenant = TenantId::parse(tenant)?;
        let mut tx = self.store.begin_read().await?;
        let found = tx.get_tenant(tenant.as_str()).await?;
        tx.commit().await?;
        Ok(found.map(|t| t.name))
    }

    /// Compares a desired connection with the stored one (admin only). The
    /// integration must be registered; config values are validated against
    /// its schema and credentials as `POST .../credentials` would, so a plan
    /// that passes is one the writes accept. A tenant that does not exist yet
    /// has nothing stored: everything given differs.
    pub async fn plan_connection(
        &self,
        ctx: &Ctx,
        tenant: &str,
        key: &str,
        config: Option<&Map<String, Value>>,
        is_enabled: Option<bool>,
        credentials: Option<CredentialInput>,
    ) -> Result<ConnectionPlan, ServiceError> {
        self.allow_admin(ctx).await?;
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        let relative_expiry = credentials.as_ref().is_some_and(|c| c.expires_in.is_some_and(|n| n > 0));
        let new = credentials.map(|c| c.into_credential(Utc::now(), "apply")).transpose()?;
        let mut tx = self.store.begin_read().await?;
        let result = self
            .plan_in(tx.as_mut(), (&tenant, &key), config, is_enabled, new.as_ref().map(|n| (n, relative_expiry)))
            .await;
        tx.commit().await?;
        result
    }

    async fn plan_in(
        &self,
        tx: &mut dyn StoreTx,
        (tenant, key): (&TenantId, &IntegrationKey),
        config: Option<&Map<String, Value>>,
        is_enabled: Option<bool>,
        new: Option<(&NewCredential, bool)>,
    ) -> Result<ConnectionPlan, ServiceError> {
        let integration = Self::require_integration(tx, key).await?;
        let schema = &integration.config_schema;
        for (k, v) in config.into_iter().flatten() {
            if !is_removal(v) || schema.field(k).is_none() {
                schema.validate_value(k, v)?;
            }
        }
        let tenant_exists = tx.get_tenant(tenant.as_str()).await?.is_some();
        let conn = if tenant_exists { tx.get_connection(tenant.as_str(), key.as_str()).await? } else { None };
        let config_changes = match (&conn, config.is_some() || is_enabled.is_some()) {
            (_, false) => false,
            (None, true) => true,
            (Some(conn), true) => {
                let enabled_differs = is_enabled.is_some_and(|e| e != conn.is_enabled);
                let mut differs = enabled_differs;
                for (k, v) in config.into_iter().flatten() {
                    if differs {
                        break;
                    }
                    let stored_secret = conn.config_meta.get(k).is_some_and(|m| m.secret);
                    differs = if is_removal(v) {
                        conn.config.contains_key(k) || stored_secret
                    } else if schema.is_secret(k) {
                        !stored_secret
                            || conn.config.contains_key(k)
                            || !self.secret_value_equals(tx, tenant, key, k, v).await?
                    } else {
                        stored_secret || conn.config.get(k) != Some(v)
                    };
                }
                differs
            }
        };
        let credentials_change = match new {
            None => false,
            Some((new, relative_expiry)) => {
                let stored = if tenant_exists { tx.get_credential(tenant.as_str(), key.as_str()).await? } else { None };
                match stored {
                    None => true,
                    Some(stored) => self.credentials_differ(tx, tenant, key, &stored, new, relative_expiry).await?,
                }
            }
        };
        Ok(ConnectionPlan { config_changes, credentials_change })
    }

    async fn secret_value_equals(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        key: &IntegrationKey,
        field: &str,
        value: &Value,
    ) -> Result<bool, ServiceError> {
        let path = SecretPath::config_field(key, field);
        let incarnation = match self.incarnation(tx, tenant.as_str()).await {
            Ok(i) => i,
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let owner = tessera_crypto::KeyOwner { tenant: tenant.as_str(), incarnation: &incarnation };
        let revealed = match self.read_version(tx, owner, path.as_str(), None).await {
            Ok(r) => r,
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let wanted = Zeroizing::new(serde_json::to_vec(value).expect("JSON values serialise"));
        Ok(bool::from(revealed.plaintext[..].ct_eq(&wanted[..])))
    }

    /// Whether `new` differs from the stored credential: tokens compared in
    /// constant time, then token type, scopes and expiry (to the second). An
    /// expiry given as `expiresIn` is relative to each apply, so only its
    /// presence is compared (the same token keeps the expiry it was stored with).
    async fn credentials_differ(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        key: &IntegrationKey,
        stored: &CredentialRecord,
        new: &NewCredential,
        relative_expiry: bool,
    ) -> Result<bool, ServiceError> {
        if stored.token_type != new.token_type || stored.scopes != new.scopes {
            return Ok(true);
        }
        let expiry_same = match (stored.expires_at, new.expires_at) {
            (Some(_), Some(_)) if relative_expiry => true,
            (Some(a), Some(b)) => same_second(a, b),
            (None, None) => true,
            _ => false,
        };
        if !expiry_same {
            return Ok(true);
        }
        if stored.has_refresh_token != new.tokens.refresh.is_some() {
            return Ok(true);
        }
        let current = match self.read_tokens(tx, tenant, key).await {
            Ok(t) => t,
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        let access_same = current.access.as_bytes().ct_eq(new.tokens.access.as_bytes());
        let refresh_same = match (&current.refresh, &new.tokens.refresh) {
            (Some(a), Some(b)) => a.as_bytes().ct_eq(b.as_bytes()),
            (None, None) => subtle::Choice::from(1),
            _ => subtle::Choice::from(0),
        };
        Ok(!bool::from(access_same & refresh_same))
    }

    /// Stores credentials as `POST .../credentials` does, with source `apply`.
    pub async fn apply_credentials(
        &self,
        ctx: &Ctx,
        tenant: &str,
        key: &str,
        input: CredentialInput,
    ) -> Result<StoredCredentials, ServiceError> {
        self.allow_admin(ctx).await?;
        self.store_credentials_from(ctx, tenant, key, input, "apply").await
    }
}

fn is_removal(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

fn same_second(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    a.timestamp() == b.timestamp()
}
