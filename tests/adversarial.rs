//! Adversarial inputs through the real binaries: whatever eslogger,
//! the unified log or an attacker feeds `keychain-access`, it keeps working,
//! loses no valid row, never hangs and never balloons.
//!
//! Every input is generated here at test time from real line shapes
//! (`tests/fixtures/*.ndjson`), never committed: a 16 MB line, JSON nested
//! 100,000 deep, invalid UTF-8 in paths and arguments, control characters,
//! ANSI escapes and NUL in command lines, billion-laughs-style repetition,
//! an argv of 100,000 words, 4,096-byte paths and a flood of events reusing
//! one pid. Each case brackets the bad input with two valid events and
//! checks that their rows survive, that the bad input is counted in the
//! stderr summary (or the status table), that the child exits 0 within a
//! watchdog (a hang fails the test after 60 s) and that its peak RSS
//! (VmHWM, sampled while it runs) stays under a generous bound. The last test drives
//! extension mode and checks that each resource bound, when hit, is counted
//! in `keychain_access_status.bound_hits` and logged once.

#[path = "support/common.rs"]
mod common;
use common::{bin, ext_bin, fake_em, python, repo, Proc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A child still running after this long is hung: killed, and the test fails.
const WATCHDOG: Duration = Duration::from_secs(60);
const MB: i64 = 1024; // VmHWM is in KiB

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private temp dir, removed when dropped (inputs reach 32 MB).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let d = PathBuf::from(format!("/tmp/kca-adv-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // KCA_ADV_KEEP=1 keeps the inputs for a look after a failure.
        if std::env::var_os("KCA_ADV_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a run of the binary left.
struct Out {
    stdout: Vec<u8>,
    stderr: String,
    /// Peak resident set size (VmHWM), KiB.
    max_rss_kb: i64,
    elapsed: Duration,
}

impl Out {
    fn rows(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad jsonl {l:.200}: {e}")))
            .collect()
    }

    fn eids(&self) -> BTreeSet<String> {
        self.rows()
            .iter()
            .filter_map(|r| r["eid"].as_str().map(String::from))
            .collect()
    }

    /// A counter from the stderr summary: the number before `label`.
    fn counter(&self, label: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with("keychain-access: read"))
            .unwrap_or_else(|| panic!("no summary in stderr: {}", self.stderr));
        let i = line
            .find(label)
            .unwrap_or_else(|| panic!("`{label}` not in summary: {line}"));
        let word = line[..i].trim_end().rsplit(' ').next().unwrap_or("");
        word.parse()
            .unwrap_or_else(|_| panic!("no number before `{label}` in: {line}"))
    }

    fn assert_rss_below(&self, mb: i64, what: &str) {
        assert!(
            self.max_rss_kb < mb * MB,
            "{what}: peak RSS {} MiB >= {mb} MiB",
            self.max_rss_kb / MB
        );
    }
}

/// The child's peak RSS so far (VmHWM, KiB): its own address space only.
/// (`wait4`'s `ru_maxrss` is not used: Linux carries the spawning test
/// process's high-water mark across fork and exec into it.)
fn vm_hwm_kb(pid: u32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Run the binary with a watchdog, sampling its peak RSS every few
/// milliseconds until it exits; it must exit 0.
fn run(dir: &Path, args: &[&OsStr]) -> Out {
    let so = dir.join("stdout");
    let se = dir.join("stderr");
    let child = Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so).unwrap())
        .stderr(std::fs::File::create(&se).unwrap())
        .spawn()
        .expect("start keychain-access");
    let mut child = child;
    let pid = child.id();
    let start = Instant::now();
    let mut max_rss_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            max_rss_kb = max_rss_kb.max(kb);
        }
        if let Some(status) = child.try_wait().expect("waitpid") {
            break status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keychain-access {args:?} hung: killed after {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    let stdout = std::fs::read(&so).unwrap();
    let stderr = String::from_utf8_lossy(&std::fs::read(&se).unwrap()).into_owned();
    assert!(
        status.success(),
        "keychain-access {args:?} failed ({status}): {stderr:.2000}"
    );
    // Figures for docs/robustness.md (`cargo test ... -- --nocapture`).
    eprintln!(
        "adversarial: {} {:?}: peak RSS {} MiB, {:.2} s",
        args.first()
            .map_or(std::borrow::Cow::Borrowed(""), |a| a.to_string_lossy()),
        dir.file_name().unwrap_or_default(),
        max_rss_kb / MB,
        elapsed.as_secs_f64()
    );
    Out {
        stdout,
        stderr,
        max_rss_kb,
        elapsed,
    }
}

fn scan(dir: &Path, input: &Path, extra: &[&str]) -> Out {
    let mut args: Vec<&OsStr> = vec![OsStr::new("scan"), OsStr::new("--input"), input.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    run(dir, &args)
}

fn query(dir: &Path, input: &Path, sql: &str) -> Out {
    let args: Vec<&OsStr> = vec![
        OsStr::new("query"),
        OsStr::new("--input"),
        input.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("jsonl"),
        OsStr::new(sql),
    ];
    run(dir, &args)
}

// ---------------------------------------------------------------------------
// Real line shapes

/// The first fixture line of `file` matching `pred`, slimmed: `stat`, `env`
/// and `fds` dropped (the parser ignores them) and no sequence numbers (so
/// generated floods show no ES drops).
fn fixture_event(file: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let text = std::fs::read_to_string(repo().join("tests/fixtures").join(file)).unwrap();
    let mut v = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| pred(v))
        .unwrap_or_else(|| panic!("no matching line in {file}"));
    fn slim(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["stat", "env", "fds", "global_seq_num", "seq_num"] {
                    m.remove(k);
                }
                m.values_mut().for_each(slim);
            }
            Value::Array(a) => a.iter_mut().for_each(slim),
            _ => {}
        }
    }
    slim(&mut v);
    v
}

/// `security dump-keychain -d login.keychain` (an alert row).
fn exec_template() -> Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| {
        fixture_event("art_t1555_001_1_dump_keychain.ndjson", |v| {
            v.pointer("/event/exec/args/1").and_then(Value::as_str) == Some("dump-keychain")
        })
    })
    .clone()
}

