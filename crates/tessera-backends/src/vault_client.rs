//! The small Vault/OpenBao HTTP client the `vault` backend and the
//! `vault-transit` key provider share: token and namespace headers, time
//! limits, and errors that name the problem (503 when Vault is unreachable,
//! sealed or refuses the token).

use std::time::Duration;
use tessera_core::ErrorCode;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tessera_core::ServiceError;

/// Where and how to reach Vault.
pub struct VaultConnection {
    /// `VAULT_ADDR` / `VAULT_URL`, e.g. `http://127.0.0.1:8200`.
    pub addr: String,
    /// `VAULT_TOKEN`.
    pub token: SecretString,
    /// `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
}

/// An answer from Vault: status and JSON body.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

/// A client bound to one Vault.
pub(crate) struct VaultClient {
    http: reqwest::Client,
    pub(crate) addr: String,
    token: SecretString,
    namespace: Option<String>,
}

impl VaultClient {
    pub(crate) fn new(c: VaultConnection) -> Result<Self, String> {
        let addr = c.addr.trim_end_matches('/').to_owned();
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            return Err("VAULT_ADDR must start with http:// or https://".into());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("VAULT_ADDR: cannot build an HTTP client: {e}"))?;
        Ok(Self { http, addr, token: c.token, namespace: c.namespace })
    }

    /// `<addr>/v1/<path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.addr)
    }

    pub(crate) async fn call(&self, method: Method, url: &str, body: Option<Value>) -> Result<Reply, ServiceError> {
        let mut req = self.http.request(method, url).header("X-Vault-Token", self.token.expose_secret());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(error = %e, "Vault request failed");
            ServiceError::unavailable(
                ErrorCode::VaultUnavailable,
                format!("the Vault backend at {} is unreachable", self.addr),
            )
        })?;
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        match status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(ServiceError::unavailable(
                ErrorCode::VaultDenied,
                "Vault refused the request: check VAULT_TOKEN and its policy on the mount",
            )),
            s if s.is_server_error() => {
                tracing::warn!(status = %s, "Vault answered with an error");
                Err(ServiceError::unavailable(
                    ErrorCode::VaultUnavailable,
                    format!("the Vault backend answered {s} (sealed or down?)"),
                ))
            }
            _ => Ok(Reply { status, body }),
        }
    }

    pub(crate) fn unexpected(&self, what: &str, r: &Reply) -> ServiceError {
        tracing::error!(status = %r.status, errors = %r.body["errors"], "unexpected Vault answer to {what}");
        ServiceError::unavailable(ErrorCode::VaultError, format!("Vault refused to {what} (status {})", r.status))
    }
}
