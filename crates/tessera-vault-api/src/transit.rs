//! Transit at `transit/`, over the tenant's own Transit keys:
//! `keys/<name>` (create, read, delete), `keys/<name>/rotate`,
//! `keys/<name>/config`, `export/{encryption-key,hmac-key}/<name>[/<version>]`,
//! `encrypt/<name>`, `decrypt/<name>`, `rewrap/<name>`,
//! `datakey/{plaintext,wrapped}/<name>`, each with Vault's single or
//! `batch_input` form. Plaintexts travel as base64, as in Vault; decrypted
//! ones and exported keys are built in zeroizing buffers.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tessera_core::secret_json::SecretJson;
use tessera_core::service::{Sealed, TransitExportKind, TransitKeyConfig, TransitKeyView};
use tessera_core::{ErrorCode, ServiceError, Tessera};
use zeroize::Zeroizing;

use crate::caller::Caller;
use crate::{fields, reply};

/// The mount Transit is served at.
pub(crate) const MOUNT: &str = "transit";

/// Answers one Transit request; `rest` is the path after `transit/`.
pub(crate) async fn handle(svc: &Tessera, caller: &Caller, method: &str, rest: &str, body: &Bytes) -> Response {
    let Some(tenant) = caller.tenant() else { return reply::no_tenant() };
    let segments: Vec<&str> = rest.split('/').collect();
    let writes = matches!(method, "POST" | "PUT");
    let ctx = &caller.ctx;
    let Some(doc) = fields::body(body) else { return reply::bad_json() };
    let rid = caller.request_id();
    match (segments.as_slice(), writes, method) {
        (["keys", name], true, _) => key_answer(rid, svc.create_transit_key(ctx, &tenant, name).await),
        (["keys", name], false, "GET") => key_answer(rid, svc.read_transit_key(ctx, &tenant, name).await),
        (["keys", name], false, "DELETE") => match svc.delete_transit_key(ctx, &tenant, name).await {
            Ok(()) => reply::no_content(),
            Err(e) => reply::service_error(&e),
        },
        (["keys", name, "rotate"], true, _) => key_answer(rid, svc.rotate_transit_key(ctx, &tenant, name).await),
        (["keys", name, "config"], true, _) => match key_config(&doc) {
            Ok(config) => match svc.configure_transit_key(ctx, &tenant, name, &config).await {
                Ok((view, warning)) => key_answer_warned(rid, &view, warning),
                Err(e) => reply::service_error(&e),
            },
            Err(message) => reply::field_invalid(&message),
        },
        (["export", kind, name], false, "GET") => export(svc, caller, &tenant, kind, name, None).await,
        (["export", kind, name, version], false, "GET") => {
            export(svc, caller, &tenant, kind, name, Some(version)).await
        }
        (["encrypt", name], true, _) => encrypt(svc, caller, &tenant, name, &doc).await,
        (["decrypt", name], true, _) => decrypt(svc, caller, &tenant, name, &doc).await,
        (["rewrap", name], true, _) => rewrap(svc, caller, &tenant, name, &doc).await,
        (["datakey", kind @ ("plaintext" | "wrapped"), name], true, _) => {
            match svc.transit_datakey(ctx, &tenant, name).await {
                Ok(out) => {
                    let mut data = SecretJson::new();
                    data.public("ciphertext", &json!(out.ciphertext));
                    data.public("key_version", &json!(out.key_version));
                    if *kind == "plaintext" {
                        data.raw("plaintext", &base64_json(&out.plaintext));
                    }
                    reply::secret_envelope(StatusCode::OK, rid, data, MOUNT)
                }
                Err(e) => reply::service_error(&e),
            }
        }
        (["keys" | "encrypt" | "decrypt" | "rewrap" | "datakey" | "export", ..], _, _) => reply::unsupported(),
        _ => reply::no_handler(&format!("{MOUNT}/{rest}")),
    }
}

fn key_answer(request_id: &str, view: Result<TransitKeyView, ServiceError>) -> Response {
    match view {
        Ok(v) => key_answer_warned(request_id, &v, None),
        Err(e) => reply::service_error(&e),
    }
}

/// A key as Vault's `GET keys/<name>` shows it (never key material).
fn key_answer_warned(request_id: &str, view: &TransitKeyView, warning: Option<&str>) -> Response {
    let keys: Map<String, Value> = view.keys.iter().map(|(v, at)| (v.to_string(), json!(at))).collect();
    let data = json!({
        "allow_plaintext_backup": view.allow_plaintext_backup,
        "auto_rotate_period": 0,
        "deletion_allowed": view.deletion_allowed,
        "derived": false,
        "exportable": view.exportable,
        "imported_key": false,
        "keys": keys,
        "latest_version": view.latest_version,
        "min_available_version": 0,
        "min_decryption_version": view.min_decryption_version,
        "min_encryption_version": view.min_encryption_version,
        "name": view.name,
        "supports_decryption": true,
        "supports_derivation": true,
        "supports_encryption": true,
        "supports_signing": false,
        "type": KEY_TYPE,
    });
    let warnings: Vec<&str> = warning.into_iter().collect();
    reply::warned(StatusCode::OK, request_id, &data, &warnings, MOUNT)
}

