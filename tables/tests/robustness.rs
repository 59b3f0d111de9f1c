//! Robustness in CI: property tests (proptest, fixed seed, bounded case
//! counts) over the five entry points the cargo-fuzz targets cover — the
//! eslogger line path through `Scanner`, the unified-log path, the
//! `security` argv parser, the redactor and the osquery constraint parser —
//! with the same properties (`props/mod.rs`). The long runs are cargo-fuzz's
//! (`fuzz/`, figures in docs/robustness.md); this suite keeps the
//! properties checked on every change, in a few seconds.
//!
//! Inputs are structure-aware where blind bytes would never get past the
//! JSON parser: real fixture lines with bytes edited, string leaves
//! replaced by hostile strings (control characters, ANSI escapes, NUL, long
//! runs), numbers replaced by extremes, and argv built from security(1)'s
//! vocabulary mixed with arbitrary words.

mod props;

use keychain_access_tables::redact::REDACTED;
use keychain_access_tables::schema::Value;
use keychain_access_tables::Scanner;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6b63_615f_7275_7374),
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

thread_local! {
    static SCANNER: RefCell<Scanner> = RefCell::new(props::scanner());
}

fn with_scanner(f: impl FnOnce(&mut Scanner)) {
    SCANNER.with(|s| f(&mut s.borrow_mut()));
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn read_lines(pattern_dir: PathBuf) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&pattern_dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "ndjson"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let data = std::fs::read(&f).unwrap_or_default();
        out.extend(
            data.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && l.len() < 64 * 1024)
                .map(<[u8]>::to_vec),
        );
    }
    out
}

/// Every eslogger fixture line.
fn es_lines() -> &'static [Vec<u8>] {
    static L: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    L.get_or_init(|| {
        let l = read_lines(fixtures_dir());
        assert!(l.len() > 100, "eslogger fixtures not found");
        l
    })
}

/// Fixture lines that parse as JSON objects (for structure-aware edits).
fn es_json() -> &'static [Json] {
    static J: OnceLock<Vec<Json>> = OnceLock::new();
    J.get_or_init(|| {
        es_lines()
            .iter()
            .filter_map(|l| serde_json::from_slice::<Json>(l).ok())
            .filter(Json::is_object)
            .collect()
    })
}

/// Exec events whose image is security(1) or a shell.
fn exec_json() -> &'static [Json] {
    static J: OnceLock<Vec<Json>> = OnceLock::new();
    J.get_or_init(|| {
        let j: Vec<Json> = es_json()
            .iter()
            .filter(|v| v.pointer("/event/exec/args").is_some())
            .cloned()
            .collect();
        assert!(!j.is_empty(), "no exec fixture");
        j
    })
}

/// Every unified-log fixture record (may be empty while none exist).
fn ul_lines() -> &'static [Vec<u8>] {
    static L: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    L.get_or_init(|| read_lines(fixtures_dir().join("unified_log")))
}

/// Strings an attacker can put in a path or argument.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z/ .'\"\\\\-]{0,48}",
        Just("\u{1b}[31mred\u{1b}[0m\u{1b}]0;title\u{7}".to_string()),
        Just("/Users/a/Library/Keychains/login.keychain-db\0.txt".to_string()),
        Just("\u{202e}gpj.exe".to_string()),
        (1usize..4096).prop_map(|n| "A".repeat(n)),
        (1usize..512).prop_map(|n| "/..".repeat(n)),
    ]
}

/// Extreme or wrongly typed JSON values for number and string leaves.
fn hostile_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        hostile_string().prop_map(Json::String),
        prop_oneof![
            Just(serde_json::json!(i64::MAX)),
            Just(serde_json::json!(i64::MIN)),
            Just(serde_json::json!(u64::MAX)),
            Just(serde_json::json!(-1)),
            Just(serde_json::json!(1e308)),
            Just(serde_json::json!(0.5)),
            Just(Json::Null),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            Just(serde_json::json!([1, 2, 3, 4, 5, 6, 7, 8])),
        ],
    ]
}

