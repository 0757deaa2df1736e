//! The one Vault/OpenBao HTTP client the `vault` backend, the
//! `vault-transit` key provider and `tessera apply`'s `${VAULT:...}`
//! references share: its token (logged in, renewed and replaced by
//! [`crate::vault_auth`]), namespace header, TLS to Vault (`VAULT_CACERT`,
//! `VAULT_CAPATH`, `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`), time limits, and
//! errors that name the problem (503 when Vault is unreachable, sealed or
//! refuses the login or the token). A request Vault refuses with 403 logs in
//! again and is sent once more, when the method can log in.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tessera_core::{ErrorCode, ServiceError};

use crate::error::BackendError;
use crate::vault_auth::{vault_errors, Refresh, Session};
pub use crate::vault_auth::{SecretSource, VaultAuth};

/// Where and how to reach Vault.
pub struct VaultConnection {
    /// `VAULT_ADDR` / `VAULT_URL`, e.g. `https://vault.example.com:8200`.
    pub addr: String,
    /// `VAULT_AUTH_METHOD` and its credentials.
    pub auth: VaultAuth,
    /// `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
    /// TLS to Vault.
    pub tls: VaultTls,
}

/// TLS to Vault, with Vault's own variable names.
#[derive(Clone, Debug, Default)]
pub struct VaultTls {
    /// `VAULT_CACERT`: PEM CA certificates; with it (or `ca_path`) only these are trusted.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_CAPATH`: a directory of PEM CA certificate files.
    pub ca_path: Option<PathBuf>,
    /// `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`: a client certificate for Vault's TLS listener.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// An answer from Vault: status and JSON body.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (Null when empty or not JSON).
    pub body: Value,
}

/// A client bound to one Vault; clones share the token.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    addr: String,
    namespace: Option<String>,
    pub(crate) auth: VaultAuth,
    pub(crate) session: RwLock<Option<Arc<Session>>>,
    /// One refresh (login or renewal) at a time.
    pub(crate) refreshing: tokio::sync::Mutex<()>,
    /// The generation of the newest session, for the renewer to wake on.
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
    /// Whether the background renewer runs.
    pub(crate) renewer: AtomicBool,
}

impl VaultClient {
    /// A client; nothing is contacted until the first request.
    pub fn new(c: VaultConnection) -> Result<Self, BackendError> {
        let addr = c.addr.trim_end_matches('/').to_owned();
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            return Err(BackendError::Setting {
                setting: "VAULT_ADDR".into(),
                problem: "must start with http:// or https://",
            });
        }
        let http = http_client(&c.tls)?;
        let inner = Inner {
            http,
            addr,
            namespace: c.namespace,
            auth: c.auth,
            session: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            changed: tokio::sync::watch::Sender::new(0),
            renewer: AtomicBool::new(false),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub(crate) fn from_weak(weak: &Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(|inner| Self { inner })
    }

    pub(crate) fn current(&self) -> Option<Arc<Session>> {
        self.inner.session.read().expect("the Vault session lock is never poisoned").clone()
    }

    /// `VAULT_ADDR`, for messages.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// `<addr>/v1/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.inner.addr)
    }

    /// Sends a request with the current token; a 403 with a method that can
    /// log in logs in again and sends it once more. Unreachable, sealed and
    /// refused are errors; any other answer is returned.
    pub async fn call(&self, method: Method, url: &str, body: Option<Value>) -> Result<Reply, ServiceError> {
        let session = self.session().await?;
        let reply = self.send_with(Some(&session.token), method.clone(), url, body.clone()).await?;
        if Self::refused(reply.status) && self.inner.auth.can_login() {
            tracing::info!(status = %reply.status, "Vault refused the token; logging in again");
            let session = self.refresh(Some(session.generation), Refresh::Login).await?;
            let again = self.send_with(Some(&session.token), method, url, body).await?;
            return self.judge(again);
        }
        self.judge(reply)
    }

