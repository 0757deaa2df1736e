//! Tessera's metadata store on SQLite (embedded default) or PostgreSQL.
//!
//! Where it sits: the adapter behind the service layer's
//! [`tessera_core::ports::MetadataStore`]. The only crate that speaks SQL;
//! every statement binds its parameters. The two databases share one
//! implementation and the same SQL text, run by sqlx on PostgreSQL and by
//! rusqlite in place on SQLite (see `db`); where their SQL differs (JSONB,
//! row locks), [`Dialect`] supplies the fragment.
//!
//! It stores ciphertext and never sees plaintext.

mod access;
mod audit_sinks;
pub mod backup;
mod connect;
mod connect_sessions;
mod credentials;
mod db;
mod group;
mod integrations;
mod lite;
mod secrets;
mod sessions;
mod tenants;
mod tx;
mod usage;
mod wal;
mod webhooks;

pub use connect::{connect, Dialect, ReadAudit, SqlStore};
