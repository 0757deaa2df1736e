//! HTTPS on the listener: a real client over TLS, certificates replaced on
//! disk while connections stay open, mutual TLS, the caps and the header
//! timeout over TLS, and plain HTTP refused off loopback. Every certificate
//! is made here (rcgen), never shipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

/// A certificate authority made for one test.
pub(crate) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, as PEM.
pub(crate) struct Leaf {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("CA key");
        let cert = p.self_signed(&key).expect("CA certificate");
        Self { cert, key }
    }

    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }

    pub(crate) fn leaf(&self, name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut p = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("certificate");
        Leaf { cert: cert.pem(), key: key.serialize_pem() }
    }

    /// A server certificate for the test server's address.
    pub(crate) fn server(&self, name: &str) -> Leaf {
        self.leaf(name, &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth)
    }
}

/// Writes a file in place of the old one at once (as an ACME client or a
/// secrets operator does): never half a file.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The certificate files of one server, in their own directory.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

impl Files {
    fn new(leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let files = Self {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            client_ca: dir.path().join("clients-ca.crt"),
            _dir: dir,
        };
        files.install(leaf);
        files
    }

    fn install(&self, leaf: &Leaf) {
        replace(&self.key, &leaf.key);
        replace(&self.cert, &leaf.cert);
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TESSERA_TLS_CERT_FILE", self.cert.display().to_string()),
            ("TESSERA_TLS_KEY_FILE", self.key.display().to_string()),
        ]
    }
}

