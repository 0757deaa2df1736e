//! The service: one struct, [`Tessera`], whose methods are every use case.
//! Adapters call these methods with a [`Ctx`] naming the caller; each method
//! checks access, validates, opens one transaction, and audits.

mod api_keys;
mod apply;
mod audit_export;
mod audit_log;
mod audit_sinks;
mod authentication;
mod backfill;
mod bootstrap;
mod configs;
mod connect_page;
mod connect_sessions;
mod connections;
mod console_sessions;
mod credentials;
mod denials;
mod health;
mod integrations;
mod keys;
mod limits;
mod oauth_flow;
mod options;
mod outbound;
mod proxy;
mod proxy_call;
mod readiness;
mod refresh;
mod retry;
mod secret_import;
mod secret_kv;
mod secret_settings;
mod secret_subkeys;
mod secret_views;
mod secrets;
mod shutdown;
mod tenants;
mod tools;
mod transit;
mod transit_admin;
mod usage;
mod usage_stats;
mod view_cache;
mod views;
mod webhooks;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

pub use api_keys::{CreatedApiKey, ScopeInput};
pub use audit_export::{ExportFormat, CSV_HEADER};
pub use audit_log::{AuditEventView, AuditEvents, AuditQuery};
pub use audit_sinks::{AuditSinkOptions, SinkPacing, SinkStep};
pub use backfill::BackfillReport;
pub use bootstrap::{Complete, NeedsOutbound, TesseraBuilder};
pub use configs::{ConfigEntry, ConfigList};
pub use connect_page::{ConnectEnd, ConnectFields, ConnectItem, ConnectKind, ConnectOrigin, ConnectPageView};
pub use connect_sessions::{
    ConnectSessionInput, ConnectSessionView, ConnectedIntegration, CreatedConnectSession, EndUser, MAX_EXPIRES_IN,
};
pub use console_sessions::{ConsoleSession, OpenedSession};
pub use credentials::{
    env_prefix, split_scopes, CredentialInput, CredentialView, RevokedCredentials, Scopes, StoredCredentials,
};
pub use health::{HealthResult, MetricsSnapshot, TenantHealth, TenantsHealth, TroubledConnection};
pub use integrations::IntegrationInput;
pub use keys::{MasterRotation, RewrapReport};
pub use limits::RateLimit;
pub use oauth_flow::{AuthorizationStart, CallbackOutcome, CallbackParams};
pub use options::{ConsoleOptions, EnvClient, OAuthOptions, TesseraOptions};
pub use outbound::Outbound;
pub use proxy_call::{ProxyAnswer, ProxyLimits, ProxyRequest};
pub use readiness::{Component, Readiness, ReadinessCheck};
pub use refresh::RefreshReport;
pub use secret_import::ImportOutcome;
pub use secret_kv::{CustomMetadata, KvWritten, SecretVersionRead};
pub use secret_settings::{KvConfigChange, KvMetadata, SecretMetadataChange, SecretMetadataSet};
pub use secret_subkeys::SecretSubkeys;
pub use secret_views::{
    ApiKeyCreated, ResolvedConnection, SecretRead, SecretReadAnswer, SecretReadData, SecretReadValue, WebhookCreated,
};
pub use secrets::{SecretPayload, SecretWrite};
pub use shutdown::ReleasedLeases;
pub use tools::{ToolInvocation, ToolResult};
pub use transit::{DataKeyOut, Sealed, TransitExport, TransitExportKind, TransitKeyConfig, TransitKeyView};
pub use usage_stats::{UsageReport, UsageRow};
pub use views::*;

pub(crate) use authentication::principal_of_key;
pub(crate) use bootstrap::audit_key_owner;
pub use webhooks::{
    CreatedWebhook, DeliveryLog, DeliveryView, WebhookList, WebhookOptions, WebhookReport, WebhookView,
};

use crate::access::Principal;
use crate::audit::{AuditChain, AuditEvent, AuditWriter};
use crate::error::ServiceError;
use crate::ids::{TenantId, PLATFORM_TENANT};
use crate::keyring::Keyring;
use crate::ports::{MetadataStore, StoreTx};
use crate::secret_store::SecretStore;
use tessera_crypto::KeyOwner;

/// Who is calling, for access checks and audit rows.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The authenticated caller.
    pub principal: Principal,
    /// The request id, if the adapter has one.
    pub request_id: Option<String>,
    /// The client's address, if known.
    pub client_ip: Option<String>,
}

impl Ctx {
    /// A context for an admin CLI command.
    pub fn cli() -> Self {
        Self { principal: Principal::local_admin(), request_id: None, client_ip: None }
    }

    pub(crate) fn event(&self, action: &str, tenant: Option<&str>, resource: String, outcome: &str) -> AuditEvent {
        AuditEvent {
            actor: self.principal.id.clone(),
            actor_role: self.principal.role.as_str().to_owned(),
            tenant_id: tenant.map(str::to_owned),
            action: action.to_owned(),
            resource,
            outcome: outcome.to_owned(),
            request_id: self.request_id.clone(),
            client_ip: self.client_ip.clone(),
        }
    }
}

