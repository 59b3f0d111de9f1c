//! `pack run`: the first scheduled run of every pack query over captures,
//! printed as osqueryd's filesystem logger writes results.
//!
//! Each row becomes one event-format line (`"action":"added"`); a query with
//! `"snapshot": true` becomes one snapshot line, as osquery logs it. Column
//! values are strings (`""` for NULL), keys sorted as osquery's row maps are.
//! `epoch` and `counter` are 0 (the first run), `numerics` false.

use super::model::{Pack, Query};
use super::schema_db;
use super::time::calendar_time;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// `hostIdentifier` when none is given: an offline scan has no host.
pub const DEFAULT_HOST_IDENTIFIER: &str = "offline-scan";

/// Settings of one run.
pub struct RunOptions {
    pub host_identifier: String,
    pub decorations: Option<BTreeMap<String, String>>,
    pub now: i64,
}

/// One result line, keys in the order osquery writes them.
#[derive(Serialize)]
struct ResultLine<'a> {
    name: &'a str,
    #[serde(rename = "hostIdentifier")]
    host_identifier: &'a str,
    #[serde(rename = "calendarTime")]
    calendar_time: &'a str,
    #[serde(rename = "unixTime")]
    unix_time: i64,
    epoch: u64,
    counter: u64,
    numerics: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    decorations: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<&'a [BTreeMap<String, String>]>,
    action: &'static str,
}

/// What happened to one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ran { rows: usize },
    Skipped(String),
    Failed(String),
}

