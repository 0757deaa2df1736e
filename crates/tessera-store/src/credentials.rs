//! Credential metadata (with refresh leases) and OAuth flow states.

use crate::db::{query, Row};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ports::{CredentialRecord, CredentialRepo, OAuthStateRecord, OAuthStateRepo, StoreResult};

use crate::tx::{micros, opt_time, time, SqlTx};
use crate::Dialect;

/// Credential columns, each read back under `<prefix><name>`.
pub(crate) const CREDENTIAL_COLS: [&str; 15] = [
    "tenant_id",
    "integration_key",
    "token_type",
    "scopes",
    "has_refresh_token",
    "expires_at",
    "source",
    "created_at",
    "updated_at",
    "last_refreshed_at",
    "refresh_failures",
    "next_attempt_at",
    "needs_reauth",
    "lease_owner",
    "lease_until",
];

/// `SELECT` list of the credential columns of table alias `alias`, renamed
/// with `prefix`.
pub(crate) fn credential_columns(d: Dialect, alias: &str, prefix: &str) -> String {
    CREDENTIAL_COLS
        .iter()
        .map(|c| {
            let col = format!("{alias}.{c}");
            let expr = if *c == "scopes" && d == Dialect::Postgres { format!("{col}::text") } else { col };
            format!("{expr} AS {prefix}{c}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a credential whose columns carry `prefix`.
pub(crate) fn credential_from(row: &Row, prefix: &str) -> StoreResult<CredentialRecord> {
    let col = |c: &str| format!("{prefix}{c}");
    let scopes: String = row.get(col("scopes").as_str())?;
    Ok(CredentialRecord {
        tenant_id: row.get(col("tenant_id").as_str())?,
        integration_key: row.get(col("integration_key").as_str())?,
        token_type: row.get(col("token_type").as_str())?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|e| tessera_core::ports::StoreError::other(format!("bad scopes JSON: {e}")))?,
        has_refresh_token: row.get::<i64>(col("has_refresh_token").as_str())? == 1,
        expires_at: opt_time(row.get(col("expires_at").as_str())?),
        source: row.get(col("source").as_str())?,
        created_at: time(row.get(col("created_at").as_str())?),
        updated_at: time(row.get(col("updated_at").as_str())?),
        last_refreshed_at: opt_time(row.get(col("last_refreshed_at").as_str())?),
        refresh_failures: u32::try_from(row.get::<i64>(col("refresh_failures").as_str())?).unwrap_or(u32::MAX),
        next_attempt_at: opt_time(row.get(col("next_attempt_at").as_str())?),
        needs_reauth: row.get::<i64>(col("needs_reauth").as_str())? == 1,
        lease_owner: row.get(col("lease_owner").as_str())?,
        lease_until: opt_time(row.get(col("lease_until").as_str())?),
    })
}

fn select(d: Dialect) -> String {
    format!("SELECT {} FROM credentials c", credential_columns(d, "c", ""))
}

/// A refreshable credential no live lease holds and whose backoff is over
/// (`$1` = now); shared by both claims.
const CLAIMABLE: &str = "has_refresh_token = 1 AND needs_reauth = 0 \
     AND (next_attempt_at IS NULL OR next_attempt_at <= $1) AND (lease_until IS NULL OR lease_until < $1)";

#[async_trait]
impl CredentialRepo for SqlTx {
    async fn get_credential(&mut self, tenant: &str, integration: &str) -> StoreResult<Option<CredentialRecord>> {
        let sql = format!("{} WHERE c.tenant_id = $1 AND c.integration_key = $2", select(self.dialect));
        let row = query(&sql).bind(tenant).bind(integration).fetch_optional(self).await?;
        row.as_ref().map(|r| credential_from(r, "")).transpose()
    }

    async fn lock_credential(&mut self, tenant: &str, integration: &str) -> StoreResult<Option<CredentialRecord>> {
        // SQLite has one writer at a time, so a write transaction holds every row already.
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("{} WHERE c.tenant_id = $1 AND c.integration_key = $2{lock}", select(self.dialect));
        let row = query(&sql).bind(tenant).bind(integration).fetch_optional(self).await?;
        row.as_ref().map(|r| credential_from(r, "")).transpose()
    }

    async fn upsert_credential(&mut self, c: &CredentialRecord) -> StoreResult<()> {
        let scopes = if self.dialect == Dialect::Postgres { "$4::jsonb" } else { "$4" };
        let sql = format!(
            "INSERT INTO credentials (tenant_id, integration_key, token_type, scopes, has_refresh_token, expires_at, \
             source, created_at, updated_at, last_refreshed_at, refresh_failures, next_attempt_at, needs_reauth, \
             lease_owner, lease_until) VALUES ($1, $2, $3, {scopes}, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (tenant_id, integration_key) DO UPDATE SET token_type = excluded.token_type, \
             scopes = excluded.scopes, has_refresh_token = excluded.has_refresh_token, \
             expires_at = excluded.expires_at, source = excluded.source, updated_at = excluded.updated_at, \
             last_refreshed_at = excluded.last_refreshed_at, refresh_failures = excluded.refresh_failures, \
             next_attempt_at = excluded.next_attempt_at, needs_reauth = excluded.needs_reauth, \
             lease_owner = excluded.lease_owner, lease_until = excluded.lease_until"
        );
        query(&sql)
            .bind(&c.tenant_id)
            .bind(&c.integration_key)
            .bind(&c.token_type)
            .bind(serde_json::to_string(&c.scopes).unwrap_or_else(|_| "[]".into()))
            .bind(i64::from(c.has_refresh_token))
            .bind(c.expires_at.map(micros))
            .bind(&c.source)
            .bind(micros(c.created_at))
            .bind(micros(c.updated_at))
            .bind(c.last_refreshed_at.map(micros))
            .bind(i64::from(c.refresh_failures))
            .bind(c.next_attempt_at.map(micros))
            .bind(i64::from(c.needs_reauth))
            .bind(c.lease_owner.clone())
            .bind(c.lease_until.map(micros))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn delete_credential(&mut self, tenant: &str, integration: &str) -> StoreResult<bool> {
        let done = query("DELETE FROM credentials WHERE tenant_id = $1 AND integration_key = $2")
            .bind(tenant)
            .bind(integration)
            .execute(self)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_tenant_credentials(&mut self, tenant: &str) -> StoreResult<Vec<CredentialRecord>> {
        let sql = format!("{} WHERE c.tenant_id = $1 ORDER BY c.integration_key", select(self.dialect));
        let rows = query(&sql).bind(tenant).fetch_all(self).await?;
        rows.iter().map(|r| credential_from(r, "")).collect()
    }

    async fn list_troubled_credentials(&mut self, limit: i64) -> StoreResult<Vec<CredentialRecord>> {
        let sql = format!(
            "{} WHERE c.needs_reauth = 1 OR c.refresh_failures > 0 ORDER BY c.updated_at DESC LIMIT $1",
            select(self.dialect)
        );
        let rows = query(&sql).bind(limit).fetch_all(self).await?;
        rows.iter().map(|r| credential_from(r, "")).collect()
    }

    async fn claim_due_credentials(
        &mut self,
        now: DateTime<Utc>,
        due_by: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(String, String)>> {
        // PostgreSQL: rows another replica is claiming right now are skipped,
        // not waited for. SQLite has a single writer, so no row is contended.
        // The limit is written into the statement (an integer, not input): with
        // a bound LIMIT PostgreSQL's generic plan scans the whole table.
        let limit = limit.clamp(1, 10_000);
        let skip_locked = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "UPDATE credentials SET lease_owner = $3, lease_until = $4 \
             WHERE (tenant_id, integration_key) IN (SELECT tenant_id, integration_key FROM credentials \
             WHERE {CLAIMABLE} AND expires_at IS NOT NULL AND expires_at <= $2 \
             ORDER BY expires_at LIMIT {limit}{skip_locked}) \
             RETURNING tenant_id, integration_key"
        );
        let rows = query(&sql)
            .bind(micros(now))
            .bind(micros(due_by))
            .bind(owner)
            .bind(micros(lease_until))
            .fetch_all(self)
            .await?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }

    async fn claim_credential(
        &mut self,
        tenant: &str,
        integration: &str,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // Backoff does not apply: a reader asking for an expired token may try now.
        let done = query(
            "UPDATE credentials SET lease_owner = $4, lease_until = $5 \
             WHERE tenant_id = $2 AND integration_key = $3 AND has_refresh_token = 1 \
             AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(micros(now))
        .bind(tenant)
        .bind(integration)
        .bind(owner)
        .bind(micros(lease_until))
        .execute(self)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_credential_leases(&mut self, owner: &str) -> StoreResult<u64> {
        let done = query("UPDATE credentials SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
            .bind(owner)
            .execute(self)
            .await?;
        Ok(done.rows_affected())
    }

    async fn count_credentials(&mut self) -> StoreResult<i64> {
        let row = query("SELECT COUNT(*) FROM credentials").fetch_one(self).await?;
        row.get(0)
    }

    async fn count_due_credentials(&mut self, due_by: DateTime<Utc>) -> StoreResult<i64> {
        let row = query(
            "SELECT COUNT(*) FROM credentials WHERE has_refresh_token = 1 AND needs_reauth = 0 \
             AND expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(micros(due_by))
        .fetch_one(self)
        .await?;
        row.get(0)
    }
}

fn oauth_state(row: &Row) -> StoreResult<OAuthStateRecord> {
    Ok(OAuthStateRecord {
        state_hash: row.get("state_hash")?,
        tenant_id: row.get("tenant_id")?,
        integration_key: row.get("integration_key")?,
        redirect_uri: row.get("redirect_uri")?,
        callback_uri: row.get("callback_uri")?,
        code_verifier: row.get("code_verifier")?,
        created_by: row.get("created_by")?,
        created_role: row.get("created_role")?,
        created_at: time(row.get("created_at")?),
        expires_at: time(row.get("expires_at")?),
        connect_session_id: row.get("connect_session_id")?,
        connect_token: row.get("connect_token")?,
    })
}

#[async_trait]
impl OAuthStateRepo for SqlTx {
    async fn insert_oauth_state(&mut self, s: &OAuthStateRecord) -> StoreResult<()> {
        query(
            "INSERT INTO oauth_states (state_hash, tenant_id, integration_key, redirect_uri, callback_uri, \
             code_verifier, created_by, created_role, created_at, expires_at, connect_session_id, connect_token) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&s.state_hash)
        .bind(&s.tenant_id)
        .bind(&s.integration_key)
        .bind(s.redirect_uri.clone())
        .bind(&s.callback_uri)
        .bind(s.code_verifier.clone())
        .bind(&s.created_by)
        .bind(&s.created_role)
        .bind(micros(s.created_at))
        .bind(micros(s.expires_at))
        .bind(s.connect_session_id.clone())
        .bind(s.connect_token.clone())
        .execute(self)
        .await?;
        Ok(())
    }

    async fn take_oauth_state(&mut self, state_hash: &str) -> StoreResult<Option<OAuthStateRecord>> {
        // DELETE .. RETURNING: of two callbacks racing with one state, one gets the row.
        let row = query(
            "DELETE FROM oauth_states WHERE state_hash = $1 RETURNING state_hash, tenant_id, integration_key, \
             redirect_uri, callback_uri, code_verifier, created_by, created_role, created_at, expires_at, \
             connect_session_id, connect_token",
        )
        .bind(state_hash)
        .fetch_optional(self)
        .await?;
        row.as_ref().map(oauth_state).transpose()
    }

    async fn delete_expired_oauth_states(&mut self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = query("DELETE FROM oauth_states WHERE expires_at < $1").bind(micros(now)).execute(self).await?;
        Ok(done.rows_affected())
    }
}
