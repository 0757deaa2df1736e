//! Tessera's Vault-compatible API under `/v1/`, so existing Vault and OpenBao
//! clients (hvac, the `vault`/`bao` CLI, ...) reach Tessera's tenant secrets
//! unchanged: KV v2 at one mount (`TESSERA_VAULT_API_MOUNT`, default
//! `secret`), Transit at `transit`, `sys/health`, `auth/token/lookup-self`, and the mount lookup
//! the CLI makes before a `kv` command.
//!
//! Where it sits: an adapter beside the JSON API and the console, over the
//! same service layer. The token is a Tessera API key; the namespace is the
//! tenant. KV v2 paths are the tenant's own secrets (same versions, keys,
//! audit and backends), not a second store. It holds no business rule,
//! touches no SQL or crypto, and answers in Vault's shapes ([`reply`]).

mod caller;
mod fields;
mod kv;
mod kv_metadata;
mod reply;
mod sys;
mod transit;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use tessera_core::Tessera;

/// Settings of the Vault-compatible API.
#[derive(Clone, Debug)]
pub struct VaultApiOptions {
    /// Where KV v2 is mounted (`TESSERA_VAULT_API_MOUNT`).
    pub mount: String,
    /// Largest request body read (as the API's `TESSERA_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
}

impl Default for VaultApiOptions {
    fn default() -> Self {
        Self { mount: "secret".into(), max_body_bytes: 1024 * 1024 }
    }
}

/// Whether `mount` can name the KV v2 mount: one path segment of
/// `[a-z0-9_-]`, and none of the paths Vault reserves.
pub fn valid_mount(mount: &str) -> bool {
    !mount.is_empty()
        && mount.len() <= 64
        && mount.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !matches!(mount, "sys" | "auth" | "identity" | "cubbyhole" | transit::MOUNT)
}

#[derive(Clone)]
pub(crate) struct VaultState {
    pub(crate) svc: Arc<Tessera>,
    pub(crate) opts: Arc<VaultApiOptions>,
}

/// Every route of the Vault-compatible API, under `/v1/`. One route takes
/// every method: Vault's `LIST` is not a method axum can route on.
pub fn router(svc: Arc<Tessera>, opts: VaultApiOptions) -> Router {
    Router::new()
        .route("/v1", any(dispatch))
        .route("/v1/", any(dispatch))
        .route("/v1/{*rest}", any(dispatch))
        .with_state(VaultState { svc, opts: Arc::new(opts) })
}

async fn dispatch(State(state): State<VaultState>, req: Request) -> Response {
    // OpenBao names the request's namespace on its answer (the CLI prints it with an error).
    let namespace = req.headers().get(NAMESPACE).cloned();
    let mut resp = answer(state, req).await;
    if let Some(ns) = namespace {
        resp.headers_mut().insert(NAMESPACE, ns);
    }
    resp
}

const NAMESPACE: &str = "x-vault-namespace";

async fn answer(state: VaultState, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().strip_prefix("/v1/").unwrap_or_default().to_owned();
    if path == "sys/health" {
        return sys::health(&state.svc, &parts.method).await;
    }
    let known = path.starts_with("sys/internal/ui/mounts")
        || path == "auth/token/lookup-self"
        || matches!(path.split('/').next(), Some(first) if first == state.opts.mount || first == transit::MOUNT);
    if !known {
        return reply::no_handler(&path);
    }
    let caller = match caller::Caller::of(&state.svc, &parts).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    // Read only once the caller is known, and never beyond the API's limit.
    let body = match axum::body::to_bytes(body, state.opts.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return reply::errors(StatusCode::PAYLOAD_TOO_LARGE, &["request body too large"]),
    };
    if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts") {
        return sys::mount_of(&caller, &state.opts.mount, rest.trim_start_matches('/'));
    }
    if path == "auth/token/lookup-self" {
        return sys::lookup_self(&caller, &parts.method);
    }
    if let Some(rest) = path.strip_prefix("transit/") {
        return transit::handle(&state.svc, &caller, parts.method.as_str(), rest, &body).await;
    }
    let Some(rest) = path.strip_prefix(state.opts.mount.as_str()) else { return reply::no_handler(&path) };
    let rest = rest.trim_start_matches('/');
    kv::handle(&state, &caller, &parts, rest, &body).await
}

#[cfg(test)]
mod tests {
    use super::valid_mount;

    #[test]
    fn a_mount_is_one_plain_segment_and_not_a_reserved_path() {
        for ok in ["secret", "kv", "tenant-secrets", "kv_2"] {
            assert!(valid_mount(ok), "{ok}");
        }
        for bad in ["", "sys", "auth", "transit", "identity", "cubbyhole", "a/b", "Secret", "k v", &"k".repeat(65)] {
            assert!(!valid_mount(bad), "{bad}");
        }
    }
}
