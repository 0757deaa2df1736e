//! Answers of the running server checked against its own `/openapi.json`,
//! for the ones that were once described in words only: the resolved view
//! and a secret read (written as bytes from zeroizing buffers), `?versions`,
//! the webhook and API key creation answers (each written around the secret
//! it shows once), the lists of tenants, integrations, API keys and matching
//! connections, and a real webhook delivery with its headers (the document's
//! `webhooks` section). Each real answer must validate against the schema
//! its operation names, with every `$ref` resolved in the document; and each
//! schema must refuse a body that is not the answer (a missing field, a value
//! and data at once), so that it says something.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Db, TestApp, ROOT_TOKEN};
use crate::webhooks::Receiver;

/// A schema of the document, compiled with the document's components, so
/// its `$ref`s (`#/components/schemas/...`) resolve as they do for a client.
struct Schema {
    validator: jsonschema::Validator,
    name: String,
}

impl Schema {
    fn new(doc: &Value, name: &str, schema: &Value) -> Self {
        assert!(schema.is_object(), "{name}: no schema in the document");
        let mut root = schema.clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["components"] = doc["components"].clone();
        let validator = jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{name}: {e}"));
        Self { validator, name: name.to_owned() }
    }

    /// The schema of an operation's JSON answer with `status`.
    fn answer(doc: &Value, path: &str, method: &str, status: &str) -> Self {
        let schema = &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
        Self::new(doc, &format!("{method} {path} {status}"), schema)
    }

    /// A named component.
    fn component(doc: &Value, name: &str) -> Self {
        Self::new(doc, name, &json!({"$ref": format!("#/components/schemas/{name}")}))
    }

    fn assert_valid(&self, what: &str, instance: &Value) {
        let errors: Vec<String> =
            self.validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{what} does not match {}: {errors:?}\n{instance}", self.name);
    }

    fn assert_refused(&self, what: &str, instance: &Value) {
        assert!(!self.validator.is_valid(instance), "{} accepts {what}: {instance}", self.name);
    }
}

