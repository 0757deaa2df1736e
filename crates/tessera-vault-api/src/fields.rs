//! Request fields read as Vault reads them: integers, booleans and
//! durations given as JSON values or as the strings the CLI sends
//! (`bao write ... deletion_allowed=true`), durations in Go's format
//! (`"90s"`, `"1h30m"`, `"1d"`, or a number of seconds), and durations
//! shown as Go shows them (`"3h0m0s"`). Errors are worded as Vault's, so a
//! client that shows them shows the same sentence.

use axum::body::Bytes;
use serde_json::{Map, Value};

/// A write's body: a JSON object, or nothing to change (`null`, as `bao
/// write -f` and `bao kv metadata put` with no flag send, or no body); none
/// for anything else (answer [`crate::reply::bad_json`]).
pub(crate) fn body(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(doc)) => Some(doc),
        Ok(Value::Null) => Some(Map::new()),
        _ if body.iter().all(u8::is_ascii_whitespace) => Some(Map::new()),
        _ => None,
    }
}

/// A field that may not be negative (`max_versions`, `delete_version_after`
/// of a secret), read with `read` and refused in Vault's words when below zero.
pub(crate) fn non_negative<T: TryFrom<i64>>(
    field: &str,
    read: fn(Option<&Value>) -> Result<Option<i64>, String>,
    doc: &Map<String, Value>,
) -> Result<Option<T>, String> {
    match read(doc.get(field)).map_err(|why| conversion_error(field, &why))? {
        None => Ok(None),
        Some(n) => T::try_from(n)
            .map(Some)
            .map_err(|_| conversion_error(field, &format!("cannot provide negative value '{n}'"))),
    }
}

/// Vault's sentence for a field that does not convert.
pub(crate) fn conversion_error(field: &str, why: &str) -> String {
    format!("error converting input for field \"{field}\": {why}")
}

/// An integer field (JSON number, numeric string or boolean); none when absent or null.
pub(crate) fn int(v: Option<&Value>) -> Result<Option<i64>, String> {
    let parse_error = || "'' cannot parse value as 'int': strconv.ParseInt: invalid syntax".to_owned();
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            // Go's weak decoding truncates a float.
            #[allow(clippy::cast_possible_truncation)] // what Vault does with 2.7: 2
            (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(Some(f.trunc() as i64)),
            _ => Err(parse_error()),
        },
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| parse_error()),
        Some(Value::Bool(b)) => Ok(Some(i64::from(*b))),
        Some(_) => Err("'' expected type 'int', got unconvertible type".to_owned()),
    }
}

/// A boolean field (JSON boolean, Go's boolean strings, or a number); none when absent or null.
pub(crate) fn bool(v: Option<&Value>) -> Result<Option<bool>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
            _ => Err("'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax".to_owned()),
        },
        Some(Value::Number(n)) => Ok(Some(n.as_f64().is_some_and(|f| f != 0.0))),
        Some(_) => Err("'' expected type 'bool', got unconvertible type".to_owned()),
    }
}

/// A duration field in whole seconds (Vault's `TypeDurationSecond`): a
/// number of seconds, a numeric string, `<n>d` days, or a Go duration
/// (truncated to the second); none when absent or null.
pub(crate) fn duration_secs(v: Option<&Value>) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            #[allow(clippy::cast_possible_truncation)] // whole seconds, as Vault keeps them
            (None, Some(f)) if f.is_finite() && f.abs() < 9.2e18 => Ok(Some(f.trunc() as i64)),
            _ => Err("time: invalid duration".to_owned()),
        },
        Some(Value::String(s)) => parse_duration_text(s).map(Some),
        Some(_) => Err("could not parse duration from input".to_owned()),
    }
}

fn parse_duration_text(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Some(days) = s.strip_suffix('d') {
        let n = days.parse::<i64>().map_err(|_| format!("strconv.ParseInt: parsing {days:?}: invalid syntax"))?;
        return n.checked_mul(86_400).ok_or_else(|| format!("time: invalid duration {s:?}"));
    }
    go_duration_nanos(s).map(|ns| i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX))
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn go_duration_nanos(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let (negative, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, rest) = s.split_at(digits);
        s = rest;
        let mut fraction = "";
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &rest[..n];
            s = &rest[n..];
            if whole.is_empty() && fraction.is_empty() {
                return Err(invalid());
            }
        } else if whole.is_empty() {
            return Err(invalid());
        }
        let unit_len = s.bytes().take_while(|b| *b != b'.' && !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
        };
        let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            let kept = &fraction[..fraction.len().min(18)];
            let numerator: i128 = kept.parse().map_err(|_| invalid())?;
            part += numerator * scale / 10i128.pow(u32::try_from(kept.len()).expect("at most 18 digits"));
        }
        total = total.checked_add(part).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
    }
    Ok(if negative { -total } else { total })
}

/// A number of seconds as Go's `time.Duration` prints it: `0s`, `30s`,
/// `1m30s`, `3h0m0s`, `-1s`.
pub(crate) fn go_duration_text(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs % 3600 / 60, abs % 60);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, _) => format!("{sign}{m}m{s}s"),
        _ => format!("{sign}{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_vault_reads_them() {
        let secs = |v: Value| duration_secs(Some(&v));
        assert_eq!(secs(json!("30s")), Ok(Some(30)));
        assert_eq!(secs(json!("1h30m")), Ok(Some(5400)));
        assert_eq!(secs(json!("3h0m0s")), Ok(Some(10_800)));
        assert_eq!(secs(json!("1.5s")), Ok(Some(1)));
        assert_eq!(secs(json!("90")), Ok(Some(90)));
        assert_eq!(secs(json!(90)), Ok(Some(90)));
        assert_eq!(secs(json!("1d")), Ok(Some(86_400)));
        assert_eq!(secs(json!("0s")), Ok(Some(0)));
        assert_eq!(secs(json!("")), Ok(Some(0)));
        assert_eq!(secs(json!("-1s")), Ok(Some(-1)));
        assert_eq!(secs(json!(".5h")), Ok(Some(1800)));
        assert_eq!(duration_secs(None), Ok(None));
        assert_eq!(secs(json!("bogus")), Err("time: invalid duration \"bogus\"".to_owned()));
        assert_eq!(secs(json!("1.5")), Err("time: missing unit in duration \"1.5\"".to_owned()));
        assert_eq!(secs(json!("1x")), Err("time: unknown unit \"x\" in duration \"1x\"".to_owned()));
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(go_duration_text(0), "0s");
        assert_eq!(go_duration_text(30), "30s");
        assert_eq!(go_duration_text(90), "1m30s");
        assert_eq!(go_duration_text(3600), "1h0m0s");
        assert_eq!(go_duration_text(10_800), "3h0m0s");
        assert_eq!(go_duration_text(86_400), "24h0m0s");
        assert_eq!(go_duration_text(-1), "-1s");
    }

    #[test]
    fn ints_and_bools_take_what_the_cli_sends() {
        assert_eq!(int(Some(&json!("2"))), Ok(Some(2)));
        assert_eq!(int(Some(&json!(2))), Ok(Some(2)));
        assert!(int(Some(&json!("abc"))).is_err());
        assert_eq!(bool(Some(&json!("true"))), Ok(Some(true)));
        assert_eq!(bool(Some(&json!("F"))), Ok(Some(false)));
        assert_eq!(bool(Some(&json!(false))), Ok(Some(false)));
        assert!(bool(Some(&json!("maybe"))).is_err());
        assert_eq!(bool(None), Ok(None));
    }
}
