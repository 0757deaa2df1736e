//! `tessera apply -f FILE [--dry-run]`: seed 001's tenants file (JSON, or
//! YAML for `.yaml`/`.yml`). Every reference is resolved and every entry
//! checked before anything is written; then only what differs is written, so
//! applying the same file twice changes nothing the second time. `serve`
//! applies `TENANT_CONFIG_PATH` at start when `ENABLE_TENANT_CONFIG_FILE=true`.

mod refs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_core::service::{CredentialInput, Scopes};
use tessera_core::{Ctx, Tessera};
use zeroize::Zeroizing;

use crate::service::open_service;
use crate::settings::Settings;
use refs::Resolver;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    tenants: Vec<TenantEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TenantEntry {
    id: String,
    name: String,
    #[serde(default)]
    integrations: Vec<IntegrationEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IntegrationEntry {
    name: String,
    #[serde(default)]
    config: Option<Map<String, Value>>,
    #[serde(default)]
    is_enabled: Option<bool>,
    #[serde(default)]
    credentials: Option<CredentialsEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CredentialsEntry {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    scopes: Option<ScopesEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopesEntry {
    List(Vec<String>),
    Text(String),
}

/// One integration entry with every reference resolved.
struct Connection {
    key: String,
    config: Option<Map<String, Value>>,
    is_enabled: Option<bool>,
    credentials: Option<Credentials>,
}

/// Resolved credentials, zeroized on drop.
struct Credentials {
    access: Zeroizing<String>,
    refresh: Option<Zeroizing<String>>,
    token_type: Option<Zeroizing<String>>,
    expires_at: Option<Zeroizing<String>>,
    expires_in: Option<i64>,
    scopes: Option<Vec<Zeroizing<String>>>,
}

impl Credentials {
    /// The service's input (it zeroizes the tokens once it has them).
    fn input(&self) -> CredentialInput {
        CredentialInput {
            access_token: self.access.to_string(),
            refresh_token: self.refresh.as_ref().map(|s| s.to_string()),
            token_type: self.token_type.as_ref().map(|s| s.to_string()),
            expires_in: self.expires_in,
            expires_at: self.expires_at.as_ref().map(|s| s.to_string()),
            scopes: self.scopes.as_ref().map(|v| Scopes::List(v.iter().map(|s| s.to_string()).collect())),
            // The plan creates the tenants it names first.
            create_tenant: false,
        }
    }
}

struct Tenant {
    id: String,
    name: String,
    connections: Vec<Connection>,
}

/// One line of the plan.
enum Step {
    CreateTenant { id: String, name: String },
    Tenant(String),
    Config { tenant: String, key: String, change: bool },
    Credentials { tenant: String, key: String, change: bool },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CreateTenant { id, .. } => write!(f, "create tenant {id}"),
            Self::Tenant(line) => f.write_str(line),
            Self::Config { tenant, key, change: true } => write!(f, "update config {tenant}/{key}"),
            Self::Config { tenant, key, change: false } => write!(f, "unchanged config {tenant}/{key}"),
            Self::Credentials { tenant, key, change: true } => write!(f, "store credentials {tenant}/{key}"),
            Self::Credentials { tenant, key, change: false } => write!(f, "unchanged credentials {tenant}/{key}"),
        }
    }
}

/// `tessera apply`: exit 1 when the file cannot be applied (nothing written).
pub async fn run(file: PathBuf, dry_run: bool) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    let mut settings = Settings::from_env()?;
    let svc = open_service(&mut settings).await?;
    match apply_file(&svc, &file, dry_run, |line| println!("{line}")).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("tessera apply: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// At `serve` start: applies `TENANT_CONFIG_PATH` (default
/// `config/tenants.json`) when `ENABLE_TENANT_CONFIG_FILE=true`.
pub async fn at_start(svc: &Tessera) -> anyhow::Result<()> {
    match std::env::var("ENABLE_TENANT_CONFIG_FILE").ok().as_deref() {
        None | Some("false") => Ok(()),
        Some("true") => {
            let path = std::env::var("TENANT_CONFIG_PATH").unwrap_or_else(|_| "config/tenants.json".into());
            apply_file(svc, Path::new(&path), false, |line| tracing::info!(file = %path, "apply: {line}"))
                .await
                .with_context(|| format!("applying TENANT_CONFIG_PATH {path}"))
        }
        Some(_) => anyhow::bail!("ENABLE_TENANT_CONFIG_FILE must be true or false"),
    }
}

/// Reads, resolves, plans and (unless `dry_run`) applies a tenants file.
/// Errors are messages naming the entry; never a resolved value.
async fn apply_file(svc: &Tessera, path: &Path, dry_run: bool, mut print: impl FnMut(&Step)) -> anyhow::Result<()> {
    let file = read_file(path)?;
    let tenants = resolve_all(file).await?;
    let ctx = Ctx::cli();
    let steps = plan(svc, &ctx, &tenants).await?;
    for step in &steps {
        print(step);
    }
    if dry_run {
        return Ok(());
    }
    write(svc, &ctx, &tenants, &steps).await
}

fn read_file(path: &Path) -> anyhow::Result<TenantsFile> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?);
    let yaml = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml");
    // Parse errors name a line and column, never the document's values: the
    // parser's error is redacted into text and not kept as a source.
    let refused = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {}", path.display(), redact(&e.to_string()));
    if yaml {
        serde_norway::from_str(&text).map_err(|e| refused(&e))
    } else {
        serde_json::from_str(&text).map_err(|e| refused(&e))
    }
}