/// JSON pointers to every leaf (and every container) of a value.
fn pointers(v: &Json, at: String, out: &mut Vec<String>) {
    match v {
        Json::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Json::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

/// Replace the `which`-th node of a fixture object by `with`.
fn replace_node(v: &Json, which: Index, with: Json) -> Json {
    let mut v = v.clone();
    let mut ps = Vec::new();
    pointers(&v, String::new(), &mut ps);
    if !ps.is_empty() {
        let p = &ps[which.index(ps.len())];
        if let Some(n) = v.pointer_mut(p) {
            *n = with;
        }
    }
    v
}

/// Byte edits: (position, op, byte). Ops: replace, insert, delete, cut.
fn apply_edits(line: &[u8], edits: &[(Index, u8, u8)]) -> Vec<u8> {
    let mut l = line.to_vec();
    for (at, op, b) in edits {
        if l.is_empty() {
            l.push(*b);
            continue;
        }
        let i = at.index(l.len());
        match op % 4 {
            0 => l[i] = *b,
            1 => l.insert(i, *b),
            2 => {
                l.remove(i);
            }
            _ => l.truncate(i),
        }
    }
    l
}

fn edits() -> impl Strategy<Value = Vec<(Index, u8, u8)>> {
    prop::collection::vec((any::<Index>(), any::<u8>(), any::<u8>()), 0..6)
}

/// security(1) words, getopt flags and arbitrary words.
fn security_words() -> impl Strategy<Value = Vec<String>> {
    let vocab = prop_oneof![
        prop::sample::select(keychain_access_tables::security_cli::COMMANDS).prop_map(String::from),
        prop::sample::select(
            &[
                "-p",
                "-P",
                "-w",
                "-k",
                "-a",
                "-s",
                "-g",
                "-d",
                "-i",
                "-q",
                "-v",
                "--",
                "-",
                "-pw",
                "-ga",
                "-wa",
                "dump",
                "find",
                "e",
                "login.keychain",
                "-S",
                "-T",
                "-o",
                "-x",
            ][..]
        )
        .prop_map(String::from),
        hostile_string(),
    ];
    prop::collection::vec(vocab, 0..12)
}

proptest! {
    #![proptest_config(config(200))]

    /// Blind bytes (several lines, any line cap): the reader model, row
    /// hygiene and counters hold.
    #[test]
    fn es_line_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        with_scanner(|s| props::check_es_line(s, &data));
    }

    /// Real lines with bytes edited (truncation, stray bytes, broken UTF-8).
    #[test]
    fn es_line_edited_fixture(which in any::<Index>(), e in edits(), cap in any::<u8>()) {
        let lines = es_lines();
        let line = apply_edits(&lines[which.index(lines.len())], &e);
        let mut data = vec![cap | 0x80];
        if cap & 1 == 0 {
            data[0] = 0; // default cap
        }
        data.extend_from_slice(&line);
        with_scanner(|s| props::check_es_line(s, &data));
    }

    /// Well-formed events with one node replaced by a hostile value.
    #[test]
    fn es_line_hostile_json_leaf(which in any::<Index>(), node in any::<Index>(), v in hostile_value()) {
        let objs = es_json();
        let ev = replace_node(&objs[which.index(objs.len())], node, v);
        let data = [b"\0".as_slice(), ev.to_string().as_bytes()].concat();
        with_scanner(|s| props::check_es_line(s, &data));
    }

    /// An exec of security(1) with a password on its command line, directly
    /// or under `sh -c`, with hostile words around it: no row field holds
    /// the password, and control characters never reach a row.
    #[test]
    fn es_exec_never_leaks_a_password(
        which in any::<Index>(),
        secret in "[A-Za-z0-9!#%+,.:=@^_~]{4,24}",
        around in prop::collection::vec(hostile_string(), 0..4),
        shell in any::<bool>(),
    ) {
        let secret = format!("S3cr3t{secret}");
        let execs = exec_json();
        let mut ev = execs[which.index(execs.len())].clone();
        let mut args: Vec<String> = vec!["security".into(), "unlock-keychain".into(), "-p".into(), secret.clone(), "login.keychain".into()];
        args.extend(around.iter().filter(|w| !w.contains(&secret)).cloned());
        if shell {
            let cmd = args.iter().map(|a| props::shell_quote(a)).collect::<Vec<_>>().join(" ");
            args = vec!["/bin/sh".into(), "-c".into(), cmd];
        }
        if let Some(a) = ev.pointer_mut("/event/exec/args") {
            *a = serde_json::json!(args);
        }
        let (exe, sid) = if shell { ("/bin/sh", "com.apple.sh") } else { ("/usr/bin/security", "com.apple.security") };
        if let Some(p) = ev.pointer_mut("/event/exec/target/executable/path") {
            *p = Json::String(exe.into());
        }
        if let Some(p) = ev.pointer_mut("/event/exec/target/signing_id") {
            *p = Json::String(sid.into());
        }
        let line = ev.to_string();
        with_scanner(|s| {
            props::reset(s);
            let mut out = Vec::new();
            s.scan_line(line.as_bytes(), &mut out);
            for r in &out {
                props::check_row(r);
                for v in r.values() {
                    if let Value::Text(t) = v {
                        assert!(!t.contains(&secret), "password in a row: {t:?}");
                    }
                }
            }
            if !shell {
                assert!(!out.is_empty(), "unlock-keychain exec gave no row");
                assert!(out[0].cmdline.as_deref().is_some_and(|c| c.contains(REDACTED)));
            }
        });
    }

    /// Unified-log records: blind, structured, and real ones edited.
    #[test]
    fn unified_log_line(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        with_scanner(|s| props::check_unified_log_line(s, &data));
    }

    #[test]
    fn unified_log_structured(
        mode in any::<u8>(),
        fields in prop::collection::vec(hostile_string(), 0..6),
    ) {
        let mut data = vec![mode | 1];
        data.extend_from_slice(fields.join("\0").as_bytes());
        with_scanner(|s| props::check_unified_log_line(s, &data));
    }

    #[test]
    fn unified_log_edited_fixture(which in any::<Index>(), e in edits()) {
        let lines = ul_lines();
        if !lines.is_empty() {
            let mut data = vec![0u8];
            data.extend(apply_edits(&lines[which.index(lines.len())], &e));
            with_scanner(|s| props::check_unified_log_line(s, &data));
        }
    }

    /// security(1) argv: parser indices and redaction of located secrets.
    #[test]
    fn security_argv(mut argv in security_words(), prog in any::<bool>()) {
        if prog {
            argv.insert(0, "/usr/bin/security".into());
        }
        props::check_security_words(&argv);
    }

    /// The redactor on arbitrary argv and text; `unlock-keychain -p` values
    /// never survive.
    #[test]
    fn redact(argv in security_words(), wrapper in any::<u8>()) {
        let mut data = argv.join("\0").into_bytes();
        data.push(wrapper);
        props::check_redact(&data);
    }

    #[test]
    fn redact_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        props::check_redact(&data);
    }

    /// osquery contexts: arbitrary text and hostile values in a valid shape.
    #[test]
    fn constraint_context(data in prop::collection::vec(any::<u8>(), 0..512)) {
        props::check_constraint_context(&data);
    }

    #[test]
    fn constraint_context_hostile(sel in any::<u8>(), v in hostile_string()) {
        let mut data = vec![sel];
        data.extend_from_slice(v.as_bytes());
        props::check_constraint_context(&data);
    }
}

