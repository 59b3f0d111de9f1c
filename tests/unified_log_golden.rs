//! Real unified-log lines through the real binary: the cases of
//! `tests/fixtures/unified_log/real_lines.json` (messages verbatim from
//! public captures, grouped by macOS release family, each with its source),
//! generated into one ndjson file per family by
//! `tests/fixtures/unified_log/gen_unified_log_fixtures.py`, scanned with
//! `keychain-access scan`, and checked two ways: each case's expectation (the
//! row it must make, or the counter it must raise), and the family's golden
//! rows (`<file>.expected.jsonl`; regenerate after review with
//! `UPDATE_GOLDEN=1 cargo test --test unified_log_golden`).

use keychain_access_tables::unified_log::parse_log_timestamp;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/unified_log")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dir().join("real_lines.json")).expect("real_lines.json");
    serde_json::from_str(&text).expect("real_lines.json is JSON")
}

fn file_of(family: &Value) -> PathBuf {
    let verbatim = family["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["verbatim"] == true);
    let prefix = if verbatim { "real" } else { "synthetic" };
    dir().join(format!(
        "{prefix}_{}.ndjson",
        family["name"].as_str().unwrap()
    ))
}

struct Scan {
    rows: Vec<Value>,
    stdout: String,
    stderr: String,
}

fn scan(input: &Path) -> Scan {
    let out = Command::new(env!("CARGO_BIN_EXE_keychain-access"))
        .args(["scan", "--input"])
        .arg(input)
        .output()
        .expect("run keychain-access");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "scan {}: {stderr}", input.display());
    let rows = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad jsonl {l}: {e}")))
        .collect();
    Scan {
        rows,
        stdout,
        stderr,
    }
}

/// The same records through the library, for the counters (the CLI's
/// summary does not name every one).
fn counters(input: &Path) -> keychain_access_tables::ScanStats {
    let data = std::fs::read(input).unwrap();
    let mut s =
        keychain_access_tables::Scanner::new(keychain_access_tables::ScanOptions::default());
    let mut rows = Vec::new();
    s.scan_reader_into(std::io::BufReader::new(&data[..]), &mut rows)
        .unwrap();
    s.finish_stats()
}

fn counter(st: &keychain_access_tables::ScanStats, name: &str) -> u64 {
    match name {
        "unified_log_ignored" => st.unified_log_ignored,
        "unified_log_unmatched" => st.unified_log_unmatched,
        "unified_log_other_events" => st.unified_log_other_events,
        "unified_log_activity_repeats" => st.unified_log_activity_repeats,
        other => panic!("unknown counter {other}"),
    }
}

