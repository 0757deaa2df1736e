//! Versioned secrets of the `database` backend: a head row and its versions.

use crate::db::{query, Row};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ports::{KvSettings, SecretRecord, SecretRepo, SecretVersionRecord, StoreResult};

use crate::tx::{like_prefix, micros, opt_time, time, SqlTx};
use crate::Dialect;

fn head(row: &Row) -> StoreResult<SecretRecord> {
    Ok(SecretRecord {
        tenant_id: row.get("tenant_id")?,
        path: row.get("path")?,
        current_version: u32_col(row, "current_version")?,
        max_versions: u32_col(row, "max_versions")?,
        created_at: time(row.get("created_at")?),
        updated_at: time(row.get("updated_at")?),
    })
}

fn version(row: &Row) -> StoreResult<SecretVersionRecord> {
    Ok(SecretVersionRecord {
        version: u32_col(row, "version")?,
        kind: row.get("kind")?,
        ciphertext: row.get("ciphertext")?,
        created_at: time(row.get("created_at")?),
        created_by: row.get("created_by")?,
        deleted_at: opt_time(row.get("deleted_at")?),
    })
}

fn u32_col(row: &Row, col: &str) -> StoreResult<u32> {
    let v: i64 = row.get(col)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// Settings from the columns `max_versions`, `cas_required`, `delete_version_after`.
fn settings(row: &Row) -> StoreResult<KvSettings> {
    Ok(KvSettings {
        max_versions: u32_col(row, "max_versions")?,
        cas_required: row.get::<i64>("cas_required")? == 1,
        delete_version_after: row.get("delete_version_after")?,
    })
}

/// KV v2's oldest version after a write of `version` keeping `max_versions`:
/// it moves up once a write reaches `max_versions` (Vault's sliding window).
/// `$cur` names the version column of the statement it goes into. A macro, so
/// that the statements stay `&'static str` (no formatting on the write path).
macro_rules! oldest_after {
    ($cur:literal, $max:literal) => {
        concat!(
            "CASE WHEN ",
            $cur,
            " + 1 - ",
            $max,
            " > secrets.oldest_version THEN ",
            $cur,
            " + 1 - ",
            $max,
            " ELSE secrets.oldest_version END"
        )
    };
}

const VERSION_COLS: &str = "version, kind, ciphertext, created_at, created_by, deleted_at";

#[async_trait]
impl SecretRepo for SqlTx {
    async fn set_secret_custom_metadata(&mut self, tenant: &str, path: &str, json: Option<&str>) -> StoreResult<bool> {
        let done = query("UPDATE secrets SET custom_metadata = $3 WHERE tenant_id = $1 AND path = $2")
            .bind(tenant)
            .bind(path)
            .bind(json)
            .execute(self)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_secret_custom_metadata(&mut self, tenant: &str, path: &str) -> StoreResult<Option<String>> {
        let row = query("SELECT custom_metadata FROM secrets WHERE tenant_id = $1 AND path = $2")
            .bind(tenant)
            .bind(path)
            .fetch_optional(self)
            .await?;
        match row {
            Some(row) => row.get(0),
            None => Ok(None),
        }
    }

    async fn get_secret_settings(&mut self, tenant: &str, path: &str) -> StoreResult<Option<(KvSettings, u32)>> {
        let row = query(
            "SELECT kv_max_versions AS max_versions, kv_cas_required AS cas_required, \
             kv_delete_version_after AS delete_version_after, oldest_version FROM secrets \
             WHERE tenant_id = $1 AND path = $2",
        )
        .bind(tenant)
        .bind(path)
        .fetch_optional(self)
        .await?;
        match row {
            Some(row) => Ok(Some((settings(&row)?, u32_col(&row, "oldest_version")?))),
            None => Ok(None),
        }
    }

    async fn set_secret_settings(&mut self, tenant: &str, path: &str, s: &KvSettings) -> StoreResult<bool> {
        let done = query(
            "UPDATE secrets SET kv_max_versions = $3, kv_cas_required = $4, kv_delete_version_after = $5 \
             WHERE tenant_id = $1 AND path = $2",
        )
        .bind(tenant)
        .bind(path)
        .bind(i64::from(s.max_versions))
        .bind(i64::from(s.cas_required))
        .bind(s.delete_version_after)
        .execute(self)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_kv_config(&mut self, tenant: &str) -> StoreResult<Option<KvSettings>> {
        let row = query("SELECT max_versions, cas_required, delete_version_after FROM kv_configs WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(self)
            .await?;
        row.as_ref().map(settings).transpose()
    }

    async fn set_kv_config(&mut self, tenant: &str, s: &KvSettings, at: DateTime<Utc>) -> StoreResult<()> {
        query(
            "INSERT INTO kv_configs (tenant_id, max_versions, cas_required, delete_version_after, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET \
             max_versions = excluded.max_versions, cas_required = excluded.cas_required, \
             delete_version_after = excluded.delete_version_after, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(i64::from(s.max_versions))
        .bind(i64::from(s.cas_required))
        .bind(s.delete_version_after)
        .bind(micros(at))
        .execute(self)
        .await?;
        Ok(())
    }

    async fn get_version_rules(
        &mut self,
        tenant: &str,
        path: &str,
    ) -> StoreResult<(Option<KvSettings>, Option<KvSettings>)> {
        // One statement on the write path: the secret's row (if any), then the mount's.
        let rows = query(
            "SELECT 1 AS src, kv_max_versions AS max_versions, kv_cas_required AS cas_required, \
             kv_delete_version_after AS delete_version_after FROM secrets WHERE tenant_id = $1 AND path = $2 \
             UNION ALL SELECT 2 AS src, max_versions, cas_required, delete_version_after FROM kv_configs \
             WHERE tenant_id = $1",
        )
        .bind(tenant)
        .bind(path)
        .fetch_all(self)
        .await?;
        let (mut secret, mut mount) = (None, None);
        for row in &rows {
            match row.get::<i64>("src")? {
                1 => secret = Some(settings(row)?),
                _ => mount = Some(settings(row)?),
            }
        }
        Ok((secret, mount))
    }

    async fn lock_secret_path(&mut self, tenant: &str, path: &str) -> StoreResult<()> {
        if self.dialect == Dialect::Postgres {
            // A 64-bit hash of the pair; a collision only makes two paths take turns.
            query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(1) || $2, 0))")
                .bind(tenant)
                .bind(path)
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn get_secret(&mut self, tenant: &str, path: &str) -> StoreResult<Option<SecretRecord>> {
        let row = query(
            "SELECT tenant_id, path, current_version, max_versions, created_at, updated_at FROM secrets \
             WHERE tenant_id = $1 AND path = $2",
        )
        .bind(tenant)
        .bind(path)
        .fetch_optional(self)
        .await?;
        row.as_ref().map(head).transpose()
    }

    async fn upsert_secret(&mut self, s: &SecretRecord) -> StoreResult<()> {
        query(concat!(
            "INSERT INTO secrets (tenant_id, path, current_version, max_versions, created_at, updated_at, \
                 oldest_version) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, path) DO UPDATE SET \
                 current_version = excluded.current_version, max_versions = excluded.max_versions, \
                 updated_at = excluded.updated_at, rotation_notified_at = NULL, oldest_version = ",
            oldest_after!("excluded.current_version", "excluded.max_versions")
        ))
        .bind(&s.tenant_id)
        .bind(&s.path)
        .bind(i64::from(s.current_version))
        .bind(i64::from(s.max_versions))
        .bind(micros(s.created_at))
        .bind(micros(s.updated_at))
        .bind(i64::from((s.current_version + 1).saturating_sub(s.max_versions)))
        .execute(self)
        .await?;
        Ok(())
    }

    async fn next_secret_version(
        &mut self,
        tenant: &str,
        path: &str,
        max_versions: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let row = query(concat!(
            "INSERT INTO secrets (tenant_id, path, current_version, max_versions, created_at, updated_at, \
             oldest_version) VALUES ($1, $2, 1, $3, $4, $4, $5) ON CONFLICT (tenant_id, path) DO UPDATE SET \
             current_version = secrets.current_version + 1, max_versions = excluded.max_versions, \
             updated_at = excluded.updated_at, rotation_notified_at = NULL, oldest_version = ",
            oldest_after!("(secrets.current_version + 1)", "excluded.max_versions"),
            " RETURNING current_version"
        ))
        .bind(tenant)
        .bind(path)
        .bind(i64::from(max_versions))
        .bind(micros(at))
        .bind(i64::from(max_versions <= 1))
        .fetch_one(self)
        .await?;
        u32_col(&row, "current_version")
    }

    async fn insert_secret_version(&mut self, tenant: &str, path: &str, v: &SecretVersionRecord) -> StoreResult<()> {
        query(
            "INSERT INTO secret_versions (tenant_id, path, version, kind, ciphertext, created_at, created_by, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant)
        .bind(path)
        .bind(i64::from(v.version))
        .bind(&v.kind)
        .bind(v.ciphertext.clone())
        .bind(micros(v.created_at))
        .bind(&v.created_by)
        .bind(v.deleted_at.map(micros))
        .execute(self)
        .await?;
        Ok(())
    }

    async fn get_secret_version(
        &mut self,
        tenant: &str,
        path: &str,
        v: u32,
    ) -> StoreResult<Option<SecretVersionRecord>> {
        let sql =
            format!("SELECT {VERSION_COLS} FROM secret_versions WHERE tenant_id = $1 AND path = $2 AND version = $3");
        let row = query(&sql).bind(tenant).bind(path).bind(i64::from(v)).fetch_optional(self).await?;
        row.as_ref().map(version).transpose()
    }

    async fn get_secret_latest(
        &mut self,
        tenant: &str,
        path: &str,
    ) -> StoreResult<Option<(SecretRecord, Option<SecretVersionRecord>)>> {
        // LEFT JOIN: a head whose current version row is missing still answers.
        let row = query(
            "SELECT s.tenant_id AS tenant_id, s.path AS path, s.current_version AS current_version, \
             s.max_versions AS max_versions, s.created_at AS created_at, s.updated_at AS updated_at, \
             v.version AS version, v.kind AS kind, v.ciphertext AS ciphertext, v.created_at AS v_created_at, \
             v.created_by AS created_by, v.deleted_at AS deleted_at \
             FROM secrets s LEFT JOIN secret_versions v \
             ON v.tenant_id = s.tenant_id AND v.path = s.path AND v.version = s.current_version \
             WHERE s.tenant_id = $1 AND s.path = $2",
        )
        .bind(tenant)
        .bind(path)
        .fetch_optional(self)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let current = match row.get::<Option<i64>>("version")? {
            None => None,
            Some(v) => Some(SecretVersionRecord {
                version: u32::try_from(v).unwrap_or(0),
                kind: row.get("kind")?,
                ciphertext: row.get("ciphertext")?,
                created_at: time(row.get("v_created_at")?),
                created_by: row.get("created_by")?,
                deleted_at: opt_time(row.get("deleted_at")?),
            }),
        };
        Ok(Some((head(&row)?, current)))
    }

    async fn list_secret_versions(&mut self, tenant: &str, path: &str) -> StoreResult<Vec<SecretVersionRecord>> {
        let sql =
            format!("SELECT {VERSION_COLS} FROM secret_versions WHERE tenant_id = $1 AND path = $2 ORDER BY version");
        let rows = query(&sql).bind(tenant).bind(path).fetch_all(self).await?;
        rows.iter().map(version).collect()
    }

    async fn set_version_deleted(
        &mut self,
        tenant: &str,
        path: &str,
        v: u32,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        query("UPDATE secret_versions SET deleted_at = $4 WHERE tenant_id = $1 AND path = $2 AND version = $3")
            .bind(tenant)
            .bind(path)
            .bind(i64::from(v))
            .bind(at.map(micros))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn set_version_ciphertext(&mut self, tenant: &str, path: &str, v: u32, ciphertext: &str) -> StoreResult<()> {
        query("UPDATE secret_versions SET ciphertext = $4 WHERE tenant_id = $1 AND path = $2 AND version = $3")
            .bind(tenant)
            .bind(path)
            .bind(i64::from(v))
            .bind(ciphertext)
            .execute(self)
            .await?;
        Ok(())
    }

    async fn destroy_version(&mut self, tenant: &str, path: &str, v: u32) -> StoreResult<()> {
        query("UPDATE secret_versions SET ciphertext = NULL WHERE tenant_id = $1 AND path = $2 AND version = $3")
            .bind(tenant)
            .bind(path)
            .bind(i64::from(v))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn prune_versions(&mut self, tenant: &str, path: &str, keep_from: u32) -> StoreResult<()> {
        query("DELETE FROM secret_versions WHERE tenant_id = $1 AND path = $2 AND version < $3")
            .bind(tenant)
            .bind(path)
            .bind(i64::from(keep_from))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn list_secret_paths(&mut self, tenant: &str, prefix: &str) -> StoreResult<Vec<String>> {
        let rows = query("SELECT path FROM secrets WHERE tenant_id = $1 AND path LIKE $2 ESCAPE '\\' ORDER BY path")
            .bind(tenant)
            .bind(like_prefix(prefix))
            .fetch_all(self)
            .await?;
        rows.iter().map(|r| r.get("path")).collect()
    }

    async fn delete_secret(&mut self, tenant: &str, path: &str) -> StoreResult<()> {
        query("DELETE FROM secrets WHERE tenant_id = $1 AND path = $2").bind(tenant).bind(path).execute(self).await?;
        Ok(())
    }

    async fn delete_secrets_with_prefix(&mut self, prefix: &str) -> StoreResult<u64> {
        let done =
            query("DELETE FROM secrets WHERE path LIKE $1 ESCAPE '\\'").bind(like_prefix(prefix)).execute(self).await?;
        Ok(done.rows_affected())
    }
}
