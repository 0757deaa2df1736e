//! The client's address, decided in one place: the TCP peer, or, when the
//! peer is a trusted reverse proxy (`TESSERA_TRUSTED_PROXIES`), the rightmost
//! `X-Forwarded-For` entry that is not itself a trusted proxy. Anyone can
//! write that header, so from any other peer it is ignored.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses and CIDRs (`10.0.0.1, 192.168.0.0/16, ::1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => {
                    IpNet::from(item.parse::<IpAddr>().map_err(|_| format!("{item:?} is not an address or CIDR"))?)
                }
            };
            nets.push(net);
        }
        Ok(Self(Arc::new(nets)))
    }
}

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request that `peer` sent with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        // Each proxy appends the address it received from; read from the right,
        // skipping our own proxies, and stop at the first hop we cannot vouch for.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // Malformed: whatever lies left of it cannot be trusted either.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())).ok().map(|ip| ip.to_canonical())
}

/// The client's address, set on every request by [`resolve`] (defined in
/// the core so that every adapter mounted under these layers reads it).
pub use tessera_core::ClientAddr;

/// Middleware: decides the client's address once per request.
pub(crate) async fn resolve(proxies: TrustedProxies, mut req: Request, next: Next) -> Response {
    if let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) {
        let ip = proxies.client_ip(peer, req.headers());
        req.extensions_mut().insert(ClientAddr(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().expect("header value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.1".parse().expect("list");
        let h = headers(&["6.6.6.6, 1.2.3.4"]);
        assert_eq!(proxies.client_ip(ip("8.8.8.8"), &h), ip("8.8.8.8"), "untrusted peer: header ignored");
        assert_eq!(proxies.client_ip(ip("192.168.1.1"), &h), ip("1.2.3.4"), "rightmost hop");
        assert_eq!(proxies.client_ip(ip("10.1.1.1"), &headers(&[])), ip("10.1.1.1"), "no header: the peer");
    }

    #[test]
    fn trusted_hops_are_skipped_and_a_malformed_hop_stops_the_walk() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().expect("list");
        let h = headers(&["6.6.6.6", "1.2.3.4, 10.0.0.7"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        let h = headers(&["1.2.3.4, garbage, 10.0.0.7"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.7"), "nothing left of the garbage is believed");
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(proxies.client_ip(ip("::ffff:10.0.0.1"), &h), ip("2001:db8::1"), "mapped peer, bracketed hop");
    }

    #[test]
    fn a_malformed_list_is_refused() {
        assert!("10.0.0.0/8, nope".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().is_ok_and(|p| !p.contains(ip("127.0.0.1"))));
    }
}
