//! Tool invocation (seed 001, "Using Integration as Tenant"): `POST
//! /api/v1/tools/invoke` calls a tool on the integration's MCP server with
//! the tenant's credential as `Authorization: Bearer`. The tenant comes from
//! the caller (an admin names it); the connection must exist and be
//! enabled; an expired OAuth token is refreshed first, and one the server
//! refuses (401) is refreshed and the call tried once more. The audit row names
//! the tool and the outcome, never arguments or results.

use crate::ErrorCode;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Ctx, Tessera};
use crate::access::Access;
use crate::error::{ErrorKind, ServiceError};
use crate::ids::{IntegrationKey, TenantId};
use crate::mcp::{McpError, McpSettings};
use crate::ports::IntegrationRecord;

/// Longest tool name accepted.
const MAX_TOOL_NAME: usize = 128;

/// `POST /api/v1/tools/invoke`'s body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolInvocation {
    /// `<integration>.<tool>` (`notion.createPage`), or the bare tool name with `integration`.
    pub tool_id: String,
    /// The integration; optional when `toolId` names it (both given: they must agree).
    #[serde(default)]
    pub integration: Option<String>,
    /// The tenant: required for admins; a tenant-bound key may omit it or
    /// name only its own (documented as required, which always works).
    #[serde(default)]
    #[schema(required = true, value_type = String, pattern = r"^([a-z0-9][a-z0-9_-]{0,62}|_platform)$")]
    pub tenant_id: Option<String>,
    /// The tool's arguments (a JSON object; default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Value,
}

/// The answer to a tool invocation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// `<integration>.<tool>`.
    pub tool_id: String,
    /// The integration.
    pub integration: String,
    /// The tenant whose credential was used.
    pub tenant_id: String,
    /// The MCP `tools/call` result (`content`, `structuredContent`, ...), as the server sent it.
    #[schema(value_type = Object)]
    pub result: Value,
}

impl Tessera {
    /// Calls a tool on an integration's MCP server for a tenant. Errors: 400
    /// (bad body, integration and toolId disagree), 404 (tenant, integration,
    /// connection or tool unknown), 409 (no MCP settings, connection
    /// disabled, token expired for good), 422 `tool_error` (the server
    /// refused the call, or the tool's result says `isError: true`; the
    /// message is the server's text), 502 (server unreachable, too slow,
    /// refused the credential, or not speaking MCP).
    pub async fn invoke_tool(&self, ctx: &Ctx, input: ToolInvocation) -> Result<ToolResult, ServiceError> {
        let client = self.outbound.mcp.clone();
        let tenant = self.caller_tenant(ctx, input.tenant_id.as_deref(), "tenantId", "tenantId").await?;
        let (key, tool) = split_tool_id(&input.tool_id, input.integration.as_deref())?;
        let arguments = match input.parameters {
            Value::Null => Value::Object(serde_json::Map::new()),
            v @ Value::Object(_) => v,
            _ => {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidParameters,
                    "parameters must be an object",
                    Some("parameters"),
                ))
            }
        };
        self.allow_integration(ctx, &tenant, key.as_str(), Access::Read).await?;

        // As the proxy: an expired OAuth token is refreshed before it is used ...
        let made_at = Utc::now();
        let (url, bearer) = self.mcp_target(&tenant, &key, None).await?;
        let session_key = format!("{tenant}/{key}");
        let mut outcome = client.call_tool(&session_key, &url, bearer.as_ref(), &tool, arguments.clone()).await;
        // ... and one the server refused is refreshed (unless that happened
        // since) and the call tried once more.
        if bearer.is_some() && matches!(outcome, Err(McpError::Unauthorized(401))) {
            let (url, bearer) = self.mcp_target(&tenant, &key, Some(made_at)).await?;
            outcome = client.call_tool(&session_key, &url, bearer.as_ref(), &tool, arguments).await;
        }
        drop(bearer);
        let answer = match outcome {
            Ok(result) if result.get("isError").and_then(Value::as_bool) == Some(true) => {
                Err(ServiceError::new(ErrorKind::Unprocessable, ErrorCode::ToolError, error_text(&result, &tool)))
            }
            Ok(result) if !result.is_object() => {
                Err(map_error(&key, &McpError::Protocol("the tools/call result is not an object".into())))
            }
            Ok(result) => Ok(result),
            Err(e) => Err(map_error(&key, &e)),
        };
        let (outcome, suffix) = match &answer {
            Ok(_) => ("success", String::new()),
            Err(e) => ("failure", format!("?error={}", e.code)),
        };
        let resource = format!("tools/{key}/{tool}{suffix}");
        self.audit.record(ctx.event("tool.invoke", Some(tenant.as_str()), resource, outcome)).await?;
        if outcome == "success" {
            self.count_use(&tenant, &key, super::usage_stats::Use::Tool);
        }
        self.touch_throttled(&tenant, &key).await?;
        Ok(ToolResult {
            tool_id: format!("{key}.{tool}"),
            integration: key.to_string(),
            tenant_id: tenant.to_string(),
            result: answer?,
        })
    }
}