/// Scan one line with a fresh scanner.
fn scan_one(line: &str) -> Vec<keychain_access_tables::KeychainAccess> {
    let mut out = Vec::new();
    with_scanner(|s| {
        props::reset(s);
        s.scan_line(line.as_bytes(), &mut out);
    });
    out
}

/// Found by `es_exec_never_leaks_a_password` (first run): security(1) run
/// with argv whose verb is unknown — here a whole shell command line as one
/// word, as `security -c "unlock-keychain -p pw k"` would give — put that
/// word, unredacted and uncapped, into the row's `reason`
/// (classify.rs `security_finding`: "security with unknown verb `{w}`").
/// Fixed: classify.rs redacts, escapes and caps argv words quoted in `reason`.
#[test]
fn unknown_security_verb_is_redacted_and_capped_in_reason() {
    let mut ev = exec_json()[0].clone();
    let secret = "S3cr3tUnknownVerb";
    let word = format!("'security' 'unlock-keychain' '-p' '{secret}' 'login.keychain'");
    let long = "v".repeat(100_000);
    for verb_word in [word, long] {
        *ev.pointer_mut("/event/exec/args").unwrap() =
            serde_json::json!(["security", "-c", verb_word]);
        *ev.pointer_mut("/event/exec/target/executable/path")
            .unwrap() = Json::String("/usr/bin/security".into());
        let rows = scan_one(&ev.to_string());
        assert_eq!(rows.len(), 1);
        let reason = rows[0].reason.clone().unwrap_or_default();
        assert!(!reason.contains(secret), "password in reason: {reason}");
        assert!(reason.len() < 1024, "reason of {} bytes", reason.len());
    }
}

