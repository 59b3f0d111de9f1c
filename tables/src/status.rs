//! The `keychain_access_status` health table: one row per source.
//!
//! Declared once here; the extension serves it and `query` / `pack run`
//! emulate it from offline scans.

use crate::scan::ScanStats;
use crate::schema::{Column, ColumnType, Value};
use crate::tail::TailCounters;

/// The health table's name.
pub const STATUS_TABLE: &str = "keychain_access_status";

/// Each column is declared once with its type, its description and how its
/// value is read from a [`SourceStatus`] (`|row| expr`), so the column list
/// and the values cannot drift apart: reordering lines reorders both, and a
/// new counter is one more line.
macro_rules! status_columns {
    ($( $name:ident : $kind:ident = $desc:literal => |$row:ident| $value:expr ),+ $(,)?) => {
        /// Columns of `keychain_access_status`.
        pub const STATUS_COLUMNS: &[Column] = &[
            $( Column { name: stringify!($name), kind: ColumnType::$kind, description: $desc }, )+
        ];

        impl SourceStatus {
            /// Values in [`STATUS_COLUMNS`] order.
            pub fn values(&self) -> Vec<Value> {
                vec![ $( { let $row = self; $value }, )+ ]
            }
        }
    };
}

status_columns! {
    source: Text = "Source name: `eslogger`, `log_stream`, `file:<path>`, `sentinel`."
        => |r| Value::Text(r.source.clone()),
    kind: Text = "`command`, `file` or `delivery`." => |r| Value::Text(r.kind.clone()),
    state: Text = "`running`, `starting`, `backoff`, `stopped`, `failed`, `done`, `not_permitted`, `unconfigured`."
        => |r| Value::Text(r.state.clone()),
    lines_read: BigInt = "Lines read from the source." => |r| int(r.stats.lines_read),
    rows_stored: BigInt = "Rows the source produced and the buffer stored." => |r| int(r.rows_stored),
    alerts: BigInt = "Rows that meet the alert rule." => |r| int(r.stats.alerts),
    malformed: BigInt = "Malformed lines skipped (bad JSON, wrong types, invalid records)."
        => |r| int(r.stats.malformed),
    unknown_types: BigInt = "Well-formed events of types the classifier does not handle."
        => |r| int(r.stats.unknown_types),
    oversize: BigInt = "Lines longer than the line cap, skipped." => |r| int(r.stats.oversize),
    es_drops: BigInt = "Events Endpoint Security dropped (gaps in global_seq_num)."
        => |r| int(r.stats.es_drops),
    restarts: BigInt = "Times the source command was restarted." => |r| int(r.restarts),
    rotations: BigInt = "File sources: rotations followed since the extension started (the file renamed and a new one made; the old one read to its end first, also when renamed while the extension was stopped). NULL for other kinds."
        => |r| tail(r, |t| t.rotations),
    truncations: BigInt = "File sources: times the file shrank below the read position (copy-truncate), or was rewritten in place (same inode, other bytes before the read position), since the extension started; reading restarted at its start, and lines written between the last read and the truncation are lost. NULL for other kinds."
        => |r| tail(r, |t| t.truncations),
    rotated_lost: BigInt = "File sources: starts that found a new file and the previous one no longer in its folder (rotated and deleted while the extension was stopped); its lines after the last read position are lost. NULL for other kinds."
        => |r| tail(r, |t| t.rotated_lost),
    cache_evictions: BigInt = "Process-cache evictions (bounded cache at capacity)."
        => |r| int(r.stats.cache_evictions),
    secrets_scrubbed: BigInt = "Words scrubbed from cmdline, parent_cmdline, message or reason because they are secrets known in the row's process tree."
        => |r| int(r.stats.secrets_scrubbed),
    last_event_time: BigInt = "Unix time of the newest row from this source."
        => |r| r.last_event_time.map_or(Value::Null, Value::Int),
    last_error: Text = "The last error, in words a person can act on."
        => |r| r.last_error.clone().map_or(Value::Null, Value::Text),
    buffer_rows: BigInt = "Rows in the buffer now." => |r| r.buffer_rows.map_or(Value::Null, int),
    buffer_bytes: BigInt = "Size of the buffer database in bytes."
        => |r| r.buffer_bytes.map_or(Value::Null, int),
    bound_hits: Text = "Resource bounds hit so far (JSON object of counters)."
        => |r| r.bound_hits.clone().map_or(Value::Null, Value::Text),
}

/// One status row.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    pub source: String,
    pub kind: String,
    pub state: String,
    pub stats: ScanStats,
    pub rows_stored: u64,
    pub restarts: u64,
    /// What the tailer saw happen to a file source's file; None for the
    /// sources that are not a tailed file (their columns are NULL).
    pub tail: Option<TailCounters>,
    pub last_event_time: Option<i64>,
    pub last_error: Option<String>,
    pub buffer_rows: Option<u64>,
    pub buffer_bytes: Option<u64>,
    pub bound_hits: Option<String>,
}

