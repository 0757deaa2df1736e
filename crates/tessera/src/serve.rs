//! `tessera serve`: opens the store and keyring, prints the first admin key
//! once, and serves the API (over TLS when the certificate settings are
//! given) until SIGINT/SIGTERM.
//!
//! Shutdown, in order: stop accepting; let requests in flight, their group
//! commits and the workers' claimed work finish (all at most
//! `TESSERA_SHUTDOWN_TIMEOUT`); give back the leases still held, so another
//! replica takes that work at once; write the last usage and denial counts;
//! make the audit log durable; exit 0.

use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tessera_core::service::Outbound;
use tessera_http::HttpOptions;

use crate::listener::ListenerOptions;
use crate::service::open_service_with;
use crate::settings::Settings;

pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    crate::init_logging()?;
    let has_root = settings.root_token.is_some();
    // The certificate first: a bad file stops start-up before anything listens.
    let tls = settings.tls.take().map(crate::tls::Tls::load).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on TESSERA_LISTEN {}", settings.listen))?;
    let addr = listener.local_addr()?;
    if settings.oauth.public_url.is_empty() {
        settings.oauth.public_url = format!("{scheme}://{addr}");
    }
    let outbound = outbound_clients(&settings)?;
    let svc = open_service_with(&mut settings, outbound).await?;
    // Seed 001's tenants file, when ENABLE_TENANT_CONFIG_FILE=true.
    crate::apply::at_start(&svc).await?;
    if !has_root {
        if let Some(key) = svc.bootstrap_admin_key().await.map_err(|e| anyhow::anyhow!("{}", e.message))? {
            // Printed once, like Vault's root token; it is stored only as a hash.
            println!("Initial admin API key (shown once, store it safely):\n  {}", key.expose_secret());
        }
    }
    let store = svc.store_backend();
    let svc = Arc::new(svc);
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let workers = crate::workers::spawn_all(
        &svc,
        settings.refresh_interval,
        settings.health_interval,
        settings.webhook_interval,
        &stop,
    );
    crate::workers::spawn_denial_flush(&svc, settings.audit_denial_interval, &stop);
    crate::workers::spawn_usage_flush(&svc, settings.usage_flush_interval, &stop);
    let (sink_names, sink_workers) = start_audit_sinks(&svc, &settings)?;
    if !settings.audit_checkpoint_interval.is_zero() {
        crate::settings::ensure_data_dir(&settings.data_dir)?;
        let path = crate::checkpoints::path(&settings.data_dir);
        crate::checkpoints::spawn(svc.clone(), path, settings.audit_checkpoint_interval);
    }
    let console = tessera_console::router(
        svc.clone(),
        tessera_console::ConsoleOptions { secure_cookies: settings.oauth.public_url.starts_with("https://") },
    );
    // The Vault-compatible API (/v1/) beside the console, over the same service.
    let vault_api = tessera_vault_api::router(
        svc.clone(),
        tessera_vault_api::VaultApiOptions {
            mount: settings.vault_api_mount.clone(),
            max_body_bytes: settings.max_body_bytes,
        },
    );
    let app = tessera_http::router_with(
        svc.clone(),
        &HttpOptions {
            max_body_bytes: settings.max_body_bytes,
            trusted_proxies: settings.trusted_proxies.clone(),
            ..HttpOptions::default()
        },
        console.merge(tessera_console::connect::router(svc.clone(), settings.connect.clone())).merge(vault_api),
    );
    if let Some(tls) = &tls {
        tls.spawn_reloader();
    }
    println!("tessera listening on {scheme}://{addr}");
    tracing::info!(%addr, store, tls = tls.is_some(), "listening");
    let limits = ListenerOptions {
        header_read_timeout: settings.header_read_timeout,
        max_connections: crate::listener::connection_cap(settings.max_connections),
        max_connections_per_client: settings.max_connections_per_client,
        trusted_proxies: settings.trusted_proxies.clone(),
        drain: settings.shutdown_timeout,
        tls,
    };
    let signalled = async move {
        shutdown().await;
        let _ = stopping.send(true);
    };
    let mut stopped = stop.clone();
    let workers_done = async move {
        let _ = stopped.wait_for(|s| *s).await;
        finish_workers(workers, settings.shutdown_timeout).await;
    };
    let (served, ()) = tokio::join!(crate::listener::serve(listener, app, limits, signalled), workers_done);
    served?;
    // The sinks' leases go now, so another replica (or this one restarted)
    // goes on delivering at once instead of after the lease runs out.
    for worker in sink_workers {
        worker.abort();
    }
    for name in &sink_names {
        if let Err(e) = svc.release_audit_sink(name).await {
            tracing::warn!(sink = %name, error = %e.message, "cannot release the audit sink's lease");
        }
    }
    match svc.release_worker_leases().await {
        Ok(r) if r.refreshes + r.deliveries > 0 => {
            tracing::info!(refreshes = r.refreshes, deliveries = r.deliveries, "unfinished worker leases given back")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e.message, "cannot give back the worker leases; they expire on their own"),
    }
    if let Err(e) = svc.flush_usage().await {
        tracing::error!(error = %e.message, "cannot write the usage counts");
    }
    // Denials counted since the last interval are written before exiting.
    match svc.flush_denials().await {
        Ok(n) => tracing::info!(addresses = n, "denial counts written"),
        Err(e) => tracing::error!(error = %e.message, "cannot write the denial counts"),
    }
    // Read events committed without waiting for the disk are on it before the process ends.
    if let Err(e) = svc.sync_audit_log().await {
        tracing::error!(error = %e.message, "cannot make the audit log durable");
    }
    Ok(())
}

