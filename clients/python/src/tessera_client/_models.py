# Generated from Tessera's /openapi.json by clients/generate.sh (datamodel-code-generator). Do not edit.

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict


class ApiKeyCreated(TypedDict):
    """
    `POST /api-keys`: the new key, in this answer only.
    """

    createdAt: str
    """
    Created.
    """
    id: str
    """
    Id (for `DELETE /api-keys/{id}`).
    """
    key: str
    """
    The key itself (`tsr_...`): send it as `Authorization: Bearer <key>`.
    Keep it: it is never shown again (only its hash is stored).
    """
    name: str
    """
    Name.
    """
    role: str
    """
    Role.
    """
    scopes: list[dict[str, Any]] | None
    """
    A scoped key's scopes; null: unscoped.
    """
    tenantId: str | None
    """
    Bound tenant; null for an admin or auditor key.
    """


class ApiKeyView(TypedDict):
    """
    An API key's public view (never the key or its hash).
    """

    createdAt: str
    """
    Created.
    """
    createdBy: str
    """
    Creator.
    """
    id: str
    """
    Id.
    """
    lastUsedAt: NotRequired[str | None]
    """
    Last accepted (to the minute); none if never used.
    """
    name: str
    """
    Name.
    """
    role: str
    """
    Role.
    """
    scopes: NotRequired[list[dict[str, Any]] | None]
    """
    A scoped key's scopes; absent: unscoped.
    """
    tenantId: NotRequired[str | None]
    """
    Bound tenant.
    """


class AuditEventView(TypedDict):
    """
    One audit event as shown.
    """

    action: str
    """
    Action.
    """
    actor: str
    """
    Principal id.
    """
    actorRole: str
    """
    Principal role.
    """
    at: str
    """
    RFC 3339.
    """
    clientIp: NotRequired[str | None]
    """
    Client address.
    """
    hash: str
    """
    Hash.
    """
    id: str
    """
    Id.
    """
    outcome: str
    """
    Outcome.
    """
    prevHash: str
    """
    Previous hash.
    """
    requestId: NotRequired[str | None]
    """
    Request id.
    """
    resource: str
    """
    Resource.
    """
    seq: int
    """
    Chain position.
    """
    tenantId: NotRequired[str | None]
    """
    Tenant.
    """


class AuditEvents(TypedDict):
    """
    `GET /audit` answer.
    """

    events: list[AuditEventView]
    """
    Events, oldest first.
    """


AuthType: TypeAlias = Literal["none", "api_key", "basic", "oauth2"]
"""
How an integration's API authenticates a tenant.
"""


class AuthorizationStart(TypedDict):
    """
    `GET /oauth/authorize/{key}`'s answer.
    """

    authorizationUrl: str
    """
    Send the user here.
    """
    expiresAt: str
    """
    When the flow stops being accepted.
    """
    state: str
    """
    The flow's state (single use).
    """


class BrokenEvent(TypedDict):
    """
    Where the chain breaks.
    """

    id: str
    """
    Its id.
    """
    reason: str
    """
    What is wrong.
    """
    seq: int
    """
    Its seq.
    """


ClientAuth: TypeAlias = Literal["client_secret_basic", "client_secret_post"]
"""
How the client authenticates at the token and revocation endpoints.
"""


class ConfigBody(TypedDict):
    """
    Body of a config write.
    """

    config: dict[str, Any]
    """
    Field values; `null` or `""` removes an override.
    """
    isEnabled: NotRequired[bool | None]
    """
    Enables or disables the connection (tenant config only).
    """


class ConfigEntry(TypedDict):
    """
    One row of the config list (the console's Configuration page).
    """

    integrationKey: str
    """
    Integration key.
    """
    integrationName: str
    """
    Integration display name.
    """
    key: str
    """
    Field name.
    """
    scope: str
    """
    `global` (an integration default) or `tenant` (an override).
    """
    tenantId: NotRequired[str | None]
    """
    The tenant of an override.
    """
    type: str
    """
    `string`, `int`, `number`, `bool`, `json` or `secret`.
    """
    updatedAt: NotRequired[str | None]
    """
    When set.
    """
    updatedBy: NotRequired[str | None]
    """
    Who set it.
    """
    value: Any
    """
    Value; `[SECRET]` for secrets.
    """


class ConfigList(TypedDict):
    """
    `GET /configs` answer.
    """

    configs: list[ConfigEntry]
    """
    Rows, by integration, scope and key.
    """


Integration: TypeAlias = str


class ConnectedIntegration(TypedDict):
    """
    One integration a session connected.
    """

    at: str
    """
    When (RFC 3339).
    """
    integration: str
    """
    Integration key.
    """


class ConnectionMatch(TypedDict):
    """
    A match of a connection query.
    """

    config: dict[str, Any]
    """
    Public config.
    """
    isEnabled: bool
    """
    Enabled.
    """
    tenantId: str
    """
    Tenant.
    """


class ConnectionMatches(TypedDict):
    """
    The answer of `GET /integrations/{key}/connections`. (Fields in
    alphabetical order: the order the answer had as a `json!` map.)
    """

    connections: list[ConnectionMatch]
    """
    The tenants whose public config matches every filter.
    """
    integration: str
    """
    The integration key, as asked.
    """


class CreatedConnectSession(TypedDict):
    """
    The answer to `POST /connect/sessions`: the token is shown once.
    """

    expiresAt: str
    """
    When the link stops working.
    """
    id: str
    """
    The session's id (for `GET`/`DELETE /connect/sessions/{id}`).
    """
    token: str
    """
    The page's credential: never stored, shown only here.
    """
    url: str
    """
    The page to send the person to (contains the token).
    """


Scope: TypeAlias = str


