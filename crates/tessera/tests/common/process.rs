//! What every black-box test of the `tessera` binary shares, whichever
//! harness drives it (`api/helpers.rs`'s `TestApp`, `common/offline.rs`'s
//! `Vault` for the admin commands): the root token, fresh key material, the
//! one way a process is started (a clean environment of its own) and waited
//! for, and the dumps a test searches for plaintext (logs, data files).
//! `#[path]`-included by both.

#![allow(dead_code)] // each test binary uses a different part of it

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The admin token every test process is started with.
pub const ROOT_TOKEN: &str = "test-root-token-0123456789abcdefghijklmnop";

/// 32 random bytes (a master key, a nonce source), from the OS's randomness
/// through UUID v4.
pub fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    for chunk in b.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    b
}

/// A `tessera` command with exactly `env` (and `PATH`), run in `dir`,
/// killed when dropped: nothing of the test runner's environment leaks in.
pub fn tessera(env: &[(String, String)], dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Starts `cmd serve` with its output in `<dir>/<name>.out.log` and
/// `.err.log`, and waits (30 s at most) for the line that says where it
/// listens; returns the process and its base URL. A process that exits first
/// fails the test with what it wrote.
pub async fn serve(mut cmd: Command, dir: &Path, name: &str) -> (Child, String) {
    let out = dir.join(format!("{name}.out.log"));
    let err = dir.join(format!("{name}.err.log"));
    let mut child = cmd
        .arg("serve")
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn tessera serve");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(addr) = text.lines().find_map(|l| l.strip_prefix("tessera listening on ")) {
            return (child, addr.trim().to_owned());
        }
        if let Some(status) = child.try_wait().ok().flatten() {
            panic!(
                "tessera serve exited ({status}) before listening:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < Duration::from_secs(30), "tessera serve did not start in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything the processes of a test logged: every `*.log` file in `dir`.
pub fn logs_in(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

/// Every byte of every file under `dir` (database, WAL, key files, backups).
pub fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(bytes_under(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    all
}

/// The first line a harness server (`node harness/...`) prints, parsed as
/// JSON: where it listens. Waits 30 s at most; a server that prints nothing
/// by then is killed and fails the test, naming `what` it was.
pub async fn first_json_line(child: &mut std::process::Child, what: &str) -> serde_json::Value {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = match tokio::time::timeout(Duration::from_secs(30), first_line).await {
        Ok(Ok(Ok(line))) if !line.trim().is_empty() => line,
        outcome => {
            // Killing it also ends a read still waiting on its stdout.
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not print its address within 30 s: {outcome:?}");
        }
    };
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}'s first line is not JSON ({e}): {line}"))
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
