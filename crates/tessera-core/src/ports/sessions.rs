//! Port for the console's sign-in sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// A console session. The session token itself is never stored: only its
/// SHA-256 hash, so a copy of the database signs nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// SHA-256 (hex) of the session token.
    pub id_hash: String,
    /// The API key the session was opened with; none for the root token.
    /// Deleting the key deletes its sessions (foreign key).
    pub key_id: Option<String>,
    /// For a root-token session: SHA-256 (hex) of the root token then, so a
    /// changed `TESSERA_ROOT_TOKEN` ends it.
    pub root_fingerprint: Option<String>,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last request (written at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, whatever the activity.
    pub expires_at: DateTime<Utc>,
}

/// Console sessions.
#[async_trait]
pub trait SessionRepo {
    /// Inserts.
    async fn insert_console_session(&mut self, s: &ConsoleSessionRecord) -> StoreResult<()>;
    /// The session with this hash.
    async fn get_console_session(&mut self, id_hash: &str) -> StoreResult<Option<ConsoleSessionRecord>>;
    /// Records activity.
    async fn touch_console_session(&mut self, id_hash: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Deletes one (sign-out); false if it did not exist.
    async fn delete_console_session(&mut self, id_hash: &str) -> StoreResult<bool>;
    /// Deletes sessions past their absolute end or idle since `idle_before`.
    async fn delete_stale_console_sessions(
        &mut self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> StoreResult<u64>;
}