class CredentialInput(TypedDict):
    """
    The body of `POST .../credentials`.
    """

    accessToken: str
    """
    The access token (or API key).
    """
    createTenant: NotRequired[bool]
    """
    Create the tenant if it does not exist (admins only). Without it an
    unknown tenant is 404 `tenant_not_found`, so a typo never mints one.
    """
    expiresAt: NotRequired[str | None]
    """
    Alternatively, when it expires (RFC 3339).
    """
    expiresIn: NotRequired[int | None]
    """
    Seconds until the access token expires (up to ten years); 0 or
    absent: it never does.
    """
    refreshToken: NotRequired[str | None]
    """
    A refresh token, if the provider issued one (`""`: none).
    """
    scopes: NotRequired[list[Scope] | str | None]
    tokenType: NotRequired[str | None]
    """
    `bearer` (default) and so on.
    """


class CredentialView(TypedDict):
    """
    `GET .../credentials`: metadata only, never a token.
    """

    createdAt: str
    """
    First stored.
    """
    expiresAt: NotRequired[str | None]
    """
    Expiry, or null if never.
    """
    hasCredentials: bool
    """
    Always true (absent credentials are a 404).
    """
    hasRefreshToken: bool
    """
    Whether a refresh token is stored.
    """
    integration: str
    """
    Integration.
    """
    lastRefreshedAt: NotRequired[str | None]
    """
    Last refreshed.
    """
    needsReauth: bool
    """
    The provider refused the refresh token: run the OAuth flow again.
    """
    refreshFailures: int
    """
    Refresh failures in a row.
    """
    scopes: list[str]
    """
    Granted scopes.
    """
    source: str
    """
    `api`, `oauth` or `apply`.
    """
    tenantId: str
    """
    Tenant.
    """
    tokenType: str
    """
    `bearer`, ...
    """
    updatedAt: str
    """
    Last stored or refreshed.
    """


class DefaultsView(TypedDict):
    """
    Global defaults of an integration, secrets masked.
    """

    config: dict[str, Any]
    """
    Defaults; secret fields show `[SECRET]`.
    """
    integration: str
    """
    Integration key.
    """


class DeliveryView(TypedDict):
    """
    One delivery attempt.
    """

    at: str
    """
    When it was sent.
    """
    attempt: int
    """
    Attempt number, from 1.
    """
    deliveryId: str
    """
    The event's id (`Tessera-Delivery`).
    """
    durationMs: int
    """
    How long it took.
    """
    error: NotRequired[str | None]
    """
    Why it failed, if it did.
    """
    event: str
    """
    The event.
    """
    statusCode: NotRequired[int | None]
    """
    The receiver's status; null if it did not answer.
    """


class EndUser(TypedDict):
    """
    The platform's user, as the platform describes them.
    """

    displayName: NotRequired[str | None]
    """
    Their name, shown on the page (no control characters).
    """
    email: NotRequired[str | None]
    """
    Their email address.
    """
    id: str
    """
    The platform's id for the user (no control characters).
    """


