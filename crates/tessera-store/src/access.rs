//! API keys and the audit chain.

use crate::db::{query, Row};
use async_trait::async_trait;
use tessera_core::ports::{AccessRepo, ApiKeyRecord, AuditFilter, AuditRecord, AuditRepo, StoreError, StoreResult};

use crate::tx::{micros, time, word, SqlTx};
use crate::Dialect;
use tessera_core::access::Role;

fn api_key(row: &Row) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.get("id")?,
        name: row.get("name")?,
        role: word(&row.get::<String>("role")?, |w| Role::parse(w).ok(), "role")?,
        tenant_id: row.get("tenant_id")?,
        key_hash: row.get("key_hash")?,
        created_at: time(row.get("created_at")?),
        created_by: row.get("created_by")?,
        last_used_at: crate::tx::opt_time(row.get("last_used_at")?),
        scopes: row.get::<Option<String>>("scopes")?.as_deref().map(crate::tx::json_value).transpose()?,
    })
}

fn audit(row: &Row) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        seq: row.get("seq")?,
        id: row.get("id")?,
        at_micros: row.get("at")?,
        actor: row.get("actor")?,
        actor_role: row.get("actor_role")?,
        tenant_id: row.get("tenant_id")?,
        action: row.get("action")?,
        resource: row.get("resource")?,
        outcome: row.get("outcome")?,
        request_id: row.get("request_id")?,
        client_ip: row.get("client_ip")?,
        prev_hash: row.get("prev_hash")?,
        hash: row.get("hash")?,
    })
}

/// `scopes` is read as text on both databases (PostgreSQL: JSONB cast).
fn key_cols(d: crate::Dialect) -> String {
    format!(
        "id, name, role, tenant_id, key_hash, created_at, created_by, last_used_at, {} AS scopes",
        d.json_col("scopes")
    )
}

#[async_trait]
impl AccessRepo for SqlTx {
    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO api_keys (id, name, role, tenant_id, key_hash, created_at, created_by, scopes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, {})",
            self.dialect.json_param(8)
        );
        query(&sql)
            .bind(&k.id)
            .bind(&k.name)
            .bind(k.role.as_str())
            .bind(k.tenant_id.clone())
            .bind(&k.key_hash)
            .bind(micros(k.created_at))
            .bind(&k.created_by)
            .bind(k.scopes.as_ref().map(serde_json::Value::to_string))
            .execute(self)
            .await?;
        Ok(())
    }

    async fn find_api_key_by_hash(&mut self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!("SELECT {} FROM api_keys WHERE key_hash = $1", key_cols(self.dialect));
        let row = query(&sql).bind(hash).fetch_optional(self).await?;
        row.as_ref().map(api_key).transpose()
    }

    async fn list_api_keys(&mut self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows = match tenant {
            Some(t) => {
                let sql = format!(
                    "SELECT {} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
                    key_cols(self.dialect)
                );
                query(&sql).bind(t).fetch_all(self).await?
            }
            None => {
                let sql = format!("SELECT {} FROM api_keys ORDER BY created_at, id", key_cols(self.dialect));
                query(&sql).fetch_all(self).await?
            }
        };
        rows.iter().map(api_key).collect()
    }

    async fn get_api_key(&mut self, id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!("SELECT {} FROM api_keys WHERE id = $1", key_cols(self.dialect));
        let row = query(&sql).bind(id).fetch_optional(self).await?;
        row.as_ref().map(api_key).transpose()
    }

    async fn delete_api_key(&mut self, id: &str) -> StoreResult<bool> {
        self.revokes = true;
        let done = query("DELETE FROM api_keys WHERE id = $1").bind(id).execute(self).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_api_key(&mut self, id: &str, at: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
        query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2").bind(micros(at)).bind(id).execute(self).await?;
        Ok(())
    }

    async fn count_api_keys(&mut self) -> StoreResult<i64> {
        let row = query("SELECT COUNT(*) AS n FROM api_keys").fetch_one(self).await?;
        row.get("n")
    }
}

const AUDIT_COLS: &str =
    "seq, id, at, actor, actor_role, tenant_id, action, resource, outcome, request_id, client_ip, prev_hash, hash";

const AUDIT_COLUMNS: usize = 13;
const AUDIT_ROWS_PER_INSERT: usize = 64;

