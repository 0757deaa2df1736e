//! The rule every URL of the integration registry follows besides its own:
//! no credentials in it. The registry is readable by every key that may read
//! integrations, so a `user:password@` in a token or base URL would hand the
//! password to all of them; secrets belong in `clientSecret` or a secret
//! config field, which are stored encrypted and never shown.

use crate::error::ServiceError;
use crate::ErrorCode;

/// Refuses `raw` when it holds a user name or password (`https://u:p@host`,
/// `https://u@host`), with the error `code` of the field's own check (so
/// callers see the code they saw for any other bad URL there). The error
/// names `field` and never repeats the URL. Text that is not a URL passes
/// here: the field's own check refuses it.
pub fn refuse_credentials(raw: &str, field: &str, code: ErrorCode) -> Result<(), ServiceError> {
    match url::Url::parse(raw) {
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(ServiceError::invalid(
            code,
            format!(
                "{field} may not contain credentials (user or password before @); \
                 put secrets in clientSecret or a secret config field"
            ),
            Some(field),
        )),
        _ => Ok(()),
    }
}

/// Refuses an endpoint Tessera or a browser would reach without TLS: https
/// only, or http to this machine (`localhost`, a loopback address) when
/// `TESSERA_ALLOW_LOOPBACK_HTTP` is on. Checked when the registry is written,
/// so a flow does not fail at its callback instead.
pub fn require_https(raw: &str, field: &str, allow_loopback: bool) -> Result<(), ServiceError> {
    let Ok(url) = url::Url::parse(raw) else { return Ok(()) }; // the field's own check names it
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "http" if loopback && allow_loopback => Ok(()),
        "http" if loopback => Err(ServiceError::invalid(
            ErrorCode::InsecureUrl,
            format!("{field} uses http: only https, or http to this machine when TESSERA_ALLOW_LOOPBACK_HTTP=true"),
            Some(field),
        )),
        "http" => Err(ServiceError::invalid(
            ErrorCode::InsecureUrl,
            format!("{field} uses http: OAuth endpoints must use https (http only to this machine, with TESSERA_ALLOW_LOOPBACK_HTTP=true)"),
            Some(field),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_password_are_refused_without_echoing_them() {
        for raw in ["https://u:hunter2@idp.example/token", "https://u@idp.example/", "https://:hunter2@idp.example/"] {
            let e = refuse_credentials(raw, "oauth.tokenUrl", ErrorCode::InvalidUrl).expect_err(raw);
            assert_eq!(e.field.as_deref(), Some("oauth.tokenUrl"));
            assert!(!e.message.contains("hunter2") && !e.message.contains("idp.example"), "{}", e.message);
        }
        for raw in ["https://idp.example/token", "https://idp.example/a@b", "not a url"] {
            assert!(refuse_credentials(raw, "x", ErrorCode::InvalidUrl).is_ok(), "{raw}");
        }
    }
}
