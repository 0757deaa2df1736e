//! Last line of defence for error strings. Our own reasons never contain a
//! value we sent, but a provider's `error_description` is its text, and some
//! echo what they received. Every error leaving a call is passed through
//! [`scrub`] with the secrets that call sent (code, verifier, tokens, client
//! secret).

use tessera_core::oauth::OAuthError;

const REDACTED: &str = "[redacted]";

/// Replaces every occurrence of a sent secret in the error's text.
pub(crate) fn scrub(err: OAuthError, sent: &[&str]) -> OAuthError {
    let clean = |text: String| sent.iter().filter(|s| !s.is_empty()).fold(text, |t, s| t.replace(s, REDACTED));
    match err {
        OAuthError::Rejected { code, description } => {
            OAuthError::Rejected { code: clean(code), description: description.map(clean) }
        }
        OAuthError::Unavailable(reason) => OAuthError::Unavailable(clean(reason)),
        OAuthError::Invalid(reason) => OAuthError::Invalid(clean(reason)),
        // A kind of failure added later carries text this does not know how
        // to clean: none of it leaves (fail closed).
        _ => OAuthError::Invalid("the provider call failed (details withheld)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_secret_is_replaced() {
        let err = OAuthError::Rejected {
            code: "invalid_grant".to_owned(),
            description: Some("refresh token rt-123 is expired".to_owned()),
        };
        let scrubbed = scrub(err, &["rt-123", ""]);
        assert_eq!(
            scrubbed.to_string(),
            "the provider refused the request: invalid_grant (refresh token [redacted] is expired)"
        );
    }
}
