//! The `environment` backend: read-only platform credentials from
//! `PLATFORM_CRED_<KEY>='{json}'` (seed 004). Each appears as a secret of the
//! `_platform` tenant at path `<key>` in lower case, version 1, kind `data`.
//! Every write is refused with `backend_read_only`. These values are the
//! operator's plaintext by nature; they are held in zeroizing memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tessera_core::ids::PLATFORM_TENANT;
use tessera_core::ports::{SecretRecord, SecretVersionRecord, StoreTx};
use tessera_core::secret_store::{read_only, NewVersion, SecretStore};
use tessera_core::ServiceError;
use zeroize::Zeroizing;

use crate::error::BackendError;

const PREFIX: &str = "PLATFORM_CRED_";

/// Read-only secrets from the process environment.
pub struct EnvironmentSecrets {
    values: BTreeMap<String, Zeroizing<String>>,
    loaded_at: DateTime<Utc>,
}

impl EnvironmentSecrets {
    /// Reads every `PLATFORM_CRED_<KEY>` from `vars`; a value that is not a
    /// JSON object is refused naming its variable (never its value).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, BackendError> {
        let mut values = BTreeMap::new();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix(PREFIX) else { continue };
            let value = Zeroizing::new(value);
            let path = key.to_ascii_lowercase();
            let valid_path = !path.is_empty() && path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_path {
                return Err(BackendError::Setting {
                    setting: name,
                    problem: "is not a valid name: the name after PLATFORM_CRED_ must be letters, digits and _",
                });
            }
            match serde_json::from_str::<serde_json::Value>(&value) {
                Ok(serde_json::Value::Object(_)) => {}
                _ => {
                    return Err(BackendError::Setting {
                        setting: name,
                        problem: r#"must be a JSON object, e.g. '{"api_key":"..."}'"#,
                    })
                }
            }
            values.insert(path, value);
        }
        Ok(Self { values, loaded_at: Utc::now() })
    }

    fn get(&self, tenant: &str, path: &str) -> Option<&Zeroizing<String>> {
        (tenant == PLATFORM_TENANT).then(|| self.values.get(path)).flatten()
    }

    fn record(&self, value: &str) -> SecretVersionRecord {
        SecretVersionRecord {
            version: 1,
            kind: "data".into(),
            // Plaintext by nature of this backend (see holds_plaintext).
            ciphertext: Some(value.to_owned()),
            created_at: self.loaded_at,
            created_by: "environment".into(),
            deleted_at: None,
        }
    }
}

#[async_trait]
impl SecretStore for EnvironmentSecrets {
    fn name(&self) -> &'static str {
        "environment"
    }

    fn holds_plaintext(&self) -> bool {
        true
    }

    async fn head(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<SecretRecord>, ServiceError> {
        Ok(self.get(tenant, path).map(|_| SecretRecord {
            tenant_id: tenant.to_owned(),
            path: path.to_owned(),
            current_version: 1,
            max_versions: 1,
            created_at: self.loaded_at,
            updated_at: self.loaded_at,
        }))
    }

    async fn version(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> Result<Option<SecretVersionRecord>, ServiceError> {
        Ok(self.get(tenant, path).filter(|_| version == 1).map(|v| self.record(v)))
    }

    async fn versions(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Vec<SecretVersionRecord>, ServiceError> {
        Ok(self.get(tenant, path).map(|v| vec![self.record(v)]).unwrap_or_default())
    }

    async fn append(
        &self,
        _: &mut dyn StoreTx,
        _: &str,
        _: &str,
        _: NewVersion,
        _: Option<u32>,
        _: u32,
    ) -> Result<u32, ServiceError> {
        Err(read_only(self.name()))
    }

    async fn set_deleted(
        &self,
        _: &mut dyn StoreTx,
        _: &str,
        _: &str,
        _: &[u32],
        _: Option<DateTime<Utc>>,
    ) -> Result<(), ServiceError> {
        Err(read_only(self.name()))
    }

    async fn destroy(&self, _: &mut dyn StoreTx, _: &str, _: &str, _: &[u32]) -> Result<(), ServiceError> {
        Err(read_only(self.name()))
    }

    async fn list_paths(&self, _tx: &mut dyn StoreTx, tenant: &str, prefix: &str) -> Result<Vec<String>, ServiceError> {
        if tenant != PLATFORM_TENANT {
            return Ok(Vec::new());
        }
        Ok(self.values.keys().filter(|p| p.starts_with(prefix)).cloned().collect())
    }

    async fn remove(&self, _: &mut dyn StoreTx, _: &str, _: &str) -> Result<(), ServiceError> {
        Err(read_only(self.name()))
    }

    async fn remove_prefix(&self, _: &mut dyn StoreTx, _: &str) -> Result<(), ServiceError> {
        Err(read_only(self.name()))
    }

    async fn remove_tenant(&self, _: &str) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_credentials_load_by_lower_case_key_and_bad_json_names_the_variable() {
        let env = EnvironmentSecrets::from_vars([
            ("PLATFORM_CRED_N8N_API".to_owned(), r#"{"api_key":"k","base_url":"https://n8n"}"#.to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ])
        .expect("valid");
        assert!(env.get(PLATFORM_TENANT, "n8n_api").is_some());
        assert!(env.get("acme", "n8n_api").is_none());
        let err = EnvironmentSecrets::from_vars([("PLATFORM_CRED_BAD".to_owned(), "not-json-secret".to_owned())])
            .err()
            .expect("refused");
        assert!(matches!(&err, BackendError::Setting { setting, .. } if setting == "PLATFORM_CRED_BAD"), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("PLATFORM_CRED_BAD") && !err.contains("not-json-secret"), "{err}");
    }
}
