//! Connections: a tenant's overrides of an integration's config, the
//! connection view, seed 001's list, the resolved (decrypted) view, and
//! queries over public config.

use crate::ErrorCode;
use chrono::Utc;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use zeroize::Zeroizing;

use super::configs::{apply_change, check_required, mask_secret_fields};
use super::usage::Connection;
use super::{
    rfc3339, usage_stats, ConnectionMatch, ConnectionView, Ctx, TenantIntegrationItem, TenantIntegrations, Tessera,
};
use crate::access::Access;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, SecretPath, TenantId};
use crate::ports::{ConnectionRecord, CredentialRecord, IntegrationRecord, StoreTx};
use crate::schema::ConfigSchema;
use crate::secret_json::SecretJson;

/// Most `config.<field>=` filters in one connection query.
const MAX_FILTERS: usize = 8;

impl Tessera {
    /// `PUT /tenants/{t}/integrations/{key}/config`.
    pub async fn put_connection_config(
        &self,
        ctx: &Ctx,
        tenant: &str,
        key: &str,
        config: Map<String, Value>,
        is_enabled: Option<bool>,
    ) -> Result<ConnectionView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Write).await?;
        let resource = format!("tenants/{tenant}/integrations/{key}/config");
        self.audit_before_external_write(ctx, "config.update", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let (mut conn, schema, _) =
            self.write_connection_config(tx.as_mut(), ctx, &tenant, &key, &config, is_enabled, &resource).await?;
        tx.commit().await?;
        mask_secret_fields(&schema, &mut conn.config);
        Ok(conn.into())
    }

    /// Applies a config change to a connection inside `tx` (secret fields
    /// to the secret store), creating the connection if needed, and appends
    /// its `config.update` event (`resource` names the change; the changed
    /// fields are added to it). Returns the connection, the integration's
    /// schema, and whether the connection is new.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_connection_config(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
        config: &Map<String, Value>,
        is_enabled: Option<bool>,
        resource: &str,
    ) -> Result<(ConnectionRecord, ConfigSchema, bool), ServiceError> {
        Self::require_tenant(tx, tenant).await?;
        let integration = Self::require_integration(tx, key).await?;
        let schema = &integration.config_schema;
        let now = Utc::now();
        let existing = tx.get_connection(tenant.as_str(), key.as_str()).await?;
        let created = existing.is_none();
        let mut conn = existing.unwrap_or_else(|| ConnectionRecord::new(tenant.as_str(), key.as_str(), now));
        let ops = apply_change(schema, config, &mut conn.config, &mut conn.config_meta, &ctx.principal.id, now)?;
        check_required(
            schema,
            &[(&integration.defaults, &integration.defaults_meta), (&conn.config, &conn.config_meta)],
        )?;
        self.apply_secret_ops(tx, ctx, tenant, key, ops).await?;
        if let Some(enabled) = is_enabled {
            conn.is_enabled = enabled;
        }
        conn.updated_at = now;
        tx.upsert_connection(&conn).await?;
        let fields = config.keys().cloned().collect::<Vec<_>>().join(",");
        let sep = if resource.contains('?') { '&' } else { '?' };
        let event =
            ctx.event("config.update", Some(tenant.as_str()), format!("{resource}{sep}fields={fields}"), "success");
        self.audit.append_in_tx(tx, vec![event]).await?;
        Ok((conn, integration.config_schema, created))
    }

    /// `GET /tenants/{t}/integrations/{key}`.
    pub async fn get_connection(&self, ctx: &Ctx, tenant: &str, key: &str) -> Result<ConnectionView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Read).await?;
        let mut tx = self.store.read().await?;
        let (integration, mut conn, cred) = Self::require_connection(tx.as_mut(), &tenant, &key).await?;
        tx.commit().await?;
        mask_secret_fields(&integration.config_schema, &mut conn.config);
        Ok(ConnectionView::with_credential(conn, cred.as_ref()))
    }

    /// `DELETE /tenants/{t}/integrations/{key}`: removes the connection and
    /// its secret values (encrypted config goes with the integration).
    pub async fn delete_connection(&self, ctx: &Ctx, tenant: &str, key: &str) -> Result<(), ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Write).await?;
        let resource = format!("tenants/{tenant}/integrations/{key}");
        self.audit_before_external_write(ctx, "connection.delete", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let conn =
            tx.get_connection(tenant.as_str(), key.as_str()).await?.ok_or_else(|| no_connection(&tenant, &key))?;
        for field in conn.config_meta.keys() {
            self.secrets.remove(tx.as_mut(), tenant.as_str(), SecretPath::config_field(&key, field).as_str()).await?;
        }
        self.secrets.remove(tx.as_mut(), tenant.as_str(), SecretPath::credentials(&key).as_str()).await?;
        tx.delete_connection(tenant.as_str(), key.as_str()).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "connection.delete",
                    Some(tenant.as_str()),
                    format!("tenants/{tenant}/integrations/{key}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `GET /tenants/{t}/integrations`: every registered
    /// integration, with this tenant's connection state.
    pub async fn list_tenant_integrations(&self, ctx: &Ctx, tenant: &str) -> Result<TenantIntegrations, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        self.allow_tenant(ctx, &tenant).await?;
        let mut tx = self.store.begin_read().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let integrations = tx.list_integrations().await?;
        let connections = tx.list_tenant_connections(tenant.as_str()).await?;
        let credentials = tx.list_tenant_credentials(tenant.as_str()).await?;
        tx.commit().await?;
        let items = integrations
            .into_iter()
            .map(|i| {
                let cred = credentials.iter().find(|c| c.integration_key == i.key);
                let conn = connections
                    .iter()
                    .find(|c| c.integration_key == i.key)
                    .cloned()
                    .map(|c| ConnectionView::with_credential(c, cred));
                TenantIntegrationItem {
                    name: i.key,
                    display_name: i.name,
                    category: i.category,
                    has_credentials: conn.as_ref().is_some_and(|c| c.has_credentials),
                    connected: conn.is_some(),
                    is_enabled: conn.as_ref().map(|c| c.is_enabled),
                    // Seed 001: when the credentials were stored (else when the connection was made).
                    created_at: cred
                        .map(|c| rfc3339(c.created_at))
                        .or_else(|| conn.as_ref().map(|c| c.created_at.clone())),
                    expires_at: conn.as_ref().map(|_| cred.and_then(|c| c.expires_at).map(rfc3339)),
                    needs_reauth: cred.map(|c| c.needs_reauth).filter(|n| *n),
                    last_health_check: conn.as_ref().and_then(|c| c.last_health_check.clone()),
                    last_used_at: conn.as_ref().and_then(|c| c.last_used_at.clone()),
                    health_status: conn.and_then(|c| c.health_status),
                }
            })
            .collect();
        Ok(TenantIntegrations { tenant_id: tenant.to_string(), integrations: items })
    }

    /// `GET /tenants/{t}/integrations/{key}/resolved` (the SDK view):
    /// `{"tenantId","integration","config"}` with secrets decrypted. Audited;
    /// the answer is returned only once the audit event is durable.
    pub async fn resolve(&self, ctx: &Ctx, tenant: &str, key: &str) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Read).await?;
        let resource = format!("tenants/{tenant}/integrations/{key}/resolved");
        let result = self.resolve_inner(&tenant, &key).await;
        let outcome = if result.is_ok() { "success" } else { "failure" };
        if result.is_ok() {
            self.count_use(&tenant, &key, usage_stats::Use::Resolve);
        }
        self.audit.record(ctx.event("config.resolve", Some(tenant.as_str()), resource, outcome)).await?;
        let config = result?;
        let mut doc = SecretJson::new();
        doc.public("tenantId", &json!(tenant.as_str()));
        doc.public("integration", &json!(key.as_str()));
        doc.object("config", config);
        Ok(doc.finish())
    }

    async fn resolve_inner(&self, tenant: &TenantId, key: &IntegrationKey) -> Result<SecretJson, ServiceError> {
        // No snapshot needed (as on PostgreSQL at READ COMMITTED): each secret
        // is read head and version in one statement.
        let super::usage::UsableConnection { mut reader, connection } =
            self.usable_connection(tenant, key, None).await?;
        let (integration, conn, cred) = connection.parts();
        let schema = &integration.config_schema;
        let doc = self
            .merge_resolved(&mut reader, integration, schema, tenant, (&conn.config, &conn.config_meta), cred)
            .await?;
        reader.finish().await?;
        Ok(doc)
    }

    /// The integration and the tenant's connection to it, in one statement;
    /// the errors of `require_tenant`, `require_integration` and a missing
    /// connection, in that order.
    pub(crate) async fn require_connection(
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        key: &IntegrationKey,
    ) -> Result<(IntegrationRecord, ConnectionRecord, Option<CredentialRecord>), ServiceError> {
        let found = tx.get_connection_context(tenant.as_str(), key.as_str()).await?;
        let found = Connection::of(&found, tenant, key)?;
        Ok((
            Arc::unwrap_or_clone(found.integration),
            Arc::unwrap_or_clone(found.connection),
            found.credential.map(Arc::unwrap_or_clone),
        ))
    }

    /// `GET /integrations/{key}/connections?config.<field>=<value>` (admin):
    /// tenants whose public config matches every filter. A value is compared
    /// as JSON when it parses as JSON (`30`, `true`), else as a string.
    pub async fn find_connections(
        &self,
        ctx: &Ctx,
        key: &str,
        filters: Vec<(String, String)>,
    ) -> Result<Vec<ConnectionMatch>, ServiceError> {
        self.allow_admin(ctx).await?;
        let key = IntegrationKey::parse(key)?;
        if filters.len() > MAX_FILTERS {
            return Err(ServiceError::invalid(ErrorCode::TooManyFilters, "at most 8 config filters", None));
        }
        let mut tx = self.store.begin_read().await?;
        let integration = Self::require_integration(tx.as_mut(), &key).await?;
        let schema = &integration.config_schema;
        let mut typed = Vec::with_capacity(filters.len());
        for (field, raw) in filters {
            let spec = schema.field(&field).ok_or_else(|| {
                ServiceError::invalid(
                    ErrorCode::UnknownField,
                    format!("{field} is not a property of {key}"),
                    Some(&format!("config.{field}")),
                )
            })?;
            if spec.secret {
                return Err(ServiceError::invalid(
                    ErrorCode::SecretNotQueryable,
                    "secret fields cannot be queried",
                    Some(&format!("config.{field}")),
                ));
            }
            let value = match spec.field_type {
                crate::schema::FieldType::String => Value::String(raw),
                _ => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
            };
            typed.push((field, value));
        }
        let found = tx.find_connections(key.as_str(), &typed).await?;
        tx.commit().await?;
        Ok(found
            .into_iter()
            .map(|mut c| {
                mask_secret_fields(schema, &mut c.config);
                ConnectionMatch { tenant_id: c.tenant_id, config: c.config, is_enabled: c.is_enabled }
            })
            .collect())
    }
}

pub(crate) fn no_connection(tenant: &TenantId, key: &IntegrationKey) -> ServiceError {
    ServiceError::not_found(ErrorCode::ConnectionNotFound, format!("tenant {tenant} has no connection to {key}"))
}
