//! `tessera import --format dotenv|infisical-json --tenant T [--prefix P] FILE`
//! and `tessera import --from-vault --tenant T [--mount M] [--path P]`: the
//! secrets of another secrets manager as tenant secrets, each key one secret
//! (`[prefix/][folder/]KEY`, stored as `{"value": ...}`; a Vault secret's
//! fields as one `data` secret).
//!
//! Each key is written through the service's import use case: a new version
//! only when the value differs from the newest one, so a second run changes
//! nothing, and says so. A key that cannot be read (a malformed line, a key
//! given twice) or written is reported with its line and nothing of it is
//! written; the others still are. Output names keys, paths and versions,
//! never a value; values stay in zeroizing strings until the service has them.

pub mod dotenv;
pub mod infisical;
pub mod vault;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::Value;
use tessera_core::ids::{SecretPath, TenantId};
use tessera_core::service::{ImportOutcome, SecretPayload};
use tessera_core::{Ctx, ServiceError, Tessera};
use zeroize::Zeroizing;

use crate::service::open_service;
use crate::settings::Settings;

/// One key read from a file.
pub struct Entry {
    /// Its line (dotenv) or position in the array (Infisical JSON), from 1.
    pub line: usize,
    /// The key, with its folder (`stripe/KEY`) when the source has folders.
    pub key: String,
    pub value: Zeroizing<String>,
}

/// A key (or line) that is not imported, and why (never its value).
pub struct Refused {
    pub line: usize,
    pub key: Option<String>,
    pub reason: String,
}

impl Refused {
    fn at(line: usize, reason: &str) -> Self {
        Self { line, key: None, reason: reason.to_owned() }
    }
}

/// Where the secrets come from.
pub enum Source {
    Dotenv(PathBuf),
    Infisical(PathBuf),
    Vault { mount: String, path: String },
}

/// What to write: its label in the report, its path, its content.
struct Item {
    order: usize,
    label: String,
    path: String,
    payload: SecretPayload,
    /// The plaintext to mask should a message ever echo it.
    mask: Zeroizing<String>,
}

#[derive(Default)]
struct Tally {
    created: usize,
    updated: usize,
    unchanged: usize,
    failed: usize,
    skipped: usize,
}

