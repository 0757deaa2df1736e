//! Forms built from an integration's config schema, shared by the console's
//! configuration pages and the connect page: how each field is drawn, and a
//! posted value read back as the schema's type.

use serde_json::{Map, Value};
use tessera_core::schema::{ConfigSchema, FieldType};

/// How a field is drawn.
#[derive(PartialEq, Eq)]
pub(crate) enum Input {
    Text,
    Number,
    Choice(Vec<String>),
    Json,
    Secret,
}

/// One field of the form.
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) kind: Input,
    pub(crate) type_name: &'static str,
    pub(crate) required: bool,
    /// The tenant's current value (never for a secret).
    pub(crate) value: String,
    /// Whether a secret value is stored.
    pub(crate) stored: bool,
    pub(crate) error: Option<String>,
}

/// The form's fields: the schema's, with the current values (never a
/// secret's) and which secrets are stored.
pub(crate) fn fields_of(schema: &ConfigSchema, config: &Map<String, Value>, secrets: &[String]) -> Vec<Field> {
    schema
        .fields()
        .iter()
        .map(|(name, spec)| {
            let choices = spec.schema.get("enum").and_then(Value::as_array).map(|vals| {
                vals.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect::<Vec<_>>()
            });
            let kind = match (spec.field_type, choices) {
                (FieldType::Secret, _) => Input::Secret,
                _ if spec.secret => Input::Secret,
                (_, Some(c)) => Input::Choice(c),
                (FieldType::Bool, None) => Input::Choice(vec!["true".into(), "false".into()]),
                (FieldType::Int | FieldType::Number, None) => Input::Number,
                (FieldType::Json, None) => Input::Json,
                (FieldType::String, None) => Input::Text,
            };
            let value = match config.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(v) if kind != Input::Secret => v.to_string(),
                _ => String::new(),
            };
            Field {
                name: name.clone(),
                type_name: if spec.secret { "secret" } else { spec.field_type.as_str() },
                kind,
                required: schema.required().contains(name),
                value,
                stored: secrets.contains(name),
                error: None,
            }
        })
        .collect()
}

/// What a field expected that its form value is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// An `int` field: a whole number.
    WholeNumber,
    /// A `number` field.
    Number,
    /// A `json` field: text that parses as JSON.
    Json,
}

impl Expected {
    /// What to tell the person.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::WholeNumber => "Enter a whole number, such as 30.",
            Self::Number => "Enter a number, such as 2.5.",
            Self::Json => "Enter valid JSON, such as {\"a\": 1}.",
        }
    }
}

/// A form value as the schema's type.
pub(crate) fn parse(field: &Field, raw: &str) -> Result<Value, Expected> {
    let raw = raw.trim();
    match (&field.kind, field.type_name) {
        (Input::Number, "int") => raw.parse::<i64>().map(Value::from).map_err(|_| Expected::WholeNumber),
        (Input::Number, _) => {
            raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).ok_or(Expected::Number)
        }
        (Input::Choice(_), "bool") => Ok(Value::Bool(raw == "true")),
        (Input::Json, _) => serde_json::from_str(raw).map_err(|_| Expected::Json),
        _ => Ok(Value::String(raw.to_owned())),
    }
}