async fn start(extra: Vec<(&'static str, String)>) -> TestApp {
    let env: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start(Db::Sqlite, &env).await
}

/// A client that trusts only `ca` (and presents `identity`, if given).
fn client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(id) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{}{}", id.cert, id.key).as_bytes()).expect("identity"));
    }
    b.build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_https_and_the_console_cookie_is_secure() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server("tessera");
    let files = Files::new(&leaf);
    let mut app = start(files.env()).await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    app.client = client(&ca, None);
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN, json!({"value": "sk_over_tls"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.get("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN).await.body["value"], "sk_over_tls");
    // Clear text on the TLS port gets no answer a client could take for one.
    let plain = format!("http://{}/healthz", app.base.trim_start_matches("https://"));
    assert!(reqwest::get(&plain).await.is_err(), "no plain HTTP on the HTTPS port");
    // A client that does not trust the certificate's CA refuses the server.
    let stranger = client(&Ca::new("Another CA"), None);
    assert!(stranger.get(format!("{}/healthz", app.base)).send().await.is_err());
    // The public URL is https, so the console's session cookie is Secure.
    let r = app
        .client
        .post(format!("{}/console/sign-in", app.base))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", ROOT_TOKEN)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers().get(reqwest::header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // The private key is never logged.
    let key_body: String = leaf.key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!app.logs().replace('\n', "").contains(&key_body[..40]), "the TLS key is in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_replaced_on_disk_serves_new_connections_while_open_ones_keep_working() {
    let (old_ca, new_ca) = (Ca::new("Old CA"), Ca::new("New CA"));
    let files = Files::new(&old_ca.server("tessera-old"));
    let mut env = files.env();
    env.push(("TESSERA_HEADER_READ_TIMEOUT", "120".into()));
    let app = start(env).await;
    let health = format!("{}/healthz", app.base);
    // One connection opened under the old certificate, kept alive by the client's pool.
    let old = client(&old_ca, None);
    assert_eq!(old.get(&health).send().await.expect("old certificate").status(), StatusCode::OK);

    files.install(&new_ca.server("tessera-new"));
    let fresh = client(&new_ca, None);
    let started = Instant::now();
    loop {
        if fresh.get(&health).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the new certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The old connection was not dropped: the old client, which trusts only
    // the old CA and so could not open a new one, is still answered.
    for _ in 0..3 {
        let r = old.get(&health).send().await.expect("the connection opened before the change still works");
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(client(&old_ca, None).get(&health).send().await.is_err(), "new connections get the new certificate");
    assert!(app.logs().contains("TLS certificate and key reloaded"), "{}", app.logs());

    // A key that does not match its certificate is refused; the server keeps the last good pair.
    let mismatched = Leaf { cert: old_ca.server("x").cert, key: new_ca.server("y").key };
    files.install(&mismatched);
    let started = Instant::now();
    while !app.logs().contains("do not load") {
        assert!(started.elapsed() < Duration::from_secs(15), "the bad pair was not noticed:\n{}", app.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client(&new_ca, None).get(&health).send().await.expect("still the last good certificate");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(app.logs().contains("is not the key of the certificate"), "{}", app.logs());

    // SIGHUP re-reads the files at once.
    files.install(&old_ca.server("tessera-again"));
    let pid = app.pid().to_string();
    let sent = tokio::process::Command::new("kill").args(["-HUP", &pid]).status().await.expect("kill runs");
    assert!(sent.success());
    let started = Instant::now();
    while !app.logs().contains("SIGHUP: re-reading the TLS files") {
        assert!(started.elapsed() < Duration::from_secs(10), "no SIGHUP reload:\n{}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = client(&old_ca, None).get(&health).send().await.expect("the server lives on after SIGHUP");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_a_client_needs_a_certificate_it_signed_and_still_an_api_key() {
    let (server_ca, clients_ca) = (Ca::new("Server CA"), Ca::new("Clients CA"));
    let files = Files::new(&server_ca.server("tessera"));
    std::fs::write(&files.client_ca, clients_ca.pem()).expect("client CA");
    let mut env = files.env();
    env.push(("TESSERA_TLS_CLIENT_CA_FILE", files.client_ca.display().to_string()));
    let app = start(env).await;
    let url = format!("{}/tenants", app.base);

    let anonymous = client(&server_ca, None);
    assert!(anonymous.get(&url).bearer_auth(ROOT_TOKEN).send().await.is_err(), "no client certificate: refused");
    let forged = Ca::new("Clients CA").leaf("platform", &["platform"], ExtendedKeyUsagePurpose::ClientAuth);
    let impostor = client(&server_ca, Some(&forged));
    assert!(impostor.get(&url).bearer_auth(ROOT_TOKEN).send().await.is_err(), "another CA's certificate: refused");

    let id = clients_ca.leaf("platform-backend", &["platform"], ExtendedKeyUsagePurpose::ClientAuth);
    let platform = client(&server_ca, Some(&id));
    let r = platform.get(&url).bearer_auth(ROOT_TOKEN).send().await.expect("a signed client certificate");
    assert_eq!(r.status(), StatusCode::OK);
    let r = platform.get(&url).send().await.expect("answered");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the certificate does not replace the API key");
}

/// A TLS connection from a client that trusts `ca` (raw, to see exactly what the server does).
async fn tls_connect(
    app: &TestApp,
    ca: &Ca,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    tls_connect_with(app, ca, rustls::DEFAULT_VERSIONS).await
}

/// The same, offering only the TLS `versions` given.
async fn tls_connect_with(
    app: &TestApp,
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from(ca.cert.der().to_vec());
    roots.add(der).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = app.base.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}

/// Reads until the server closes (or `within` passes: None).
async fn read_to_close<S: tokio::io::AsyncRead + Unpin>(s: &mut S, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_header_timeout_and_the_connection_caps_still_hold() {
    let ca = Ca::new("Test CA");
    let files = Files::new(&ca.server("tessera"));
    let mut env = files.env();
    env.push(("TESSERA_HEADER_READ_TIMEOUT", "1".into()));
    env.push(("TESSERA_MAX_CONNECTIONS_PER_CLIENT", "2".into()));
    let app = start(env).await;
    // No handshake at all, and a handshake then half a request head: both closed after about a second.
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(app.base.trim_start_matches("https://")).await.expect("tcp");
    let mut half = tls_connect(&app, &ca).await.expect("handshake");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\nX-Slow: ").await.expect("half a head");
    assert!(read_to_close(&mut silent, Duration::from_secs(5)).await.is_some(), "silent connection closed");
    assert!(read_to_close(&mut half, Duration::from_secs(5)).await.is_some(), "half a head: closed");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    // TLS 1.3 by default, 1.2 for a client that has no 1.3 (rustls has nothing older).
    let modern = tls_connect(&app, &ca).await.expect("TLS 1.3");
    assert_eq!(modern.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let older = tls_connect_with(&app, &ca, &[&rustls::version::TLS12]).await.expect("TLS 1.2");
    assert_eq!(older.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    drop((modern, older));
    // Their places free up once the server sees them close.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Two connections are this client's share; a third is told why, over TLS, and closed.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tls_connect(&app, &ca).await.expect("within the cap");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\n").await.expect("head started");
        held.push(s);
    }
    let mut third = tls_connect(&app, &ca).await.expect("a refused connection still completes its handshake");
    let answer = read_to_close(&mut third, Duration::from_secs(3)).await.expect("closed at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too_many_connections"), "{answer:?}");
    drop(held);
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_unless_a_proxy_terminates_tls() {
    let dir = tempfile::tempdir().expect("dir");
    let serve = |extra: &[(&str, &str)]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.arg("serve")
            .env_clear()
            .env("TESSERA_DATA_DIR", dir.path().join("data"))
            .env("TESSERA_ROOT_TOKEN", ROOT_TOKEN)
            .env("TESSERA_LISTEN", "0.0.0.0:0")
            .envs(extra.iter().copied())
            .kill_on_drop(true);
        cmd
    };
    let out = serve(&[]).output().await.expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    for needed in [
        "TESSERA_LISTEN 0.0.0.0:0",
        "clear text",
        "TESSERA_TLS_CERT_FILE",
        "TESSERA_ALLOW_PLAINTEXT_HTTP=true",
        "proxy",
    ] {
        assert!(stderr.contains(needed), "{needed}: {stderr}");
    }
    assert!(!dir.path().join("data").exists(), "nothing was made for a server that did not start");

    // Behind a proxy that terminates TLS, the operator says so and plain HTTP is served.
    let mut child = serve(&[("TESSERA_ALLOW_PLAINTEXT_HTTP", "true")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = String::new();
    let started = Instant::now();
    let port = loop {
        let mut buf = [0u8; 512];
        let n =
            tokio::time::timeout(Duration::from_secs(30), stdout.read(&mut buf)).await.expect("output").expect("read");
        assert!(n > 0, "exited early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        let whole_lines = seen.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        if let Some(line) = whole_lines.filter_map(|l| l.strip_prefix("tessera listening on http://0.0.0.0:")).next() {
            break line.trim().to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{seen}");
    };
    let r = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.expect("served");
    assert_eq!(r.status(), StatusCode::OK);
    let _ = child.kill().await;
}
