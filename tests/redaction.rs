//! No secret in any output, through the real binary, on three corpora:
//! * a differential set generated here from Apple's option table
//!   (`tables/data/security-getopt.tsv`): every secret option of every verb
//!   a customer Mac runs, typed every way getopt accepts it (separate,
//!   attached, in a cluster, after global options, under a verb prefix) and
//!   the ways security(1) refuses (after `--`, after an argument, after an
//!   unknown option);
//! * `tests/redaction/real_world.json`: real tools and attacks, each cited;
//! * `tests/redaction/evasions.json`: what an attacker who read the README
//!   tries (`exec -a`, renamed copies, wrappers, inline code, the password
//!   passed on to a child);
//! * `tests/redaction/held_out.json`: a corpus built after the redactor, as
//!   a reviewer would: other tools' secret options and evasions, each cited.
//!
//! Every process of a case execs, then reads a login keychain (a row with
//! its command line and its parent's), and a last `security` child runs
//! under it. The binary runs `scan` in every format, `query`, and `pack
//! run` with `RUST_LOG=trace`; no secret may appear in stdout or stderr.
//! The guard tests show what is not scrubbed and why, and that scrubs are
//! counted and never touch classification columns.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_keychain-access");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// One process: (path, signing id, script, argv).
type Node = (String, Option<String>, Option<String>, Vec<String>);

struct Case {
    id: String,
    secrets: Vec<String>,
    /// Parent first.
    tree: Vec<Node>,
}

