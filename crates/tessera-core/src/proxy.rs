//! The credential-injecting proxy's rules: an integration's `proxy`
//! settings (base URL, how the credential is injected) and the one function
//! that turns a caller's path into a URL that cannot leave the base.

use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::AuthType;
use crate::error::ServiceError;

/// `proxy` of a registry entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxySettings {
    /// Every call goes under this URL (scheme, host, port and path prefix are fixed).
    pub base_url: String,
    /// How the tenant's credential is injected; when not named, see
    /// [`ProxySettings::effective_auth`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ProxyAuth>,
}

/// Where a credential value comes from: `credentials` (the connection's
/// access token) or `config:<field>` (a resolved config value, secret or not).
pub type Source = String;

/// How the credential is injected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ProxyAuth {
    /// Nothing is injected.
    #[default]
    None,
    /// `Authorization: Bearer <value>`.
    Bearer {
        /// Value source (default `credentials`).
        #[serde(default = "access_token")]
        from: Source,
    },
    /// `<name>: <prefix><value>`.
    Header {
        /// Header name.
        name: String,
        /// Optional prefix (`Token `).
        #[serde(default)]
        prefix: Option<String>,
        /// Value source.
        from: Source,
    },
    /// `Authorization: Basic base64(<username>:<password>)`.
    Basic {
        /// Username source.
        username: Source,
        /// Password source.
        password: Source,
    },
    /// `?<name>=<value>` added to the query.
    Query {
        /// Parameter name.
        name: String,
        /// Value source.
        from: Source,
    },
}

fn access_token() -> Source {
    "credentials".to_owned()
}

/// Headers the proxy sets itself or never forwards; an injected header may not be one.
const RESERVED_HEADERS: [&str; 6] =
    ["host", "cookie", "content-length", "transfer-encoding", "connection", "x-tenant-id"];

impl ProxySettings {
    /// The injection used when the settings name none: an `oauth2`
    /// integration's calls carry the connection's access token as a bearer
    /// token (what its APIs expect); any other integration's carry nothing.
    /// An explicit `{"type": "none"}` is kept as written.
    pub fn effective_auth(&self, auth_type: AuthType) -> ProxyAuth {
        match &self.auth {
            Some(auth) => auth.clone(),
            None if auth_type == AuthType::OAuth2 => ProxyAuth::Bearer { from: access_token() },
            None => ProxyAuth::None,
        }
    }

    /// These settings with the injection that applies written out (the
    /// registry's answer shows what a call will carry).
    #[must_use]
    pub fn resolved(mut self, auth_type: AuthType) -> Self {
        self.auth = Some(self.effective_auth(auth_type));
        self
    }

    /// Validates a caller's settings.
    pub fn validate(&self) -> Result<url::Url, ServiceError> {
        let bad = |msg: &str, field: &str| {
            ServiceError::invalid(ErrorCode::InvalidProxySettings, msg.to_owned(), Some(field))
        };
        crate::registry_url::refuse_credentials(&self.base_url, "proxy.baseUrl", ErrorCode::InvalidProxySettings)?;
        let base = url::Url::parse(&self.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .filter(|u| {
                u.username().is_empty() && u.password().is_none() && u.query().is_none() && u.fragment().is_none()
            })
            .ok_or_else(|| {
                bad("baseUrl must be an absolute http(s) URL without credentials, query or fragment", "proxy.baseUrl")
            })?;
        let sources: Vec<&Source> = match self.auth.as_ref().unwrap_or(&ProxyAuth::None) {
            ProxyAuth::None => vec![],
            ProxyAuth::Bearer { from } => vec![from],
            ProxyAuth::Header { name, from, .. } | ProxyAuth::Query { name, from } => {
                let header_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if name.is_empty() || name.len() > 64 || !header_ok {
                    return Err(bad("auth.name must be 1-64 characters of [A-Za-z0-9_-]", "proxy.auth.name"));
                }
                if let Some(ProxyAuth::Header { prefix: Some(prefix), .. }) = &self.auth {
                    if !header_value_ok(prefix) {
                        return Err(bad("auth.prefix may not hold control characters", "proxy.auth.prefix"));
                    }
                }
                if matches!(self.auth, Some(ProxyAuth::Header { .. }))
                    && RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str())
                {
                    return Err(bad("auth.name may not be a header the proxy controls", "proxy.auth.name"));
                }
                vec![from]
            }
            ProxyAuth::Basic { username, password } => vec![username, password],
        };
        for s in sources {
            if s != "credentials" && s.strip_prefix("config:").is_none_or(str::is_empty) {
                return Err(bad("a credential source is `credentials` or `config:<field>`", "proxy.auth"));
            }
        }
        Ok(base)
    }
}