fn int(v: u64) -> Value {
    Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A tailer counter, NULL when the source is not a tailed file.
fn tail(r: &SourceStatus, counter: impl Fn(&TailCounters) -> u64) -> Value {
    r.tail.as_ref().map_or(Value::Null, |t| int(counter(t)))
}

impl SourceStatus {
    pub fn to_osquery_map(&self) -> std::collections::BTreeMap<String, String> {
        STATUS_COLUMNS
            .iter()
            .zip(self.values())
            .map(|(c, v)| (c.name.to_string(), v.to_osquery_string()))
            .collect()
    }
}

/// `CREATE TABLE` for the status table (offline emulation).
pub fn sqlite_create_status_table() -> String {
    let cols: Vec<String> = STATUS_COLUMNS
        .iter()
        .map(|c| format!("{} {}", c.name, c.kind.sqlite_name()))
        .collect();
    format!("CREATE TABLE {STATUS_TABLE} ({})", cols.join(", "))
}

/// Insert status rows into a connection that has the status table.
pub fn insert_status(conn: &rusqlite::Connection, rows: &[SourceStatus]) -> rusqlite::Result<()> {
    let placeholders = vec!["?"; STATUS_COLUMNS.len()].join(",");
    let mut stmt = conn.prepare(&format!(
        "INSERT INTO {STATUS_TABLE} VALUES ({placeholders})"
    ))?;
    for r in rows {
        stmt.execute(rusqlite::params_from_iter(r.values()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_columns() {
        let s = SourceStatus::default();
        assert_eq!(s.values().len(), STATUS_COLUMNS.len());
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute(&sqlite_create_status_table(), []).unwrap();
        insert_status(&conn, &[s]).unwrap();
    }

    /// Every field set to a value no other field has: each column must show
    /// its own field's value (a mislabelled column fails here).
    #[test]
    fn each_column_shows_its_own_field() {
        let mut s = SourceStatus {
            source: "file:/x".into(),
            kind: "file".into(),
            state: "running".into(),
            rows_stored: 2,
            restarts: 11,
            tail: Some(TailCounters {
                rotations: 17,
                truncations: 18,
                rotated_lost: 19,
            }),
            last_event_time: Some(13),
            last_error: Some("boom".into()),
            buffer_rows: Some(14),
            buffer_bytes: Some(15),
            bound_hits: Some("{}".into()),
            ..SourceStatus::default()
        };
        s.stats.lines_read = 1;
        s.stats.alerts = 3;
        s.stats.malformed = 4;
        s.stats.unknown_types = 5;
        s.stats.oversize = 6;
        s.stats.es_drops = 7;
        s.stats.cache_evictions = 12;
        s.stats.secrets_scrubbed = 16;
        let m = s.to_osquery_map();
        let want = [
            ("source", "file:/x"),
            ("kind", "file"),
            ("state", "running"),
            ("lines_read", "1"),
            ("rows_stored", "2"),
            ("alerts", "3"),
            ("malformed", "4"),
            ("unknown_types", "5"),
            ("oversize", "6"),
            ("es_drops", "7"),
            ("restarts", "11"),
            ("rotations", "17"),
            ("truncations", "18"),
            ("rotated_lost", "19"),
            ("cache_evictions", "12"),
            ("secrets_scrubbed", "16"),
            ("last_event_time", "13"),
            ("last_error", "boom"),
            ("buffer_rows", "14"),
            ("buffer_bytes", "15"),
            ("bound_hits", "{}"),
        ];
        assert_eq!(m.len(), want.len());
        for (k, v) in want {
            assert_eq!(m.get(k).map(String::as_str), Some(v), "column {k}");
        }
    }

    /// A source that is not a tailed file shows NULL (osquery's empty
    /// string) for the tailer's counters, not 0; a file source shows 0.
    #[test]
    fn tail_counters_are_null_unless_the_source_is_a_tailed_file() {
        let command = SourceStatus::default();
        let file = SourceStatus {
            tail: Some(TailCounters::default()),
            ..SourceStatus::default()
        };
        let (c, f) = (command.to_osquery_map(), file.to_osquery_map());
        for k in ["rotations", "truncations", "rotated_lost"] {
            assert_eq!(c.get(k).map(String::as_str), Some(""), "{k}");
            assert_eq!(f.get(k).map(String::as_str), Some("0"), "{k}");
        }
    }
}

/// The status schema as JSON (`packs/schema/keychain_access_status.json`).
pub fn status_schema_json() -> String {
    let cols = crate::schema::columns_json(STATUS_COLUMNS);
    let mut s =
        serde_json::to_string_pretty(&serde_json::json!({"table": STATUS_TABLE, "columns": cols}))
            .unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod schema_file_tests {
    /// Regenerate with `UPDATE_SCHEMA=1 cargo test -p keychain-access-tables`.
    #[test]
    fn checked_in_status_schema_json_matches() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packs/schema/keychain_access_status.json"
        );
        let want = super::status_schema_json();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let got = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            got, want,
            "{path} drifted from status.rs; rerun with UPDATE_SCHEMA=1"
        );
    }
}
