//! The integration registry and its global defaults (admin).

use crate::ErrorCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::configs::{apply_change, secret_keys, MASK};
use super::secrets::VersionWrite;
use super::{Ctx, DefaultsView, IntegrationView, Tessera};
use crate::domain::{AuthType, ConfigMeta};
use crate::error::ServiceError;
use crate::health::HealthCheckSettings;
use crate::ids::{IntegrationKey, SecretPath, TenantId, PLATFORM_TENANT};
use crate::mcp::McpSettings;
use crate::oauth::{templates, OAuthInput, OAuthSettings};
use crate::ports::{IntegrationRecord, StoreError, StoreTx};
use crate::proxy::ProxySettings;
use crate::schema::ConfigSchema;
use zeroize::Zeroizing;

/// A registry entry as callers send it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationInput {
    /// Slug key (ignored on PUT, where the path names it).
    #[serde(default)]
    #[schema(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    pub key: Option<String>,
    /// Display name.
    #[schema(schema_with = crate::ids::name_schema)]
    pub name: String,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
    /// `none` (default), `api_key`, `basic` or `oauth2`.
    #[serde(default)]
    pub auth_type: Option<String>,
    /// JSON Schema, or a list `[{"key","type","required"}]`
    /// (null or absent: no fields).
    #[serde(default)]
    #[schema(schema_with = config_schema_schema)]
    pub config_schema: Value,
    /// A ready OAuth template (`notion`, `github`, `slack`, `google`, `generic`)
    /// whose settings `oauth` then overrides.
    #[serde(default)]
    pub template: Option<String>,
    /// OAuth settings (the client secret is stored encrypted, never shown).
    #[serde(default)]
    pub oauth: Option<OAuthInput>,
    /// Proxy settings: base URL and how the credential is injected.
    #[serde(default)]
    pub proxy: Option<ProxySettings>,
    /// MCP server for `POST /api/v1/tools/invoke`: `{"url": "https://.../mcp"}`.
    #[serde(default)]
    pub mcp: Option<McpSettings>,
    /// Health check through the proxy path.
    #[serde(default)]
    pub health_check: Option<HealthCheckSettings>,
}

/// `configSchema` is an object (a JSON Schema), a list (`[{key, type, required}]`) or null.
fn config_schema_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Array, Type::Null]))
        .build()
}

impl IntegrationInput {
    fn validate(&self) -> Result<(ConfigSchema, AuthType), ServiceError> {
        crate::ids::display_name(&self.name)?;
        let auth_type = match self.auth_type.as_deref() {
            None => AuthType::None,
            Some(word) => AuthType::parse(word).ok_or_else(|| {
                ServiceError::invalid(
                    ErrorCode::InvalidAuthType,
                    format!("authType must be one of {}", AuthType::words()),
                    Some("authType"),
                )
            })?,
        };
        Ok((ConfigSchema::from_input(&self.config_schema)?, auth_type))
    }

    /// The OAuth settings to store, over `current` (or the template's), and
    /// a client secret to encrypt, if one was sent.
    fn oauth_settings(
        &mut self,
        current: Option<OAuthSettings>,
    ) -> Result<(Option<OAuthSettings>, Option<Zeroizing<String>>), ServiceError> {
        let base = match self.template.as_deref() {
            Some(name) => Some(
                templates::find(name)
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            ErrorCode::UnknownTemplate,
                            format!("no OAuth template {name} (GET /integrations/templates lists them)"),
                            Some("template"),
                        )
                    })?
                    .oauth,
            ),
            None => current,
        };
        match (base, self.oauth.take()) {
            (None, None) => Ok((None, None)),
            (base, input) => {
                let (merged, secret) = base.unwrap_or_default().merge(input.unwrap_or_default())?;
                Ok((Some(merged), secret))
            }
        }
    }
}

/// The stored OAuth settings of an integration, if any.
pub(crate) fn stored_oauth(record: &IntegrationRecord) -> Result<Option<OAuthSettings>, ServiceError> {
    record
        .settings
        .get("oauth")
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .map_err(|e| ServiceError::internal(format!("stored OAuth settings of {} are unreadable: {e}", record.key)))
}

impl Tessera {
    /// Refuses OAuth endpoints without TLS (see [`crate::registry_url::require_https`]).
    fn refuse_plain_http(&self, oauth: Option<&OAuthSettings>) -> Result<(), ServiceError> {
        let Some(o) = oauth else { return Ok(()) };
        for (url, field) in [
            (&o.authorize_url, "oauth.authorizeUrl"),
            (&o.token_url, "oauth.tokenUrl"),
            (&o.revoke_url, "oauth.revokeUrl"),
        ] {
            if let Some(u) = url {
                crate::registry_url::require_https(u, field, self.opts.allow_loopback)?;
            }
        }
        Ok(())
    }

