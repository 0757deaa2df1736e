//! The `tessera` binary: `serve` runs the HTTP API (and, later, workers);
//! the other subcommands are admin operations over the same service layer.

mod apply;
mod backfill;
mod backup;
mod checkpoints;
mod cli;
mod import;
mod keys;
mod listener;
mod migrate;
mod serve;
mod service;
mod settings;
mod workers;

use std::process::ExitCode;

use clap::Parser;

/// Logs go to stderr, filtered by `TESSERA_LOG` (default `info`).
pub(crate) fn init_logging() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
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
