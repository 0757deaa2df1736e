//! MCP tool invocation (seed 001's `POST /api/v1/tools/invoke`): an
//! integration's `mcp` settings (where its MCP server is) and the outbound
//! port that calls a tool on it. The implementation (Streamable HTTP
//! transport, sessions) lives in `tessera-outbound`; the service never
//! speaks HTTP itself.

use crate::ErrorCode;
use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ServiceError;

/// `mcp` of a registry entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpSettings {
    /// The MCP server's Streamable HTTP endpoint (`https://mcp.example.com/mcp`).
    pub url: String,
}

impl McpSettings {
    /// Validates a caller's settings: an absolute http(s) URL with a host,
    /// no credentials and no fragment.
    pub fn validate(&self) -> Result<url::Url, ServiceError> {
        crate::registry_url::refuse_credentials(&self.url, "mcp.url", ErrorCode::InvalidMcpSettings)?;
        url::Url::parse(&self.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .filter(|u| u.username().is_empty() && u.password().is_none() && u.fragment().is_none())
            .ok_or_else(|| {
                ServiceError::invalid(
                    ErrorCode::InvalidMcpSettings,
                    "mcp.url must be an absolute http(s) URL without credentials or fragment",
                    Some("mcp.url"),
                )
            })
    }
}

/// Why a tool call failed. Never carries a token or the call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The server does not offer the tool (it is not in its `tools/list`).
    #[error("the MCP server has no tool {0}")]
    UnknownTool(String),
    /// The server answered the call with a JSON-RPC error.
    #[error("the MCP server refused the call: {0}")]
    ToolError(String),
    /// The server refused the credential (HTTP 401 or 403).
    #[error("the MCP server refused the credential (HTTP {0})")]
    Unauthorized(u16),
    /// The server took longer than the time limit.
    #[error("the MCP server did not answer in time")]
    Timeout,
    /// The server could not be reached: which host, and why.
    #[error("the MCP server could not be reached: {0}")]
    Unreachable(String),
    /// The server answered, but not as MCP's Streamable HTTP transport says.
    #[error("the MCP server's answer is not valid MCP: {0}")]
    Protocol(String),
}

impl McpError {
    /// A short code for API errors and audit rows.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownTool(_) => ErrorCode::UnknownTool,
            Self::ToolError(_) => ErrorCode::ToolError,
            Self::Unauthorized(_) => ErrorCode::McpUnauthorized,
            Self::Timeout => ErrorCode::McpTimeout,
            Self::Unreachable(_) => ErrorCode::McpUnavailable,
            Self::Protocol(_) => ErrorCode::McpProtocolError,
        }
    }
}

/// Calls tools on MCP servers.
#[async_trait]
pub trait McpClient: Send + Sync {
    /// Calls `tools/call` with `{name: tool, arguments}` on the server at
    /// `url`, in the session kept under `session_key` (one per tenant and
    /// integration; initialized when there is none, initialized again once
    /// when the server says it expired), with `Authorization: Bearer` when a
    /// bearer is given. Returns the call's `result` object as the server sent
    /// it (which may say `isError: true`).
    async fn call_tool(
        &self,
        session_key: &str,
        url: &url::Url,
        bearer: Option<&SecretString>,
        tool: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, McpError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_settings() {
        let ok = |u: &str| McpSettings { url: u.into() }.validate().is_ok();
        assert!(ok("http://127.0.0.1:3001/mcp"));
        assert!(ok("https://mcp.notion.com/mcp"));
        assert!(!ok("mcp.notion.com/mcp"));
        assert!(!ok("ftp://mcp.notion.com/mcp"));
        assert!(!ok("https://user:pw@mcp.notion.com/mcp"));
        assert!(!ok("https://mcp.notion.com/mcp#x"));
        assert!(!ok("file:///etc/passwd"));
    }
}
