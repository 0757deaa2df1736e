//! Schemas of the answers that carry a secret value, for `/openapi.json`:
//! documentation only. None of these types is ever built or serialised (no
//! `Serialize`, so nothing can send one): the resolved view and a secret
//! read are written as bytes in a zeroizing buffer ([`crate::secret_json`]),
//! so plaintext never sits in an ordinary string or `Value`, and the webhook
//! and API key creation answers are written by the HTTP adapter around the
//! secret each shows once. Each type documents those bytes; `tests/api/openapi/answers.rs`
//! validates real answers against the document's schemas, so a change to the
//! bytes that the schema does not follow fails there.

use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::{SecretMetadataView, WebhookView};

// Documents the bytes `Tessera::resolve` writes (the `///` lines are the
// schema's description in the document).
/// The resolved view of a connection (`GET .../integrations/{key}/resolved`):
/// what an SDK reads.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ResolvedConnection {
    /// Tenant.
    pub tenant_id: String,
    /// Integration key.
    pub integration: String,
    /// Every field with a value, merged in this order (a later one wins): the
    /// schema's `default`, the integration's defaults, the tenant's overrides;
    /// secret fields decrypted. With stored credentials, also `accessToken`
    /// (refreshed first if it had expired) and `tokenType`.
    pub config: Map<String, Value>,
}

/// `GET /tenants/{tenantId}/secrets/{path}[?version=N]`: one version with its
/// value, as it was written: [`SecretReadValue`] or [`SecretReadData`].
/// Documents the bytes [`super::Tessera::get_secret`] writes; the schemas are
/// written by hand (the derive cannot say "one of").
pub struct SecretRead;

impl ToSchema for SecretRead {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((SecretReadValue::name().into_owned(), SecretReadValue::schema()));
        schemas.push((SecretReadData::name().into_owned(), SecretReadData::schema()));
    }
}

impl PartialSchema for SecretRead {
    fn schema() -> RefOr<Schema> {
        one_of(
            "One version of a secret, as written: one value (`SecretReadValue`) or a map of fields (`SecretReadData`).",
            &["SecretReadValue", "SecretReadData"],
        )
    }
}

/// A secret version written as one value (`{"value": ...}`).
pub struct SecretReadValue;

impl ToSchema for SecretReadValue {}

impl PartialSchema for SecretReadValue {
    fn schema() -> RefOr<Schema> {
        read_variant(
            "A secret version holding one value.",
            "value",
            json!({"type": ["string", "number", "boolean", "object", "array"], "additionalProperties": true,
                   "description": "The value: any JSON but null."}),
        )
    }
}

/// A secret version written as a map of fields (`{"data": {...}}`, what the
/// Vault-compatible API writes).
pub struct SecretReadData;

impl ToSchema for SecretReadData {}

impl PartialSchema for SecretReadData {
    fn schema() -> RefOr<Schema> {
        read_variant(
            "A secret version holding a map of fields (what the Vault-compatible API writes).",
            "data",
            json!({"type": "object", "additionalProperties": true, "description": "The fields."}),
        )
    }
}

/// `{"path","version","createdAt"}` and the payload `name`, which the other
/// variant never has (so a read matches exactly one).
fn read_variant(description: &str, name: &str, payload: Value) -> RefOr<Schema> {
    let doc = json!({
        "type": "object",
        "description": description,
        "required": ["path", "version", "createdAt", name],
        "properties": {
            "path": {"type": "string", "description": "Path."},
            "version": {"type": "integer", "minimum": 1, "maximum": u32::MAX, "description": "This version."},
            "createdAt": {"type": "string", "description": "When this version was written (RFC 3339)."},
            name: payload,
        }
    });
    serde_json::from_value(doc).expect("a secret read's schema is a valid schema")
}

/// `oneOf` the named components.
fn one_of(description: &str, names: &[&str]) -> RefOr<Schema> {
    let refs: Vec<Value> = names.iter().map(|n| json!({"$ref": format!("#/components/schemas/{n}")})).collect();
    serde_json::from_value(json!({"description": description, "oneOf": refs})).expect("a oneOf is a valid schema")
}

/// The answer of `GET /tenants/{tenantId}/secrets/{path}`: a version's value
/// ([`SecretRead`]), or with `?versions` the secret's metadata
/// ([`SecretMetadataView`]). The two never share a required field set, so an
/// answer matches exactly one.
pub struct SecretReadAnswer;

impl ToSchema for SecretReadAnswer {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((SecretRead::name().into_owned(), SecretRead::schema()));
        SecretRead::schemas(schemas);
        schemas.push((SecretMetadataView::name().into_owned(), SecretMetadataView::schema()));
        SecretMetadataView::schemas(schemas);
    }
}

impl PartialSchema for SecretReadAnswer {
    fn schema() -> RefOr<Schema> {
        one_of(
            "Without `?versions`: the value (`SecretRead`); with it: the metadata (`SecretMetadataView`).",
            &["SecretRead", "SecretMetadataView"],
        )
    }
}

/// `POST /tenants/{tenantId}/webhooks`: the new webhook and its signing
/// secret, in this answer only. Documents the object the HTTP adapter writes
/// around [`super::CreatedWebhook`] (a [`WebhookView`] plus `secret`).
pub struct WebhookCreated;

impl ToSchema for WebhookCreated {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((WebhookView::name().into_owned(), WebhookView::schema()));
        WebhookView::schemas(schemas);
    }
}

impl PartialSchema for WebhookCreated {
    fn schema() -> RefOr<Schema> {
        let doc = json!({
            "description": "A new webhook and its signing secret (shown in this answer only).",
            "allOf": [
                {"$ref": "#/components/schemas/WebhookView"},
                {
                    "type": "object",
                    "required": ["secret"],
                    "properties": {
                        "secret": {
                            "type": "string",
                            "pattern": "^whsec_[A-Za-z0-9_-]{43}$",
                            "description": "`whsec_...`: the key of every delivery's `Tessera-Signature` (HMAC-SHA256 over `<t>.<body>`). Keep it: it is never shown again."
                        }
                    }
                }
            ]
        });
        serde_json::from_value(doc).expect("the WebhookCreated schema is a valid schema")
    }
}

// Documents the object the HTTP adapter writes around `CreatedApiKey` (the
// `///` lines are the schema's description in the document).
/// `POST /api-keys`: the new key, in this answer only.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ApiKeyCreated {
    /// Id (for `DELETE /api-keys/{id}`).
    pub id: String,
    /// The key itself (`tsr_...`): send it as `Authorization: Bearer <key>`.
    /// Keep it: it is never shown again (only its hash is stored).
    #[schema(pattern = "^tsr_")]
    pub key: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Bound tenant; null for an admin or auditor key.
    #[schema(required)]
    pub tenant_id: Option<String>,
    /// A scoped key's scopes; null: unscoped.
    #[schema(required, value_type = Option<Vec<Object>>)]
    pub scopes: Option<Value>,
    /// Created.
    pub created_at: String,
}
