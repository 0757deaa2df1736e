//! Name resolution for webhook deliveries. A tenant chooses its webhook's
//! URL, so the host name is resolved here and every address the deployment
//! must not reach (loopback, private, link-local such as cloud metadata,
//! multicast, reserved; IPv6 forms judged by the IPv4 address they carry) is
//! dropped before connecting. The connection can only go to an address that
//! was checked: a name re-pointed between the check and the connection (DNS
//! rebinding) gains nothing.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A host name with no address a webhook may reach.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(pub(crate) String);

/// Resolves with the system resolver, keeping only deliverable addresses.
pub(crate) struct PublicOnly {
    pub(crate) allow_loopback: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| tessera_core::webhook::may_deliver_to(a.ip(), allow_loopback))
                .collect();
            if kept.is_empty() {
                let why = if found.is_empty() {
                    format!("{host} does not resolve")
                } else {
                    format!("{host} resolves only to addresses webhooks may not reach (loopback, private, link-local, multicast or reserved)")
                };
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}
