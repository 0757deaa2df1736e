//! Webhooks' rules: the events there are, how a webhook URL is checked (as a
//! proxy base URL, https unless on loopback), how a delivery is signed, and
//! the outbound port that sends it.

use crate::ErrorCode;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use utoipa::ToSchema;

use crate::error::ServiceError;

pub use crate::domain::WebhookEvent;

/// Checks a webhook URL: an absolute http(s) URL without credentials or
/// fragment, https only. Tenant admins set these URLs, so a host that is an
/// address the deployment must not reach (see [`may_deliver_to`]) is refused;
/// loopback (and plain http to it) only when `allow_loopback`
/// (`TESSERA_ALLOW_LOOPBACK_HTTP`: a local receiver, tests). Names are
/// checked as written here, and every address they resolve to is checked
/// again at delivery.
pub fn validate_url(raw: &str, allow_loopback: bool) -> Result<url::Url, ServiceError> {
    let bad = |msg: &str| ServiceError::invalid(ErrorCode::InvalidWebhookUrl, msg.to_owned(), Some("url"));
    if raw.len() > 2048 {
        return Err(bad("url is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .filter(|u| u.username().is_empty() && u.password().is_none() && u.fragment().is_none())
        .ok_or_else(|| bad("url must be an absolute http(s) URL without credentials or fragment"))?;
    let reach = match url.host() {
        Some(url::Host::Ipv4(ip)) => reach(ip.into()),
        Some(url::Host::Ipv6(ip)) => reach(ip.into()),
        Some(host @ url::Host::Domain(_)) if names_this_machine(&host) => Reach::Loopback,
        Some(url::Host::Domain(_)) => Reach::Public,
        None => Reach::Refused,
    };
    match reach {
        Reach::Loopback if !allow_loopback => return Err(bad("url may not point at this machine")),
        Reach::Refused => {
            return Err(bad("url may not point at a private, link-local, multicast, reserved or documentation address"))
        }
        Reach::Loopback | Reach::Public => {}
    }
    if url.scheme() == "http" && reach != Reach::Loopback {
        return Err(bad("url must use https"));
    }
    Ok(url)
}

/// Whether a URL's host is this machine as written: a direct loopback
/// address (127.0.0.0/8, `::1`, `::ffff:127.x`) or `localhost` and its
/// subdomains (RFC 6761). The one test of "loopback" for every URL an
/// operator or tenant configures; names are not resolved here.
pub fn names_this_machine(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => reach((*ip).into()) == Reach::Loopback,
        url::Host::Ipv6(ip) => reach((*ip).into()) == Reach::Loopback,
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// What a webhook may do with an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// This machine: only with `TESSERA_ALLOW_LOOPBACK_HTTP`.
    Loopback,
    /// Inside the deployment, not unicast, or not routable: never.
    Refused,
    /// A public unicast address.
    Public,
}

/// The one rule for every address a webhook could connect to. IPv6 forms
/// that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged
/// by that address, since a translator or relay delivers to it: otherwise
/// `[64:ff9b::a9fe:a9fe]` would reach the cloud metadata service. Only
/// direct loopback (127.0.0.0/8, `::1`, `::ffff:127.x`) counts as
/// loopback; a loopback address behind a translator is refused.
fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Reach::Loopback,
        IpAddr::V4(v4) => v4_reach(v4),
        IpAddr::V6(v6) if v6.is_loopback() => Reach::Loopback,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if v4.is_loopback() => Reach::Loopback,
            Some(v4) => v4_reach(v4),
            None => v6_reach(v6),
        },
    }
}

/// IPv4: refused are "this network" 0/8, private 10/8, 172.16/12 and
/// 192.168/16, shared (carrier-grade NAT) 100.64/10, loopback 127/8 (when
/// reached through a translator), link-local 169.254/16 (cloud metadata),
/// IETF protocol assignments 192.0.0/24, documentation 192.0.2/24,
/// 198.51.100/24 and 203.0.113/24, the 6to4 relay anycast 192.88.99/24,
/// benchmarking 198.18/15, multicast 224/4, and reserved 240/4 with the
/// broadcast address.
fn v4_reach(ip: Ipv4Addr) -> Reach {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    if refused {
        Reach::Refused
    } else {
        Reach::Public
    }
}

