//! Hosted Connect sessions, the platform's side: a platform backend mints a
//! short-lived session for one tenant and hands its user the page's URL
//! (`POST /connect/sessions`), reads where it stands, or ends it early.
//! The session's token is the page's only credential: it is returned once
//! and stored only as a SHA-256 hash. What the page may do with it is in
//! `connect_page`.

use crate::ErrorCode;
use chrono::{Duration as TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{rfc3339, Ctx, Tessera};
use crate::domain::WebhookEvent;
use crate::error::{ErrorKind, ServiceError};
use crate::ids::{IntegrationKey, TenantId};
use crate::oauth::settings::random_token;
use crate::ports::{ConnectSessionRecord, ConnectStatus, StoreTx};

/// Longest a connect session may last, in seconds.
pub const MAX_EXPIRES_IN: i64 = 1800;
/// A connect session's lifetime when the request names none, in seconds.
pub const DEFAULT_EXPIRES_IN: i64 = 900;
/// Most integrations in one session's allow-list.
const MAX_INTEGRATIONS: usize = 50;
/// Ended sessions are kept this long for `GET /connect/sessions/{id}`.
const KEEP_ENDED_DAYS: i64 = 7;

/// The body of `POST /connect/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectSessionInput {
    /// The tenant whose connections the page makes.
    #[schema(pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$")]
    pub tenant_id: String,
    /// The integrations the page offers (registered keys); absent: every registered integration.
    #[serde(default)]
    #[schema(schema_with = integrations_schema)]
    pub integrations: Option<Vec<String>>,
    /// Where the browser goes when the person finishes; must be listed in
    /// `TESSERA_ALLOWED_REDIRECT_URIS` (exact match).
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub redirect_uri: Option<String>,
    /// Seconds the link works (1 to 1800; default 900).
    #[serde(default, deserialize_with = "crate::json_int::opt_integer")]
    #[schema(minimum = 1, maximum = 1800)]
    pub expires_in: Option<i64>,
    /// The platform's user who will open the page, recorded on the
    /// connections it makes and in audit.
    #[serde(default)]
    pub end_user: Option<EndUser>,
}

/// 1 to 50 integration keys, or null.
fn integrations_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::Type;
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, OneOfBuilder};
    let key = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^[a-z0-9][a-z0-9_-]{0,62}$"));
    OneOfBuilder::new()
        .item(ArrayBuilder::new().items(key).min_items(Some(1)).max_items(Some(50)))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// The platform's user, as the platform describes them.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndUser {
    /// The platform's id for the user (no control characters).
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1f\x7f]+$")]
    pub id: String,
    /// Their email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 320, pattern = r"^[^\x00-\x1f\x7f@]+@[^\x00-\x1f\x7f]+$")]
    pub email: Option<String>,
    /// Their name, shown on the page (no control characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f]*$")]
    pub display_name: Option<String>,
}

/// The answer to `POST /connect/sessions`: the token is shown once.
#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedConnectSession {
    /// The session's id (for `GET`/`DELETE /connect/sessions/{id}`).
    pub id: String,
    /// The page's credential: never stored, shown only here.
    pub token: String,
    /// The page to send the person to (contains the token).
    pub url: String,
    /// When the link stops working.
    pub expires_at: String,
}

// The token (also inside the URL) is a credential: never printed.
impl std::fmt::Debug for CreatedConnectSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedConnectSession")
            .field("id", &self.id)
            .field("token", &"[SECRET]")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Drop for CreatedConnectSession {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token);
        zeroize::Zeroize::zeroize(&mut self.url);
    }
}

/// One integration a session connected.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedIntegration {
    /// Integration key.
    pub integration: String,
    /// When (RFC 3339).
    pub at: String,
}

/// `GET /connect/sessions/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectSessionView {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// `pending`, `completed`, `expired` or `failed` (cancelled by the person).
    pub status: String,
    /// The allow-list; null: every integration.
    pub integrations: Option<Vec<String>>,
    /// What was connected through it.
    pub connected: Vec<ConnectedIntegration>,
    /// Where the browser goes at the end.
    pub redirect_uri: Option<String>,
    /// The platform's user.
    pub end_user: Option<EndUser>,
    /// Created.
    pub created_at: String,
    /// Stops working.
    pub expires_at: String,
    /// When it stopped being pending.
    pub ended_at: Option<String>,
}

