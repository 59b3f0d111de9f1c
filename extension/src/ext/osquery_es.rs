//! A second live source: osquery's own Endpoint Security tables
//! (`es_process_events`, `es_process_file_events`), read through the
//! extension manager's `query` call instead of eslogger's JSON firehose.
//!
//! osquery stores each event it receives with a per-table event id (`eid`,
//! a counter incremented by one per event, printed as 10 zero-padded
//! digits) and the second it was stored (`time`); it drops events older
//! than `--events_expiry` seconds and the oldest beyond `--events_max`
//! batches (osquery's `osquery/events/eventsubscriberplugin.cpp`). So each
//! poll asks for `time >= cursor.time`, keeps the rows whose eid is past
//! the cursor, and counts a gap between the cursor and the first new eid
//! as events lost before they were read. An eid below the cursor in a later
//! second means osquery's event store was reset: the cursor restarts.
//!
//! Each row becomes the eslogger-shaped JSON line the classifier reads, with
//! only the fields osquery has (see the README's "osquery ES tables"):
//! no pidversion, no audit or responsible token, no `global_seq_num`, no
//! open flags (opens read as reads), argv rebuilt by splitting osquery's
//! space-joined `cmdline`; `write` and `truncate` have no eslogger
//! counterpart and are counted as unknown types.

use super::sources::Feed;
use super::status::Board;
use keychain_access_tables::store::SourceOffset;
use osquery_rust::client::ManagerClient;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The source's name in `keychain_access_status` and in the buffer's offsets.
pub const SOURCE_NAME: &str = "osquery_es";

/// osquery's process and file tables, in the order their rows are fed (a
/// process's exec before its file events of the same second).
pub const TABLES: &[&str] = &["es_process_events", "es_process_file_events"];

/// The columns read from each table (osquery's specs/darwin/*.table).
fn columns(table: &str) -> &'static str {
    match table {
        "es_process_events" => {
            "eid, time, event_type, version, pid, parent, original_parent, path, cmdline, \
             cmdline_count, cwd, uid, euid, signing_id, team_id, cdhash, platform_binary, \
             codesigning_flags, child_pid"
        }
        _ => "eid, time, event_type, version, pid, parent, path, filename, dest_filename",
    }
}

/// Where reading stopped in one table: the last event's time and eid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub time: i64,
    pub eid: u64,
}

/// Cursors of every table, stored in the buffer with the rows they produced
/// (`file_id` = `table=time:eid;...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursors(pub BTreeMap<String, Cursor>);

impl Cursors {
    pub fn from_offset(o: Option<&SourceOffset>) -> Cursors {
        let mut map = BTreeMap::new();
        if let Some(o) = o {
            for part in o.file_id.split(';') {
                let Some((table, rest)) = part.split_once('=') else {
                    continue;
                };
                let Some((t, e)) = rest.split_once(':') else {
                    continue;
                };
                if let (Ok(time), Ok(eid)) = (t.parse(), e.parse()) {
                    map.insert(table.to_string(), Cursor { time, eid });
                }
            }
        }
        Cursors(map)
    }

    pub fn to_offset(&self) -> SourceOffset {
        let file_id = self
            .0
            .iter()
            .map(|(t, c)| format!("{t}={}:{}", c.time, c.eid))
            .collect::<Vec<_>>()
            .join(";");
        SourceOffset {
            source: SOURCE_NAME.to_string(),
            file_id,
            offset: 0,
            fingerprint: None,
        }
    }
}

/// What one poll of one table found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fresh {
    /// New rows, in eid order.
    pub rows: Vec<BTreeMap<String, String>>,
    /// Events osquery dropped (expiry or `events_max`) before they were read.
    pub lost: u64,
    /// osquery's event ids went backwards (its event store was reset).
    pub reset: bool,
    pub cursor: Cursor,
    /// Rows without a usable eid or time (counted as malformed).
    pub malformed: u64,
}

fn num<T: std::str::FromStr>(row: &BTreeMap<String, String>, k: &str) -> Option<T> {
    row.get(k).and_then(|v| v.trim().parse().ok())
}