    /// Registers an integration.
    pub async fn create_integration(
        &self,
        ctx: &Ctx,
        input: IntegrationInput,
    ) -> Result<IntegrationView, ServiceError> {
        self.allow_admin(ctx).await?;
        let mut input = input;
        // A template fills what the request leaves out: it is an OAuth
        // integration of the template's category.
        if let Some(template) = input.template.as_deref().and_then(templates::find) {
            input.category = input.category.or_else(|| Some(template.category.to_owned()));
            input.auth_type = input.auth_type.or_else(|| Some(AuthType::OAuth2.as_str().to_owned()));
        }
        let key = IntegrationKey::parse(input.key.as_deref().unwrap_or_default())?;
        let (schema, auth_type) = input.validate()?;
        let (oauth, client_secret) = input.oauth_settings(None)?;
        self.refuse_plain_http(oauth.as_ref())?;
        let mut settings = Map::new();
        if let Some(o) = &oauth {
            settings.insert("oauth".into(), serde_json::to_value(o).expect("settings serialise"));
        }
        if let Some(p) = &input.proxy {
            p.validate()?;
            settings.insert("proxy".into(), serde_json::to_value(p).expect("settings serialise"));
        }
        if let Some(m) = &input.mcp {
            m.validate()?;
            settings.insert("mcp".into(), serde_json::to_value(m).expect("settings serialise"));
        }
        if let Some(h) = &input.health_check {
            h.validate()?;
            settings.insert("healthCheck".into(), serde_json::to_value(h).expect("settings serialise"));
        }
        let now = Utc::now();
        let record = IntegrationRecord {
            key: key.to_string(),
            name: input.name.trim().to_owned(),
            category: input.category,
            auth_type,
            config_schema: schema,
            defaults: Map::new(),
            defaults_meta: ConfigMeta::new(),
            settings,
            created_at: now,
            updated_at: now,
        };
        if client_secret.is_some() {
            self.audit_before_external_write(
                ctx,
                "integration.create",
                &TenantId::platform(),
                &format!("integrations/{key}"),
            )
            .await?;
        }
        let mut tx = self.store.begin_write().await?;
        tx.insert_integration(&record).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ServiceError::conflict(ErrorCode::IntegrationExists, format!("integration {key} already exists"))
            }
            other => other.into(),
        })?;
        self.store_client_secret(tx.as_mut(), ctx, &key, client_secret).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("integration.create", None, format!("integrations/{key}"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(record.into())
    }

    /// Replaces an integration's name, category, auth type and schema (defaults are kept).
    pub async fn update_integration(
        &self,
        ctx: &Ctx,
        key: &str,
        input: IntegrationInput,
    ) -> Result<IntegrationView, ServiceError> {
        self.allow_admin(ctx).await?;
        let key = IntegrationKey::parse(key)?;
        if input.key.as_deref().is_some_and(|k| k != key.as_str()) {
            return Err(ServiceError::invalid(
                ErrorCode::KeyMismatch,
                "the body's key differs from the path's",
                Some("key"),
            ));
        }
        let mut input = input;
        let (schema, auth_type) = input.validate()?;
        if input.oauth.as_ref().is_some_and(|o| o.client_secret.is_some()) {
            self.audit_before_external_write(
                ctx,
                "integration.update",
                &TenantId::platform(),
                &format!("integrations/{key}"),
            )
            .await?;
        }
        let mut tx = self.store.begin_write().await?;
        let mut record = Self::require_integration(tx.as_mut(), &key).await?;
        let (oauth, client_secret) = input.oauth_settings(stored_oauth(&record)?)?;
        self.refuse_plain_http(oauth.as_ref())?;
        match &oauth {
            Some(o) => record.settings.insert("oauth".into(), serde_json::to_value(o).expect("settings serialise")),
            None => record.settings.remove("oauth"),
        };
        if let Some(p) = &input.proxy {
            p.validate()?;
            record.settings.insert("proxy".into(), serde_json::to_value(p).expect("settings serialise"));
        }
        if let Some(m) = &input.mcp {
            m.validate()?;
            record.settings.insert("mcp".into(), serde_json::to_value(m).expect("settings serialise"));
        }
        if let Some(h) = &input.health_check {
            h.validate()?;
            record.settings.insert("healthCheck".into(), serde_json::to_value(h).expect("settings serialise"));
        }
        self.store_client_secret(tx.as_mut(), ctx, &key, client_secret).await?;
        record.name = input.name.trim().to_owned();
        record.category = input.category;
        record.auth_type = auth_type;
        record.config_schema = schema;
        record.updated_at = Utc::now();
        tx.update_integration(&record).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("integration.update", None, format!("integrations/{key}"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(record.into())
    }

    /// Every registered integration (any authenticated caller: schemas are not secret).
    pub async fn list_integrations(&self, _ctx: &Ctx) -> Result<Vec<IntegrationView>, ServiceError> {
        let mut tx = self.store.begin_read().await?;
        let all = tx.list_integrations().await?;
        tx.commit().await?;
        Ok(all.into_iter().map(Into::into).collect())
    }

    /// One integration.
    pub async fn get_integration(&self, _ctx: &Ctx, key: &str) -> Result<IntegrationView, ServiceError> {
        let key = IntegrationKey::parse(key)?;
        let mut tx = self.store.begin_read().await?;
        let record = Self::require_integration(tx.as_mut(), &key).await?;
        tx.commit().await?;
        Ok(record.into())
    }

    /// Removes an integration, every connection to it, and their secrets.
    pub async fn delete_integration(&self, ctx: &Ctx, key: &str) -> Result<(), ServiceError> {
        self.allow_admin(ctx).await?;
        let key = IntegrationKey::parse(key)?;
        let resource = format!("integrations/{key}");
        self.audit_before_external_write(ctx, "integration.delete", &TenantId::platform(), &resource).await?;
        let mut tx = self.store.begin_write().await?;
        Self::require_integration(tx.as_mut(), &key).await?;
        self.secrets.remove_prefix(tx.as_mut(), &SecretPath::config_prefix(&key)).await?;
        self.secrets.remove_prefix(tx.as_mut(), &SecretPath::credentials_prefix(&key)).await?;
        self.secrets.remove_prefix(tx.as_mut(), &SecretPath::oauth_client_prefix(&key)).await?;
        tx.delete_integration(key.as_str()).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event("integration.delete", None, format!("integrations/{key}"), "success")],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `PUT /integrations/{key}/defaults`: global defaults; secret fields are
    /// encrypted under the platform tenant's key.
    pub async fn put_defaults(
        &self,
        ctx: &Ctx,
        key: &str,
        config: Map<String, Value>,
    ) -> Result<DefaultsView, ServiceError> {
        self.allow_admin(ctx).await?;
        let key = IntegrationKey::parse(key)?;
        let resource = format!("integrations/{key}/defaults");
        self.audit_before_external_write(ctx, "config.update", &TenantId::platform(), &resource).await?;
        let mut tx = self.store.begin_write().await?;
        let mut record = Self::require_integration(tx.as_mut(), &key).await?;
        let schema = &record.config_schema;
        let now = Utc::now();
        let ops =
            apply_change(schema, &config, &mut record.defaults, &mut record.defaults_meta, &ctx.principal.id, now)?;
        self.apply_secret_ops(tx.as_mut(), ctx, &TenantId::platform(), &key, ops).await?;
        record.updated_at = now;
        tx.update_integration(&record).await?;
        let fields = config.keys().cloned().collect::<Vec<_>>().join(",");
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "config.update",
                    None,
                    format!("integrations/{key}/defaults?fields={fields}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(masked_defaults(&record, &record.config_schema))
    }

    /// `GET /integrations/{key}/defaults`, secrets masked.
    pub async fn get_defaults(&self, ctx: &Ctx, key: &str) -> Result<DefaultsView, ServiceError> {
        self.allow_admin(ctx).await?;
        let key = IntegrationKey::parse(key)?;
        let mut tx = self.store.begin_read().await?;
        let record = Self::require_integration(tx.as_mut(), &key).await?;
        tx.commit().await?;
        Ok(masked_defaults(&record, &record.config_schema))
    }

    /// `GET /integrations/templates`: the ready OAuth templates.
    pub fn oauth_templates(&self) -> Vec<templates::Template> {
        templates::all()
    }

    /// Encrypts an integration's OAuth client secret under the platform key.
    async fn store_client_secret(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        key: &IntegrationKey,
        secret: Option<Zeroizing<String>>,
    ) -> Result<(), ServiceError> {
        let Some(secret) = secret else { return Ok(()) };
        let path = SecretPath::oauth_client_secret(key);
        let plaintext = Zeroizing::new(serde_json::to_vec(secret.as_str()).expect("strings serialise"));
        let write = VersionWrite {
            tenant: PLATFORM_TENANT,
            path: path.as_str(),
            kind: "value",
            plaintext: &plaintext,
            cas: None,
        };
        self.write_version(tx, ctx, write).await?;
        Ok(())
    }

    pub(crate) async fn require_integration(
        tx: &mut dyn StoreTx,
        key: &IntegrationKey,
    ) -> Result<IntegrationRecord, ServiceError> {
        tx.get_integration(key.as_str()).await?.ok_or_else(|| no_integration(key))
    }
}

/// The error for an integration that is not registered.
pub(crate) fn no_integration(key: &IntegrationKey) -> ServiceError {
    ServiceError::not_found(ErrorCode::IntegrationNotFound, format!("no integration {key}"))
}

fn masked_defaults(record: &IntegrationRecord, schema: &ConfigSchema) -> DefaultsView {
    let mut config = Map::new();
    for (k, v) in &record.defaults {
        let shown = if schema.is_secret(k) { json!(MASK) } else { v.clone() };
        config.insert(k.clone(), shown);
    }
    for k in secret_keys(&record.defaults_meta) {
        config.insert(k.clone(), json!(MASK));
    }
    DefaultsView { integration: record.key.clone(), config }
}
