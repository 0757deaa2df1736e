//! Hosted Connect end to end: a platform's backend mints a connect session
//! over the API, a person connects an OAuth integration (the real OAuth
//! provider of the tests) and an API-key integration on the page in a real
//! browser (harness/browser/connect.mjs) and lands on the platform's
//! `redirectUri`; the resolved views then hold both credentials and the
//! platform's webhook receiver got `connection.created` for each. Then the
//! refusals: a finished or expired link, another tenant, an integration
//! outside the allow-list, a callback of an ended session, a `redirectUri`
//! off the allow-list, framing by an unlisted origin; and no plaintext
//! credential or page token in the database, the log or the audit trail.
//! Screenshots go to `target/connect-screenshots/<database>/`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request};
use axum::response::{Html, IntoResponse};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Db, OAuthProvider, TestApp, ROOT_TOKEN};

const API_SECRET: &str = "sk_lf_connect_page_secret_9931";
const OAUTH: &str = "acme-crm";
const FIELDS: &str = "langfuse";

/// The platform a tenant's user comes from: its page that frames or opens
/// the connect page, its `redirectUri`, and its webhook receiver.
#[derive(Clone, Default)]
struct Platform {
    base: String,
    events: Arc<Mutex<Vec<(String, Value)>>>,
}

#[derive(serde::Deserialize)]
struct Src {
    src: String,
}

fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
}

