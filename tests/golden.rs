//! Golden fixtures through the real binary: `tests/fixtures/<case>.ndjson`
//! in, `tests/fixtures/<case>.expected.jsonl` out, plus the semantic
//! expectations of `tests/fixtures/cases.json` (which rows must exist, which
//! alert, which secrets must never appear).
//!
//! Regenerate the golden rows after a reviewed change with
//! `UPDATE_GOLDEN=1 cargo test --test golden`.

#[path = "support/common.rs"]
mod common;
use common::{bin, is_alert, matches_expectation};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

struct ScanOut {
    rows: Vec<Value>,
    stdout: String,
    stderr: String,
}

fn scan(inputs: &[&Path], extra: &[&str]) -> ScanOut {
    let mut cmd = Command::new(bin());
    cmd.arg("scan");
    for i in inputs {
        cmd.arg("--input").arg(i);
    }
    cmd.args(extra);
    let out = cmd.output().expect("run keychain-access");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "scan failed: {stderr}");
    let is_jsonl = !extra.contains(&"--format");
    let rows = stdout
        .lines()
        .filter(|_| is_jsonl)
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad jsonl line {l}: {e}")))
        .collect();
    ScanOut {
        rows,
        stdout,
        stderr,
    }
}

fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    let v: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    v["cases"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_case_meets_its_expectations() {
    let mut failures = Vec::new();
    let cases = manifest();
    assert!(
        cases.len() >= 20,
        "expected the full fixture set, found {}",
        cases.len()
    );
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let input = fixtures().join(format!("{name}.ndjson"));
        let out = scan(&[&input], &[]);
        for exp in case["expect"].as_array().into_iter().flatten() {
            let exp = exp.as_object().cloned().unwrap_or_default();
            if !out.rows.iter().any(|r| matches_expectation(r, &exp)) {
                failures.push(format!("{name}: no row matches {}", Value::Object(exp)));
            }
        }
        let alerts = out.rows.iter().filter(|r| is_alert(r)).count();
        match case["label"].as_str() {
            Some("malicious") if alerts == 0 => {
                failures.push(format!("{name}: malicious but no alert"))
            }
            Some("benign") if alerts > 0 => {
                let which: Vec<String> = out
                    .rows
                    .iter()
                    .filter(|r| is_alert(r))
                    .map(|r| format!("{} {} {}", r["action"], r["path"], r["reason"]))
                    .collect();
                failures.push(format!("{name}: benign but alerts: {which:?}"));
            }
            _ => {}
        }
        for s in case["secrets"].as_array().into_iter().flatten() {
            let s = s.as_str().unwrap_or("");
            if !s.is_empty() && (out.stdout.contains(s) || out.stderr.contains(s)) {
                failures.push(format!("{name}: secret {s:?} leaked into the output"));
            }
        }
        // The same rows through every output format carry no secret either.
        for fmt in ["csv", "table"] {
            let o = scan(&[&input], &["--format", fmt]);
            for s in case["secrets"].as_array().into_iter().flatten() {
                let s = s.as_str().unwrap_or("");
                if !s.is_empty() && o.stdout.contains(s) {
                    failures.push(format!("{name}: secret {s:?} leaked in --format {fmt}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_rows_match() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in manifest() {
        let name = case["name"].as_str().unwrap_or("?").to_string();
        let input = fixtures().join(format!("{name}.ndjson"));
        let golden = fixtures().join(format!("{name}.expected.jsonl"));
        let out = scan(&[&input], &[]);
        if update {
            std::fs::write(&golden, &out.stdout).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != out.stdout {
            let w: Vec<&str> = want.lines().collect();
            let g: Vec<&str> = out.stdout.lines().collect();
            let first = w
                .iter()
                .zip(&g)
                .position(|(a, b)| a != b)
                .unwrap_or(w.len().min(g.len()));
            failures.push(format!(
                "{name}: {} golden rows, {} produced; first difference at row {first}:\n  want {}\n  got  {}",
                w.len(),
                g.len(),
                w.get(first).unwrap_or(&"<none>"),
                g.get(first).unwrap_or(&"<none>")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatch (review, then UPDATE_GOLDEN=1):\n{}",
        failures.join("\n")
    );
}

#[test]
fn malformed_lines_are_counted_and_lose_nothing_else() {
    let case = manifest()
        .into_iter()
        .find(|c| c["name"] == "malformed")
        .expect("malformed case");
    let out = scan(&[&fixtures().join("malformed.ndjson")], &[]);
    let want = case["malformed_lines"].as_u64().expect("malformed_lines");
    let got = out
        .stderr
        .split("skipped ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("summary has a malformed count");
    // Unknown event types and lossy UTF-8 are counted separately.
    assert_eq!(got, want, "stderr: {}", out.stderr);
    let count = |label: &str| -> u64 {
        let idx = out
            .stderr
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {}", out.stderr));
        out.stderr[..idx]
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|s| !s.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        count(" unknown event types"),
        case["ignored_event_lines"].as_u64().unwrap()
    );
    assert_eq!(
        count(" lossy UTF-8 kept"),
        case["lossy_utf8_lines"].as_u64().unwrap()
    );
    assert!(
        out.rows.iter().filter(|r| is_alert(r)).count() >= 2,
        "valid rows around bad lines survive"
    );
}

#[test]
fn several_inputs_share_one_process_cache() {
    // Split a case so the parent's exec is in the first file and the
    // security exec in the second: the second file's row still knows its parent.
    let src = std::fs::read_to_string(fixtures().join("empire_python_sh_dump.ndjson")).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    let cut = lines
        .iter()
        .position(|l| l.contains("\"dump-keychain\"") && l.contains("\"exec\""))
        .expect("the security exec line");
    let dir = std::env::temp_dir().join(format!("kca-golden-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.ndjson"), dir.join("b.ndjson"));
    std::fs::write(&a, lines[..cut].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[cut..].join("\n") + "\n").unwrap();
    let together = scan(&[&a, &b], &[]);
    let alone = scan(&[&b], &[]);
    let row = |o: &ScanOut| {
        o.rows
            .iter()
            .find(|r| r["action"] == "dump_keychain")
            .cloned()
            .expect("dump row")
    };
    assert!(
        row(&together)["parent_path"].is_string(),
        "parent known across files"
    );
    assert!(
        row(&alone)["parent_path"].is_null(),
        "parent unknown when never seen"
    );
    assert_eq!(
        row(&together)["severity"],
        "high",
        "python ancestry raises severity"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tuning_flags_apply() {
    // codesign reads the signing keychain with ruby (fastlane) nearby: the
    // reader model keeps it medium/high, and the default tuning excuses it.
    let input = fixtures().join("benign_fastlane.ndjson");
    let default = scan(&[&input], &[]);
    let off = scan(&[&input], &["--no-tuning"]);
    let allowlisted = |o: &ScanOut| o.rows.iter().filter(|r| r["allowlisted"] == 1).count();
    assert!(allowlisted(&default) > 0);
    assert_eq!(allowlisted(&off), 0);
    assert!(
        off.rows.iter().any(is_alert),
        "without tuning the codesign keychain read alerts"
    );
    let dir = std::env::temp_dir().join(format!("kca-tuning-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version":1,"rules":[{"id":"x","reason":"r","actions":[]}]}"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["scan", "--input"])
        .arg(&input)
        .arg("--tuning")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("actions"));
}

#[test]
fn correlation_reaches_rows_printed_before_the_link_was_known() {
    // The ES exec row comes first; the unified-log prompt that links it
    // arrives later. `scan` streams rows through a spool, and the earlier
    // row must still carry the shared id in jsonl and csv.
    let input = fixtures().join("unified_log/synthetic_correlation_security_exec.ndjson");
    let out = scan(&[&input], &[]);
    let exec = out
        .rows
        .iter()
        .find(|r| r["source"] == "esf" && r["action"] == "find_generic_password")
        .expect("the security exec row");
    let id = exec["correlation_id"]
        .as_str()
        .expect("exec row correlated");
    assert!(out
        .rows
        .iter()
        .any(|r| r["source"] == "unified_log" && r["correlation_id"] == id));
    let csv = scan(&[&input], &["--format", "csv"]);
    assert!(csv.stdout.matches(id).count() >= 2, "{}", csv.stdout);
}
