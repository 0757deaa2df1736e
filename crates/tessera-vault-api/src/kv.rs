//! KV v2 at the mount, over the tenant's own secrets:
//!
//! | Vault | Tessera's use case |
//! | --- | --- |
//! | `GET data/<p>[?version=N]` | `read_secret_version` (a deleted or destroyed version: 404 with its metadata, as Vault) |
//! | `PUT`/`POST data/<p>` `{"data", "options": {"cas"}}` | `put_secret_kv` with check-and-set |
//! | `PATCH data/<p>` | `patch_secret` (JSON merge patch) |
//! | `DELETE data/<p>` | `delete_secret` (the newest version) |
//! | `POST delete/<p>`, `undelete/<p>`, `destroy/<p>` `{"versions"}` | `delete_secret`, `undelete_secret`, `destroy_secret` |
//! | `GET metadata/<p>` | `secret_kv_metadata` |
//! | `LIST metadata/<p>`, `GET ...?list=true` | `list_secrets`, folded to one level as Vault lists |
//! | `POST metadata/<p>` `{"max_versions", "cas_required", "delete_version_after", "custom_metadata"}` | `set_secret_metadata` |
//! | `DELETE metadata/<p>` | `remove_secret` (every version) |
//! | `GET subkeys/<p>[?version=N&depth=D]` | `secret_subkeys` |
//! | `GET`/`POST config` | `kv_config`, `set_kv_config` |
//!
//! KV v2's `data` (an object of fields) is a Tessera `data` secret; a
//! Tessera `value` secret reads as `{"value": <its value>}`. Metadata,
//! settings and subkeys are in [`crate::kv_metadata`].

use std::collections::BTreeSet;
use tessera_core::ErrorCode;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tessera_core::secret_json::SecretJson;
use tessera_core::service::{KvWritten, SecretPayload, SecretWrite};
use tessera_core::Tessera;

use crate::caller::Caller;
use crate::{kv_metadata, reply, VaultState};

/// Answers one KV v2 request; `rest` is the path after the mount.
pub(crate) async fn handle(state: &VaultState, caller: &Caller, parts: &Parts, rest: &str, body: &Bytes) -> Response {
    let (op, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(op, "data" | "metadata" | "delete" | "undelete" | "destroy" | "subkeys" | "config") {
        return reply::no_handler(&format!("{}/{rest}", state.opts.mount));
    }
    let Some(tenant) = caller.tenant() else { return reply::no_tenant() };
    let svc = state.svc.as_ref();
    let query = parts.uri.query().unwrap_or_default();
    if rest == "config" {
        return kv_metadata::config(svc, caller, &tenant, parts.method.as_str(), body).await;
    }
    let listing = op == "metadata"
        && (parts.method.as_str() == "LIST"
            || (parts.method == "GET" && param(query, "list").as_deref() == Some("true")));
    if listing {
        return list(svc, caller, &tenant, path).await;
    }
    if path.is_empty() {
        return reply::no_handler(&format!("{}/{rest}", state.opts.mount));
    }
    let req = Req { svc, caller, tenant: &tenant, path };
    match (op, parts.method.as_str()) {
        ("data", "GET") => req.read(query).await,
        ("data", "PUT" | "POST") => req.write(body, false).await,
        ("data", "PATCH") => match merge_patch_refusal(parts) {
            None => req.write(body, true).await,
            Some(refused) => refused,
        },
        ("data", "DELETE") => idempotent(svc.delete_secret(&caller.ctx, &tenant, path, None).await),
        ("metadata", "GET") => req.metadata().await,
        ("subkeys", "GET") => req.subkeys(query).await,
        ("metadata", "PUT" | "POST") => req.write_metadata(body).await,
        ("metadata", "DELETE") => idempotent(svc.remove_secret(&caller.ctx, &tenant, path).await),
        ("delete" | "undelete" | "destroy", "PUT" | "POST") => req.versions(op, body).await,
        _ => reply::unsupported(),
    }
}

/// One request about one secret path.
pub(crate) struct Req<'a> {
    pub(crate) svc: &'a Tessera,
    pub(crate) caller: &'a Caller,
    pub(crate) tenant: &'a str,
    pub(crate) path: &'a str,
}