/// Parse `--decorations`: a JSON object; values become strings as osquery's are.
pub fn parse_decorations(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("--decorations is not valid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("--decorations must be a JSON object of name -> value"))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
            _ => {
                return Err(anyhow::anyhow!(
                    "--decorations: `{k}` must be a string, number or boolean"
                ))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// Whether a query would be scheduled on macOS.
fn runs_on_darwin(platform: Option<&str>) -> bool {
    match platform {
        None => true,
        Some(p) => p
            .split(',')
            .map(str::trim)
            .any(|p| matches!(p, "darwin" | "posix" | "any" | "all" | "")),
    }
}

/// Add osquery's emulated tables to the offline database, then seal it
/// (read-only statements from here on, as in `pack check`).
pub fn prepare_database(conn: &mut rusqlite::Connection, now: i64) -> anyhow::Result<()> {
    schema_db::emulate(conn, now)?;
    crate::sql_guard::seal(conn)
}

/// Why a statement cannot run offline, or `None` if it prepares.
fn not_runnable(conn: &rusqlite::Connection, sql: &str) -> Option<Outcome> {
    match crate::sql_guard::prepare(conn, sql) {
        Ok(_) => None,
        Err(r @ crate::sql_guard::Refusal::Refused(_)) => Some(Outcome::Failed(r.to_string())),
        Err(crate::sql_guard::Refusal::Sqlite(e)) => {
            let msg = schema_db::sqlite_message(&e);
            if let Some(t) = msg.strip_prefix("no such table: ") {
                Some(Outcome::Skipped(format!(
                    "table {t} is not emulated offline (only keychain_access_events, keychain_access_status, \
                     osquery_registry and time are)"
                )))
            } else if let Some(f) = msg.strip_prefix("no such function: ") {
                Some(Outcome::Skipped(format!(
                    "osquery SQL function {f} is not emulated offline"
                )))
            } else {
                Some(Outcome::Failed(msg))
            }
        }
    }
}

/// Evaluate the pack's discovery queries. `Ok(false)`: the pack would not run.
fn discovery_passes(
    conn: &rusqlite::Connection,
    pack: &Pack,
    log: &mut dyn Write,
) -> anyhow::Result<bool> {
    for sql in &pack.discovery {
        if let Some(o) = not_runnable(conn, sql) {
            match o {
                Outcome::Skipped(why) => {
                    let _ = writeln!(log, "keychain-access: pack {}: discovery not evaluated ({why}); assuming it passes: {sql}", pack.name);
                    continue;
                }
                Outcome::Failed(e) => {
                    return Err(anyhow::anyhow!(
                        "{}: discovery `{sql}`: {e}",
                        pack.path.display()
                    ))
                }
                Outcome::Ran { .. } => {}
            }
        }
        let rs = crate::cli::run_sql(conn, sql)?;
        if rs.rows.is_empty() {
            let _ = writeln!(
                log,
                "keychain-access: pack {}: discovery query returned no rows, so osquery would not run the pack: {sql}",
                pack.name
            );
            return Ok(false);
        }
    }
    Ok(true)
}

fn row_map(
    columns: &[String],
    row: &[keychain_access_tables::schema::Value],
) -> BTreeMap<String, String> {
    columns
        .iter()
        .zip(row)
        // An output boundary: bidirectional and zero-width characters are
        // escaped visibly, as in every CLI format.
        .map(|(c, v)| {
            let safe = |t: &str| keychain_access_tables::text::display_safe(t).into_owned();
            (safe(c), safe(&v.to_osquery_string()))
        })
        .collect()
}

/// Write one result line.
fn write_line(
    out: &mut dyn Write,
    name: &str,
    opts: &RunOptions,
    calendar: &str,
    columns: Option<&BTreeMap<String, String>>,
    snapshot: Option<&[BTreeMap<String, String>]>,
) -> anyhow::Result<()> {
    let line = ResultLine {
        name,
        host_identifier: &opts.host_identifier,
        calendar_time: calendar,
        unix_time: opts.now,
        epoch: 0,
        counter: 0,
        numerics: false,
        decorations: opts.decorations.as_ref(),
        columns,
        snapshot,
        action: if snapshot.is_some() {
            "snapshot"
        } else {
            "added"
        },
    };
    serde_json::to_writer(&mut *out, &line).map_err(|e| crate::cli::write_error(e.into()))?;
    out.write_all(b"\n").map_err(crate::cli::write_error)
}

/// Run one query and write its lines.
fn run_query(
    conn: &rusqlite::Connection,
    pack: &Pack,
    q: &Query,
    opts: &RunOptions,
    calendar: &str,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let platform = q.platform.as_deref().or(pack.platform.as_deref());
    if !runs_on_darwin(platform) {
        return Ok(Outcome::Skipped(format!(
            "platform {} does not include darwin",
            platform.unwrap_or("")
        )));
    }
    if let Some(o) = not_runnable(conn, &q.sql) {
        return Ok(o);
    }
    let rs = match crate::cli::run_sql(conn, &q.sql) {
        Ok(rs) => rs,
        Err(e) => return Ok(Outcome::Failed(format!("{e:#}"))),
    };
    let name = pack.result_name(&q.name);
    if q.snapshot {
        let rows: Vec<BTreeMap<String, String>> =
            rs.rows.iter().map(|r| row_map(&rs.columns, r)).collect();
        write_line(out, &name, opts, calendar, None, Some(&rows))?;
    } else {
        for r in &rs.rows {
            let cols = row_map(&rs.columns, r);
            write_line(out, &name, opts, calendar, Some(&cols), None)?;
        }
    }
    Ok(Outcome::Ran {
        rows: rs.rows.len(),
    })
}

/// Run every query of `pack` over `conn` (already holding the captures and
/// made ready by [`prepare_database`]).
/// Result lines go to `out`, one report line per query to `log`. Returns the
/// number of queries that failed (SQL errors other than missing tables).
pub fn run_pack(
    conn: &rusqlite::Connection,
    pack: &Pack,
    opts: &RunOptions,
    out: &mut dyn Write,
    log: &mut dyn Write,
) -> anyhow::Result<usize> {
    if !runs_on_darwin(pack.platform.as_deref()) {
        let _ = writeln!(
            log,
            "keychain-access: pack {}: platform {} does not include darwin; nothing to run",
            pack.name,
            pack.platform.as_deref().unwrap_or("")
        );
        return Ok(0);
    }
    if !discovery_passes(conn, pack, log)? {
        return Ok(0);
    }
    let calendar = calendar_time(opts.now);
    let mut failed = 0;
    for q in &pack.queries {
        let name = pack.result_name(&q.name);
        match run_query(conn, pack, q, opts, &calendar, out)? {
            Outcome::Ran { rows } => {
                let _ = writeln!(log, "keychain-access: {name}: {rows} row(s)");
            }
            Outcome::Skipped(why) => {
                let _ = writeln!(log, "keychain-access: {name}: skipped: {why}");
            }
            Outcome::Failed(e) => {
                failed += 1;
                let _ = writeln!(
                    log,
                    "keychain-access: {}:{}: error: {e}",
                    pack.path.display(),
                    q.name
                );
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_are_strings() {
        let d = parse_decorations(r#"{"hostname":"mac-1","n":3,"b":true,"z":null}"#).unwrap();
        assert_eq!(d["n"], "3");
        assert_eq!(d["b"], "true");
        assert_eq!(d["z"], "");
        assert!(parse_decorations("[1]").is_err());
        assert!(parse_decorations(r#"{"a":{"b":1}}"#).is_err());
        assert!(parse_decorations("{").is_err());
    }

    #[test]
    fn darwin_platforms() {
        assert!(runs_on_darwin(None));
        assert!(runs_on_darwin(Some("darwin")));
        assert!(runs_on_darwin(Some("linux,posix")));
        assert!(!runs_on_darwin(Some("linux,windows")));
    }
}