/// `INSERT ... VALUES ($1..$13), ($14..$26), ...` for `rows` rows (placeholders only).
/// SQLite gets anonymous `?` placeholders, bound in order: finding a numbered
/// one by name is a linear scan, which for hundreds of parameters costs
/// quadratic time at every bind.
fn audit_insert_sql(d: Dialect, rows: usize) -> String {
    let mut sql = format!("INSERT INTO audit_events ({AUDIT_COLS}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..AUDIT_COLUMNS {
            if c > 0 {
                sql.push(',');
            }
            match d {
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => sql.push_str(&format!("${}", r * AUDIT_COLUMNS + c + 1)),
            }
        }
        sql.push(')');
    }
    sql
}

#[async_trait]
impl AuditRepo for SqlTx {
    async fn lock_audit_head(&mut self) -> StoreResult<(i64, String)> {
        if let Some(known) = self.audit_head.as_ref().and_then(|h| h.lock().expect("audit head lock").clone()) {
            return Ok(known);
        }
        let sql = match self.dialect {
            // SQLite write transactions begin IMMEDIATE: they already hold the only write lock.
            Dialect::Sqlite => "SELECT seq, hash FROM audit_head WHERE id = 1",
            Dialect::Postgres => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        };
        let row = query(sql).fetch_one(self).await?;
        Ok((row.get("seq")?, row.get("hash")?))
    }

    async fn append_audit(&mut self, events: &[AuditRecord]) -> StoreResult<()> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else { return Ok(()) };
        let chained = events.windows(2).all(|w| w[1].seq == w[0].seq + 1 && w[1].prev_hash == w[0].hash);
        if !chained {
            return Err(StoreError::other("audit events to append do not form one chain"));
        }
        // Moves the head only if the batch continues it (nothing is written
        // otherwise: the caller reads the head and chains again), then inserts.
        let moved = query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4")
            .bind(last.seq)
            .bind(&last.hash)
            .bind(first.seq - 1)
            .bind(&first.prev_hash)
            .execute(self)
            .await;
        let appended = match moved {
            Ok(done) if done.rows_affected() == 0 => Err(StoreError::AuditHeadMoved),
            Ok(_) => self.insert_audit_rows(events).await,
            Err(e) => Err(e),
        };
        if let Some(head) = &self.audit_head {
            *head.lock().expect("audit head lock") = appended.as_ref().ok().map(|()| (last.seq, last.hash.clone()));
        }
        appended
    }

    async fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        // Optional filters as "($n IS NULL OR col = $n)" keep one static statement
        // per direction; both directions walk the seq key (keyset paging).
        let order = if f.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR action = $2) \
             AND ($3 IS NULL OR at >= $3) AND seq > $4 AND ($6 IS NULL OR seq < $6) AND ($7 IS NULL OR actor = $7) \
             AND ($8 IS NULL OR outcome = $8) AND ($9 IS NULL OR at < $9) ORDER BY seq {order} LIMIT $5"
        );
        let sql = match self.dialect {
            Dialect::Sqlite => sql,
            // PostgreSQL cannot infer the type of a parameter that is only tested for NULL.
            Dialect::Postgres => sql
                .replace("($1 IS NULL", "($1::text IS NULL")
                .replace("($2 IS NULL", "($2::text IS NULL")
                .replace("($3 IS NULL", "($3::bigint IS NULL")
                .replace("($6 IS NULL", "($6::bigint IS NULL")
                .replace("($7 IS NULL", "($7::text IS NULL")
                .replace("($8 IS NULL", "($8::text IS NULL")
                .replace("($9 IS NULL", "($9::bigint IS NULL"),
        };
        let rows = query(&sql)
            .bind(f.tenant_id.clone())
            .bind(f.action.clone())
            .bind(f.since_micros)
            .bind(f.after_seq.unwrap_or(0))
            .bind(f.limit)
            .bind(f.before_seq)
            .bind(f.actor.clone())
            .bind(f.outcome.clone())
            .bind(f.until_micros)
            .fetch_all(self)
            .await?;
        rows.iter().map(audit).collect()
    }

    async fn audit_head(&mut self) -> StoreResult<(i64, String)> {
        let row = query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(self).await?;
        Ok((row.get("seq")?, row.get("hash")?))
    }
}

