//! Opening the service layer from settings: master key, metadata store,
//! credential backend. Shared by `serve` and the admin commands.

use std::sync::Arc;

use anyhow::Context;
use tessera_backends::environment::EnvironmentSecrets;
use tessera_backends::file::FileSecrets;
use tessera_backends::transit::TransitKeyProvider;
use tessera_backends::vault::VaultSecrets;
use tessera_core::keyring::LocalKeyProvider;
use tessera_core::ports::KeyProvider;
use tessera_core::secret_store::{DatabaseSecrets, SecretStore};
use tessera_core::service::{Outbound, ProxyLimits};
use tessera_core::{Tessera, TesseraOptions};

use crate::settings::{ensure_data_dir, load_or_create_dev_key, Backend, MasterKeySource, Settings};

/// Opens the service described by `settings` for an admin command, which
/// calls nothing outside (consumes the key material).
pub async fn open_service(settings: &mut Settings) -> anyhow::Result<Tessera> {
    open_service_with(settings, Outbound::offline()).await
}

/// Opens the service described by `settings`, calling out through
/// `outbound` (consumes the key material).
pub async fn open_service_with(settings: &mut Settings, outbound: Outbound) -> anyhow::Result<Tessera> {
    // The SQLite file in the data dir needs the dir before the store opens.
    if settings.database_url.starts_with("sqlite:") {
        ensure_data_dir(&settings.data_dir)?;
    }
    // The store first, then the credential backend, and the dev master key
    // last: a DATABASE_URL or backend that does not work stops start-up
    // before a data dir or a key is made for a deployment that never ran.
    let store = tessera_store::connect(&settings.database_url)
        .await
        .with_context(|| "cannot open the metadata store (DATABASE_URL)")?
        .with_read_audit(settings.audit_reads);
    let backend = std::mem::replace(&mut settings.backend, Backend::Database);
    if matches!(backend, Backend::File(_)) || matches!(settings.master_key, MasterKeySource::DevFile(_)) {
        ensure_data_dir(&settings.data_dir)?;
    }
    let secrets = open_backend(backend)?;
    let source = std::mem::replace(&mut settings.master_key, MasterKeySource::DevFile(Default::default()));
    let provider = key_provider(source, DevKey::Create)?;
    // Cached views here drop as soon as another replica writes.
    store.follow_other_replicas();
    tracing::info!(backend = secrets.name(), "credential backend");
    let opts = TesseraOptions {
        max_versions: settings.max_versions,
        root_token: settings.root_token.take(),
        key_cache_ttl: std::time::Duration::from_secs(settings.key_cache_seconds),
        view_cache_ttl: std::time::Duration::from_secs(settings.view_cache_seconds),
        oauth: settings.oauth.clone(),
        rate_limit: settings.rate_limit,
        anonymous_rate_limit: settings.anonymous_rate_limit,
        allow_loopback: settings.allow_loopback_http,
        webhooks: settings.webhooks.clone(),
        console: settings.console.clone(),
        proxy: ProxyLimits {
            max_body_bytes: settings.max_body_bytes,
            max_response_bytes: settings.proxy_max_response_bytes,
        },
        ..TesseraOptions::default()
    };
    Tessera::builder(Arc::new(store), provider, secrets)
        .options(opts)
        .outbound(outbound)
        .open()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// What to do when no master key is set and the dev key file is missing.
pub enum DevKey {
    /// Generate it (a first `serve` in dev mode).
    Create,
    /// Stop: a new key could not read anything (`restore`).
    MustExist,
}

/// The key provider the master key settings describe (consumes the key material).
pub fn key_provider(source: MasterKeySource, dev_key: DevKey) -> anyhow::Result<Arc<dyn KeyProvider>> {
    Ok(match source {
        MasterKeySource::Env(key, var) => {
            tracing::info!(source = var, "master key loaded");
            Arc::new(LocalKeyProvider::new(*key))
        }
        MasterKeySource::DevFile(path) => {
            if matches!(dev_key, DevKey::MustExist) && !path.exists() {
                anyhow::bail!(
                    "no master key: TESSERA_MASTER_KEY is not set and there is no dev key file {}; set \
                     TESSERA_MASTER_KEY to the key the backup was made with",
                    path.display()
                );
            }
            let key = load_or_create_dev_key(&path)?;
            tracing::warn!(
                file = %path.display(),
                "DEV MODE: no TESSERA_MASTER_KEY set; using a generated master key stored next to the data. \
                 Anyone who can read this folder can read every secret. Set TESSERA_MASTER_KEY for real use."
            );
            Arc::new(LocalKeyProvider::new(key))
        }
        MasterKeySource::Transit(connection, engine) => {
            tracing::info!(%engine, "data keys wrapped by Vault Transit");
            Arc::new(TransitKeyProvider::new(*connection, engine)?)
        }
    })
}

/// Opens a credential backend (nothing is contacted yet for `vault`).
pub fn open_backend(backend: Backend) -> anyhow::Result<Arc<dyn SecretStore>> {
    Ok(match backend {
        Backend::Database => Arc::new(DatabaseSecrets),
        // The errors name the setting; the chain under them (`{:#}`) the I/O or TLS cause.
        Backend::File(path) => Arc::new(FileSecrets::open(&path)?),
        Backend::Vault(v) => Arc::new(VaultSecrets::new(*v)?),
        Backend::Environment => Arc::new(EnvironmentSecrets::from_vars(std::env::vars())?),
    })
}

#[cfg(test)]
mod tests {
    use tessera_core::ports::MetadataStore;

    use super::*;

    /// The delivery worker's sweep runs every few seconds and mostly finds
    /// nothing to do; were its transaction a change, each commit would empty
    /// the view cache of this process and (on PostgreSQL) of every replica.
    #[tokio::test]
    async fn the_webhook_sweep_leaves_cached_views_valid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Arc::new(tessera_store::connect(&url).await.expect("store"));
        let provider = Arc::new(LocalKeyProvider::new(tessera_crypto::MasterKey::generate()));
        let svc = Tessera::builder(store.clone(), provider, Arc::new(DatabaseSecrets)).offline().open().await;
        let svc = svc.map_err(|e| e.message).expect("service");
        let before = store.change_generation();
        for _ in 0..3 {
            svc.deliver_webhooks(100).await.expect("sweep");
        }
        assert_eq!(store.change_generation(), before, "a sweep that changed no view moved the change generation");
    }
}
