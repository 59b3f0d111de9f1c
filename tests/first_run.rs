//! The first hour with the CLI, through the real binary: input in the
//! shapes people save it in, output into `head`, repeated inputs, options
//! that cannot work, and `pack check` on the shipped folder.
//!
//! Every wrong-shape input is derived here from a committed fixture, so the
//! rows it must give are the rows of the JSON-lines original.

#[path = "support/common.rs"]
mod common;
use common::{bin, repo};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private temp dir for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let d =
            std::env::temp_dir().join(format!("kca-first-run-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str], inputs: &[&Path]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for i in inputs {
        cmd.arg("--input").arg(i);
    }
    cmd.output().expect("run keychain-access")
}

fn rows(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad jsonl {l}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fixtures with ES lines, unified-log lines with a banner, and both.
const FIXTURES: &[&str] = &[
    "tests/fixtures/art_t1555_001_1_dump_keychain.ndjson",
    "tests/fixtures/amos_osascript_security_chrome.ndjson",
    "tests/fixtures/unified_log/securityd_db_open.ndjson",
    "tests/fixtures/unified_log/synthetic_correlation_security_exec.ndjson",
];

/// The JSON records of a JSON-lines capture (a banner is not a record).
fn records(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// `jq .` output: each record pretty-printed, `"key": value`, slashes
/// unescaped.
fn jq_pretty(recs: &[Value]) -> String {
    recs.iter()
        .map(|r| serde_json::to_string_pretty(r).unwrap() + "\n")
        .collect()
}

/// `log show --style json` as macOS writes it: `[{` first, records joined
/// by `},{`, `}]` last with no newline after it (the framing libyal/dtformats
/// `scripts/unified_logging.py` reproduces for its `--format json`), each
/// record two-space indented with Foundation's `"key" : value` and slashes
/// escaped as `\/` (as in the real record quoted in
/// RyanWatson425/logging-dashboard).
fn log_show_json(recs: &[Value]) -> String {
    let body: Vec<String> = recs
        .iter()
        .map(|r| {
            serde_json::to_string_pretty(r)
                .unwrap()
                .lines()
                .map(|l| {
                    let t = l.trim_start();
                    if t.starts_with('"') {
                        l.replacen("\": ", "\" : ", 1)
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                // Slashes occur only inside JSON strings.
                .replace('/', "\\/")
        })
        .collect();
    format!("[{}]", body.join(","))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn captures_in_other_shapes_give_the_same_rows() {
    let d = TempDir::new("shapes");
    for fixture in FIXTURES {
        let original = repo().join(fixture);
        let text = std::fs::read_to_string(&original).unwrap();
        let want = run(&["scan"], &[&original]);
        assert!(want.status.success(), "{fixture}: {}", stderr(&want));
        let want_rows = rows(&want);
        assert!(!want_rows.is_empty(), "{fixture} gives rows");
        let recs = records(&text);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        let array = log_show_json(&recs);
        let shapes: Vec<(&str, Vec<u8>)> = vec![
            ("gzip", gzip(text.as_bytes())),
            ("bom", bom),
            ("jq-pretty", jq_pretty(&recs).into_bytes()),
            ("jq-slurp-array", serde_json::to_vec_pretty(&recs).unwrap()),
            ("log-show-json", array.clone().into_bytes()),
            ("log-show-json-one-line", serde_json::to_vec(&recs).unwrap()),
            ("gzip-of-array", gzip(array.as_bytes())),
        ];
        for (shape, bytes) in shapes {
            let p = d.write(&format!("{shape}.json"), &bytes);
            let got = run(&["scan"], &[&p]);
            assert!(
                got.status.success(),
                "{fixture} as {shape}: {}",
                stderr(&got)
            );
            assert_eq!(rows(&got), want_rows, "{fixture} as {shape}");
        }
    }
}

#[test]
fn unreadable_files_are_described_and_fail() {
    let d = TempDir::new("unreadable");
    let fixture = std::fs::read_to_string(repo().join(FIXTURES[0])).unwrap();
    let utf16_bom: Vec<u8> = [0xFFu8, 0xFE]
        .into_iter()
        .chain(fixture.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let utf16_be: Vec<u8> = fixture
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    // A deterministic non-text blob (xorshift), as a binary would be.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let blob: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    // The secret must not be echoed back in any diagnostic.
    let secret = "hunter2-Zq9";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("utf16.json", utf16_bom, "UTF-16"),
        ("utf16be.json", utf16_be, "UTF-16"),
        ("blob.bin", blob, "binary"),
        (
            "export.csv",
            format!("time,pid,cmdline\n1,2,security find-generic-password -w {secret}\n")
                .into_bytes(),
            "comma-separated",
        ),
        (
            "notes.txt",
            format!("my keychain password is {secret}\nanother line\n").into_bytes(),
            "plain text",
        ),
        (
            "log-default-style.txt",
            format!(
                "2026-10-04 17:50:33.803491+0200 0x1  Default  0x0  118  securityd: {secret}\n"
            )
            .into_bytes(),
            "timestamp",
        ),
        (
            // An osquery results log is JSON lines of another kind.
            "osqueryd.results.log",
            format!("{{\"name\":\"pack_x_q\",\"hostIdentifier\":\"mac\",\"columns\":{{\"cmdline\":\"{secret}\"}},\"action\":\"added\"}}\n")
                .into_bytes(),
            "but no record is an eslogger event",
        ),
        (
            "gzip-of-text.gz",
            gzip(format!("just text {secret}\n").as_bytes()),
            "gzip-compressed; inside, plain text",
        ),
    ];
    for (name, bytes, looks_like) in cases {
        let p = d.write(name, &bytes);
        for cmd in [
            &["scan"][..],
            &["query", "SELECT count(*) FROM keychain_access_events"],
        ] {
            let out = run(cmd, &[&p]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{name} {cmd:?}: {err}");
            assert!(out.stdout.is_empty(), "{name}: no rows, no table");
            assert!(
                err.contains(looks_like),
                "{name}: says what it looks like: {err}"
            );
            assert!(
                err.contains("expected eslogger JSON lines"),
                "{name}: {err}"
            );
            assert!(!err.contains(secret), "{name}: content quoted: {err}");
        }
    }
    // Bad lines among good ones stay a counted skip (exit 0).
    let mixed = repo().join("tests/fixtures/unified_log/malformed.ndjson");
    let out = run(&["scan"], &[&mixed]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!rows(&out).is_empty());
    assert!(!stderr(&out).contains(" 0 malformed"), "{}", stderr(&out));
    // An empty file is said to be empty; nothing failed to read.
    let empty = d.write("empty.json", b"");
    let out = run(&["scan"], &[&empty]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
}

/// A capture with `copies` distinct copies of a fixture's events.
fn many_events(copies: u64) -> String {
    let text = std::fs::read_to_string(repo().join(FIXTURES[0])).unwrap();
    let recs = records(&text);
    let mut s = String::new();
    for k in 0..copies {
        for r in &recs {
            let mut r = r.clone();
            if let Some(n) = r["global_seq_num"].as_u64() {
                r["global_seq_num"] = (n + k * 1000).into();
            }
            s.push_str(&serde_json::to_string(&r).unwrap());
            s.push('\n');
        }
    }
    s
}

/// Run with stdout into a pipe whose reader leaves after the first bytes.
fn into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here: later writes fail with EPIPE.
    child.wait_with_output().unwrap()
}

#[test]
fn output_into_head_exits_quietly() {
    let d = TempDir::new("pipe");
    let big = d.write("big.json", many_events(400).as_bytes());
    let big = big.to_str().unwrap();
    let count = run(&["scan"], &[Path::new(big)]);
    assert!(
        count.stdout.len() > 256 * 1024,
        "output exceeds any pipe buffer"
    );
    for args in [
        vec!["scan", "--input", big],
        vec!["scan", "--input", big, "--format", "csv"],
        vec!["scan", "--input", big, "--format", "table"],
        vec![
            "query",
            "--input",
            big,
            "--format",
            "jsonl",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 300000) SELECT x FROM c",
        ],
    ] {
        let out = into_closed_pipe(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.to_lowercase().contains("broken pipe"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_same_input_twice_gives_each_row_once() {
    let d = TempDir::new("dup");
    let original = repo().join(FIXTURES[1]);
    let once = run(&["scan"], &[&original]);
    let want = rows(&once);
    // The same path twice, and the same file by another path.
    let twice = run(&["scan"], &[&original, &original]);
    assert!(twice.status.success());
    assert_eq!(rows(&twice), want);
    assert!(
        stderr(&twice).contains("names the same file"),
        "{}",
        stderr(&twice)
    );
    let other_path = repo().join("tests/../").join(FIXTURES[1]);
    let twice = run(&["scan"], &[&original, &other_path]);
    assert_eq!(rows(&twice), want);
    // A copy (here gzip'd) of the same events: the same eids, written once.
    let text = std::fs::read(&original).unwrap();
    let copy = d.write("copy.json.gz", &gzip(&text));
    let both = run(&["scan"], &[&original, &copy]);
    assert!(both.status.success());
    assert_eq!(rows(&both), want);
    let err = stderr(&both);
    assert!(
        err.contains(&format!("{} row(s) read more than once", want.len())),
        "{err}"
    );
    // Every eid of the output is unique.
    let q = run(
        &[
            "query",
            "--format",
            "jsonl",
            "SELECT eid, count(*) AS n FROM keychain_access_events GROUP BY eid HAVING n > 1",
        ],
        &[&original, &copy],
    );
    assert!(q.status.success(), "{}", stderr(&q));
    assert!(rows(&q).is_empty());
}

#[test]
fn options_that_cannot_work_are_refused_with_the_reason() {
    let fixture = repo().join(FIXTURES[0]);
    for bad in ["0", "100"] {
        let out = run(&["scan", "--max-line", bad], &[&fixture]);
        assert_eq!(out.status.code(), Some(2), "--max-line {bad}");
        assert!(
            stderr(&out).contains("would skip every record"),
            "{}",
            stderr(&out)
        );
    }
    // 1024 is accepted, but these eslogger lines are all longer: said so,
    // not "0 rows".
    let out = run(&["scan", "--max-line", "1024"], &[&fixture]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("longer than --max-line"),
        "{}",
        stderr(&out)
    );
    // Extension options without --socket: the missing option, not the help.
    let out = run(&[], &[&fixture]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("needs --socket"), "{err}");
    assert!(!err.contains("Usage:") && out.stdout.is_empty(), "{err}");
}

#[test]
fn pack_check_on_a_folder_checks_pack_shaped_files_and_lists_the_rest() {
    // The shipped folder: Sentinel, Sigma and schema files are not packs.
    let out = Command::new(bin())
        .args(["pack", "check"])
        .arg(repo().join("packs"))
        .output()
        .unwrap();
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("skipped as not pack-shaped"), "{stdout}");
    for not_a_pack in [
        "packs/sentinel/table-keychainaccess.json",
        "packs/sentinel/analytics-rule-keychain-credential-access.yaml",
        "packs/schema/keychain_access_events.json",
    ] {
        let name = Path::new(not_a_pack).file_name().unwrap().to_str().unwrap();
        assert!(
            err.lines()
                .any(|l| l.starts_with("skipped ") && l.contains(name)),
            "{not_a_pack} listed as skipped: {err}"
        );
    }
    // A broken pack beside non-pack files is still found and reported,
    // and the non-pack files are not.
    let d = TempDir::new("packdir");
    d.write(
        "sigma-rule.yml",
        b"title: x\nlogsource:\n  product: macos\ndetection:\n  sel:\n    a: b\n  condition: sel\n",
    );
    d.write(
        "arm.json",
        br#"{"$schema": "https://schema.management.azure.com/", "resources": []}"#,
    );
    d.write(
        "broken.conf",
        br#"{"queries": {"q": {"query": "SELECT no_such_column FROM keychain_access_events;", "interval": 60}}}"#,
    );
    let out = Command::new(bin())
        .args(["pack", "check"])
        .arg(&d.0)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("broken.conf:q: SQL error"), "{err}");
    assert!(err.contains("1 problem(s) in 1 file(s)"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("skipped ") && l.contains("sigma-rule.yml")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("skipped ") && l.contains("arm.json")),
        "{err}"
    );
    // A folder with nothing pack-shaped is an error, not "ok: 0 file(s)".
    std::fs::remove_file(d.0.join("broken.conf")).unwrap();
    let out = Command::new(bin())
        .args(["pack", "check"])
        .arg(&d.0)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no pack, config or Fleet file"),
        "{}",
        stderr(&out)
    );
}

/// Run `forward` for a while, then stop it as a service manager would.
fn forward_for(d: &TempDir, results: &Path, extra: &[&str], wait: std::time::Duration) -> Output {
    let secret = d.write("secret", b"not-a-real-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let _ = std::fs::remove_file(d.0.join("q.db"));
    // An endpoint nothing listens on: delivery fails, tailing goes on.
    let cfg = serde_json::json!({"sentinel": {
        "endpoint": "https://127.0.0.1:9", "dcr_immutable_id": "dcr-0",
        "stream": "Custom-OsqueryResultLine", "tenant_id": "t", "client_id": "c",
        "client_secret_file": secret, "queue_path": d.0.join("q.db"),
        "stats_interval_ms": 200, "tail_poll_ms": 20}});
    let cfg = d.write("forward.json", cfg.to_string().as_bytes());
    let child = Command::new(bin())
        .args(["forward", "--results"])
        .arg(results)
        .arg("--config")
        .arg(&cfg)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(wait);
    // SAFETY: signalling our own child by its pid.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).expect("child pid"),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    child.wait_with_output().unwrap()
}

#[test]
fn forward_says_what_it_waits_for_and_shows_it_is_alive() {
    let d = TempDir::new("forward");
    let wait = std::time::Duration::from_millis(1500);
    // A wrong --results path: warned at the default level, repeatedly.
    let missing = d.0.join("no-such-results.log");
    let out = forward_for(&d, &missing, &[], wait);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let warns = err
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no-such-results.log does not exist"))
        .count();
    assert!(warns >= 2, "{err}");
    let stats_lines = err
        .lines()
        .filter(|l| l.contains("INFO") && l.contains("sentinel forward: state="))
        .count();
    assert!(stats_lines >= 2, "periodic stats lines by default: {err}");
    assert!(!err.contains("DEBUG"), "{err}");
    // --verbose: every step, here each batch of lines queued.
    let results = d.write(
        "results.log",
        b"{\"name\":\"pack_x_q\",\"action\":\"added\"}\n",
    );
    let quiet = forward_for(&d, &results, &[], wait);
    assert!(!stderr(&quiet).contains("DEBUG"), "{}", stderr(&quiet));
    assert!(stderr(&quiet).contains("accepted=1"), "{}", stderr(&quiet));
    let verbose = forward_for(&d, &results, &["--verbose"], wait);
    let err = stderr(&verbose);
    assert!(verbose.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("DEBUG") && l.contains("queued 1 line(s)")),
        "{err}"
    );
}

/// Run with `COLUMNS` set (or unset), as a terminal of that width would.
fn run_width(args: &[&str], columns: Option<usize>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("COLUMNS");
    if let Some(c) = columns {
        cmd.env("COLUMNS", c.to_string());
    }
    cmd.output().unwrap()
}

/// The text of column `i` of a boxed table's data rows, cell lines joined.
fn column_text(table: &str, i: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let mut rules = 0;
    let mut current = String::new();
    for line in table.lines() {
        if line.starts_with('+') {
            rules += 1;
            if rules > 2 && !current.is_empty() {
                rows.push(std::mem::take(&mut current));
            }
            continue;
        }
        if rules >= 2 {
            let cell = line.split('|').nth(i + 1).unwrap_or("");
            current.push_str(cell.strip_prefix(' ').unwrap_or(cell).trim_end_matches(' '));
        }
    }
    rows
}

/// `YYYY-MM-DD HH:MM:SSZ` for Unix seconds (days-to-civil, H. Hinnant).
fn utc_date(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[test]
fn tables_fit_the_terminal_and_keep_what_matters() {
    let ditto = repo().join("tests/fixtures/art_t1560_001_ditto_archive.ndjson");
    let ditto = ditto.to_str().unwrap();
    let jsonl = rows(&run(&["scan"], &[Path::new(ditto)]));
    let row = jsonl
        .iter()
        .find(|r| r["cmdline"].as_str().is_some_and(|c| c.len() > 100))
        .unwrap();
    let cmdline = row["cmdline"].as_str().unwrap();
    let time = row["time"].as_i64().unwrap();
    let sql = format!(
        "SELECT time, pid, cmdline FROM keychain_access_events WHERE eid = '{}'",
        row["eid"].as_str().unwrap()
    );
    for width in [60, 80, 100] {
        let out = run_width(&["query", "--input", ditto, &sql], Some(width));
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("+-"), "osqueryi's boxed layout:\n{text}");
        for l in text.lines() {
            assert!(
                l.chars().count() <= width,
                "{width}: {l:?} wider than the terminal"
            );
        }
        // Wrapped, not cut at a fixed length: the whole command line when
        // four lines of its column hold it, else its start and its end
        // (the archive written) around a `…`.
        let cells = column_text(&text, 2);
        assert_eq!(cells.len(), 1, "{text}");
        let shown = cells[0].replace(' ', "");
        if width >= 80 {
            assert_eq!(shown, cmdline.replace(' ', ""), "{width}:\n{text}");
        } else {
            assert!(
                shown.starts_with("ditto-c-k") && shown.contains('…'),
                "{text}"
            );
            assert!(
                shown.ends_with("/tmp/T1560.001_ditto_archive.zip"),
                "{text}"
            );
        }
        // Times are dates in the table (and only there).
        assert_eq!(column_text(&text, 0)[0], utc_date(time), "{text}");
        assert!(!text.contains(&time.to_string()), "{text}");
    }
    let csv = run_width(
        &["query", "--input", ditto, "--format", "csv", &sql],
        Some(60),
    );
    assert!(String::from_utf8_lossy(&csv.stdout).contains(&time.to_string()));
    // Not a terminal and no COLUMNS: nothing is fitted or cut.
    let out = run_width(&["query", "--input", ditto, &sql], None);
    assert!(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(cmdline)));
    // A value longer than four lines of its column is cut with `…`;
    // --no-truncate shows every character.
    let long = "SELECT replace(hex(zeroblob(150)), '0', 'x') || 'END' AS v";
    let cut = run_width(&["query", "--input", ditto, long], Some(60));
    let cut_text = column_text(&String::from_utf8_lossy(&cut.stdout), 0).concat();
    assert!(
        cut_text.contains('…') && cut_text.ends_with("END"),
        "{cut_text}"
    );
    assert!(cut_text.chars().count() <= 4 * 56, "{cut_text}");
    let full = run_width(
        &["query", "--input", ditto, "--no-truncate", long],
        Some(60),
    );
    let full_text = column_text(&String::from_utf8_lossy(&full.stdout), 0).concat();
    assert_eq!(full_text, format!("{}END", "x".repeat(300)));
    // Too many columns for the width: osqueryi's line mode, still fitted.
    let out = run_width(
        &[
            "scan",
            "--input",
            ditto,
            "--format",
            "table",
            "--all-columns",
        ],
        Some(80),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("cmdline = ")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}
