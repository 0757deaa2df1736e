//! `tessera backfill [--dry-run]`.

use std::process::ExitCode;

use tessera_core::Ctx;

use crate::service::open_service;
use crate::settings::Settings;

pub async fn run(dry_run: bool) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    let mut settings = Settings::from_env()?;
    let svc = open_service(&mut settings).await?;
    let report = svc.backfill(&Ctx::cli(), dry_run).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
