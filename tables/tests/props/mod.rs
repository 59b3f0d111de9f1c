//! Robustness properties shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`)
//! and the proptest suite (`tables/tests/robustness.rs`): one definition of
//! what "must hold whatever the input" means for each entry point.
//!
//! Every `check_*` function takes raw bytes (what an attacker, eslogger, the
//! unified log or osquery can hand over), runs one entry point and panics
//! when a property fails. Beyond "no panic, no hang":
//! - scanner rows carry no raw control characters (C0, DEL, C1) in any text
//!   column, command lines and messages stay within their caps, and the row
//!   counter matches the rows produced;
//! - `LineReader` splits exactly as a naive newline split would, reporting
//!   lines over the cap as oversize, and consumes every byte;
//! - `security_cli::parse` only points at argv words that exist, at char
//!   boundaries;
//! - the redactor keeps argv length, and the value after
//!   `unlock-keychain -p` never survives (argv or shell text);
//! - the constraint parser produces SQL made only of schema column names,
//!   operators and `?` placeholders: a constraint value never becomes SQL.

#![allow(dead_code)]

use keychain_access_tables::classify::ROW_CMDLINE_MAX;
use keychain_access_tables::constraints::{parse_context, where_clause};
use keychain_access_tables::procs::ProcessCache;
use keychain_access_tables::redact::{redact_argv, redact_text, REDACTED};
use keychain_access_tables::scan::{Line, LineReader, ScanOptions, Scanner};
use keychain_access_tables::schema::{Value, COLUMNS};
use keychain_access_tables::security_cli;
use keychain_access_tables::unified_log::MESSAGE_MAX;
use keychain_access_tables::KeychainAccess;
use std::io::BufReader;

/// A small process cache, so evictions happen under fuzzing too.
pub const SMALL_CACHE: usize = 64;

/// The `...<truncated>` marker appended by `text::truncate`.
const MARK: usize = "...<truncated>".len();

/// A scanner for property checks (built once and reused: see [`reset`]).
pub fn scanner() -> Scanner {
    Scanner::new(ScanOptions {
        cache_capacity: SMALL_CACHE,
        ..ScanOptions::default()
    })
}

/// Forget every process and counter, so one input never depends on another.
pub fn reset(s: &mut Scanner) {
    s.classifier.cache = ProcessCache::new(SMALL_CACHE);
    s.stats = Default::default();
    s.reset_sequence();
}

fn is_control(c: char) -> bool {
    let u = c as u32;
    u < 0x20 || (0x7f..=0x9f).contains(&u)
}

/// Properties every row must have, whatever produced it.
pub fn check_row(r: &KeychainAccess) {
    for (i, v) in r.values().iter().enumerate() {
        if let Value::Text(t) = v {
            let name = COLUMNS.get(i).map_or("?", |c| c.name);
            assert!(
                !t.chars().any(is_control),
                "raw control character in column {name}: {t:?}"
            );
        }
    }
    for c in [&r.cmdline, &r.parent_cmdline].into_iter().flatten() {
        assert!(
            c.len() <= ROW_CMDLINE_MAX + MARK,
            "cmdline of {} bytes",
            c.len()
        );
    }
    if let Some(m) = &r.message {
        assert!(
            m.len() <= MESSAGE_MAX + MARK,
            "message of {} bytes",
            m.len()
        );
    }
}

/// The naive model of [`LineReader`]: split on `\n`, a last line without a
/// newline counts, lines longer than `cap` are oversize.
fn naive_lines(data: &[u8], cap: usize) -> Vec<Result<Vec<u8>, usize>> {
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.is_empty() || data.ends_with(b"\n") {
        pieces.pop();
    }
    for p in pieces {
        if p.len() > cap {
            out.push(Err(p.len()));
        } else {
            out.push(Ok(p.to_vec()));
        }
    }
    out
}