/// Builds the audit sinks of `TESSERA_AUDIT_SINKS` and starts their workers.
fn start_audit_sinks(
    svc: &Arc<tessera_core::Tessera>,
    settings: &Settings,
) -> anyhow::Result<(Vec<String>, Vec<tokio::task::JoinHandle<()>>)> {
    let cfg = &settings.audit_sinks;
    let sink_settings = tessera_outbound::audit_sinks::SinkSettings {
        file_max_bytes: cfg.file_max_bytes,
        file_keep: cfg.file_keep,
        http_secret: cfg.secret.clone(),
        timeout: std::time::Duration::from_secs(10),
    };
    let mut sinks = Vec::new();
    for spec in &cfg.specs {
        let sink = tessera_outbound::audit_sinks::open(spec, &sink_settings)
            .map_err(|e| anyhow::anyhow!("TESSERA_AUDIT_SINKS: {e}"))?;
        tracing::info!(sink = sink.name(), "audit sink");
        sinks.push(sink);
    }
    let names = sinks.iter().map(|s| s.name().to_owned()).collect();
    Ok((names, crate::workers::spawn_audit_sinks(svc, sinks, cfg.options.clone())))
}

/// Waits for the workers' scans in progress, at most `timeout`; the ones
/// still running then are abandoned (their leases are given back next).
async fn finish_workers(mut workers: tokio::task::JoinSet<()>, timeout: std::time::Duration) {
    let all = async { while workers.join_next().await.is_some() {} };
    if tokio::time::timeout(timeout, all).await.is_err() {
        tracing::warn!(
            running = workers.len(),
            "workers still busy after TESSERA_SHUTDOWN_TIMEOUT; their unfinished work goes back to the queue"
        );
        workers.abort_all();
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

/// The clients `serve` calls out with: OAuth providers (15 s per call), MCP
/// servers and proxied APIs (the proxy's time limit), health probes (the
/// proxy's client) and webhook receivers (10 s per attempt, host names
/// resolving only to addresses a tenant's URL may reach).
fn outbound_clients(settings: &Settings) -> anyhow::Result<Outbound> {
    let mut oauth = tessera_outbound::HttpOAuthClient::new(std::time::Duration::from_secs(15))
        .map_err(|e| anyhow::anyhow!("cannot build the OAuth HTTP client: {e}"))?;
    if settings.allow_loopback_http {
        oauth = oauth.allow_loopback_http();
    }
    let mcp = tessera_outbound::HttpMcpClient::new(settings.proxy_timeout)
        .map_err(|e| anyhow::anyhow!("cannot build the MCP HTTP client: {e}"))?;
    let forwarder = Arc::new(
        tessera_outbound::Forwarder::new(settings.proxy_timeout)
            .map_err(|e| anyhow::anyhow!("cannot build the proxy's HTTP client: {e}"))?,
    );
    let webhooks =
        tessera_outbound::Forwarder::for_webhooks(std::time::Duration::from_secs(10), settings.allow_loopback_http)
            .map_err(|e| anyhow::anyhow!("cannot build the webhook HTTP client: {e}"))?;
    Ok(Outbound {
        oauth: Arc::new(oauth),
        mcp: Arc::new(mcp),
        probe: forwarder.clone(),
        webhooks: Arc::new(webhooks),
        upstream: forwarder,
    })
}
