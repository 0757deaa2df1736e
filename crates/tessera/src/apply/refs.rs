//! References in a tenants file: `${VAULT:<kv path>:<field>}` (Vault or
//! OpenBao KV v2), `${ENV:<NAME>}` and `${FILE:<path>}`. Resolved values are
//! kept in `Zeroizing` strings and never appear in an error message.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tessera_backends::vault_client::VaultClient;
use zeroize::Zeroizing;

/// Resolves references, reading each Vault path once.
pub struct Resolver {
    client: Option<Result<VaultClient, Unresolved>>,
    vault: HashMap<String, Result<HashMap<String, Zeroizing<String>>, Unresolved>>,
}

/// Why one reference could not be resolved (never the value).
#[derive(Debug)]
pub struct RefError {
    pub reference: String,
    pub reason: Unresolved,
}

/// Why a reference has no value. Cloned because a Vault failure is kept
/// and given to every reference to the same client or path (each is read
/// once). Nothing here holds a resolved value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unresolved {
    /// `${...` without its `}`.
    #[error("has no closing }}")]
    Unclosed,
    /// `${KIND:...}` of an unknown kind, or with no `:`.
    #[error("is not a reference")]
    NotAReference,
    /// `${VAULT:...}` without both a path and a field.
    #[error("is not VAULT:<path>:<field>")]
    NotVaultPathField,
    /// `${ENV:NAME}` with NAME unset.
    #[error("{0} is not set")]
    EnvUnset(String),
    /// `${FILE:path}` that cannot be read (the kind only: the path is in the reference).
    #[error("cannot read the file: {0}")]
    File(std::io::ErrorKind),
    /// The Vault settings (VAULT_ADDR, the login, TLS) do not make a client;
    /// the chain under it names the setting and its cause.
    #[error("{0:#}")]
    VaultSettings(Arc<anyhow::Error>),
    /// Vault could not be asked (unreachable, sealed, the login refused).
    #[error("{}", .0.message)]
    Vault(tessera_core::ServiceError),
    /// No secret at that KV v2 path.
    #[error("nothing at Vault path {0}")]
    NotInVault(String),
    /// Vault answered the read with another status.
    #[error("Vault answered {status} for {path}")]
    VaultStatus { status: reqwest::StatusCode, path: String },
    /// What Vault answered is not a KV v2 secret.
    #[error("Vault's answer for {0} is not a KV v2 secret")]
    NotKv2(String),
    /// The secret has no such field.
    #[error("no field {0}")]
    NoField(String),
}

#[derive(Deserialize)]
struct KvResponse {
    data: KvData,
}

#[derive(Deserialize)]
struct KvData {
    data: HashMap<String, Value>,
}

impl Resolver {
    pub fn new() -> Self {
        Self { client: None, vault: HashMap::new() }
    }

    /// Replaces every reference in `s`; the first failure is returned.
    pub async fn resolve(&mut self, s: &str) -> Result<Zeroizing<String>, RefError> {
        let mut out = Zeroizing::new(String::with_capacity(s.len()));
        let mut rest = s;
        loop {
            let start = ["${VAULT:", "${ENV:", "${FILE:"].iter().filter_map(|p| rest.find(p)).min();
            let Some(start) = start else {
                out.push_str(rest);
                return Ok(out);
            };
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find('}') else {
                return Err(RefError { reference: after.to_owned(), reason: Unresolved::Unclosed });
            };
            let reference = &after[..=end];
            let value = self
                .resolve_one(reference)
                .await
                .map_err(|reason| RefError { reference: reference.to_owned(), reason })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
    }

    async fn resolve_one(&mut self, reference: &str) -> Result<Zeroizing<String>, Unresolved> {
        let inner = &reference[2..reference.len() - 1];
        let (kind, arg) = inner.split_once(':').ok_or(Unresolved::NotAReference)?;
        match kind {
            "ENV" => std::env::var(arg).map(Zeroizing::new).map_err(|_| Unresolved::EnvUnset(arg.to_owned())),
            "FILE" => {
                let mut text = Zeroizing::new(std::fs::read_to_string(arg).map_err(|e| Unresolved::File(e.kind()))?);
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
            "VAULT" => {
                let (path, field) = arg.rsplit_once(':').ok_or(Unresolved::NotVaultPathField)?;
                if path.is_empty() || field.is_empty() {
                    return Err(Unresolved::NotVaultPathField);
                }
                let path = kv2_path(path);
                if !self.vault.contains_key(&path) {
                    let read = self.read_vault(&path).await;
                    self.vault.insert(path.clone(), read);
                }
                match self.vault.get(&path).expect("just read") {
                    Ok(fields) => fields.get(field).cloned().ok_or_else(|| Unresolved::NoField(field.to_owned())),
                    Err(e) => Err(e.clone()),
                }
            }
            _ => Err(Unresolved::NotAReference),
        }
    }

    async fn read_vault(&mut self, path: &str) -> Result<HashMap<String, Zeroizing<String>>, Unresolved> {
        // The same client (login, renewal, TLS settings) as the vault backend's.
        let client = self.client.get_or_insert_with(|| {
            crate::settings::vault_connection("a tenants file has ${VAULT:...} references")
                .and_then(|c| Ok(VaultClient::new(c)?))
                .map_err(|e| Unresolved::VaultSettings(Arc::new(e)))
        });
        let client = client.as_ref().map_err(Clone::clone)?;
        let r = client.call(reqwest::Method::GET, &client.url(path), None).await.map_err(Unresolved::Vault)?;
        if r.status == reqwest::StatusCode::NOT_FOUND {
            return Err(Unresolved::NotInVault(path.to_owned()));
        }
        if !r.status.is_success() {
            return Err(Unresolved::VaultStatus { status: r.status, path: path.to_owned() });
        }
        let parsed: KvResponse = serde_json::from_value(r.body).map_err(|_| Unresolved::NotKv2(path.to_owned()))?;
        Ok(parsed
            .data
            .data
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => Zeroizing::new(s),
                    other => Zeroizing::new(other.to_string()),
                };
                (k, text)
            })
            .collect())
    }
}

