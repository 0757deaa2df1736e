//! What the use cases return: plain, serialisable views with no secret values.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::rfc3339;
use crate::domain::{AuthType, Health, TenantStatus};
use crate::ports::{ApiKeyRecord, ConnectionRecord, CredentialRecord, IntegrationRecord, TenantRecord};

/// A tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    /// Slug id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether it may be used.
    pub status: TenantStatus,
    /// RFC 3339.
    pub created_at: String,
}

impl From<TenantRecord> for TenantView {
    fn from(t: TenantRecord) -> Self {
        Self { id: t.id, name: t.name, status: t.status, created_at: rfc3339(t.created_at) }
    }
}

/// A registry entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView {
    /// Slug key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: Option<String>,
    /// How its API authenticates a tenant.
    pub auth_type: AuthType,
    /// Normalised JSON Schema.
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// OAuth settings (`clientSecretSet` says whether a secret is stored; it never shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub oauth: Option<Value>,
    /// Proxy settings (base URL, credential injection). `auth` shows the
    /// injection that applies: for an `oauth2` integration whose settings name
    /// none, the default `{"type": "bearer", "from": "credentials"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub proxy: Option<Value>,
    /// MCP server settings (`url`), for tool invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub mcp: Option<Value>,
    /// Health check settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub health_check: Option<Value>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// Stored proxy settings with the injection that applies written out
/// (a default shows as what it is); as stored if they do not parse.
fn resolved_proxy(raw: &Value, auth_type: AuthType) -> Value {
    match serde_json::from_value::<crate::proxy::ProxySettings>(raw.clone()) {
        Ok(settings) => serde_json::to_value(settings.resolved(auth_type)).unwrap_or_else(|_| raw.clone()),
        Err(_) => raw.clone(),
    }
}

impl From<IntegrationRecord> for IntegrationView {
    fn from(i: IntegrationRecord) -> Self {
        let proxy = i.settings.get("proxy").map(|raw| resolved_proxy(raw, i.auth_type));
        Self {
            key: i.key,
            name: i.name,
            category: i.category,
            auth_type: i.auth_type,
            config_schema: i.config_schema.normalised().clone(),
            oauth: i.settings.get("oauth").cloned(),
            proxy,
            mcp: i.settings.get("mcp").cloned(),
            health_check: i.settings.get("healthCheck").cloned(),
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

/// Global defaults of an integration, secrets masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultsView {
    /// Integration key.
    pub integration: String,
    /// Defaults; secret fields show `[SECRET]`.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
}

/// A tenant's connection to an integration (no secret values).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// Tenant.
    pub tenant_id: String,
    /// Integration key.
    pub integration: String,
    /// The tenant's public overrides.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Names of the secret fields the tenant has set (values never shown).
    pub secret_fields: Vec<String>,
    /// Whether it may be used.
    pub is_enabled: bool,
    /// From the last check or token refresh; null: never checked.
    pub health_status: Option<Health>,
    /// RFC 3339 or null.
    pub last_health_check: Option<String>,
    /// Whether any credential or secret field is stored.
    pub has_credentials: bool,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// Last used, if ever.
    pub last_used_at: Option<String>,
    /// Credential metadata (never a token), if credentials are stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<super::CredentialView>,
    /// Who connected it on the connect page: `{"sessionId", "endUser", "at"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub connected_by: Option<Value>,
}

impl ConnectionView {
    /// The view with the connection's credential metadata.
    pub fn with_credential(c: ConnectionRecord, cred: Option<&CredentialRecord>) -> Self {
        let mut view = Self::from(c);
        if let Some(cred) = cred {
            view.has_credentials = true;
            view.credentials = Some(super::CredentialView::from_record(cred));
        }
        view
    }
}

impl From<ConnectionRecord> for ConnectionView {
    fn from(c: ConnectionRecord) -> Self {
        let secret_fields: Vec<String> =
            c.config_meta.iter().filter(|(_, m)| m.secret).map(|(k, _)| k.clone()).collect();
        Self {
            tenant_id: c.tenant_id,
            integration: c.integration_key,
            config: c.config,
            has_credentials: !secret_fields.is_empty(),
            secret_fields,
            is_enabled: c.is_enabled,
            health_status: c.health_status,
            last_health_check: c.last_health_check.map(rfc3339),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            last_used_at: c.last_used_at.map(rfc3339),
            credentials: None,
            connected_by: c.connected_by,
        }
    }
}

/// One line of a tenant's integration list.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantIntegrationItem {
    /// Integration key.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Category.
    pub category: Option<String>,
    /// Whether the tenant has stored credentials or secret fields for it.
    pub has_credentials: bool,
    /// Whether the tenant has a connection to it.
    pub connected: bool,
    /// Whether that connection is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// When the connection was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When its credentials expire (null: never), for connected integrations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<String>>,
    /// Health, for connected integrations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_status: Option<Health>,
    /// True when the provider refused the refresh token for good: connect again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_reauth: Option<bool>,
    /// When its health was last checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_health_check: Option<String>,
    /// When it was last used (a resolved read, proxy or tool call; written at most once a minute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// The answer of `GET /tenants/{tenantId}/integrations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantIntegrations {
    /// Tenant.
    pub tenant_id: String,
    /// Every registered integration.
    pub integrations: Vec<TenantIntegrationItem>,
}

