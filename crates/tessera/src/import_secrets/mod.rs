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
    pub reason: Malformed,
}

impl Refused {
    fn at(line: usize, reason: Malformed) -> Self {
        Self { line, key: None, reason }
    }
}

/// Why an entry of a file cannot be read. No variant holds anything of the
/// entry: its line and key are beside it in [`Refused`], its value nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// dotenv: a line that is neither blank, a comment nor `KEY=value`.
    #[error("expected KEY=value")]
    NoEquals,
    /// dotenv: a key that is not a variable name.
    #[error("the key must be letters, digits, '_', '.' or '-', not starting with a digit")]
    BadKey,
    /// dotenv: `"value" more`.
    #[error("unexpected text after the closing double quote")]
    TextAfterQuote,
    /// dotenv: a double-quoted value open to the end of the file.
    #[error("the double-quoted value has no closing quote")]
    UnclosedDoubleQuote,
    /// dotenv: a single-quoted value open to the end of the file.
    #[error("the single-quoted value has no closing quote")]
    UnclosedSingleQuote,
    /// Infisical: an array item that is not an object.
    #[error("expected an object with key and value")]
    NotAnObject,
    /// Infisical: no `key`, or not a non-empty string.
    #[error("key must be a non-empty string")]
    BadInfisicalKey,
    /// Infisical: no `value`, or not a string.
    #[error("value must be a string")]
    ValueNotAString,
    /// Infisical: a `secretPath` that is not a string.
    #[error("secretPath must be a string")]
    SecretPathNotAString,
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
                infisical::parse(&bytes).with_context(|| file.display().to_string())?
            };
            let word = if matches!(source, Source::Dotenv(_)) { "line" } else { "entry" };
            for r in bad {
                let label = match &r.key {
                    Some(k) => format!("{word} {} ({k})", r.line),
                    None => format!("{word} {}", r.line),
                };
                refused.push((r.line, label, r.reason.to_string()));
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
    let mut report: Vec<(usize, Report)> =
        refused.into_iter().map(|(order, label, reason)| (order, Report::Failed { label, reason })).collect();
    for item in items {
        report.push(write(&svc, &ctx, tenant.as_str(), item).await);
    }
    report.sort_by_key(|(order, _)| *order);
    for (_, line) in &report {
        tally.count(line);
        match line {
            Report::Imported { .. } => println!("{line}"),
            Report::Failed { .. } => eprintln!("{line}"),
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

/// One line of the report, for one key (or line) of the input.
enum Report {
    /// Written through the import use case, or found unchanged: on stdout.
    Imported { label: String, path: String, outcome: ImportOutcome },
    /// Not written, and why (never a value): on stderr.
    Failed { label: String, reason: String },
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Imported { label, path, outcome } => match outcome {
                ImportOutcome::Created { version } => write!(f, "{label} -> {path}: created (version {version})"),
                ImportOutcome::Updated { previous, version } => {
                    write!(f, "{label} -> {path}: new version {version} (was {previous})")
                }
                ImportOutcome::Unchanged { version } => write!(f, "{label} -> {path}: unchanged (version {version})"),
            },
            Self::Failed { label, reason } => write!(f, "{label}: {reason}"),
        }
    }
}

impl Tally {
    fn count(&mut self, line: &Report) {
        match line {
            Report::Imported { outcome: ImportOutcome::Created { .. }, .. } => self.created += 1,
            Report::Imported { outcome: ImportOutcome::Updated { .. }, .. } => self.updated += 1,
            Report::Imported { outcome: ImportOutcome::Unchanged { .. }, .. } => self.unchanged += 1,
            Report::Failed { .. } => self.failed += 1,
        }
    }
}

/// Writes one item; its place in the report and its line.
async fn write(svc: &Tessera, ctx: &Ctx, tenant: &str, item: Item) -> (usize, Report) {
    let Item { order, label, path, payload, mask } = item;
    let line = match svc.import_secret(ctx, tenant, &path, payload).await {
        Ok(outcome) => Report::Imported { label, path, outcome },
        Err(e) => Report::Failed { label, reason: describe(&e, &mask) },
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
