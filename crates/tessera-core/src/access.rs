//! Who is calling and what they may touch (DESIGN.md section 5).
//!
//! The tenant always comes from the principal: a tenant-bound principal that
//! names another tenant is told "not found", exactly as if the tenant did not
//! exist, so tenant ids cannot be probed.

use crate::ErrorCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ServiceError;
use crate::ids::TenantId;

/// Prefix of every Tessera API key.
pub const API_KEY_PREFIX: &str = "tsr_";

/// A role, as in DESIGN.md section 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, every tenant.
    Admin,
    /// Its own tenant: connections, secrets, credentials, its audit.
    TenantAdmin,
    /// Its own tenant, read-side: resolve, read secrets, proxy, invoke.
    TenantService,
    /// The audit log of every tenant; no secret values.
    Auditor,
}

impl Role {
    /// Parses `admin`, `tenant_admin`, `tenant_service` or `auditor`.
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        match raw {
            "admin" => Ok(Self::Admin),
            "tenant_admin" => Ok(Self::TenantAdmin),
            "tenant_service" => Ok(Self::TenantService),
            "auditor" => Ok(Self::Auditor),
            _ => Err(ServiceError::invalid(
                ErrorCode::InvalidRole,
                "role must be one of admin, tenant_admin, tenant_service, auditor",
                Some("role"),
            )),
        }
    }

    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::TenantAdmin => "tenant_admin",
            Self::TenantService => "tenant_service",
            Self::Auditor => "auditor",
        }
    }

    /// Whether principals of this role are bound to one tenant.
    pub fn is_tenant_bound(self) -> bool {
        matches!(self, Self::TenantAdmin | Self::TenantService)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The API key id (or `root` for `TESSERA_ROOT_TOKEN`), written to audit rows.
    pub id: String,
    /// The role.
    pub role: Role,
    /// The tenant a tenant-bound principal belongs to.
    pub tenant: Option<TenantId>,
    /// A scoped key's scopes: it may do only what one of them allows. None:
    /// the role's rules alone.
    pub scopes: Option<std::sync::Arc<[Scope]>>,
}

/// Read, or read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read (for an integration: resolve, proxy, tools, read its connection).
    Read,
    /// Read and change.
    Write,
}

impl Access {
    /// `read` or `write`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }

    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// What one scope of a scoped key reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeTarget {
    /// Tenant secrets: one path, or every path under a prefix (`stripe/*`; `*`: all).
    Secrets(String),
    /// One integration's connection: its config, credentials, resolved view,
    /// proxy, tools and health check.
    Integration(String),
}

/// One scope: a target and how far it may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// What it reaches.
    pub target: ScopeTarget,
    /// Read, or read and write.
    pub access: Access,
}

impl Scope {
    fn covers_secret(&self, path: &str, access: Access) -> bool {
        match &self.target {
            ScopeTarget::Secrets(pattern) if self.access >= access => match pattern.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == pattern,
            },
            _ => false,
        }
    }

    /// Whether a listing under `prefix` stays inside this scope.
    fn covers_listing(&self, prefix: &str) -> bool {
        match &self.target {
            ScopeTarget::Secrets(pattern) => {
                pattern.strip_suffix('*').is_some_and(|p| prefix.starts_with(p) || format!("{prefix}/") == p)
            }
            ScopeTarget::Integration(_) => false,
        }
    }

    fn covers_integration(&self, key: &str, access: Access) -> bool {
        matches!(&self.target, ScopeTarget::Integration(k) if k == key && self.access >= access)
    }
}

fn out_of_scope(what: &str) -> ServiceError {
    ServiceError::forbidden(format!("this API key is scoped; its scopes do not allow {what}"))
}

impl Principal {
    /// The root principal of `TESSERA_ROOT_TOKEN`.
    pub fn root() -> Self {
        Self { id: "root".into(), role: Role::Admin, tenant: None, scopes: None }
    }

    /// The principal of an admin CLI command run on the server's machine.
    /// A background worker of the server (audit rows name it).
    pub fn worker(name: &str) -> Self {
        Self { id: name.into(), role: Role::Admin, tenant: None, scopes: None }
    }

    /// The principal of an admin CLI command.
    pub fn local_admin() -> Self {
        Self { id: "cli".into(), role: Role::Admin, tenant: None, scopes: None }
    }

    /// Checks the caller may act on `tenant` at all: admins may name any
    /// tenant; a tenant-bound principal only its own; an auditor none (for
    /// tenant data). Anything else is reported as "no such tenant". A scoped
    /// key passes only the checks that name what it reaches
    /// ([`Self::ensure_secret`], [`Self::ensure_integration`]): everything
    /// else is refused, so a new operation is closed to it until it says so.
    pub fn ensure_tenant(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        self.ensure_own_tenant(tenant)?;
        if self.scopes.is_some() {
            return Err(out_of_scope("this operation"));
        }
        Ok(())
    }

    fn ensure_own_tenant(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        match (&self.role, &self.tenant) {
            (Role::Admin, _) => Ok(()),
            (Role::TenantAdmin | Role::TenantService, Some(own)) if own == tenant => Ok(()),
            _ => Err(ServiceError::tenant_not_found()),
        }
    }

