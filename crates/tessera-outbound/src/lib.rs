//! Tessera's outbound calls: the adapters behind `tessera-core`'s outbound
//! ports. The OAuth 2.0 port ([`tessera_core::oauth::OAuthClient`]) is
//! implemented by [`HttpOAuthClient`] on the `oauth2` crate and one shared
//! `reqwest` client (rustls, no redirects); the proxy's
//! ([`tessera_core::ports::Upstream`]), the health probe's and the webhooks'
//! by [`Forwarder`]; MCP tool calls by [`HttpMcpClient`]. This is the only
//! crate that speaks HTTP to third parties; the service layer sees only the
//! ports' types, and is wired to these in the binary (`tessera serve`).
//!
//! ```text
//! tessera-core (service; OAuthClient, Upstream, HttpProbe, WebhookSender, McpClient ports)
//!        ^
//!        | implements
//! tessera-outbound::HttpOAuthClient -> oauth2 (requests) -> Transport (reqwest)
//! tessera-outbound::Forwarder, HttpMcpClient -> reqwest
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit_sinks;
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
mod why;

pub use client::{BuildError, HttpOAuthClient};
pub use forward::Forwarder;
pub use mcp::HttpMcpClient;
