#!/usr/bin/env python3
"""Workspace manifest checks that cargo itself does not make.

* Every workspace crate inherits `rust-version` from the root manifest
  (`rust-version.workspace = true`), so clippy's MSRV lints
  (`incompatible_msrv` and the lints that depend on the MSRV) judge every
  crate against the same minimum.
* That minimum is the true one: the highest `rust-version` declared by any
  locked dependency (`cargo metadata`), no lower (a promise the build cannot
  keep) and no higher (a needless demand on users).
* The fuzz crate (its own workspace, so it cannot inherit) declares the
  same rust-version as the root.

Exit status 1 with a message per failure; 0 when all hold.
"""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def version_tuple(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    members = set(meta["workspace_members"])
    with open(os.path.join(ROOT, "Cargo.toml"), encoding="utf-8") as fh:
        root = fh.read()
    m = re.search(r'^\[workspace\.package\][^\[]*?^rust-version\s*=\s*"([0-9.]+)"', root, re.M | re.S)
    if not m:
        print("Cargo.toml: [workspace.package] declares no rust-version")
        return 1
    declared = m.group(1)
    failures = []
    for pkg in meta["packages"]:
        if pkg["id"] not in members:
            continue
        with open(pkg["manifest_path"], encoding="utf-8") as fh:
            manifest = fh.read()
        if not re.search(r"^rust-version\.workspace\s*=\s*true\s*$", manifest, re.M):
            failures.append(f"{os.path.relpath(pkg['manifest_path'], ROOT)}: "
                            "does not inherit rust-version (add `rust-version.workspace = true`)")
    deps = [(version_tuple(p["rust_version"]), p["name"], p["version"])
            for p in meta["packages"] if p["id"] not in members and p.get("rust_version")]
    if deps:
        need, name, ver = max(deps)
        if version_tuple(declared) != need:
            failures.append(f"Cargo.toml: rust-version = {declared}, but the true minimum is "
                            f"{'.'.join(map(str, need))} ({name} {ver} declares it)")
    with open(os.path.join(ROOT, "fuzz", "Cargo.toml"), encoding="utf-8") as fh:
        fm = re.search(r'^rust-version\s*=\s*"([0-9.]+)"', fh.read(), re.M)
    if not fm or fm.group(1) != declared:
        failures.append(f"fuzz/Cargo.toml: rust-version must be {declared}, the root's "
                        f"(found {fm.group(1) if fm else 'none'})")
    for f in failures:
        print(f)
    if not failures:
        print(f"rust-version {declared}: inherited by all {len(members)} workspace crates, "
              "equal to the highest any locked dependency declares")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