/// `secret/data/tenant-001/notion` as is; `secret/tenant-001/notion` becomes
/// `secret/data/tenant-001/notion` (KV v2 reads go through `<mount>/data/`).
pub fn kv2_path(path: &str) -> String {
    let path = path.trim_matches('/');
    let mut parts = path.splitn(2, '/');
    let mount = parts.next().unwrap_or_default();
    match parts.next() {
        Some(rest) if rest == "data" || rest.starts_with("data/") => path.to_owned(),
        Some(rest) => format!("{mount}/data/{rest}"),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any text with reference-like pieces resolves or names the
        /// reference that failed; no input panics. (No Vault reference:
        /// it would reach for a server.)
        #[test]
        fn any_text_with_references_resolves_or_fails_cleanly(parts in proptest::collection::vec(prop_oneof![
            Just("${".to_owned()), Just("}".to_owned()), Just("ENV:".to_owned()), Just("FILE:".to_owned()),
            Just(":".to_owned()), Just("$".to_owned()), Just("{".to_owned()), "[A-Za-z0-9_. ]{0,6}",
        ], 0..10)) {
            let text = parts.concat();
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let out = runtime.block_on(async { Resolver::new().resolve(&text).await });
            if let Err(e) = out {
                prop_assert!(text.contains(&e.reference), "{} not in {}", e.reference, text);
            }
        }
    }

    #[test]
    fn kv2_paths() {
        assert_eq!(kv2_path("secret/data/tenant-001/notion"), "secret/data/tenant-001/notion");
        assert_eq!(kv2_path("secret/tenant-001/notion"), "secret/data/tenant-001/notion");
        assert_eq!(kv2_path("/kv/a"), "kv/data/a");
    }

    #[tokio::test]
    async fn text_and_env() {
        let mut r = Resolver::new();
        let path = std::env::var("PATH").unwrap_or_default();
        let got = r.resolve("a ${ENV:PATH} b").await.map_err(|e| e.reason).unwrap_or_default();
        assert_eq!(got.as_str(), format!("a {path} b"));
        let unset = r.resolve("${ENV:TESSERA_SURELY_UNSET_VAR}").await.expect_err("unset");
        assert!(matches!(&unset.reason, Unresolved::EnvUnset(name) if name == "TESSERA_SURELY_UNSET_VAR"));
        assert_eq!(unset.reason.to_string(), "TESSERA_SURELY_UNSET_VAR is not set");
        assert_eq!(r.resolve("plain ${x}").await.map(|s| s.to_string()).ok().as_deref(), Some("plain ${x}"));
    }

    #[tokio::test]
    async fn each_reference_that_does_not_resolve_says_why() {
        let mut r = Resolver::new();
        let mut why = async |text: &str| r.resolve(text).await.expect_err(text).reason;
        assert!(matches!(why("${ENV:X").await, Unresolved::Unclosed));
        assert!(matches!(why("${VAULT:secret/a}").await, Unresolved::NotVaultPathField));
        assert!(matches!(why("${VAULT::field}").await, Unresolved::NotVaultPathField));
        let missing = why("${FILE:/surely/not/here/tessera}").await;
        assert!(matches!(missing, Unresolved::File(std::io::ErrorKind::NotFound)), "{missing:?}");
    }
}
