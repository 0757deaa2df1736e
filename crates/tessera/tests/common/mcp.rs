//! A real MCP server for tests, shared by the test binaries
//! (`#[path]`-included): `@modelcontextprotocol/server-everything` in
//! Streamable HTTP mode, started by `harness/mcp-server/start.mjs` (named by
//! `TESSERA_TEST_MCP_SERVER`) on a free loopback port, stopped on drop.
//! `restart` starts a fresh process on the same port: every session the old
//! one issued is unknown to it.

#![allow(dead_code)] // each test binary uses a different part of it

use std::process::Stdio;

use serde_json::Value;

/// The MCP server process, stopped on drop.
pub struct McpServer {
    /// `http://127.0.0.1:<port>/mcp`.
    pub url: String,
    pub port: u16,
    script: String,
    child: std::process::Child,
}

impl McpServer {
    /// Starts one, or None (with a printed reason) when
    /// `TESSERA_TEST_MCP_SERVER` is unset. In CI the variable must be set.
    pub async fn start() -> Option<Self> {
        let Ok(script) = std::env::var("TESSERA_TEST_MCP_SERVER") else {
            assert!(std::env::var("CI").is_err(), "TESSERA_TEST_MCP_SERVER must be set in CI: MCP tests may not skip");
            eprintln!("skipping: TESSERA_TEST_MCP_SERVER is not set (scripts/services.sh installs server-everything and sets it)");
            return None;
        };
        let (child, url, port) = spawn(&script, None).await;
        Some(Self { url, port, script, child })
    }

    /// Stops the server and starts a new one on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let (child, url, _) = spawn(&self.script, Some(self.port)).await;
        assert_eq!(url, self.url, "the restarted server listens where the first did");
        self.child = child;
    }

    /// Stops the server (the port is left closed).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn(script: &str, port: Option<u16>) -> (std::process::Child, String, u16) {
    let mut cmd = std::process::Command::new("node");
    cmd.arg(script)
        // The server exits when its stdin closes: it cannot outlive us.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = port {
        cmd.env("PORT", p.to_string());
    }
    let mut child = cmd.spawn().expect("node starts the MCP server");
    let v: Value = super::process::first_json_line(&mut child, "the MCP server").await;
    let url = v["url"].as_str().unwrap_or_else(|| panic!("url in {v}")).to_owned();
    let port = v["port"].as_u64().unwrap_or_else(|| panic!("port in {v}")) as u16;
    (child, url, port)
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
