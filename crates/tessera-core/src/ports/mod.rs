//! Ports: what the service layer needs from the outside world.
//!
//! [`MetadataStore`] opens transactions ([`StoreTx`]) over the relational
//! store (SQLite or PostgreSQL); each area of the data model is one small
//! repository trait, all of them reachable from one transaction, so a change
//! and its audit event commit together or not at all. [`KeyProvider`] wraps
//! and unwraps tenant data keys with the key-encryption key.
//!
//! Rows cross this boundary as plain records; ciphertext only, never plaintext.
//! [`Upstream`] sends the proxy's calls to integrations' APIs.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tessera_crypto::{DataKey, KeyOwner, WrappedDataKey};

use crate::domain::{AuthType, ConfigMeta, Health, TenantStatus};
use crate::error::ServiceError;

mod audit_sinks;
mod connect;
mod credentials;
mod sessions;
mod upstream;
mod usage;
mod webhooks;

pub use audit_sinks::AuditSinkRepo;
pub use connect::{ConnectSessionRecord, ConnectSessionRepo, ConnectStatus};
pub use credentials::{CredentialRecord, CredentialRepo, OAuthStateRecord, OAuthStateRepo};
pub use sessions::{ConsoleSessionRecord, SessionRepo};
pub use upstream::{BodyStream, Upstream, UpstreamBody, UpstreamError, UpstreamRequest, UpstreamResponse};
pub use usage::{UsageRecord, UsageRepo};
pub use webhooks::{DeliveryRecord, OutboxRecord, RotationDue, WebhookRecord, WebhookRepo};

/// The error under a store failure (a driver's, an I/O error), kept for the
/// server log; a caller is never shown it.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the metadata store.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint failed; the payload names the thing.
    #[error("{0} already exists")]
    Conflict(String),
    /// The database cannot be reached (or is busy past its timeout).
    #[error("store unavailable: {what}")]
    Unavailable {
        /// What failed, in words.
        what: String,
        /// The driver's error, if any.
        #[source]
        cause: Option<Cause>,
    },
    /// Anything else (logged, shown as an internal error).
    #[error("store error: {what}")]
    Other {
        /// What failed, in words.
        what: String,
        /// The driver's error, if any.
        #[source]
        cause: Option<Cause>,
    },
    /// The audit events did not continue the chain's head: another writer
    /// appended since this one last saw it (a store that remembers the head
    /// between transactions). Nothing was appended; read the head and
    /// chain the events again.
    #[error("the audit chain head moved")]
    AuditHeadMoved,
}

impl StoreError {
    /// A failure described in words.
    pub fn other(what: impl Into<String>) -> Self {
        Self::Other { what: what.into(), cause: None }
    }

    /// The database cannot be reached, in words.
    pub fn unavailable(what: impl Into<String>) -> Self {
        Self::Unavailable { what: what.into(), cause: None }
    }

    /// The same failure, with the error under it kept.
    pub fn caused_by(self, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        let cause = Some(std::sync::Arc::new(error) as Cause);
        match self {
            Self::Unavailable { what, .. } => Self::Unavailable { what, cause },
            Self::Other { what, .. } => Self::Other { what, cause },
            other => other,
        }
    }

    /// The failure and every error under it, `: `-separated (for the log).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            text.push_str(": ");
            text.push_str(&e.to_string());
            next = e.source();
        }
        text
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A tenant row.
#[derive(Debug, Clone)]
pub struct TenantRecord {
    /// Slug id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it may be used.
    pub status: TenantStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// This creation of the id (random): a tenant deleted and created again
    /// is another incarnation, whose data keys and caches are its own.
    pub incarnation: String,
}

impl TenantRecord {
    /// A new tenant: active, created now, a fresh incarnation.
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            status: TenantStatus::Active,
            created_at: Utc::now(),
            incarnation: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// Whose data keys are this tenant's.
    pub fn key_owner(&self) -> KeyOwner<'_> {
        KeyOwner { tenant: &self.id, incarnation: &self.incarnation }
    }
}