ErrorCode: TypeAlias = Literal["access_denied", "already_exists", "api_key_not_found", "audit_unavailable", "backend_read_only", "bad_request", "body_unreadable", "cas_mismatch", "cas_required", "connect_integration_not_offered", "connect_link_invalid", "connect_nothing_connected", "connect_session_cancelled", "connect_session_completed", "connect_session_expired", "connect_session_not_found", "connection_disabled", "connection_not_found", "credential_expired", "credential_file_unwritable", "credentials_not_found", "custom_metadata_unsupported", "data_key_missing", "decrypt_failed", "decryption_failed", "deletion_not_allowed", "forbidden", "headers_too_large", "health_check_not_configured", "health_unavailable", "insecure_url", "integration_exists", "integration_mismatch", "integration_not_found", "internal", "invalid_auth_type", "invalid_body", "invalid_ciphertext", "invalid_config_schema", "invalid_custom_metadata", "invalid_end_user", "invalid_events", "invalid_expires_in", "invalid_expiry", "invalid_form", "invalid_health_check", "invalid_integration_key", "invalid_integrations", "invalid_key_name", "invalid_key_version", "invalid_mcp_settings", "invalid_name", "invalid_oauth_settings", "invalid_parameters", "invalid_path", "invalid_proxy_path", "invalid_proxy_settings", "invalid_query", "invalid_request", "invalid_role", "invalid_rotation", "invalid_scope", "invalid_scopes", "invalid_secret_path", "invalid_secret_settings", "invalid_since", "invalid_state", "invalid_target", "invalid_tenant_id", "invalid_token", "invalid_token_type", "invalid_tool_id", "invalid_type", "invalid_until", "invalid_url", "invalid_versions", "invalid_webhook_url", "key_mismatch", "key_version_disallowed", "malformed_json", "mcp_not_configured", "mcp_protocol_error", "mcp_timeout", "mcp_unauthorized", "mcp_unavailable", "method_not_allowed", "missing_code", "missing_integration", "missing_required_field", "missing_tenant", "missing_tenant_id", "not_a_field_map", "not_exportable", "oauth_exchange_failed", "oauth_not_configured", "oauth_provider_error", "oauth_refresh_failed", "oauth_unavailable", "payload_too_large", "proxy_credential_invalid", "proxy_credential_missing", "proxy_not_configured", "proxy_unavailable", "rate_limited", "redirect_uri_not_allowed", "refresh_in_progress", "request_timeout", "reserved_tenant", "rewrap_unsupported", "rotation_unsupported", "route_not_found", "secret_not_found", "secret_not_queryable", "secret_settings_unsupported", "server_error", "state_expired", "store_unavailable", "temporarily_unavailable", "tenant_exists", "tenant_not_allowed", "tenant_not_found", "tenant_required", "too_many_filters", "too_many_webhooks", "tool_error", "transit_key_not_found", "unauthenticated", "unauthorized_client", "unknown_action", "unknown_field", "unknown_template", "unknown_tool", "unsupported_media_type", "unsupported_response_type", "upstream_timeout", "upstream_unavailable", "uri_too_long", "vault_denied", "vault_error", "vault_unavailable", "version_deleted", "version_destroyed", "version_not_found", "version_unreadable", "webhook_not_found", "wrong_master_key"]
"""
A stable code a client may match on (the message may change):

- `access_denied`:  The user or the provider declined the authorization (RFC 6749).
- `already_exists`:  The resource exists already.
- `api_key_not_found`:  No such API key.
- `audit_unavailable`:  The audit log cannot take the event now; nothing was done. Retry later.
- `backend_read_only`:  The credential backend is read-only (environment); writes are refused.
- `bad_request`:  The request could not be read.
- `body_unreadable`:  The request body could not be read.
- `cas_mismatch`:  Check-and-set failed: the secret's newest version is not the one named.
- `cas_required`:  The secret (or its tenant's KV mount) requires check-and-set: the write must name the version it replaces (`cas`).
- `connect_integration_not_offered`:  The connect link does not offer that integration.
- `connect_link_invalid`:  The connect link is unknown or malformed.
- `connect_nothing_connected`:  Done was pressed before anything was connected.
- `connect_session_cancelled`:  The connect session was cancelled.
- `connect_session_completed`:  The connect session is finished.
- `connect_session_expired`:  The connect session expired.
- `connect_session_not_found`:  No such connect session.
- `connection_disabled`:  The tenant's connection to the integration is disabled.
- `connection_not_found`:  The tenant has no connection to the integration.
- `credential_expired`:  The stored access token expired and could not be refreshed.
- `credential_file_unwritable`:  The file credential backend cannot write its file.
- `credentials_not_found`:  The tenant has no credentials for the integration.
- `custom_metadata_unsupported`:  This credential backend cannot keep custom metadata.
- `data_key_missing`:  A tenant data key a value needs is missing.
- `decrypt_failed`:  Transit decryption failed: the ciphertext does not authenticate under the key.
- `decryption_failed`:  A stored value failed to decrypt (tampered, moved, or the wrong master key).
- `deletion_not_allowed`:  The Transit key may not be deleted: its configuration does not allow deletion (`deletion_allowed`).
- `forbidden`:  The caller's role or scopes do not allow this.
- `headers_too_large`:  The request headers are over the limit.
- `health_check_not_configured`:  The integration has no health-check settings.
- `health_unavailable`:  This process sends no health probes.
- `insecure_url`:  The URL must use https (http only on loopback with TESSERA_ALLOW_LOOPBACK_HTTP).
- `integration_exists`:  The integration is registered already.
- `integration_mismatch`:  The tool id and the integration field name different integrations.
- `integration_not_found`:  No such integration.
- `internal`:  An unexpected failure; the server log has the details.
- `invalid_auth_type`:  Unknown authType.
- `invalid_body`:  The request body does not have the expected shape.
- `invalid_ciphertext`:  The Transit ciphertext is malformed.
- `invalid_config_schema`:  The integration's configSchema is not valid.
- `invalid_custom_metadata`:  custom_metadata must map strings to strings, within the limits.
- `invalid_end_user`:  The connect session's endUser is not valid.
- `invalid_events`:  The webhook's event list is not valid.
- `invalid_expires_in`:  expiresIn is out of range.
- `invalid_expiry`:  The token expiry is not valid.
- `invalid_form`:  The submitted form could not be read.
- `invalid_health_check`:  The integration's healthCheck settings are not valid.
- `invalid_integration_key`:  The integration key is not valid.
- `invalid_integrations`:  The connect session's integration list is not valid.
- `invalid_key_name`:  The key name is not valid.
- `invalid_key_version`:  The key version is not valid.
- `invalid_mcp_settings`:  The integration's mcp settings are not valid.
- `invalid_name`:  The name is not valid.
- `invalid_oauth_settings`:  The integration's oauth settings are not valid.
- `invalid_parameters`:  The tool parameters must be a JSON object.
- `invalid_path`:  A path parameter does not parse.
- `invalid_proxy_path`:  The proxied path must stay under the integration's base URL.
- `invalid_proxy_settings`:  The integration's proxy settings are not valid.
- `invalid_query`:  A query parameter does not parse.
- `invalid_request`:  The provider found the authorization request malformed (RFC 6749).
- `invalid_role`:  Unknown role, or a role that cannot be used here.
- `invalid_rotation`:  rotateAfterDays is not valid.
- `invalid_scope`:  The provider refused the scopes asked for (RFC 6749).
- `invalid_scopes`:  The scopes are not valid.
- `invalid_secret_path`:  The secret path is not valid.
- `invalid_secret_settings`:  A secret's or KV mount's version settings are out of range.
- `invalid_since`:  since is not an RFC 3339 time.
- `invalid_state`:  The OAuth state is unknown, used already or expired.
- `invalid_target`:  The migration target is not valid.
- `invalid_tenant_id`:  The tenant id is not valid.
- `invalid_token`:  The token is not valid.
- `invalid_token_type`:  The token type is not valid.
- `invalid_tool_id`:  The tool id is not valid.
- `invalid_type`:  A config value has the wrong type for its schema field.
- `invalid_until`:  until is not an RFC 3339 time.
- `invalid_url`:  The URL is not valid.
- `invalid_versions`:  The version list is not valid.
- `invalid_webhook_url`:  The webhook URL is not allowed.
- `key_mismatch`:  The body's key differs from the path's.
- `key_version_disallowed`:  That key version may not be used (below min_encryption_version, or newer than the key).
- `malformed_json`:  The request body is not valid JSON.
- `mcp_not_configured`:  The integration has no MCP server (mcp.url).
- `mcp_protocol_error`:  The MCP server broke the protocol.
- `mcp_timeout`:  The MCP server did not answer in time.
- `mcp_unauthorized`:  The MCP server refused the credential.
- `mcp_unavailable`:  The MCP server cannot be reached.
- `method_not_allowed`:  The route does not accept that method.
- `missing_code`:  The OAuth callback has no code.
- `missing_integration`:  The tool call names no integration.
- `missing_required_field`:  A required config field is missing.
- `missing_tenant`:  The call must name a tenant.
- `missing_tenant_id`:  tenant_id is required.
- `not_a_field_map`:  The secret holds one value, not fields: write it whole instead of patching it.
- `not_exportable`:  The Transit key's material may not be exported: it is not configured as exportable.
- `oauth_exchange_failed`:  The provider did not issue tokens for the code.
- `oauth_not_configured`:  OAuth is not configured for the integration.
- `oauth_provider_error`:  The provider ended the flow with an error code outside RFC 6749's list.
- `oauth_refresh_failed`:  The provider refused to refresh the token.
- `oauth_unavailable`:  This process makes no OAuth calls.
- `payload_too_large`:  The request body is over the limit.
- `proxy_credential_invalid`:  An injected credential cannot be sent (say, a header value with a newline); nothing was sent.
- `proxy_credential_missing`:  The credential the proxy must inject is missing; nothing was sent.
- `proxy_not_configured`:  The integration has no proxy settings.
- `proxy_unavailable`:  This server does not forward calls.
- `rate_limited`:  Over the rate limit; retry after Retry-After seconds.
- `redirect_uri_not_allowed`:  The redirect URI is not in TESSERA_ALLOWED_REDIRECT_URIS.
- `refresh_in_progress`:  Another refresh of this token is running; retry shortly.
- `request_timeout`:  The request took longer than the time limit.
- `reserved_tenant`:  The tenant is reserved.
- `rewrap_unsupported`:  The credential backend cannot rewrite values.
- `rotation_unsupported`:  Rotation reminders need the database backend.
- `route_not_found`:  No such route.
- `secret_not_found`:  No such secret.
- `secret_not_queryable`:  Secret fields cannot be used as filters.
- `secret_settings_unsupported`:  Version settings (max_versions, cas_required, delete_version_after) need the database credential backend.
- `server_error`:  The provider failed while authorizing (RFC 6749).
- `state_expired`:  The OAuth flow took too long; start it again.
- `store_unavailable`:  The metadata store is unavailable; retry later.
- `temporarily_unavailable`:  The provider is overloaded or down for maintenance (RFC 6749).
- `tenant_exists`:  The tenant exists already.
- `tenant_not_allowed`:  The key may not name that tenant.
- `tenant_not_found`:  No such tenant (or not the caller's).
- `tenant_required`:  The role needs a tenant.
- `too_many_filters`:  Too many config filters.
- `too_many_webhooks`:  The tenant has the most webhooks allowed.
- `tool_error`:  The MCP server refused the call or the tool reported an error.
- `transit_key_not_found`:  No such Transit key.
- `unauthenticated`:  No API key, or one that is not valid.
- `unauthorized_client`:  The provider does not allow this client to ask for a code (RFC 6749).
- `unknown_action`:  Unknown secret action.
- `unknown_field`:  A field the schema does not have.
- `unknown_template`:  No such integration template.
- `unknown_tool`:  The MCP server does not list the tool.
- `unsupported_media_type`:  Send Content-Type: application/json.
- `unsupported_response_type`:  The provider does not issue codes this way (RFC 6749).
- `upstream_timeout`:  The upstream did not answer in time.
- `upstream_unavailable`:  The upstream cannot be reached (name not resolved, connection refused, TLS).
- `uri_too_long`:  The request URI is over the limit.
- `vault_denied`:  Vault refused Tessera's token.
- `vault_error`:  Vault answered with an error.
- `vault_unavailable`:  Vault cannot be reached.
- `version_deleted`:  The version is deleted (undelete restores it).
- `version_destroyed`:  The version was destroyed.
- `version_not_found`:  No such version (it may have been pruned).
- `version_unreadable`:  A stored version cannot be read.
- `webhook_not_found`:  No such webhook.
- `wrong_master_key`:  The master key does not match the store's.
"""


