//! The credentials API exactly as seed 001 shows it: store, list, metadata,
//! revoke; the resolved view carries the access token; tokens never leak.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};

const NOTION_TOKEN: &str = "secret_notion_token_abc123";
const GITHUB_ACCESS: &str = "ghp_github_token_value_77";
const GITHUB_REFRESH: &str = "ghr_refresh_token_value_88";

async fn register(app: &TestApp) {
    app.integration("notion", json!({})).await;
    app.integration("github", json!({"type": "object", "properties": {"org": {"type": "string"}}})).await;
}

async fn seed_001_credential_examples_work_as_written(app: TestApp) {
    register(&app).await;
    // Seed 001 stores credentials for tenant-123, which nobody created: an
    // unknown tenant is "not found" (a typo never mints one) ...
    let refused = app
        .post(
            "/tenants/tenant-123/integrations/notion/credentials",
            ROOT_TOKEN,
            json!({"accessToken": NOTION_TOKEN, "tokenType": "bearer", "expiresIn": 0}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "tenant_not_found");
    assert_eq!(app.get("/tenants/tenant-123", ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
    // ... unless the admin asks for it to be created.
    let stored = app
        .post(
            "/tenants/tenant-123/integrations/notion/credentials",
            ROOT_TOKEN,
            json!({"accessToken": NOTION_TOKEN, "tokenType": "bearer", "expiresIn": 0, "scopes": ["read:pages", "write:pages"],
                   "createTenant": true}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    assert_eq!(stored.body["success"], true);
    assert_eq!(stored.body["tenantId"], "tenant-123");
    assert_eq!(stored.body["integration"], "notion");
    assert!(stored.body["encryptedAt"].as_str().is_some_and(|s| s.ends_with('Z')), "{}", stored.text);
    assert!(stored.body["expiresAt"].is_null(), "expiresIn 0 never expires: {}", stored.text);

    let list = app.get("/tenants/tenant-123/integrations", ROOT_TOKEN).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["tenantId"], "tenant-123");
    let items = list.body["integrations"].as_array().expect("list");
    let notion = items.iter().find(|i| i["name"] == "notion").expect("notion listed");
    assert_eq!(notion["hasCredentials"], true);
    assert!(notion["createdAt"].is_string());
    assert!(notion["expiresAt"].is_null());
    let github = items.iter().find(|i| i["name"] == "github").expect("github listed");
    assert_eq!(github["hasCredentials"], false);

    // Option C of seed 001: GitHub with a refresh token and an expiry.
    let gh = app
        .post(
            "/tenants/tenant-123/integrations/github/credentials",
            ROOT_TOKEN,
            json!({"accessToken": GITHUB_ACCESS, "refreshToken": GITHUB_REFRESH, "expiresIn": 3600,
                   "tokenType": "bearer", "scopes": ["repo", "user"]}),
        )
        .await;
    assert_eq!(gh.status, StatusCode::CREATED, "{}", gh.text);
    let expires = chrono_like(gh.body["expiresAt"].as_str().expect("an expiry"));
    assert!(expires > 3500 && expires <= 3600, "expiresAt is about an hour away: {}", gh.text);

    let meta = app.get("/tenants/tenant-123/integrations/github/credentials", ROOT_TOKEN).await;
    assert_eq!(meta.status, StatusCode::OK, "{}", meta.text);
    assert_eq!(meta.body["hasRefreshToken"], true);
    assert_eq!(meta.body["scopes"], json!(["repo", "user"]));
    assert_eq!(meta.body["tokenType"], "bearer");
    assert_eq!(meta.body["source"], "api");

    // The SDK view carries the current access token; the refresh token never leaves.
    let resolved = app.get("/tenants/tenant-123/integrations/github/resolved", ROOT_TOKEN).await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    assert_eq!(resolved.body["config"]["accessToken"], GITHUB_ACCESS);
    assert_eq!(resolved.body["config"]["tokenType"], "bearer");
    assert!(!resolved.text.contains(GITHUB_REFRESH));

    let connection = app.get("/tenants/tenant-123/integrations/github", ROOT_TOKEN).await;
    assert_eq!(connection.body["hasCredentials"], true);
    assert_eq!(connection.body["credentials"]["hasRefreshToken"], true);

    let revoked = app.delete("/tenants/tenant-123/integrations/notion/credentials", ROOT_TOKEN).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["success"], true);
    assert_eq!(revoked.body["tenantId"], "tenant-123");
    assert_eq!(revoked.body["integration"], "notion");
    assert!(revoked.body["revokedAt"].is_string());
    assert!(revoked.body["providerRevoked"].is_null(), "notion has no revocation endpoint: {}", revoked.text);
    let gone = app.get("/tenants/tenant-123/integrations/notion/credentials", ROOT_TOKEN).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body["error"]["code"], "credentials_not_found");
    let again = app.delete("/tenants/tenant-123/integrations/notion/credentials", ROOT_TOKEN).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let list = app.get("/tenants/tenant-123/integrations", ROOT_TOKEN).await;
    let notion = list.body["integrations"].as_array().expect("list").iter().find(|i| i["name"] == "notion").cloned();
    assert_eq!(notion.expect("still listed")["hasCredentials"], false);

    let audit = app.get("/audit?tenantId=tenant-123&limit=100", ROOT_TOKEN).await;
    for action in ["tenant.create", "credential.store", "credential.revoke", "config.resolve"] {
        assert!(audit.text.contains(action), "{action} audited: {}", audit.text);
    }
    app.assert_plaintext_absent(&[NOTION_TOKEN, GITHUB_ACCESS, GITHUB_REFRESH], &[&list, &meta, &connection, &audit])
        .await;
}

/// Seconds from now until an RFC 3339 time (whole seconds are enough here).
fn chrono_like(at: &str) -> i64 {
    let parsed = time_from_rfc3339(at);
    parsed - std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn time_from_rfc3339(at: &str) -> i64 {
    // `YYYY-MM-DDTHH:MM:SS(.mmm)Z`, UTC, as Tessera writes it.
    let n = |r: std::ops::Range<usize>| at[r].parse::<i64>().expect("digits");
    let (y, mo, d, h, mi, s) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][(mo - 1) as usize];
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = (1970..y).map(|yy| if leap(yy) { 366 } else { 365 }).sum::<i64>() + days_before_month + d - 1;
    if mo > 2 && leap(y) {
        days += 1;
    }
    days * 86400 + h * 3600 + mi * 60 + s
}

async fn bad_credentials_are_refused_and_change_nothing(app: TestApp) {
    register(&app).await;
    app.tenant("acme").await;
    let path = "/tenants/acme/integrations/notion/credentials";
    for (body, field) in [
        (json!({"tokenType": "bearer"}), None),
        (json!({"accessToken": ""}), Some("accessToken")),
        (json!({"accessToken": "x", "expiresIn": -5}), Some("expiresIn")),
        (json!({"accessToken": "x", "expiresAt": "tomorrow"}), Some("expiresAt")),
        (json!({"accessToken": "x", "expiresIn": 60, "expiresAt": "2030-01-01T00:00:00Z"}), Some("expiresAt")),
        (json!({"accessToken": "x", "surprise": 1}), None),
    ] {
        let r = app.post(path, ROOT_TOKEN, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        if let Some(f) = field {
            assert_eq!(r.body["error"]["field"], f, "{}", r.text);
        }
    }
    assert_eq!(app.get(path, ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
    let unknown =
        app.post("/tenants/acme/integrations/nope/credentials", ROOT_TOKEN, json!({"accessToken": "x"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["error"]["code"], "integration_not_found");
    // Scopes may also come as one string (GitHub answers "repo,user").
    let r = app.post(path, ROOT_TOKEN, json!({"accessToken": "tok-scopes", "scopes": "repo,user read"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.get(path, ROOT_TOKEN).await.body["scopes"], json!(["repo", "user", "read"]));
}

async fn tenant_bound_callers_reach_only_their_own_credentials(app: TestApp) {
    register(&app).await;
    app.tenant("acme").await;
    app.tenant("globex").await;
    let acme_admin = app.key("tenant_admin", Some("acme")).await;
    let acme_service = app.key("tenant_service", Some("acme")).await;
    let own = "/tenants/acme/integrations/notion/credentials";
    let other = "/tenants/globex/integrations/notion/credentials";
    let stored = app.post(own, &acme_admin, json!({"accessToken": "acme-own-token"})).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
    // Another tenant, or one that does not exist: the same 404, and no tenant is created.
    for path in [other, "/tenants/ghost/integrations/notion/credentials"] {
        let r = app.post(path, &acme_admin, json!({"accessToken": "stolen"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "tenant_not_found");
        assert_eq!(app.get(path, &acme_admin).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.delete(path, &acme_admin).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.get("/tenants/ghost", ROOT_TOKEN).await.status, StatusCode::NOT_FOUND);
    // A service key reads metadata and resolves, but cannot store or revoke.
    assert_eq!(app.get(own, &acme_service).await.status, StatusCode::OK);
    assert_eq!(app.post(own, &acme_service, json!({"accessToken": "x"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(own, &acme_service).await.status, StatusCode::FORBIDDEN);
    let resolved = app.get("/tenants/acme/integrations/notion/resolved", &acme_service).await;
    assert_eq!(resolved.body["config"]["accessToken"], "acme-own-token");
}

async fn integrations_carry_oauth_settings_and_templates_without_showing_the_client_secret(app: TestApp) {
    let templates = app.get("/integrations/templates", ROOT_TOKEN).await;
    assert_eq!(templates.status, StatusCode::OK, "{}", templates.text);
    let names: Vec<&str> =
        templates.body["templates"].as_array().expect("list").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["notion", "github", "slack", "google", "generic"]);

    let created = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "google-drive", "name": "Google Drive", "authType": "oauth2", "template": "google",
                   "oauth": {"clientId": "gd-client", "clientSecret": "gd-client-secret-value", "scopes": ["drive.file"]}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let oauth = &created.body["oauth"];
    assert_eq!(oauth["authorizeUrl"], "https://accounts.google.com/o/oauth2/v2/auth");
    assert_eq!(oauth["scopes"], json!(["drive.file"]));
    assert_eq!(oauth["extraParams"]["access_type"], "offline");
    assert_eq!(oauth["clientSecretSet"], true);
    assert_eq!(oauth["pkce"], true);

    // A template fills what the request leaves out: its category, and OAuth.
    let filled =
        app.post("/integrations", ROOT_TOKEN, json!({"key": "notion", "name": "Notion", "template": "notion"})).await;
    assert_eq!(filled.status, StatusCode::CREATED, "{}", filled.text);
    assert_eq!(filled.body["category"], "productivity", "{}", filled.text);
    assert_eq!(filled.body["authType"], "oauth2", "{}", filled.text);
    // What the request says wins.
    let own = app
        .post(
            "/integrations",
            ROOT_TOKEN,
            json!({"key": "notion-b", "name": "Notion B", "template": "notion", "category": "docs"}),
        )
        .await;
    assert_eq!(own.body["category"], "docs", "{}", own.text);
    // A PUT without a secret keeps it; fields it names change.
    let updated = app
        .put(
            "/integrations/google-drive",
            ROOT_TOKEN,
            json!({"name": "Drive", "authType": "oauth2", "oauth": {"scopes": ["drive.readonly"]}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["oauth"]["clientSecretSet"], true);
    assert_eq!(updated.body["oauth"]["clientId"], "gd-client");
    assert_eq!(updated.body["oauth"]["scopes"], json!(["drive.readonly"]));

    for (body, field) in [
        (json!({"key": "x1", "name": "X", "template": "myspace"}), "template"),
        (json!({"key": "x2", "name": "X", "oauth": {"tokenUrl": "ftp://host/token"}}), "oauth.tokenUrl"),
        (json!({"key": "x3", "name": "X", "oauth": {"extraParams": {"state": "fixed"}}}), "oauth.extraParams"),
    ] {
        let r = app.post("/integrations", ROOT_TOKEN, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{}", r.text);
    }
    let list = app.get("/integrations", ROOT_TOKEN).await;
    app.assert_plaintext_absent(&["gd-client-secret-value"], &[&list, &created, &updated]).await;
}

crate::on_every_store!(
    seed_001_credential_examples_work_as_written,
    bad_credentials_are_refused_and_change_nothing,
    tenant_bound_callers_reach_only_their_own_credentials,
    integrations_carry_oauth_settings_and_templates_without_showing_the_client_secret,
);