/// A wrapped data key row.
#[derive(Clone)]
pub struct DataKeyRecord {
    /// Owner.
    pub tenant_id: String,
    /// The owner's incarnation (see [`TenantRecord::incarnation`]).
    pub incarnation: String,
    /// Version, from 1.
    pub version: u32,
    /// The data key wrapped by the key provider.
    pub wrapped: String,
    /// Which key-encryption key wrapped it.
    pub kek_id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A registry entry.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRecord {
    /// Slug key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Free-form category (`observability`, `productivity`, ...).
    pub category: Option<String>,
    /// How its API authenticates a tenant.
    pub auth_type: AuthType,
    /// Its config schema, parsed (stored normalised).
    pub config_schema: crate::schema::ConfigSchema,
    /// Public global defaults (secret defaults live in the secret store).
    pub defaults: Map<String, Value>,
    /// Per-key metadata of defaults: `{key: {updatedAt, updatedBy, secret}}`.
    pub defaults_meta: ConfigMeta,
    /// Outbound settings (`oauth`, ...); never a secret.
    pub settings: Map<String, Value>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A tenant's connection to an integration.
#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration_key: String,
    /// Public overrides (queryable; never a secret field).
    pub config: Map<String, Value>,
    /// Per-key metadata of overrides: `{key: {updatedAt, updatedBy, secret}}`.
    pub config_meta: ConfigMeta,
    /// Whether the connection may be used.
    pub is_enabled: bool,
    /// From the last check or refresh; none yet.
    pub health_status: Option<Health>,
    /// When health was last checked.
    pub last_health_check: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last resolved or used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Who connected it through a connect session (`sessionId`, `endUser`, `at`).
    pub connected_by: Option<Value>,
}

impl ConnectionRecord {
    /// A new, enabled connection with no config.
    pub fn new(tenant: &str, integration: &str, now: DateTime<Utc>) -> Self {
        Self {
            tenant_id: tenant.to_owned(),
            integration_key: integration.to_owned(),
            config: Map::new(),
            config_meta: ConfigMeta::new(),
            is_enabled: true,
            health_status: None,
            last_health_check: None,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            connected_by: None,
        }
    }
}

/// What reading a tenant's connection needs, fetched in one statement.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    /// The tenant's incarnation, if the tenant exists.
    pub tenant_incarnation: Option<String>,
    /// The integration, if registered. Shared: the view cache keeps one
    /// copy per integration for all its tenants' contexts.
    pub integration: Option<std::sync::Arc<IntegrationRecord>>,
    /// The tenant's connection to it, if any.
    pub connection: Option<std::sync::Arc<ConnectionRecord>>,
    /// The connection's credential metadata, if any.
    pub credential: Option<std::sync::Arc<CredentialRecord>>,
}

impl ConnectionContext {
    /// Whether the tenant exists.
    pub fn tenant_exists(&self) -> bool {
        self.tenant_incarnation.is_some()
    }
}

/// The head of a versioned secret.
#[derive(Debug, Clone)]
pub struct SecretRecord {
    /// Tenant.
    pub tenant_id: String,
    /// Path.
    pub path: String,
    /// Newest version number.
    pub current_version: u32,
    /// How many versions are kept.
    pub max_versions: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last written.
    pub updated_at: DateTime<Utc>,
}

/// One version of a secret.
#[derive(Debug, Clone)]
pub struct SecretVersionRecord {
    /// Version number, from 1.
    pub version: u32,
    /// `value` (a JSON string or scalar) or `data` (a JSON object).
    pub kind: String,
    /// `tsr:v..` ciphertext; none once destroyed.
    pub ciphertext: Option<String>,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Written by (principal id).
    pub created_by: String,
    /// Soft-deleted at.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl SecretVersionRecord {
    /// Whether the version is soft-deleted at `now`: a deletion time in the
    /// future (KV v2's `delete_version_after`) is one that has not come yet,
    /// and the version is still readable until then.
    pub fn is_deleted_at(&self, now: DateTime<Utc>) -> bool {
        self.deleted_at.is_some_and(|at| at <= now)
    }
}