impl Tessera {
    /// The MCP server's URL and the bearer token to send it (none without
    /// stored credentials); see [`Tessera::usable_connection`] for `stale_before`.
    async fn mcp_target(
        &self,
        tenant: &TenantId,
        key: &IntegrationKey,
        stale_before: Option<DateTime<Utc>>,
    ) -> Result<(url::Url, Option<SecretString>), ServiceError> {
        let super::usage::UsableConnection { mut reader, connection } =
            self.usable_connection(tenant, key, stale_before).await?;
        let (integration, _, cred) = connection.parts();
        let url = mcp_settings(integration)?.validate()?;
        let bearer = match cred {
            Some(_) => Some(SecretString::from(reader.tokens(tenant, key).await?.access.as_str())),
            None => None,
        };
        reader.finish().await?;
        Ok((url, bearer))
    }
}

/// `notion.createPage` -> (notion, createPage); a bare name takes the
/// integration from `integration`. Only the first dot splits, so a tool
/// whose own name has dots is named with its integration prefix.
fn split_tool_id(tool_id: &str, integration: Option<&str>) -> Result<(IntegrationKey, String), ServiceError> {
    let (prefix, tool) = match tool_id.split_once('.') {
        Some((p, t)) => (Some(p), t),
        None => (None, tool_id),
    };
    let key = match (prefix, integration) {
        (Some(p), Some(i)) if p != i => {
            return Err(ServiceError::invalid(
                ErrorCode::IntegrationMismatch,
                format!("toolId names integration {p} but integration is {i}"),
                Some("integration"),
            ))
        }
        (Some(p), _) => p,
        (None, Some(i)) => i,
        (None, None) => {
            return Err(ServiceError::invalid(
                ErrorCode::MissingIntegration,
                "name the integration in toolId (<integration>.<tool>) or in integration",
                Some("integration"),
            ))
        }
    };
    let key = IntegrationKey::parse(key)?;
    let name_ok = tool.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    if tool.is_empty() || tool.len() > MAX_TOOL_NAME || !name_ok {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidToolId,
            "the tool name must be 1-128 characters of [A-Za-z0-9_./-]",
            Some("toolId"),
        ));
    }
    Ok((key, tool.to_owned()))
}

fn mcp_settings(integration: &IntegrationRecord) -> Result<McpSettings, ServiceError> {
    let raw = integration.settings.get("mcp").ok_or_else(|| {
        ServiceError::conflict(ErrorCode::McpNotConfigured, format!("{} has no MCP server (mcp.url)", integration.key))
    })?;
    serde_json::from_value(raw.clone())
        .map_err(|e| ServiceError::internal(format!("stored MCP settings of {} are unreadable: {e}", integration.key)))
}

fn map_error(key: &IntegrationKey, e: &McpError) -> ServiceError {
    match e {
        McpError::UnknownTool(tool) => {
            ServiceError::not_found(ErrorCode::UnknownTool, format!("the MCP server of {key} has no tool {tool}"))
        }
        McpError::ToolError(message) => {
            ServiceError::new(ErrorKind::Unprocessable, ErrorCode::ToolError, message.clone())
        }
        other => ServiceError::upstream(other.code(), format!("{key}: {other}")),
    }
}

/// The text content of an `isError` result, as the error's message.
fn error_text(result: &Value, tool: &str) -> String {
    let text: Vec<&str> = result
        .get("content")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|c| c.get("text").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    let joined = text.join("\n");
    if joined.is_empty() {
        format!("the tool {tool} reported an error")
    } else {
        joined.chars().take(2000).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_ids_name_integration_and_tool() {
        let (k, t) = split_tool_id("notion.createPage", None).expect("prefixed");
        assert_eq!((k.as_str(), t.as_str()), ("notion", "createPage"));
        let (k, t) = split_tool_id("echo", Some("everything")).expect("bare");
        assert_eq!((k.as_str(), t.as_str()), ("everything", "echo"));
        let (k, t) = split_tool_id("fs.files.read", Some("fs")).expect("dotted tool");
        assert_eq!((k.as_str(), t.as_str()), ("fs", "files.read"));
        assert_eq!(
            split_tool_id("notion.x", Some("github")).expect_err("mismatch").code,
            ErrorCode::IntegrationMismatch
        );
        assert_eq!(split_tool_id("echo", None).expect_err("no integration").code, ErrorCode::MissingIntegration);
        assert_eq!(split_tool_id("notion.", None).expect_err("empty tool").code, ErrorCode::InvalidToolId);
        assert_eq!(split_tool_id("notion.a b", None).expect_err("space").code, ErrorCode::InvalidToolId);
    }
}
