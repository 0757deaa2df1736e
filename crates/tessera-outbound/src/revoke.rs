//! The RFC 7009 revocation request, built here rather than with `oauth2`'s
//! `RevocationRequest`: that one refuses any non-`https` URL without an
//! escape hatch, which rules out the in-process endpoints the tests need.
//! [`crate::endpoint`] applies the same https rule, with a loopback opt-in.
//! Client authentication follows what `oauth2` does for the token endpoint:
//! HTTP Basic with the id and secret each form-url-encoded first (RFC 6749
//! 2.3.1), or both as form fields; a public client sends only `client_id`.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use tessera_core::oauth::{ClientAuth, OAuthClientConfig, OAuthError, TokenHint};
use url::form_urlencoded::{byte_serialize, Serializer};
use url::Url;

/// The RFC 7009 2.1 `token_type_hint` value.
pub(crate) fn hint_value(hint: TokenHint) -> &'static str {
    match hint {
        TokenHint::AccessToken => "access_token",
        TokenHint::RefreshToken => "refresh_token",
    }
}

/// `POST revoke_url` with `token`, `token_type_hint` and the client's authentication.
pub(crate) fn request(
    client: &OAuthClientConfig,
    revoke_url: Url,
    token: &SecretString,
    hint: TokenHint,
) -> Result<reqwest::Request, OAuthError> {
    let mut form = Serializer::new(String::new());
    form.append_pair("token", token.expose_secret());
    form.append_pair("token_type_hint", hint_value(hint));
    let mut authorization = None;
    match (client.auth, &client.client_secret) {
        (ClientAuth::ClientSecretBasic, Some(secret)) => {
            let id: String = byte_serialize(client.client_id.as_bytes()).collect();
            let secret: String = byte_serialize(secret.expose_secret().as_bytes()).collect();
            let credentials = BASE64_STANDARD.encode(format!("{id}:{secret}"));
            let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
                .map_err(|_| OAuthError::Invalid("the client credentials cannot be sent".to_owned()))?;
            value.set_sensitive(true);
            authorization = Some(value);
        }
        (ClientAuth::ClientSecretPost, Some(secret)) => {
            form.append_pair("client_id", &client.client_id);
            form.append_pair("client_secret", secret.expose_secret());
        }
        (_, None) => {
            form.append_pair("client_id", &client.client_id);
        }
    }
    let mut request = reqwest::Request::new(reqwest::Method::POST, revoke_url);
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, value);
    }
    *request.body_mut() = Some(form.finish().into());
    Ok(request)
}
