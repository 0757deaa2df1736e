//! API keys: created with a role (and a tenant for tenant-bound roles),
//! shown once, stored as a hash.

use chrono::Utc;
use secrecy::SecretString;

use super::{ApiKeyView, Ctx, Tessera};
use crate::access::{generate_api_key, Role};
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::ports::ApiKeyRecord;

/// A key just created: the only time its value is available.
pub struct CreatedApiKey {
    /// Public metadata.
    pub view: ApiKeyView,
    /// The key itself.
    pub key: SecretString,
}

impl Tessera {
    /// `POST /api-keys`. Admins create any key; a tenant admin creates
    /// tenant-bound keys for its own tenant.
    pub async fn create_api_key(
        &self,
        ctx: &Ctx,
        name: &str,
        role: &str,
        tenant: Option<&str>,
    ) -> Result<CreatedApiKey, ServiceError> {
        let role = Role::parse(role)?;
        let name = crate::ids::display_name(name)?;
        let tenant = match (role.is_tenant_bound(), tenant) {
            (true, Some(t)) => Some(TenantId::parse(t)?),
            (true, None) => {
                return Err(ServiceError::invalid(
                    "tenant_required",
                    "a tenant_admin or tenant_service key needs a tenantId",
                    Some("tenantId"),
                ))
            }
            (false, Some(_)) => {
                return Err(ServiceError::invalid(
                    "tenant_not_allowed",
                    "admin and auditor keys are not bound to a tenant",
                    Some("tenantId"),
                ))
            }
            (false, None) => None,
        };
        if ctx.principal.role != Role::Admin {
            // Naming another tenant is "not found" before any role check, so
            // tenant ids cannot be probed; then only a tenant admin may mint
            // tenant-bound keys, and only for its own tenant.
            if let Some(t) = &tenant {
                self.allow_tenant(ctx, t).await?;
            }
            match (&ctx.principal.role, &tenant) {
                (Role::TenantAdmin, Some(t)) => self.allow_tenant_write(ctx, t).await?,
                _ => self.allow_admin(ctx).await?,
            }
        }
        let mut tx = self.store.begin_write().await?;
        if let Some(t) = &tenant {
            Self::require_tenant(tx.as_mut(), t).await?;
        }
        let created = generate_api_key();
        let record = ApiKeyRecord {
            id: format!("key_{}", uuid::Uuid::new_v4().simple()),
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            tenant_id: tenant.as_ref().map(ToString::to_string),
            key_hash: created.hash,
            created_at: Utc::now(),
            last_used_at: None,
            created_by: ctx.principal.id.clone(),
        };
        tx.insert_api_key(&record).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "apikey.create",
                    record.tenant_id.as_deref(),
                    format!("api-keys/{}", record.id),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(CreatedApiKey { view: record.into(), key: created.key })
    }

    /// `GET /api-keys`: every key for admins, its tenant's for a tenant admin.
    pub async fn list_api_keys(&self, ctx: &Ctx) -> Result<Vec<ApiKeyView>, ServiceError> {
        let scope = match ctx.principal.role {
            Role::Admin => None,
            Role::TenantAdmin => ctx.principal.tenant.clone(),
            _ => return self.allow_admin(ctx).await.map(|()| Vec::new()),
        };
        let mut tx = self.store.begin_read().await?;
        let keys = tx.list_api_keys(scope.as_ref().map(TenantId::as_str)).await?;
        tx.commit().await?;
        Ok(keys.into_iter().map(Into::into).collect())
    }

    /// `DELETE /api-keys/{id}`.
    pub async fn delete_api_key(&self, ctx: &Ctx, id: &str) -> Result<(), ServiceError> {
        if !matches!(ctx.principal.role, Role::Admin | Role::TenantAdmin) {
            self.allow_admin(ctx).await?;
        }
        let mut tx = self.store.begin_write().await?;
        let not_found = || ServiceError::not_found("api_key_not_found", "no such API key");
        let record = tx.get_api_key(id).await?.ok_or_else(not_found)?;
        if ctx.principal.role == Role::TenantAdmin {
            let own = ctx.principal.tenant.as_ref().map(TenantId::as_str);
            if record.tenant_id.as_deref() != own {
                return Err(not_found());
            }
        }
        tx.delete_api_key(id).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("apikey.delete", record.tenant_id.as_deref(), format!("api-keys/{id}"), "success")],
            )
            .await?;
        tx.commit().await?;
        self.forget_principal(&record.key_hash);
        Ok(())
    }

    /// On an empty store with no root token, creates the first admin key
    /// (printed once by the binary). Returns none when keys already exist.
    pub async fn bootstrap_admin_key(&self) -> Result<Option<SecretString>, ServiceError> {
        let mut tx = self.store.begin_write().await?;
        if tx.count_api_keys().await? > 0 {
            return Ok(None);
        }
        let created = generate_api_key();
        let record = ApiKeyRecord {
            id: format!("key_{}", uuid::Uuid::new_v4().simple()),
            name: "initial admin".into(),
            role: Role::Admin.as_str().into(),
            tenant_id: None,
            key_hash: created.hash,
            created_at: Utc::now(),
            last_used_at: None,
            created_by: "bootstrap".into(),
        };
        tx.insert_api_key(&record).await?;
        let ctx = Ctx::cli();
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("apikey.create", None, format!("api-keys/{}", record.id), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(created.key))
    }
}
