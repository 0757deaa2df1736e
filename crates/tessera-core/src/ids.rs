//! Identifiers that parse once at the edge, so the inside never re-checks them.

use crate::ErrorCode;
use std::fmt;

use crate::error::ServiceError;

/// The reserved tenant that holds platform-level secrets (integration
/// defaults, OAuth client secrets). It cannot be created through the API.
pub const PLATFORM_TENANT: &str = "_platform";

/// A tenant id: `^[a-z0-9][a-z0-9_-]{0,62}$`, or the reserved `_platform`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Parses an id a caller wants to create: the reserved id is refused.
    pub fn parse_new(raw: &str) -> Result<Self, ServiceError> {
        if is_slug(raw, 63) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ServiceError::invalid(
                ErrorCode::InvalidTenantId,
                "tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$",
                Some("id"),
            ))
        }
    }

    /// Parses an id naming an existing tenant (the reserved one included).
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        if raw == PLATFORM_TENANT {
            return Ok(Self::platform());
        }
        Self::parse_new(raw).map_err(|_| {
            ServiceError::invalid(
                ErrorCode::InvalidTenantId,
                "tenant id must match ^[a-z0-9][a-z0-9_-]{0,62}$",
                Some("tenantId"),
            )
        })
    }

    /// The reserved platform tenant.
    pub fn platform() -> Self {
        Self(PLATFORM_TENANT.to_owned())
    }

    /// Whether this is the reserved platform tenant.
    pub fn is_platform(&self) -> bool {
        self.0 == PLATFORM_TENANT
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An integration key in the registry: a slug like `langfuse` or `e2e_secret_test_1a2b`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IntegrationKey(String);

impl IntegrationKey {
    /// Parses `^[a-z0-9][a-z0-9_-]{0,62}$`.
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        if is_slug(raw, 63) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ServiceError::invalid(
                ErrorCode::InvalidIntegrationKey,
                "integration key must match ^[a-z0-9][a-z0-9_-]{0,62}$",
                Some("key"),
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IntegrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The path of a tenant secret: segments of `[A-Za-z0-9._-]` joined by `/`.
///
/// Paths whose first segment starts with `_` are Tessera's own (connection
/// secrets, credentials); callers cannot address them through the secrets API.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretPath(String);

/// Longest secret path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 512;

impl SecretPath {
    /// Parses a caller-supplied path (reserved `_` prefix refused).
    pub fn parse_user(raw: &str) -> Result<Self, ServiceError> {
        let path = Self::parse_any(raw)?;
        if path.0.starts_with('_') {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidSecretPath,
                "secret paths starting with '_' are reserved for Tessera",
                Some("path"),
            ));
        }
        Ok(path)
    }

    /// The internal path of a connection's (or the defaults') secret field.
    pub fn config_field(integration: &IntegrationKey, field: &str) -> Self {
        Self(format!("_config/{integration}/{field}"))
    }

    /// Where a connection's OAuth tokens live (one `data` secret).
    pub fn credentials(integration: &IntegrationKey) -> Self {
        Self(format!("_credentials/{integration}/tokens"))
    }

    /// The prefix of every tenant's tokens for an integration.
    pub fn credentials_prefix(integration: &IntegrationKey) -> String {
        format!("_credentials/{integration}/")
    }

    /// Where a tenant's Transit key lives (every version of its key material,
    /// as one `data` secret, so it is encrypted under the tenant's data key).
    /// `name` is one segment of `[A-Za-z0-9._-]` (1-128 bytes, not `.`/`..`).
    pub fn transit_key(name: &str) -> Result<Self, ServiceError> {
        let ok = !name.is_empty()
            && name.len() <= 128
            && name != "."
            && name != ".."
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if !ok {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidKeyName,
                "a transit key name is 1-128 characters of [A-Za-z0-9._-]",
                Some("name"),
            ));
        }
        Ok(Self(format!("_transit/{name}")))
    }

    /// Where an integration's OAuth client secret lives (platform tenant).
    pub fn oauth_client_secret(integration: &IntegrationKey) -> Self {
        Self(format!("_oauth/{integration}/client_secret"))
    }

    /// The prefix of an integration's OAuth client secret.
    pub fn oauth_client_prefix(integration: &IntegrationKey) -> String {
        format!("_oauth/{integration}/")
    }

    /// The prefix under which every config secret of an integration lives.
    pub fn config_prefix(integration: &IntegrationKey) -> String {
        format!("_config/{integration}/")
    }

    fn parse_any(raw: &str) -> Result<Self, ServiceError> {
        let bad = || {
            ServiceError::invalid(
                ErrorCode::InvalidSecretPath,
                "secret path must be 1-512 bytes of segments [A-Za-z0-9._-] separated by '/', with no empty, '.' or '..' segment",
                Some("path"),
            )
        };
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() || trimmed.len() > MAX_PATH_LEN {
            return Err(bad());
        }
        for seg in trimmed.split('/') {
            let ok = !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            if !ok {
                return Err(bad());
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `raw` is a slug `^[a-z0-9][a-z0-9_-]{0,max-1}$`.
pub fn is_slug(raw: &str, max: usize) -> bool {
    let bytes = raw.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// The longest display name (tenants, API keys, integrations), in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// What a display name must contain: one character that is not whitespace
/// (Rust's `char::is_whitespace`, spelled out so every regex engine reads the
/// class the same way; `\s` differs between them).
pub const NAME_PATTERN: &str =
    "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// Parses a display name as sent: 1-200 characters (Unicode scalar values,
/// as JSON Schema's `maxLength` counts them), not only whitespace. Returns
/// it trimmed.
pub fn display_name(raw: &str) -> Result<&str, ServiceError> {
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(ErrorCode::InvalidName, "name must be 1-200 characters", Some("name")));
    }
    Ok(name)
}

/// The OpenAPI schema of a display name: exactly what [`display_name`] accepts.
pub fn name_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(NAME_PATTERN))
        .description(Some("Display name: 1-200 characters, not only whitespace (stored trimmed)."))
        .build()
}

