//! Property tests of every parser in the core that takes outside input:
//! tenant ids, integration keys, secret paths, proxy paths, webhook URLs,
//! config schemas and ciphertext strings. Whatever the input, a parser
//! answers Ok or a clear error, never panics, and what it accepts keeps the
//! invariant the rest of the code relies on.

use proptest::prelude::*;
use serde_json::{json, Value};
use tessera_core::ids::{IntegrationKey, SecretPath, TenantId};
use tessera_core::schema::ConfigSchema;

/// Strings mixing the characters that matter to these parsers.
fn tricky() -> impl Strategy<Value = String> {
    let parts = prop_oneof![
        "[a-z0-9_-]{0,12}",
        Just("..".to_owned()),
        Just("/".to_owned()),
        Just("%2e".to_owned()),
        Just("%2F".to_owned()),
        Just("\\".to_owned()),
        Just("@".to_owned()),
        Just(":".to_owned()),
        Just("_".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\r\n".to_owned()),
        Just("é".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        any::<String>(),
    ];
    proptest::collection::vec(parts, 0..8).prop_map(|v| v.concat())
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z_]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("string"),
            Just("int"),
            Just("integer"),
            Just("number"),
            Just("bool"),
            Just("boolean"),
            Just("json"),
            Just("secret"),
            Just("object"),
            Just("array")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("key".to_owned()),
                    Just("type".to_owned()),
                    Just("required".to_owned()),
                    Just("properties".to_owned()),
                    Just("default".to_owned()),
                    Just("enum".to_owned()),
                    Just("x-secret".to_owned()),
                    Just("writeOnly".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tenant_ids_parse_or_refuse_and_accepted_ones_are_slugs(raw in tricky()) {
        if let Ok(id) = TenantId::parse(&raw) {
            prop_assert_eq!(id.as_str(), raw.as_str());
            prop_assert!(!raw.is_empty() && raw.len() <= 63);
            prop_assert!(raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
        }
        if let Ok(id) = TenantId::parse_new(&raw) {
            prop_assert!(!id.is_platform() && !raw.starts_with('_'));
        }
    }

    #[test]
    fn integration_keys_parse_or_refuse(raw in tricky()) {
        if let Ok(key) = IntegrationKey::parse(&raw) {
            prop_assert_eq!(key.as_str(), raw.as_str());
            prop_assert!(!raw.contains('/') && !raw.contains(".."));
        }
    }

    #[test]
    fn user_secret_paths_never_escape_or_reach_reserved_paths(raw in tricky()) {
        if let Ok(path) = SecretPath::parse_user(&raw) {
            let p = path.as_str();
            prop_assert!(!p.starts_with('_') && !p.starts_with('/'), "{}", p);
            prop_assert!(!p.split('/').any(|seg| seg == ".." || seg == "." || seg.is_empty()), "{}", p);
            prop_assert!(!p.chars().any(char::is_control), "{:?}", p);
        }
    }

    #[test]
    fn proxy_paths_stay_under_the_base_url(path in tricky(), query in proptest::option::of(tricky())) {
        let base = url::Url::parse("https://api.example.com/v1/").expect("base");
        if let Ok(target) = tessera_core::proxy::target_url(&base, &path, query.as_deref()) {
            prop_assert_eq!(target.scheme(), "https");
            prop_assert_eq!(target.host_str(), Some("api.example.com"));
            prop_assert_eq!(target.port_or_known_default(), Some(443));
            // The base itself (an empty path) or something under it.
            prop_assert!(target.path() == "/v1" || target.path().starts_with("/v1/"), "{}", target);
            prop_assert!(target.username().is_empty() && target.password().is_none());
        }
    }

    #[test]
    fn webhook_urls_parse_or_refuse_and_never_target_internal_literals(host in tricky(), v4 in any::<[u8; 4]>(), v6 in any::<[u16; 8]>()) {
        let _ = tessera_core::webhook::validate_url(&format!("https://{host}/hook"), false);
        let ip4 = std::net::Ipv4Addr::from(v4);
        let ip6 = std::net::Ipv6Addr::new(v6[0], v6[1], v6[2], v6[3], v6[4], v6[5], v6[6], v6[7]);
        for (url, ip) in [(format!("https://{ip4}/h"), std::net::IpAddr::V4(ip4)), (format!("https://[{ip6}]/h"), std::net::IpAddr::V6(ip6))] {
            let accepted = tessera_core::webhook::validate_url(&url, false).is_ok();
            // Registration and delivery judge an address literal alike.
            prop_assert_eq!(accepted, tessera_core::webhook::may_deliver_to(ip, false), "{}", url);
        }
    }

    #[test]
    fn config_schemas_parse_or_refuse_and_accepted_ones_validate_values(schema in arbitrary_json(), value in arbitrary_json()) {
        if let Ok(parsed) = ConfigSchema::from_input(&schema) {
            let names: Vec<String> = parsed.fields().keys().cloned().collect();
            for name in names {
                let _ = parsed.validate_value(&name, &value);
            }
            // What is stored parses again as the same schema.
            let again = ConfigSchema::from_stored(parsed.normalised()).expect("a normalised schema parses");
            prop_assert_eq!(again.normalised(), parsed.normalised());
        }
    }

    #[test]
    fn ciphertext_headers_parse_or_refuse(raw in tricky(), version in any::<u32>()) {
        let _ = tessera_crypto::ciphertext_key_version(&raw);
        let framed = format!("tsr:v{version}:{raw}");
        prop_assert_eq!(tessera_crypto::ciphertext_key_version(&framed).ok(), Some(version));
    }
}
