//! Tenant data key versions: rotate (new writes use the newest; every older
//! version still decrypts) and list.

use super::{rfc3339, Ctx, KeyVersionView, KeysView, Tessera};
use crate::audit::append_in_tx;
use crate::error::ServiceError;
use crate::ids::TenantId;

impl Tessera {
    /// `POST /tenants/{t}/keys/rotate` (admin).
    pub async fn rotate_tenant_key(&self, ctx: &Ctx, tenant: &str) -> Result<KeyVersionView, ServiceError> {
        self.allow_admin(ctx).await?;
        let tenant = TenantId::parse(tenant)?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let record = self.keyring.add_version(tx.as_mut(), tenant.as_str()).await?;
        let resource = format!("tenants/{tenant}/keys/v{}", record.version);
        append_in_tx(tx.as_mut(), vec![ctx.event("key.rotate", Some(tenant.as_str()), resource, "success")]).await?;
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
