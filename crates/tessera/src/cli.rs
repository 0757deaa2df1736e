//! Command-line interface.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::Settings;

/// Tessera: a multi-tenant vault for integration configuration and credentials.
#[derive(Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP API, the web console, the connect page and the background
    /// workers on TESSERA_LISTEN (default 127.0.0.1:7300).
    ///
    /// Example: TESSERA_MASTER_KEY=$(cat master.key) DATABASE_URL=postgres://tessera@db/tessera tessera serve
    #[command(after_help = "Run `tessera serve --help` for every setting.", after_long_help = crate::help::settings())]
    Serve,
    /// Encrypts config values stored as plain text in fields the schema now
    /// marks secret, for defaults and every tenant.
    ///
    /// Example: tessera backfill --dry-run && tessera backfill
    Backfill {
        /// Only count what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Applies a tenants file (tenants, integration config and
    /// credentials, with ${VAULT:..}, ${ENV:..}, ${FILE:..} references); only
    /// what differs is written. Exits 1 (writing nothing) on any bad entry.
    ///
    /// Example: tessera apply -f tenants.yaml --dry-run && tessera apply -f tenants.yaml
    Apply {
        /// The file: JSON, or YAML when it ends in .yaml/.yml.
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        /// Only print the plan.
        #[arg(long)]
        dry_run: bool,
    },
    /// Imports secrets: records encrypted by an older system, or the keys of another secrets manager.
    ///
    /// Encrypted records (--format fernet|aes-gcm-hex --key K --input F.jsonl), re-encrypted
    /// under Tessera's keys. The input is JSON Lines, one record a line:
    ///   {"tenantId": "acme", "path": "stripe/api-key", "ciphertext": "..."}
    ///     a tenant secret, stored as {"value": <plaintext>};
    ///   {"tenantId": "acme", "integration": "langfuse", "field": "secret_key", "ciphertext": "..."}
    ///     a secret config field of a connection (tenantId _platform: the integration's defaults).
    /// Formats: fernet (Fernet tokens; the key is 32 bytes of url-safe base64) and
    /// aes-gcm-hex (ivHex:cipherHex:tagHex, AES-256-GCM; the key as 64 hex characters or base64).
    /// A bad line is reported as "line N: reason" (never a value) and the others still import;
    /// the exit status is 1 if any line failed.
    ///
    /// Keys of another secrets manager (--tenant T [--prefix P]), each key one tenant secret
    /// at [P/]KEY, stored as {"value": ...}:
    ///   --format dotenv FILE          any dotenv file (export prefixes, comments, quotes,
    ///                                 escapes, multi-line values), e.g. `infisical export --format=dotenv`
    ///   --format infisical-json FILE  `infisical export --format=json` (its secretPath folders kept)
    ///   --from-vault [--mount M] [--path P]
    ///                                 a Vault or OpenBao KV v2 subtree (VAULT_ADDR, VAULT_TOKEN),
    ///                                 each secret's fields as one secret
    /// A key whose value is already the newest version's is left alone, so a second run changes
    /// nothing (and says so); a different value becomes a new version (reported). A bad line or
    /// a key given twice is reported and not written; the exit status is 1 if any failed.
    ///
    /// Example: TESSERA_IMPORT_KEY=$(cat old.key) tessera import --format fernet --input secrets.jsonl
    /// Example: infisical export --env=prod --format=json > acme.json && tessera import --format infisical-json --tenant acme acme.json
    #[command(verbatim_doc_comment)]
    Import(crate::import::ImportArgs),
    /// Copies every tenant's secrets (all kept versions) from one credential
    /// backend to another; idempotent. Exits 1 on conflicts or a verify difference.
    ///
    /// Example: VAULT_ADDR=https://vault:8200 VAULT_TOKEN=... tessera migrate --from database --to vault --verify
    Migrate(Box<crate::migrate::MigrateArgs>),
    /// Key operations.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Writes a consistent snapshot of the metadata store to FILE while servers
    /// keep serving (ciphertext and wrapped keys only; the master key is not in it).
    ///
    /// Example: tessera backup /backups/tessera-$(date +%F).bak
    Backup {
        /// The backup file (written 0600, under a temporary name, then renamed).
        file: std::path::PathBuf,
    },
    /// Fills an empty store (DATABASE_URL) from a backup made under the
    /// configured master key; refuses a non-empty store or a damaged file.
    ///
    /// Example: TESSERA_MASTER_KEY=$(cat master.key) DATABASE_URL=postgres://tessera@db/fresh tessera restore tessera.bak
    Restore {
        /// The backup file.
        file: std::path::PathBuf,
    },
    /// Audit log operations.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Prints a new random master key (32 bytes, base64) for TESSERA_MASTER_KEY
    /// or a key file; nothing else is read or written.
    ///
    /// Example: (umask 077; tessera keys generate > new-master.key)
    Generate,
    /// Rewraps every tenant data key under a new master key (values are not
    /// touched); servers keep reading throughout. Resumable.
    ///
    /// Example: tessera keys rotate-master --new-key-file new-master.key
    RotateMaster {
        /// File holding the new master key (base64 or hex of 32 bytes).
        #[arg(long)]
        new_key_file: std::path::PathBuf,
        /// Data keys per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: i64,
    },
    /// Deletes wraps under retired master keys, once every server runs with the new key.
    ///
    /// Example: TESSERA_MASTER_KEY=$(cat new-master.key) tessera keys prune-wraps
    PruneWraps,
    /// Re-encrypts stored values under each tenant's newest data key (after
    /// `POST /tenants/{id}/keys/rotate`) and in the current ciphertext format,
    /// one secret per transaction. Resumable.
    ///
    /// Example: tessera keys rewrap --tenant acme
    Rewrap {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recomputes the audit chain from the database, offline (the keyed
    /// hashes need the master key, as `serve` does), and checks the signed
    /// checkpoints kept beside the data (`<data dir>/audit-checkpoints.jsonl`);
    /// exits 1 if anything is broken.
    ///
    /// Example: tessera audit verify --checkpoints /offsite/audit-checkpoints.jsonl
    Verify {
        /// Another checkpoints file (a copy kept elsewhere).
        #[arg(long)]
        checkpoints: Option<std::path::PathBuf>,
    },
    /// Writes the audit events of a range to stdout, oldest first, as JSON
    /// Lines or CSV (fields a spreadsheet would run as a formula are defused).
    ///
    /// Example: tessera audit export --since 2026-12-01 --until 2026-12-02 --tenant acme --format csv > acme.csv
    Export(crate::audit_export::ExportArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => {
            let settings = Settings::from_env()?;
            crate::serve::serve(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill { dry_run } => crate::backfill::run(dry_run).await,
        Command::Apply { file, dry_run } => crate::apply::run(file, dry_run).await,
        Command::Import(args) => crate::import::run(args).await,
        Command::Migrate(args) => crate::migrate::run(*args).await,
        Command::Keys { command } => match command_args(command) {
            Some(action) => crate::keys::run(action).await,
            // Needs no setting and no store: a key for a new deployment or a rotation.
            None => {
                println!("{}", tessera_crypto::MasterKey::generate().to_base64().as_str());
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Backup { file } => crate::backup::backup(&file).await,
        Command::Restore { file } => crate::backup::restore(&file).await,
        Command::Audit { command: AuditCommand::Export(args) } => crate::audit_export::run(args).await,
        Command::Audit { command: AuditCommand::Verify { checkpoints } } => {
            let mut settings = Settings::from_env()?;
            let file = checkpoints.unwrap_or_else(|| crate::checkpoints::path(&settings.data_dir));
            let checkpoints = crate::checkpoints::read_all(&file)?;
            let svc = crate::service::open_service(&mut settings).await?;
            let report = svc.verify_audit_with(&checkpoints).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

/// The store operation a keys command runs; none for `generate`.
fn command_args(c: KeysCommand) -> Option<crate::keys::KeysAction> {
    Some(match c {
        KeysCommand::RotateMaster { new_key_file, batch } => {
            crate::keys::KeysAction::RotateMaster { new_key_file, batch }
        }
        KeysCommand::PruneWraps => crate::keys::KeysAction::PruneWraps,
        KeysCommand::Rewrap { tenant } => crate::keys::KeysAction::Rewrap { tenant },
        KeysCommand::Generate => return None,
    })
}
