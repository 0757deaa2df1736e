//! Integration config schemas: accepted as JSON Schema or as seed 003's list
//! form, stored as one normalised JSON Schema, and used to validate values,
//! tell secret fields from public ones, and supply defaults.

use crate::ErrorCode;
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::ServiceError;

/// Longest accepted schema, in properties.
const MAX_PROPERTIES: usize = 256;

/// The type of a config field as the config list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string.
    String,
    /// An integer.
    Int,
    /// A number.
    Number,
    /// A boolean.
    Bool,
    /// Any JSON (object, array, or untyped).
    Json,
    /// A secret (encrypted, masked in lists).
    Secret,
}

impl FieldType {
    /// The list form's name of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::Json => "json",
            Self::Secret => "secret",
        }
    }
}

/// One property of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// The property's own JSON Schema.
    pub schema: Value,
    /// Encrypted and masked (`x-secret: true` or `writeOnly: true`).
    pub secret: bool,
    /// The schema's `default`, if any.
    pub default: Option<Value>,
    /// How lists show its type.
    pub field_type: FieldType,
}

/// A parsed, normalised config schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSchema {
    normalised: Value,
    fields: BTreeMap<String, FieldSpec>,
    required: Vec<String>,
}

impl ConfigSchema {
    /// Parses either form a caller may send and normalises it.
    pub fn from_input(input: &Value) -> Result<Self, ServiceError> {
        let schema = match input {
            Value::Array(items) => Self::from_json_schema(&list_form_to_json_schema(items)?)?,
            Value::Object(_) => Self::from_json_schema(input)?,
            Value::Null => Self::from_json_schema(&json!({"type": "object", "properties": {}}))?,
            _ => return Err(bad("configSchema must be a JSON Schema object or a list of {key, type, required}")),
        };
        // Compiling every property is costly: done once here, on input, not on each read.
        for (name, spec) in &schema.fields {
            jsonschema::validator_for(&spec.schema).map_err(|_| {
                ServiceError::invalid(
                    ErrorCode::InvalidConfigSchema,
                    "this property is not a valid JSON Schema",
                    Some(&format!("configSchema.properties.{name}")),
                )
            })?;
        }
        Ok(schema)
    }

    /// Parses a stored (already normalised and checked) schema.
    pub fn from_stored(stored: &Value) -> Result<Self, ServiceError> {
        Self::from_json_schema(stored)
    }

    fn from_json_schema(schema: &Value) -> Result<Self, ServiceError> {
        let obj = schema.as_object().ok_or_else(|| bad("configSchema must be an object"))?;
        if let Some(t) = obj.get("type") {
            if t != "object" {
                return Err(bad("configSchema.type must be \"object\""));
            }
        }
        let props = match obj.get("properties") {
            None => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return Err(bad("configSchema.properties must be an object")),
        };
        if props.len() > MAX_PROPERTIES {
            return Err(bad("configSchema has too many properties"));
        }
        let mut fields = BTreeMap::new();
        for (name, prop) in &props {
            if !is_field_name(name) {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidConfigSchema,
                    "property names must be 1-128 characters of [A-Za-z0-9_.-]",
                    Some(&format!("configSchema.properties.{name}")),
                ));
            }
            let prop_obj = prop.as_object().ok_or_else(|| {
                ServiceError::invalid(
                    ErrorCode::InvalidConfigSchema,
                    "each property must be a JSON Schema object",
                    Some(&format!("configSchema.properties.{name}")),
                )
            })?;
            let secret = prop_obj.get("x-secret") == Some(&Value::Bool(true))
                || prop_obj.get("writeOnly") == Some(&Value::Bool(true));
            let field_type = if secret { FieldType::Secret } else { field_type_of(prop_obj) };
            fields.insert(
                name.clone(),
                FieldSpec { schema: prop.clone(), secret, default: prop_obj.get("default").cloned(), field_type },
            );
        }
        let required: Vec<String> = match obj.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| bad("configSchema.required must list property names"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("configSchema.required must be a list")),
        };
        if let Some(missing) = required.iter().find(|r| !fields.contains_key(*r)) {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidConfigSchema,
                format!("required property {missing} is not among the properties"),
                Some("configSchema.required"),
            ));
        }
        let mut normalised = Map::new();
        normalised.insert("type".into(), json!("object"));
        normalised.insert("properties".into(), Value::Object(props));
        normalised.insert("required".into(), json!(required));
        Ok(Self { normalised: Value::Object(normalised), fields, required })
    }

    /// The normalised JSON Schema to store and show.
    pub fn normalised(&self) -> &Value {
        &self.normalised
    }

    /// The properties by name.
    pub fn fields(&self) -> &BTreeMap<String, FieldSpec> {
        &self.fields
    }

    /// One property.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.get(name)
    }

    /// Whether `name` is a secret property.
    pub fn is_secret(&self, name: &str) -> bool {
        self.fields.get(name).is_some_and(|f| f.secret)
    }

    /// The required property names.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Checks one value against its property. The error names the field but
    /// never echoes a secret value.
    pub fn validate_value(&self, name: &str, value: &Value) -> Result<(), ServiceError> {
        let field_path = format!("config.{name}");
        let spec = self.fields.get(name).ok_or_else(|| {
            ServiceError::invalid(
                ErrorCode::UnknownField,
                format!("{name} is not a property of this integration's configSchema"),
                Some(&field_path),
            )
        })?;
        let validator = jsonschema::validator_for(&spec.schema)
            .map_err(|_| ServiceError::internal("stored schema failed to compile"))?;
        if let Some(err) = validator.iter_errors(value).next() {
            let message = if spec.secret {
                format!("{field_path} does not match its schema (expected {})", expected_type(&spec.schema))
            } else {
                format!("{field_path}: {err}")
            };
            return Err(ServiceError::invalid(ErrorCode::InvalidType, message, Some(&field_path)));
        }
        Ok(())
    }
}