/// `value` without `key`.
fn without(value: &Value, key: &str) -> Value {
    let mut v = value.clone();
    v.as_object_mut().expect("an object").remove(key);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_once_described_in_words_and_a_webhook_delivery_match_their_schemas_in_the_document() {
    let app = TestApp::start(
        Db::Sqlite,
        &[
            ("TESSERA_WEBHOOK_INTERVAL", "1"),
            ("TESSERA_WEBHOOK_RETRY_BASE", "1"),
            ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
        ],
    )
    .await;
    let doc = super::document(&app).await;
    let rx = Receiver::start().await;
    app.tenant("acme").await;

    // The webhook creation answer: a WebhookView and the secret.
    let created =
        app.post("/tenants/acme/webhooks", ROOT_TOKEN, json!({"url": rx.url, "events": ["credential.stored"]})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let schema = Schema::answer(&doc, "/tenants/{tenantId}/webhooks", "post", "201");
    schema.assert_valid("the webhook creation answer", &created.body);
    schema.assert_refused("an answer without the secret", &without(&created.body, "secret"));
    schema.assert_refused("an answer without the webhook's id", &without(&created.body, "id"));
    let secret = created.body["secret"].as_str().expect("the secret").to_owned();

    // The resolved view, with a default, a tenant override, a decrypted
    // secret field and an access token.
    app.integration(
        "crm",
        json!([{"key": "base_url", "type": "string"}, {"key": "region", "type": "string"},
               {"key": "api_key", "type": "secret"}]),
    )
    .await;
    let r =
        app.put("/integrations/crm/defaults", ROOT_TOKEN, json!({"config": {"base_url": "https://crm.example"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .put(
            "/tenants/acme/integrations/crm/config",
            ROOT_TOKEN,
            json!({"config": {"region": "eu", "api_key": "crm_schema_key_1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            "/tenants/acme/integrations/crm/credentials",
            ROOT_TOKEN,
            json!({"accessToken": "crm_schema_access_1", "expiresIn": 3600, "scopes": ["read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let resolved = app.get("/tenants/acme/integrations/crm/resolved", ROOT_TOKEN).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    assert_eq!(resolved.body["config"]["api_key"], "crm_schema_key_1", "{}", resolved.text);
    assert_eq!(resolved.body["config"]["accessToken"], "crm_schema_access_1", "{}", resolved.text);
    let schema = Schema::answer(&doc, "/tenants/{tenantId}/integrations/{key}/resolved", "get", "200");
    schema.assert_valid("the resolved view", &resolved.body);
    schema.assert_refused("a view without its config", &without(&resolved.body, "config"));
    schema.assert_refused(
        "a view whose config is a string",
        &json!({"tenantId": "acme", "integration": "crm", "config": "x"}),
    );

    // A secret read: a single value, a map of fields, an older version, and `?versions`.
    for (path, body) in [
        ("app/token", json!({"value": "sk_schema_1"})),
        ("app/token", json!({"value": {"nested": [1, 2]}})),
        ("app/db", json!({"data": {"user": "u", "password": "pw_schema_1"}})),
    ] {
        let r = app.put(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let schema = Schema::answer(&doc, "/tenants/{tenantId}/secrets/{path}", "get", "200");
    let (read, metadata) = (Schema::component(&doc, "SecretRead"), Schema::component(&doc, "SecretMetadataView"));
    for query in ["app/token", "app/token?version=1", "app/db"] {
        let r = app.get(&format!("/tenants/acme/secrets/{query}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        schema.assert_valid(query, &r.body);
        read.assert_valid(query, &r.body);
        metadata.assert_refused("a value as metadata", &r.body);
        let both = {
            let mut b = r.body.clone();
            b["data"] = json!({"a": 1});
            b["value"] = json!("v");
            b
        };
        schema.assert_refused("a read with both value and data", &both);
        schema.assert_refused("a read without its version", &without(&r.body, "version"));
    }
    let r = app.get("/tenants/acme/secrets/app/token?versions", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["versions"].as_array().map(Vec::len), Some(2), "{}", r.text);
    schema.assert_valid("?versions", &r.body);
    metadata.assert_valid("?versions", &r.body);
    read.assert_refused("metadata as a value", &r.body);
    schema.assert_refused("metadata without its versions", &without(&r.body, "versions"));

    // A real delivery (the credential stored above): body and headers.
    let got = rx.wait_for("credential.stored", 1, &secret).await;
    let delivery = &doc["webhooks"]["delivery"]["post"];
    let body =
        Schema::new(&doc, "webhooks.delivery", &delivery["requestBody"]["content"]["application/json"]["schema"]);
    let sent = got[0].json();
    body.assert_valid("a webhook delivery", &sent);
    let mut unknown = sent.clone();
    unknown["event"] = json!("no.such_event");
    body.assert_refused("a delivery of an unknown event", &unknown);
    body.assert_refused("a delivery without its id", &without(&sent, "id"));
    for p in delivery["parameters"].as_array().expect("the delivery's headers") {
        let name = p["name"].as_str().expect("a header name");
        assert_eq!(p["in"], "header", "{p}");
        let header = Schema::new(&doc, name, &p["schema"]);
        header.assert_valid(name, &json!(got[0].header(name)));
    }
    // The lists, and the API key creation answer (the key shown once).
    let r = app
        .post("/api-keys", ROOT_TOKEN, json!({"name": "acme backend", "role": "tenant_service", "tenantId": "acme"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let schema = Schema::answer(&doc, "/api-keys", "post", "201");
    schema.assert_valid("the API key creation answer", &r.body);
    schema.assert_refused("an answer without the key", &without(&r.body, "key"));
    let r = app.post("/api-keys", ROOT_TOKEN, json!({"name": "ops", "role": "admin"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    schema.assert_valid("an admin key's creation answer", &r.body);
    for (path, op) in [
        ("/api-keys", "/api-keys"),
        ("/tenants", "/tenants"),
        ("/integrations", "/integrations"),
        ("/integrations/crm/connections?config.region=eu", "/integrations/{key}/connections"),
    ] {
        let r = app.get(path, ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let list = r.body.as_object().and_then(|o| o.values().find_map(Value::as_array)).expect("a list");
        assert!(!list.is_empty(), "{path}: {}", r.text);
        let schema = Schema::answer(&doc, op, "get", "200");
        schema.assert_valid(path, &r.body);
        schema.assert_refused("a bare list", &json!(list));
    }

    app.assert_plaintext_absent(&["crm_schema_key_1", "crm_schema_access_1", "sk_schema_1", "pw_schema_1"], &[]).await;
}
