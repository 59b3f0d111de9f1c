//! The osquery ES source end to end: the real binary polls the fake
//! osqueryd's `ExtensionManager.query`, which answers from a SQLite file
//! holding `es_process_events` and `es_process_file_events` rows in
//! osquery's columns (osquery's specs/darwin/es_process_events.table and
//! es_process_file_events.table; eids zero-padded to 10 digits as
//! osquery's `EventSubscriberPlugin::toIndex` prints them).
//!
//! The accesses are public keychain-theft procedures:
//! * `security find-generic-password -w -s "Chrome Safe Storage"`: reading
//!   Chrome's cookie key from the login keychain (MITRE ATT&CK T1555.001
//!   procedure examples; Atomic Red Team T1555.001).
//! * A script opening `login.keychain-db` directly, as chainbreaker
//!   (github.com/n0fate/chainbreaker) does to parse the file offline.
//! * Moving the keychain file out of its folder (staging for exfiltration).
//!
//! Alongside them: securityd's own opens (the subsystem, never a row), a
//! `write` (no eslogger counterpart: counted as an unknown type), then
//! events osquery expired before a poll (an eid gap: counted as lost), and
//! a restart that must not read anything twice.

#[path = "support/common.rs"]
mod common;
use common::{ext_bin, fake_em, python, Manager, Proc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

fn tempdir(name: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/kca-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

const PROCESS_COLUMNS: &[&str] = &[
    "version",
    "seq_num",
    "global_seq_num",
    "pid",
    "path",
    "parent",
    "original_parent",
    "cmdline",
    "cmdline_count",
    "env",
    "env_count",
    "cwd",
    "uid",
    "euid",
    "gid",
    "egid",
    "username",
    "signing_id",
    "team_id",
    "cdhash",
    "platform_binary",
    "exit_code",
    "child_pid",
    "time",
    "event_type",
    "eid",
    "codesigning_flags",
];
const FILE_COLUMNS: &[&str] = &[
    "version",
    "seq_num",
    "global_seq_num",
    "pid",
    "parent",
    "path",
    "filename",
    "dest_filename",
    "event_type",
    "time",
    "eid",
];

fn create_tables(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    for (t, cols) in [
        ("es_process_events", PROCESS_COLUMNS),
        ("es_process_file_events", FILE_COLUMNS),
    ] {
        c.execute_batch(&format!("CREATE TABLE {t} ({});", cols.join(", ")))
            .unwrap();
    }
}

fn insert(db: &Path, table: &str, row: &[(&str, &str)]) {
    let c = rusqlite::Connection::open(db).unwrap();
    let cols: Vec<&str> = row.iter().map(|(k, _)| *k).collect();
    let marks = vec!["?"; cols.len()].join(", ");
    c.execute(
        &format!("INSERT INTO {table} ({}) VALUES ({marks})", cols.join(", ")),
        rusqlite::params_from_iter(row.iter().map(|(_, v)| *v)),
    )
    .unwrap();
}

fn exec_row<'a>(
    eid: &'a str,
    time: &'a str,
    pid: &'a str,
    path: &'a str,
    cmdline: &'a str,
    signing: (&'a str, &'a str, &'a str),
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("version", "7"),
        ("seq_num", "1"),
        ("global_seq_num", "1"),
        ("event_type", "exec"),
        ("eid", eid),
        ("time", time),
        ("pid", pid),
        ("parent", "700"),
        ("original_parent", "700"),
        ("path", path),
        ("cmdline", cmdline),
        ("cwd", "/Users/alice"),
        ("uid", "501"),
        ("euid", "501"),
        ("username", "alice"),
        ("signing_id", signing.0),
        ("team_id", ""),
        ("cdhash", signing.1),
        ("platform_binary", signing.2),
        ("codesigning_flags", ""),
    ]
}

fn file_row<'a>(
    eid: &'a str,
    time: &'a str,
    event: &'a str,
    pid: &'a str,
    path: &'a str,
    filename: &'a str,
    dest: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("version", "7"),
        ("event_type", event),
        ("eid", eid),
        ("time", time),
        ("pid", pid),
        ("parent", "700"),
        ("path", path),
        ("filename", filename),
        ("dest_filename", dest),
    ]
}

