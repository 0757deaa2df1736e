//! `POST /api/v1/tools/invoke` against a real MCP server
//! (`@modelcontextprotocol/server-everything`, Streamable HTTP), reached
//! through a thin counting front started by the test: the front records the
//! JSON-RPC method, the `Authorization` header and the session id of every
//! request, so a test can count `initialize` calls and see the bearer token
//! that reached the server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Db, McpServer, OAuthProvider, TestApp, ROOT_TOKEN};

const TOKEN: &str = "acme-mcp-token-5813";
const ARGUMENT: &str = "argument-text-never-stored-2718";

/// One request the front passed on.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    auth: Option<String>,
    session: Option<String>,
}

/// A pass-through in front of the MCP server that records what it sees.
#[derive(Clone)]
struct Front {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Bearer tokens answered 401, as a server that revoked them would.
    refused: Arc<Mutex<Vec<String>>>,
    /// Answer 401 to every token.
    refuse_all: Arc<std::sync::atomic::AtomicBool>,
}

impl Front {
    async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let refuse_all: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (target, log, refusing, all) = (target.to_owned(), seen.clone(), refused.clone(), refuse_all.clone());
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |req: Request| {
            let (target, log, client, refusing, all) =
                (target.clone(), log.clone(), client.clone(), refusing.clone(), all.clone());
            async move {
                let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let refuse = all.load(std::sync::atomic::Ordering::SeqCst)
                    || refusing.lock().expect("lock").iter().any(|t| auth == format!("Bearer {t}"));
                if refuse {
                    log.lock().expect("lock").push(Seen {
                        method: "refused".into(),
                        auth: Some(auth.into()),
                        session: None,
                    });
                    return (axum::http::StatusCode::UNAUTHORIZED, "token revoked").into_response();
                }
                pass_on(req, &target, &log, &client).await
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("front serves") });
        Self { url, seen, refused, refuse_all }
    }

    fn count(&self, method: &str) -> usize {
        self.seen.lock().expect("lock").iter().filter(|s| s.method == method).count()
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn pass_on(req: Request, target: &str, log: &Mutex<Vec<Seen>>, client: &reqwest::Client) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let method = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_owned))
        .unwrap_or_default();
    log.lock().expect("lock").push(Seen { method, auth: header("authorization"), session: header("mcp-session-id") });
    let mut out = client.request(parts.method.clone(), target).body(body.to_vec());
    for name in ["authorization", "content-type", "accept", "mcp-session-id", "mcp-protocol-version"] {
        if let Some(v) = header(name) {
            out = out.header(name, v);
        }
    }
    let Ok(answer) = out.send().await else {
        return (axum::http::StatusCode::BAD_GATEWAY, "the MCP server is down").into_response();
    };
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).expect("status");
    let mut headers = axum::http::HeaderMap::new();
    for name in ["content-type", "mcp-session-id"] {
        if let Some(v) = answer.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name, v.parse().expect("header value"));
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, headers, bytes).into_response()
}

