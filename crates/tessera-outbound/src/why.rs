//! Why a call found no answer, in words an operator can act on: which host,
//! and whether its name did not resolve, the connection was refused or timed
//! out, TLS failed, or the address is one Tessera may not call. Never the
//! URL's path or query (they may hold a tenant's data).

/// `host:port` of a URL, as messages name it.
pub(crate) fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "the upstream".to_owned(),
    }
}

/// The cause of a failed call, from the error's chain of sources.
pub(crate) fn cause(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut text = String::new();
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<crate::public_dns::Refused>() {
            return refused.to_string();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".to_owned(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".to_owned(),
                std::io::ErrorKind::TimedOut => return "connection timed out".to_owned(),
                _ => {}
            }
        }
        text.push_str(&err.to_string().to_ascii_lowercase());
        text.push('\n');
        source = err.source();
    }
    if text.contains("dns error") || text.contains("failed to lookup address") || text.contains("name or service") {
        "its name did not resolve".to_owned()
    } else if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
        "the TLS handshake failed".to_owned()
    } else if e.is_timeout() {
        "no answer within the time limit".to_owned()
    } else if e.is_connect() {
        "the connection failed".to_owned()
    } else {
        "the call failed before an answer".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_with_their_port() {
        assert_eq!(
            host_of(&url::Url::parse("https://api.example.com/v1/x?q=secret").expect("url")),
            "api.example.com:443"
        );
        assert_eq!(host_of(&url::Url::parse("http://127.0.0.1:9/").expect("url")), "127.0.0.1:9");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_refused_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let e = reqwest::get(format!("http://127.0.0.1:{port}/")).await.expect_err("nothing listens");
        assert_eq!(cause(&e), "connection refused");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_says_so() {
        let e = reqwest::get("http://name-that-does-not-exist.invalid/").await.expect_err("no such name");
        assert_eq!(cause(&e), "its name did not resolve");
    }
}
