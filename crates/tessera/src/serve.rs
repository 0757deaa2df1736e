//! `tessera serve`: opens the store and keyring, prints the first admin key
//! once, and serves the API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tessera_http::HttpOptions;

use crate::service::open_service;
use crate::settings::Settings;

pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    crate::init_logging();
    let has_root = settings.root_token.is_some();
    let svc = open_service(&mut settings).await?;
    if !has_root {
        if let Some(key) = svc.bootstrap_admin_key().await.map_err(|e| anyhow::anyhow!("{}", e.message))? {
            // Printed once, like Vault's root token; it is stored only as a hash.
            println!("Initial admin API key (shown once, store it safely):\n  {}", key.expose_secret());
        }
    }
    let store = svc.store_backend();
    let app = tessera_http::router(
        Arc::new(svc),
        &HttpOptions { max_body_bytes: settings.max_body_bytes, ..HttpOptions::default() },
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on TESSERA_LISTEN {}", settings.listen))?;
    let addr = listener.local_addr()?;
    println!("tessera listening on http://{addr}");
    tracing::info!(%addr, store, "listening");
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