/// Drops a quoted value a parser may cite (`invalid type: string "..."`).
fn redact(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            quoted = !quoted;
            out.push_str(if quoted { "\"..." } else { "\"" });
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Resolves every reference; all failures are reported together.
async fn resolve_all(file: TenantsFile) -> anyhow::Result<Vec<Tenant>> {
    let mut resolver = Resolver::new();
    let mut errors = Vec::new();
    let mut tenants = Vec::new();
    for t in file.tenants {
        let mut fail = |integration: Option<&str>, e: refs::RefError| {
            let at = match integration {
                Some(i) => format!("tenant {}, integration {i}", t.id),
                None => format!("tenant {}", t.id),
            };
            errors.push(format!("{at}: {} could not be resolved: {}", e.reference, e.reason));
        };
        let id = resolver.resolve(&t.id).await.map(|s| s.to_string()).unwrap_or_else(|e| {
            fail(None, e);
            String::new()
        });
        let name = resolver.resolve(&t.name).await.map(|s| s.to_string()).unwrap_or_else(|e| {
            fail(None, e);
            String::new()
        });
        let mut connections = Vec::new();
        for i in t.integrations {
            let key = i.name.clone();
            let mut config = i.config;
            if let Some(c) = config.as_mut() {
                for v in c.values_mut() {
                    if let Err(e) = resolve_value(&mut resolver, v).await {
                        fail(Some(&key), e);
                    }
                }
            }
            let credentials = match i.credentials {
                None => None,
                Some(c) => match resolve_credentials(&mut resolver, c).await {
                    Ok(c) => Some(c),
                    Err(errs) => {
                        for e in errs {
                            fail(Some(&key), e);
                        }
                        None
                    }
                },
            };
            connections.push(Connection { key, config, is_enabled: i.is_enabled, credentials });
        }
        tenants.push(Tenant { id, name, connections });
    }
    if errors.is_empty() {
        Ok(tenants)
    } else {
        Err(anyhow::Error::msg(errors.join("\n")))
    }
}

async fn resolve_value(resolver: &mut Resolver, v: &mut Value) -> Result<(), refs::RefError> {
    match v {
        Value::String(s) => {
            let resolved = resolver.resolve(s).await?;
            *s = resolved.to_string();
        }
        Value::Array(items) => {
            for item in items {
                Box::pin(resolve_value(resolver, item)).await?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                Box::pin(resolve_value(resolver, item)).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

async fn resolve_credentials(resolver: &mut Resolver, c: CredentialsEntry) -> Result<Credentials, Vec<refs::RefError>> {
    let mut errors = Vec::new();
    let mut one = |r: Result<Zeroizing<String>, refs::RefError>| match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let access = one(resolver.resolve(&c.access_token).await);
    let refresh = match &c.refresh_token {
        Some(s) => one(resolver.resolve(s).await),
        None => None,
    };
    let token_type = match &c.token_type {
        Some(s) => one(resolver.resolve(s).await),
        None => None,
    };
    let expires_at = match &c.expires_at {
        Some(s) => one(resolver.resolve(s).await),
        None => None,
    };
    let scopes = match &c.scopes {
        None => None,
        Some(ScopesEntry::List(list)) => {
            let mut out = Vec::new();
            for s in list {
                out.extend(one(resolver.resolve(s).await));
            }
            Some(out)
        }
        Some(ScopesEntry::Text(s)) => one(resolver.resolve(s).await)
            .map(|text| tessera_core::service::split_scopes(&text).into_iter().map(Zeroizing::new).collect()),
    };
    // Zeroize the file's own copies of the values (references or literals).
    drop(Zeroizing::new(c.access_token));
    drop(c.refresh_token.map(Zeroizing::new));
    match access {
        Some(access) if errors.is_empty() => {
            Ok(Credentials { access, refresh, token_type, expires_at, expires_in: c.expires_in, scopes })
        }
        _ => Err(errors),
    }
}

/// What the file changes, checked against what is stored (nothing written).
async fn plan(svc: &Tessera, ctx: &Ctx, tenants: &[Tenant]) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut errors = Vec::new();
    for t in tenants {
        match svc.apply_tenant_name(ctx, &t.id).await {
            Ok(None) => {
                // Checked now, as create_tenant would, so no write fails halfway.
                if let Err(e) = tessera_core::ids::TenantId::parse_new(&t.id) {
                    errors.push(format!("tenant {}: {}", t.id, e.message));
                } else if t.name.trim().is_empty() || t.name.trim().len() > 200 {
                    errors.push(format!("tenant {}: name must be 1-200 characters", t.id));
                }
                steps.push(Step::CreateTenant { id: t.id.clone(), name: t.name.clone() });
            }
            Ok(Some(name)) if name == t.name.trim() => steps.push(Step::Tenant(format!("unchanged tenant {}", t.id))),
            Ok(Some(name)) => steps.push(Step::Tenant(format!(
                "unchanged tenant {} (exists named {name:?}, the file says {:?}; renaming is out of scope)",
                t.id, t.name
            ))),
            Err(e) => errors.push(format!("tenant {}: {}", t.id, e.message)),
        }
        for c in &t.connections {
            let input = c.credentials.as_ref().map(Credentials::input);
            match svc.plan_connection(ctx, &t.id, &c.key, c.config.as_ref(), c.is_enabled, input).await {
                Ok(p) => {
                    if c.config.is_some() || c.is_enabled.is_some() {
                        steps.push(Step::Config { tenant: t.id.clone(), key: c.key.clone(), change: p.config_changes });
                    }
                    if c.credentials.is_some() {
                        steps.push(Step::Credentials {
                            tenant: t.id.clone(),
                            key: c.key.clone(),
                            change: p.credentials_change,
                        });
                    }
                }
                Err(e) => errors.push(format!("tenant {}, integration {}: {}", t.id, c.key, e.message)),
            }
        }
    }
    if errors.is_empty() {
        Ok(steps)
    } else {
        Err(anyhow::Error::msg(errors.join("\n")))
    }
}

async fn write(svc: &Tessera, ctx: &Ctx, tenants: &[Tenant], steps: &[Step]) -> anyhow::Result<()> {
    let find = |tenant: &str, key: &str| {
        tenants
            .iter()
            .filter(|t| t.id == tenant)
            .flat_map(|t| t.connections.iter())
            .find(|c| c.key == key)
            .expect("planned from these tenants")
    };
    for step in steps {
        match step {
            Step::CreateTenant { id, name } => {
                svc.create_tenant(ctx, id, name).await.map_err(|e| anyhow::anyhow!("tenant {id}: {}", e.message))?;
            }
            Step::Config { tenant, key, change: true } => {
                let c = find(tenant, key);
                svc.put_connection_config(ctx, tenant, key, c.config.clone().unwrap_or_default(), c.is_enabled)
                    .await
                    .map_err(|e| anyhow::anyhow!("tenant {tenant}, integration {key}: {}", e.message))?;
            }
            Step::Credentials { tenant, key, change: true } => {
                let c = find(tenant, key).credentials.as_ref().expect("planned with credentials");
                svc.apply_credentials(ctx, tenant, key, c.input())
                    .await
                    .map_err(|e| anyhow::anyhow!("tenant {tenant}, integration {key}: {}", e.message))?;
            }
            _ => {}
        }
    }
    Ok(())
}
