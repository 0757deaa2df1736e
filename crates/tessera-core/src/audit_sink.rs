//! Audit streaming's rules: which sinks there are (`TESSERA_AUDIT_SINKS`),
//! how each is named (the name keys its delivery position and lease in the
//! store, and labels its logs and metrics), the line every sink carries, and
//! the outbound port ([`AuditSink`]) the implementations in
//! `tessera-outbound` fill.
//!
//! A sink never sees anything an audit event does not hold, and an audit
//! event never holds a secret value (see [`crate::audit`]).

use std::path::PathBuf;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::service::AuditEventView;

/// One sink as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// `file:<path>`: JSON Lines appended to a file, rotated by size.
    File(PathBuf),
    /// `https://...` (or `http://` to loopback with `TESSERA_ALLOW_LOOPBACK_HTTP`):
    /// batches of JSON Lines POSTed, signed.
    Http(url::Url),
    /// `syslog+tcp://host:port`: RFC 5424 messages, octet-counted (RFC 6587).
    Syslog {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
}

/// What is wrong with `TESSERA_AUDIT_SINKS` (or one entry of it). No
/// variant holds the entry itself: a URL may carry a collector's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkSpecError {
    /// `file:` with nothing after it.
    #[error("file: needs a path (file:/var/log/tessera/audit.jsonl)")]
    FileWithoutPath,
    /// A scheme Tessera has no sink for (the scheme only: it is short and names no secret).
    #[error("unknown sink kind {0:?}: use file:<path>, https://..., or syslog+tcp://host:port")]
    UnknownKind(String),
    /// No scheme at all (the entry is not named: it could be a token pasted in the wrong place).
    #[error("an unknown sink: use file:<path>, https://..., or syslog+tcp://host:port")]
    Unknown,
    /// An `http(s)://` entry that does not parse as a URL.
    #[error("an HTTP sink must be an absolute URL")]
    NotAUrl(#[source] url::ParseError),
    /// `user:password@` in an HTTP sink's URL: the signing secret authenticates, not the URL.
    #[error("an HTTP sink's URL may not hold credentials (user:password@)")]
    CredentialsInUrl,
    /// A `#fragment` in an HTTP sink's URL (never sent, so surely a mistake).
    #[error("an HTTP sink's URL may not have a fragment")]
    FragmentInUrl,
    /// An HTTP sink's URL without a host.
    #[error("an HTTP sink's URL needs a host")]
    NoHost,
    /// Plain `http://` to anything but this machine, or without `TESSERA_ALLOW_LOOPBACK_HTTP`.
    #[error("an HTTP sink must use https (http only to loopback with TESSERA_ALLOW_LOOPBACK_HTTP=true)")]
    PlainHttp,
    /// A `syslog+tcp://` entry that is not `syslog+tcp://host:port`.
    #[error("a syslog sink is syslog+tcp://host:port")]
    NotSyslogHostPort,
    /// A syslog sink without its port.
    #[error("a syslog sink needs a port (syslog+tcp://host:514)")]
    NoSyslogPort,
    /// Two entries with one name ([`SinkSpec::name`], which never holds a URL's path or query).
    #[error("the sink {0} is listed twice")]
    ListedTwice(String),
}

impl SinkSpec {
    /// Parses one entry of `TESSERA_AUDIT_SINKS`; the error says what is
    /// wrong without repeating a URL (which may hold a collector's token).
    pub fn parse(raw: &str, allow_loopback: bool) -> Result<Self, SinkSpecError> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SinkSpecError::FileWithoutPath);
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if raw.starts_with("syslog+tcp://") {
            return parse_syslog(raw);
        }
        if raw.starts_with("https://") || raw.starts_with("http://") {
            return parse_http(raw, allow_loopback).map(Self::Http);
        }
        // Name the kind only when there is one (a scheme): the rest may be a secret.
        let kind = raw.split_once(':').map(|(k, _)| k).filter(|k| {
            !k.is_empty() && k.len() <= 16 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        });
        Err(kind.map_or(SinkSpecError::Unknown, |k| SinkSpecError::UnknownKind(k.to_owned())))
    }

    /// The sink's name: its key in the store (position, lease) and its label
    /// in logs and metrics. An HTTP sink is named by scheme, host and port
    /// and a short hash of the whole URL, never its path or query (a
    /// collector's URL may carry its token).
    pub fn name(&self) -> String {
        match self {
            Self::File(path) => format!("file:{}", path.display()),
            Self::Http(url) => {
                let digest = Sha256::digest(url.as_str().as_bytes());
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => format!("{}://{host}:{port}#{}", url.scheme(), hex::encode(&digest[..4])),
                    None => format!("{}://{host}#{}", url.scheme(), hex::encode(&digest[..4])),
                }
            }
            Self::Syslog { host, port } if host.contains(':') => format!("syslog+tcp://[{host}]:{port}"),
            Self::Syslog { host, port } => format!("syslog+tcp://{host}:{port}"),
        }
    }
}

fn parse_http(raw: &str, allow_loopback: bool) -> Result<url::Url, SinkSpecError> {
    // url's errors are fixed sentences ("invalid port number"): they never quote the input.
    let url = url::Url::parse(raw).map_err(SinkSpecError::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SinkSpecError::CredentialsInUrl);
    }
    if url.fragment().is_some() {
        return Err(SinkSpecError::FragmentInUrl);
    }
    let loopback = crate::webhook::names_this_machine(&url.host().ok_or(SinkSpecError::NoHost)?);
    // The operator chooses these URLs (not a tenant, as with webhooks), so
    // any host is allowed over https; plain http only to this machine.
    if url.scheme() == "http" && !(loopback && allow_loopback) {
        return Err(SinkSpecError::PlainHttp);
    }
    Ok(url)
}

