//! Settings from the environment, read once at start. A malformed value stops
//! start-up with one line naming the variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use secrecy::SecretString;
use tessera_backends::vault_client::{SecretSource, VaultAuth, VaultConnection, VaultTls};
use tessera_crypto::MasterKey;

/// Everything `serve` needs.
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub master_key: MasterKeySource,
    pub root_token: Option<SecretString>,
    pub max_body_bytes: usize,
    pub max_versions: u32,
    pub backend: Backend,
    pub key_cache_seconds: u64,
    /// `TESSERA_VIEW_CACHE_SECONDS`: longest a cached connection view is used (0: off).
    pub view_cache_seconds: u64,
    pub oauth: tessera_core::service::OAuthOptions,
    /// Seconds between scans of the token refresh worker.
    pub refresh_interval: std::time::Duration,
    /// `TESSERA_ALLOW_LOOPBACK_HTTP`: OAuth endpoints on 127.0.0.1/localhost
    /// may use plain http (a local identity provider, tests); elsewhere https only.
    pub allow_loopback_http: bool,
    /// `TESSERA_PROXY_TIMEOUT`: seconds a proxied call may take.
    pub proxy_timeout: std::time::Duration,
    /// `TESSERA_PROXY_MAX_RESPONSE_BYTES`: largest proxied answer.
    pub proxy_max_response_bytes: usize,
    /// `TESSERA_HEALTH_SCAN_INTERVAL`: seconds between scans for due health checks.
    pub health_interval: std::time::Duration,
    /// `TESSERA_RATE_LIMIT` (requests/second per caller) and `TESSERA_RATE_LIMIT_BURST`.
    pub rate_limit: Option<tessera_core::service::RateLimit>,
    /// `TESSERA_WEBHOOK_INTERVAL`: seconds between scans of the webhook delivery worker.
    pub webhook_interval: std::time::Duration,
    /// `TESSERA_WEBHOOK_RETRY_BASE`, `TESSERA_WEBHOOK_MAX_ATTEMPTS`.
    pub webhooks: tessera_core::service::WebhookOptions,
    /// `TESSERA_AUDIT_CHECKPOINT_INTERVAL`: seconds between signed checkpoints
    /// of the audit head in the data dir (zero: none).
    pub audit_checkpoint_interval: std::time::Duration,
    /// `TESSERA_HEADER_READ_TIMEOUT`: seconds a client has to send a request head.
    pub header_read_timeout: std::time::Duration,
    /// `TESSERA_MAX_CONNECTIONS`: open connections in total (lowered to 80 % of the open-file limit).
    pub max_connections: usize,
    /// `TESSERA_MAX_CONNECTIONS_PER_CLIENT`: open connections per client address.
    pub max_connections_per_client: usize,
    /// `TESSERA_RATE_LIMIT_ANONYMOUS` (requests/second per client address) and
    /// `TESSERA_RATE_LIMIT_ANONYMOUS_BURST`; none: `off`.
    pub anonymous_rate_limit: Option<tessera_core::service::RateLimit>,
    /// `TESSERA_AUDIT_DENIAL_INTERVAL`: seconds over which repeated denials of an address are aggregated.
    pub audit_denial_interval: std::time::Duration,
    /// `TESSERA_TRUSTED_PROXIES`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: tessera_http::TrustedProxies,
    /// `TESSERA_USAGE_FLUSH_INTERVAL`: how often usage counts are added to the store.
    pub usage_flush_interval: std::time::Duration,
    /// `TESSERA_CONSOLE_IDLE_TIMEOUT` / `TESSERA_CONSOLE_SESSION_MAX_AGE` (seconds).
    pub console: tessera_core::service::ConsoleOptions,
    /// `TESSERA_CONNECT_ORIGINS`, `TESSERA_CONNECT_TITLE`, `TESSERA_CONNECT_LOGO_URL`.
    pub connect: tessera_console::connect::ConnectOptions,
    /// `TESSERA_VAULT_API_MOUNT`: where the Vault-compatible API serves KV v2.
    pub vault_api_mount: String,
    /// `TESSERA_AUDIT_READS`: whether an access's audit event must be on disk
    /// before the answer (`durable`) or committed, on disk shortly after
    /// (`committed`, the default).
    pub audit_reads: tessera_store::ReadAudit,
    /// `TESSERA_AUDIT_SINKS` and how the sinks deliver.
    pub audit_sinks: AuditSinks,
    /// `TESSERA_TLS_CERT_FILE`, `TESSERA_TLS_KEY_FILE`, `TESSERA_TLS_CLIENT_CA_FILE`: HTTPS when set.
    pub tls: Option<crate::tls::TlsFiles>,
    /// `TESSERA_SHUTDOWN_TIMEOUT`: longest a SIGTERM waits for requests and claimed work in flight.
    pub shutdown_timeout: std::time::Duration,
}

