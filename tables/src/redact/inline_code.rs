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

use super::{secret_words, REDACTED};

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
    let mut open: Vec<(usize, usize)> = Vec::new();
    // (first literal, end literal, byte offset of the opening bracket).
    let mut groups: Vec<(usize, usize, Option<usize>)> = Vec::new();
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
            b'(' | b'[' => open.push((literals.len(), i)),
            b')' | b']' => {
                if let Some((from, at)) = open.pop() {
                    if literals.len() - from >= 2 {
                        groups.push((from, literals.len(), Some(at)));
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
    // Literals separated by commas only, brackets or not (Perl's `exec
    // 'security', 'unlock-keychain', '-p', 'PW'`), are an argv too.
    let mut run_start = 0;
    for k in 1..=literals.len() {
        let joined = k < literals.len()
            && scan
                .get(literals[k - 1].end + 1..literals[k].start - 1)
                .is_some_and(|b| b.trim() == ",");
        if !joined {
            if k - run_start >= 3 {
                groups.push((run_start, k, None));
            }
            run_start = k;
        }
    }
    let mut work = 0;
    for (from, to, at) in groups {
        work += to - from;
        if work > MAX_GROUP_WORK {
            break;
        }
        // A call whose name says password (`keyring.set_password('svc',
        // 'user', 'PW')`, `keytar.setPassword(...)`): by convention the
        // password is its last argument.
        if let Some(at) = at {
            let before = scan[..at].trim_end();
            let name: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<Vec<char>>()
                .into_iter()
                .rev()
                .collect::<String>()
                .to_ascii_lowercase();
            // Also `basic_auth('u', 'PW')`, `login('u', 'PW')`.
            if SECRET_NAMES.iter().any(|n| name.contains(n))
                || name.ends_with("auth")
                || name == "login"
            {
                secret[to - 1] = true;
            }
        }
        // The group's argv: its literals, and the bare names between them
        // (`['security', '-p', pw, 'k']`), each name standing for the
        // literal assigned to it elsewhere in the code.
        let mut argv: Vec<String> = Vec::new();
        let mut slots: Vec<Slot<'_>> = Vec::new();
        for k in from..to {
            if k > from {
                let between = scan.get(literals[k - 1].end + 1..literals[k].start - 1);
                for piece in between.unwrap_or("").split(',') {
                    let name = piece.trim();
                    if !name.is_empty()
                        && name.len() <= 64
                        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                        && !name.chars().next().is_some_and(|c| c.is_ascii_digit())
                    {
                        argv.push(format!("${name}"));
                        slots.push(Slot::Name(name));
                    }
                }
            }
            argv.push(literals[k].value.clone());
            slots.push(Slot::Literal(k));
        }
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
            match idx.checked_sub(shift).and_then(|i| slots.get(i)) {
                Some(Slot::Literal(k)) => secret[*k] = true,
                Some(Slot::Name(name)) => {
                    for (m, l) in literals.iter().enumerate() {
                        if assigned_name(&scan[..l.start - 1]) == Some(name) {
                            secret[m] = true;
                        }
                    }
                }
                None => {}
            }
        }
    }
    concatenations(scan, &literals, &mut secret);
    if !secret.iter().any(|b| *b) {
        return if expect_script {
            unquoted_sends(s, found)
        } else {
            s.to_string()
        };
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
    if expect_script {
        unquoted_sends(&out, found)
    } else {
        out
    }
}

/// One element of a bracket group read as an argv.
enum Slot<'a> {
    Literal(usize),
    Name(&'a str),
}

/// expect(1)'s `send` with an unquoted word (`send PW\r`, Tcl reads a bare
/// word as a string): the word is what a spawned program's prompt is
/// answered with.
fn unquoted_sends(s: &str, found: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    for (at, _) in s.match_indices("send ") {
        if at < pos || (at > 0 && !s[..at].ends_with([' ', ';', '\n', '\t', '{', '"', '\''])) {
            continue;
        }
        let rest = &s[at + 5..];
        let value = rest.trim_start();
        let start = at + 5 + (rest.len() - value.len());
        if value.starts_with(['"', '\'', '$', '[', '{', '-']) || value.starts_with(REDACTED) {
            continue;
        }
        let len = value
            .find(|c: char| c.is_whitespace() || matches!(c, ';' | '"' | '\'' | '}' | ']'))
            .unwrap_or(value.len());
        let word = &value[..len];
        let secret = word.strip_suffix("\\r").unwrap_or(word);
        let secret = secret.strip_suffix("\\n").unwrap_or(secret);
        if secret.is_empty() {
            continue;
        }
        if found.len() < 64 {
            found.push(secret.to_string());
        }
        out.push_str(&s[pos..start]);
        out.push_str(REDACTED);
        pos = start + secret.len();
    }
    out.push_str(&s[pos..]);
    out
}

/// One operand of a string concatenation.
enum Operand<'a> {
    Literal(usize, bool),
    Variable(&'a str, bool),
}

/// The operands between two literals of one concatenation (`& x &`,
/// `& quoted form of y &`, `+`), or `None` when the text is anything else.
/// Each comes with whether AppleScript's `quoted form of` wraps it.
fn links(between: &str) -> Option<Vec<(&str, bool)>> {
    let mut vars = Vec::new();
    let mut expect_op = true;
    let mut quoted = false;
    let mut rest = between;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix('&').or_else(|| rest.strip_prefix('+')) {
            if !expect_op {
                return None;
            }
            expect_op = false;
            rest = r;
            continue;
        }
        let ident_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if ident_len == 0 || expect_op {
            return None;
        }
        let ident = &rest[..ident_len];
        rest = &rest[ident_len..];
        match ident {
            "quoted" | "form" | "of" => quoted = true,
            _ => {
                vars.push((ident, quoted));
                quoted = false;
                expect_op = true;
            }
        }
    }
    // The next literal is an operand: the text must end after an operator.
    (!expect_op).then_some(vars)
}

thread_local! {
    static EVALUATING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// String concatenations (`"security unlock-keychain -p " & quoted form of
/// pw`, `'... -p ' + x`): the concatenated text is read as a command line;
/// a literal holding a secret, or the literal assigned to a variable that
/// supplies one, is secret.
fn concatenations(scan: &str, literals: &[Literal], secret: &mut [bool]) {
    if literals.is_empty() || EVALUATING.with(|e| e.get()) {
        return;
    }
    // Chains of operands, literal to literal.
    let mut chains: Vec<Vec<Operand<'_>>> = Vec::new();
    let mut chain: Vec<Operand<'_>> = Vec::new();
    let mut quoted_next = false;
    for (n, lit) in literals.iter().enumerate() {
        chain.push(Operand::Literal(n, quoted_next));
        quoted_next = false;
        let next_start = literals.get(n + 1).map_or(scan.len(), |l| l.start - 1);
        let between = &scan[(lit.end + 1).min(next_start)..next_start];
        match links(between) {
            Some(vars) if n + 1 < literals.len() => {
                let q = between.trim_end().ends_with("of");
                chain.extend(vars.into_iter().map(|(v, q)| Operand::Variable(v, q)));
                quoted_next = q;
            }
            _ => {
                // A variable may end the chain (`"... -p " & pw`).
                let tail = between.trim_start();
                if let Some(t) = tail.strip_prefix('&').or_else(|| tail.strip_prefix('+')) {
                    let t = t.trim_start();
                    let (q, t) = match t.strip_prefix("quoted form of") {
                        Some(r) => (true, r.trim_start()),
                        None => (false, t),
                    };
                    let len = t
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(t.len());
                    if len > 0 {
                        chain.push(Operand::Variable(&t[..len], q));
                    }
                }
                if chain.len() > 1 {
                    chains.push(std::mem::take(&mut chain));
                }
                chain.clear();
            }
        }
    }
    // Interpolation: f"... -p {pw} ...", "... -p #{pw}", `... -p ${pw}`.
    for lit in literals.iter().take(256) {
        if !lit.value.contains(char::is_whitespace) || !lit.value.contains(['{', '$']) {
            continue;
        }
        EVALUATING.with(|e| e.set(true));
        let (_, values) = super::redact_text_collect(&lit.value);
        EVALUATING.with(|e| e.set(false));
        for v in values {
            let name = v
                .strip_prefix("#{")
                .or_else(|| v.strip_prefix("${"))
                .or_else(|| v.strip_prefix('{'))
                .and_then(|n| n.strip_suffix('}'))
                .or_else(|| v.strip_prefix('$'));
            let Some(name) = name.filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
            else {
                continue;
            };
            for (m, l) in literals.iter().enumerate() {
                if assigned_name(&scan[..l.start - 1]) == Some(name) {
                    secret[m] = true;
                }
            }
        }
    }
    for chain in chains.iter().take(256) {
        let mut text = String::new();
        for (k, op) in chain.iter().enumerate() {
            let (piece, quoted) = match op {
                Operand::Literal(n, q) => (literals[*n].value.clone(), *q),
                Operand::Variable(_, q) => (format!("kcavar{k}x"), *q),
            };
            if quoted {
                text.push('\'');
                text.push_str(&piece.replace('\'', ""));
                text.push('\'');
            } else {
                text.push_str(&piece);
            }
        }
        EVALUATING.with(|e| e.set(true));
        let (_, values) = super::redact_text_collect(&text);
        EVALUATING.with(|e| e.set(false));
        for v in values {
            for (k, op) in chain.iter().enumerate() {
                match op {
                    Operand::Literal(n, _) => {
                        let lit = &literals[*n].value;
                        if !v.is_empty() && (lit == &v || lit.split_whitespace().any(|w| w == v)) {
                            secret[*n] = true;
                        }
                    }
                    Operand::Variable(name, _) => {
                        if v == format!("kcavar{k}x") {
                            // The literal assigned to it (`set x to "..."`,
                            // `x = '...'`).
                            for (m, l) in literals.iter().enumerate() {
                                if assigned_name(&scan[..l.start - 1]) == Some(name) {
                                    secret[m] = true;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The variable a literal is assigned to: `set x to "`, `x = "`, `x: "`.
fn assigned_name(before: &str) -> Option<&str> {
    let t = before.trim_end();
    let t = if let Some(r) = t.strip_suffix(" to") {
        r
    } else {
        t.strip_suffix('=').or_else(|| t.strip_suffix(':'))?
    };
    let t = t.trim_end();
    let start = t
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &t[start..];
    (!name.is_empty()).then_some(name)
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
    fn concatenated_command_lines() {
        let s = r#"do shell script "security unlock-keychain -p " & quoted form of "C0ncat-Pw" & " login.keychain""#;
        assert!(!red(s).contains("C0ncat-Pw"), "{}", red(s));
        let s = r#"set x to "V4riable-Pw"
do shell script "security unlock-keychain -p " & quoted form of x & " login.keychain""#;
        let r = red(s);
        assert!(!r.contains("V4riable-Pw"), "{r}");
        let s = r#"x = 'Js-Concat-Pw'; execSync('security unlock-keychain -p ' + x + ' k')"#;
        assert!(!red(s).contains("Js-Concat-Pw"), "{}", red(s));
        let s =
            r#"v = "Fstr1ng-Pw"; subprocess.run(f"security unlock-keychain -p {v} k", shell=True)"#;
        assert!(!red(s).contains("Fstr1ng-Pw"), "{}", red(s));
        let s = r#"k = 'Ruby1nterp-Pw'; system("security unlock-keychain -p #{k} login.keychain")"#;
        assert!(!red(s).contains("Ruby1nterp-Pw"), "{}", red(s));
        let s = r#"do shell script "ls " & quoted form of "/tmp/a b""#;
        assert_eq!(red(s), s);
    }

    /// A call named for a password takes its last literal; literals
    /// joined by commas only are an argv (Perl's `exec LIST`).
    #[test]
    fn password_calls_and_comma_lists() {
        let r = red("keyring.set_password('svc', 'alice', 'Kr-Pw-7788')");
        assert!(!r.contains("Kr-Pw-7788") && r.contains("'alice'"), "{r}");
        let r = red("exec '/usr/bin/security', 'unlock-keychain', '-p', 'Pl-Pw-99', 'k'");
        assert!(!r.contains("Pl-Pw-99"), "{r}");
        let r = red("spawn ssh admin@h; expect \"assword:\"; send Sd-Pw-11\\r");
        assert!(!r.contains("Sd-Pw-11"), "{r}");
    }

    #[test]
    fn ordinary_literals_stay() {
        let s = "print('hello world'); os.system(\"ls -l\")";
        assert_eq!(red(s), s);
        let s = "subprocess.run(['security', 'find-certificate', '-a', '-p'])";
        assert_eq!(red(s), s);
    }
}