/// Version settings as KV v2 names them (`max_versions`, `cas_required`,
/// `delete_version_after`), of one secret or of a tenant's whole KV mount
/// (`<mount>/config`). Not secret: metadata, as in Vault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvSettings {
    /// Versions to keep; 0: not set here.
    pub max_versions: u32,
    /// Every write must name the version it replaces (check-and-set).
    pub cas_required: bool,
    /// Seconds a new version stays readable before it counts as deleted; 0:
    /// not set here. Negative (a mount's only): turned off for every secret.
    pub delete_version_after: i64,
}

/// An API key row (the key itself is never stored).
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    /// Public id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Its role.
    pub role: crate::access::Role,
    /// Bound tenant.
    pub tenant_id: Option<String>,
    /// SHA-256 of the key.
    pub key_hash: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Created by (principal id).
    pub created_by: String,
    /// Last accepted (written at most once a minute per key).
    pub last_used_at: Option<DateTime<Utc>>,
    /// A scoped key's scopes (`[{"secrets"|"integration", "access"}]`); none: unscoped.
    pub scopes: Option<Value>,
}

/// One audit event as stored, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Public id.
    pub id: String,
    /// When, in microseconds since the epoch.
    pub at_micros: i64,
    /// Principal id (or `anonymous`).
    pub actor: String,
    /// Principal role.
    pub actor_role: String,
    /// Tenant concerned.
    pub tenant_id: Option<String>,
    /// `secret.read`, `config.update`, ...
    pub action: String,
    /// What was touched (`tenants/acme/secrets/stripe/KEY`).
    pub resource: String,
    /// `success`, `denied` or `failure`; `started` for a proxied call
    /// about to be sent (its outcome follows in a second event).
    pub outcome: String,
    /// Request id.
    pub request_id: Option<String>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Hash of the previous event (hex), or 64 zeros for the first.
    pub prev_hash: String,
    /// This event's hash (hex).
    pub hash: String,
}

/// Filter for listing audit events.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only at or after this time (micros).
    pub since_micros: Option<i64>,
    /// Only events with seq greater than this (paging).
    pub after_seq: Option<i64>,
    /// Only events with seq less than this (paging newest first).
    pub before_seq: Option<i64>,
    /// Only this actor (principal id).
    pub actor: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only before this time (micros).
    pub until_micros: Option<i64>,
    /// Newest first (by seq, descending) instead of oldest first.
    pub newest_first: bool,
    /// At most this many.
    pub limit: i64,
}

