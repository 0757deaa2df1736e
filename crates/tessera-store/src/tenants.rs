//! Tenants and their wrapped data keys.

use crate::db::{query, Row};
use async_trait::async_trait;
use tessera_core::ids::PLATFORM_TENANT;
use tessera_core::ports::{DataKeyRecord, KeyRepo, StoreError, StoreResult, TenantRecord, TenantRepo};

use crate::tx::{micros, time, word, SqlTx};
use crate::Dialect;
use tessera_core::domain::TenantStatus;

fn tenant(row: &Row) -> StoreResult<TenantRecord> {
    Ok(TenantRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        status: word(&row.get::<String>("status")?, TenantStatus::parse, "status")?,
        created_at: time(row.get("created_at")?),
        incarnation: row.get("incarnation")?,
    })
}

fn data_key(row: &Row) -> StoreResult<DataKeyRecord> {
    let version: i64 = row.get("version")?;
    Ok(DataKeyRecord {
        tenant_id: row.get("tenant_id")?,
        incarnation: row.get("incarnation")?,
        version: u32::try_from(version).unwrap_or(0),
        wrapped: row.get("wrapped")?,
        kek_id: row.get("kek_id")?,
        created_at: time(row.get("created_at")?),
    })
}

#[async_trait]
impl TenantRepo for SqlTx {
    async fn insert_tenant(&mut self, t: &TenantRecord) -> StoreResult<()> {
        query("INSERT INTO tenants (id, name, status, created_at, incarnation) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(t.status.as_str())
            .bind(micros(t.created_at))
            .bind(&t.incarnation)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_tenant(&mut self, id: &str) -> StoreResult<Option<TenantRecord>> {
        let row = query("SELECT id, name, status, created_at, incarnation FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(self)
            .await?;
        row.as_ref().map(tenant).transpose()
    }

    async fn list_tenants_page(
        &mut self,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<TenantRecord>> {
        let escaped = search.map(|s| s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let sql = "SELECT id, name, status, created_at, incarnation FROM tenants WHERE id <> $1 AND id > $2 \
                   AND ($3 IS NULL OR id LIKE $3 ESCAPE '\\' OR LOWER(name) LIKE $4 ESCAPE '\\') ORDER BY id LIMIT $5";
        let sql = match self.dialect {
            Dialect::Sqlite => sql.to_owned(),
            Dialect::Postgres => sql.replace("($3 IS NULL", "($3::text IS NULL"),
        };
        let rows = query(&sql)
            .bind(PLATFORM_TENANT)
            .bind(after.unwrap_or(""))
            .bind(escaped.as_ref().map(|e| format!("{e}%")))
            .bind(escaped.as_ref().map(|e| format!("%{e}%")))
            .bind(limit)
            .fetch_all(self)
            .await?;
        rows.iter().map(tenant).collect()
    }

    async fn list_tenants(&mut self) -> StoreResult<Vec<TenantRecord>> {
        let rows = query("SELECT id, name, status, created_at, incarnation FROM tenants WHERE id <> $1 ORDER BY id")
            .bind(PLATFORM_TENANT)
            .fetch_all(self)
            .await?;
        rows.iter().map(tenant).collect()
    }

    async fn delete_tenant(&mut self, id: &str) -> StoreResult<bool> {
        // Its API keys go with it (cascade): every replica must drop them.
        self.revokes = true;
        // Data keys first and explicitly: crypto-shredding must not depend on
        // the cascade being configured.
        query("DELETE FROM data_keys WHERE tenant_id = $1").bind(id).execute(self).await?;
        // Counts are not data of the tenant's, but a re-created tenant starts from none.
        query("DELETE FROM usage_hourly WHERE tenant_id = $1").bind(id).execute(self).await?;
        let done = query("DELETE FROM tenants WHERE id = $1").bind(id).execute(self).await?;
        Ok(done.rows_affected() > 0)
    }
}

// `rewrap_data_keys`: $1 is a JSON array of {tenant_id, version, old_kek_id,
// old_wrapped, new_wrapped}, $2 the new key-encryption key's id. Two
// statements for every row at once: keep the previous wrap as an extra one,
// then make the new wrap the key's own.
const REWRAP_KEEP_OLD_POSTGRES: &str = "INSERT INTO data_key_wraps (tenant_id, version, kek_id, wrapped) \
     SELECT b.tenant_id, b.version, b.old_kek_id, b.old_wrapped \
     FROM json_to_recordset($1::json) AS b(tenant_id text, version bigint, old_kek_id text, old_wrapped text) \
     ON CONFLICT (tenant_id, version, kek_id) DO NOTHING";
const REWRAP_SET_NEW_POSTGRES: &str = "UPDATE data_keys AS d SET wrapped = b.new_wrapped, kek_id = $2 \
     FROM json_to_recordset($1::json) AS b(tenant_id text, version bigint, new_wrapped text) \
     WHERE d.tenant_id = b.tenant_id AND d.version = b.version";
// `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join constraint.
const REWRAP_KEEP_OLD_SQLITE: &str = "INSERT INTO data_key_wraps (tenant_id, version, kek_id, wrapped) \
     SELECT json_extract(b.value, '$.tenant_id'), json_extract(b.value, '$.version'), \
            json_extract(b.value, '$.old_kek_id'), json_extract(b.value, '$.old_wrapped') \
     FROM json_each($1) AS b WHERE true \
     ON CONFLICT (tenant_id, version, kek_id) DO NOTHING";
const REWRAP_SET_NEW_SQLITE: &str =
    "UPDATE data_keys SET wrapped = json_extract(b.value, '$.new_wrapped'), kek_id = $2 \
     FROM json_each($1) AS b \
     WHERE data_keys.tenant_id = json_extract(b.value, '$.tenant_id') \
       AND data_keys.version = json_extract(b.value, '$.version')";

#[async_trait]
impl KeyRepo for SqlTx {
    async fn insert_data_key(&mut self, k: &DataKeyRecord) -> StoreResult<()> {
        query("INSERT INTO data_keys (tenant_id, version, wrapped, kek_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&k.tenant_id)
            .bind(i64::from(k.version))
            .bind(&k.wrapped)
            .bind(&k.kek_id)
            .bind(micros(k.created_at))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_data_key(&mut self, tenant: &str, version: u32) -> StoreResult<Option<DataKeyRecord>> {
        let row = query(
            "SELECT k.tenant_id, t.incarnation, k.version, k.wrapped, k.kek_id, k.created_at \
             FROM data_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.tenant_id = $1 AND k.version = $2",
        )
        .bind(tenant)
        .bind(i64::from(version))
        .fetch_optional(self)
        .await?;
        row.as_ref().map(data_key).transpose()
    }

    async fn list_data_keys(&mut self, tenant: &str) -> StoreResult<Vec<DataKeyRecord>> {
        let rows = query(
            "SELECT k.tenant_id, t.incarnation, k.version, k.wrapped, k.kek_id, k.created_at \
             FROM data_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.tenant_id = $1 ORDER BY k.version",
        )
        .bind(tenant)
        .fetch_all(self)
        .await?;
        rows.iter().map(data_key).collect()
    }

    async fn latest_data_key_version(&mut self, tenant: &str) -> StoreResult<Option<u32>> {
        let row =
            query("SELECT MAX(version) AS v FROM data_keys WHERE tenant_id = $1").bind(tenant).fetch_one(self).await?;
        let v: Option<i64> = row.get("v")?;
        Ok(v.and_then(|v| u32::try_from(v).ok()))
    }

    async fn current_data_key(&mut self, tenant: &str) -> StoreResult<Option<(String, Option<u32>)>> {
        let row = query(
            "SELECT t.incarnation AS incarnation, \
             (SELECT MAX(version) FROM data_keys k WHERE k.tenant_id = t.id) AS v \
             FROM tenants t WHERE t.id = $1",
        )
        .bind(tenant)
        .fetch_optional(self)
        .await?;
        row.map(|row| {
            let v: Option<i64> = row.get("v")?;
            Ok((row.get("incarnation")?, v.and_then(|v| u32::try_from(v).ok())))
        })
        .transpose()
    }

    async fn get_audit_key(&mut self) -> StoreResult<Option<(String, i64)>> {
        let row =
            query("SELECT audit_key, audit_keyed_from FROM keyring_meta WHERE id = 1").fetch_optional(self).await?;
        let Some(row) = row else { return Ok(None) };
        let wrapped: Option<String> = row.get("audit_key")?;
        let from: Option<i64> = row.get("audit_keyed_from")?;
        Ok(wrapped.zip(from))
    }

    async fn set_audit_key(&mut self, wrapped: &str, keyed_from: i64) -> StoreResult<()> {
        let done =
            query("UPDATE keyring_meta SET audit_key = $1, audit_keyed_from = $2 WHERE id = 1 AND audit_key IS NULL")
                .bind(wrapped)
                .bind(keyed_from)
                .execute(self)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("audit key".into()));
        }
        Ok(())
    }

    async fn replace_audit_key(&mut self, wrapped: &str) -> StoreResult<()> {
        query("UPDATE keyring_meta SET audit_key = $1 WHERE id = 1").bind(wrapped).execute(self).await?;
        Ok(())
    }

    async fn get_kek_check(&mut self) -> StoreResult<Option<(String, String)>> {
        let row = query("SELECT kek_id, kek_check FROM keyring_meta WHERE id = 1").fetch_optional(self).await?;
        row.map(|r| Ok((r.get("kek_id")?, r.get("kek_check")?))).transpose()
    }

    async fn replace_kek_check(&mut self, kek_id: &str, check: &str) -> StoreResult<()> {
        query("UPDATE keyring_meta SET kek_id = $1, kek_check = $2 WHERE id = 1")
            .bind(kek_id)
            .bind(check)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn get_data_key_wrap(&mut self, tenant: &str, version: u32, kek_id: &str) -> StoreResult<Option<String>> {
        let row = query("SELECT wrapped FROM data_key_wraps WHERE tenant_id = $1 AND version = $2 AND kek_id = $3")
            .bind(tenant)
            .bind(i64::from(version))
            .bind(kek_id)
            .fetch_optional(self)
            .await?;
        row.map(|r| r.get("wrapped")).transpose()
    }

    async fn list_all_data_keys(&mut self, after: Option<(&str, u32)>, limit: i64) -> StoreResult<Vec<DataKeyRecord>> {
        let (t, v) = after.unwrap_or(("", 0));
        // A row-value comparison, not `tenant_id > $1 OR (...)`: PostgreSQL
        // turns only the former into an index range, so each page starts
        // where the last ended instead of filtering every key before it.
        let rows = query(
            "SELECT k.tenant_id, t.incarnation, k.version, k.wrapped, k.kek_id, k.created_at \
             FROM data_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE (k.tenant_id, k.version) > ($1, $2) ORDER BY k.tenant_id, k.version LIMIT $3",
        )
        .bind(t)
        .bind(i64::from(v))
        .bind(limit)
        .fetch_all(self)
        .await?;
        rows.iter().map(data_key).collect()
    }

    async fn rewrap_data_keys(&mut self, batch: &[(DataKeyRecord, String)], new_kek_id: &str) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // The whole batch travels as one JSON parameter (sqlx's `Any` driver
        // binds no arrays), so each statement is the same text whatever the
        // batch size, and no bound-parameter limit applies.
        let rows = serde_json::Value::Array(
            batch
                .iter()
                .map(|(previous, new_wrapped)| {
                    serde_json::json!({
                        "tenant_id": previous.tenant_id,
                        "version": i64::from(previous.version),
                        "old_kek_id": previous.kek_id,
                        "old_wrapped": previous.wrapped,
                        "new_wrapped": new_wrapped,
                    })
                })
                .collect(),
        )
        .to_string();
        let (keep_old, set_new) = match self.dialect {
            Dialect::Postgres => (REWRAP_KEEP_OLD_POSTGRES, REWRAP_SET_NEW_POSTGRES),
            Dialect::Sqlite => (REWRAP_KEEP_OLD_SQLITE, REWRAP_SET_NEW_SQLITE),
        };
        query(keep_old).bind(&rows).execute(self).await?;
        query(set_new).bind(&rows).bind(new_kek_id).execute(self).await?;
        Ok(())
    }

    async fn delete_extra_wraps(&mut self) -> StoreResult<u64> {
        let done = query("DELETE FROM data_key_wraps").execute(self).await?;
        Ok(done.rows_affected())
    }

    async fn set_kek_check(&mut self, kek_id: &str, check: &str) -> StoreResult<()> {
        query("INSERT INTO keyring_meta (id, kek_id, kek_check) VALUES (1, $1, $2)")
            .bind(kek_id)
            .bind(check)
            .execute(self)
            .await?;
        Ok(())
    }
}