/// Audit streaming: the sinks and their settings.
pub struct AuditSinks {
    /// `TESSERA_AUDIT_SINKS`, parsed.
    pub specs: Vec<tessera_core::audit_sink::SinkSpec>,
    /// `TESSERA_AUDIT_SINK_INTERVAL`, `_RETRY_BASE`, `_RETRY_MAX`.
    pub options: tessera_core::service::AuditSinkOptions,
    /// `TESSERA_AUDIT_FILE_MAX_BYTES` (0: never rotated) and `TESSERA_AUDIT_FILE_KEEP`.
    pub file_max_bytes: u64,
    pub file_keep: u32,
    /// `TESSERA_AUDIT_SINK_SECRET`: the key HTTP batches are signed with.
    pub secret: Option<SecretString>,
}

impl Default for AuditSinks {
    fn default() -> Self {
        Self {
            specs: Vec::new(),
            options: tessera_core::service::AuditSinkOptions::default(),
            file_max_bytes: 100 * 1024 * 1024,
            file_keep: 10,
            secret: None,
        }
    }
}

/// `TESSERA_AUDIT_SINKS` and its companions. An HTTP sink needs a signing
/// secret: its receiver must be able to tell Tessera's batches from others'.
fn audit_sinks(allow_loopback: bool) -> anyhow::Result<AuditSinks> {
    use tessera_core::audit_sink::{parse_sinks, SinkSpec};
    let specs =
        parse_sinks(&var("TESSERA_AUDIT_SINKS").unwrap_or_default(), allow_loopback).context("TESSERA_AUDIT_SINKS")?;
    let secret = match var("TESSERA_AUDIT_SINK_SECRET") {
        Some(s) if s.trim().len() < 32 => bail!("TESSERA_AUDIT_SINK_SECRET must be at least 32 characters"),
        Some(s) => Some(SecretString::from(s.trim().to_owned())),
        None => None,
    };
    if secret.is_none() && specs.iter().any(|s| matches!(s, SinkSpec::Http(_))) {
        bail!(
            "TESSERA_AUDIT_SINK_SECRET must be set (at least 32 characters) to sign the batches of an HTTP audit sink"
        );
    }
    let retry_base = positive("TESSERA_AUDIT_SINK_RETRY_BASE", 1u64)?;
    let retry_max = positive("TESSERA_AUDIT_SINK_RETRY_MAX", 60u64)?;
    if retry_max < retry_base {
        bail!("TESSERA_AUDIT_SINK_RETRY_MAX must be at least TESSERA_AUDIT_SINK_RETRY_BASE");
    }
    Ok(AuditSinks {
        specs,
        options: tessera_core::service::AuditSinkOptions {
            interval: std::time::Duration::from_secs(positive("TESSERA_AUDIT_SINK_INTERVAL", 1)?),
            retry_base: std::time::Duration::from_secs(retry_base),
            retry_max: std::time::Duration::from_secs(retry_max),
            ..tessera_core::service::AuditSinkOptions::default()
        },
        file_max_bytes: parse_num("TESSERA_AUDIT_FILE_MAX_BYTES", 100 * 1024 * 1024)?,
        file_keep: positive("TESSERA_AUDIT_FILE_KEEP", 10)?,
        secret,
    })
}

/// `CREDENTIAL_BACKEND`: where secret ciphertext lives.
pub enum Backend {
    /// Rows in the metadata store (default).
    Database,
    /// One encrypted file (`CREDENTIAL_FILE_PATH`).
    File(PathBuf),
    /// Read-only `PLATFORM_CRED_<KEY>` variables.
    Environment,
    /// HashiCorp Vault / OpenBao KV v2.
    Vault(Box<tessera_backends::vault::VaultSettings>),
}

