//! Connection credentials as seed 001 describes them: store (`POST`),
//! metadata (`GET`, never a token), revoke (`DELETE`, RFC 7009 at the
//! provider when it has an endpoint). The token values live in the secret
//! store as one `data` secret per connection (`_credentials/<key>/tokens`),
//! so a refresh replaces access and refresh token in one version.

use crate::ErrorCode;
use chrono::{DateTime, Duration as TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::integrations::stored_oauth;
use super::secrets::VersionWrite;
use super::{rfc3339, Ctx, Tessera};
use crate::access::Access;
use crate::access::Role;
use crate::domain::WebhookEvent;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, SecretPath, TenantId};
use crate::oauth::settings::not_configured;
use crate::oauth::{OAuthClientConfig, OAuthSettings, TokenHint};
use crate::ports::{ConnectionRecord, CredentialRecord, IntegrationRecord, StoreTx, TenantRecord};
use tessera_crypto::KeyOwner;

/// Longest token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The body of `POST .../credentials`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialInput {
    /// The access token (or API key).
    #[schema(min_length = 1, max_length = 16384)]
    pub access_token: String,
    /// A refresh token, if the provider issued one (`""`: none).
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub refresh_token: Option<String>,
    /// `bearer` (default) and so on.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 40)]
    pub token_type: Option<String>,
    /// Seconds until the access token expires (up to ten years); 0 or
    /// absent: it never does.
    #[serde(default, deserialize_with = "crate::json_int::opt_integer")]
    #[schema(minimum = 0, maximum = 315_360_000)]
    pub expires_in: Option<i64>,
    /// Alternatively, when it expires (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Granted scopes: a list, or one space- or comma-separated string.
    #[serde(default)]
    #[schema(schema_with = scopes_schema)]
    pub scopes: Option<Scopes>,
    /// Create the tenant if it does not exist (admins only). Without it an
    /// unknown tenant is 404 `tenant_not_found`, so a typo never mints one.
    #[serde(default)]
    pub create_tenant: bool,
}

impl std::fmt::Debug for CredentialInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialInput").field("token_type", &self.token_type).finish_non_exhaustive()
    }
}

/// `scopes`: a list (at most 200 of at most 200 characters), one
/// space- or comma-separated string, or null.
fn scopes_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::Type;
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, OneOfBuilder};
    let scope = ObjectBuilder::new().schema_type(Type::String).max_length(Some(200));
    OneOfBuilder::new()
        .item(ArrayBuilder::new().items(scope).max_items(Some(200)))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// Scopes as a list or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scopes {
    /// `["read", "write"]`.
    List(Vec<String>),
    /// `"read write"` or `"read,write"`.
    Text(String),
}

impl Scopes {
    /// The scopes as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::List(v) => v,
            Self::Text(s) => split_scopes(&s),
        }
    }
}

/// Splits a scope string on spaces or commas.
pub fn split_scopes(s: &str) -> Vec<String> {
    s.split([' ', ',']).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// The answer to `POST .../credentials`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredCredentials {
    /// Always true.
    pub success: bool,
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration: String,
    /// When the tokens were encrypted and stored.
    pub encrypted_at: String,
    /// When the access token expires; null if never.
    pub expires_at: Option<String>,
}

/// `GET .../credentials`: metadata only, never a token.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration: String,
    /// Always true (absent credentials are a 404).
    pub has_credentials: bool,
    /// `bearer`, ...
    pub token_type: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// Expiry, or null if never.
    pub expires_at: Option<String>,
    /// `api`, `oauth` or `apply`.
    pub source: String,
    /// First stored.
    pub created_at: String,
    /// Last stored or refreshed.
    pub updated_at: String,
    /// Last refreshed.
    pub last_refreshed_at: Option<String>,
    /// Refresh failures in a row.
    pub refresh_failures: u32,
    /// The provider refused the refresh token: run the OAuth flow again.
    pub needs_reauth: bool,
}