/// The relational store: SQLite or PostgreSQL.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Opens a read-write transaction.
    async fn begin_write(&self) -> StoreResult<Box<dyn StoreTx>>;
    /// Opens a transaction for reads only: every statement sees one snapshot
    /// (on SQLite; PostgreSQL runs it at READ COMMITTED).
    async fn begin_read(&self) -> StoreResult<Box<dyn StoreTx>>;
    /// A handle for reads without a transaction: each statement sees the
    /// latest committed data, with no snapshot across statements. Cheaper than
    /// [`MetadataStore::begin_read`] (no BEGIN/COMMIT); for request paths whose
    /// statements do not need to agree with each other. Never for writes.
    async fn read(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.begin_read().await
    }
    /// A write transaction that changes nothing a cached view shows (audit
    /// appends, `lastUsedAt`, workers' claims and leases, webhook delivery
    /// bookkeeping): its commit does not move
    /// [`MetadataStore::change_generation`], so the group commit of read
    /// events never invalidates cached views.
    async fn begin_log_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.begin_write().await
    }
    /// A log write that holds only the audit events of accesses (reads,
    /// denials, proxy and tool calls), never a change. Its commit returns
    /// once the events are committed (in the database's log: a crash of this
    /// process loses none), but, unless the store was set to make read audit
    /// durable at once, without waiting for the disk: the store makes them
    /// durable within a bounded time (see the store's `ReadAudit`).
    async fn begin_access_log_write(&self) -> StoreResult<Box<dyn StoreTx>> {
        self.begin_log_write().await
    }
    /// Returns once every transaction committed before the call is on disk,
    /// including access-log writes whose commit did not wait for it (before
    /// a checkpoint of the audit head is written outside the database).
    async fn sync_log(&self) -> StoreResult<()> {
        Ok(())
    }
    /// A counter that moves after every committed write transaction (other
    /// than log appends) and, where the store can tell, after other replicas'
    /// writes. Read it before a read whose result is cached: while it has not
    /// moved, nothing the read saw has changed (up to the delivery delay of
    /// other replicas' notices).
    fn change_generation(&self) -> u64;
    /// A counter that moves after every committed deletion of a tenant or an
    /// API key, here and (where the store can tell) on other replicas, and
    /// whenever the store may have missed one. Cached principals and data
    /// keys are dropped when it moves, so a deletion takes effect at once.
    fn revocation_generation(&self) -> u64 {
        self.change_generation()
    }
    /// Whether every revocation anywhere moves
    /// [`MetadataStore::revocation_generation`] promptly: true without other
    /// replicas, or while their notices are followed. While false, nothing
    /// that a revocation must end (a principal) may be cached.
    fn sees_revocations(&self) -> bool {
        false
    }
    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;
}