class ErrorDetail(TypedDict):
    """
    What went wrong.
    """

    code: ErrorCode
    field: NotRequired[str | None]
    """
    The field or parameter at fault, when there is one.
    """
    message: str
    """
    For people; never holds a secret.
    """


Health: TypeAlias = Literal["healthy", "degraded", "unhealthy"]
"""
A connection's health, from its last check or token refresh.
"""


class HealthCheckSettings(TypedDict):
    """
    `healthCheck` of a registry entry.
    """

    expectedStatus: NotRequired[int]
    """
    The status a healthy upstream answers (default 200).
    """
    intervalSeconds: NotRequired[int]
    """
    Seconds between checks of one connection (default 300, at least 10).
    """
    method: NotRequired[str]
    """
    `GET` (default) or `HEAD`.
    """
    path: NotRequired[str]
    """
    Path under the proxy's base URL (default: the base itself).
    """
    slowMs: NotRequired[int]
    """
    Slower than this (milliseconds) is `degraded` (default 2000).
    """


class HealthResult(TypedDict):
    """
    The result of one check.
    """

    detail: str
    """
    Why, in a few words.
    """
    healthStatus: Health
    """
    The verdict.
    """
    integration: str
    """
    Integration.
    """
    lastHealthCheck: str
    """
    When.
    """
    latencyMs: NotRequired[int | None]
    """
    Time to its answer.
    """
    statusCode: NotRequired[int | None]
    """
    The upstream's status, if it answered.
    """
    tenantId: str
    """
    Tenant.
    """


class IntegrationView(TypedDict):
    """
    A registry entry.
    """

    authType: AuthType
    """
    How its API authenticates a tenant.
    """
    category: NotRequired[str | None]
    """
    Category.
    """
    configSchema: dict[str, Any]
    """
    Normalised JSON Schema.
    """
    createdAt: str
    """
    Created.
    """
    healthCheck: NotRequired[dict[str, Any] | None]
    """
    Health check settings.
    """
    key: str
    """
    Slug key.
    """
    mcp: NotRequired[dict[str, Any] | None]
    """
    MCP server settings (`url`), for tool invocation.
    """
    name: str
    """
    Display name.
    """
    oauth: NotRequired[dict[str, Any] | None]
    """
    OAuth settings (`clientSecretSet` says whether a secret is stored; it never shows).
    """
    proxy: NotRequired[dict[str, Any] | None]
    """
    Proxy settings (base URL, credential injection). `auth` shows the
    injection that applies: for an `oauth2` integration whose settings name
    none, the default `{"type": "bearer", "from": "credentials"}`.
    """
    updatedAt: str
    """
    Last changed.
    """