/// `everything` registered with its MCP server behind a front, tenant
/// `acme` connected with `TOKEN`; returns the front.
async fn connected(app: &TestApp, mcp: &McpServer) -> Front {
    let front = Front::start(&mcp.url).await;
    register(app, "everything", &front.url).await;
    app.tenant("acme").await;
    let r =
        app.post("/tenants/acme/integrations/everything/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    front
}

async fn register(app: &TestApp, key: &str, url: &str) {
    let r = app.post("/integrations", ROOT_TOKEN, json!({"key": key, "name": key, "mcp": {"url": url}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["mcp"]["url"], url, "{}", r.text);
}

async fn invoke(app: &TestApp, token: &str, body: Value) -> crate::helpers::Resp {
    app.post("/api/v1/tools/invoke", token, body).await
}

fn echoed(r: &crate::helpers::Resp) -> String {
    r.body["result"]["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

async fn echo_runs_as_the_tenant_in_one_session_with_its_bearer_token(app: TestApp) {
    let Some(mcp) = McpServer::start().await else { return };
    let front = connected(&app, &mcp).await;
    let acme = app.key("tenant_service", Some("acme")).await;

    let r = invoke(
        &app,
        ROOT_TOKEN,
        json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {"message": ARGUMENT}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(echoed(&r), format!("Echo: {ARGUMENT}"), "{}", r.text);
    assert_eq!(r.body["toolId"], "everything.echo");
    assert_eq!(r.body["integration"], "everything");
    assert_eq!(r.body["tenantId"], "acme");

    let r =
        invoke(&app, &acme, json!({"toolId": "echo", "integration": "everything", "parameters": {"message": "two"}}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(echoed(&r), "Echo: two");

    // One initialize, its notification, two calls: the session was reused.
    assert_eq!(front.count("initialize"), 1, "{:?}", front.all());
    assert_eq!(front.count("notifications/initialized"), 1, "{:?}", front.all());
    assert_eq!(front.count("tools/call"), 2, "{:?}", front.all());
    let seen = front.all();
    let session = seen[0].session.clone();
    assert!(session.is_none(), "initialize carries no session id");
    let issued = seen[1].session.clone().expect("the calls carry the session id");
    assert!(seen[1..].iter().all(|s| s.session.as_deref() == Some(issued.as_str())), "{seen:?}");
    // The tenant's token reached the server, on every request, and nothing of the caller's.
    assert!(seen.iter().all(|s| s.auth.as_deref() == Some(&format!("Bearer {TOKEN}"))), "{seen:?}");

    let audit = app.get("/audit?action=tool.invoke&limit=50", ROOT_TOKEN).await;
    assert_eq!(audit.text.matches("tools/everything/echo").count(), 2, "{}", audit.text);
    assert!(audit.text.contains("\"success\""), "{}", audit.text);
    app.assert_plaintext_absent(&[TOKEN, ARGUMENT], &[&audit]).await;
}

async fn an_expired_session_is_initialized_again(app: TestApp) {
    let Some(mut mcp) = McpServer::start().await else { return };
    let front = connected(&app, &mcp).await;
    let body = json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {"message": "before"}});
    let r = invoke(&app, ROOT_TOKEN, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(front.count("initialize"), 1);

    // A new server process on the same port knows none of the old sessions.
    mcp.restart().await;
    let body = json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {"message": "after"}});
    let r = invoke(&app, ROOT_TOKEN, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(echoed(&r), "Echo: after");
    assert_eq!(front.count("initialize"), 2, "{:?}", front.all());
    assert_eq!(front.count("tools/call"), 3, "the stale call, then the retry: {:?}", front.all());
    let sessions: Vec<_> = front.all().into_iter().filter(|s| s.method == "tools/call").map(|s| s.session).collect();
    assert_ne!(sessions[1], sessions[2], "the retry uses the new session");
}

async fn unknown_tools_and_tool_errors_are_clear_4xx(app: TestApp) {
    let Some(mcp) = McpServer::start().await else { return };
    let _front = connected(&app, &mcp).await;
    let call = |body: Value| invoke(&app, ROOT_TOKEN, body);

    let r = call(json!({"toolId": "everything.noSuchTool", "tenantId": "acme"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "unknown_tool", "{}", r.text);

    // The server's own refusal (echo without its message) is the tool's error, with its text.
    let r = call(json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "tool_error", "{}", r.text);
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| m.contains("message")), "{}", r.text);

    let r = call(json!({"toolId": "other.echo", "integration": "everything", "tenantId": "acme"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("integration_mismatch")));
    let r = call(json!({"toolId": "echo", "tenantId": "acme"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("missing_integration")));
    let r = call(json!({"toolId": "everything.echo"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("missing_tenant")));
    let r = call(json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": [1]})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_parameters")));
    let r = call(json!({"toolId": "nothere.echo", "tenantId": "acme"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Registered without an MCP server.
    let r = app.post("/integrations", ROOT_TOKEN, json!({"key": "plain", "name": "plain"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.post("/tenants/acme/integrations/plain/credentials", ROOT_TOKEN, json!({"accessToken": "x"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(json!({"toolId": "plain.echo", "tenantId": "acme"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("mcp_not_configured")));

    // Bad settings are refused at registration.
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "bad", "name": "bad", "mcp": {"url": "http://u:p@127.0.0.1/mcp"}}),
        )
        .await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_mcp_settings")));

    let audit = app.get("/audit?action=tool.invoke&limit=50", ROOT_TOKEN).await;
    assert!(audit.text.contains("tools/everything/noSuchTool?error=unknown_tool"), "{}", audit.text);
    assert!(audit.text.contains("tools/everything/echo?error=tool_error"), "{}", audit.text);
}

async fn a_tenant_key_cannot_name_another_tenant(app: TestApp) {
    let Some(mcp) = McpServer::start().await else { return };
    let front = connected(&app, &mcp).await;
    app.tenant("globex").await;
    let r = app
        .post("/tenants/globex/integrations/everything/credentials", ROOT_TOKEN, json!({"accessToken": "globex-tok"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let acme = app.key("tenant_admin", Some("acme")).await;

    let r =
        invoke(&app, &acme, json!({"toolId": "everything.echo", "tenantId": "globex", "parameters": {"message": "x"}}))
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "tenant_not_found");
    let r =
        invoke(&app, &acme, json!({"toolId": "everything.echo", "tenantId": "nobody", "parameters": {"message": "x"}}))
            .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(front.count("tools/call"), 0, "nothing reached the server");

    // Its own tenant works, with its own token; globex's (by an admin) with globex's, in its own session.
    let r =
        invoke(&app, &acme, json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {"message": "a"}}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = invoke(
        &app,
        ROOT_TOKEN,
        json!({"toolId": "everything.echo", "tenantId": "globex", "parameters": {"message": "g"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let calls: Vec<Seen> = front.all().into_iter().filter(|s| s.method == "tools/call").collect();
    assert_eq!(calls[0].auth.as_deref(), Some(&format!("Bearer {TOKEN}")[..]));
    assert_eq!(calls[1].auth.as_deref(), Some("Bearer globex-tok"));
    assert_ne!(calls[0].session, calls[1].session, "one session per tenant");
    assert_eq!(front.count("initialize"), 2);
    let denied = app.get("/audit?action=auth.denied&limit=50", ROOT_TOKEN).await;
    assert!(
        denied.body["events"].as_array().is_some_and(|e| !e.is_empty()) || denied.text.contains("auth.denied"),
        "{}",
        denied.text
    );
}

/// A server that refuses the tenant's OAuth token (revoked early, say): the
/// token is refreshed once and the call tried once more with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_oauth_token_is_refreshed_and_the_tool_call_retried_once() {
    let Some(mcp) = McpServer::start().await else { return };
    let Some(p) = OAuthProvider::start().await else { return };
    let app =
        TestApp::start(Db::Sqlite, &[("TESSERA_ALLOW_LOOPBACK_HTTP", "true"), ("TESSERA_REFRESH_INTERVAL", "3600")])
            .await;
    let front = Front::start(&mcp.url).await;
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "everything", "name": "Everything", "authType": "oauth2",
            "oauth": {"authorizeUrl": p.authorize_url, "tokenUrl": p.token_url, "clientId": p.client_id,
                      "clientSecret": p.client_secret, "pkce": true},
            "mcp": {"url": front.url}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.tenant("acme").await;
    let start = app.get("/oauth/authorize/everything?tenant_id=acme", ROOT_TOKEN).await;
    let callback = p.approve(start.body["authorizationUrl"].as_str().expect("url")).await;
    assert_eq!(reqwest::get(callback).await.expect("callback").status(), StatusCode::OK);
    let token = |r: crate::helpers::Resp| r.body["config"]["accessToken"].as_str().expect("token").to_owned();
    let old = token(app.get("/tenants/acme/integrations/everything/resolved", ROOT_TOKEN).await);
    front.refused.lock().expect("lock").push(old.clone());

    let body = json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {"message": "again"}});
    let r = invoke(&app, ROOT_TOKEN, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(echoed(&r), "Echo: again");
    assert_eq!(p.stats().await["refresh"], 1);
    let new = token(app.get("/tenants/acme/integrations/everything/resolved", ROOT_TOKEN).await);
    assert_ne!(new, old);
    let calls: Vec<_> = front.all().into_iter().filter(|s| s.method == "tools/call").collect();
    assert_eq!(calls.last().and_then(|s| s.auth.clone()), Some(format!("Bearer {new}")), "{calls:?}");
    assert_eq!(front.count("refused"), 1, "{:?}", front.all());

    // A server that refuses every token: one refresh, one retry, then a clear 502.
    front.refuse_all.store(true, std::sync::atomic::Ordering::SeqCst);
    p.reset().await;
    let before = front.count("refused");
    let r = invoke(&app, ROOT_TOKEN, body).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "mcp_unauthorized", "{}", r.text);
    assert_eq!(front.count("refused") - before, 2, "the call and one retry: {:?}", front.all());
    assert_eq!(p.stats().await["refresh"], 1);
    app.assert_plaintext_absent(&[&old, &new], &[]).await;
}

crate::on_both_databases!(
    echo_runs_as_the_tenant_in_one_session_with_its_bearer_token,
    an_expired_session_is_initialized_again,
    unknown_tools_and_tool_errors_are_clear_4xx,
    a_tenant_key_cannot_name_another_tenant,
);

/// A server that is down, or one that accepts and never answers, is a 502
/// within the time limit (`TESSERA_PROXY_TIMEOUT`, 2 s here), never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_or_silent_is_a_502_within_the_time_limit() {
    let Some(mut mcp) = McpServer::start().await else { return };
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_PROXY_TIMEOUT", "2")]).await;
    register(&app, "everything", &mcp.url).await;
    app.tenant("acme").await;
    let r =
        app.post("/tenants/acme/integrations/everything/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let body = json!({"toolId": "everything.echo", "tenantId": "acme", "parameters": {"message": "up"}});
    assert_eq!(invoke(&app, ROOT_TOKEN, body.clone()).await.status, StatusCode::OK);

    // Down (with a session cached): connection refused.
    mcp.stop();
    let started = Instant::now();
    let r = invoke(&app, ROOT_TOKEN, body.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "mcp_unavailable", "{}", r.text);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Silent: accepts the connection, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_url = format!("http://{}/mcp", silent.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    register(&app, "silent", &silent_url).await;
    let r = app.post("/tenants/acme/integrations/silent/credentials", ROOT_TOKEN, json!({"accessToken": TOKEN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let started = Instant::now();
    let r =
        invoke(&app, ROOT_TOKEN, json!({"toolId": "silent.echo", "tenantId": "acme", "parameters": {"message": "x"}}))
            .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "mcp_timeout", "{}", r.text);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(6), "{took:?}");

    let audit = app.get("/audit?action=tool.invoke&limit=50", ROOT_TOKEN).await;
    assert!(audit.text.contains("tools/silent/echo?error=mcp_timeout"), "{}", audit.text);
    app.assert_plaintext_absent(&[TOKEN], &[&audit]).await;
}