/// The one key type Tessera's Transit keys have.
const KEY_TYPE: &str = "aes256-gcm96";

/// The fields of `keys/<name>/config`, read as Vault reads them.
fn key_config(doc: &Map<String, Value>) -> Result<TransitKeyConfig, String> {
    let int = |f: &str| fields::int(doc.get(f)).map_err(|why| fields::conversion_error(f, &why));
    let flag = |f: &str| fields::bool(doc.get(f)).map_err(|why| fields::conversion_error(f, &why));
    Ok(TransitKeyConfig {
        min_decryption_version: int("min_decryption_version")?,
        min_encryption_version: int("min_encryption_version")?,
        deletion_allowed: flag("deletion_allowed")?,
        exportable: flag("exportable")?,
        allow_plaintext_backup: flag("allow_plaintext_backup")?,
    })
}

/// `GET export/<kind>/<name>[/<version>]`: the key material of an
/// exportable key, written straight into a zeroizing buffer.
async fn export(
    svc: &Tessera,
    caller: &Caller,
    tenant: &str,
    kind: &str,
    name: &str,
    version: Option<&str>,
) -> Response {
    let kind = match kind {
        "encryption-key" => TransitExportKind::Encryption,
        "hmac-key" => TransitExportKind::Hmac,
        "signing-key" => TransitExportKind::Signing,
        // Material an AES key does not have; not key material, so no export check applies (as in Vault).
        public @ ("public-key" | "certificate-chain") => {
            if let Err(e) = svc.read_transit_key(&caller.ctx, tenant, name).await {
                return reply::service_error(&e);
            }
            return if public == "public-key" {
                let message =
                    format!("1 error occurred:\n\t* unknown key type {KEY_TYPE} for export type public-key\n\n");
                reply::errors(StatusCode::INTERNAL_SERVER_ERROR, &[message.as_str()])
            } else {
                reply::errors(
                    StatusCode::BAD_REQUEST,
                    &["certificate chain not supported for keys that do not support signing"],
                )
            };
        }
        other => {
            let message = format!("invalid export type: {other}");
            return reply::errors(StatusCode::BAD_REQUEST, &[message.as_str()]);
        }
    };
    let exported = match svc.export_transit_key(&caller.ctx, tenant, name, kind, version).await {
        Ok(e) => e,
        Err(e) => return reply::service_error(&e),
    };
    let mut keys = SecretJson::new();
    for (v, text) in &exported.keys {
        let mut quoted = Zeroizing::new(Vec::with_capacity(text.len() + 2));
        quoted.push(b'"');
        quoted.extend_from_slice(text.as_bytes()); // base64: nothing to escape
        quoted.push(b'"');
        keys.raw(&v.to_string(), &quoted);
    }
    let mut data = SecretJson::new();
    data.object("keys", keys);
    data.public("name", &json!(exported.name));
    data.public("type", &json!(KEY_TYPE));
    reply::secret_envelope(StatusCode::OK, caller.request_id(), data, MOUNT)
}

/// The items of a request: `batch_input` entries, or the body itself.
fn items(doc: &Map<String, Value>) -> (Vec<&Map<String, Value>>, bool) {
    match doc.get("batch_input").and_then(Value::as_array) {
        Some(batch) => (batch.iter().filter_map(Value::as_object).collect(), true),
        None => (vec![doc], false),
    }
}

fn key_version(doc: &Map<String, Value>) -> Option<u32> {
    doc.get("key_version").and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0)
}

fn reference(item: &Map<String, Value>) -> Value {
    item.get("reference").cloned().unwrap_or_else(|| json!(""))
}

async fn encrypt(svc: &Tessera, caller: &Caller, tenant: &str, name: &str, doc: &Map<String, Value>) -> Response {
    let (items, batch) = items(doc);
    // Plaintexts that are not base64 fail alone, as in Vault's batches.
    let decoded: Vec<Result<Zeroizing<Vec<u8>>, ServiceError>> = items
        .iter()
        .map(|i| {
            let text = i.get("plaintext").and_then(Value::as_str).unwrap_or_default();
            STANDARD.decode(text).map(Zeroizing::new).map_err(|_| {
                ServiceError::invalid(ErrorCode::InvalidBody, "illegal base64 data in plaintext", Some("plaintext"))
            })
        })
        .collect();
    if !batch {
        if let Some(Err(e)) = decoded.first() {
            return reply::errors(StatusCode::BAD_REQUEST, &[e.message.as_str()]);
        }
    }
    let good: Vec<Zeroizing<Vec<u8>>> = decoded.iter().filter_map(|d| d.as_ref().ok().cloned()).collect();
    let mut sealed = match svc.transit_encrypt(&caller.ctx, tenant, name, &good, key_version(doc)).await {
        Ok(s) => s.into_iter(),
        Err(e) => return reply::service_error(&e),
    };
    let results: Vec<Sealed> = decoded
        .into_iter()
        .map(|d| match d {
            Ok(_) => sealed.next().unwrap_or_else(|| Err(ServiceError::internal("a batch item has no result"))),
            Err(e) => Err(e),
        })
        .collect();
    sealed_answer(caller, &items, batch, results)
}

