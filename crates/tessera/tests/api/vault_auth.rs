//! Vault logins that keep working, against a real OpenBao: an AppRole whose
//! tokens live 5 s (15 s at most) serves a minute of steady reads and
//! writes through the `vault` backend and the Transit keyring without one
//! failed request, through renewals, re-logins at the max TTL and a
//! revocation behind Tessera's back; a JWT login with a key pair made here
//! re-reads its token file at every login; `/readyz` names the backend and
//! the reason when Vault is sealed or refuses the login.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Bao, Db, TestApp, ROOT_TOKEN};

/// What the Tessera token may do: KV v2 under `secret/` and Transit.
const POLICY: &str = r#"
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"#;

/// A call to OpenBao as root; the answer's JSON.
async fn root(bao: &Bao, method: Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, format!("{}/v1/{path}", bao.addr))
        .header("X-Vault-Token", &bao.token)
        .json(&body)
        .send()
        .await
        .expect("OpenBao answers");
    let status = r.status();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The policy Tessera's tokens get.
async fn prepare(bao: &Bao) {
    root(bao, Method::PUT, "sys/policies/acl/tessera", json!({ "policy": POLICY })).await;
}

/// An AppRole `tessera` (tokens: 5 s, at most 15 s); returns role id and secret id.
async fn approle(bao: &Bao) -> (String, String) {
    root(bao, Method::POST, "sys/auth/approle", json!({"type": "approle"})).await;
    let role = json!({"token_ttl": "5s", "token_max_ttl": "15s", "token_policies": ["tessera"]});
    root(bao, Method::POST, "auth/approle/role/tessera", role).await;
    let role_id = root(bao, Method::GET, "auth/approle/role/tessera/role-id", Value::Null).await;
    let secret_id = root(bao, Method::POST, "auth/approle/role/tessera/secret-id", json!({})).await;
    (
        role_id["data"]["role_id"].as_str().expect("role id").to_owned(),
        secret_id["data"]["secret_id"].as_str().expect("secret id").to_owned(),
    )
}

/// Audit log lines of answers to requests on `path`.
fn answers_to(log: &Path, path: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "response" && e["request"]["path"] == path && e["error"].is_null())
        .count()
}

