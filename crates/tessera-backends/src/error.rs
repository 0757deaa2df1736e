//! Why a backend, the Transit key provider or their Vault client could not be
//! set up: the one error of this crate's constructors (what they do once
//! running is a [`tessera_core::ServiceError`], like every port's answer).
//!
//! Each variant names the setting (the environment variable) the operator
//! must fix, and never a value (a `PLATFORM_CRED_*` value is a credential).
//! A variant's message does not repeat its source: print the chain (anyhow's
//! `{:#}`, as `tessera` does at start-up) to see the I/O or TLS error under it.

use std::path::PathBuf;

/// A backend that cannot be opened, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A setting's value is wrong: `setting` is the variable, `problem` says
    /// what it must be (no value is quoted).
    #[error("{setting} {problem}")]
    Setting {
        /// The variable, e.g. `VAULT_ADDR` or `PLATFORM_CRED_N8N`.
        setting: String,
        /// What is wrong with it, as the end of a sentence.
        problem: &'static str,
    },
    /// A file or folder a setting names cannot be created, opened, locked or read.
    #[error("{setting}: cannot {action} {}", path.display())]
    Io {
        /// The variable naming the file.
        setting: &'static str,
        /// What was tried: `create`, `open`, `lock`, `read`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file of secrets is readable by its group or others: refused rather
    /// than used (its mode says someone else may have read it).
    #[error("{setting} {} has mode {mode:o}; it must be readable by its owner only (chmod 600)", path.display())]
    LoosePermissions {
        /// The variable naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another process holds the credential file's lock: two writers would
    /// overwrite each other's changes.
    #[error("CREDENTIAL_FILE_PATH {} is in use by another process (locked)", path.display())]
    Locked {
        /// The credential file.
        path: PathBuf,
    },
    /// The credential file is not JSON of the expected shape. The parser's
    /// error is not kept: its message can quote the file's content.
    #[error("CREDENTIAL_FILE_PATH {} is not a Tessera credential file (or is corrupt)", path.display())]
    NotACredentialFile {
        /// The credential file.
        path: PathBuf,
    },
    /// The credential file is of another format (or version).
    #[error("CREDENTIAL_FILE_PATH {} has format {found:?}, expected {expected}", path.display())]
    UnknownFormat {
        /// The credential file.
        path: PathBuf,
        /// The format it names.
        found: String,
        /// The one this build reads.
        expected: &'static str,
    },
    /// A CA file (or folder) holds no PEM certificate.
    #[error("{setting}: {} holds no PEM certificate", path.display())]
    NoCertificate {
        /// `VAULT_CACERT` or `VAULT_CAPATH`.
        setting: &'static str,
        /// The file or folder.
        path: PathBuf,
    },
    /// A CA file has certificates that do not parse.
    #[error("{setting}: {} is not a PEM certificate bundle", path.display())]
    BadCertificate {
        /// `VAULT_CACERT` or `VAULT_CAPATH`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The TLS library's error.
        #[source]
        source: reqwest::Error,
    },
    /// The client certificate and key do not make a TLS identity.
    #[error(
        "VAULT_CLIENT_CERT/VAULT_CLIENT_KEY: {} and {} are not a PEM certificate and its private key",
        cert.display(),
        key.display()
    )]
    ClientIdentity {
        /// `VAULT_CLIENT_CERT`.
        cert: PathBuf,
        /// `VAULT_CLIENT_KEY`.
        key: PathBuf,
        /// The TLS library's error (it names no key material).
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client to Vault could not be built (the TLS settings together).
    #[error("VAULT_ADDR: cannot build an HTTP client")]
    HttpClient {
        /// The HTTP library's error.
        #[source]
        source: reqwest::Error,
    },
}
