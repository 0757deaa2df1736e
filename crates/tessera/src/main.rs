//! The `tessera` binary: `serve` runs the HTTP API (and, later, workers);
//! the other subcommands are admin operations over the same service layer.

mod cli;
mod serve;
mod settings;

use std::process::ExitCode;

use clap::Parser;

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
