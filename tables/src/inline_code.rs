//! String literals in inline code (AppleScript for `osascript -e`, Python,
//! Ruby, Node and Perl one-liners) treated as possible secrets.
//!
//! Two rules, both on literals only (a password in a variable is not on
//! the command line at all):
//! * a literal assigned to, or following, a name that says "password"
//!   (`set pw to "..."`, `password = '...'`, AppleScript's `do shell script
//!   ... user name "u" password "..."`);
//! * the literals of one bracket group read as an argv handed to a
//!   subprocess (`subprocess.run(['security', 'unlock-keychain', '-p',
//!   'PW'])`, Ruby `system('security', ...)`, Node `execFileSync('security',
//!   ['unlock-keychain', '-p', 'PW'])`): the group's literals, in order,
//!   go through the same recognisers as a real argv.

use crate::redact::{secret_words, REDACTED};

/// Words that, just before a literal, make it a secret.
const SECRET_NAMES: &[&str] = &[
    "pass",
    "pw",
    "pwd",
    "secret",
    "token",
    "credential",
    "apikey",
    "api_key",
    // AppleScript typing a password into a prompt.
    "keystroke",
];

/// Longest text scanned for literals (longer text is scanned up to here;
/// the shell pass and the caps still apply to the rest).
const MAX_SCAN: usize = 256 * 1024;
/// Most literal visits over all bracket groups (nested groups revisit).
const MAX_GROUP_WORK: usize = 200_000;

struct Literal {
    /// Byte range of the contents (inside the quotes).
    start: usize,
    end: usize,
    value: String,
}

/// Redact secret literals in `s`, pushing their values to `found`.
pub fn redact_literals(s: &str, found: &mut Vec<String>) -> String {
    if !s.contains(['"', '\'']) {
        return s.to_string();
    }
    let scan = &s[..floor_boundary(s, MAX_SCAN)];
    let mut literals: Vec<Literal> = Vec::new();
    // Bracket groups as ranges of literal indices.
    let mut open: Vec<usize> = Vec::new();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let bytes = scan.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                let mut j = i + 1;
                let mut value = Vec::new();
                while j < bytes.len() && bytes[j] != q {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() {
                        j += 1;
                    }
                    value.push(bytes[j]);
                    j += 1;
                }
                if j >= bytes.len() {
                    break; // unclosed: not a literal
                }
                literals.push(Literal {
                    start: i + 1,
                    end: j,
                    value: String::from_utf8_lossy(&value).into_owned(),
                });
                i = j + 1;
                continue;
            }
            b'(' | b'[' => open.push(literals.len()),
            b')' | b']' => {
                if let Some(from) = open.pop() {
                    if literals.len() - from >= 2 {
                        groups.push((from, literals.len()));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut secret = vec![false; literals.len()];
    // expect(1) answering a prompt: `spawn security unlock-keychain ...;
    // expect "password"; send "PW\r"`.
    let expect_script = scan.contains("spawn");
    for (n, lit) in literals.iter().enumerate() {
        let before = &scan[..lit.start - 1];
        if named_secret(before) || (expect_script && before.trim_end().ends_with("send")) {
            secret[n] = true;
        }
    }
    let mut work = 0;
    for (from, to) in groups {
        work += to - from;
        if work > MAX_GROUP_WORK {
            break;
        }
        let mut argv: Vec<String> = literals[from..to].iter().map(|l| l.value.clone()).collect();
        // `execFile('security', [...])` splits program and arguments; a
        // list that starts with a verb is security(1)'s.
        let shift = usize::from(
            argv.first()
                .is_some_and(|a| crate::security_cli::resolve_verb(a) == Some(a.as_str())),
        );
        if shift == 1 {
            argv.insert(0, "security".into());
        }
        for (idx, _) in secret_words(&argv) {
            if let Some(flag) = (idx >= shift)
                .then(|| idx - shift + from)
                .filter(|k| *k < to)
            {
                secret[flag] = true;
            }
        }
    }
    if !secret.iter().any(|b| *b) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    for (lit, _) in literals.iter().zip(&secret).filter(|(_, s)| **s) {
        if lit.value.is_empty() || lit.value == REDACTED {
            continue;
        }
        if found.len() < 64 {
            found.push(lit.value.clone());
        }
        out.push_str(&s[pos..lit.start]);
        out.push_str(REDACTED);
        pos = lit.end;
    }
    out.push_str(&s[pos..]);
    out
}

/// Whether the text before a literal ends with a password-ish name, then
/// `=`, `:`, `to`, `,` or nothing (`password "x"`).
fn named_secret(before: &str) -> bool {
    let t = before.trim_end();
    let t = t
        .strip_suffix(":=")
        .or_else(|| t.strip_suffix("=>"))
        .or_else(|| t.strip_suffix("=="))
        .or_else(|| t.strip_suffix('='))
        .or_else(|| t.strip_suffix(':'))
        .or_else(|| t.strip_suffix(','))
        .unwrap_or(t)
        .trim_end();
    let t = t.strip_suffix(" to").unwrap_or(t).trim_end();
    let t = t.trim_end_matches(['"', '\'', ']', ')']);
    let name: String = t
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    !name.is_empty() && SECRET_NAMES.iter().any(|n| name.contains(n))
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(s: &str) -> String {
        redact_literals(s, &mut Vec::new())
    }

    #[test]
    fn applescript_password_literals() {
        let s = r#"set pw to "Tr0ub4dor&3"
do shell script "security unlock-keychain -p " & quoted form of pw"#;
        assert!(!red(s).contains("Tr0ub4dor"), "{}", red(s));
        let s = r#"do shell script "whoami" user name "admin" password "Winter-2024" with administrator privileges"#;
        let r = red(s);
        assert!(!r.contains("Winter-2024"), "{r}");
        assert!(r.contains("\"admin\""), "{r}");
    }

    #[test]
    fn subprocess_argv_literals() {
        let py = "import subprocess; subprocess.run(['/usr/bin/security', 'unlock-keychain', '-p', 'S3cretPy!', 'login.keychain'])";
        let r = red(py);
        assert!(!r.contains("S3cretPy"), "{r}");
        assert!(r.contains("'login.keychain'"), "{r}");
        let rb =
            "system('security', 'add-generic-password', '-a', 'me', '-s', 'svc', '-w', 'RubyPw42')";
        assert!(!red(rb).contains("RubyPw42"));
        let js = "require('child_process').execFileSync('security', ['set-key-partition-list', '-S', 'apple:', '-s', '-k', 'NodePw77', 'k'])";
        assert!(!red(js).contains("NodePw77"), "{}", red(js));
        let js2 = "execFileSync(bin, [\"unlock-keychain\", \"-p\", \"NodePw88\"])";
        assert!(!red(js2).contains("NodePw88"), "{}", red(js2));
    }

    #[test]
    fn expect_send_and_keystroke() {
        let s = r#"spawn security unlock-keychain login.keychain; expect "password"; send "Exp3ct-Pw
""#;
        assert!(!red(s).contains("Exp3ct-Pw"), "{}", red(s));
        let s = r#"tell application "System Events" to keystroke "K3ystroke-Pw""#;
        assert!(!red(s).contains("K3ystroke-Pw"), "{}", red(s));
    }

    #[test]
    fn ordinary_literals_stay() {
        let s = "print('hello world'); os.system(\"ls -l\")";
        assert_eq!(red(s), s);
        let s = "subprocess.run(['security', 'find-certificate', '-a', '-p'])";
        assert_eq!(red(s), s);
    }
}
