//! The `keychain_access_events` schema, declared once.
//!
//! One macro invocation below declares every column: its name, its osquery
//! type and what it means. From it come the [`KeychainAccess`] row struct, the
//! [`COLUMNS`] list (which the extension turns into osquery column routes),
//! the SQLite DDL of the buffer ([`sqlite_create_table`]), the README's column
//! table ([`markdown_table`]) and the schema the pack and Sentinel tests check
//! against. Adding a column here adds it everywhere.

use serde::ser::{Serialize, SerializeMap, Serializer};

mod vocab;
pub use vocab::{Action, Severity, UnknownName};

/// osquery column types used by this table (a subset of osquery's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    BigInt,
}

impl ColumnType {
    /// The type name as osquery spells it in column routes.
    pub fn osquery_name(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::BigInt => "BIGINT",
        }
    }

    /// The SQLite declared type (osquery's own virtual tables use the same names).
    pub fn sqlite_name(self) -> &'static str {
        self.osquery_name()
    }

    /// The KQL type Sentinel tables use for this column.
    pub fn kql_name(self) -> &'static str {
        match self {
            ColumnType::Text => "string",
            ColumnType::Integer | ColumnType::BigInt => "long",
        }
    }
}

/// One column of `keychain_access_events`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
    pub description: &'static str,
}

/// A cell value: what a column holds for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    /// The value as osquery's string rows carry it: NULL is the empty string.
    pub fn to_osquery_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Text(t) => s.serialize_str(t),
        }
    }
}

/// Rust field type for each osquery column type.
macro_rules! field_type {
    (Text) => { Option<String> };
    (Integer) => { Option<i64> };
    (BigInt) => { Option<i64> };
    // A closed vocabulary: TEXT on the wire, the enum in Rust.
    ($vocab:ident) => { Option<$vocab> };
}

/// osquery column type for each column kind (a closed vocabulary is TEXT).
macro_rules! column_type {
    (Text) => {
        ColumnType::Text
    };
    (Integer) => {
        ColumnType::Integer
    };
    (BigInt) => {
        ColumnType::BigInt
    };
    ($vocab:ident) => {
        ColumnType::Text
    };
}

macro_rules! to_value {
    (Text, $e:expr) => {
        match &$e {
            Some(s) => Value::Text(s.clone()),
            None => Value::Null,
        }
    };
    (Integer, $e:expr) => {
        match $e {
            Some(i) => Value::Int(i),
            None => Value::Null,
        }
    };
    (BigInt, $e:expr) => {
        match $e {
            Some(i) => Value::Int(i),
            None => Value::Null,
        }
    };
    ($vocab:ident, $e:expr) => {
        match $e {
            Some(v) => Value::Text(v.as_str().to_string()),
            None => Value::Null,
        }
    };
}

macro_rules! into_string {
    (Text, $e:expr) => {
        $e.unwrap_or_default()
    };
    (Integer, $e:expr) => {
        $e.map(|i| i.to_string()).unwrap_or_default()
    };
    (BigInt, $e:expr) => {
        $e.map(|i| i.to_string()).unwrap_or_default()
    };
    ($vocab:ident, $e:expr) => {
        $e.map(|v| v.as_str().to_string()).unwrap_or_default()
    };
}

macro_rules! from_sql {
    (Text, $row:expr, $i:expr) => {
        $row.get::<_, Option<String>>($i)?
    };
    (Integer, $row:expr, $i:expr) => {
        $row.get::<_, Option<i64>>($i)?
    };
    (BigInt, $row:expr, $i:expr) => {
        $row.get::<_, Option<i64>>($i)?
    };
    // A name outside the set (a row written by another version) is a
    // conversion error naming the column, not a NULL: a NULL severity
    // would drop an alert without a word.
    ($vocab:ident, $row:expr, $i:expr) => {
        $row.get::<_, Option<$vocab>>($i)?
    };
}

