//! What an answer that is not a success means for the caller: the one place
//! that turns HTTP statuses and RFC 6749 section 5.2 error bodies into
//! [`OAuthError`] variants, for the token endpoint and the RFC 7009
//! revocation endpoint alike.
//!
//! - 5xx, 429 and 408: `Unavailable` (the RFC 7009 503 included): retry later.
//! - 3xx: `Invalid`. Redirects are never followed (SSRF), so a provider that
//!   answers with one is misconfigured from our side.
//! - 4xx with an RFC 6749 error body: `Rejected { code, description }`.
//! - 401 without one: `Rejected { code: "invalid_client" }`. RFC 6749 5.2
//!   names 401 as the status of `invalid_client`, and retrying with the
//!   same credentials cannot help, so the caller should see it as a refusal.
//! - any other 4xx without one: `Invalid`.
//!
//! Error bodies are parsed with the `oauth2` crate's [`BasicErrorResponse`].
//! The code must use the RFC 6749 character set (it ends up in audit rows);
//! the description is cut short and stripped of control characters.

use oauth2::basic::BasicErrorResponse;
use reqwest::StatusCode;
use tessera_core::oauth::OAuthError;

/// The longest error code accepted from a provider.
const MAX_CODE_LEN: usize = 64;
/// Descriptions longer than this are cut (in characters).
const MAX_DESCRIPTION_LEN: usize = 200;

/// Classifies an answer whose status is not 2xx.
pub(crate) fn failure(status: StatusCode, body: &[u8]) -> OAuthError {
    let code = status.as_u16();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
        return OAuthError::Unavailable(format!("HTTP {code}"));
    }
    if status.is_redirection() {
        return OAuthError::Invalid(format!("HTTP {code} redirect, which is not followed"));
    }
    if status.is_client_error() {
        if let Some(rejected) = rfc6749_error(body) {
            return rejected;
        }
        if status == StatusCode::UNAUTHORIZED {
            return OAuthError::Rejected {
                code: "invalid_client".to_owned(),
                description: Some("HTTP 401 without an error body".to_owned()),
            };
        }
        return OAuthError::Invalid(format!("HTTP {code} without an RFC 6749 error body"));
    }
    OAuthError::Invalid(format!("unexpected HTTP {code}"))
}

/// An RFC 6749 5.2 error body (`{"error": "invalid_grant", ...}`) as
/// `Rejected`, or `None` when the body is not one.
pub(crate) fn rfc6749_error(body: &[u8]) -> Option<OAuthError> {
    let parsed: BasicErrorResponse = serde_json::from_slice(body).ok()?;
    let code = parsed.error().as_ref();
    if code.is_empty() || code.len() > MAX_CODE_LEN || !code.bytes().all(is_rfc6749_char) {
        return None;
    }
    let description = parsed.error_description().map(|d| clean_description(d)).filter(|d| !d.is_empty());
    Some(OAuthError::Rejected { code: code.to_owned(), description })
}

/// RFC 6749 5.2: `%x20-21 / %x23-5B / %x5D-7E` (printable ASCII but `"` and `\`).
fn is_rfc6749_char(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

fn clean_description(description: &str) -> String {
    let mut cleaned: String = description.chars().filter(|c| !c.is_control()).take(MAX_DESCRIPTION_LEN + 1).collect();
    if cleaned.chars().count() > MAX_DESCRIPTION_LEN {
        cleaned = cleaned.chars().take(MAX_DESCRIPTION_LEN).collect();
        cleaned.push('…');
    }
    cleaned.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rfc6749_body_is_a_rejection_whatever_the_4xx() {
        let body = br#"{"error":"invalid_grant","error_description":"code expired"}"#;
        let err = failure(StatusCode::BAD_REQUEST, body);
        assert!(
            matches!(&err, OAuthError::Rejected { code, description: Some(d) } if code == "invalid_grant" && d == "code expired")
        );
        assert!(matches!(failure(StatusCode::FORBIDDEN, body), OAuthError::Rejected { .. }));
    }

    #[test]
    fn server_errors_and_rate_limits_are_unavailable_even_with_an_error_body() {
        let body = br#"{"error":"temporarily_unavailable"}"#;
        for status in
            [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::SERVICE_UNAVAILABLE, StatusCode::TOO_MANY_REQUESTS]
        {
            assert!(failure(status, body).is_transient(), "{status}");
        }
    }

    #[test]
    fn a_bare_401_is_invalid_client_and_other_bare_4xx_are_invalid() {
        assert!(
            matches!(failure(StatusCode::UNAUTHORIZED, b""), OAuthError::Rejected { code, .. } if code == "invalid_client")
        );
        assert!(matches!(failure(StatusCode::NOT_FOUND, b"<html>nope</html>"), OAuthError::Invalid(_)));
        assert!(matches!(failure(StatusCode::FOUND, b""), OAuthError::Invalid(_)));
    }

    #[test]
    fn codes_outside_the_rfc_charset_are_not_trusted() {
        assert!(rfc6749_error(br#"{"error":"bad\"code"}"#).is_none());
        assert!(rfc6749_error(br#"{"error":""}"#).is_none());
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(65));
        assert!(rfc6749_error(long.as_bytes()).is_none());
        assert!(rfc6749_error(br#"{"error":"unsupported_token_type"}"#).is_some());
    }

    #[test]
    fn descriptions_are_cut_and_cleaned() {
        let body = format!(r#"{{"error":"invalid_request","error_description":"a\nb{}"}}"#, "c".repeat(500));
        let Some(OAuthError::Rejected { description: Some(d), .. }) = rfc6749_error(body.as_bytes()) else {
            panic!("expected a rejection with a description");
        };
        assert!(d.starts_with("ab"));
        assert_eq!(d.chars().count(), MAX_DESCRIPTION_LEN + 1);
    }
}
