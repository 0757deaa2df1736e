//! Hosted Connect, the page's side: what a person holding a connect
//! session's token may do. The token is the only credential and it grants
//! exactly this: see the session's tenant's state for the allowed
//! integrations, run their OAuth flows, write their credential fields, and
//! finish or cancel. Nothing here reads a secret, names another tenant, or
//! touches an integration outside the allow-list.
//!
//! Each use case starts at [`Tessera::open_connect`]: rate limits per client
//! address and per session, the token looked up by its hash, the session
//! pending and unexpired; every refusal is audited.

use crate::ErrorCode;
use std::num::NonZeroU32;

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::connect_sessions::{connected_list, session_event, token_hash, url_part};
use super::denials::Denied;
use super::limits::{CallerLimits, RateLimit};
use super::oauth_flow::{oauth_settings_of, with_query, AuthorizationStart, CallbackOutcome, CallbackParams};
use super::{rfc3339, Ctx, Tessera};
use crate::access::{Principal, Role};
use crate::audit::AuditEvent;
use crate::domain::{AuthType, WebhookEvent};
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, TenantId};
use crate::ports::{ConnectSessionRecord, ConnectStatus, IntegrationRecord, OAuthStateRecord, StoreTx};
use crate::schema::ConfigSchema;

/// Where connect tokens of in-flight OAuth flows are bound (the AAD path;
/// the field is the flow's state hash).
pub(crate) const RETURN_AAD_PATH: &str = "_connect_return";

/// Page requests per session: a person clicks, a page reloads; a burst of 30
/// then one a second is far above that and far below a script's rate.
const PER_SESSION: RateLimit = RateLimit { per_second: NonZeroU32::MIN, burst: NonZeroU32::new(30).unwrap() };
/// Page requests per client address, across sessions (an office behind one
/// address may hold many sessions at once).
const PER_ADDRESS: RateLimit =
    RateLimit { per_second: NonZeroU32::new(5).unwrap(), burst: NonZeroU32::new(100).unwrap() };

/// The two rate limits of the connect page.
pub(crate) struct ConnectLimits {
    sessions: CallerLimits,
    addresses: CallerLimits,
}

impl Default for ConnectLimits {
    fn default() -> Self {
        Self { sessions: CallerLimits::new(PER_SESSION), addresses: CallerLimits::new(PER_ADDRESS) }
    }
}

/// Where a page request comes from.
#[derive(Debug, Clone, Default)]
pub struct ConnectOrigin {
    /// The request id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
}

/// How an integration is connected on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    /// The provider's OAuth flow.
    OAuth,
    /// A form of the integration's credential fields (API keys and the like).
    Fields,
}