class KeyVersionView(TypedDict):
    """
    A tenant data key version.
    """

    createdAt: str
    """
    Created.
    """
    kekId: str
    """
    Which key-encryption key wraps it.
    """
    version: int
    """
    Version.
    """


class KeysView(TypedDict):
    """
    A tenant's data key versions.
    """

    latestVersion: int
    """
    Newest version, used for new writes.
    """
    tenantId: str
    """
    Tenant.
    """
    versions: list[KeyVersionView]
    """
    Every version, oldest first (all still decrypt).
    """


class McpSettings(TypedDict):
    """
    `mcp` of a registry entry.
    """

    url: str
    """
    The MCP server's Streamable HTTP endpoint (`https://mcp.example.com/mcp`).
    """


class NewKey1(TypedDict):
    """
    A tenant_admin or tenant_service key names its tenant; an admin or auditor key names none.
    """

    name: str
    """
    Display name: 1-200 characters, not only whitespace (stored trimmed).
    """
    role: Literal["admin", "auditor"]
    """
    `admin`, `tenant_admin`, `tenant_service` or `auditor`.
    """
    scopes: NotRequired[None]
    tenantId: NotRequired[None]


class Scopes(TypedDict):
    access: Literal["read", "write"]
    secrets: str


class Scopes1(TypedDict):
    access: Literal["read", "write"]
    integration: str


class NewKey2(TypedDict):
    """
    A tenant_admin or tenant_service key names its tenant; an admin or auditor key names none.
    """

    name: str
    """
    Display name: 1-200 characters, not only whitespace (stored trimmed).
    """
    role: Literal["tenant_admin"]
    """
    `admin`, `tenant_admin`, `tenant_service` or `auditor`.
    """
    scopes: NotRequired[list[Scopes | Scopes1] | None]
    """
    Makes a scoped key: it may do only what one of these allows (never widened later).
    """
    tenantId: str


class Scopes2(TypedDict):
    access: Literal["read"]
    secrets: str


class Scopes3(TypedDict):
    access: Literal["read"]
    integration: str


class NewKey3(TypedDict):
    """
    A tenant_admin or tenant_service key names its tenant; an admin or auditor key names none.
    """

    name: str
    """
    Display name: 1-200 characters, not only whitespace (stored trimmed).
    """
    role: Literal["tenant_service"]
    """
    `admin`, `tenant_admin`, `tenant_service` or `auditor`.
    """
    scopes: NotRequired[list[Scopes2 | Scopes3] | None]
    """
    Makes a scoped key: it may do only what one of these allows (never widened later).
    """
    tenantId: str


NewKey: TypeAlias = NewKey1 | NewKey2 | NewKey3
"""
A tenant_admin or tenant_service key names its tenant; an admin or auditor key names none.
"""


class NewTenant(TypedDict):
    """
    Body of `POST /tenants`.
    """

    id: str
    """
    Slug `^[a-z0-9][a-z0-9_-]{0,62}$`.
    """
    name: str
    """
    Display name: 1-200 characters, not only whitespace (stored trimmed).
    """


class OAuthInput(TypedDict):
    """
    OAuth settings as callers send them (`oauth` of a registry entry). Every
    field is optional so a template can fill the rest.
    """

    authorizeUrl: NotRequired[str | None]
    """
    The provider's authorization endpoint.
    """
    clientId: NotRequired[str | None]
    """
    Client id (else `<INTEGRATION>_CLIENT_ID`).
    """
    clientSecret: NotRequired[str | None]
    """
    Client secret, stored encrypted (else `<INTEGRATION>_CLIENT_SECRET`).
    """
    extraParams: NotRequired[dict[str, str]]
    """
    Extra authorization parameters (`access_type=offline`, ...).
    """
    pkce: NotRequired[bool | None]
    """
    Whether to use PKCE S256 (default true, also over a template). `false`
    only for a provider that rejects PKCE: weaker, since the code exchange
    is then bound to its flow by the state alone.
    """
    redirectUri: NotRequired[str | None]
    """
    The callback URL registered with the provider (else
    `<INTEGRATION>_REDIRECT_URI`, else Tessera's own `/oauth/callback/<key>`).
    """
    revokeUrl: NotRequired[str | None]
    """
    The provider's RFC 7009 revocation endpoint.
    """
    scopeSeparator: NotRequired[str | None]
    """
    How scopes are joined in the authorization URL (default a space).
    """
    scopes: NotRequired[list[str] | None]
    """
    Scopes requested.
    """
    tokenAuthMethod: NotRequired[ClientAuth | None]
    tokenUrl: NotRequired[str | None]
    """
    The provider's token endpoint.
    """


class OAuthSettings(TypedDict):
    """
    OAuth settings as the registry stores and shows them.
    """

    authorizeUrl: NotRequired[str | None]
    """
    Authorization endpoint.
    """
    clientId: NotRequired[str | None]
    """
    Client id.
    """
    clientSecretSet: NotRequired[bool]
    """
    Whether a client secret is stored (its value never shows).
    """
    extraParams: NotRequired[dict[str, str]]
    """
    Extra authorization parameters.
    """
    pkce: NotRequired[bool]
    """
    PKCE S256: on unless a registration turned it off.
    """
    redirectUri: NotRequired[str | None]
    """
    The callback URL registered with the provider.
    """
    revokeUrl: NotRequired[str | None]
    """
    RFC 7009 revocation endpoint.
    """
    scopeSeparator: NotRequired[str]
    """
    How scopes are joined.
    """
    scopes: NotRequired[list[str]]
    """
    Scopes requested.
    """
    tokenAuthMethod: NotRequired[ClientAuth]
    """
    How the client authenticates at the token endpoint.
    """
    tokenUrl: NotRequired[str | None]
    """
    Token endpoint.
    """


class ProxyAuth1(TypedDict):
    """
    Nothing is injected.
    """

    type: Literal["none"]


