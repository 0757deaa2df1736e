//! `tessera keys rotate-master` and `tessera keys prune-wraps`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tessera_core::keyring::LocalKeyProvider;
use tessera_core::Ctx;
use tessera_crypto::MasterKey;

use crate::service::open_service;
use crate::settings::{MasterKeySource, Settings};

pub enum KeysAction {
    RotateMaster { new_key_file: PathBuf, batch: i64 },
    PruneWraps,
    Rewrap { tenant: Option<String> },
}

pub async fn run(action: KeysAction) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    let mut settings = Settings::from_env()?;
    // Where the current key came from, for the steps printed after a rotation.
    let key_source = match &settings.master_key {
        MasterKeySource::Env(_, var) => KeySource::Var(var),
        MasterKeySource::DevFile(path) => KeySource::DevFile(path.clone()),
        MasterKeySource::Transit(..) => KeySource::Transit,
    };
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
            let new_text = new.to_base64();
            let provider = Arc::new(LocalKeyProvider::new(new));
            // A later pass that finds nothing new repeats the count: print each count once.
            let last = std::sync::atomic::AtomicU64::new(u64::MAX);
            let progress = |n: u64| {
                if last.swap(n, std::sync::atomic::Ordering::Relaxed) != n {
                    eprintln!("rotate-master: {n} data keys under the new key");
                }
            };
            let report = svc
                .rotate_master_key(&ctx, provider, batch.max(1), &progress)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            eprintln!(
                "rotate-master: done: {} data keys rewrapped, {} already under the new key",
                report.rewrapped, report.already
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!("{}", next_steps(&key_source, &new_text)?);
        }
        KeysAction::Rewrap { tenant } => {
            let started = std::time::Instant::now();
            let line = |r: &tessera_core::service::RewrapReport| {
                format!("{} secrets, {} versions rewrapped, {} already current", r.secrets, r.rewrapped, r.current)
            };
            let progress = |r: &tessera_core::service::RewrapReport| {
                if r.secrets.is_multiple_of(100) {
                    eprintln!("rewrap: {}", line(r));
                }
            };
            let report =
                svc.rewrap(&ctx, tenant.as_deref(), &progress).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let secs = started.elapsed().as_secs_f64().max(1e-6);
            // The summary carries the final counts, the same as the JSON report.
            eprintln!(
                "rewrap: done: {} in {secs:.2} s ({:.0} versions/s)",
                line(&report),
                report.rewrapped as f64 / secs
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        KeysAction::PruneWraps => {
            let n = svc.prune_key_wraps(&ctx).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("{{\"deleted\": {n}}}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the master key in use came from.
enum KeySource {
    Var(&'static str),
    DevFile(PathBuf),
    Transit,
}

/// After a rotation: the dev key file is replaced by the new key (so a
/// restart in dev mode reads it), otherwise the operator is told which
/// setting to change. Returns what to do next.
fn next_steps(source: &KeySource, new_key: &str) -> anyhow::Result<String> {
    let prune = "then run `tessera keys prune-wraps` to delete the wraps under the old key";
    Ok(match source {
        KeySource::DevFile(path) => {
            replace_key_file(path, new_key).with_context(|| {
                format!(
                    "the store is now under the new key, but the dev key file {} could not be replaced: copy the \
                     new key file over it (mode 0600) before the next start",
                    path.display()
                )
            })?;
            format!(
                "The dev key file {} now holds the new key: restart every server that uses it (servers still \
                 running keep reading with the old key until then); {prune}.",
                path.display()
            )
        }
        KeySource::Var(var) => format!("Start every server with {var} set to the new key now; {prune}."),
        KeySource::Transit => format!(
            "The data keys are now wrapped by this local key instead of Vault Transit: start every server with \
             TESSERA_KEYRING=local and TESSERA_MASTER_KEY set to the new key; {prune}."
        ),
    })
}

/// Replaces a key file atomically: a 0600 file beside it, synced, renamed over it.
fn replace_key_file(path: &std::path::Path, key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("key.new");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(key.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