impl SqlTx {
    /// On PostgreSQL, multi-row inserts: a group commit of hundreds of events
    /// is a few round trips. On SQLite, one prepared single-row statement per
    /// event: it runs in place, so there is no round trip to save.
    async fn insert_audit_rows(&mut self, events: &[AuditRecord]) -> StoreResult<()> {
        let rows_per_insert = match self.dialect {
            // In place, a statement costs SQLite little; one that writes several
            // rows and may still fail (the unique id) keeps a statement journal
            // of the pages it changes, which a one-row insert does not need.
            Dialect::Sqlite => 1,
            Dialect::Postgres => AUDIT_ROWS_PER_INSERT,
        };
        for chunk in events.chunks(rows_per_insert) {
            let sql = audit_insert_sql(self.dialect, chunk.len());
            let mut q = query(&sql);
            for e in chunk {
                q = q
                    .bind(e.seq)
                    .bind(&e.id)
                    .bind(e.at_micros)
                    .bind(&e.actor)
                    .bind(&e.actor_role)
                    .bind(e.tenant_id.as_deref())
                    .bind(&e.action)
                    .bind(&e.resource)
                    .bind(&e.outcome)
                    .bind(e.request_id.as_deref())
                    .bind(e.client_ip.as_deref())
                    .bind(&e.prev_hash)
                    .bind(&e.hash);
            }
            q.execute(self).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tessera_core::audit::{verify, AuditChain, AuditEvent, GENESIS_HASH};
    use tessera_core::ports::MetadataStore;

    use crate::{connect, SqlStore};

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            actor: "k1".into(),
            actor_role: "admin".into(),
            tenant_id: Some("acme".into()),
            action: action.into(),
            resource: "tenants/acme".into(),
            outcome: "success".into(),
            request_id: None,
            client_ip: None,
        }
    }

    async fn open() -> (SqlStore, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        (connect(&url).await.expect("store"), url, dir)
    }

    async fn append(store: &SqlStore, action: &str) {
        let mut tx = store.begin_write().await.expect("begin");
        AuditChain::unkeyed().append_in_tx(tx.as_mut(), vec![event(action), event(action)]).await.expect("append");
        tx.commit().await.expect("commit");
    }

    async fn assert_chain(store: &SqlStore, events: i64) {
        let report = verify(store, &AuditChain::unkeyed(), &[]).await.expect("verify");
        assert!(report.ok, "{report:?}");
        assert_eq!((report.checked, report.head_seq), (events, events));
    }

    #[tokio::test]
    async fn a_head_remembered_by_one_process_and_moved_by_another_is_read_again() {
        // The server and an offline command on the same file each remember the head.
        let (server, url, _dir) = open().await;
        let command = connect(&url).await.expect("second store");
        append(&server, "one").await;
        append(&command, "two").await;
        append(&server, "three").await;
        append(&command, "four").await;
        assert_chain(&server, 8).await;
    }

    #[tokio::test]
    async fn the_audit_rows_of_a_write_that_never_committed_leave_no_gap() {
        let (store, _url, _dir) = open().await;
        append(&store, "one").await;
        let mut abandoned = store.begin_write().await.expect("begin");
        AuditChain::unkeyed().append_in_tx(abandoned.as_mut(), vec![event("lost")]).await.expect("append");
        drop(abandoned);
        append(&store, "two").await;
        assert_chain(&store, 4).await;
    }

    #[tokio::test]
    async fn the_database_refuses_an_event_that_does_not_continue_the_head() {
        let (store, _url, _dir) = open().await;
        append(&store, "one").await;
        let mut tx = store.begin_write().await.expect("begin");
        // Continues the genesis hash instead of the head's: a fork of the chain.
        let forged = AuditChain::unkeyed().chain(2, GENESIS_HASH.into(), vec![event("forged")]);
        let refused = tx.append_audit(&forged).await;
        assert!(matches!(refused, Err(tessera_core::ports::StoreError::AuditHeadMoved)), "{refused:?}");
        tx.commit().await.expect("commit");
        assert_chain(&store, 2).await;
    }

    #[tokio::test]
    async fn a_batch_whose_events_do_not_chain_is_refused_and_writes_nothing() {
        let (store, _url, _dir) = open().await;
        append(&store, "one").await;
        let mut tx = store.begin_write().await.expect("begin");
        let (seq, hash) = tx.lock_audit_head().await.expect("head");
        let mut batch = AuditChain::unkeyed().chain(seq, hash, vec![event("a"), event("b"), event("c")]);
        // The second event skips one: the first continues the head, the rest do not chain.
        batch[1].seq += 1;
        let refused = tx.append_audit(&batch).await;
        assert!(refused.is_err(), "{refused:?}");
        tx.commit().await.expect("commit");
        assert_chain(&store, 2).await;
        assert_eq!(store.begin_read().await.expect("read").audit_head().await.expect("head").0, 2);
    }
}
