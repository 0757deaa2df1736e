//! The `file` backend: one JSON file holding Tessera ciphertext (and version
//! metadata), `CREDENTIAL_FILE_PATH`.
//!
//! Every change replaces the whole file: write a temporary file (mode 0600),
//! fsync it, rename it over the old one, fsync the folder. A crash at any
//! moment leaves the old file or the new one, never a torn one; a change is
//! acknowledged only after the rename is durable. An exclusive lock on a
//! sidecar `.lock` file keeps a second process from writing at the same time.
//! A file (or lock file) readable by group or others is refused at start.
//!
//! `tessera migrate` into a file asks it to hold changes in memory and write
//! them once per batch ([`SecretStore::hold_changes`]): rewriting the whole
//! file for every copied version made a migration quadratic in its size.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_core::ErrorCode;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::ports::{SecretRecord, SecretVersionRecord, StoreTx};
use tessera_core::secret_store::{NewVersion, SecretStore};
use tessera_core::ServiceError;
use tokio::sync::Mutex;

use crate::error::BackendError;
use crate::records::Secrets;

const FORMAT: &str = "tessera-credentials-v1";
/// The setting every start-up error names.
const SETTING: &str = "CREDENTIAL_FILE_PATH";

#[derive(Deserialize)]
struct Document {
    format: String,
    #[serde(flatten)]
    secrets: Secrets,
}

/// What is written: the same shape, borrowing the secrets.
#[derive(Serialize)]
struct DocumentRef<'a> {
    format: &'a str,
    #[serde(flatten)]
    secrets: &'a Secrets,
}

/// Secrets in one atomically replaced file.
pub struct FileSecrets {
    path: PathBuf,
    state: Mutex<State>,
    // Held for the life of the process: the exclusive lock.
    _lock: File,
}

struct State {
    secrets: Secrets,
    /// While changes are held: the state on disk, restored if the flush fails.
    durable: Option<Secrets>,
}

impl FileSecrets {
    /// Opens (or creates) the file; refuses loose permissions, a corrupt
    /// file, or a file another process holds.
    pub fn open(path: &Path) -> Result<Self, BackendError> {
        let dir = parent(path);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let lock_path = path.with_extension("lock");
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        lock.try_lock().map_err(|e| match e {
            TryLockError::WouldBlock => BackendError::Locked { path: path.to_owned() },
            TryLockError::Error(source) => io("lock", &lock_path)(source),
        })?;
        let secrets = if path.exists() {
            check_private(path)?;
            let text = std::fs::read_to_string(path).map_err(io("read", path))?;
            let doc: Document =
                serde_json::from_str(&text).map_err(|_| BackendError::NotACredentialFile { path: path.to_owned() })?;
            if doc.format != FORMAT {
                return Err(BackendError::UnknownFormat { path: path.to_owned(), found: doc.format, expected: FORMAT });
            }
            doc.secrets
        } else {
            let empty = Secrets::default();
            persist(path, &empty).map_err(io("create", path))?;
            empty
        };
        Ok(Self { path: path.to_owned(), state: Mutex::new(State { secrets, durable: None }), _lock: lock })
    }

    /// Applies a change to a copy, makes the copy durable, then publishes it:
    /// a failed write leaves memory and disk as they were. While changes are
    /// held, applies it in memory only (`f` changes nothing when it fails).
    async fn change<T>(&self, f: impl FnOnce(&mut Secrets) -> Result<T, ServiceError>) -> Result<T, ServiceError> {
        let mut state = self.state.lock().await;
        if state.durable.is_some() {
            return f(&mut state.secrets);
        }
        let mut next = state.secrets.clone();
        let out = f(&mut next)?;
        state.secrets = self.write(next).await?;
        Ok(out)
    }

