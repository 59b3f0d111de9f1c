//! The offline CLI: scan captures, query them with SQL, print the schema.

use crate::output::{self, Format, ResultSet};
use crate::table::TableOptions;
use keychain_access_tables::correlate::CorrelationUpdate;
use keychain_access_tables::schema::{self, Value, COLUMNS, TABLE_NAME};
use keychain_access_tables::status::{self, SourceStatus};
use keychain_access_tables::store::Store;
use keychain_access_tables::{KeychainAccess, ScanOptions, ScanStats, Scanner, Tuning};
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Tuning selection shared by every command that classifies.
#[derive(Debug, Clone, clap::Args)]
pub struct TuningArgs {
    /// Allowlist rules (JSON) replacing the built-in default tuning.
    #[arg(long, value_name = "FILE", conflicts_with = "no_tuning")]
    pub tuning: Option<PathBuf>,
    /// Turn tuning off: nothing is allowlisted.
    #[arg(long)]
    pub no_tuning: bool,
}

impl TuningArgs {
    pub fn load(&self) -> anyhow::Result<Tuning> {
        if self.no_tuning {
            return Ok(Tuning::none());
        }
        match &self.tuning {
            Some(p) => Ok(Tuning::from_file(p)?),
            None => Ok(Tuning::builtin()),
        }
    }
}

/// Inputs shared by scan, query and pack run.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// A capture to read: eslogger JSON lines or unified-log NDJSON (`-` is
    /// stdin). Repeat for several files; they are read in the order given
    /// and share one process cache.
    #[arg(
        long = "input",
        short = 'i',
        value_name = "FILE",
        required = true,
        num_args = 1
    )]
    pub inputs: Vec<PathBuf>,
    /// Skip lines longer than this many bytes (counted, never buffered whole).
    /// At least 1024, the extension config's `max_line_bytes` floor.
    #[arg(long, value_name = "BYTES", default_value_t = keychain_access_tables::scan::DEFAULT_MAX_LINE,
          value_parser = parse_max_line)]
    pub max_line: usize,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

/// `--max-line`: 0 (or any cap below one real record) would skip every
/// line and report a clean "0 rows".
fn parse_max_line(s: &str) -> anyhow::Result<usize> {
    let n: usize = s
        .parse()
        .map_err(|_| anyhow::anyhow!("`{s}` is not a number of bytes"))?;
    if n < MIN_MAX_LINE {
        return Err(anyhow::anyhow!(
            "{n} would skip every record (an eslogger line is a few KB); use at least {MIN_MAX_LINE}"
        ));
    }
    Ok(n)
}

/// The smallest `--max-line`, as for the extension's `max_line_bytes`.
const MIN_MAX_LINE: usize = 1024;

/// The result of scanning a set of inputs.
pub struct Scanned {
    pub rows: Vec<KeychainAccess>,
    pub per_input: Vec<SourceStatus>,
    pub total: ScanStats,
}

/// Scan every input in order with one scanner, collecting the rows.
pub fn scan_inputs(args: &InputArgs) -> anyhow::Result<Scanned> {
    let mut rows = Vec::new();
    let (per_input, total, updates) = scan_inputs_into(args, &mut |r| {
        rows.push(r);
        Ok(())
    })?;
    // A unified-log prompt can link to an ES row emitted earlier (maybe from
    // an earlier input): give that row the shared id too.
    keychain_access_tables::correlate::apply_updates(&mut rows, &updates);
    Ok(Scanned {
        rows,
        per_input,
        total,
    })
}

/// Per-input status, the total counters, and the correlation updates for
/// rows already handed to the sink.
type ScanResult = (Vec<SourceStatus>, ScanStats, Vec<CorrelationUpdate>);

