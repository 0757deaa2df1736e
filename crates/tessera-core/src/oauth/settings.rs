//! An integration's OAuth settings: what callers send ([`OAuthInput`]), what
//! the registry stores ([`OAuthSettings`]: no client secret, which lives
//! encrypted in the secret store), PKCE, and the authorization URL.

use crate::ErrorCode;
use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::client::ClientAuth;
use crate::error::ServiceError;

/// OAuth settings as callers send them (`oauth` of a registry entry). Every
/// field is optional so a template can fill the rest.
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthInput {
    /// The provider's authorization endpoint.
    pub authorize_url: Option<String>,
    /// The provider's token endpoint.
    pub token_url: Option<String>,
    /// The provider's RFC 7009 revocation endpoint.
    pub revoke_url: Option<String>,
    /// Scopes requested.
    pub scopes: Option<Vec<String>>,
    /// How scopes are joined in the authorization URL (default a space).
    pub scope_separator: Option<String>,
    /// Client id (else `<INTEGRATION>_CLIENT_ID`).
    pub client_id: Option<String>,
    /// Client secret, stored encrypted (else `<INTEGRATION>_CLIENT_SECRET`).
    pub client_secret: Option<String>,
    /// Whether to use PKCE S256 (default true, also over a template). `false`
    /// only for a provider that rejects PKCE: weaker, since the code exchange
    /// is then bound to its flow by the state alone.
    pub pkce: Option<bool>,
    /// Extra authorization parameters (`access_type=offline`, ...).
    pub extra_params: Option<BTreeMap<String, String>>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    pub token_auth_method: Option<ClientAuth>,
    /// The callback URL registered with the provider (else
    /// `<INTEGRATION>_REDIRECT_URI`, else Tessera's own `/oauth/callback/<key>`).
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for OAuthInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthInput")
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[SECRET]"))
            .finish_non_exhaustive()
    }
}

/// OAuth settings as the registry stores and shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthSettings {
    /// Authorization endpoint.
    pub authorize_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// RFC 7009 revocation endpoint.
    pub revoke_url: Option<String>,
    /// Scopes requested.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How scopes are joined.
    #[serde(default = "space")]
    pub scope_separator: String,
    /// Client id.
    pub client_id: Option<String>,
    /// Whether a client secret is stored (its value never shows).
    #[serde(default)]
    pub client_secret_set: bool,
    /// PKCE S256: on unless a registration turned it off.
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Extra authorization parameters.
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub token_auth_method: ClientAuth,
    /// The callback URL registered with the provider.
    pub redirect_uri: Option<String>,
}

fn space() -> String {
    " ".to_owned()
}

fn yes() -> bool {
    true
}

/// What an integration registered without a template starts from: scopes
/// joined with a space (RFC 6749 3.3), not with nothing, and PKCE S256 on,
/// so that a code can only be exchanged by the flow that asked for it (a
/// code from tenant A's flow sent with tenant B's state fails at the
/// provider).
impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            authorize_url: None,
            token_url: None,
            revoke_url: None,
            scopes: Vec::new(),
            scope_separator: space(),
            client_id: None,
            client_secret_set: false,
            pkce: true,
            extra_params: BTreeMap::new(),
            token_auth_method: ClientAuth::default(),
            redirect_uri: None,
        }
    }
}

/// Parameters the authorization URL sets itself; `extraParams` may not override them.
const RESERVED_PARAMS: [&str; 7] =
    ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"];

impl OAuthSettings {
    /// Applies `input` over `self` (a template or the stored settings),
    /// validating URLs. Returns the client secret to store, if one was given.
    pub fn merge(mut self, input: OAuthInput) -> Result<(Self, Option<Zeroizing<String>>), ServiceError> {
        let field = |name: &str| format!("oauth.{name}");
        for (name, value) in
            [("authorizeUrl", &input.authorize_url), ("tokenUrl", &input.token_url), ("revokeUrl", &input.revoke_url)]
        {
            if let Some(v) = value {
                check_url(v, &field(name))?;
            }
        }
        if let Some(v) = &input.redirect_uri {
            check_url(v, &field("redirectUri"))?;
        }
        if let Some(params) = &input.extra_params {
            if let Some(bad) = params.keys().find(|k| RESERVED_PARAMS.contains(&k.as_str())) {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidOauthSettings,
                    format!("extraParams may not set {bad}: Tessera sets it"),
                    Some(&field("extraParams")),
                ));
            }
        }
        if input.scope_separator.as_deref().is_some_and(|s| s.is_empty() || s.len() > 8) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidOauthSettings,
                "scopeSeparator must be 1-8 characters (a space by default)",
                Some(&field("scopeSeparator")),
            ));
        }
        if input.client_id.as_deref().is_some_and(|c| c.trim().is_empty() || c.len() > 512) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidOauthSettings,
                "clientId must be 1-512 characters",
                Some(&field("clientId")),
            ));
        }
        let secret = match input.client_secret {
            Some(s) if s.is_empty() || s.len() > 4096 => {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidOauthSettings,
                    "clientSecret must be 1-4096 characters",
                    Some(&field("clientSecret")),
                ))
            }
            Some(s) => Some(Zeroizing::new(s)),
            None => None,
        };
        self.authorize_url = input.authorize_url.or(self.authorize_url);
        self.token_url = input.token_url.or(self.token_url);
        self.revoke_url = input.revoke_url.or(self.revoke_url);
        self.scopes = input.scopes.unwrap_or(self.scopes);
        self.scope_separator = input.scope_separator.unwrap_or(self.scope_separator);
        self.client_id = input.client_id.or(self.client_id);
        self.pkce = input.pkce.unwrap_or(self.pkce);
        if let Some(extra) = input.extra_params {
            self.extra_params = extra;
        }
        self.token_auth_method = input.token_auth_method.unwrap_or(self.token_auth_method);
        self.redirect_uri = input.redirect_uri.or(self.redirect_uri);
        if secret.is_some() {
            self.client_secret_set = true;
        }
        Ok((self, secret))
    }

    /// The provider's authorization URL for one flow.
    pub fn authorization_url(
        &self,
        authorize_url: &str,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        code_challenge: Option<&str>,
    ) -> Result<String, ServiceError> {
        let mut url = url::Url::parse(authorize_url).map_err(|_| not_configured("authorizeUrl is not a valid URL"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", client_id);
            q.append_pair("redirect_uri", redirect_uri);
            if !self.scopes.is_empty() {
                // Entries stored before the space became the default may hold "".
                let separator = if self.scope_separator.is_empty() { " " } else { self.scope_separator.as_str() };
                q.append_pair("scope", &self.scopes.join(separator));
            }
            q.append_pair("state", state);
            if let Some(challenge) = code_challenge {
                q.append_pair("code_challenge", challenge);
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &self.extra_params {
                q.append_pair(k, v);
            }
        }
        Ok(url.into())
    }
}

/// An integration without what a flow needs.
pub fn not_configured(what: &str) -> ServiceError {
    ServiceError::conflict(
        ErrorCode::OauthNotConfigured,
        format!("OAuth is not configured for this integration: {what}"),
    )
}

fn check_url(raw: &str, field: &str) -> Result<(), ServiceError> {
    crate::registry_url::refuse_credentials(raw, field, ErrorCode::InvalidUrl)?;
    let ok = url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            ErrorCode::InvalidUrl,
            format!("{field} must be an absolute http(s) URL"),
            Some(field),
        ))
    }
}

