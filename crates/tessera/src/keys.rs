//! `tessera keys rotate-master` and `tessera keys prune-wraps`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tessera_core::keyring::LocalKeyProvider;
use tessera_core::Ctx;
use tessera_crypto::MasterKey;

use crate::service::open_service;
use crate::settings::Settings;

pub enum KeysAction {
    RotateMaster { new_key_file: PathBuf, batch: i64 },
    PruneWraps,
    Rewrap { tenant: Option<String> },
}

pub async fn run(action: KeysAction) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    let mut settings = Settings::from_env()?;
    let svc = open_service(&mut settings).await?;
    let ctx = Ctx::cli();
    match action {
        KeysAction::RotateMaster { new_key_file, batch } => {
            let text = std::fs::read_to_string(&new_key_file)
                .with_context(|| format!("cannot read --new-key-file {}", new_key_file.display()))?;
            let new = MasterKey::from_text(&text).map_err(|_| {
                anyhow::anyhow!(
                    "--new-key-file {} must hold base64 (or hex) of exactly 32 bytes",
                    new_key_file.display()
                )
            })?;
            let provider = Arc::new(LocalKeyProvider::new(new));
            let progress = |n: u64| eprintln!("rotate-master: {n} data keys done");
            let report = svc
                .rotate_master_key(&ctx, provider, batch.max(1), &progress)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!(
                "Start every server with the new key now (TESSERA_MASTER_KEY); then run `tessera keys prune-wraps` \
                 to delete the wraps under the old key."
            );
        }
        KeysAction::Rewrap { tenant } => {
            let started = std::time::Instant::now();
            let progress = |r: &tessera_core::service::RewrapReport| {
                if r.secrets.is_multiple_of(100) {
                    eprintln!("rewrap: {} secrets, {} versions rewrapped", r.secrets, r.rewrapped);
                }
            };
            let report =
                svc.rewrap(&ctx, tenant.as_deref(), &progress).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            eprintln!("rewrap: done in {secs:.2} s ({:.0} versions/s)", report.rewrapped as f64 / secs);
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        KeysAction::PruneWraps => {
            let n = svc.prune_key_wraps(&ctx).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{{\"deleted\": {n}}}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