impl From<&ConnectSessionRecord> for ConnectSessionView {
    fn from(s: &ConnectSessionRecord) -> Self {
        // A pending session past its expiry is expired, whether or not the
        // sweep has marked it yet.
        let status = if s.status == ConnectStatus::Pending && s.expires_at <= Utc::now() {
            ConnectStatus::Expired
        } else {
            s.status
        };
        Self {
            id: s.id.clone(),
            tenant_id: s.tenant_id.clone(),
            status: status.as_str().to_owned(),
            integrations: s.integrations.clone(),
            connected: connected_list(s),
            redirect_uri: s.redirect_uri.clone(),
            end_user: s.end_user.clone().and_then(|u| serde_json::from_value(u).ok()),
            created_at: rfc3339(s.created_at),
            expires_at: rfc3339(s.expires_at),
            ended_at: s.ended_at.map(rfc3339),
        }
    }
}

/// The integrations a session connected, in order.
pub(crate) fn connected_list(s: &ConnectSessionRecord) -> Vec<ConnectedIntegration> {
    s.connected
        .iter()
        .filter_map(|c| {
            Some(ConnectedIntegration {
                integration: c.get("integration")?.as_str()?.to_owned(),
                at: c.get("at")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

/// SHA-256 (hex) of a page token: what the store keeps and looks up.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn not_found() -> ServiceError {
    ServiceError::not_found(ErrorCode::ConnectSessionNotFound, "no such connect session")
}

impl Tessera {
    /// `POST /connect/sessions` (admins, or the tenant's `tenant_admin`).
    pub async fn create_connect_session(
        &self,
        ctx: &Ctx,
        input: ConnectSessionInput,
    ) -> Result<CreatedConnectSession, ServiceError> {
        let tenant = TenantId::parse(&input.tenant_id)?;
        self.allow_tenant_write(ctx, &tenant).await?;
        let expires_in = input.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
        if !(1..=MAX_EXPIRES_IN).contains(&expires_in) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidExpiresIn,
                format!("expiresIn must be between 1 and {MAX_EXPIRES_IN} seconds"),
                Some("expiresIn"),
            ));
        }
        if let Some(r) = input.redirect_uri.as_deref() {
            // Exact match only, as for OAuth flows: no open redirect.
            if !self.opts.oauth.allowed_redirect_uris.iter().any(|a| a == r) {
                return Err(ServiceError::invalid(
                    ErrorCode::RedirectUriNotAllowed,
                    "redirectUri is not in TESSERA_ALLOWED_REDIRECT_URIS",
                    Some("redirectUri"),
                ));
            }
        }
        let end_user = input.end_user.map(check_end_user).transpose()?;
        let mut tx = self.store.begin_write().await?;
        Self::require_tenant(tx.as_mut(), &tenant).await?;
        let integrations = match input.integrations {
            Some(list) => Some(self.check_allow_list(tx.as_mut(), list).await?),
            None => None,
        };
        let now = Utc::now();
        let token = random_token();
        let id = format!("cs_{}", uuid::Uuid::new_v4().simple());
        let record = ConnectSessionRecord {
            id: id.clone(),
            token_hash: token_hash(&token),
            tenant_id: tenant.to_string(),
            integrations,
            redirect_uri: input.redirect_uri,
            end_user: end_user.as_ref().map(|u| json!(u)),
            status: ConnectStatus::Pending,
            connected: Vec::new(),
            created_by: ctx.principal.id.clone(),
            created_role: ctx.principal.role.as_str().to_owned(),
            created_at: now,
            expires_at: now + TimeDelta::seconds(expires_in),
            ended_at: None,
        };
        tx.insert_connect_session(&record).await?;
        let end_user_id = end_user.as_ref().map_or("", |u| u.id.as_str());
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "connect.session_create",
                    Some(tenant.as_str()),
                    format!("connect/sessions/{id}?end_user={}", url_part(end_user_id)),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        let url = format!("{}/connect/{}", self.opts.oauth.public_url.trim_end_matches('/'), token.as_str());
        Ok(CreatedConnectSession { id, token: token.to_string(), url, expires_at: rfc3339(record.expires_at) })
    }

    /// `GET /connect/sessions/{id}`.
    pub async fn get_connect_session(&self, ctx: &Ctx, id: &str) -> Result<ConnectSessionView, ServiceError> {
        let mut tx = self.store.read().await?;
        let session = self.visible_session(ctx, tx.as_mut(), id).await?;
        tx.commit().await?;
        Ok(ConnectSessionView::from(&session))
    }

    /// `DELETE /connect/sessions/{id}`: the link stops working now and the
    /// session is forgotten; a session still pending raises
    /// `connect.session_expired`.
    pub async fn end_connect_session(&self, ctx: &Ctx, id: &str) -> Result<(), ServiceError> {
        let mut tx = self.store.begin_write().await?;
        let mut session = self.visible_session(ctx, tx.as_mut(), id).await?;
        if session.status == ConnectStatus::Pending {
            session.status = ConnectStatus::Expired;
            session.ended_at = Some(Utc::now());
            self.enqueue(tx.as_mut(), &session.tenant_id, WebhookEvent::ConnectSessionExpired, session_event(&session))
                .await?;
        }
        tx.delete_connect_session(id).await?;
        self.audit
            .append_in_tx(
                tx.as_mut(),
                vec![ctx.event(
                    "connect.session_end",
                    Some(&session.tenant_id),
                    format!("connect/sessions/{id}"),
                    "success",
                )],
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session `id`, if the caller may manage its tenant's sessions; a
    /// session of a tenant the caller may not see is "not found".
    async fn visible_session(
        &self,
        ctx: &Ctx,
        tx: &mut dyn StoreTx,
        id: &str,
    ) -> Result<ConnectSessionRecord, ServiceError> {
        let valid = id.len() <= 64 && id.starts_with("cs_");
        let session = if valid { tx.get_connect_session(id).await? } else { None };
        let Some(session) = session else { return Err(not_found()) };
        let tenant = TenantId::parse(&session.tenant_id)?;
        match self.allow_tenant_write(ctx, &tenant).await {
            Ok(()) => Ok(session),
            Err(e) if e.kind == ErrorKind::NotFound => Err(not_found()),
            Err(e) => Err(e),
        }
    }

    /// Each key once, each one registered.
    async fn check_allow_list(&self, tx: &mut dyn StoreTx, list: Vec<String>) -> Result<Vec<String>, ServiceError> {
        if list.is_empty() || list.len() > MAX_INTEGRATIONS {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidIntegrations,
                format!("integrations must list 1 to {MAX_INTEGRATIONS} integration keys, or be left out"),
                Some("integrations"),
            ));
        }
        let mut keys: Vec<String> = Vec::with_capacity(list.len());
        for raw in list {
            let key = IntegrationKey::parse(&raw)?;
            Self::require_integration(tx, &key).await?;
            if !keys.iter().any(|k| k == key.as_str()) {
                keys.push(key.to_string());
            }
        }
        Ok(keys)
    }

    /// One scan of the expiry sweep (run by the webhook worker): marks
    /// pending sessions past their expiry as expired, raising
    /// `connect.session_expired` once for each, and forgets sessions that
    /// ended more than a week ago.
    pub(crate) async fn expire_connect_sessions(&self, limit: i64) -> Result<u64, ServiceError> {
        let now = Utc::now();
        // Sessions and the webhook outbox are in no cached view: a log write,
        // so that this sweep (every few seconds, mostly finding nothing) does
        // not empty every replica's view cache each time.
        let mut tx = self.store.begin_log_write().await?;
        let expired = tx.expire_connect_sessions(now, limit).await?;
        for s in &expired {
            self.enqueue(tx.as_mut(), &s.tenant_id, WebhookEvent::ConnectSessionExpired, session_event(s)).await?;
        }
        tx.purge_connect_sessions(now - TimeDelta::days(KEEP_ENDED_DAYS)).await?;
        tx.commit().await?;
        Ok(expired.len() as u64)
    }
}

/// A webhook event's data about a session (no token).
pub(crate) fn session_event(s: &ConnectSessionRecord) -> Value {
    json!({
        "sessionId": s.id,
        "status": s.status.as_str(),
        "integrations": connected_list(s).into_iter().map(|c| c.integration).collect::<Vec<_>>(),
        "endUserId": s.end_user.as_ref().and_then(|u| u.get("id")).cloned(),
    })
}

/// Checks the platform's description of its user.
fn check_end_user(u: EndUser) -> Result<EndUser, ServiceError> {
    let bad = |field: &str, msg: &str| ServiceError::invalid(ErrorCode::InvalidEndUser, msg.to_owned(), Some(field));
    let printable = |s: &str| !s.chars().any(char::is_control);
    if u.id.is_empty() || u.id.len() > 200 || !printable(&u.id) {
        return Err(bad("endUser.id", "endUser.id must be 1 to 200 printable characters"));
    }
    if let Some(e) = &u.email {
        if e.len() > 320 || !e.contains('@') || !printable(e) {
            return Err(bad("endUser.email", "endUser.email must be an email address"));
        }
    }
    if let Some(n) = &u.display_name {
        if n.len() > 200 || !printable(n) {
            return Err(bad("endUser.displayName", "endUser.displayName must be at most 200 printable characters"));
        }
    }
    Ok(u)
}

/// A value as it may appear in an audit resource's query part.
pub(crate) fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_created_session_never_prints_its_token() {
        let s = super::CreatedConnectSession {
            id: "cs_1".into(),
            token: "tok-secret-123".into(),
            url: "https://t.example/connect/tok-secret-123".into(),
            expires_at: "2026-12-01T00:00:00Z".into(),
        };
        let printed = format!("{s:?}");
        assert!(printed.contains("cs_1") && !printed.contains("tok-secret-123"), "{printed}");
    }
}