/// Scan every input in order with one scanner, handing each row to `sink`
/// as it is produced. Rows handed out earlier may later gain a
/// `correlation_id`: the returned updates say which (by `eid`).
pub fn scan_inputs_into(
    args: &InputArgs,
    sink: &mut dyn FnMut(KeychainAccess) -> anyhow::Result<()>,
) -> anyhow::Result<ScanResult> {
    let tuning = args.tuning.load()?;
    let mut scanner = Scanner::new(ScanOptions {
        max_line: args.max_line,
        tuning,
        ..ScanOptions::default()
    });
    let mut per_input = Vec::new();
    let mut updates = Vec::new();
    // The same event read twice (one capture named twice, or two copies of
    // it) has the same `eid`: its row is written once.
    // Kept as 64-bit hashes (SipHash, random keys): 8 bytes a row.
    let mut seen_eids: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let eid_hasher = std::collections::hash_map::RandomState::new();
    let mut duplicates = 0u64;
    let mut opened: Vec<(PathBuf, PathBuf)> = Vec::new();
    for path in &args.inputs {
        if let Some(same) = same_input_as(&opened, path) {
            eprintln!(
                "keychain-access: note: --input {} names the same file as --input {}: read once",
                path.display(),
                same.display()
            );
            continue;
        }
        let before = scanner.finish_stats();
        let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path == Path::new("-") {
            (Box::new(io::stdin()), None)
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(f), size)
        };
        opened.push((path.clone(), canonical_input(path)));
        let (reader, shape) = keychain_access_tables::input::open_capture(raw)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if let Some(e) = shape.unreadable() {
            return Err(anyhow::anyhow!("{}: {e}", path.display()));
        }
        // Progress is by bytes of the file; a decompressed stream has more.
        let mut progress = Progress::new(path, size.filter(|_| !shape.gzip));
        let (mut produced, mut newest) = (0u64, None::<i64>);
        scanner
            .scan_lines(reader, |s, rows, offset| {
                for row in rows {
                    if let Some(eid) = &row.eid {
                        use std::hash::BuildHasher;
                        if !seen_eids.insert(eid_hasher.hash_one(eid)) {
                            duplicates += 1;
                            continue;
                        }
                    }
                    produced += 1;
                    newest = newest.max(row.time);
                    sink(row).map_err(io::Error::other)?;
                }
                updates.extend(s.take_correlation_updates());
                progress.tick(offset);
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        progress.done();
        let after = scanner.finish_stats();
        let stats = after.since(&before);
        if let Some(e) = shape.explain_nothing_read(&stats) {
            return Err(anyhow::anyhow!("{}: {e}", path.display()));
        }
        if stats.lines_read == 0 {
            let name = if path == Path::new("-") {
                "stdin".to_string()
            } else {
                path.display().to_string()
            };
            eprintln!("keychain-access: note: {name} is empty: nothing to scan");
        }
        per_input.push(SourceStatus {
            source: format!("file:{}", path.display()),
            kind: "file".into(),
            state: "done".into(),
            rows_stored: produced,
            last_event_time: newest,
            stats,
            ..SourceStatus::default()
        });
    }
    if duplicates > 0 {
        eprintln!(
            "keychain-access: note: {duplicates} row(s) read more than once (same eid: the same event in two inputs) were written once"
        );
    }
    Ok((per_input, scanner.finish_stats(), updates))
}

/// The file an input names, for spotting the same file given twice (`-`,
/// stdin, is its own name).
fn canonical_input(path: &Path) -> PathBuf {
    if path == Path::new("-") {
        return path.to_path_buf();
    }
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The earlier input naming the same file as `path`, if any.
fn same_input_as<'a>(opened: &'a [(PathBuf, PathBuf)], path: &Path) -> Option<&'a Path> {
    let key = canonical_input(path);
    opened
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(given, _)| given.as_path())
}

/// The summary printed on stderr after a scan.
pub fn summary(s: &ScanStats, inputs: usize) -> String {
    format!(
        "keychain-access: read {} lines ({:.1} MB) from {} input(s): {} rows ({} alerts, {} allowlisted); \
         skipped {} malformed, {} unknown event types, {} oversize, {} irrelevant (prefiltered); \
         {} lossy UTF-8 kept; {} ES drops (seq gaps); {} keychain-subsystem accesses not rows; \
         {} unified-log records ({} unmatched); {} process-cache evictions; {} values cut at their cap; \
         {} secrets scrubbed from other rows of their process tree; {} in-place keychain updates; rowed security/tool processes exited 0: {}, non-zero: {}",
        s.lines_read,
        s.bytes_read as f64 / 1e6,
        inputs,
        s.rows,
        s.alerts,
        s.allowlisted,
        s.malformed,
        s.unknown_types,
        s.oversize,
        s.prefiltered,
        s.lossy_utf8,
        s.es_drops,
        s.subsystem_access,
        s.unified_log_records,
        s.unified_log_unmatched,
        s.cache_evictions,
        s.field_caps,
        s.secrets_scrubbed,
        s.keychain_updates,
        s.accesses_succeeded,
        s.accesses_failed,
    )
}

