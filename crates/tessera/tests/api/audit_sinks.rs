//! Audit streaming (`TESSERA_AUDIT_SINKS`) against real receivers on
//! loopback: a JSON Lines file, an HTTP server that checks every batch's
//! signature, and Debian's rsyslog. Every audit event arrives, in order,
//! and no secret with it; a receiver that is down for a while gets every
//! event when it is back while requests go on succeeding; a restarted server
//! resumes after the last event delivered; two replicas deliver each event
//! once. And `tessera audit export` streams a range.

#[path = "audit_sinks/receivers.rs"]
mod receivers;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Db, TestApp, ROOT_TOKEN};
use receivers::{file_events, HttpReceiver, Rsyslog};

const SIGNING_SECRET: &str = "audit-sink-signing-secret-0123456789abcdef";

crate::on_both_databases!(
    db:
    every_event_reaches_each_sink_in_order_and_no_secret_does,
    sinks_that_were_down_catch_up_in_order_while_requests_keep_succeeding,
    a_restarted_server_resumes_after_the_last_event_delivered,
);

fn sink_env(sinks: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TESSERA_AUDIT_SINKS", sinks.to_owned()),
        ("TESSERA_AUDIT_SINK_SECRET", SIGNING_SECRET.to_owned()),
        // The receivers run on this machine, over plain http.
        ("TESSERA_ALLOW_LOOPBACK_HTTP", "true".to_owned()),
        ("TESSERA_AUDIT_SINK_RETRY_MAX", "1".to_owned()),
    ]
}

async fn start(db: Db, env: &[(&'static str, String)]) -> TestApp {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start(db, &env).await
}

/// Writes and reads secrets of tenant `acme` (created when missing), plus a
/// denial, a request id a spreadsheet would run as a formula, and a read of
/// another tenant's path by a tenant key (audited `auth.denied`). Returns
/// the plaintexts written; every request must succeed (or be the denial).
async fn activity(app: &TestApp, round: &str) -> Vec<String> {
    if app.get("/tenants/acme", ROOT_TOKEN).await.status == StatusCode::NOT_FOUND {
        app.tenant("acme").await;
        app.tenant("other").await;
    }
    let mut plaintexts = Vec::new();
    for i in 0..3 {
        let value = format!("sk_live_{round}_sink_secret_{i}_4242");
        let path = format!("/tenants/acme/secrets/stripe/{round}-{i}");
        let r = app.put(&path, ROOT_TOKEN, json!({"value": value})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = app.get(&path, ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["value"], value.as_str());
        plaintexts.push(value);
    }
    let r = app
        .client
        .get(format!("{}/tenants/acme/secrets/stripe/{round}-0", app.base))
        .bearer_auth(ROOT_TOKEN)
        .header("x-request-id", "=1+2")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::OK);
    let key = app.key("tenant_service", Some("other")).await;
    let denied = app.get(&format!("/tenants/acme/secrets/stripe/{round}-0"), &key).await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND, "{}", denied.text);
    plaintexts
}

/// Every audit event the server shows, oldest first.
async fn all_events(app: &TestApp) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let r = app.get(&format!("/audit?limit=1000&after={after}"), ROOT_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = r.body["events"].as_array().expect("events").clone();
        let Some(last) = page.last() else { break };
        after = last["seq"].as_i64().expect("seq");
        let full = page.len() == 1000;
        events.extend(page);
        if !full {
            break;
        }
    }
    assert!(!events.is_empty());
    events
}

fn seq(e: &Value) -> i64 {
    e["seq"].as_i64().unwrap_or_else(|| panic!("no seq in {e}"))
}