/// Feed `data` (one or more lines) through a small-buffered [`LineReader`]
/// and the scanner; check the reader against the naive model, the rows and
/// the counters.
pub fn check_scan_bytes(s: &mut Scanner, data: &[u8], cap: usize, bufcap: usize) {
    reset(s);
    let cap = cap.max(1);
    let mut reader = LineReader::new(BufReader::with_capacity(bufcap.max(1), data), cap);
    let mut got: Vec<Result<Vec<u8>, usize>> = Vec::new();
    let mut rows = Vec::new();
    let mut out = Vec::new();
    // The offset after each line: just after its newline (or the end of the
    // data for a last line without one), what a consumer commits.
    let mut want_offset = 0u64;
    loop {
        let line = match reader.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => panic!("reading from memory failed: {e}"),
        };
        let len = match line {
            Line::Complete(b) => b.len(),
            Line::Oversize(n) => n,
        };
        want_offset = (want_offset + len as u64 + 1).min(data.len() as u64);
        match line {
            Line::Complete(b) => {
                got.push(Ok(b.to_vec()));
                s.scan_line(b, &mut out);
            }
            Line::Oversize(n) => {
                got.push(Err(n));
                s.oversize_line(n);
            }
        }
        assert_eq!(reader.offset, want_offset, "a line's end offset is wrong");
        rows.append(&mut out);
    }
    assert_eq!(reader.offset, data.len() as u64, "reader left bytes behind");
    assert_eq!(got, naive_lines(data, cap), "LineReader split differs");
    for r in &rows {
        check_row(r);
    }
    let st = s.finish_stats();
    assert_eq!(st.rows, rows.len() as u64);
    assert_eq!(st.lines_read, got.len() as u64);
    let skipped = st.malformed
        + st.oversize
        + st.blank_lines
        + st.banner_lines
        + st.prefiltered
        + st.unknown_types
        + st.parsed
        + st.unified_log_records;
    assert!(
        skipped >= st.lines_read,
        "a line was neither parsed nor counted: {st:?}"
    );
}

/// One eslogger-looking input (possibly several lines) through the scanner.
pub fn check_es_line(s: &mut Scanner, data: &[u8]) {
    // The first byte picks the line cap and the read buffer size, so the
    // oversize path and buffer refills are exercised at small sizes too.
    let (cap, bufcap, body) = match data.split_first() {
        Some((&b, rest)) if b & 0x80 != 0 => (
            usize::from(b & 0x7f) * 16 + 1,
            usize::from(b & 0x0f) + 1,
            rest,
        ),
        Some((_, rest)) => (1 << 20, 8192, rest),
        None => (1 << 20, 8192, data),
    };
    check_scan_bytes(s, body, cap, bufcap);
}

