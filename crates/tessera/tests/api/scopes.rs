//! Scoped API keys (least privilege): a key created with scopes may do only
//! what one of them allows, on the native API and on the Vault-compatible
//! API alike; everything else is 403 (another tenant stays 404), and every
//! refusal is audited under the key's id.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_both_databases;

async fn scoped_key(app: &TestApp, role: &str, scopes: Value) -> (String, String) {
    let r = app
        .post("/api-keys", ROOT_TOKEN, json!({"name": "scoped", "role": role, "tenantId": "acme", "scopes": scopes}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["scopes"].as_array().map(Vec::len), scopes.as_array().map(Vec::len), "{}", r.text);
    (r.body["id"].as_str().expect("id").to_owned(), r.body["key"].as_str().expect("key").to_owned())
}

async fn a_scoped_key_does_only_what_its_scopes_allow(app: TestApp) {
    app.tenant("acme").await;
    app.tenant("globex").await;
    let schema = json!({"type": "object", "properties": {"token": {"type": "string", "x-secret": true}, "region": {"type": "string"}}});
    app.integration("notion", schema.clone()).await;
    app.integration("langfuse", schema).await;
    for key in ["notion", "langfuse"] {
        let r = app
            .put(
                &format!("/tenants/acme/integrations/{key}/config"),
                ROOT_TOKEN,
                json!({"config": {"token": format!("tok-{key}"), "region": "eu"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    for path in ["stripe/api-key", "github/token"] {
        let r =
            app.put(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN, json!({"value": format!("v-{path}")})).await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    let (id, key) = scoped_key(
        &app,
        "tenant_admin",
        json!([{"secrets": "stripe/*", "access": "read"}, {"secrets": "app/*", "access": "write"},
               {"integration": "notion", "access": "read"}]),
    )
    .await;

    // Inside the scopes.
    let r = app.get("/tenants/acme/secrets/stripe/api-key", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get("/tenants/acme/secrets?prefix=stripe/", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/app/db-password", &key, json!({"value": "p"})).await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app.get("/tenants/acme/integrations/notion/resolved", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Outside them: 403, whatever the role alone would allow.
    for (what, r) in [
        (
            "write under a read scope",
            app.put("/tenants/acme/secrets/stripe/api-key", &key, json!({"value": "x"})).await,
        ),
        ("another path", app.get("/tenants/acme/secrets/github/token", &key).await),
        ("listing everything", app.get("/tenants/acme/secrets", &key).await),
        ("another integration", app.get("/tenants/acme/integrations/langfuse/resolved", &key).await),
        (
            "config write under a read scope",
            app.put("/tenants/acme/integrations/notion/config", &key, json!({"config": {"region": "us"}})).await,
        ),
        ("the tenant itself", app.get("/tenants/acme", &key).await),
        (
            "minting a key",
            app.post("/api-keys", &key, json!({"name": "wider", "role": "tenant_admin", "tenantId": "acme"})).await,
        ),
        ("webhooks", app.get("/tenants/acme/webhooks", &key).await),
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "forbidden", "{what}: {}", r.text);
    }
    // Another tenant is still "not found", as for any tenant-bound key.
    let r = app.get("/tenants/globex/secrets/stripe/api-key", &key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // The same rules on the Vault-compatible API.
    let client = reqwest::Client::new();
    let read =
        |path: &str| client.get(format!("{}/v1/secret/data/{path}", app.base)).header("X-Vault-Token", &key).send();
    let ok = read("stripe/api-key").await.expect("answer");
    assert_eq!(ok.status(), StatusCode::OK);
    let refused = read("github/token").await.expect("answer");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.json::<Value>().await.expect("json")["errors"][0], "permission denied");

    // Every refusal is audited under the key.
    let audit = app.get(&format!("/audit?actor={id}&outcome=denied&limit=100"), ROOT_TOKEN).await;
    let denied = audit.body["events"].as_array().map_or(0, Vec::len);
    assert!(denied >= 9, "{}", audit.text);

    // A scoped key cannot open a console session.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/console/sign-in", app.base))
        .form(&[("token", key.as_str())])
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn scopes_are_checked_when_the_key_is_made(app: TestApp) {
    app.tenant("acme").await;
    for (body, code) in [
        (json!({"name": "a", "role": "admin", "scopes": [{"secrets": "*", "access": "read"}]}), "invalid_scopes"),
        (
            json!({"name": "a", "role": "tenant_service", "tenantId": "acme", "scopes": [{"secrets": "*", "access": "write"}]}),
            "invalid_scopes",
        ),
        (json!({"name": "a", "role": "tenant_admin", "tenantId": "acme", "scopes": []}), "invalid_scopes"),
        (
            json!({"name": "a", "role": "tenant_admin", "tenantId": "acme", "scopes": [{"secrets": "a/*/b", "access": "read"}]}),
            "invalid_scopes",
        ),
        (
            json!({"name": "a", "role": "tenant_admin", "tenantId": "acme", "scopes": [{"secrets": "_config/*", "access": "read"}]}),
            "invalid_scopes",
        ),
        (
            json!({"name": "a", "role": "tenant_admin", "tenantId": "acme", "scopes": [{"access": "read"}]}),
            "invalid_scopes",
        ),
        (
            json!({"name": "a", "role": "tenant_admin", "tenantId": "acme", "scopes": [{"integration": "n", "access": "own"}]}),
            "invalid_scopes",
        ),
    ] {
        let r = app.post("/api-keys", ROOT_TOKEN, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["code"], code, "{body}: {}", r.text);
    }
    // A read-only scoped service key reads within its scope and nothing else.
    let (_, key) = scoped_key(&app, "tenant_service", json!([{"secrets": "stripe/api-key", "access": "read"}])).await;
    let r = app.put("/tenants/acme/secrets/stripe/api-key", ROOT_TOKEN, json!({"value": "v"})).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(app.get("/tenants/acme/secrets/stripe/api-key", &key).await.status, StatusCode::OK);
    assert_eq!(app.get("/tenants/acme/secrets/stripe/api-key2", &key).await.status, StatusCode::FORBIDDEN);
    // The key list shows the scopes (never the key).
    let list = app.get("/api-keys", ROOT_TOKEN).await;
    assert!(list.text.contains("stripe/api-key") && !list.text.contains(&key), "{}", list.text);
}

on_both_databases!(a_scoped_key_does_only_what_its_scopes_allow, scopes_are_checked_when_the_key_is_made);
