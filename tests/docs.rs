//! The README stays in step with the code: its column table is the one the
//! schema declares (regenerate with `UPDATE_README=1 cargo test --test docs`),
//! its Actions and Severity tables list exactly the closed sets the schema's
//! `Action` and `Severity` types are, and CI runs the test command the
//! README gives.

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
        &["selftest"][..],
        // The thin extension binary (its flags only; no subcommands).
        &["(keychain-access-extension)"][..],
    ] {
        let (program, args) = match cmd {
            ["(keychain-access-extension)"] => {
                (env!("CARGO_BIN_EXE_keychain-access-extension"), &[][..])
            }
            _ => (env!("CARGO_BIN_EXE_keychain-access"), cmd),
        };
        let out = Command::new(program)
            .args(args)
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

/// The first-column names (in backticks) of the Markdown table under
/// `heading`, each with the rest of its row.
fn table_names(readme: &str, heading: &str) -> Vec<(String, String)> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let body = &readme[start + heading.len()..];
    let mut out = Vec::new();
    for line in body
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let mut cells = line.trim_matches('|').splitn(2, '|');
        let first = cells.next().unwrap_or_default();
        let rest = cells.next().unwrap_or_default().to_string();
        for name in first.split('`').skip(1).step_by(2) {
            out.push((name.to_string(), rest.clone()));
        }
    }
    out
}

/// The README's closed sets are the types': every action and severity a
/// row can carry is documented once, and nothing else is.
#[test]
fn readme_action_and_severity_tables_are_the_closed_sets() {
    use keychain_access_tables::log_pattern::UNIFIED_LOG_ACTIONS;
    use keychain_access_tables::schema::{Action, Severity};
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();

    let actions = table_names(&readme, "\n### Actions\n");
    let mut documented: Vec<&str> = actions.iter().map(|(n, _)| n.as_str()).collect();
    documented.sort_unstable();
    let mut want: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    want.sort_unstable();
    assert_eq!(
        documented, want,
        "README's Actions table must list exactly Action::ALL, each once"
    );
    // The row that documents unified-log actions lists exactly the subset
    // patterns may give.
    let mut unified: Vec<&str> = actions
        .iter()
        .filter(|(_, what)| what.contains("unified-log rows"))
        .map(|(n, _)| n.as_str())
        .collect();
    unified.sort_unstable();
    let mut want: Vec<&str> = UNIFIED_LOG_ACTIONS.iter().map(|a| a.as_str()).collect();
    want.sort_unstable();
    assert_eq!(unified, want, "README's unified-log actions");

    let severities: Vec<String> = table_names(&readme, "\n### Severity\n")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut documented: Vec<&str> = severities.iter().map(String::as_str).collect();
    documented.sort_unstable();
    let mut want: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    want.sort_unstable();
    assert_eq!(documented, want, "README's Severity table");
}