/// `cat` reading the login keychain (a row).
fn open_template() -> Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| {
        fixture_event("art_t1555_001_4_cat_copy.ndjson", |v| {
            v.pointer("/event/open/file/path")
                .and_then(Value::as_str)
                .is_some_and(|p| p.ends_with("login.keychain-db"))
        })
    })
    .clone()
}

fn set(v: &mut Value, ptr: &str, to: Value) {
    *v.pointer_mut(ptr)
        .unwrap_or_else(|| panic!("no {ptr} in template")) = to;
}

/// An exec event: image `path` with `args` at (pid, pv), parent (ppid, ppv).
fn exec_event(pid: i64, pv: i64, parent: (i64, i64), path: &str, args: &[&str]) -> Value {
    let mut v = exec_template();
    set(&mut v, "/event/exec/target/audit_token/pid", json!(pid));
    set(
        &mut v,
        "/event/exec/target/audit_token/pidversion",
        json!(pv),
    );
    set(
        &mut v,
        "/event/exec/target/parent_audit_token/pid",
        json!(parent.0),
    );
    set(
        &mut v,
        "/event/exec/target/parent_audit_token/pidversion",
        json!(parent.1),
    );
    set(&mut v, "/event/exec/target/ppid", json!(parent.0));
    set(&mut v, "/event/exec/target/executable/path", json!(path));
    if !path.ends_with("/security") {
        set(
            &mut v,
            "/event/exec/target/signing_id",
            json!("com.example.tool"),
        );
    }
    set(&mut v, "/event/exec/args", json!(args));
    set(&mut v, "/process/audit_token/pid", json!(pid));
    set(&mut v, "/process/audit_token/pidversion", json!(pv - 1));
    v
}

/// An open of `path` (read) by `/bin/cat` at (pid, pv), child of launchd.
fn open_event(pid: i64, pv: i64, path: &str) -> Value {
    open_by(pid, pv, "/bin/cat", (1, 1), path)
}

/// An open of `path` (read) by image `exe` at (pid, pv), parent (ppid, ppv).
fn open_by(pid: i64, pv: i64, exe: &str, parent: (i64, i64), path: &str) -> Value {
    let mut v = open_template();
    set(&mut v, "/process/audit_token/pid", json!(pid));
    set(&mut v, "/process/audit_token/pidversion", json!(pv));
    set(&mut v, "/process/parent_audit_token/pid", json!(parent.0));
    set(
        &mut v,
        "/process/parent_audit_token/pidversion",
        json!(parent.1),
    );
    set(&mut v, "/process/ppid", json!(parent.0));
    set(&mut v, "/process/executable/path", json!(exe));
    set(&mut v, "/event/open/file/path", json!(path));
    v
}