/// Columns `scan --format table` shows (all columns in jsonl and csv).
const TABLE_COLUMNS: &[&str] = &[
    "time",
    "pid",
    "path",
    "action",
    "severity",
    "allowlisted",
    "target_path",
    "destination_path",
    "reason",
];

pub fn run_scan(
    args: &InputArgs,
    format: Format,
    all_columns: bool,
    no_truncate: bool,
) -> anyhow::Result<()> {
    if format == Format::Table {
        // A terminal table needs every row for its column widths.
        return run_scan_table(args, all_columns, no_truncate);
    }
    // jsonl and csv: rows go to a spool file as they come, so memory stays
    // flat whatever the input size; a correlation id that arrives later (a
    // unified-log row linking an earlier ES row) is applied when the spool is
    // copied out. The spool is anonymous (unlinked as it is created, 0600):
    // it is read back through its handle, and whatever ends the process (a
    // signal, a crash) leaves no copy of the rows on disk.
    let columns: Vec<String> = COLUMNS.iter().map(|c| c.name.to_string()).collect();
    let mut spool =
        tempfile::tempfile().map_err(|e| anyhow::anyhow!("creating spool file: {e}"))?;
    let mut w = io::BufWriter::new(&mut spool);
    let (_, total, updates) = scan_inputs_into(args, &mut |r| {
        output::write_jsonl_row(&mut w, &columns, &r.values())
            .map_err(|e| anyhow::anyhow!("spool: {e}"))
    })?;
    w.flush().map_err(|e| anyhow::anyhow!("spool: {e}"))?;
    drop(w);
    let linked: HashMap<&str, &str> = updates
        .iter()
        .map(|u| (u.eid.as_str(), u.correlation_id.as_str()))
        .collect();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let werr = write_error;
    if format == Format::Csv {
        output::write_csv_header(&mut out, &columns).map_err(werr)?;
    }
    {
        use std::io::Seek;
        spool.rewind().map_err(|e| anyhow::anyhow!("spool: {e}"))?;
    }
    let reader = BufReader::new(spool);
    for line in reader.lines() {
        let line = line.map_err(|e| anyhow::anyhow!("spool: {e}"))?;
        if format == Format::Jsonl && linked.is_empty() {
            writeln!(out, "{line}").map_err(werr)?;
            continue;
        }
        let mut obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("spool: {e}"))?;
        if let Some(c) = obj
            .get("eid")
            .and_then(|e| e.as_str())
            .and_then(|e| linked.get(e))
        {
            obj.insert(
                "correlation_id".into(),
                serde_json::Value::String(c.to_string()),
            );
        }
        let values: Vec<Value> = columns
            .iter()
            .map(|c| match obj.get(c) {
                Some(serde_json::Value::String(s)) => Value::Text(s.clone()),
                Some(serde_json::Value::Number(n)) => n.as_i64().map_or(Value::Null, Value::Int),
                _ => Value::Null,
            })
            .collect();
        match format {
            Format::Csv => output::write_csv_row(&mut out, &values).map_err(werr)?,
            _ => output::write_jsonl_row(&mut out, &columns, &values).map_err(werr)?,
        }
    }
    out.flush().map_err(werr)?;
    eprintln!("{}", summary(&total, args.inputs.len()));
    Ok(())
}

