//! `/openapi.json` is a valid OpenAPI document (checked by
//! `openapi-spec-validator`, from `scripts/services.sh`) and true to the
//! answers the server gives (checked by fuzzing the running server with
//! `schemathesis`, every check on).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

mod answers;

/// The validator's path, or None (with a printed reason) outside CI.
fn validator() -> Option<String> {
    let Ok(path) = std::env::var("TESSERA_TEST_OPENAPI_VALIDATOR") else {
        assert!(
            std::env::var("CI").is_err(),
            "TESSERA_TEST_OPENAPI_VALIDATOR must be set in CI: the OpenAPI validation may not skip"
        );
        eprintln!("skipping: TESSERA_TEST_OPENAPI_VALIDATOR is not set (eval \"$(scripts/services.sh)\")");
        return None;
    };
    Some(path)
}

/// schemathesis' path, or None (with a printed reason) outside CI.
fn schemathesis() -> Option<String> {
    let Ok(path) = std::env::var("TESSERA_TEST_SCHEMATHESIS") else {
        assert!(
            std::env::var("CI").is_err(),
            "TESSERA_TEST_SCHEMATHESIS must be set in CI: the API fuzzing may not skip"
        );
        eprintln!("skipping: TESSERA_TEST_SCHEMATHESIS is not set (eval \"$(scripts/services.sh)\")");
        return None;
    };
    Some(path)
}

async fn document(app: &TestApp) -> Value {
    let r = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_passes_openapi_spec_validator() {
    let Some(validator) = validator() else { return };
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).expect("json")).expect("write");
    let out = std::process::Command::new(&validator)
        .arg("--validation-errors")
        .arg("all")
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused /openapi.json:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_openapi_document_declares_parameters_where_they_are_read_and_names_operations_once() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().expect("parameter name");
            let in_path = path.contains(&format!("{{{name}}}"));
            match p["in"].as_str() {
                Some("path") => assert!(in_path, "{method} {path}: {name} is declared in the path but is not in it"),
                Some("query") => assert!(!in_path, "{method} {path}: {name} is in the path but declared in the query"),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_documents_error_answers_with_the_error_body() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let public = op["security"].as_array().is_some_and(|s| s.iter().all(|r| r == &serde_json::json!({})));
        let mut expected = vec!["default"];
        if !public {
            expected.extend(["401", "403"]);
        }
        if path.contains('{') {
            expected.push("404");
        }
        for status in expected {
            let schema = &responses.get(status).unwrap_or_else(|| panic!("{method} {path} does not document {status}"))
                ["content"]["application/json"]["schema"];
            assert_eq!(schema["$ref"], "#/components/schemas/ErrorBody", "{method} {path} {status}");
        }
    }
}

/// Every JSON answer has a schema (none is described in words only, so a
/// client generated from the document gets a type for each); the answers
/// listed are not JSON of ours: text, a redirect, the document itself, or
/// an upstream's own answer.
#[tokio::test]
async fn every_json_answer_the_document_lists_has_a_schema() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    let not_ours = ["healthz", "readyz", "getMetrics", "getOpenApi", "completeAuthorization"];
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId");
        if not_ours.contains(&id) || id.starts_with("proxyCall") {
            continue;
        }
        for (status, answer) in op["responses"].as_object().expect("responses") {
            if !status.starts_with('2') || status == "204" {
                continue;
            }
            let schema = &answer["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {path} {status} ({id}) has no schema: {answer}");
        }
    }
    // What Tessera sends to a webhook's URL is described too.
    let delivery = &doc["webhooks"]["delivery"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(delivery["$ref"], "#/components/schemas/WebhookDelivery", "{}", doc["webhooks"]);
}

