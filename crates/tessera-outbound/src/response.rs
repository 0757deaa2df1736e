//! The token response as real providers send it, plugged into the `oauth2`
//! crate through its `TokenResponse` extension point. Its
//! `StandardTokenResponse` is too strict for them: it requires `token_type`
//! and a numeric `expires_in` and splits `scope` on spaces only. Here:
//!
//! - `token_type`: missing means `bearer`; any case, kept lower-cased.
//! - `expires_in`: a number or a numeric string; missing or null is `None`.
//! - `scope`: split on spaces and commas (GitHub), or a JSON array; missing
//!   or null is `None`, an empty string is `Some(vec![])`.
//! - `refresh_token`: optional; an empty string counts as missing.
//!
//! Unknown fields (`id_token`, ...) are ignored.

use oauth2::{AccessToken, RefreshToken, Scope, TokenType};
use secrecy::SecretString;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;
use tessera_core::oauth::{OAuthError, TokenResponse};

/// `token_type`, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LenientTokenType(String);

impl TokenType for LenientTokenType {}

/// A token response. `Debug` is derived: `AccessToken` and `RefreshToken`
/// print as `[redacted]`.
#[derive(Debug, Deserialize)]
pub(crate) struct LenientTokenResponse {
    access_token: AccessToken,
    #[serde(default = "bearer", deserialize_with = "token_type")]
    token_type: LenientTokenType,
    #[serde(default, deserialize_with = "expires_in")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "refresh_token")]
    refresh_token: Option<RefreshToken>,
    #[serde(default, rename = "scope", deserialize_with = "scopes")]
    scopes: Option<Vec<Scope>>,
}

/// The `oauth2` trait requires `Serialize`; a token response is never
/// serialized, so this refuses rather than writing tokens anywhere.
impl Serialize for LenientTokenResponse {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("token responses are never serialized"))
    }
}

impl oauth2::TokenResponse for LenientTokenResponse {
    type TokenType = LenientTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &LenientTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

impl LenientTokenResponse {
    /// The port's type. An empty `access_token` is not a token.
    pub(crate) fn into_port(self) -> Result<TokenResponse, OAuthError> {
        let access_token = self.access_token.into_secret();
        if access_token.is_empty() {
            return Err(OAuthError::Invalid("access_token is empty".to_owned()));
        }
        Ok(TokenResponse {
            access_token: SecretString::from(access_token),
            refresh_token: self.refresh_token.map(|t| SecretString::from(t.into_secret())),
            token_type: self.token_type.0,
            expires_in: self.expires_in,
            scopes: self.scopes.map(|s| s.into_iter().map(|s| s.to_string()).collect()),
        })
    }
}

fn bearer() -> LenientTokenType {
    LenientTokenType("bearer".to_owned())
}

fn token_type<'de, D: Deserializer<'de>>(d: D) -> Result<LenientTokenType, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    Ok(match raw.as_deref().map(str::trim) {
        None | Some("") => bearer(),
        Some(t) => LenientTokenType(t.to_ascii_lowercase()),
    })
}

fn expires_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde_json::Value;
    let bad = || D::Error::custom("expires_in is not a non-negative number");
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(secs), _) => Ok(Some(secs)),
            // 3600.0: whole seconds are what matters.
            (None, Some(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(bad()),
        },
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

fn refresh_token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RefreshToken>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|t| !t.is_empty()).map(RefreshToken::new))
}

fn scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Scope>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        List(Vec<String>),
    }
    let split = |s: &str| -> Vec<Scope> {
        s.split([' ', ',']).map(str::trim).filter(|s| !s.is_empty()).map(|s| Scope::new(s.to_owned())).collect()
    };
    Ok(match Option::<Raw>::deserialize(d)? {
        None => None,
        Some(Raw::Text(s)) => Some(split(&s)),
        Some(Raw::List(list)) => Some(list.iter().flat_map(|s| split(s)).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(json: &str) -> TokenResponse {
        let parsed: LenientTokenResponse = serde_json::from_str(json).expect("parses");
        parsed.into_port().expect("valid")
    }

    #[test]
    fn a_standard_response_is_read_as_is() {
        let t = parse(
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"a b"}"#,
        );
        assert_eq!(t.access_token.expose_secret(), "at");
        assert_eq!(t.refresh_token.as_ref().map(|r| r.expose_secret().to_owned()), Some("rt".to_owned()));
        assert_eq!(t.token_type, "bearer");
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(t.scopes, Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn missing_optional_fields_have_defaults() {
        let t = parse(r#"{"access_token":"at","id_token":"x.y.z"}"#);
        assert_eq!(t.token_type, "bearer");
        assert_eq!(t.expires_in, None);
        assert!(t.refresh_token.is_none());
        assert_eq!(t.scopes, None);
    }

    #[test]
    fn provider_quirks_are_accepted() {
        let t = parse(
            r#"{"access_token":"at","token_type":"MAC","expires_in":"7200","scope":"repo,gist, user","refresh_token":""}"#,
        );
        assert_eq!(t.token_type, "mac");
        assert_eq!(t.expires_in, Some(7200));
        assert_eq!(t.scopes, Some(vec!["repo".to_owned(), "gist".to_owned(), "user".to_owned()]));
        assert!(t.refresh_token.is_none());

        let t = parse(r#"{"access_token":"at","token_type":null,"expires_in":3599.0,"scope":["a","b c"]}"#);
        assert_eq!(t.token_type, "bearer");
        assert_eq!(t.expires_in, Some(3599));
        assert_eq!(t.scopes, Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]));

        assert_eq!(parse(r#"{"access_token":"at","scope":""}"#).scopes, Some(vec![]));
    }

    #[test]
    fn nonsense_is_refused() {
        for json in [
            r#"{"token_type":"bearer"}"#,
            r#"{"access_token":"at","expires_in":-5}"#,
            r#"{"access_token":"at","expires_in":"soon"}"#,
            r#"{"access_token":"at","scope":42}"#,
        ] {
            assert!(serde_json::from_str::<LenientTokenResponse>(json).is_err(), "{json}");
        }
        let empty: LenientTokenResponse = serde_json::from_str(r#"{"access_token":""}"#).expect("parses");
        assert!(matches!(empty.into_port(), Err(OAuthError::Invalid(_))));
    }

    #[test]
    fn debug_and_serialize_never_show_tokens() {
        let parsed: LenientTokenResponse =
            serde_json::from_str(r#"{"access_token":"at-secret","refresh_token":"rt-secret"}"#).expect("parses");
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("at-secret") && !debug.contains("rt-secret"), "{debug}");
        assert!(serde_json::to_string(&parsed).is_err());
    }
}
