//! Access control over HTTP (DESIGN.md section 5): tenant isolation, roles,
//! authentication, API keys, and audited denials.

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Resp, TestApp, ROOT_TOKEN};
use crate::on_every_store;

const BETA_CONFIG_SECRET: &str = "beta-secret-value-123";
const BETA_STRIPE_SECRET: &str = "beta-stripe-secret-456";
const BETA_PUBLIC_URL: &str = "https://b";
const ACME_CONFIG_SECRET: &str = "acme-secret-value-789";
const ACME_STRIPE_SECRET: &str = "acme-stripe-secret-000";

fn svc_schema() -> Value {
    json!([{"key": "base_url", "type": "string"}, {"key": "api_key", "type": "secret"}])
}

/// Tenants `acme` and `beta`, the integration `svc`, and beta's config and secret (all as root).
async fn two_tenants_with_beta_data(app: &TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    app.integration("svc", svc_schema()).await;
    let r = app
        .put(
            "/tenants/beta/integrations/svc/config",
            ROOT_TOKEN,
            json!({"config": {"base_url": BETA_PUBLIC_URL, "api_key": BETA_CONFIG_SECRET}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.put("/tenants/beta/secrets/stripe/KEY", ROOT_TOKEN, json!({"value": BETA_STRIPE_SECRET})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Creates an API key as root and returns (id, key).
async fn key_with_id(app: &TestApp, role: &str, tenant: Option<&str>) -> (String, String) {
    let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": role, "role": role, "tenantId": tenant})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let key = r.body["key"].as_str().expect("key").to_owned();
    (id, key)
}

/// Asserts an error answer: the status, the code, and the body shape `{"error": {"code", "message"}}`.
fn assert_error(r: &Resp, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert_error_shape(r, what);
    assert_eq!(r.body["error"]["code"], code, "{what}: {}", r.text);
}

fn assert_error_shape(r: &Resp, what: &str) {
    let top = r.body.as_object().unwrap_or_else(|| panic!("{what}: the error body is not a JSON object: {}", r.text));
    assert_eq!(top.len(), 1, "{what}: the error body has only \"error\": {}", r.text);
    let code = r.body["error"]["code"].as_str().unwrap_or_else(|| panic!("{what}: no error.code: {}", r.text));
    assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{what}: code {code:?}");
    let message = r.body["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: no error.message: {}", r.text));
    assert!(!message.is_empty(), "{what}: empty message");
}

fn assert_no_beta_data(r: &Resp, what: &str) {
    for s in [BETA_CONFIG_SECRET, BETA_STRIPE_SECRET, BETA_PUBLIC_URL] {
        assert!(!r.text.contains(s), "{what}: beta data {s:?} leaked: {}", r.text);
    }
}

/// How a tenant-bound key naming a tenant other than its own must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// 404 `tenant_not_found`, exactly as for a tenant that does not exist.
    NotFound,
    /// An admin-only route (or one the role may never use): 403 `forbidden`
    /// or 404 `tenant_not_found`, never 2xx.
    Denied,
}

struct Probe {
    method: Method,
    path: String,
    body: Option<Value>,
    refusal: Refusal,
}

impl Probe {
    fn label(&self) -> String {
        match &self.body {
            Some(b) => format!("{} {} {b}", self.method, self.path),
            None => format!("{} {}", self.method, self.path),
        }
    }
}

/// Every tenant-scoped request, naming tenant `t`.
fn tenant_scoped_requests(t: &str) -> Vec<Probe> {
    use Refusal::{Denied, NotFound};
    let p = |method: Method, path: String, body: Option<Value>, refusal: Refusal| Probe { method, path, body, refusal };
    let secret = format!("/tenants/{t}/secrets/stripe/KEY");
    vec![
        p(Method::GET, format!("/tenants/{t}"), None, NotFound),
        p(Method::GET, format!("/tenants/{t}/integrations"), None, NotFound),
        p(Method::GET, format!("/tenants/{t}/integrations/svc"), None, NotFound),
        p(Method::DELETE, format!("/tenants/{t}/integrations/svc"), None, NotFound),
        p(
            Method::PUT,
            format!("/tenants/{t}/integrations/svc/config"),
            Some(json!({"config": {"base_url": "https://evil", "api_key": "overwritten-by-acme"}})),
            NotFound,
        ),
        p(Method::GET, format!("/tenants/{t}/integrations/svc/resolved"), None, NotFound),
        p(Method::GET, format!("/tenants/{t}/secrets"), None, NotFound),
        p(Method::GET, format!("/tenants/{t}/secrets?prefix=stripe"), None, NotFound),
        p(Method::GET, secret.clone(), None, NotFound),
        p(Method::GET, format!("{secret}?version=1"), None, NotFound),
        p(Method::GET, format!("{secret}?versions"), None, NotFound),
        p(Method::PUT, secret.clone(), Some(json!({"value": "overwritten-by-acme"})), NotFound),
        p(Method::DELETE, secret.clone(), None, NotFound),
        p(Method::DELETE, format!("{secret}?versions=1"), None, NotFound),
        p(Method::POST, format!("{secret}:undelete"), Some(json!({"versions": [1]})), NotFound),
        p(Method::POST, format!("{secret}:destroy"), Some(json!({"versions": [1]})), NotFound),
        p(Method::POST, format!("{secret}:rollback"), Some(json!({"version": 1})), NotFound),
        p(Method::GET, format!("/configs?tenantId={t}"), None, NotFound),
        p(Method::GET, format!("/configs?tenantId={t}&integration=svc"), None, NotFound),
        p(
            Method::POST,
            "/api-keys".into(),
            Some(json!({"name": "x", "role": "tenant_service", "tenantId": t})),
            NotFound,
        ),
        // Admin-only routes: a tenant-bound key is refused whichever tenant it names.
        p(Method::GET, format!("/tenants/{t}/keys"), None, Denied),
        p(Method::POST, format!("/tenants/{t}/keys/rotate"), None, Denied),
        p(Method::DELETE, format!("/tenants/{t}"), None, Denied),
        // A tenant_admin reads its own tenant's audit only; a tenant_service none.
        p(Method::GET, format!("/audit?tenantId={t}"), None, Denied),
    ]
}

async fn send(app: &TestApp, probe: &Probe, token: &str) -> Resp {
    app.call(probe.method.clone(), &probe.path, Some(token), probe.body.as_ref()).await
}

async fn a_tenant_bound_key_naming_another_tenant_gets_not_found_and_changes_nothing(app: TestApp) {
    two_tenants_with_beta_data(&app).await;
    let admin = app.key("tenant_admin", Some("acme")).await;
    let service = app.key("tenant_service", Some("acme")).await;

    let mut seen: Vec<Resp> = Vec::new();
    for (role, token) in [("tenant_admin", &admin), ("tenant_service", &service)] {
        let beta = tenant_scoped_requests("beta");
        let ghost = tenant_scoped_requests("ghost");
        for (probe, twin) in beta.iter().zip(&ghost) {
            let what = format!("{role} key of acme: {}", probe.label());
            let r = send(&app, probe, token).await;
            assert!(!r.status.is_success(), "{what}: answered {}: {}", r.status, r.text);
            assert_no_beta_data(&r, &what);
            match probe.refusal {
                Refusal::NotFound => assert_error(&r, StatusCode::NOT_FOUND, "tenant_not_found", &what),
                Refusal::Denied => {
                    assert_error_shape(&r, &what);
                    let code = r.body["error"]["code"].as_str().unwrap_or_default();
                    assert!(
                        (r.status == StatusCode::FORBIDDEN && code == "forbidden")
                            || (r.status == StatusCode::NOT_FOUND && code == "tenant_not_found"),
                        "{what}: expected 403 forbidden or 404 tenant_not_found, got {}: {}",
                        r.status,
                        r.text
                    );
                }
            }
            // The answer is the one a tenant that does not exist gets: tenant ids cannot be probed.
            let g = send(&app, twin, token).await;
            assert_eq!(
                (g.status, &g.body["error"]["code"], &g.body["error"]["message"]),
                (r.status, &r.body["error"]["code"], &r.body["error"]["message"]),
                "{what}: the answer differs from the one for a nonexistent tenant ({}): {} vs {}",
                twin.label(),
                r.text,
                g.text
            );
            seen.push(r);
        }
    }

    // beta's data is untouched.
    let r = app.get("/tenants/beta/secrets/stripe/KEY", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["value"], BETA_STRIPE_SECRET);
    assert_eq!(r.body["version"], 1);
    let r = app.get("/tenants/beta/secrets/stripe/KEY?versions", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["currentVersion"], 1, "{}", r.text);
    let versions = r.body["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "{}", r.text);
    assert!(versions[0]["deletedAt"].is_null(), "{}", r.text);
    assert_eq!(versions[0]["destroyed"], false, "{}", r.text);
    let r = app.get("/tenants/beta/integrations/svc/resolved", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["config"]["api_key"], BETA_CONFIG_SECRET, "{}", r.text);
    assert_eq!(r.body["config"]["base_url"], BETA_PUBLIC_URL, "{}", r.text);
    let r = app.get("/tenants/beta/keys", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["latestVersion"], 1, "no key rotation happened: {}", r.text);
    assert_eq!(app.get("/tenants/beta", ROOT_TOKEN).await.status, StatusCode::OK);
    let r = app.get("/api-keys", ROOT_TOKEN).await;
    let beta_keys = r.body["apiKeys"].as_array().expect("keys").iter().filter(|k| k["tenantId"] == "beta").count();
    assert_eq!(beta_keys, 0, "no key was created for beta: {}", r.text);

    // No plaintext of beta in any refused answer (nor in storage, logs or audit).
    let refs: Vec<&Resp> = seen.iter().collect();
    app.assert_plaintext_absent(&[BETA_CONFIG_SECRET, BETA_STRIPE_SECRET], &refs).await;
}

async fn a_tenant_bound_key_reads_its_own_tenant_and_only_a_tenant_admin_writes(app: TestApp) {
    two_tenants_with_beta_data(&app).await;
    let admin = app.key("tenant_admin", Some("acme")).await;
    let service = app.key("tenant_service", Some("acme")).await;

    // A tenant_admin writes its own tenant.
    let r = app
        .put(
            "/tenants/acme/integrations/svc/config",
            &admin,
            json!({"config": {"base_url": "https://a", "api_key": ACME_CONFIG_SECRET}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/stripe/KEY", &admin, json!({"value": ACME_STRIPE_SECRET})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    for (role, token) in [("tenant_admin", &admin), ("tenant_service", &service)] {
        let ok = |r: &Resp, what: &str| {
            assert_eq!(r.status, StatusCode::OK, "{role} {what}: {}", r.text);
            assert_no_beta_data(r, &format!("{role} {what}"));
        };
        let r = app.get("/tenants/acme", token).await;
        ok(&r, "GET /tenants/acme");
        assert_eq!(r.body["id"], "acme");
        let r = app.get("/tenants", token).await;
        ok(&r, "GET /tenants");
        let ids: Vec<&str> =
            r.body["tenants"].as_array().expect("list").iter().filter_map(|t| t["id"].as_str()).collect();
        assert_eq!(ids, ["acme"], "{role} sees only its own tenant");
        let r = app.get("/tenants/acme/integrations", token).await;
        ok(&r, "GET /tenants/acme/integrations");
        let r = app.get("/tenants/acme/integrations/svc", token).await;
        ok(&r, "GET /tenants/acme/integrations/svc");
        assert_eq!(r.body["config"]["base_url"], "https://a");
        assert!(!r.text.contains(ACME_CONFIG_SECRET), "the connection view masks secrets: {}", r.text);
        let r = app.get("/tenants/acme/integrations/svc/resolved", token).await;
        ok(&r, "GET resolved");
        assert_eq!(r.body["config"]["api_key"], ACME_CONFIG_SECRET);
        let r = app.get("/tenants/acme/secrets", token).await;
        ok(&r, "GET /tenants/acme/secrets");
        assert_eq!(r.body["paths"], json!(["stripe/KEY"]));
        let r = app.get("/tenants/acme/secrets/stripe/KEY", token).await;
        ok(&r, "GET secret");
        assert_eq!(r.body["value"], ACME_STRIPE_SECRET);
        let r = app.get("/tenants/acme/secrets/stripe/KEY?versions", token).await;
        ok(&r, "GET secret versions");
        assert_eq!(r.body["currentVersion"], 1);
        for path in ["/configs?tenantId=acme", "/configs"] {
            let r = app.get(path, token).await;
            ok(&r, path);
            let configs = r.body["configs"].as_array().expect("configs");
            assert!(!configs.is_empty(), "{role} {path}: {}", r.text);
            for c in configs {
                assert!(c["tenantId"].is_null() || c["tenantId"] == "acme", "{role} {path}: {c}");
            }
        }
    }

    // A tenant_service key may only read.
    let writes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::PUT, "/tenants/acme/secrets/stripe/KEY", Some(json!({"value": "written-by-service"}))),
        (
            Method::PUT,
            "/tenants/acme/integrations/svc/config",
            Some(json!({"config": {"base_url": "https://service", "api_key": "written-by-service"}})),
        ),
        (Method::DELETE, "/tenants/acme/secrets/stripe/KEY", None),
        (Method::POST, "/tenants/acme/secrets/stripe/KEY:destroy", Some(json!({"versions": [1]}))),
        (Method::POST, "/tenants/acme/secrets/stripe/KEY:rollback", Some(json!({"version": 1}))),
        (Method::DELETE, "/tenants/acme/integrations/svc", None),
    ];
    for (method, path, body) in writes {
        let what = format!("tenant_service {method} {path}");
        let r = app.call(method, path, Some(&service), body.as_ref()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", &what);
    }
    let r = app.get("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN).await;
    assert_eq!((&r.body["value"], &r.body["version"]), (&json!(ACME_STRIPE_SECRET), &json!(1)), "{}", r.text);
    let r = app.get("/tenants/acme/integrations/svc/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"], json!({"base_url": "https://a", "api_key": ACME_CONFIG_SECRET}), "{}", r.text);
}

async fn each_role_gets_exactly_the_routes_it_is_allowed(app: TestApp) {
    two_tenants_with_beta_data(&app).await;
    let r = app.put("/tenants/acme/secrets/stripe/KEY", ROOT_TOKEN, json!({"value": ACME_STRIPE_SECRET})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let auditor = app.key("auditor", None).await;
    let admin = app.key("tenant_admin", Some("acme")).await;
    let service = app.key("tenant_service", Some("acme")).await;
    // Some activity of acme's own, so its audit view is not empty.
    assert_eq!(app.get("/tenants/acme/secrets/stripe/KEY", &admin).await.status, StatusCode::OK);

    // An auditor reads the audit log of every tenant, and no tenant data.
    let r = app.get("/audit?limit=1000", &auditor).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let tenants: Vec<&str> =
        r.body["events"].as_array().expect("events").iter().filter_map(|e| e["tenantId"].as_str()).collect();
    assert!(tenants.contains(&"acme") && tenants.contains(&"beta"), "the auditor sees every tenant: {tenants:?}");
    for s in [ACME_STRIPE_SECRET, BETA_STRIPE_SECRET, BETA_CONFIG_SECRET] {
        assert!(!r.text.contains(s), "audit rows carry no secret values: {}", r.text);
    }
    let r = app.get("/audit/verify", &auditor).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["ok"], true, "{}", r.text);
    for path in [
        "/tenants/acme/secrets/stripe/KEY",
        "/tenants/acme/secrets",
        "/tenants/beta/secrets/stripe/KEY",
        "/tenants/acme/integrations/svc/resolved",
        "/tenants/beta/integrations/svc/resolved",
    ] {
        let r = app.get(path, &auditor).await;
        assert_error(&r, StatusCode::NOT_FOUND, "tenant_not_found", &format!("auditor GET {path}"));
        assert_no_beta_data(&r, path);
        assert!(!r.text.contains(ACME_STRIPE_SECRET), "{}", r.text);
    }
    let r = app.post("/tenants", &auditor, json!({"id": "gamma", "name": "Gamma"})).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "auditor POST /tenants");
    let body = json!({"key": "other", "name": "Other", "category": "test", "configSchema": svc_schema()});
    let r = app.post("/integrations", &auditor, body).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "auditor POST /integrations");

    // A tenant_service key reads no audit log.
    let r = app.get("/audit", &service).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "tenant_service GET /audit");
    let r = app.get("/audit/verify", &service).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "tenant_service GET /audit/verify");

    // A tenant_admin key reads its own tenant's events only.
    let r = app.get("/audit?limit=1000", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let events = r.body["events"].as_array().expect("events");
    assert!(!events.is_empty(), "acme has events: {}", r.text);
    for e in events {
        assert_eq!(e["tenantId"], "acme", "a tenant_admin sees only its tenant's events: {e}");
    }
    let r = app.get("/audit?tenantId=acme", &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Admin-only routes refuse a tenant_admin.
    let integration = json!({"key": "other", "name": "Other", "category": "test", "configSchema": svc_schema()});
    let admin_only: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::POST, "/tenants", Some(json!({"id": "gamma", "name": "Gamma"}))),
        (Method::DELETE, "/tenants/acme", None),
        (Method::POST, "/integrations", Some(integration)),
        (Method::PUT, "/integrations/svc", Some(json!({"name": "Renamed", "configSchema": svc_schema()}))),
        (Method::DELETE, "/integrations/svc", None),
        (Method::PUT, "/integrations/svc/defaults", Some(json!({"config": {"base_url": "https://default"}}))),
        (Method::GET, "/integrations/svc/defaults", None),
        (Method::GET, "/integrations/svc/connections", None),
        (Method::GET, "/integrations/svc/connections?config.base_url=https://b", None),
        (Method::POST, "/tenants/acme/keys/rotate", None),
        (Method::GET, "/tenants/acme/keys", None),
        (Method::GET, "/audit/verify", None),
    ];
    for (method, path, body) in admin_only {
        let what = format!("tenant_admin {method} {path}");
        let r = app.call(method, path, Some(&admin), body.as_ref()).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", &what);
        assert_no_beta_data(&r, &what);
    }
    // Nothing changed.
    let r = app.get("/tenants", ROOT_TOKEN).await;
    let ids: Vec<&str> = r.body["tenants"].as_array().expect("list").iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{}", r.text);
    assert!(ids.contains(&"acme") && ids.contains(&"beta"), "{}", r.text);
    let r = app.get("/integrations", ROOT_TOKEN).await;
    let keys: Vec<&str> =
        r.body["integrations"].as_array().expect("list").iter().filter_map(|i| i["key"].as_str()).collect();
    assert_eq!(keys, ["svc"], "{}", r.text);
    assert_eq!(app.get("/integrations/svc", ROOT_TOKEN).await.body["name"], "Integration svc");
    let r = app.get("/tenants/acme/keys", ROOT_TOKEN).await;
    assert_eq!(r.body["latestVersion"], 1, "{}", r.text);
    let r = app.get("/tenants/beta/integrations/svc/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"], json!({"base_url": BETA_PUBLIC_URL, "api_key": BETA_CONFIG_SECRET}), "{}", r.text);
}

