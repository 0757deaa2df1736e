//! Usage counts per tenant, integration, kind and hour.

use async_trait::async_trait;
use tessera_core::ports::{StoreResult, UsageRecord, UsageRepo};

use crate::db::query;
use crate::tx::SqlTx;
use crate::Dialect;

#[async_trait]
impl UsageRepo for SqlTx {
    async fn add_usage(&mut self, rows: &[UsageRecord]) -> StoreResult<()> {
        for r in rows {
            query(
                "INSERT INTO usage_hourly (tenant_id, integration_key, kind, hour, count) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, integration_key, kind, hour) DO UPDATE SET count = usage_hourly.count + excluded.count",
            )
            .bind(&r.tenant_id)
            .bind(&r.integration_key)
            .bind(&r.kind)
            .bind(r.hour_micros)
            .bind(r.count)
            .execute(self)
            .await?;
        }
        Ok(())
    }

    async fn usage_since(&mut self, since_micros: i64, tenant: Option<&str>) -> StoreResult<Vec<UsageRecord>> {
        let sql =
            "SELECT integration_key, kind, hour, CAST(SUM(count) AS BIGINT) AS n FROM usage_hourly WHERE hour >= $1 \
                   AND ($2 IS NULL OR tenant_id = $2) GROUP BY integration_key, kind, hour ORDER BY hour";
        let sql = match self.dialect {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => sql.replace("($2 IS NULL", "($2::text IS NULL"),
        };
        let rows = query(&sql).bind(since_micros).bind(tenant.map(str::to_owned)).fetch_all(self).await?;
        rows.iter()
            .map(|row| {
                Ok(UsageRecord {
                    tenant_id: tenant.unwrap_or_default().to_owned(),
                    integration_key: row.get("integration_key")?,
                    kind: row.get("kind")?,
                    hour_micros: row.get("hour")?,
                    count: row.get("n")?,
                })
            })
            .collect()
    }
}
