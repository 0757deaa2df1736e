//! The OAuth authorization-code flow (seed 001): `authorize` records a
//! single-use, expiring state bound to tenant, integration and redirect URI
//! (with a PKCE verifier, encrypted), and the provider's `callback` trades
//! the code for tokens and stores them.

use crate::ErrorCode;
use chrono::{Duration as TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::credentials::NewCredential;
use super::credentials::Tokens;
use super::denials::Denied;
use super::integrations::stored_oauth;
use super::{rfc3339, Ctx, Tessera};
use crate::access::Access;
use crate::access::{Principal, Role};
use crate::audit::AuditEvent;
use crate::domain::AuthType;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, TenantId};
use crate::oauth::settings::{not_configured, pkce_challenge, random_token};
use crate::oauth::OAuthSettings;
use crate::ports::{IntegrationRecord, OAuthStateRecord};

/// Where encrypted PKCE verifiers are bound (the AAD path; the field is the state hash).
const STATE_AAD_PATH: &str = "_oauth_state";

/// `GET /oauth/authorize/{key}`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationStart {
    /// Send the user here.
    pub authorization_url: String,
    /// The flow's state (single use).
    pub state: String,
    /// When the flow stops being accepted.
    pub expires_at: String,
}

/// What the provider sent to the callback.
#[derive(Clone, Default)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The state.
    pub state: Option<String>,
    /// An RFC 6749 error (`access_denied`).
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

// The code and the state are credentials for one flow: never printed.
impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[SECRET]"))
            .field("state", &self.state.as_ref().map(|_| "[SECRET]"))
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// How the callback ends.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    /// Send the browser to the flow's redirect URI (outcome in the query).
    Redirect(String),
    /// No redirect URI: the outcome as JSON.
    Connected {
        /// Tenant.
        tenant_id: String,
        /// Integration.
        integration: String,
        /// Token expiry.
        expires_at: Option<String>,
    },
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

impl Tessera {
    /// `GET /oauth/authorize/{key}?tenant_id=&redirect_uri=`.
    pub async fn start_authorization(
        &self,
        ctx: &Ctx,
        key: &str,
        tenant: &str,
        redirect_uri: Option<&str>,
    ) -> Result<AuthorizationStart, ServiceError> {
        let redirect_uri = redirect_uri.filter(|r| !r.is_empty());
        if let Some(r) = redirect_uri {
            // Exact match only: a prefix or pattern would let a crafted URI through (open redirect).
            if !self.opts.oauth.allowed_redirect_uris.iter().any(|a| a == r) {
                return Err(ServiceError::invalid(
                    ErrorCode::RedirectUriNotAllowed,
                    "redirect_uri is not in TESSERA_ALLOWED_REDIRECT_URIS",
                    Some("redirect_uri"),
                ));
            }
        }
        self.begin_authorization(ctx, key, tenant, redirect_uri, None).await
    }

    /// The console's connection wizard: a flow that comes back to the
    /// console's own landing page (`<public URL>/console/connected`), which
    /// is Tessera's own address and needs no entry in the allow-list.
    pub async fn start_console_authorization(
        &self,
        ctx: &Ctx,
        key: &str,
        tenant: &str,
    ) -> Result<AuthorizationStart, ServiceError> {
        let back = format!("{}/console/connected", self.opts.oauth.public_url.trim_end_matches('/'));
        self.begin_authorization(ctx, key, tenant, Some(&back), None).await
    }

