//! Planning a proxied call: which tenant, which base URL, which credential
//! to inject (refreshed first when it expired), and the audit record of each
//! call. The call itself is [`super::proxy_call`].

use crate::ErrorCode;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::view_cache::ViewReader;
use super::{Ctx, Tessera};
use crate::access::Access;
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, SecretPath, TenantId, PLATFORM_TENANT};
use crate::ports::{ConnectionRecord, CredentialRecord, IntegrationRecord};
use crate::proxy::{ProxyAuth, ProxySettings};

/// How often `lastUsedAt` is written per connection at most (a write per call would cost more than the call).
const TOUCH_EVERY: Duration = Duration::from_secs(10);

/// What one forwarded call needs (also a health probe's).
pub(crate) struct ProxyPlan {
    /// Tenant (from the caller).
    pub tenant: TenantId,
    /// Integration.
    pub integration: IntegrationKey,
    /// The base URL every call stays under.
    pub base_url: url::Url,
    /// The credential to add.
    pub injection: Injection,
    /// Whether the credential is an OAuth access token (a 401 may be cured by a refresh).
    pub uses_oauth: bool,
    /// When the plan was made (a refresh after a 401 must be newer).
    pub made_at: DateTime<Utc>,
}

/// A credential on its way to the upstream.
pub(crate) enum Injection {
    /// Nothing.
    None,
    /// A header (`Authorization: Bearer ...`, `X-Api-Key: ...`).
    Header {
        /// Lower-case header name.
        name: String,
        /// Its value.
        value: SecretString,
    },
    /// A query parameter.
    Query {
        /// Parameter name.
        name: String,
        /// Its value.
        value: SecretString,
    },
}

/// One forwarded call, for the audit log.
pub(crate) struct ProxyCall<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path under the base (no query: it may carry data).
    pub path: &'a str,
}

impl Tessera {
    /// Plans a proxied call: the method must be one the proxy forwards (not
    /// `CONNECT` or `TRACE`), the tenant is the caller's own (an admin names it
    /// with `X-Tenant-Id`), the connection must be enabled, and an expired
    /// OAuth token is refreshed first.
    pub(crate) async fn proxy_plan(
        &self,
        ctx: &Ctx,
        method: &str,
        key: &str,
        tenant_header: Option<&str>,
    ) -> Result<ProxyPlan, ServiceError> {
        crate::proxy::check_method(method)?;
        let tenant = self.caller_tenant(ctx, tenant_header, "X-Tenant-Id", "the X-Tenant-Id header").await?;
        let key = IntegrationKey::parse(key)?;
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Read).await?;
        self.plan_for(&tenant, &key, None).await
    }

    /// After the upstream answered 401 to an OAuth token: refreshes it (once,
    /// unless someone else already did since `plan` was made) and plans again.
    pub(crate) async fn proxy_replan_after_401(&self, plan: &ProxyPlan) -> Result<ProxyPlan, ServiceError> {
        self.plan_for(&plan.tenant, &plan.integration, Some(plan.made_at)).await
    }

    pub(crate) async fn plan_for(
        &self,
        tenant: &TenantId,
        key: &IntegrationKey,
        stale_before: Option<DateTime<Utc>>,
    ) -> Result<ProxyPlan, ServiceError> {
        let made_at = Utc::now();
        let super::usage::UsableConnection { mut reader, connection } =
            self.usable_connection(tenant, key, stale_before).await?;
        let (integration, conn, cred) = connection.parts();
        let settings = proxy_settings(integration)?;
        let base_url = settings.validate()?;
        macro_rules! value {
            ($source:expr) => {
                self.credential_value(&mut reader, integration, conn, cred, tenant, key, $source).await?
            };
        }
        let (injection, uses_oauth) = match &settings.effective_auth(integration.auth_type) {
            ProxyAuth::None => (Injection::None, false),
            ProxyAuth::Bearer { from } => {
                let v = value!(from);
                sendable_in_header(key, from, "Authorization", &v)?;
                let header = SecretString::from(format!("Bearer {}", v.expose_secret()));
                (Injection::Header { name: "authorization".into(), value: header }, from == "credentials")
            }
            ProxyAuth::Header { name, prefix, from } => {
                let v = value!(from);
                sendable_in_header(key, from, name, &v)?;
                let full = SecretString::from(format!("{}{}", prefix.as_deref().unwrap_or(""), v.expose_secret()));
                (Injection::Header { name: name.to_ascii_lowercase(), value: full }, from == "credentials")
            }
            ProxyAuth::Basic { username, password } => {
                let user = value!(username);
                let pass = value!(password);
                let pair = Zeroizing::new(format!("{}:{}", user.expose_secret(), pass.expose_secret()));
                let header = SecretString::from(format!("Basic {}", STANDARD.encode(pair.as_bytes())));
                let oauth = username == "credentials" || password == "credentials";
                (Injection::Header { name: "authorization".into(), value: header }, oauth)
            }
            // Any value can go in a query: it is percent-encoded.
            ProxyAuth::Query { name, from } => {
                (Injection::Query { name: name.clone(), value: value!(from) }, from == "credentials")
            }
        };
        reader.finish().await?;
        Ok(ProxyPlan { tenant: tenant.clone(), integration: key.clone(), base_url, injection, uses_oauth, made_at })
    }

    /// One credential value: the access token, or a resolved config field
    /// (tenant override < integration default < schema default, in reverse).
    #[allow(clippy::too_many_arguments)]
    async fn credential_value(
        &self,
        reader: &mut ViewReader<'_>,
        integration: &IntegrationRecord,
        conn: &ConnectionRecord,
        cred: Option<&CredentialRecord>,
        tenant: &TenantId,
        key: &IntegrationKey,
        source: &str,
    ) -> Result<SecretString, ServiceError> {
        if source == "credentials" {
            if cred.is_none() {
                return Err(ServiceError::conflict(
                    ErrorCode::CredentialsNotFound,
                    format!("tenant {tenant} has no credentials for {key}; store them or run the OAuth flow"),
                ));
            }
            let tokens = reader.tokens(tenant, key).await?;
            return Ok(SecretString::from(tokens.access.as_str()));
        }
        let field = source.strip_prefix("config:").unwrap_or(source);
        let levels = [
            (tenant.as_str(), &conn.config, &conn.config_meta),
            (PLATFORM_TENANT, &integration.defaults, &integration.defaults_meta),
        ];
        for (owner, public, meta) in levels {
            if meta.get(field).is_some_and(|m| m.secret) {
                let path = SecretPath::config_field(key, field);
                let revealed = reader.latest_secret(owner, path.as_str()).await?;
                return json_text(&revealed.plaintext);
            }
            if let Some(v) = public.get(field) {
                return Ok(SecretString::from(scalar_text(v)));
            }
        }
        let schema = &integration.config_schema;
        match schema.field(field).and_then(|f| f.default.as_ref()) {
            Some(v) => Ok(SecretString::from(scalar_text(v))),
            None => Err(ServiceError::conflict(
                ErrorCode::ProxyCredentialMissing,
                format!("{key} injects config field {field}, which tenant {tenant} has not set"),
            )),
        }
    }

    /// Audits a call about to be sent, before the upstream is contacted: no
    /// call leaves unaudited, even one whose upstream never answers (or a
    /// process that dies while it waits).
    pub(crate) async fn record_proxy_start(
        &self,
        ctx: &Ctx,
        plan: &ProxyPlan,
        call: &ProxyCall<'_>,
    ) -> Result<(), ServiceError> {
        let resource = format!("proxy/{}/{}?method={}", plan.integration, call.path, call.method);
        self.audit.record(ctx.event("proxy.call", Some(plan.tenant.as_str()), resource, "started")).await
    }

    /// Audits a call's outcome (method, path, upstream status or none,
    /// duration; never a body) and records the connection's use.
    pub(crate) async fn record_proxy_outcome(
        &self,
        ctx: &Ctx,
        plan: &ProxyPlan,
        call: &ProxyCall<'_>,
        status: Option<u16>,
        duration: Duration,
    ) -> Result<(), ServiceError> {
        let shown = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        let resource = format!(
            "proxy/{}/{}?method={}&status={shown}&ms={}",
            plan.integration,
            call.path,
            call.method,
            duration.as_millis()
        );
        let outcome = if status.is_some_and(|s| s < 500) { "success" } else { "failure" };
        self.audit.record(ctx.event("proxy.call", Some(plan.tenant.as_str()), resource, outcome)).await?;
        self.count_use(&plan.tenant, &plan.integration, super::usage_stats::Use::Proxy);
        self.touch_throttled(&plan.tenant, &plan.integration).await
    }
}

