//! `tessera backup FILE` and `tessera restore FILE`: argument handling and
//! printing only; the export, its checks and the restore live in
//! `tessera_store::backup`.

use std::path::Path;
use std::process::ExitCode;

use crate::service::{key_provider, DevKey};
use crate::settings::{ensure_data_dir, MasterKeySource, Settings};

const KEY_REMINDER: &str = "The master key is NOT in the backup: store it separately (never in the same place as \
                            the backup); without it the backup cannot be read, and with it anyone can.";

/// Writes a consistent snapshot of the metadata store while servers keep serving.
pub async fn backup(file: &Path) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_env_store_only()?;
    let summary = tessera_store::backup::backup(&settings.database_url, file).await?;
    println!(
        "backup: {} rows, {} bytes written to {} (store {}, schema {}, master key {})",
        summary.rows(),
        summary.bytes,
        file.display(),
        summary.store,
        summary.schema,
        summary.kek_id
    );
    eprintln!("{KEY_REMINDER}");
    Ok(ExitCode::SUCCESS)
}

/// Fills an empty store from a backup, under the master key `serve` would use.
pub async fn restore(file: &Path) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::from_env()?;
    if settings.database_url.starts_with("sqlite:") {
        ensure_data_dir(&settings.data_dir)?;
    }
    let source = std::mem::replace(&mut settings.master_key, MasterKeySource::DevFile(Default::default()));
    let kek_id = key_provider(source, DevKey::MustExist)?.kek_id();
    let summary = tessera_store::backup::restore(&settings.database_url, file, &kek_id).await?;
    println!(
        "restore: {} rows, {} bytes restored from {} (made on {}, schema {}, master key {}); start the servers, \
         then `tessera audit verify`",
        summary.rows(),
        summary.bytes,
        file.display(),
        summary.store,
        summary.schema,
        summary.kek_id
    );
    Ok(ExitCode::SUCCESS)
}
