//! Audit sinks' delivery positions and leases (one row per sink).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ports::{AuditSinkRepo, StoreResult};

use crate::db::query;
use crate::tx::{micros, SqlTx};

#[async_trait]
impl AuditSinkRepo for SqlTx {
    async fn claim_audit_sink(
        &mut self,
        sink: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        query("INSERT INTO audit_sink_positions (sink, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (sink) DO NOTHING")
            .bind(sink)
            .bind(micros(now))
            .execute(self)
            .await?;
        // On PostgreSQL the row lock makes concurrent claims take turns, and
        // the second re-reads the row the first left: only one holds it.
        let row = query(
            "UPDATE audit_sink_positions SET lease_owner = $2, lease_until = $4, updated_at = $3 \
             WHERE sink = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $3) RETURNING position",
        )
        .bind(sink)
        .bind(owner)
        .bind(micros(now))
        .bind(micros(lease_until))
        .fetch_optional(self)
        .await?;
        row.map(|r| r.get::<i64>("position")).transpose()
    }

    async fn advance_audit_sink(&mut self, sink: &str, owner: &str, position: i64) -> StoreResult<bool> {
        let done = query(
            "UPDATE audit_sink_positions SET position = $3, updated_at = $4 \
             WHERE sink = $1 AND lease_owner = $2 AND position <= $3",
        )
        .bind(sink)
        .bind(owner)
        .bind(position)
        .bind(micros(Utc::now()))
        .execute(self)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_audit_sink(&mut self, sink: &str, owner: &str) -> StoreResult<()> {
        query("UPDATE audit_sink_positions SET lease_owner = NULL, lease_until = NULL WHERE sink = $1 AND lease_owner = $2")
            .bind(sink)
            .bind(owner)
            .execute(self)
            .await?;
        Ok(())
    }
}
