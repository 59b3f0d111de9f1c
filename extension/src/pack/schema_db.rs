//! The SQLite databases queries are prepared and run against.
//!
//! osquery's SQL engine is SQLite, so preparing a statement against tables
//! declared with osquery's columns catches what osquery would reject at
//! schedule time: syntax errors, unknown tables, unknown columns.
//!
//! * [`check_db`] declares our two tables (from the schema declared once in
//!   the tables crate) plus the osquery built-in tables the pack, the
//!   policies and the decorators use, with their real spec columns, and stubs
//!   of osquery's extra SQL functions.
//! * [`emulate`] turns the offline database of `pack run` (our two tables,
//!   filled from captures) into a small osquery: `osquery_registry` lists our
//!   tables as active and `time` has the run's time. Every other osquery table
//!   is missing on purpose, so a query on it fails to prepare and is reported
//!   as skipped.

use keychain_access_tables::schema::{sqlite_create_table, TABLE_NAME};
use keychain_access_tables::status::{sqlite_create_status_table, STATUS_TABLE};
use rusqlite::Connection;

/// osquery built-in tables known to the checker: name and `CREATE TABLE` body.
/// Columns are osquery's specs (`specs/darwin/es_process_events.table` etc.);
/// hidden columns (`eid`) are declared like the others since osquery lets a
/// query select them by name.
pub const OSQUERY_TABLES: &[(&str, &str)] = &[
    (
        "es_process_events",
        "version INTEGER, seq_num BIGINT, global_seq_num BIGINT, pid BIGINT, pidversion BIGINT, \
         path TEXT, parent BIGINT, original_parent BIGINT, session_id BIGINT, responsible_pid BIGINT, \
         responsible_pidversion BIGINT, parent_pidversion BIGINT, cmdline TEXT, cmdline_count BIGINT, \
         env TEXT, env_count BIGINT, cwd TEXT, uid BIGINT, euid BIGINT, gid BIGINT, egid BIGINT, \
         username TEXT, signing_id TEXT, team_id TEXT, cdhash TEXT COLLATE NOCASE, platform_binary INTEGER, \
         exit_code INTEGER, child_pid BIGINT, time BIGINT, event_type TEXT, eid TEXT, codesigning_flags TEXT",
    ),
    (
        "es_process_file_events",
        "version INTEGER, seq_num BIGINT, global_seq_num BIGINT, pid BIGINT, parent BIGINT, path TEXT, \
         filename TEXT, dest_filename TEXT, event_type TEXT, time BIGINT, eid TEXT",
    ),
    (
        "osquery_registry",
        "registry TEXT, name TEXT, owner_uuid INTEGER, internal INTEGER, active INTEGER",
    ),
    (
        "osquery_extensions",
        "uuid BIGINT, name TEXT, version TEXT, sdk_version TEXT, path TEXT, type TEXT",
    ),
    (
        "osquery_info",
        "pid INTEGER, uuid TEXT, instance_id TEXT, version TEXT, config_hash TEXT, config_valid INTEGER, \
         extensions TEXT, build_platform TEXT, build_distro TEXT, start_time INTEGER, watcher INTEGER, \
         platform_mask INTEGER",
    ),
    (
        "osquery_flags",
        "name TEXT, type TEXT, description TEXT, default_value TEXT, value TEXT, shell_only INTEGER",
    ),
    (
        "system_info",
        "hostname TEXT, uuid TEXT, cpu_type TEXT, cpu_subtype TEXT, cpu_brand TEXT, \
         cpu_physical_cores INTEGER, cpu_logical_cores INTEGER, cpu_sockets INTEGER, cpu_microcode TEXT, \
         physical_memory BIGINT, hardware_vendor TEXT, hardware_model TEXT, hardware_version TEXT, \
         hardware_serial TEXT, board_vendor TEXT, board_model TEXT, board_version TEXT, board_serial TEXT, \
         computer_name TEXT, local_hostname TEXT, emulated_cpu_type TEXT",
    ),
    (
        "time",
        "weekday TEXT, year INTEGER, month INTEGER, day INTEGER, hour INTEGER, minutes INTEGER, \
         seconds INTEGER, timezone TEXT, local_time INTEGER, local_timezone TEXT, unix_time INTEGER, \
         timestamp TEXT, datetime TEXT, iso_8601 TEXT",
    ),
];

/// osquery's SQL additions (docs: "SQL Introduction", "osquery SQL
/// functions"); stubbed in the check database so a statement using them still
/// prepares (and its tables and columns are still checked).
const OSQUERY_FUNCTIONS: &[&str] = &[
    "regex_match",
    "regex_split",
    "split",
    "concat",
    "concat_ws",
    "inet_aton",
    "community_id_v1",
    "to_base64",
    "from_base64",
    "conditional_to_base64",
    "sqrt",
    "log",
    "log10",
    "ln",
    "exp",
    "power",
    "pi",
    "ceil",
    "floor",
    "sin",
    "cos",
    "tan",
    "cot",
    "asin",
    "acos",
    "atan",
    "radians",
    "degrees",
    "version_compare",
];

