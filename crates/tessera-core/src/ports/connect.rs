//! Port for Hosted Connect sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::StoreResult;

/// Where a connect session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStatus {
    /// Usable until it expires.
    Pending,
    /// The person finished; the token no longer works.
    Completed,
    /// It ran out of time, or was ended early.
    Expired,
    /// The person cancelled it.
    Failed,
}

impl ConnectStatus {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored status.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "completed" => Some(Self::Completed),
            "expired" => Some(Self::Expired),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A connect session. The token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSessionRecord {
    /// Public id (`cs_...`), for the API and audit rows.
    pub id: String,
    /// SHA-256 (hex) of the page token.
    pub token_hash: String,
    /// The tenant whose connections the page may make.
    pub tenant_id: String,
    /// The integrations it may connect; none: every integration.
    pub integrations: Option<Vec<String>>,
    /// Where the browser goes when the person finishes (allow-listed).
    pub redirect_uri: Option<String>,
    /// The platform's user, as the platform described them (`id`, `email`, `displayName`).
    pub end_user: Option<Value>,
    /// Status.
    pub status: ConnectStatus,
    /// Connected so far: `[{"integration", "at"}]`.
    pub connected: Vec<Value>,
    /// The principal that created it.
    pub created_by: String,
    /// Its role.
    pub created_role: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Unusable after.
    pub expires_at: DateTime<Utc>,
    /// When it stopped being pending.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Connect sessions.
#[async_trait]
pub trait ConnectSessionRepo {
    /// Inserts.
    async fn insert_connect_session(&mut self, s: &ConnectSessionRecord) -> StoreResult<()>;
    /// By id.
    async fn get_connect_session(&mut self, id: &str) -> StoreResult<Option<ConnectSessionRecord>>;
    /// By the hash of its token.
    async fn find_connect_session(&mut self, token_hash: &str) -> StoreResult<Option<ConnectSessionRecord>>;
    /// Deletes one; false if it did not exist.
    async fn delete_connect_session(&mut self, id: &str) -> StoreResult<bool>;
    /// Writes status, connected list and end.
    async fn update_connect_session(&mut self, s: &ConnectSessionRecord) -> StoreResult<()>;
    /// Marks up to `limit` pending sessions past their expiry as expired,
    /// returning them (each is returned once, by whichever replica marks it).
    async fn expire_connect_sessions(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ConnectSessionRecord>>;
    /// Deletes ended sessions that ended before `before`.
    async fn purge_connect_sessions(&mut self, before: DateTime<Utc>) -> StoreResult<u64>;
}
