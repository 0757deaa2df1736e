//! The `vault` backend: HashiCorp Vault or OpenBao KV v2.
//!
//! A tenant's secret lives at `<mount>/data/<prefix>/<tenantId>/<path>`; what
//! Tessera stores there is its own ciphertext (`{"kind","ciphertext",
//! "createdBy"}`), never plaintext, and KV v2's versions are Tessera's
//! versions (check-and-set, soft delete, undelete, destroy, max_versions).
//! Vault unreachable, sealed or refusing the token is a 503 naming the
//! problem; once it is back, requests work again without a restart.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tessera_core::ports::{SecretRecord, SecretVersionRecord, StoreTx};
use tessera_core::secret_store::{NewVersion, SecretStore};
use tessera_core::ErrorCode;
use tessera_core::ServiceError;

use crate::error::BackendError;
use crate::vault_client::{Reply, VaultClient, VaultConnection};

/// Where the KV v2 secrets live.
pub struct VaultSettings {
    /// How to reach Vault.
    pub connection: VaultConnection,
    /// `VAULT_MOUNT_POINT`, default `secret`.
    pub mount: String,
    /// `VAULT_PATH_PREFIX`, default `tessera`.
    pub prefix: String,
}

/// Secrets in Vault KV v2.
pub struct VaultSecrets {
    vault: VaultClient,
    mount: String,
    prefix: String,
}

impl VaultSecrets {
    /// A client; nothing is contacted until the first request.
    pub fn new(settings: VaultSettings) -> Result<Self, BackendError> {
        Ok(Self { vault: VaultClient::new(settings.connection)?, mount: settings.mount, prefix: settings.prefix })
    }

    fn url(&self, kind: &str, tenant: &str, path: &str) -> String {
        let mut url = self.vault.url(&format!("{}/{kind}/{}/{tenant}", self.mount, self.prefix));
        if !path.is_empty() {
            url.push('/');
            url.push_str(path);
        }
        url
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> Result<Reply, ServiceError> {
        self.vault.call(method, url, body).await
    }

    fn unexpected(&self, what: &str, r: &Reply) -> ServiceError {
        self.vault.unexpected(what, r)
    }

    async fn metadata(&self, tenant: &str, path: &str) -> Result<Option<Value>, ServiceError> {
        let r = self.call(Method::GET, &self.url("metadata", tenant, path), None).await?;
        match r.status {
            StatusCode::OK => Ok(Some(r.body["data"].clone())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.unexpected("read metadata", &r)),
        }
    }

    async fn post_versions(
        &self,
        action: &str,
        tenant: &str,
        path: &str,
        versions: &[u32],
    ) -> Result<(), ServiceError> {
        let r = self.call(Method::POST, &self.url(action, tenant, path), Some(json!({ "versions": versions }))).await?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(self.unexpected(action, &r))
        }
    }