async fn rewrap(svc: &Tessera, caller: &Caller, tenant: &str, name: &str, doc: &Map<String, Value>) -> Response {
    let (items, batch) = items(doc);
    let texts = ciphertexts(&items);
    match svc.transit_rewrap(&caller.ctx, tenant, name, &texts, key_version(doc)).await {
        Ok(sealed) => sealed_answer(caller, &items, batch, sealed),
        Err(e) => reply::service_error(&e),
    }
}

fn sealed_answer(caller: &Caller, items: &[&Map<String, Value>], batch: bool, results: Vec<Sealed>) -> Response {
    if !batch {
        return match results.into_iter().next() {
            Some(Ok((ciphertext, v))) => reply::envelope(
                StatusCode::OK,
                caller.request_id(),
                &json!({"ciphertext": ciphertext, "key_version": v}),
                MOUNT,
            ),
            Some(Err(e)) => reply::errors(StatusCode::BAD_REQUEST, &[e.message.as_str()]),
            None => reply::errors(StatusCode::BAD_REQUEST, &["missing plaintext"]),
        };
    }
    let status = batch_status(results.iter().any(Result::is_err));
    let out: Vec<Value> = results
        .into_iter()
        .zip(items)
        .map(|(r, item)| match r {
            Ok((ciphertext, v)) => json!({"ciphertext": ciphertext, "key_version": v, "reference": reference(item)}),
            Err(e) => json!({"error": e.message, "reference": reference(item)}),
        })
        .collect();
    reply::envelope(status, caller.request_id(), &json!({ "batch_results": out }), MOUNT)
}

/// A batch with any failed item is answered 400 (with every item's result), as Vault does.
fn batch_status(any_failed: bool) -> StatusCode {
    if any_failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

fn ciphertexts(items: &[&Map<String, Value>]) -> Vec<String> {
    items.iter().map(|i| i.get("ciphertext").and_then(Value::as_str).unwrap_or_default().to_owned()).collect()
}

async fn decrypt(svc: &Tessera, caller: &Caller, tenant: &str, name: &str, doc: &Map<String, Value>) -> Response {
    let (items, batch) = items(doc);
    let opened = match svc.transit_decrypt(&caller.ctx, tenant, name, &ciphertexts(&items)).await {
        Ok(o) => o,
        Err(e) => return reply::service_error(&e),
    };
    let mut data = SecretJson::new();
    if !batch {
        match opened.into_iter().next() {
            Some(Ok(plaintext)) => data.raw("plaintext", &base64_json(&plaintext)),
            Some(Err(e)) => return reply::errors(StatusCode::BAD_REQUEST, &[e.message.as_str()]),
            None => return reply::errors(StatusCode::BAD_REQUEST, &["missing ciphertext"]),
        }
        return reply::secret_envelope(StatusCode::OK, caller.request_id(), data, MOUNT);
    }
    let status = batch_status(opened.iter().any(Result::is_err));
    // `[{...},{...}]` built in the zeroizing buffer: each entry an object.
    let mut list = Zeroizing::new(b"[".to_vec());
    for (i, (r, item)) in opened.into_iter().zip(&items).enumerate() {
        if i > 0 {
            list.push(b',');
        }
        let mut entry = SecretJson::new();
        match r {
            Ok(plaintext) => entry.raw("plaintext", &base64_json(&plaintext)),
            Err(e) => {
                entry.public("plaintext", &json!(""));
                entry.public("error", &json!(e.message));
            }
        }
        entry.public("reference", &reference(item));
        list.extend_from_slice(&entry.finish());
    }
    list.push(b']');
    data.raw("batch_results", &list);
    reply::secret_envelope(status, caller.request_id(), data, MOUNT)
}

/// `"<base64>"` as JSON text, in a zeroizing buffer (base64 needs no escaping).
fn base64_json(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let encoded = Zeroizing::new(STANDARD.encode(bytes));
    let mut out = Zeroizing::new(Vec::with_capacity(encoded.len() + 2));
    out.push(b'"');
    out.extend_from_slice(encoded.as_bytes());
    out.push(b'"');
    out
}
