//! Signed checkpoints of the audit chain's head, kept outside the database:
//! one JSON line per checkpoint in `<data dir>/audit-checkpoints.jsonl`
//! (mode 0600, fsynced). Whoever can write the database but not this file
//! cannot cut the chain short or rewrite it without `tessera audit verify`
//! noticing: every checkpoint must still name an event of the chain, with
//! the same hash. Each replica keeps its own file beside its data.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tessera_core::audit::Checkpoint;
use tessera_core::Tessera;

/// Where the checkpoints of a data dir are kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit-checkpoints.jsonl")
}

/// Every checkpoint in the file (none if it does not exist).
pub fn read_all(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {} is not a checkpoint", path.display(), i + 1))
        })
        .collect()
}

/// Appends one checkpoint line and makes it durable.
fn append(path: &Path, c: &Checkpoint) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut line = serde_json::to_vec(c)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(())
}

/// Records a checkpoint every `interval` while the head moves (none when
/// it has not moved since the last one).
pub fn spawn(svc: Arc<Tessera>, path: PathBuf, interval: Duration) {
    tokio::spawn(async move {
        let mut last: Option<i64> = read_all(&path).ok().and_then(|all| all.last().map(|c| c.seq));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match svc.audit_checkpoint().await {
                Ok(Some(c)) if last != Some(c.seq) => {
                    let seq = c.seq;
                    let written = {
                        let path = path.clone();
                        tokio::task::spawn_blocking(move || append(&path, &c)).await
                    };
                    match written {
                        Ok(Ok(())) => last = Some(seq),
                        Ok(Err(e)) => tracing::warn!(error = %e, "could not record an audit checkpoint"),
                        Err(e) => tracing::warn!(error = %e, "could not record an audit checkpoint"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the audit head for a checkpoint"),
            }
        }
    });
}