fn parse_syslog(raw: &str) -> Result<SinkSpec, SinkSpecError> {
    let bad = || SinkSpecError::NotSyslogHostPort;
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(bad());
    }
    if !matches!(url.path(), "" | "/") {
        return Err(bad());
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(bad()),
    };
    let port = url.port().ok_or(SinkSpecError::NoSyslogPort)?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(SinkSpec::Syslog { host, port })
}

/// Parses `TESSERA_AUDIT_SINKS`: comma-separated, blanks ignored, each name once.
pub fn parse_sinks(raw: &str, allow_loopback: bool) -> Result<Vec<SinkSpec>, SinkSpecError> {
    let mut sinks: Vec<SinkSpec> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let spec = SinkSpec::parse(entry, allow_loopback)?;
        if sinks.iter().any(|s| s.name() == spec.name()) {
            return Err(SinkSpecError::ListedTwice(spec.name()));
        }
        sinks.push(spec);
    }
    Ok(sinks)
}

/// One event as every sink carries it: the JSON object `GET /audit` shows
/// (`seq`, `id`, `at`, `actor`, ..., `prevHash`, `hash`), on one line, so a
/// receiver can check the chain's continuity and drop a repeat by `seq`.
pub fn json_line(e: &AuditEventView) -> String {
    serde_json::to_string(e).expect("an audit event of strings and numbers serialises")
}

/// Why a delivery failed, in a few words (never an event's contents, never a URL).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Delivers batches of audit events somewhere outside the database
/// (implemented in `tessera-outbound`). A batch is in `seq` order and
/// follows the previous one; `Ok` means the receiver has all of it (the
/// position then moves past it), an error that it must be sent again.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// The sink's name ([`SinkSpec::name`]).
    fn name(&self) -> &str;
    /// Sends one batch.
    async fn deliver(&self, events: &[AuditEventView]) -> Result<(), SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_sink_parses_and_bad_ones_are_refused_without_echoing_the_url() {
        assert_eq!(SinkSpec::parse("file:/var/log/a.jsonl", false), Ok(SinkSpec::File("/var/log/a.jsonl".into())));
        assert_eq!(
            SinkSpec::parse("syslog+tcp://logs.example.com:6514", false),
            Ok(SinkSpec::Syslog { host: "logs.example.com".into(), port: 6514 })
        );
        assert_eq!(
            SinkSpec::parse("syslog+tcp://[::1]:514", false),
            Ok(SinkSpec::Syslog { host: "::1".into(), port: 514 })
        );
        assert!(matches!(SinkSpec::parse("https://10.0.0.5/collect", false), Ok(SinkSpec::Http(_))));
        assert!(matches!(SinkSpec::parse("http://127.0.0.1:9/x", true), Ok(SinkSpec::Http(_))));
        for bad in [
            "http://127.0.0.1:9/x",
            "http://collector.example.com/x",
            "https://user:tok3n@collector.example.com/",
            "https://collector.example.com/#tok3n",
            "syslog+tcp://logs.example.com",
            "syslog+tcp://logs.example.com:514/tok3n",
            "syslog+udp://logs.example.com:514",
            "file:",
            "tok3n",
        ] {
            let e = SinkSpec::parse(bad, false).expect_err(bad);
            assert!(!format!("{e} {e:?}").contains("tok3n"), "{e:?}");
        }
        assert_eq!(SinkSpec::parse("http://collector.example.com/x", true), Err(SinkSpecError::PlainHttp));
    }

    #[test]
    fn each_refusal_says_which_rule_the_entry_breaks() {
        let refused = |raw| SinkSpec::parse(raw, false).expect_err(raw);
        assert_eq!(refused("file:"), SinkSpecError::FileWithoutPath);
        assert_eq!(refused("syslog+udp://logs.example.com:514"), SinkSpecError::UnknownKind("syslog+udp".into()));
        assert_eq!(refused("tok3n"), SinkSpecError::Unknown);
        assert!(matches!(refused("https://"), SinkSpecError::NotAUrl(_)));
        assert_eq!(refused("https://user:tok3n@collector.example.com/"), SinkSpecError::CredentialsInUrl);
        assert_eq!(refused("https://collector.example.com/#tok3n"), SinkSpecError::FragmentInUrl);
        assert_eq!(refused("http://127.0.0.1:9/x"), SinkSpecError::PlainHttp);
        assert_eq!(refused("syslog+tcp://logs.example.com:514/tok3n"), SinkSpecError::NotSyslogHostPort);
        assert_eq!(refused("syslog+tcp://logs.example.com"), SinkSpecError::NoSyslogPort);
        assert_eq!(
            parse_sinks("file:/a.jsonl,file:/a.jsonl", false),
            Err(SinkSpecError::ListedTwice("file:/a.jsonl".into()))
        );
    }

    #[test]
    fn an_http_sink_is_named_without_its_path_or_query() {
        let spec = SinkSpec::parse("https://collector.example.com/receiver/v1/http/s3cr3t?k=tok3n", false).expect("ok");
        let name = spec.name();
        assert!(name.starts_with("https://collector.example.com#"), "{name}");
        assert!(!name.contains("s3cr3t") && !name.contains("tok3n"), "{name}");
        let other = SinkSpec::parse("https://collector.example.com/receiver/v1/http/other", false).expect("ok");
        assert_ne!(other.name(), name, "two URLs on one host are two sinks");
    }

    #[test]
    fn the_list_is_comma_separated_and_names_each_sink_once() {
        let sinks = parse_sinks(" file:/a.jsonl, ,syslog+tcp://h:514 ", false).expect("ok");
        assert_eq!(sinks.len(), 2);
        assert_eq!(parse_sinks("", false), Ok(vec![]));
    }
}