class ResolvedConnection(TypedDict):
    """
    The resolved view of a connection (`GET .../integrations/{key}/resolved`):
    what an SDK reads.
    """

    config: dict[str, Any]
    """
    Every field with a value, merged in this order (a later one wins): the
    schema's `default`, the integration's defaults, the tenant's overrides;
    secret fields decrypted. With stored credentials, also `accessToken`
    (refreshed first if it had expired) and `tokenType`.
    """
    integration: str
    """
    Integration key.
    """
    tenantId: str
    """
    Tenant.
    """


class RevokedCredentials(TypedDict):
    """
    The answer to `DELETE .../credentials`.
    """

    integration: str
    """
    Integration.
    """
    providerRevoked: NotRequired[bool | None]
    """
    Whether the provider confirmed the revocation; null when it has no
    revocation endpoint.
    """
    revokedAt: str
    """
    When.
    """
    success: bool
    """
    Always true: the tokens are gone from Tessera.
    """
    tenantId: str
    """
    Tenant.
    """


class RollbackBody(TypedDict):
    """
    Body of `:rollback`.
    """

    version: int


class SecretList(TypedDict):
    """
    Secret paths under a prefix.
    """

    paths: list[str]
    """
    Paths, sorted.
    """
    tenantId: str
    """
    Tenant.
    """


class SecretReadData(TypedDict):
    """
    A secret version holding a map of fields (what the Vault-compatible API writes).
    """

    createdAt: str
    """
    When this version was written (RFC 3339).
    """
    data: dict[str, Any]
    """
    The fields.
    """
    path: str
    """
    Path.
    """
    version: int
    """
    This version.
    """


class SecretReadValue(TypedDict):
    """
    A secret version holding one value.
    """

    createdAt: str
    """
    When this version was written (RFC 3339).
    """
    path: str
    """
    Path.
    """
    value: str | float | bool | dict[str, Any] | list[Any]
    """
    The value: any JSON but null.
    """
    version: int
    """
    This version.
    """


class SecretVersionView(TypedDict):
    """
    One version's metadata.
    """

    createdAt: str
    """
    Created.
    """
    createdBy: str
    """
    Creator.
    """
    deletedAt: str | None
    """
    Soft-deleted at; null if not deleted.
    """
    destroyed: bool
    """
    Erased for good.
    """
    version: int
    """
    Version.
    """


class SecretWritten(TypedDict):
    """
    Answer to a secret write.
    """

    createdAt: str
    """
    RFC 3339.
    """
    path: str
    """
    Path.
    """
    version: int
    """
    New version.
    """


class StoredCredentials(TypedDict):
    """
    The answer to `POST .../credentials`.
    """

    encryptedAt: str
    """
    When the tokens were encrypted and stored.
    """
    expiresAt: NotRequired[str | None]
    """
    When the access token expires; null if never.
    """
    integration: str
    """
    Integration.
    """
    success: bool
    """
    Always true.
    """
    tenantId: str
    """
    Tenant.
    """


String: TypeAlias = str


class Template(TypedDict):
    """
    A template as `GET /integrations/templates` lists it.
    """

    category: str
    """
    Suggested category.
    """
    name: str
    """
    Template name (`notion`, `github`, `slack`, `google`, `generic`).
    """
    oauth: OAuthSettings
    """
    The OAuth settings it fills in.
    """


class TemplateList(TypedDict):
    """
    The answer of `GET /integrations/templates`.
    """

    templates: list[Template]
    """
    Every template.
    """


class TenantHealth(TypedDict):
    """
    One tenant's connections.
    """

    integrations: dict[str, str]
    """
    Integration -> status.
    """
    tenantId: str
    """
    Tenant.
    """


class TenantIntegrationItem(TypedDict):
    """
    One line of a tenant's integration list.
    """

    category: NotRequired[str | None]
    """
    Category.
    """
    connected: bool
    """
    Whether the tenant has a connection to it.
    """
    createdAt: NotRequired[str | None]
    """
    When the connection was made.
    """
    displayName: str
    """
    Display name.
    """
    expiresAt: NotRequired[str | None]
    """
    When its credentials expire (null: never), for connected integrations.
    """
    hasCredentials: bool
    """
    Whether the tenant has stored credentials or secret fields for it.
    """
    healthStatus: NotRequired[Health | None]
    isEnabled: NotRequired[bool | None]
    """
    Whether that connection is enabled.
    """
    lastHealthCheck: NotRequired[str | None]
    """
    When its health was last checked.
    """
    lastUsedAt: NotRequired[str | None]
    """
    When it was last used (a resolved read, proxy or tool call; written at most once a minute).
    """
    name: str
    """
    Integration key.
    """
    needsReauth: NotRequired[bool | None]
    """
    True when the provider refused the refresh token for good: connect again.
    """


class TenantIntegrations(TypedDict):
    """
    The answer of `GET /tenants/{tenantId}/integrations`.
    """

    integrations: list[TenantIntegrationItem]
    """
    Every registered integration.
    """
    tenantId: str
    """
    Tenant.
    """


TenantStatus: TypeAlias = Literal["active", "suspended"]
"""
Whether a tenant may be used.
"""


class TenantView(TypedDict):
    """
    A tenant.
    """

    createdAt: str
    """
    RFC 3339.
    """
    id: str
    """
    Slug id.
    """
    name: str
    """
    Display name.
    """
    status: TenantStatus
    """
    Whether it may be used.
    """


class TenantsHealth(TypedDict):
    """
    `GET /admin/tenants/health`: every tenant's connections by health.
    """

    degraded: int
    """
    Connections `degraded`.
    """
    details: list[TenantHealth]
    """
    Per tenant: integration -> status (`unknown` when never checked).
    """
    healthy: int
    """
    Connections `healthy`.
    """
    totalIntegrations: int
    """
    Connections.
    """
    totalTenants: int
    """
    Tenants (the platform tenant aside).
    """
    unhealthy: int
    """
    Connections `unhealthy`.
    """
    unknown: int
    """
    Connections never checked.
    """