    /// Makes `secrets` the file's content (off the async threads); gives them back once durable.
    async fn write(&self, secrets: Secrets) -> Result<Secrets, ServiceError> {
        let path = self.path.clone();
        let (secrets, written) = tokio::task::spawn_blocking(move || {
            let r = persist(&path, &secrets);
            (secrets, r)
        })
        .await
        .map_err(|_| ServiceError::internal("the credential file writer stopped"))?;
        written.map_err(|e| {
            tracing::error!(error = %e, "writing the credential file failed");
            ServiceError::unavailable(
                ErrorCode::CredentialFileUnwritable,
                "the credential file could not be written; nothing was changed",
            )
        })?;
        Ok(secrets)
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

fn check_private(path: &Path) -> Result<(), BackendError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(io("read", path))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(BackendError::LoosePermissions { setting: SETTING, path: path.to_owned(), mode });
        }
    }
    Ok(())
}

/// An I/O error on `path` while trying to `action` it, as a start-up error.
fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackendError + 'a {
    move |source| BackendError::Io { setting: SETTING, action, path: path.to_owned(), source }
}

/// Temp file, fsync, rename, fsync the folder.
fn persist(path: &Path, secrets: &Secrets) -> std::io::Result<()> {
    let doc = DocumentRef { format: FORMAT, secrets };
    let bytes = serde_json::to_vec(&doc).map_err(std::io::Error::other)?;
    let dir = parent(path);
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = private_options().write(true).create_new(true).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl SecretStore for FileSecrets {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn hold_changes(&self) -> bool {
        let mut state = self.state.lock().await;
        if state.durable.is_none() {
            state.durable = Some(state.secrets.clone());
        }
        true
    }

    async fn flush(&self) -> Result<(), ServiceError> {
        let mut state = self.state.lock().await;
        let Some(durable) = state.durable.take() else { return Ok(()) };
        let held = std::mem::take(&mut state.secrets);
        match self.write(held).await {
            Ok(written) => {
                state.secrets = written;
                Ok(())
            }
            Err(e) => {
                state.secrets = durable;
                Err(e)
            }
        }
    }

    async fn head(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Option<SecretRecord>, ServiceError> {
        Ok(self.state.lock().await.secrets.head(tenant, path))
    }

    async fn version(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
    ) -> Result<Option<SecretVersionRecord>, ServiceError> {
        let state = self.state.lock().await;
        Ok(state
            .secrets
            .entry(tenant, path)
            .and_then(|e| e.versions.iter().find(|v| v.version == version))
            .map(|v| v.record()))
    }

    async fn versions(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
    ) -> Result<Vec<SecretVersionRecord>, ServiceError> {
        Ok(self.state.lock().await.secrets.versions(tenant, path))
    }

    async fn append(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        new: NewVersion,
        cas: Option<u32>,
        max_versions: u32,
    ) -> Result<u32, ServiceError> {
        self.change(|s| s.append(tenant, path, new, cas, max_versions)).await
    }

    async fn set_deleted(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
        at: Option<DateTime<Utc>>,
    ) -> Result<(), ServiceError> {
        let at = at.map(|t| t.timestamp_micros());
        self.change(|s| {
            s.change(tenant, path, versions, |v| v.deleted_at = at);
            Ok(())
        })
        .await
    }

    async fn destroy(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        versions: &[u32],
    ) -> Result<(), ServiceError> {
        self.change(|s| {
            s.change(tenant, path, versions, |v| v.ciphertext = None);
            Ok(())
        })
        .await
    }

    async fn replace_ciphertext(
        &self,
        _tx: &mut dyn StoreTx,
        tenant: &str,
        path: &str,
        version: u32,
        ciphertext: &str,
    ) -> Result<(), ServiceError> {
        self.change(|s| {
            s.change(tenant, path, &[version], |v| {
                if v.ciphertext.is_some() {
                    v.ciphertext = Some(ciphertext.to_owned());
                }
            });
            Ok(())
        })
        .await
    }

    async fn list_paths(&self, _tx: &mut dyn StoreTx, tenant: &str, prefix: &str) -> Result<Vec<String>, ServiceError> {
        Ok(self.state.lock().await.secrets.paths(tenant, prefix))
    }

    async fn remove(&self, _tx: &mut dyn StoreTx, tenant: &str, path: &str) -> Result<(), ServiceError> {
        self.change(|s| {
            s.remove(tenant, path);
            Ok(())
        })
        .await
    }

    async fn remove_prefix(&self, _tx: &mut dyn StoreTx, prefix: &str) -> Result<(), ServiceError> {
        self.change(|s| {
            s.remove_prefix(prefix);
            Ok(())
        })
        .await
    }

    async fn remove_tenant(&self, tenant: &str) -> Result<(), ServiceError> {
        self.change(|s| {
            s.tenants.remove(tenant);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("credentials.json");
        let first = FileSecrets::open(&path).expect("first opens");
        let err = FileSecrets::open(&path).err().expect("second refused");
        assert!(matches!(err, BackendError::Locked { .. }), "{err:?}");
        assert!(err.to_string().contains("in use by another process"), "{err}");
        drop(first);
        assert!(FileSecrets::open(&path).is_ok(), "free again once the first is gone");
    }

    fn version(ciphertext: &str) -> NewVersion {
        NewVersion {
            kind: "value".into(),
            ciphertext: ciphertext.into(),
            created_by: "test".into(),
            created_at: Utc::now(),
            deleted_at: None,
        }
    }

    fn on_disk(path: &Path) -> String {
        std::fs::read_to_string(path).expect("file readable")
    }

    #[tokio::test]
    async fn held_changes_reach_the_file_only_at_flush_and_a_failed_flush_drops_them() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("credentials.json");
        let store = FileSecrets::open(&path).expect("opens");
        store.change(|s| s.append("acme", "before", version("tsr:v1:one"), Some(0), 5)).await.expect("written");
        assert!(on_disk(&path).contains("tsr:v1:one"), "an unheld change is durable at once");

        assert!(store.hold_changes().await);
        for i in 0..3 {
            store
                .change(|s| s.append("acme", &format!("held/{i}"), version("tsr:v1:held"), Some(0), 5))
                .await
                .expect("held");
        }
        let refused = store.change(|s| s.append("acme", "before", version("tsr:v1:cas"), Some(0), 5)).await;
        assert!(refused.is_err(), "check-and-set still applies while holding");
        assert_eq!(store.state.lock().await.secrets.paths("acme", "").len(), 4, "held changes are readable");
        assert!(!on_disk(&path).contains("held/"), "held changes are not on disk before the flush");
        store.flush().await.expect("flushed");
        let text = on_disk(&path);
        assert!((0..3).all(|i| text.contains(&format!("held/{i}"))), "the flush wrote every held change");
        assert!(!text.contains("tsr:v1:cas"), "the refused append left nothing");

        // A failed flush: the file's place is taken by a directory, so the rename fails.
        assert!(store.hold_changes().await);
        store.change(|s| s.append("acme", "lost", version("tsr:v1:lost"), Some(0), 5)).await.expect("held");
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir_all(path.join("blocker")).expect("dir in the way");
        assert!(store.flush().await.is_err(), "the flush reports the failure");
        assert!(store.state.lock().await.secrets.head("acme", "lost").is_none(), "the held change is dropped");
        assert!(store.state.lock().await.secrets.head("acme", "held/2").is_some(), "flushed changes stay");
        std::fs::remove_dir_all(&path).expect("rm dir");
        store.change(|s| s.append("acme", "after", version("tsr:v1:after"), Some(0), 5)).await.expect("writes again");
        let text = on_disk(&path);
        assert!(text.contains("held/2") && text.contains("tsr:v1:after") && !text.contains("tsr:v1:lost"));
    }

    #[test]
    fn a_file_readable_by_others_or_corrupt_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("credentials.json");
        drop(FileSecrets::open(&path).expect("created"));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = FileSecrets::open(&path).err().expect("loose mode refused");
        assert!(matches!(err, BackendError::LoosePermissions { mode: 0o644, .. }), "{err:?}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "{\"torn").expect("write");
        let err = FileSecrets::open(&path).err().expect("corrupt refused");
        assert!(matches!(err, BackendError::NotACredentialFile { .. }), "{err:?}");
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
