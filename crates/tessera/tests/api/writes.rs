//! Concurrent writes: on SQLite they share group commits (one fsync for
//! many), yet each succeeds or fails on its own and is durable when answered.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};

async fn concurrent_writes_each_succeed_or_fail_alone_and_last(mut app: TestApp) {
    // Twelve tenants, each created twice at once: one of each pair wins, the
    // other's failed write (a unique violation inside a shared group) undoes
    // only itself.
    let ids: Vec<String> = (0..12).map(|i| format!("w{i:02}")).collect();
    let creates =
        ids.iter().chain(ids.iter()).map(|id| app.post("/tenants", ROOT_TOKEN, json!({"id": id, "name": id})));
    let answers = futures::future::join_all(creates).await;
    let created = answers.iter().filter(|r| r.status == StatusCode::CREATED).count();
    let refused = answers.iter().filter(|r| r.status == StatusCode::CONFLICT).count();
    assert_eq!((created, refused), (12, 12), "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());

    // Thirty-two versions of one secret at once: every write gets its own version.
    let writes = (0..32).map(|i| {
        app.put("/tenants/w00/secrets/shared/token", ROOT_TOKEN, json!({"value": format!("concurrent-secret-{i:02}")}))
    });
    let answers = futures::future::join_all(writes).await;
    let mut versions: Vec<u64> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body["version"].as_u64().expect("version")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=32).collect::<Vec<_>>());

    // Answered means durable: a SIGKILL loses none of it.
    app.restart().await;
    let r = app.get("/tenants", ROOT_TOKEN).await;
    for id in &ids {
        assert!(r.text.contains(&format!("\"{id}\"")), "{id} lost: {}", r.text);
    }
    let r = app.get("/tenants/w00/secrets/shared/token", ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["version"], 32, "{}", r.text);
    let r = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(r.body["ok"], true, "{}", r.text);
}

crate::on_both_databases!(concurrent_writes_each_succeed_or_fail_alone_and_last);

/// Another process (an offline `tessera apply`, say) holding SQLite's write
/// lock makes a write wait, not fail: it goes through once the lock is free,
/// and the server keeps answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_waits_out_another_process_holding_the_write_lock() {
    use sqlx::Connection;
    let app = TestApp::sqlite().await;
    let r = app.post("/tenants", ROOT_TOKEN, json!({"id": "acme", "name": "Acme"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let url = format!("sqlite://{}", app.data_dir().join("tessera.db").display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.expect("take the write lock");
    let hold = std::time::Duration::from_millis(800);
    let started = std::time::Instant::now();
    let write = app.put("/tenants/acme/secrets/held/token", ROOT_TOKEN, json!({"value": "written-after-the-lock"}));
    let other_process = async {
        // The write is waiting for the lock; an unaudited route still answers at once.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let health = app.call(reqwest::Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status, StatusCode::OK, "{}", health.text);
        assert!(started.elapsed() < hold, "/healthz waited for the write lock");
        tokio::time::sleep(hold.saturating_sub(started.elapsed())).await;
        sqlx::query("COMMIT").execute(&mut other).await.expect("release the write lock");
    };
    let (written, ()) = tokio::join!(write, other_process);
    assert_eq!(written.status, StatusCode::OK, "{}", written.text);
    assert!(started.elapsed() >= hold, "the write did not wait for the lock");
    assert_eq!(written.body["version"], 1, "{}", written.text);
    let r = app.get("/tenants/acme/secrets/held/token", ROOT_TOKEN).await;
    assert_eq!(r.body["value"], "written-after-the-lock", "{}", r.text);
}