#[test]
fn every_family_and_source_is_named() {
    let m = manifest();
    let families = m["families"].as_array().unwrap();
    let names: Vec<&str> = families.iter().filter_map(|f| f["name"].as_str()).collect();
    for want in ["macos_10_12", "macos_10_14", "macos_15", "macos_26"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let mut real = 0;
    for f in families {
        for c in f["cases"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            assert!(
                c["source"].as_str().is_some_and(|s| s.len() > 20),
                "{id} cites no source"
            );
            assert!(c["verbatim"].is_boolean(), "{id}: verbatim or not?");
            assert!(c["message"].is_string(), "{id}");
            real += usize::from(c["verbatim"] == true);
        }
    }
    assert!(real >= 35, "{real} real lines");
}

#[test]
fn real_lines_meet_their_expectations() {
    let m = manifest();
    let mut failures = Vec::new();
    for family in m["families"].as_array().unwrap() {
        let input = file_of(family);
        let out = scan(&input);
        let stats = counters(&input);
        // The generated file holds each message verbatim, in order.
        let text = std::fs::read_to_string(&input).unwrap();
        let messages: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["eventMessage"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let cases = family["cases"].as_array().unwrap();
        let wanted: Vec<&str> = cases
            .iter()
            .map(|c| c["message"].as_str().unwrap())
            .collect();
        if messages != wanted {
            failures.push(format!(
                "{}: regenerate with gen_unified_log_fixtures.py",
                input.display()
            ));
            continue;
        }
        let mut expected_counts: std::collections::HashMap<String, u64> = Default::default();
        let mut expected_rows = 0;
        for c in cases {
            let id = c["id"].as_str().unwrap();
            let msg = c["message"].as_str().unwrap();
            let exp = &c["expect"];
            // A case's row: its message at its time (the same text recurs
            // in other cases, e.g. logged by an impostor).
            let time = parse_log_timestamp(c["record"]["time"].as_str().unwrap());
            let mine: Vec<&Value> = out
                .rows
                .iter()
                .filter(|r| r["message"].as_str() == Some(msg) && r["time"].as_i64() == time)
                .collect();
            if let Some(counted) = exp["counted"].as_str() {
                *expected_counts.entry(counted.to_string()).or_default() += 1;
                let repeat = counted == "unified_log_activity_repeats";
                if !repeat && !mine.is_empty() {
                    failures.push(format!("{id}: expected no row ({counted}), got {mine:?}"));
                }
                continue;
            }
            expected_rows += 1;
            let Some(row) = mine.iter().find(|r| {
                exp["row"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| r.get(k) == Some(v))
            }) else {
                failures.push(format!("{id}: no row matches {} in {mine:?}", exp["row"]));
                continue;
            };
            let reason = row["reason"].as_str().unwrap_or("");
            for part in exp["reason_contains"].as_array().into_iter().flatten() {
                let part = part.as_str().unwrap();
                if !reason.contains(part) {
                    failures.push(format!("{id}: reason lacks {part:?}: {reason}"));
                }
            }
            assert_eq!(row["source"], "unified_log");
            assert_eq!(row["technique"], "T1555.001");
        }
        if out.rows.len() != expected_rows {
            failures.push(format!(
                "{}: {} rows, {} expected",
                input.display(),
                out.rows.len(),
                expected_rows
            ));
        }
        for (name, n) in expected_counts {
            let got = counter(&stats, &name);
            if got != n {
                failures.push(format!("{}: {name} = {got}, expected {n}", input.display()));
            }
        }
        assert!(out.stderr.contains("rows"), "{}", out.stderr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn real_lines_golden_rows() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for family in manifest()["families"].as_array().unwrap() {
        let input = file_of(family);
        let golden = input.with_extension("expected.jsonl");
        let out = scan(&input);
        if update {
            std::fs::write(&golden, &out.stdout).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != out.stdout {
            failures.push(format!(
                "{}: golden rows differ (review, then UPDATE_GOLDEN=1)",
                golden.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A Security API activity of the `security` process shares its
/// `correlation_id` with the Endpoint Security exec of the same process,
/// through the binary.
#[test]
fn activity_row_is_correlated_with_the_exec_of_its_process() {
    let out = scan(&dir().join("synthetic_correlation_security_exec.ndjson"));
    let exec = out
        .rows
        .iter()
        .find(|r| r["source"] == "esf" && r["pid"] == 48141)
        .expect("the security exec row");
    let activity = out
        .rows
        .iter()
        .find(|r| r["action"] == "keychain_api")
        .expect("the activity row");
    assert_eq!(activity["pid"], 48141);
    assert_eq!(activity["path"], "/usr/bin/security");
    assert_eq!(activity["message"], "SecKeychainFindGenericPassword");
    assert_eq!(
        activity["cmdline"], "security find-generic-password -ga Chrome",
        "enriched from the exec"
    );
    assert!(exec["correlation_id"].is_string(), "{exec}");
    assert_eq!(activity["correlation_id"], exec["correlation_id"]);
    // Another client's prompt in the same second is not linked.
    let slack = out
        .rows
        .iter()
        .find(|r| r["pid"] == 3120)
        .expect("the Slack prompt");
    assert!(slack["correlation_id"].is_null());
}

/// An unsigned program (known unsigned only from the eslogger exec in the
/// same stream) prompted for Chrome's Safe Storage key, then allowed
/// always: the prompt is `medium`, the answer `high`, both name the item.
#[test]
fn always_allow_for_an_unsigned_client_is_an_alert() {
    let out = scan(&dir().join("synthetic_unsigned_client_always_allow.ndjson"));
    assert_eq!(out.rows.len(), 2, "{}", out.stdout);
    let (prompt, answer) = (&out.rows[0], &out.rows[1]);
    for r in [prompt, answer] {
        assert_eq!(r["pid"], 7001);
        assert_eq!(r["path"], "/Users/alice/bin/sync-helper");
        assert_eq!(r["signer"], "unsigned", "enriched from the exec");
        assert_eq!(r["allowlisted"], 0);
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains("item `Chrome Safe Storage`"), "{reason}");
        assert!(reason.contains("client unsigned"), "{reason}");
    }
    assert_eq!(prompt["action"], "keychain_prompt");
    assert_eq!(prompt["severity"], "medium");
    assert_eq!(answer["action"], "keychain_prompt_answer");
    assert_eq!(answer["severity"], "high");
    assert!(out.stderr.contains("2 alerts"), "{}", out.stderr);
}
