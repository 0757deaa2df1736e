//! `tessera audit export`: a range of the audit log to stdout, as JSON Lines
//! or CSV, page by page (never the whole log in memory). The lines are the
//! service's export lines, the same the console's download has.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tessera_core::service::{AuditQuery, ExportFormat};
use tessera_core::Ctx;

use crate::service::open_service;
use crate::settings::Settings;

/// Events per page read.
const PAGE: i64 = 1000;

/// Arguments of `tessera audit export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Only events at or after this time: RFC 3339 (2026-12-01T08:00:00Z) or a UTC day (2026-12-01).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time (exclusive): RFC 3339 or a UTC day (its start).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<String>,
    /// `jsonl` (one JSON object a line) or `csv` (formula-defused).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
}

/// A time argument as RFC 3339: a bare day is that day's start in UTC.
fn time_arg(raw: &str, flag: &str) -> anyhow::Result<String> {
    let raw = raw.trim();
    if chrono::DateTime::parse_from_rfc3339(raw).is_ok() {
        return Ok(raw.to_owned());
    }
    match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(day) => Ok(format!("{day}T00:00:00Z")),
        Err(_) => bail!("{flag} must be an RFC 3339 time (2026-12-01T08:00:00Z) or a day (2026-12-01)"),
    }
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    crate::init_logging()?;
    let Some(format) = ExportFormat::parse(args.format.trim()) else {
        bail!("--format must be jsonl or csv");
    };
    let since = args.since.as_deref().map(|s| time_arg(s, "--since")).transpose()?;
    let until = args.until.as_deref().map(|s| time_arg(s, "--until")).transpose()?;
    let mut settings = Settings::from_env()?;
    let svc = open_service(&mut settings).await?;
    let ctx = Ctx::cli();
    let query = AuditQuery {
        tenant_id: args.tenant.map(|t| t.trim().to_owned()),
        since,
        until,
        limit: Some(PAGE),
        ..AuditQuery::default()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = async {
        out.write_all(format.header().as_bytes())?;
        let mut after = 0;
        loop {
            let page = svc
                .list_audit(&ctx, AuditQuery { after_seq: Some(after), ..query.clone() })
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?
                .events;
            for e in &page {
                out.write_all(format.line(e).as_bytes())?;
            }
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after = last.seq,
                _ => break,
            }
        }
        out.flush()?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e).context("the audit export stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::time_arg;

    #[test]
    fn a_day_is_its_start_in_utc_and_anything_else_must_be_rfc_3339() {
        assert_eq!(time_arg("2026-12-01", "--since").expect("day"), "2026-12-01T00:00:00Z");
        assert_eq!(time_arg("2026-12-01T08:00:00+01:00", "--since").expect("time"), "2026-12-01T08:00:00+01:00");
        assert!(time_arg("yesterday", "--since").is_err());
    }
}
