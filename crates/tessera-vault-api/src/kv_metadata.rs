//! KV v2's metadata side: a secret's metadata and version settings
//! (`metadata/<path>`), its key structure (`subkeys/<path>`), and the
//! mount's settings (`config`), in Vault's shapes and with Vault's
//! sentences for fields that do not convert. The rules behind them (how
//! the settings combine, what they do to writes) are the service's.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use tessera_core::ports::KvSettings;
use tessera_core::service::{KvConfigChange, SecretMetadataChange};
use tessera_core::Tessera;

use crate::caller::Caller;
use crate::fields::{self, conversion_error, go_duration_text};
use crate::kv::{param, version_metadata, version_param, Req};
use crate::reply;

/// Vault's warning when a secret turns off check-and-set its mount requires.
const CAS_MANDATED: &str =
    "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored.";

impl Req<'_> {
    /// `GET metadata/<p>`: versions with their deletion times, custom
    /// metadata and the secret's own settings (zeros: not set, as Vault shows).
    pub(crate) async fn metadata(&self) -> Response {
        let meta = match self.svc.secret_kv_metadata(&self.caller.ctx, self.tenant, self.path).await {
            Ok(m) => m,
            Err(e) => return reply::service_error(&e),
        };
        let versions: Map<String, Value> = meta
            .view
            .versions
            .iter()
            .map(|v| {
                let at = json!({
                    "created_time": v.created_at,
                    "deletion_time": v.deleted_at.as_deref().unwrap_or_default(),
                    "destroyed": v.destroyed,
                });
                (v.version.to_string(), at)
            })
            .collect();
        let data = json!({
            "cas_required": meta.settings.cas_required,
            "created_time": meta.view.created_at,
            "current_version": meta.view.current_version,
            "custom_metadata": meta.custom_metadata,
            "delete_version_after": go_duration_text(meta.settings.delete_version_after),
            "max_versions": meta.settings.max_versions,
            "oldest_version": meta.oldest_version,
            "updated_time": meta.view.updated_at,
            "versions": versions,
        });
        reply::envelope(StatusCode::OK, self.caller.request_id(), &data, "kv")
    }

    /// `POST metadata/<p>`: `max_versions`, `cas_required`,
    /// `delete_version_after` and `custom_metadata`, each only if sent.
    pub(crate) async fn write_metadata(&self, body: &Bytes) -> Response {
        let Some(doc) = fields::body(body) else { return reply::bad_json() };
        let change = match metadata_change(&doc) {
            Ok(c) => c,
            Err(message) => return reply::errors(StatusCode::BAD_REQUEST, &[message.as_str()]),
        };
        match self.svc.set_secret_metadata(&self.caller.ctx, self.tenant, self.path, change).await {
            Ok(set) if set.cas_required_by_mount => {
                reply::warned(StatusCode::OK, self.caller.request_id(), &Value::Null, &[CAS_MANDATED], "kv")
            }
            Ok(_) => reply::no_content(),
            Err(e) => reply::service_error(&e),
        }
    }

    /// `GET subkeys/<p>[?version=N&depth=D]`: the keys, leaves `null`, with
    /// the version's metadata; a deleted or destroyed version is a 404 with
    /// its metadata and `"subkeys": null`, as Vault answers.
    pub(crate) async fn subkeys(&self, query: &str) -> Response {
        let version = match version_param(query) {
            Ok(v) => v,
            Err(message) => return reply::field_invalid(&message),
        };
        let depth = match fields::int(param(query, "depth").map(Value::String).as_ref()) {
            // Vault's walk with a negative depth stops at the first level, as with 1.
            Ok(d) => d.map_or(0, |d| if d < 0 { 1 } else { u32::try_from(d).unwrap_or(u32::MAX) }),
            Err(why) => return reply::field_invalid(&conversion_error("depth", &why)),
        };
        let read = match self.svc.secret_subkeys(&self.caller.ctx, self.tenant, self.path, version, depth).await {
            Ok(r) => r,
            Err(e) => return reply::service_error(&e),
        };
        let mut meta = version_metadata(&read.created_at, read.deleted_at.as_deref(), read.destroyed, read.version);
        meta["custom_metadata"] = json!(read.custom_metadata);
        let status = if read.subkeys.is_some() { StatusCode::OK } else { StatusCode::NOT_FOUND };
        let data = json!({ "metadata": meta, "subkeys": read.subkeys });
        reply::envelope(status, self.caller.request_id(), &data, "kv")
    }
}

/// The fields of a metadata write, read as Vault reads them.
fn metadata_change(doc: &Map<String, Value>) -> Result<SecretMetadataChange, String> {
    let max_versions = fields::non_negative("max_versions", fields::int, doc)?;
    let cas_required = fields::bool(doc.get("cas_required")).map_err(|why| conversion_error("cas_required", &why))?;
    let delete_version_after = fields::non_negative("delete_version_after", fields::duration_secs, doc)?;
    let custom_metadata = match doc.get("custom_metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Some((k.clone(), s.clone())),
                    // Vault's weak decoding makes numbers and booleans strings.
                    Value::Number(n) => Some((k.clone(), n.to_string())),
                    Value::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect::<Option<BTreeMap<_, _>>>()
                .ok_or_else(|| "custom_metadata must map strings to strings".to_owned())?,
        ),
        Some(_) => return Err("custom_metadata must map strings to strings".to_owned()),
    };
    Ok(SecretMetadataChange { max_versions, cas_required, delete_version_after, custom_metadata })
}

/// `GET`/`POST <mount>/config`: the tenant's KV mount settings.
pub(crate) async fn config(svc: &Tessera, caller: &Caller, tenant: &str, method: &str, body: &Bytes) -> Response {
    match method {
        "GET" => match svc.kv_config(&caller.ctx, tenant).await {
            Ok(config) => reply::envelope(StatusCode::OK, caller.request_id(), &config_view(&config), "kv"),
            Err(e) => reply::service_error(&e),
        },
        "PUT" | "POST" => {
            let Some(doc) = fields::body(body) else { return reply::bad_json() };
            let change = match config_change(&doc) {
                Ok(c) => c,
                Err(message) => return reply::field_invalid(&message),
            };
            match svc.set_kv_config(&caller.ctx, tenant, change).await {
                Ok(()) => reply::no_content(),
                Err(e) => reply::service_error(&e),
            }
        }
        _ => reply::unsupported(),
    }
}

fn config_view(config: &KvSettings) -> Value {
    json!({
        "cas_required": config.cas_required,
        "delete_version_after": go_duration_text(config.delete_version_after),
        "max_versions": config.max_versions,
    })
}

fn config_change(doc: &Map<String, Value>) -> Result<KvConfigChange, String> {
    Ok(KvConfigChange {
        max_versions: fields::non_negative("max_versions", fields::int, doc)?,
        cas_required: fields::bool(doc.get("cas_required")).map_err(|why| conversion_error("cas_required", &why))?,
        // A negative mount-wide value is allowed: it turns the setting off.
        delete_version_after: fields::duration_secs(doc.get("delete_version_after"))
            .map_err(|why| conversion_error("delete_version_after", &why))?,
    })
}
