//! Every error answer is `{"error": {"code", "message"}}` JSON, whichever part
//! of the request is at fault (path, query, headers, content type, body, body
//! size, URI length, time) and whether the service or the HTTP stack refuses
//! it; and the headers a caller relies on (no caching of a decrypted answer,
//! the scheme a 401 asks for). These call the router in process, on a real
//! service over SQLite.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use secrecy::SecretString;
use serde_json::{json, Value};
use tessera_core::keyring::LocalKeyProvider;
use tessera_core::secret_store::DatabaseSecrets;
use tessera_core::{Tessera, TesseraOptions};
use tessera_http::HttpOptions;
use tower::ServiceExt;

const ROOT: &str = "router-test-root-token-0123456789abcdef";
const MAX_BODY: usize = 1024;

struct App {
    router: Router,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("tessera.db").display());
        let store = tessera_store::connect(&url).await.expect("store opens");
        let master = tessera_crypto::MasterKey::from_bytes(&[7u8; 32]).expect("master key");
        let opts = TesseraOptions { root_token: Some(SecretString::from(ROOT)), ..TesseraOptions::default() };
        let svc = Tessera::builder(Arc::new(store), Arc::new(LocalKeyProvider::new(master)), Arc::new(DatabaseSecrets))
            .options(opts)
            .offline()
            .open()
            .await
            .expect("service opens");
        let http = HttpOptions {
            max_body_bytes: MAX_BODY,
            request_timeout: Duration::from_millis(500),
            ..HttpOptions::default()
        };
        let app = Self { router: tessera_http::router(Arc::new(svc), &http), _dir: dir };
        let created =
            app.send(app.request(Method::POST, "/tenants").json(&json!({"id": "acme", "name": "Acme"}))).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        app
    }

    fn request(&self, method: Method, uri: &str) -> Builder {
        Builder(Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {ROOT}")))
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.expect("the router answers");
        let status = resp.status();
        let content_type =
            resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let allow = resp.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            content_type,
            allow,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(self.request(Method::GET, uri).empty()).await
    }
}

struct Builder(axum::http::request::Builder);

impl Builder {
    fn json(self, body: &Value) -> Request<Body> {
        self.0.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).expect("request")
    }
    fn empty(self) -> Request<Body> {
        self.0.body(Body::empty()).expect("request")
    }
    fn header(self, name: &str, value: HeaderValue) -> Self {
        Self(self.0.header(name, value))
    }
    fn body(self, body: Body) -> Request<Body> {
        self.0.body(body).expect("request")
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    allow: Option<String>,
    headers: axum::http::HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    /// Asserts the status and the JSON error body; returns the error object.
    fn error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(self.content_type.starts_with("application/json"), "not JSON ({}): {:?}", self.content_type, self.text);
        let e = &self.body["error"];
        assert_eq!(e["code"], code, "{}", self.text);
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {}", self.text);
        e
    }
}

#[tokio::test]
async fn a_query_value_that_does_not_parse_is_a_json_400_naming_the_parameter() {
    let app = App::start().await;
    for uri in ["/tenants/acme/secrets/a?version=abc", "/tenants/acme/secrets/a?version=-1"] {
        let e = app.get(uri).await.error(StatusCode::BAD_REQUEST, "invalid_query").clone();
        assert_eq!(e["field"], "version");
        assert!(!e["message"].as_str().unwrap_or_default().contains("abc"), "the value is never echoed: {e}");
    }
    let e = app.get("/audit?limit=abc").await.error(StatusCode::BAD_REQUEST, "invalid_query").clone();
    assert_eq!(e["field"], "limit");
}

