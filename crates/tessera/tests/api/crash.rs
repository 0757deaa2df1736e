//! Crash safety: the process is killed (SIGKILL) again and again while
//! writers keep writing; every write that was acknowledged must read back
//! after each restart, and the audit chain must still verify at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, ROOT_TOKEN};
use crate::on_both_databases;

const CYCLES: usize = 24;
const WRITERS: usize = 6;

async fn no_acknowledged_write_is_lost_across_kill_9_cycles(mut app: TestApp) {
    app.tenant("acme").await;
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for cycle in 0..CYCLES {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (client, base, acked) = (app.client.clone(), app.base.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let path = format!("c{cycle}/w{w}-{n}");
                    let value = format!("crash-value-{cycle}-{w}-{n}");
                    let sent = client
                        .put(format!("{base}/tenants/acme/secrets/{path}"))
                        .bearer_auth(ROOT_TOKEN)
                        .json(&json!({"value": value}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::OK => acked.lock().expect("lock").push((path, value)),
                        // The server died under this request: not acknowledged.
                        _ => break,
                    }
                }
            }));
        }
        // Let the writers run, then kill the server in the middle of their requests.
        tokio::time::sleep(Duration::from_millis(150 + 20 * (cycle as u64 % 7))).await;
        app.restart().await;
        for w in writers {
            w.await.expect("writer");
        }
        let new = std::mem::take(&mut *acked.lock().expect("lock"));
        assert!(!new.is_empty() || cycle > 0, "no write was acknowledged before the first kill");
        acknowledged.extend(new);
        // Every write acknowledged so far, in this cycle or any before, reads back.
        for (path, value) in acknowledged.iter().rev().take(200) {
            let r = app.get(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN).await;
            assert_eq!(r.status, StatusCode::OK, "cycle {cycle}: acknowledged {path} is lost: {}", r.text);
            assert_eq!(r.body["value"], json!(value), "cycle {cycle}: {path}");
        }
    }
    for (path, value) in &acknowledged {
        let r = app.get(&format!("/tenants/acme/secrets/{path}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "acknowledged {path} is lost: {}", r.text);
        assert_eq!(r.body["value"], json!(value), "{path}");
    }
    assert!(acknowledged.len() > CYCLES, "too few writes to mean anything: {}", acknowledged.len());
    let verify = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(verify.body["ok"], true, "{}", verify.text);
}

on_both_databases!(no_acknowledged_write_is_lost_across_kill_9_cycles);