pub async fn run(source: Source, tenant: &str, prefix: Option<&str>) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    // Arguments and input first: a bad one stops before the store is touched.
    let tenant = TenantId::parse(tenant.trim()).map_err(|e| anyhow::anyhow!("--tenant: {}", e.message))?;
    let prefix = prefix.map(|p| p.trim().trim_matches('/').to_owned()).filter(|p| !p.is_empty());
    if let Some(p) = &prefix {
        SecretPath::parse_user(&format!("{p}/KEY")).map_err(|e| anyhow::anyhow!("--prefix: {}", e.message))?;
    }
    let at = |key: &str| prefix.as_ref().map_or_else(|| key.to_owned(), |p| format!("{p}/{key}"));
    let (mut items, mut refused, mut tally) = (Vec::new(), Vec::new(), Tally::default());
    let mut skipped = Vec::new();
    match &source {
        Source::Dotenv(file) | Source::Infisical(file) => {
            let bytes = Zeroizing::new(std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?);
            let (entries, bad) = if matches!(source, Source::Dotenv(_)) {
                let text =
                    std::str::from_utf8(&bytes).with_context(|| format!("{} is not UTF-8 text", file.display()))?;
                dotenv::parse(text)
            } else {
                infisical::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            let word = if matches!(source, Source::Dotenv(_)) { "line" } else { "entry" };
            for r in bad {
                let label = match &r.key {
                    Some(k) => format!("{word} {} ({k})", r.line),
                    None => format!("{word} {}", r.line),
                };
                refused.push((r.line, label, r.reason));
            }
            for e in entries {
                let payload = SecretPayload::Value(Value::String(e.value.to_string()));
                items.push(Item {
                    order: e.line,
                    label: format!("{word} {} ({})", e.line, e.key),
                    path: at(&e.key),
                    payload,
                    mask: e.value,
                });
            }
        }
        Source::Vault { mount, path } => {
            let kv = vault::Kv::from_env(mount)?;
            let found = kv.walk(path).await?;
            if found.is_empty() {
                bail!("no secret under {} in Vault", kv.describe("", path));
            }
            for (n, s) in found.into_iter().enumerate() {
                let label = format!("vault {}", kv.describe(&s.relative, path));
                match s.fields {
                    Some(fields) => items.push(Item {
                        order: n + 1,
                        label,
                        path: at(&s.relative),
                        payload: SecretPayload::Data(fields),
                        mask: Zeroizing::new(String::new()),
                    }),
                    None => skipped.push(label),
                }
            }
        }
    }
    // A path given twice is ambiguous (which value is meant?): none of its keys is written.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in &items {
        *seen.entry(item.path.clone()).or_default() += 1;
    }
    let (items, twice): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|i| seen[&i.path] == 1);
    for i in twice {
        refused.push((i.order, i.label, format!("{} is given more than once; none of them is imported", i.path)));
    }

    let mut settings = Settings::from_env()?;
    let svc = open_service(&mut settings).await?;
    let ctx = Ctx::cli();
    svc.get_tenant(&ctx, tenant.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("--tenant {tenant}: {} (create the tenant first)", e.message))?;
    let mut report: Vec<(usize, Result<String, String>)> =
        refused.into_iter().map(|(order, label, reason)| (order, Err(format!("{label}: {reason}")))).collect();
    for item in items {
        let outcome = write(&svc, &ctx, tenant.as_str(), item, &mut tally).await;
        report.push(outcome);
    }
    report.sort_by_key(|(order, _)| *order);
    for (_, line) in &report {
        match line {
            Ok(done) => println!("{done}"),
            Err(failed) => {
                tally.failed += 1;
                eprintln!("{failed}");
            }
        }
    }
    for label in &skipped {
        tally.skipped += 1;
        println!("{label}: skipped (its newest version is deleted or destroyed in Vault)");
    }
    let t = &tally;
    let mut summary = format!(
        "imported {} (created {}, updated {}, unchanged {}), failed {}",
        t.created + t.updated + t.unchanged,
        t.created,
        t.updated,
        t.unchanged,
        t.failed
    );
    if t.skipped > 0 {
        summary.push_str(&format!(", skipped {}", t.skipped));
    }
    if t.created + t.updated == 0 {
        summary.push_str("; nothing changed");
    }
    println!("{summary}");
    Ok(if t.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Writes one item; the line to report.
async fn write(
    svc: &Tessera,
    ctx: &Ctx,
    tenant: &str,
    item: Item,
    tally: &mut Tally,
) -> (usize, Result<String, String>) {
    let Item { order, label, path, payload, mask } = item;
    let line = match svc.import_secret(ctx, tenant, &path, payload).await {
        Ok(ImportOutcome::Created { version }) => {
            tally.created += 1;
            Ok(format!("{label} -> {path}: created (version {version})"))
        }
        Ok(ImportOutcome::Updated { previous, version }) => {
            tally.updated += 1;
            Ok(format!("{label} -> {path}: new version {version} (was {previous})"))
        }
        Ok(ImportOutcome::Unchanged { version }) => {
            tally.unchanged += 1;
            Ok(format!("{label} -> {path}: unchanged (version {version})"))
        }
        Err(e) => Err(format!("{label}: {}", describe(&e, &mask))),
    };
    (order, line)
}

/// A service error as a reason; the plaintext masked should a message ever echo it.
fn describe(e: &ServiceError, plaintext: &str) -> String {
    let reason = format!("{} ({})", e.message, e.code);
    if plaintext.len() >= 4 && reason.contains(plaintext) {
        reason.replace(plaintext, "[SECRET]")
    } else {
        reason
    }
}
