//! What a Vault client asks before its real work: `sys/health` (is the
//! server up and unsealed), `auth/token/lookup-self` (is my token valid), and
//! `sys/internal/ui/mounts/<path>` (which engine and KV version serves this
//! path: the CLI reads KV v2 paths only once told `version: 2`).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tessera_core::Tessera;

use crate::caller::Caller;
use crate::reply;

/// `GET /v1/sys/health`: unauthenticated, like Vault's. Tessera has no seal;
/// a store or key provider that does not answer is reported as Vault reports
/// a server that cannot serve (503, sealed).
pub(crate) async fn health(svc: &Tessera, method: &Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return reply::unsupported();
    }
    let ready = svc.ready().await.is_ok();
    let body = json!({
        "initialized": true,
        "sealed": !ready,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": chrono::Utc::now().timestamp(),
        "version": concat!("tessera-", env!("CARGO_PKG_VERSION")),
        "cluster_name": "tessera",
        "cluster_id": "",
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let bytes = serde_json::to_vec(&body).expect("JSON serialises");
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// `auth/token/lookup-self`: the key's id, role and tenant in Vault's token
/// shape. `id` is the key's id, never the key itself.
pub(crate) fn lookup_self(caller: &Caller, method: &Method) -> Response {
    if method != Method::GET && method != Method::POST {
        return reply::unsupported();
    }
    let p = &caller.ctx.principal;
    let tenant = p.tenant.as_ref().map(|t| t.as_str().to_owned());
    let data = json!({
        "accessor": "",
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": format!("tessera-{}", p.role.as_str()),
        "entity_id": "",
        "expire_time": Value::Null,
        "explicit_max_ttl": 0,
        "id": p.id,
        "meta": {"role": p.role.as_str(), "tenant": tenant},
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/create",
        "policies": [p.role.as_str()],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    });
    reply::envelope(StatusCode::OK, caller.request_id(), &data, "token")
}

/// `sys/internal/ui/mounts/<path>`: the KV v2 mount for paths under it;
/// anything else is a path this API does not serve.
pub(crate) fn mount_of(caller: &Caller, mount: &str, path: &str) -> Response {
    let first = path.split('/').next().unwrap_or_default();
    if first == crate::transit::MOUNT {
        let data = json!({
            "accessor": "transit_tessera",
            "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
            "description": "Tessera tenant Transit keys",
            "external_entropy_access": false,
            "local": false,
            "options": {},
            "path": "transit/",
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": "",
            "seal_wrap": false,
            "type": "transit",
            "uuid": "",
        });
        return reply::envelope(StatusCode::OK, caller.request_id(), &data, "system");
    }
    if first != mount {
        return reply::permission_denied();
    }
    let data = json!({
        "accessor": format!("kv_{mount}"),
        "config": {"default_lease_ttl": 0, "force_no_cache": false, "max_lease_ttl": 0},
        "description": "Tessera tenant secrets",
        "external_entropy_access": false,
        "local": false,
        "options": {"version": "2"},
        "path": format!("{mount}/"),
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": false,
        "type": "kv",
        "uuid": "",
    });
    reply::envelope(StatusCode::OK, caller.request_id(), &data, "system")
}
