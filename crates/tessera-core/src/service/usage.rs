//! What every use of a connection on a tenant's behalf shares (resolved
//! view, proxy, tool calls): whose tenant it is, the connection with a
//! fresh token, and the throttled record of its use.

use crate::ErrorCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::connections::no_connection;
use super::integrations::no_integration;
use super::view_cache::ViewReader;
use super::{Ctx, Tessera};
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, TenantId};
use crate::ports::{ConnectionContext, ConnectionRecord, CredentialRecord, IntegrationRecord};

/// A tenant's connection whose integration, connection row and credential
/// metadata were found: checked once, by [`Connection::of`], so no later
/// step asks again. The rows are shared with the view cache.
pub(crate) struct Connection {
    pub integration: Arc<IntegrationRecord>,
    pub connection: Arc<ConnectionRecord>,
    pub credential: Option<Arc<CredentialRecord>>,
}

impl Connection {
    /// The parts of a connection context, or the error for the first
    /// missing one: no such tenant, integration, or connection.
    pub(crate) fn of(found: &ConnectionContext, tenant: &TenantId, key: &IntegrationKey) -> Result<Self, ServiceError> {
        if !found.tenant_exists() {
            return Err(ServiceError::tenant_not_found());
        }
        Ok(Self {
            integration: found.integration.clone().ok_or_else(|| no_integration(key))?,
            connection: found.connection.clone().ok_or_else(|| no_connection(tenant, key))?,
            credential: found.credential.clone(),
        })
    }

    /// The three parts, borrowed.
    pub(crate) fn parts(&self) -> (&IntegrationRecord, &ConnectionRecord, Option<&CredentialRecord>) {
        (&self.integration, &self.connection, self.credential.as_deref())
    }
}

/// A connection ready to be used, and the reader it came from (for the
/// secrets of the same view).
pub(crate) struct UsableConnection<'a> {
    pub reader: ViewReader<'a>,
    pub connection: Connection,
}

impl Tessera {
    /// The tenant a call acts for: a tenant-bound caller's own (naming
    /// another is a 404, audited); an admin names it (`field` says where).
    pub(crate) async fn caller_tenant(
        &self,
        ctx: &Ctx,
        named: Option<&str>,
        field: &str,
        how: &str,
    ) -> Result<TenantId, ServiceError> {
        match (&ctx.principal.tenant, named) {
            (Some(own), Some(named)) if named != own.as_str() => {
                self.audit_denial(ctx, None, Err(ServiceError::tenant_not_found())).await?;
                Err(ServiceError::tenant_not_found())
            }
            (Some(own), _) => Ok(own.clone()),
            (None, Some(named)) => TenantId::parse(named),
            (None, None) => {
                Err(ServiceError::invalid(ErrorCode::MissingTenant, format!("name the tenant with {how}"), Some(field)))
            }
        }
    }

    /// The tenant's connection with an access token that has not expired (and,
    /// given `stale_before`, was stored after it: an upstream just refused the
    /// older one), refreshed first when needed. One statement unless a
    /// refresh happened (none when cached). A disabled connection is refused.
    pub(crate) async fn usable_connection(
        &self,
        tenant: &TenantId,
        key: &IntegrationKey,
        stale_before: Option<DateTime<Utc>>,
    ) -> Result<UsableConnection<'_>, ServiceError> {
        let mut reader = ViewReader::new(self);
        let mut found = Connection::of(&*reader.context(tenant, key).await?, tenant, key)?;
        let now = Utc::now();
        let needs_refresh = found
            .credential
            .as_deref()
            .is_some_and(|c| stale_before.is_some_and(|t| c.updated_at < t) || super::refresh::is_expired(c, now));
        if needs_refresh {
            reader.finish().await?;
            self.refresh_stale(tenant, key, stale_before).await?;
            reader = ViewReader::uncached(self);
            found = Connection::of(&*reader.context(tenant, key).await?, tenant, key)?;
        }
        if !found.connection.is_enabled {
            return Err(ServiceError::conflict(
                ErrorCode::ConnectionDisabled,
                format!("the connection of {tenant} to {key} is disabled"),
            ));
        }
        Ok(UsableConnection { reader, connection: found })
    }

    /// Records a use of the connection (`lastUsedAt`), at most once per
    /// throttle interval: a write per call would cost more than the call.
    pub(crate) async fn touch_throttled(&self, tenant: &TenantId, key: &IntegrationKey) -> Result<(), ServiceError> {
        let touch_key = (tenant.to_string(), key.to_string());
        if self.recent_touches.get(&touch_key).is_none() {
            self.recent_touches.insert(touch_key, ());
            // Nothing a cached view shows.
            let mut tx = self.store.begin_log_write().await?;
            tx.touch_connection(tenant.as_str(), key.as_str(), Utc::now()).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}
