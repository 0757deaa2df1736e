//! Who is calling and in which namespace: the token is a Tessera API key
//! (`X-Vault-Token`, or `Authorization: Bearer`), the namespace is the tenant
//! (`X-Vault-Namespace`, or else the key's own tenant). Whether the key may
//! use that tenant is the service's decision (and its audited denial), never
//! this adapter's.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use tessera_core::{ClientAddr, Ctx, Tessera};

use crate::reply;

/// An authenticated caller with the namespace it named.
pub(crate) struct Caller {
    pub(crate) ctx: Ctx,
    /// `X-Vault-Namespace`, without surrounding slashes; none when not sent.
    namespace: Option<String>,
}

impl Caller {
    /// Authenticates the request's token. No token, or one that is not
    /// valid, is Vault's 403 `permission denied` (a bad token is audited by
    /// the service as on the native API).
    pub(crate) async fn of(svc: &Tessera, parts: &Parts) -> Result<Self, Response> {
        let request_id =
            tessera_core::ids::request_id_or_new(parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()));
        let client_ip = match parts.extensions.get::<ClientAddr>() {
            Some(ClientAddr(ip)) => Some(ip.to_string()),
            None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical().to_string()),
        };
        let Some(token) = token(&parts.headers) else {
            return Err(reply::service_error(&svc.refuse_without_token(client_ip.as_deref())));
        };
        let principal = svc
            .authenticate(token, Some(request_id.clone()), client_ip.clone())
            .await
            .map_err(|e| reply::service_error(&e))?;
        let namespace = parts
            .headers
            .get("x-vault-namespace")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().trim_matches('/').to_owned())
            .filter(|v| !v.is_empty() && v != "root");
        Ok(Self { ctx: Ctx { principal, request_id: Some(request_id), client_ip }, namespace })
    }

    /// The request id, for the envelope.
    pub(crate) fn request_id(&self) -> &str {
        self.ctx.request_id.as_deref().unwrap_or_default()
    }

    /// The tenant the request is about: the namespace it named, else the
    /// key's own tenant; none for an admin key that named none (it has no tenant).
    pub(crate) fn tenant(&self) -> Option<String> {
        self.namespace.clone().or_else(|| self.ctx.principal.tenant.as_ref().map(|t| t.as_str().to_owned()))
    }
}

/// The token: `X-Vault-Token`, else a bearer token.
fn token(headers: &HeaderMap) -> Option<&str> {
    let vault = headers.get("x-vault-token").and_then(|v| v.to_str().ok());
    let bearer = || {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
    };
    vault.or_else(bearer).map(str::trim).filter(|t| !t.is_empty())
}