class ToolInvocation(TypedDict):
    """
    `POST /api/v1/tools/invoke`'s body.
    """

    integration: NotRequired[str | None]
    """
    The integration; optional when `toolId` names it (both given: they must agree).
    """
    parameters: NotRequired[dict[str, Any] | None]
    """
    The tool's arguments (a JSON object; default `{}`).
    """
    tenantId: str
    """
    The tenant: required for admins; a tenant-bound key may omit it or
    name only its own (documented as required, which always works).
    """
    toolId: str
    """
    `<integration>.<tool>` (`notion.createPage`), or the bare tool name with `integration`.
    """


class ToolResult(TypedDict):
    """
    The answer to a tool invocation.
    """

    integration: str
    """
    The integration.
    """
    result: dict[str, Any]
    """
    The MCP `tools/call` result (`content`, `structuredContent`, ...), as the server sent it.
    """
    tenantId: str
    """
    The tenant whose credential was used.
    """
    toolId: str
    """
    `<integration>.<tool>`.
    """


class VerifyReport(TypedDict):
    """
    The outcome of verifying the chain.
    """

    broken: NotRequired[BrokenEvent | None]
    checked: int
    """
    Events checked.
    """
    headSeq: int
    """
    Seq of the chain head.
    """
    ok: bool
    """
    Whether every event checked out.
    """


Version: TypeAlias = int


class VersionsBody(TypedDict):
    """
    Body of `:undelete` and `:destroy`.
    """

    versions: list[Version]


WebhookEvent: TypeAlias = Literal["credential.stored", "credential.revoked", "oauth.refresh_failed", "health.changed", "secret.rotation_due", "key.rotated", "connection.created", "connect.session_completed", "connect.session_expired"]
"""
An event a webhook may subscribe to.
"""


WebhookEventName: TypeAlias = Literal["credential.stored", "credential.revoked", "oauth.refresh_failed", "health.changed", "secret.rotation_due", "key.rotated", "connection.created", "connect.session_completed", "connect.session_expired"]


class WebhookView(TypedDict):
    """
    A webhook as the API shows it (never its secret).
    """

    createdAt: str
    """
    Created.
    """
    createdBy: str
    """
    Created by.
    """
    enabled: bool
    """
    Whether events are sent.
    """
    events: list[WebhookEvent]
    """
    Subscribed events.
    """
    id: str
    """
    `wh_...`.
    """
    tenantId: str
    """
    Tenant.
    """
    url: str
    """
    Where events are POSTed.
    """


class WriteBody1(TypedDict):
    """
    Exactly one of `value` (any JSON but null) and `data` (a map of fields).
    """

    cas: NotRequired[int | None]
    """
    Check-and-set: write only if the current version is this (0: only if new).
    """
    rotateAfterDays: NotRequired[int | None]
    """
    A `secret.rotation_due` webhook event once the secret has not been written for this many days; 0 clears it.
    """
    value: str | float | bool | dict[str, Any] | list[Any]
    """
    One value.
    """


class WriteBody2(TypedDict):
    """
    Exactly one of `value` (any JSON but null) and `data` (a map of fields).
    """

    cas: NotRequired[int | None]
    """
    Check-and-set: write only if the current version is this (0: only if new).
    """
    data: dict[str, Any]
    """
    A map of fields.
    """
    rotateAfterDays: NotRequired[int | None]
    """
    A `secret.rotation_due` webhook event once the secret has not been written for this many days; 0 clears it.
    """


WriteBody: TypeAlias = WriteBody1 | WriteBody2
"""
Exactly one of `value` (any JSON but null) and `data` (a map of fields).
"""


class ApiKeyList(TypedDict):
    """
    The answer of `GET /api-keys` (never a key or its hash).
    """

    apiKeys: list[ApiKeyView]
    """
    The keys the caller may see.
    """


class ConnectSessionInput(TypedDict):
    """
    The body of `POST /connect/sessions`.
    """

    endUser: NotRequired[EndUser | None]
    expiresIn: NotRequired[int | None]
    """
    Seconds the link works (1 to 1800; default 900).
    """
    integrations: NotRequired[list[Integration] | None]
    redirectUri: NotRequired[str | None]
    """
    Where the browser goes when the person finishes; must be listed in
    `TESSERA_ALLOWED_REDIRECT_URIS` (exact match).
    """
    tenantId: str
    """
    The tenant whose connections the page makes.
    """


class ConnectSessionView(TypedDict):
    """
    `GET /connect/sessions/{id}`.
    """

    connected: list[ConnectedIntegration]
    """
    What was connected through it.
    """
    createdAt: str
    """
    Created.
    """
    endUser: NotRequired[EndUser | None]
    endedAt: NotRequired[str | None]
    """
    When it stopped being pending.
    """
    expiresAt: str
    """
    Stops working.
    """
    id: str
    """
    Id.
    """
    integrations: NotRequired[list[str] | None]
    """
    The allow-list; null: every integration.
    """
    redirectUri: NotRequired[str | None]
    """
    Where the browser goes at the end.
    """
    status: str
    """
    `pending`, `completed`, `expired` or `failed` (cancelled by the person).
    """
    tenantId: str
    """
    Tenant.
    """


class ConnectionView(TypedDict):
    """
    A tenant's connection to an integration (no secret values).
    """

    config: dict[str, Any]
    """
    The tenant's public overrides.
    """
    connectedBy: NotRequired[dict[str, Any] | None]
    """
    Who connected it on the connect page: `{"sessionId", "endUser", "at"}`.
    """
    createdAt: str
    """
    Created.
    """
    credentials: NotRequired[CredentialView | None]
    hasCredentials: bool
    """
    Whether any credential or secret field is stored.
    """
    healthStatus: NotRequired[Health | None]
    integration: str
    """
    Integration key.
    """
    isEnabled: bool
    """
    Whether it may be used.
    """
    lastHealthCheck: NotRequired[str | None]
    """
    RFC 3339 or null.
    """
    lastUsedAt: NotRequired[str | None]
    """
    Last used, if ever.
    """
    secretFields: list[str]
    """
    Names of the secret fields the tenant has set (values never shown).
    """
    tenantId: str
    """
    Tenant.
    """
    updatedAt: str
    """
    Last changed.
    """


