//! Every error code the API can answer, in one list.
//!
//! A code is a stable snake_case word a client may match on (the message is
//! for humans and may change). The HTTP adapter documents this list in
//! `/openapi.json`; adding a code is adding a variant here.

/// Defines [`ErrorCode`] with each variant's wire string and description.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal,)*) => {
        /// A stable error code (`{"error": {"code": ...}}`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in alphabetical order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the API writes it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// What the code means, for documentation.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => concat!($($doc),*),)*
                }
            }
        }
    };
}

error_codes! {
    /// The user or the provider declined the authorization (RFC 6749).
    AccessDenied = "access_denied",
    /// The resource exists already.
    AlreadyExists = "already_exists",
    /// No such API key.
    ApiKeyNotFound = "api_key_not_found",
    /// The audit log cannot take the event now; nothing was done. Retry later.
    AuditUnavailable = "audit_unavailable",
    /// The credential backend is read-only (environment); writes are refused.
    BackendReadOnly = "backend_read_only",
    /// The request could not be read.
    BadRequest = "bad_request",
    /// The request body could not be read.
    BodyUnreadable = "body_unreadable",
    /// Check-and-set failed: the secret's newest version is not the one named.
    CasMismatch = "cas_mismatch",
    /// The secret (or its tenant's KV mount) requires check-and-set: the write must name the version it replaces (`cas`).
    CasRequired = "cas_required",
    /// The connect link does not offer that integration.
    ConnectIntegrationNotOffered = "connect_integration_not_offered",
    /// The connect link is unknown or malformed.
    ConnectLinkInvalid = "connect_link_invalid",
    /// Done was pressed before anything was connected.
    ConnectNothingConnected = "connect_nothing_connected",
    /// The connect session was cancelled.
    ConnectSessionCancelled = "connect_session_cancelled",
    /// The connect session is finished.
    ConnectSessionCompleted = "connect_session_completed",
    /// The connect session expired.
    ConnectSessionExpired = "connect_session_expired",
    /// No such connect session.
    ConnectSessionNotFound = "connect_session_not_found",
    /// The tenant's connection to the integration is disabled.
    ConnectionDisabled = "connection_disabled",
    /// The tenant has no connection to the integration.
    ConnectionNotFound = "connection_not_found",
    /// The stored access token expired and could not be refreshed.
    CredentialExpired = "credential_expired",
    /// The file credential backend cannot write its file.
    CredentialFileUnwritable = "credential_file_unwritable",
    /// The tenant has no credentials for the integration.
    CredentialsNotFound = "credentials_not_found",
    /// This credential backend cannot keep custom metadata.
    CustomMetadataUnsupported = "custom_metadata_unsupported",
    /// A tenant data key a value needs is missing.
    DataKeyMissing = "data_key_missing",
    /// Transit decryption failed: the ciphertext does not authenticate under the key.
    DecryptFailed = "decrypt_failed",
    /// A stored value failed to decrypt (tampered, moved, or the wrong master key).
    DecryptionFailed = "decryption_failed",
    /// The Transit key may not be deleted: its configuration does not allow deletion (`deletion_allowed`).
    DeletionNotAllowed = "deletion_not_allowed",
    /// The caller's role or scopes do not allow this.
    Forbidden = "forbidden",
    /// The request headers are over the limit.
    HeadersTooLarge = "headers_too_large",
    /// The integration has no health-check settings.
    HealthCheckNotConfigured = "health_check_not_configured",
    /// This process sends no health probes.
    HealthUnavailable = "health_unavailable",
    /// The URL must use https (http only on loopback with TESSERA_ALLOW_LOOPBACK_HTTP).
    InsecureUrl = "insecure_url",
    /// The integration is registered already.
    IntegrationExists = "integration_exists",
    /// The tool id and the integration field name different integrations.
    IntegrationMismatch = "integration_mismatch",
    /// No such integration.
    IntegrationNotFound = "integration_not_found",
    /// An unexpected failure; the server log has the details.
    Internal = "internal",
    /// Unknown authType.
    InvalidAuthType = "invalid_auth_type",
    /// The request body does not have the expected shape.
    InvalidBody = "invalid_body",
    /// The Transit ciphertext is malformed.
    InvalidCiphertext = "invalid_ciphertext",
    /// The integration's configSchema is not valid.
    InvalidConfigSchema = "invalid_config_schema",
    /// custom_metadata must map strings to strings, within the limits.
    InvalidCustomMetadata = "invalid_custom_metadata",
    /// The connect session's endUser is not valid.
    InvalidEndUser = "invalid_end_user",
    /// The webhook's event list is not valid.
    InvalidEvents = "invalid_events",
    /// expiresIn is out of range.
    InvalidExpiresIn = "invalid_expires_in",
    /// The token expiry is not valid.
    InvalidExpiry = "invalid_expiry",
    /// The submitted form could not be read.
    InvalidForm = "invalid_form",
    /// The integration's healthCheck settings are not valid.
    InvalidHealthCheck = "invalid_health_check",
    /// The integration key is not valid.
    InvalidIntegrationKey = "invalid_integration_key",
    /// The connect session's integration list is not valid.
    InvalidIntegrations = "invalid_integrations",
    /// The key name is not valid.
    InvalidKeyName = "invalid_key_name",
    /// The key version is not valid.
    InvalidKeyVersion = "invalid_key_version",
    /// The integration's mcp settings are not valid.
    InvalidMcpSettings = "invalid_mcp_settings",
    /// The name is not valid.
    InvalidName = "invalid_name",
    /// The integration's oauth settings are not valid.
    InvalidOauthSettings = "invalid_oauth_settings",
    /// The tool parameters must be a JSON object.
    InvalidParameters = "invalid_parameters",
    /// A path parameter does not parse.
    InvalidPath = "invalid_path",
    /// The proxied path must stay under the integration's base URL.
    InvalidProxyPath = "invalid_proxy_path",
    /// The integration's proxy settings are not valid.
    InvalidProxySettings = "invalid_proxy_settings",
    /// A query parameter does not parse.
    InvalidQuery = "invalid_query",
    /// The provider found the authorization request malformed (RFC 6749).
    InvalidRequest = "invalid_request",
    /// Unknown role, or a role that cannot be used here.
    InvalidRole = "invalid_role",
    /// rotateAfterDays is not valid.
    InvalidRotation = "invalid_rotation",
    /// The provider refused the scopes asked for (RFC 6749).
    InvalidScope = "invalid_scope",
    /// The scopes are not valid.
    InvalidScopes = "invalid_scopes",
    /// The secret path is not valid.
    InvalidSecretPath = "invalid_secret_path",
    /// A secret's or KV mount's version settings are out of range.
    InvalidSecretSettings = "invalid_secret_settings",
    /// since is not an RFC 3339 time.
    InvalidSince = "invalid_since",
    /// The OAuth state is unknown, used already or expired.
    InvalidState = "invalid_state",
    /// The migration target is not valid.
    InvalidTarget = "invalid_target",
    /// The tenant id is not valid.
    InvalidTenantId = "invalid_tenant_id",
    /// The token is not valid.
    InvalidToken = "invalid_token",
    /// The token type is not valid.
    InvalidTokenType = "invalid_token_type",
    /// The tool id is not valid.
    InvalidToolId = "invalid_tool_id",
    /// A config value has the wrong type for its schema field.
    InvalidType = "invalid_type",
    /// until is not an RFC 3339 time.
    InvalidUntil = "invalid_until",
    /// The URL is not valid.
    InvalidUrl = "invalid_url",
    /// The version list is not valid.
    InvalidVersions = "invalid_versions",
    /// The webhook URL is not allowed.
    InvalidWebhookUrl = "invalid_webhook_url",
    /// The body's key differs from the path's.
    KeyMismatch = "key_mismatch",
    /// That key version may not be used (below min_encryption_version, or newer than the key).
    KeyVersionDisallowed = "key_version_disallowed",
    /// The request body is not valid JSON.
    MalformedJson = "malformed_json",
    /// The integration has no MCP server (mcp.url).
    McpNotConfigured = "mcp_not_configured",
    /// The MCP server broke the protocol.
    McpProtocolError = "mcp_protocol_error",
    /// The MCP server did not answer in time.
    McpTimeout = "mcp_timeout",
    /// The MCP server refused the credential.
    McpUnauthorized = "mcp_unauthorized",
    /// The MCP server cannot be reached.
    McpUnavailable = "mcp_unavailable",
    /// The route does not accept that method.
    MethodNotAllowed = "method_not_allowed",
    /// The OAuth callback has no code.
    MissingCode = "missing_code",
    /// The tool call names no integration.
    MissingIntegration = "missing_integration",
    /// A required config field is missing.
    MissingRequiredField = "missing_required_field",
    /// The call must name a tenant.
    MissingTenant = "missing_tenant",
    /// tenant_id is required.
    MissingTenantId = "missing_tenant_id",
    /// The secret holds one value, not fields: write it whole instead of patching it.
    NotAFieldMap = "not_a_field_map",
    /// The Transit key's material may not be exported: it is not configured as exportable.
    NotExportable = "not_exportable",
    /// The provider did not issue tokens for the code.
    OauthExchangeFailed = "oauth_exchange_failed",
    /// OAuth is not configured for the integration.
    OauthNotConfigured = "oauth_not_configured",
    /// The provider ended the flow with an error code outside RFC 6749's list.
    OauthProviderError = "oauth_provider_error",
    /// The provider refused to refresh the token.
    OauthRefreshFailed = "oauth_refresh_failed",
    /// This process makes no OAuth calls.
    OauthUnavailable = "oauth_unavailable",
    /// The request body is over the limit.
    PayloadTooLarge = "payload_too_large",
    /// An injected credential cannot be sent (say, a header value with a newline); nothing was sent.
    ProxyCredentialInvalid = "proxy_credential_invalid",
    /// The credential the proxy must inject is missing; nothing was sent.
    ProxyCredentialMissing = "proxy_credential_missing",
    /// The integration has no proxy settings.
    ProxyNotConfigured = "proxy_not_configured",
    /// This server does not forward calls.
    ProxyUnavailable = "proxy_unavailable",
    /// Over the rate limit; retry after Retry-After seconds.
    RateLimited = "rate_limited",
    /// The redirect URI is not in TESSERA_ALLOWED_REDIRECT_URIS.
    RedirectUriNotAllowed = "redirect_uri_not_allowed",
    /// Another refresh of this token is running; retry shortly.
    RefreshInProgress = "refresh_in_progress",
    /// The request took longer than the time limit.
    RequestTimeout = "request_timeout",
    /// The tenant is reserved.
    ReservedTenant = "reserved_tenant",
    /// The credential backend cannot rewrite values.
    RewrapUnsupported = "rewrap_unsupported",
    /// Rotation reminders need the database backend.
    RotationUnsupported = "rotation_unsupported",
    /// No such route.
    RouteNotFound = "route_not_found",
    /// No such secret.
    SecretNotFound = "secret_not_found",
    /// Secret fields cannot be used as filters.
    SecretNotQueryable = "secret_not_queryable",
    /// Version settings (max_versions, cas_required, delete_version_after) need the database credential backend.
    SecretSettingsUnsupported = "secret_settings_unsupported",
    /// The provider failed while authorizing (RFC 6749).
    ServerError = "server_error",
    /// The OAuth flow took too long; start it again.
    StateExpired = "state_expired",
    /// The metadata store is unavailable; retry later.
    StoreUnavailable = "store_unavailable",
    /// The provider is overloaded or down for maintenance (RFC 6749).
    TemporarilyUnavailable = "temporarily_unavailable",
    /// The tenant exists already.
    TenantExists = "tenant_exists",
    /// The key may not name that tenant.
    TenantNotAllowed = "tenant_not_allowed",
    /// No such tenant (or not the caller's).
    TenantNotFound = "tenant_not_found",
    /// The role needs a tenant.
    TenantRequired = "tenant_required",
    /// Too many config filters.
    TooManyFilters = "too_many_filters",
    /// The tenant has the most webhooks allowed.
    TooManyWebhooks = "too_many_webhooks",
    /// The MCP server refused the call or the tool reported an error.
    ToolError = "tool_error",
    /// No such Transit key.
    TransitKeyNotFound = "transit_key_not_found",
    /// No API key, or one that is not valid.
    Unauthenticated = "unauthenticated",
    /// The provider does not allow this client to ask for a code (RFC 6749).
    UnauthorizedClient = "unauthorized_client",
    /// Unknown secret action.
    UnknownAction = "unknown_action",
    /// A field the schema does not have.
    UnknownField = "unknown_field",
    /// No such integration template.
    UnknownTemplate = "unknown_template",
    /// The MCP server does not list the tool.
    UnknownTool = "unknown_tool",
    /// Send Content-Type: application/json.
    UnsupportedMediaType = "unsupported_media_type",
    /// The provider does not issue codes this way (RFC 6749).
    UnsupportedResponseType = "unsupported_response_type",
    /// The upstream did not answer in time.
    UpstreamTimeout = "upstream_timeout",
    /// The upstream cannot be reached (name not resolved, connection refused, TLS).
    UpstreamUnavailable = "upstream_unavailable",
    /// The request URI is over the limit.
    UriTooLong = "uri_too_long",
    /// Vault refused Tessera's token.
    VaultDenied = "vault_denied",
    /// Vault answered with an error.
    VaultError = "vault_error",
    /// Vault cannot be reached.
    VaultUnavailable = "vault_unavailable",
    /// The version is deleted (undelete restores it).
    VersionDeleted = "version_deleted",
    /// The version was destroyed.
    VersionDestroyed = "version_destroyed",
    /// No such version (it may have been pruned).
    VersionNotFound = "version_not_found",
    /// A stored version cannot be read.
    VersionUnreadable = "version_unreadable",
    /// No such webhook.
    WebhookNotFound = "webhook_not_found",
    /// The master key does not match the store's.
    WrongMasterKey = "wrong_master_key",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_unique_sorted_snake_case_and_described() {
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(all, sorted, "sorted and unique");
        for c in ErrorCode::ALL {
            assert!(c.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{c}");
            assert!(c.description().trim().len() > 10, "{c} is described");
        }
    }
}
