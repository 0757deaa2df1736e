//! `POST /api/v1/tools/invoke` (seed 001, "Using Integration as Tenant"):
//! calls a tool on the integration's MCP server with the tenant's
//! credential injected; the service holds every rule.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use tessera_core::service::{ToolInvocation, ToolResult};

use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/tools/invoke", post(invoke))
}

/// Calls `tools/call` on the integration's MCP server (`mcp.url`) as the
/// tenant (`Authorization: Bearer <access token>`). `toolId` is
/// `<integration>.<tool>` or the bare tool name with `integration`; admins
/// name the tenant with `tenantId`. A result with `isError: true` is a 422
/// `tool_error` whose message is the tool's text.
#[utoipa::path(post, path = "/api/v1/tools/invoke", operation_id = "invokeTool", tag = "tools", request_body = ToolInvocation,
    responses((status = 200, body = ToolResult), (status = 400), (status = 404, description = "tenant, integration, connection or tool unknown"),
        (status = 409, description = "no MCP settings, connection disabled, token expired"),
        (status = 422, description = "the tool refused the call (`tool_error`)"),
        (status = 502, description = "the MCP server is down, too slow, refused the credential or is not MCP")))]
pub(crate) async fn invoke(
    State(s): State<AppState>,
    Caller(ctx): Caller,
    Body(b): Body<ToolInvocation>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(s.svc.invoke_tool(&ctx, b).await?))
}