/// The SQL the extension sent through the manager's `query` call.
fn queries(m: &Manager) -> Vec<String> {
    m.events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "query")
        .map(|e| e["sql"].as_str().unwrap_or("").to_string())
        .collect()
}

fn start_extension(dir: &Path, socket: &Path) -> Proc {
    start_extension_with(dir, socket, json!({"enabled": false}), &[])
}

fn start_extension_with(
    dir: &Path,
    socket: &Path,
    eslogger: Value,
    env: &[(&str, PathBuf)],
) -> Proc {
    let cfg = json!({
        "database": dir.join("db/buffer.db"),
        "sources": {"eslogger": eslogger, "log_stream": {"enabled": false}, "files": [],
                    "osquery_es": {"enabled": true, "interval_seconds": 1}}
    });
    let path = dir.join("cfg.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let child = Command::new(ext_bin())
        .arg("--socket")
        .arg(socket)
        .args(["--timeout", "10", "--interval", "1", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("ext.log")).unwrap())
        .spawn()
        .expect("start extension");
    Proc(child)
}

fn call(listen: &str, table: &str) -> Vec<BTreeMap<String, String>> {
    let out = Command::new(python())
        .arg(fake_em())
        .args(["generate", "--table", table, "--socket", listen])
        .output()
        .expect("fake_em generate");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "generate {table}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["status"]["code"], 0, "{v}");
    serde_json::from_value(v["response"].clone()).unwrap()
}

fn status(listen: &str) -> BTreeMap<String, String> {
    call(listen, "keychain_access_status")
        .into_iter()
        .find(|r| r["source"] == "osquery_es")
        .expect("an osquery_es status row")
}

fn wait_status(
    listen: &str,
    what: &str,
    ok: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(listen);
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn n(s: &BTreeMap<String, String>, k: &str) -> u64 {
    s[k].parse().unwrap_or(0)
}

#[test]
fn polls_osquery_es_tables_classifies_counts_loss_and_resumes() {
    let dir = tempdir("oses");
    let es = dir.join("es.db");
    create_tables(&es);
    let keychain = "/Users/alice/Library/Keychains/login.keychain-db";
    let apple = (
        "com.apple.security",
        "5a1c0ffee0000000000000000000000000000001",
        "1",
    );
    let ls = (
        "com.apple.ls",
        "5a1c0ffee0000000000000000000000000000003",
        "1",
    );
    let python3 = (
        "com.apple.python3",
        "5a1c0ffee0000000000000000000000000000002",
        "1",
    );
    for (eid, row) in [
        (
            1,
            exec_row(
                "0000000001",
                "1754579589",
                "4242",
                "/usr/bin/security",
                "security find-generic-password -w -s Chrome Safe Storage ",
                apple,
            ),
        ),
        (
            2,
            exec_row(
                "0000000002",
                "1754579590",
                "5000",
                "/usr/bin/python3",
                "python3 chainbreaker.py --dump-all login.keychain-db ",
                python3,
            ),
        ),
    ] {
        let _ = eid;
        insert(&es, "es_process_events", &row);
    }
    for row in [
        file_row(
            "0000000001",
            "1754579590",
            "open",
            "5000",
            "/usr/bin/python3",
            keychain,
            "",
        ),
        // securityd serving the keychain: the subsystem, never a row.
        file_row(
            "0000000002",
            "1754579590",
            "open",
            "120",
            "/usr/sbin/securityd",
            keychain,
            "",
        ),
        file_row(
            "0000000003",
            "1754579591",
            "write",
            "120",
            "/usr/sbin/securityd",
            keychain,
            "",
        ),
        file_row(
            "0000000004",
            "1754579592",
            "rename",
            "5000",
            "/usr/bin/python3",
            keychain,
            "/tmp/stage/k.db",
        ),
    ] {
        insert(&es, "es_process_file_events", &row);
    }

    let m = Manager::start(&dir, &["--query-db", es.to_str().unwrap()]);
    let ext = start_extension(&dir, &m.socket);
    let listen = m.wait_event("registered", Duration::from_secs(15))["listen_path"]
        .as_str()
        .unwrap()
        .to_string();
    let s = wait_status(&listen, "all 6 rows read", |s| n(s, "lines_read") >= 6);
    assert_eq!(s["state"], "running", "{s:?}");
    assert_eq!(s["kind"], "osquery");
    assert_eq!(n(&s, "unknown_types"), 1, "the write: {s:?}");
    assert_eq!(n(&s, "es_drops"), 0);
    // Each poll asks for the rows since the cursor, with a time bound.
    let q = queries(&m);
    assert!(
        q.iter()
            .any(|s| s.contains("FROM es_process_events WHERE time >= 0")),
        "{q:?}"
    );

    let rows = call(&listen, "keychain_access_events");
    let by = |pid: &str, event: &str| -> BTreeMap<String, String> {
        rows.iter()
            .find(|r| r["pid"] == pid && r["event_type"] == event)
            .unwrap_or_else(|| panic!("no {event} row of pid {pid}: {rows:?}"))
            .clone()
    };
    // security, the script's exec (a known tool on its command line), its
    // read and its move.
    assert_eq!(rows.len(), 4, "{rows:?}");
    let tool = by("5000", "exec");
    assert!(tool["reason"].contains("chainbreaker"), "{tool:?}");
    let sec = by("4242", "exec");
    assert_eq!(sec["source"], "esf");
    assert_eq!(sec["verb"], "find-generic-password");
    assert_eq!(sec["password_query"], "1");
    assert_eq!(sec["reveals_secret"], "1");
    assert_eq!(sec["signer"], "apple");
    assert_eq!(sec["time"], "1754579589");
    // Degraded columns: what osquery does not carry.
    assert_eq!(sec["pidversion"], "");
    assert_eq!(sec["global_seq_num"], "");
    let read = by("5000", "open");
    assert_eq!(read["target_path"], keychain);
    assert_eq!(read["path"], "/usr/bin/python3");
    // The script's command line and signer come from its exec row.
    assert!(read["cmdline"].contains("chainbreaker"), "{read:?}");
    assert_eq!(read["signer"], "apple");
    let moved = by("5000", "rename");
    assert_eq!(moved["action"], "keychain_move");
    assert_eq!(moved["destination_path"], "/tmp/stage/k.db");
    assert!(
        rows.iter().all(|r| r["pid"] != "120"),
        "securityd: {rows:?}"
    );

    // osquery expires events 3..5 of the process table before the next
    // poll (events_expiry / events_max): eids 6 and 7 arrive after a gap.
    for (eid, t) in [("0000000006", "1754579600"), ("0000000007", "1754579601")] {
        insert(
            &es,
            "es_process_events",
            &exec_row(eid, t, "6000", "/bin/ls", "ls -l ", ls),
        );
    }
    let s = wait_status(&listen, "the gap counted", |s| n(s, "es_drops") >= 3);
    assert_eq!(n(&s, "es_drops"), 3, "{s:?}");
    assert!(s["bound_hits"].contains("osquery_events_expired"), "{s:?}");
    let read_before = n(&s, "lines_read");
    assert_eq!(read_before, 8);

    // Restart: the cursor was committed with the rows, nothing is read twice.
    drop(ext);
    drop(m);
    let m = Manager::start(&dir, &["--query-db", es.to_str().unwrap()]);
    let _ext = start_extension(&dir, &m.socket);
    let listen = m.wait_event("registered", Duration::from_secs(15))["listen_path"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&listen, "a poll after the restart", |s| {
        s["state"] == "running"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let s = status(&listen);
    assert_eq!(n(&s, "lines_read"), 0, "re-read after restart: {s:?}");
    let q = queries(&m);
    assert!(
        q.iter()
            .any(|s| s.contains("FROM es_process_events WHERE time >= 1754579601")),
        "{q:?}"
    );
    assert_eq!(call(&listen, "keychain_access_events").len(), 4);
}

#[test]
fn an_osquery_without_es_tables_is_a_failed_source_with_the_reason() {
    let dir = tempdir("oses-none");
    // A manager that cannot run the SQL (as osqueryd without Endpoint
    // Security answers `no such table`).
    let m = Manager::start(&dir, &[]);
    let _ext = start_extension(&dir, &m.socket);
    let listen = m.wait_event("registered", Duration::from_secs(15))["listen_path"]
        .as_str()
        .unwrap()
        .to_string();
    let s = wait_status(&listen, "the failure shown", |s| s["state"] == "failed");
    assert!(s["last_error"].contains("es_process_events"), "{s:?}");
    assert!(s["last_error"].contains("cannot run SQL"), "{s:?}");
}

#[test]
fn both_es_sources_store_one_row_per_access() {
    // eslogger replays Atomic Red Team T1555.001 test 1 (`sudo security
    // dump-keychain -d login.keychain`, fixture art_t1555_001_1_dump_keychain);
    // osquery's es_process_events holds the same exec as osquery stores it:
    // same pid and argv, stamped a second later, no pidversion.
    let dir = tempdir("oses-both");
    let es = dir.join("es.db");
    create_tables(&es);
    let state = dir.join("fake-es");
    std::fs::create_dir_all(&state).unwrap();
    let repo = common::repo();
    let m = Manager::start(&dir, &["--query-db", es.to_str().unwrap()]);
    let _ext = start_extension_with(
        &dir,
        &m.socket,
        json!({"enabled": true, "command": [repo.join("tests/support/fake_eslogger.sh")],
               "restart_backoff_initial_ms": 60000, "restart_backoff_max_ms": 60000}),
        &[
            ("FAKE_ES_MODE", PathBuf::from("hang")),
            (
                "FAKE_ES_FIXTURE",
                repo.join("tests/fixtures/art_t1555_001_1_dump_keychain.ndjson"),
            ),
            ("FAKE_ES_STATE", state),
        ],
    );
    let listen = m.wait_event("registered", Duration::from_secs(15))["listen_path"]
        .as_str()
        .unwrap()
        .to_string();
    // eslogger's rows first (then osquery stores its copy, as it would a
    // moment later), so which row is kept is known.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !call(&listen, "keychain_access_status")
        .iter()
        .any(|r| r["source"] == "eslogger" && n(r, "rows_stored") > 0)
    {
        assert!(Instant::now() < deadline, "eslogger stored nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    insert(
        &es,
        "es_process_events",
        &exec_row(
            "0000000001",
            "1754571602",
            "32520",
            "/usr/bin/security",
            "security dump-keychain -d login.keychain ",
            (
                "com.apple.security",
                "C54EB25033EB32C6EBAE748AFF737835B54F8B48",
                "1",
            ),
        ),
    );
    let s = wait_status(&listen, "osquery's row read", |s| n(s, "lines_read") >= 1);
    assert_eq!(n(&s, "rows_stored"), 0, "osquery's copy was kept: {s:?}");
    assert_eq!(n(&s, "alerts"), 0, "a dropped copy is no alert: {s:?}");
    let dumps: Vec<_> = call(&listen, "keychain_access_events")
        .into_iter()
        .filter(|r| r["action"] == "dump_keychain" && r["event_type"] == "exec")
        .collect();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    // The row kept is eslogger's, with what only eslogger carries.
    assert_ne!(dumps[0]["pidversion"], "", "{:?}", dumps[0]);
    assert_eq!(dumps[0]["parent_path"], "/usr/bin/sudo");
}
