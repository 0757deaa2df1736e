//! What the service calls the outside world with. `serve` passes the real
//! clients (`tessera-outbound`); an admin command, which calls no provider,
//! passes [`Outbound::offline`], whose clients refuse every call with a
//! reason. Either way the service holds a client for every port, so a use
//! case never checks whether one was set, and no process can forget one.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::health::{HttpProbe, ProbeAuth, ProbeOutcome};
use crate::mcp::{McpClient, McpError};
use crate::oauth::{OAuthClient, OAuthClientConfig, OAuthError, TokenHint, TokenResponse};
use crate::ports::{Upstream, UpstreamError, UpstreamRequest, UpstreamResponse};
use crate::webhook::{SendOutcome, WebhookSender};

/// The service's outbound clients, one per port.
#[derive(Clone)]
pub struct Outbound {
    /// OAuth providers: code exchange, refresh, revocation.
    pub oauth: Arc<dyn OAuthClient>,
    /// MCP servers' tools.
    pub mcp: Arc<dyn McpClient>,
    /// Health probes of connections.
    pub probe: Arc<dyn HttpProbe>,
    /// Webhook deliveries.
    pub webhooks: Arc<dyn WebhookSender>,
    /// Proxied calls to integrations' APIs.
    pub upstream: Arc<dyn Upstream>,
}

impl Outbound {
    /// Clients that send nothing: for a process that makes no outbound
    /// calls (the admin commands). Each call fails as an unreachable peer
    /// would, naming this process as the reason.
    pub fn offline() -> Self {
        let offline = Arc::new(Offline);
        Self {
            oauth: offline.clone(),
            mcp: offline.clone(),
            probe: offline.clone(),
            webhooks: offline.clone(),
            upstream: offline,
        }
    }
}

/// Refuses every outbound call.
struct Offline;

const WHY: &str = "this process makes no outbound calls";

#[async_trait]
impl OAuthClient for Offline {
    async fn exchange_code(
        &self,
        _: &OAuthClientConfig,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        Err(OAuthError::Unavailable(WHY.into()))
    }

    async fn refresh(&self, _: &OAuthClientConfig, _: &SecretString) -> Result<TokenResponse, OAuthError> {
        Err(OAuthError::Unavailable(WHY.into()))
    }

    async fn revoke(&self, _: &OAuthClientConfig, _: &str, _: &SecretString, _: TokenHint) -> Result<(), OAuthError> {
        Err(OAuthError::Unavailable(WHY.into()))
    }
}

#[async_trait]
impl McpClient for Offline {
    async fn call_tool(
        &self,
        _: &str,
        _: &url::Url,
        _: Option<&SecretString>,
        _: &str,
        _: serde_json::Value,
    ) -> Result<serde_json::Value, McpError> {
        Err(McpError::Unreachable(WHY.into()))
    }
}

#[async_trait]
impl HttpProbe for Offline {
    async fn probe(&self, _: &str, _: url::Url, _: ProbeAuth<'_>) -> ProbeOutcome {
        ProbeOutcome::NoAnswer(WHY.into())
    }
}

#[async_trait]
impl WebhookSender for Offline {
    async fn post(&self, _: url::Url, _: Vec<(&'static str, String)>, _: Vec<u8>) -> SendOutcome {
        SendOutcome::NoAnswer(WHY.into())
    }
}

#[async_trait]
impl Upstream for Offline {
    async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let host =
            format!("{}:{}", request.url.host_str().unwrap_or(""), request.url.port_or_known_default().unwrap_or(0));
        Err(UpstreamError::Unreachable { host, cause: WHY.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_offline_process_refuses_every_call_with_its_reason() {
        let out = Outbound::offline();
        let url = url::Url::parse("https://api.example.com/x").expect("a URL");
        let mcp = out.mcp.call_tool("s", &url, None, "t", serde_json::Value::Null).await;
        assert!(matches!(mcp, Err(McpError::Unreachable(ref why)) if why == WHY), "{mcp:?}");
        let probe = out.probe.probe("GET", url.clone(), ProbeAuth::None).await;
        assert_eq!(probe, ProbeOutcome::NoAnswer(WHY.into()));
        assert_eq!(out.webhooks.post(url.clone(), vec![], vec![]).await, SendOutcome::NoAnswer(WHY.into()));
        let sent = out
            .upstream
            .send(UpstreamRequest {
                method: http::Method::GET,
                url,
                headers: http::HeaderMap::new(),
                body: crate::ports::UpstreamBody::Full(bytes::Bytes::new()),
            })
            .await;
        assert!(
            matches!(sent, Err(UpstreamError::Unreachable { ref host, .. }) if host == "api.example.com:443"),
            "{:?}",
            sent.err()
        );
    }
}