macro_rules! declare_columns {
    ($( $(#[$doc:meta])* $name:ident : $kind:ident = $desc:literal ),+ $(,)?) => {
        /// One row of `keychain_access_events`: one keychain access by one process.
        ///
        /// Every field is optional: a missing value is NULL in SQL and JSON and
        /// the empty string in osquery's rows.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct KeychainAccess {
            $( $(#[$doc])* #[doc = $desc] pub $name: field_type!($kind), )+
        }

        /// Every column of `keychain_access_events`, in table order.
        pub const COLUMNS: &[Column] = &[
            $( Column { name: stringify!($name), kind: column_type!($kind), description: $desc }, )+
        ];

        impl KeychainAccess {
            /// The row's values in [`COLUMNS`] order.
            pub fn values(&self) -> Vec<Value> {
                vec![ $( to_value!($kind, self.$name) ),+ ]
            }

            /// The row as osquery's string map (NULL -> ""), moving the
            /// strings rather than copying them; with `only`, just those
            /// columns (osquery's `colsUsed`).
            pub fn into_osquery_map(self, only: Option<&[String]>) -> std::collections::BTreeMap<String, String> {
                let mut map = std::collections::BTreeMap::new();
                let keep = |name: &str| only.is_none_or(|o| o.iter().any(|c| c == name));
                $( if keep(stringify!($name)) {
                    map.insert(stringify!($name).to_string(), into_string!($kind, self.$name));
                } )+
                map
            }

            /// Read a row selected as `SELECT <all columns in COLUMNS order>`.
            /// An `action` or `severity` outside its set (a buffer written by
            /// another version) is a `FromSqlConversionFailure` naming the
            /// column index: the caller sees "could not read", never a row
            /// with the value silently dropped.
            pub fn from_sql_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let mut i = 0usize;
                $( let $name = from_sql!($kind, row, i); i += 1; )+
                let _ = i;
                Ok(KeychainAccess { $( $name ),+ })
            }
        }
    };
}

declare_columns! {
    time: BigInt = "Unix time (seconds) of the event.",
    eid: Text = "Event id derived from the event itself: stable across runs and restarts, unique per row.",
    source: Text = "Where the row came from: `esf` (Endpoint Security via eslogger) or `unified_log`.",
    event_type: Text = "The source event by name: `exec`, `open`, `clone`, `copyfile`, `rename`, `create`, `unlink`, `close`, or `log` for unified-log rows.",
    pid: BigInt = "Process id of the acting process.",
    pidversion: BigInt = "pidversion of the acting process (pid + pidversion identify a process image).",
    ppid: BigInt = "Parent process id.",
    parent_pidversion: BigInt = "pidversion of the parent, where the event carries the parent's audit token.",
    uid: BigInt = "Effective user id of the acting process.",
    auid: BigInt = "Audit user id (the login user, unchanged by sudo).",
    username: Text = "User name of `auid`, resolved on the collecting Mac; NULL in offline scans.",
    path: Text = "Executable path of the acting process.",
    cmdline: Text = "Command line of the acting process (secrets redacted, control characters escaped).",
    cwd: Text = "Working directory of the acting process, where known.",
    parent_path: Text = "Executable path of the parent process, where seen.",
    parent_cmdline: Text = "Command line of the parent process, where seen (redacted).",
    ancestors: Text = "JSON array of ancestor executable paths, nearest first (parent, grandparent, ...); [] when the process is known with no recorded ancestor, NULL when the process itself is unknown.",
    responsible_path: Text = "Executable path of the responsible process (the app macOS attributes the process to).",
    signing_id: Text = "Code-signing identifier of the acting process.",
    team_id: Text = "Code-signing team id of the acting process (NULL for Apple platform and ad-hoc code).",
    cdhash: Text = "Code directory hash of the acting process.",
    signer: Text = "Signer class of the acting process: `apple`, `developer_id`, `adhoc` or `unsigned`.",
    platform_binary: Integer = "1 when the acting process is an Apple platform binary.",
    action: Action = "What was done: one of the closed set documented in the README (e.g. `dump_keychain`, `keychain_read`).",
    verb: Text = "The `security` verb as security(1) resolves it (prefixes expanded), for `security` rows.",
    target_path: Text = "The keychain file (or keychain argument) accessed.",
    destination_path: Text = "Where keychain material was copied, moved or exported to.",
    keychain_dump: Integer = "1 for `security dump-keychain` (the seed query's KeychainDump flag).",
    password_query: Integer = "1 for `security find-generic-password` / `find-internet-password` (PasswordQuery).",
    cert_export: Integer = "1 for `security find-certificate` / `export` (CertExport).",
    reveals_secret: Integer = "1 when the access reveals or exports secrets: `dump-keychain -d`/`-r`, `find-*-password -g`/`-w`, `export` of identities or private keys, known tools, reads and copies of keychain files. Public certificates (`find-certificate -p`, `export -t certs`) are not secrets.",
    allowlisted: Integer = "1 when a tuning rule excused this row (it is kept, never deleted).",
    allow_reason: Text = "The tuning rule that excused the row.",
    severity: Severity = "`info`, `low`, `medium` or `high`, by the documented rules.",
    reason: Text = "Short human-readable reason for the action and severity.",
    technique: Text = "MITRE ATT&CK technique (`T1555.001`).",
    message: Text = "Unified-log message (redacted); NULL for Endpoint Security rows.",
    correlation_id: Text = "Key shared by rows that describe the same access from both sources.",
    es_version: Integer = "Endpoint Security message version of the source event.",
    global_seq_num: BigInt = "Endpoint Security global sequence number (gaps mean dropped events).",
}

/// The alert rule, defined once: the pack's alert query and the Sentinel
/// rules use exactly this predicate (tests hold them to it).
pub const ALERT_PREDICATE_SQL: &str = "severity IN ('medium','high') AND allowlisted = 0";

/// The same rule over the Sentinel parser's column names.
pub const ALERT_PREDICATE_KQL: &str = "Severity in (\"medium\", \"high\") and Allowlisted == 0";

/// The MITRE ATT&CK technique every row carries.
pub const TECHNIQUE: &str = "T1555.001";

/// The osquery table name.
pub const TABLE_NAME: &str = "keychain_access_events";

/// Look a column up by name.
pub fn column(name: &str) -> Option<&'static Column> {
    COLUMNS.iter().find(|c| c.name == name)
}

/// `CREATE TABLE` for the SQLite buffer and the offline query engine.
pub fn sqlite_create_table(table: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("  {} {}", c.name, c.kind.sqlite_name()))
        .collect();
    format!("CREATE TABLE {table} (\n{}\n)", cols.join(",\n"))
}

