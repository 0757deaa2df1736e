//! Words of the domain that the store keeps as text: an integration's
//! authentication, a tenant's status, a connection's health, webhook
//! events, and the metadata kept beside each config value. The store
//! parses them once, where a row is read (a value it does not know fails
//! the read: a row no version of Tessera wrote is not guessed at), and the
//! service and adapters match on variants, never on strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An enum stored and shown as a fixed word: `as_str`, `parse`, serde both
/// ways and the OpenAPI schema use the same words, so the stored, the shown,
/// the documented and the accepted spelling cannot drift apart. (`$word` is
/// a `tt`, not a `literal`: derive macros such as utoipa's do not see
/// through the invisible group a `literal` fragment is passed in.)
macro_rules! words {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:tt,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// Every variant, in order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The word stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The variant a stored or given word names, if any.
            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The words, comma-separated (for error messages).
            pub fn words() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// How an integration's API authenticates a tenant.
    pub enum AuthType {
        /// Nothing to send.
        None = "none",
        /// An API key from the config.
        ApiKey = "api_key",
        /// A user name and password from the config.
        Basic = "basic",
        /// OAuth 2.0 tokens from a flow (or stored directly).
        OAuth2 = "oauth2",
    }
}

words! {
    /// Whether a tenant may be used.
    pub enum TenantStatus {
        /// In use.
        Active = "active",
        /// Kept, but not to be used.
        Suspended = "suspended",
    }
}

words! {
    /// A connection's health, from its last check or token refresh.
    pub enum Health {
        /// The expected answer, in time.
        Healthy = "healthy",
        /// Slow, or another 4xx than the expected answer.
        Degraded = "degraded",
        /// Refused credentials, 5xx, no answer, or no usable credential.
        Unhealthy = "unhealthy",
    }
}

words! {
    /// An event a webhook may subscribe to.
    pub enum WebhookEvent {
        /// Credentials were stored for a connection.
        CredentialStored = "credential.stored",
        /// A connection's credentials were revoked.
        CredentialRevoked = "credential.revoked",
        /// A token refresh failed.
        OAuthRefreshFailed = "oauth.refresh_failed",
        /// A connection's health changed.
        HealthChanged = "health.changed",
        /// A secret is past its rotation policy.
        SecretRotationDue = "secret.rotation_due",
        /// A tenant's data key was rotated.
        KeyRotated = "key.rotated",
        /// A connection was made on the connect page.
        ConnectionCreated = "connection.created",
        /// A person finished a connect session.
        ConnectSessionCompleted = "connect.session_completed",
        /// A connect session ran out of time.
        ConnectSessionExpired = "connect.session_expired",
    }
}

/// What is kept beside each value set at one config level (an integration's
/// defaults, a tenant's overrides): who set it, when, and whether the value
/// is a secret (then it lives in the secret store, not in the public config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldMeta {
    /// When the value was last set (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Who set it (principal id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// Whether the value is a secret.
    #[serde(default)]
    pub secret: bool,
}

/// The metadata of one config level, by field.
pub type ConfigMeta = BTreeMap<String, FieldMeta>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_parses_back_to_its_variant_and_serialises_as_itself() {
        for a in AuthType::ALL {
            assert_eq!(AuthType::parse(a.as_str()), Some(*a));
            assert_eq!(serde_json::to_value(a).expect("serialises"), serde_json::json!(a.as_str()));
        }
        for h in Health::ALL {
            assert_eq!(Health::parse(h.as_str()), Some(*h));
        }
        assert_eq!(AuthType::parse("OAuth2"), None, "words are exact");
        assert_eq!(AuthType::words(), "none, api_key, basic, oauth2");
    }

    #[test]
    fn the_documented_schema_lists_the_same_words() {
        fn listed<T: utoipa::PartialSchema>() -> serde_json::Value {
            serde_json::to_value(T::schema()).expect("schema serialises")["enum"].clone()
        }
        assert_eq!(listed::<AuthType>(), serde_json::json!(["none", "api_key", "basic", "oauth2"]));
        assert_eq!(listed::<TenantStatus>(), serde_json::json!(["active", "suspended"]));
        assert_eq!(listed::<Health>(), serde_json::json!(["healthy", "degraded", "unhealthy"]));
        let events: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(listed::<WebhookEvent>(), serde_json::json!(events));
    }

    #[test]
    fn stored_metadata_reads_as_written_and_tolerates_missing_parts() {
        let stored = serde_json::json!({"updatedAt": "2026-01-01T00:00:00.000Z", "updatedBy": "k1", "secret": true});
        let meta: FieldMeta = serde_json::from_value(stored.clone()).expect("parses");
        assert!(meta.secret);
        assert_eq!(serde_json::to_value(&meta).expect("serialises"), stored);
        let bare: FieldMeta = serde_json::from_value(serde_json::json!({})).expect("parses");
        assert_eq!(bare, FieldMeta::default());
    }
}
