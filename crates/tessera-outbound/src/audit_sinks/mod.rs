//! The audit sinks behind tessera-core's [`AuditSink`] port: a JSON Lines
//! file ([`file`]), an HTTP endpoint taking signed batches ([`http`]) and a
//! syslog receiver over TCP ([`syslog`]). Each only carries what the service
//! layer hands it (audit events, which never hold a secret value) and says
//! whether the receiver has the whole batch; positions, leases and retries
//! are the service's.

mod file;
mod http;
mod syslog;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tessera_core::audit_sink::{AuditSink, SinkSpec};

pub use file::FileSink;
pub use http::HttpSink;
pub use syslog::SyslogSink;

/// What the sinks need besides their spec.
pub struct SinkSettings {
    /// A file sink's file is rotated before it would grow past this many
    /// bytes (`TESSERA_AUDIT_FILE_MAX_BYTES`); 0: never.
    pub file_max_bytes: u64,
    /// Rotated files kept (`<path>.1` newest .. `<path>.<keep>` oldest).
    pub file_keep: u32,
    /// The key HTTP batches are signed with (`TESSERA_AUDIT_SINK_SECRET`).
    pub http_secret: Option<SecretString>,
    /// Longest an HTTP delivery or a syslog write may take.
    pub timeout: Duration,
}

/// Why a sink could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkBuildError(pub String);

/// Builds the sink a spec describes (nothing is contacted yet).
pub fn open(spec: &SinkSpec, settings: &SinkSettings) -> Result<Arc<dyn AuditSink>, SinkBuildError> {
    Ok(match spec {
        SinkSpec::File(path) => {
            Arc::new(FileSink::new(spec.name(), path.clone(), settings.file_max_bytes, settings.file_keep))
        }
        SinkSpec::Http(url) => {
            let secret = settings
                .http_secret
                .clone()
                .ok_or_else(|| SinkBuildError("an HTTP audit sink needs TESSERA_AUDIT_SINK_SECRET".into()))?;
            Arc::new(HttpSink::new(spec.name(), url.clone(), secret, settings.timeout)?)
        }
        SinkSpec::Syslog { host, port } => {
            Arc::new(SyslogSink::new(spec.name(), host.clone(), *port, settings.timeout))
        }
    })
}