class DeliveryLog(TypedDict):
    """
    A webhook's delivery log, newest first.
    """

    deliveries: list[DeliveryView]
    """
    Attempts, newest first.
    """
    webhookId: str
    """
    The webhook.
    """


class ErrorBody(TypedDict):
    """
    Every error answer: `{"error": {"code", "message", "field"}}`.
    """

    error: ErrorDetail


class IntegrationList(TypedDict):
    """
    The answer of `GET /integrations`: the registry.
    """

    integrations: list[IntegrationView]
    """
    Every registered integration.
    """


class NewWebhook(TypedDict):
    """
    Body of `POST /tenants/{tenantId}/webhooks`.
    """

    events: list[WebhookEventName]
    url: str
    """
    Where events are POSTed: https (plain http only to a loopback address),
    no credentials, no fragment; never a private, link-local, multicast,
    reserved or documentation address.
    """


ProxyAuth2 = TypedDict(
    "ProxyAuth2",
    {
        "from": NotRequired[String],
        "type": Literal["bearer"],
    },
)


ProxyAuth3 = TypedDict(
    "ProxyAuth3",
    {
        "from": String,
        "name": str,
        "prefix": NotRequired[str | None],
        "type": Literal["header"],
    },
)


class ProxyAuth4(TypedDict):
    """
    `Authorization: Basic base64(<username>:<password>)`.
    """

    password: String
    """
    Password source.
    """
    type: Literal["basic"]
    username: String
    """
    Username source.
    """


ProxyAuth5 = TypedDict(
    "ProxyAuth5",
    {
        "from": String,
        "name": str,
        "type": Literal["query"],
    },
)


ProxyAuth: TypeAlias = ProxyAuth1 | ProxyAuth2 | ProxyAuth3 | ProxyAuth4 | ProxyAuth5
"""
How the credential is injected.
"""


class ProxySettings(TypedDict):
    """
    `proxy` of a registry entry.
    """

    auth: NotRequired[ProxyAuth | None]
    baseUrl: str
    """
    Every call goes under this URL (scheme, host, port and path prefix are fixed).
    """


class SecretMetadataView(TypedDict):
    """
    A secret's metadata: versions, never values.
    """

    createdAt: str
    """
    Created.
    """
    currentVersion: int
    """
    Newest version.
    """
    maxVersions: int
    """
    Versions kept.
    """
    path: str
    """
    Path.
    """
    rotateAfterDays: int | None
    """
    Rotation policy: days after the last write when
    `secret.rotation_due` is sent; null if none.
    """
    updatedAt: str
    """
    Last written.
    """
    versions: list[SecretVersionView]
    """
    Kept versions, oldest first.
    """


SecretRead: TypeAlias = SecretReadValue | SecretReadData
"""
One version of a secret, as written: one value (`SecretReadValue`) or a map of fields (`SecretReadData`).
"""


SecretReadAnswer: TypeAlias = SecretRead | SecretMetadataView
"""
Without `?versions`: the value (`SecretRead`); with it: the metadata (`SecretMetadataView`).
"""


class TenantList(TypedDict):
    """
    The answer of `GET /tenants`.
    """

    tenants: list[TenantView]
    """
    The tenants the caller may see (a tenant-bound key: its own).
    """


class WebhookCreated(WebhookView):
    """
    A new webhook and its signing secret (shown in this answer only).
    """

    secret: str
    """
    `whsec_...`: the key of every delivery's `Tessera-Signature` (HMAC-SHA256 over `<t>.<body>`). Keep it: it is never shown again.
    """


class WebhookDelivery(TypedDict):
    """
    The body of every webhook delivery: what Tessera POSTs to a webhook's
    URL, with the headers `Tessera-Event`, `Tessera-Delivery` and
    `Tessera-Signature`.
    """

    createdAt: str
    """
    When the event happened (RFC 3339); the same on every retry.
    """
    data: dict[str, Any]
    """
    What happened: metadata only, never a secret value or token. Its
    fields depend on `event`, e.g. `credential.stored`: `integration`,
    `tokenType`, `scopes`, `hasRefreshToken`, `expiresAt`, `source`;
    `key.rotated`: `version`, `createdAt`; `secret.rotation_due`: `path`,
    `rotateAfterDays`, `lastWrittenAt`, `dueAt`.
    """
    event: WebhookEvent
    """
    The event (also the `Tessera-Event` header).
    """
    id: str
    """
    `evt_...`, also the `Tessera-Delivery` header: the same on every retry
    of one event, so a receiver deduplicates on it.
    """
    tenantId: str
    """
    The tenant it happened to.
    """


class WebhookList(TypedDict):
    """
    A tenant's webhooks.
    """

    tenantId: str
    """
    Tenant.
    """
    webhooks: list[WebhookView]
    """
    Oldest first.
    """


class IntegrationInput(TypedDict):
    """
    A registry entry as callers send it.
    """

    authType: NotRequired[str | None]
    """
    `none` (default), `api_key`, `basic` or `oauth2`.
    """
    category: NotRequired[str | None]
    """
    Category.
    """
    configSchema: NotRequired[dict[str, Any] | list[Any] | None]
    healthCheck: NotRequired[HealthCheckSettings | None]
    key: NotRequired[str | None]
    """
    Slug key (ignored on PUT, where the path names it).
    """
    mcp: NotRequired[McpSettings | None]
    name: str
    """
    Display name: 1-200 characters, not only whitespace (stored trimmed).
    """
    oauth: NotRequired[OAuthInput | None]
    proxy: NotRequired[ProxySettings | None]
    template: NotRequired[str | None]
    """
    A ready OAuth template (`notion`, `github`, `slack`, `google`, `generic`)
    whose settings `oauth` then overrides.
    """
