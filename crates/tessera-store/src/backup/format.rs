//! The backup file: writing it (header, rows, trailer, checksum) and
//! checking one before a restore reads its rows.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{known_schemas, BackupError, BackupSummary, FileRow, TABLES};

/// The header's `format`.
const FORMAT: &str = "tessera-backup";
/// The only format version this build writes and reads.
const VERSION: i64 = 1;

fn io(what: &str, path: &Path, e: std::io::Error) -> BackupError {
    BackupError::new(format!("cannot {what} {}: {e}", path.display()))
}

/// A backup being written, under a temporary name beside its final one; the
/// temporary file is removed unless [`Writer::finish`] renames it.
pub(crate) struct Writer {
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: Sha256,
    bytes: u64,
    header: Option<(String, i64, String)>,
    tables: BTreeMap<String, u64>,
}

impl Writer {
    /// Creates the temporary file, mode 0600 (it holds wrapped keys).
    pub(crate) fn create(file: &Path) -> Result<Self, BackupError> {
        let name =
            file.file_name().ok_or_else(|| BackupError::new(format!("{} is not a file name", file.display())))?;
        let tmp = file.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let out = options.open(&tmp).map_err(|e| io("create", &tmp, e))?;
        let tables = TABLES.iter().map(|(t, _)| ((*t).to_owned(), 0)).collect();
        Ok(Self { tmp, out: Some(BufWriter::new(out)), hasher: Sha256::new(), bytes: 0, header: None, tables })
    }

    fn line(&mut self, value: &Value) -> Result<(), BackupError> {
        let mut text = serde_json::to_vec(value).map_err(|e| BackupError::new(format!("cannot encode a row: {e}")))?;
        text.push(b'\n');
        self.raw(&text)
    }

    fn raw(&mut self, text: &[u8]) -> Result<(), BackupError> {
        self.hasher.update(text);
        self.bytes += text.len() as u64;
        let out = self.out.as_mut().expect("the file is open until finish");
        out.write_all(text).map_err(|e| io("write", &self.tmp, e))
    }

    /// The first line.
    pub(crate) fn header(&mut self, kek_id: &str, schema: i64, store: &str) -> Result<(), BackupError> {
        let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // Written by hand to keep its keys in this order for a reader's `head -1`.
        let text = |s: &str| Value::String(s.to_owned()).to_string();
        let header = format!(
            "{{\"format\":{},\"version\":{VERSION},\"kekId\":{},\"schema\":{schema},\"createdAt\":{},\"store\":{}}}\n",
            text(FORMAT),
            text(kek_id),
            text(&created_at),
            text(store)
        );
        self.raw(header.as_bytes())?;
        self.header = Some((kek_id.to_owned(), schema, store.to_owned()));
        Ok(())
    }

