//! The audit log as an export: JSON Lines or CSV, one event a line, for the
//! console's download and `tessera audit export` alike. CSV fields that a
//! spreadsheet would run as a formula are defused.

use super::AuditEventView;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object a line (the shape `GET /audit` shows).
    Jsonl,
    /// RFC 4180 CSV, with [`CSV_HEADER`] first.
    Csv,
}

impl ExportFormat {
    /// `jsonl` or `csv`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    /// What comes before the first event (the CSV header).
    pub fn header(self) -> &'static str {
        match self {
            Self::Jsonl => "",
            Self::Csv => CSV_HEADER,
        }
    }

    /// One event as a line, with its newline.
    pub fn line(self, e: &AuditEventView) -> String {
        match self {
            Self::Jsonl => {
                let mut s = crate::audit_sink::json_line(e);
                s.push('\n');
                s
            }
            Self::Csv => {
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
}

/// The CSV export's first line.
pub const CSV_HEADER: &str =
    "seq,id,at,actor,actor_role,tenant_id,action,resource,outcome,request_id,client_ip,prev_hash,hash\n";

/// One CSV field: quoted when needed; a leading `= + - @` (or tab, CR) is
/// prefixed with `'` so a spreadsheet does not run it as a formula.
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