/// Waits until `received()` holds the event `head`.
async fn wait_for(what: &str, head: i64, received: impl Fn() -> Vec<Value>) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let got = received();
        if got.iter().any(|e| seq(e) == head) {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not receive event {head}; last received: {:?}",
            got.last().map(seq)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The events in arrival order with repeats (at-least-once resends) dropped.
fn first_arrivals(events: &[Value]) -> Vec<Value> {
    let mut seen = HashSet::new();
    events.iter().filter(|e| seen.insert(seq(e))).cloned().collect()
}

fn assert_no_plaintext(what: &str, bytes: &[u8], plaintexts: &[String]) {
    for p in plaintexts {
        assert!(!crate::helpers::contains(bytes, p.as_bytes()), "plaintext {p:?} reached the {what} sink");
    }
}

/// Each sink gets exactly the events `GET /audit` shows, in order, once;
/// syslog messages are RFC 5424 as rsyslog parses them; no plaintext of a
/// secret reaches any sink.
async fn every_event_reaches_each_sink_in_order_and_no_secret_does(db: Db) {
    let Some(syslog) = Rsyslog::start().await else { return };
    let http = HttpReceiver::start(SIGNING_SECRET).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("audit.jsonl");
    let sinks = format!("file:{}, {}, syslog+tcp://127.0.0.1:{}", file.display(), http.url, syslog.port);
    let app = start(db, &sink_env(&sinks)).await;
    let plaintexts = activity(&app, "first").await;
    let events = all_events(&app).await;
    let head = seq(events.last().expect("events"));
    assert!(events.iter().any(|e| e["action"] == "auth.denied"), "the denial is audited");

    let from_file = wait_for("file", head, || file_events(&file)).await;
    let from_http = wait_for("http", head, || http.events()).await;
    let from_syslog = wait_for("syslog", head, || syslog.parsed().into_iter().map(|p| p.msg).collect()).await;
    for (what, got) in [("file", &from_file), ("http", &from_http), ("syslog", &from_syslog)] {
        assert_eq!(&got[..events.len()], &events[..], "{what}: every event, in order, as GET /audit shows it");
        assert_eq!(first_arrivals(got).len(), got.len(), "{what}: no event twice");
    }
    for (p, e) in syslog.parsed().iter().zip(&events) {
        let severity = match e["outcome"].as_str() {
            Some("denied") => 4,
            Some("failure") => 5,
            _ => 6,
        };
        assert_eq!(p.pri, 13 * 8 + severity, "facility log audit: {e}");
        assert_eq!((p.version.as_str(), p.app_name.as_str()), ("1", "tessera"));
        assert_eq!(p.msgid, e["action"].as_str().expect("action"));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).expect("file").permissions());
    assert_eq!(mode & 0o777, 0o600, "the audit file is the owner's only");
    assert_no_plaintext("file", &std::fs::read(&file).expect("file"), &plaintexts);
    assert_no_plaintext("http", &http.bytes(), &plaintexts);
    assert_no_plaintext("syslog", syslog.text().as_bytes(), &plaintexts);
    let plain: Vec<&str> = plaintexts.iter().map(String::as_str).collect();
    app.assert_plaintext_absent(&plain, &[]).await;
}

/// The HTTP receiver and rsyslog go down; requests keep succeeding
/// meanwhile; back up, each gets every event, in order, none lost.
async fn sinks_that_were_down_catch_up_in_order_while_requests_keep_succeeding(db: Db) {
    let Some(mut syslog) = Rsyslog::start().await else { return };
    let mut http = HttpReceiver::start(SIGNING_SECRET).await;
    let sinks = format!("{},syslog+tcp://127.0.0.1:{}", http.url, syslog.port);
    let app = start(db, &sink_env(&sinks)).await;
    activity(&app, "before").await;
    let head = seq(all_events(&app).await.last().expect("events"));
    wait_for("http", head, || http.events()).await;
    wait_for("syslog", head, || syslog.parsed().into_iter().map(|p| p.msg).collect()).await;

    http.stop().await;
    syslog.stop().await;
    let (http_before, syslog_before) = (http.events().len(), syslog.parsed().len());
    for round in 0..8 {
        // Each round's requests assert their own success: a sink that is down never fails one.
        activity(&app, &format!("down{round}")).await;
    }
    // Long enough for several failed attempts of each sink.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(http.events().len(), http_before, "nothing was received while down");
    let events = all_events(&app).await;
    let head = seq(events.last().expect("events"));

    http.start_again().await;
    syslog.start_again().await;
    let from_http = wait_for("http", head, || http.events()).await;
    let from_syslog = wait_for("syslog", head, || syslog.parsed().into_iter().map(|p| p.msg).collect()).await;
    for (what, got) in [("http", &from_http), ("syslog", &from_syslog)] {
        assert_eq!(&first_arrivals(got)[..events.len()], &events[..], "{what}: every event once at least, in order");
    }
    assert!(syslog_before > 0);
    let logs = app.logs();
    assert!(logs.contains("audit sink delivery failed"), "a failing sink is logged");
    assert!(logs.contains("audit sink delivering again"), "and its recovery");
}