impl Platform {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let me = Self { base, ..Self::default() };
        let events = me.events.clone();
        let app = axum::Router::new()
            .route("/done", axum::routing::get(|| async { Html("<!doctype html><link rel=\"icon\" href=\"data:,\"><title>Platform</title><h1>Back at the platform</h1>") }))
            .route(
                "/frame",
                axum::routing::get(|Query(q): Query<Src>| async move {
                    Html(format!(
                        "<!doctype html><link rel=\"icon\" href=\"data:,\"><title>Framed</title><iframe id=\"connect\" title=\"Connect\" src=\"{}\" width=\"600\" height=\"600\"></iframe>",
                        attr(&q.src)
                    ))
                }),
            )
            .route(
                "/opener",
                axum::routing::get(|Query(q): Query<Src>| async move {
                    Html(format!(
                        "<!doctype html><link rel=\"icon\" href=\"data:,\"><title>Opener</title><button id=\"open\">Connect</button><pre id=\"got\"></pre><script>\
                         document.getElementById('open').onclick = () => window.open({}, 'connect', 'popup,width=480,height=700');\
                         window.addEventListener('message', (e) => {{ document.getElementById('got').textContent = JSON.stringify({{origin: e.origin, message: e.data}}); }});\
                         </script>",
                        serde_json::to_string(&q.src).expect("json")
                    ))
                }),
            )
            .route(
                "/hooks",
                axum::routing::post(move |req: Request| {
                    let events = events.clone();
                    async move {
                        let event = req.headers().get("tessera-event").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                        let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        events.lock().expect("lock").push((event, body));
                        "ok".into_response()
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.expect("platform serves") });
        me
    }

    /// Waits until `n` deliveries of `event` arrived; returns their `data`.
    async fn wait_for(&self, event: &str, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let got: Vec<Value> = self
                .events
                .lock()
                .expect("lock")
                .iter()
                .filter(|(e, _)| e == event)
                .map(|(_, b)| b["data"].clone())
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{event} x{n} did not arrive: {:?}", self.events);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Tessera, a platform at a listed origin, one at an unlisted origin, and the OAuth provider.
async fn setup(db: Db) -> Option<(TestApp, Platform, Platform, OAuthProvider)> {
    let provider = OAuthProvider::start().await?;
    let platform = Platform::start().await;
    let stranger = Platform::start().await;
    let redirect = format!("{}/done", platform.base);
    let env = [
        ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
        ("TESSERA_WEBHOOK_INTERVAL", "1"),
        ("TESSERA_WEBHOOK_RETRY_BASE", "1"),
        ("TESSERA_ALLOWED_REDIRECT_URIS", redirect.as_str()),
        ("TESSERA_CONNECT_ORIGINS", platform.base.as_str()),
        ("TESSERA_CONNECT_TITLE", "Acme Platform"),
    ];
    let app = TestApp::start(db, &env).await;
    app.tenant("acme").await;
    app.tenant("globex").await;
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": OAUTH, "name": "Acme CRM", "category": "crm", "authType": "oauth2", "template": "generic",
                   "oauth": {"authorizeUrl": provider.authorize_url, "tokenUrl": provider.token_url,
                             "clientId": provider.client_id, "clientSecret": provider.client_secret, "scopes": ["read"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let schema = json!({"type": "object", "required": ["public_key", "secret_key"], "properties": {
        "public_key": {"type": "string"}, "secret_key": {"type": "string", "x-secret": true}, "host": {"type": "string"}}});
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": FIELDS, "name": "Langfuse", "category": "observability", "authType": "api_key", "configSchema": schema}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.integration("github", json!({"type": "object", "properties": {"token": {"type": "string", "x-secret": true}}}))
        .await;
    let events = ["connection.created", "credential.stored", "connect.session_completed", "connect.session_expired"];
    let r = app
        .post(
            "/tenants/acme/webhooks",
            ROOT_TOKEN,
            json!({"url": format!("{}/hooks", platform.base), "events": events}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    Some((app, platform, stranger, provider))
}

/// A session for `tenant` as `token`; returns the whole answer.
async fn session(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/connect/sessions", token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// An HTML attribute's text (askama escapes `&` and quotes as numeric or named entities).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else { break };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        out.push(c.expect("a known entity"));
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn browser_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Who may create sessions, for which tenant, with which settings.
async fn creation_is_checked(app: &TestApp, platform: &Platform, tokens: &mut Vec<String>) {
    let acme_admin = app.key("tenant_admin", Some("acme")).await;
    let acme_service = app.key("tenant_service", Some("acme")).await;
    let globex_admin = app.key("tenant_admin", Some("globex")).await;
    let ok =
        json!({"tenantId": "acme", "integrations": [OAUTH, FIELDS], "redirectUri": format!("{}/done", platform.base)});
    let made = session(app, &acme_admin, ok.clone()).await;
    let (id, token, url) = (
        made["id"].as_str().expect("a string"),
        made["token"].as_str().expect("a string"),
        made["url"].as_str().expect("a string"),
    );
    tokens.push(token.to_owned());
    assert!(id.starts_with("cs_") && token.len() >= 43 && url.ends_with(&format!("/connect/{token}")), "{made}");
    let read = app.get(&format!("/connect/sessions/{id}"), &acme_admin).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["status"], "pending");
    assert!(!read.text.contains(token), "the token is shown only once: {}", read.text);
    // Another tenant's admin does not learn the session exists; a service key may not create one.
    let other = app.get(&format!("/connect/sessions/{id}"), &globex_admin).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    let r = app.post("/connect/sessions", &globex_admin, json!({"tenantId": "acme"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app.post("/connect/sessions", &acme_service, json!({"tenantId": "acme"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    for (body, code) in [
        (json!({"tenantId": "acme", "redirectUri": "https://evil.example/done"}), "redirect_uri_not_allowed"),
        (json!({"tenantId": "acme", "expiresIn": 1801}), "invalid_expires_in"),
        (json!({"tenantId": "acme", "expiresIn": 0}), "invalid_expires_in"),
        (json!({"tenantId": "acme", "integrations": []}), "invalid_integrations"),
        (json!({"tenantId": "acme", "integrations": ["nope"]}), "integration_not_found"),
        (json!({"tenantId": "ghost"}), "tenant_not_found"),
        (json!({"tenantId": "acme", "endUser": {"id": ""}}), "invalid_end_user"),
    ] {
        let r = app.post("/connect/sessions", ROOT_TOKEN, body.clone()).await;
        assert!(r.status.is_client_error(), "{body} -> {} {}", r.status, r.text);
        assert_eq!(r.body["error"]["code"], code, "{body} -> {}", r.text);
    }
    // Creating one is audited, with the end user; the token never is.
    let audit = app.get("/audit?action=connect.session_create&tenantId=acme", ROOT_TOKEN).await;
    assert!(audit.body["events"].as_array().is_some_and(|e| !e.is_empty()), "{}", audit.text);
    assert!(!audit.text.contains(token), "{}", audit.text);
    // Ending it early: the link stops working, `connect.session_expired` fires once.
    let ended = app.delete(&format!("/connect/sessions/{id}"), &acme_admin).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text);
    let page = browser_client().get(url).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap_or_default().contains("not valid"));
    let again = app.delete(&format!("/connect/sessions/{id}"), &acme_admin).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "an ended session is forgotten: {}", again.text);
    platform.wait_for("connect.session_expired", 1).await;
}

/// What a link opens and what it does not.
async fn a_link_opens_only_its_tenant_and_integrations(
    app: &TestApp,
    provider: &OAuthProvider,
    tokens: &mut Vec<String>,
) {
    app.tenant("initech").await;
    let made = session(app, ROOT_TOKEN, json!({"tenantId": "initech", "integrations": [FIELDS]})).await;
    let url = made["url"].as_str().expect("a string");
    tokens.push(made["token"].as_str().expect("a string").to_owned());
    let client = browser_client();
    // Outside the allow-list: neither the form nor the flow.
    for (method, path) in [("GET", "/integrations/github"), ("GET", "/integrations/acme-crm")] {
        let r = client.request(method.parse().expect("a method"), format!("{url}{path}")).send().await.expect("answer");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    let r = client.post(format!("{url}/authorize")).form(&[("integration", OAUTH)]).send().await.expect("answer");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A form naming another tenant writes only the link's own tenant.
    let r = client
        .post(format!("{url}/integrations/{FIELDS}"))
        .form(&[
            ("f.public_key", "pk_acme"),
            ("f.secret_key", API_SECRET),
            ("tenant_id", "globex"),
            ("tenant", "globex"),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap_or_default());
    let globex = app.get(&format!("/tenants/globex/integrations/{FIELDS}"), ROOT_TOKEN).await;
    assert_eq!(globex.status, StatusCode::NOT_FOUND, "{}", globex.text);
    let own = app.get(&format!("/tenants/initech/integrations/{FIELDS}"), ROOT_TOKEN).await;
    assert_eq!(own.body["connectedBy"]["sessionId"], made["id"], "{}", own.text);
    // A post from another site's page is refused.
    let r = client
        .post(format!("{url}/integrations/{FIELDS}"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("f.public_key", "pk_x"), ("f.secret_key", "x")])
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A token that is not one, and an expired one.
    let r = client.get(format!("{}/connect/not-a-token", app.base)).send().await.expect("answer");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let short = session(app, ROOT_TOKEN, json!({"tenantId": "initech", "expiresIn": 1})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = client.get(short["url"].as_str().expect("a string")).send().await.expect("answer");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap_or_default().contains("expired"));
    let status = app.get(&format!("/connect/sessions/{}", short["id"].as_str().expect("a string")), ROOT_TOKEN).await;
    assert_eq!(status.body["status"], "expired", "{}", status.text);

    // A flow started by a session that ends before the provider comes back
    // stores nothing, and returns to that session's own page, never another.
    let other = session(app, ROOT_TOKEN, json!({"tenantId": "globex", "integrations": [OAUTH]})).await;
    let other_url = other["url"].as_str().expect("a string");
    tokens.push(other["token"].as_str().expect("a string").to_owned());
    let leaving =
        client.post(format!("{other_url}/authorize")).form(&[("integration", OAUTH)]).send().await.expect("answer");
    assert_eq!(leaving.status(), StatusCode::OK);
    let html = leaving.text().await.unwrap_or_default();
    let start =
        html.find("id=\"continue\"").and_then(|i| html[..i].rfind("href=\"")).expect("a link to the provider") + 6;
    let authorization_url = unescape(html[start..].split('"').next().expect("an attribute"));
    let callback = provider.approve(&authorization_url).await;
    let ended = app.delete(&format!("/connect/sessions/{}", other["id"].as_str().expect("a string")), ROOT_TOKEN).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    let r = client.get(&callback).send().await.expect("callback");
    let location = r.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
    assert!(location.starts_with(&format!("{other_url}?")), "{location}");
    assert!(location.contains("status=error") && location.contains("connect_link_invalid"), "{location}");
    let creds = app.get(&format!("/tenants/globex/integrations/{OAUTH}/credentials"), ROOT_TOKEN).await;
    assert_eq!(creds.status, StatusCode::NOT_FOUND, "an ended session stored tokens: {}", creds.text);
}

/// The browser part; returns the page tokens it used.
async fn in_a_browser(app: &TestApp, platform: &Platform, stranger: &Platform, name: &str) -> Option<Vec<String>> {
    let (script, chromium) = crate::console::harness()?;
    let script = std::path::Path::new(&script).with_file_name("connect.mjs");
    let admin = app.key("tenant_admin", Some("acme")).await;
    let redirect = format!("{}/done", platform.base);
    let first = session(
        app,
        &admin,
        json!({"tenantId": "acme", "integrations": [OAUTH, FIELDS], "redirectUri": redirect,
               "endUser": {"id": "user-42", "email": "ada@example.com", "displayName": "Ada"}}),
    )
    .await;
    let second = session(app, &admin, json!({"tenantId": "acme", "integrations": [OAUTH, FIELDS]})).await;
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/connect-screenshots").join(name);
    let cfg = json!({
        "base": app.base,
        "url": first["url"],
        "otherUrl": second["url"],
        "platform": platform.base,
        "stranger": stranger.base,
        "redirect": redirect,
        "title": "Acme Platform",
        "oauth": OAUTH, "oauthName": "Acme CRM",
        "fields": FIELDS, "fieldsName": "Langfuse",
        "publicValue": "pk_lf_acme_public",
        "secretValue": API_SECRET,
        "secretValues": [API_SECRET],
        "screenshotDir": shots.display().to_string(),
        "chromium": chromium,
    });
    crate::console::run_script(&script, "CONNECT_TEST", &cfg, app).await;

    // The session completed with both integrations; the resolved views hold both credentials.
    let id = first["id"].as_str().expect("a string");
    let done = app.get(&format!("/connect/sessions/{id}"), &admin).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let connected: Vec<&str> =
        done.body["connected"].as_array().expect("a list").iter().filter_map(|c| c["integration"].as_str()).collect();
    assert!(connected.contains(&OAUTH) && connected.contains(&FIELDS), "{}", done.text);
    let fields = app.get(&format!("/tenants/acme/integrations/{FIELDS}/resolved"), ROOT_TOKEN).await;
    assert_eq!(fields.body["config"]["secret_key"], API_SECRET, "{}", fields.status);
    let oauth = app.get(&format!("/tenants/acme/integrations/{OAUTH}/resolved"), ROOT_TOKEN).await;
    assert!(oauth.body["config"]["accessToken"].as_str().is_some_and(|t| !t.is_empty()), "{}", oauth.status);
    let conn = app.get(&format!("/tenants/acme/integrations/{OAUTH}"), ROOT_TOKEN).await;
    assert_eq!(conn.body["connectedBy"]["endUser"]["id"], "user-42", "{}", conn.text);
    // The platform heard of each connection, and of the end.
    let created = platform.wait_for("connection.created", 2).await;
    for key in [OAUTH, FIELDS] {
        assert!(
            created.iter().any(|d| d["integration"] == key && d["sessionId"] == id && d["endUserId"] == "user-42"),
            "{created:?}"
        );
    }
    let completed = platform.wait_for("connect.session_completed", 1).await;
    assert!(completed.iter().any(|d| d["sessionId"] == id), "{completed:?}");
    let cancelled = app.get(&format!("/connect/sessions/{}", second["id"].as_str().expect("a string")), &admin).await;
    assert_eq!(cancelled.body["status"], "failed", "the popup's Cancel ended the second session: {}", cancelled.text);
    Some(vec![
        first["token"].as_str().expect("a string").to_owned(),
        second["token"].as_str().expect("a string").to_owned(),
    ])
}

async fn run(db: Db, name: &str) {
    let Some((app, platform, stranger, provider)) = setup(db).await else { return };
    let mut tokens = Vec::new();
    creation_is_checked(&app, &platform, &mut tokens).await;
    a_link_opens_only_its_tenant_and_integrations(&app, &provider, &mut tokens).await;
    tokens.extend(in_a_browser(&app, &platform, &stranger, name).await.unwrap_or_default());
    // No credential and no page token in the database, the log or the audit trail.
    let mut secrets: Vec<&str> = vec![API_SECRET, provider.client_secret.as_str()];
    secrets.extend(tokens.iter().map(String::as_str));
    app.assert_plaintext_absent(&secrets, &[]).await;
}

async fn hosted_connect(db: Db) {
    let label = db.label();
    run(db, label).await;
}

crate::on_both_databases!(db: hosted_connect);