fn run_scan_table(args: &InputArgs, all_columns: bool, no_truncate: bool) -> anyhow::Result<()> {
    let scanned = scan_inputs(args)?;
    let cols: Vec<&str> = if all_columns {
        COLUMNS.iter().map(|c| c.name).collect()
    } else {
        TABLE_COLUMNS.to_vec()
    };
    let idx: Vec<usize> = cols
        .iter()
        .filter_map(|c| COLUMNS.iter().position(|k| k.name == *c))
        .collect();
    let rs = ResultSet {
        columns: cols.iter().map(|c| c.to_string()).collect(),
        rows: scanned
            .rows
            .iter()
            .map(|r| {
                let v = r.values();
                idx.iter()
                    .map(|&i| v.get(i).cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .collect(),
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    crate::table::write(&mut out, &rs, &TableOptions::for_stdout(no_truncate))
        .map_err(write_error)?;
    out.flush().map_err(write_error)?;
    eprintln!("{}", summary(&scanned.total, args.inputs.len()));
    Ok(())
}

/// An in-memory database holding the scanned rows as `keychain_access_events`
/// and the per-input health rows as `keychain_access_status`.
pub fn load_database(scanned: &Scanned) -> anyhow::Result<Store> {
    let mut store = Store::open_in_memory()?;
    store.insert(&scanned.rows, None)?;
    let conn = store.connection();
    conn.execute(&status::sqlite_create_status_table(), [])?;
    status::insert_status(conn, &scanned.per_input)?;
    Ok(store)
}

/// Run one SQL statement and collect its result. The connection must be
/// sealed ([`crate::sql_guard::seal`]): only read-only statements run.
pub fn run_sql(conn: &rusqlite::Connection, sql: &str) -> anyhow::Result<ResultSet> {
    let mut stmt = crate::sql_guard::prepare(conn, sql)?;
    let columns: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut q = stmt
        .query([])
        .map_err(|e| anyhow::anyhow!("SQL error: {e}"))?;
    while let Some(r) = q.next().map_err(|e| anyhow::anyhow!("SQL error: {e}"))? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            use rusqlite::types::ValueRef;
            let v = match r
                .get_ref(i)
                .map_err(|e| anyhow::anyhow!("SQL error: {e}"))?
            {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Text(f.to_string()),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Text(format!("<{} bytes>", b.len())),
            };
            vals.push(v);
        }
        rows.push(vals);
    }
    Ok(ResultSet { columns, rows })
}

pub fn run_query(
    args: &InputArgs,
    format: Format,
    no_truncate: bool,
    sql: &str,
) -> anyhow::Result<()> {
    let scanned = scan_inputs(args)?;
    let mut store = load_database(&scanned)?;
    crate::sql_guard::seal(store.connection_mut())?;
    let rs = run_sql(store.connection(), sql)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if format == Format::Table {
        crate::table::write(&mut out, &rs, &TableOptions::for_stdout(no_truncate))
            .map_err(write_error)?;
    } else {
        output::write(&mut out, format, &rs).map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    eprintln!("{}", summary(&scanned.total, args.inputs.len()));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    /// The README's Markdown column table.
    Markdown,
    /// JSON (packs/schema/keychain_access_events.json).
    Json,
    /// SQLite CREATE TABLE.
    Sql,
}

pub fn run_schema(format: SchemaFormat) -> anyhow::Result<()> {
    let text = match format {
        SchemaFormat::Markdown => schema::markdown_table(),
        SchemaFormat::Json => schema::schema_json(),
        SchemaFormat::Sql => format!("{};\n", schema::sqlite_create_table(TABLE_NAME)),
    };
    print_stdout(&text)
}

/// The error `main` turns into a quiet exit 0: the reader of our output
/// went away (`keychain-access scan ... | head`), as Unix filters do.
#[derive(Debug, thiserror::Error)]
#[error("output closed by its reader (broken pipe)")]
pub struct BrokenPipe;

/// An output write error as the CLI reports it.
pub fn write_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(BrokenPipe)
    } else {
        anyhow::anyhow!("writing output: {e}")
    }
}

/// Write text to stdout (print! panics when the reader has gone away).
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(write_error)?;
    out.flush().map_err(write_error)
}

/// A progress line on a terminal for large inputs.
struct Progress {
    enabled: bool,
    size: u64,
    name: String,
    last: Instant,
}

impl Progress {
    fn new(path: &Path, size: Option<u64>) -> Self {
        let size = size.unwrap_or(0);
        Progress {
            enabled: size >= 64 * 1024 * 1024 && io::stderr().is_terminal(),
            size,
            name: path.display().to_string(),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, offset: u64) {
        if self.enabled && self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            let pct = offset as f64 * 100.0 / self.size.max(1) as f64;
            eprint!("\r{}: {:5.1}% ({} MB)", self.name, pct, offset / 1_000_000);
        }
    }

    fn done(&self) {
        if self.enabled {
            eprintln!("\r{}: 100.0%{:20}", self.name, "");
        }
    }
}
