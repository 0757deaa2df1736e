//! Dotenv files, as `infisical export --format=dotenv` writes them (`KEY='value'`,
//! the value verbatim between single quotes, over several lines when it has
//! line breaks) and as people write them: `export ` prefixes, `#` comments,
//! blank lines, unquoted values (to a ` #` comment or the end of the line),
//! double-quoted values with escapes (`\n`, `\t`, `\"`, `\\`, ...) over
//! several lines, single-quoted values taken literally.
//!
//! A malformed entry is refused with its line number and a reason that never
//! quotes the value; values live in zeroizing strings.

use zeroize::Zeroizing;

use super::{Entry, Malformed, Refused};

/// Parses a dotenv file into its entries and the lines refused.
pub fn parse(text: &str) -> (Vec<Entry>, Vec<Refused>) {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let (mut entries, mut refused) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            refused.push(Refused::at(line_no, Malformed::NoEquals));
            continue;
        };
        let key = key.trim_end();
        if !valid_key(key) {
            refused.push(Refused::at(line_no, Malformed::BadKey));
            continue;
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some('"') => double_quoted(&rest[1..], &lines, &mut i),
            Some('\'') => single_quoted(&rest[1..], &lines, &mut i),
            _ => Ok(unquoted(rest)),
        };
        match value {
            Ok(value) => entries.push(Entry { line: line_no, key: key.to_owned(), value }),
            Err(reason) => refused.push(Refused { line: line_no, key: Some(key.to_owned()), reason }),
        }
    }
    (entries, refused)
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// An unquoted value: up to a ` #` comment, surrounding blanks trimmed.
fn unquoted(rest: &str) -> Zeroizing<String> {
    let end = rest.find(" #").or_else(|| rest.find("\t#")).unwrap_or(rest.len());
    Zeroizing::new(rest[..end].trim_end().to_owned())
}

/// What may follow a closing quote: blanks, then nothing or a `#` comment.
fn only_comment_after(tail: &str) -> bool {
    let tail = tail.trim_start();
    tail.is_empty() || tail.starts_with('#')
}

/// A double-quoted value from just after the opening quote; continues on the
/// next lines (`*next` moves past them) until an unescaped closing quote.
fn double_quoted(first: &str, lines: &[&str], next: &mut usize) -> Result<Zeroizing<String>, Malformed> {
    let mut value = Zeroizing::new(String::new());
    let mut part = first;
    loop {
        let mut chars = part.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    return if only_comment_after(&part[at + 1..]) {
                        Ok(value)
                    } else {
                        Err(Malformed::TextAfterQuote)
                    };
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some(e @ ('"' | '\\' | '\'' | '$' | '`')) => value.push(e),
                    // Unknown escapes stay as written (as python-dotenv keeps them).
                    Some(e) => {
                        value.push('\\');
                        value.push(e);
                    }
                    // A backslash at the end of a line: the line break is part of the value.
                    None => value.push('\\'),
                },
                c => value.push(c),
            }
        }
        let Some(line) = lines.get(*next) else {
            return Err(Malformed::UnclosedDoubleQuote);
        };
        value.push('\n');
        part = line;
        *next += 1;
    }
}

