//! `tessera migrate --from <backend> --to <backend> [--dry-run] [--verify]`:
//! copies every tenant's secrets between credential backends (see
//! `tessera_core::migrate` for the rules), prints progress and a summary JSON
//! on stdout, and exits 0 (all well), 1 (conflicts or a verify difference) or
//! 2 (bad arguments or a failure, one line on stderr).
//!
//! Each side's settings come from the usual variables (`CREDENTIAL_FILE_PATH`,
//! `VAULT_ADDR`/`VAULT_URL`, `VAULT_TOKEN`, `VAULT_MOUNT_POINT`,
//! `VAULT_PATH_PREFIX`, `VAULT_NAMESPACE`), overridden per side by flags. A
//! token is never a flag: `--to-vault-token-env NAME` names the variable
//! holding it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use secrecy::SecretString;
use tessera_backends::vault::VaultSettings;
use tessera_backends::vault_client::{VaultAuth, VaultConnection};
use tessera_core::migrate::{MigrateOptions, Sides};
use tessera_core::secret_store::SecretStore;
use tessera_core::{Ctx, Tessera};

use crate::service::{open_backend, open_service};
use crate::settings::{Backend, Settings};

/// Arguments of `tessera migrate`.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// Source backend: database, file, environment or vault.
    #[arg(long)]
    from: String,
    /// Target backend: database, file or vault.
    #[arg(long)]
    to: String,
    /// Only count what would be copied; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Compare every version on both sides afterwards (by keyed hash); exit 1 on any difference.
    #[arg(long)]
    verify: bool,
    /// Source file (default CREDENTIAL_FILE_PATH, else credentials.json in the data dir).
    #[arg(long)]
    from_file_path: Option<PathBuf>,
    /// Target file (default CREDENTIAL_FILE_PATH, else credentials.json in the data dir).
    #[arg(long)]
    to_file_path: Option<PathBuf>,
    /// Source Vault address (default VAULT_ADDR or VAULT_URL).
    #[arg(long)]
    from_vault_addr: Option<String>,
    /// Target Vault address (default VAULT_ADDR or VAULT_URL).
    #[arg(long)]
    to_vault_addr: Option<String>,
    /// Source KV v2 path prefix (default VAULT_PATH_PREFIX, else tessera).
    #[arg(long)]
    from_vault_prefix: Option<String>,
    /// Target KV v2 path prefix (default VAULT_PATH_PREFIX, else tessera).
    #[arg(long)]
    to_vault_prefix: Option<String>,
    /// Source KV v2 mount (default VAULT_MOUNT_POINT, else secret).
    #[arg(long)]
    from_vault_mount: Option<String>,
    /// Target KV v2 mount (default VAULT_MOUNT_POINT, else secret).
    #[arg(long)]
    to_vault_mount: Option<String>,
    /// Name of the variable holding the source Vault token (default VAULT_TOKEN).
    #[arg(long, value_name = "NAME")]
    from_vault_token_env: Option<String>,
    /// Name of the variable holding the target Vault token (default VAULT_TOKEN).
    #[arg(long, value_name = "NAME")]
    to_vault_token_env: Option<String>,
}

/// One side's flags.
struct Side<'a> {
    flag: &'static str,
    name: &'a str,
    file_path: Option<PathBuf>,
    vault_addr: Option<String>,
    vault_prefix: Option<String>,
    vault_mount: Option<String>,
    vault_token_env: Option<String>,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    let mut settings = Settings::from_env()?;
    let from = Side {
        flag: "from",
        name: &args.from,
        file_path: args.from_file_path,
        vault_addr: args.from_vault_addr,
        vault_prefix: args.from_vault_prefix,
        vault_mount: args.from_vault_mount,
        vault_token_env: args.from_vault_token_env,
    };
    let to = Side {
        flag: "to",
        name: &args.to,
        file_path: args.to_file_path,
        vault_addr: args.to_vault_addr,
        vault_prefix: args.to_vault_prefix,
        vault_mount: args.to_vault_mount,
        vault_token_env: args.to_vault_token_env,
    };
    if to.name == "environment" {
        bail!("--to environment: the environment backend is read-only; it can only be a source");
    }
    let (from_backend, from_place) = backend(&from, &settings)?;
    let (to_backend, to_place) = backend(&to, &settings)?;
    if from_place == to_place {
        bail!("--from and --to name the same place ({from_place}); nothing to migrate");
    }
    // The service opens on the source backend; the target is opened beside it.
    settings.backend = from_backend;
    let mode = Mode { dry_run: args.dry_run, verify: args.verify, default_max_versions: settings.max_versions };
    let svc = open_service(&mut settings).await?;
    // A dry run leaves no trace: a target file that does not exist yet is
    // stood in for by an empty one in a scratch folder, removed at the end.
    let scratch = match &to_backend {
        Backend::File(path) if args.dry_run && !path.exists() => Some(scratch_dir()?),
        _ => None,
    };
    let to_backend = match &scratch {
        Some(dir) => Backend::File(dir.join("credentials.json")),
        None => to_backend,
    };
    let result = match open_backend(to_backend).with_context(|| format!("--to {}", to.name)) {
        Ok(target) => copy_and_verify(&mode, &svc, target.as_ref(), &from_place, &to_place).await,
        Err(e) => Err(e),
    };
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// What to do.
struct Mode {
    dry_run: bool,
    verify: bool,
    default_max_versions: u32,
}

