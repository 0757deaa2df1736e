//! Credential backends (`CREDENTIAL_BACKEND`) that live outside the metadata
//! store, behind [`tessera_core::secret_store::SecretStore`]:
//! [`file::FileSecrets`] (one file of Tessera ciphertext, replaced atomically)
//! and [`environment::EnvironmentSecrets`] (read-only `PLATFORM_CRED_<KEY>`).
//! The `database` backend lives in the core, beside the metadata store.

pub mod environment;
mod error;
pub mod file;
mod records;
pub mod transit;
pub mod vault;
mod vault_auth;
pub mod vault_client;

pub use error::BackendError;