/// The service layer.
pub struct Tessera {
    pub(crate) store: Arc<dyn MetadataStore>,
    pub(crate) keyring: Keyring,
    pub(crate) secrets: Arc<dyn SecretStore>,
    pub(crate) audit: AuditWriter,
    pub(crate) opts: TesseraOptions,
    /// API key lookups by key hash, with the revocation generation read
    /// before each lookup: used only while no tenant or key was deleted since.
    principals: moka::sync::Cache<String, (u64, Option<Principal>)>,
    /// Hashes of keys that were valid within the last hour: while its address's
    /// anonymous bucket is empty, only such a key is still looked up, so a
    /// neighbour's bad tokens (same NAT or proxy) do not lock out a valid key
    /// whose cached principal expired.
    recent_keys: moka::sync::Cache<String, ()>,
    /// Keys whose `last_used_at` was written within the last minute.
    key_touches: moka::sync::Cache<String, ()>,
    /// Names this process in refresh leases.
    pub(crate) instance_id: String,
    /// One lock per connection, so concurrent readers of an expired token
    /// wait for one refresh instead of each starting their own.
    pub(crate) refresh_locks: moka::sync::Cache<(String, String), Arc<tokio::sync::Mutex<()>>>,
    /// Connections whose `lastUsedAt` was written recently (the write is throttled).
    pub(crate) recent_touches: moka::sync::Cache<(String, String), ()>,
    /// What the service calls the outside world with (OAuth providers, MCP
    /// servers, health probes, webhooks, proxied calls): required when the
    /// service is built; an admin command passes [`Outbound::offline`].
    pub(crate) outbound: Outbound,
    /// Per-caller token buckets, when a rate limit is set.
    limits: Option<limits::CallerLimits>,
    /// Per-address token buckets of anonymous requests, when that limit is set.
    anonymous: Option<limits::AddressLimits>,
    /// This interval's denials of anonymous requests, per client address.
    denials: denials::DenialLog,
    /// Rate limits of the connect page, per session and per client address.
    connect_limits: connect_page::ConnectLimits,
    /// Connection rows and ciphertext of the per-call paths.
    pub(crate) views: view_cache::ViewCache,
    /// Uses of connections not yet added to the store.
    pub(crate) usage: usage_stats::UsageCounts,
    /// When this process last purged old webhook events.
    pub(crate) webhook_purged_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// The platform tenant's incarnation (it can never be deleted).
    platform_incarnation: String,
}

impl Tessera {
    /// How audit events are hashed (for offline commands and checkpoints).
    pub fn audit_chain(&self) -> &AuditChain {
        self.audit.chain()
    }

    /// Whose data keys the platform tenant's are.
    pub(crate) fn platform_owner(&self) -> KeyOwner<'_> {
        KeyOwner { tenant: PLATFORM_TENANT, incarnation: &self.platform_incarnation }
    }

    /// The incarnation of `tenant` as `tx` sees it; "no such tenant" if none.
    pub(crate) async fn incarnation(&self, tx: &mut dyn StoreTx, tenant: &str) -> Result<String, ServiceError> {
        if tenant == PLATFORM_TENANT {
            return Ok(self.platform_incarnation.clone());
        }
        Ok(tx.get_tenant(tenant).await?.ok_or_else(ServiceError::tenant_not_found)?.incarnation)
    }

    /// The credential backend's name.
    pub fn secret_backend(&self) -> &'static str {
        self.secrets.name()
    }

    /// The metadata store's backend name.
    pub fn store_backend(&self) -> &'static str {
        self.store.backend_name()
    }

    /// The metadata store (for offline admin commands such as `migrate`).
    pub fn metadata_store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// The credential backend in use.
    pub fn secret_store(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }

    /// The keyring (for offline admin commands such as `migrate`).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Checks the caller may read `tenant`; a refusal is an audited denial.
    pub(crate) async fn allow_tenant(&self, ctx: &Ctx, tenant: &TenantId) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_tenant(tenant)).await
    }

    /// Checks the caller may `access` the tenant secret at `path` (a scoped
    /// key: within its scopes); a refusal is an audited denial.
    pub(crate) async fn allow_secret(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        path: &str,
        access: crate::access::Access,
    ) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_secret(tenant, path, access)).await
    }

    /// Checks the caller may `access` the tenant's connection to `key`.
    pub(crate) async fn allow_integration(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &str,
        access: crate::access::Access,
    ) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_integration(tenant, key, access)).await
    }

    /// Checks the caller may change `tenant`; a refusal is an audited denial.
    pub(crate) async fn allow_tenant_write(&self, ctx: &Ctx, tenant: &TenantId) -> Result<(), ServiceError> {
        self.audit_denial(ctx, Some(tenant), ctx.principal.ensure_tenant_write(tenant)).await
    }

    /// Checks the caller is an admin; a refusal is an audited denial.
    pub(crate) async fn allow_admin(&self, ctx: &Ctx) -> Result<(), ServiceError> {
        self.audit_denial(ctx, None, ctx.principal.ensure_admin()).await
    }

    pub(crate) async fn audit_denial(
        &self,
        ctx: &Ctx,
        tenant: Option<&TenantId>,
        check: Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        if let Err(denied) = check {
            let resource = tenant.map_or_else(|| "admin".to_owned(), |t| format!("tenants/{t}"));
            self.audit.record(ctx.event("auth.denied", tenant.map(TenantId::as_str), resource, "denied")).await?;
            return Err(denied);
        }
        Ok(())
    }

    /// With a backend outside the metadata store (file, vault), a change
    /// cannot commit atomically with its audit event; so that no change is
    /// ever unaudited, an `attempt` event is made durable first. (With the
    /// database backend the change and its `success` event share one
    /// transaction and this does nothing.)
    pub(crate) async fn audit_before_external_write(
        &self,
        ctx: &Ctx,
        action: &str,
        tenant: &TenantId,
        resource: &str,
    ) -> Result<(), ServiceError> {
        if self.secrets.is_transactional() {
            return Ok(());
        }
        self.audit.record_durable(ctx.event(action, Some(tenant.as_str()), resource.to_owned(), "attempt")).await
    }
}

/// Timestamps as the API shows them: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