fn line(v: &Value) -> Vec<u8> {
    let mut l = serde_json::to_vec(v).unwrap();
    l.push(b'\n');
    l
}

/// The two valid events every case puts around its bad input.
fn good_lines() -> (Vec<u8>, Vec<u8>) {
    (line(&exec_template()), line(&open_template()))
}

/// Rows (eids) of the two valid events scanned alone.
fn good_eids(dir: &Path) -> BTreeSet<String> {
    let (a, b) = good_lines();
    let p = dir.join("good.ndjson");
    std::fs::write(&p, [a, b].concat()).unwrap();
    let out = scan(dir, &p, &[]);
    let e = out.eids();
    assert_eq!(e.len(), 2, "both valid events give a row");
    e
}

/// Write `good_a, bad..., good_b` and return the path.
fn bracketed(dir: &Path, name: &str, bad: &[Vec<u8>]) -> PathBuf {
    let (a, b) = good_lines();
    let p = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    f.write_all(&a).unwrap();
    for l in bad {
        f.write_all(l).unwrap();
    }
    f.write_all(&b).unwrap();
    f.flush().unwrap();
    p
}

fn assert_survive(out: &Out, good: &BTreeSet<String>, what: &str) {
    let got = out.eids();
    assert!(
        good.is_subset(&got),
        "{what}: valid rows lost (want {good:?} in {got:?})"
    );
}

// ---------------------------------------------------------------------------
// The cases

#[test]
fn sixteen_megabyte_lines_are_skipped_counted_and_never_buffered() {
    let d = TempDir::new("16mb");
    let good = good_eids(d.path());
    // A keychain open whose path is 16 MB, then the same without a final
    // newline at the end of the file.
    let mut big = open_event(4000, 1, "/Users/a/Library/Keychains/login.keychain-db");
    set(
        &mut big,
        "/event/open/file/path",
        json!(format!(
            "/Users/a/{}/Library/Keychains/login.keychain-db",
            "A".repeat(16 << 20)
        )),
    );
    let big = line(&big);
    assert!(big.len() > 16 << 20);
    let p = bracketed(d.path(), "in.ndjson", std::slice::from_ref(&big));
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(&big[..big.len() - 1]).unwrap(); // last line, no newline
    drop(f);

    let out = scan(d.path(), &p, &[]);
    assert_survive(&out, &good, "16 MB line");
    assert_eq!(out.counter(" oversize"), 2);
    assert_eq!(out.counter(" malformed"), 0);
    assert_eq!(out.counter(" rows ("), 2);
    assert_eq!(out.counter(" lines ("), 4);
    // The 4 MiB line cap means a 16 MB line is never held whole (about
    // 15 MiB measured: the binary plus the 4 MiB cap's buffer).
    out.assert_rss_below(64, "16 MB lines, default cap");

    // Raising the cap past the line parses it: memory grows with the line
    // (a few copies of it), not without bound.
    let out = scan(d.path(), &p, &["--max-line", "33554432"]);
    assert_survive(&out, &good, "16 MB line, raised cap");
    assert_eq!(out.counter(" oversize"), 0);
    assert_eq!(out.counter(" rows ("), 4);
    out.assert_rss_below(512, "16 MB lines parsed");
}

