//! The integration registry and tenant connections.

use std::sync::{Arc, LazyLock};

use crate::db::{query, Row};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tessera_core::ports::{
    ConnectionContext, ConnectionRecord, ConnectionRepo, IntegrationRecord, IntegrationRepo, StoreResult,
};

use crate::credentials::{credential_columns, credential_from};
use crate::tx::{json_map, json_of, json_text, json_value, micros, opt_time, time, to_json, word, SqlTx};
use tessera_core::domain::{AuthType, Health};
use tessera_core::ports::StoreError;
use tessera_core::schema::ConfigSchema;

fn health(stored: Option<String>) -> StoreResult<Option<Health>> {
    stored.map(|h| word(&h, Health::parse, "health_status")).transpose()
}
use crate::Dialect;

fn integration(row: &Row) -> StoreResult<IntegrationRecord> {
    Ok(IntegrationRecord {
        key: row.get("integration_key")?,
        name: row.get("name")?,
        category: row.get("category")?,
        auth_type: word(&row.get::<String>("auth_type")?, AuthType::parse, "auth_type")?,
        config_schema: ConfigSchema::from_stored(&json_value(&row.get::<String>("config_schema")?)?)
            .map_err(|e| StoreError::Other(format!("the stored config_schema is unreadable: {}", e.message)))?,
        defaults: json_map(&row.get::<String>("defaults")?)?,
        defaults_meta: json_of(&row.get::<String>("defaults_meta")?, "defaults_meta")?,
        settings: json_map(&row.get::<String>("settings")?)?,
        created_at: time(row.get("created_at")?),
        updated_at: time(row.get("updated_at")?),
    })
}

