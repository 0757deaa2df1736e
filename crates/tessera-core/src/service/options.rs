//! The service layer's settings, as `serve` and the admin commands read them
//! from the environment.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;

use super::credentials::env_prefix;
use super::limits::RateLimit;
use super::proxy_call::ProxyLimits;
use super::webhooks::WebhookOptions;

/// Settings of the service layer.
pub struct TesseraOptions {
    /// How many versions of a secret are kept.
    pub max_versions: u32,
    /// `TESSERA_ROOT_TOKEN`, accepted as an admin token.
    pub root_token: Option<SecretString>,
    /// How long an API key lookup is cached (deletions take effect on other
    /// replicas within this time; on this replica at once).
    pub principal_cache_ttl: Duration,
    /// How long an unwrapped data key stays cached.
    pub key_cache_ttl: Duration,
    /// Longest a cached connection view (rows and ciphertext, never
    /// plaintext) is used; zero turns the cache off. Writes here invalidate it
    /// at once, other replicas' writes as soon as their notice arrives.
    pub view_cache_ttl: Duration,
    /// OAuth flows and token refresh.
    pub oauth: OAuthOptions,
    /// Per-caller rate limit (`TESSERA_RATE_LIMIT`); none: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Per-client-address limit of anonymous requests (`TESSERA_RATE_LIMIT_ANONYMOUS`):
    /// requests that fail authentication and OAuth callbacks; none: unlimited.
    pub anonymous_rate_limit: Option<RateLimit>,
    /// Webhook delivery.
    pub webhooks: WebhookOptions,
    /// `TESSERA_ALLOW_LOOPBACK_HTTP`: webhooks may target this machine.
    pub allow_loopback: bool,
    /// Console sign-in sessions.
    pub console: ConsoleOptions,
    /// Size limits of proxied calls.
    pub proxy: ProxyLimits,
}

/// How long console sessions last.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// A session unused this long ends (`TESSERA_CONSOLE_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, whatever its use
    /// (`TESSERA_CONSOLE_SESSION_MAX_AGE`).
    pub max_age: Duration,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self { idle_timeout: Duration::from_secs(30 * 60), max_age: Duration::from_secs(12 * 3600) }
    }
}

/// Settings of OAuth flows and token refresh.
#[derive(Debug, Clone)]
pub struct OAuthOptions {
    /// `redirect_uri`s a flow may end at (`TESSERA_ALLOWED_REDIRECT_URIS`), exact matches.
    pub allowed_redirect_uris: Vec<String>,
    /// Tessera's public base URL, for default callback URLs (`TESSERA_PUBLIC_URL`).
    pub public_url: String,
    /// `<INTEGRATION>_CLIENT_ID` / `_CLIENT_SECRET` / `_REDIRECT_URI`, by prefix (`NOTION`).
    pub env_clients: HashMap<String, EnvClient>,
    /// How long an authorization flow may take.
    pub state_ttl: Duration,
    /// Refresh this long before expiry (`TESSERA_REFRESH_BEFORE`).
    pub refresh_before: Duration,
    /// First retry delay after a failed refresh; doubles per failure, at most an hour.
    pub retry_base: Duration,
    /// Failures in a row after which the connection is marked unhealthy.
    pub max_failures: u32,
    /// How long a replica's claim on a token lasts (longer than any provider call).
    pub lease: Duration,
}

impl Default for OAuthOptions {
    fn default() -> Self {
        Self {
            allowed_redirect_uris: Vec::new(),
            public_url: "http://127.0.0.1:7300".into(),
            env_clients: HashMap::new(),
            state_ttl: Duration::from_secs(600),
            refresh_before: Duration::from_secs(300),
            retry_base: Duration::from_secs(30),
            max_failures: 5,
            lease: Duration::from_secs(60),
        }
    }
}

impl OAuthOptions {
    /// The environment's client settings for an integration key.
    pub fn env_client(&self, key: &str) -> Option<&EnvClient> {
        self.env_clients.get(&env_prefix(key))
    }
}

/// An OAuth client from the environment.
#[derive(Debug, Clone, Default)]
pub struct EnvClient {
    /// `<I>_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `<I>_CLIENT_SECRET`.
    pub client_secret: Option<SecretString>,
    /// `<I>_REDIRECT_URI`.
    pub redirect_uri: Option<String>,
}

impl Default for TesseraOptions {
    fn default() -> Self {
        Self {
            max_versions: 10,
            root_token: None,
            principal_cache_ttl: Duration::from_secs(5),
            key_cache_ttl: Duration::from_secs(300),
            view_cache_ttl: Duration::from_secs(5),
            oauth: OAuthOptions::default(),
            rate_limit: None,
            anonymous_rate_limit: None,
            webhooks: WebhookOptions::default(),
            allow_loopback: false,
            console: ConsoleOptions::default(),
            proxy: ProxyLimits::default(),
        }
    }
}