/// Where the master key came from.
pub enum MasterKeySource {
    /// From a variable (named, for messages).
    Env(Box<MasterKey>, &'static str),
    /// None set: a dev key file in the data dir.
    DevFile(PathBuf),
    /// `TESSERA_KEYRING=vault-transit`: per-tenant Transit keys in Vault.
    Transit(Box<VaultConnection>, String),
}

/// Variables that may hold the master key, in order of precedence.
const MASTER_KEY_VARS: [&str; 3] = ["TESSERA_MASTER_KEY", "PLATFORM_CREDENTIAL_KEY", "CREDENTIAL_ENCRYPTION_KEY"];

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_num<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{name} must be a positive number")),
    }
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(name: &str, default: T) -> anyhow::Result<T> {
    let v = parse_num(name, default)?;
    if v <= T::default() {
        bail!("{name} must be a positive number");
    }
    Ok(v)
}

/// `TESSERA_AUDIT_READS`: `committed` (default) or `durable`.
fn audit_reads() -> anyhow::Result<tessera_store::ReadAudit> {
    match var("TESSERA_AUDIT_READS").as_deref().map(str::trim) {
        None | Some("committed") => Ok(tessera_store::ReadAudit::Committed),
        Some("durable") => Ok(tessera_store::ReadAudit::Durable),
        Some(other) => bail!("TESSERA_AUDIT_READS must be committed or durable (got {other:?})"),
    }
}

/// `TESSERA_LISTEN`: `host:port`, the host an IP address or a name such as
/// `localhost` (resolved once, at start; an IPv4 address is preferred, as
/// clients that type `localhost` try it first).
fn listen_addr(raw: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let bad =
        || anyhow::anyhow!("TESSERA_LISTEN must be host:port, e.g. 127.0.0.1:7300 or localhost:7300 (got {raw:?})");
    let addrs: Vec<SocketAddr> = raw.to_socket_addrs().map_err(|_| bad())?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.first()).copied().ok_or_else(bad)
}