/// A match of a connection query.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionMatch {
    /// Tenant.
    pub tenant_id: String,
    /// Public config.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Enabled.
    pub is_enabled: bool,
}

/// An API key's public view (never the key or its hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Bound tenant.
    pub tenant_id: Option<String>,
    /// Created.
    pub created_at: String,
    /// Creator.
    pub created_by: String,
    /// Last accepted (to the minute); none if never used.
    pub last_used_at: Option<String>,
    /// A scoped key's scopes; absent: unscoped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub scopes: Option<Value>,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role.as_str().to_owned(),
            tenant_id: k.tenant_id,
            created_at: rfc3339(k.created_at),
            created_by: k.created_by,
            last_used_at: k.last_used_at.map(rfc3339),
            scopes: k.scopes,
        }
    }
}

/// A tenant data key version.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyVersionView {
    /// Version.
    pub version: u32,
    /// Created.
    pub created_at: String,
    /// Which key-encryption key wraps it.
    pub kek_id: String,
}

/// A tenant's data key versions.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeysView {
    /// Tenant.
    pub tenant_id: String,
    /// Newest version, used for new writes.
    pub latest_version: u32,
    /// Every version, oldest first (all still decrypt).
    pub versions: Vec<KeyVersionView>,
}

/// Answer to a secret write.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretWritten {
    /// Path.
    pub path: String,
    /// New version.
    pub version: u32,
    /// RFC 3339.
    pub created_at: String,
}

/// One version's metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersionView {
    /// Version.
    pub version: u32,
    /// Created.
    pub created_at: String,
    /// Creator.
    pub created_by: String,
    /// Soft-deleted at; null if not deleted.
    #[schema(required)]
    pub deleted_at: Option<String>,
    /// Erased for good.
    pub destroyed: bool,
}

/// A secret's metadata: versions, never values.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretMetadataView {
    /// Path.
    pub path: String,
    /// Newest version.
    pub current_version: u32,
    /// Versions kept.
    pub max_versions: u32,
    /// Created.
    pub created_at: String,
    /// Last written.
    pub updated_at: String,
    /// Rotation policy: days after the last write when
    /// `secret.rotation_due` is sent; null if none.
    #[schema(required)]
    pub rotate_after_days: Option<u32>,
    /// Kept versions, oldest first.
    pub versions: Vec<SecretVersionView>,
}

/// Secret paths under a prefix.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretList {
    /// Tenant.
    pub tenant_id: String,
    /// Paths, sorted.
    pub paths: Vec<String>,
}

/// The answer of `GET /tenants`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantList {
    /// The tenants the caller may see (a tenant-bound key: its own).
    pub tenants: Vec<TenantView>,
}

/// The answer of `GET /integrations`: the registry.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationList {
    /// Every registered integration.
    pub integrations: Vec<IntegrationView>,
}

/// The answer of `GET /api-keys` (never a key or its hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    /// The keys the caller may see.
    pub api_keys: Vec<ApiKeyView>,
}

/// The answer of `GET /integrations/{key}/connections`. (Fields in
/// alphabetical order: the order the answer had as a `json!` map.)
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionMatches {
    /// The tenants whose public config matches every filter.
    pub connections: Vec<ConnectionMatch>,
    /// The integration key, as asked.
    pub integration: String,
}