fn expected_type(schema: &Value) -> String {
    schema.get("type").map_or_else(|| "a valid value".to_owned(), |t| t.to_string())
}

fn field_type_of(prop: &Map<String, Value>) -> FieldType {
    match prop.get("type").and_then(Value::as_str) {
        Some("string") => FieldType::String,
        Some("integer") => FieldType::Int,
        Some("number") => FieldType::Number,
        Some("boolean") => FieldType::Bool,
        _ => FieldType::Json,
    }
}

fn list_form_to_json_schema(items: &[Value]) -> Result<Value, ServiceError> {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |f: &str| format!("configSchema[{i}].{f}");
        let obj = item.as_object().ok_or_else(|| {
            ServiceError::invalid(
                ErrorCode::InvalidConfigSchema,
                "each item must be an object",
                Some(&format!("configSchema[{i}]")),
            )
        })?;
        let key = obj.get("key").and_then(Value::as_str).ok_or_else(|| {
            ServiceError::invalid(ErrorCode::InvalidConfigSchema, "key must be a string", Some(&at("key")))
        })?;
        let mut prop = match obj.get("type").and_then(Value::as_str).unwrap_or("string") {
            "string" => json!({"type": "string"}),
            "int" | "integer" => json!({"type": "integer"}),
            "bool" | "boolean" => json!({"type": "boolean"}),
            "number" => json!({"type": "number"}),
            "json" => json!({}),
            "secret" => json!({"type": "string", "x-secret": true}),
            _ => {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidConfigSchema,
                    "type must be one of string, int, bool, json, secret",
                    Some(&at("type")),
                ))
            }
        };
        for extra in ["default", "description"] {
            if let Some(v) = obj.get(extra) {
                prop[extra] = v.clone();
            }
        }
        if props.insert(key.to_owned(), prop).is_some() {
            return Err(ServiceError::invalid(
                ErrorCode::InvalidConfigSchema,
                format!("key {key} appears twice"),
                Some(&at("key")),
            ));
        }
        if obj.get("required") == Some(&Value::Bool(true)) {
            required.push(Value::String(key.to_owned()));
        }
    }
    Ok(json!({"type": "object", "properties": props, "required": required}))
}

fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn bad(message: &str) -> ServiceError {
    ServiceError::invalid(ErrorCode::InvalidConfigSchema, message, Some("configSchema"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn the_list_form_and_json_schema_normalise_to_the_same_schema() {
        let list = ConfigSchema::from_input(&json!([
            {"key": "base_url", "type": "string", "required": true},
            {"key": "api_key", "type": "secret", "required": true},
        ]))
        .expect("list form");
        let js = ConfigSchema::from_input(&json!({
            "type": "object",
            "properties": {"base_url": {"type": "string"}, "api_key": {"type": "string", "x-secret": true}},
            "required": ["base_url", "api_key"],
        }))
        .expect("json schema");
        assert_eq!(list.normalised(), js.normalised());
        assert!(list.is_secret("api_key"));
        assert!(!list.is_secret("base_url"));
        assert_eq!(list.field("api_key").map(|f| f.field_type), Some(FieldType::Secret));
    }

    #[test]
    fn write_only_properties_are_secret() {
        let s = ConfigSchema::from_input(&json!({"properties": {"token": {"type": "string", "writeOnly": true}}}))
            .expect("ok");
        assert!(s.is_secret("token"));
    }

    #[test]
    fn a_wrong_type_names_the_field_without_echoing_a_secret() {
        let s = ConfigSchema::from_input(&json!([
            {"key": "timeout", "type": "int"},
            {"key": "api_key", "type": "secret"},
        ]))
        .expect("ok");
        let e = s.validate_value("timeout", &json!("thirty")).expect_err("not an int");
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert_eq!(e.field.as_deref(), Some("config.timeout"));
        let e = s.validate_value("api_key", &json!({"nested": "sk_live_hidden"})).expect_err("not a string");
        assert!(!e.message.contains("sk_live_hidden"), "{}", e.message);
        let e = s.validate_value("nope", &json!(1)).expect_err("unknown");
        assert_eq!(e.code, ErrorCode::UnknownField);
        assert!(s.validate_value("timeout", &json!(30)).is_ok());
    }

    #[test]
    fn malformed_schemas_are_refused_with_a_path() {
        for bad in [
            json!("string"),
            json!({"type": "array"}),
            json!({"properties": {"a": 1}}),
            json!({"properties": {"a": {"type": "string"}}, "required": ["b"]}),
            json!([{"key": "a", "type": "float"}]),
            json!([{"type": "string"}]),
            json!([{"key": "a"}, {"key": "a"}]),
        ] {
            let e = ConfigSchema::from_input(&bad).expect_err("malformed");
            assert_eq!(e.code, ErrorCode::InvalidConfigSchema, "{bad}");
            assert!(e.field.is_some());
        }
    }
}
