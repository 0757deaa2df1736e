//! Read-audit durability (`TESSERA_AUDIT_READS`): the audit event of a read
//! or a denial is committed before the answer, so a SIGKILL of the process
//! loses none that was answered (by default the commit does not wait for the
//! disk; `durable` makes it wait); an event that cannot be written fails its
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};
use crate::on_both_databases;

const CYCLES: usize = 6;
const READERS: usize = 6;
const SECRET: &str = "read-audit-plaintext-7f3a";

/// Every audit event's request id and action, read page by page.
async fn audited(app: &TestApp) -> HashMap<String, String> {
    let mut seen = HashMap::new();
    let mut after = 0;
    loop {
        let r = app.get(&format!("/audit?after={after}&limit=1000"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let events = r.body["events"].as_array().expect("events").clone();
        let Some(last) = events.last() else { break };
        after = last["seq"].as_i64().expect("seq");
        for e in events {
            if let Some(id) = e["requestId"].as_str() {
                seen.insert(id.to_owned(), e["action"].as_str().expect("action").to_owned());
            }
        }
    }
    seen
}

/// Reads (and denied reads) from several clients while the server is killed
/// with SIGKILL again and again: every request answered before a kill has
/// its audit event after the restart.
async fn read_audit_events_answered_before_kill_9_survive(mut app: TestApp) {
    app.tenant("acme").await;
    app.tenant("other").await;
    let r = app.put("/tenants/acme/secrets/read/token", ROOT_TOKEN, json!({"value": SECRET})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let reader = app.key("tenant_service", Some("acme")).await;
    let outsider = app.key("tenant_service", Some("other")).await;
    let mut answered: Vec<(String, &'static str)> = Vec::new();
    let unexpected = Arc::new(Mutex::new(Vec::new()));
    for cycle in 0..CYCLES {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for w in 0..READERS {
            let (client, base, acked, unexpected) =
                (app.client.clone(), app.base.clone(), acked.clone(), unexpected.clone());
            let (reader, outsider) = (reader.clone(), outsider.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    // One request in four is another tenant's key: an audited denial (404).
                    let (token, action, status) = if n % 4 == 3 {
                        (&outsider, "auth.denied", StatusCode::NOT_FOUND)
                    } else {
                        (&reader, "secret.read", StatusCode::OK)
                    };
                    let id = format!("k9-{cycle}-{w}-{n}");
                    let sent = client
                        .get(format!("{base}/tenants/acme/secrets/read/token"))
                        .bearer_auth(token)
                        .header("x-request-id", &id)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == status => acked.lock().expect("lock").push((id, action)),
                        Ok(r) => unexpected.lock().expect("lock").push(format!("{id}: {}", r.status())),
                        // The server died under this request: not answered.
                        Err(_) => break,
                    }
                }
            }));
        }
        // Let the readers run, then kill the server in the middle of their requests.
        tokio::time::sleep(Duration::from_millis(150 + 30 * cycle as u64)).await;
        app.restart().await;
        for t in tasks {
            t.await.expect("reader");
        }
        answered.extend(std::mem::take(&mut *acked.lock().expect("lock")));
    }
    assert_eq!(*unexpected.lock().expect("lock"), Vec::<String>::new(), "answers other than 200 / 404");
    assert!(answered.len() > 10 * CYCLES, "too few answered reads to mean anything: {}", answered.len());
    let seen = audited(&app).await;
    let lost: Vec<_> =
        answered.iter().filter(|(id, action)| seen.get(id).map(String::as_str) != Some(*action)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered requests have no audit event: {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(10)]
    );
    let verify = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}

/// `TESSERA_AUDIT_READS=durable` (the answer waits for the disk) and
/// `committed` (the default, named) serve reads with their audit events, and
/// any other value stops start-up with one line naming the variable.
async fn both_read_audit_settings_work_and_a_bad_value_stops_start_up(mut app: TestApp) {
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/read/token", ROOT_TOKEN, json!({"value": SECRET})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (n, mode) in ["durable", "committed"].into_iter().enumerate() {
        app.set_env("TESSERA_AUDIT_READS", mode);
        app.restart().await;
        let id = format!("setting-{mode}");
        let r = app
            .client
            .get(format!("{}/tenants/acme/secrets/read/token", app.base))
            .bearer_auth(ROOT_TOKEN)
            .header("x-request-id", &id)
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), StatusCode::OK, "{mode}");
        // Answered, so committed: a SIGKILL right after loses nothing.
        app.restart().await;
        let seen = audited(&app).await;
        assert_eq!(seen.get(&id).map(String::as_str), Some("secret.read"), "{mode}: the read's event");
        let reads = seen.values().filter(|a| *a == "secret.read").count();
        assert_eq!(reads, n + 1, "{mode}");
    }
    for bad in ["fast", "DURABLE", "off"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env_clear()
            .env("TESSERA_DATA_DIR", app.data_dir())
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_AUDIT_READS", bad)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "TESSERA_AUDIT_READS={bad} must stop start-up");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("TESSERA_AUDIT_READS must be committed or durable"), "{bad}: {stderr}");
    }
}

/// Fail closed: when the audit log refuses the event (here a trigger the
/// test installs), the read fails and its plaintext is not sent; once the
/// log accepts events again, reads work again.
async fn a_read_whose_audit_event_cannot_be_written_fails(app: TestApp) {
    app.tenant("acme").await;
    let r = app.put("/tenants/acme/secrets/read/token", ROOT_TOKEN, json!({"value": SECRET})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let reader = app.key("tenant_service", Some("acme")).await;
    match app.db {
        Db::Sqlite => {
            app.sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit refused'); END")
                .await;
        }
        Db::Postgres { .. } => {
            app.sql("CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$")
                .await;
            app.sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
                .await;
        }
    }
    for path in ["/tenants/acme/secrets/read/token", "/tenants/other/secrets/read/token"] {
        let r = app.get(path, &reader).await;
        assert!(r.status.is_server_error(), "{path}: {} {}", r.status, r.text);
        assert!(r.body["error"]["code"].is_string(), "a JSON error: {}", r.text);
        assert!(!r.text.contains(SECRET), "no plaintext without its audit event");
    }
    match app.db {
        Db::Sqlite => app.sql("DROP TRIGGER refuse_audit").await,
        Db::Postgres { .. } => app.sql("DROP TRIGGER refuse_audit ON audit_events").await,
    }
    let r = app.get("/tenants/acme/secrets/read/token", &reader).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["value"], SECRET);
    let verify = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}

on_both_databases!(
    read_audit_events_answered_before_kill_9_survive,
    both_read_audit_settings_work_and_a_bad_value_stops_start_up,
    a_read_whose_audit_event_cannot_be_written_fails,
);