/// One integration the page offers.
#[derive(Debug, Clone)]
pub struct ConnectItem {
    /// Key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Category, if any.
    pub category: Option<String>,
    /// How it is connected.
    pub kind: ConnectKind,
    /// Whether the tenant has it connected now.
    pub connected: bool,
    /// Connected, but the provider refused its refresh token: connect again.
    pub needs_reauth: bool,
    /// Connected in this session.
    pub connected_here: bool,
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct ConnectPageView {
    /// The session's id (not a credential).
    pub session_id: String,
    /// The end user's name or email, if the platform gave one.
    pub end_user: Option<String>,
    /// The integrations offered.
    pub items: Vec<ConnectItem>,
    /// Whether finishing goes back to the platform's page.
    pub has_redirect: bool,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
}

/// An integration's credential form: its schema and what is set.
#[derive(Debug, Clone)]
pub struct ConnectFields {
    /// Key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// The integration's config schema.
    pub schema: ConfigSchema,
    /// The tenant's current non-secret values.
    pub config: Map<String, Value>,
    /// Secret fields that have a value (never the value).
    pub stored_secrets: Vec<String>,
}

/// How a session ended, for the page and the platform.
#[derive(Debug, Clone)]
pub struct ConnectEnd {
    /// The session's id.
    pub session_id: String,
    /// `success` or `cancelled`.
    pub status: &'static str,
    /// What was connected.
    pub integrations: Vec<String>,
    /// The platform's page with the outcome in its query, if it gave one.
    pub redirect: Option<String>,
}

/// The refusal of a token that opens nothing (unknown, or not a token).
fn invalid_link() -> ServiceError {
    ServiceError::not_found(
        ErrorCode::ConnectLinkInvalid,
        "This link is not valid. Ask the app that sent you here for a new one.",
    )
}

fn ended(status: ConnectStatus) -> ServiceError {
    match status {
        ConnectStatus::Completed => ServiceError::not_found(
            ErrorCode::ConnectSessionCompleted,
            "This link was already used to finish connecting. Ask the app that sent you here for a new one.",
        ),
        ConnectStatus::Failed => ServiceError::not_found(
            ErrorCode::ConnectSessionCancelled,
            "This link was cancelled. Ask the app for a new one.",
        ),
        _ => ServiceError::not_found(
            ErrorCode::ConnectSessionExpired,
            "This link has expired. Ask the app that sent you here for a new one.",
        ),
    }
}

fn not_offered() -> ServiceError {
    ServiceError::not_found(ErrorCode::ConnectIntegrationNotOffered, "This link does not offer that integration.")
}

impl Tessera {
    /// The session a page token opens, and the context its actions run
    /// under; every refusal is audited (anonymous ones bounded per address).
    async fn open_connect(
        &self,
        token: &str,
        origin: &ConnectOrigin,
    ) -> Result<(ConnectSessionRecord, Ctx), ServiceError> {
        let address = origin.client_ip.as_deref().unwrap_or("unknown");
        self.connect_limits.addresses.check(address)?;
        let found = if token.is_empty() || token.len() > 128 {
            None
        } else {
            let mut tx = self.store.read().await?;
            let found = tx.find_connect_session(&token_hash(token)).await?;
            tx.commit().await?;
            found
        };
        let Some(session) = found else {
            let event = AuditEvent {
                actor: "anonymous".into(),
                actor_role: "none".into(),
                tenant_id: None,
                action: Denied::Connect.action().into(),
                resource: "connect?reason=unknown_token".into(),
                outcome: "denied".into(),
                request_id: origin.request_id.clone(),
                client_ip: origin.client_ip.clone(),
            };
            return Err(self.note_denial(Denied::Connect, event, invalid_link()).await);
        };
        self.connect_limits.sessions.check(&session.id)?;
        let tenant = TenantId::parse(&session.tenant_id)?;
        let ctx = Ctx {
            principal: Principal {
                id: format!("connect:{}", session.id),
                role: Role::TenantAdmin,
                tenant: Some(tenant.clone()),
                scopes: None,
            },
            request_id: origin.request_id.clone(),
            client_ip: origin.client_ip.clone(),
        };
        let status = live_status(&session);
        if status != ConnectStatus::Pending {
            self.audit
                .record(ctx.event(
                    "connect.open",
                    Some(tenant.as_str()),
                    format!("connect/sessions/{}?status={}", session.id, status.as_str()),
                    "denied",
                ))
                .await?;
            return Err(ended(status));
        }
        Ok((session, ctx))
    }

    /// The page: the allowed integrations and their state for the tenant.
    pub async fn connect_view(&self, token: &str, origin: &ConnectOrigin) -> Result<ConnectPageView, ServiceError> {
        let (session, ctx) = self.open_connect(token, origin).await?;
        let mut tx = self.store.read().await?;
        let offered = offered(tx.as_mut(), &session).await?;
        let connections = tx.list_tenant_connections(&session.tenant_id).await?;
        let credentials = tx.list_tenant_credentials(&session.tenant_id).await?;
        tx.commit().await?;
        let here: Vec<String> = connected_list(&session).into_iter().map(|c| c.integration).collect();
        let items = offered
            .into_iter()
            .filter_map(|i| {
                let kind = kind_of(&i)?;
                let cred = credentials.iter().find(|c| c.integration_key == i.key);
                let conn = connections.iter().find(|c| c.integration_key == i.key);
                let connected = match kind {
                    ConnectKind::OAuth => cred.is_some(),
                    ConnectKind::Fields => conn.is_some_and(|c| !c.config_meta.is_empty()),
                };
                Some(ConnectItem {
                    connected_here: here.contains(&i.key),
                    needs_reauth: cred.is_some_and(|c| c.needs_reauth),
                    key: i.key,
                    name: i.name,
                    category: i.category,
                    kind,
                    connected,
                })
            })
            .collect();
        self.audit
            .record(ctx.event(
                "connect.view",
                Some(&session.tenant_id),
                format!("connect/sessions/{}", session.id),
                "success",
            ))
            .await?;
        Ok(ConnectPageView {
            session_id: session.id.clone(),
            end_user: end_user_label(&session),
            items,
            has_redirect: session.redirect_uri.is_some(),
            expires_at: rfc3339(session.expires_at),
        })
    }

