//! The ports' contracts, run against every implementation. The secret store: one
//! exercise (versions, check-and-set, pruning, soft delete, destroy, listing
//! by prefix, tenant isolation, removal) over the `database` backend on
//! SQLite and on PostgreSQL, the `file` backend and the `vault` backend (a
//! real OpenBao), and the read-only part over the `environment` backend, the
//! way OpenBao runs one exercise over every storage backend. What a backend
//! may legitimately do differently (rewrap in place) is declared beside it,
//! not special-cased inside the exercise. The metadata store: tenants
//! (conflicts, search paging with `%` and `_` taken literally, deletion
//! cascading to data keys and connections), data keys, the key check, and
//! connections found by public config (compared as JSON), and the audit
//! sinks' positions and leases, on SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tessera_core::domain::{AuthType, ConfigMeta, FieldMeta, Health};
use tessera_core::ports::{
    ConnectionRecord, DataKeyRecord, IntegrationRecord, MetadataStore, StoreError, TenantRecord,
};
use tessera_core::schema::ConfigSchema;
use tessera_core::secret_store::{DatabaseSecrets, NewVersion, SecretStore};
use tessera_core::{ErrorCode, ErrorKind, ServiceError};

#[path = "common/bao.rs"]
mod bao;

/// A backend under test and what it may do differently.
struct Subject {
    secrets: Arc<dyn SecretStore>,
    store: Arc<dyn MetadataStore>,
    /// Whether `replace_ciphertext` rewrites a version in place (else it
    /// must refuse with `rewrap_unsupported`).
    rewraps_in_place: bool,
    /// Whether a version keeps the write and delete times it was given
    /// (Vault stamps its own `created_time` and `deletion_time`).
    keeps_write_times: bool,
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
}

fn version(ciphertext: &str, secs: i64) -> NewVersion {
    NewVersion {
        kind: "data".into(),
        ciphertext: ciphertext.into(),
        created_by: "key_conformance".into(),
        created_at: at(secs),
        deleted_at: None,
    }
}

fn conflict(r: Result<u32, ServiceError>, code: ErrorCode) {
    let e = r.expect_err("refused");
    assert_eq!((e.kind, e.code), (ErrorKind::Conflict, code), "{}", e.message);
}