#[tokio::test]
async fn a_query_parameter_given_twice_is_a_json_400_that_never_echoes_its_values() {
    let app = App::start().await;
    let e = app
        .get("/tenants/acme/secrets/a?version=1&version=2")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_query")
        .clone();
    assert_eq!(e["field"], "version");
    // The OAuth callback's query carries an authorization code: never in an answer.
    let r = app.get("/oauth/callback/x?code=SECRET-CODE-1&code=SECRET-CODE-2&state=s").await;
    let e = r.error(StatusCode::BAD_REQUEST, "invalid_query");
    assert_eq!(e["field"], "code");
    assert!(!r.text.contains("SECRET-CODE"), "{}", r.text);
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_a_json_400_naming_the_parameter() {
    let app = App::start().await;
    let e = app.get("/tenants/acme/secrets/%FF").await.error(StatusCode::BAD_REQUEST, "invalid_path").clone();
    assert_eq!(e["field"], "path");
    let e = app.get("/tenants/%FF%FE").await.error(StatusCode::BAD_REQUEST, "invalid_path").clone();
    assert_eq!(e["field"], "tenantId");
    let r = app.get("/proxy/x/%FF").await;
    assert_eq!(r.error(StatusCode::BAD_REQUEST, "invalid_path")["field"], "path");
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_a_json_415() {
    let app = App::start().await;
    let body = || Body::from(json!({"value": "x"}).to_string());
    let r = app.send(app.request(Method::PUT, "/tenants/acme/secrets/a").body(body())).await;
    r.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let r = app
        .send(
            app.request(Method::PUT, "/tenants/acme/secrets/a")
                .header("content-type", HeaderValue::from_static("text/plain"))
                .body(body()),
        )
        .await;
    r.error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
}

#[tokio::test]
async fn a_json_body_that_does_not_parse_or_match_is_a_json_400() {
    let app = App::start().await;
    let r = app
        .send(
            app.request(Method::PUT, "/tenants/acme/secrets/a")
                .header("content-type", HeaderValue::from_static("application/json"))
                .body(Body::from("{\"value\": ")),
        )
        .await;
    r.error(StatusCode::BAD_REQUEST, "malformed_json");
    let r =
        app.send(app.request(Method::PUT, "/tenants/acme/secrets/a").json(&json!({"value": "x", "extra": 1}))).await;
    r.error(StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_json_413() {
    let app = App::start().await;
    let big = json!({"value": "x".repeat(MAX_BODY * 2)});
    let r = app.send(app.request(Method::PUT, "/tenants/acme/secrets/a").json(&big)).await;
    r.error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn a_uri_over_the_limit_is_a_json_414() {
    let app = App::start().await;
    let r = app.get(&format!("/tenants/acme/secrets/{}", "a".repeat(9000))).await;
    r.error(StatusCode::URI_TOO_LONG, "uri_too_long");
}

#[tokio::test]
async fn a_missing_or_unreadable_authorization_header_is_a_json_401() {
    let app = App::start().await;
    let r = app.send(Request::get("/tenants").body(Body::empty()).expect("request")).await;
    r.error(StatusCode::UNAUTHORIZED, "unauthenticated");
    let bad = HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque header bytes");
    let r = app
        .send(Request::get("/tenants").header(header::AUTHORIZATION, bad).body(Body::empty()).expect("request"))
        .await;
    r.error(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn a_decrypted_answer_is_never_cached_and_a_refusal_says_how_to_authenticate() {
    let app = App::start().await;
    let schema = json!([{"key": "api_key", "type": "secret", "required": true}]);
    let registered = app
        .send(
            app.request(Method::POST, "/integrations")
                .json(&json!({"key": "svc", "name": "Svc", "configSchema": schema})),
        )
        .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    let put = app
        .send(
            app.request(Method::PUT, "/tenants/acme/integrations/svc/config")
                .json(&json!({"config": {"api_key": "sk_in_process"}})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let resolved = app.get("/tenants/acme/integrations/svc/resolved").await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    assert_eq!(resolved.body["config"]["api_key"], "sk_in_process");
    assert_eq!(resolved.headers.get(header::CACHE_CONTROL).map(HeaderValue::as_bytes), Some(&b"no-store"[..]));
    // Without a token: 401 with the scheme to use, and nothing of the secret.
    let anonymous =
        app.send(Request::get("/tenants/acme/integrations/svc/resolved").body(Body::empty()).expect("request")).await;
    anonymous.error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(anonymous.headers.get(header::WWW_AUTHENTICATE).map(HeaderValue::as_bytes), Some(&b"Bearer"[..]));
    assert!(!anonymous.text.contains("sk_in_process"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_404_and_405() {
    let app = App::start().await;
    app.get("/nope").await.error(StatusCode::NOT_FOUND, "route_not_found");
    let r = app.send(app.request(Method::PATCH, "/tenants/acme").empty()).await;
    r.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let r = app.send(app.request(Method::PATCH, "/healthz").empty()).await;
    r.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn a_secret_path_and_its_action_form_each_refuse_the_other_forms_methods_with_405_and_their_allow() {
    let app = App::start().await;
    // A plain path takes GET, PUT and DELETE; POST (the action form's method) is a 405.
    for (method, uri) in
        [(Method::POST, "/tenants/acme/secrets/app/token"), (Method::PATCH, "/tenants/acme/secrets/app/token")]
    {
        let r = app.send(app.request(method.clone(), uri).json(&json!({"versions": [1]}))).await;
        r.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(r.allow.as_deref(), Some("GET,HEAD,PUT,DELETE"), "{method} {uri}");
    }
    // The :action form takes POST only.
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = app
            .send(app.request(method.clone(), "/tenants/acme/secrets/app/token:undelete").json(&json!({"value": 1})))
            .await;
        r.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(r.allow.as_deref(), Some("POST"), "{method}");
    }
    // Each form still works with its own methods; integers may be written 1.0.
    let put = app.request(Method::PUT, "/tenants/acme/secrets/app/token").json(&json!({"value": 1, "cas": 0.0}));
    assert_eq!(app.send(put).await.status, StatusCode::OK);
    let rollback = app.request(Method::POST, "/tenants/acme/secrets/app/token:rollback").json(&json!({"version": 1.0}));
    assert_eq!(app.send(rollback).await.status, StatusCode::OK);
    let r = app
        .send(app.request(Method::POST, "/tenants/acme/secrets/app/token:destroy").json(&json!({"versions": []})))
        .await;
    r.error(StatusCode::BAD_REQUEST, "invalid_versions");
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_json_408() {
    let app = App::start().await;
    // A body that never arrives: the JSON reader waits until the time limit.
    let never = Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>());
    let r = app
        .send(
            app.request(Method::PUT, "/tenants/acme/secrets/a")
                .header("content-type", HeaderValue::from_static("application/json"))
                .body(never),
        )
        .await;
    r.error(StatusCode::REQUEST_TIMEOUT, "request_timeout");
}