impl Settings {
    /// Reads every setting `serve` uses.
    pub fn from_env() -> anyhow::Result<Self> {
        let store = Self::from_env_store_only()?;
        let listen = var("TESSERA_LISTEN").unwrap_or_else(|| "127.0.0.1:7300".into());
        let listen = listen_addr(&listen)?;
        let tls = tls_files()?;
        plaintext_allowed(listen, tls.is_some())?;
        let mut master_key = None;
        for name in MASTER_KEY_VARS {
            if let Some(v) = var(name) {
                let key = MasterKey::from_text(&v)
                    .map_err(|_| anyhow::anyhow!("{name} must be base64 (or hex) of exactly 32 bytes"))?;
                master_key = Some(MasterKeySource::Env(Box::new(key), name));
                break;
            }
        }
        let master_key = match var("TESSERA_KEYRING").as_deref().map(str::trim) {
            None | Some("local") => {
                master_key.unwrap_or_else(|| MasterKeySource::DevFile(store.data_dir.join("master.key")))
            }
            Some("vault-transit") => MasterKeySource::Transit(
                Box::new(vault_connection("TESSERA_KEYRING=vault-transit")?),
                vault_segment("VAULT_TRANSIT_ENGINE", "transit")?,
            ),
            Some(_) => bail!("TESSERA_KEYRING must be local or vault-transit"),
        };
        let root_token = match var("TESSERA_ROOT_TOKEN") {
            Some(t) if t.len() < 32 => bail!("TESSERA_ROOT_TOKEN must be at least 32 characters"),
            Some(t) => Some(SecretString::from(t)),
            None => None,
        };
        let max_body_bytes = parse_num("TESSERA_MAX_BODY_BYTES", 1024 * 1024)?;
        let max_versions: u32 = parse_num("TESSERA_MAX_VERSIONS", 10)?;
        if max_versions == 0 || max_body_bytes == 0 {
            bail!("TESSERA_MAX_VERSIONS and TESSERA_MAX_BODY_BYTES must be positive");
        }
        let backend = match var("CREDENTIAL_BACKEND").as_deref().map(str::trim) {
            None | Some("database") => Backend::Database,
            Some("file") => Backend::File(
                var("CREDENTIAL_FILE_PATH").map_or_else(|| store.data_dir.join("credentials.json"), PathBuf::from),
            ),
            Some("environment") => Backend::Environment,
            Some("vault") => Backend::Vault(Box::new(vault_settings()?)),
            Some(_) => bail!("CREDENTIAL_BACKEND must be one of database, file, environment, vault"),
        };
        let key_cache_seconds = parse_num("TESSERA_KEY_CACHE_SECONDS", 300)?;
        let view_cache_seconds = parse_num("TESSERA_VIEW_CACHE_SECONDS", 5)?;
        let oauth = oauth_settings()?;
        let refresh_interval: u64 = parse_num("TESSERA_REFRESH_INTERVAL", 30)?;
        if refresh_interval == 0 {
            bail!("TESSERA_REFRESH_INTERVAL must be a positive number of seconds");
        }
        let allow_loopback_http = match var("TESSERA_ALLOW_LOOPBACK_HTTP").as_deref().map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => bail!("TESSERA_ALLOW_LOOPBACK_HTTP must be true or false"),
        };
        Ok(Self {
            listen,
            master_key,
            root_token,
            max_body_bytes,
            max_versions,
            backend,
            key_cache_seconds,
            view_cache_seconds,
            oauth,
            refresh_interval: std::time::Duration::from_secs(refresh_interval),
            allow_loopback_http,
            proxy_timeout: std::time::Duration::from_secs(positive("TESSERA_PROXY_TIMEOUT", 30)?),
            proxy_max_response_bytes: positive("TESSERA_PROXY_MAX_RESPONSE_BYTES", 64 * 1024 * 1024)?,
            health_interval: std::time::Duration::from_secs(positive("TESSERA_HEALTH_SCAN_INTERVAL", 15)?),
            rate_limit: rate_limit()?,
            webhook_interval: std::time::Duration::from_secs(positive("TESSERA_WEBHOOK_INTERVAL", 5)?),
            audit_checkpoint_interval: std::time::Duration::from_secs(parse_num(
                "TESSERA_AUDIT_CHECKPOINT_INTERVAL",
                60,
            )?),
            webhooks: tessera_core::service::WebhookOptions {
                retry_base: std::time::Duration::from_secs(positive("TESSERA_WEBHOOK_RETRY_BASE", 10)?),
                max_attempts: positive("TESSERA_WEBHOOK_MAX_ATTEMPTS", 8)?,
                retention: match parse_num::<u64>("TESSERA_WEBHOOK_RETENTION_DAYS", 30)? {
                    0 => None,
                    days => Some(std::time::Duration::from_secs(days.saturating_mul(86_400))),
                },
                ..tessera_core::service::WebhookOptions::default()
            },
            header_read_timeout: std::time::Duration::from_secs(positive("TESSERA_HEADER_READ_TIMEOUT", 10)?),
            max_connections: positive("TESSERA_MAX_CONNECTIONS", 4096)?,
            max_connections_per_client: positive("TESSERA_MAX_CONNECTIONS_PER_CLIENT", 256)?,
            anonymous_rate_limit: anonymous_rate_limit()?,
            audit_denial_interval: std::time::Duration::from_secs(positive("TESSERA_AUDIT_DENIAL_INTERVAL", 60)?),
            trusted_proxies: var("TESSERA_TRUSTED_PROXIES").unwrap_or_default().parse().map_err(|e| {
                anyhow::anyhow!("TESSERA_TRUSTED_PROXIES must be comma-separated addresses or CIDRs: {e}")
            })?,
            usage_flush_interval: std::time::Duration::from_secs(positive("TESSERA_USAGE_FLUSH_INTERVAL", 60)?),
            console: tessera_core::service::ConsoleOptions {
                idle_timeout: std::time::Duration::from_secs(positive("TESSERA_CONSOLE_IDLE_TIMEOUT", 1800)?),
                max_age: std::time::Duration::from_secs(positive("TESSERA_CONSOLE_SESSION_MAX_AGE", 43_200)?),
            },
            connect: connect_settings()?,
            vault_api_mount: vault_api_mount()?,
            audit_reads: audit_reads()?,
            audit_sinks: audit_sinks(allow_loopback_http)?,
            tls,
            shutdown_timeout: std::time::Duration::from_secs(positive("TESSERA_SHUTDOWN_TIMEOUT", 30)?),
            ..store
        })
    }

    /// Only what opening the store needs (for offline admin commands).
    pub fn from_env_store_only() -> anyhow::Result<Self> {
        let data_dir = PathBuf::from(var("TESSERA_DATA_DIR").unwrap_or_else(|| "./tessera-data".into()));
        let database_url = match var("DATABASE_URL") {
            Some(url)
                if url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:") =>
            {
                url
            }
            Some(_) => bail!("DATABASE_URL must start with sqlite:// or postgres://"),
            None => format!("sqlite://{}?mode=rwc", data_dir.join("tessera.db").display()),
        };
        Ok(Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7300)),
            data_dir,
            database_url,
            master_key: MasterKeySource::DevFile(PathBuf::new()),
            root_token: None,
            max_body_bytes: 0,
            max_versions: 10,
            backend: Backend::Database,
            key_cache_seconds: 300,
            view_cache_seconds: 5,
            oauth: tessera_core::service::OAuthOptions::default(),
            refresh_interval: std::time::Duration::from_secs(30),
            allow_loopback_http: false,
            proxy_timeout: std::time::Duration::from_secs(30),
            proxy_max_response_bytes: 64 * 1024 * 1024,
            health_interval: std::time::Duration::from_secs(15),
            rate_limit: None,
            webhook_interval: std::time::Duration::from_secs(5),
            webhooks: tessera_core::service::WebhookOptions::default(),
            audit_checkpoint_interval: std::time::Duration::ZERO,
            header_read_timeout: std::time::Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_client: 256,
            anonymous_rate_limit: None,
            audit_denial_interval: std::time::Duration::from_secs(60),
            trusted_proxies: tessera_http::TrustedProxies::default(),
            usage_flush_interval: std::time::Duration::from_secs(60),
            console: tessera_core::service::ConsoleOptions::default(),
            connect: tessera_console::connect::ConnectOptions::default(),
            vault_api_mount: "secret".into(),
            // Offline commands that only open the store record no reads.
            audit_reads: tessera_store::ReadAudit::Durable,
            audit_sinks: AuditSinks::default(),
            tls: None,
            shutdown_timeout: std::time::Duration::from_secs(30),
        })
    }
}

