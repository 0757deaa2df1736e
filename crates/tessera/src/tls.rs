//! HTTPS for `tessera serve`: the rustls server configuration built from
//! `TESSERA_TLS_CERT_FILE`, `TESSERA_TLS_KEY_FILE` and, for mutual TLS,
//! `TESSERA_TLS_CLIENT_CA_FILE`, and kept current while the server runs.
//!
//! The files are watched (their size, modification time and inode, once a
//! second) and re-read on SIGHUP, so a certificate renewed by an ACME client
//! or a secrets operator is picked up without a restart. A reload builds a
//! whole new configuration and swaps it in: new connections get it, open ones
//! keep the session they negotiated (nothing is dropped). A set of files that
//! does not load (a key written before its certificate, a typo) keeps the
//! previous configuration and logs why, once per change.
//!
//! Modern defaults only: TLS 1.3 and 1.2 (rustls has no older version and no
//! renegotiation), ring's cipher suites, ALPN `h2` and `http/1.1`. The key
//! never leaves this module's configuration and is never logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// How often the files are looked at for a change.
const POLL: Duration = Duration::from_secs(1);

/// The files the TLS settings name.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// `TESSERA_TLS_CERT_FILE`: the certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// `TESSERA_TLS_KEY_FILE`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// `TESSERA_TLS_CLIENT_CA_FILE`: CA certificates a client's certificate must chain to.
    pub client_ca: Option<PathBuf>,
}

/// What a file looked like when it was last read: a change of any part means it was replaced.
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

/// The current server configuration, and what it was loaded from (no
/// `Debug`: the configuration holds the private key).
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Stamps>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Stamps {
    /// The files as they were when the current configuration was built.
    loaded: Stamp,
    /// The files as they were at the last failed reload (its error already logged).
    failed: Stamp,
}

impl Tls {
    /// Loads the files; an error names the setting and the problem (start-up stops on it).
    pub fn load(files: TlsFiles) -> anyhow::Result<Arc<Self>> {
        let loaded = stamp(&files);
        let config = build(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(Stamps { loaded, failed: Stamp::new() }),
        }))
    }

    /// An acceptor with the configuration in force now (one per connection,
    /// so a reload applies from the next connection on).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().expect("the TLS configuration lock is never poisoned").clone())
    }

    /// Re-reads the files if they changed since they were loaded (or always,
    /// with `force`). Returns whether a new configuration is in force.
    pub fn reload(&self, force: bool) -> bool {
        let now = stamp(&self.files);
        {
            let stamps = self.stamps.lock().expect("the TLS stamps lock is never poisoned");
            if !force && (now == stamps.loaded || now == stamps.failed) {
                return false;
            }
        }
        match build(&self.files) {
            Ok(config) => {
                *self.current.write().expect("the TLS configuration lock is never poisoned") = Arc::new(config);
                let mut stamps = self.stamps.lock().expect("the TLS stamps lock is never poisoned");
                *stamps = Stamps { loaded: now, failed: Stamp::new() };
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate and key reloaded");
                true
            }
            Err(why) => {
                self.stamps.lock().expect("the TLS stamps lock is never poisoned").failed = now;
                let why = format!("{why:#}");
                tracing::warn!(error = %why, "TLS files changed but do not load; still serving the previous certificate");
                false
            }
        }
    }

    /// Watches the files and SIGHUP for as long as the server runs.
    pub fn spawn_reloader(self: &Arc<Self>) {
        let tls = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot watch SIGHUP; TLS files are still watched"))
                .ok();
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<Option<()>>();
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    _ = hangup => true,
                };
                if force {
                    tracing::info!("SIGHUP: re-reading the TLS files");
                }
                // File reads and parsing off the async threads.
                let t = tls.clone();
                let _ = tokio::task::spawn_blocking(move || t.reload(force)).await;
            }
        });
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt as _;
    let of = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        #[cfg(unix)]
        let ino = m.ino();
        #[cfg(not(unix))]
        let ino = 0;
        Some((m.modified().ok()?, m.len(), ino))
    };
    [Some(files.cert.as_path()), Some(files.key.as_path()), files.client_ca.as_deref()]
        .into_iter()
        .flatten()
        .map(of)
        .collect()
}

fn read(setting: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{setting}: cannot read {}", path.display()))
}

fn certificates(setting: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{setting}: {} is not PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{setting}: {} holds no PEM certificate (BEGIN CERTIFICATE)", path.display());
    }
    Ok(certs)
}

/// The server configuration the files describe. Errors name the setting;
/// the chain under them (`{:#}`) the I/O or TLS cause, never key material.
fn build(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("TESSERA_TLS_CERT_FILE", &files.cert)?;
    let key_pem = zeroize::Zeroizing::new(read("TESSERA_TLS_KEY_FILE", &files.key)?);
    // The PEM parser's error is not kept: it could describe the key's bytes.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        anyhow::anyhow!(
            "TESSERA_TLS_KEY_FILE: {} holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            files.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("TESSERA_TLS_CLIENT_CA_FILE", path)? {
                roots.add(ca).with_context(|| {
                    format!("TESSERA_TLS_CLIENT_CA_FILE: {} holds a certificate that is not a CA", path.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("TESSERA_TLS_CLIENT_CA_FILE")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
            "TESSERA_TLS_KEY_FILE {} is not the key of the certificate in TESSERA_TLS_CERT_FILE {}",
            files.key.display(),
            files.cert.display()
        ),
        other => {
            anyhow::Error::new(other).context(format!("TESSERA_TLS_KEY_FILE {}: unusable key", files.key.display()))
        }
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
