//! Backfill (seed 003 task 3): values stored as plain config in fields the
//! schema now marks secret are encrypted into the secret store and removed
//! from the plain config, for the defaults and every tenant. Idempotent.

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::configs::SecretOp;
use super::{rfc3339, Ctx, Tessera};
use crate::domain::{ConfigMeta, FieldMeta};
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, TenantId};
use crate::schema::ConfigSchema;

/// What a backfill found and did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackfillReport {
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Integrations looked at.
    pub integrations: u64,
    /// Plain values found in secret fields.
    pub found: u64,
    /// Values encrypted and removed from plain config (0 in a dry run).
    pub encrypted: u64,
}

/// Moves plaintext secret fields out of `public`; returns the secret writes.
fn extract(
    schema: &ConfigSchema,
    public: &mut Map<String, Value>,
    meta: &mut ConfigMeta,
    actor: &str,
) -> Vec<SecretOp> {
    let keys: Vec<String> = public.keys().filter(|k| schema.is_secret(k)).cloned().collect();
    let now = rfc3339(Utc::now());
    keys.into_iter()
        .filter_map(|k| {
            let v = public.remove(&k)?;
            meta.insert(
                k.clone(),
                FieldMeta { updated_at: Some(now.clone()), updated_by: Some(actor.to_owned()), secret: true },
            );
            Some(SecretOp::Put(k, v))
        })
        .collect()
}

impl Tessera {
    /// Runs the backfill (admin), one transaction per defaults row or connection.
    pub async fn backfill(&self, ctx: &Ctx, dry_run: bool) -> Result<BackfillReport, ServiceError> {
        self.allow_admin(ctx).await?;
        let mut report = BackfillReport { dry_run, ..BackfillReport::default() };
        let mut tx = self.store.begin_read().await?;
        let integrations = tx.list_integrations().await?;
        let mut owners: Vec<(String, Option<String>)> = Vec::new();
        for i in &integrations {
            let schema = &i.config_schema;
            let count = |public: &Map<String, Value>| public.keys().filter(|k| schema.is_secret(k)).count() as u64;
            let n = count(&i.defaults);
            if n > 0 {
                owners.push((i.key.clone(), None));
                report.found += n;
            }
            for c in tx.find_connections(&i.key, &[]).await? {
                let n = count(&c.config);
                if n > 0 {
                    owners.push((i.key.clone(), Some(c.tenant_id.clone())));
                    report.found += n;
                }
            }
        }
        tx.commit().await?;
        report.integrations = integrations.len() as u64;
        if dry_run {
            return Ok(report);
        }
        for (integration, tenant) in owners {
            report.encrypted += self.backfill_one(ctx, &integration, tenant.as_deref()).await?;
        }
        Ok(report)
    }

    async fn backfill_one(&self, ctx: &Ctx, integration: &str, tenant: Option<&str>) -> Result<u64, ServiceError> {
        let key = IntegrationKey::parse(integration)?;
        let owner = tenant.map_or_else(|| Ok(TenantId::platform()), TenantId::parse)?;
        let resource = match tenant {
            Some(t) => format!("tenants/{t}/integrations/{key}/config"),
            None => format!("integrations/{key}/defaults"),
        };
        self.audit_before_external_write(ctx, "config.backfill", &owner, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let mut record = Self::require_integration(tx.as_mut(), &key).await?;
        let schema = &record.config_schema;
        let actor = ctx.principal.id.clone();
        let moved = match tenant {
            None => {
                let ops = extract(schema, &mut record.defaults, &mut record.defaults_meta, &actor);
                let n = ops.len() as u64;
                self.apply_secret_ops(tx.as_mut(), ctx, &owner, &key, ops).await?;
                tx.update_integration(&record).await?;
                n
            }
            Some(t) => {
                let Some(mut conn) = tx.get_connection(t, key.as_str()).await? else { return Ok(0) };
                let ops = extract(schema, &mut conn.config, &mut conn.config_meta, &actor);
                let n = ops.len() as u64;
                self.apply_secret_ops(tx.as_mut(), ctx, &owner, &key, ops).await?;
                tx.upsert_connection(&conn).await?;
                n
            }
        };
        let event_tenant = tenant.map(str::to_owned);
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("config.backfill", event_tenant.as_deref(), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(moved)
    }
}
