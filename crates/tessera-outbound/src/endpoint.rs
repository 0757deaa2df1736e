//! Which provider URLs we send credentials to. RFC 6749 3.2 requires TLS at
//! the token endpoint and RFC 7009 2 at the revocation endpoint (the `oauth2`
//! crate enforces the latter itself), so both must be `https`. Plain `http`
//! is accepted only for loopback hosts, and only when the client was built
//! with [`crate::HttpOAuthClient::allow_loopback_http`] (tests, a local IdP).

use tessera_core::oauth::OAuthError;
use url::{Host, Url};

/// Parses `raw` (named `what` in errors) and checks its scheme.
pub(crate) fn checked_url(raw: &str, what: &str, allow_loopback_http: bool) -> Result<Url, OAuthError> {
    let url = Url::parse(raw).map_err(|_| OAuthError::Invalid(format!("{what} is not a valid URL")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_loopback_http && is_loopback(&url) => Ok(url),
        "http" => Err(OAuthError::Invalid(format!("{what} must use https"))),
        _ => Err(OAuthError::Invalid(format!("{what} must be an https URL"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_always_accepted() {
        assert!(checked_url("https://idp.example/token", "token_url", false).is_ok());
    }

    #[test]
    fn http_needs_the_opt_in_and_a_loopback_host() {
        assert!(checked_url("http://127.0.0.1:8080/token", "token_url", false).is_err());
        assert!(checked_url("http://127.0.0.1:8080/token", "token_url", true).is_ok());
        assert!(checked_url("http://[::1]:8080/token", "token_url", true).is_ok());
        assert!(checked_url("http://localhost/token", "token_url", true).is_ok());
        assert!(checked_url("http://idp.example/token", "token_url", true).is_err());
        assert!(checked_url("http://10.0.0.1/token", "token_url", true).is_err());
    }

    #[test]
    fn other_schemes_and_garbage_are_invalid() {
        assert!(matches!(checked_url("ftp://idp.example/x", "token_url", true), Err(OAuthError::Invalid(_))));
        assert!(
            matches!(checked_url("not a url", "revoke_url", true), Err(OAuthError::Invalid(r)) if r.contains("revoke_url"))
        );
    }
}
