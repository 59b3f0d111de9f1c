//! Helpers shared by the integration tests that drive the real binary and
//! the fake osqueryd (`#[path = "support/common.rs"] mod common;`).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `keychain-access` binary under test: the offline CLI.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keychain-access"))
}

/// The `keychain-access-extension` binary under test: the osquery extension
/// as installed (`keychain_access.ext`).
pub fn ext_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keychain-access-extension"))
}

/// The fake osqueryd script.
pub fn fake_em() -> PathBuf {
    repo().join("tests/fake_osqueryd/fake_em.py")
}

/// A Python with the fake osqueryd's packages (`KCA_PYTHON`, else the
/// repo's `.venv`). These tests never skip: without it they fail and say
/// how to install it.
pub fn python() -> PathBuf {
    let p = std::env::var_os("KCA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import osquery.extensions, thrift, future"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the fake osqueryd needs Python with osquery, thrift and future: \
         python3 -m venv .venv && .venv/bin/pip install -r tests/fake_osqueryd/requirements.txt \
         (or set KCA_PYTHON)"
    );
    p
}

/// Kills its child when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The fake osqueryd as extension manager (`fake_em.py manager`), with the
/// JSON events it prints collected as they arrive.
pub struct Manager {
    pub proc: Proc,
    pub socket: PathBuf,
    pub events: Arc<Mutex<Vec<Value>>>,
}

impl Manager {
    /// Start it on `dir/osq.em` with `extra` arguments; waits until it listens.
    pub fn start(dir: &Path, extra: &[&str]) -> Manager {
        let socket = dir.join("osq.em");
        let mut child = Command::new(python())
            .arg(fake_em())
            .args(["manager", "--socket"])
            .arg(&socket)
            .args(["--max-seconds", "300"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake_em manager");
        let events = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    ev.lock().unwrap().push(v);
                }
            }
        });
        let m = Manager {
            proc: Proc(child),
            socket,
            events,
        };
        m.wait_event("listening", Duration::from_secs(10));
        m
    }

    /// The newest event called `name`, waiting up to `timeout` for one.
    pub fn wait_event(&self, name: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self
                .events
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|e| e["event"] == name)
            {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no `{name}` event from the manager"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The alert rule of the pack and of Sentinel: medium or high, not excused.
pub fn is_alert(r: &Value) -> bool {
    matches!(r["severity"].as_str(), Some("medium") | Some("high")) && r["allowlisted"] == 0
}

/// Whether a row meets one expectation of a corpus manifest: every key is a
/// column value, except `alert` (the alert rule), `cmdline_contains` and
/// `note` (documentation only).
pub fn matches_expectation(row: &Value, exp: &serde_json::Map<String, Value>) -> bool {
    exp.iter().all(|(k, want)| match k.as_str() {
        "note" => true,
        "alert" => Value::Bool(is_alert(row)) == *want,
        "cmdline_contains" => row["cmdline"]
            .as_str()
            .zip(want.as_str())
            .is_some_and(|(c, w)| c.contains(w)),
        _ => row.get(k) == Some(want),
    })
}
