//! `kill -9` of the forwarder while a batch is in flight, repeatedly, with
//! appends while it runs and rotation while it is down: every line arrives,
//! and the only duplicates are lines of the batches in flight at the kills.
//!
//! The forwarder runs in a child process: this test binary re-invoked with
//! `--exact forward_child` and `KA_SENTINEL_FORWARD_CHILD=<config>|<results>`.

mod common;

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use keychain_access_sentinel::{forward, SentinelConfig};
use serde_json::json;

const CHILD_ENV: &str = "KA_SENTINEL_FORWARD_CHILD";

/// The child's body; a no-op when run as an ordinary test.
#[test]
fn forward_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (cfg, results) = spec.split_once('|').expect("spec");
    let cfg = SentinelConfig::load(Path::new(cfg)).expect("config");
    // Runs until killed.
    forward(&cfg, Path::new(results), Arc::new(AtomicBool::new(false))).expect("forward");
}

fn spawn_child(cfg: &Path, results: &Path) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([
            "forward_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", cfg.display(), results.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

fn append(path: &Path, range: std::ops::Range<usize>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for i in range {
        f.write_all(format!("{}\n", line(i, 50)).as_bytes())
            .expect("append");
    }
}

#[test]
fn kill_9_mid_batch_loses_nothing_and_duplicates_at_most_the_batch_in_flight() {
    let mock = Mock::start();
    mock.state().delay = Duration::from_millis(250);
    let dir = TempDir::new("kill9");
    let cfg_file = dir.path().join("extension.json");
    let section = section(&mock, dir.path(), json!({"batch_max_bytes": 3000}));
    std::fs::write(&cfg_file, json!({ "sentinel": section }).to_string()).expect("config");
    let results = dir.path().join("osqueryd.results.log");
    let mut next = 0;
    append(&results, next..next + 200);
    next += 200;

    let mut in_flight_at_kill: Vec<Vec<String>> = Vec::new();
    for cycle in 0..4 {
        let mut child = spawn_child(&cfg_file, &results);
        let start_count = mock.ids().len();
        // Lines appended while it runs, a few at a time.
        for _ in 0..6 {
            append(&results, next..next + 5);
            next += 5;
            std::thread::sleep(Duration::from_millis(20));
        }
        let ready = wait_until(20, || {
            let st = mock.state();
            st.received.len() >= start_count + 20 && st.in_flight >= 1
        });
        assert!(ready, "cycle {cycle}: delivery under way");
        {
            // Hold the mock's lock: the delayed 204 cannot be sent, so the
            // batch is certainly in flight when the process dies.
            let st = mock.state();
            assert!(st.in_flight >= 1);
            in_flight_at_kill.push(st.batches.last().cloned().expect("a batch"));
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
        // While it is down: more lines; on odd cycles, rotate first.
        if cycle % 2 == 1 {
            std::fs::rename(&results, dir.path().join("osqueryd.results.log.1")).expect("rotate");
        }
        append(&results, next..next + 10);
        next += 10;
    }

    // Last run, fast answers: everything arrives.
    mock.state().delay = Duration::ZERO;
    let mut child = spawn_child(&cfg_file, &results);
    let all = wait_until(30, || mock.unique_ids() == next);
    let ids = mock.ids();
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(all, "every line arrived: {} of {next}", mock.unique_ids());

    let mut seen = HashSet::new();
    let dups: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
    let allowed: HashSet<&String> = in_flight_at_kill.iter().flatten().collect();
    let bound: usize = in_flight_at_kill.iter().map(Vec::len).sum();
    assert!(
        dups.iter().all(|d| allowed.contains(d)),
        "duplicates only from batches in flight at a kill: {dups:?}"
    );
    assert!(dups.len() <= bound, "{} duplicates > {bound}", dups.len());
    assert!(
        in_flight_at_kill.iter().all(|b| b.len() <= 12),
        "batches are capped by batch_max_bytes: {:?}",
        in_flight_at_kill.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
    eprintln!(
        "kill9: {next} lines, {} kills mid-batch, {} duplicates (bound {bound})",
        in_flight_at_kill.len(),
        dups.len()
    );
}
