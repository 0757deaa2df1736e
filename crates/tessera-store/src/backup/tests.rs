use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::format::{check, Writer};
use super::{NOT_BACKED_UP, TABLES};

fn created_tables(dialect: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
    let mut tables = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("migrations folder") {
        let sql = std::fs::read_to_string(entry.expect("entry").path()).expect("migration");
        let upper = sql.to_uppercase();
        let mut rest = upper.as_str();
        while let Some(at) = rest.find("CREATE TABLE ") {
            let name: String = rest[at + 13..]
                .trim_start()
                .trim_start_matches("IF NOT EXISTS ")
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            tables.insert(name.to_lowercase());
            rest = &rest[at + 13..];
        }
    }
    tables
}

#[test]
fn the_table_list_names_every_table_the_migrations_create_and_no_other() {
    let listed: BTreeSet<String> = TABLES.iter().map(|(t, _)| (*t).to_owned()).collect();
    assert_eq!(listed.len(), TABLES.len(), "a table is listed twice");
    for dialect in ["sqlite", "postgres"] {
        let mut created = created_tables(dialect);
        for skipped in NOT_BACKED_UP {
            assert!(created.remove(*skipped), "{skipped} is left out of backups but no migration creates it");
        }
        assert_eq!(created, listed, "{dialect} migrations vs backup::TABLES");
    }
}

fn sample(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("b.jsonl");
    let mut w = Writer::create(&file).expect("create");
    w.header("local:abc", 5, "sqlite").expect("header");
    let row: Map<String, Value> = json!({"id": "acme", "name": "Acme", "status": "active", "created_at": 1})
        .as_object()
        .cloned()
        .expect("object");
    w.row("tenants", row).expect("row");
    let summary = w.finish(&file).expect("finish");
    assert_eq!(summary.rows(), 1);
    file
}

#[test]
fn a_written_backup_checks_and_a_truncated_or_edited_one_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let file = sample(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
    }
    let ok = check(&file).expect("a fresh backup checks");
    assert_eq!((ok.kek_id.as_str(), ok.schema, ok.tables["tenants"]), ("local:abc", 5, 1));
    let text = std::fs::read_to_string(&file).expect("read");

    let cut = dir.path().join("cut.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, format!("{}\n{}\n", lines[0], lines[1])).expect("write");
    assert!(check(&cut).expect_err("truncated").to_string().contains("truncated"));
    std::fs::write(&cut, &text[..text.len() - 5]).expect("write");
    assert!(check(&cut).expect_err("cut mid-line").to_string().contains("truncated"));

    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, text.replace("Acme", "Evil")).expect("write");
    assert!(check(&edited).expect_err("edited").to_string().contains("edited"));

    let future = dir.path().join("future.jsonl");
    std::fs::write(&future, text.replace("\"version\":1", "\"version\":2")).expect("write");
    assert!(check(&future).expect_err("format").to_string().contains("format version 2"));
    std::fs::write(&future, text.replace("\"schema\":5", "\"schema\":999")).expect("write");
    assert!(check(&future).expect_err("schema").to_string().contains("schema version 999"));
}