/// Steady writes and reads (each read checks the value it wrote) by `clients`
/// clients for `how_long`; `during` runs once at half time. Returns (requests, failures).
async fn steady_load<F, Fut>(app: &TestApp, clients: usize, how_long: Duration, during: F) -> (usize, Vec<String>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + how_long;
    let mut tasks = Vec::new();
    for n in 0..clients {
        let (client, base) = (app.client.clone(), app.base.clone());
        let (done, failures) = (done.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/tenants/acme/secrets/steady/k{n}");
            let mut i = 0u64;
            while Instant::now() < until {
                i += 1;
                let value = format!("steady-{n}-{i}");
                let put = client.put(&url).bearer_auth(ROOT_TOKEN).json(&json!({ "value": value })).send().await;
                let wrote = match put {
                    Ok(r) if r.status() == StatusCode::OK => true,
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        failures.lock().expect("lock").push(format!("PUT {status}: {text}"));
                        false
                    }
                    Err(e) => {
                        failures.lock().expect("lock").push(format!("PUT: {e}"));
                        false
                    }
                };
                done.fetch_add(1, Ordering::SeqCst);
                let got = client.get(&url).bearer_auth(ROOT_TOKEN).send().await;
                match got {
                    Ok(r) if r.status() == StatusCode::OK => {
                        let body: Value = r.json().await.unwrap_or_default();
                        if wrote && body["value"] != value.as_str() {
                            failures.lock().expect("lock").push(format!("GET read {body} after writing {value}"));
                        }
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        failures.lock().expect("lock").push(format!("GET {status}: {text}"));
                    }
                    Err(e) => failures.lock().expect("lock").push(format!("GET: {e}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }));
    }
    tokio::time::sleep(how_long / 2).await;
    during().await;
    for t in tasks {
        t.await.expect("client");
    }
    let failures = failures.lock().expect("lock").clone();
    (done.load(Ordering::SeqCst), failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approle_with_five_second_tokens_serves_a_minute_of_steady_traffic_without_one_failure() {
    let audit = tempfile::tempdir().expect("dir");
    let log = audit.path().join("audit.log");
    let Some(bao) = Bao::start_with_audit(&log).await else { return };
    prepare(&bao).await;
    let (role_id, secret_id) = approle(&bao).await;
    root(&bao, Method::POST, "sys/mounts/transit", json!({"type": "transit"})).await;
    let secret_file = audit.path().join("secret-id");
    std::fs::write(&secret_file, format!("{secret_id}\n")).expect("secret id file");
    let secret_path = secret_file.display().to_string();
    let env = [
        ("CREDENTIAL_BACKEND", "vault"),
        ("TESSERA_KEYRING", "vault-transit"),
        ("TESSERA_KEY_CACHE_SECONDS", "0"),
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_AUTH_METHOD", "approle"),
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID_FILE", secret_path.as_str()),
    ];
    let app = TestApp::start(Db::Sqlite, &env).await;
    app.tenant("acme").await;
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["checks"]["secrets"]["backend"], "vault", "{}", ready.text);
    assert_eq!(ready.body["checks"]["keyring"]["backend"], "vault-transit", "{}", ready.text);

    // Halfway, every token the AppRole issued is revoked behind Tessera's back.
    let revoke = || async {
        root(&bao, Method::PUT, "sys/leases/revoke-prefix/auth/approle/login", json!({})).await;
    };
    let (requests, failures) = steady_load(&app, 3, Duration::from_secs(60), revoke).await;
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:#?}", failures.len());
    assert!(requests > 300, "only {requests} requests in a minute");

    // Two clients (the backend and the keyring), a new login at each max TTL (15 s) or refusal.
    let logins = answers_to(&log, "auth/approle/login");
    let renewals = answers_to(&log, "auth/token/renew-self");
    println!("{requests} requests, 0 failed; {logins} AppRole logins and {renewals} renewals in OpenBao's audit log");
    assert!(logins >= 8, "{logins} logins");
    assert!(renewals >= 8, "{renewals} renewals");
    let logs = app.logs();
    assert!(logs.contains("logged in to Vault"), "{logs}");
    assert!(!logs.contains(&secret_id), "the secret id is in the logs");

    // Sealed: /readyz names both backends that depend on Vault, and why.
    root(&bao, Method::PUT, "sys/seal", json!({})).await;
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    let message = r.body["error"]["message"].as_str().expect("message");
    assert!(message.contains("the credential backend (vault): Vault is sealed"), "{message}");
    assert!(message.contains("the keyring (vault-transit)"), "{message}");
    assert!(!message.contains("metadata store"), "the store is fine: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_fails_readiness_and_requests_with_vaults_reason() {
    let Some(bao) = Bao::start().await else { return };
    prepare(&bao).await;
    let (role_id, _) = approle(&bao).await;
    let env = [
        ("CREDENTIAL_BACKEND", "vault"),
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_AUTH_METHOD", "approle"),
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", "not-the-secret-id"),
    ];
    let app = TestApp::start(Db::Sqlite, &env).await;
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "vault_denied", "{}", r.text);
    let message = r.body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("the credential backend (vault): Vault refused the login (AppRole login at auth/approle): "),
        "{message}"
    );
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/k", ROOT_TOKEN, json!({"value": "v"})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(r.text.contains("Vault refused the login"), "{}", r.text);
}

/// An ES256 JWT for OpenBao's JWT auth, signed with `key` (PKCS#8), valid for `valid_for`.
fn jwt(key: &rcgen::KeyPair, subject: &str, valid_for: Duration) -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let header = B64URL.encode(json!({"alg": "ES256", "typ": "JWT"}).to_string());
    let claims = json!({
        "iss": "https://issuer.tessera.test", "sub": subject, "aud": "tessera",
        "iat": now, "nbf": now - 5, "exp": now + valid_for.as_secs(),
    });
    let signing_input = format!("{header}.{}", B64URL.encode(claims.to_string()));
    let rng = ring::rand::SystemRandom::new();
    let signer =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng).expect("P-256 key");
    let signature = signer.sign(&rng, signing_input.as_bytes()).expect("signed");
    format!("{signing_input}.{}", B64URL.encode(signature.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_login_rereads_its_token_file_at_every_login() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("audit.log");
    let Some(bao) = Bao::start_with_audit(&log).await else { return };
    prepare(&bao).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    root(&bao, Method::POST, "sys/auth/jwt", json!({"type": "jwt"})).await;
    let config =
        json!({"jwt_validation_pubkeys": [key.public_key_pem()], "bound_issuer": "https://issuer.tessera.test"});
    root(&bao, Method::POST, "auth/jwt/config", config).await;
    let role = json!({
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["tessera"],
        "token_policies": ["tessera"], "token_ttl": "5s", "token_max_ttl": "15s",
        // No grace after `exp`: a JWT that ran out is refused at once.
        "expiration_leeway": -1, "clock_skew_leeway": -1, "not_before_leeway": -1,
    });
    root(&bao, Method::POST, "auth/jwt/role/tessera", role).await;
    // The first JWT runs out after 12 s, before the second login (the max TTL is 15 s):
    // that login works only if it reads the file again, which by then holds a new JWT.
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, jwt(&key, "system:serviceaccount:tessera:api", Duration::from_secs(12))).expect("jwt");
    let jwt_path = jwt_file.display().to_string();
    let env = [
        ("CREDENTIAL_BACKEND", "vault"),
        ("VAULT_ADDR", bao.addr.as_str()),
        ("VAULT_AUTH_METHOD", "jwt"),
        ("VAULT_JWT_ROLE", "tessera"),
        ("VAULT_JWT_FILE", jwt_path.as_str()),
    ];
    let app = TestApp::start(Db::Sqlite, &env).await;
    app.tenant("acme").await;
    let rotate = || async {
        let fresh = jwt(&key, "system:serviceaccount:tessera:api", Duration::from_secs(600));
        let tmp = jwt_file.with_extension("new");
        std::fs::write(&tmp, fresh).expect("jwt");
        std::fs::rename(&tmp, &jwt_file).expect("replaced");
    };
    let (requests, failures) = steady_load(&app, 2, Duration::from_secs(20), rotate).await;
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:#?}", failures.len());
    let logins = answers_to(&log, "auth/jwt/login");
    assert!(logins >= 2, "{logins} JWT logins");
    let presented = std::fs::read_to_string(&jwt_file).expect("jwt");
    assert!(!app.logs().contains(&presented), "the JWT is in the logs");
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_tls_takes_vaults_own_ca_and_client_certificate_settings() {
    use crate::tls::Ca;
    use rcgen::ExtendedKeyUsagePurpose::ClientAuth;
    let dir = tempfile::tempdir().expect("dir");
    let (server_ca, clients_ca) = (Ca::new("Vault CA"), Ca::new("Vault clients CA"));
    let server = server_ca.server("openbao");
    let client = clients_ca.leaf("tessera", &["tessera"], ClientAuth);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let (cert, key) = (write("bao.crt", &server.cert), write("bao.key", &server.key));
    let clients = write("clients-ca.crt", &clients_ca.pem());
    std::fs::create_dir(dir.path().join("cas")).expect("dir");
    let ca = write("cas/vault-ca.pem", &server_ca.pem());
    let (client_cert, client_key) = (write("tessera.crt", &client.cert), write("tessera.key", &client.key));
    // A second listener: TLS that requires a client certificate from the clients' CA.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let hcl = format!(
        "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = {cert:?}\n  tls_key_file = {key:?}\n  \
         tls_client_ca_file = {clients:?}\n  tls_require_and_verify_client_cert = true\n}}\n"
    );
    let Some(bao) = Bao::start_with_config(&dir.path().join("bao.hcl"), &hcl).await else { return };
    let addr = format!("https://127.0.0.1:{port}");
    let cas = dir.path().join("cas").display().to_string();
    let base = [("CREDENTIAL_BACKEND", "vault"), ("VAULT_ADDR", addr.as_str()), ("VAULT_TOKEN", bao.token.as_str())];
    let with = |extra: &[(&'static str, &str)]| {
        let mut env: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env
    };
    let start = |env: Vec<(&'static str, String)>| async move {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        TestApp::start(Db::Sqlite, &env).await
    };

    // The CA file (or a directory of them) and the client certificate: served.
    for trust in [("VAULT_CACERT", ca.as_str()), ("VAULT_CAPATH", cas.as_str())] {
        let app = start(with(&[
            trust,
            ("VAULT_CLIENT_CERT", client_cert.as_str()),
            ("VAULT_CLIENT_KEY", client_key.as_str()),
        ]))
        .await;
        let r = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", trust.0, r.text);
        app.tenant("acme").await;
        let w = app.put("/tenants/acme/secrets/over/tls", ROOT_TOKEN, json!({"value": "tls-to-vault"})).await;
        assert_eq!(w.status, StatusCode::OK, "{}", w.text);
        assert_eq!(app.get("/tenants/acme/secrets/over/tls", ROOT_TOKEN).await.body["value"], "tls-to-vault");
    }
    // Without the CA, Vault's certificate is not trusted; without the client certificate, Vault hangs up.
    for (env, why) in [
        (with(&[("VAULT_CLIENT_CERT", client_cert.as_str()), ("VAULT_CLIENT_KEY", client_key.as_str())]), "no CA"),
        (with(&[("VAULT_CACERT", ca.as_str())]), "no client certificate"),
    ] {
        let app = start(env).await;
        let r = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{why}: {}", r.text);
        let message = r.body["error"]["message"].as_str().expect("message");
        println!("{why}: {message}");
        assert!(
            message.contains(&format!("the credential backend (vault): the Vault backend at {addr} is unreachable")),
            "{why}: {message}"
        );
    }
}
