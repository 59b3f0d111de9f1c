//! Generates the security(1) command table from `data/security-getopt.tsv`
//! (extracted from Apple's published SecurityTool source), so the parser in
//! `src/security_cli.rs` is derived from Apple's option strings, never
//! retyped. A malformed table fails the build with the line at fault.

use std::fmt::Write as _;
use std::path::Path;

const TSV: &str = "data/security-getopt.tsv";

fn main() {
    println!("cargo:rerun-if-changed={TSV}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string(TSV).unwrap_or_else(|e| panic!("{TSV}: {e}"));
    let code = generate(&text).unwrap_or_else(|e| panic!("{TSV}: {e}"));
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(Path::new(&out).join("security_table.rs"), code).expect("write table");
}

/// The quoted text that follows `marker` in the header comment.
fn quoted_after<'a>(header: &'a str, marker: &str) -> Option<&'a str> {
    let at = header.find(marker)? + marker.len();
    let rest = &header[at..];
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

fn check_optstring(s: &str) -> Result<(), String> {
    for c in s.chars() {
        if !(c.is_ascii_alphanumeric() || c == ':') {
            return Err(format!("option string {s:?} has {c:?}"));
        }
    }
    Ok(())
}

fn generate(text: &str) -> Result<String, String> {
    let header: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let globals = quoted_after(&header, "global options ")
        .ok_or("the header does not name the global options (`global options \"...\"`)")?;
    check_optstring(globals)?;
    // "`import` sets optind = 2": commands whose getopt starts later.
    let mut optind_overrides: Vec<(String, usize)> = Vec::new();
    let mut rest = header.as_str();
    while let Some(at) = rest.find("` sets optind = ") {
        let before = &rest[..at];
        let verb = before.rsplit('`').next().unwrap_or("").to_string();
        let after = &rest[at + "` sets optind = ".len()..];
        let n: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: usize = n.parse().map_err(|_| "bad optind note".to_string())?;
        optind_overrides.push((verb, n));
        rest = after;
    }

    let mut rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    let cols: Vec<&str> = rows.next().ok_or("no column header")?.split('\t').collect();
    if cols
        != [
            "verb",
            "source_file",
            "getopt",
            "secret_options",
            "availability",
        ]
    {
        return Err(format!("unexpected columns {cols:?}"));
    }
    let mut code = String::new();
    let mut verbs = Vec::new();
    code.push_str(
        "/// The command table, in resolution order.\npub static TABLE: &[Command] = &[\n",
    );
    for (n, line) in rows.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 {
            return Err(format!("row {} has {} fields: {line:?}", n + 1, f.len()));
        }
        let (verb, file, getopt, secrets, avail) = (f[0], f[1], f[2], f[3], f[4]);
        if verb.is_empty() || !verb.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return Err(format!("bad verb {verb:?}"));
        }
        let optstrings: Vec<&str> = if getopt == "(none)" {
            Vec::new()
        } else {
            getopt.split('|').map(str::trim).collect()
        };
        for o in &optstrings {
            check_optstring(o)?;
        }
        let secret: Vec<char> = secrets.split_whitespace().flat_map(|s| s.chars()).collect();
        for c in &secret {
            let takes_value = optstrings.iter().any(|o| {
                o.find(*c)
                    .is_some_and(|p| o.as_bytes().get(p + 1) == Some(&b':'))
            });
            if !takes_value {
                return Err(format!("{verb}: secret option -{c} takes no value"));
            }
        }
        let availability = if avail == "all" {
            "All"
        } else if avail.starts_with("Apple silicon") {
            "AppleSiliconOnly"
        } else if avail.starts_with("internal") {
            "Internal"
        } else if avail.starts_with("debug builds") {
            "DebugBuildsOnly"
        } else if avail.starts_with("never compiled") {
            "NeverCompiled"
        } else {
            return Err(format!("{verb}: unknown availability {avail:?}"));
        };
        let optind = optind_overrides
            .iter()
            .find(|(v, _)| v == verb)
            .map_or(1, |(_, n)| *n);
        let _ = writeln!(
            code,
            "    Command {{ verb: {verb:?}, source_file: {file:?}, optstrings: &{optstrings:?}, \
             secret_options: &{secret:?}, availability: Availability::{availability}, \
             first_optind: {optind} }},"
        );
        verbs.push(verb.to_string());
    }
    code.push_str("];\n\n");
    for (v, _) in &optind_overrides {
        if !verbs.contains(v) {
            return Err(format!("optind note names unknown command {v:?}"));
        }
    }
    let _ = writeln!(
        code,
        "/// Every verb of the table, in resolution order (internal and\n\
         /// compiled-out ones included).\npub static COMMANDS: &[&str] = &{verbs:?};\n"
    );
    let _ = writeln!(
        code,
        "/// security(1)'s own getopt string, before the verb.\npub const GLOBAL_OPTSTRING: &str = {globals:?};"
    );
    Ok(code)
}