/// One transaction over every repository. After any error the transaction
/// is unusable (PostgreSQL aborts it; SQLite would go on, but no caller may
/// count on that): drop it, which rolls it back.
#[async_trait]
pub trait StoreTx:
    TenantRepo
    + KeyRepo
    + IntegrationRepo
    + ConnectionRepo
    + CredentialRepo
    + OAuthStateRepo
    + SecretRepo
    + AccessRepo
    + AuditRepo
    + WebhookRepo
    + SessionRepo
    + ConnectSessionRepo
    + UsageRepo
    + AuditSinkRepo
    + Send
{
    /// Commits; nothing is visible to others before this returns Ok.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// Tenants.
#[async_trait]
pub trait TenantRepo {
    /// Inserts; `Conflict` if the id exists.
    async fn insert_tenant(&mut self, t: &TenantRecord) -> StoreResult<()>;
    /// One tenant.
    async fn get_tenant(&mut self, id: &str) -> StoreResult<Option<TenantRecord>>;
    /// A page of tenants (the reserved one aside) by id, after `after`,
    /// whose id starts with or whose name contains `search` (lowercase;
    /// `%`, `_` and `\\` in it match themselves).
    async fn list_tenants_page(
        &mut self,
        search: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<TenantRecord>>;
    /// All tenants but the reserved one, by id.
    async fn list_tenants(&mut self) -> StoreResult<Vec<TenantRecord>>;
    /// Deletes the tenant and, by cascade, its keys, connections, secrets and API keys.
    async fn delete_tenant(&mut self, id: &str) -> StoreResult<bool>;
}

/// Wrapped data keys and the key-encryption key's check value.
#[async_trait]
pub trait KeyRepo {
    /// Adds a data key version.
    async fn insert_data_key(&mut self, k: &DataKeyRecord) -> StoreResult<()>;
    /// One version.
    async fn get_data_key(&mut self, tenant: &str, version: u32) -> StoreResult<Option<DataKeyRecord>>;
    /// All versions, oldest first.
    async fn list_data_keys(&mut self, tenant: &str) -> StoreResult<Vec<DataKeyRecord>>;
    /// The newest version number.
    async fn latest_data_key_version(&mut self, tenant: &str) -> StoreResult<Option<u32>>;
    /// The tenant's incarnation and its newest data key version, in one
    /// statement; none if the tenant does not exist.
    async fn current_data_key(&mut self, tenant: &str) -> StoreResult<Option<(String, Option<u32>)>>;
    /// The stored check value of the key-encryption key, if any.
    async fn get_kek_check(&mut self) -> StoreResult<Option<(String, String)>>;
    /// Stores the check value (`kek_id`, ciphertext) once.
    async fn set_kek_check(&mut self, kek_id: &str, check: &str) -> StoreResult<()>;
    /// Replaces the check value (after the master key rotated).
    async fn replace_kek_check(&mut self, kek_id: &str, check: &str) -> StoreResult<()>;
    /// The wrapped audit key and the first seq it keys, if the chain is keyed.
    async fn get_audit_key(&mut self) -> StoreResult<Option<(String, i64)>>;
    /// Records the audit key once (after the key check value exists);
    /// `Conflict` if another process recorded one first.
    async fn set_audit_key(&mut self, wrapped: &str, keyed_from: i64) -> StoreResult<()>;
    /// Replaces the audit key's wrap (after the master key rotated).
    async fn replace_audit_key(&mut self, wrapped: &str) -> StoreResult<()>;
    /// Another wrap of a data key, under the key-encryption key `kek_id`.
    async fn get_data_key_wrap(&mut self, tenant: &str, version: u32, kek_id: &str) -> StoreResult<Option<String>>;
    /// Every tenant's data keys, in (tenant, version) order after `after`.
    async fn list_all_data_keys(&mut self, after: Option<(&str, u32)>, limit: i64) -> StoreResult<Vec<DataKeyRecord>>;
    /// Rewraps a batch of `(previous, new wrap)` pairs (distinct keys) in a
    /// constant number of statements: every new wrap becomes its key's wrap
    /// under `new_kek_id`, and every previous wrap is kept as an extra one.
    async fn rewrap_data_keys(&mut self, batch: &[(DataKeyRecord, String)], new_kek_id: &str) -> StoreResult<()>;
    /// Deletes every extra wrap (once no server uses an old key).
    async fn delete_extra_wraps(&mut self) -> StoreResult<u64>;
}

/// The integration registry and its global defaults.
#[async_trait]
pub trait IntegrationRepo {
    /// Inserts; `Conflict` if the key exists.
    async fn insert_integration(&mut self, i: &IntegrationRecord) -> StoreResult<()>;
    /// Replaces name, category, auth type, schema, defaults and their metadata.
    async fn update_integration(&mut self, i: &IntegrationRecord) -> StoreResult<()>;
    /// One entry.
    async fn get_integration(&mut self, key: &str) -> StoreResult<Option<IntegrationRecord>>;
    /// All entries by key.
    async fn list_integrations(&mut self) -> StoreResult<Vec<IntegrationRecord>>;
    /// Deletes the entry and its connections.
    async fn delete_integration(&mut self, key: &str) -> StoreResult<bool>;
}

/// Connections (tenant x integration).
#[async_trait]
pub trait ConnectionRepo {
    /// One connection.
    async fn get_connection(&mut self, tenant: &str, integration: &str) -> StoreResult<Option<ConnectionRecord>>;
    /// Whether the tenant exists, the integration, and the connection, in one statement.
    async fn get_connection_context(&mut self, tenant: &str, integration: &str) -> StoreResult<ConnectionContext>;
    /// Inserts or replaces.
    async fn upsert_connection(&mut self, c: &ConnectionRecord) -> StoreResult<()>;
    /// A tenant's connections.
    async fn list_tenant_connections(&mut self, tenant: &str) -> StoreResult<Vec<ConnectionRecord>>;
    /// Every connection of an integration whose public config has each
    /// `(field, value)` (values compared as JSON).
    async fn find_connections(
        &mut self,
        integration: &str,
        filters: &[(String, Value)],
    ) -> StoreResult<Vec<ConnectionRecord>>;
    /// Deletes one.
    async fn delete_connection(&mut self, tenant: &str, integration: &str) -> StoreResult<bool>;
    /// Records a use.
    async fn touch_connection(&mut self, tenant: &str, integration: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Claims up to `limit` enabled connections of `integration` last checked
    /// before `due_before` (or never) by setting their `last_health_check` to
    /// `now`; rows another transaction holds are skipped. Returns tenant ids.
    async fn claim_due_health_checks(
        &mut self,
        integration: &str,
        due_before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Every connection's (tenant, integration, health status), the platform tenant aside.
    async fn list_connection_health(&mut self) -> StoreResult<Vec<(String, String, Option<Health>)>>;
    /// How many tenants there are (the platform tenant aside), and their
    /// connections by `health_status` (`None`: never checked), by counting
    /// rather than listing: for metrics scrapes.
    async fn count_health(&mut self) -> StoreResult<(i64, Vec<(Option<Health>, i64)>)>;
}

/// Versioned secrets in the database backend.
#[async_trait]
pub trait SecretRepo {
    /// Sets (or, with none, clears) a secret's custom metadata (JSON text);
    /// false if the secret has no head row here.
    async fn set_secret_custom_metadata(&mut self, tenant: &str, path: &str, json: Option<&str>) -> StoreResult<bool>;
    /// A secret's custom metadata (JSON text), if set.
    async fn get_secret_custom_metadata(&mut self, tenant: &str, path: &str) -> StoreResult<Option<String>>;
    /// A secret's own version settings and its oldest version as KV v2
    /// counts it (0 until versions were first pruned); none without a head row.
    async fn get_secret_settings(&mut self, tenant: &str, path: &str) -> StoreResult<Option<(KvSettings, u32)>>;
    /// Replaces a secret's own version settings; false if it has no head row.
    async fn set_secret_settings(&mut self, tenant: &str, path: &str, settings: &KvSettings) -> StoreResult<bool>;
    /// A tenant's KV mount settings, if ever set.
    async fn get_kv_config(&mut self, tenant: &str) -> StoreResult<Option<KvSettings>>;
    /// Replaces a tenant's KV mount settings.
    async fn set_kv_config(&mut self, tenant: &str, settings: &KvSettings, at: DateTime<Utc>) -> StoreResult<()>;
    /// What a write to one secret must follow, in one statement: the
    /// secret's own settings and its tenant's mount settings, each if set.
    async fn get_version_rules(
        &mut self,
        tenant: &str,
        path: &str,
    ) -> StoreResult<(Option<KvSettings>, Option<KvSettings>)>;
    /// Makes concurrent writers of one secret take turns until the end of
    /// the transaction (each then reads the head the previous one left), so
    /// that each write gets its own version. PostgreSQL: a transaction-level
    /// advisory lock; SQLite: nothing to do, its writers already take turns.
    async fn lock_secret_path(&mut self, tenant: &str, path: &str) -> StoreResult<()>;
    /// The head row.
    async fn get_secret(&mut self, tenant: &str, path: &str) -> StoreResult<Option<SecretRecord>>;
    /// Inserts or updates the head row.
    async fn upsert_secret(&mut self, s: &SecretRecord) -> StoreResult<()>;
    /// Creates the head row at version 1, or moves it to its next version,
    /// in one statement; returns the new current version.
    async fn next_secret_version(
        &mut self,
        tenant: &str,
        path: &str,
        max_versions: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<u32>;
    /// Adds a version.
    async fn insert_secret_version(&mut self, tenant: &str, path: &str, v: &SecretVersionRecord) -> StoreResult<()>;
    /// One version.
    async fn get_secret_version(
        &mut self,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> StoreResult<Option<SecretVersionRecord>>;
    /// The head row with its current version, in one statement; the version
    /// is none if its row is missing.
    async fn get_secret_latest(
        &mut self,
        tenant: &str,
        path: &str,
    ) -> StoreResult<Option<(SecretRecord, Option<SecretVersionRecord>)>>;
    /// Every kept version, oldest first.
    async fn list_secret_versions(&mut self, tenant: &str, path: &str) -> StoreResult<Vec<SecretVersionRecord>>;
    /// Sets or clears `deleted_at` of one version.
    async fn set_version_deleted(
        &mut self,
        tenant: &str,
        path: &str,
        version: u32,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Replaces the ciphertext of one version (rewrap).
    async fn set_version_ciphertext(
        &mut self,
        tenant: &str,
        path: &str,
        version: u32,
        ciphertext: &str,
    ) -> StoreResult<()>;
    /// Erases the ciphertext of one version.
    async fn destroy_version(&mut self, tenant: &str, path: &str, version: u32) -> StoreResult<()>;
    /// Removes versions older than `keep_from`.
    async fn prune_versions(&mut self, tenant: &str, path: &str, keep_from: u32) -> StoreResult<()>;
    /// Paths of a tenant starting with `prefix`, sorted.
    async fn list_secret_paths(&mut self, tenant: &str, prefix: &str) -> StoreResult<Vec<String>>;
    /// Removes a secret and every version.
    async fn delete_secret(&mut self, tenant: &str, path: &str) -> StoreResult<()>;
    /// Removes every secret whose path starts with `prefix`, in every tenant.
    async fn delete_secrets_with_prefix(&mut self, prefix: &str) -> StoreResult<u64>;
}

/// API keys.
#[async_trait]
pub trait AccessRepo {
    /// Inserts.
    async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> StoreResult<()>;
    /// The key whose hash this is.
    async fn find_api_key_by_hash(&mut self, hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// All keys, or a tenant's.
    async fn list_api_keys(&mut self, tenant: Option<&str>) -> StoreResult<Vec<ApiKeyRecord>>;
    /// One key.
    async fn get_api_key(&mut self, id: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Deletes one.
    async fn delete_api_key(&mut self, id: &str) -> StoreResult<bool>;
    /// How many keys exist.
    async fn count_api_keys(&mut self) -> StoreResult<i64>;
    /// Records that a key was accepted.
    async fn touch_api_key(&mut self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
}

/// The audit chain.
#[async_trait]
pub trait AuditRepo {
    /// Locks and returns the chain head `(seq, hash)`; held until commit, so
    /// appends are serialised across connections and replicas. A store may
    /// answer from memory; then [`AuditRepo::append_audit`] checks the head
    /// and refuses with [`StoreError::AuditHeadMoved`] if it was wrong.
    async fn lock_audit_head(&mut self) -> StoreResult<(i64, String)>;
    /// Appends events (already chained) and moves the head to the last.
    async fn append_audit(&mut self, events: &[AuditRecord]) -> StoreResult<()>;
    /// Events matching a filter, by seq.
    async fn list_audit(&mut self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// The current head without locking.
    async fn audit_head(&mut self) -> StoreResult<(i64, String)>;
}

/// Wraps and unwraps tenant data keys with a key-encryption key.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    /// Identifies the key-encryption key in use (stored beside each wrapped key).
    fn kek_id(&self) -> String;
    /// Wraps a data key of an owner (tenant and incarnation) and version.
    async fn wrap(&self, owner: KeyOwner<'_>, version: u32, dek: &DataKey) -> Result<WrappedDataKey, ServiceError>;
    /// Unwraps it.
    async fn unwrap(
        &self,
        owner: KeyOwner<'_>,
        version: u32,
        wrapped: &WrappedDataKey,
    ) -> Result<DataKey, ServiceError>;
    /// Makes a check value the provider can later verify (detects a wrong key at start).
    async fn check_value(&self) -> Result<String, ServiceError>;
    /// Verifies a check value made by [`KeyProvider::check_value`].
    async fn verify_check_value(&self, check: &str) -> Result<(), ServiceError>;
}