/// The exercise every writable backend passes.
async fn exercise(s: Subject) {
    let (secrets, store) = (&s.secrets, &s.store);
    let name = secrets.name();
    let mut tx = store.begin_write().await.expect("tx");
    for t in ["conf-a", "conf-b"] {
        tx.insert_tenant(&TenantRecord::new(t, t)).await.expect("tenant");
    }
    tx.commit().await.expect("commit");

    // Nothing yet.
    let mut tx = store.begin_write().await.expect("tx");
    assert!(secrets.head(tx.as_mut(), "conf-a", "svc/key").await.expect("head").is_none(), "{name}");
    assert!(secrets.latest(tx.as_mut(), "conf-a", "svc/key").await.expect("latest").is_none(), "{name}");
    assert!(secrets.versions(tx.as_mut(), "conf-a", "svc/key").await.expect("versions").is_empty(), "{name}");
    assert!(secrets.list_paths(tx.as_mut(), "conf-a", "").await.expect("list").is_empty(), "{name}");

    // Appends with check-and-set: 0 means "only if new"; a stale number is refused.
    assert_eq!(secrets.append(tx.as_mut(), "conf-a", "svc/key", version("ct-1", 1), Some(0), 3).await.expect("v1"), 1);
    conflict(
        secrets.append(tx.as_mut(), "conf-a", "svc/key", version("x", 2), Some(0), 3).await,
        ErrorCode::CasMismatch,
    );
    conflict(
        secrets.append(tx.as_mut(), "conf-a", "svc/key", version("x", 2), Some(7), 3).await,
        ErrorCode::CasMismatch,
    );
    assert_eq!(secrets.append(tx.as_mut(), "conf-a", "svc/key", version("ct-2", 2), Some(1), 3).await.expect("v2"), 2);
    assert_eq!(secrets.append(tx.as_mut(), "conf-a", "svc/key", version("ct-3", 3), None, 3).await.expect("v3"), 3);
    tx.commit().await.expect("commit");

    let mut tx = store.begin_write().await.expect("tx");
    let head = secrets.head(tx.as_mut(), "conf-a", "svc/key").await.expect("head").expect("a head");
    assert_eq!((head.tenant_id.as_str(), head.path.as_str(), head.current_version), ("conf-a", "svc/key", 3), "{name}");
    let (current, newest) = secrets.latest(tx.as_mut(), "conf-a", "svc/key").await.expect("latest").expect("some");
    let newest = newest.expect("the newest version");
    assert_eq!((current, newest.version, newest.ciphertext.as_deref()), (3, 3, Some("ct-3")), "{name}");
    assert_eq!((newest.kind.as_str(), newest.created_by.as_str()), ("data", "key_conformance"), "{name}");
    let v1 = secrets.version(tx.as_mut(), "conf-a", "svc/key", 1).await.expect("v1").expect("kept");
    assert_eq!(v1.ciphertext.as_deref(), Some("ct-1"), "{name}");
    if s.keeps_write_times {
        assert_eq!(v1.created_at, at(1), "{name}: the write time is kept");
    }
    assert!(secrets.version(tx.as_mut(), "conf-a", "svc/key", 9).await.expect("v9").is_none(), "{name}");

    // At most max_versions are kept, oldest pruned first; listing is oldest first.
    assert_eq!(secrets.append(tx.as_mut(), "conf-a", "svc/key", version("ct-4", 4), Some(3), 3).await.expect("v4"), 4);
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    let kept: Vec<u32> =
        secrets.versions(tx.as_mut(), "conf-a", "svc/key").await.expect("versions").iter().map(|v| v.version).collect();
    assert_eq!(kept, [2, 3, 4], "{name}: pruned to 3, oldest first");
    assert!(secrets.version(tx.as_mut(), "conf-a", "svc/key", 1).await.expect("v1").is_none(), "{name}: v1 pruned");

    // Soft delete and undelete, then destroy: the version stays, its ciphertext goes.
    secrets.set_deleted(tx.as_mut(), "conf-a", "svc/key", &[3], Some(at(10))).await.expect("delete");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    let v3 = secrets.version(tx.as_mut(), "conf-a", "svc/key", 3).await.expect("v3").expect("kept");
    assert!(v3.deleted_at.is_some(), "{name}: deleted");
    if s.keeps_write_times {
        assert_eq!(v3.deleted_at, Some(at(10)), "{name}: at the time given");
    }
    secrets.set_deleted(tx.as_mut(), "conf-a", "svc/key", &[3], None).await.expect("undelete");
    secrets.destroy(tx.as_mut(), "conf-a", "svc/key", &[2]).await.expect("destroy");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    let v3 = secrets.version(tx.as_mut(), "conf-a", "svc/key", 3).await.expect("v3").expect("kept");
    assert_eq!((v3.deleted_at, v3.ciphertext.as_deref()), (None, Some("ct-3")), "{name}: undeleted as it was");
    let v2 = secrets.version(tx.as_mut(), "conf-a", "svc/key", 2).await.expect("v2").expect("kept");
    assert_eq!(v2.ciphertext, None, "{name}: destroyed for good");

    // Rewrap in place, where the backend allows it.
    let rewrap = secrets.replace_ciphertext(tx.as_mut(), "conf-a", "svc/key", 4, "ct-4-rewrapped").await;
    if s.rewraps_in_place {
        rewrap.expect("rewrapped");
        tx.commit().await.expect("commit");
        tx = store.begin_write().await.expect("tx");
        let v4 = secrets.version(tx.as_mut(), "conf-a", "svc/key", 4).await.expect("v4").expect("kept");
        assert_eq!(v4.ciphertext.as_deref(), Some("ct-4-rewrapped"), "{name}");
    } else {
        assert_eq!(rewrap.expect_err("refused").code, ErrorCode::RewrapUnsupported, "{name}");
    }

    // Listing by prefix, sorted; tenants do not see each other's paths.
    for (t, p) in [("conf-a", "svc/other"), ("conf-a", "misc"), ("conf-a", "svc2/x"), ("conf-b", "svc/key")] {
        secrets.append(tx.as_mut(), t, p, version("ct", 20), None, 3).await.expect("append");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    assert_eq!(secrets.list_paths(tx.as_mut(), "conf-a", "svc/").await.expect("list"), ["svc/key", "svc/other"]);
    assert_eq!(
        secrets.list_paths(tx.as_mut(), "conf-a", "").await.expect("list"),
        ["misc", "svc/key", "svc/other", "svc2/x"],
        "{name}"
    );
    let other = secrets.latest(tx.as_mut(), "conf-b", "svc/key").await.expect("latest").expect("b's own");
    assert_eq!(other.0, 1, "{name}: conf-b's svc/key is its own secret");

    // Removal: one secret, a prefix in every tenant, a whole tenant.
    secrets.remove(tx.as_mut(), "conf-a", "misc").await.expect("remove");
    secrets.remove_prefix(tx.as_mut(), "svc2/").await.expect("remove prefix");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    assert_eq!(secrets.list_paths(tx.as_mut(), "conf-a", "").await.expect("list"), ["svc/key", "svc/other"], "{name}");
    assert!(secrets.head(tx.as_mut(), "conf-a", "misc").await.expect("head").is_none(), "{name}");
    tx.commit().await.expect("commit");
    secrets.remove_tenant("conf-b").await.expect("remove tenant");
    let mut tx = store.begin_write().await.expect("tx");
    if !secrets.is_transactional() {
        // Rows of the database backend go with the tenant's row (cascade);
        // the others remove what they hold themselves.
        assert!(secrets.list_paths(tx.as_mut(), "conf-b", "").await.expect("list").is_empty(), "{name}");
    }
    assert_eq!(secrets.list_paths(tx.as_mut(), "conf-a", "").await.expect("list").len(), 2, "{name}: conf-a untouched");
    tx.commit().await.expect("commit");
}

/// The exercise both metadata stores pass.
async fn metadata_exercise(store: Arc<dyn MetadataStore>) {
    let name = store.backend_name();
    let mut tx = store.begin_write().await.expect("tx");
    for (id, display) in [("acme", "Acme Corp"), ("acme-2", "100% Acme"), ("beta", "Beta_Works"), ("gamma", "Gamma")] {
        tx.insert_tenant(&TenantRecord::new(id, display)).await.expect("tenant");
    }
    tx.commit().await.expect("commit");
    // A conflict is reported as one; the transaction it happened in is then
    // unusable (PostgreSQL aborts it), so it is dropped, as every caller does.
    let mut tx = store.begin_write().await.expect("tx");
    let again = tx.insert_tenant(&TenantRecord::new("acme", "Again")).await.expect_err("a second acme");
    assert!(matches!(again, StoreError::Conflict(_)), "{name}: {again}");
    drop(tx);

    let mut tx = store.begin_write().await.expect("tx");
    let ids = |v: Vec<TenantRecord>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(tx.list_tenants().await.expect("list")), ["acme", "acme-2", "beta", "gamma"], "{name}");
    assert_eq!(ids(tx.list_tenants_page(None, Some("acme"), 2).await.expect("page")), ["acme-2", "beta"], "{name}");
    assert_eq!(ids(tx.list_tenants_page(Some("acme"), None, 10).await.expect("prefix")), ["acme", "acme-2"], "{name}");
    // `%` and `_` in a search match themselves, not any text.
    assert_eq!(ids(tx.list_tenants_page(Some("100%"), None, 10).await.expect("percent")), ["acme-2"], "{name}");
    assert_eq!(ids(tx.list_tenants_page(Some("a_w"), None, 10).await.expect("underscore")), ["beta"], "{name}");
    assert!(tx.list_tenants_page(Some("%"), None, 10).await.expect("percent alone").len() == 1, "{name}");
    let acme = tx.get_tenant("acme").await.expect("get").expect("acme");
    assert_eq!((acme.name.as_str(), acme.status.as_str()), ("Acme Corp", "active"), "{name}");

    // Data keys: versions per tenant, the newest, and the incarnation with it.
    for v in [1, 2] {
        let k = DataKeyRecord {
            tenant_id: "acme".into(),
            incarnation: acme.incarnation.clone(),
            version: v,
            wrapped: format!("wrapped-{v}"),
            kek_id: "local:test".into(),
            created_at: at(i64::from(v)),
        };
        tx.insert_data_key(&k).await.expect("data key");
    }
    assert_eq!(tx.latest_data_key_version("acme").await.expect("latest"), Some(2), "{name}");
    assert_eq!(tx.latest_data_key_version("beta").await.expect("latest"), None, "{name}");
    assert_eq!(
        tx.current_data_key("acme").await.expect("current"),
        Some((acme.incarnation.clone(), Some(2))),
        "{name}"
    );
    assert_eq!(tx.current_data_key("nobody").await.expect("current"), None, "{name}");
    assert_eq!(tx.get_data_key("acme", 1).await.expect("get").expect("v1").wrapped, "wrapped-1", "{name}");

    // The key check is set once, then only replaced.
    assert_eq!(tx.get_kek_check().await.expect("check"), None, "{name}");
    tx.set_kek_check("local:a", "check-a").await.expect("set");
    tx.replace_kek_check("local:b", "check-b").await.expect("replace");
    assert_eq!(tx.get_kek_check().await.expect("check"), Some(("local:b".into(), "check-b".into())), "{name}");

    // Connections found by public config, values compared as JSON.
    let now = at(100);
    tx.insert_integration(&IntegrationRecord {
        key: "svc".into(),
        name: "Svc".into(),
        category: None,
        auth_type: AuthType::ApiKey,
        config_schema: ConfigSchema::from_input(&serde_json::json!([{"key": "region", "type": "string"}]))
            .expect("schema"),
        defaults: serde_json::Map::new(),
        defaults_meta: ConfigMeta::new(),
        settings: serde_json::Map::new(),
        created_at: now,
        updated_at: now,
    })
    .await
    .expect("integration");
    for (t, region, tier) in [
        ("acme", "eu", serde_json::json!(1)),
        ("beta", "eu", serde_json::json!("1")),
        ("gamma", "us", serde_json::json!(1)),
    ] {
        let mut c = ConnectionRecord::new(t, "svc", now);
        c.config.insert("region".into(), region.into());
        c.config.insert("tier".into(), tier);
        tx.upsert_connection(&c).await.expect("connection");
    }
    let found = |v: Vec<ConnectionRecord>| v.into_iter().map(|c| c.tenant_id).collect::<Vec<_>>();
    let eu = [("region".to_owned(), serde_json::json!("eu"))];
    assert_eq!(found(tx.find_connections("svc", &eu).await.expect("find")), ["acme", "beta"], "{name}");
    let tier_one = [("region".to_owned(), serde_json::json!("eu")), ("tier".to_owned(), serde_json::json!(1))];
    assert_eq!(found(tx.find_connections("svc", &tier_one).await.expect("find")), ["acme"], "{name}: 1 is not \"1\"");
    let ctx = tx.get_connection_context("acme", "svc").await.expect("context");
    assert!(ctx.tenant_exists() && ctx.integration.is_some() && ctx.connection.is_some(), "{name}");
    // Typed columns read back as written: the integration's auth type and
    // parsed schema, a connection's health and per-field metadata.
    let integration = tx.get_integration("svc").await.expect("integration").expect("svc");
    assert_eq!(integration.auth_type, AuthType::ApiKey, "{name}");
    assert!(integration.config_schema.field("region").is_some(), "{name}");
    let mut c = tx.get_connection("gamma", "svc").await.expect("connection").expect("gamma");
    c.health_status = Some(Health::Degraded);
    let meta =
        FieldMeta { updated_at: Some("2026-01-01T00:00:00.000Z".into()), updated_by: Some("k".into()), secret: true };
    c.config_meta.insert("token".into(), meta.clone());
    tx.upsert_connection(&c).await.expect("connection");
    let back = tx.get_connection("gamma", "svc").await.expect("connection").expect("gamma");
    assert_eq!((back.health_status, back.config_meta.get("token")), (Some(Health::Degraded), Some(&meta)), "{name}");
    tx.commit().await.expect("commit");

    // Deleting a tenant takes its data keys and connections with it.
    let mut tx = store.begin_write().await.expect("tx");
    assert!(tx.delete_tenant("acme").await.expect("delete"), "{name}");
    assert!(!tx.delete_tenant("acme").await.expect("delete again"), "{name}");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_write().await.expect("tx");
    assert!(tx.list_data_keys("acme").await.expect("keys").is_empty(), "{name}");
    assert!(tx.get_connection("acme", "svc").await.expect("connection").is_none(), "{name}");
    assert!(!tx.get_connection_context("acme", "svc").await.expect("context").tenant_exists(), "{name}");
    assert_eq!(found(tx.find_connections("svc", &eu).await.expect("find")), ["beta"], "{name}");
    tx.commit().await.expect("commit");

    // Audit sinks: a sink's lease has one holder until it runs out or is
    // released; only the holder moves the position, and never backwards.
    let mut tx = store.begin_write().await.expect("tx");
    assert_eq!(tx.claim_audit_sink("s", "r1", at(0), at(30)).await.expect("claim"), Some(0), "{name}: starts at 0");
    assert_eq!(tx.claim_audit_sink("s", "r2", at(10), at(40)).await.expect("claim"), None, "{name}: r1 holds it");
    assert!(tx.advance_audit_sink("s", "r1", 7).await.expect("advance"), "{name}");
    assert!(!tx.advance_audit_sink("s", "r2", 9).await.expect("advance"), "{name}: r2 is not the holder");
    assert_eq!(tx.claim_audit_sink("s", "r1", at(20), at(50)).await.expect("renew"), Some(7), "{name}");
    assert_eq!(tx.claim_audit_sink("s", "r2", at(51), at(80)).await.expect("take over"), Some(7), "{name}: ran out");
    assert!(!tx.advance_audit_sink("s", "r1", 8).await.expect("advance"), "{name}: r1 lost the lease");
    tx.release_audit_sink("s", "r2").await.expect("release");
    assert_eq!(tx.claim_audit_sink("s", "r3", at(52), at(82)).await.expect("claim"), Some(7), "{name}: released");
    assert!(!tx.advance_audit_sink("s", "r3", 5).await.expect("advance"), "{name}: never backwards");
    assert_eq!(tx.claim_audit_sink("other", "r1", at(52), at(82)).await.expect("claim"), Some(0), "{name}: per sink");
    tx.commit().await.expect("commit");
}