async fn a_request_without_a_valid_token_is_unauthenticated_and_deleted_keys_stop_working(app: TestApp) {
    app.tenant("acme").await;
    let unauthenticated = |r: reqwest::Response, what: &'static str| async move {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = r.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap_or_default().to_owned());
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{what}");
        let body: Value = r.json().await.expect("JSON error body");
        assert_eq!(body["error"]["code"], "unauthenticated", "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    };
    let url = format!("{}/tenants", app.base);
    let r = app.client.get(&url).send().await.expect("sent");
    unauthenticated(r, "no Authorization header").await;
    let r = app.client.get(&url).bearer_auth("tsr_wrong").send().await.expect("sent");
    unauthenticated(r, "a wrong tsr_ token").await;
    let r = app.client.get(&url).bearer_auth("not-a-tessera-token").send().await.expect("sent");
    unauthenticated(r, "a token without the tsr_ prefix").await;
    let r =
        app.client.get(&url).header(header::AUTHORIZATION, format!("Basic {ROOT_TOKEN}")).send().await.expect("sent");
    unauthenticated(r, "the root token in a Basic header").await;
    let r = app.client.get(&url).header(header::AUTHORIZATION, "Bearer ").send().await.expect("sent");
    unauthenticated(r, "an empty bearer token").await;
    let r = app.client.post(format!("{}/tenants/acme/secrets/x", app.base)).send().await.expect("sent");
    unauthenticated(r, "POST without Authorization").await;
    let r = app.call(Method::PUT, "/tenants/acme/secrets/x", None, Some(&json!({"value": "v"}))).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated", "PUT without a token");
    assert_eq!(app.get("/tenants/acme/secrets", ROOT_TOKEN).await.body["paths"], json!([]), "nothing was written");

    // Creating a key: 201 with the key, shown once.
    let created = app
        .client
        .post(format!("{}/api-keys", app.base))
        .bearer_auth(ROOT_TOKEN)
        .json(&json!({"name": "ci deploy", "role": "tenant_admin", "tenantId": "acme"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    let created: Value = created.json().await.expect("JSON");
    let id = created["id"].as_str().expect("id").to_owned();
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("tsr_") && key.len() > 40, "{key}");
    assert!(!id.is_empty() && !key.contains(&id), "{created}");
    assert_eq!(created["role"], "tenant_admin");
    assert_eq!(created["tenantId"], "acme");
    assert_eq!(created["name"], "ci deploy");

    let r = app.get("/api-keys", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains(&key) && !r.text.contains(&key[4..]), "the list never shows a key: {}", r.text);
    let listed = r.body["apiKeys"].as_array().expect("apiKeys").iter().find(|k| k["id"] == id.as_str()).cloned();
    let listed = listed.unwrap_or_else(|| panic!("the new key is listed: {}", r.text));
    assert_eq!(
        (&listed["role"], &listed["tenantId"], &listed["name"]),
        (&json!("tenant_admin"), &json!("acme"), &json!("ci deploy"))
    );
    assert!(listed.get("key").is_none(), "{listed}");

    // It works, and stops working the moment it is deleted.
    assert_eq!(app.get("/tenants/acme/secrets", &key).await.status, StatusCode::OK);
    let r = app.delete(&format!("/api-keys/{id}"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get("/tenants/acme/secrets", &key).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated", "a deleted key");
    let r = app.get("/api-keys", ROOT_TOKEN).await;
    assert!(!r.text.contains(&id), "a deleted key is not listed: {}", r.text);
    let r = app.delete(&format!("/api-keys/{id}"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Bad key requests.
    let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": "x", "role": "tenant_admin"})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "tenant_required", "tenant_admin without tenantId");
    assert_eq!(r.body["error"]["field"], "tenantId", "{}", r.text);
    let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": "x", "role": "tenant_service", "tenantId": null})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "tenantId", "{}", r.text);
    for role in ["admin", "auditor"] {
        let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": "x", "role": role, "tenantId": "acme"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{role} with a tenantId: {}", r.text);
        assert_error_shape(&r, role);
        assert_eq!(r.body["error"]["field"], "tenantId", "{}", r.text);
    }
    let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": "x", "role": "superuser"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "role", "{}", r.text);

    // A tenant_admin creates tenant_service keys for its own tenant only, and no admin key.
    let tenant_admin = app.key("tenant_admin", Some("acme")).await;
    let r = app
        .post("/api-keys", &tenant_admin, json!({"name": "svc", "role": "tenant_service", "tenantId": "acme"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!((&r.body["role"], &r.body["tenantId"]), (&json!("tenant_service"), &json!("acme")));
    let service = r.body["key"].as_str().expect("key").to_owned();
    assert!(service.starts_with("tsr_"));
    assert_eq!(app.get("/tenants/acme/secrets", &service).await.status, StatusCode::OK);
    let r = app.put("/tenants/acme/secrets/x", &service, json!({"value": "v"})).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "the new tenant_service key writing");
    for role in ["admin", "auditor"] {
        let r = app.post("/api-keys", &tenant_admin, json!({"name": "up", "role": role})).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden", &format!("tenant_admin creating an {role} key"));
    }
    let r =
        app.post("/api-keys", &service, json!({"name": "more", "role": "tenant_service", "tenantId": "acme"})).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden", "tenant_service creating a key");
    let r = app.get("/api-keys", &tenant_admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for k in r.body["apiKeys"].as_array().expect("apiKeys") {
        assert_eq!(k["tenantId"], "acme", "a tenant_admin lists its own tenant's keys only: {}", r.text);
    }
    let r = app.get("/api-keys", ROOT_TOKEN).await;
    let admins = r.body["apiKeys"]
        .as_array()
        .expect("apiKeys")
        .iter()
        .filter(|k| k["role"] != "tenant_admin" && k["role"] != "tenant_service")
        .count();
    assert_eq!(admins, 0, "no admin or auditor key was created: {}", r.text);
}

async fn a_cross_tenant_attempt_is_audited_as_a_denial_of_the_named_tenant(app: TestApp) {
    two_tenants_with_beta_data(&app).await;
    let (admin_id, admin) = key_with_id(&app, "tenant_admin", Some("acme")).await;
    let (service_id, service) = key_with_id(&app, "tenant_service", Some("acme")).await;
    let r = app.get("/tenants/beta/secrets/stripe/KEY", &admin).await;
    assert_error(&r, StatusCode::NOT_FOUND, "tenant_not_found", "cross-tenant read");
    let r = app.put("/tenants/beta/secrets/stripe/KEY", &service, json!({"value": "nope"})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "tenant_not_found", "cross-tenant write");

    let r = app.get("/audit?action=auth.denied&limit=1000", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let events = r.body["events"].as_array().expect("events");
    for e in events {
        assert_eq!(e["action"], "auth.denied", "the action filter holds: {e}");
    }
    for (actor, role) in [(&admin_id, "tenant_admin"), (&service_id, "tenant_service")] {
        let found = events.iter().find(|e| e["actor"] == actor.as_str());
        let e = found.unwrap_or_else(|| panic!("no auth.denied event for {role} {actor}: {}", r.text));
        assert_eq!(e["outcome"], "denied", "{e}");
        assert_eq!(e["tenantId"], "beta", "{e}");
        assert_eq!(e["actorRole"], role, "{e}");
        assert!(e["resource"].as_str().is_some_and(|s| s.contains("beta")), "{e}");
    }
    assert!(!r.text.contains(BETA_STRIPE_SECRET) && !r.text.contains("nope"), "{}", r.text);

    // The denial shows in the named tenant's audit view too, and the chain still verifies.
    let r = app.get("/audit?tenantId=beta&action=auth.denied", ROOT_TOKEN).await;
    assert_eq!(r.body["events"].as_array().expect("events").len(), 2, "{}", r.text);
    let r = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(r.body["ok"], true, "{}", r.text);

    // An unknown token is a denial as well (no tenant).
    let before = app.get("/audit?action=auth.denied&limit=1000", ROOT_TOKEN).await.body["events"]
        .as_array()
        .expect("events")
        .len();
    let r = app.get("/tenants", "tsr_wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.get("/audit?action=auth.denied&limit=1000", ROOT_TOKEN).await;
    let events = r.body["events"].as_array().expect("events");
    assert_eq!(events.len(), before + 1, "{}", r.text);
    let last = events.last().expect("event");
    assert_eq!((&last["outcome"], &last["tenantId"]), (&json!("denied"), &Value::Null), "{last}");
    assert!(!r.text.contains("tsr_wrong"), "a presented token is never audited: {}", r.text);
}

on_every_store!(
    a_tenant_bound_key_naming_another_tenant_gets_not_found_and_changes_nothing,
    a_tenant_bound_key_reads_its_own_tenant_and_only_a_tenant_admin_writes,
    each_role_gets_exactly_the_routes_it_is_allowed,
    a_request_without_a_valid_token_is_unauthenticated_and_deleted_keys_stop_working,
    a_cross_tenant_attempt_is_audited_as_a_denial_of_the_named_tenant,
);

#[tokio::test]
async fn the_key_list_says_when_each_key_was_last_used() {
    let app = TestApp::sqlite().await;
    app.tenant("acme").await;
    let (id, key) = key_with_id(&app, "tenant_admin", Some("acme")).await;
    let listed = app.get("/api-keys", ROOT_TOKEN).await;
    let entry = |list: &Resp| {
        list.body["apiKeys"].as_array().cloned().unwrap_or_default().into_iter().find(|k| k["id"] == id.as_str())
    };
    assert_eq!(entry(&listed).expect("listed")["lastUsedAt"], Value::Null, "{}", listed.text);
    assert_eq!(app.get("/tenants/acme", &key).await.status, StatusCode::OK);
    // Written off the request's path: give it a moment.
    let mut last = Value::Null;
    for _ in 0..50 {
        last = entry(&app.get("/api-keys", ROOT_TOKEN).await).expect("listed")["lastUsedAt"].clone();
        if last.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(last.as_str().is_some_and(|t| t.ends_with('Z')), "{last}");
}
