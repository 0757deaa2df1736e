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
/// fragment, https only. Tenant admins set these URLs, so a host that is an
/// address inside the deployment (private, link-local, unspecified, shared or
/// unique-local) is refused; loopback (and plain http to it) only when
/// `allow_loopback` (`TESSERA_ALLOW_LOOPBACK_HTTP`: a local receiver, tests).
/// Names are checked as written, not resolved.
pub fn validate_url(raw: &str, allow_loopback: bool) -> Result<url::Url, ServiceError> {
    let bad = |msg: &str| ServiceError::invalid("invalid_webhook_url", msg.to_owned(), Some("url"));
    if raw.len() > 2048 {
        return Err(bad("url is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.username().is_empty() && u.password().is_none() && u.fragment().is_none())
        .ok_or_else(|| bad("url must be an absolute http(s) URL without credentials or fragment"))?;
    let loopback = is_loopback(&url);
    if loopback && !allow_loopback {
        return Err(bad("url may not point at this machine"));
    }
    if is_internal(&url) {
        return Err(bad("url may not point at a private or link-local address"));
    }
    if url.scheme() == "http" && !loopback {
        return Err(bad("url must use https"));
    }
    Ok(url)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// An address inside a deployment's networks (not loopback: see `is_loopback`).
fn is_internal(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_internal_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal_ip(ip.into()),
        _ => false,
    }
}

/// Private, link-local (cloud metadata), carrier-grade NAT, unique-local,
/// unspecified or broadcast: never a webhook's target.
fn is_internal_ip(ip: std::net::IpAddr) -> bool {
    let v4 = |ip: std::net::Ipv4Addr| {
        let [a, b, ..] = ip.octets();
        ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || (a == 100 && (64..128).contains(&b))
    };
    match ip {
        std::net::IpAddr::V4(ip) => v4(ip),
        std::net::IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || ip.to_ipv4_mapped().is_some_and(v4)
        }
    }
}

/// Whether a webhook may connect to `ip`, an address its host name resolved
/// to: the rule [`validate_url`] applies to literal addresses, applied again
/// at delivery time, so a name that resolves (or is re-pointed) to an
/// internal address cannot reach the deployment's own networks.
pub fn may_deliver_to(ip: std::net::IpAddr, allow_loopback: bool) -> bool {
    let loopback = match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    if loopback {
        return allow_loopback;
    }
    !is_internal_ip(ip)
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
        assert!(validate_url("https://hooks.example.com/tessera", false).is_ok());
        for local in
            ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]:9/hook", "https://api.localhost/h"]
        {
            assert!(validate_url(local, true).is_ok(), "{local} with loopback allowed");
            assert!(validate_url(local, false).is_err(), "{local} by default");
        }
        for bad in [
            "ftp://example.com/x",
            "http://example.com/hook",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "/relative",
            "not a url",
            "https://10.0.0.5/hook",
            "https://192.168.1.1/hook",
            "https://172.16.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:10.0.0.1]/hook",
        ] {
            assert!(validate_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
        let sig = signature(b"whsec_test", 1_700_000_000, b"{}");
        assert_eq!(sig, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
    }
}
