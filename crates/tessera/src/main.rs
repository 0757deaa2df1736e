//! The `tessera` binary: `serve` runs the HTTP API (and, later, workers);
//! the other subcommands are admin operations over the same service layer.

mod apply;
mod audit_export;
mod backfill;
mod backup;
mod checkpoints;
mod cli;
mod help;
mod import;
mod import_secrets;
mod keys;
mod listener;
mod migrate;
mod serve;
mod service;
mod settings;
mod tls;
mod workers;

use std::process::ExitCode;

use clap::Parser;

/// Logs go to stderr, filtered by `TESSERA_LOG` (default `info`), as text
/// (colour only on a terminal) or, with `TESSERA_LOG_FORMAT=json`, one JSON
/// object per line for log shippers.
pub(crate) fn init_logging() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = log_filter(std::env::var("TESSERA_LOG").ok().as_deref())?;
    let format = std::env::var("TESSERA_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format.trim() {
        "" | "text" => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        "json" => builder.json().with_current_span(true).init(),
        other => anyhow::bail!("TESSERA_LOG_FORMAT must be text or json, not {other:?}"),
    }
    Ok(())
}

/// `TESSERA_LOG`, checked: a filter such as `info` or `warn,tessera=debug`.
/// A bare word must be a level: `debugg` would otherwise be read as a target
/// name and silence every log, the dev-mode warning included.
fn log_filter(raw: Option<&str>) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let raw = raw.map(str::trim).filter(|r| !r.is_empty()).unwrap_or("info");
    let bad = |why: String| {
        anyhow::anyhow!(
            "TESSERA_LOG {raw:?} is not a log filter ({why}); use a level (trace, debug, info, warn, error, off) \
             or directives such as warn,tessera=debug"
        )
    };
    for directive in raw.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(bad(format!("{directive:?} is not a level")));
        }
    }
    tracing_subscriber::EnvFilter::try_new(raw).map_err(|e| bad(e.to_string()))
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line naming the problem; never a backtrace.
            eprintln!("tessera: {e:#}");
            ExitCode::from(2)
        }
    }
}
