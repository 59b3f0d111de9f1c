//! The `keychain_access_status` health table: one row per source.
//!
//! Declared once here; the extension serves it and `query` / `pack run`
//! emulate it from offline scans.

use crate::scan::ScanStats;
use crate::schema::{Column, ColumnType, Value};

/// The health table's name.
pub const STATUS_TABLE: &str = "keychain_access_status";

macro_rules! status_columns {
    ($( $name:ident : $kind:ident = $desc:literal ),+ $(,)?) => {
        /// Columns of `keychain_access_status`.
        pub const STATUS_COLUMNS: &[Column] = &[
            $( Column { name: stringify!($name), kind: ColumnType::$kind, description: $desc }, )+
        ];
    };
}

status_columns! {
    source: Text = "Source name: `eslogger`, `log_stream`, `file:<path>`, `sentinel`.",
    kind: Text = "`command`, `file` or `delivery`.",
    state: Text = "`running`, `starting`, `backoff`, `stopped`, `failed`, `done`, `not_permitted`, `unconfigured`.",
    lines_read: BigInt = "Lines read from the source.",
    rows_stored: BigInt = "Rows the source produced and the buffer stored.",
    alerts: BigInt = "Rows that meet the alert rule.",
    malformed: BigInt = "Malformed lines skipped (bad JSON, wrong types, invalid records).",
    unknown_types: BigInt = "Well-formed events of types the classifier does not handle.",
    oversize: BigInt = "Lines longer than the line cap, skipped.",
    es_drops: BigInt = "Events Endpoint Security dropped (gaps in global_seq_num).",
    restarts: BigInt = "Times the source command was restarted.",
    cache_evictions: BigInt = "Process-cache evictions (bounded cache at capacity).",
    secrets_scrubbed: BigInt = "Words scrubbed from cmdline, parent_cmdline, message or reason because they are secrets known in the row's process tree.",
    last_event_time: BigInt = "Unix time of the newest row from this source.",
    last_error: Text = "The last error, in words a person can act on.",
    buffer_rows: BigInt = "Rows in the buffer now.",
    buffer_bytes: BigInt = "Size of the buffer database in bytes.",
    bound_hits: Text = "Resource bounds hit so far (JSON object of counters).",
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
    pub last_event_time: Option<i64>,
    pub last_error: Option<String>,
    pub buffer_rows: Option<u64>,
    pub buffer_bytes: Option<u64>,
    pub bound_hits: Option<String>,
}

fn int(v: u64) -> Value {
    Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

impl SourceStatus {
    /// Values in [`STATUS_COLUMNS`] order.
    pub fn values(&self) -> Vec<Value> {
        let s = &self.stats;
        vec![
            Value::Text(self.source.clone()),
            Value::Text(self.kind.clone()),
            Value::Text(self.state.clone()),
            int(s.lines_read),
            int(self.rows_stored),
            int(s.alerts),
            int(s.malformed),
            int(s.unknown_types),
            int(s.oversize),
            int(s.es_drops),
            int(self.restarts),
            int(s.cache_evictions),
            int(s.secrets_scrubbed),
            self.last_event_time.map_or(Value::Null, Value::Int),
            self.last_error.clone().map_or(Value::Null, Value::Text),
            self.buffer_rows.map_or(Value::Null, int),
            self.buffer_bytes.map_or(Value::Null, int),
            self.bound_hits.clone().map_or(Value::Null, Value::Text),
        ]
    }

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
