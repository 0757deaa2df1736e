//! How the Vault client gets, keeps and replaces its token
//! (`VAULT_AUTH_METHOD`): a given `VAULT_TOKEN`, an AppRole login
//! (`VAULT_ROLE_ID` and a secret id) or a JWT login (`VAULT_JWT_ROLE` and a
//! token file, e.g. a Kubernetes service-account token, re-read at every
//! login). A renewable token is renewed at two thirds of its TTL; one that
//! can no longer be renewed (its max TTL is reached, or it is not
//! renewable) is replaced by a new login before it runs out. A background
//! task does this while the client lives, so an idle server's token does
//! not lapse; a request that finds its token about to expire refreshes it
//! itself. Tokens live in [`SecretString`]s and are never logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};
use tessera_core::{ErrorCode, ServiceError};

/// How Tessera logs in to Vault.
pub enum VaultAuth {
    /// `VAULT_AUTH_METHOD=token` (the default): `VAULT_TOKEN` as given,
    /// renewed while it is renewable; it cannot be replaced.
    Token(SecretString),
    /// `VAULT_AUTH_METHOD=approle`: `POST auth/<mount>/login` with a role id and secret id.
    AppRole {
        /// `VAULT_AUTH_MOUNT`, default `approle`.
        mount: String,
        /// `VAULT_ROLE_ID`.
        role_id: String,
        /// `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`.
        secret_id: SecretSource,
    },
    /// `VAULT_AUTH_METHOD=jwt`: `POST auth/<mount>/login` with a role and a JWT read from a file.
    Jwt {
        /// `VAULT_AUTH_MOUNT`, default `jwt`.
        mount: String,
        /// `VAULT_JWT_ROLE`.
        role: String,
        /// `VAULT_JWT_FILE`, re-read at every login (projected tokens rotate).
        jwt_file: PathBuf,
    },
}

/// A credential given in a variable or kept in a file (re-read at every login).
pub enum SecretSource {
    /// The value itself.
    Value(SecretString),
    /// A file holding it (surrounding whitespace ignored).
    File(PathBuf),
}

impl SecretSource {
    fn read(&self, what: &str) -> Result<SecretString, ServiceError> {
        match self {
            Self::Value(v) => Ok(SecretString::from(secrecy::ExposeSecret::expose_secret(v).to_owned())),
            Self::File(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    ServiceError::unavailable(
                        ErrorCode::VaultDenied,
                        format!("cannot read the {what} file {}: {e}", path.display()),
                    )
                })?);
                Ok(SecretString::from(text.trim().to_owned()))
            }
        }
    }
}

impl VaultAuth {
    /// Whether a refused token can be replaced by logging in again.
    pub(crate) fn can_login(&self) -> bool {
        !matches!(self, Self::Token(_))
    }

    /// The method, for messages and logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Token(_) => "VAULT_TOKEN".to_owned(),
            Self::AppRole { mount, .. } => format!("AppRole login at auth/{mount}"),
            Self::Jwt { mount, .. } => format!("JWT login at auth/{mount}"),
        }
    }

    /// The login request: path and body (holding the credential: never logged).
    fn login_request(&self) -> Result<Option<(String, Value)>, ServiceError> {
        use secrecy::ExposeSecret as _;
        Ok(match self {
            Self::Token(_) => None,
            Self::AppRole { mount, role_id, secret_id } => {
                let secret_id = secret_id.read("VAULT_SECRET_ID")?;
                let body = json!({"role_id": role_id, "secret_id": secret_id.expose_secret()});
                Some((format!("auth/{mount}/login"), body))
            }
            Self::Jwt { mount, role, jwt_file } => {
                let jwt = SecretSource::File(jwt_file.clone()).read("VAULT_JWT")?;
                Some((format!("auth/{mount}/login"), json!({"role": role, "jwt": jwt.expose_secret()})))
            }
        })
    }
}

/// A token in use, and when to act on it.
pub(crate) struct Session {
    pub(crate) token: SecretString,
    /// Counts sessions: a refresh asked for an older one finds it already replaced.
    pub(crate) generation: u64,
    /// When the token stops working (None: never).
    pub(crate) expires: Option<Instant>,
    /// When to renew it or log in again, ahead of `expires`.
    pub(crate) refresh_at: Option<Instant>,
    /// At `refresh_at`: renew (true) or log in again (false).
    pub(crate) renew: bool,
    /// The TTL the login granted: a renewal that grants less has reached the max TTL.
    granted: Duration,
}

/// A token about to expire within this is refreshed before a request uses it.
pub(crate) const EXPIRY_MARGIN: Duration = Duration::from_secs(1);

