//! Redaction by construction: secrets known in a process tree are scrubbed
//! from the free text of that tree's later rows.
//!
//! Recognising each tool's password options ([`crate::redact`]) misses a
//! password that reaches another field: the script that received it as a
//! parameter shows in its child's `parent_cmdline`, a shell that echoes it
//! shows in a sibling's. So every value redaction takes out of an exec (a
//! secret option's value, `dscl . authonly`, `echo pw | sudo -S`, an inline
//! code literal, a management-script parameter) is remembered, in memory
//! only, for that process and its cached ancestors, and scrubbed from the
//! `cmdline`, `parent_cmdline` and `message` of every later row whose
//! process or ancestors know it.
//!
//! Guards, so an attacker cannot use this to erase evidence:
//! * only free text is scrubbed, never the columns classification used
//!   (`path`, `target_path`, `action`, `verb` and the rest);
//! * a value is scrubbed only as a whole word (not inside a longer word)
//!   and only when it is at least [`MIN_SECRET_CHARS`] characters long and
//!   not a common word ([`is_common_word`]), a path or a security(1) verb;
//! * every scrub is counted (`secrets_scrubbed` in the status table).
//!
//! Limits: rows already stored or sent before the secret was seen cannot
//! be recalled; a tree is known only while its processes are cached.

use crate::es::EsProcess;
use crate::procs::{ProcInfo, ProcessCache};
use crate::redact::{ExecIdentity, REDACTED};
use crate::schema::KeychainAccess;
use std::collections::HashMap;

/// Shortest value scrubbed from other fields (a shorter one is too likely
/// to be an ordinary word; it is still redacted where it was recognised).
pub const MIN_SECRET_CHARS: usize = 6;
/// Longest value remembered (longer ones are remembered cut to this).
const MAX_SECRET_BYTES: usize = 256;
/// Values remembered per process.
const MAX_PER_PROCESS: usize = 16;

/// Words never scrubbed from other fields: what command lines, keychain
/// paths and scripts are made of. A "password" equal to one of them would
/// otherwise erase that word from the evidence.
const COMMON_WORDS: &[&str] = &[
    "keychain",
    "keychains",
    "login",
    "system",
    "library",
    "security",
    "default",
    "password",
    "passwords",
    "private",
    "users",
    "shared",
    "applications",
    "volumes",
    "usr",
    "bin",
    "sbin",
    "local",
    "tmp",
    "var",
    "etc",
    "dev",
    "null",
    "stdin",
    "stdout",
    "stderr",
    "echo",
    "printf",
    "sudo",
    "python",
    "python3",
    "osascript",
    "script",
    "bash",
    "zsh",
    "true",
    "false",
    "unlock",
    "export",
    "import",
    "delete",
    "create",
    "generic",
    "internet",
    "certificate",
    "identity",
    "partition",
    "apple",
    "codesign",
    "admin",
    "administrator",
    "root",
    "nobody",
    "daemon",
    "wheel",
    "staff",
    "everyone",
    "launchctl",
    "launchd",
    "caffeinate",
    "xargs",
    "chainbreaker",
    "keychain-db",
    "systemkey",
    "dscl",
    "authonly",
    "passwd",
    "localhost",
    "install",
    "update",
    "version",
    "verbose",
    "quiet",
    "output",
    "input",
    "string",
    "return",
];

/// A shorter value is still scrubbed when it mixes at least three of
/// lower case, upper case, digits and symbols (`Pa5!`): no ordinary word
/// does.
pub const MIN_MIXED_SECRET_CHARS: usize = 4;

fn char_classes(v: &str) -> usize {
    let mut classes = [false; 4];
    for c in v.chars() {
        let i = if c.is_lowercase() {
            0
        } else if c.is_uppercase() {
            1
        } else if c.is_numeric() {
            2
        } else {
            3
        };
        classes[i] = true;
    }
    classes.iter().filter(|b| **b).count()
}

/// Whether `v` is worth scrubbing from other fields.
pub fn worth_scrubbing(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    let n = v.chars().count();
    (n >= MIN_SECRET_CHARS || (n >= MIN_MIXED_SECRET_CHARS && char_classes(v) >= 3))
        && v != REDACTED
        && !v.contains(REDACTED)
        && !v.starts_with('/')
        && !v.starts_with('~')
        && !v.chars().all(|c| c.is_ascii_digit())
        && !is_common_word(&lower)
        && crate::security_cli::command(&lower).is_none()
}

