//! Defaults, overrides, the resolved view and the config list: seed 003's
//! three E2E scenarios, seed 000's Langfuse example, queries, and the
//! guarantees around them (validation, masking, plaintext never stored).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_both_databases;
use crate::on_every_store;

/// Seed 003's integration: a public base_url and a secret api_key, both required.
async fn secret_integration(app: &TestApp, key: &str) {
    app.integration(
        key,
        json!([
            {"key": "base_url", "type": "string", "required": true},
            {"key": "api_key", "type": "secret", "required": true},
        ]),
    )
    .await;
}

fn find<'a>(configs: &'a Value, key: &str, scope: &str) -> Option<&'a Value> {
    configs["configs"].as_array()?.iter().find(|c| c["key"] == key && c["scope"] == scope)
}

async fn secret_defaults_are_encrypted_and_masked_with_type_secret(app: TestApp) {
    secret_integration(&app, "e2e_secret_test").await;
    let r = app
        .put(
            "/integrations/e2e_secret_test/defaults",
            ROOT_TOKEN,
            json!({"config": {"base_url": "https://api.example.com", "api_key": "super-secret-key-12345"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["config"]["api_key"], "[SECRET]");
    let list = app.get("/configs", ROOT_TOKEN).await;
    assert_eq!(list.status, StatusCode::OK);
    let api_key = find(&list.body, "api_key", "global").expect("api_key listed");
    assert_eq!(api_key["type"], "secret");
    assert_eq!(api_key["value"], "[SECRET]");
    assert_eq!(api_key["integrationKey"], "e2e_secret_test");
    assert_eq!(api_key["integrationName"], "Integration e2e_secret_test");
    assert!(api_key["updatedAt"].is_string() && api_key["updatedBy"] == "root");
    let base = find(&list.body, "base_url", "global").expect("base_url listed");
    assert_eq!(base["value"], "https://api.example.com");
    assert_eq!(base["type"], "string");
    let defaults = app.get("/integrations/e2e_secret_test/defaults", ROOT_TOKEN).await;
    app.assert_plaintext_absent(&["super-secret-key-12345"], &[&list, &defaults]).await;
}

async fn a_secret_default_round_trips_through_the_resolved_view(app: TestApp) {
    secret_integration(&app, "roundtrip").await;
    app.tenant("org1").await;
    app.put(
        "/integrations/roundtrip/defaults",
        ROOT_TOKEN,
        json!({"config": {"base_url": "https://api.example.com", "api_key": "my-secret-api-key"}}),
    )
    .await;
    let r = app.put("/tenants/org1/integrations/roundtrip/config", ROOT_TOKEN, json!({"config": {}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let sdk = app.key("tenant_service", Some("org1")).await;
    let r = app.get("/tenants/org1/integrations/roundtrip/resolved", &sdk).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["tenantId"], "org1");
    assert_eq!(r.body["integration"], "roundtrip");
    assert_eq!(r.body["config"]["base_url"], "https://api.example.com");
    assert_eq!(r.body["config"]["api_key"], "my-secret-api-key");
    let audit = app.get("/audit?action=config.resolve", ROOT_TOKEN).await;
    assert_eq!(audit.body["events"].as_array().expect("events").len(), 1, "the resolved read is audited");
    app.assert_plaintext_absent(&["my-secret-api-key"], &[&app.get("/configs", ROOT_TOKEN).await]).await;
}

/// The resolved view and the connection view read tenant, integration and
/// connection in one statement; the errors keep their order.
async fn what_is_missing_is_named_in_order_and_a_disabled_connection_is_refused(app: TestApp) {
    secret_integration(&app, "ordered").await;
    app.tenant("org1").await;
    app.tenant("org2").await;
    let code = |r: &crate::helpers::Resp| (r.status, r.body["error"]["code"].as_str().map(str::to_owned));
    let not_found = |c: &str| (StatusCode::NOT_FOUND, Some(c.to_owned()));
    for suffix in ["", "/resolved"] {
        let r = app.get(&format!("/tenants/ghost/integrations/nope{suffix}"), ROOT_TOKEN).await;
        assert_eq!(code(&r), not_found("tenant_not_found"), "{suffix}: {}", r.text);
        let r = app.get(&format!("/tenants/ghost/integrations/ordered{suffix}"), ROOT_TOKEN).await;
        assert_eq!(code(&r), not_found("tenant_not_found"), "{suffix}: {}", r.text);
        let r = app.get(&format!("/tenants/org1/integrations/nope{suffix}"), ROOT_TOKEN).await;
        assert_eq!(code(&r), not_found("integration_not_found"), "{suffix}: {}", r.text);
        let r = app.get(&format!("/tenants/org1/integrations/ordered{suffix}"), ROOT_TOKEN).await;
        assert_eq!(code(&r), not_found("connection_not_found"), "{suffix}: {}", r.text);
    }
    let config = json!({"config": {"base_url": "https://one", "api_key": "ordered-secret-1"}, "isEnabled": false});
    let r = app.put("/tenants/org1/integrations/ordered/config", ROOT_TOKEN, config).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get("/tenants/org2/integrations/ordered/resolved", ROOT_TOKEN).await;
    assert_eq!(code(&r), not_found("connection_not_found"), "another tenant's connection is not found: {}", r.text);
    let r = app.get("/tenants/org1/integrations/ordered", ROOT_TOKEN).await;
    assert_eq!((r.status, &r.body["isEnabled"]), (StatusCode::OK, &json!(false)), "{}", r.text);
    assert_eq!(r.body["config"], json!({"base_url": "https://one"}));
    let r = app.get("/tenants/org1/integrations/ordered/resolved", ROOT_TOKEN).await;
    assert_eq!(code(&r), (StatusCode::CONFLICT, Some("connection_disabled".to_owned())), "{}", r.text);
    let r = app
        .put("/tenants/org1/integrations/ordered/config", ROOT_TOKEN, json!({"config": {}, "isEnabled": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get("/tenants/org1/integrations/ordered/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"], json!({"base_url": "https://one", "api_key": "ordered-secret-1"}), "{}", r.text);
    // A new version of the secret is what the next read sees.
    app.put(
        "/tenants/org1/integrations/ordered/config",
        ROOT_TOKEN,
        json!({"config": {"api_key": "ordered-secret-2"}}),
    )
    .await;
    let r = app.get("/tenants/org1/integrations/ordered/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"]["api_key"], "ordered-secret-2", "{}", r.text);
}

async fn a_tenant_secret_override_wins_while_base_url_comes_from_the_default(app: TestApp) {
    secret_integration(&app, "override").await;
    app.tenant("org1").await;
    app.tenant("org2").await;
    app.put(
        "/integrations/override/defaults",
        ROOT_TOKEN,
        json!({"config": {"base_url": "https://api.default.com", "api_key": "default-key"}}),
    )
    .await;
    let r = app
        .put(
            "/tenants/org1/integrations/override/config",
            ROOT_TOKEN,
            json!({"config": {"api_key": "org-specific-secret-key"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["secretFields"], json!(["api_key"]));
    assert_eq!(r.body["config"], json!({}), "the secret is not in the public config");
    app.put("/tenants/org2/integrations/override/config", ROOT_TOKEN, json!({"config": {}})).await;
    let r = app.get("/tenants/org1/integrations/override/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"]["api_key"], "org-specific-secret-key");
    assert_eq!(r.body["config"]["base_url"], "https://api.default.com");
    let r = app.get("/tenants/org2/integrations/override/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"]["api_key"], "default-key", "another tenant still sees the default");
    let list = app.get("/configs?tenantId=org1&integration=override", ROOT_TOKEN).await;
    let o = find(&list.body, "api_key", "tenant").expect("override listed");
    assert_eq!(
        (o["value"].as_str(), o["type"].as_str(), o["tenantId"].as_str()),
        (Some("[SECRET]"), Some("secret"), Some("org1"))
    );
    let conn = app.get("/tenants/org1/integrations/override", ROOT_TOKEN).await;
    app.assert_plaintext_absent(&["org-specific-secret-key", "default-key"], &[&list, &conn]).await;
}

async fn the_langfuse_example_of_seed_000_works_as_documented(app: TestApp) {
    let schema = json!({
        "type": "object",
        "properties": {
            "public_key": {"type": "string"},
            "base_url": {"type": "string", "default": "https://cloud.langfuse.com"},
            "project_id": {"type": "string"},
            "timeout": {"type": "integer"},
            "secret_key": {"type": "string", "x-secret": true},
            "api_password": {"type": "string", "writeOnly": true}
        },
        "required": ["public_key", "project_id"]
    });
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "langfuse", "name": "Langfuse", "category": "observability", "authType": "api_key", "configSchema": schema}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.tenant("acme-corp").await;
    let r = app
        .put(
            "/tenants/acme-corp/integrations/langfuse/config",
            ROOT_TOKEN,
            json!({"config": {"public_key": "pk_lf_acme123"}, "isEnabled": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "project_id is required: {}", r.text);
    assert_eq!(r.body["error"]["field"], "config.project_id");
    let r = app
        .put(
            "/tenants/acme-corp/integrations/langfuse/config",
            ROOT_TOKEN,
            json!({"config": {"public_key": "pk_lf_acme123", "project_id": "proj_acme456", "timeout": 30,
                              "secret_key": "sk_lf_secret789", "api_password": "secure_password"}, "isEnabled": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let conn = app.get("/tenants/acme-corp/integrations/langfuse", ROOT_TOKEN).await;
    assert_eq!(
        conn.body["config"],
        json!({"public_key": "pk_lf_acme123", "project_id": "proj_acme456", "timeout": 30})
    );
    assert_eq!(conn.body["secretFields"], json!(["api_password", "secret_key"]));
    assert_eq!(conn.body["isEnabled"], true);
    assert_eq!(conn.body["healthStatus"], Value::Null);
    assert_eq!(conn.body["lastHealthCheck"], Value::Null);
    let r = app.get("/tenants/acme-corp/integrations/langfuse/resolved", ROOT_TOKEN).await;
    assert_eq!(
        r.body["config"],
        json!({"public_key": "pk_lf_acme123", "base_url": "https://cloud.langfuse.com", "project_id": "proj_acme456",
               "timeout": 30, "secret_key": "sk_lf_secret789", "api_password": "secure_password"})
    );
    let list = app.get("/tenants/acme-corp/integrations", ROOT_TOKEN).await;
    assert_eq!(list.body["tenantId"], "acme-corp");
    let item = &list.body["integrations"][0];
    assert_eq!(item["name"], "langfuse");
    assert_eq!(item["category"], "observability");
    assert_eq!(item["hasCredentials"], true);
    assert!(item["createdAt"].is_string());
    // health_status has a CHECK constraint: only the three values or NULL.
    let refused = app.try_sql("UPDATE connections SET health_status = 'great'").await;
    assert!(refused.is_err(), "the database must refuse health_status = 'great'");
    app.sql("UPDATE connections SET health_status = 'degraded'").await;
    app.assert_plaintext_absent(&["sk_lf_secret789", "secure_password"], &[&list, &conn]).await;
}

async fn wrong_types_unknown_fields_and_missing_requirements_change_nothing(app: TestApp) {
    app.integration(
        "typed",
        json!([{"key": "base_url", "type": "string", "required": true}, {"key": "retries", "type": "int"},
        {"key": "flag", "type": "bool"}, {"key": "api_key", "type": "secret"}]),
    )
    .await;
    app.tenant("acme").await;
    let ok = app
        .put(
            "/tenants/acme/integrations/typed/config",
            ROOT_TOKEN,
            json!({"config": {"base_url": "https://a", "retries": 3}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    for (body, field, status) in [
        (json!({"base_url": "https://b", "retries": "three"}), "config.retries", StatusCode::BAD_REQUEST),
        (json!({"flag": "yes"}), "config.flag", StatusCode::BAD_REQUEST),
        (json!({"api_key": 12345, "retries": 4}), "config.api_key", StatusCode::BAD_REQUEST),
        (json!({"api_kee": "typo-secret-value"}), "config.api_kee", StatusCode::BAD_REQUEST),
        (json!({"base_url": ""}), "config.base_url", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = app.put("/tenants/acme/integrations/typed/config", ROOT_TOKEN, json!({"config": body})).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
        assert!(
            !r.text.contains("12345") && !r.text.contains("typo-secret-value"),
            "errors never echo values: {}",
            r.text
        );
    }
    let conn = app.get("/tenants/acme/integrations/typed", ROOT_TOKEN).await;
    assert_eq!(conn.body["config"], json!({"base_url": "https://a", "retries": 3}), "a failed request changes nothing");
    assert_eq!(conn.body["secretFields"], json!([]));
    let r = app.put("/tenants/acme/integrations/nope/config", ROOT_TOKEN, json!({"config": {}})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("integration_not_found")));
    let r = app.put("/tenants/ghost/integrations/typed/config", ROOT_TOKEN, json!({"config": {}})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "bad", "name": "B", "configSchema": [{"key": "x", "type": "float"}]}),
        )
        .await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("configSchema[0].type")));
}

async fn an_empty_or_null_override_falls_back_to_the_default(app: TestApp) {
    secret_integration(&app, "fallback").await;
    app.tenant("acme").await;
    app.put(
        "/integrations/fallback/defaults",
        ROOT_TOKEN,
        json!({"config": {"base_url": "https://default", "api_key": "default-secret"}}),
    )
    .await;
    app.put(
        "/tenants/acme/integrations/fallback/config",
        ROOT_TOKEN,
        json!({"config": {"base_url": "https://mine", "api_key": "mine-secret"}}),
    )
    .await;
    let r = app.get("/tenants/acme/integrations/fallback/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"], json!({"base_url": "https://mine", "api_key": "mine-secret"}));
    let r = app
        .put(
            "/tenants/acme/integrations/fallback/config",
            ROOT_TOKEN,
            json!({"config": {"base_url": "", "api_key": null}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get("/tenants/acme/integrations/fallback/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"], json!({"base_url": "https://default", "api_key": "default-secret"}));
    let n = app.sql_text("SELECT CAST(COUNT(*) AS TEXT) FROM secrets WHERE tenant_id = 'acme'").await;
    assert_eq!(n, "0", "the removed secret override is gone from storage");
}

async fn public_config_is_queryable_across_tenants(app: TestApp) {
    app.integration("geo", json!([{"key": "region", "type": "string"}, {"key": "tier", "type": "int"}, {"key": "token", "type": "secret"}]))
        .await;
    for (t, region, tier) in [("a1", "eu", 1), ("a2", "us", 1), ("a3", "eu", 2)] {
        app.tenant(t).await;
        app.put(
            &format!("/tenants/{t}/integrations/geo/config"),
            ROOT_TOKEN,
            json!({"config": {"region": region, "tier": tier}}),
        )
        .await;
    }
    let ids = |r: &crate::helpers::Resp| -> Vec<String> {
        r.body["connections"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["tenantId"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids(&app.get("/integrations/geo/connections?config.region=eu", ROOT_TOKEN).await), ["a1", "a3"]);
    assert_eq!(ids(&app.get("/integrations/geo/connections?config.region=eu&config.tier=2", ROOT_TOKEN).await), ["a3"]);
    assert_eq!(ids(&app.get("/integrations/geo/connections?config.tier=1", ROOT_TOKEN).await), ["a1", "a2"]);
    assert_eq!(
        ids(&app.get("/integrations/geo/connections?config.region=mars", ROOT_TOKEN).await),
        Vec::<String>::new()
    );
    let r = app.get("/integrations/geo/connections?config.token=x", ROOT_TOKEN).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("secret_not_queryable")));
}

async fn a_ciphertext_moved_to_another_tenant_fails_to_decrypt(app: TestApp) {
    app.tenant("acme").await;
    app.tenant("beta").await;
    app.put("/tenants/acme/secrets/k", ROOT_TOKEN, json!({"value": "acme-only-secret"})).await;
    app.put("/tenants/beta/secrets/k", ROOT_TOKEN, json!({"value": "beta-secret"})).await;
    let acme_ct = app.sql_text("SELECT ciphertext FROM secret_versions WHERE tenant_id = 'acme' AND path = 'k'").await;
    app.sql(&format!("UPDATE secret_versions SET ciphertext = '{acme_ct}' WHERE tenant_id = 'beta' AND path = 'k'"))
        .await;
    let r = app.get("/tenants/beta/secrets/k", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "decryption_failed");
    assert!(r.body["error"]["message"].as_str().expect("message").contains("beta"), "{}", r.text);
    assert!(!r.text.contains("acme-only-secret"));
    // A tampered byte is caught the same way, never a panic.
    // (Another base64 character than the one there: the same one would change nothing.)
    let swapped = if &acme_ct[20..21] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &acme_ct[..20], &acme_ct[21..]);
    app.sql(&format!("UPDATE secret_versions SET ciphertext = '{tampered}' WHERE tenant_id = 'acme' AND path = 'k'"))
        .await;
    let r = app.get("/tenants/acme/secrets/k", ROOT_TOKEN).await;
    assert_eq!(r.body["error"]["code"], "decryption_failed", "{}", r.text);
    let audit = app.get("/audit?action=secret.read", ROOT_TOKEN).await;
    assert!(audit.body["events"].as_array().expect("events").iter().any(|e| e["outcome"] == "failure"));
}

async fn a_field_that_becomes_secret_is_masked_at_once_and_backfill_encrypts_it(mut app: TestApp) {
    app.integration("legacy", json!([{"key": "base_url", "type": "string"}, {"key": "token", "type": "string"}])).await;
    app.tenant("acme").await;
    app.put("/integrations/legacy/defaults", ROOT_TOKEN, json!({"config": {"token": "legacy-default-token"}})).await;
    let r = app
        .put(
            "/tenants/acme/integrations/legacy/config",
            ROOT_TOKEN,
            json!({"config": {"base_url": "https://a", "token": "legacy-plain-token"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let schema = json!([{"key": "base_url", "type": "string"}, {"key": "token", "type": "secret"}]);
    let r = app.put("/integrations/legacy", ROOT_TOKEN, json!({"name": "Legacy", "configSchema": schema})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Masked in every list view before backfill runs.
    let list = app.get("/configs?integration=legacy", ROOT_TOKEN).await;
    let conn = app.get("/tenants/acme/integrations/legacy", ROOT_TOKEN).await;
    let defaults = app.get("/integrations/legacy/defaults", ROOT_TOKEN).await;
    for r in [&list, &conn, &defaults] {
        assert!(!r.text.contains("legacy-plain-token") && !r.text.contains("legacy-default-token"), "{}", r.text);
    }
    assert_eq!(find(&list.body, "token", "tenant").expect("listed")["type"], "secret");
    app.stop().await;
    let dry = app.cli(&["backfill", "--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let report: Value = serde_json::from_slice(&dry.stdout).expect("JSON report");
    assert_eq!((report["found"].as_u64(), report["encrypted"].as_u64()), (Some(2), Some(0)));
    let still_plain = app.sql_text("SELECT CAST(config AS TEXT) FROM connections WHERE tenant_id = 'acme'").await;
    assert!(still_plain.contains("legacy-plain-token"), "a dry run changes nothing");
    let run = app.cli(&["backfill"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_slice(&run.stdout).expect("JSON report");
    assert_eq!((report["found"].as_u64(), report["encrypted"].as_u64()), (Some(2), Some(2)));
    let again: Value = serde_json::from_slice(&app.cli(&["backfill"]).stdout).expect("JSON report");
    assert_eq!((again["found"].as_u64(), again["encrypted"].as_u64()), (Some(0), Some(0)), "idempotent");
    for query in ["SELECT config FROM connections WHERE tenant_id = 'acme'", "SELECT defaults FROM integrations"] {
        let text = app.sql_text(&format!("SELECT CAST(({query}) AS TEXT)")).await;
        assert!(!text.contains("legacy-"), "plain value left behind: {text}");
    }
    for out in [&dry, &run] {
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("legacy-plain-token"), "{all}");
    }
    app.restart().await;
    let r = app.get("/tenants/acme/integrations/legacy/resolved", ROOT_TOKEN).await;
    assert_eq!(r.body["config"], json!({"base_url": "https://a", "token": "legacy-plain-token"}));
    let conn = app.get("/tenants/acme/integrations/legacy", ROOT_TOKEN).await;
    assert_eq!(conn.body["secretFields"], json!(["token"]));
    assert_eq!(conn.body["config"], json!({"base_url": "https://a"}));
}

on_every_store!(
    a_field_that_becomes_secret_is_masked_at_once_and_backfill_encrypts_it,
    secret_defaults_are_encrypted_and_masked_with_type_secret,
    a_secret_default_round_trips_through_the_resolved_view,
    what_is_missing_is_named_in_order_and_a_disabled_connection_is_refused,
    a_tenant_secret_override_wins_while_base_url_comes_from_the_default,
    the_langfuse_example_of_seed_000_works_as_documented,
    wrong_types_unknown_fields_and_missing_requirements_change_nothing,
    public_config_is_queryable_across_tenants,
);

/// These read the database tables of the `database` backend directly.
mod db_only {
    use super::*;
    on_both_databases!(
        an_empty_or_null_override_falls_back_to_the_default,
        a_ciphertext_moved_to_another_tenant_fails_to_decrypt,
    );
}