/// The columns of a connection row, in [`ConnectionRecord`]'s field order.
type ConnectionCols = [&'static str; 11];

/// As [`connection_select`] names them.
const CONNECTION_COLS: ConnectionCols = [
    "tenant_id",
    "integration_key",
    "config",
    "config_meta",
    "is_enabled",
    "health_status",
    "last_health_check",
    "created_at",
    "updated_at",
    "last_used_at",
    "connected_by",
];

/// As [`context_select`] names them, beside the integration's columns.
const CONTEXT_CONNECTION_COLS: ConnectionCols = [
    "c_tenant_id",
    "c_integration_key",
    "c_config",
    "c_config_meta",
    "c_is_enabled",
    "c_health_status",
    "c_last_health_check",
    "c_created_at",
    "c_updated_at",
    "c_last_used_at",
    "c_connected_by",
];

fn connection(row: &Row) -> StoreResult<ConnectionRecord> {
    connection_from(row, &CONNECTION_COLS)
}

fn connection_from(row: &Row, c: &ConnectionCols) -> StoreResult<ConnectionRecord> {
    Ok(ConnectionRecord {
        tenant_id: row.get(c[0])?,
        integration_key: row.get(c[1])?,
        config: json_map(&row.get::<String>(c[2])?)?,
        config_meta: json_of(&row.get::<String>(c[3])?, "config_meta")?,
        is_enabled: row.get::<i64>(c[4])? == 1,
        health_status: health(row.get(c[5])?)?,
        last_health_check: opt_time(row.get(c[6])?),
        created_at: time(row.get(c[7])?),
        updated_at: time(row.get(c[8])?),
        last_used_at: opt_time(row.get(c[9])?),
        connected_by: row.get::<Option<String>>(c[10])?.as_deref().map(json_value).transpose()?,
    })
}

fn integration_select(d: Dialect) -> String {
    format!(
        "SELECT integration_key, name, category, auth_type, {} AS config_schema, {} AS defaults, {} AS defaults_meta, \
         {} AS settings, created_at, updated_at FROM integrations",
        d.json_col("config_schema"),
        d.json_col("defaults"),
        d.json_col("defaults_meta"),
        d.json_col("settings"),
    )
}

fn connection_select(d: Dialect) -> String {
    format!(
        "SELECT tenant_id, integration_key, {} AS config, {} AS config_meta, is_enabled, health_status, \
         last_health_check, created_at, updated_at, last_used_at, {} AS connected_by FROM connections",
        d.json_col("config"),
        d.json_col("config_meta"),
        d.json_col("connected_by"),
    )
}

/// One row whatever exists: the tenant's id, the integration's columns as
/// [`integration_select`] names them, and the connection's as
/// [`CONTEXT_CONNECTION_COLS`] names them; NULLs for what is missing.
fn context_select(d: Dialect) -> String {
    format!(
        "SELECT t.id AS t_id, t.incarnation AS t_incarnation, \
         i.integration_key AS integration_key, i.name AS name, i.category AS category, i.auth_type AS auth_type, \
         {} AS config_schema, {} AS defaults, {} AS defaults_meta, {} AS settings, i.created_at AS created_at, \
         i.updated_at AS updated_at, \
         c.tenant_id AS c_tenant_id, c.integration_key AS c_integration_key, {} AS c_config, \
         {} AS c_config_meta, c.is_enabled AS c_is_enabled, c.health_status AS c_health_status, \
         c.last_health_check AS c_last_health_check, c.created_at AS c_created_at, c.updated_at AS c_updated_at, \
         c.last_used_at AS c_last_used_at, {} AS c_connected_by, {} \
         FROM (SELECT 1 AS one) AS k \
         LEFT JOIN tenants t ON t.id = $1 \
         LEFT JOIN integrations i ON i.integration_key = $2 \
         LEFT JOIN connections c ON c.tenant_id = $1 AND c.integration_key = $2 \
         LEFT JOIN credentials cr ON cr.tenant_id = $1 AND cr.integration_key = $2",
        d.json_col("i.config_schema"),
        d.json_col("i.defaults"),
        d.json_col("i.defaults_meta"),
        d.json_col("i.settings"),
        d.json_col("c.config"),
        d.json_col("c.config_meta"),
        d.json_col("c.connected_by"),
        credential_columns(d, "cr", "cr_"),
    )
}

static CONTEXT_SQLITE: LazyLock<String> = LazyLock::new(|| context_select(Dialect::Sqlite));
static CONTEXT_POSTGRES: LazyLock<String> = LazyLock::new(|| context_select(Dialect::Postgres));

#[async_trait]
impl IntegrationRepo for SqlTx {
    async fn insert_integration(&mut self, i: &IntegrationRecord) -> StoreResult<()> {
        let d = self.dialect;
        let sql = format!(
            "INSERT INTO integrations (integration_key, name, category, auth_type, config_schema, defaults, defaults_meta, \
             created_at, updated_at, settings) VALUES ($1, $2, $3, $4, {}, {}, {}, $8, $9, {})",
            d.json_param(5),
            d.json_param(6),
            d.json_param(7),
            d.json_param(10),
        );
        query(&sql)
            .bind(&i.key)
            .bind(&i.name)
            .bind(i.category.clone())
            .bind(i.auth_type.as_str())
            .bind(i.config_schema.normalised().to_string())
            .bind(to_json(&i.defaults))
            .bind(json_text(&i.defaults_meta))
            .bind(micros(i.created_at))
            .bind(micros(i.updated_at))
            .bind(to_json(&i.settings))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn update_integration(&mut self, i: &IntegrationRecord) -> StoreResult<()> {
        let d = self.dialect;
        let sql = format!(
            "UPDATE integrations SET name = $2, category = $3, auth_type = $4, config_schema = {}, defaults = {}, \
             defaults_meta = {}, updated_at = $8, settings = {} WHERE integration_key = $1",
            d.json_param(5),
            d.json_param(6),
            d.json_param(7),
            d.json_param(9),
        );
        query(&sql)
            .bind(&i.key)
            .bind(&i.name)
            .bind(i.category.clone())
            .bind(i.auth_type.as_str())
            .bind(i.config_schema.normalised().to_string())
            .bind(to_json(&i.defaults))
            .bind(json_text(&i.defaults_meta))
            .bind(micros(i.updated_at))
            .bind(to_json(&i.settings))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_integration(&mut self, key: &str) -> StoreResult<Option<IntegrationRecord>> {
        let sql = format!("{} WHERE integration_key = $1", integration_select(self.dialect));
        let row = query(&sql).bind(key).fetch_optional(self).await?;
        row.as_ref().map(integration).transpose()
    }

    async fn list_integrations(&mut self) -> StoreResult<Vec<IntegrationRecord>> {
        let sql = format!("{} ORDER BY integration_key", integration_select(self.dialect));
        let rows = query(&sql).fetch_all(self).await?;
        rows.iter().map(integration).collect()
    }

    async fn delete_integration(&mut self, key: &str) -> StoreResult<bool> {
        let done = query("DELETE FROM integrations WHERE integration_key = $1").bind(key).execute(self).await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl ConnectionRepo for SqlTx {
    async fn get_connection(&mut self, tenant: &str, integration: &str) -> StoreResult<Option<ConnectionRecord>> {
        let sql = format!("{} WHERE tenant_id = $1 AND integration_key = $2", connection_select(self.dialect));
        let row = query(&sql).bind(tenant).bind(integration).fetch_optional(self).await?;
        row.as_ref().map(connection).transpose()
    }

    async fn get_connection_context(&mut self, tenant: &str, key: &str) -> StoreResult<ConnectionContext> {
        let sql = match self.dialect {
            Dialect::Sqlite => CONTEXT_SQLITE.as_str(),
            Dialect::Postgres => CONTEXT_POSTGRES.as_str(),
        };
        let row = query(sql).bind(tenant).bind(key).fetch_one(self).await?;
        let present = |col: &str| row.get::<Option<String>>(col).map(|v| v.is_some());
        Ok(ConnectionContext {
            tenant_incarnation: row.get("t_incarnation")?,
            integration: if present("integration_key")? { Some(Arc::new(integration(&row)?)) } else { None },
            connection: if present("c_tenant_id")? {
                Some(Arc::new(connection_from(&row, &CONTEXT_CONNECTION_COLS)?))
            } else {
                None
            },
            credential: if present("cr_tenant_id")? { Some(Arc::new(credential_from(&row, "cr_")?)) } else { None },
        })
    }

    async fn upsert_connection(&mut self, c: &ConnectionRecord) -> StoreResult<()> {
        let d = self.dialect;
        let sql = format!(
            "INSERT INTO connections (tenant_id, integration_key, config, config_meta, is_enabled, health_status, \
             last_health_check, created_at, updated_at, last_used_at, connected_by) \
             VALUES ($1, $2, {}, {}, $5, $6, $7, $8, $9, $10, {}) \
             ON CONFLICT (tenant_id, integration_key) DO UPDATE SET config = excluded.config, \
             config_meta = excluded.config_meta, is_enabled = excluded.is_enabled, health_status = excluded.health_status, \
             last_health_check = excluded.last_health_check, updated_at = excluded.updated_at, \
             last_used_at = excluded.last_used_at, connected_by = excluded.connected_by",
            d.json_param(3),
            d.json_param(4),
            d.json_param(11),
        );
        query(&sql)
            .bind(&c.tenant_id)
            .bind(&c.integration_key)
            .bind(to_json(&c.config))
            .bind(json_text(&c.config_meta))
            .bind(i64::from(c.is_enabled))
            .bind(c.health_status.map(Health::as_str))
            .bind(c.last_health_check.map(micros))
            .bind(micros(c.created_at))
            .bind(micros(c.updated_at))
            .bind(c.last_used_at.map(micros))
            .bind(c.connected_by.as_ref().map(Value::to_string))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn list_tenant_connections(&mut self, tenant: &str) -> StoreResult<Vec<ConnectionRecord>> {
        let sql = format!("{} WHERE tenant_id = $1 ORDER BY integration_key", connection_select(self.dialect));
        let rows = query(&sql).bind(tenant).fetch_all(self).await?;
        rows.iter().map(connection).collect()
    }

    async fn find_connections(
        &mut self,
        integration: &str,
        filters: &[(String, Value)],
    ) -> StoreResult<Vec<ConnectionRecord>> {
        let base = connection_select(self.dialect);
        let rows = match self.dialect {
            Dialect::Postgres => {
                // One containment test, served by the GIN index.
                let wanted: Map<String, Value> = filters.iter().cloned().collect();
                let sql = format!("{base} WHERE integration_key = $1 AND config @> $2::jsonb ORDER BY tenant_id");
                query(&sql).bind(integration).bind(to_json(&wanted)).fetch_all(self).await?
            }
            Dialect::Sqlite => {
                // Each filter compares JSON type and value at a bound path.
                let mut sql = format!("{base} WHERE integration_key = $1");
                for i in 0..filters.len() {
                    let (p, v) = (2 + 2 * i, 3 + 2 * i);
                    sql.push_str(&format!(
                        " AND json_type(config, ${p}) = json_type(${v}, '$') AND json_extract(config, ${p}) IS json_extract(${v}, '$')"
                    ));
                }
                sql.push_str(" ORDER BY tenant_id");
                let mut q = query(&sql).bind(integration);
                for (field, value) in filters {
                    q = q.bind(format!("$.\"{field}\"")).bind(value.to_string());
                }
                q.fetch_all(self).await?
            }
        };
        rows.iter().map(connection).collect()
    }

    async fn delete_connection(&mut self, tenant: &str, integration: &str) -> StoreResult<bool> {
        let done = query("DELETE FROM connections WHERE tenant_id = $1 AND integration_key = $2")
            .bind(tenant)
            .bind(integration)
            .execute(self)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_connection(&mut self, tenant: &str, integration: &str, at: DateTime<Utc>) -> StoreResult<()> {
        query("UPDATE connections SET last_used_at = $3 WHERE tenant_id = $1 AND integration_key = $2")
            .bind(tenant)
            .bind(integration)
            .bind(micros(at))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn claim_due_health_checks(
        &mut self,
        integration: &str,
        due_before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let skip_locked = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE connections SET last_health_check = $3 \
             WHERE integration_key = $1 AND tenant_id IN (SELECT tenant_id FROM connections \
             WHERE integration_key = $1 AND is_enabled = 1 AND (last_health_check IS NULL OR last_health_check < $2) \
             ORDER BY last_health_check NULLS FIRST LIMIT $4{skip_locked}) RETURNING tenant_id"
        );
        let rows = query(&sql)
            .bind(integration)
            .bind(micros(due_before))
            .bind(micros(now))
            .bind(limit)
            .fetch_all(self)
            .await?;
        rows.iter().map(|r| r.get(0)).collect()
    }

    async fn list_connection_health(&mut self) -> StoreResult<Vec<(String, String, Option<Health>)>> {
        let rows = query(
            "SELECT tenant_id, integration_key, health_status FROM connections WHERE tenant_id <> '_platform' \
             ORDER BY tenant_id, integration_key",
        )
        .fetch_all(self)
        .await?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, health(r.get(2)?)?))).collect()
    }

    async fn count_health(&mut self) -> StoreResult<(i64, Vec<(Option<Health>, i64)>)> {
        let tenants: i64 =
            query("SELECT COUNT(*) FROM tenants WHERE id <> '_platform'").fetch_one(self).await?.get(0)?;
        let rows = query(
            "SELECT health_status, COUNT(*) FROM connections WHERE tenant_id <> '_platform' GROUP BY health_status",
        )
        .fetch_all(self)
        .await?;
        let by_status = rows.iter().map(|r| Ok((health(r.get(0)?)?, r.get(1)?))).collect::<StoreResult<_>>()?;
        Ok((tenants, by_status))
    }
}
