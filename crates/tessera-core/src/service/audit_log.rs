//! Reading and verifying the audit log.

use crate::ErrorCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{rfc3339, Ctx, Tessera};
use crate::access::Role;
use crate::audit::{verify, Checkpoint, VerifyReport};
use crate::error::ServiceError;
use crate::ids::TenantId;
use crate::ports::{AuditFilter, AuditRecord};

/// One audit event as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventView {
    /// Chain position.
    pub seq: i64,
    /// Id.
    pub id: String,
    /// RFC 3339.
    pub at: String,
    /// Principal id.
    pub actor: String,
    /// Principal role.
    pub actor_role: String,
    /// Tenant.
    pub tenant_id: Option<String>,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// Outcome.
    pub outcome: String,
    /// Request id.
    pub request_id: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Previous hash.
    pub prev_hash: String,
    /// Hash.
    pub hash: String,
}

impl From<AuditRecord> for AuditEventView {
    fn from(r: AuditRecord) -> Self {
        let at = DateTime::<Utc>::from_timestamp_micros(r.at_micros).unwrap_or_default();
        Self {
            seq: r.seq,
            id: r.id,
            at: rfc3339(at),
            actor: r.actor,
            actor_role: r.actor_role,
            tenant_id: r.tenant_id,
            action: r.action,
            resource: r.resource,
            outcome: r.outcome,
            request_id: r.request_id,
            client_ip: r.client_ip,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// `GET /audit` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvents {
    /// Events, oldest first.
    pub events: Vec<AuditEventView>,
}

/// Query of `GET /audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Tenant.
    pub tenant_id: Option<String>,
    /// Action.
    pub action: Option<String>,
    /// RFC 3339 lower bound.
    pub since: Option<String>,
    /// Only after this seq.
    pub after_seq: Option<i64>,
    /// Max events (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Only before this seq (paging newest first).
    pub before_seq: Option<i64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    pub until: Option<String>,
    /// Newest first.
    pub newest_first: bool,
}

impl Tessera {
    /// `GET /audit`: admins and auditors see every tenant; a tenant admin its own.
    pub async fn list_audit(&self, ctx: &Ctx, q: AuditQuery) -> Result<AuditEvents, ServiceError> {
        let tenant = match ctx.principal.role {
            Role::Admin | Role::Auditor => q.tenant_id.as_deref().map(TenantId::parse).transpose()?,
            Role::TenantAdmin => {
                let own = ctx.principal.tenant.clone().ok_or_else(ServiceError::tenant_not_found)?;
                if let Some(t) = q.tenant_id.as_deref() {
                    self.allow_tenant(ctx, &TenantId::parse(t)?).await?;
                }
                Some(own)
            }
            Role::TenantService => {
                self.audit_denial(
                    ctx,
                    None,
                    Err(ServiceError::forbidden("a tenant_service key cannot read the audit log")),
                )
                .await?;
                None
            }
        };
        let filter = AuditFilter {
            tenant_id: tenant.map(|t| t.to_string()),
            action: q.action,
            since_micros: time_bound(q.since.as_deref(), "since")?,
            after_seq: q.after_seq,
            before_seq: q.before_seq,
            actor: q.actor,
            outcome: q.outcome,
            until_micros: time_bound(q.until.as_deref(), "until")?,
            newest_first: q.newest_first,
            limit: q.limit.unwrap_or(100).clamp(1, 1000),
        };
        let mut tx = self.store.begin_read().await?;
        let events = tx.list_audit(&filter).await?;
        tx.commit().await?;
        Ok(AuditEvents { events: events.into_iter().map(Into::into).collect() })
    }

    /// `GET /audit/verify` (admins and auditors).
    pub async fn verify_audit(&self, ctx: &Ctx) -> Result<VerifyReport, ServiceError> {
        if ctx.principal.role != Role::Auditor {
            self.allow_admin(ctx).await?;
        }
        verify(self.store.as_ref(), self.audit.chain(), &[]).await
    }

    /// Verifies the chain and the checkpoints kept outside the database
    /// (`tessera audit verify`, offline).
    pub async fn verify_audit_with(&self, checkpoints: &[Checkpoint]) -> Result<VerifyReport, ServiceError> {
        verify(self.store.as_ref(), self.audit.chain(), checkpoints).await
    }

    /// Returns once every audit event committed so far is on disk (access
    /// events are committed before their answer but may reach the disk a
    /// few milliseconds later; see `MetadataStore::begin_access_log_write`).
    pub async fn sync_audit_log(&self) -> Result<(), ServiceError> {
        Ok(self.store.sync_log().await?)
    }

    /// A signed checkpoint of the chain's head now, to keep outside the
    /// database; none while the chain is empty or has no key.
    pub async fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, ServiceError> {
        let mut tx = self.store.read().await?;
        let (seq, hash) = tx.audit_head().await?;
        tx.commit().await?;
        if seq == 0 {
            return Ok(None);
        }
        // A checkpoint outside the database must never name an event that a
        // power loss could still take away (an access event not yet on disk).
        self.store.sync_log().await?;
        Ok(self.audit.chain().checkpoint(seq, &hash))
    }
}

/// An RFC 3339 bound of a query, in micros.
fn time_bound(raw: Option<&str>, field: &str) -> Result<Option<i64>, ServiceError> {
    let code = if field == "since" { ErrorCode::InvalidSince } else { ErrorCode::InvalidUntil };
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_micros())
            .map_err(|_| ServiceError::invalid(code, format!("{field} must be an RFC 3339 time"), Some(field)))
    })
    .transpose()
}