    /// An integration's credential form (not for OAuth integrations).
    pub async fn connect_fields(
        &self,
        token: &str,
        key: &str,
        origin: &ConnectOrigin,
    ) -> Result<ConnectFields, ServiceError> {
        let (session, _) = self.open_connect(token, origin).await?;
        let mut tx = self.store.read().await?;
        let integration = offered_one(tx.as_mut(), &session, key).await?;
        if kind_of(&integration) != Some(ConnectKind::Fields) {
            return Err(not_offered());
        }
        let schema = &integration.config_schema;
        let conn = tx.get_connection(&session.tenant_id, &integration.key).await?;
        tx.commit().await?;
        let (config, stored_secrets) = match conn {
            Some(c) => {
                let secrets = c.config_meta.keys().filter(|k| schema.is_secret(k)).cloned().collect::<Vec<_>>();
                (c.config.into_iter().filter(|(k, _)| !schema.is_secret(k)).collect(), secrets)
            }
            None => (Map::new(), Vec::new()),
        };
        let schema = integration.config_schema;
        Ok(ConnectFields { key: integration.key, name: integration.name, schema, config, stored_secrets })
    }

    /// Writes an integration's credential fields from the page: only the
    /// schema's fields, validated as the API validates them; the connection
    /// records the session's end user, and `connection.created` and
    /// `credential.stored` are raised with the change.
    pub async fn connect_save_fields(
        &self,
        token: &str,
        key: &str,
        change: Map<String, Value>,
        origin: &ConnectOrigin,
    ) -> Result<(), ServiceError> {
        let (session, ctx) = self.open_connect(token, origin).await?;
        let tenant = TenantId::parse(&session.tenant_id)?;
        let key = IntegrationKey::parse(key)?;
        {
            let mut tx = self.store.read().await?;
            let integration = offered_one(tx.as_mut(), &session, key.as_str()).await?;
            tx.commit().await?;
            if kind_of(&integration) != Some(ConnectKind::Fields) {
                return Err(not_offered());
            }
        }
        let resource = format!(
            "tenants/{tenant}/integrations/{key}/config?connect={}&end_user={}",
            session.id,
            url_part(&end_user_id(&session))
        );
        self.audit_before_external_write(&ctx, "config.update", &tenant, &resource).await?;
        let mut tx = self.store.begin_write().await?;
        self.write_connection_config(tx.as_mut(), &ctx, &tenant, &key, &change, None, &resource).await?;
        self.record_connected(tx.as_mut(), &session.id, &tenant, &key).await?;
        let fields: Vec<&String> = change.keys().collect();
        let data = json!({ "integration": key.as_str(), "source": "connect", "fields": fields });
        self.enqueue(tx.as_mut(), tenant.as_str(), WebhookEvent::CredentialStored, data).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts an OAuth integration's flow from the page; the provider comes
    /// back to the page.
    pub async fn connect_authorize(
        &self,
        token: &str,
        key: &str,
        origin: &ConnectOrigin,
    ) -> Result<AuthorizationStart, ServiceError> {
        let (session, ctx) = self.open_connect(token, origin).await?;
        {
            let mut tx = self.store.read().await?;
            let integration = offered_one(tx.as_mut(), &session, key).await?;
            tx.commit().await?;
            if kind_of(&integration) != Some(ConnectKind::OAuth) {
                return Err(not_offered());
            }
        }
        self.begin_authorization(&ctx, key, &session.tenant_id, None, Some((&session.id, token))).await
    }

    /// The person is done: the session completes (or, with `cancel`, fails)
    /// and its token stops working.
    pub async fn connect_finish(
        &self,
        token: &str,
        cancel: bool,
        origin: &ConnectOrigin,
    ) -> Result<ConnectEnd, ServiceError> {
        let (mut session, ctx) = self.open_connect(token, origin).await?;
        let integrations: Vec<String> = connected_list(&session).into_iter().map(|c| c.integration).collect();
        if !cancel && integrations.is_empty() {
            return Err(ServiceError::conflict(
                ErrorCode::ConnectNothingConnected,
                "Connect at least one integration first, or cancel.",
            ));
        }
        let mut tx = self.store.begin_write().await?;
        // Read again under the write lock: a finish racing another ends it once.
        let current = tx.get_connect_session(&session.id).await?.ok_or_else(invalid_link)?;
        if live_status(&current) != ConnectStatus::Pending {
            return Err(ended(live_status(&current)));
        }
        session = current;
        session.status = if cancel { ConnectStatus::Failed } else { ConnectStatus::Completed };
        session.ended_at = Some(Utc::now());
        tx.update_connect_session(&session).await?;
        if !cancel {
            self.enqueue(
                tx.as_mut(),
                &session.tenant_id,
                WebhookEvent::ConnectSessionCompleted,
                session_event(&session),
            )
            .await?;
        }
        let action = if cancel { "connect.session_cancel" } else { "connect.session_complete" };
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    action,
                    Some(&session.tenant_id),
                    format!("connect/sessions/{}", session.id),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        let status = if cancel { "cancelled" } else { "success" };
        let joined = integrations.join(",");
        let redirect = session
            .redirect_uri
            .as_deref()
            .map(|r| with_query(r, &[("status", status), ("integration", &joined), ("sessionId", &session.id)]));
        Ok(ConnectEnd { session_id: session.id, status, integrations, redirect })
    }

    /// Inside the transaction that stored an integration's credentials from
    /// a session: refuses if the session is no longer pending (nothing is
    /// stored then), records the end user on the connection and the
    /// integration on the session, and raises `connection.created`.
    pub(crate) async fn record_connected(
        &self,
        tx: &mut dyn StoreTx,
        session_id: &str,
        tenant: &TenantId,
        key: &IntegrationKey,
    ) -> Result<(), ServiceError> {
        let mut session = tx.get_connect_session(session_id).await?.ok_or_else(invalid_link)?;
        if session.tenant_id != tenant.as_str() {
            return Err(invalid_link());
        }
        if live_status(&session) != ConnectStatus::Pending {
            return Err(ended(live_status(&session)));
        }
        let now = rfc3339(Utc::now());
        if let Some(mut conn) = tx.get_connection(tenant.as_str(), key.as_str()).await? {
            conn.connected_by = Some(json!({ "sessionId": session.id, "endUser": session.end_user, "at": now }));
            tx.upsert_connection(&conn).await?;
        }
        session.connected.retain(|c| c.get("integration").and_then(Value::as_str) != Some(key.as_str()));
        session.connected.push(json!({ "integration": key.as_str(), "at": now }));
        tx.update_connect_session(&session).await?;
        let data = json!({
            "integration": key.as_str(),
            "sessionId": session.id,
            "endUserId": session.end_user.as_ref().and_then(|u| u.get("id")).cloned(),
        });
        self.enqueue(tx, tenant.as_str(), WebhookEvent::ConnectionCreated, data).await?;
        Ok(())
    }

    /// The provider's return for a flow started on a connect page: the
    /// tokens are stored only while the session is pending, and the browser
    /// goes back to the page with the outcome (`connected`, `status`, `error`).
    pub(crate) async fn complete_connect_flow(
        &self,
        ctx: &Ctx,
        tenant: &TenantId,
        flow: &OAuthStateRecord,
        params: &CallbackParams,
    ) -> Result<CallbackOutcome, ServiceError> {
        let token = self.connect_return_token(tenant, flow).await?;
        let page = format!("{}/connect/{}", self.opts.oauth.public_url.trim_end_matches('/'), token.as_str());
        let key = flow.integration_key.as_str();
        match self.exchange_and_store(ctx, tenant, flow, params).await {
            Ok(_) => Ok(CallbackOutcome::Redirect(with_query(&page, &[("connected", key), ("status", "success")]))),
            Err(e) => {
                self.audit
                    .record(ctx.event(
                        "oauth.callback",
                        Some(tenant.as_str()),
                        format!("oauth/callback/{key}?tenant={tenant}&error={}", e.code),
                        "failure",
                    ))
                    .await?;
                Ok(CallbackOutcome::Redirect(with_query(
                    &page,
                    &[("connected", key), ("status", "error"), ("error", e.code.as_str())],
                )))
            }
        }
    }

    /// The page token an in-flight flow keeps encrypted.
    async fn connect_return_token(
        &self,
        tenant: &TenantId,
        flow: &OAuthStateRecord,
    ) -> Result<zeroize::Zeroizing<String>, ServiceError> {
        let ct = flow.connect_token.as_deref().ok_or_else(|| ServiceError::internal("a connect flow lost its page"))?;
        let mut tx = self.store.read().await?;
        let incarnation = self.incarnation(tx.as_mut(), tenant.as_str()).await?;
        let owner = tessera_crypto::KeyOwner { tenant: tenant.as_str(), incarnation: &incarnation };
        let plain = self.keyring.decrypt(tx.as_mut(), owner, RETURN_AAD_PATH, &flow.state_hash, ct).await?;
        tx.commit().await?;
        String::from_utf8(plain.to_vec())
            .map(zeroize::Zeroizing::new)
            .map_err(|_| ServiceError::internal("a stored connect token is not text"))
    }
}

/// A session's status now: pending past its expiry counts as expired.
fn live_status(s: &ConnectSessionRecord) -> ConnectStatus {
    if s.status == ConnectStatus::Pending && s.expires_at <= Utc::now() {
        ConnectStatus::Expired
    } else {
        s.status
    }
}

/// How an integration is connected on the page, if it can be: OAuth with an
/// authorize URL, or a schema with fields to fill.
fn kind_of(i: &IntegrationRecord) -> Option<ConnectKind> {
    if i.auth_type == AuthType::OAuth2 {
        return oauth_settings_of(i).ok().filter(|s| s.authorize_url.is_some()).map(|_| ConnectKind::OAuth);
    }
    let schema = &i.config_schema;
    (!schema.fields().is_empty()).then_some(ConnectKind::Fields)
}

/// The registered integrations a session offers, in the allow-list's order
/// (or by key when it has none).
async fn offered(tx: &mut dyn StoreTx, s: &ConnectSessionRecord) -> Result<Vec<IntegrationRecord>, ServiceError> {
    let all = tx.list_integrations().await?;
    Ok(match &s.integrations {
        None => all,
        Some(keys) => keys.iter().filter_map(|k| all.iter().find(|i| &i.key == k).cloned()).collect(),
    })
}

/// One integration the session offers.
async fn offered_one(
    tx: &mut dyn StoreTx,
    s: &ConnectSessionRecord,
    key: &str,
) -> Result<IntegrationRecord, ServiceError> {
    if s.integrations.as_ref().is_some_and(|keys| !keys.iter().any(|k| k == key)) {
        return Err(not_offered());
    }
    tx.get_integration(key).await?.ok_or_else(not_offered)
}

fn end_user_id(s: &ConnectSessionRecord) -> String {
    s.end_user.as_ref().and_then(|u| u.get("id")).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn end_user_label(s: &ConnectSessionRecord) -> Option<String> {
    let u = s.end_user.as_ref()?;
    ["displayName", "email"].iter().find_map(|f| u.get(*f).and_then(Value::as_str).map(str::to_owned))
}