/// Keep the rows past `cursor` and see what was lost.
pub fn fresh_rows(cursor: Cursor, rows: Vec<BTreeMap<String, String>>) -> Fresh {
    let mut out = Fresh {
        cursor,
        ..Default::default()
    };
    let mut keyed: Vec<(u64, i64, BTreeMap<String, String>)> = Vec::with_capacity(rows.len());
    for r in rows {
        match (num::<u64>(&r, "eid"), num::<i64>(&r, "time")) {
            (Some(e), Some(t)) if e > 0 => keyed.push((e, t, r)),
            _ => out.malformed += 1,
        }
    }
    keyed.sort_by_key(|(e, _, _)| *e);
    let mut start = cursor;
    // An eid at or below the cursor stored in a later second cannot be an
    // old event: osquery started counting again.
    if cursor.eid > 0
        && keyed
            .iter()
            .any(|(e, t, _)| *e <= cursor.eid && *t > cursor.time)
    {
        out.reset = true;
        start = Cursor {
            time: cursor.time,
            eid: 0,
        };
        keyed.retain(|(_, t, _)| *t > cursor.time);
    }
    let mut last = start.eid;
    for (e, t, r) in keyed {
        if e <= last {
            continue; // read before (the time bound is inclusive)
        }
        // Gaps: the first poll starts wherever osquery's buffer starts.
        if last > 0 && e > last + 1 {
            out.lost += e - last - 1;
        }
        last = e;
        out.cursor = Cursor {
            time: t.max(out.cursor.time),
            eid: e,
        };
        out.rows.push(r);
    }
    if out.reset && out.rows.is_empty() {
        out.cursor = Cursor {
            time: cursor.time,
            eid: 0,
        };
    }
    out
}

/// `es_event_type_t` numbers (EndpointSecurity's ESTypes.h) of the events
/// osquery's two tables carry; eslogger prints them as `event_type`, and the
/// scanner's prefilter reads them to count unknown types without parsing.
fn es_event_type(name: &str) -> Option<u64> {
    Some(match name {
        "exec" => 9,
        "open" => 10,
        "fork" => 11,
        "create" => 13,
        "exit" => 15,
        "rename" => 25,
        "write" => 33,
        "truncate" => 41,
        _ => return None,
    })
}

/// RFC 3339 for unix seconds (UTC), the form eslogger prints.
fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// osquery's `codesigning_flags` names as the kernel's CS_* bits.
fn cs_flags(names: &str) -> u32 {
    use keychain_access_tables::procs::{CS_ADHOC, CS_VALID};
    let has = |n: &str| names.split(',').any(|x| x.trim() == n);
    let mut flags = 0;
    if !has("NOT_VALID") {
        flags |= CS_VALID;
    }
    if has("ADHOC") {
        flags |= CS_ADHOC;
    }
    flags
}

/// The eslogger `process` object for what an osquery row says.
fn process(row: &BTreeMap<String, String>, with_signing: bool) -> Option<Value> {
    let pid: i64 = num(row, "pid")?;
    let mut token = Map::new();
    token.insert("pid".into(), json!(pid));
    if let Some(e) = num::<i64>(row, "euid") {
        token.insert("euid".into(), json!(e));
    }
    if let Some(u) = num::<i64>(row, "uid") {
        token.insert("ruid".into(), json!(u));
    }
    let mut p = Map::new();
    p.insert("audit_token".into(), Value::Object(token));
    p.insert(
        "executable".into(),
        json!({"path": row.get("path").cloned().unwrap_or_default()}),
    );
    if let Some(pp) = num::<i64>(row, "parent") {
        p.insert("ppid".into(), json!(pp));
    }
    if let Some(op) = num::<i64>(row, "original_parent") {
        p.insert("original_ppid".into(), json!(op));
    }
    if with_signing {
        for (k, col) in [
            ("signing_id", "signing_id"),
            ("team_id", "team_id"),
            ("cdhash", "cdhash"),
        ] {
            if let Some(v) = row.get(col).filter(|v| !v.is_empty()) {
                p.insert(k.into(), json!(v));
            }
        }
        if let Some(b) = num::<i64>(row, "platform_binary") {
            p.insert("is_platform_binary".into(), json!(b == 1));
        }
        if let Some(f) = row.get("codesigning_flags").filter(|v| !v.is_empty()) {
            p.insert("codesigning_flags".into(), json!(cs_flags(f)));
        }
    }
    Some(Value::Object(p))
}

/// osquery joins argv with one space after each argument.
fn argv(cmdline: &str) -> Vec<String> {
    let s = cmdline.strip_suffix(' ').unwrap_or(cmdline);
    if s.is_empty() {
        return Vec::new();
    }
    s.split(' ').map(str::to_string).collect()
}

