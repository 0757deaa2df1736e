//! `file:<path>`: JSON Lines appended to a file (mode 0600), each batch
//! fsynced before it counts as delivered. Before a batch would take the file
//! past its size limit, the file is rotated (`<path>` -> `<path>.1` -> ..
//! -> `<path>.<keep>`, the oldest dropped). A file moved away by another
//! tool (logrotate) is noticed and a new one started.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tessera_core::audit_sink::{json_line, AuditSink, SinkError};
use tessera_core::service::AuditEventView;

/// A JSON Lines file sink.
pub struct FileSink {
    name: String,
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    /// The open file and its inode (to notice a rename behind our back).
    file: Mutex<Option<(File, u64)>>,
}

impl FileSink {
    /// A sink appending to `path`.
    pub fn new(name: String, path: PathBuf, max_bytes: u64, keep: u32) -> Self {
        Self { name, inner: Arc::new(Inner { path, max_bytes, keep: keep.max(1), file: Mutex::new(None) }) }
    }
}

#[async_trait]
impl AuditSink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[AuditEventView]) -> Result<(), SinkError> {
        let mut buf = Vec::with_capacity(events.len() * 320);
        for e in events {
            buf.extend_from_slice(json_line(e).as_bytes());
            buf.push(b'\n');
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.write_batch(&buf))
            .await
            .map_err(|e| SinkError(format!("the file write stopped: {e}")))?
            .map_err(|e| SinkError(format!("cannot write {}: {e}", self.inner.path.display())))
    }
}

impl Inner {
    fn write_batch(&self, buf: &[u8]) -> std::io::Result<()> {
        let mut slot = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A file renamed or removed by someone else: start a new one.
        if let Some((_, ino)) = slot.as_ref() {
            if std::fs::metadata(&self.path).map(|m| m.ino()).ok() != Some(*ino) {
                *slot = None;
            }
        }
        if slot.is_none() {
            *slot = Some(open_append(&self.path)?);
        }
        let (file, _) = slot.as_mut().expect("opened just above");
        let len = file.metadata()?.len();
        if self.max_bytes > 0 && len > 0 && len + buf.len() as u64 > self.max_bytes {
            *slot = None;
            self.rotate()?;
            *slot = Some(open_append(&self.path)?);
        }
        let (file, _) = slot.as_mut().expect("opened just above");
        let len = file.metadata()?.len();
        let written = file.write_all(buf).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // No half batch left behind: the retry appends the whole batch again.
            let _ = file.set_len(len);
            *slot = None;
            return Err(e);
        }
        Ok(())
    }

    /// `<path>.<keep-1>` -> `<path>.<keep>` ... `<path>` -> `<path>.1`, then
    /// the directory is fsynced so the renames survive a crash.
    fn rotate(&self) -> std::io::Result<()> {
        for n in (1..self.keep).rev() {
            let from = numbered(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, numbered(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        tracing::info!(file = %self.path.display(), "audit file rotated");
        Ok(())
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    let ino = file.metadata()?.ino();
    Ok((file, ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> AuditEventView {
        AuditEventView {
            seq,
            id: format!("id-{seq}"),
            at: "2026-12-01T00:00:00.000Z".into(),
            actor: "k".into(),
            actor_role: "admin".into(),
            tenant_id: Some("acme".into()),
            action: "secret.read".into(),
            resource: "tenants/acme/secrets/a".into(),
            outcome: "success".into(),
            request_id: None,
            client_ip: None,
            prev_hash: "0".repeat(64),
            hash: "1".repeat(64),
        }
    }

    #[tokio::test]
    async fn batches_are_appended_and_the_file_rotates_before_it_would_pass_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let line_len = json_line(&event(1)).len() as u64 + 1;
        // Room for two lines per file, three files kept.
        let sink = FileSink::new("f".into(), path.clone(), line_len * 2, 3);
        for seq in 1..=9 {
            sink.deliver(&[event(seq)]).await.expect("written");
        }
        let seqs = |p: &Path| -> Vec<i64> {
            std::fs::read_to_string(p)
                .expect("read")
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["seq"].as_i64().expect("seq"))
                .collect()
        };
        assert_eq!(seqs(&path), [9]);
        assert_eq!(seqs(&numbered(&path, 1)), [7, 8]);
        assert_eq!(seqs(&numbered(&path, 2)), [5, 6]);
        assert_eq!(seqs(&numbered(&path, 3)), [3, 4]);
        assert!(!numbered(&path, 4).exists(), "only three rotated files are kept");
        let mode = std::fs::metadata(&path).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[tokio::test]
    async fn a_file_moved_away_is_followed_by_a_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let sink = FileSink::new("f".into(), path.clone(), 0, 1);
        sink.deliver(&[event(1)]).await.expect("written");
        std::fs::rename(&path, dir.path().join("moved.jsonl")).expect("moved");
        sink.deliver(&[event(2)]).await.expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read").lines().count(), 1);
    }
}
