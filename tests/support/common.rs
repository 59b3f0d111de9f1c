//! Helpers shared by the integration tests that drive the real binary and
//! the fake osqueryd (`#[path = "support/common.rs"] mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `keychain-access` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keychain-access"))
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