    /// One row of `table`.
    pub(crate) fn row(&mut self, table: &str, row: Map<String, Value>) -> Result<(), BackupError> {
        self.line(&json!({ "table": table, "row": row }))?;
        *self.tables.entry(table.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Writes the trailer, flushes to disk and renames the file into place.
    pub(crate) fn finish(mut self, file: &Path) -> Result<BackupSummary, BackupError> {
        let (kek_id, schema, store) = self.header.take().expect("the header is written first");
        let sha256 = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        let trailer = json!({ "end": FORMAT, "rows": self.tables, "sha256": sha256 });
        let mut text = serde_json::to_vec(&trailer).map_err(|e| BackupError::new(e.to_string()))?;
        text.push(b'\n');
        let mut out = self.out.take().expect("the file is open until finish");
        out.write_all(&text).map_err(|e| io("write", &self.tmp, e))?;
        let out = out.into_inner().map_err(|e| io("write", &self.tmp, e.into_error()))?;
        out.sync_all().map_err(|e| io("write", &self.tmp, e))?;
        drop(out);
        std::fs::rename(&self.tmp, file).map_err(|e| io("rename the backup to", file, e))?;
        // The rename itself is durable once the folder is synced.
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(BackupSummary {
            kek_id,
            schema,
            store,
            tables: std::mem::take(&mut self.tables),
            bytes: self.bytes + text.len() as u64,
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // Not finished: no half-written backup is left behind.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The lines of a backup file, each with its newline.
struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
}

impl Lines {
    fn open(path: &Path) -> Result<Self, BackupError> {
        let file = File::open(path).map_err(|e| io("open", path, e))?;
        Ok(Self { path: path.to_owned(), reader: BufReader::new(file) })
    }

    /// The next whole line (with its `\n`), or None at the end of the file.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, BackupError> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line).map_err(|e| io("read", &self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            return Err(truncated());
        }
        Ok(Some(line))
    }
}

fn truncated() -> BackupError {
    BackupError::new("the backup ends before its trailer: the file is truncated")
}

fn edited(what: &str) -> BackupError {
    BackupError::new(format!("the backup is damaged or was edited ({what}); restore refuses it"))
}

fn parse(line: &[u8]) -> Result<Value, BackupError> {
    serde_json::from_slice(line).map_err(|_| edited("a line is not JSON"))
}

fn is_trailer(v: &Value) -> bool {
    v.get("end").and_then(Value::as_str) == Some(FORMAT)
}

/// Reads the whole file and checks it: the header's format and schema
/// version, every row's shape and table order, the trailer's row counts and
/// checksum. Nothing is trusted before this passes.
pub(crate) fn check(path: &Path) -> Result<BackupSummary, BackupError> {
    let mut lines = Lines::open(path)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let first = lines.next_line()?.ok_or_else(|| BackupError::new(format!("{} is empty", path.display())))?;
    let header = serde_json::from_slice::<Value>(&first)
        .ok()
        .filter(|h| h.get("format").and_then(Value::as_str) == Some(FORMAT))
        .ok_or_else(|| BackupError::new(format!("{} is not a Tessera backup (no header)", path.display())))?;
    hasher.update(&first);
    bytes += first.len() as u64;
    let version = header.get("version").and_then(Value::as_i64).unwrap_or(-1);
    if version != VERSION {
        return Err(BackupError::new(format!(
            "backup format version {version} is not known to this tessera (it reads version {VERSION})"
        )));
    }
    let text = |key: &str| header.get(key).and_then(Value::as_str).map(str::to_owned);
    let (Some(kek_id), Some(store), Some(schema)) =
        (text("kekId"), text("store"), header.get("schema").and_then(Value::as_i64))
    else {
        return Err(edited("the header lacks kekId, store or schema"));
    };
    let known = known_schemas(&store);
    if !known.contains(&schema) {
        return Err(BackupError::new(format!(
            "the backup's schema version {schema} ({store}) is not known to this tessera (it knows {}): restore \
             with the tessera version that made the backup, or a newer one",
            known.last().map_or_else(|| "none".to_owned(), |v| format!("up to {v}"))
        )));
    }
    let mut tables: BTreeMap<String, u64> = TABLES.iter().map(|(t, _)| ((*t).to_owned(), 0)).collect();
    let mut position = 0;
    loop {
        let line = lines.next_line()?.ok_or_else(truncated)?;
        let value = parse(&line)?;
        if is_trailer(&value) {
            let sha256 = format!("{:x}", hasher.finalize());
            if value.get("sha256").and_then(Value::as_str) != Some(sha256.as_str()) {
                return Err(edited("its SHA-256 does not match the trailer's"));
            }
            let counted: Option<BTreeMap<String, u64>> =
                value.get("rows").and_then(|r| serde_json::from_value(r.clone()).ok());
            if counted.as_ref() != Some(&tables) {
                return Err(edited("its row counts differ from the trailer's"));
            }
            if lines.next_line()?.is_some() {
                return Err(edited("there are lines after the trailer"));
            }
            bytes += line.len() as u64;
            return Ok(BackupSummary { kek_id, schema, store, tables, bytes });
        }
        hasher.update(&line);
        bytes += line.len() as u64;
        let row = file_row(value)?;
        // Foreign-key order: a row's parents come before it.
        let at = TABLES.iter().position(|(t, _)| *t == row.table).ok_or_else(|| edited("an unknown table"))?;
        if at < position {
            return Err(edited("tables out of order"));
        }
        position = at;
        *tables.entry(row.table).or_default() += 1;
    }
}

fn file_row(value: Value) -> Result<FileRow, BackupError> {
    let Value::Object(mut line) = value else { return Err(edited("a row is not an object")) };
    let (Some(Value::String(table)), Some(Value::Object(row))) = (line.remove("table"), line.remove("row")) else {
        return Err(edited("a row lacks its table or columns"));
    };
    if row.values().any(|v| !matches!(v, Value::Null | Value::Number(_) | Value::String(_))) {
        return Err(edited("a column is neither text, a number nor null"));
    }
    Ok(FileRow { table, row })
}

/// The rows of a file [`check`] accepted, in file order.
pub(crate) struct Rows {
    lines: Lines,
}

impl Rows {
    pub(crate) fn open(path: &Path) -> Result<Self, BackupError> {
        let mut lines = Lines::open(path)?;
        // The header, checked already.
        lines.next_line()?;
        Ok(Self { lines })
    }
}

impl Iterator for Rows {
    type Item = Result<FileRow, BackupError>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = match self.lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => return Some(Err(truncated())),
            Err(e) => return Some(Err(e)),
        };
        match parse(&line) {
            Ok(v) if is_trailer(&v) => None,
            Ok(v) => Some(file_row(v)),
            Err(e) => Some(Err(e)),
        }
    }
}