    /// Every key under `dir` (relative to the tenant), depth first.
    async fn list_tree(&self, tenant: &str, dir: &str) -> Result<Vec<String>, ServiceError> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            let url = format!("{}?list=true", self.url("metadata", tenant, d.trim_end_matches('/')));
            let r = self.call(Method::GET, &url, None).await?;
            if r.status == StatusCode::NOT_FOUND {
                continue;
            }
            if !r.status.is_success() {
                return Err(self.unexpected("list secrets", &r));
            }
            for key in r.body["data"]["keys"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let full = format!("{d}{key}");
                if key.ends_with('/') {
                    stack.push(full);
                } else {
                    out.push(full);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// One version (the current one when `version` is none) from the data endpoint.
    async fn read_data(
        &self,
        tenant: &str,
        path: &str,
        version: Option<u32>,
    ) -> Result<Option<SecretVersionRecord>, ServiceError> {
        let mut url = self.url("data", tenant, path);
        if let Some(v) = version {
            url.push_str(&format!("?version={v}"));
        }
        let r = self.call(Method::GET, &url, None).await?;
        // A deleted or destroyed version answers 404 but still carries its metadata.
        let meta = &r.body["data"]["metadata"];
        if !(r.status == StatusCode::OK || (r.status == StatusCode::NOT_FOUND && meta.is_object())) {
            return if r.status == StatusCode::NOT_FOUND {
                Ok(None)
            } else {
                Err(self.unexpected("read a secret", &r))
            };
        }
        let found = u32_of(&meta["version"]);
        if found == 0 || version.is_some_and(|v| v != found) {
            return Ok(None);
        }
        let data = &r.body["data"]["data"];
        let destroyed = meta["destroyed"] == true;
        Ok(Some(SecretVersionRecord {
            version: found,
            kind: data["kind"].as_str().unwrap_or("value").to_owned(),
            ciphertext: if destroyed { None } else { data["ciphertext"].as_str().map(str::to_owned) },
            created_at: time(&meta["created_time"]).unwrap_or_default(),
            created_by: data["createdBy"].as_str().unwrap_or("vault").to_owned(),
            deleted_at: time(&meta["deletion_time"]),
        }))
    }

    /// Tenants that have anything under the prefix.
    async fn tenants(&self) -> Result<Vec<String>, ServiceError> {
        let url = format!("{}?list=true", self.vault.url(&format!("{}/metadata/{}", self.mount, self.prefix)));
        let r = self.call(Method::GET, &url, None).await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !r.status.is_success() {
            return Err(self.unexpected("list tenants", &r));
        }
        Ok(r.body["data"]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|k| k.trim_end_matches('/').to_owned())
            .collect())
    }
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn u32_of(v: &Value) -> u32 {
    v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

#[async_trait]
impl SecretStore for VaultSecrets {
    fn name(&self) -> &'static str {
        "vault"
    }

    async fn ready(&self) -> Result<(), ServiceError> {
        self.vault.check().await
    }

    async fn head(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<SecretRecord>, ServiceError> {
        Ok(self.metadata(tenant, path).await?.filter(|m| u32_of(&m["current_version"]) > 0).map(|m| SecretRecord {
            tenant_id: tenant.to_owned(),
            path: path.to_owned(),
            current_version: u32_of(&m["current_version"]),
            max_versions: u32_of(&m["max_versions"]),
            created_at: time(&m["created_time"]).unwrap_or_default(),
            updated_at: time(&m["updated_time"]).unwrap_or_default(),
        }))
    }

    async fn version(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> Result<Option<SecretVersionRecord>, ServiceError> {
        self.read_data(tenant, path, Some(version)).await
    }

    async fn latest(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<(u32, Option<SecretVersionRecord>)>, ServiceError> {
        // KV v2 answers the current version's data with its number: one request, not metadata then data.
        Ok(self.read_data(tenant, path, None).await?.map(|v| (v.version, Some(v))))
    }

    async fn versions(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Vec<SecretVersionRecord>, ServiceError> {
        let Some(m) = self.metadata(tenant, path).await? else { return Ok(Vec::new()) };
        let mut out: Vec<SecretVersionRecord> = m["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(n, v)| {
                Some(SecretVersionRecord {
                    version: n.parse().ok()?,
                    kind: String::new(),
                    // Metadata does not carry the ciphertext; only its presence matters here.
                    ciphertext: if v["destroyed"] == true { None } else { Some(String::new()) },
                    created_at: time(&v["created_time"]).unwrap_or_default(),
                    created_by: "vault".into(),
                    deleted_at: time(&v["deletion_time"]),
                })
            })
            .collect();
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    async fn append(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        new: NewVersion,
        cas: Option<u32>,
        max_versions: u32,
    ) -> Result<u32, ServiceError> {
        let mut body = json!({"data": {"kind": new.kind, "ciphertext": new.ciphertext, "createdBy": new.created_by}});
        if let Some(c) = cas {
            body["options"] = json!({ "cas": c });
        }
        let r = self.call(Method::POST, &self.url("data", tenant, path), Some(body)).await?;
        if r.status == StatusCode::BAD_REQUEST && r.body["errors"].to_string().contains("check-and-set") {
            return Err(ServiceError::conflict(
                ErrorCode::CasMismatch,
                format!("check-and-set expected version {} but the secret has another version", cas.unwrap_or(0)),
            ));
        }
        if !r.status.is_success() {
            return Err(self.unexpected("write a secret", &r));
        }
        let version = u32_of(&r.body["data"]["version"]);
        if version == 1 {
            let meta = json!({ "max_versions": max_versions });
            let m = self.call(Method::POST, &self.url("metadata", tenant, path), Some(meta)).await?;
            if !m.status.is_success() {
                return Err(self.unexpected("set max_versions", &m));
            }
        }
        Ok(version)
    }

    async fn set_deleted(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ServiceError> {
        self.post_versions(if at.is_some() { "delete" } else { "undelete" }, tenant, path, versions).await
    }

    async fn destroy(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
    ) -> Result<(), ServiceError> {
        self.post_versions("destroy", tenant, path, versions).await
    }

    async fn list_paths(&self, _tx: &mut dyn StoreTx, tenant: &str, prefix: &str) -> Result<Vec<String>, ServiceError> {
        // List from the deepest folder the prefix names, then filter.
        let dir = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
        Ok(self.list_tree(tenant, dir).await?.into_iter().filter(|p| p.starts_with(prefix)).collect())
    }

    async fn remove(&self, _tx: &mut dyn StoreTx, tenant: &str, path: &str) -> Result<(), ServiceError> {
        let r = self.call(Method::DELETE, &self.url("metadata", tenant, path), None).await?;
        if r.status.is_success() || r.status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(self.unexpected("remove a secret", &r))
        }
    }

    async fn remove_prefix(&self, tx: &mut dyn StoreTx, prefix: &str) -> Result<(), ServiceError> {
        for tenant in self.tenants().await? {
            for path in self.list_paths(tx, &tenant, prefix).await? {
                self.remove(tx, &tenant, &path).await?;
            }
        }
        Ok(())
    }

    async fn remove_tenant(&self, tenant: &str) -> Result<(), ServiceError> {
        for path in self.list_tree(tenant, "").await? {
            let r = self.call(Method::DELETE, &self.url("metadata", tenant, &path), None).await?;
            if !(r.status.is_success() || r.status == StatusCode::NOT_FOUND) {
                return Err(self.unexpected("remove a tenant's secrets", &r));
            }
        }
        Ok(())
    }
}
