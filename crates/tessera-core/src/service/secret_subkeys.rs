//! KV v2's `subkeys/<path>`: the key structure of one version of a secret,
//! every leaf shown as `null`, never a value. The version is decrypted in
//! the service (as any read is, and audited as one on `...?subkeys`), and
//! its structure is read from the decrypted JSON without building the
//! values: a leaf is skipped, not parsed into a string, so no secret value
//! reaches an ordinary `String` or `Value` on the way.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::secret_kv::CustomMetadata;
use super::{Ctx, Tessera};
use crate::error::ServiceError;

/// One version's key structure with its metadata.
pub struct SecretSubkeys {
    /// The version number.
    pub version: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, when (to be) soft-deleted.
    pub deleted_at: Option<String>,
    /// Erased for good.
    pub destroyed: bool,
    /// The keys, leaves `null`; none when the version is deleted or destroyed.
    pub subkeys: Option<Map<String, Value>>,
    /// The secret's custom metadata, if set.
    pub custom_metadata: Option<CustomMetadata>,
}

impl Tessera {
    /// The key structure of one version (the newest when `version` is
    /// none), nested objects walked down to `depth` levels (0: all). A
    /// single-value secret has the one key `value`, as KV v2 reads it.
    pub async fn secret_subkeys(
        &self,
        ctx: &Ctx,
        tenant: &str,
        path: &str,
        version: Option<u32>,
        depth: u32,
    ) -> Result<SecretSubkeys, ServiceError> {
        let read = self.read_kv_version(ctx, tenant, path, version, "?subkeys").await?;
        let subkeys = match &read.plaintext {
            None => None,
            Some(plaintext) if read.kind == "data" => Some(structure(plaintext, depth)?),
            Some(plaintext) => Some(value_structure(plaintext, depth)?),
        };
        Ok(SecretSubkeys {
            version: read.version,
            created_at: read.created_at,
            deleted_at: read.deleted_at,
            destroyed: read.destroyed,
            subkeys,
            custom_metadata: read.custom_metadata,
        })
    }
}

/// The structure of a stored field map.
fn structure(json: &[u8], max: u32) -> Result<Map<String, Value>, ServiceError> {
    match (Node { depth: 1, max, root: true }).walk(json)? {
        Value::Object(map) => Ok(map),
        _ => Err(ServiceError::internal("a stored field map is not a JSON object")),
    }
}

/// The structure of a single value, read as `{"value": <the value>}`.
fn value_structure(json: &[u8], max: u32) -> Result<Map<String, Value>, ServiceError> {
    let top = Node { depth: 1, max, root: true };
    let inner = if top.goes_deeper() { Node { depth: 2, max, root: false }.walk(json)? } else { Value::Null };
    Ok(Map::from_iter([("value".to_owned(), inner)]))
}

/// A JSON value at `depth` (the top-level map is at 1): a non-empty object
/// whose keys are within `max` levels (0: no limit) becomes its keys, each
/// walked in turn; anything else is a leaf, `null`, skipped unread. The
/// root stays an object even when empty.
#[derive(Clone, Copy)]
struct Node {
    depth: u32,
    max: u32,
    root: bool,
}

impl Node {
    fn walk(self, json: &[u8]) -> Result<Value, ServiceError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let out = self.deserialize(&mut de).map_err(|_| ServiceError::internal("a stored secret is not JSON"))?;
        de.end().map_err(|_| ServiceError::internal("a stored secret is not JSON"))?;
        Ok(out)
    }

    /// Whether the keys of an object at the level below are shown.
    fn goes_deeper(self) -> bool {
        self.max == 0 || self.depth < self.max
    }
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut keys = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let below = if self.goes_deeper() {
                map.next_value_seed(Node { depth: self.depth + 1, max: self.max, root: false })?
            } else {
                map.next_value::<IgnoredAny>()?;
                Value::Null
            };
            keys.insert(key, below);
        }
        Ok(if keys.is_empty() && !self.root { Value::Null } else { Value::Object(keys) })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::{structure, value_structure};
    use serde_json::{json, Value};

    fn keys(doc: &Value, depth: u32) -> Value {
        Value::Object(structure(doc.to_string().as_bytes(), depth).expect("structure"))
    }

    #[test]
    fn subkeys_show_every_key_and_no_value() {
        let doc = json!({"user": "u", "pw": "secret-pw", "n": 5, "list": ["a"], "empty": {}, "db": {"host": "h", "tls": {"ca": "x"}}});
        let all = keys(&doc, 0);
        assert_eq!(
            all,
            json!({"user": null, "pw": null, "n": null, "list": null, "empty": null, "db": {"host": null, "tls": {"ca": null}}})
        );
        assert!(!all.to_string().contains("secret-pw"));
    }

    #[test]
    fn depth_stops_the_walk_as_vault_does() {
        let doc = json!({"a": {"b": {"c": "v"}}, "d": "v"});
        assert_eq!(keys(&doc, 1), json!({"a": null, "d": null}));
        assert_eq!(keys(&doc, 2), json!({"a": {"b": null}, "d": null}));
        assert_eq!(keys(&doc, 3), json!({"a": {"b": {"c": null}}, "d": null}));
        assert_eq!(keys(&json!({}), 0), json!({}));
    }

    #[test]
    fn a_single_value_is_a_leaf_or_its_own_keys() {
        let of = |json: &[u8], depth| Value::Object(value_structure(json, depth).expect("walks"));
        assert_eq!(of(br#""one""#, 0), json!({"value": null}));
        assert_eq!(of(br#"{"k": 1}"#, 0), json!({"value": {"k": null}}));
        assert_eq!(of(br#"{"k": 1}"#, 1), json!({"value": null}));
        assert_eq!(of(br#"{"k": 1}"#, 2), json!({"value": {"k": null}}));
    }
}