    /// Checks the caller may change `tenant`'s data (not only read it).
    pub fn ensure_tenant_write(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        self.ensure_tenant(tenant)?;
        self.ensure_writer()
    }

    fn ensure_writer(&self) -> Result<(), ServiceError> {
        if self.role == Role::TenantService {
            return Err(ServiceError::forbidden("a tenant_service key may only read"));
        }
        Ok(())
    }

    /// Checks the caller may `access` the tenant secret at `path`.
    pub fn ensure_secret(&self, tenant: &TenantId, path: &str, access: Access) -> Result<(), ServiceError> {
        self.ensure_own_tenant(tenant)?;
        if access == Access::Write {
            self.ensure_writer()?;
        }
        match &self.scopes {
            Some(scopes) if !scopes.iter().any(|s| s.covers_secret(path, access)) => {
                Err(out_of_scope(&format!("{} on the secret {path}", access.as_str())))
            }
            _ => Ok(()),
        }
    }

    /// Checks the caller may list the tenant's secrets under `prefix`.
    pub fn ensure_secret_listing(&self, tenant: &TenantId, prefix: &str) -> Result<(), ServiceError> {
        self.ensure_own_tenant(tenant)?;
        match &self.scopes {
            Some(scopes) if !scopes.iter().any(|s| s.covers_listing(prefix)) => {
                Err(out_of_scope(&format!("listing secrets under {prefix:?}")))
            }
            _ => Ok(()),
        }
    }

    /// Checks the caller may `access` the tenant's connection to `integration`.
    pub fn ensure_integration(&self, tenant: &TenantId, integration: &str, access: Access) -> Result<(), ServiceError> {
        self.ensure_own_tenant(tenant)?;
        if access == Access::Write {
            self.ensure_writer()?;
        }
        match &self.scopes {
            Some(scopes) if !scopes.iter().any(|s| s.covers_integration(integration, access)) => {
                Err(out_of_scope(&format!("{} on the integration {integration}", access.as_str())))
            }
            _ => Ok(()),
        }
    }

    /// Checks the caller is an admin.
    pub fn ensure_admin(&self) -> Result<(), ServiceError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ServiceError::forbidden("this operation needs the admin role"))
        }
    }
}

/// A freshly generated API key: shown once, stored only as its hash.
pub struct NewApiKey {
    /// The key itself (`tsr_` + 43 base64url characters).
    pub key: SecretString,
    /// The hash to store.
    pub hash: String,
}

/// Generates a new API key from 32 random bytes.
pub fn generate_api_key() -> NewApiKey {
    let bytes = tessera_crypto::random_bytes(32);
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes[..]));
    let hash = hash_token(&key);
    NewApiKey { key: SecretString::from(key), hash }
}

/// The stored form of a token: SHA-256, hex. API keys carry 256 bits of
/// entropy, so a fast hash is enough (no password stretching needed), and the
/// lookup by hash needs no comparison of secret bytes.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares a presented token with the root token in constant time.
pub fn root_token_matches(presented: &str, root: &SecretString) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(root.expose_secret().as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(role: Role, tenant: &str) -> Principal {
        Principal { id: "k".into(), role, tenant: Some(TenantId::parse(tenant).expect("valid")), scopes: None }
    }

    #[test]
    fn a_tenant_bound_principal_naming_another_tenant_sees_not_found() {
        let acme = TenantId::parse("acme").expect("valid");
        let beta = TenantId::parse("beta").expect("valid");
        let p = bound(Role::TenantAdmin, "acme");
        assert!(p.ensure_tenant(&acme).is_ok());
        let err = p.ensure_tenant(&beta).expect_err("other tenant");
        assert_eq!(err.kind, crate::ErrorKind::NotFound);
        assert_eq!(err, ServiceError::tenant_not_found());
    }

    #[test]
    fn a_service_key_cannot_write_and_an_auditor_cannot_touch_tenant_data() {
        let acme = TenantId::parse("acme").expect("valid");
        let err = bound(Role::TenantService, "acme").ensure_tenant_write(&acme).expect_err("read only");
        assert_eq!(err.kind, crate::ErrorKind::Forbidden);
        let auditor = Principal { id: "a".into(), role: Role::Auditor, tenant: None, scopes: None };
        assert_eq!(auditor.ensure_tenant(&acme).expect_err("no tenant data").kind, crate::ErrorKind::NotFound);
    }

    #[test]
    fn api_keys_are_prefixed_random_and_hashed() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert!(a.key.expose_secret().starts_with("tsr_"));
        assert_eq!(a.key.expose_secret().len(), 4 + 43);
        assert_ne!(a.key.expose_secret(), b.key.expose_secret());
        assert_eq!(a.hash, hash_token(a.key.expose_secret()));
        assert!(!a.hash.contains(&a.key.expose_secret()[4..]));
    }

    #[test]
    fn the_root_token_compares_exactly() {
        let root = SecretString::from("r".repeat(40));
        assert!(root_token_matches(&"r".repeat(40), &root));
        assert!(!root_token_matches(&"r".repeat(39), &root));
    }
}