async fn copy_and_verify(
    mode: &Mode,
    svc: &Tessera,
    target: &dyn SecretStore,
    from_place: &str,
    to_place: &str,
) -> anyhow::Result<ExitCode> {
    let sides = Sides {
        store: svc.metadata_store().as_ref(),
        keyring: svc.keyring(),
        audit: svc.audit_chain(),
        from: svc.secret_store().as_ref(),
        to: target,
    };
    let mut progress = |line: &str| println!("{line}");
    println!("migrating secrets from {from_place} to {to_place}{}", if mode.dry_run { " (dry run)" } else { "" });
    let opts = MigrateOptions { dry_run: mode.dry_run, default_max_versions: mode.default_max_versions };
    let report = tessera_core::migrate::migrate(&sides, &Ctx::cli(), &opts, &mut progress)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let mut failed = report.conflicts > 0;
    let mut summary = serde_json::to_value(&report)?;
    if mode.verify {
        println!("verifying {from_place} against {to_place}");
        let check = tessera_core::migrate::verify(&sides, !mode.dry_run, &mut progress)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        failed |= !check.ok;
        summary["verify"] = serde_json::to_value(&check)?;
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A fresh private folder for a dry run's stand-in target file.
fn scratch_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("tessera-migrate-dry-run-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// A side's backend, and a description of where it is (to refuse a migration onto itself).
fn backend(side: &Side<'_>, settings: &Settings) -> anyhow::Result<(Backend, String)> {
    let f = side.flag;
    let file_flags = side.file_path.is_some();
    let vault_flags = side.vault_addr.is_some()
        || side.vault_prefix.is_some()
        || side.vault_mount.is_some()
        || side.vault_token_env.is_some();
    if file_flags && side.name != "file" {
        bail!("--{f}-file-path applies only to --{f} file");
    }
    if vault_flags && side.name != "vault" {
        bail!("--{f}-vault-* options apply only to --{f} vault");
    }
    Ok(match side.name {
        "database" => (Backend::Database, "the database backend".to_owned()),
        "environment" => (Backend::Environment, "the environment backend".to_owned()),
        "file" => {
            let path = side
                .file_path
                .clone()
                .or_else(|| var("CREDENTIAL_FILE_PATH").map(PathBuf::from))
                .unwrap_or_else(|| settings.data_dir.join("credentials.json"));
            let place = format!("file {}", std::path::absolute(&path).unwrap_or_else(|_| path.clone()).display());
            (Backend::File(path), place)
        }
        "vault" => {
            let s = vault_settings(side)?;
            let place = format!("vault {}/v1/{}/data/{}", s.connection.addr.trim_end_matches('/'), s.mount, s.prefix);
            (Backend::Vault(Box::new(s)), place)
        }
        other => bail!("--{f} {other:?}: the backend must be one of database, file, environment, vault"),
    })
}

fn vault_settings(side: &Side<'_>) -> anyhow::Result<VaultSettings> {
    let f = side.flag;
    let Some(addr) = side.vault_addr.clone().or_else(|| var("VAULT_ADDR")).or_else(|| var("VAULT_URL")) else {
        bail!("--{f} vault needs --{f}-vault-addr or VAULT_ADDR (or VAULT_URL)");
    };
    let token_var = side.vault_token_env.as_deref().unwrap_or("VAULT_TOKEN");
    let valid_name = !token_var.is_empty() && token_var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_name {
        bail!("--{f}-vault-token-env must name an environment variable (letters, digits and _)");
    }
    let Some(token) = var(token_var) else {
        bail!("--{f} vault needs a token in {token_var}");
    };
    Ok(VaultSettings {
        connection: VaultConnection {
            addr,
            auth: VaultAuth::Token(SecretString::from(token)),
            namespace: var("VAULT_NAMESPACE"),
            tls: crate::settings::vault_tls()?,
        },
        mount: segment(&format!("--{f}-vault-mount"), side.vault_mount.clone(), "VAULT_MOUNT_POINT", "secret")?,
        prefix: segment(&format!("--{f}-vault-prefix"), side.vault_prefix.clone(), "VAULT_PATH_PREFIX", "tessera")?,
    })
}

/// A Vault path setting from a flag or a variable: segments of letters, digits, '.', '_' or '-'.
fn segment(flag: &str, value: Option<String>, variable: &str, default: &str) -> anyhow::Result<String> {
    let (value, from) = match value {
        Some(v) => (v, flag),
        None => (var(variable).unwrap_or_else(|| default.to_owned()), variable),
    };
    let value = value.trim_matches('/').to_owned();
    let ok = !value.is_empty()
        && value
            .split('/')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
    if !ok {
        bail!("{from} must be path segments of letters, digits, '.', '_' or '-'");
    }
    Ok(value)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