impl Session {
    /// A session for a token Vault granted `ttl` (zero: never expires).
    fn new(token: SecretString, generation: u64, ttl: Duration, renewable: bool, granted: Duration) -> Self {
        let now = Instant::now();
        let (expires, refresh_at) =
            if ttl.is_zero() { (None, None) } else { (Some(now + ttl), Some(now + ttl * 2 / 3)) };
        Self { token, generation, expires, refresh_at, renew: renewable, granted }
    }

    /// Usable for a request now (not within [`EXPIRY_MARGIN`] of expiring).
    pub(crate) fn fresh(&self) -> bool {
        self.expires.is_none_or(|e| Instant::now() + EXPIRY_MARGIN < e)
    }
}

/// What a refresh should do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refresh {
    /// The first token: log in, or look up the given one.
    Start,
    /// Extend the current token (falls back to a login when that fails or hits the max TTL).
    Renew,
    /// A new login (a given token is looked up again instead).
    Login,
}

/// Vault's `auth` block: token, TTL, renewable.
fn auth_of(body: &mut Value) -> Option<(SecretString, Duration, bool)> {
    let auth = body.get_mut("auth")?;
    let ttl = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
    let renewable = auth["renewable"].as_bool().unwrap_or(false);
    let token = match auth.get_mut("client_token")?.take() {
        Value::String(t) if !t.is_empty() => SecretString::from(t),
        _ => return None,
    };
    Some((token, ttl, renewable))
}

