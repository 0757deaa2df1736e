//! Tessera's outbound calls: the adapter behind `tessera-core`'s outbound
//! ports. Today that is the OAuth 2.0 port
//! ([`tessera_core::oauth::OAuthClient`]), implemented by
//! [`HttpOAuthClient`] on the `oauth2` crate and one shared `reqwest`
//! client (rustls, no redirects). This is the only crate that speaks HTTP to
//! OAuth providers; the service layer sees only the port's types.
//!
//! ```text
//! tessera-core (service, OAuthClient port)
//!        ^
//!        | implements
//! tessera-outbound::HttpOAuthClient -> oauth2 (requests) -> Transport (reqwest)
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod classify;
mod client;
mod endpoint;
mod forward;
mod mcp;
mod public_dns;
mod redact;
mod response;
mod revoke;
mod transport;

pub use client::{BuildError, HttpOAuthClient};
pub use forward::{ForwardError, Forwarder};
pub use mcp::HttpMcpClient;