/// Inputs cargo fuzz found (fuzz/artifacts/<target>/crash-*), replayed
/// through the same properties.
#[test]
fn fuzz_regressions() {
    // One bug, found by two targets: a word two redaction rules call secret
    // (`--pass=x` given as the value of `unlock-keychain -p`) was redacted
    // twice, the second pass keeping part of the first marker
    // (`<redact<redacted>`). Fixed in redact.rs: `secret_words` keeps one
    // entry per word, the one keeping the fewest bytes.
    // redact: crash-831e39f55f21de23938305b32eb6725939ff2a3d
    props::check_redact(b"--pass=hra\x1desd lock-keychainchainbsudo\x00pnd try\x0aend dehin)ey-pa -ga Chsh\x02-udt answer@ \"\" with titlekkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk \"Appliord -ga \\\xde\xbc\x97\x89ome\\\" | awk \\\"{print $3}\\\"\"\x0ado shell scrhidden answer\x0a\x09\x09if ok(ith title \"Appliord -ga \\a\xde\xbc\x97\x89ome\\\" | awk \\\"{print $4}\\\"\"\x0ado shell scrt\x0a\x09end repeat\x0aend ited form of w\x0aset nf to o");
    // security_argv: crash-9b0032e7aa3cda4a7b2e5bfb82bac32180ac2eb8
    props::check_security_argv(b"c\x00'log\x00\x00\x00\x04\x00--pass\x00--\xaa\xaa\xaa\x0a\xff\xff\xff\xff\xff\xff--password\xff\xff\xff\xff\xff\xff\xff```````````````c\xdadhhai '\x01\x0e\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00d\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\xden");
    // security_argv: crash-8e37ef1724ba1b4dea09cda9abebd98b825ff337: a
    // property too strict, not a bug: the shell-text pass over a secret
    // word holding whitespace may redact part of its kept prefix as well
    // (`--secret\r--p<redacted>` -> `--secret\r<redacted><redacted>`).
    props::check_security_argv(b"cr\x00-gd\xff\xff\xff\xff\xff\xff\xff\xffnolsols\x8d\xc2\x9d\xc2\xc2\xc2\xff\xff\xff\xff\xde\x9d\xc2\x9d\x8d\xc2\x9d\xc2\xc2\xc2\xff\xde\x9d\xc2\x9d\x8d\xc2\x9d\xc2\xc2\xc2\x98\x9d\xff\xff\xff\xff\xc2\xc2\xff@\xff\x9d\x01f\x01tem\x0d\x0d--secret\x0d\x0d\x0d\x0d\x0d--passwd\x0dN\x00ret\x0d\x0d\x0d\x0det\x0d\x0d\x0d\x0d\x0d\x0d\x0d33333333333\x01\xff\xff\xff\x9d\x93\x00\x00\x00\x00:xp\x00\x00\x00\x00\x00\x00\xff\x00\x00t");
    // security_argv: crash-9134ace45dbac46f79c6ca52e783a35b5283e1c4: redacting inside a
    // quote the text never closes appended a closing quote (`'...<redacted>'`)
    // that was not there; fixed in redact.rs (`Tok::Word::unclosed`).
    props::check_security_argv(b"c\x00\xe1\x00-\xdc\xdc\xe1\x00-\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xd5A\xdc\xff\xff\xff\x09'\x0d1\x0d\x0d--secret\x0d\x0d\x0d\x0d\x0d\x0d\x0d--secret\x0d\x0d\x0d\x0d\x0d\x0dM\x0d\x0drpcha\x00\xe1\x00-\xdc\xdc\xe1\x00-\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xd5A\xdc\xff\xff\xff\x09'\x0d0\x0d\x0d-\x01\x00\x00\x0e-secret\x0d\x0d\x0d\x0d\x0d\x0dM\x0d\x0drpchai\x7fnbrs\x00-wa\xe1\x00i\x7fnbrs\x00-wa\xe1\x00-\xdc\xaf\xdc?\xdc\xdc\xd5A\xdc\xff\xff\xff\x09'\x0d1\x0d\"\x0d--secret\x0d\x0d\x0d\x0d\x0dM\x0d\x0drpchai\x7fnbrs\x00-wa\xe1\x00i\x7fnbrs\x00-wa\xe1\x00-\xdc\xdc\xdc?\xdc\xdc\xd5A\xdc\xff\xff\xff\x09'\x0d1\x0d\x0d--secret\x0d\x0d\x0d\x0d\x0d\x0dM\x0d\x0drpd\x00c-Lp n");
}

/// README "Resource bounds": a constraint value longer than 4 KiB is not
/// pushed into SQL (osquery filters the rows itself), one of 4 KiB is.
#[test]
fn constraint_values_over_4_kib_are_left_to_osquery() {
    use keychain_access_tables::constraints::{parse_context, MAX_EXPR_LEN};
    let ctx = |n: usize| {
        serde_json::json!({"constraints": [
            {"name": "path", "list": [{"op": 2, "expr": "p".repeat(n)}], "affinity": "TEXT"},
            {"name": "time", "list": [{"op": 32, "expr": "1"}], "affinity": "BIGINT"}
        ]})
        .to_string()
    };
    let c = parse_context(&ctx(MAX_EXPR_LEN)).unwrap();
    assert_eq!(c.len(), 2);
    let c = parse_context(&ctx(MAX_EXPR_LEN + 1)).unwrap();
    assert_eq!(c.len(), 1, "the long value is dropped, the other kept");
    assert_eq!(c[0].column, "time");
    // A 16 MB value is no different.
    assert_eq!(parse_context(&ctx(16 << 20)).unwrap().len(), 1);
}
