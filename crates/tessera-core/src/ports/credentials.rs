//! Ports for OAuth: credential metadata with its refresh schedule and
//! leases, and the server-side state of authorization flows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// The metadata of a connection's credentials (token values live encrypted
/// in the secret store at `_credentials/<integration>`).
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRecord {
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration_key: String,
    /// `bearer`, ...
    pub token_type: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// When the access token expires; none if it never does.
    pub expires_at: Option<DateTime<Utc>>,
    /// `api`, `oauth` or `apply`.
    pub source: String,
    /// First stored.
    pub created_at: DateTime<Utc>,
    /// Last stored or refreshed.
    pub updated_at: DateTime<Utc>,
    /// Last refreshed.
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Refresh failures in a row.
    pub refresh_failures: u32,
    /// No refresh attempt before this (backoff).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The provider refused the refresh token for good: a new flow is needed.
    pub needs_reauth: bool,
    /// The replica refreshing it now.
    pub lease_owner: Option<String>,
    /// Until when that lease holds.
    pub lease_until: Option<DateTime<Utc>>,
}

/// An authorization flow in progress.
#[derive(Debug, Clone)]
pub struct OAuthStateRecord {
    /// SHA-256 (hex) of the state handed to the browser.
    pub state_hash: String,
    /// Tenant the flow is for.
    pub tenant_id: String,
    /// Integration.
    pub integration_key: String,
    /// Where the browser goes once the flow ends (allow-listed).
    pub redirect_uri: Option<String>,
    /// The callback URL sent to the provider (must be sent again on exchange).
    pub callback_uri: String,
    /// PKCE verifier, encrypted under the tenant's key.
    pub code_verifier: Option<String>,
    /// Principal that started it.
    pub created_by: String,
    /// Its role.
    pub created_role: String,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Unusable after.
    pub expires_at: DateTime<Utc>,
    /// The connect session the flow was started from, if any.
    pub connect_session_id: Option<String>,
    /// That session's page token, encrypted under the tenant's key, so the
    /// provider's return lands back on the page (deleted with the flow).
    pub connect_token: Option<String>,
}

/// Credential metadata and refresh leases.
#[async_trait]
pub trait CredentialRepo {
    /// One connection's credential metadata.
    async fn get_credential(&mut self, tenant: &str, integration: &str) -> StoreResult<Option<CredentialRecord>>;
    /// The same, locked until commit where the database can (PostgreSQL `FOR UPDATE`).
    async fn lock_credential(&mut self, tenant: &str, integration: &str) -> StoreResult<Option<CredentialRecord>>;
    /// Inserts or replaces (every column, lease included).
    async fn upsert_credential(&mut self, c: &CredentialRecord) -> StoreResult<()>;
    /// Deletes one.
    async fn delete_credential(&mut self, tenant: &str, integration: &str) -> StoreResult<bool>;
    /// A tenant's credential metadata.
    async fn list_tenant_credentials(&mut self, tenant: &str) -> StoreResult<Vec<CredentialRecord>>;
    /// Credentials that need attention (a new flow, or refreshes that
    /// failed), most recently changed first, at most `limit`.
    async fn list_troubled_credentials(&mut self, limit: i64) -> StoreResult<Vec<CredentialRecord>>;
    /// Claims up to `limit` refreshable credentials expiring by `due_by`,
    /// whose backoff has passed and that no live lease holds, for `owner`
    /// until `lease_until`; rows another transaction holds are skipped
    /// (PostgreSQL `FOR UPDATE SKIP LOCKED`). Returns (tenant, integration).
    async fn claim_due_credentials(
        &mut self,
        now: DateTime<Utc>,
        due_by: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Claims one credential for `owner` unless a live lease holds it.
    async fn claim_credential(
        &mut self,
        tenant: &str,
        integration: &str,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Frees every refresh lease `owner` holds (a replica shutting down), so
    /// another replica may claim those credentials at once. Returns how many.
    async fn release_credential_leases(&mut self, owner: &str) -> StoreResult<u64>;
    /// How many credentials are stored.
    async fn count_credentials(&mut self) -> StoreResult<i64>;
    /// How many refreshable credentials expire by `due_by` (the refresh queue).
    async fn count_due_credentials(&mut self, due_by: DateTime<Utc>) -> StoreResult<i64>;
}

/// Authorization flows in progress.
#[async_trait]
pub trait OAuthStateRepo {
    /// Records a flow.
    async fn insert_oauth_state(&mut self, s: &OAuthStateRecord) -> StoreResult<()>;
    /// Removes and returns a flow (single use: a second take finds nothing).
    async fn take_oauth_state(&mut self, state_hash: &str) -> StoreResult<Option<OAuthStateRecord>>;
    /// Removes flows that expired before `now`.
    async fn delete_expired_oauth_states(&mut self, now: DateTime<Utc>) -> StoreResult<u64>;
}
