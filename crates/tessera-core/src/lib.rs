//! Tessera's domain and service layer.
//!
//! Where it sits: between the adapters (HTTP, CLI) above and the ports below
//! ([`ports::MetadataStore`] for rows, [`ports::KeyProvider`] for the
//! key-encryption key). Every rule lives here once: who may see which
//! tenant, how a config is validated, split, encrypted and merged, how a secret
//! is versioned, what is audited.
//!
//! What it must never do: speak SQL or HTTP, log or return a secret value
//! except through the one resolved/secret-read path that audits it.

pub mod access;
pub mod audit;
pub mod audit_sink;
pub mod domain;
pub mod error;
pub mod error_code;
pub mod health;
pub mod ids;
pub mod json_int;
pub mod keyring;
pub mod mcp;
pub mod migrate;
pub mod oauth;
pub mod ports;
pub mod proxy;
pub mod registry_url;
pub mod schema;
pub mod secret_json;
pub mod secret_store;
pub mod service;
pub mod webhook;

pub use error::{ErrorKind, ServiceError};
pub use error_code::ErrorCode;
pub use service::{Ctx, Tessera, TesseraOptions};

/// The client's address as the edge decided it (the peer, or the address a
/// trusted proxy names), set on every request as an extension.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);