/// IPv6 (not loopback, not IPv4-mapped): the forms that embed an IPv4
/// address are judged by it; of the rest only global unicast (2000::/3)
/// outside its special-purpose blocks is public. Refused are unspecified,
/// multicast ff00::/8, unique-local fc00::/7, link- and site-local fe80::/9,
/// discard 100::/64, local-use NAT64 64:ff9b:1::/48 (its IPv4 address
/// sits at a prefix-dependent place), Teredo 2001::/32 and the rest of the
/// IETF protocol block 2001::/23, documentation 2001:db8::/32 and
/// 3fff::/20, and the SRv6 block 5f00::/16.
fn v6_reach(ip: Ipv6Addr) -> Reach {
    let s = ip.segments();
    let o = ip.octets();
    // `v4_reach` refuses 127/8: loopback reached through a translator is not this machine.
    let v4 = |i: usize| Ipv4Addr::new(o[i], o[i + 1], o[i + 2], o[i + 3]);
    // IPv4-compatible ::a.b.c.d (deprecated, but still carries the address); `::` and `::1` are not.
    if s[..6] == [0; 6] {
        return if ip.is_unspecified() { Reach::Refused } else { v4_reach(v4(12)) };
    }
    // NAT64, the well-known prefix (RFC 6052).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reach(v4(12));
    }
    // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 is the site behind a.b.c.d.
    if s[0] == 0x2002 {
        return v4_reach(v4(2));
    }
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    // 2001::/23 are IETF protocol assignments (Teredo among them), 2001:db8::/32 documentation.
    let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        || (s[0] & 0xfff0) == 0x3ff0 // documentation, 3fff::/20
        || s[0] == 0x5f00; // SRv6 segment identifiers
    if global_unicast && !special {
        Reach::Public
    } else {
        Reach::Refused
    }
}

