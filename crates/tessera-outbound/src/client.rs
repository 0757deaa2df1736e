//! [`HttpOAuthClient`], the implementation of the outbound OAuth port.
//!
//! How the `oauth2` crate is used, and why:
//! - Token requests (`authorization_code` with `redirect_uri` and PKCE,
//!   `refresh_token`) are built by `oauth2`, which also does client
//!   authentication (Basic with RFC 6749 2.3.1 encoding, or form fields,
//!   client id only for public clients).
//! - They are sent through its `AsyncHttpClient` plumbing by our
//!   [`Transport`], which classifies every non-success answer itself:
//!   `oauth2`'s errors do not keep the HTTP status we need.
//! - Success bodies are parsed by `oauth2` into our own token response type
//!   ([`LenientTokenResponse`]), its extension point, because its standard
//!   type is too strict for real providers.
//! - Revocation is built in [`crate::revoke`]: `oauth2`'s refuses non-https
//!   URLs unconditionally. The https rule is ours for both endpoints.

use crate::endpoint::checked_url;
use crate::redact::scrub;
use crate::response::LenientTokenResponse;
use crate::transport::{Transport, TransportError};
use crate::{classify, revoke};
use async_trait::async_trait;
use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, StandardRevocableToken, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::error::Category;
use std::borrow::Cow;
use std::time::Duration;
use tessera_core::oauth::{ClientAuth, OAuthClient, OAuthClientConfig, OAuthError, TokenHint, TokenResponse};

/// The `oauth2` client for one provider's token endpoint.
type TokenClient = oauth2::Client<
    BasicErrorResponse,
    LenientTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The OAuth 2.0 client: one `reqwest::Client` (rustls, redirects never
/// followed, 5 s connect timeout, a total timeout, `User-Agent:
/// tessera/<version>`) shared by every call. Holds no credentials: each call
/// gets its client's configuration.
pub struct HttpOAuthClient {
    transport: Transport,
    allow_loopback_http: bool,
}

/// The HTTP client could not be built (TLS set-up).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the outbound HTTP client: {0}")]
pub struct BuildError(pub(crate) reqwest::Error);

impl HttpOAuthClient {
    /// A client whose calls each take at most `timeout`. Provider URLs must be
    /// `https`.
    pub fn new(timeout: Duration) -> Result<Self, BuildError> {
        Ok(Self { transport: Transport::new(timeout).map_err(BuildError)?, allow_loopback_http: false })
    }

    /// Also accepts `http://` URLs whose host is loopback (`127.0.0.0/8`,
    /// `::1`, `localhost`): for tests and a local identity provider.
    #[must_use]
    pub fn allow_loopback_http(mut self) -> Self {
        self.allow_loopback_http = true;
        self
    }

    fn token_client(&self, client: &OAuthClientConfig) -> Result<TokenClient, OAuthError> {
        let token_url = checked_url(&client.token_url, "token_url", self.allow_loopback_http)?;
        let auth_type = match client.auth {
            ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
            ClientAuth::ClientSecretPost => AuthType::RequestBody,
        };
        let oauth = oauth2::Client::new(ClientId::new(client.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(token_url))
            .set_auth_type(auth_type);
        Ok(match &client.client_secret {
            Some(secret) => oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned())),
            None => oauth,
        })
    }
}

#[async_trait]
impl OAuthClient for HttpOAuthClient {
    async fn exchange_code(
        &self,
        client: &OAuthClientConfig,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let result = async {
            let oauth = self.token_client(client)?;
            let redirect_uri = RedirectUrl::new(redirect_uri.to_owned())
                .map_err(|_| OAuthError::Invalid("redirect_uri is not a valid URL".to_owned()))?;
            let mut request =
                oauth.exchange_code(AuthorizationCode::new(code.to_owned())).set_redirect_uri(Cow::Owned(redirect_uri));
            if let Some(verifier) = code_verifier {
                request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
            }
            request.request_async(&self.transport).await.map_err(from_oauth2)?.into_port()
        }
        .await;
        result.map_err(|e| scrub(e, &[code, code_verifier.unwrap_or_default(), client_secret(client)]))
    }

    async fn refresh(
        &self,
        client: &OAuthClientConfig,
        refresh_token: &SecretString,
    ) -> Result<TokenResponse, OAuthError> {
        let result = async {
            let oauth = self.token_client(client)?;
            let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
            oauth.exchange_refresh_token(&token).request_async(&self.transport).await.map_err(from_oauth2)?.into_port()
        }
        .await;
        result.map_err(|e| scrub(e, &[refresh_token.expose_secret(), client_secret(client)]))
    }

    async fn revoke(
        &self,
        client: &OAuthClientConfig,
        revoke_url: &str,
        token: &SecretString,
        hint: TokenHint,
    ) -> Result<(), OAuthError> {
        let result = async {
            let url = checked_url(revoke_url, "revoke_url", self.allow_loopback_http)?;
            let answer = self.transport.send(revoke::request(client, url, token, hint)?).await?;
            // RFC 7009 2.2: 200 also for tokens that were already invalid.
            if answer.status.is_success() {
                Ok(())
            } else {
                Err(classify::failure(answer.status, &answer.body))
            }
        }
        .await;
        result.map_err(|e| scrub(e, &[token.expose_secret(), client_secret(client)]))
    }
}

/// The client secret, for scrubbing only.
fn client_secret(client: &OAuthClientConfig) -> &str {
    client.client_secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default()
}

/// `oauth2`'s error, without the body it keeps on parse failures.
fn from_oauth2(err: RequestTokenError<TransportError, BasicErrorResponse>) -> OAuthError {
    match err {
        RequestTokenError::Request(TransportError(err)) => err,
        // The transport answers every non-2xx first; this is for completeness.
        RequestTokenError::ServerResponse(response) => OAuthError::Rejected {
            code: response.error().as_ref().to_owned(),
            description: response.error_description().cloned(),
        },
        RequestTokenError::Parse(err, _body) => OAuthError::Invalid(parse_reason(&err.path().to_string(), err.inner())),
        RequestTokenError::Other(reason) => OAuthError::Invalid(reason.chars().take(120).collect()),
    }
}

/// Why a 2xx body is not a token response, from the field path and the kind
/// of error only: serde's messages can quote the values, tokens included.
fn parse_reason(path: &str, err: &serde_json::Error) -> String {
    match err.classify() {
        Category::Syntax | Category::Eof => "the body is not JSON".to_owned(),
        Category::Io => "the body could not be read".to_owned(),
        Category::Data => {
            if path != "." {
                return format!("field `{path}` has an unexpected value");
            }
            let message = err.to_string();
            match message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
                Some((field, _)) => format!("field `{field}` is missing"),
                None => "the body is not a JSON object".to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_reason;

    /// The reason for `json` failing to parse as `Shape`, at `path` (what
    /// `serde_path_to_error` would report).
    fn reason(path: &str, json: &str) -> String {
        let err = serde_json::from_str::<Shape>(json).err().expect("fails");
        parse_reason(path, &err)
    }

    #[derive(serde::Deserialize)]
    struct Shape {
        #[allow(dead_code)]
        n: u64,
    }

    #[test]
    fn reasons_name_the_field_but_never_quote_the_value() {
        assert_eq!(reason("n", r#"{"n":"secret-value"}"#), "field `n` has an unexpected value");
        assert_eq!(reason(".", r#"{}"#), "field `n` is missing");
        assert_eq!(reason(".", r#""secret-value""#), "the body is not a JSON object");
        assert_eq!(reason(".", r#"{"n":"#), "the body is not JSON");
    }
}