impl Req<'_> {
    async fn read(&self, query: &str) -> Response {
        let version = match version_param(query) {
            Ok(v) => v,
            Err(message) => return reply::field_invalid(&message),
        };
        let read = match self.svc.read_secret_version(&self.caller.ctx, self.tenant, self.path, version).await {
            Ok(r) => r,
            Err(e) => return reply::service_error(&e),
        };
        let mut data = SecretJson::new();
        let status = match &read.plaintext {
            Some(fields) if read.kind == "data" => {
                data.raw("data", fields);
                StatusCode::OK
            }
            Some(one) => {
                let mut wrapped = SecretJson::new();
                wrapped.raw("value", one);
                data.object("data", wrapped);
                StatusCode::OK
            }
            // Vault answers a deleted or destroyed version with its metadata and a 404.
            None => {
                data.public("data", &Value::Null);
                StatusCode::NOT_FOUND
            }
        };
        let mut meta = version_metadata(&read.created_at, read.deleted_at.as_deref(), read.destroyed, read.version);
        meta["custom_metadata"] = json!(read.custom_metadata);
        data.public("metadata", &meta);
        reply::secret_envelope(status, self.caller.request_id(), data, "kv")
    }

    /// A write (`{"data", "options": {"cas"}}`), or with `patch` a merge patch of the fields.
    async fn write(&self, body: &Bytes, patch: bool) -> Response {
        let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(body) else {
            return reply::bad_json();
        };
        let cas = match doc.get("options").and_then(|o| o.get("cas")) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(n),
                None => return reply::errors(StatusCode::BAD_REQUEST, &["invalid cas parameter"]),
            },
        };
        let Some(Value::Object(fields)) = doc.remove("data") else {
            return reply::errors(StatusCode::BAD_REQUEST, &["no data provided"]);
        };
        let ctx = &self.caller.ctx;
        let written = if patch {
            self.svc.patch_secret(ctx, self.tenant, self.path, fields, cas).await
        } else {
            let write = SecretWrite { payload: SecretPayload::Data(fields), cas, rotate_after_days: None };
            self.svc.put_secret_kv(ctx, self.tenant, self.path, write, true).await
        };
        match written {
            Ok(KvWritten { version, created_at, deletion_time, custom_metadata, .. }) => {
                // Vault's write answer shows the secret's custom metadata too.
                let mut meta = version_metadata(&created_at, deletion_time.as_deref(), false, version);
                meta["custom_metadata"] = json!(custom_metadata);
                reply::envelope(StatusCode::OK, self.caller.request_id(), &meta, "kv")
            }
            // Vault answers a patch of nothing readable with a bare 404.
            Err(e) if patch && e.kind == tessera_core::ErrorKind::NotFound && e.code != ErrorCode::TenantNotFound => {
                StatusCode::NOT_FOUND.into_response()
            }
            Err(e) => reply::service_error(&e),
        }
    }

    /// `delete/`, `undelete/`, `destroy/` with `{"versions": [...]}`: numbers,
    /// or the strings the CLI sends (`-versions=1,2`).
    async fn versions(&self, op: &str, body: &Bytes) -> Response {
        let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let versions = match parse_versions(&doc["versions"]) {
            Some(v) if !v.is_empty() => v,
            Some(_) | None => return reply::errors(StatusCode::BAD_REQUEST, &["No version number provided"]),
        };
        let ctx = &self.caller.ctx;
        let done = match op {
            "delete" => self.svc.delete_secret(ctx, self.tenant, self.path, Some(versions)).await,
            "undelete" => self.svc.undelete_secret(ctx, self.tenant, self.path, versions).await,
            _ => self.svc.destroy_secret(ctx, self.tenant, self.path, versions).await,
        };
        idempotent(done)
    }
}

/// `LIST metadata/<folder>`: the folder's direct children, sub-folders
/// ending in `/`, as Vault lists; an empty folder is a 404.
async fn list(svc: &Tessera, caller: &Caller, tenant: &str, folder: &str) -> Response {
    let prefix = match folder.trim_end_matches('/') {
        "" => String::new(),
        f => format!("{f}/"),
    };
    let listed = match svc.list_secrets(&caller.ctx, tenant, &prefix).await {
        Ok(l) => l,
        Err(e) => return reply::service_error(&e),
    };
    let keys: BTreeSet<String> = listed
        .paths
        .iter()
        .filter_map(|p| p.strip_prefix(prefix.as_str()))
        .map(|rest| match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_owned(),
        })
        .collect();
    if keys.is_empty() {
        return reply::not_found();
    }
    reply::envelope(StatusCode::OK, caller.request_id(), &json!({ "keys": keys }), "kv")
}

/// `?version=N` (0, negative or none: the newest); a value that does not
/// convert gives Vault's sentence for it (see [`reply::field_invalid`]).
pub(crate) fn version_param(query: &str) -> Result<Option<u32>, String> {
    match crate::fields::int(param(query, "version").map(Value::String).as_ref()) {
        Ok(Some(n)) if n > 0 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        Ok(_) => Ok(None),
        Err(why) => Err(crate::fields::conversion_error("version", &why)),
    }
}

/// Vault's per-version metadata.
pub(crate) fn version_metadata(created: &str, deleted: Option<&str>, destroyed: bool, version: u32) -> Value {
    json!({
        "created_time": created,
        "custom_metadata": Value::Null,
        "deletion_time": deleted.unwrap_or_default(),
        "destroyed": destroyed,
        "version": version,
    })
}

/// Changing what is not there succeeds, as in Vault: deleting a missing
/// secret, or deleting, undeleting or destroying a version it does not have.
fn idempotent(done: Result<(), tessera_core::ServiceError>) -> Response {
    match done {
        Ok(()) => reply::no_content(),
        Err(e) if matches!(e.code.as_str(), "secret_not_found" | "version_not_found") => reply::no_content(),
        Err(e) => reply::service_error(&e),
    }
}

fn parse_versions(v: &Value) -> Option<Vec<u32>> {
    let one = |v: &Value| match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).map(|n| vec![n]),
        Value::String(s) => s.split(',').map(|p| p.trim().parse::<u32>().ok()).collect(),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect::<Option<Vec<_>>>().map(|v| v.concat()),
        other => one(other),
    }
}

/// Vault takes a patch only as `application/merge-patch+json` (RFC 7396).
fn merge_patch_refusal(parts: &Parts) -> Option<Response> {
    let sent = parts.headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if sent.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/merge-patch+json") {
        return None;
    }
    let message = format!("PATCH requires Content-Type of application/merge-patch+json, provided {sent}");
    Some(reply::errors(StatusCode::UNSUPPORTED_MEDIA_TYPE, &[message.as_str()]))
}

/// A query parameter's value.
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
