//! The outbound OAuth port: what the service needs from an OAuth 2.0
//! authorization server (RFC 6749 token endpoint, RFC 7009 revocation).
//! The implementation lives in `tessera-outbound`; the service never speaks
//! HTTP itself.

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (RFC 6749 2.3.1, the default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Everything needed to call a provider's token endpoint as this client.
pub struct OAuthClientConfig {
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (none for public clients relying on PKCE).
    pub client_secret: Option<SecretString>,
    /// How the client authenticates.
    pub auth: ClientAuth,
    /// The token endpoint.
    pub token_url: String,
}

/// A successful token response. Token values stay in `SecretString`.
pub struct TokenResponse {
    /// The access token.
    pub access_token: SecretString,
    /// A refresh token, when the provider issued one (a rotated one on refresh).
    pub refresh_token: Option<SecretString>,
    /// `bearer` and so on, as the provider spelled it.
    pub token_type: String,
    /// Lifetime in seconds, when the provider said.
    pub expires_in: Option<u64>,
    /// Granted scopes, when the provider said.
    pub scopes: Option<Vec<String>>,
}

/// Which token a revocation names (RFC 7009 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
}

/// Why a call to the provider failed. Never carries a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The provider refused with an RFC 6749 error (`invalid_grant`, ...):
    /// retrying the same request will not help.
    #[error("the provider refused the request: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        /// The RFC 6749 error code.
        code: String,
        /// The provider's description, if any.
        description: Option<String>,
    },
    /// Unreachable, timed out, or a 5xx: worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The answer was not a valid token response.
    #[error("the provider's answer is not a valid token response: {0}")]
    Invalid(String),
}

impl OAuthError {
    /// Whether a retry could succeed (the refresh worker backs off and retries these).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// A short code for audit rows and API errors.
    pub fn code(&self) -> &str {
        match self {
            Self::Rejected { code, .. } => code,
            Self::Unavailable(_) => "provider_unavailable",
            Self::Invalid(_) => "invalid_token_response",
        }
    }
}

/// Calls an OAuth 2.0 authorization server.
#[async_trait]
pub trait OAuthClient: Send + Sync {
    /// Exchanges an authorization code (`grant_type=authorization_code`),
    /// sending the PKCE verifier when the flow used one.
    async fn exchange_code(
        &self,
        client: &OAuthClientConfig,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError>;

    /// Refreshes (`grant_type=refresh_token`).
    async fn refresh(
        &self,
        client: &OAuthClientConfig,
        refresh_token: &SecretString,
    ) -> Result<TokenResponse, OAuthError>;

    /// Revokes a token at an RFC 7009 endpoint.
    async fn revoke(
        &self,
        client: &OAuthClientConfig,
        revoke_url: &str,
        token: &SecretString,
        hint: TokenHint,
    ) -> Result<(), OAuthError>;
}