/// The `touch` throttle's TTL.
pub(crate) fn touch_interval() -> Duration {
    TOUCH_EVERY
}

/// Fails the call when a credential value cannot go out in a header (CR, LF
/// or another control character): sending the call without it, or with the
/// header split in two, would be worse. Names the integration, the source
/// and the header, never the value.
fn sendable_in_header(
    key: &IntegrationKey,
    source: &str,
    header: &str,
    value: &SecretString,
) -> Result<(), ServiceError> {
    if crate::proxy::header_value_ok(value.expose_secret()) {
        return Ok(());
    }
    Err(ServiceError {
        field: Some(source.to_owned()),
        ..ServiceError::conflict(
            ErrorCode::ProxyCredentialInvalid,
            format!(
                "{key} injects {source} into the {header} header, but its value holds control characters \
                 (such as CR or LF) and cannot be sent; nothing was sent"
            ),
        )
    })
}

fn proxy_settings(integration: &IntegrationRecord) -> Result<ProxySettings, ServiceError> {
    let raw = integration.settings.get("proxy").ok_or_else(|| {
        ServiceError::conflict(ErrorCode::ProxyNotConfigured, format!("{} has no proxy settings", integration.key))
    })?;
    serde_json::from_value(raw.clone()).map_err(|e| {
        ServiceError::internal(format!("stored proxy settings of {} are unreadable: {e}", integration.key))
    })
}

/// A decrypted JSON value as text (strings without quotes).
fn json_text(plaintext: &[u8]) -> Result<SecretString, ServiceError> {
    match serde_json::from_slice::<String>(plaintext).map(Zeroizing::new) {
        Ok(s) => Ok(SecretString::from(s.as_str())),
        Err(_) => Ok(SecretString::from(String::from_utf8_lossy(plaintext).into_owned())),
    }
}

fn scalar_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
