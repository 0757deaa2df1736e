//! What `infisical export --format=json` writes: one JSON array of secrets,
//! `{"key", "value", "type", "secretPath", "tags", "comment", ...}`. Only
//! `key`, `value` and (when present) `secretPath`, the Infisical folder,
//! are used: `secretPath` `/stripe` puts `KEY` at `stripe/KEY`.
//!
//! Entries are numbered from 1 in the array's order; a reason never quotes
//! a value.

use serde_json::Value;
use zeroize::Zeroizing;

use super::{Entry, Malformed, Refused};

/// Parses the export; an error (not an array, not JSON) refuses the whole file.
/// (serde's own message is not kept: it can quote the file.)
pub fn parse(bytes: &[u8]) -> anyhow::Result<(Vec<Entry>, Vec<Refused>)> {
    // serde_json's values cannot be wiped; each value is copied into a
    // zeroizing string at once and the document dropped at the end.
    let doc: Vec<Value> = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) => items,
        Ok(_) => anyhow::bail!("an Infisical JSON export is an array of secrets"),
        Err(e) => anyhow::bail!("not JSON ({:?} error at line {} column {})", e.classify(), e.line(), e.column()),
    };
    let (mut entries, mut refused) = (Vec::new(), Vec::new());
    for (i, item) in doc.iter().enumerate() {
        let n = i + 1;
        let Value::Object(fields) = item else {
            refused.push(Refused::at(n, Malformed::NotAnObject));
            continue;
        };
        let key = match fields.get("key") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => {
                refused.push(Refused::at(n, Malformed::BadInfisicalKey));
                continue;
            }
        };
        let value = match fields.get("value") {
            Some(Value::String(v)) => Zeroizing::new(v.clone()),
            _ => {
                refused.push(Refused { line: n, key: Some(key), reason: Malformed::ValueNotAString });
                continue;
            }
        };
        let folder = match fields.get("secretPath") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(p)) => p.trim_matches('/').to_owned(),
            Some(_) => {
                refused.push(Refused { line: n, key: Some(key), reason: Malformed::SecretPathNotAString });
                continue;
            }
        };
        let key = if folder.is_empty() { key } else { format!("{folder}/{key}") };
        entries.push(Entry { line: n, key, value });
    }
    Ok((entries, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_reads_with_its_folders_and_bad_entries_are_refused_without_values() {
        let export = br#"[
            {"key":"STRIPE_KEY","value":"sk_1","type":"shared","_id":"a","secretPath":"/","tags":[],"comment":""},
            {"key":"WEBHOOK","value":"whsec_2","type":"shared","secretPath":"/stripe/live"},
            {"key":"NO_VALUE","type":"shared"},
            {"key":"","value":"s3cr3t"},
            {"key":"BAD_FOLDER","value":"s3cr3t","secretPath":7},
            "s3cr3t"
        ]"#;
        let (entries, refused) = parse(export).expect("an array");
        let got: Vec<_> = entries.iter().map(|e| (e.line, e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(got, [(1, "STRIPE_KEY", "sk_1"), (2, "stripe/live/WEBHOOK", "whsec_2")]);
        assert_eq!(refused.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4, 5, 6]);
        assert_eq!(
            refused.iter().map(|r| r.reason).collect::<Vec<_>>(),
            [
                Malformed::ValueNotAString,
                Malformed::BadInfisicalKey,
                Malformed::SecretPathNotAString,
                Malformed::NotAnObject
            ]
        );
        assert!(parse(br#"{"key":"s3cr3t"}"#).is_err());
        // Entries hold values, so they have no Debug: match instead of expect_err.
        let Err(truncated) = parse(b"[{\"key\": \"s3cr3t") else { panic!("a truncated export is refused") };
        let truncated = format!("{truncated:#}");
        assert!(truncated.contains("line 1") && !truncated.contains("s3cr3t"), "{truncated}");
    }
}
