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