#[test]
fn deep_nesting_is_a_counted_malformed_line_not_a_stack_overflow() {
    let d = TempDir::new("nest");
    let good = good_eids(d.path());
    let n = 100_000;
    let (open, close) = ("[".repeat(n), "]".repeat(n));
    let objs = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    let exec = serde_json::to_string(&exec_template()).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        // In the event body (kept raw, then parsed as the open event).
        format!("{{\"event\":{{\"open\":{open}{close}}},\"k\":\"eychain\"}}\n").into_bytes(),
        // Objects in the envelope.
        format!("{{\"process\":{objs},\"event\":{{\"exec\":{{}}}},\"k\":\"eychain\"}}\n")
            .into_bytes(),
        // In exec args of a real event.
        format!("{}\n", exec.replacen("\"args\":[", &format!("\"args\":[{open}{close},"), 1))
            .into_bytes(),
        // Never closed.
        format!("{{\"k\":\"eychain\",\"event\":{{\"open\":{}}}}}\n", "[".repeat(1_000_000))
            .into_bytes(),
        // A unified-log record from a keychain component: nesting inside a
        // key the record ignores is skipped without recursion (serde_json's
        // ignore_value), so this one is a valid record, not malformed.
        format!(
            "{{\"eventMessage\":\"x\",\"subsystem\":\"com.apple.securityd\",\"processImagePath\":\"/usr/sbin/securityd\",\"extra\":{open}{close}}}\n"
        )
        .into_bytes(),
    ];
    let p = bracketed(d.path(), "in.ndjson", &bad);
    let out = scan(d.path(), &p, &[]);
    assert_survive(&out, &good, "deep nesting");
    assert_eq!(
        out.counter(" malformed"),
        bad.len() as u64 - 1,
        "{}",
        out.stderr
    );
    assert_eq!(out.counter(" unified-log records"), 1, "{}", out.stderr);
    assert_eq!(out.counter(" rows ("), 2);
    out.assert_rss_below(256, "deep nesting");
}

#[test]
fn invalid_utf8_in_paths_and_args_is_kept_lossy_and_counted() {
    let d = TempDir::new("utf8");
    let good = good_eids(d.path());
    let exec = exec_event(
        4100,
        7,
        (1, 1),
        "/usr/bin/security",
        &["security", "dump-keychain", "-d", "login@BAD@.keychain"],
    );
    let open = open_event(4100, 7, "/Users/a@BAD@/Library/Keychains/login.keychain-db");
    let bad: Vec<Vec<u8>> = [exec, open]
        .iter()
        .map(|v| {
            let l = line(v);
            // Raw invalid UTF-8 where the placeholder was (a lone
            // continuation byte, an overlong form and a truncated sequence).
            let s = String::from_utf8(l).unwrap();
            let mut out = Vec::new();
            for (i, part) in s.split("@BAD@").enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"\x80\xc0\xaf\xe2\x82");
                }
                out.extend_from_slice(part.as_bytes());
            }
            out
        })
        .collect();
    let p = bracketed(d.path(), "in.ndjson", &bad);
    let out = scan(d.path(), &p, &[]);
    assert_survive(&out, &good, "invalid UTF-8");
    assert_eq!(out.counter(" lossy UTF-8"), 2);
    assert_eq!(out.counter(" malformed"), 0);
    let rows = out.rows();
    assert_eq!(rows.len(), 4);
    let exec_row = rows
        .iter()
        .find(|r| r["pid"] == 4100 && r["event_type"] == "exec")
        .unwrap();
    assert!(exec_row["cmdline"]
        .as_str()
        .unwrap()
        .contains("login\u{fffd}"));
    let open_row = rows
        .iter()
        .find(|r| r["pid"] == 4100 && r["event_type"] == "open")
        .unwrap();
    assert!(open_row["target_path"]
        .as_str()
        .unwrap()
        .contains("/Users/a\u{fffd}"));
}

#[test]
fn control_characters_ansi_and_nul_never_reach_output_raw() {
    let d = TempDir::new("ctrl");
    let good = good_eids(d.path());
    let nasty = "\u{1b}[31mred\u{1b}[0m\u{1b}]0;pwned\u{7}\r\nfake\0nul\u{9b}2J\u{7f}";
    let exec = exec_event(
        4200,
        9,
        (1, 1),
        "/usr/bin/security",
        &[
            "security",
            "dump-keychain",
            "-d",
            &format!("login{nasty}.keychain"),
        ],
    );
    let mut open = open_event(
        4200,
        9,
        &format!("/Users/a/{nasty}/Library/Keychains/login.keychain-db"),
    );
    set(
        &mut open,
        "/process/executable/path",
        json!(format!("/tmp/{nasty}")),
    );
    // A line with raw NUL and ESC bytes (invalid JSON): counted malformed.
    let raw =
        b"{\"event\":{\"open\":{\"file\":{\"path\":\"\x1b[2J\x00login.keychain-db\"}}}}\n".to_vec();
    let p = bracketed(d.path(), "in.ndjson", &[line(&exec), line(&open), raw]);
    let forbidden: &[&[u8]] = &[b"\x1b", b"\x00", b"\x07", b"\r", b"\xc2\x9b", b"\x7f"];
    let check = |out: &Out, what: &str| {
        for f in forbidden {
            assert!(
                !out.stdout.windows(f.len()).any(|w| w == *f),
                "{what}: raw {f:?} in stdout"
            );
        }
    };
    let out = scan(d.path(), &p, &[]);
    check(&out, "jsonl");
    assert_survive(&out, &good, "control characters");
    assert_eq!(out.counter(" malformed"), 1);
    let rows = out.rows();
    assert_eq!(rows.len(), 4);
    let cmd = rows
        .iter()
        .find(|r| r["pid"] == 4200 && r["event_type"] == "exec")
        .unwrap()["cmdline"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(cmd.contains("\\x1b[31mred"), "escaped visibly: {cmd}");
    assert!(cmd.contains("\\r\\nfake\\x00nul\\u{9b}2J\\x7f"), "{cmd}");
    for fmt in ["csv", "table"] {
        let out = scan(d.path(), &p, &["--format", fmt, "--all-columns"]);
        check(&out, fmt);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("\\x1b[31mred"),
            "{fmt} shows the escape visibly"
        );
    }
    let out = run(
        d.path(),
        &[
            OsStr::new("query"),
            OsStr::new("--input"),
            p.as_os_str(),
            OsStr::new("SELECT path, cmdline, target_path FROM keychain_access_events"),
        ],
    );
    check(&out, "query table");
}

