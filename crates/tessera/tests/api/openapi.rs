//! `/openapi.json` is a valid OpenAPI document (checked by
//! `openapi-spec-validator`, from `scripts/services.sh`) and true to the
//! answers the server gives.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, ROOT_TOKEN};

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
    let role = &doc["components"]["schemas"]["NewKey"]["properties"]["role"];
    assert_eq!(role["enum"], serde_json::json!(["admin", "tenant_admin", "tenant_service", "auditor"]), "{role}");
    let param = doc["paths"]["/tenants/{tenantId}"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "tenantId")
        .expect("tenantId")
        .clone();
    assert!(param["schema"]["pattern"].as_str().is_some(), "{param}");
}
