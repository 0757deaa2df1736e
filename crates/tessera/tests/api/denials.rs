//! Anonymous requests: rate-limited per client address before authentication,
//! their denials audited as one aggregated event per address and interval,
//! and the client address taken from `X-Forwarded-For` only from a trusted proxy.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};

/// The denial events of `action`, oldest first.
async fn denials(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app.get(&format!("/audit?action={action}&limit=1000"), ROOT_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["events"].as_array().expect("events").clone()
}

/// How many denials an event stands for: 1, or the aggregated `count=`.
fn count_of(event: &Value) -> u64 {
    let resource = event["resource"].as_str().expect("resource");
    resource
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("count=")))
        .map_or(1, |n| n.parse().expect("a count"))
}

/// `GET /tenants` with a bearer token from the loopback address `source`, with optional `X-Forwarded-For`.
async fn get_from(app: &TestApp, source: &str, token: &str, forwarded: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().expect("source address"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut req = client.get(format!("{}/tenants", app.base)).bearer_auth(token);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bad_tokens_from_one_address_write_a_handful_of_rows_that_count_them_all() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_AUDIT_DENIAL_INTERVAL", "1")]).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for batch in 0..20 {
        let calls = (0..50).map(|i| app.get("/tenants", if (batch + i) % 2 == 0 { "tsr_bogus" } else { "junk" }));
        statuses.extend(join_all(calls).await.into_iter().map(|r| r.status));
    }
    let elapsed = started.elapsed().as_secs();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // The last interval's counts are written when it ends.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let events = denials(&app, "auth.denied").await;
    let most = 2 * (elapsed + 4);
    assert!(events.len() as u64 <= most, "{} rows for 1000 denials (at most {most})", events.len());
    assert_eq!(events.iter().map(count_of).sum::<u64>(), 1000, "every denial is accounted for: {events:#?}");
    let aggregated: Vec<_> = events.iter().filter(|e| count_of(e) > 1).collect();
    assert!(!aggregated.is_empty(), "{events:#?}");
    for e in &aggregated {
        assert_eq!(
            (&e["outcome"], &e["clientIp"], &e["actor"]),
            (&"denied".into(), &"127.0.0.1".into(), &"anonymous".into())
        );
        let resource = e["resource"].as_str().expect("resource");
        assert!(
            resource.starts_with("token?count=") && resource.contains("&first=") && resource.contains("&last="),
            "{resource}"
        );
    }
    let r = app.get("/audit/verify", ROOT_TOKEN).await;
    assert_eq!(r.body["ok"], true, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_tokens_gets_429_with_retry_after_while_a_valid_key_keeps_working() {
    let app = TestApp::sqlite().await;
    let key = app.key("auditor", None).await;
    assert_eq!(app.get("/tenants", &key).await.status, StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..80 {
        statuses.push(app.get("/tenants", "tsr_not-a-valid-key").await.status);
    }
    let unauthorized = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    assert!((50..60).contains(&unauthorized), "a burst of about 50 is answered 401: {statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let r = app.client.get(format!("{}/tenants", app.base)).bearer_auth("tsr_again").send().await.expect("answer");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    // No token at all draws from the same bucket.
    assert_eq!(app.call(reqwest::Method::GET, "/tenants", None, None).await.status, StatusCode::TOO_MANY_REQUESTS);
    // Valid callers from the same address are not limited by it.
    assert_eq!(app.get("/tenants", &key).await.status, StatusCode::OK);
    assert_eq!(app.get("/tenants", ROOT_TOKEN).await.status, StatusCode::OK);
    // Nor once their cached principal expired (5 s), while the bucket is empty again.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    for _ in 0..70 {
        app.get("/tenants", "tsr_not-a-valid-key").await;
    }
    assert_eq!(app.get("/tenants", "tsr_x").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.get("/tenants", &key).await.status, StatusCode::OK);
    // Unauthenticated routes without audit are not limited.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(app.call(reqwest::Method::GET, path, None, None).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_counts_are_written_at_a_graceful_shutdown() {
    let mut app = TestApp::sqlite().await;
    for _ in 0..5 {
        assert_eq!(app.get("/tenants", "tsr_bogus").await.status, StatusCode::UNAUTHORIZED);
    }
    // The interval (60 s) has not ended: one row so far, four denials counted in memory.
    assert_eq!(denials(&app, "auth.denied").await.len(), 1);
    app.terminate().await;
    app.start_again().await;
    let events = denials(&app, "auth.denied").await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events.iter().map(count_of).sum::<u64>(), 5, "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_oauth_callbacks_are_rate_limited_and_aggregated() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_AUDIT_DENIAL_INTERVAL", "1")]).await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        let path = format!("/oauth/callback/notion?code=c&state=bogus-{i}");
        statuses.push(app.call(reqwest::Method::GET, &path, None, None).await.status);
    }
    assert!(statuses[..40].iter().all(|s| *s == StatusCode::BAD_REQUEST), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let events = denials(&app, "oauth.callback").await;
    assert!(events.len() <= 10, "{} rows for 100 bogus callbacks", events.len());
    assert_eq!(events.iter().map(count_of).sum::<u64>(), 100, "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    let app = TestApp::start(Db::Sqlite, &[("TESSERA_TRUSTED_PROXIES", "127.0.0.2, 10.0.0.0/8")]).await;
    // From an untrusted peer the header is ignored.
    let r = get_from(&app, "127.0.0.1", "tsr_from-untrusted", Some("203.0.113.7")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // From the trusted proxy: the rightmost hop that is not a trusted proxy.
    let r = get_from(&app, "127.0.0.2", "tsr_from-trusted", Some("192.0.2.1, 198.51.100.9, 10.1.2.3")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let ips: Vec<String> = denials(&app, "auth.denied")
        .await
        .iter()
        .map(|e| e["clientIp"].as_str().expect("clientIp").to_owned())
        .collect();
    assert_eq!(ips, ["127.0.0.1", "198.51.100.9"]);
    // The anonymous limit follows that address: one client behind the proxy
    // exhausts its own bucket, not the next client's.
    let client = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().expect("client");
    let burst = (0..100).map(|_| {
        client
            .get(format!("{}/tenants", app.base))
            .bearer_auth("tsr_x")
            .header("x-forwarded-for", "198.51.100.9")
            .send()
    });
    let statuses: Vec<_> = join_all(burst).await.into_iter().map(|r| r.expect("answer").status()).collect();
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert_eq!(get_from(&app, "127.0.0.2", "tsr_x", Some("198.51.100.10")).await.status(), StatusCode::UNAUTHORIZED);
}