/// Vault's own words for a refusal (`errors`), which name no secret.
pub(crate) fn vault_errors(body: &Value) -> String {
    let words: Vec<&str> = body["errors"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if words.is_empty() {
        "no reason given".to_owned()
    } else {
        words.join("; ")
    }
}

impl super::vault_client::VaultClient {
    /// A token usable now: the current one, or a fresh one when it is missing or about to expire.
    pub(crate) async fn session(&self) -> Result<Arc<Session>, ServiceError> {
        match self.current() {
            Some(s) if s.fresh() => Ok(s),
            Some(s) => {
                let how = if s.renew && s.expires.is_some_and(|e| Instant::now() < e) {
                    Refresh::Renew
                } else {
                    Refresh::Login
                };
                self.refresh(Some(s.generation), how).await
            }
            None => self.refresh(None, Refresh::Start).await,
        }
    }

    /// Replaces the session `seen` (None: there is none yet), once however
    /// many callers ask at the same time: a caller that waited finds the
    /// session already replaced and takes it.
    pub(crate) async fn refresh(&self, seen: Option<u64>, how: Refresh) -> Result<Arc<Session>, ServiceError> {
        let inner = self.inner();
        let _one_at_a_time = inner.refreshing.lock().await;
        let current = self.current();
        if let Some(s) = &current {
            if Some(s.generation) != seen && s.fresh() {
                return Ok(s.clone());
            }
        }
        let generation = current.as_ref().map_or(1, |s| s.generation + 1);
        let session = match (how, current) {
            (Refresh::Renew, Some(s)) => self.renew(&s, generation).await?,
            _ => self.login(generation).await?,
        };
        let session = Arc::new(session);
        *inner.session.write().expect("the Vault session lock is never poisoned") = Some(session.clone());
        inner.changed.send_replace(generation);
        self.ensure_renewer();
        Ok(session)
    }

    /// Logs in (or, for a given token, looks it up to learn its TTL).
    async fn login(&self, generation: u64) -> Result<Session, ServiceError> {
        let inner = self.inner();
        let Some((path, body)) = inner.auth.login_request()? else {
            let VaultAuth::Token(token) = &inner.auth else { unreachable!("only a given token has no login request") };
            return Ok(self.look_up(token, generation).await);
        };
        let mut reply = self.send_with(None, reqwest::Method::POST, &self.url(&path), Some(body)).await?;
        let describe = inner.auth.describe();
        if !reply.status.is_success() {
            tracing::warn!(method = %describe, status = %reply.status, "Vault refused the login");
            return Err(ServiceError::unavailable(
                ErrorCode::VaultDenied,
                format!("Vault refused the login ({describe}): {}", vault_errors(&reply.body)),
            ));
        }
        let Some((token, ttl, renewable)) = auth_of(&mut reply.body) else {
            return Err(ServiceError::unavailable(
                ErrorCode::VaultError,
                format!("Vault's answer to the login ({describe}) holds no token"),
            ));
        };
        tracing::info!(method = %describe, ttl_seconds = ttl.as_secs(), renewable, "logged in to Vault");
        Ok(Session::new(token, generation, ttl, renewable, ttl))
    }

    /// A given token's TTL and renewability (`lookup-self`). A token that may
    /// not look itself up is used as it is, without renewal.
    async fn look_up(&self, token: &SecretString, generation: u64) -> Session {
        let copy = || SecretString::from(secrecy::ExposeSecret::expose_secret(token).to_owned());
        let url = self.url("auth/token/lookup-self");
        match self.send_with(Some(token), reqwest::Method::GET, &url, None).await {
            Ok(r) if r.status.is_success() => {
                let ttl = Duration::from_secs(r.body["data"]["ttl"].as_u64().unwrap_or(0));
                let renewable = r.body["data"]["renewable"].as_bool().unwrap_or(false);
                if !ttl.is_zero() {
                    tracing::info!(
                        ttl_seconds = ttl.as_secs(),
                        renewable,
                        "VAULT_TOKEN expires; renewing it while it can be"
                    );
                }
                Session::new(copy(), generation, ttl, renewable, ttl)
            }
            other => {
                let status = other.as_ref().map(|r| r.status.as_u16()).unwrap_or_default();
                tracing::warn!(status, "cannot look up VAULT_TOKEN; using it as it is, without renewal");
                Session::new(copy(), generation, Duration::ZERO, false, Duration::ZERO)
            }
        }
    }

    /// Renews the session's token; at the max TTL (a shorter TTL granted) or
    /// when Vault refuses, logs in again where the method can.
    async fn renew(&self, s: &Session, generation: u64) -> Result<Session, ServiceError> {
        let inner = self.inner();
        let url = self.url("auth/token/renew-self");
        let renewed = self.send_with(Some(&s.token), reqwest::Method::POST, &url, Some(json!({}))).await;
        let copy = || SecretString::from(secrecy::ExposeSecret::expose_secret(&s.token).to_owned());
        match renewed {
            Ok(mut r) if r.status.is_success() => {
                let (ttl, renewable) = match auth_of(&mut r.body) {
                    Some((_, ttl, renewable)) => (ttl, renewable),
                    None => (Duration::ZERO, false),
                };
                let capped = ttl < s.granted;
                if capped && inner.auth.can_login() {
                    tracing::debug!(ttl_seconds = ttl.as_secs(), "Vault token at its max TTL; logging in again");
                    return self.login(generation).await;
                }
                if capped {
                    tracing::warn!(
                        ttl_seconds = ttl.as_secs(),
                        "VAULT_TOKEN reached its max TTL and expires soon; a token cannot log in again \
                         (VAULT_AUTH_METHOD=approle or jwt can)"
                    );
                }
                tracing::debug!(ttl_seconds = ttl.as_secs(), "Vault token renewed");
                Ok(Session::new(copy(), generation, ttl, renewable && !capped, s.granted))
            }
            _ if inner.auth.can_login() => self.login(generation).await,
            Ok(r) => Err(ServiceError::unavailable(
                ErrorCode::VaultDenied,
                format!("Vault refused to renew VAULT_TOKEN: {}", vault_errors(&r.body)),
            )),
            Err(e) => Err(e),
        }
    }

    /// Keeps the token current in the background while the client lives.
    fn ensure_renewer(&self) {
        let inner = self.inner();
        if inner.renewer.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            inner.renewer.store(false, std::sync::atomic::Ordering::SeqCst);
            return;
        };
        let mut changed = inner.changed.subscribe();
        let weak = Arc::downgrade(inner);
        runtime.spawn(async move {
            loop {
                changed.borrow_and_update();
                let next = {
                    let Some(client) = Self::from_weak(&weak) else { return };
                    client.current().and_then(|s| s.refresh_at.map(|at| (at, s.generation, s.renew)))
                };
                let Some((at, generation, renew)) = next else {
                    // Nothing to do until another session comes (or the client is gone).
                    if changed.changed().await.is_err() {
                        return;
                    }
                    continue;
                };
                tokio::select! {
                    r = changed.changed() => {
                        if r.is_err() { return }
                        continue;
                    }
                    () = tokio::time::sleep_until(at.into()) => {}
                }
                let Some(client) = Self::from_weak(&weak) else { return };
                let how = if renew { Refresh::Renew } else { Refresh::Login };
                if let Err(e) = client.refresh(Some(generation), how).await {
                    tracing::warn!(error = %e.message, "cannot renew the Vault token; trying again in a second");
                    drop(client);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
    }

    /// Whether Vault answered that the token is not (or no longer) good.
    pub(crate) fn refused(status: StatusCode) -> bool {
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED
    }
}
