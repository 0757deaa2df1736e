//! Exporting the filtered audit log as JSON Lines or CSV, streamed page by
//! page (oldest first), never built in memory.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use futures::stream;
use tessera_core::service::{AuditEventView, AuditQuery, ConsoleSession};
use tessera_core::Tessera;

use crate::page::{PageError, PageResult};
use crate::session::Signed;
use crate::views::audit::{query_of, Filters};
use crate::ConsoleState;

const BATCH: i64 = 1000;

#[derive(Clone, Copy)]
enum Format {
    Jsonl,
    Csv,
}

const CSV_HEADER: &str =
    "seq,id,at,actor,actor_role,tenant_id,action,resource,outcome,request_id,client_ip,prev_hash,hash\n";

/// One CSV field: quoted when needed; a leading `= + - @` is prefixed with
/// `'` so a spreadsheet does not run it as a formula.
fn csv_field(out: &mut String, value: &str) {
    let guarded =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if guarded.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&guarded.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&guarded);
    }
}

fn line(format: Format, e: &AuditEventView) -> String {
    match format {
        Format::Jsonl => {
            let mut s = serde_json::to_string(e).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Csv => {
            let seq = e.seq.to_string();
            let fields = [
                seq.as_str(),
                &e.id,
                &e.at,
                &e.actor,
                &e.actor_role,
                e.tenant_id.as_deref().unwrap_or_default(),
                &e.action,
                &e.resource,
                &e.outcome,
                e.request_id.as_deref().unwrap_or_default(),
                e.client_ip.as_deref().unwrap_or_default(),
                &e.prev_hash,
                &e.hash,
            ];
            let mut s = String::new();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                csv_field(&mut s, f);
            }
            s.push('\n');
            s
        }
    }
}

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
    let format = match f.format.as_deref() {
        Some("csv") => Format::Csv,
        Some("jsonl") | None => Format::Jsonl,
        Some(_) => return Err(PageError::BadForm("Export as jsonl or csv.".into())),
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
            chunk.push_str(CSV_HEADER);
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
                    chunk.push_str(&line(c.format, e));
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

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        csv_field(&mut s, "a,b \"c\"");
        assert_eq!(s, "\"a,b \"\"c\"\"\"");
        let mut s = String::new();
        csv_field(&mut s, "=HYPERLINK(\"x\")");
        assert_eq!(s, "\"'=HYPERLINK(\"\"x\"\")\"");
        let mut s = String::new();
        csv_field(&mut s, "plain");
        assert_eq!(s, "plain");
    }
}
