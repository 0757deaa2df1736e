//! Tenants: create (with its first data key), list, read, delete (crypto-shredding).

use super::{Ctx, TenantView, Tessera};
use crate::error::ServiceError;
use crate::ids::{display_name, TenantId};
use crate::ports::TenantRecord;
use crate::ErrorCode;

impl Tessera {
    /// Creates a tenant and its first data key.
    pub async fn create_tenant(&self, ctx: &Ctx, id: &str, name: &str) -> Result<TenantView, ServiceError> {
        self.allow_admin(ctx).await?;
        let id = TenantId::parse_new(id)?;
        let name = display_name(name)?;
        let record = TenantRecord::new(id.as_str(), name);
        let mut tx = self.store.begin_write().await?;
        tx.insert_tenant(&record).await.map_err(|e| match e {
            crate::ports::StoreError::Conflict(_) => {
                ServiceError::conflict(ErrorCode::TenantExists, format!("tenant {id} already exists"))
            }
            other => other.into(),
        })?;
        self.keyring.add_version(tx.as_mut(), id.as_str()).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("tenant.create", Some(id.as_str()), format!("tenants/{id}"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(record.into())
    }

    /// Tenants the caller may see: all for admins and auditors, its own for a tenant-bound key.
    pub async fn list_tenants(&self, ctx: &Ctx) -> Result<Vec<TenantView>, ServiceError> {
        let mut tx = self.store.begin_read().await?;
        let all = tx.list_tenants().await?;
        tx.commit().await?;
        Ok(all
            .into_iter()
            .filter(|t| match &ctx.principal.tenant {
                Some(own) => own.as_str() == t.id,
                None => true,
            })
            .map(Into::into)
            .collect())
    }

    /// A page of the tenants the caller may see, by id: those whose id
    /// starts with, or whose name contains, `search` (case-insensitive);
    /// keyset paging after the id `after`. Returns the page and the id to
    /// continue after, if there may be more.
    pub async fn list_tenants_page(
        &self,
        ctx: &Ctx,
        search: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<TenantView>, Option<String>), ServiceError> {
        let limit = limit.clamp(1, 500);
        if let Some(own) = &ctx.principal.tenant {
            let one = self.get_tenant(ctx, own.as_str()).await?;
            let matches = search.is_none_or(|q| {
                one.id.starts_with(&q.to_lowercase()) || one.name.to_lowercase().contains(&q.to_lowercase())
            });
            let first_page = after.is_none_or(|a| one.id.as_str() > a);
            return Ok((if matches && first_page { vec![one] } else { Vec::new() }, None));
        }
        let search = search.map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
        let mut tx = self.store.read().await?;
        let page = tx.list_tenants_page(search.as_deref(), after, i64::try_from(limit).unwrap_or(500)).await?;
        tx.commit().await?;
        let next = (page.len() == limit).then(|| page.last().map(|t| t.id.clone())).flatten();
        Ok((page.into_iter().map(Into::into).collect(), next))
    }

    /// One tenant.
    pub async fn get_tenant(&self, ctx: &Ctx, id: &str) -> Result<TenantView, ServiceError> {
        let id = TenantId::parse(id)?;
        self.allow_tenant(ctx, &id).await?;
        let mut tx = self.store.begin_read().await?;
        let t = tx.get_tenant(id.as_str()).await?.ok_or_else(ServiceError::tenant_not_found)?;
        tx.commit().await?;
        Ok(t.into())
    }

    /// Deletes a tenant: its data keys go first, so its ciphertext is
    /// unreadable anywhere it may have been copied.
    pub async fn delete_tenant(&self, ctx: &Ctx, id: &str) -> Result<(), ServiceError> {
        self.allow_admin(ctx).await?;
        let id = TenantId::parse(id)?;
        if id.is_platform() {
            return Err(ServiceError::conflict(ErrorCode::ReservedTenant, "the _platform tenant cannot be deleted"));
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.delete_tenant(id.as_str()).await? {
            return Err(ServiceError::tenant_not_found());
        }
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("tenant.delete", Some(id.as_str()), format!("tenants/{id}"), "success")],
            )
            .await?;
        tx.commit().await?;
        self.keyring.forget_tenant(id.as_str());
        // The data keys are gone: what a backend still holds is unreadable.
        // Remove it too; a failure here loses nothing and is only logged.
        if let Err(e) = self.secrets.remove_tenant(id.as_str()).await {
            tracing::warn!(tenant = %id, error = %e, "could not remove a deleted tenant's ciphertext from the credential backend");
        }
        Ok(())
    }

    /// Loads a tenant inside a transaction or answers "no such tenant".
    pub(crate) async fn require_tenant(
        tx: &mut dyn crate::ports::StoreTx,
        id: &TenantId,
    ) -> Result<TenantRecord, ServiceError> {
        tx.get_tenant(id.as_str()).await?.ok_or_else(ServiceError::tenant_not_found)
    }
}