/// The request id an adapter records: the client's `X-Request-Id` when it is
/// 1-64 visible ASCII characters (so it can go into logs and audit rows as
/// is), or a new random one.
pub fn request_id_or_new(sent: Option<&str>) -> String {
    sent.filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_slugs_and_the_platform_id_cannot_be_created() {
        assert!(TenantId::parse_new("acme-corp").is_ok());
        assert!(TenantId::parse_new("a").is_ok());
        assert!(TenantId::parse_new(&"a".repeat(63)).is_ok());
        for bad in ["", "Acme", "-acme", "_platform", "acme corp", "acme/x", &"a".repeat(64)] {
            assert!(TenantId::parse_new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(TenantId::parse("_platform").expect("reserved id names a tenant").is_platform());
    }

    #[test]
    fn the_name_pattern_lists_exactly_the_whitespace_display_name_trims() {
        // The class of NAME_PATTERN, spelled as the characters it excludes.
        let listed: Vec<char> = "\t\n\u{b}\u{c}\r \u{85}\u{a0}\u{1680}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}"
            .chars()
            .chain('\u{2000}'..='\u{200a}')
            .collect();
        let whitespace: Vec<char> = (0..=0x10ffff).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, whitespace);
        assert_eq!(display_name("  Acme  ").expect("trimmed"), "Acme");
        assert!(display_name("\u{3000}\t").is_err(), "only whitespace");
        assert!(display_name(&"é".repeat(200)).is_ok(), "200 characters, 400 bytes");
        assert!(display_name(&format!("{} ", "a".repeat(200))).is_err(), "201 characters as sent");
    }

    #[test]
    fn secret_paths_refuse_traversal_and_reserved_prefixes() {
        assert_eq!(
            SecretPath::parse_user("stripe/STRIPE_SECRET_KEY").expect("ok").as_str(),
            "stripe/STRIPE_SECRET_KEY"
        );
        assert_eq!(SecretPath::parse_user("/a/b/").expect("trimmed").as_str(), "a/b");
        for bad in ["", "a//b", "a/../b", "..", "a/./b", "_config/x", "a b", "a:b", "a\0b"] {
            assert!(SecretPath::parse_user(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
