//! Webhooks' rules: the events there are, how a webhook URL is checked (as a
//! proxy base URL, https unless on loopback), how a delivery is signed, and
//! the outbound port that sends it.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ServiceError;

/// Every event a webhook may subscribe to.
pub const EVENTS: [&str; 6] = [
    "credential.stored",
    "credential.revoked",
    "oauth.refresh_failed",
    "health.changed",
    "secret.rotation_due",
    "key.rotated",
];

/// Checks a webhook URL: an absolute http(s) URL without credentials or
/// fragment; plain http only to a loopback host (a local receiver, tests).
pub fn validate_url(raw: &str) -> Result<url::Url, ServiceError> {
    let bad = |msg: &str| ServiceError::invalid("invalid_webhook_url", msg.to_owned(), Some("url"));
    if raw.len() > 2048 {
        return Err(bad("url is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.username().is_empty() && u.password().is_none() && u.fragment().is_none())
        .ok_or_else(|| bad("url must be an absolute http(s) URL without credentials or fragment"))?;
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(bad("url must use https (plain http only to a loopback address)"));
    }
    Ok(url)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The `Tessera-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`,
/// keyed with the webhook's secret (its UTF-8 bytes, `whsec_...` as shown),
/// over `"<t>.<body>"`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a delivery attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The receiver answered this status.
    Answered(u16),
    /// No answer in time, or no connection (a short reason).
    NoAnswer(String),
}

/// Sends webhook deliveries (implemented in `tessera-outbound`): a POST,
/// no redirects followed, a time limit.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `body` to `url` with `headers`.
    async fn post(&self, url: url::Url, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> SendOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_like_proxy_targets() {
        assert!(validate_url("https://hooks.example.com/tessera").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(validate_url("http://localhost/hook").is_ok());
        assert!(validate_url("http://[::1]:9/hook").is_ok());
        for bad in [
            "ftp://example.com/x",
            "http://example.com/hook",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "/relative",
            "not a url",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
        let sig = signature(b"whsec_test", 1_700_000_000, b"{}");
        assert_eq!(sig, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
    }
}