/// A single-quoted value, taken literally: it ends at a `'` followed only by
/// blanks or a comment (so a quote inside the value, as Infisical writes it
/// unescaped, does not end it), over several lines if needed.
fn single_quoted(first: &str, lines: &[&str], next: &mut usize) -> Result<Zeroizing<String>, Malformed> {
    let mut value = Zeroizing::new(String::new());
    let mut part = first;
    loop {
        let close = part
            .char_indices()
            .filter(|(_, c)| *c == '\'')
            .map(|(at, _)| at)
            .find(|at| only_comment_after(&part[at + 1..]));
        if let Some(at) = close {
            value.push_str(&part[..at]);
            return Ok(value);
        }
        value.push_str(part);
        let Some(line) = lines.get(*next) else {
            return Err(Malformed::UnclosedSingleQuote);
        };
        value.push('\n');
        part = line;
        *next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(text: &str) -> Vec<(usize, String, String)> {
        let (entries, refused) = parse(text);
        assert!(refused.is_empty(), "{:?}", refused.iter().map(|r| (&r.line, &r.reason)).collect::<Vec<_>>());
        entries.into_iter().map(|e| (e.line, e.key, e.value.to_string())).collect()
    }

    #[test]
    fn infisical_dotenv_output_reads_back_verbatim() {
        // What `infisical export --format=dotenv` writes: KEY='<value as is>'.
        let text = "A='plain'\nB='it's got a quote'\nC='line one\nline two'\nD=''\nexport E='x # not a comment'\n";
        assert_eq!(
            values(text),
            [
                (1, "A".into(), "plain".into()),
                (2, "B".into(), "it's got a quote".into()),
                (3, "C".into(), "line one\nline two".into()),
                (5, "D".into(), String::new()),
                (6, "E".into(), "x # not a comment".into()),
            ]
        );
    }

    #[test]
    fn comments_exports_quotes_and_escapes_follow_dotenv() {
        let text = "# a comment\n\n  export  TOKEN = abc123  # trailing\nURL=https://x.example/#frag\n\
                    ESC=\"tab\\there \\\"quoted\\\" back\\\\slash \\$HOME\"\nMULTI=\"first\nsecond\"  # done\n\
                    LIT='\\n stays'\nEMPTY=\n";
        assert_eq!(
            values(text),
            [
                (3, "TOKEN".into(), "abc123".into()),
                (4, "URL".into(), "https://x.example/#frag".into()),
                (5, "ESC".into(), "tab\there \"quoted\" back\\slash $HOME".into()),
                (6, "MULTI".into(), "first\nsecond".into()),
                (8, "LIT".into(), "\\n stays".into()),
                (9, "EMPTY".into(), String::new()),
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_by_number_and_the_rest_still_parses() {
        let text = "GOOD=1\nno equals sign s3cr3t\n1BAD=s3cr3t\nOPEN=\"s3cr3t never closed\nAFTER=2\n";
        let (entries, refused) = parse(text);
        assert_eq!(entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["GOOD"]);
        assert_eq!(refused.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(
            refused.iter().map(|r| r.reason).collect::<Vec<_>>(),
            [Malformed::NoEquals, Malformed::BadKey, Malformed::UnclosedDoubleQuote]
        );
        for r in &refused {
            assert!(!r.reason.to_string().contains("s3cr3t"), "{}", r.reason);
        }
        let (_, refused) = parse("X=\"s3cr3t\" tail\n");
        assert_eq!(refused[0].reason, Malformed::TextAfterQuote);
        assert_eq!(refused[0].reason.to_string(), "unexpected text after the closing double quote");
        let (_, refused) = parse("X='s3cr3t\n");
        assert_eq!(refused[0].reason, Malformed::UnclosedSingleQuote);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any text parses or is refused line by line, and no reason quotes a value.
        #[test]
        fn any_file_parses_without_quoting_values(
            text in "[A-Za-z0-9_=\"' #\\\\\n\r\t.-]{0,200}",
            value in "[a-z]{12,20}",
        ) {
            let _ = parse(&text);
            for quote in ["", "\"", "'"] {
                let (_, refused) = parse(&format!("KEY={quote}{value}\nX Y {value}\n"));
                for r in refused {
                    prop_assert!(!r.reason.to_string().contains(&value), "{}", r.reason);
                }
            }
        }

        /// A value written the way Infisical writes it reads back as it was.
        #[test]
        fn single_quoted_values_round_trip(value in "[ -~\n]{0,80}") {
            // A quote followed only by blanks or a comment would end the value: not such a value.
            prop_assume!(!value.split('\n').any(|l| l.match_indices('\'').any(|(at, _)| only_comment_after(&l[at + 1..]))));
            let (entries, refused) = parse(&format!("K='{value}'\n"));
            prop_assert!(refused.is_empty());
            prop_assert_eq!(entries[0].value.as_str(), value.as_str());
        }
    }
}
