#!/usr/bin/env bash
# Every test, from a fresh machine: installs what the tests need (a Python
# venv with the pinned fake-osqueryd and pySigma packages, the pinned npm
# packages for KQL validation), then runs format and lint checks, the Rust
# test suites, the vendored osquery-rust-ng patch-series check and tests,
# the pack checks and the Sentinel/Sigma content tests. Exits non-zero on
# the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n==== %s\n' "$*"; }

stage "install: Python venv (.venv) with tests/fake_osqueryd and tests/sigma requirements"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check \
    -r tests/fake_osqueryd/requirements.txt -r tests/sigma/requirements.txt

stage "install: npm packages for KQL validation (tests/kql, pinned lockfile)"
(cd tests/kql && npm ci --silent --no-audit --no-fund)

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "workspace: every crate inherits the true minimum rust-version (clippy's MSRV lints read it)"
python3 tests/workspace_checks.py

stage "module cycles (from crate:: and super:: paths, every crate)"
python3 tests/module_cycles.py --self-test
python3 tests/module_cycles.py

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo test (workspace: library, CLI golden fixtures, extension end to end, pack, sentinel delivery)"
KCA_PYTHON="$PWD/.venv/bin/python" cargo test --workspace

stage "fuzz targets still compile against the library (fuzz/, its own workspace; running them needs cargo-fuzz and nightly)"
cargo check --quiet --locked --manifest-path fuzz/Cargo.toml --bins

stage "vendored osquery-rust-ng = published 2.0.0 + patches/*.patch (vendor/osquery-rust-ng/check-series.sh)"
vendor/osquery-rust-ng/check-series.sh

stage "vendored osquery-rust-ng tests (patches)"
cargo test --manifest-path vendor/osquery-rust-ng/Cargo.toml

stage "pack check (every query of every pack form against the real schema)"
cargo run --quiet -p keychain-access -- pack check packs/keychain-access.conf packs/keychain-access-fallback.conf packs/fleet packs/kolide

stage "macOS PPPC profile (plistlib)"
.venv/bin/python -m pytest -q -p no:cacheprovider tests/macos

stage "field corpus streams are well-formed eslogger captures (tests/field/gen_field.py --check)"
python3 tests/field/gen_field.py --check

stage "Sentinel KQL and Sigma content"
PYTHON=.venv/bin/python bash tests/run-content-tests.sh

stage "all tests passed"
