//! The README stays in step with the code: its column table is the one the
//! schema declares (regenerate with `UPDATE_README=1 cargo test --test docs`),
//! and CI runs the test command the README gives.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn readme_column_table_matches_the_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_keychain-access"))
        .args(["schema", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- columns:start -->\n", "<!-- columns:end -->");
    let i = readme.find(start).expect("columns:start marker") + start.len();
    let j = readme.find(end).expect("columns:end marker");
    if std::env::var_os("UPDATE_README").is_some() {
        let new = format!("{}{}{}", &readme[..i], table, &readme[j..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert_eq!(
        &readme[i..j],
        table,
        "README column table drifted: UPDATE_README=1 cargo test --test docs"
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(readme.contains("tests/run-all.sh"));
    assert!(ci.contains("tests/run-all.sh"));
}

#[test]
fn readme_names_every_cli_flag() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut missing = Vec::new();
    for cmd in [
        &[][..],
        &["scan"][..],
        &["query"][..],
        &["pack", "run"][..],
        &["pack", "check"][..],
        &["pack", "export"][..],
        &["forward"][..],
        &["schema"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_keychain-access"))
            .args(cmd)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        for word in help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            let is_flag = word.starts_with("--") && word.len() > 2 && word != "--help";
            if is_flag && !readme.contains(word) {
                missing.push(format!("{} {word}", cmd.join(" ")));
            }
        }
    }
    assert!(missing.is_empty(), "README lacks: {missing:?}");
}