    /// Starts a flow. `connect` names the connect session (id and page
    /// token) a flow started from a connect page belongs to.
    pub(crate) async fn begin_authorization(
        &self,
        ctx: &Ctx,
        key: &str,
        tenant: &str,
        redirect_uri: Option<&str>,
        connect: Option<(&str, &str)>,
    ) -> Result<AuthorizationStart, ServiceError> {
        if tenant.is_empty() {
            return Err(ServiceError::invalid(ErrorCode::MissingTenantId, "tenant_id is required", Some("tenant_id")));
        }
        let tenant = TenantId::parse(tenant)?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Write).await?;
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        // A GET never creates anything: an unknown tenant is "not found".
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let integration = Self::require_integration(tx.as_mut(), &key).await?;
        let settings = oauth_settings_of(&integration)?;
        let authorize_url = settings.authorize_url.clone().ok_or_else(|| not_configured("no authorizeUrl"))?;
        let client = self.client_config(tx.as_mut(), &integration, &settings).await?;
        let callback_uri = self.callback_uri(&integration, &settings);
        let state = random_token();
        let hash = state_hash(&state);
        let verifier = settings.pkce.then(random_token);
        let encrypted_verifier = match &verifier {
            Some(v) => {
                Some(self.keyring.encrypt(tx.as_mut(), tenant.as_str(), STATE_AAD_PATH, &hash, v.as_bytes()).await?)
            }
            None => None,
        };
        let connect_token = match connect {
            Some((_, token)) => Some(
                self.keyring
                    .encrypt(
                        tx.as_mut(),
                        tenant.as_str(),
                        super::connect_page::RETURN_AAD_PATH,
                        &hash,
                        token.as_bytes(),
                    )
                    .await?,
            ),
            None => None,
        };
        let expires_at = now + TimeDelta::from_std(self.opts.oauth.state_ttl).unwrap_or(TimeDelta::minutes(10));
        tx.insert_oauth_state(&OAuthStateRecord {
            state_hash: hash,
            tenant_id: tenant.to_string(),
            integration_key: key.to_string(),
            redirect_uri: redirect_uri.map(str::to_owned),
            callback_uri: callback_uri.clone(),
            code_verifier: encrypted_verifier,
            created_by: ctx.principal.id.clone(),
            created_role: ctx.principal.role.as_str().to_owned(),
            created_at: now,
            expires_at,
            connect_session_id: connect.map(|(id, _)| id.to_owned()),
            connect_token,
        })
        .await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "oauth.authorize",
                    Some(tenant.as_str()),
                    format!("oauth/{key}?tenant={tenant}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        let challenge = verifier.as_ref().map(|v| pkce_challenge(v));
        let authorization_url = settings.authorization_url(
            &authorize_url,
            &client.client_id,
            &callback_uri,
            &state,
            challenge.as_deref(),
        )?;
        Ok(AuthorizationStart { authorization_url, state: state.to_string(), expires_at: rfc3339(expires_at) })
    }