async fn sqlite() -> (tempfile::TempDir, Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = tessera_store::connect(&url).await.expect("SQLite store");
    (dir, Arc::new(store))
}

#[tokio::test]
async fn database_backend_on_sqlite() {
    let (_dir, store) = sqlite().await;
    exercise(Subject { secrets: Arc::new(DatabaseSecrets), store, rewraps_in_place: true, keeps_write_times: true })
        .await;
}

/// A fresh PostgreSQL database, dropped after `run`, or a printed skip.
async fn on_postgres<F, Fut>(run: F)
where
    F: FnOnce(Arc<dyn MetadataStore>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        assert!(std::env::var("CI").is_err(), "TESSERA_TEST_POSTGRES_URL must be set in CI");
        eprintln!("skipping: TESSERA_TEST_POSTGRES_URL is not set");
        return;
    };
    use sqlx::Connection;
    let name = format!("tessera_conf_{}", uuid::Uuid::new_v4().simple());
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin_conn).await.expect("create db");
    let url = format!("{}/{name}", admin.rsplit_once('/').expect("a database in the URL").0);
    run(Arc::new(tessera_store::connect(&url).await.expect("PostgreSQL store"))).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin_conn).await.expect("drop");
}

#[tokio::test]
async fn database_backend_on_postgres() {
    on_postgres(|store| {
        exercise(Subject { secrets: Arc::new(DatabaseSecrets), store, rewraps_in_place: true, keeps_write_times: true })
    })
    .await;
}