/// A server stopped and started again resumes after the last event it
/// delivered: no event is sent twice, and the events written while no server
/// ran (an offline import) arrive too.
async fn a_restarted_server_resumes_after_the_last_event_delivered(db: Db) {
    let http = HttpReceiver::start(SIGNING_SECRET).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("audit.jsonl");
    let mut env = sink_env(&format!("{},file:{}", http.url, file.display()));
    // Files smaller than any batch: the file sink rotates before every write
    // but the first. (How many events a batch holds depends on the machine's
    // speed; the waits below make at least four writes, so three rotations.)
    env.extend([("TESSERA_AUDIT_FILE_MAX_BYTES", "1".to_owned()), ("TESSERA_AUDIT_FILE_KEEP", "100".to_owned())]);
    let mut app = start(db, &env).await;
    activity(&app, "before").await;
    for _ in 0..3 {
        let head = seq(all_events(&app).await.last().expect("events"));
        wait_for("http", head, || http.events()).await;
        wait_for("file", head, || file_events(&file)).await;
        // One more event, delivered after the ones above: a write of its own.
        app.get("/tenants/acme/secrets/stripe/before-0", ROOT_TOKEN).await;
    }
    let head = seq(all_events(&app).await.last().expect("events"));
    wait_for("http", head, || http.events()).await;
    wait_for("file", head, || file_events(&file)).await;

    app.terminate().await;
    let env_file = dir.path().join("offline.env");
    std::fs::write(&env_file, "OFFLINE_KEY=offline-written-value-9931\n").expect("written");
    let out = app.cli(&["import", "--format", "dotenv", "--tenant", "acme", env_file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.start_again().await;
    activity(&app, "after").await;

    let events = all_events(&app).await;
    let head = seq(events.last().expect("events"));
    assert!(events.iter().any(|e| e["resource"] == "tenants/acme/secrets/OFFLINE_KEY"), "the import is audited");
    for (what, got) in [
        ("http", wait_for("http", head, || http.events()).await),
        ("file", wait_for("file", head, || file_events(&file)).await),
    ] {
        assert_eq!(&got[..events.len()], &events[..], "{what}: every event once, in order, across the restart");
    }
    // The events above were read across the rotated files (`<path>.N` .. `<path>.1`, `<path>`).
    assert!(Path::new(&format!("{}.3", file.display())).exists(), "the file sink rotated");
}

/// A server killed (SIGKILL) while it streams loses no event: started
/// again, it waits until the lease its previous run held runs out (30 s),
/// then sends from the stored position; what was in flight may arrive twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_event_and_repeats_at_most_what_was_in_flight() {
    let http = HttpReceiver::start(SIGNING_SECRET).await;
    let mut app = start(Db::Sqlite, &sink_env(&http.url)).await;
    activity(&app, "before").await;
    app.restart().await;
    activity(&app, "after").await;
    let events = all_events(&app).await;
    let head = seq(events.last().expect("events"));
    let got = wait_for("http", head, || http.events()).await;
    let once = first_arrivals(&got);
    assert_eq!(&once[..events.len()], &events[..], "every event at least once, in order");
    assert!(got.len() - once.len() <= 500, "at most one batch is repeated");
}

/// Two replicas on one PostgreSQL, both configured with the same sink: the
/// sink's lease lets one deliver at a time, so no event arrives twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_event_once() {
    let Some(db) = TestApp::fresh_postgres().await else { return };
    let http = HttpReceiver::start(SIGNING_SECRET).await;
    let env = sink_env(&http.url);
    let first = start(db.clone(), &env).await;
    let master = first.env_value("TESSERA_MASTER_KEY").expect("master key");
    let mut env2 = env.clone();
    env2.push(("TESSERA_MASTER_KEY", master));
    let second = start(db, &env2).await;
    for round in 0..3 {
        activity(&first, &format!("first{round}")).await;
        activity(&second, &format!("second{round}")).await;
    }
    let events = all_events(&first).await;
    let head = seq(events.last().expect("events"));
    let got = wait_for("http", head, || http.events()).await;
    assert_eq!(&got[..events.len()], &events[..], "every event once, in order");
}