#[test]
fn billion_laughs_style_repetition_stays_bounded() {
    let d = TempDir::new("laughs");
    let good = good_eids(d.path());
    // (a) ~3 MB of repeated keys inside a real exec event.
    let exec = serde_json::to_string(&exec_event(
        4300,
        3,
        (1, 1),
        "/usr/bin/security",
        &["security", "dump-keychain"],
    ))
    .unwrap();
    let keys = "\"k\":[0,0],".repeat(300_000);
    let a = format!(
        "{}\n",
        exec.replacen("\"exec\":{", &format!("\"exec\":{{{keys}"), 1)
    )
    .into_bytes();
    // (b) a 3 MB argv: `unlock-keychain -p pw` repeated; every pw redacted.
    let mut args = vec!["security".to_string(), "unlock-keychain".into()];
    for _ in 0..100_000 {
        args.extend(["-p".to_string(), "hunter2".into(), "k.keychain".into()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = line(&exec_event(4301, 3, (1, 1), "/usr/bin/security", &argv));
    // (c) `dscl . passwd passwd ...` (formerly quadratic in the redactor),
    //     then that process reads the login keychain (row from the cache).
    let mut dargs = vec!["dscl", "."];
    dargs.extend(std::iter::repeat_n("passwd", 200_000));
    let c1 = line(&exec_event(4302, 3, (1, 1), "/usr/bin/dscl", &dargs));
    let c2 = line(&open_by(
        4302,
        3,
        "/usr/bin/dscl",
        (1, 1),
        "/Users/a/Library/Keychains/login.keychain-db",
    ));
    // (d) `sh -c` quoted inside `sh -c` until the string reaches 1 MB
    //     (quoting grows it geometrically: about ten levels; the redactor
    //     descends four), then 200,000 nested subshells around a password
    //     (`((((security unlock-keychain -p hunter4 k))))`).
    let mut s = "security unlock-keychain -p hunter3 k".to_string();
    while s.len() < 1 << 20 {
        s = format!("sh -c {}", shell_quote(&s));
    }
    let sub = format!(
        "{}security unlock-keychain -p hunter4 k{}",
        "(".repeat(200_000),
        ")".repeat(200_000)
    );
    let e = line(&exec_event(
        4303,
        3,
        (1, 1),
        "/bin/sh",
        &["sh", "-c", &s, "-c", &sub],
    ));
    let e2 = line(&open_by(
        4303,
        3,
        "/bin/sh",
        (1, 1),
        "/Users/a/Library/Keychains/login.keychain-db",
    ));
    // (e) a 1,000-deep process chain, then its leaf reads the keychain.
    let mut chain = Vec::new();
    for i in 0..1_000i64 {
        chain.push(line(&exec_event(
            10_000 + i,
            1,
            (10_000 + i - 1, 1),
            "/bin/zsh",
            &["zsh"],
        )));
    }
    chain.push(line(&open_by(
        10_999,
        1,
        "/bin/zsh",
        (10_998, 1),
        "/Users/a/Library/Keychains/login.keychain-db",
    )));

    let mut bad = vec![a, b, c1, c2, e, e2];
    bad.extend(chain);
    let p = bracketed(d.path(), "in.ndjson", &bad);
    let out = scan(d.path(), &p, &[]);
    assert_survive(&out, &good, "repetition");
    assert_eq!(out.counter(" malformed"), 0);
    assert_eq!(out.counter(" oversize"), 0);
    let rows = out.rows();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2"), "a password survived");
    assert!(
        !text.contains("hunter4"),
        "a password in subshells survived"
    );
    let by_pid = |pid: i64| {
        rows.iter()
            .find(|r| r["pid"] == pid)
            .unwrap_or_else(|| panic!("no row for pid {pid}"))
    };
    assert!(by_pid(4300)["cmdline"] == "security dump-keychain");
    let unlock = by_pid(4301)["cmdline"].as_str().unwrap();
    assert!(unlock.ends_with("...<truncated>") && unlock.len() <= 16 * 1024 + 14);
    let dscl = by_pid(4302)["cmdline"].as_str().unwrap();
    assert!(
        dscl.starts_with("dscl . passwd passwd <redacted> <redacted>"),
        "{dscl:.100}"
    );
    assert!(
        dscl.ends_with("...<truncated>") && dscl.len() <= 2 * 1024 + 14,
        "cache cap"
    );
    let leaf = by_pid(10_999);
    let anc: Vec<Value> = serde_json::from_str(leaf["ancestors"].as_str().unwrap()).unwrap();
    assert_eq!(anc.len(), 16, "ancestors per row are capped at 16");
    out.assert_rss_below(512, "repetition");
    assert!(out.elapsed < WATCHDOG);
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn argv_of_100000_words_and_4096_byte_paths() {
    let d = TempDir::new("argv");
    let good = good_eids(d.path());
    let words: Vec<String> = (0..100_000).map(|i| format!("arg{i}")).collect();
    let mut args = vec!["security", "dump-keychain", "-d"];
    args.extend(words.iter().map(String::as_str));
    let exec = exec_event(4400, 5, (1, 1), "/usr/bin/security", &args);
    // Paths of exactly 4,096 bytes (PATH_MAX), as the executable and as the
    // keychain read.
    let pad = |prefix: &str, suffix: &str| {
        let n = 4096 - prefix.len() - suffix.len();
        let mut p = prefix.to_string();
        while p.len() + 2 <= prefix.len() + n {
            p.push_str("d/");
        }
        while p.len() < prefix.len() + n {
            p.push('x');
        }
        p.push_str(suffix);
        assert_eq!(p.len(), 4096);
        p
    };
    let exe = pad("/Users/a/", "/evil");
    let kc = pad("/Users/a/", "/Library/Keychains/login.keychain-db");
    let exec2 = exec_event(4401, 5, (4400, 5), &exe, &["evil"]);
    let open = open_by(4401, 5, &exe, (4400, 5), &kc);
    let open2 = open_by(
        4400,
        5,
        "/usr/bin/security",
        (1, 1),
        "/Users/a/Library/Keychains/login.keychain-db",
    );
    let p = bracketed(
        d.path(),
        "in.ndjson",
        &[line(&exec), line(&exec2), line(&open), line(&open2)],
    );
    let out = scan(d.path(), &p, &[]);
    assert_survive(&out, &good, "long argv and paths");
    assert_eq!(out.counter(" malformed"), 0);
    let rows = out.rows();
    let exec_row = rows
        .iter()
        .find(|r| r["pid"] == 4400 && r["event_type"] == "exec")
        .unwrap();
    let cmd = exec_row["cmdline"].as_str().unwrap();
    assert!(cmd.starts_with("security dump-keychain -d arg0 arg1"));
    assert!(
        cmd.ends_with("...<truncated>") && cmd.len() <= 16 * 1024 + 14,
        "row cmdline cap"
    );
    // The same process later: its cached command line is capped at 2 KiB.
    let open2_row = rows
        .iter()
        .find(|r| r["pid"] == 4400 && r["event_type"] == "open")
        .unwrap();
    assert!(open2_row["cmdline"].as_str().unwrap().len() <= 2 * 1024 + 14);
    let open_row = rows
        .iter()
        .find(|r| r["pid"] == 4401 && r["event_type"] == "open")
        .unwrap();
    assert_eq!(
        open_row["target_path"],
        kc.as_str(),
        "4,096-byte path kept whole"
    );
    assert_eq!(open_row["path"], exe.as_str());
    assert_eq!(open_row["parent_path"], "/usr/bin/security");
    assert!(open_row["parent_cmdline"].as_str().unwrap().len() <= 2 * 1024 + 14);
    out.assert_rss_below(256, "long argv");
}

#[test]
fn pid_reuse_flood_attributes_parents_by_pidversion_and_counts_evictions() {
    let d = TempDir::new("flood");
    let good = good_eids(d.path());
    // 10,000 images of pid 4242 (pidversions 1000..), each followed by a
    // child (pid 7000, a new pidversion each time) running security whose
    // parent token names that exact image. 20,000 images overflow the
    // 8,192-entry process cache.
    let n = 10_000i64;
    let mut bad = Vec::with_capacity(2 * n as usize + 1);
    for i in 0..n {
        let pv = 1000 + i;
        let exe = format!("/tmp/p{i}");
        bad.push(line(&exec_event(4242, pv, (1, 1), &exe, &[&exe])));
        bad.push(line(&exec_event(
            7000,
            50_000 + i,
            (4242, pv),
            "/usr/bin/security",
            &["security", "dump-keychain"],
        )));
    }
    // A child of the first image, long evicted: no parent, not the newest
    // image of pid 4242 (/tmp/p9999).
    bad.push(line(&exec_event(
        7000,
        90_000,
        (4242, 1000),
        "/usr/bin/security",
        &["security", "dump-keychain"],
    )));
    let p = bracketed(d.path(), "in.ndjson", &bad);

    let out = scan(d.path(), &p, &[]);
    assert_survive(&out, &good, "pid flood");
    assert_eq!(out.counter(" malformed"), 0);
    let rows = out.rows();
    let children: BTreeMap<i64, &Value> = rows
        .iter()
        .filter(|r| r["pid"] == 7000)
        .map(|r| (r["pidversion"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(children.len(), n as usize + 1, "one row per child");
    for i in 0..n {
        let r = children[&(50_000 + i)];
        assert_eq!(r["parent_pidversion"], 1000 + i);
        assert_eq!(r["parent_path"], format!("/tmp/p{i}").as_str(), "child {i}");
    }
    let orphan = children[&90_000];
    assert_eq!(orphan["parent_pidversion"], 1000);
    assert!(
        orphan["parent_path"].is_null(),
        "evicted parent misattributed: {orphan}"
    );
    out.assert_rss_below(256, "pid flood");

    // An exec frees the image it replaces (the same pid's earlier
    // pidversion, which each flood exec names as its pre-exec process), so
    // the flood does not fill the cache: nothing is evicted, and the
    // status table says so.
    let out = query(
        d.path(),
        &p,
        "SELECT cache_evictions, malformed, oversize FROM keychain_access_status",
    );
    let st = &out.rows()[0];
    assert_eq!(st["cache_evictions"], 0);
    assert_eq!(st["malformed"], 0);
}

// ---------------------------------------------------------------------------
// Extension mode: every bound hit is counted in the status table and logged
// once (the fake osqueryd of tests/extension.rs plays osquery).

/// Start the fake manager; returns it, its socket and its event log.
fn start_manager(dir: &Path, n: usize) -> (Proc, PathBuf, PathBuf) {
    let socket = dir.join(format!("osq{n}.em"));
    let events = dir.join(format!("em{n}.jsonl"));
    let child = Command::new(python())
        .arg(fake_em())
        .args(["manager", "--socket"])
        .arg(&socket)
        .args(["--max-seconds", "120"])
        .stdout(std::fs::File::create(&events).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start fake_em manager");
    (Proc(child), socket, events)
}

/// Wait for a manager event (`listening`, `registered`) and return it.
fn wait_event(events: &Path, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(events).unwrap_or_default();
        let found: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == name)
            .collect();
        if let Some(e) = found.into_iter().next() {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no `{name}` event from the manager"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_extension(dir: &Path, socket: &Path, config: &Value, log: &Path) -> Proc {
    let cfg = dir.join("cfg.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let child = Command::new(ext_bin())
        .arg("--socket")
        .arg(socket)
        .args(["--timeout", "10", "--interval", "1", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start extension");
    Proc(child)
}

fn generate(listen: &str, table: &str) -> Vec<BTreeMap<String, String>> {
    let out = Command::new(python())
        .arg(fake_em())
        .args([
            "generate",
            "--table",
            table,
            "--context",
            "{}",
            "--socket",
            listen,
        ])
        .output()
        .expect("fake_em generate");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fake_em generate: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["status"]["code"], 0, "generate failed: {v}");
    serde_json::from_value(v["response"].clone()).unwrap()
}

fn status(listen: &str) -> BTreeMap<String, String> {
    generate(listen, "keychain_access_status")
        .into_iter()
        .find(|r| r["source"].starts_with("file:"))
        .expect("file source status row")
}

fn bounds_of(st: &BTreeMap<String, String>) -> BTreeMap<String, u64> {
    serde_json::from_str(st.get("bound_hits").map_or("{}", String::as_str)).unwrap_or_default()
}

#[test]
fn extension_counts_and_logs_each_bound_once() {
    let d = TempDir::new("ext");
    let dir = d.path();
    // 40 security execs (40 rows, 40 cache images) and one 16 KB line.
    let mut lines = Vec::new();
    for i in 0..40i64 {
        lines.push(line(&exec_event(
            5000 + i,
            1,
            (1, 1),
            "/usr/bin/security",
            &["security", "dump-keychain"],
        )));
    }
    lines.insert(
        20,
        format!("{{\"k\":\"{}\"}}\n", "x".repeat(16 * 1024)).into_bytes(),
    );
    let capture = dir.join("capture.ndjson");
    std::fs::write(&capture, lines.concat()).unwrap();
    let mut cfg = json!({
        "database": dir.join("db/buffer.db"),
        // Fixture times are old: keep rows whatever their age.
        "retention": {"max_age_seconds": 3_153_600_000i64, "max_rows": 1_000_000},
        "max_result_rows": 5,
        "max_line_bytes": 8192,
        "process_cache_entries": 16,
        "sources": {"eslogger": {"enabled": false}, "log_stream": {"enabled": false}, "files": [capture]}
    });
    let (m, socket, events) = start_manager(dir, 1);
    wait_event(&events, "listening");
    let log = dir.join("ext1.log");
    let ext = start_extension(dir, &socket, &cfg, &log);
    let listen = wait_event(&events, "registered")["listen_path"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = status(&listen);
        if st["lines_read"] == "41" && st["rows_stored"] == "40" {
            break st;
        }
        assert!(Instant::now() < deadline, "ingest stalled: {st:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["oversize"], "1");
    assert_eq!(st["cache_evictions"], "24");
    // Rows per generate: 5 of 40, twice.
    assert_eq!(generate(&listen, "keychain_access_events").len(), 5);
    assert_eq!(generate(&listen, "keychain_access_events").len(), 5);
    let b = bounds_of(&status(&listen));
    assert_eq!(b.get("line_length"), Some(&1), "{b:?}");
    assert!(b.get("process_cache").is_some_and(|n| *n >= 1), "{b:?}");
    assert_eq!(b.get("result_rows"), Some(&2), "{b:?}");
    drop(ext);
    drop(m);

    // Restart (osqueryd's watcher restarts both) with a 10-row buffer:
    // retention deletes the oldest 30 rows at start-up and counts the bound.
    cfg["retention"]["max_rows"] = json!(10);
    let (_m, socket, events) = start_manager(dir, 2);
    wait_event(&events, "listening");
    let log2 = dir.join("ext2.log");
    let _ext = start_extension(dir, &socket, &cfg, &log2);
    let listen = wait_event(&events, "registered")["listen_path"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let b = loop {
        let st = status(&listen);
        let b = bounds_of(&st);
        if b.contains_key("buffer_rows") {
            assert_eq!(st["buffer_rows"], "10");
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "buffer bound never counted: {st:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(b.get("buffer_rows"), Some(&1), "{b:?}");

    // Each bound is logged once, however often it is hit.
    let text1 = std::fs::read_to_string(&log).unwrap();
    for name in ["line_length", "process_cache", "result_rows"] {
        let n = text1
            .matches(&format!("resource bound reached: {name}:"))
            .count();
        assert_eq!(n, 1, "{name} logged {n} times:\n{text1}");
    }
    let text2 = std::fs::read_to_string(&log2).unwrap();
    assert_eq!(
        text2
            .matches("resource bound reached: buffer_rows:")
            .count(),
        1,
        "{text2}"
    );
}