impl CredentialView {
    pub(crate) fn from_record(c: &CredentialRecord) -> Self {
        Self {
            tenant_id: c.tenant_id.clone(),
            integration: c.integration_key.clone(),
            has_credentials: true,
            token_type: c.token_type.clone(),
            scopes: c.scopes.clone(),
            has_refresh_token: c.has_refresh_token,
            expires_at: c.expires_at.map(rfc3339),
            source: c.source.clone(),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
            last_refreshed_at: c.last_refreshed_at.map(rfc3339),
            refresh_failures: c.refresh_failures,
            needs_reauth: c.needs_reauth,
        }
    }
}

/// The answer to `DELETE .../credentials`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedCredentials {
    /// Always true: the tokens are gone from Tessera.
    pub success: bool,
    /// Tenant.
    pub tenant_id: String,
    /// Integration.
    pub integration: String,
    /// When.
    pub revoked_at: String,
    /// Whether the provider confirmed the revocation; null when it has no
    /// revocation endpoint.
    pub provider_revoked: Option<bool>,
}

/// Token values, zeroized on drop.
pub(crate) struct Tokens {
    pub access: Zeroizing<String>,
    pub refresh: Option<Zeroizing<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokensOut<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokensIn {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Tokens {
    pub(crate) fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        let len = self.access.len() + self.refresh.as_ref().map_or(0, |r| r.len());
        // Sized up front so the buffer never reallocates (and leaves no copy behind).
        let mut buf = Zeroizing::new(Vec::with_capacity(2 * len + 64));
        let doc = TokensOut { access_token: &self.access, refresh_token: self.refresh.as_ref().map(|r| r.as_str()) };
        serde_json::to_writer(&mut *buf, &doc).expect("tokens serialise");
        buf
    }

    pub(crate) fn from_plaintext(bytes: &[u8]) -> Result<Self, ServiceError> {
        let parsed: TokensIn = serde_json::from_slice(bytes)
            .map_err(|_| ServiceError::internal("stored credentials are not in the expected form"))?;
        Ok(Self { access: Zeroizing::new(parsed.access_token), refresh: parsed.refresh_token.map(Zeroizing::new) })
    }

    /// The access token as a JSON string, for the resolved view.
    pub(crate) fn access_json(&self) -> Zeroizing<Vec<u8>> {
        let mut buf = Zeroizing::new(Vec::with_capacity(2 * self.access.len() + 2));
        serde_json::to_writer(&mut *buf, self.access.as_str()).expect("strings serialise");
        buf
    }
}

/// A credential about to be stored.
pub(crate) struct NewCredential {
    pub tokens: Tokens,
    pub token_type: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub source: &'static str,
}

impl CredentialInput {
    /// Validates and turns the input into a credential (times from `now`).
    pub(crate) fn into_credential(
        self,
        now: DateTime<Utc>,
        source: &'static str,
    ) -> Result<NewCredential, ServiceError> {
        let access = Zeroizing::new(self.access_token);
        let refresh = self.refresh_token.map(Zeroizing::new).filter(|r| !r.is_empty());
        // Lengths in characters, as JSON Schema's maxLength counts them.
        if access.is_empty() || access.chars().count() > MAX_TOKEN_LEN {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidToken,
                "accessToken must be 1-16384 characters",
                Some("accessToken"),
            ));
        }
        if refresh.as_ref().is_some_and(|r| r.chars().count() > MAX_TOKEN_LEN) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidToken,
                "refreshToken is over 16384 characters",
                Some("refreshToken"),
            ));
        }
        let token_type = self.token_type.unwrap_or_else(|| "bearer".into());
        if token_type.is_empty() || token_type.chars().count() > 40 {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidTokenType,
                "tokenType must be 1-40 characters",
                Some("tokenType"),
            ));
        }
        let expires_at = match (self.expires_in, self.expires_at.as_deref().filter(|s| !s.is_empty())) {
            (Some(n), Some(_)) if n != 0 => {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidExpiry,
                    "give expiresIn or expiresAt, not both",
                    Some("expiresAt"),
                ))
            }
            (Some(n), _) if !(0..=10 * 365 * 24 * 3600).contains(&n) => {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidExpiry,
                    "expiresIn must be 0 (never expires) or a number of seconds up to ten years",
                    Some("expiresIn"),
                ))
            }
            (Some(n), None) if n > 0 => Some(now + TimeDelta::seconds(n)),
            (_, Some(at)) => Some(
                DateTime::parse_from_rfc3339(at)
                    .map_err(|_| {
                        ServiceError::invalid(
                            ErrorCode::InvalidExpiry,
                            "expiresAt must be an RFC 3339 time",
                            Some("expiresAt"),
                        )
                    })?
                    .with_timezone(&Utc),
            ),
            _ => None,
        };
        let scopes = self.scopes.map(Scopes::into_vec).unwrap_or_default();
        if scopes.len() > 200 || scopes.iter().any(|s| s.chars().count() > 200) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidScopes,
                "at most 200 scopes of 200 characters",
                Some("scopes"),
            ));
        }
        Ok(NewCredential { tokens: Tokens { access, refresh }, token_type, scopes, expires_at, source })
    }
}