#[tokio::test]
async fn metadata_store_on_sqlite() {
    let (_dir, store) = sqlite().await;
    metadata_exercise(store).await;
}

#[tokio::test]
async fn metadata_store_on_postgres() {
    on_postgres(metadata_exercise).await;
}

#[tokio::test]
async fn file_backend() {
    let (dir, store) = sqlite().await;
    let file = tessera_backends::file::FileSecrets::open(&dir.path().join("credentials.json")).expect("file backend");
    exercise(Subject { secrets: Arc::new(file), store, rewraps_in_place: true, keeps_write_times: true }).await;
}

#[tokio::test]
async fn vault_backend_on_openbao() {
    let Some(bao) = bao::Bao::start().await else { return };
    let (_dir, store) = sqlite().await;
    let vault = tessera_backends::vault::VaultSecrets::new(tessera_backends::vault::VaultSettings {
        connection: tessera_backends::vault_client::VaultConnection {
            addr: bao.addr.clone(),
            auth: tessera_backends::vault_client::VaultAuth::Token(bao.token.clone().into()),
            namespace: None,
            tls: Default::default(),
        },
        mount: "secret".into(),
        prefix: "conformance".into(),
    })
    .expect("vault backend");
    exercise(Subject { secrets: Arc::new(vault), store, rewraps_in_place: false, keeps_write_times: false }).await;
}

