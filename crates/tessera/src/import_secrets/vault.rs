//! `--from-vault`: every secret of a Vault or OpenBao KV v2 subtree
//! (`VAULT_ADDR`/`VAULT_URL`, `VAULT_TOKEN`, `VAULT_NAMESPACE`), walked with
//! `LIST <mount>/metadata/<path>` and read with `GET <mount>/data/<path>`.
//! Each secret's fields come over as one `data` secret (the shape the
//! Vault-compatible API serves), at its path relative to the subtree.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// One secret read from Vault.
pub struct VaultSecret {
    /// Its path under the subtree (`stripe/api`).
    pub relative: String,
    /// Its newest version's fields; none when that version is deleted or destroyed.
    pub fields: Option<Map<String, Value>>,
}

/// A KV v2 mount to read from.
pub struct Kv {
    client: reqwest::Client,
    addr: String,
    token: Zeroizing<String>,
    namespace: Option<String>,
    mount: String,
}

impl Kv {
    /// From the environment; a missing variable is an argument error.
    pub fn from_env(mount: &str) -> anyhow::Result<Self> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        let Some(addr) = var("VAULT_ADDR").or_else(|| var("VAULT_URL")) else {
            bail!("--from-vault needs VAULT_ADDR (or VAULT_URL)");
        };
        let Some(token) = var("VAULT_TOKEN") else { bail!("--from-vault needs VAULT_TOKEN") };
        let addr = addr.trim().trim_end_matches('/').to_owned();
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            bail!("VAULT_ADDR must start with http:// or https://");
        }
        let mount = mount.trim_matches('/').to_owned();
        if mount.is_empty() || !mount.split('/').all(segment_ok) {
            bail!("--mount must be path segments of letters, digits, '.', '_' or '-'");
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the Vault HTTP client")?;
        Ok(Self { client, addr, token: Zeroizing::new(token), namespace: var("VAULT_NAMESPACE"), mount })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", self.token.as_str());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        req
    }

    /// The keys of one folder (sub-folders end in `/`); none if it has none.
    async fn list(&self, folder: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("{}/metadata/{folder}", self.mount);
        let method = reqwest::Method::from_bytes(b"LIST").expect("LIST is a valid method");
        let resp = self.request(method, &path).send().await.map_err(unreachable)?;
        match resp.status() {
            reqwest::StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if !s.is_success() => bail!("Vault answered {s} listing {path}"),
            _ => {}
        }
        let body: Value = resp.json().await.with_context(|| format!("Vault's list of {path} is not JSON"))?;
        let keys = body["data"]["keys"].as_array().cloned().unwrap_or_default();
        Ok(keys.into_iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
    }

    /// The newest version's fields of one secret; none if deleted or destroyed.
    async fn read(&self, secret: &str) -> anyhow::Result<Option<Map<String, Value>>> {
        let path = format!("{}/data/{secret}", self.mount);
        let resp = self.request(reqwest::Method::GET, &path).send().await.map_err(unreachable)?;
        let status = resp.status();
        // A deleted or destroyed newest version answers 404 with its metadata.
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("Vault answered {status} reading {path}");
        }
        let body = Zeroizing::new(resp.bytes().await.map_err(unreachable)?.to_vec());
        let doc: Value =
            serde_json::from_slice(&body).map_err(|_| anyhow::anyhow!("Vault's answer for {path} is not JSON"))?;
        match doc.get("data").and_then(|d| d.get("data")) {
            Some(Value::Object(fields)) => Ok(Some(fields.clone())),
            Some(Value::Null) | None => Ok(None),
            Some(_) => bail!("{path} is not a KV v2 secret (its data is not an object of fields)"),
        }
    }

    /// Every secret under `root` (depth first, sorted as Vault lists them).
    pub async fn walk(&self, root: &str) -> anyhow::Result<Vec<VaultSecret>> {
        let root = root.trim_matches('/');
        if !root.is_empty() && !root.split('/').all(segment_ok) {
            bail!("--path must be path segments of letters, digits, '.', '_' or '-'");
        }
        let mut found = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(rel) = folders.pop() {
            let folder = join(root, &rel);
            let keys = self.list(&if folder.is_empty() { folder.clone() } else { format!("{folder}/") }).await?;
            if keys.is_empty() && rel.is_empty() && !root.is_empty() {
                // `--path` may name one secret rather than a folder.
                if let Some(fields) = self.read(root).await? {
                    let leaf = root.rsplit('/').next().unwrap_or(root).to_owned();
                    found.push(VaultSecret { relative: leaf, fields: Some(fields) });
                }
                continue;
            }
            let mut sub = Vec::new();
            for key in keys {
                if let Some(dir) = key.strip_suffix('/') {
                    sub.push(join(&rel, dir));
                } else {
                    let relative = join(&rel, &key);
                    let fields = self.read(&join(root, &relative)).await?;
                    found.push(VaultSecret { relative, fields });
                }
            }
            folders.extend(sub.into_iter().rev());
        }
        Ok(found)
    }

    /// `<mount>/<path>`, for messages.
    pub fn describe(&self, relative: &str, root: &str) -> String {
        format!("{}/{}", self.mount, join(root.trim_matches('/'), relative))
    }
}

fn segment_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

fn unreachable(e: reqwest::Error) -> anyhow::Error {
    anyhow::anyhow!("Vault did not answer: {}", e.without_url())
}