/// Request headers that never reach the upstream: hop-by-hop ones (RFC 9110
/// 7.6.1), the ones the proxy sets itself, and the caller's own credentials
/// (its `Authorization` and cookies are for Tessera, not the integration).
const DROPPED_REQUEST: [&str; 13] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "cookie",
    "x-tenant-id",
    "content-length",
];

/// Response headers that never reach the caller: hop-by-hop ones, the
/// upstream's cookies (they would be set for Tessera's origin), and the
/// length (the body is streamed, and may be cut).
const DROPPED_RESPONSE: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "content-length",
];

/// The caller's headers that may go to the upstream: all but
/// [`DROPPED_REQUEST`] and those its `Connection` header names.
pub fn forwardable_headers(incoming: &http::HeaderMap) -> http::HeaderMap {
    let named_by_connection: Vec<String> = incoming
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = http::HeaderMap::with_capacity(incoming.len());
    for (name, value) in incoming {
        let n = name.as_str();
        if DROPPED_REQUEST.contains(&n) || named_by_connection.iter().any(|c| c == n) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Removes from the upstream's answer the headers the caller never gets.
pub fn strip_response_headers(headers: &mut http::HeaderMap) {
    for name in DROPPED_RESPONSE {
        headers.remove(name);
    }
}

/// Refuses the methods the proxy never forwards: `CONNECT` asks the
/// upstream for a tunnel, and `TRACE` (and IIS's `TRACK`) make it echo the
/// request, the injected credential included, back to the caller. Compared
/// without case, as some upstreams read methods.
pub fn check_method(method: &str) -> Result<(), ServiceError> {
    if ["CONNECT", "TRACE", "TRACK"].iter().any(|m| m.eq_ignore_ascii_case(method)) {
        return Err(ServiceError::invalid(
            ErrorCode::MethodNotAllowed,
            format!("the proxy does not forward {}", method.to_ascii_uppercase()),
            Some("method"),
        ));
    }
    Ok(())
}

/// Whether `value` can go out as an HTTP header value: no control
/// characters (CR and LF above all, which would end the header and start
/// another), tab allowed (RFC 9110 5.5).
pub fn header_value_ok(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Adds the injected query parameter `name=value` to `url`, first removing
/// every parameter of the caller's with that name (compared decoded and
/// without case), so the upstream sees the tenant's credential only, never
/// a caller's value of the same name before or after it. The caller's
/// other parameters keep their exact encoding.
pub fn inject_query(url: &mut url::Url, name: &str, value: &str) {
    let kept: Vec<String> = url
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let raw_name = pair.split('=').next().unwrap_or_default();
            let decoded: String =
                url::form_urlencoded::parse(raw_name.as_bytes()).map(|(k, _)| k.into_owned()).collect();
            !decoded.eq_ignore_ascii_case(name)
        })
        .map(str::to_owned)
        .collect();
    let joined = kept.join("&");
    url.set_query((!kept.is_empty()).then_some(joined.as_str()));
    url.query_pairs_mut().append_pair(name, value);
}

/// The URL for a caller's `path` (the raw, still percent-encoded text after
/// `/proxy/<key>/`) and query under `base`. Refused: `..` or `.` segments
/// (also percent-encoded), encoded slashes or backslashes, `@`, `:` before the
/// first `/` (absolute URLs), a leading `/` (`//host`), control characters.
/// The result is checked again after parsing: same scheme, host and port,
/// and a path under the base's.
pub fn target_url(base: &url::Url, path: &str, query: Option<&str>) -> Result<url::Url, ServiceError> {
    let refuse = || {
        ServiceError::invalid(
            ErrorCode::InvalidProxyPath,
            "the path must stay under the integration's base URL",
            Some("path"),
        )
    };
    let lower = path.to_ascii_lowercase();
    if path.starts_with('/')
        || path.contains('\\')
        || path.contains('@')
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || lower.contains("%40")
        || lower.contains("%00")
        || path.bytes().any(|b| b.is_ascii_control() || b == b' ')
        || path.split('/').next().is_some_and(|first| first.contains(':'))
        || path.split('/').any(|seg| seg == ".." || seg == ".")
    {
        return Err(refuse());
    }
    if query.is_some_and(|q| q.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'#')) {
        return Err(refuse());
    }
    let mut joined = base.as_str().trim_end_matches('/').to_owned();
    if !path.is_empty() {
        joined.push('/');
        joined.push_str(path);
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        joined.push('?');
        joined.push_str(q);
    }
    let target = url::Url::parse(&joined).map_err(|_| refuse())?;
    let base_path = base.path().trim_end_matches('/');
    let same_origin = target.scheme() == base.scheme()
        && target.host() == base.host()
        && target.port_or_known_default() == base.port_or_known_default()
        && target.username().is_empty()
        && target.password().is_none();
    let under_base = target.path() == base_path
        || target.path().starts_with(&format!("{base_path}/"))
        || (base_path.is_empty() && target.path().starts_with('/'));
    if same_origin && under_base {
        Ok(target)
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://api.example.com/v1").expect("url")
    }

    #[test]
    fn ordinary_paths_and_queries_stay_under_the_base() {
        let t = target_url(&base(), "pages/abc%20def", Some("page_size=10&q=a%2Fb")).expect("ok");
        assert_eq!(t.as_str(), "https://api.example.com/v1/pages/abc%20def?page_size=10&q=a%2Fb");
        assert_eq!(target_url(&base(), "", None).expect("ok").as_str(), "https://api.example.com/v1");
    }

    #[test]
    fn every_way_out_is_refused() {
        for path in [
            "../admin",
            "a/../../admin",
            "%2e%2e/admin",
            "%2E%2E/admin",
            ".%2e/admin",
            "a%2fb",
            "a%2Fb",
            "a%5cb",
            "a\\b",
            "@evil.example",
            "user@evil.example/x",
            "/evil.example/x",
            "//evil.example/x",
            "http://evil.example/x",
            "https:evil.example",
            "a/./b",
            "a%00b",
            "a b",
        ] {
            assert!(target_url(&base(), path, None).is_err(), "{path} must be refused");
        }
        assert!(target_url(&base(), "x", Some("a=1#frag")).is_err());
    }

    #[test]
    fn tunnels_and_reflections_are_refused_other_methods_pass() {
        for m in ["CONNECT", "TRACE", "TRACK", "trace", "Connect"] {
            assert!(check_method(m).is_err(), "{m}");
        }
        for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"] {
            assert!(check_method(m).is_ok(), "{m}");
        }
    }

    #[test]
    fn the_injected_query_parameter_replaces_every_caller_one_of_its_name() {
        let mut url = target_url(
            &base(),
            "items",
            Some("api_key=mine&limit=5&API_KEY=again&api%5Fkey=encoded&q=a%2Fb&api_keyx=kept&api_key"),
        )
        .expect("ok");
        inject_query(&mut url, "api_key", "tenant secret");
        assert_eq!(url.query(), Some("limit=5&q=a%2Fb&api_keyx=kept&api_key=tenant+secret"));
        let mut bare = target_url(&base(), "items", Some("api_key=mine")).expect("ok");
        inject_query(&mut bare, "api_key", "s");
        assert_eq!(bare.query(), Some("api_key=s"));
    }

    #[test]
    fn the_callers_credentials_and_hop_by_hop_headers_never_leave() {
        let mut incoming = http::HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer caller-token"),
            ("cookie", "session=1"),
            ("x-tenant-id", "acme"),
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("host", "tessera"),
            ("accept", "application/json"),
            ("x-request-id", "r1"),
        ] {
            incoming.append(k, http::HeaderValue::from_static(v));
        }
        let out = forwardable_headers(&incoming);
        let names: Vec<&str> = out.keys().map(http::HeaderName::as_str).collect();
        assert_eq!(names, ["accept", "x-request-id"]);
        let mut answer = http::HeaderMap::new();
        for (k, v) in [("set-cookie", "a=1"), ("content-length", "5"), ("x-upstream", "yes")] {
            answer.append(k, http::HeaderValue::from_static(v));
        }
        strip_response_headers(&mut answer);
        assert_eq!(answer.keys().map(http::HeaderName::as_str).collect::<Vec<_>>(), ["x-upstream"]);
    }

    #[test]
    fn header_values_with_control_characters_cannot_be_sent() {
        assert!(header_value_ok("Bearer abc.def-123"));
        assert!(header_value_ok("Key a\tb"));
        for bad in ["abc\r\nX-Evil: 1", "abc\n", "abc\r", "a\0b", "a\x7fb"] {
            assert!(!header_value_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn oauth2_integrations_default_to_the_access_token_as_bearer() {
        let unnamed: ProxySettings =
            serde_json::from_value(serde_json::json!({"baseUrl": "https://api.example.com"})).expect("settings");
        let bearer = ProxyAuth::Bearer { from: "credentials".into() };
        assert_eq!(unnamed.effective_auth(AuthType::OAuth2), bearer);
        assert_eq!(unnamed.effective_auth(AuthType::ApiKey), ProxyAuth::None);
        assert_eq!(unnamed.clone().resolved(AuthType::OAuth2).auth, Some(bearer));
        let explicit_none = ProxySettings { auth: Some(ProxyAuth::None), ..unnamed };
        assert_eq!(explicit_none.effective_auth(AuthType::OAuth2), ProxyAuth::None, "an explicit none is kept");
    }

    #[test]
    fn settings_refuse_unknown_sources_and_reserved_headers() {
        let ok = ProxySettings {
            base_url: "http://127.0.0.1:8080/api".into(),
            auth: Some(ProxyAuth::Header { name: "X-Api-Key".into(), prefix: None, from: "config:api_key".into() }),
        };
        assert!(ok.validate().is_ok());
        let bad_source = ProxySettings { auth: Some(ProxyAuth::Bearer { from: "literal-token".into() }), ..ok.clone() };
        assert!(bad_source.validate().is_err());
        let reserved = ProxySettings {
            auth: Some(ProxyAuth::Header { name: "Cookie".into(), prefix: None, from: "credentials".into() }),
            ..ok.clone()
        };
        assert!(reserved.validate().is_err());
        let split_prefix = ProxySettings {
            auth: Some(ProxyAuth::Header {
                name: "X-Key".into(),
                prefix: Some("a\r\nX-Evil: ".into()),
                from: "credentials".into(),
            }),
            ..ok.clone()
        };
        assert!(split_prefix.validate().is_err(), "a prefix that would split the header is refused");
        let creds_in_url = ProxySettings { base_url: "https://u:p@api.example.com".into(), ..ok };
        assert!(creds_in_url.validate().is_err());
    }
}