#[tokio::test]
async fn environment_backend_reads_and_refuses_every_write() {
    let (_dir, store) = sqlite().await;
    let env = tessera_backends::environment::EnvironmentSecrets::from_vars([
        ("PLATFORM_CRED_STRIPE".to_owned(), r#"{"api_key":"sk_conformance"}"#.to_owned()),
        ("UNRELATED".to_owned(), "x".to_owned()),
    ])
    .expect("environment backend");
    let secrets: Arc<dyn SecretStore> = Arc::new(env);
    let platform = tessera_core::ids::PLATFORM_TENANT;
    let mut tx = store.begin_write().await.expect("tx");
    assert!(secrets.holds_plaintext());
    assert_eq!(secrets.list_paths(tx.as_mut(), platform, "").await.expect("list"), ["stripe"]);
    let (current, v) = secrets.latest(tx.as_mut(), platform, "stripe").await.expect("latest").expect("present");
    let v = v.expect("version 1");
    assert_eq!((current, v.version, v.kind.as_str()), (1, 1, "data"));
    assert!(secrets.head(tx.as_mut(), "conf-a", "stripe").await.expect("head").is_none(), "other tenants see nothing");
    let refused = |r: Result<(), ServiceError>| assert_eq!(r.expect_err("read-only").code, ErrorCode::BackendReadOnly);
    conflict(
        secrets.append(tx.as_mut(), platform, "stripe", version("x", 1), None, 3).await,
        ErrorCode::BackendReadOnly,
    );
    refused(secrets.set_deleted(tx.as_mut(), platform, "stripe", &[1], Some(at(1))).await);
    refused(secrets.destroy(tx.as_mut(), platform, "stripe", &[1]).await);
    refused(secrets.remove(tx.as_mut(), platform, "stripe").await);
    assert_eq!(secrets.list_paths(tx.as_mut(), platform, "").await.expect("list"), ["stripe"], "nothing changed");
}