/// Whether a webhook may connect to `ip`, an address its host name resolved
/// to: the rule [`validate_url`] applies to literal addresses, applied again
/// at delivery time, so a name that resolves (or is re-pointed) to an
/// internal address cannot reach the deployment's own networks.
pub fn may_deliver_to(ip: IpAddr, allow_loopback: bool) -> bool {
    match reach(ip) {
        Reach::Loopback => allow_loopback,
        Reach::Refused => false,
        Reach::Public => true,
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

// The `WebhookDelivery` schema of `/openapi.json` (the `///` lines are its
// description there). The fields are declared in alphabetical order, the
// order the body had when it was a `json!` map, so the bytes (which the
// signature covers) did not change with the type.
/// The body of every webhook delivery: what Tessera POSTs to a webhook's
/// URL, with the headers `Tessera-Event`, `Tessera-Delivery` and
/// `Tessera-Signature`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// When the event happened (RFC 3339); the same on every retry.
    pub created_at: String,
    /// What happened: metadata only, never a secret value or token. Its
    /// fields depend on `event`, e.g. `credential.stored`: `integration`,
    /// `tokenType`, `scopes`, `hasRefreshToken`, `expiresAt`, `source`;
    /// `key.rotated`: `version`, `createdAt`; `secret.rotation_due`: `path`,
    /// `rotateAfterDays`, `lastWrittenAt`, `dueAt`.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub data: serde_json::Value,
    /// The event (also the `Tessera-Event` header).
    pub event: WebhookEvent,
    /// `evt_...`, also the `Tessera-Delivery` header: the same on every retry
    /// of one event, so a receiver deduplicates on it.
    pub id: String,
    /// The tenant it happened to.
    pub tenant_id: String,
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
    fn a_delivery_body_has_the_bytes_of_the_map_it_replaced() {
        let data = serde_json::json!({"integration": "crm", "scopes": ["read"]});
        let typed = WebhookDelivery {
            created_at: "2026-12-01T00:00:00Z".into(),
            data: data.clone(),
            event: WebhookEvent::CredentialStored,
            id: "evt_1".into(),
            tenant_id: "acme".into(),
        };
        let map = serde_json::json!({
            "id": "evt_1", "event": "credential.stored", "tenantId": "acme",
            "createdAt": "2026-12-01T00:00:00Z", "data": data,
        });
        let typed = serde_json::to_vec(&typed).expect("serialises");
        assert_eq!(typed, serde_json::to_vec(&map).expect("serialises"));
    }

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
    fn every_address_form_is_judged_by_where_it_leads() {
        use std::net::IpAddr;
        // (address, delivered with loopback allowed, delivered by default)
        let table: &[(&str, bool, bool)] = &[
            ("93.184.215.14", true, true),
            ("2606:4700::6810:85e5", true, true),
            ("64:ff9b::5db8:d70e", true, true), // NAT64 of 93.184.215.14
            ("2002:5db8:d70e::1", true, true),  // 6to4 behind 93.184.215.14
            ("::ffff:93.184.215.14", true, true),
            ("127.0.0.1", true, false),
            ("127.9.9.9", true, false),
            ("::1", true, false),
            ("::ffff:127.0.0.1", true, false),
            // IPv6 forms that carry an internal IPv4 address.
            ("64:ff9b::a9fe:a9fe", false, false),   // NAT64 of 169.254.169.254
            ("64:ff9b::7f00:1", false, false),      // NAT64 of 127.0.0.1
            ("64:ff9b::a00:1", false, false),       // NAT64 of 10.0.0.1
            ("64:ff9b:1::a9fe:a9fe", false, false), // local-use NAT64
            ("2002:7f00:1::", false, false),        // 6to4 of 127.0.0.1
            ("2002:a9fe:a9fe::1", false, false),    // 6to4 of 169.254.169.254
            ("2002:c0a8:101::", false, false),      // 6to4 of 192.168.1.1
            ("::127.0.0.1", false, false),          // IPv4-compatible
            ("::10.0.0.1", false, false),
            ("::169.254.169.254", false, false),
            ("::ffff:10.0.0.1", false, false),
            ("::ffff:169.254.169.254", false, false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false, false), // Teredo
            // IPv4 ranges.
            ("0.0.0.0", false, false),
            ("0.1.2.3", false, false),
            ("10.0.0.5", false, false),
            ("100.64.0.1", false, false),
            ("169.254.169.254", false, false),
            ("172.16.0.1", false, false),
            ("172.31.255.255", false, false),
            ("192.0.0.8", false, false),
            ("192.0.2.1", false, false),
            ("192.88.99.1", false, false),
            ("192.168.1.1", false, false),
            ("198.18.0.1", false, false),
            ("198.51.100.7", false, false),
            ("203.0.113.9", false, false),
            ("224.0.0.1", false, false),
            ("239.255.255.250", false, false),
            ("240.0.0.1", false, false),
            ("255.255.255.255", false, false),
            // IPv6 ranges.
            ("::", false, false),
            ("ff02::1", false, false),
            ("ff05::2", false, false),
            ("fd00::1", false, false),
            ("fc00::1", false, false),
            ("fe80::1", false, false),
            ("fec0::1", false, false),
            ("100::1", false, false),
            ("2001:db8::1", false, false),
            ("3fff::1", false, false),
            ("2001:2::1", false, false),
            ("5f00::1", false, false),
            ("::ffff:0:a00:1", false, false), // IPv4-translated (SIIT)
        ];
        for (raw, with_loopback, by_default) in table {
            let ip: IpAddr = raw.parse().expect("an address");
            assert_eq!(may_deliver_to(ip, true), *with_loopback, "{raw} with loopback allowed");
            assert_eq!(may_deliver_to(ip, false), *by_default, "{raw} by default");
            // Registration applies the same rule to the literal address.
            let host = if ip.is_ipv6() { format!("[{raw}]") } else { (*raw).to_owned() };
            let url = format!("https://{host}/hook");
            assert_eq!(validate_url(&url, true).is_ok(), *with_loopback, "{url} with loopback allowed");
            assert_eq!(validate_url(&url, false).is_ok(), *by_default, "{url} by default");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
        let sig = signature(b"whsec_test", 1_700_000_000, b"{}");
        assert_eq!(sig, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
    }
}
