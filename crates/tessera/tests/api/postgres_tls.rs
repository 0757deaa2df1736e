//! Encrypted PostgreSQL connections: a throwaway PostgreSQL cluster started
//! here (initdb + pg_ctl in a temp dir, on a free port) accepts TCP
//! connections over TLS only, with a certificate from a CA the test makes;
//! Tessera works with `sslmode=require`, `verify-ca` and `verify-full` (and
//! `sslrootcert=`), and refuses to start when the certificate does not check
//! out or TLS is turned off.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, TestApp, ROOT_TOKEN};
use crate::tls::Ca;

/// A PostgreSQL cluster of its own, stopped (and deleted) on drop.
struct TlsPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Runs the server's commands as this user (`postgres` when the tests run as root).
    user: Option<String>,
    port: u16,
    ca: Ca,
}

/// Where `initdb` and `pg_ctl` are: `TESSERA_TEST_PG_BIN`, or the newest `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("TESSERA_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn skip(why: &str) -> Option<TlsPostgres> {
    assert!(std::env::var("CI").is_err(), "{why}: PostgreSQL TLS tests may not skip in CI");
    eprintln!("skipping: {why}");
    None
}

/// `(uid, gid)` of a system user, from `getent passwd`.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("getent").args(["passwd", user]).output().ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let mut fields = line.trim().split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

impl TlsPostgres {
    /// Starts a cluster whose certificate names `names` (and nothing else), or None with a reason.
    fn start(names: &[&str]) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            return skip(
                "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql; set TESSERA_TEST_PG_BIN",
            );
        };
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        // initdb refuses to run as root: the cluster then belongs to the `postgres` user.
        let owner = if root {
            match ids_of("postgres") {
                Some(ids) => Some(ids),
                None => return skip("running as root and there is no postgres user to own a test cluster"),
            }
        } else {
            None
        };
        let dir = tempfile::tempdir().expect("dir");
        let ca = Ca::new("PostgreSQL test CA");
        let me = Self { bin, user: owner.map(|_| "postgres".to_owned()), port: free_port(), ca, dir };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(me.dir.path(), Some(uid), Some(gid)).expect("chown the cluster dir");
        }
        let data = me.data();
        me.run("initdb", &["-D", &data.display().to_string(), "-A", "trust", "-U", "postgres", "-E", "UTF8"]);
        let server = me.ca.leaf("postgres", names, rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let own = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
            }
        };
        for (name, text) in [("server.crt", &server.cert), ("server.key", &server.key)] {
            std::fs::write(data.join(name), text).expect("write");
            own(&data.join(name));
        }
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\n\
             ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n",
            me.port,
            me.dir.path().display()
        );
        let mut text = std::fs::read_to_string(data.join("postgresql.conf")).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), text).expect("postgresql.conf");
        // TCP only over TLS: a clear-text connection is refused by the server itself.
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n";
        std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
        let log = me.dir.path().join("server.log").display().to_string();
        me.run("pg_ctl", &["-D", &data.display().to_string(), "-l", &log, "-w", "-t", "60", "start"]);
        Some(me)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs (as the cluster's owner), asserting success.
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let out = match &self.user {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        }
        .expect("runs");
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The CA certificate, in a file anyone may read.
    fn ca_file(&self, ca: &Ca, name: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, ca.pem()).expect("CA file");
        path.display().to_string()
    }

    /// A URL of database `db` on `host`, with `params`.
    fn url(&self, host: &str, db: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}?{params}", self.port)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // Let the apps' own clean-up (dropping their databases) go first.
        std::thread::sleep(Duration::from_millis(300));
        let data = self.data().display().to_string();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = match &self.user {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        };
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

/// `tessera serve` on `url` exits at once; its error output.
fn refused_start(url: &str) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env_clear()
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env("TESSERA_DATA_DIR", dir.path().join("data"))
        .env("DATABASE_URL", url)
        .env("TESSERA_MASTER_KEY", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
        .env("TESSERA_ROOT_TOKEN", ROOT_TOKEN)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "{url}: started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_that_encrypts_works_and_a_certificate_that_does_not_check_out_stops_start_up() {
    // The certificate names `localhost` only: verify-full must reach it by that name.
    let Some(pg) = TlsPostgres::start(&["localhost"]) else { return };
    let ca = pg.ca_file(&pg.ca, "root.crt");
    let other_ca = pg.ca_file(&Ca::new("Another CA"), "other.crt");
    for (host, params) in [
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        // verify-ca through the certificate's name: sqlx 0.8 with rustls >= 0.23.24 checks the
        // name under verify-ca too (sqlx issue 3793), stricter than libpq, never weaker.
        ("localhost", format!("sslmode=verify-ca&sslrootcert={ca}")),
        ("127.0.0.1", "sslmode=require".to_owned()),
    ] {
        let db_name = format!("tessera_tls_{}", uuid::Uuid::new_v4().simple());
        let admin_url = pg.url(host, "postgres", &params);
        {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut admin = sqlx::AnyConnection::connect(&admin_url).await.expect("admin connection over TLS");
            sqlx::query(&format!("CREATE DATABASE {db_name}")).execute(&mut admin).await.expect("create database");
        }
        let app = TestApp::start(Db::Postgres { admin_url: admin_url.clone(), db_name: db_name.clone() }, &[]).await;
        app.tenant("acme").await;
        let r = app.put("/tenants/acme/secrets/db/PASSWORD", ROOT_TOKEN, json!({"value": "over-tls-to-pg"})).await;
        assert_eq!(r.status, StatusCode::OK, "{params}: {}", r.text);
        assert_eq!(app.get("/tenants/acme/secrets/db/PASSWORD", ROOT_TOKEN).await.body["value"], "over-tls-to-pg");
        let ready = app.call(reqwest::Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
        // Every connection Tessera holds is encrypted (the server refuses others anyway).
        let count = |ssl: bool| {
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
                 WHERE a.datname = '{db_name}' AND a.pid <> pg_backend_pid() AND s.ssl = {ssl}"
            )
        };
        assert_eq!(app.sql_text(&count(false)).await, "0", "{params}");
        assert_ne!(app.sql_text(&count(true)).await, "0", "{params}");
    }

    // The name the client dialled is not on the certificate: verify-full refuses, naming DATABASE_URL.
    let stderr = refused_start(&pg.url("127.0.0.1", "postgres", &format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    // A certificate from a CA the operator did not name.
    let stderr =
        refused_start(&pg.url("localhost", "postgres", &format!("sslmode=verify-full&sslrootcert={other_ca}")));
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    // No TLS at all: the server refuses the connection.
    let stderr = refused_start(&pg.url("127.0.0.1", "postgres", "sslmode=disable"));
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    println!("refusals name DATABASE_URL, e.g.: {}", stderr.trim());
}