/// `TESSERA_TLS_CERT_FILE` and `TESSERA_TLS_KEY_FILE` (both or neither),
/// and `TESSERA_TLS_CLIENT_CA_FILE` (only with them).
fn tls_files() -> anyhow::Result<Option<crate::tls::TlsFiles>> {
    let client_ca = var("TESSERA_TLS_CLIENT_CA_FILE").map(PathBuf::from);
    match (var("TESSERA_TLS_CERT_FILE"), var("TESSERA_TLS_KEY_FILE")) {
        (Some(cert), Some(key)) => {
            Ok(Some(crate::tls::TlsFiles { cert: PathBuf::from(cert), key: PathBuf::from(key), client_ca }))
        }
        (None, None) if client_ca.is_some() => {
            bail!("TESSERA_TLS_CLIENT_CA_FILE needs TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE (client certificates are checked over TLS)")
        }
        (None, None) => Ok(None),
        (Some(_), None) => bail!("TESSERA_TLS_KEY_FILE must be set with TESSERA_TLS_CERT_FILE"),
        (None, Some(_)) => bail!("TESSERA_TLS_CERT_FILE must be set with TESSERA_TLS_KEY_FILE"),
    }
}

/// Plain HTTP only on a loopback address, unless `TESSERA_ALLOW_PLAINTEXT_HTTP=true`
/// says a proxy in front terminates TLS: API keys and secrets would
/// otherwise cross the network in clear text.
fn plaintext_allowed(listen: SocketAddr, tls: bool) -> anyhow::Result<()> {
    let allowed = match var("TESSERA_ALLOW_PLAINTEXT_HTTP").as_deref().map(str::trim) {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => bail!("TESSERA_ALLOW_PLAINTEXT_HTTP must be true or false"),
    };
    if tls || allowed || listen.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    bail!(
        "TESSERA_LISTEN {listen} is not a loopback address and TLS is off: API keys and secrets would cross the \
         network in clear text. Set TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE, or, when a reverse proxy or \
         load balancer in front terminates TLS, TESSERA_ALLOW_PLAINTEXT_HTTP=true"
    )
}