/// The tables `pack check` knows, with where they come from.
pub fn known_tables() -> Vec<&'static str> {
    let mut v = vec![TABLE_NAME, STATUS_TABLE];
    v.extend(OSQUERY_TABLES.iter().map(|(n, _)| *n));
    v
}

/// A database to prepare statements against (no rows).
pub fn check_db() -> anyhow::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    conn.execute(&sqlite_create_table(TABLE_NAME), [])?;
    conn.execute(&sqlite_create_status_table(), [])?;
    for (name, cols) in OSQUERY_TABLES {
        conn.execute(&format!("CREATE TABLE \"{name}\" ({cols})"), [])?;
    }
    for f in OSQUERY_FUNCTIONS {
        conn.create_scalar_function(
            *f,
            -1,
            rusqlite::functions::FunctionFlags::SQLITE_UTF8,
            |_| Ok(rusqlite::types::Value::Null),
        )?;
    }
    // What `pack run` allows, exactly (see crate::sql_guard).
    crate::sql_guard::seal(&mut conn)?;
    Ok(conn)
}

/// Prepare `sql` and report SQLite's error in words that name the problem.
pub fn prepare_error(conn: &Connection, sql: &str) -> Option<String> {
    match crate::sql_guard::prepare(conn, sql) {
        Ok(stmt) => {
            if stmt.column_count() == 0 {
                Some("the statement returns no columns (not a SELECT)".to_string())
            } else {
                None
            }
        }
        Err(r @ crate::sql_guard::Refusal::Refused(_)) => Some(r.to_string()),
        Err(crate::sql_guard::Refusal::Sqlite(e)) => {
            let msg = sqlite_message(&e);
            if let Some(t) = msg.strip_prefix("no such table: ") {
                Some(format!(
                    "no such table: {t} (tables known to the checker: {})",
                    known_tables().join(", ")
                ))
            } else {
                Some(msg)
            }
        }
    }
}

/// SQLite's own message, without rusqlite's wrapping (or the statement).
pub fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        rusqlite::Error::SqlInputError { msg, offset, .. } => {
            if msg.starts_with("no such table: ") || msg.starts_with("no such function: ") {
                msg.clone()
            } else {
                format!("{msg} (at offset {offset})")
            }
        }
        other => other.to_string(),
    }
}

/// Add osquery's `osquery_registry` and `time` to the offline database.
pub fn emulate(conn: &Connection, now: i64) -> anyhow::Result<()> {
    let ddl = |name: &str| -> anyhow::Result<()> {
        let cols = OSQUERY_TABLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| anyhow::anyhow!("no declaration for {name}"))?;
        conn.execute(&format!("CREATE TABLE \"{name}\" ({cols})"), [])?;
        Ok(())
    };
    ddl("osquery_registry")?;
    for t in [TABLE_NAME, STATUS_TABLE] {
        conn.execute(
            "INSERT INTO osquery_registry (registry, name, owner_uuid, internal, active) VALUES ('table', ?1, 1, 0, 1)",
            [t],
        )
        ?;
    }
    ddl("time")?;
    let c = super::time::Civil::from_unix(now);
    conn.execute(
        "INSERT INTO time (weekday, year, month, day, hour, minutes, seconds, timezone, local_time, \
         local_timezone, unix_time, timestamp, datetime, iso_8601) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'UTC', ?8, 'UTC', ?8, ?9, ?10, ?10)",
        rusqlite::params![
            c.weekday_name_long(),
            c.year,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            now,
            super::time::calendar_time(now),
            c.iso_8601(),
        ],
    )
    ?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_typos_and_accepts_osquery_functions() {
        let db = check_db().unwrap();
        assert!(prepare_error(
            &db,
            "SELECT severity FROM keychain_access_events WHERE allowlisted = 0"
        )
        .is_none());
        assert!(prepare_error(
            &db,
            "SELECT filename, dest_filename FROM es_process_file_events"
        )
        .is_none());
        assert!(prepare_error(
            &db,
            "SELECT regex_match(path, 'x', 0) FROM es_process_events"
        )
        .is_none());
        let e = prepare_error(&db, "SELECT severty FROM keychain_access_events").unwrap();
        assert!(e.contains("no such column: severty"), "{e}");
        let e = prepare_error(&db, "SELECT * FROM keychain_access_event").unwrap();
        assert!(e.starts_with("no such table: keychain_access_event"), "{e}");
        assert!(prepare_error(&db, "DELETE FROM keychain_access_events").is_some());
        assert!(prepare_error(&db, "SELEC 1")
            .unwrap()
            .contains("syntax error"));
    }

    #[test]
    fn emulation_has_registry_and_time() {
        let db = Connection::open_in_memory().unwrap();
        emulate(&db, 1_412_098_650).unwrap();
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM osquery_registry WHERE registry='table' AND name='keychain_access_events' AND active=1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        let (t, w): (i64, String) = db
            .query_row("SELECT unix_time, weekday FROM time", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(t, 1_412_098_650);
        assert_eq!(w, "Tuesday");
        assert!(db.prepare("SELECT * FROM es_process_events").is_err());
    }
}
