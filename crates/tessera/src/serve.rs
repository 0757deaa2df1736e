//! `tessera serve`: opens the store and keyring, prints the first admin key
//! once, and serves the API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tessera_http::{HttpOptions, ProxyOptions};

use crate::service::open_service;
use crate::settings::Settings;

pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    crate::init_logging();
    let has_root = settings.root_token.is_some();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on TESSERA_LISTEN {}", settings.listen))?;
    let addr = listener.local_addr()?;
    if settings.oauth.public_url.is_empty() {
        settings.oauth.public_url = format!("http://{addr}");
    }
    let mut svc = open_service(&mut settings).await?;
    // Seed 001's tenants file, when ENABLE_TENANT_CONFIG_FILE=true.
    crate::apply::at_start(&svc).await?;
    let mut outbound = tessera_outbound::HttpOAuthClient::new(std::time::Duration::from_secs(15))
        .map_err(|e| anyhow::anyhow!("cannot build the OAuth HTTP client: {e}"))?;
    if settings.allow_loopback_http {
        outbound = outbound.allow_loopback_http();
    }
    svc.set_oauth_client(Arc::new(outbound));
    // MCP tool calls (POST /api/v1/tools/invoke) share the proxy's time limit.
    let mcp = tessera_outbound::HttpMcpClient::new(settings.proxy_timeout)
        .map_err(|e| anyhow::anyhow!("cannot build the MCP HTTP client: {e}"))?;
    svc.set_mcp_client(Arc::new(mcp));
    if !has_root {
        if let Some(key) = svc.bootstrap_admin_key().await.map_err(|e| anyhow::anyhow!("{}", e.message))? {
            // Printed once, like Vault's root token; it is stored only as a hash.
            println!("Initial admin API key (shown once, store it safely):\n  {}", key.expose_secret());
        }
    }
    let store = svc.store_backend();
    let forwarder = Arc::new(
        tessera_outbound::Forwarder::new(settings.proxy_timeout)
            .map_err(|e| anyhow::anyhow!("cannot build the proxy's HTTP client: {e}"))?,
    );
    svc.set_http_probe(forwarder.clone());
    // Webhook deliveries: the proxy's client rules (no redirects, no proxies), 10 s per attempt.
    let webhook_sender = tessera_outbound::Forwarder::new(std::time::Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!("cannot build the webhook HTTP client: {e}"))?;
    svc.set_webhook_sender(Arc::new(webhook_sender));
    let svc = Arc::new(svc);
    tokio::spawn(refresh_worker(svc.clone(), settings.refresh_interval));
    tokio::spawn(health_worker(svc.clone(), settings.health_interval));
    tokio::spawn(webhook_worker(svc.clone(), settings.webhook_interval));
    let proxy = ProxyOptions {
        forwarder: Some(forwarder),
        max_body_bytes: settings.max_body_bytes,
        max_response_bytes: settings.proxy_max_response_bytes,
    };
    let app = tessera_http::router(
        svc,
        &HttpOptions { max_body_bytes: settings.max_body_bytes, proxy, ..HttpOptions::default() },
    );
    println!("tessera listening on http://{addr}");
    tracing::info!(%addr, store, "listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// Refreshes tokens before they expire: every `interval`, claims due tokens
/// in batches (replicas share the work through leases) until none is left.
async fn refresh_worker(svc: Arc<tessera_core::Tessera>, interval: std::time::Duration) {
    const BATCH: i64 = 100;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match svc.refresh_due(BATCH).await {
                Ok(report) if report.claimed as i64 == BATCH => continue,
                Ok(report) => {
                    if report.claimed > 0 {
                        tracing::info!(refreshed = report.refreshed, failed = report.failed, "token refresh scan");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "token refresh scan failed");
                    break;
                }
            }
        }
    }
}

/// Checks connections whose integration has a `healthCheck`, each on its
/// integration's interval; replicas share the work (a check is claimed by
/// moving `lastHealthCheck` first).
async fn health_worker(svc: Arc<tessera_core::Tessera>, scan_every: std::time::Duration) {
    let mut tick = tokio::time::interval(scan_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = svc.check_due_health(100).await {
            tracing::warn!(error = %e, "health scan failed");
        }
    }
}

/// Delivers webhook events: every `interval`, raises `secret.rotation_due`
/// for secrets past their rotation policy, then sends due deliveries in
/// batches (replicas share the work through leases) until none is left.
async fn webhook_worker(svc: Arc<tessera_core::Tessera>, interval: std::time::Duration) {
    const BATCH: i64 = 100;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match svc.deliver_webhooks(BATCH).await {
                Ok(report) if report.claimed as i64 == BATCH => continue,
                Ok(report) => {
                    if report.claimed > 0 || report.rotation_due > 0 {
                        tracing::debug!(
                            delivered = report.delivered,
                            retrying = report.retrying,
                            failed = report.failed,
                            rotation_due = report.rotation_due,
                            "webhook scan"
                        );
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook scan failed");
                    break;
                }
            }
        }
    }
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
