//! Exporting the filtered audit log as JSON Lines or CSV, streamed page by
//! page (oldest first), never built in memory.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use futures::stream;
use tessera_core::service::{AuditQuery, ConsoleSession, ExportFormat as Format};
use tessera_core::Tessera;

use crate::page::{PageError, PageResult};
use crate::session::Signed;
use crate::views::audit::{query_of, Filters};
use crate::ConsoleState;

const BATCH: i64 = 1000;

struct Cursor {
    svc: std::sync::Arc<Tessera>,
    session: ConsoleSession,
    query: AuditQuery,
    format: Format,
    after: i64,
    header: bool,
    done: bool,
}

/// `GET /console/audit/export?format=jsonl|csv&<filters>`.
pub(crate) async fn export(State(state): State<ConsoleState>, signed: Signed, Query(f): Query<Filters>) -> PageResult {
    let format = match f.format.as_deref().map(Format::parse) {
        Some(Some(format)) => format,
        None => Format::Jsonl,
        Some(None) => return Err(PageError::BadForm("Export as jsonl or csv.".into())),
    };
    let mut query = query_of(&f);
    query.newest_first = false;
    query.before_seq = None;
    query.limit = Some(BATCH);
    // The first page is read before answering, so a refusal (a tenant the
    // caller may not see) is an error page, not a truncated download.
    state.svc.list_audit(&signed.session.ctx, AuditQuery { limit: Some(1), ..query.clone() }).await?;
    let cursor = Cursor {
        svc: state.svc.clone(),
        session: signed.session,
        query,
        format,
        after: 0,
        header: matches!(format, Format::Csv),
        done: false,
    };
    let body = stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        let mut chunk = String::new();
        if c.header {
            chunk.push_str(c.format.header());
            c.header = false;
        }
        let page = AuditQuery { after_seq: Some(c.after), ..c.query.clone() };
        match c.svc.list_audit(&c.session.ctx, page).await {
            Ok(events) => {
                let events = events.events;
                if (events.len() as i64) < BATCH {
                    c.done = true;
                }
                if let Some(last) = events.last() {
                    c.after = last.seq;
                }
                for e in &events {
                    chunk.push_str(&c.format.line(e));
                }
                Some((Ok::<_, std::io::Error>(chunk), c))
            }
            Err(e) => {
                tracing::error!(error = %e.message, "audit export stopped");
                c.done = true;
                Some((Err(std::io::Error::other("the audit export stopped")), c))
            }
        }
    });
    let (kind, name) = match format {
        Format::Jsonl => ("application/jsonl; charset=utf-8", "audit.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
