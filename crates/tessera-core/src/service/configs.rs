//! Config values: applying a change (validate, split public from secret,
//! encrypt) for global defaults and tenant overrides alike, merging them into
//! the resolved view, and the masked config list of seed 003.

use crate::ErrorCode;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::secrets::VersionWrite;
use super::view_cache::ViewReader;
use super::{rfc3339, Ctx, Tessera};
use crate::domain::{ConfigMeta, FieldMeta};
use crate::error::ServiceError;
use crate::ids::{IntegrationKey, SecretPath, TenantId};
use crate::ports::{CredentialRecord, IntegrationRecord, StoreTx};
use crate::schema::ConfigSchema;
use crate::secret_json::SecretJson;

/// How lists show a secret.
pub const MASK: &str = "[SECRET]";

/// One row of the config list (the console's Configuration page).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    /// Field name.
    pub key: String,
    /// Value; `[SECRET]` for secrets.
    pub value: Value,
    /// `string`, `int`, `number`, `bool`, `json` or `secret`.
    #[serde(rename = "type")]
    pub field_type: String,
    /// `global` (an integration default) or `tenant` (an override).
    pub scope: String,
    /// The tenant of an override.
    pub tenant_id: Option<String>,
    /// Integration key.
    pub integration_key: String,
    /// Integration display name.
    pub integration_name: String,
    /// When set.
    pub updated_at: Option<String>,
    /// Who set it.
    pub updated_by: Option<String>,
}

/// `GET /configs` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigList {
    /// Rows, by integration, scope and key.
    pub configs: Vec<ConfigEntry>,
}

/// A secret field to write or remove after the public part is applied.
pub(crate) enum SecretOp {
    Put(String, Value),
    Delete(String),
}