/// One osquery row as the eslogger JSON line the classifier reads; `None`
/// when the row lacks a pid or names an event type that has no
/// eslogger counterpart here (its JSON then says so, and is counted).
pub fn row_to_line(table: &str, row: &BTreeMap<String, String>) -> Option<String> {
    let event_type = row.get("event_type")?.as_str();
    let time = num::<i64>(row, "time").map(rfc3339);
    let event = match (table, event_type) {
        ("es_process_events", "exec") => {
            let target = process(row, true)?;
            let mut e = Map::new();
            e.insert("target".into(), target);
            e.insert(
                "args".into(),
                json!(argv(row.get("cmdline").map(String::as_str).unwrap_or(""))),
            );
            if let Some(cwd) = row.get("cwd").filter(|c| !c.is_empty()) {
                e.insert("cwd".into(), json!({ "path": cwd }));
            }
            json!({ "exec": e })
        }
        ("es_process_events", "fork") => {
            let child_pid: i64 = num(row, "child_pid")?;
            let mut child = row.clone();
            child.insert("pid".into(), child_pid.to_string());
            child.insert("parent".into(), row.get("pid").cloned().unwrap_or_default());
            json!({ "fork": { "child": process(&child, true)? } })
        }
        ("es_process_events", "exit") => json!({ "exit": { "stat": 0 } }),
        ("es_process_file_events", "open") => {
            // osquery keeps no open flags: taken as a read (FREAD).
            json!({ "open": { "fflag": keychain_access_tables::es::FREAD,
                "file": { "path": row.get("filename")? } } })
        }
        ("es_process_file_events", "create") => {
            json!({ "create": { "destination": { "existing_file": { "path": row.get("filename")? } } } })
        }
        ("es_process_file_events", "rename") => json!({ "rename": {
            "source": { "path": row.get("filename")? },
            "destination": { "existing_file": { "path": row.get("dest_filename")? } } } }),
        // write, truncate, and anything newer: no counterpart; the line
        // still goes to the scanner, which counts it as an unknown type.
        (_, other) => json!({ other: {} }),
    };
    let with_signing = table == "es_process_events";
    let proc_obj = process(row, with_signing)?;
    let mut msg = Map::new();
    msg.insert("process".into(), proc_obj);
    msg.insert("event".into(), event);
    if let Some(t) = time {
        msg.insert("time".into(), json!(t));
    }
    if let Some(v) = num::<i64>(row, "version") {
        msg.insert("version".into(), json!(v));
    }
    if let Some(n) = es_event_type(event_type) {
        msg.insert("event_type".into(), json!(n));
    }
    serde_json::to_string(&Value::Object(msg)).ok()
}

/// Columns osquery's tables cannot fill: the classifier keys processes by
/// (pid, pidversion) and writes 0 for a missing pidversion, which is not a
/// value here. NULL says "unknown" (README, "osquery ES tables").
pub fn clear_absent_columns(rows: &mut [keychain_access_tables::KeychainAccess]) {
    for r in rows {
        r.pidversion = None;
        r.parent_pidversion = None;
        r.global_seq_num = None;
    }
}

/// What the source needs to run.
pub struct Spec {
    pub socket: PathBuf,
    pub interval: Duration,
    pub io_timeout: Duration,
}

fn set_state(board: &Arc<Mutex<Board>>, id: usize, state: &str, error: Option<String>) {
    if let Ok(mut b) = board.lock() {
        if let Some(s) = b.sources.get_mut(id) {
            s.state = state.to_string();
            if error.is_some() {
                s.last_error = error;
            }
        }
    }
}