/// `tessera audit export`: a range (time and tenant) as JSON Lines equal to
/// what `GET /audit` shows, and as CSV with formulas defused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_streams_a_range_as_json_lines_or_defused_csv() {
    let app = TestApp::sqlite().await;
    let plaintexts = activity(&app, "export").await;
    let events = all_events(&app).await;
    let export = |args: &[&str]| {
        let mut all = vec!["audit", "export"];
        all.extend_from_slice(args);
        let out = app.cli(&all);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let everything = export(&[]);
    assert_eq!(receivers::json_lines(everything.as_bytes()), events, "the default is every event as JSON Lines");
    let acme = receivers::json_lines(export(&["--tenant", "acme", "--format", "jsonl"]).as_bytes());
    let expected: Vec<Value> = events.iter().filter(|e| e["tenantId"] == "acme").cloned().collect();
    assert!(!expected.is_empty());
    assert_eq!(acme, expected);
    // A range: from the fourth event's time on, before a time after all of them.
    let since = events[3]["at"].as_str().expect("at");
    let ranged = receivers::json_lines(export(&["--since", since, "--until", "2999-01-01"]).as_bytes());
    assert!(ranged.len() < events.len() && !ranged.is_empty());
    assert!(ranged.iter().all(|e| e["at"].as_str().expect("at") >= since), "{ranged:?}");
    assert!(receivers::json_lines(export(&["--until", "2000-01-01"]).as_bytes()).is_empty());

    let csv = export(&["--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,id,at,actor,actor_role,tenant_id,action,resource,outcome,request_id,client_ip,prev_hash,hash")
    );
    assert_eq!(lines.count(), events.len());
    assert!(csv.contains(",'=1+2,"), "a request id that starts a formula is defused: {csv}");
    assert!(!csv.contains(",=1+2,"));
    for p in &plaintexts {
        assert!(!csv.contains(p.as_str()) && !everything.contains(p.as_str()), "no plaintext in an export");
    }
    for (args, needle) in [
        (&["audit", "export", "--format", "xml"][..], "--format must be jsonl or csv"),
        (&["audit", "export", "--since", "yesterday"][..], "--since must be an RFC 3339 time"),
    ] {
        let out = app.cli(args);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Bad sink settings stop start-up with one line naming the variable.
#[test]
fn bad_sink_settings_stop_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (env, needle) in [
        (vec![("TESSERA_AUDIT_SINKS", "kafka://broker:9092")], "TESSERA_AUDIT_SINKS: unknown sink kind \"kafka\""),
        (
            vec![("TESSERA_AUDIT_SINKS", "http://collector.example.com/x")],
            "TESSERA_AUDIT_SINKS: an HTTP sink must use https",
        ),
        (vec![("TESSERA_AUDIT_SINKS", "https://collector.example.com/x")], "TESSERA_AUDIT_SINK_SECRET must be set"),
        (
            vec![("TESSERA_AUDIT_SINKS", "https://collector.example.com/x"), ("TESSERA_AUDIT_SINK_SECRET", "short")],
            "TESSERA_AUDIT_SINK_SECRET must be at least 32 characters",
        ),
        (vec![("TESSERA_AUDIT_SINKS", "syslog+tcp://logs.example.com")], "needs a port"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .env_clear()
            .env("TESSERA_DATA_DIR", dir.path())
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .envs(env)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}