/// Comma-separated column list in table order (for SELECT and INSERT).
pub fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The README's column table (Markdown).
pub fn markdown_table() -> String {
    let mut out = String::from("| column | type | meaning |\n|---|---|---|\n");
    for c in COLUMNS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.name,
            c.kind.osquery_name(),
            c.description.replace('|', "\\|")
        ));
    }
    out
}

impl KeychainAccess {
    /// Whether this row meets the alert rule ([`ALERT_PREDICATE_SQL`]).
    pub fn is_alert(&self) -> bool {
        self.severity.is_some_and(Severity::alerts) && self.allowlisted == Some(0)
    }

    /// Values as osquery string rows carry them (NULL -> "").
    pub fn to_osquery_map(&self) -> std::collections::BTreeMap<String, String> {
        COLUMNS
            .iter()
            .zip(self.values())
            .map(|(c, v)| (c.name.to_string(), v.to_osquery_string()))
            .collect()
    }
}

/// JSON: one object per row, keys are column names, integers are numbers,
/// missing values are null.
impl Serialize for KeychainAccess {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let values = self.values();
        let mut map = s.serialize_map(Some(COLUMNS.len()))?;
        for (c, v) in COLUMNS.iter().zip(values.iter()) {
            map.serialize_entry(c.name, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_unique_and_include_the_required_names() {
        let mut names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate column names");
        for required in [
            "time",
            "eid",
            "source",
            "event_type",
            "pid",
            "pidversion",
            "ppid",
            "uid",
            "auid",
            "username",
            "path",
            "cmdline",
            "cwd",
            "parent_path",
            "parent_cmdline",
            "ancestors",
            "responsible_path",
            "signing_id",
            "team_id",
            "cdhash",
            "signer",
            "platform_binary",
            "action",
            "target_path",
            "destination_path",
            "keychain_dump",
            "password_query",
            "cert_export",
            "reveals_secret",
            "allowlisted",
            "allow_reason",
            "severity",
            "reason",
            "technique",
            "message",
            "correlation_id",
        ] {
            assert!(column(required).is_some(), "missing column {required}");
        }
    }

    #[test]
    fn values_follow_column_order_and_sql_roundtrips() {
        let row = KeychainAccess {
            time: Some(1),
            eid: Some("e".into()),
            pid: Some(42),
            action: Some(Action::DumpKeychain),
            severity: Some(Severity::High),
            allowlisted: Some(0),
            ..Default::default()
        };
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute(&sqlite_create_table("t"), []).unwrap();
        let placeholders = vec!["?"; COLUMNS.len()].join(",");
        conn.execute(
            &format!("INSERT INTO t ({}) VALUES ({placeholders})", column_list()),
            rusqlite::params_from_iter(row.values()),
        )
        .unwrap();
        let back = conn
            .query_row(&format!("SELECT {} FROM t", column_list()), [], |r| {
                KeychainAccess::from_sql_row(r)
            })
            .unwrap();
        assert_eq!(back, row);
        assert!(back.is_alert());
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM t WHERE {ALERT_PREDICATE_SQL}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["pid"], 42);
        assert!(json["cmdline"].is_null());
        assert_eq!(json["action"], "dump_keychain");
        assert_eq!(json["severity"], "high");
        let map = row.to_osquery_map();
        assert_eq!(map["action"], "dump_keychain");
        assert_eq!(map["severity"], "high");
        assert_eq!(map["verb"], "");
        assert_eq!(row.clone().into_osquery_map(None), map);
    }

    #[test]
    fn vocabulary_columns_are_text() {
        for name in ["action", "severity"] {
            assert_eq!(column(name).unwrap().kind, ColumnType::Text, "{name}");
        }
    }

    #[test]
    fn an_unknown_stored_name_is_a_conversion_error_not_null() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute(&sqlite_create_table("t"), []).unwrap();
        for (col, value) in [("action", "keychain_teleport"), ("severity", "critical")] {
            conn.execute("DELETE FROM t", []).unwrap();
            conn.execute(
                &format!("INSERT INTO t (eid, {col}) VALUES ('e', ?1)"),
                [value],
            )
            .unwrap();
            let got = conn.query_row(&format!("SELECT {} FROM t", column_list()), [], |r| {
                KeychainAccess::from_sql_row(r)
            });
            let idx = COLUMNS.iter().position(|c| c.name == col).unwrap();
            match got {
                Err(rusqlite::Error::FromSqlConversionFailure(i, _, e)) => {
                    assert_eq!(i, idx, "{col}");
                    assert!(e.to_string().contains(value), "{e}");
                }
                other => panic!("{col}: expected a conversion error, got {other:?}"),
            }
        }
    }