/// `TESSERA_VAULT_API_MOUNT` (default `secret`): one path segment.
fn vault_api_mount() -> anyhow::Result<String> {
    let mount = var("TESSERA_VAULT_API_MOUNT").unwrap_or_else(|| "secret".into());
    let mount = mount.trim().trim_matches('/').to_owned();
    if !tessera_vault_api::valid_mount(&mount) {
        bail!("TESSERA_VAULT_API_MOUNT must be one path segment of a-z, 0-9, _ and - (not sys, auth, identity or cubbyhole)");
    }
    Ok(mount)
}

/// `TESSERA_RATE_LIMIT` requests per second per caller (unset: no limit),
/// with bursts of `TESSERA_RATE_LIMIT_BURST` (default twice the rate).
fn rate_limit() -> anyhow::Result<Option<tessera_core::service::RateLimit>> {
    use std::num::NonZeroU32;
    let Some(_) = var("TESSERA_RATE_LIMIT") else { return Ok(None) };
    let per_second: u32 = positive("TESSERA_RATE_LIMIT", 1)?;
    let burst: u32 = positive("TESSERA_RATE_LIMIT_BURST", per_second.saturating_mul(2))?;
    let nz = |n: u32| NonZeroU32::new(n).ok_or_else(|| anyhow::anyhow!("rate limits must be positive"));
    Ok(Some(tessera_core::service::RateLimit { per_second: nz(per_second)?, burst: nz(burst)? }))
}

/// `TESSERA_RATE_LIMIT_ANONYMOUS` requests per second per client address
/// (default 10; `off`: no limit), with bursts of
/// `TESSERA_RATE_LIMIT_ANONYMOUS_BURST` (default five times the rate).
fn anonymous_rate_limit() -> anyhow::Result<Option<tessera_core::service::RateLimit>> {
    use std::num::NonZeroU32;
    if var("TESSERA_RATE_LIMIT_ANONYMOUS").is_some_and(|v| v.trim().eq_ignore_ascii_case("off")) {
        return Ok(None);
    }
    let per_second: u32 = positive("TESSERA_RATE_LIMIT_ANONYMOUS", 10)
        .map_err(|_| anyhow::anyhow!("TESSERA_RATE_LIMIT_ANONYMOUS must be a positive number or off"))?;
    let burst: u32 = positive("TESSERA_RATE_LIMIT_ANONYMOUS_BURST", per_second.saturating_mul(5))?;
    let nz = |n: u32| NonZeroU32::new(n).ok_or_else(|| anyhow::anyhow!("rate limits must be positive"));
    Ok(Some(tessera_core::service::RateLimit { per_second: nz(per_second)?, burst: nz(burst)? }))
}

/// The connect page: who may frame it, its title and logo.
fn connect_settings() -> anyhow::Result<tessera_console::connect::ConnectOptions> {
    let mut origins = Vec::new();
    for raw in var("TESSERA_CONNECT_ORIGINS").unwrap_or_default().split(',').map(str::trim).filter(|o| !o.is_empty()) {
        // An origin only: scheme, host and port, nothing a CSP could misread.
        let url = url::Url::parse(raw).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && u.query().is_none()
                && u.username().is_empty()
                && !raw.ends_with('/')
        });
        match url {
            Some(u) => origins.push(u.origin().ascii_serialization()),
            None => bail!(
                "TESSERA_CONNECT_ORIGINS must be comma-separated origins such as https://app.example.com \
                 (scheme, host and port; no path): {raw:?} is not one"
            ),
        }
    }
    let title = var("TESSERA_CONNECT_TITLE").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if title.as_deref().is_some_and(|t| t.chars().count() > 80 || t.chars().any(char::is_control)) {
        bail!("TESSERA_CONNECT_TITLE must be at most 80 printable characters");
    }
    let logo_url = var("TESSERA_CONNECT_LOGO_URL").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(logo) = &logo_url {
        let ok = url::Url::parse(logo).is_ok_and(|u| {
            u.scheme() == "https"
                && u.host().is_some()
                && u.username().is_empty()
                && !logo.contains(['\'', '"', ' ', ';'])
        });
        if !ok {
            bail!("TESSERA_CONNECT_LOGO_URL must be an absolute https URL of an image");
        }
    }
    Ok(tessera_console::connect::ConnectOptions {
        origins,
        title: title.unwrap_or_else(|| "Connect".to_owned()),
        logo_url,
    })
}

