//! The client libraries (`clients/python`, `clients/typescript`) against the
//! real binary: each is installed the way its users install it (`pip
//! install` from the source directory, `npm install` of the directory into a
//! fresh project, both offline) and its own test suite (pytest and mypy
//! --strict; `node --test` and tsc) runs against a server started here, with
//! a real MCP server for tool calls; the suites start their own stand-ins for
//! an integration's API, a webhook receiver, and a server answering 429, 503
//! or slowly. A third test regenerates both clients' types from the running
//! server's `/openapi.json` and recompiles the TypeScript client: the
//! checked-in files must come out unchanged.
//!
//! The tools are the pinned ones `scripts/services.sh` installs
//! (`TESSERA_TEST_CLIENT_PYTHON`: the venv's Python with httpx, flit_core,
//! pytest, mypy and datamodel-code-generator; `TESSERA_TEST_CLIENT_NODE`:
//! node, with typescript and openapi-typescript in
//! `clients/typescript/node_modules`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::{Method, StatusCode};

use crate::helpers::{Db, McpServer, TestApp, ROOT_TOKEN};

/// Plaintexts the suites write (each suite's own): never in the store, logs or audit.
const PYTHON_PLAINTEXTS: &[&str] = &["sk_live_py_4242", "sk_lf_resolved_1", "ghp_py_access_1", "crm_py_key_77"];
const TYPESCRIPT_PLAINTEXTS: &[&str] = &["sk_live_ts_4242", "sk_lf_ts_resolved_1", "ghp_ts_access_1", "crm_ts_key_77"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// A tool's path from `var`, or None (with a printed reason) outside CI.
fn tool(var: &str) -> Option<String> {
    let Ok(path) = std::env::var(var) else {
        assert!(std::env::var("CI").is_err(), "{var} must be set in CI: the client library tests may not skip");
        eprintln!("skipping: {var} is not set (eval \"$(scripts/services.sh)\")");
        return None;
    };
    Some(path)
}

/// The TypeScript client's pinned build tools, or None outside CI.
fn typescript_tools() -> Option<(String, PathBuf)> {
    let node = tool("TESSERA_TEST_CLIENT_NODE")?;
    let tsc = repo().join("clients/typescript/node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "TESSERA_TEST_CLIENT_NODE is set but {} is missing (npm ci in clients/typescript)",
        tsc.display()
    );
    Some((node, tsc))
}

/// Runs a command, asserting it succeeds; returns its output as text.
fn run(what: &str, cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// A server for the suites: webhooks and proxied calls may reach the
/// suites' receivers on loopback, and the webhook worker runs every second.
async fn server() -> TestApp {
    TestApp::start(
        Db::Sqlite,
        &[
            ("TESSERA_ALLOW_LOOPBACK_HTTP", "true"),
            ("TESSERA_WEBHOOK_INTERVAL", "1"),
            ("TESSERA_WEBHOOK_RETRY_BASE", "1"),
        ],
    )
    .await
}

/// A second server, limited to one request a second per caller (bursts of
/// one), so that the suites meet Tessera's own 429 and `Retry-After`.
async fn limited_server() -> TestApp {
    TestApp::start(Db::Sqlite, &[("TESSERA_RATE_LIMIT", "1"), ("TESSERA_RATE_LIMIT_BURST", "1")]).await
}

/// What every suite is told: where the servers are, their admin token, the MCP server.
fn suite_env<'a>(cmd: &'a mut Command, app: &TestApp, limited: &TestApp, mcp: &McpServer) -> &'a mut Command {
    cmd.env("TESSERA_TEST_URL", &app.base)
        .env("TESSERA_TEST_LIMITED_URL", &limited.base)
        .env("TESSERA_TEST_ROOT_TOKEN", ROOT_TOKEN)
        .env("TESSERA_TEST_MCP_URL", &mcp.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_passes_its_suite_against_the_binary() {
    let Some(python) = tool("TESSERA_TEST_CLIENT_PYTHON") else { return };
    let Some(mcp) = McpServer::start().await else { return };
    let (app, limited) = (server().await, limited_server().await);
    let source = repo().join("clients/python");
    let work = tempfile::tempdir().expect("temp dir");
    let site = work.path().join("site");

    // `pip install ./clients/python`, offline: the build backend from the venv, no dependency fetched.
    run(
        "pip install of clients/python",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target"])
            .arg(&site)
            .arg(&source),
    );
    assert!(site.join("tessera_client/py.typed").exists(), "the installed package is marked typed");

    // The package and its suite type-check strictly, the suite against the installed copy.
    let mypy = |what: &str, target: &Path| {
        run(
            what,
            Command::new(&python)
                .args(["-m", "mypy", "--strict", "--cache-dir"])
                .arg(work.path().join("mypy-cache"))
                .arg(target)
                .env("MYPYPATH", &site)
                .current_dir(&source),
        )
    };
    mypy("mypy --strict on the package", &source.join("src/tessera_client"));
    mypy("mypy --strict on the suite", &source.join("tests"));

    let out = run(
        "pytest on clients/python/tests",
        suite_env(
            Command::new(&python)
                .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
                .arg(source.join("tests"))
                .env("PYTHONPATH", &site)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .current_dir(work.path()),
            &app,
            &limited,
            &mcp,
        ),
    );
    let summary = out.lines().rev().find(|l| l.contains(" passed")).unwrap_or_else(|| panic!("no summary:\n{out}"));
    assert!(!summary.contains("skipped") && !summary.contains("failed"), "{out}");
    eprintln!("python client: {summary}");
    app.assert_plaintext_absent(PYTHON_PLAINTEXTS, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_passes_its_suite_against_the_binary() {
    let Some((node, tsc)) = typescript_tools() else { return };
    let Some(mcp) = McpServer::start().await else { return };
    let (app, limited) = (server().await, limited_server().await);
    let source = repo().join("clients/typescript");
    let project = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        project.path().join("package.json"),
        r#"{"name": "tessera-client-user", "private": true, "type": "module"}"#,
    )
    .expect("package.json");

    // `npm install ./clients/typescript` into a fresh project, offline: no
    // dependency to fetch, no build step (dist/ is checked in). Installed as
    // a copy (--install-links), so only what the package ships is there.
    run(
        "npm install of clients/typescript",
        Command::new("npm")
            .args(["install", "--offline", "--no-audit", "--no-fund", "--install-links"])
            .arg(&source)
            .current_dir(project.path()),
    );
    let installed = project.path().join("node_modules/@tessera/client");
    assert!(installed.join("dist/index.d.ts").exists(), "the installed package ships its types");
    assert!(!installed.join("src").exists() && !installed.join("node_modules").exists(), "only dist/ is shipped");

    copy_dir(&source.join("tests"), &project.path().join("tests"));
    // The suite's types.ts compiles against the installed package's .d.ts.
    run(
        "tsc on the suite's types.ts",
        Command::new(&node).arg(&tsc).args(["-p", "tests/tsconfig.json"]).current_dir(project.path()),
    );
    let out = run(
        "node --test on clients/typescript/tests",
        suite_env(Command::new(&node).args(["--test", "tests/"]).current_dir(project.path()), &app, &limited, &mcp),
    );
    let count = |name: &str| -> u32 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("# {name} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `# {name}` line:\n{out}"))
    };
    assert!(count("pass") > 0 && count("fail") == 0 && count("skipped") == 0 && count("cancelled") == 0, "{out}");
    eprintln!("typescript client: {} passed", count("pass"));
    app.assert_plaintext_absent(TYPESCRIPT_PLAINTEXTS, &[]).await;
}

/// The generated types are the server's document's, and dist/ is the
/// compiled source: regenerating from the running server's `/openapi.json`
/// and recompiling changes no checked-in file.
#[tokio::test]
async fn the_clients_generated_types_and_compiled_code_match_the_servers_document() {
    let Some(python) = tool("TESSERA_TEST_CLIENT_PYTHON") else { return };
    let Some((node, tsc)) = typescript_tools() else { return };
    let app = TestApp::sqlite().await;
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.text);
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("openapi.json");
    std::fs::write(&file, &doc.text).expect("write the document");

    let out = work.path().join("out");
    run(
        "clients/generate.sh",
        Command::new("bash")
            .arg(repo().join("clients/generate.sh"))
            .arg(&file)
            .arg(&out)
            .env("TESSERA_CLIENT_PYTHON", &python)
            .env("PATH", path_with(&node)),
    );
    let hint =
        "regenerate with `clients/generate.sh` against a running server, then `npm run build` in clients/typescript";
    for generated in ["python/src/tessera_client/_models.py", "typescript/src/generated/openapi.ts"] {
        let fresh = std::fs::read_to_string(out.join(generated)).expect("generated");
        let kept = std::fs::read_to_string(repo().join("clients").join(generated)).expect("checked in");
        assert!(fresh == kept, "clients/{generated} differs from what /openapi.json generates: {hint}");
    }

    let dist = work.path().join("dist");
    run(
        "tsc on clients/typescript",
        Command::new(&node)
            .arg(&tsc)
            .args(["-p", "tsconfig.json", "--outDir"])
            .arg(&dist)
            .current_dir(repo().join("clients/typescript")),
    );
    let compiled = files_under(&dist);
    let kept = files_under(&repo().join("clients/typescript/dist"));
    assert_eq!(
        compiled.keys().collect::<Vec<_>>(),
        kept.keys().collect::<Vec<_>>(),
        "dist/ has the compiled files: {hint}"
    );
    for (name, text) in &compiled {
        assert!(kept.get(name) == Some(text), "clients/typescript/dist/{name} is not the compiled source: {hint}");
    }
}

fn path_with(node: &str) -> String {
    let dir = Path::new(node).parent().map(|p| p.display().to_string()).unwrap_or_default();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

fn files_under(root: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(root).expect("under root").display().to_string();
                out.insert(name, std::fs::read_to_string(&path).expect("text"));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