fn load(file: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(root().join("tests/redaction").join(file)).expect("corpus");
    let doc: Value = serde_json::from_str(&text).expect("corpus JSON");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            assert!(
                c["source"].as_str().is_some_and(|s| !s.is_empty()),
                "{c} has no source"
            );
            Case {
                id: c["id"].as_str().unwrap().to_string(),
                secrets: serde_json::from_value(c["secrets"].clone()).unwrap(),
                tree: c["tree"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| {
                        (
                            n["path"].as_str().unwrap().to_string(),
                            n["signing_id"].as_str().map(String::from),
                            n["script"].as_str().map(String::from),
                            serde_json::from_value(n["argv"].clone()).unwrap(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn proc_json(path: &str, sid: Option<&str>, pid: i64, ppid: i64) -> Value {
    let apple = path.starts_with("/usr/bin/")
        || path.starts_with("/bin/")
        || path.starts_with("/usr/sbin/")
        || sid.is_some_and(|s| s.starts_with("com.apple."));
    let default_sid = format!(
        "com.apple.{}",
        path.rsplit('/')
            .next()
            .unwrap_or("x")
            .trim_start_matches('.')
    );
    json!({
        "audit_token": [501, 501, 20, 501, 20, pid, 100000, pid * 10],
        "parent_audit_token": [501, 501, 20, 501, 20, ppid, 100000, ppid * 10],
        "ppid": ppid, "original_ppid": ppid, "group_id": pid, "session_id": pid,
        "is_platform_binary": apple, "is_es_client": false,
        "signing_id": sid.map(String::from).unwrap_or(default_sid),
        "team_id": null, "codesigning_flags": if apple { 570522385 } else { 0 },
        "cdhash": "0123456789ABCDEF0123456789ABCDEF01234567",
        "executable": {"path": path, "path_truncated": false}, "tty": null,
        "start_time": "2025-10-14T09:12:44.204664Z"
    })
}

/// eslogger lines for a case: each process execs and reads a keychain;
/// then a `security` child of the last one.
fn capture(cases: &[Case]) -> String {
    let mut lines = Vec::new();
    let mut seq = 0u64;
    let mut line = |process: Value, event: Value, ty: u32| {
        seq += 1;
        lines.push(
            json!({
                "global_seq_num": seq, "mach_time": seq, "time": "2025-10-14T09:12:44.205440492Z",
                "version": 8, "event_type": ty, "action_type": 1,
                "process": process, "event": event,
            })
            .to_string(),
        );
    };
    for (n, case) in cases.iter().enumerate() {
        let base = 1000 + 100 * n as i64;
        let mut ppid = base;
        let mut tree = case.tree.clone();
        tree.push((
            "/usr/bin/security".into(),
            None,
            None,
            vec![
                "security".into(),
                "find-generic-password".into(),
                "-s".into(),
                "probe".into(),
            ],
        ));
        let mut procs = Vec::new();
        let mut parent_path = "/bin/zsh".to_string();
        for (i, (path, sid, script, argv)) in tree.iter().enumerate() {
            let pid = base + 1 + i as i64;
            // As Endpoint Security reports an exec: the message's process is
            // the pre-exec image, a child forked from the parent and still
            // running the parent's image (same pid as the target, an older
            // pidversion).
            let mut parent = proc_json(&parent_path, None, pid, ppid);
            parent["audit_token"][7] = json!(pid * 10 - 1);
            let target = proc_json(path, sid.as_deref(), pid, ppid);
            parent_path = path.clone();
            line(
                parent,
                json!({"exec": {"target": target.clone(), "args": argv,
                    "script": script.as_ref().map(|s| json!({"path": s, "path_truncated": false})),
                    "cwd": {"path": "/Users/alice", "path_truncated": false}}}),
                9,
            );
            procs.push(target);
            ppid = pid;
        }
        // Then each process reads a keychain: rows made after the whole
        // tree is known (a row made before a secret is seen cannot be
        // recalled: see `rows_made_before_the_secret_is_seen_keep_it`).
        for target in procs {
            line(
                target,
                json!({"open": {"fflag": 1, "file": {"path": "/Users/alice/Library/Keychains/login.keychain-db", "path_truncated": false}}}),
                10,
            );
        }
    }
    lines.join("\n") + "\n"
}

/// Apple's table, as the test reads it (verb, option string, secrets).
fn apple_table() -> Vec<(String, String, Vec<char>)> {
    let text = std::fs::read_to_string(root().join("tables/data/security-getopt.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let customer = f[4] == "all" || f[4].starts_with("Apple silicon");
            let secrets: Vec<char> = f[3].chars().filter(|c| *c != ' ').collect();
            (customer && !secrets.is_empty()).then(|| (f[0].into(), f[2].into(), secrets))
        })
        .collect()
}

fn differential() -> Vec<Case> {
    let table = apple_table();
    let verbs: Vec<&str> = table.iter().map(|t| t.0.as_str()).collect();
    let mut cases = Vec::new();
    for (verb, optstring, secrets) in &table {
        let flags: Vec<char> = optstring
            .char_indices()
            .filter(|(i, c)| *c != ':' && optstring.as_bytes().get(i + 1) != Some(&b':'))
            .map(|(_, c)| c)
            .collect();
        // The shortest prefix that resolves to this verb (first match wins
        // in table order, as security.c's strncmp loop).
        let prefix = (1..=verb.len())
            .map(|n| &verb[..n])
            .find(|p| verbs.iter().find(|v| v.starts_with(p)) == Some(&verb.as_str()))
            .unwrap_or(verb)
            .to_string();
        for s in secrets {
            let lead: Vec<String> = if verb == "import" {
                vec!["id.p12".into()]
            } else {
                vec![]
            };
            for (form, n) in [
                "separate",
                "attached",
                "cluster",
                "global",
                "prefix",
                "dashdash",
                "after-arg",
                "unknown-first",
            ]
            .iter()
            .zip(0..)
            {
                let secret = format!("Dx{}{}{n}-s3cr!t", verb.len(), s);
                let mut argv = vec!["security".to_string()];
                let mut verb_word = verb.clone();
                let mut opts: Vec<String> = Vec::new();
                match *form {
                    "separate" => opts.extend([format!("-{s}"), secret.clone()]),
                    "attached" => opts.push(format!("-{s}{secret}")),
                    "cluster" => {
                        let f: String = flags.iter().take(2).collect();
                        opts.extend([format!("-{f}{s}"), secret.clone()]);
                    }
                    "global" => {
                        argv.extend(["-q".to_string(), "-v".to_string()]);
                        opts.extend([format!("-{s}"), secret.clone()]);
                    }
                    "prefix" => {
                        verb_word = prefix.clone();
                        opts.extend([format!("-{s}"), secret.clone()]);
                    }
                    "dashdash" => opts.extend(["--".into(), format!("-{s}"), secret.clone()]),
                    "after-arg" => {
                        opts.extend(["some.keychain".into(), format!("-{s}"), secret.clone()])
                    }
                    _ => opts.extend(["-9".into(), format!("-{s}"), secret.clone()]),
                }
                argv.push(verb_word);
                argv.extend(lead.iter().cloned());
                argv.extend(opts);
                argv.push("x.keychain".into());
                cases.push(Case {
                    id: format!("{verb} -{s} {form}"),
                    secrets: vec![secret],
                    tree: vec![("/usr/bin/security".into(), None, None, argv)],
                });
            }
        }
    }
    cases
}

/// Every output the binary can make of a capture, with trace logging.
fn all_outputs(capture: &Path) -> Vec<(String, String)> {
    let input = capture.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["scan", "--input", input, "--format", "jsonl"],
        vec!["scan", "--input", input, "--format", "csv"],
        vec![
            "scan",
            "--input",
            input,
            "--format",
            "table",
            "--all-columns",
        ],
        vec![
            "query",
            "--input",
            input,
            "SELECT * FROM keychain_access_events",
        ],
        vec![
            "pack",
            "run",
            "--input",
            input,
            "--now",
            "1760433164",
            "packs/keychain-access.conf",
        ],
    ];
    runs.iter()
        .map(|args| {
            let out = Command::new(BIN)
                .args(args)
                .current_dir(root())
                .env("RUST_LOG", "trace")
                .output()
                .expect("run keychain-access");
            assert!(out.status.success(), "{args:?}: {out:?}");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            (args.join(" "), text)
        })
        .collect()
}

/// The forms a secret can take in an output: as is, JSON-escaped, and with
/// CSV's doubled quotes.
fn leaks(text: &str, secret: &str) -> bool {
    let json = serde_json::to_string(secret).unwrap();
    let json = json.trim_matches('"');
    text.contains(secret) || text.contains(json) || text.contains(&secret.replace('"', "\"\""))
}

fn check_corpus(name: &str, cases: &[Case]) -> usize {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redaction-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.jsonl");
    std::fs::write(&file, capture(cases)).unwrap();
    let outputs = all_outputs(&file);
    let mut failures = Vec::new();
    let mut leaked = 0;
    let mut checked = 0;
    for case in cases {
        for s in &case.secrets {
            checked += 1;
            let before = failures.len();
            for (run, text) in &outputs {
                if leaks(text, s) {
                    failures.push(format!("{}: `{s}` in `{run}`", case.id));
                }
            }
            leaked += usize::from(failures.len() > before);
        }
    }
    // The rows are there: the corpus is not redacted by dropping it.
    let jsonl = &outputs[0].1;
    let rows = jsonl.lines().filter(|l| l.starts_with('{')).count();
    assert!(rows >= cases.len() * 2, "{name}: only {rows} rows");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{name}: {leaked} of {checked} secrets leaked:\n{}",
        failures.join("\n")
    );
    checked
}

#[test]
fn differential_corpus_from_apples_option_table_leaks_nothing() {
    let cases = differential();
    // 12 secret options across 10 verbs, 8 forms each.
    assert!(cases.len() >= 90, "{}", cases.len());
    let n = check_corpus("differential", &cases);
    println!("differential: {n} secrets, 0 leaked");
}

#[test]
fn real_world_corpus_leaks_nothing() {
    let n = check_corpus("real-world", &load("real_world.json"));
    println!("real world: {n} secrets, 0 leaked");
}

/// Held out while the redactor was written: other tools' secret options,
/// secrets inside headers, URLs, query strings and encoded commands, and
/// argv tricks (wrappers, shell quoting, `eval`, IFS), each citing its source.
#[test]
fn held_out_corpus_leaks_nothing() {
    let n = check_corpus("held-out", &load("held_out.json"));
    println!("held out: {n} secrets, 0 leaked");
}

#[test]
fn evasion_corpus_leaks_nothing() {
    let n = check_corpus("evasions", &load("evasions.json"));
    println!("evasions: {n} secrets, 0 leaked");
}

fn scan_rows(cases: &[Case], name: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redaction-guard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.jsonl");
    std::fs::write(&file, capture(cases)).unwrap();
    let input = file.to_str().unwrap();
    let mut args = vec!["scan", "--input", input];
    args.extend(extra);
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(out.status.success());
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status = Command::new(BIN)
        .args([
            "query",
            "--input",
            input,
            "SELECT secrets_scrubbed FROM keychain_access_status",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (rows, String::from_utf8_lossy(&status.stdout).into_owned())
}

fn case(tree: &[(&str, &[&str])]) -> Case {
    Case {
        id: "guard".into(),
        secrets: vec![],
        tree: tree
            .iter()
            .map(|(p, a)| {
                (
                    p.to_string(),
                    None,
                    None,
                    a.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect(),
    }
}

fn unlock_under_script() -> Case {
    case(&[
        (
            "/bin/bash",
            &["/bin/bash", "/Users/alice/bin/ci.sh", "Build-Kc-2024"],
        ),
        (
            "/usr/bin/security",
            &[
                "security",
                "unlock-keychain",
                "-p",
                "Build-Kc-2024",
                "Build-Kc-2024",
            ],
        ),
    ])
}

/// A secret the child's parse finds is scrubbed from the parent's command
/// line in later rows, counted; the classification columns keep what the
/// classifier used, even when the secret is the keychain's name.
#[test]
fn scrubs_are_counted_and_never_touch_classification_columns() {
    let (rows, status) = scan_rows(&[unlock_under_script()], "columns", &[]);
    let unlock = rows
        .iter()
        .find(|r| r["action"] == "unlock_keychain")
        .expect("unlock row");
    assert_eq!(unlock["target_path"], "Build-Kc-2024", "{unlock}");
    assert_eq!(unlock["verb"], "unlock-keychain");
    assert_eq!(
        unlock["cmdline"],
        "security unlock-keychain -p <redacted> <redacted>"
    );
    assert_eq!(
        unlock["parent_cmdline"],
        "/bin/bash /Users/alice/bin/ci.sh <redacted>"
    );
    // The child `security` row and the keychain reads of both processes
    // show the script's command line again, scrubbed each time.
    let scrubbed: i64 = serde_json::from_str::<Value>(status.trim())
        .ok()
        .and_then(|v| v[0]["secrets_scrubbed"].as_i64())
        .or_else(|| {
            status.lines().find_map(|l| {
                l.split(|c: char| !c.is_ascii_digit())
                    .find_map(|w| w.parse().ok())
            })
        })
        .expect("status row");
    assert!(scrubbed >= 3, "scrubs counted: {status}");
    // The count is in the scan's stderr summary and the pack's health rows.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redaction-count-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.jsonl");
    std::fs::write(&file, capture(&[unlock_under_script()])).unwrap();
    let input = file.to_str().unwrap();
    let scan = Command::new(BIN)
        .args(["scan", "--input", input])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&scan.stderr);
    assert!(
        stderr.contains(&format!(
            "{scrubbed} secrets scrubbed from other rows of their process tree"
        )),
        "{stderr}"
    );
    let pack = Command::new(BIN)
        .args([
            "pack",
            "run",
            "--input",
            input,
            "--now",
            "1760433164",
            "packs/keychain-access.conf",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let health: Vec<Value> = String::from_utf8_lossy(&pack.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| {
            r["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("keychain_access_health"))
        })
        .collect();
    assert!(!health.is_empty(), "{pack:?}");
    assert!(
        health
            .iter()
            .any(|r| r["columns"]["secrets_scrubbed"].as_str() == Some(&*scrubbed.to_string())),
        "{health:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    for r in &rows {
        for col in ["cmdline", "parent_cmdline", "message"] {
            assert!(!r[col].to_string().contains("Build-Kc-2024"), "{r}");
        }
    }
}

/// Short values and common words are redacted where they were recognised,
/// never scrubbed elsewhere: a "password" of `login` must not erase the
/// word from other command lines.
#[test]
fn short_and_common_words_are_not_scrubbed_elsewhere() {
    let c = case(&[
        (
            "/bin/bash",
            &["/bin/bash", "/Users/alice/bin/x.sh", "login", "abc12"],
        ),
        (
            "/usr/bin/security",
            &["security", "unlock-keychain", "-p", "login", "a.keychain"],
        ),
        (
            "/usr/bin/security",
            &["security", "unlock-keychain", "-p", "abc12", "a.keychain"],
        ),
    ]);
    let (rows, _) = scan_rows(&[c], "common", &[]);
    let unlocks: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "unlock_keychain")
        .collect();
    assert_eq!(unlocks.len(), 2);
    assert_eq!(
        unlocks[0]["cmdline"],
        "security unlock-keychain -p <redacted> a.keychain"
    );
    assert_eq!(
        unlocks[0]["parent_cmdline"],
        "/bin/bash /Users/alice/bin/x.sh login abc12"
    );
}

/// Jamf's parameters are secrets by default; a tuning file can turn the
/// rule off (or point it at another tool).
#[test]
fn jamf_parameters_are_configurable() {
    let cases = load("real_world.json");
    let jamf: Vec<Case> = cases
        .into_iter()
        .filter(|c| c.id == "jamf-policy-script-parameters")
        .map(|mut c| {
            // Without the child that reveals them, only the Jamf rule knows.
            c.tree.pop();
            c
        })
        .collect();
    let (rows, _) = scan_rows(&jamf, "jamf-default", &[]);
    let all: String = rows.iter().map(|r| r.to_string()).collect();
    assert!(!all.contains("J4mfAdminPw!"), "{all}");
    assert!(all.contains("MAC-0042"), "parameters 1-3 stay: {all}");
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("jamf-off-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tuning = dir.join("tuning.json");
    std::fs::write(
        &tuning,
        r#"{"version":1,"redaction":{"script_parameters":[]}}"#,
    )
    .unwrap();
    let (rows, _) = scan_rows(&jamf, "jamf-off", &["--tuning", tuning.to_str().unwrap()]);
    let all: String = rows.iter().map(|r| r.to_string()).collect();
    assert!(
        all.contains("J4mfAdminPw!"),
        "rule off: parameters are shown"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The documented limit: a row made before the secret was seen keeps it
/// (it may already be stored or sent); every row after is scrubbed.
#[test]
fn rows_made_before_the_secret_is_seen_keep_it() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redaction-order-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = proc_json("/bin/bash", None, 50, 40);
    let child = proc_json("/usr/bin/security", None, 51, 50);
    // The exec's process: pid 51 forked from the script, before its exec.
    let mut forked = proc_json("/bin/bash", None, 51, 50);
    forked["audit_token"][7] = json!(509);
    let shell = proc_json("/bin/zsh", None, 40, 1);
    let open = json!({"open": {"fflag": 1, "file": {"path": "/Users/alice/Library/Keychains/login.keychain-db", "path_truncated": false}}});
    let ev = |seq: u64, p: &Value, e: Value, ty: u32| {
        json!({"global_seq_num": seq, "mach_time": seq, "time": "2025-10-14T09:12:44.205440492Z",
            "version": 8, "event_type": ty, "action_type": 1, "process": p, "event": e})
        .to_string()
    };
    let lines = [
        ev(
            1,
            &shell,
            json!({"exec": {"target": script, "args": ["/bin/bash", "/Users/alice/bin/u.sh", "Late-Secret-9"], "script": null}}),
            9,
        ),
        ev(2, &script, open.clone(), 10),
        ev(
            3,
            &forked,
            json!({"exec": {"target": child, "args": ["security", "unlock-keychain", "-p", "Late-Secret-9", "k"], "script": null}}),
            9,
        ),
        ev(4, &script, open, 10),
    ];
    let file = dir.join("c.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = Command::new(BIN)
        .args(["scan", "--input", file.to_str().unwrap()])
        .output()
        .unwrap();
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reads: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "keychain_read")
        .collect();
    assert_eq!(reads.len(), 2);
    assert_eq!(
        reads[0]["cmdline"],
        "/bin/bash /Users/alice/bin/u.sh Late-Secret-9"
    );
    assert_eq!(
        reads[1]["cmdline"],
        "/bin/bash /Users/alice/bin/u.sh <redacted>"
    );
    let unlock = rows
        .iter()
        .find(|r| r["action"] == "unlock_keychain")
        .unwrap();
    assert_eq!(
        unlock["parent_cmdline"],
        "/bin/bash /Users/alice/bin/u.sh <redacted>"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Malformed events can carry a password in any field; parser errors are
/// logged (at debug) without the values serde quotes.
#[test]
fn malformed_lines_log_no_values() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redaction-malformed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = proc_json("/bin/zsh", None, 60, 1);
    let bad_exec = json!({"global_seq_num": 1, "mach_time": 1, "time": "2025-10-14T09:12:44Z",
        "version": 8, "event_type": 9, "action_type": 1, "process": p,
        "event": {"exec": {"target": p, "args": "security unlock-keychain -p Malf0rmed-Secret k"}}});
    let bad_time = json!({"global_seq_num": 2, "mach_time": "Malf0rmed-Secret2", "time": "x",
        "version": 8, "event_type": 9, "action_type": 1, "process": p,
        "event": {"exec": {"target": p, "args": ["security", "unlock-keychain"]}}});
    let unified =
        std::fs::read_to_string(root().join("tests/fixtures/unified_log/authd_rights.ndjson"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap()
            .replacen(
                "\"threadID\":7001008",
                "\"threadID\":\"Malf0rmed-Secret3\"",
                1,
            );
    let file = dir.join("c.jsonl");
    std::fs::write(&file, format!("{bad_exec}\n{bad_time}\n{unified}\n")).unwrap();
    let out = Command::new(BIN)
        .args(["scan", "--input", file.to_str().unwrap()])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(all.contains("malformed"), "the errors are logged: {all}");
    assert!(!all.contains("Malf0rmed"), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A unified-log row about a client whose tree knows a secret has it
/// scrubbed from `message` (and the client's command lines).
#[test]
fn unified_log_message_is_scrubbed_by_the_clients_tree() {
    let c = case(&[
        (
            "/bin/bash",
            &["/bin/bash", "/Users/alice/bin/ci.sh", "MsgScrub-Pw1"],
        ),
        (
            "/usr/bin/security",
            &[
                "security",
                "unlock-keychain",
                "-p",
                "MsgScrub-Pw1",
                "login.keychain",
            ],
        ),
    ]);
    let mut text = capture(&[c]);
    let record =
        std::fs::read_to_string(root().join("tests/fixtures/unified_log/authd_rights.ndjson"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap()
            .to_string();
    let mut rec: Value = serde_json::from_str(&record).unwrap();
    // The security(1) exec of the case is pid 1002, its bash parent 1001 (see
    // `capture`). authd names the authorization's creator, the actor of the
    // row; the secret sits in the message's free text after the pattern.
    rec["eventMessage"] = json!("Succeeded authorizing right 'system.keychain.modify' by client '/usr/bin/security' [1002] for authorization created by '/bin/bash' [1001] (3,0) MsgScrub-Pw1 (engine 406)");
    text.push_str(&format!("{rec}\n"));
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("redaction-ul-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.jsonl");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(BIN)
        .args(["scan", "--input", file.to_str().unwrap()])
        .output()
        .unwrap();
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ul = rows
        .iter()
        .find(|r| r["source"] == "unified_log")
        .expect("unified-log row");
    assert_eq!(ul["pid"], 1001, "{ul}");
    let msg = ul["message"].as_str().unwrap();
    assert!(msg.contains("(3,0) <redacted> (engine"), "{msg}");
    assert!(!ul.to_string().contains("MsgScrub-Pw1"), "{ul}");
    let _ = std::fs::remove_dir_all(&dir);
}