/// OAuth settings: allowed redirect URIs, the public URL, refresh timing,
/// and `<INTEGRATION>_CLIENT_ID` / `_CLIENT_SECRET` / `_REDIRECT_URI`.
fn oauth_settings() -> anyhow::Result<tessera_core::service::OAuthOptions> {
    use tessera_core::service::{EnvClient, OAuthOptions};
    let is_http_url =
        |v: &str| url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    let mut allowed = Vec::new();
    for uri in
        var("TESSERA_ALLOWED_REDIRECT_URIS").unwrap_or_default().split(',').map(str::trim).filter(|u| !u.is_empty())
    {
        if !is_http_url(uri) {
            bail!("TESSERA_ALLOWED_REDIRECT_URIS must be a comma-separated list of absolute http(s) URLs");
        }
        allowed.push(uri.to_owned());
    }
    // Empty: `serve` fills in the address it actually listens on.
    let public_url = var("TESSERA_PUBLIC_URL").unwrap_or_default();
    if !public_url.is_empty() && !is_http_url(&public_url) {
        bail!("TESSERA_PUBLIC_URL must be an absolute http(s) URL, e.g. https://vault.example.com");
    }
    let max_failures: u32 = parse_num("TESSERA_REFRESH_MAX_FAILURES", 5)?;
    let retry_base: u64 = parse_num("TESSERA_REFRESH_RETRY_BASE", 30)?;
    if max_failures == 0 || retry_base == 0 {
        bail!("TESSERA_REFRESH_MAX_FAILURES and TESSERA_REFRESH_RETRY_BASE must be positive");
    }
    let mut env_clients = std::collections::HashMap::<String, EnvClient>::new();
    for (name, value) in std::env::vars() {
        let value = value.trim().to_owned();
        if value.is_empty() {
            continue;
        }
        for suffix in ["_CLIENT_ID", "_CLIENT_SECRET", "_REDIRECT_URI"] {
            let Some(prefix) = name.strip_suffix(suffix).filter(|p| !p.is_empty()) else { continue };
            let entry = env_clients.entry(prefix.to_owned()).or_default();
            match suffix {
                "_CLIENT_ID" => entry.client_id = Some(value.clone()),
                "_CLIENT_SECRET" => entry.client_secret = Some(SecretString::from(value.clone())),
                _ => {
                    if !is_http_url(&value) {
                        bail!("{name} must be an absolute http(s) URL");
                    }
                    entry.redirect_uri = Some(value.clone());
                }
            }
        }
    }
    Ok(OAuthOptions {
        allowed_redirect_uris: allowed,
        public_url,
        env_clients,
        refresh_before: std::time::Duration::from_secs(parse_num("TESSERA_REFRESH_BEFORE", 300)?),
        retry_base: std::time::Duration::from_secs(retry_base),
        max_failures,
        ..OAuthOptions::default()
    })
}

/// `VAULT_ADDR`/`VAULT_URL`, the login (`VAULT_AUTH_METHOD` and its
/// variables), `VAULT_NAMESPACE` and TLS to Vault; `needed_by` names the
/// setting that requires Vault, for the error line.
pub(crate) fn vault_connection(needed_by: &str) -> anyhow::Result<VaultConnection> {
    let Some(addr) = var("VAULT_ADDR").or_else(|| var("VAULT_URL")) else {
        bail!("VAULT_ADDR (or VAULT_URL) must be set when {needed_by}");
    };
    Ok(VaultConnection { addr, auth: vault_auth(needed_by)?, namespace: var("VAULT_NAMESPACE"), tls: vault_tls()? })
}