impl Tessera {
    /// `POST /tenants/{t}/integrations/{key}/credentials`: encrypts and
    /// stores tokens, creating the connection if needed (and, for an admin,
    /// the tenant, as integrations' own examples expect).
    pub async fn store_credentials(
        &self,
        ctx: &Ctx,
        tenant: &str,
        key: &str,
        input: CredentialInput,
    ) -> Result<StoredCredentials, ServiceError> {
        self.store_credentials_from(ctx, tenant, key, input, "api").await
    }

    /// [`Self::store_credentials`] recording `source` (`api`, `apply`).
    pub(crate) async fn store_credentials_from(
        &self,
        ctx: &Ctx,
        tenant: &str,
        key: &str,
        input: CredentialInput,
        source: &'static str,
    ) -> Result<StoredCredentials, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Write).await?;
        let now = Utc::now();
        let create_tenant = input.create_tenant;
        let new = input.into_credential(now, source)?;
        let resource = format!("tenants/{tenant}/integrations/{key}/credentials");
        self.audit_before_external_write(ctx, "credential.store", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        if create_tenant {
            self.ensure_tenant(tx.as_mut(), ctx, &tenant).await?;
        } else {
            Self::require_tenant(tx.as_mut(), &tenant).await?;
        }
        Self::require_integration(tx.as_mut(), &key).await?;
        let saved = self.save_credential(tx.as_mut(), ctx, &tenant, &key, new, now).await?;
        self.audit
            .append_in_tx(tx.as_mut(), vec![ctx.event("credential.store", Some(tenant.as_str()), resource, "success")])
            .await?;
        tx.commit().await?;
        Ok(StoredCredentials {
            success: true,
            tenant_id: tenant.to_string(),
            integration: key.to_string(),
            encrypted_at: rfc3339(now),
            expires_at: saved.expires_at.map(rfc3339),
        })
    }

    /// `GET /tenants/{t}/integrations/{key}/credentials`: metadata only.
    pub async fn get_credentials(&self, ctx: &Ctx, tenant: &str, key: &str) -> Result<CredentialView, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Read).await?;
        let mut tx = self.store.read().await?;
        let found = tx.get_connection_context(tenant.as_str(), key.as_str()).await?;
        tx.commit().await?;
        if !found.tenant_exists() {
            return Err(ServiceError::tenant_not_found());
        }
        let cred = found.credential.ok_or_else(|| no_credentials(&tenant, &key))?;
        Ok(CredentialView::from_record(&cred))
    }

    /// `DELETE /tenants/{t}/integrations/{key}/credentials`: revokes the
    /// tokens at the provider (RFC 7009, when it has an endpoint) and deletes
    /// them here whatever the provider answers: Tessera must not keep a token
    /// its owner asked to remove.
    pub async fn revoke_credentials(
        &self,
        ctx: &Ctx,
        tenant: &str,
        key: &str,
    ) -> Result<RevokedCredentials, ServiceError> {
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Write).await?;
        let mut tx = self.store.read().await?;
        let found = tx.get_connection_context(tenant.as_str(), key.as_str()).await?;
        if !found.tenant_exists() {
            return Err(ServiceError::tenant_not_found());
        }
        if found.credential.is_none() {
            return Err(no_credentials(&tenant, &key));
        }
        let integration = found.integration.ok_or_else(|| super::integrations::no_integration(&key))?;
        let provider_revoked = match stored_oauth(&integration)?.and_then(|s| s.revoke_url.clone().map(|u| (s, u))) {
            Some((settings, revoke_url)) => {
                let tokens = self.read_tokens(tx.as_mut(), &tenant, &key).await?;
                let client = self.client_config(tx.as_mut(), &integration, &settings).await?;
                tx.commit().await?;
                Some(self.revoke_at_provider(&client, &revoke_url, &tokens, &tenant, &key).await)
            }
            None => {
                tx.commit().await?;
                None
            }
        };
        let resource = format!("tenants/{tenant}/integrations/{key}/credentials");
        self.audit_before_external_write(ctx, "credential.revoke", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        self.secrets.remove(tx.as_mut(), tenant.as_str(), SecretPath::credentials(&key).as_str()).await?;
        let existed = tx.delete_credential(tenant.as_str(), key.as_str()).await?;
        if !existed {
            // Revoked concurrently by another request: nothing left to do here.
            return Err(no_credentials(&tenant, &key));
        }
        let provider = match provider_revoked {
            Some(true) => "revoked",
            Some(false) => "failed",
            None => "none",
        };
        let data = serde_json::json!({"integration": key.as_str(), "providerRevocation": provider});
        self.enqueue(tx.as_mut(), tenant.as_str(), WebhookEvent::CredentialRevoked, data).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "credential.revoke",
                    Some(tenant.as_str()),
                    format!("{resource}?provider={provider}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(RevokedCredentials {
            success: true,
            tenant_id: tenant.to_string(),
            integration: key.to_string(),
            revoked_at: rfc3339(Utc::now()),
            provider_revoked,
        })
    }

    async fn revoke_at_provider(
        &self,
        client: &OAuthClientConfig,
        revoke_url: &str,
        tokens: &Tokens,
        tenant: &TenantId,
        key: &IntegrationKey,
    ) -> bool {
        let outbound = &self.outbound.oauth;
        // The refresh token first: revoking it usually revokes its access tokens too.
        let mut all = Vec::new();
        if let Some(r) = &tokens.refresh {
            all.push((SecretString::from(r.as_str()), TokenHint::RefreshToken));
        }
        all.push((SecretString::from(tokens.access.as_str()), TokenHint::AccessToken));
        let mut ok = true;
        for (token, hint) in all {
            if let Err(e) = outbound.revoke(client, revoke_url, &token, hint).await {
                tracing::warn!(%tenant, integration = %key, error = %e, "the provider did not confirm a revocation");
                ok = false;
            }
        }
        ok
    }

    /// Stores a credential inside `tx`: a new version of the tokens, the
    /// metadata with a fresh refresh schedule, and the connection if missing.
    pub(crate) async fn save_credential(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
        new: NewCredential,
        now: DateTime<Utc>,
    ) -> Result<CredentialRecord, ServiceError> {
        if tx.get_connection(tenant.as_str(), key.as_str()).await?.is_none() {
            tx.upsert_connection(&ConnectionRecord::new(tenant.as_str(), key.as_str(), now)).await?;
        }
        self.write_tokens(tx, ctx, tenant, key, &new.tokens).await?;
        let previous = tx.get_credential(tenant.as_str(), key.as_str()).await?;
        let record = CredentialRecord {
            tenant_id: tenant.to_string(),
            integration_key: key.to_string(),
            token_type: new.token_type,
            scopes: new.scopes,
            has_refresh_token: new.tokens.refresh.is_some(),
            expires_at: new.expires_at,
            source: new.source.to_owned(),
            created_at: previous.as_ref().map_or(now, |p| p.created_at),
            updated_at: now,
            last_refreshed_at: previous.as_ref().and_then(|p| p.last_refreshed_at),
            refresh_failures: 0,
            next_attempt_at: None,
            needs_reauth: false,
            lease_owner: None,
            lease_until: None,
        };
        tx.upsert_credential(&record).await?;
        let data = serde_json::json!({
            "integration": key.as_str(),
            "tokenType": record.token_type,
            "scopes": record.scopes,
            "hasRefreshToken": record.has_refresh_token,
            "expiresAt": super::webhooks::opt_time(record.expires_at),
            "source": record.source,
        });
        self.enqueue(tx, tenant.as_str(), WebhookEvent::CredentialStored, data).await?;
        Ok(record)
    }

    /// Writes a new version of a connection's tokens (access and refresh together).
    pub(crate) async fn write_tokens(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        tenant: &TenantId,
        key: &IntegrationKey,
        tokens: &Tokens,
    ) -> Result<(), ServiceError> {
        let path = SecretPath::credentials(key);
        let plaintext = tokens.to_plaintext();
        let write = VersionWrite {
            tenant: tenant.as_str(),
            path: path.as_str(),
            kind: "data",
            plaintext: &plaintext,
            cas: None,
        };
        self.write_version(tx, ctx, write).await?;
        Ok(())
    }

    /// Decrypts a connection's tokens.
    pub(crate) async fn read_tokens(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        key: &IntegrationKey,
    ) -> Result<Tokens, ServiceError> {
        let incarnation = self.incarnation(tx, tenant.as_str()).await?;
        let owner = KeyOwner { tenant: tenant.as_str(), incarnation: &incarnation };
        let revealed = self.read_version(tx, owner, SecretPath::credentials(key).as_str(), None).await?;
        Tokens::from_plaintext(&revealed.plaintext)
    }

    /// The client an integration's flows use: registry settings first, then
    /// `<INTEGRATION>_CLIENT_ID` / `_CLIENT_SECRET`.
    pub(crate) async fn client_config(
        &self,
        tx: &mut dyn StoreTx,
        integration: &IntegrationRecord,
        settings: &OAuthSettings,
    ) -> Result<OAuthClientConfig, ServiceError> {
        let key = IntegrationKey::parse(&integration.key)?;
        let env = self.opts.oauth.env_client(&integration.key);
        let client_id =
            settings.client_id.clone().or_else(|| env.and_then(|e| e.client_id.clone())).ok_or_else(|| {
                not_configured(&format!(
                    "no client id (set oauth.clientId or {}_CLIENT_ID)",
                    env_prefix(&integration.key)
                ))
            })?;
        let token_url = settings.token_url.clone().ok_or_else(|| not_configured("no tokenUrl"))?;
        let client_secret = if settings.client_secret_set {
            let path = SecretPath::oauth_client_secret(&key);
            let revealed = self.read_version(tx, self.platform_owner(), path.as_str(), None).await?;
            let secret: Zeroizing<String> = Zeroizing::new(
                serde_json::from_slice(&revealed.plaintext)
                    .map_err(|_| ServiceError::internal("the stored client secret is not a string"))?,
            );
            Some(SecretString::from(secret.as_str()))
        } else {
            env.and_then(|e| e.client_secret.as_ref().map(|s| SecretString::from(s.expose_secret())))
        };
        Ok(OAuthClientConfig { client_id, client_secret, auth: settings.token_auth_method, token_url })
    }

    /// Makes sure a tenant exists; an admin naming a new one creates it
    /// (audited), for flows that start with tenants nobody created yet.
    pub(crate) async fn ensure_tenant(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        tenant: &TenantId,
    ) -> Result<(), ServiceError> {
        if tx.get_tenant(tenant.as_str()).await?.is_some() {
            return Ok(());
        }
        if ctx.principal.role != Role::Admin || tenant.is_platform() {
            return Err(ServiceError::tenant_not_found());
        }
        let id = TenantId::parse_new(tenant.as_str())?;
        tx.insert_tenant(&TenantRecord::new(id.as_str(), id.as_str())).await?;
        self.keyring.add_version(tx, id.as_str()).await?;
        self.audit
            .append_in_tx(tx, vec![ctx.event("tenant.create", Some(id.as_str()), format!("tenants/{id}"), "success")])
            .await?;
        Ok(())
    }
}

/// `NOTION` for `notion`, `GOOGLE_DRIVE` for `google-drive`.
pub fn env_prefix(key: &str) -> String {
    key.to_ascii_uppercase().replace('-', "_")
}

fn no_credentials(tenant: &TenantId, key: &IntegrationKey) -> ServiceError {
    ServiceError::not_found(ErrorCode::CredentialsNotFound, format!("tenant {tenant} has no credentials for {key}"))
}