/// The document lists every error code, and the answers the API gives to
/// faults in each part of a request carry codes from that list.
#[tokio::test]
async fn every_error_code_answered_is_one_the_document_lists() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    let code = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"];
    let listed: Vec<&str> =
        code["enum"].as_array().expect("an enum of codes").iter().filter_map(Value::as_str).collect();
    assert!(listed.len() > 100, "{listed:?}");
    let described = code["description"].as_str().expect("described");
    for c in &listed {
        assert!(described.contains(&format!("`{c}`")), "{c} is explained");
    }
    let long = format!("/tenants/{}", "a".repeat(9000));
    let client = &app.client;
    let answers = [
        client.get(format!("{}/tenants/ghost/integrations", app.base)).bearer_auth(ROOT_TOKEN),
        client.get(format!("{}/tenants/acme/secrets/a?version=abc", app.base)).bearer_auth(ROOT_TOKEN),
        client.get(format!("{}/tenants/Not%20An%20Id", app.base)).bearer_auth(ROOT_TOKEN),
        client.post(format!("{}/tenants", app.base)).bearer_auth(ROOT_TOKEN).body("{}"),
        client
            .post(format!("{}/tenants", app.base))
            .bearer_auth(ROOT_TOKEN)
            .header("content-type", "application/json")
            .body("{"),
        client.post(format!("{}/tenants", app.base)).bearer_auth(ROOT_TOKEN).json(&serde_json::json!([1])),
        client.delete(format!("{}/configs", app.base)).bearer_auth(ROOT_TOKEN),
        client.get(format!("{}/no/such/route", app.base)).bearer_auth(ROOT_TOKEN),
        client.get(format!("{}{long}", app.base)).bearer_auth(ROOT_TOKEN),
        client.get(format!("{}/tenants", app.base)).bearer_auth("tsr_not_a_key"),
    ];
    for request in answers {
        let r = request.send().await.expect("answer");
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let answered = body["error"]["code"].as_str().unwrap_or_else(|| panic!("{status}: no error code in {body}"));
        assert!(listed.contains(&answered), "{status} answered {answered}, which the document does not list");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_templates_answer_and_the_secret_write_body_as_they_are() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    // GET /integrations/templates answers {"templates": [...]}.
    let answer = app.get("/integrations/templates", ROOT_TOKEN).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(answer.body["templates"].is_array(), "{}", answer.text);
    let schema =
        &doc["paths"]["/integrations/templates"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    let name = schema["$ref"].as_str().expect("a named schema").rsplit('/').next().expect("name");
    let documented = &doc["components"]["schemas"][name];
    assert_eq!(documented["type"], "object", "{documented}");
    assert_eq!(documented["properties"]["templates"]["type"], "array", "{documented}");
    // A secret write needs one of value and data, never both.
    let body = &doc["components"]["schemas"]["WriteBody"];
    let variants = body["oneOf"].as_array().unwrap_or_else(|| panic!("WriteBody is not a oneOf: {body}"));
    let required: BTreeSet<String> = variants
        .iter()
        .map(|v| {
            v["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|r| r.as_str().expect("name").to_owned())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert_eq!(required, BTreeSet::from(["data".to_owned(), "value".to_owned()]));
    // The server takes `"cas": null` as no check-and-set: the schema says so.
    app.tenant("acme").await;
    let r = app
        .put(
            "/tenants/acme/secrets/a",
            ROOT_TOKEN,
            serde_json::json!({"value": 1, "cas": null, "rotateAfterDays": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for v in variants {
        for field in ["cas", "rotateAfterDays"] {
            let ty = &v["properties"][field]["type"];
            assert!(ty.as_array().is_some_and(|t| t.contains(&serde_json::json!("null"))), "{field}: {ty}");
        }
    }
    // Slugs carry their pattern; roles are an enum.
    let tenant = &doc["components"]["schemas"]["NewTenant"]["properties"]["id"];
    assert_eq!(tenant["pattern"], "^[a-z0-9][a-z0-9_-]{0,62}$", "{tenant}");
    let key = &doc["components"]["schemas"]["NewKey"];
    let roles: BTreeSet<String> = key["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("NewKey is not a oneOf: {key}"))
        .iter()
        .flat_map(|v| v["properties"]["role"]["enum"].as_array().expect("roles").clone())
        .map(|r| r.as_str().expect("role").to_owned())
        .collect();
    assert_eq!(roles, BTreeSet::from(["admin", "tenant_admin", "tenant_service", "auditor"].map(str::to_owned)));
    let param = doc["paths"]["/tenants/{tenantId}"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "tenantId")
        .expect("tenantId")
        .clone();
    assert!(param["schema"]["pattern"].as_str().is_some(), "{param}");
}

/// The operations whose answers a JSON Schema cannot fully predict, and why
/// (see the file's comments).
const SCHEMATHESIS_SETTINGS: &str = include_str!("schemathesis.toml");

#[tokio::test]
async fn schemathesis_finds_no_server_error_no_non_json_error_and_no_answer_the_document_does_not_describe() {
    let Some(schemathesis) = schemathesis() else { return };
    // The default body limit (the harness's 64 KiB would turn a long token
    // into a 413 before validation), and no limit on failed authentications
    // (schemathesis sends many requests without a token and expects 401).
    let app =
        TestApp::start(Db::Sqlite, &[("TESSERA_MAX_BODY_BYTES", "1048576"), ("TESSERA_RATE_LIMIT_ANONYMOUS", "off")])
            .await;
    // Fixtures, so that reads and writes reach more than a 404.
    app.tenant("acme").await;
    let demo = serde_json::json!({"key": "demo", "name": "Demo",
        "configSchema": {"type": "object", "properties": {"region": {"type": "string"}}}});
    let r = app.post("/integrations", ROOT_TOKEN, demo).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .put("/tenants/acme/integrations/demo/config", ROOT_TOKEN, serde_json::json!({"config": {"region": "eu"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.put("/tenants/acme/secrets/app/token", ROOT_TOKEN, serde_json::json!({"value": "s3cr3t"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Reads and writes name the fixtures. Deleting a tenant or an
    // integration is fuzzed in a second run without them: the first run's
    // stateful phase would follow its links (from the lists) to delete the
    // fixtures mid-run.
    let fixtures = r#"
[[operations]]
include-method = ["GET", "PUT", "POST"]
parameters = { tenantId = "acme", key = "demo" }
"#;
    let with_fixtures = app.dir.path().join("schemathesis-fixtures.toml");
    std::fs::write(&with_fixtures, format!("{SCHEMATHESIS_SETTINGS}{fixtures}")).expect("write settings");
    let plain = app.dir.path().join("schemathesis.toml");
    std::fs::write(&plain, SCHEMATHESIS_SETTINGS).expect("write settings");
    let deletes = ["deleteTenant", "deleteIntegration"];
    let everything_else = deletes.iter().flat_map(|id| ["--exclude-operation-id", id]);
    run_schemathesis(&app, &schemathesis, &with_fixtures, everything_else).await;
    run_schemathesis(&app, &schemathesis, &plain, deletes.iter().flat_map(|id| ["--include-operation-id", id])).await;
}

/// Runs schemathesis with every check against the app; fails on any failure.
async fn run_schemathesis<'a>(
    app: &TestApp,
    schemathesis: &str,
    settings: &std::path::Path,
    selection: impl IntoIterator<Item = &'a str>,
) {
    let started = std::time::Instant::now();
    let run = tokio::process::Command::new(schemathesis)
        .arg("--config-file")
        .arg(settings)
        .arg("run")
        .arg(format!("{}/openapi.json", app.base))
        .args(["--checks", "all", "--max-examples", "25", "--request-timeout", "30", "--no-color"])
        .args(["--generation-database", "none", "--header", &format!("Authorization: Bearer {ROOT_TOKEN}")])
        .args(selection)
        .current_dir(app.dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(420), run)
        .await
        .expect("schemathesis finishes within 7 minutes")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The summary (operations, test cases, failures, seed to replay) for the log.
    let summary = stdout.rsplit_once("SUMMARY").map_or(stdout.as_ref(), |(_, s)| s);
    eprintln!("schemathesis ran {:.0?}:{summary}", started.elapsed());
    assert!(
        out.status.success(),
        "schemathesis found answers the document does not describe:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The document (and so the client libraries generated from it) speaks of
/// features, never of the documents the project started from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_features_not_the_projects_source_documents() {
    let app = TestApp::start(Db::Sqlite, &[]).await;
    let text = document(&app).await.to_string().to_lowercase();
    for word in ["seed 0", "seed's", "seeds 0", "issue 1", "issue 2"] {
        assert!(!text.contains(word), "/openapi.json says {word:?}");
    }
}