/// `VAULT_AUTH_METHOD`: `token` (default: `VAULT_TOKEN`), `approle`
/// (`VAULT_ROLE_ID`, `VAULT_SECRET_ID` or `VAULT_SECRET_ID_FILE`,
/// `VAULT_AUTH_MOUNT`) or `jwt` (`VAULT_JWT_ROLE`, `VAULT_JWT_FILE`, `VAULT_AUTH_MOUNT`).
fn vault_auth(needed_by: &str) -> anyhow::Result<VaultAuth> {
    let readable = |name: &str, path: &str| -> anyhow::Result<PathBuf> {
        std::fs::metadata(path).with_context(|| format!("{name} {path} cannot be read"))?;
        Ok(PathBuf::from(path))
    };
    match var("VAULT_AUTH_METHOD").as_deref().map(str::trim) {
        None | Some("token") => {
            let Some(token) = var("VAULT_TOKEN") else {
                bail!("VAULT_TOKEN must be set when {needed_by} (or VAULT_AUTH_METHOD=approle or jwt)");
            };
            Ok(VaultAuth::Token(SecretString::from(token)))
        }
        Some("approle") => {
            let Some(role_id) = var("VAULT_ROLE_ID") else {
                bail!("VAULT_ROLE_ID must be set when VAULT_AUTH_METHOD=approle");
            };
            let secret_id = match (var("VAULT_SECRET_ID"), var("VAULT_SECRET_ID_FILE")) {
                (Some(v), None) => SecretSource::Value(SecretString::from(v)),
                (None, Some(f)) => SecretSource::File(readable("VAULT_SECRET_ID_FILE", &f)?),
                _ => bail!("exactly one of VAULT_SECRET_ID and VAULT_SECRET_ID_FILE must be set when VAULT_AUTH_METHOD=approle"),
            };
            Ok(VaultAuth::AppRole { mount: vault_segment("VAULT_AUTH_MOUNT", "approle")?, role_id, secret_id })
        }
        Some("jwt") => {
            let (Some(role), Some(file)) = (var("VAULT_JWT_ROLE"), var("VAULT_JWT_FILE")) else {
                bail!("VAULT_JWT_ROLE and VAULT_JWT_FILE must be set when VAULT_AUTH_METHOD=jwt");
            };
            let jwt_file = readable("VAULT_JWT_FILE", &file)?;
            Ok(VaultAuth::Jwt { mount: vault_segment("VAULT_AUTH_MOUNT", "jwt")?, role, jwt_file })
        }
        Some(_) => bail!("VAULT_AUTH_METHOD must be token, approle or jwt"),
    }
}

/// `VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY` (both or neither).
pub(crate) fn vault_tls() -> anyhow::Result<VaultTls> {
    let client_cert = match (var("VAULT_CLIENT_CERT"), var("VAULT_CLIENT_KEY")) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => bail!("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together"),
    };
    Ok(VaultTls {
        ca_cert: var("VAULT_CACERT").map(PathBuf::from),
        ca_path: var("VAULT_CAPATH").map(PathBuf::from),
        client_cert,
    })
}

/// A Vault path setting: segments of letters, digits, '.', '_' or '-'.
fn vault_segment(name: &str, default: &str) -> anyhow::Result<String> {
    let v = var(name).unwrap_or_else(|| default.to_owned());
    let v = v.trim_matches('/').to_owned();
    let ok = !v.is_empty()
        && v.split('/').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    if !ok {
        bail!("{name} must be path segments of letters, digits, '.', '_' or '-'");
    }
    Ok(v)
}

fn vault_settings() -> anyhow::Result<tessera_backends::vault::VaultSettings> {
    Ok(tessera_backends::vault::VaultSettings {
        connection: vault_connection("CREDENTIAL_BACKEND=vault")?,
        mount: vault_segment("VAULT_MOUNT_POINT", "secret")?,
        prefix: vault_segment("VAULT_PATH_PREFIX", "tessera")?,
    })
}

/// Creates the data dir (0700) if needed.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create TESSERA_DATA_DIR {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict TESSERA_DATA_DIR {} to 0700", dir.display()))?;
        }
    }
    Ok(())
}

/// Loads the dev master key file, creating it (0600) on first start.
pub fn load_or_create_dev_key(path: &Path) -> anyhow::Result<MasterKey> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.exists() {
        #[cfg(unix)]
        {
            let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!("dev master key file {} has mode {mode:o}; it must be 0600 (chmod 600 it)", path.display());
            }
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        return MasterKey::from_text(&text)
            .map_err(|_| anyhow::anyhow!("dev master key file {} is not a valid key", path.display()));
    }
    let key = MasterKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(key.to_base64().as_bytes())?;
    f.sync_all()?;
    Ok(key)
}
