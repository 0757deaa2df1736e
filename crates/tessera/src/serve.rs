//! `tessera serve`: opens the store and keyring, prints the first admin key
//! once, and serves the API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tessera_backends::environment::EnvironmentSecrets;
use tessera_backends::file::FileSecrets;
use tessera_core::keyring::LocalKeyProvider;
use tessera_core::secret_store::{DatabaseSecrets, SecretStore};
use tessera_core::{Tessera, TesseraOptions};
use tessera_http::HttpOptions;
use tracing_subscriber::EnvFilter;

use crate::settings::{ensure_data_dir, load_or_create_dev_key, Backend, MasterKeySource, Settings};

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let is_sqlite = settings.database_url.starts_with("sqlite:");
    if is_sqlite
        || matches!(settings.master_key, MasterKeySource::DevFile(_))
        || matches!(settings.backend, Backend::File(_))
    {
        ensure_data_dir(&settings.data_dir)?;
    }
    let master = match settings.master_key {
        MasterKeySource::Env(key, var) => {
            tracing::info!(source = var, "master key loaded");
            *key
        }
        MasterKeySource::DevFile(path) => {
            let key = load_or_create_dev_key(&path)?;
            tracing::warn!(
                file = %path.display(),
                "DEV MODE: no TESSERA_MASTER_KEY set; using a generated master key stored next to the data. \
                 Anyone who can read this folder can read every secret. Set TESSERA_MASTER_KEY for real use."
            );
            key
        }
    };
    let store = tessera_store::connect(&settings.database_url)
        .await
        .with_context(|| "cannot open the metadata store (DATABASE_URL)")?;
    let opts = TesseraOptions {
        max_versions: settings.max_versions,
        root_token: settings.root_token,
        ..TesseraOptions::default()
    };
    let has_root = opts.root_token.is_some();
    let secrets: Arc<dyn SecretStore> = match &settings.backend {
        Backend::Database => Arc::new(DatabaseSecrets),
        Backend::File(path) => Arc::new(FileSecrets::open(path).map_err(anyhow::Error::msg)?),
        Backend::Environment => Arc::new(EnvironmentSecrets::from_vars(std::env::vars()).map_err(anyhow::Error::msg)?),
    };
    tracing::info!(backend = secrets.name(), "credential backend");
    let svc = Tessera::open(Arc::new(store), Arc::new(LocalKeyProvider::new(master)), secrets, opts)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !has_root {
        if let Some(key) = svc.bootstrap_admin_key().await.map_err(|e| anyhow::anyhow!("{}", e.message))? {
            // Printed once, like Vault's root token; it is stored only as a hash.
            println!("Initial admin API key (shown once, store it safely):\n  {}", key.expose_secret());
        }
    }
    let app = tessera_http::router(
        Arc::new(svc),
        &HttpOptions { max_body_bytes: settings.max_body_bytes, ..HttpOptions::default() },
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on TESSERA_LISTEN {}", settings.listen))?;
    let addr = listener.local_addr()?;
    println!("tessera listening on http://{addr}");
    tracing::info!(%addr, store = if is_sqlite { "sqlite" } else { "postgres" }, "listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