/// Split fuzz bytes into words on NUL (lossy UTF-8).
pub fn words(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

/// A unified-log record built from fuzz bytes: the first byte picks raw
/// mode (the bytes are the line) or structured mode (NUL-separated fields
/// placed into a well-formed record from a keychain component).
pub fn unified_log_record(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode & 1 == 0 {
        // Raw: the bytes are the line (seeds are real unified-log records).
        return rest.to_vec();
    }
    let f = words(rest);
    let get = |i: usize, d: &str| f.get(i).cloned().unwrap_or_else(|| d.to_string());
    const SUBSYSTEMS: &[&str] = &["com.apple.securityd", "com.apple.Authorization", "x"];
    const PROCS: &[&str] = &[
        "/usr/sbin/securityd",
        "/System/Library/Frameworks/Security.framework/Versions/A/MachServices/authd.xpc/Contents/MacOS/authd",
        "/usr/libexec/secd",
    ];
    let sub = SUBSYSTEMS[usize::from(mode >> 1) % SUBSYSTEMS.len()];
    let proc_ = PROCS[usize::from(mode >> 3) % PROCS.len()];
    let mut rec = serde_json::json!({
        "eventMessage": get(0, ""),
        "subsystem": sub,
        "category": get(2, "default"),
        "processImagePath": proc_,
        "senderImagePath": get(3, proc_),
        "timestamp": get(1, "2026-10-04 17:50:33.803491+0200"),
        "processID": get(4, "118"),
        "eventType": "logEvent",
        "messageType": "Default",
    });
    if mode & 0x40 != 0 {
        // Numbers where strings are expected and the other way round.
        rec["processID"] = serde_json::json!(i64::from(mode) << 40);
        rec["subsystem"] = serde_json::json!([sub]);
    }
    rec.to_string().into_bytes()
}

/// A unified-log record through the scanner (and the timestamp parser).
pub fn check_unified_log_line(s: &mut Scanner, data: &[u8]) {
    let line = unified_log_record(data);
    if let Some(rest) = data.get(1..) {
        let _ = keychain_access_tables::unified_log::parse_log_timestamp(&String::from_utf8_lossy(
            rest,
        ));
    }
    check_scan_bytes(s, &line, 1 << 20, 8192);
}

/// `security` argv from NUL-separated words.
pub fn check_security_argv(data: &[u8]) {
    let mut argv = words(data);
    if data.first().is_some_and(|b| b & 1 == 1) {
        argv.insert(0, "security".into());
    }
    check_security_words(&argv);
}

pub fn check_security_words(argv: &[String]) {
    let inv = security_cli::parse(argv);
    for &(i, keep) in &inv.secrets {
        let w = argv.get(i).expect("secret index past argv");
        assert!(
            keep <= w.len() && w.is_char_boundary(keep),
            "bad keep {keep} in {w:?}"
        );
        assert!(i >= 1, "argv[0] flagged as a secret");
    }
    for o in &inv.opts {
        if let Some(i) = o.value_index {
            assert!(i < argv.len(), "value index past argv");
        }
    }
    let help = inv.global_flags.contains(&'h');
    if let (Some(v), Some(w), false) = (inv.verb, &inv.verb_word, help) {
        assert!(v.starts_with(w.as_str()), "{w} resolved to {v}");
    }
    // Redaction of the same argv keeps its shape and, when argv[0] is
    // security(1), hides every secret the parser located.
    let red = redact_argv(argv);
    assert_eq!(red.len(), argv.len());
    let is_security = argv
        .first()
        .is_some_and(|a| keychain_access_tables::text::basename(a) == "security");
    for &(i, keep) in inv.secrets.iter().filter(|_| is_security) {
        // At most the `keep` leading bytes of the word survive, around
        // markers (another rule may keep fewer; the shell-text pass over a
        // word with whitespace may redact more of the kept prefix), and the
        // value itself never does.
        assert!(
            red[i].contains(REDACTED),
            "secret word {i} survived: {:?}",
            red[i]
        );
        let left = red[i].replace(REDACTED, "");
        assert!(
            left.len() <= keep,
            "secret word {i}: {:?} keeps more than {keep} bytes of {:?}",
            red[i],
            argv[i]
        );
        let value = &argv[i][keep..];
        if !value.is_empty() && !argv[i][..keep].contains(value) {
            for piece in red[i].split(REDACTED) {
                assert!(
                    !piece.contains(value),
                    "secret value of word {i} survived: {:?}",
                    red[i]
                );
            }
        }
    }
}

/// Quote a word for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The redactor on arbitrary argv and text, plus the `unlock-keychain -p`
/// property: the password never survives, however it is spelt.
pub fn check_redact(data: &[u8]) {
    let argv = words(data);
    let red = redact_argv(&argv);
    assert_eq!(red.len(), argv.len());
    let text = String::from_utf8_lossy(data);
    let _ = redact_text(&text);

    // The first word is the secret, the rest follow it on the command line.
    let secret = argv.first().cloned().unwrap_or_default();
    let rest: Vec<String> = argv.iter().skip(1).take(8).cloned().collect();
    const PREFIXES: &[&[&str]] = &[
        &["security"],
        &["/usr/bin/security"],
        &["/usr/bin/sudo", "-u", "root", "security"],
        &["env", "A=B", "security"],
        &["nohup", "/usr/bin/security", "-q"],
    ];
    let pick = data.last().map_or(0, |b| usize::from(*b)) % PREFIXES.len();
    let mut a: Vec<String> = PREFIXES[pick].iter().map(|s| s.to_string()).collect();
    let at = a.len() + 2;
    a.push("unlock-keychain".into());
    a.push("-p".into());
    a.push(secret.clone());
    a.extend(rest);
    let r = redact_argv(&a);
    assert_eq!(
        r[at], REDACTED,
        "unlock-keychain -p value survived in {r:?}"
    );

    // The same as shell text, quoted, alone and under `sh -c`. (What
    // follows may be redacted too: a secret spelt `--passwd` makes the next
    // word look like a password. Over-redaction is allowed, leaks are not.)
    let expected = format!(
        "{} unlock-keychain -p '{REDACTED}' ",
        PREFIXES[pick].join(" ")
    );
    let cmd = format!(
        "{} unlock-keychain -p {} login.keychain",
        PREFIXES[pick].join(" "),
        shell_quote(&secret)
    );
    let rt = redact_text(&cmd);
    assert!(rt.starts_with(&expected), "shell text: {cmd:?} -> {rt:?}");
    let wrapped = redact_argv(&["/bin/sh".into(), "-c".into(), cmd.clone()]);
    assert!(
        wrapped[2].starts_with(&expected),
        "sh -c: {cmd:?} -> {:?}",
        wrapped[2]
    );
}

/// osquery's context JSON: arbitrary text, and fuzz bytes placed as a
/// constraint value into a well-formed context.
pub fn check_constraint_context(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = parse_context(&text) {
        check_sql(&c);
    }
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let value = String::from_utf8_lossy(rest).into_owned();
    let col = COLUMNS[usize::from(sel) % COLUMNS.len()].name;
    const OPS: &[i64] = &[2, 4, 8, 16, 32, 65, 66, 1, 3];
    let op = OPS[usize::from(sel >> 3) % OPS.len()];
    let op_json = if sel & 0x80 != 0 {
        serde_json::json!(op.to_string())
    } else {
        serde_json::json!(op)
    };
    let ctx = serde_json::json!({
        "constraints": [
            {"name": col, "list": [{"op": op_json, "expr": value}], "affinity": "TEXT"},
            {"name": value, "list": [{"op": 2, "expr": value}]}
        ],
        "colsUsed": [col],
    });
    let c = parse_context(&ctx.to_string()).expect("a well-formed context is accepted");
    check_sql(&c);
    let (_, params) = where_clause(&c);
    for p in &params {
        if let Value::Text(t) = p {
            assert_eq!(t, &value, "a text parameter is the value, unchanged");
        }
    }
}

/// The WHERE clause is made of schema names, operators and placeholders only.
fn check_sql(c: &[keychain_access_tables::constraints::Constraint]) {
    let (sql, params) = where_clause(c);
    if sql == "1" {
        assert!(params.is_empty());
        return;
    }
    let parts: Vec<&str> = sql.split(" AND ").collect();
    assert_eq!(parts.len(), params.len(), "one parameter per term: {sql}");
    for part in parts {
        let t: Vec<&str> = part.split(' ').collect();
        assert_eq!(t.len(), 3, "term {part:?}");
        assert!(COLUMNS.iter().any(|k| k.name == t[0]), "column {:?}", t[0]);
        assert!(
            ["=", ">", ">=", "<", "<=", "LIKE", "GLOB"].contains(&t[1]),
            "operator {:?}",
            t[1]
        );
        assert_eq!(t[2], "?");
    }
}
