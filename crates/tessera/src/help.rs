//! `tessera serve --help` lists every setting. The README's Settings table
//! is the one description of them; the help text is rendered from it (the
//! README is compiled in), so the two cannot disagree, and a test checks
//! that every variable the settings read is in it.

const README: &str = include_str!("../../../README.md");

/// The README's Settings table as plain text: each variable (or group of
/// variables), its default, and what it means.
pub(crate) fn settings() -> String {
    let mut out = String::from(
        "Settings (environment variables; every one is checked at start, and a bad value stops start-up naming it):\n",
    );
    let section = README.split("\n## Settings\n").nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    for row in
        section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| variable") && !l.starts_with("| ---"))
    {
        // A table cell cannot hold an unescaped `|`: the row splits on it.
        let cells: Vec<String> = row.trim().trim_matches('|').split('|').map(|c| plain(c.trim())).collect();
        if let [name, default, meaning] = cells.as_slice() {
            out.push_str(&format!("\n  {name}\n"));
            if !default.is_empty() {
                out.push_str(&format!("      default: {default}\n"));
            }
            out.push_str(&format!("      {meaning}\n"));
        }
    }
    out.push_str("\nDetails and examples: README.md, section Settings.\n");
    out
}

/// Markdown cell text as plain text: no backticks, no bold.
fn plain(cell: &str) -> String {
    cell.replace(['`'], "").replace("**", "")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_help_lists_the_readme_settings() {
        let help = super::settings();
        assert!(help.contains("\n  TESSERA_LISTEN\n      default: 127.0.0.1:7300\n"), "{help}");
        assert!(help.contains("DATABASE_URL"), "{help}");
        assert!(!help.contains('`'), "{help}");
    }
}