/// Applies `input` to a public config map and its metadata; returns the
/// secret writes still to do. `null` or `""` removes a key (the default shows
/// through again). Nothing is changed if any value is invalid.
pub(crate) fn apply_change(
    schema: &ConfigSchema,
    input: &Map<String, Value>,
    public: &mut Map<String, Value>,
    meta: &mut ConfigMeta,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SecretOp>, ServiceError> {
    for (key, value) in input {
        // Removals skip type checks, but an unknown key is refused either way.
        if !is_removal(value) || schema.field(key).is_none() {
            schema.validate_value(key, value)?;
        }
    }
    let mut ops = Vec::new();
    for (key, value) in input {
        let secret = schema.is_secret(key);
        if is_removal(value) {
            public.remove(key);
            if meta.remove(key).is_some_and(|m| m.secret) || secret {
                ops.push(SecretOp::Delete(key.clone()));
            }
            continue;
        }
        meta.insert(
            key.clone(),
            FieldMeta { updated_at: Some(rfc3339(now)), updated_by: Some(actor.to_owned()), secret },
        );
        if secret {
            // A field that became secret leaves the plain config at its next write.
            public.remove(key);
            ops.push(SecretOp::Put(key.clone(), value.clone()));
        } else {
            public.insert(key.clone(), value.clone());
        }
    }
    Ok(ops)
}

/// Masks values of fields the schema marks secret that are still stored as
/// plain config (a field that became secret, until `tessera backfill` runs).
pub(crate) fn mask_secret_fields(schema: &ConfigSchema, public: &mut Map<String, Value>) {
    for (k, v) in public.iter_mut() {
        if schema.is_secret(k) {
            *v = json!(MASK);
        }
    }
}

fn is_removal(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

/// Names of the secret fields set at one level.
pub(crate) fn secret_keys(meta: &ConfigMeta) -> impl Iterator<Item = &String> {
    meta.iter().filter(|(_, m)| m.secret).map(|(k, _)| k)
}

/// Names of the keys set at one level (public and secret).
pub(crate) fn keys_set<'a>(public: &'a Map<String, Value>, meta: &'a ConfigMeta) -> impl Iterator<Item = &'a String> {
    public.keys().chain(secret_keys(meta))
}

/// One level of config: its public values and their metadata.
pub(crate) type Level<'a> = (&'a Map<String, Value>, &'a ConfigMeta);

/// Checks every required field has a value after merging.
pub(crate) fn check_required(schema: &ConfigSchema, levels: &[Level<'_>]) -> Result<(), ServiceError> {
    for field in schema.required() {
        let has_default = schema.field(field).is_some_and(|f| f.default.is_some());
        let set = levels.iter().any(|(public, meta)| keys_set(public, meta).any(|k| k == field));
        if !has_default && !set {
            return Err(ServiceError::unprocessable(
                ErrorCode::MissingRequiredField,
                format!("config.{field} is required and has no default"),
                &format!("config.{field}"),
            ));
        }
    }
    Ok(())
}

enum Merged {
    Public(Value),
    Secret {
        tenant: String,
        path: SecretPath,
    },
    /// The connection's current access token (credentials win over config).
    AccessToken,
}

impl Tessera {
    /// Performs the secret writes of a config change inside `tx`.
    pub(crate) async fn apply_secret_ops(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &Ctx,
        owner: &TenantId,
        integration: &IntegrationKey,
        ops: Vec<SecretOp>,
    ) -> Result<(), ServiceError> {
        for op in ops {
            match op {
                SecretOp::Put(field, value) => {
                    let path = SecretPath::config_field(integration, &field);
                    let plaintext = Zeroizing::new(serde_json::to_vec(&value).expect("JSON values serialise"));
                    let write = VersionWrite {
                        tenant: owner.as_str(),
                        path: path.as_str(),
                        kind: "value",
                        plaintext: &plaintext,
                        cas: None,
                    };
                    self.write_version(tx, ctx, write).await?;
                }
                SecretOp::Delete(field) => {
                    self.secrets
                        .remove(tx, owner.as_str(), SecretPath::config_field(integration, &field).as_str())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Builds the resolved config (schema defaults < integration defaults <
    /// tenant overrides), decrypting only the secrets that win.
    pub(crate) async fn merge_resolved(
        &self,
        reader: &mut ViewReader<'_>,
        integration: &IntegrationRecord,
        schema: &ConfigSchema,
        tenant: &TenantId,
        overrides: Level<'_>,
        credential: Option<&CredentialRecord>,
    ) -> Result<SecretJson, ServiceError> {
        let key = IntegrationKey::parse(&integration.key)?;
        let mut merged: BTreeMap<String, Merged> = BTreeMap::new();
        for (name, spec) in schema.fields() {
            if let Some(d) = &spec.default {
                merged.insert(name.clone(), Merged::Public(d.clone()));
            }
        }
        let levels = [
            (TenantId::platform(), &integration.defaults, &integration.defaults_meta),
            (tenant.clone(), overrides.0, overrides.1),
        ];
        for (owner, public, meta) in levels {
            for (k, v) in public {
                merged.insert(k.clone(), Merged::Public(v.clone()));
            }
            for k in secret_keys(meta) {
                let path = SecretPath::config_field(&key, k);
                merged.insert(k.clone(), Merged::Secret { tenant: owner.to_string(), path });
            }
        }
        if let Some(c) = credential {
            merged.insert("accessToken".into(), Merged::AccessToken);
            merged.insert("tokenType".into(), Merged::Public(Value::String(c.token_type.clone())));
        }
        let mut doc = SecretJson::new();
        for (k, entry) in merged {
            match entry {
                Merged::Public(v) => doc.public(&k, &v),
                Merged::Secret { tenant, path } => {
                    let revealed = reader.latest_secret(&tenant, path.as_str()).await?;
                    doc.raw(&k, &revealed.plaintext);
                }
                Merged::AccessToken => {
                    let tokens = reader.tokens(tenant, &key).await?;
                    doc.raw(&k, &tokens.access_json());
                }
            }
        }
        Ok(doc)
    }

    /// `GET /configs?tenantId=&integration=`: defaults and overrides, secrets masked.
    pub async fn list_configs(
        &self,
        ctx: &Ctx,
        tenant: Option<&str>,
        integration: Option<&str>,
    ) -> Result<ConfigList, ServiceError> {
        let tenant = match (tenant, &ctx.principal.tenant) {
            (Some(t), _) => {
                let t = TenantId::parse(t)?;
                self.allow_tenant(ctx, &t).await?;
                Some(t)
            }
            (None, Some(own)) => Some(own.clone()),
            (None, None) => {
                self.allow_admin(ctx).await?;
                None
            }
        };
        let mut tx = self.store.begin_read().await?;
        if let Some(t) = &tenant {
            Self::require_tenant(tx.as_mut(), t).await?;
        }
        let mut integrations = tx.list_integrations().await?;
        if let Some(only) = integration {
            integrations.retain(|i| i.key == only);
        }
        let mut configs = Vec::new();
        for i in &integrations {
            let schema = &i.config_schema;
            push_entries(&mut configs, i, schema, None, &i.defaults, &i.defaults_meta);
            let connections = match &tenant {
                Some(t) => tx.get_connection(t.as_str(), &i.key).await?.into_iter().collect(),
                None => tx.find_connections(&i.key, &[]).await?,
            };
            for c in &connections {
                push_entries(&mut configs, i, schema, Some(&c.tenant_id), &c.config, &c.config_meta);
            }
        }
        tx.commit().await?;
        Ok(ConfigList { configs })
    }
}

fn push_entries(
    out: &mut Vec<ConfigEntry>,
    integration: &IntegrationRecord,
    schema: &ConfigSchema,
    tenant: Option<&str>,
    public: &Map<String, Value>,
    meta: &ConfigMeta,
) {
    let mut keys: Vec<&String> = keys_set(public, meta).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let m = meta.get(key);
        // Masked when the schema says secret, even for a value still stored in
        // plain config from before the field became secret (until backfill).
        let secret = schema.is_secret(key) || m.is_some_and(|m| m.secret);
        let (value, field_type) = if secret {
            (json!(MASK), "secret".to_owned())
        } else {
            let t = schema.field(key).map_or("string", |f| f.field_type.as_str());
            (public.get(key).cloned().unwrap_or(Value::Null), t.to_owned())
        };
        out.push(ConfigEntry {
            key: key.clone(),
            value,
            field_type,
            scope: if tenant.is_some() { "tenant" } else { "global" }.to_owned(),
            tenant_id: tenant.map(str::to_owned),
            integration_key: integration.key.clone(),
            integration_name: integration.name.clone(),
            updated_at: m.and_then(|m| m.updated_at.clone()),
            updated_by: m.and_then(|m| m.updated_by.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ConfigSchema {
        ConfigSchema::from_input(&json!([
            {"key": "base_url", "type": "string", "required": true},
            {"key": "api_key", "type": "secret", "required": true},
            {"key": "timeout", "type": "int", "default": 30},
        ]))
        .expect("valid")
    }

    #[test]
    fn secrets_are_split_out_and_never_kept_in_the_public_map() {
        let (mut public, mut meta) = (Map::new(), ConfigMeta::new());
        let input = json!({"base_url": "https://x", "api_key": "sk_1"});
        let ops = apply_change(&schema(), input.as_object().expect("obj"), &mut public, &mut meta, "k", Utc::now())
            .expect("valid");
        assert_eq!(public, *json!({"base_url": "https://x"}).as_object().expect("obj"));
        assert!(matches!(&ops[..], [SecretOp::Put(k, v)] if k == "api_key" && v == "sk_1"));
        assert!(meta["api_key"].secret);
    }

    #[test]
    fn an_empty_value_removes_the_override_and_its_secret() {
        let (mut public, mut meta) = (Map::new(), ConfigMeta::new());
        let first = json!({"base_url": "https://x", "api_key": "sk_1"});
        apply_change(&schema(), first.as_object().expect("obj"), &mut public, &mut meta, "k", Utc::now())
            .expect("valid");
        let clear = json!({"base_url": "", "api_key": null});
        let ops = apply_change(&schema(), clear.as_object().expect("obj"), &mut public, &mut meta, "k", Utc::now())
            .expect("valid");
        assert!(public.is_empty() && meta.is_empty());
        assert!(matches!(&ops[..], [SecretOp::Delete(k)] if k == "api_key"));
    }

    #[test]
    fn an_invalid_value_changes_nothing() {
        let (mut public, mut meta) = (Map::new(), ConfigMeta::new());
        let input = json!({"base_url": "https://x", "timeout": "slow"});
        // SecretOp has no Debug (it carries secret values), so match instead of expect_err.
        let Err(e) = apply_change(&schema(), input.as_object().expect("obj"), &mut public, &mut meta, "k", Utc::now())
        else {
            panic!("a bad type must be refused")
        };
        assert_eq!(e.field.as_deref(), Some("config.timeout"));
        assert!(public.is_empty() && meta.is_empty());
    }

    #[test]
    fn required_fields_may_come_from_any_level_or_a_schema_default() {
        let s = schema();
        let (empty, no_meta) = (Map::new(), ConfigMeta::new());
        let defaults = json!({"base_url": "https://d"});
        let tenant_meta: ConfigMeta =
            serde_json::from_value(json!({"api_key": {"secret": true}})).expect("stored metadata parses");
        let levels = [(defaults.as_object().expect("obj"), &no_meta), (&empty, &tenant_meta)];
        assert!(check_required(&s, &levels).is_ok());
        let e = check_required(&s, &[(defaults.as_object().expect("obj"), &no_meta)]).expect_err("api_key missing");
        assert_eq!(e.field.as_deref(), Some("config.api_key"));
    }
}