/// A fresh random token of 32 bytes, base64url without padding (43
/// characters): OAuth states and PKCE verifiers.
pub fn random_token() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// The PKCE S256 challenge of a verifier (RFC 7636 4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge_matches() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn scopes_are_joined_with_a_space_unless_a_separator_is_set() {
        let url =
            |s: &OAuthSettings| s.authorization_url("https://p.example/a", "c", "https://t.example/cb", "st", None);
        let scopes = || OAuthInput { scopes: Some(vec!["read".into(), "write".into()]), ..Default::default() };
        let (plain, _) = OAuthSettings::default().merge(scopes()).expect("valid");
        assert!(url(&plain).expect("url").contains("&scope=read+write&"));
        let (comma, _) = OAuthSettings::default()
            .merge(OAuthInput { scope_separator: Some(",".into()), ..scopes() })
            .expect("valid");
        assert!(url(&comma).expect("url").contains("&scope=read%2Cwrite&"));
        // Stored before the default was a space: still a space.
        let stored: OAuthSettings =
            serde_json::from_value(serde_json::json!({"scopes": ["read", "write"], "scopeSeparator": ""}))
                .expect("settings");
        assert!(url(&stored).expect("url").contains("&scope=read+write&"));
        let empty = OAuthInput { scope_separator: Some(String::new()), ..scopes() };
        assert!(OAuthSettings::default().merge(empty).is_err());
    }

    #[test]
    fn the_authorization_url_carries_state_scopes_and_challenge() {
        let (s, _) = OAuthSettings::default()
            .merge(OAuthInput {
                scopes: Some(vec!["read".into(), "write".into()]),
                extra_params: Some(BTreeMap::from([("owner".into(), "user".into())])),
                ..Default::default()
            })
            .expect("valid");
        let url = s
            .authorization_url("https://p.example/authorize?x=1", "cid", "https://t.example/cb", "st", Some("ch"))
            .expect("url");
        assert_eq!(
            url,
            "https://p.example/authorize?x=1&response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Ft.example%2Fcb\
             &scope=read+write&state=st&code_challenge=ch&code_challenge_method=S256&owner=user"
        );
    }

    #[test]
    fn pkce_is_on_unless_turned_off_explicitly() {
        let (plain, _) = OAuthSettings::default().merge(OAuthInput::default()).expect("valid");
        assert!(plain.pkce);
        for template in super::super::templates::all() {
            assert!(template.oauth.pkce, "template {}", template.name);
            let (merged, _) = template.oauth.merge(OAuthInput::default()).expect("valid");
            assert!(merged.pkce, "template {}", template.name);
        }
        let off = OAuthInput { pkce: Some(false), ..Default::default() };
        assert!(!OAuthSettings::default().merge(off).expect("valid").0.pkce);
        let stored: OAuthSettings = serde_json::from_value(serde_json::json!({"scopes": []})).expect("settings");
        assert!(stored.pkce, "a stored entry without the field has PKCE on");
    }

    #[test]
    fn extra_params_cannot_override_the_state_or_redirect() {
        let input = OAuthInput {
            extra_params: Some(BTreeMap::from([("redirect_uri".into(), "https://evil.example".into())])),
            ..Default::default()
        };
        assert!(OAuthSettings::default().merge(input).is_err());
        let bad_url = OAuthInput { token_url: Some("file:///etc/passwd".into()), ..Default::default() };
        assert!(OAuthSettings::default().merge(bad_url).is_err());
        let with_password =
            OAuthInput { token_url: Some("https://u:pass@idp.example/token".into()), ..Default::default() };
        let e = OAuthSettings::default().merge(with_password).expect_err("refused");
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidUrl, Some("oauth.tokenUrl")));
    }

    #[test]
    fn random_tokens_differ_and_are_43_characters() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 43);
    }
}