    #[test]
    fn is_alert_is_the_alert_predicate() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute(&sqlite_create_table("t"), []).unwrap();
        let placeholders = vec!["?"; COLUMNS.len()].join(",");
        let mut rows = Vec::new();
        for (i, sev) in Severity::ALL.iter().map(Some).chain([None]).enumerate() {
            for allowlisted in [Some(0), Some(1), None] {
                let row = KeychainAccess {
                    eid: Some(format!("{i}-{allowlisted:?}")),
                    severity: sev.copied(),
                    allowlisted,
                    ..Default::default()
                };
                conn.execute(
                    &format!("INSERT INTO t ({}) VALUES ({placeholders})", column_list()),
                    rusqlite::params_from_iter(row.values()),
                )
                .unwrap();
                rows.push(row);
            }
        }
        for row in rows {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM t WHERE eid = ?1 AND {ALERT_PREDICATE_SQL}"),
                    [row.eid.as_deref().unwrap()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n == 1, row.is_alert(), "{row:?}");
        }
    }
}

/// Columns as JSON objects (name, osquery type, KQL type, description).
pub fn columns_json(cols: &[Column]) -> Vec<serde_json::Value> {
    cols.iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "osquery_type": c.kind.osquery_name(),
                "kql_type": c.kind.kql_name(),
                "description": c.description,
            })
        })
        .collect()
}

/// The schema as JSON (`packs/schema/keychain_access_events.json`): what the
/// pack, KQL and Sigma tests check against. A test keeps the file in step.
pub fn schema_json() -> String {
    let cols = columns_json(COLUMNS);
    let doc = serde_json::json!({
        "table": TABLE_NAME,
        "alert_predicate_sql": ALERT_PREDICATE_SQL,
        "alert_predicate_kql": ALERT_PREDICATE_KQL,
        "technique": TECHNIQUE,
        "columns": cols,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod schema_file_tests {
    /// The checked-in schema file must match the Rust definition.
    /// Regenerate with `UPDATE_SCHEMA=1 cargo test -p keychain-access-tables`.
    #[test]
    fn checked_in_schema_json_matches() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packs/schema/keychain_access_events.json"
        );
        let want = super::schema_json();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
            std::fs::write(path, &want).unwrap();
        }
        let got = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            got, want,
            "{path} drifted from schema.rs; rerun with UPDATE_SCHEMA=1"
        );
    }
}