    /// `GET /oauth/callback/{key}?code=&state=` (unauthenticated: the state
    /// is the proof). A state is consumed by its first use, whatever follows.
    pub async fn complete_authorization(
        &self,
        key: &str,
        params: CallbackParams,
        request_id: Option<String>,
        client_ip: Option<String>,
    ) -> Result<CallbackOutcome, ServiceError> {
        let anonymous = |action: &str, resource: String| AuditEvent {
            actor: "anonymous".into(),
            actor_role: "none".into(),
            tenant_id: None,
            action: action.into(),
            resource,
            outcome: "denied".into(),
            request_id: request_id.clone(),
            client_ip: client_ip.clone(),
        };
        let invalid_state = || {
            ServiceError::invalid(
                ErrorCode::InvalidState,
                "the state is unknown, already used or expired",
                Some("state"),
            )
        };
        // Anyone can call this route, and a refusal is audited: it takes a
        // token from the caller's anonymous bucket before any state lookup.
        if let Err(limited) = self.take_anonymous(client_ip.as_deref()) {
            self.count_denial(client_ip.as_deref(), Denied::Callback);
            return Err(limited);
        }
        let Some(state) = params.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 256) else {
            let event = anonymous("oauth.callback", format!("oauth/callback/{key}?state=missing"));
            return Err(self.note_denial(Denied::Callback, event, invalid_state()).await);
        };
        let mut tx = self.store.begin_write().await?;
        let taken = tx.take_oauth_state(&state_hash(state)).await?;
        tx.commit().await?;
        let Some(flow) = taken else {
            let event = anonymous("oauth.callback", format!("oauth/callback/{key}?state=unknown"));
            return Err(self.note_denial(Denied::Callback, event, invalid_state()).await);
        };
        let tenant = TenantId::parse(&flow.tenant_id)?;
        let role = Role::parse(&flow.created_role)?;
        let ctx = Ctx {
            principal: Principal {
                id: flow.created_by.clone(),
                role,
                tenant: role.is_tenant_bound().then(|| tenant.clone()),
                // The flow was checked against the starter's scopes when it began.
                scopes: None,
            },
            request_id,
            client_ip,
        };
        let resource = format!("oauth/callback/{}?tenant={tenant}", flow.integration_key);
        let fail = |reason: &str| {
            ctx.event("oauth.callback", Some(tenant.as_str()), format!("{resource}&error={reason}"), "failure")
        };
        if flow.integration_key != key {
            self.audit.record(fail("other_integration")).await?;
            return Err(invalid_state());
        }
        if flow.expires_at < Utc::now() {
            self.audit.record(fail("state_expired")).await?;
            return Err(ServiceError::invalid(
                ErrorCode::StateExpired,
                "the authorization flow expired; start it again",
                Some("state"),
            ));
        }
        if flow.connect_session_id.is_some() {
            return self.complete_connect_flow(&ctx, &tenant, &flow, &params).await;
        }
        let result = self.exchange_and_store(&ctx, &tenant, &flow, &params).await;
        match (result, flow.redirect_uri) {
            (Ok(_), Some(redirect)) => Ok(CallbackOutcome::Redirect(with_query(
                &redirect,
                &[("status", "success"), ("integration", key), ("tenant_id", tenant.as_str())],
            ))),
            (Ok(cred), None) => Ok(CallbackOutcome::Connected {
                tenant_id: tenant.to_string(),
                integration: key.to_owned(),
                expires_at: cred,
            }),
            (Err(e), redirect) => {
                self.audit.record(fail(e.code.as_str())).await?;
                match redirect {
                    Some(redirect) => Ok(CallbackOutcome::Redirect(with_query(
                        &redirect,
                        &[
                            ("status", "error"),
                            ("error", e.code.as_str()),
                            ("integration", key),
                            ("tenant_id", tenant.as_str()),
                        ],
                    ))),
                    None => Err(e),
                }
            }
        }
    }

    /// Trades the code for tokens and stores them; returns the expiry.
    pub(crate) async fn exchange_and_store(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        flow: &OAuthStateRecord,
        params: &CallbackParams,
    ) -> Result<Option<String>, ServiceError> {
        if let Some(error) = &params.error {
            // RFC 6749 4.1.2.1's codes pass through; any other is named in the message only.
            let shown = if error.len() <= 64 && error.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                error.as_str()
            } else {
                "an unreadable code"
            };
            let code = match error.as_str() {
                "access_denied" => ErrorCode::AccessDenied,
                "invalid_request" => ErrorCode::InvalidRequest,
                "unauthorized_client" => ErrorCode::UnauthorizedClient,
                "unsupported_response_type" => ErrorCode::UnsupportedResponseType,
                "invalid_scope" => ErrorCode::InvalidScope,
                "server_error" => ErrorCode::ServerError,
                "temporarily_unavailable" => ErrorCode::TemporarilyUnavailable,
                _ => ErrorCode::OauthProviderError,
            };
            return Err(ServiceError::invalid(
                code,
                format!("the provider ended the flow with {shown}; nothing was stored"),
                None,
            ));
        }
        let code =
            params.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 4096).ok_or_else(|| {
                ServiceError::invalid(ErrorCode::MissingCode, "the callback has no code", Some("code"))
            })?;
        let key = IntegrationKey::parse(&flow.integration_key)?;
        let mut tx = self.store.read().await?;
        let integration = Self::require_integration(tx.as_mut(), &key).await?;
        let settings = oauth_settings_of(&integration)?;
        let client = self.client_config(tx.as_mut(), &integration, &settings).await?;
        let verifier = match &flow.code_verifier {
            Some(ct) => {
                let incarnation = self.incarnation(tx.as_mut(), tenant.as_str()).await?;
                let owner = tessera_crypto::KeyOwner { tenant: tenant.as_str(), incarnation: &incarnation };
                let plain = self.keyring.decrypt(tx.as_mut(), owner, STATE_AAD_PATH, &flow.state_hash, ct).await?;
                Some(
                    String::from_utf8(plain.to_vec())
                        .map_err(|_| ServiceError::internal("stored PKCE verifier is not text"))?,
                )
            }
            None => None,
        };
        tx.commit().await?;
        let verifier = verifier.map(zeroize::Zeroizing::new);
        let answer = self
            .outbound
            .oauth
            .exchange_code(&client, code, &flow.callback_uri, verifier.as_ref().map(|v| v.as_str()))
            .await
            .map_err(|e| {
                tracing::warn!(%tenant, integration = %key, error = %e, "code exchange failed");
                ServiceError::upstream(
                    ErrorCode::OauthExchangeFailed,
                    format!("the provider did not issue tokens: {}", e.code()),
                )
            })?;
        let now = Utc::now();
        let new = NewCredential {
            tokens: Tokens {
                access: zeroize::Zeroizing::new(secrecy::ExposeSecret::expose_secret(&answer.access_token).to_owned()),
                refresh: answer
                    .refresh_token
                    .as_ref()
                    .map(|r| zeroize::Zeroizing::new(secrecy::ExposeSecret::expose_secret(r).to_owned())),
            },
            token_type: answer.token_type.clone(),
            scopes: answer.scopes.clone().unwrap_or_else(|| settings.scopes.clone()),
            expires_at: answer.expires_in.filter(|s| *s > 0).map(|s| {
                now + TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000_000).min(10 * 365 * 86_400))
            }),
            source: "oauth",
        };
        self.audit_before_external_write(
            ctx,
            "credential.store",
            tenant,
            &format!("tenants/{tenant}/integrations/{key}/credentials"),
        )
        .await?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), tenant).await?;
        let saved = self.save_credential(tx.as_mut(), ctx, tenant, &key, new, now).await?;
        if let Some(session) = &flow.connect_session_id {
            self.record_connected(tx.as_mut(), session, tenant, &key).await?;
        }
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![
                    ctx.event(
                        "credential.store",
                        Some(tenant.as_str()),
                        format!("tenants/{tenant}/integrations/{key}/credentials?source=oauth"),
                        "success",
                    ),
                    ctx.event(
                        "oauth.callback",
                        Some(tenant.as_str()),
                        format!("oauth/callback/{key}?tenant={tenant}"),
                        "success",
                    ),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(saved.expires_at.map(rfc3339))
    }

    /// The callback URL the provider redirects to: the registry's, else
    /// `<INTEGRATION>_REDIRECT_URI`, else Tessera's own.
    fn callback_uri(&self, integration: &IntegrationRecord, settings: &OAuthSettings) -> String {
        settings
            .redirect_uri
            .clone()
            .or_else(|| self.opts.oauth.env_client(&integration.key).and_then(|e| e.redirect_uri.clone()))
            .unwrap_or_else(|| {
                format!("{}/oauth/callback/{}", self.opts.oauth.public_url.trim_end_matches('/'), integration.key)
            })
    }
}

/// An integration's OAuth settings, or why a flow cannot start.
pub(crate) fn oauth_settings_of(integration: &IntegrationRecord) -> Result<OAuthSettings, ServiceError> {
    if integration.auth_type != AuthType::OAuth2 {
        return Err(not_configured(&format!("{} has authType {}, not oauth2", integration.key, integration.auth_type)));
    }
    stored_oauth(integration)?.ok_or_else(|| not_configured("the registry entry has no oauth settings"))
}

/// `base` with query parameters added (keeping its own).
pub(crate) fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.into()
        }
        // Allow-listed URIs were checked when the flow started; keep the answer usable anyway.
        Err(_) => base.to_owned(),
    }
}