/// The common-word guard: [`COMMON_WORDS`], and keychain file names.
pub fn is_common_word(lower: &str) -> bool {
    COMMON_WORDS.contains(&lower) || lower.ends_with(".keychain") || lower.ends_with(".keychain-db")
}

pub use crate::redact::{RedactionConfig, ScriptParameters};

/// Secrets known per process. Bounded by the process cache: an entry is
/// forgotten when its process leaves the cache (a counted eviction), and
/// the map is pruned to cached processes whenever it reaches twice the
/// cache's capacity, so it never holds more than that.
#[derive(Debug, Default)]
pub struct TreeSecrets {
    map: HashMap<(i64, i64), Vec<String>>,
    capacity: usize,
    /// Words scrubbed from rows so far.
    pub scrubs: u64,
}

impl TreeSecrets {
    pub fn new(capacity: usize) -> Self {
        TreeSecrets {
            capacity: capacity.max(1),
            ..Default::default()
        }
    }

    /// Processes with secrets remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remember `secrets` for a process and its ancestors (not launchd,
    /// pid 1, whose tree is every process). `cached` says whether a
    /// process is still in the process cache.
    pub fn remember(
        &mut self,
        keys: &[(i64, i64)],
        secrets: &[String],
        cached: impl Fn((i64, i64)) -> bool,
    ) {
        // Each value as it can appear in a row: as typed, with control
        // characters escaped, and as a quoted argv word.
        let mut keep: Vec<String> = Vec::new();
        for s in secrets.iter().filter(|s| worth_scrubbing(s)) {
            let mut end = s.len().min(MAX_SECRET_BYTES);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            let raw = &s[..end];
            let quoted = crate::text::join_args(&[raw.to_string()]);
            for form in [
                raw.to_string(),
                crate::text::sanitize(raw).into_owned(),
                crate::text::sanitize(&quoted).into_owned(),
            ] {
                if !keep.contains(&form) {
                    keep.push(form);
                }
            }
        }
        if keep.is_empty() {
            return;
        }
        if self.map.len() + keys.len() > 2 * self.capacity {
            self.map.retain(|k, _| cached(*k));
        }
        for key in keys.iter().filter(|k| k.0 > 1) {
            let entry = self.map.entry(*key).or_default();
            for s in &keep {
                if !entry.contains(s) {
                    if entry.len() >= MAX_PER_PROCESS {
                        entry.remove(0);
                    }
                    entry.push(s.clone());
                }
            }
        }
    }