/// Poll osquery until `stop` is set.
pub fn run(
    id: usize,
    spec: Spec,
    resume: Option<SourceOffset>,
    tx: SyncSender<Feed>,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
) {
    let mut cursors = Cursors::from_offset(resume.as_ref());
    let mut client: Option<ManagerClient> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50).min(next - Instant::now()));
            continue;
        }
        next = Instant::now() + spec.interval;
        if client.is_none() {
            match ManagerClient::connect_with_timeout(
                &spec.socket,
                Duration::ZERO,
                Some(spec.io_timeout),
            ) {
                Ok(c) => client = Some(c),
                Err(e) => {
                    set_state(
                        &board,
                        id,
                        "waiting",
                        Some(format!("connecting to osquery: {e}")),
                    );
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        match poll(c, &mut cursors, id, &board) {
            Ok(lines) => {
                set_state(&board, id, "running", None);
                let feed = Feed::Lines {
                    source: id,
                    lines: lines.into(),
                    offset: Some(cursors.to_offset()),
                };
                if tx.send(feed).is_err() {
                    return;
                }
            }
            Err(PollError::Query(msg)) => {
                set_state(&board, id, "failed", Some(msg));
            }
            Err(PollError::Transport(msg)) => {
                // The connection is desynchronised or gone: reconnect next time.
                client = None;
                set_state(&board, id, "waiting", Some(msg));
            }
        }
    }
    set_state(&board, id, "stopped", None);
}

enum PollError {
    /// osquery answered with an error (no such table: ES disabled, ...).
    Query(String),
    Transport(String),
}

/// One round over every table: the new rows as lines, merged by time.
fn poll(
    c: &mut ManagerClient,
    cursors: &mut Cursors,
    id: usize,
    board: &Arc<Mutex<Board>>,
) -> Result<Vec<Vec<u8>>, PollError> {
    let mut merged: Vec<(i64, usize, u64, Vec<u8>)> = Vec::new();
    let mut updated = cursors.clone();
    let (mut lost, mut resets, mut malformed) = (0u64, 0u64, 0u64);
    for (order, table) in TABLES.iter().enumerate() {
        let cursor = cursors.0.get(*table).copied().unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM {table} WHERE time >= {}",
            columns(table),
            cursor.time
        );
        let resp = c
            .query(&sql)
            .map_err(|e| PollError::Transport(format!("osquery query failed: {e:?}")))?;
        let status = resp.status.unwrap_or_default();
        if status.code.unwrap_or(0) != 0 {
            let msg = status.message.unwrap_or_default();
            return Err(PollError::Query(format!(
                "osquery could not read {table}: {msg} (is Endpoint Security enabled in osqueryd? see the README, \"osquery ES tables\")"
            )));
        }
        let fresh = fresh_rows(cursor, resp.response.unwrap_or_default());
        lost += fresh.lost;
        malformed += fresh.malformed;
        resets += u64::from(fresh.reset);
        for r in &fresh.rows {
            let t = num::<i64>(r, "time").unwrap_or(0);
            let e = num::<u64>(r, "eid").unwrap_or(0);
            match row_to_line(table, r) {
                Some(l) => merged.push((t, order, e, l.into_bytes())),
                None => malformed += 1,
            }
        }
        updated.0.insert((*table).to_string(), fresh.cursor);
    }
    *cursors = updated;
    merged.sort_by_key(|(t, order, e, _)| (*t, *order, *e));
    if lost + resets + malformed > 0 {
        if let Ok(mut b) = board.lock() {
            if let Some(s) = b.sources.get_mut(id) {
                s.stats.es_drops += lost;
                s.stats.malformed += malformed;
            }
            if lost > 0 {
                b.bound_hit(
                    "osquery_events_expired",
                    "osquery dropped ES events before they were read (events_expiry / events_max); poll more often or raise them",
                );
            }
            if resets > 0 {
                b.bound_hit(
                    "osquery_events_reset",
                    "osquery's event ids restarted (its event store was reset)",
                );
            }
        }
    }
    Ok(merged.into_iter().map(|(_, _, _, l)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(eid: u64, time: i64) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("eid".to_string(), format!("{eid:010}")),
            ("time".to_string(), time.to_string()),
        ])
    }

    #[test]
    fn cursor_keeps_only_new_rows_and_counts_gaps() {
        let c = Cursor { time: 100, eid: 10 };
        // Rows at the cursor's second that were read already, then new ones
        // with a gap of 2 (11, 12 expired), out of order.
        let f = fresh_rows(
            c,
            vec![row(15, 102), row(9, 100), row(10, 100), row(13, 101)],
        );
        let eids: Vec<_> = f.rows.iter().map(|r| r["eid"].clone()).collect();
        assert_eq!(eids, ["0000000013", "0000000015"]);
        assert_eq!(f.lost, 3); // 11, 12 and 14
        assert_eq!(f.cursor, Cursor { time: 102, eid: 15 });
        assert!(!f.reset);
        // Nothing new: the cursor stays.
        let again = fresh_rows(f.cursor, vec![row(15, 102)]);
        assert!(again.rows.is_empty());
        assert_eq!(again.cursor, f.cursor);
        assert_eq!(again.lost, 0);
    }

    #[test]
    fn first_poll_counts_no_loss_and_reset_restarts() {
        let f = fresh_rows(Cursor::default(), vec![row(500, 7), row(501, 8)]);
        assert_eq!((f.rows.len(), f.lost), (2, 0));
        // osquery's store was wiped: eids start at 1 again, in later seconds.
        let r = fresh_rows(f.cursor, vec![row(1, 9), row(2, 9)]);
        assert!(r.reset);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.cursor, Cursor { time: 9, eid: 2 });
        // Malformed rows are counted, not fatal.
        let m = fresh_rows(r.cursor, vec![BTreeMap::new(), row(3, 10)]);
        assert_eq!((m.malformed, m.rows.len()), (1, 1));
    }

    #[test]
    fn cursors_round_trip_through_the_offset() {
        let mut c = Cursors::default();
        c.0.insert("es_process_events".into(), Cursor { time: 5, eid: 6 });
        c.0.insert("es_process_file_events".into(), Cursor { time: 7, eid: 8 });
        let o = c.to_offset();
        assert_eq!(o.source, SOURCE_NAME);
        assert_eq!(Cursors::from_offset(Some(&o)), c);
        assert_eq!(Cursors::from_offset(None), Cursors::default());
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_754_579_589), "2025-08-07T15:13:09Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        for t in [0, 951_782_400, 1_754_579_589, 4_102_444_800] {
            assert_eq!(
                keychain_access_tables::text::parse_rfc3339(&rfc3339(t)),
                Some(t)
            );
        }
    }

    #[test]
    fn rows_become_lines_the_parser_reads() {
        use keychain_access_tables::es::{parse_line, EsEvent};
        let exec = BTreeMap::from(
            [
                ("event_type", "exec"),
                ("time", "1754579589"),
                ("eid", "0000000001"),
                ("pid", "4242"),
                ("parent", "100"),
                ("path", "/usr/bin/security"),
                ("cmdline", "security find-generic-password -w -s a b "),
                ("cmdline_count", "6"),
                ("cwd", "/tmp"),
                ("uid", "501"),
                ("euid", "501"),
                ("signing_id", "com.apple.security"),
                ("team_id", ""),
                ("cdhash", "abc"),
                ("platform_binary", "1"),
                ("codesigning_flags", ""),
                ("version", "7"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let line = row_to_line("es_process_events", &exec).unwrap();
        let (msg, ev) = parse_line(&line).unwrap();
        assert_eq!(msg.time.as_deref(), Some("2025-08-07T15:13:09Z"));
        assert_eq!(msg.global_seq_num, None);
        let EsEvent::Exec(e) = ev else {
            panic!("not exec")
        };
        assert_eq!(
            e.args,
            ["security", "find-generic-password", "-w", "-s", "a", "b"]
        );
        assert_eq!(e.target.executable.path, "/usr/bin/security");
        assert_eq!(e.target.ppid, Some(100));
        assert_eq!(e.target.is_platform_binary, Some(true));
        assert_eq!(e.target.team_id, None);

        let open = BTreeMap::from(
            [
                ("event_type", "open"),
                ("time", "1754579590"),
                ("pid", "4242"),
                ("parent", "100"),
                ("path", "/tmp/x"),
                ("filename", "/Users/a/Library/Keychains/login.keychain-db"),
                ("dest_filename", ""),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let line = row_to_line("es_process_file_events", &open).unwrap();
        let (msg, ev) = parse_line(&line).unwrap();
        assert!(msg.process.signing_id.is_none() && msg.process.cdhash.is_none());
        let EsEvent::Open(o) = ev else {
            panic!("not open")
        };
        assert_eq!(o.file.path, "/Users/a/Library/Keychains/login.keychain-db");
        let mut write = open.clone();
        write.insert("event_type".into(), "write".into());
        let line = row_to_line("es_process_file_events", &write).unwrap();
        assert!(matches!(
            parse_line(&line),
            Err(keychain_access_tables::es::EsError::UnknownType(t)) if t == "write"
        ));
        let mut no_pid = open;
        no_pid.remove("pid");
        assert!(row_to_line("es_process_file_events", &no_pid).is_none());
    }
}
