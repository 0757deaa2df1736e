//! Versioned tenant secrets, like Vault KV v2.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_both_databases;
use crate::on_every_store;

async fn every_write_is_a_new_version_readable_by_number(app: TestApp) {
    app.tenant("acme").await;
    let r =
        app.put("/tenants/acme/secrets/stripe/STRIPE_SECRET_KEY", ROOT_TOKEN, json!({"value": "sk_live_one"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["path"], "stripe/STRIPE_SECRET_KEY");
    assert_eq!(r.body["version"], 1);
    assert!(r.body["createdAt"].is_string());
    let r =
        app.put("/tenants/acme/secrets/stripe/STRIPE_SECRET_KEY", ROOT_TOKEN, json!({"value": "sk_live_two"})).await;
    assert_eq!(r.body["version"], 2);
    let latest = app.get("/tenants/acme/secrets/stripe/STRIPE_SECRET_KEY", ROOT_TOKEN).await;
    assert_eq!((latest.body["version"].as_u64(), latest.body["value"].as_str()), (Some(2), Some("sk_live_two")));
    let v1 = app.get("/tenants/acme/secrets/stripe/STRIPE_SECRET_KEY?version=1", ROOT_TOKEN).await;
    assert_eq!(v1.body["value"], "sk_live_one");
    let r = app
        .put(
            "/tenants/acme/secrets/sendgrid",
            ROOT_TOKEN,
            json!({"data": {"api_key": "SG.data-secret", "from": "a@b"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = app.get("/tenants/acme/secrets/sendgrid", ROOT_TOKEN).await;
    assert_eq!(d.body["data"], json!({"api_key": "SG.data-secret", "from": "a@b"}));
    let r = app.get("/tenants/acme/secrets/stripe/STRIPE_SECRET_KEY?version=9", ROOT_TOKEN).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("version_not_found")));
    let r = app.get("/tenants/acme/secrets/missing", ROOT_TOKEN).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("secret_not_found")));
    let list = app.get("/tenants/acme/secrets?prefix=stripe/", ROOT_TOKEN).await;
    assert_eq!(list.body["paths"], json!(["stripe/STRIPE_SECRET_KEY"]));
    let all = app.get("/tenants/acme/secrets", ROOT_TOKEN).await;
    assert_eq!(all.body["paths"], json!(["sendgrid", "stripe/STRIPE_SECRET_KEY"]));
    let meta = app.get("/tenants/acme/secrets/stripe/STRIPE_SECRET_KEY?versions", ROOT_TOKEN).await;
    assert_eq!(meta.body["currentVersion"], 2);
    assert_eq!(meta.body["versions"].as_array().expect("versions").len(), 2);
    app.assert_plaintext_absent(&["sk_live_one", "sk_live_two", "SG.data-secret"], &[&list, &all, &meta]).await;
}

async fn soft_delete_undelete_destroy_and_rollback_behave_like_kv_v2(app: TestApp) {
    app.tenant("acme").await;
    let p = "/tenants/acme/secrets/db/password";
    app.put(p, ROOT_TOKEN, json!({"value": "pw-one"})).await;
    app.put(p, ROOT_TOKEN, json!({"value": "pw-two"})).await;
    assert_eq!(app.delete(p, ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    let r = app.get(p, ROOT_TOKEN).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("version_deleted")));
    assert_eq!(app.get(&format!("{p}?version=1"), ROOT_TOKEN).await.body["value"], "pw-one");
    let r = app.post(&format!("{p}:undelete"), ROOT_TOKEN, json!({"versions": [2]})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.get(p, ROOT_TOKEN).await.body["value"], "pw-two");
    let r = app.post(&format!("{p}:destroy"), ROOT_TOKEN, json!({"versions": [1]})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.get(&format!("{p}?version=1"), ROOT_TOKEN).await;
    assert_eq!(r.body["error"]["code"], "version_destroyed");
    let r = app.post(&format!("{p}:rollback"), ROOT_TOKEN, json!({"version": 1})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a destroyed version cannot be rolled back to");
    app.put(p, ROOT_TOKEN, json!({"value": "pw-three"})).await;
    let r = app.post(&format!("{p}:rollback"), ROOT_TOKEN, json!({"version": 2})).await;
    assert_eq!((r.status, r.body["version"].as_u64()), (StatusCode::OK, Some(4)), "{}", r.text);
    assert_eq!(app.get(p, ROOT_TOKEN).await.body["value"], "pw-two");
    let r = app.post(&format!("{p}:explode"), ROOT_TOKEN, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let destroyed = app
        .sql_text("SELECT COALESCE(ciphertext, 'gone') FROM secret_versions WHERE path = 'db/password' AND version = 1")
        .await;
    assert_eq!(destroyed, "gone", "destroy erases the ciphertext");
    app.assert_plaintext_absent(&["pw-one", "pw-two", "pw-three"], &[]).await;
}

async fn only_the_newest_versions_are_kept_and_check_and_set_guards_writes(app: TestApp) {
    app.tenant("acme").await;
    let p = "/tenants/acme/secrets/rotating";
    for i in 1..=7 {
        app.put(p, ROOT_TOKEN, json!({"value": format!("v{i}")})).await;
    }
    let meta = app.get(&format!("{p}?versions"), ROOT_TOKEN).await;
    let kept: Vec<u64> =
        meta.body["versions"].as_array().expect("versions").iter().filter_map(|v| v["version"].as_u64()).collect();
    assert_eq!(kept, [3, 4, 5, 6, 7], "TESSERA_MAX_VERSIONS=5 in tests");
    let r = app.put(p, ROOT_TOKEN, json!({"value": "stale", "cas": 6})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("cas_mismatch")));
    let r = app.put(p, ROOT_TOKEN, json!({"value": "fresh", "cas": 7})).await;
    assert_eq!(r.body["version"], 8);
    let r = app.put("/tenants/acme/secrets/brand-new", ROOT_TOKEN, json!({"value": "x", "cas": 0})).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A read of the newest version (one statement on the database backend)
/// answers with the same errors as a read by number.
async fn the_newest_version_is_read_with_the_same_errors_as_a_numbered_one(app: TestApp) {
    app.tenant("acme").await;
    let p = "/tenants/acme/secrets/newest";
    let code = |r: &crate::helpers::Resp| (r.status, r.body["error"]["code"].as_str().map(str::to_owned));
    assert_eq!(code(&app.get(p, ROOT_TOKEN).await), (StatusCode::NOT_FOUND, Some("secret_not_found".to_owned())));
    app.put(p, ROOT_TOKEN, json!({"value": "newest-one"})).await;
    app.put(p, ROOT_TOKEN, json!({"data": {"k": "newest-two"}})).await;
    let r = app.get(p, ROOT_TOKEN).await;
    assert_eq!((r.body["version"].as_u64(), &r.body["data"]), (Some(2), &json!({"k": "newest-two"})), "{}", r.text);
    let r = app.post(&format!("{p}:destroy"), ROOT_TOKEN, json!({"versions": [2]})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(code(&app.get(p, ROOT_TOKEN).await), (StatusCode::NOT_FOUND, Some("version_destroyed".to_owned())));
    app.put(p, ROOT_TOKEN, json!({"value": "newest-three"})).await;
    let r = app.get(p, ROOT_TOKEN).await;
    assert_eq!((r.body["version"].as_u64(), r.body["value"].as_str()), (Some(3), Some("newest-three")), "{}", r.text);
    assert_eq!(app.delete(p, ROOT_TOKEN).await.status, StatusCode::NO_CONTENT);
    assert_eq!(code(&app.get(p, ROOT_TOKEN).await), (StatusCode::NOT_FOUND, Some("version_deleted".to_owned())));
    assert_eq!(app.get(&format!("{p}?version=1"), ROOT_TOKEN).await.body["value"], "newest-one");
}

async fn bad_paths_and_bodies_are_refused(app: TestApp) {
    app.tenant("acme").await;
    // A literal "a/../b" never reaches the server: HTTP clients remove dot
    // segments first. Encoded forms do reach it, and are refused.
    for path in ["_config/x/api_key", "a%2F..%2Fb", "a/%2e%2e%2Fb", "a//b", "a:b/c"] {
        let r = app.put(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN, json!({"value": "x"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
    }
    for body in
        [json!({}), json!({"value": null}), json!({"value": "a", "data": {}}), json!({"value": "a", "extra": 1})]
    {
        let r = app.put("/tenants/acme/secrets/ok", ROOT_TOKEN, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
    }
    let r = app.call(Method::GET, "/tenants/acme/secrets?prefix=_config", Some(ROOT_TOKEN), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "internal paths are not listable");
    let r = app.put("/tenants/ghost/secrets/ok", ROOT_TOKEN, json!({"value": "x"})).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("tenant_not_found")));
    assert_eq!(app.get("/tenants/acme/secrets", ROOT_TOKEN).await.body["paths"], json!([]), "nothing was written");
}

/// A tenant deleted after its data key was used (and kept in memory): a
/// write for it is a 404, not a write nor an internal error.
async fn a_write_for_a_deleted_tenant_is_not_found(app: TestApp) {
    app.tenant("gone").await;
    let r = app.put("/tenants/gone/secrets/a", ROOT_TOKEN, json!({"value": "x"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.call(Method::DELETE, "/tenants/gone", Some(ROOT_TOKEN), None).await;
    assert!(r.status.is_success(), "{}", r.text);
    for path in ["a", "b"] {
        let r = app.put(&format!("/tenants/gone/secrets/{path}"), ROOT_TOKEN, json!({"value": "x"})).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("tenant_not_found")),
            "{path}"
        );
    }
    let r = app.call(Method::GET, "/tenants/gone/secrets", Some(ROOT_TOKEN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

on_every_store!(
    every_write_is_a_new_version_readable_by_number,
    only_the_newest_versions_are_kept_and_check_and_set_guards_writes,
    the_newest_version_is_read_with_the_same_errors_as_a_numbered_one,
    bad_paths_and_bodies_are_refused,
    a_write_for_a_deleted_tenant_is_not_found,
);

/// These read the database tables of the `database` backend directly.
mod db_only {
    use super::*;
    on_both_databases!(soft_delete_undelete_destroy_and_rollback_behave_like_kv_v2,);
}
