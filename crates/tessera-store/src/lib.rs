//! Tessera's metadata store on SQLite (embedded default) or PostgreSQL.
//!
//! Where it sits: the adapter behind the service layer's
//! [`tessera_core::ports::MetadataStore`]. The only crate that speaks SQL;
//! every statement binds its parameters. The two databases share one
//! implementation over sqlx's `Any` driver; where their SQL differs (JSONB,
//! row locks), [`Dialect`] supplies the fragment.
//!
//! It stores ciphertext and never sees plaintext.

mod access;
mod connect;
mod credentials;
mod group;
mod integrations;
mod secrets;
mod tenants;
mod tx;
mod webhooks;

pub use connect::{connect, Dialect, SqlStore};