    /// Readiness: Vault is reachable, unsealed and initialised, and the
    /// login (or the given token) works. The error says which and why.
    pub async fn check(&self) -> Result<(), ServiceError> {
        // sys/health needs no token and lives in the root namespace.
        let r = self.inner.http.get(self.url("sys/health")).send().await.map_err(|e| self.unreachable(e))?;
        match r.status().as_u16() {
            // Active, standby, performance standby: all answer requests.
            200 | 429 | 472 | 473 => {}
            503 => return Err(ServiceError::unavailable(ErrorCode::VaultUnavailable, "Vault is sealed")),
            501 => return Err(ServiceError::unavailable(ErrorCode::VaultUnavailable, "Vault is not initialized")),
            s => {
                return Err(ServiceError::unavailable(
                    ErrorCode::VaultUnavailable,
                    format!("Vault's health check answered {s}"),
                ))
            }
        }
        let r = self.call(Method::GET, &self.url("auth/token/lookup-self"), None).await?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(self.unexpected("look up its own token", &r))
        }
    }

    /// One request as it is: `token` (None: a login) and the namespace header.
    pub(crate) async fn send_with(
        &self,
        token: Option<&SecretString>,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Reply, ServiceError> {
        let mut req = self.inner.http.request(method, url);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t.expose_secret());
        }
        if let Some(ns) = &self.inner.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// Refusals and server errors as errors; anything else for the caller to read.
    fn judge(&self, reply: Reply) -> Result<Reply, ServiceError> {
        match reply.status {
            s if Self::refused(s) => Err(ServiceError::unavailable(
                ErrorCode::VaultDenied,
                format!(
                    "Vault refused the request ({}): check the policy of the token from {} on this path",
                    vault_errors(&reply.body),
                    self.inner.auth.describe()
                ),
            )),
            StatusCode::SERVICE_UNAVAILABLE => {
                Err(ServiceError::unavailable(ErrorCode::VaultUnavailable, "Vault is sealed (it answered 503)"))
            }
            s if s.is_server_error() => {
                tracing::warn!(status = %s, "Vault answered with an error");
                Err(ServiceError::unavailable(
                    ErrorCode::VaultUnavailable,
                    format!("the Vault backend answered {s} (sealed or down?)"),
                ))
            }
            _ => Ok(reply),
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> ServiceError {
        // The cause (refused, timed out, an untrusted certificate) names no secret.
        let mut cause = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        tracing::warn!(error = %e.without_url(), %cause, "Vault request failed");
        let because = if cause.is_empty() { String::new() } else { format!(": {cause}") };
        ServiceError::unavailable(
            ErrorCode::VaultUnavailable,
            format!("the Vault backend at {} is unreachable{because}", self.inner.addr),
        )
    }

    /// An answer the caller did not expect, as an error naming what was asked.
    pub fn unexpected(&self, what: &str, r: &Reply) -> ServiceError {
        tracing::error!(status = %r.status, errors = %r.body["errors"], "unexpected Vault answer to {what}");
        ServiceError::unavailable(ErrorCode::VaultError, format!("Vault refused to {what} (status {})", r.status))
    }
}

/// The HTTP client, with the CA and client certificate the TLS settings name.
fn http_client(tls: &VaultTls) -> Result<reqwest::Client, BackendError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    let mut cas = Vec::new();
    if let Some(file) = &tls.ca_cert {
        let found = pem_certificates("VAULT_CACERT", file)?;
        if found.is_empty() {
            return Err(BackendError::NoCertificate { setting: "VAULT_CACERT", path: file.clone() });
        }
        cas.extend(found);
    }
    if let Some(dir) = &tls.ca_path {
        let entries = std::fs::read_dir(dir).map_err(io("VAULT_CAPATH", dir))?;
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        let before = cas.len();
        for file in files {
            cas.extend(pem_certificates("VAULT_CAPATH", &file)?);
        }
        if cas.len() == before {
            return Err(BackendError::NoCertificate { setting: "VAULT_CAPATH", path: dir.clone() });
        }
    }
    if !cas.is_empty() {
        // As Vault's own clients: with a CA given, only it is trusted.
        b = b.tls_built_in_root_certs(false);
        for ca in cas {
            b = b.add_root_certificate(ca);
        }
    }
    if let Some((cert, key)) = &tls.client_cert {
        let mut pem = std::fs::read(cert).map_err(io("VAULT_CLIENT_CERT", cert))?;
        let key_pem = zeroize::Zeroizing::new(std::fs::read(key).map_err(io("VAULT_CLIENT_KEY", key))?);
        pem.push(b'\n');
        pem.extend_from_slice(&key_pem);
        let identity = reqwest::Identity::from_pem(&pem);
        zeroize::Zeroize::zeroize(&mut pem);
        let identity =
            identity.map_err(|source| BackendError::ClientIdentity { cert: cert.clone(), key: key.clone(), source })?;
        b = b.identity(identity);
    }
    b.build().map_err(|source| BackendError::HttpClient { source })
}

/// A file a TLS setting names that cannot be read.
fn io<'a>(setting: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackendError + 'a {
    move |source| BackendError::Io { setting, action: "read", path: path.to_owned(), source }
}

/// The certificates of a PEM file (none for a file that holds none).
fn pem_certificates(setting: &'static str, file: &Path) -> Result<Vec<reqwest::Certificate>, BackendError> {
    let pem = std::fs::read(file).map_err(io(setting, file))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Ok(Vec::new());
    }
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| BackendError::BadCertificate {
        setting,
        path: file.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(addr: &str, tls: VaultTls) -> Result<VaultClient, BackendError> {
        let auth = VaultAuth::Token(SecretString::from("t0ken".to_owned()));
        VaultClient::new(VaultConnection { addr: addr.into(), auth, namespace: None, tls })
    }

    #[test]
    fn each_setting_that_stops_the_client_is_named_with_the_error_under_it() {
        let err = client("vault:8200", VaultTls::default()).err().expect("no scheme");
        assert!(matches!(&err, BackendError::Setting { setting, .. } if setting == "VAULT_ADDR"), "{err:?}");

        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.pem");
        let tls = VaultTls { ca_cert: Some(missing.clone()), ..VaultTls::default() };
        let err = client("https://vault:8200", tls).err().expect("no CA file");
        assert!(matches!(&err, BackendError::Io { setting: "VAULT_CACERT", action: "read", .. }), "{err:?}");
        let io = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<std::io::Error>()).expect("io source");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), format!("VAULT_CACERT: cannot read {}", missing.display()));

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here").expect("write");
        let tls = VaultTls { ca_cert: Some(empty), ..VaultTls::default() };
        let err = client("https://vault:8200", tls).err().expect("an empty CA file");
        assert!(matches!(err, BackendError::NoCertificate { setting: "VAULT_CACERT", .. }), "{err:?}");

        let tls = VaultTls { client_cert: Some(not_an_identity(&dir)), ..VaultTls::default() };
        let err = client("https://vault:8200", tls).err().expect("not an identity");
        assert!(matches!(err, BackendError::ClientIdentity { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some(), "the TLS library's reason is kept");
    }

    fn not_an_identity(dir: &tempfile::TempDir) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
        std::fs::write(&cert, "not a certificate").expect("write");
        std::fs::write(&key, "not a key").expect("write");
        (cert, key)
    }
}