    /// The secrets known to any of these processes.
    pub fn known(&self, keys: &[(i64, i64)]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in keys {
            if let Some(v) = self.map.get(k) {
                for s in v {
                    if !out.contains(s) {
                        out.push(s.clone());
                    }
                }
            }
        }
        // Longest first, so a secret containing another goes whole.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }

    /// Scrub the free-text columns of a row; classification columns are
    /// never touched.
    pub fn scrub_row(&mut self, row: &mut KeychainAccess, secrets: &[String]) {
        if secrets.is_empty() {
            return;
        }
        for field in [
            &mut row.cmdline,
            &mut row.parent_cmdline,
            &mut row.message,
            &mut row.reason,
        ] {
            if let Some(text) = field.as_mut() {
                let n = scrub_text(text, secrets);
                self.scrubs += n;
            }
        }
    }
}

/// What `text::truncate` appends to a cut value.
const TRUNCATED: &str = "...<truncated>";

/// Replace whole-word occurrences of each secret; returns how many. A value
/// cut at a cap may end in the first characters of a secret: that tail
/// goes too.
pub fn scrub_text(text: &mut String, secrets: &[String]) -> u64 {
    let mut count = 0;
    if let Some(body) = text.strip_suffix(TRUNCATED) {
        let mut cut_at = None;
        for s in secrets {
            // The longest prefix of `s` (3 bytes or more) the body ends with,
            // starting a word.
            let mut end = s.len().saturating_sub(1);
            while end >= 3 {
                if s.is_char_boundary(end) && body.ends_with(&s[..end]) {
                    let start = body.len() - end;
                    if whole_word(body, start, body.len()) {
                        cut_at = Some(cut_at.map_or(start, |c: usize| c.min(start)));
                    }
                    break;
                }
                end -= 1;
            }
        }
        if let Some(start) = cut_at {
            *text = format!("{}{REDACTED}{TRUNCATED}", &body[..start]);
            count += 1;
        }
    }
    for s in secrets {
        if s.is_empty() || !text.contains(s.as_str()) {
            continue;
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        let mut search = 0;
        while let Some(found) = text[search..].find(s.as_str()) {
            let start = search + found;
            let end = start + s.len();
            if whole_word(text, start, end) {
                out.push_str(&text[pos..start]);
                out.push_str(REDACTED);
                pos = end;
                count += 1;
            }
            search = end;
        }
        out.push_str(&text[pos..]);
        *text = out;
    }
    count
}

/// Word characters for scrubbing: anything but whitespace, quotes and
/// shell or list punctuation, so a secret that is part of a path
/// (`/Keychains/<secret>-db`) or a longer word is left alone.
fn is_word_char(c: char) -> bool {
    !(c.is_whitespace()
        || matches!(
            c,
            '\'' | '"'
                | '`'
                | '='
                | ','
                | ';'
                | ':'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
                | '&'
                | '<'
                | '>'
        ))
}

/// Not inside a longer word: the neighbours are not word characters, or
/// the match follows a short option (`-pSECRET`) or `=`.
fn whole_word(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let left = match before {
        None => true,
        Some(c) if !is_word_char(c) => true,
        Some(_) => {
            // `-p` + secret, attached.
            let b = &text.as_bytes()[..start];
            b.len() >= 2
                && b[b.len() - 2] == b'-'
                && (b.len() == 2 || !is_word_char(b[b.len() - 3] as char))
        }
    };
    left && after.is_none_or(|c| !is_word_char(c))
}

/// Redact an exec's argv ([`crate::redact::redact_exec`]) and remember the
/// secrets it held for the process and its cached ancestors. Returns the
/// redacted argv.
pub fn redact_exec_and_remember(
    cache: &ProcessCache,
    secrets: &mut TreeSecrets,
    info: &ProcInfo,
    exec: &crate::es::ExecEvent,
    cfg: &RedactionConfig,
) -> Vec<String> {
    let script = exec.script.as_ref().map(|s| s.path.as_str());
    let tree: Vec<(i64, i64)> = std::iter::once(info.key())
        .chain(
            cache
                .ancestors(info, crate::procs::MAX_ANCESTORS)
                .iter()
                .map(|a| a.key()),
        )
        .collect();
    let id = exec_identity(&exec.target, script, cache.parent_of(info));
    let found = crate::redact::redact_exec(&id, &exec.args, cfg);
    secrets.remember(&tree, &found.secrets, |k| cache.get(k).is_some());
    found.words
}

/// Scrub the secrets known in each row's process tree from its free text.
pub fn scrub_rows(cache: &ProcessCache, secrets: &mut TreeSecrets, rows: &mut [KeychainAccess]) {
    for row in rows {
        let Some(pid) = row.pid else { continue };
        let proc = match row.pidversion {
            Some(pv) => cache.get((pid, pv)),
            None => cache.latest_for_pid(pid),
        };
        let mut keys = vec![(pid, row.pidversion.unwrap_or(0))];
        if let Some(p) = proc {
            keys.extend(
                cache
                    .ancestors(p, crate::procs::MAX_ANCESTORS)
                    .iter()
                    .map(|a| a.key()),
            );
        }
        let known = secrets.known(&keys);
        secrets.scrub_row(row, &known);
    }
}

/// Identity of an exec for [`crate::redact::redact_exec`].
pub fn exec_identity<'a>(
    target: &'a EsProcess,
    script: Option<&'a str>,
    parent: Option<&'a crate::procs::ProcInfo>,
) -> ExecIdentity<'a> {
    ExecIdentity {
        path: &target.executable.path,
        signing_id: target.signing_id.as_deref(),
        script,
        parent_path: parent.map(|p| p.path.as_str()),
        parent_signing_id: parent.and_then(|p| p.signing_id.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn whole_words_only() {
        let secrets = v(&["Hunter22x"]);
        let mut t =
            "echo Hunter22x; x=Hunter22xy; -pHunter22x 'Hunter22x' /k/Hunter22x-db u:Hunter22x"
                .to_string();
        assert_eq!(scrub_text(&mut t, &secrets), 4);
        assert_eq!(
            t,
            "echo <redacted>; x=Hunter22xy; -p<redacted> '<redacted>' /k/Hunter22x-db u:<redacted>"
        );
    }

    #[test]
    fn a_secret_cut_by_a_cap_goes_too() {
        let mut t = format!("sh x.sh Hunter2{TRUNCATED}");
        assert_eq!(scrub_text(&mut t, &v(&["Hunter22x"])), 1);
        assert_eq!(t, format!("sh x.sh <redacted>{TRUNCATED}"));
        let mut t = format!("sh x.sh aHunter2{TRUNCATED}");
        assert_eq!(scrub_text(&mut t, &v(&["Hunter22x"])), 0);
    }

    #[test]
    fn quoted_and_escaped_forms_are_remembered() {
        let mut t = TreeSecrets::new(4);
        t.remember(&[(5, 1)], &v(&["it's a pw", "tab\there"]), |_| true);
        let known = t.known(&[(5, 1)]);
        let mut row = "sh x.sh 'it'\\''s a pw' tab\\there".to_string();
        assert!(known.iter().any(|k| k == "'it'\\''s a pw'"), "{known:?}");
        scrub_text(&mut row, &known);
        assert_eq!(row, "sh x.sh <redacted> <redacted>");
    }

    #[test]
    fn short_and_common_words_are_not_scrubbed() {
        assert!(worth_scrubbing("Pa5!"));
        assert!(!worth_scrubbing("utf8"));
        for w in [
            "abc12",
            "login",
            "keychain",
            "dump-keychain",
            "/Users/a/Library/Keychains/login.keychain-db",
            "123456",
            "Password",
            "login.keychain",
        ] {
            assert!(!worth_scrubbing(w), "{w}");
        }
        for w in ["Winter2024!", "hunter22", "CorrectHorse"] {
            assert!(worth_scrubbing(w), "{w}");
        }
    }

    #[test]
    fn bounded_by_the_process_cache() {
        let mut t = TreeSecrets::new(4);
        for pid in 10..100 {
            // Only the last four processes are still cached.
            t.remember(&[(pid, 1)], &v(&["Secret-Value"]), |k| k.0 >= pid - 3);
            assert!(t.len() <= 8 + 1, "{}", t.len());
        }
        assert_eq!(t.known(&[(99, 1)]), v(&["Secret-Value"]));
        assert!(t.known(&[(20, 1)]).is_empty());
    }

    #[test]
    fn jamf_parameters_by_folder_and_parent() {
        let cfg = RedactionConfig::default();
        let args = v(&[
            "/bin/sh",
            "/Library/Application Support/JAMF/tmp/unlock.sh",
            "/",
            "mac01",
            "alice",
            "P4ram4Pw",
            "",
            "x",
        ]);
        let id = ExecIdentity {
            path: "/bin/sh",
            ..Default::default()
        };
        assert_eq!(cfg.script_parameter_indices(&id, &args), vec![5, 6, 7]);
        let args = v(&["/private/tmp/x.sh", "/", "mac01", "alice", "P4ram4Pw"]);
        let id = ExecIdentity {
            path: "/bin/sh",
            script: Some("/private/tmp/x.sh"),
            parent_path: Some("/usr/local/jamf/bin/jamf"),
            ..Default::default()
        };
        assert_eq!(cfg.script_parameter_indices(&id, &args), vec![4]);
        let args2 = v(&[
            "/bin/bash",
            "/private/tmp/y.sh",
            "/",
            "mac01",
            "alice",
            "P4ram4Pw",
        ]);
        let id2 = ExecIdentity {
            path: "/bin/bash",
            parent_path: Some("/usr/local/jamf/bin/jamf"),
            ..Default::default()
        };
        assert_eq!(cfg.script_parameter_indices(&id2, &args2), vec![5]);
        // Ordinary commands the tool runs, and security(1), keep their words.
        for (path, argv) in [
            (
                "/usr/bin/defaults",
                &["/usr/bin/defaults", "read", "/L/x", "key", "a", "b"][..],
            ),
            (
                "/usr/bin/security",
                &[
                    "security",
                    "find-generic-password",
                    "-a",
                    "x",
                    "-s",
                    "y",
                    "-g",
                ],
            ),
            ("/bin/bash", &["/bin/bash", "-c", "a", "b", "c", "d"]),
        ] {
            let id = ExecIdentity {
                path,
                parent_path: Some("/usr/local/jamf/bin/jamf"),
                ..Default::default()
            };
            assert!(
                cfg.script_parameter_indices(&id, &v(argv)).is_empty(),
                "{argv:?}"
            );
        }
        let none = RedactionConfig {
            script_parameters: vec![],
        };
        assert!(none.script_parameter_indices(&id, &args).is_empty());
    }
}
