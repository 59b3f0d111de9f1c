//! Redaction of secrets given on command lines.
//!
//! Passwords typed on command lines (`security unlock-keychain -p pw`,
//! `import -P pw`, `add-generic-password -w pw`, `set-key-partition-list -k
//! pw`, `dscl . authonly user pw`, `echo pw | sudo -S`, `--password=pw`) must
//! never leave the process. Redaction works on argv words (so it knows which
//! word is the value of which flag for which verb, via [`crate::security_cli`])
//! and recursively on shell strings found inside arguments (`sh -c '...'`,
//! `osascript -e 'do shell script "..."'`), which are tokenised with shell
//! quoting rules. Every command line is redacted before it is cached, stored
//! or printed.

pub mod inline_code;

use crate::security_cli;
use crate::text::basename;
use serde::Deserialize;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Maximum nesting of quoted shell strings we descend into.
const MAX_DEPTH: usize = 4;

/// Redact an argv. Returns the redacted words (same length as the input).
pub fn redact_argv(args: &[String]) -> Vec<String> {
    redact_argv_depth(args, 0, &mut Vec::new(), None)
}

/// Who an exec is, as Endpoint Security says (not as argv[0] says).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecIdentity<'a> {
    pub path: &'a str,
    pub signing_id: Option<&'a str>,
    /// The script an interpreter runs (ES `script`), if any.
    pub script: Option<&'a str>,
    pub parent_path: Option<&'a str>,
    pub parent_signing_id: Option<&'a str>,
}

/// An exec's argv, redacted, and the secret values that were taken out
/// (kept in memory only, to scrub the rest of the process tree).
#[derive(Debug, Clone, Default)]
pub struct ExecRedaction {
    pub words: Vec<String>,
    pub secrets: Vec<String>,
}

/// Redact an exec's argv knowing who runs it: `security` is recognised by
/// its path or signing id (so `exec -a name` and a renamed copy are parsed
/// as security(1)), and management-script parameters are redacted per
/// `cfg` (Jamf's 4-11 by default).
pub fn redact_exec(id: &ExecIdentity<'_>, args: &[String], cfg: &RedactionConfig) -> ExecRedaction {
    let mut secrets = Vec::new();
    let real = if is_security_binary(id.path, id.signing_id) {
        Some("security")
    } else {
        Some(basename(id.path)).filter(|b| !b.is_empty())
    };
    let mut words = redact_argv_depth(args, 0, &mut secrets, real);
    for idx in cfg.script_parameter_indices(id, args) {
        if let Some(w) = words.get_mut(idx) {
            if w != REDACTED && !w.is_empty() {
                if let Some(orig) = args.get(idx) {
                    collect(&mut secrets, orig);
                }
                *w = REDACTED.to_string();
            }
        }
    }
    ExecRedaction { words, secrets }
}

/// `/usr/bin/security` or Apple's signing id for it (a copy keeps it).
pub fn is_security_binary(path: &str, signing_id: Option<&str>) -> bool {
    path == "/usr/bin/security" || signing_id == Some("com.apple.security")
}

/// Most secret values remembered per exec.
const MAX_COLLECTED: usize = 64;

fn collect(found: &mut Vec<String>, value: &str) {
    if found.len() < MAX_COLLECTED && !value.is_empty() && value != REDACTED {
        found.push(value.to_string());
    }
}

fn redact_argv_depth(
    args: &[String],
    depth: usize,
    found: &mut Vec<String>,
    real_prog: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = args.to_vec();
    let mut idxs = secret_words(args);
    if let Some(prog) = real_prog.filter(|p| args.first().is_none_or(|a0| basename(a0) != *p)) {
        // argv[0] lies (`exec -a`, a renamed copy): parse as the real program.
        let mut as_real = args.to_vec();
        if let Some(a0) = as_real.first_mut() {
            *a0 = prog.to_string();
        } else {
            as_real.push(prog.to_string());
        }
        let mut more = Vec::new();
        secret_words_into(&as_real, 0, &mut more, 0);
        idxs.extend(more.into_iter().filter(|(i, _)| *i > 0 || args.is_empty()));
        idxs.sort_unstable();
        idxs.dedup_by_key(|(i, _)| *i);
    }
    for (idx, keep) in idxs {
        if let Some(w) = out.get_mut(idx) {
            if let Some(v) = w.get(keep..) {
                collect(found, v);
            }
            *w = redact_word(w, keep);
        }
    }
    if depth == 0
        && out.len() > 2
        && out
            .iter()
            .skip(1)
            .filter(|w| w.contains(['"', '\'']))
            .count()
            > 1
    {
        // Inline code split over several arguments (`osascript -e 'set x
        // to "..."' -e '... & x'`): literals found secret in the whole
        // script are redacted in each argument.
        let joined = out.get(1..).unwrap_or(&[]).join("\n");
        let mut values = Vec::new();
        inline_code::redact_literals(&joined, &mut values);
        for v in values.iter().filter(|v| !v.is_empty()) {
            for w in out.iter_mut().skip(1) {
                for q in ['"', '\''] {
                    let lit = format!("{q}{v}{q}");
                    if w.contains(&lit) {
                        *w = w.replace(&lit, &format!("{q}{REDACTED}{q}"));
                    }
                }
            }
            collect(found, v);
        }
    }
    if depth < MAX_DEPTH {
        // Shell strings and inline code inside arguments (`sh -c`,
        // `osascript -e`, `python -c`).
        for w in out.iter_mut() {
            if (w.contains(char::is_whitespace) || w.contains(['"', '\'', '(', '[']))
                && w != REDACTED
            {
                let r = redact_text_depth(w, depth + 1, found);
                if r != *w {
                    *w = r;
                }
                // `-o ProxyCommand=sshpass -p pw ssh ...`, `VAR=cmd args`:
                // the text after a leading `Name=` is a command line too.
                if let Some((name, rest)) = w.split_once('=') {
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
                        && rest.contains(char::is_whitespace)
                    {
                        let r = redact_text_depth(rest, depth + 1, found);
                        if r != rest {
                            *w = format!("{name}={r}");
                        }
                    }
                }
            }
        }
    }
    out
}

fn redact_word(w: &str, keep: usize) -> String {
    let prefix = w.get(..keep).unwrap_or("");
    format!("{prefix}{REDACTED}")
}

/// A parser error message fit for a log line: serde quotes the offending
/// value (`invalid type: string "hunter2", expected a sequence`), and a
/// malformed event can carry a password anywhere, so quoted parts go.
pub fn without_quoted_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut open: Option<char> = None;
    for c in msg.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

/// Redact a free-form shell (or AppleScript) string.
pub fn redact_text(s: &str) -> String {
    redact_text_depth(s, 0, &mut Vec::new())
}

/// [`redact_text`], also returning the secret values taken out.
pub fn redact_text_collect(s: &str) -> (String, Vec<String>) {
    let mut found = Vec::new();
    let r = redact_text_depth(s, 0, &mut found);
    (r, found)
}

#[derive(Debug, Clone)]
enum Tok {
    Word {
        start: usize,
        end: usize,
        value: String,
        quote: Option<char>,
        /// The word ends inside a quote never closed (end of the text).
        unclosed: bool,
    },
    Redirect {
        needs_target: bool,
        /// `<<<` (here-string) or `<<` (here-document): the target is, or
        /// names the end of, what the command reads on stdin.
        feeds_stdin: Option<Here>,
    },
    Sep(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Here {
    String,
    Document,
}

/// Shell words with their byte offsets in `s`. Kept hand-written, not
/// `shlex`/`shell-words`: redaction rewrites the original text in place, so
/// it needs each word's span, and it must not give up on what a shell
/// parser rejects (an unclosed quote, a here-document, a hostile line): those
/// crates return words without offsets, or an error and nothing.
fn tokenize(s: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut chars = s.char_indices().peekable();
    let mut cur: Option<(usize, String, Option<char>)> = None;
    let mut unclosed = false;
    let flush =
        |cur: &mut Option<(usize, String, Option<char>)>, end: usize, toks: &mut Vec<Tok>| {
            if let Some((start, value, quote)) = cur.take() {
                if is_redirect(&value) && quote.is_none() {
                    let needs_target = value.ends_with('>') || value.ends_with('<');
                    let t = value.trim_start_matches(|c: char| c.is_ascii_digit());
                    let feeds_stdin = if t == "<<<" {
                        Some(Here::String)
                    } else if t == "<<" || t == "<<-" {
                        Some(Here::Document)
                    } else {
                        None
                    };
                    toks.push(Tok::Redirect {
                        needs_target: needs_target || feeds_stdin.is_some(),
                        feeds_stdin,
                    });
                } else {
                    toks.push(Tok::Word {
                        start,
                        end,
                        value,
                        quote,
                        unclosed: false,
                    });
                }
            }
        };
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                let entry = cur.get_or_insert((i, String::new(), None));
                if entry.1.is_empty() && entry.2.is_none() {
                    entry.2 = Some(c);
                }
                let q = c;
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == q {
                        closed = true;
                        break;
                    }
                    if d == '\\' && q == '"' {
                        if let Some(&(_, e)) = chars.peek() {
                            if matches!(e, '"' | '\\' | '$' | '`') {
                                chars.next();
                                entry.1.push(e);
                                continue;
                            }
                        }
                    }
                    entry.1.push(d);
                }
                // Unclosed, the quote ran to the end of the text.
                unclosed = !closed;
            }
            '\\' => {
                let entry = cur.get_or_insert((i, String::new(), None));
                if let Some((_, e)) = chars.next() {
                    entry.1.push(e);
                }
            }
            c if c.is_whitespace() && c != '\n' => flush(&mut cur, i, &mut toks),
            '&' if cur
                .as_ref()
                .is_some_and(|(_, v, q)| q.is_none() && (v.ends_with('>') || v.ends_with('<'))) =>
            {
                if let Some(entry) = cur.as_mut() {
                    entry.1.push('&');
                }
            }
            '|' | ';' | '&' | '(' | ')' | '\n' | '`' => {
                flush(&mut cur, i, &mut toks);
                toks.push(Tok::Sep(c));
            }
            '>' | '<' => {
                // A redirection starts a new word unless the current word
                // is a bare fd number (`2>`).
                let is_fd = cur.as_ref().is_some_and(|(_, v, q)| {
                    // `2>`, and `<<<` / `>>` built one character at a time.
                    q.is_none() && v.chars().all(|d| d.is_ascii_digit() || d == c)
                });
                if !is_fd {
                    flush(&mut cur, i, &mut toks);
                }
                cur.get_or_insert((i, String::new(), None)).1.push(c);
                // Whatever follows the operator (a target or `&1`) is a new
                // word unless it is `&`, `>` or a digit after `&`.
                if let Some(&(_, n)) = chars.peek() {
                    if !matches!(n, '>' | '<' | '&') {
                        flush(&mut cur, i + 1, &mut toks);
                    }
                }
            }
            _ => {
                if let Some(entry) = cur.as_mut() {
                    // Digits after `>&` belong to the redirection.
                    entry.1.push(c);
                } else {
                    cur = Some((i, c.to_string(), None));
                }
            }
        }
    }
    flush(&mut cur, s.len(), &mut toks);
    if unclosed {
        if let Some(Tok::Word { unclosed: u, .. }) = toks.last_mut() {
            *u = true;
        }
    }
    toks
}

fn is_redirect(v: &str) -> bool {
    let t = v.trim_start_matches(|c: char| c.is_ascii_digit());
    (t.starts_with('>') || t.starts_with('<') || t.starts_with("&>"))
        && t.chars()
            .all(|c| matches!(c, '>' | '<' | '&' | '-') || c.is_ascii_digit())
}

fn redact_text_depth(s: &str, depth: usize, found: &mut Vec<String>) -> String {
    let plist_done = plist_secrets(s, found);
    let literals_done = inline_code::redact_literals(&plist_done, found);
    let s = literals_done.as_str();
    let toks = tokenize(s);
    // `IFS=,; c=security,unlock-keychain,-p,pw,k; $c`: with IFS changed, a
    // word is split on its characters when expanded, so a word holding
    // them is also read as the command line it splits into.
    let ifs: Option<String> = toks.iter().find_map(|t| match t {
        Tok::Word { value, .. } => value
            .strip_prefix("IFS=")
            .map(|v| v.chars().filter(|c| !c.is_whitespace()).collect::<String>())
            .filter(|v| !v.is_empty()),
        _ => None,
    });
    // Split into simple commands, remembering the separator that ended each.
    let mut commands: Vec<(Vec<usize>, Option<char>)> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut skip_target = false;
    let mut here: Option<Here> = None;
    // What each command reads on stdin from the text itself: (command,
    // here-string token) and (command, here-document delimiter).
    let mut here_strings: Vec<(usize, usize)> = Vec::new();
    let mut here_docs: Vec<(usize, String)> = Vec::new();
    for (ti, t) in toks.iter().enumerate() {
        match t {
            Tok::Word { value, .. } => {
                if skip_target {
                    skip_target = false;
                    match here.take() {
                        Some(Here::String) => here_strings.push((commands.len(), ti)),
                        Some(Here::Document) => here_docs.push((commands.len(), value.clone())),
                        None => {}
                    }
                } else {
                    cur.push(ti);
                }
            }
            Tok::Redirect {
                needs_target,
                feeds_stdin,
            } => {
                skip_target = *needs_target;
                here = *feeds_stdin;
            }
            Tok::Sep(c) => {
                skip_target = false;
                here = None;
                commands.push((std::mem::take(&mut cur), Some(*c)));
            }
        }
    }
    commands.push((cur, None));

    // (token index, keep-prefix) to redact; plus nested replacements.
    let mut redactions: Vec<(usize, usize)> = Vec::new();
    let mut aliases = Aliases::default();
    for (ci, (idxs, sep)) in commands.iter().enumerate() {
        let mut words: Vec<String> = idxs
            .iter()
            .filter_map(|&ti| match &toks[ti] {
                Tok::Word { value, .. } => Some(value.clone()),
                _ => None,
            })
            .collect();
        aliases.learn(&words);
        if let Some(prog) = words.first().and_then(|w| aliases.resolve(w)) {
            // A copy, link, alias or variable standing for a program.
            words[0] = prog.to_string();
        }
        for (wi, keep) in secret_words(&words) {
            if let Some(&ti) = idxs.get(wi) {
                redactions.push((ti, keep));
            }
        }
        // `echo pw | sudo -S ...`: the echoed words are the password;
        // `echo pw | xargs security unlock-keychain -p`: they are the
        // arguments xargs appends.
        if *sep == Some('|') {
            let first = words.first().map(|w| basename(w));
            // Any other program piped into a reader of a password on stdin
            // (`yes pw | sudo -S`, `cat <<< pw | sudo -S`): its arguments
            // and what the text feeds it, but never a path (evidence).
            if !matches!(first, Some("echo") | Some("printf")) {
                let next_reads = commands.get(ci + 1).is_some_and(|(next, _)| {
                    let nwords: Vec<&str> = next
                        .iter()
                        .filter_map(|&ti| match &toks[ti] {
                            Tok::Word { value, .. } => Some(value.as_str()),
                            _ => None,
                        })
                        .collect();
                    reads_secret_on_stdin(&nwords)
                });
                if next_reads {
                    for &ti in idxs.iter().skip(1) {
                        if matches!(&toks[ti], Tok::Word { value, .. } if !looks_like_path(value) && !value.starts_with('-'))
                        {
                            redactions.push((ti, 0));
                        }
                    }
                    for &(c, ti) in &here_strings {
                        if c == ci {
                            redactions.push((ti, 0));
                        }
                    }
                }
            }
            if matches!(first, Some("echo") | Some("printf")) {
                if let Some((next, _)) = commands.get(ci + 1) {
                    let nwords: Vec<String> = next
                        .iter()
                        .filter_map(|&ti| match &toks[ti] {
                            Tok::Word { value, .. } => Some(value.clone()),
                            _ => None,
                        })
                        .collect();
                    let nrefs: Vec<&str> = nwords.iter().map(String::as_str).collect();
                    if reads_secret_on_stdin(&nrefs) {
                        for &ti in idxs.iter().skip(1) {
                            redactions.push((ti, 0));
                        }
                    } else if nwords.first().is_some_and(|w| basename(w) == "xargs") {
                        let echoed: Vec<usize> = idxs
                            .iter()
                            .copied()
                            .skip(1)
                            .skip_while(|&ti| {
                                matches!(&toks[ti], Tok::Word { value, .. } if value.starts_with('-'))
                            })
                            .collect();
                        let mut combined = nwords.clone();
                        combined.extend(echoed.iter().filter_map(|&ti| match &toks[ti] {
                            Tok::Word { value, .. } => Some(value.clone()),
                            _ => None,
                        }));
                        for (wi, _) in secret_words(&combined) {
                            if let Some(&ti) =
                                wi.checked_sub(nwords.len()).and_then(|k| echoed.get(k))
                            {
                                redactions.push((ti, 0));
                            }
                        }
                    }
                }
            }
        }
        // `sudo -S cmd <<< pw`, `sudo -S cmd <<EOF` + `pw` + `EOF`.
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        if reads_secret_on_stdin(&refs) {
            for &(c, ti) in &here_strings {
                if c == ci {
                    redactions.push((ti, 0));
                }
            }
            for (c, delim) in &here_docs {
                if *c != ci {
                    continue;
                }
                for (body, _) in commands.iter().skip(ci + 1) {
                    let is_end = body.len() == 1
                        && matches!(&toks[body[0]], Tok::Word { value, .. } if value == delim);
                    if is_end {
                        break;
                    }
                    redactions.extend(body.iter().map(|&ti| (ti, 0)));
                }
            }
        }
    }

    if let Some(ifs) = &ifs {
        for (ti, t) in toks.iter().enumerate() {
            let Tok::Word { value, .. } = t else {
                continue;
            };
            let v = match value.split_once('=') {
                Some((name, v)) if name.chars().all(|c| c.is_alphanumeric() || c == '_') => v,
                _ => value.as_str(),
            };
            if !v.contains(|c: char| ifs.contains(c)) {
                continue;
            }
            let split: Vec<String> = v
                .split(|c: char| ifs.contains(c))
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            if !secret_words(&split).is_empty() {
                redactions.push((ti, value.len() - v.len()));
            }
        }
    }

    // `PW=x; security unlock-keychain -p "$PW"`: a secret that is a
    // variable takes the variable's assignments in this text with it.
    let word = |ti: usize| match &toks[ti] {
        Tok::Word { value, .. } => Some(value.as_str()),
        _ => None,
    };
    let mut assignments: Vec<(&str, usize)> = Vec::new();
    for (idxs, _) in &commands {
        for (k, &ti) in idxs.iter().enumerate() {
            let builtin = matches!(
                word(ti),
                Some("export" | "local" | "readonly" | "declare" | "typeset")
            );
            if k == 0 && builtin {
                continue;
            }
            let Some((name, _)) = word(ti).and_then(|w| w.split_once('=')) else {
                break;
            };
            let leading = k == 0
                || (k == 1
                    && matches!(
                        word(idxs[0]),
                        Some("export" | "local" | "readonly" | "declare" | "typeset")
                    ));
            if !leading || name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                break;
            }
            assignments.push((name, ti));
        }
    }
    if !assignments.is_empty() {
        let mut more = Vec::new();
        for &(ti, keep) in &redactions {
            let Some(v) = word(ti).and_then(|w| w.get(keep..)) else {
                continue;
            };
            let name = v
                .strip_prefix("${")
                .and_then(|n| n.strip_suffix('}'))
                .or_else(|| v.strip_prefix('$'));
            if let Some(name) = name {
                for &(n, ati) in &assignments {
                    if n == name {
                        more.push((ati, n.len() + 1));
                    }
                }
            }
        }
        redactions.extend(more);
    }

    // Token index -> keep-prefix (the smallest for a token wins). A map,
    // not a scan of `redactions` per token: a shell string with many
    // secrets would otherwise cost tokens x secrets.
    let mut keep_of: std::collections::HashMap<usize, usize> =
        std::collections::HashMap::with_capacity(redactions.len());
    for &(ti, keep) in &redactions {
        let k = keep_of.entry(ti).or_insert(keep);
        *k = (*k).min(keep);
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (ti, t) in toks.iter().enumerate() {
        if let Tok::Word {
            start,
            end,
            value,
            quote,
            unclosed,
        } = t
        {
            // A quote the text never closed is not closed in the output
            // either (found by the fuzz target `redact`, fuzz/: it added a character).
            let close = |q: char| {
                if *unclosed {
                    String::new()
                } else {
                    q.to_string()
                }
            };
            if let Some(&keep) = keep_of.get(&ti) {
                if let Some(v) = value.get(keep..) {
                    collect(found, v);
                }
                let replacement = match quote {
                    Some(q) => format!("{q}{}{}", redact_word(value, keep), close(*q)),
                    None => redact_word(value, keep),
                };
                edits.push((*start, *end, replacement));
            } else if depth < MAX_DEPTH && quote.is_some() && value.contains(char::is_whitespace) {
                let inner = redact_text_depth(value, depth + 1, found);
                if inner != *value {
                    let q = quote.unwrap_or('\'');
                    edits.push((*start, *end, format!("{q}{inner}{}", close(q))));
                }
            } else if quote.is_some()
                && value.contains(char::is_whitespace)
                && may_hold_secret(value)
            {
                // Quoting nested deeper than we descend: fail closed and
                // redact the whole string rather than risk a password.
                let q = quote.unwrap_or('\'');
                edits.push((*start, *end, format!("{q}{REDACTED}{}", close(q))));
            }
        }
    }
    if edits.is_empty() {
        return literals_done;
    }
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    for (start, end, rep) in edits {
        if start < pos || end > s.len() {
            continue;
        }
        out.push_str(&s[pos..start]);
        out.push_str(&rep);
        pos = end;
    }
    out.push_str(&s[pos..]);
    out
}

/// Property-list text handed to a tool inline (`fdesetup enable
/// -inputplist <<EOF <dict><key>Password</key><string>pw</string>...`,
/// `defaults import`, a profile): the `<string>` after a `<key>` whose name
/// says secret is redacted.
fn plist_secrets(s: &str, found: &mut Vec<String>) -> String {
    if !s.contains("<key>") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    let mut search = 0;
    while let Some(k) = s[search..].find("<key>").map(|p| p + search) {
        let name_start = k + 5;
        let Some(name_end) = s[name_start..].find("</key>").map(|p| p + name_start) else {
            break;
        };
        search = name_end + 6;
        let after = s[search..].trim_start();
        let Some(value) = after.strip_prefix("<string>") else {
            continue;
        };
        let value_start = s.len() - value.len();
        let Some(value_end) = value.find("</string>").map(|p| p + value_start) else {
            break;
        };
        if secret_key_name(s[name_start..name_end].trim()) && value_end > value_start {
            collect(found, &s[value_start..value_end]);
            out.push_str(&s[pos..value_start]);
            out.push_str(REDACTED);
            pos = value_end;
        }
        search = value_end;
    }
    out.push_str(&s[pos..]);
    out
}

/// Names a shell text gives a program we parse, learnt in order:
/// `cp /usr/bin/security /tmp/s` (also `ln`, `ditto`, `install`, `mv`),
/// `S=/usr/bin/security` (then `$S`, `${S}`), `alias s=security`.
#[derive(Default)]
struct Aliases {
    names: Vec<(String, &'static str)>,
}

/// Most names remembered per text.
const MAX_ALIASES: usize = 64;

impl Aliases {
    fn program(w: &str) -> Option<&'static str> {
        let b = basename(w.trim_matches(['\'', '"']));
        ["security", "dscl", "sudo", "curl"]
            .into_iter()
            .find(|p| *p == b)
    }

    fn add(&mut self, name: &str, prog: &'static str) {
        if self.names.len() < MAX_ALIASES && !name.is_empty() {
            self.names.push((name.to_string(), prog));
            let b = basename(name);
            if b != name && !b.is_empty() {
                self.names.push((b.to_string(), prog));
            }
        }
    }

    fn learn(&mut self, words: &[String]) {
        let Some(first) = words.first() else { return };
        if matches!(basename(first), "cp" | "ln" | "ditto" | "install" | "mv") && words.len() >= 3 {
            let srcs = &words[1..words.len() - 1];
            if let Some(prog) = srcs
                .iter()
                .filter(|w| !w.starts_with('-'))
                .find_map(|w| Self::program(w))
            {
                self.add(&words[words.len() - 1], prog);
            }
            return;
        }
        let assignment = if first == "alias" || first == "export" || first == "local" {
            words.get(1)
        } else {
            Some(first)
        };
        if let Some((name, value)) = assignment.and_then(|w| w.split_once('=')) {
            if let Some(prog) = Self::program(value) {
                if first == "alias" {
                    self.add(name, prog);
                } else {
                    self.add(&format!("${name}"), prog);
                    self.add(&format!("${{{name}}}"), prog);
                }
            }
        }
    }

    fn resolve(&self, w: &str) -> Option<&'static str> {
        let b = basename(w);
        self.names
            .iter()
            .find(|(n, _)| n == w || n == b)
            .map(|(_, p)| *p)
    }
}

/// Whether a string too deeply nested to parse might hold a secret.
fn may_hold_secret(s: &str) -> bool {
    const HINTS: &[&str] = &[
        " -p", " -P", " -w", " -k", " -o", "authonly", "passw", "-S", "--pass", "--secret",
        "--key", " -u",
    ];
    HINTS.iter().any(|h| s.contains(h))
}

/// A command that reads a password (or a document holding one) on stdin:
/// `sudo -S`, any `--stdinpass`/`-stdinpass` (`hdiutil`, `softwareupdate`,
/// `startosinstall`), `--password-stdin` (`docker login`), `--passphrase-fd
/// 0` (`gpg`), `fdesetup -inputplist`, and `read` (the shell builtin that
/// stores stdin in a variable).
fn reads_secret_on_stdin(words: &[&str]) -> bool {
    let Some(first) = words.first() else {
        return false;
    };
    let prog = basename(first);
    prog == "read"
        || sudo_reads_stdin(words)
        || words.iter().skip(1).any(|w| {
            let l = w.trim_start_matches('-').to_ascii_lowercase();
            l == "stdinpass"
                || l == "password-stdin"
                || l == "passphrase-fd"
                || l == "inputplist"
                || (l == "stdin" && w.starts_with("--") && prog != "sudo")
        })
}

fn sudo_reads_stdin(words: &[&str]) -> bool {
    let Some(first) = words.first() else {
        return false;
    };
    if basename(first) != "sudo" {
        return false;
    }
    words
        .iter()
        .skip(1)
        .take_while(|w| w.starts_with('-'))
        .any(|w| *w == "--stdin" || (!w.starts_with("--") && w.contains('S')))
}

/// A full security(1) verb with a `-` (`unlock-keychain`): never a program
/// name or an ordinary word, so where one appears a security command line
/// starts.
fn is_dashed_verb(w: &str) -> bool {
    w.contains('-') && !w.starts_with('-') && security_cli::command(w).is_some()
}

/// Option names (lowercase, without dashes) whose value is a password:
/// `sysadminctl -adminPassword`, `diskutil -passphrase`, `openssl -passin`,
/// `wget --http-password`, `fastlane --keychain_password`.
fn secret_option_name(name: &str) -> bool {
    let n = name.trim_start_matches('-').to_ascii_lowercase();
    if n.is_empty() || n.contains("prompt") || n.starts_with("no-") || n.starts_with("stdin") {
        return false;
    }
    [
        "password",
        "passwd",
        "passphrase",
        "passin",
        "passout",
        "secret",
        "token",
        "apikey",
        "api-key",
        "api_key",
        // `curl --oauth2-bearer x`, `CI_JOB_JWT=x`.
        "bearer",
        "jwt",
    ]
    .iter()
    .any(|k| n.ends_with(k))
        || ["_pass", "-pass", "_pw", "_pwd"]
            .iter()
            .any(|k| n.ends_with(k))
        // Java keytool (certificate stores in Mac CI builds).
        || n.ends_with("storepass")
        || n.ends_with("keypass")
        || n == "pass"
        // `-vncpw`, `-adminpw`, `passcode`: short spellings.
        || n.ends_with("pw")
        || n.ends_with("pwd")
        || n.ends_with("passcode")
}

/// Password options of other macOS and cross-platform tools that show up
/// around keychain work: MDM scripts (`sysadminctl`, `networksetup`,
/// `diskutil`, `fdesetup`), certificate prep (`openssl -passin pass:`),
/// loot archiving (`zip -P`, `7z -p`), `sshpass -p`, and any
/// `NAME=value` / `name:value` whose name says password (environment
/// prefixes, fastlane's `password:value`).
fn other_tools(prog: &str, words: &[String], offset: usize, found: &mut Vec<(usize, usize)>) {
    let prog_lower = prog.to_ascii_lowercase();
    for (i, w) in words.iter().enumerate().skip(1) {
        let next_exists = words.get(i + 1).is_some();
        // `-adminPassword x`, `--http-password x`, `--password=x`, `-passin pass:x`.
        if w.starts_with('-') && w.len() > 2 {
            let (name, attached) = match w.split_once('=') {
                Some((n, _)) => (n, true),
                None => (w.as_str(), false),
            };
            if secret_option_name(name) {
                let keep = |v: &str| if v.starts_with("pass:") { 5 } else { 0 };
                if attached {
                    let at = name.len() + 1;
                    found.push((offset + i, at + keep(&w[at..])));
                } else if next_exists {
                    let v = &words[i + 1];
                    if keep(v) > 0 || !v.starts_with('-') || v.len() == 1 {
                        found.push((offset + i + 1, keep(v)));
                    }
                }
                continue;
            }
        }
        // NAME=value, name:value (not URLs, not paths).
        if !w.starts_with('-') {
            if let Some((name, value)) = w.split_once('=').or_else(|| w.split_once(':')) {
                if !value.is_empty()
                    && !name.contains('/')
                    && !value.starts_with("//")
                    && secret_option_name(name)
                {
                    found.push((offset + i, name.len() + 1));
                }
            }
        }
    }
    // `scheme://user:password@host` (git, curl, mount_smbfs `//user:pw@host`).
    for (i, w) in words.iter().enumerate().skip(1) {
        if let Some(at) = w.find("//") {
            let rest = &w[at + 2..];
            let host_end = rest.find('/').unwrap_or(rest.len());
            if let Some(amp) = rest[..host_end].rfind('@') {
                if let Some(colon) = rest[..amp].find(':') {
                    // A redacted word keeps only its prefix
                    // (`https://user:`), so the host goes with the
                    // password: free text only, never a classification.
                    found.push((offset + i, at + 2 + colon + 1));
                } else if looks_like_token(&rest[..amp]) {
                    // `https://<token>@github.com/`: a token as the user.
                    found.push((offset + i, at + 2));
                }
            }
        }
    }
    let flag_value = |flags: &[&str], attached: bool, found: &mut Vec<(usize, usize)>| {
        for (i, w) in words.iter().enumerate().skip(1) {
            for f in flags {
                if w == f {
                    if words.get(i + 1).is_some() {
                        found.push((offset + i + 1, 0));
                    }
                } else if attached && w.len() > f.len() && w.starts_with(f) {
                    found.push((offset + i, f.len()));
                }
            }
        }
    };
    // Secrets inside a word: `Authorization: Bearer x` headers and
    // `name=value` pairs of query strings, form data and connection
    // strings (`?api_key=x&`, `user=u&password=x`, `host=h password=x`,
    // `//registry/:_authToken=x`).
    for (i, w) in words.iter().enumerate().skip(1) {
        if let Some(keep) = embedded_secret(w) {
            found.push((offset + i, keep));
        } else if encoded_command_holds_secret(w) {
            found.push((offset + i, 0));
        }
    }
    // Configuration setters naming a secret key, then its value:
    // `aws configure set aws_secret_access_key x`, `git config
    // http.password x`, `npm config set _authToken x`, `defaults write
    // domain Password x`.
    for (i, w) in words.iter().enumerate().skip(1) {
        // Also `launchctl setenv NAME x` and PlistBuddy's `Set :Password x`
        // (its `-c` text is read as words).
        let setter = matches!(
            words[i - 1].to_ascii_lowercase().as_str(),
            "set"
                | "setenv"
                | "write"
                | "config"
                | "-create"
                | "create"
                | "--add"
                | "--global"
                | "--local"
                | "add"
        ) || (i >= 3
            && matches!(words[i - 2].as_str(), "write" | "-create" | "create"));
        let key = w.rsplit(['.', ':', '/']).next().unwrap_or(w);
        // `defaults write d Password -string x`: the type comes first.
        let v =
            i + 1
                + usize::from(words.get(i + 1).is_some_and(|t| {
                    matches!(t.as_str(), "-string" | "-data" | "string" | "data")
                }));
        if setter
            && !w.starts_with('-')
            && secret_key_name(key)
            && words.get(v).is_some_and(|t| !t.starts_with('-'))
        {
            found.push((offset + v, 0));
        }
    }
    // A key named like a credential, then its value, as positional words
    // (`rclone config create r s3 secret_access_key x`): a bare word naming
    // a secret with `_` in it. Not for the
    // programs parsed above (in `dscl . passwd` the word is a verb, and
    // security(1)'s words feed classification).
    if !is_parsed_program(&prog_lower) {
        for (i, w) in words.iter().enumerate().skip(1) {
            let l = w.to_ascii_lowercase();
            // Only key-like names (`secret_access_key`): a bare `Password`
            // is as often prose or a product name ("Keeper Password
            // Manager"), which must stay evidence.
            let named =
                !w.starts_with('-') && !is_dashed_verb(w) && secret_key_name(&l) && l.contains('_');
            if !named {
                continue;
            }
            let mut v = i + 1;
            if words
                .get(v)
                .is_some_and(|t| t == "=" || t == "-string" || t == "-data")
            {
                v += 1;
            }
            if words
                .get(v)
                .is_some_and(|t| !looks_like_path(t) && !t.starts_with('-'))
            {
                found.push((offset + v, 0));
            }
        }
    }
    // netrc(5) entries as words (`machine h login u password p`, written
    // by echo or fed to a tool).
    if words.iter().any(|w| w == "machine") && words.iter().any(|w| w == "login" || w == "account")
    {
        for (i, w) in words.iter().enumerate() {
            if w == "password" && words.get(i + 1).is_some() {
                found.push((offset + i + 1, 0));
            }
        }
    }
    // curl's config syntax (`curl -K -` fed `user = "u:pw"`), as words.
    for (i, w) in words.iter().enumerate() {
        if w == "user" || w == "user=" {
            let v = i + 1 + usize::from(words.get(i + 1).is_some_and(|t| t == "="));
            if let Some(p) = words.get(v).and_then(|t| t.find(':')) {
                found.push((offset + v, p + 1));
            }
        }
    }
    // A user and a password given together, in any program: with a user
    // option present (`-u`, `-U`, `--user(name)`, `/u:`; not `-l`, beside
    // which `ssh -p` is a port), the value of `-p`/`-P`/`-w`/`-pw`/`/p:`
    // is the password (`az login -u id -p x`, `ncftp -u u -p x`, `docker
    // login -u u -p x`, `xfreerdp /u:u /p:x`),
    // and a user value `user:pw`, `user%pw` or `user,pw` carries one.
    let user_flag = |w: &str| {
        matches!(
            w,
            "-u" | "-U" | "--user" | "--username" | "-user" | "-username"
        ) || w.to_ascii_lowercase().starts_with("/u:")
    };
    if prog_lower != "security" && words.iter().skip(1).any(|w| user_flag(w)) {
        for (i, w) in words.iter().enumerate().skip(1) {
            if matches!(w.as_str(), "-p" | "-P" | "-w" | "-pw")
                && words.get(i + 1).is_some_and(|v| !looks_like_path(v))
            {
                found.push((offset + i + 1, 0));
            } else if w.to_ascii_lowercase().starts_with("/p:") && w.len() > 3 {
                found.push((offset + i, 3));
            } else if user_flag(w) {
                if let Some(v) = words.get(i + 1) {
                    if let Some(p) = v.find([':', '%', ',']) {
                        if !v.contains("//") && p + 1 < v.len() {
                            found.push((offset + i + 1, p + 1));
                        }
                    }
                }
            }
        }
    }
    // `--proxy-user user:pw`, any long option naming a user whose value
    // carries the password after `:`.
    for (i, w) in words.iter().enumerate().skip(1) {
        let l = w.to_ascii_lowercase();
        if l.starts_with("--") && l.ends_with("user") {
            if let Some(p) = words.get(i + 1).and_then(|v| v.find(':')) {
                if !words[i + 1].contains("//") {
                    found.push((offset + i + 1, p + 1));
                }
            }
        }
    }
    // Oracle-style `user/password@host` connect strings (`sqlplus
    // scott/x@db`): a word that is not a path or URL.
    for (i, w) in words.iter().enumerate().skip(1) {
        if w.starts_with(['/', '.', '~', '-'])
            || w.contains("//")
            || w.contains(char::is_whitespace)
        {
            continue;
        }
        if let (Some(slash), Some(at)) = (w.find('/'), w.rfind('@')) {
            let user = &w[..slash];
            let host = &w[at + 1..];
            if slash < at
                && slash > 0
                && at > slash + 1
                // A connect identifier (`db.example.com:1521/ORCL`, or an
                // alias after a password-like word), not a ref like
                // `actions/checkout@v4` or `nginx@sha256:...`.
                && (host.contains(['.', ':'])
                    || !w[slash + 1..at].chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                && !host.starts_with("sha")
                && !w[slash + 1..at].contains('/')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '$'))
            {
                found.push((offset + i, slash + 1));
            }
        }
    }
    // Secret stores (`gh secret set NAME --body x`, `vault kv put p k=x`,
    // `op item create ... password=x`, `kubectl create secret generic n
    // --from-literal=k=x`): every value written is secret.
    let store = words.iter().skip(1).take(4).any(|w| {
        matches!(
            w.to_ascii_lowercase().as_str(),
            "secret" | "secrets" | "kv" | "item"
        )
    }) && words.iter().skip(1).take(5).any(|w| {
        matches!(
            w.as_str(),
            "set" | "put" | "create" | "edit" | "patch" | "add"
        )
    });
    if store && prog_lower != "security" {
        for (i, w) in words.iter().enumerate().skip(2) {
            if matches!(w.as_str(), "--body" | "-b" | "--value") && words.get(i + 1).is_some() {
                found.push((offset + i + 1, 0));
            } else if let Some(eq) = w.rfind('=') {
                if !w.starts_with("--") || w.starts_with("--from-literal") {
                    found.push((offset + i, eq + 1));
                }
            }
        }
    }
    // Short password options of tools that take one on argv, from their
    // manuals: (programs, options, whether the value may be attached).
    for (progs, flags, attached) in SHORT_PASSWORD_OPTIONS {
        if progs.contains(&prog_lower.as_str()) {
            flag_value(flags, *attached, found);
        }
    }
    // `htpasswd -b [-c] file user password`, `htpasswd -nb user password`:
    // in batch mode the password is the last argument.
    if prog_lower == "htpasswd"
        && words
            .iter()
            .skip(1)
            .any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('b'))
    {
        if let Some(last) = words.len().checked_sub(1).filter(|l| *l > 0) {
            found.push((offset + last, 0));
        }
    }
    // `smbclient -U user%password`: the password follows `%`.
    if prog_lower == "smbclient" || prog_lower == "rpcclient" {
        for (i, w) in words.iter().enumerate().skip(1) {
            if (w == "-U" || w == "--user") && words.get(i + 1).is_some() {
                if let Some(p) = words[i + 1].find('%') {
                    found.push((offset + i + 1, p + 1));
                }
            }
        }
    }
    match prog_lower.as_str() {
        "zip" | "unzip" | "zipcloak" => flag_value(&["-P", "--password"], false, found),
        "7z" | "7za" | "7zz" | "7zr" => flag_value(&["-p"], true, found),
        // `mysql -pPASSWORD` (attached; a separate word is read as the
        // database, but a superset is redacted).
        "sshpass" | "mysql" | "mysqldump" | "mysqladmin" | "mariadb" | "mariadb-dump" => {
            flag_value(&["-p"], true, found)
        }
        // `xcrun altool --upload-app ... -u <apple id> -p <app-specific password>`.
        "altool" => flag_value(&["-p"], false, found),
        "networksetup" => {
            // -setairportnetwork <device> <network> [password];
            // -addpreferredwirelessnetworkatindex <device> <network> <index> <security> [password].
            for (i, w) in words.iter().enumerate() {
                let lw = w.to_ascii_lowercase();
                let at = match lw.as_str() {
                    "-setairportnetwork" => i + 3,
                    "-addpreferredwirelessnetworkatindex" => i + 5,
                    // -set<kind>proxy <service> <domain> <port> <on|off>
                    // [<user> <password>].
                    _ if lw.starts_with("-set") && lw.ends_with("proxy") => i + 6,
                    _ => continue,
                };
                if words.get(at).is_some() {
                    found.push((offset + at, 0));
                }
            }
        }
        _ => {}
    }
}

/// A URL user that is an access token, not a name (`https://ghp_...@`,
/// `https://x-access-token:...@` is the password form): a known token
/// prefix, or 20+ characters mixing letters and digits.
fn looks_like_token(user: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "ghp_",
        "gho_",
        "ghs_",
        "ghu_",
        "github_pat_",
        "glpat-",
        "xox",
    ];
    PREFIXES.iter().any(|p| user.starts_with(p))
        || (user.len() >= 20
            && user.chars().any(|c| c.is_ascii_digit())
            && user.chars().any(|c| c.is_ascii_alphabetic())
            && !user.contains(['.', '@', ' ']))
}

/// A word that names a file: the generic rules (a credential key, a
/// user/password pair) never take one, so a path an attacker puts after
/// `-p` of some tool (`rsync -u -p ~/Library/Keychains/...`) stays
/// evidence. A password that looks like a path is redacted only by the
/// rules of the tools that take it.
fn looks_like_path(w: &str) -> bool {
    w.starts_with(['/', '~'])
        || w.starts_with("./")
        || w.starts_with("../")
        || w.contains(".keychain")
}

/// Short options whose value is a password, per program (from each tool's
/// manual): `openssl enc -k`/`-K`, `ssh-keygen -N`/`-P`, `ldapsearch -w`
/// (and `ldappasswd -a`/`-s`), `redis-cli -a`, `docker login -p`,
/// `dsenableroot -p`/`-r`, `mongo -p`, `sqlcmd -P`, `smbutil -p`.
const SHORT_PASSWORD_OPTIONS: &[(&[&str], &[&str], bool)] = &[
    (&["openssl"], &["-k", "-K"], false),
    (&["ssh-keygen"], &["-N", "-P"], true),
    (
        &[
            "ldapsearch",
            "ldapmodify",
            "ldapadd",
            "ldapdelete",
            "ldapwhoami",
            "ldapcompare",
            "ldapmodrdn",
            "ldapexop",
        ],
        &["-w"],
        false,
    ),
    (&["ldappasswd"], &["-w", "-a", "-s"], false),
    (&["redis-cli", "keydb-cli", "valkey-cli"], &["-a"], false),
    (
        &["docker", "podman", "nerdctl", "helm", "oras"],
        &["-p"],
        false,
    ),
    (&["dsenableroot"], &["-p", "-r"], false),
    (
        &[
            "mongo",
            "mongosh",
            "mongodump",
            "mongorestore",
            "mongoexport",
        ],
        &["-p"],
        false,
    ),
    (&["sqlcmd", "bcp"], &["-P"], false),
    (&["smbutil", "mount_afp"], &["-p"], false),
    // The firmware-password tool of macOS installers: `-p` new, `-o` old.
    (&["setregproptool"], &["-p", "-o"], false),
];

/// A secret inside one word, and how many bytes to keep: the value of an
/// `Authorization`-style header (`Authorization: Bearer x` keeps
/// `Authorization: Bearer `), or the first `name=value` pair whose name
/// says secret, in a query string, form data, a connection string or a
/// config key (`?api_key=x`, `a=b&password=x`, `host=h password=x`,
/// `//registry.npmjs.org/:_authToken=x`). The rest of the word goes with
/// it: free-text columns only.
fn embedded_secret(w: &str) -> Option<usize> {
    let lower = w.to_ascii_lowercase();
    for header in [
        "authorization:",
        "proxy-authorization:",
        "private-token:",
        "x-api-key:",
        "x-auth-token:",
        "api-key:",
        "x-jfrog-art-api:",
    ] {
        // The word is the header (`-H 'Authorization: ...'`) or a setting's
        // value (`http.extraheader=AUTHORIZATION: ...`); inside a longer
        // shell string the shell pass finds it as a word.
        if let Some(p) = lower
            .find(header)
            .filter(|p| *p == 0 || lower[..*p].ends_with('='))
        {
            let after = p + header.len();
            let rest = &w[after..];
            let value = rest.trim_start();
            let mut keep = after + (rest.len() - value.len());
            // Keep the scheme (`Bearer `, `Basic `) when a credential follows.
            if let Some((scheme, cred)) = value.split_once(' ') {
                if scheme.chars().all(|c| c.is_ascii_alphabetic()) && !cred.trim().is_empty() {
                    keep += scheme.len() + 1;
                }
            }
            if keep < w.len() {
                return Some(keep);
            }
        }
    }
    if w.contains(char::is_whitespace) {
        // Shell text or inline code: its words are read one by one.
        return None;
    }
    let bytes = w.as_bytes();
    for (eq, _) in w.match_indices('=') {
        if eq + 1 >= w.len() {
            continue;
        }
        let start = w[..eq]
            .rfind(['?', '&', ';', ':', '/', ',', '"', '\'', '=', '\\'])
            .map(|p| p + 1)
            .unwrap_or(0);
        // A whole word `NAME=value` and `--name=value` are handled by the
        // option rules (their names are not key names only).
        if start == 0 || bytes.get(eq + 1) == Some(&b'=') {
            continue;
        }
        if secret_key_name(&w[start..eq]) {
            return Some(eq + 1);
        }
    }
    None
}

/// Shortest base64 word decoded to look for a command line inside.
const MIN_ENCODED: usize = 16;
/// Longest base64 word decoded (a larger blob is not a typed command line).
const MAX_ENCODED: usize = 64 * 1024;

/// A base64 word that decodes to text holding a secret
/// (`echo c2VjdXJpdHkg... | base64 -d | sh`, `bash -c "$(echo ... | base64
/// --decode)"`): the decoded text goes through the same redaction as a
/// shell string, and if anything in it is secret the whole word is.
fn encoded_command_holds_secret(w: &str) -> bool {
    use base64::Engine as _;
    if w.len() < MIN_ENCODED
        || w.len() > MAX_ENCODED
        || !w
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
        || !w
            .bytes()
            .any(|b| b.is_ascii_digit() || b == b'+' || b == b'/' || b == b'=')
    {
        return false;
    }
    let trimmed = w.trim_end_matches('=');
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed));
    let Ok(bytes) = decoded else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return false;
    };
    if !text.contains(char::is_whitespace)
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return false;
    }
    let mut inner = Vec::new();
    redact_text_depth(text, MAX_DEPTH, &mut inner);
    !inner.is_empty()
}

/// A key name (of a query string, form, connection string or config) that
/// says its value is a secret: what an option name says
/// ([`secret_option_name`]), plus key names of cloud and registry
/// credentials (`aws_secret_access_key`, `_authToken`, `client_secret`).
fn secret_key_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && (secret_option_name(&n)
            || [
                "access_key",
                "secret_key",
                "accesskey",
                "secretkey",
                "auth",
                "_key",
                "sig",
            ]
            .iter()
            .any(|k| n.ends_with(k))
            || n == "pass"
            || n == "key")
}

/// Most command lines started inside one argv (see [`secret_words_into`]).
const MAX_INNER_COMMANDS: usize = 32;

/// Programs whose secret arguments this module knows.
fn is_parsed_program(name: &str) -> bool {
    matches!(
        name,
        "security"
            | "dscl"
            | "sudo"
            | "curl"
            | "sysadminctl"
            | "networksetup"
            | "zip"
            | "7z"
            | "7za"
            | "sshpass"
            | "altool"
    ) || name.to_ascii_lowercase().contains("chainbreaker")
}

/// Wrappers whose arguments are another command line.
fn wrapper_skip(words: &[String]) -> Option<usize> {
    let prog = basename(words.first()?);
    let with_value: &[&str] = match prog {
        "sudo" => &[
            "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R",
        ],
        "env" => &["-u", "-P", "-S", "-C"],
        "xargs" => &["-I", "-J", "-L", "-n", "-P", "-R", "-s", "-E", "-S"],
        "nohup" | "time" | "caffeinate" | "arch" | "exec" | "command" | "nice" | "timeout"
        | "doas" => &["-n", "-w", "-t", "-k", "-s"],
        _ => return None,
    };
    let mut i = 1;
    while let Some(w) = words.get(i) {
        if w == "--" {
            return Some(i + 1);
        }
        if prog == "env" && w.contains('=') && !w.starts_with('-') {
            i += 1;
            continue;
        }
        if prog == "timeout" && i == 1 && !w.starts_with('-') {
            i += 1;
            continue;
        }
        if w.starts_with('-') {
            i += if with_value.contains(&w.as_str()) {
                2
            } else {
                1
            };
            continue;
        }
        return Some(i);
    }
    None
}

/// argv indices of secret values, with how many leading bytes of the word to
/// keep (non-zero for attached forms such as `-pSECRET` or `--password=x`).
pub fn secret_words(words: &[String]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    secret_words_into(words, 0, &mut found, 0);
    found.sort_unstable();
    // One entry per word, the one keeping the fewest bytes: a word found by
    // two rules (`--pass=x` as the value of `unlock-keychain -p`) would
    // otherwise be redacted twice, the second time keeping part of the
    // first `<redacted>` (found by the fuzz targets in fuzz/).
    found.dedup_by_key(|(i, _)| *i);
    found
}

fn secret_words_into(
    words: &[String],
    offset: usize,
    found: &mut Vec<(usize, usize)>,
    depth: usize,
) {
    let Some(first) = words.first() else {
        return;
    };
    if depth > 8 {
        return;
    }
    let prog = basename(first);
    if let Some(skip) = wrapper_skip(words) {
        if let Some(rest) = words.get(skip..) {
            secret_words_into(rest, offset + skip, found, depth + 1);
        }
    }
    // Any wrapper, known or not (`script -q /dev/null`, `launchctl asuser
    // 501`, `nice -n 5`, `caffeinate -i`, `security execute-with-privileges`,
    // `timeout 5`): a word naming a program we parse starts a command line,
    // whatever option syntax the wrapper has. Bounded, so repeated names
    // cost linear work.
    let mut starts = 0;
    for (i, w) in words.iter().enumerate().skip(1) {
        if depth > 0 || starts >= MAX_INNER_COMMANDS {
            break;
        }
        if is_parsed_program(basename(w)) {
            starts += 1;
            secret_words_into(&words[i..], offset + i, found, depth + 1);
        } else if is_dashed_verb(w) && !is_parsed_program(prog) {
            // A security(1) verb after an unknown program: a copy re-signed
            // under another name, `security -i` fed by echo or a here-doc.
            starts += 1;
            let mut as_security = vec!["security".to_string()];
            as_security.extend(words[i..].iter().cloned());
            for (j, keep) in security_cli::parse(&as_security).secrets {
                found.push((offset + i + j - 1, keep));
            }
        }
    }
    if depth == 0 && is_dashed_verb(first) {
        let mut as_security = vec!["security".to_string()];
        as_security.extend(words.iter().cloned());
        for (j, keep) in security_cli::parse(&as_security).secrets {
            found.push((offset + j - 1, keep));
        }
    }
    other_tools(prog, words, offset, found);
    match prog {
        "security" => {
            for (i, keep) in security_cli::parse(words).secrets {
                found.push((offset + i, keep));
            }
        }
        "dscl" => {
            for (i, w) in words.iter().enumerate() {
                let w = w.as_str();
                if w == "authonly" || w == "-authonly" {
                    // authonly <user> <password>
                    if words.get(i + 2).is_some() {
                        found.push((offset + i + 2, 0));
                    }
                } else if w == "passwd" || w == "-passwd" {
                    // passwd <user path> [old] <new>: every later word is a
                    // secret already, so stop here (scanning on made argv of
                    // repeated `passwd` quadratic: found by the adversarial
                    // set, tests/adversarial.rs).
                    for j in i + 2..words.len() {
                        found.push((offset + j, 0));
                    }
                    break;
                } else if w == "-P" && words.get(i + 1).is_some() {
                    found.push((offset + i + 1, 0));
                }
            }
        }
        "curl" => {
            for (i, w) in words.iter().enumerate() {
                if (w == "-u" || w == "--user") && words.get(i + 1).is_some() {
                    let v = &words[i + 1];
                    let keep = v.find(':').map(|p| p + 1).unwrap_or(0);
                    found.push((offset + i + 1, keep));
                } else if let Some(rest) = w.strip_prefix("-u") {
                    if !rest.is_empty() && !w.starts_with("--") {
                        let keep = rest.find(':').map(|p| p + 3).unwrap_or(2);
                        found.push((offset + i, keep));
                    }
                } else if let Some(cluster) = w.strip_prefix('-').filter(|c| {
                    !c.starts_with('-') && c.len() > 1 && c.contains('u') && !c.starts_with('u')
                }) {
                    // A cluster of flags ending in `-u` (`curl -su user:pw`),
                    // or with the value attached after it (`-suuser:pw`).
                    let at = cluster.find('u').unwrap_or(0);
                    let flags = &cluster[..at];
                    if flags.chars().all(|c| c.is_ascii_alphabetic()) {
                        if at + 1 == cluster.len() {
                            if words.get(i + 1).is_some() {
                                let v = &words[i + 1];
                                let keep = v.find(':').map(|p| p + 1).unwrap_or(0);
                                found.push((offset + i + 1, keep));
                            }
                        } else {
                            let rest = &cluster[at + 1..];
                            let keep = rest.find(':').map(|p| p + 1).unwrap_or(0);
                            found.push((offset + i, 1 + at + 1 + keep));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    // Generic long password options, for any program (and chainbreaker's
    // `--key`, the keychain master key).
    let mut names = vec![
        "--password",
        "--passphrase",
        "--passwd",
        "--pass",
        "--secret",
    ];
    let chainbreaker = words
        .iter()
        .take(4)
        .any(|w| w.to_ascii_lowercase().contains("chainbreaker"));
    if chainbreaker {
        names.push("--key");
        // The original n0fate chainbreaker.py: `-p PASSWORD`, `-k MASTERKEY`
        // (README: `chainbreaker.py -f [keychain file] -k [master key]`).
        for (i, w) in words.iter().enumerate() {
            for flag in ["-p", "-k"] {
                if w == flag {
                    if words.get(i + 1).is_some() {
                        found.push((offset + i + 1, 0));
                    }
                } else if w.len() > 2 && w.starts_with(flag) && !w.starts_with("--") {
                    found.push((offset + i, 2));
                }
            }
        }
    }
    for (i, w) in words.iter().enumerate() {
        let lower = w.to_ascii_lowercase();
        for name in &names {
            if lower == *name {
                if words.get(i + 1).is_some() {
                    found.push((offset + i + 1, 0));
                }
                break;
            }
            if lower.len() > name.len()
                && lower.starts_with(name)
                && lower.as_bytes()[name.len()] == b'='
            {
                found.push((offset + i, name.len() + 1));
                break;
            }
        }
    }
}

/// Management tools that pass secrets to scripts as positional parameters.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScriptParameters {
    pub id: String,
    /// Scripts under these folders get parameters (the tool's staging
    /// folder).
    #[serde(default)]
    pub script_dirs: Vec<String>,
    /// ... or scripts whose parent is one of these executables.
    #[serde(default)]
    pub parent_paths: Vec<String>,
    /// First and last secret parameter (`$4`..`$11` for Jamf).
    pub first: usize,
    pub last: usize,
}

/// Redaction settings (the `redaction` object of the tuning file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// Replaces the default (Jamf) when given; `[]` turns it off.
    pub script_parameters: Vec<ScriptParameters>,
}

impl Default for RedactionConfig {
    /// Jamf Pro runs policy scripts from its `tmp` folder with `$1` mount
    /// point, `$2` computer name, `$3` user name and `$4`-`$11` the
    /// administrator's parameters, where passwords are commonly passed
    /// (Jamf Pro documentation, "Scripts": parameter labels 4-11).
    fn default() -> Self {
        RedactionConfig {
            script_parameters: vec![ScriptParameters {
                id: "jamf".into(),
                script_dirs: vec![
                    "/Library/Application Support/JAMF/tmp/".into(),
                    "/Library/Application Support/JAMF/Downloads/".into(),
                ],
                parent_paths: vec![
                    "/usr/local/jamf/bin/jamf".into(),
                    "/usr/local/bin/jamf".into(),
                ],
                first: 4,
                last: 11,
            }],
        }
    }
}

impl RedactionConfig {
    /// argv indices holding script parameters that are secret.
    pub fn script_parameter_indices(&self, id: &ExecIdentity<'_>, args: &[String]) -> Vec<usize> {
        let mut out = Vec::new();
        if is_security_binary(id.path, id.signing_id) {
            return out; // a policy script is never security(1) itself
        }
        const INTERPRETERS: &[&str] = &[
            "sh",
            "bash",
            "zsh",
            "dash",
            "ksh",
            "python3",
            "python",
            "perl",
            "ruby",
            "osascript",
        ];
        let interp = args
            .first()
            .is_some_and(|a| INTERPRETERS.contains(&basename(a)));
        for rule in &self.script_parameters {
            let in_dir = |p: &str| rule.script_dirs.iter().any(|d| p.starts_with(d.as_str()));
            // Where the script path sits in argv: `$0` of the script.
            let script_at = args
                .iter()
                .position(|a| in_dir(a) || id.script.is_some_and(|s| s == a))
                .or_else(|| in_dir(id.path).then_some(0));
            // The tool also runs ordinary commands (`defaults`, `launchctl`,
            // `profiles`): by parent alone, only an interpreter running a
            // script gets parameters.
            let by_parent = interp
                && args.get(1).is_some_and(|a| !a.starts_with('-'))
                && id
                    .parent_path
                    .is_some_and(|p| rule.parent_paths.iter().any(|q| q == p));
            let zero = match (script_at, by_parent) {
                (Some(i), _) => i,
                (None, true) => 1,
                (None, false) => continue,
            };
            for n in rule.first..=rule.last {
                if zero + n < args.len() {
                    out.push(zero + n);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn joined(s: &[&str]) -> String {
        redact_argv(&v(s)).join(" ")
    }

    #[test]
    fn security_secret_flags() {
        assert_eq!(
            joined(&[
                "security",
                "unlock-keychain",
                "-p",
                "hunter2",
                "login.keychain"
            ]),
            "security unlock-keychain -p <redacted> login.keychain"
        );
        assert_eq!(
            joined(&["security", "create-keychain", "-phunter2", "x"]),
            "security create-keychain -p<redacted> x"
        );
        assert_eq!(
            joined(&["security", "import", "c.p12", "-k", "k", "-P", "hunter2"]),
            "security import c.p12 -k k -P <redacted>"
        );
        assert_eq!(
            joined(&[
                "security",
                "add-generic-password",
                "-a",
                "a",
                "-s",
                "s",
                "-w",
                "hunter2"
            ]),
            "security add-generic-password -a a -s s -w <redacted>"
        );
        assert_eq!(
            joined(&[
                "security",
                "set-key-partition-list",
                "-S",
                "apple:",
                "-k",
                "hunter2",
                "k"
            ]),
            "security set-key-partition-list -S apple: -k <redacted> k"
        );
        // Not secrets: find-certificate -p (PEM), find-generic-password -w (flag).
        assert_eq!(
            joined(&["security", "find-certificate", "-a", "-p"]),
            "security find-certificate -a -p"
        );
        assert_eq!(
            joined(&["security", "find-generic-password", "-w", "-s", "svc"]),
            "security find-generic-password -w -s svc"
        );
    }

    #[test]
    fn dscl_sudo_and_long_options() {
        assert_eq!(
            joined(&["dscl", ".", "authonly", "alice", "hunter2"]),
            "dscl . authonly alice <redacted>"
        );
        assert_eq!(
            joined(&[
                "sudo",
                "-u",
                "root",
                "security",
                "unlock-keychain",
                "-p",
                "hunter2"
            ]),
            "sudo -u root security unlock-keychain -p <redacted>"
        );
        assert_eq!(
            joined(&["tool", "--password=hunter2", "--pass", "hunter3"]),
            "tool --password=<redacted> --pass <redacted>"
        );
        assert_eq!(
            joined(&[
                "python3",
                "chainbreaker.py",
                "--key",
                "26C80BE3346E720DAA10620F2C9C8AD726CFCE2B818942F9",
                "k"
            ]),
            "python3 chainbreaker.py --key <redacted> k"
        );
    }

    #[test]
    fn shell_strings_are_redacted_recursively() {
        let r = redact_argv(&v(&[
            "/bin/sh",
            "-c",
            "echo 'Winter2024!'|sudo -S sudo hexdump -s 8 -n 24 /private/var/db/SystemKey",
        ]));
        assert!(!r.join(" ").contains("Winter2024"), "{r:?}");
        assert!(r[2].contains("hexdump"));

        let r =
            redact_text("security unlock-keychain -p 'ciPass123' signing_temp.keychain && echo ok");
        assert_eq!(
            r,
            "security unlock-keychain -p '<redacted>' signing_temp.keychain && echo ok"
        );

        let r = redact_argv(&v(&[
            "osascript",
            "-e",
            "do shell script \"dscl . authonly \" & quoted form of u & \"\"",
            "-e",
            "do shell script \"dscl . authonly alice 'Hunter2!pw'\"",
        ]));
        assert!(!r.join(" ").contains("Hunter2!pw"), "{r:?}");

        let r = redact_text("security 2>&1 > /dev/null unlock-keychain -p s3cret k");
        assert!(!r.contains("s3cret"), "{r}");
        let r = redact_text("printf 'pw\\n' | sudo -S -k whoami");
        assert!(!r.contains("pw\\n"), "{r}");
    }

    /// The adversarial set (tests/adversarial.rs): argv and shell text made of repeated
    /// secrets must redact in linear time (`dscl . passwd passwd ...` used
    /// to collect n^2/2 indices; a shell string with n secrets cost n^2).
    #[test]
    fn repeated_secret_words_redact_in_linear_time() {
        let n = 100_000;
        let mut argv = v(&["dscl", "."]);
        argv.extend(std::iter::repeat_n("passwd".to_string(), n));
        let t = std::time::Instant::now();
        let r = redact_argv(&argv);
        assert_eq!(r.len(), argv.len());
        assert_eq!(r[3], "passwd");
        assert!(r[4..].iter().all(|w| w == REDACTED));
        assert_eq!(secret_words(&argv).len(), n - 2);

        let text = format!("dscl . passwd /Users/a {}", "pw ".repeat(n));
        let r = redact_text(&text);
        assert!(!r.contains("pw "), "a password survived");
        assert_eq!(r.matches(REDACTED).count(), n);
        let text = "security unlock-keychain -p pw k; ".repeat(n / 10);
        let r = redact_text(&text);
        assert_eq!(r.matches(REDACTED).count(), n / 10);
        // Generous: linear work is milliseconds; the quadratic forms took
        // minutes (or ran out of memory) at this size.
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
    }

    /// Found by cargo fuzz (`redact`, `security_argv`): a word that two
    /// rules call secret, with different kept prefixes, came out as
    /// `<redact<redacted>`; it is redacted once, keeping the shorter prefix.
    #[test]
    fn a_word_secret_twice_is_redacted_once() {
        assert_eq!(
            joined(&["security", "unlock-keychain", "-p", "--pass=hunter2", "k"]),
            "security unlock-keychain -p <redacted> k"
        );
        assert_eq!(
            secret_words(&v(&["security", "unlock-keychain", "-p", "--pass=x"])),
            vec![(3, 0)]
        );
        assert_eq!(
            redact_text("security unlock-keychain -p --pass=hunter2 k"),
            "security unlock-keychain -p <redacted> k"
        );
    }

    /// Found by cargo fuzz (`security_argv`): redacting inside a quote the
    /// text never closes appended a closing quote that was not there.
    #[test]
    fn an_unclosed_quote_stays_unclosed() {
        assert_eq!(
            redact_text("sh -c 'security unlock-keychain -p pw k"),
            "sh -c 'security unlock-keychain -p <redacted> k"
        );
        assert_eq!(
            redact_text("x \"--secret s3 y"),
            "x \"--secret <redacted> y"
        );
        assert_eq!(redact_text("a '--pass"), "a '--pass");
        assert_eq!(
            redact_text("sh -c 'security unlock-keychain -p pw k'"),
            "sh -c 'security unlock-keychain -p <redacted> k'"
        );
    }

    #[test]
    fn deeper_nesting_than_we_parse_fails_closed() {
        // Five levels of quoting around an unlock password.
        let mut s = "security unlock-keychain -p hunter2 k".to_string();
        for i in 0..6 {
            s = if i % 2 == 0 {
                format!("sh -c \"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                format!("sh -c '{}'", s.replace('\'', "'\\''"))
            };
        }
        let r = redact_text(&s);
        assert!(!r.contains("hunter2"), "{r}");
    }

    fn exec(path: &str, sid: Option<&str>, args: &[&str]) -> ExecRedaction {
        let id = ExecIdentity {
            path,
            signing_id: sid,
            ..Default::default()
        };
        redact_exec(&id, &v(args), &Default::default())
    }

    #[test]
    fn security_is_known_by_path_and_signing_id_not_argv0() {
        // `exec -a innocuous /usr/bin/security ...`
        let r = exec(
            "/usr/bin/security",
            None,
            &["innocuous", "unlock-keychain", "-p", "Hunter2x", "k"],
        );
        assert_eq!(
            r.words.join(" "),
            "innocuous unlock-keychain -p <redacted> k"
        );
        assert_eq!(r.secrets, vec!["Hunter2x"]);
        // A renamed copy keeps Apple's signing id.
        let r = exec(
            "/tmp/.x",
            Some("com.apple.security"),
            &[
                "/tmp/.x",
                "add-generic-password",
                "-a",
                "a",
                "-s",
                "s",
                "-wHunter2x",
            ],
        );
        assert!(!r.words.join(" ").contains("Hunter2x"), "{:?}", r.words);
    }

    #[test]
    fn wrappers_of_any_option_syntax() {
        for pre in [
            &["script", "-q", "/dev/null"][..],
            &["env", "-i", "HOME=/x"],
            &["xargs", "-0", "-n", "1"],
            &["nice", "-n", "5"],
            &["caffeinate", "-s", "-i"],
            &["sudo", "-E", "-u", "alice"],
            &["launchctl", "asuser", "501"],
            &["launchctl", "asuser", "501", "sudo", "-u", "bob"],
            &["security", "execute-with-privileges"],
            &["timeout", "-s", "KILL", "9"],
        ] {
            let mut args: Vec<&str> = pre.to_vec();
            args.extend([
                "/usr/bin/security",
                "unlock-keychain",
                "-p",
                "Wr4pped!",
                "k",
            ]);
            let r = joined(&args);
            assert!(!r.contains("Wr4pped"), "{r}");
            let text = redact_text(&args.join(" "));
            assert!(!text.contains("Wr4pped"), "{text}");
        }
    }

    #[test]
    fn chainbreaker_old_and_new_flags() {
        for args in [
            &[
                "python2",
                "chainbreaker.py",
                "-f",
                "login.keychain-db",
                "-p",
                "0ldPassw0rd",
            ][..],
            &[
                "python2",
                "chainbreaker.py",
                "-f",
                "login.keychain-db",
                "-p0ldPassw0rd",
            ],
            &[
                "./chainbreaker.py",
                "-f",
                "System.keychain",
                "-k",
                "0ldPassw0rd",
            ],
            &[
                "python3",
                "-m",
                "chainbreaker",
                "--password=0ldPassw0rd",
                "k",
            ],
            &[
                "python3",
                "-m",
                "chainbreaker",
                "--password",
                "0ldPassw0rd",
                "k",
            ],
            &["python3", "chainbreaker.py", "--key", "0ldPassw0rd", "k"],
        ] {
            let r = joined(args);
            assert!(!r.contains("0ldPassw0rd"), "{r}");
        }
    }

    #[test]
    fn inline_code_literals_in_argv() {
        let r = joined(&[
            "osascript",
            "-e",
            "set pw to \"L1teralPw\"",
            "-e",
            "do shell script \"security unlock-keychain -p \" & pw",
        ]);
        assert!(!r.contains("L1teralPw"), "{r}");
        let r = joined(&[
            "/usr/bin/python3",
            "-c",
            "import subprocess;subprocess.check_call(['security','unlock-keychain','-p','PyL1teral','k'])",
        ]);
        assert!(!r.contains("PyL1teral"), "{r}");
        let r = joined(&[
            "ruby",
            "-e",
            "system(%q(security), 'unlock-keychain', '-p', 'RbL1teral')",
        ]);
        assert!(!r.contains("RbL1teral"), "{r}");
    }

    #[test]
    fn copies_links_aliases_and_variables_of_security() {
        for t in [
            "cp /usr/bin/security /tmp/.s; /tmp/.s unlock-keychain -p C0pyPass k",
            "ln -s /usr/bin/security ./kc && ./kc unlock-keychain -p C0pyPass k",
            "S=/usr/bin/security; $S unlock-keychain -p C0pyPass k",
            "S=security; \"${S}\" unlock-keychain -p C0pyPass k",
            "alias kc=security; kc unlock-keychain -p C0pyPass k",
            "exec -a foo /usr/bin/security unlock-keychain -p C0pyPass k",
        ] {
            let r = redact_text(t);
            assert!(!r.contains("C0pyPass"), "{r}");
        }
    }

    #[test]
    fn parser_errors_lose_their_quoted_values() {
        assert_eq!(
            without_quoted_values(
                "invalid type: string \"hunter2\", expected a sequence at line 1"
            ),
            "invalid type: string \"…\", expected a sequence at line 1"
        );
        assert_eq!(
            without_quoted_values("unknown field `pw` x"),
            "unknown field `…` x"
        );
        assert_eq!(without_quoted_values("cut \"abc"), "cut \"…");
    }

    #[test]
    fn variables_holding_a_secret() {
        let r = redact_text("PW=abc1; security unlock-keychain -p \"$PW\" k");
        assert_eq!(
            r,
            "PW=<redacted>; security unlock-keychain -p \"<redacted>\" k"
        );
        let r = redact_text("export KC_PASS=zz9; security create-keychain -p ${KC_PASS} k");
        assert!(!r.contains("zz9"), "{r}");
        let r = redact_text("X=1 Y=2 make");
        assert_eq!(r, "X=1 Y=2 make");
    }

    #[test]
    fn stdin_fed_from_the_text() {
        for t in [
            "sudo -S cat /private/var/db/SystemKey <<< 'Here-Str1ng'",
            "sudo -S cat /private/var/db/SystemKey <<EOF\nHere-Str1ng\nEOF\nls",
            "echo Here-Str1ng | xargs security unlock-keychain -p",
            "printf 'unlock-keychain -p Here-Str1ng login.keychain' | security -i",
            "security -i <<< 'unlock-keychain -p Here-Str1ng login.keychain'",
            "security -i <<EOF\nunlock-keychain -p Here-Str1ng login.keychain\nEOF",
        ] {
            let r = redact_text(t);
            assert!(!r.contains("Here-Str1ng"), "{r}");
        }
        let r = redact_text("sudo -S cat /private/var/db/SystemKey <<EOF\nHere-Str1ng\nEOF\nls -l");
        assert!(r.ends_with("EOF\nls -l"), "{r}");
    }

    #[test]
    fn other_tools_password_options() {
        for args in [
            &[
                "sysadminctl",
                "-adminUser",
                "admin",
                "-adminPassword",
                "0ther-Pw1",
                "-secureTokenOn",
                "bob",
                "-password",
                "0ther-Pw1",
            ][..],
            &[
                "openssl",
                "pkcs12",
                "-in",
                "c.p12",
                "-passin",
                "pass:0ther-Pw1",
                "-nodes",
            ],
            &["openssl", "pkcs12", "-export", "-passout=pass:0ther-Pw1"],
            &["zip", "-r", "-P", "0ther-Pw1", "/tmp/loot.zip", "/tmp/loot"],
            &["7z", "a", "-p0ther-Pw1", "loot.7z", "x"],
            &[
                "diskutil",
                "apfs",
                "unlockVolume",
                "disk3s1",
                "-passphrase",
                "0ther-Pw1",
            ],
            &[
                "networksetup",
                "-setairportnetwork",
                "en0",
                "Corp",
                "0ther-Pw1",
            ],
            &["env", "KEYCHAIN_PASSWORD=0ther-Pw1", "make", "sign"],
            &[
                "fastlane",
                "run",
                "unlock_keychain",
                "path:login.keychain",
                "password:0ther-Pw1",
            ],
            &["wget", "--http-password", "0ther-Pw1", "https://x"],
            &["/tmp/resigned", "unlock-keychain", "-p", "0ther-Pw1", "k"],
            &["sshpass", "-p", "0ther-Pw1", "ssh", "host"],
            &[
                "xcrun",
                "altool",
                "--upload-app",
                "-f",
                "a.ipa",
                "-u",
                "me@x.com",
                "-p",
                "0ther-Pw1",
            ],
            &[
                "xcrun",
                "notarytool",
                "submit",
                "a.zip",
                "--apple-id",
                "me@x.com",
                "--password",
                "0ther-Pw1",
            ],
            &[
                "keytool",
                "-importkeystore",
                "-srcstorepass",
                "0ther-Pw1",
                "-deststorepass",
                "0ther-Pw1",
            ],
            &[
                "git",
                "clone",
                "https://bot:0ther-Pw1@github.com/org/repo.git",
            ],
            &[
                "mount_smbfs",
                "//alice:0ther-Pw1@nas/share",
                "/Volumes/share",
            ],
        ] {
            let r = joined(args);
            assert!(!r.contains("0ther-Pw1"), "{r}");
        }
        assert_eq!(
            joined(&["openssl", "pkcs12", "-passin", "pass:x1"]),
            "openssl pkcs12 -passin pass:<redacted>"
        );
        // Not secrets: prompts, stdin flags, URLs.
        assert_eq!(
            joined(&["chainbreaker", "--password-prompt", "k"]),
            "chainbreaker --password-prompt k"
        );
        assert_eq!(
            joined(&["curl", "https://example.com/a:b"]),
            "curl https://example.com/a:b"
        );
    }

    #[test]
    fn harmless_text_is_untouched() {
        let s = "grep dump-keychain notes.txt | wc -l";
        assert_eq!(redact_text(s), s);
        let s = "sh -c \"security 2>&1 > /dev/null find-generic-password -ga \\\"Chrome\\\" | awk \\\"{print $2}\\\"\"";
        assert_eq!(redact_text(s), s);
    }

    /// Secrets inside one word: headers, query strings, form data, config
    /// keys; ordinary `name=value` words stay.
    #[test]
    fn secrets_inside_words() {
        assert_eq!(
            joined(&[
                "curl",
                "-H",
                "Authorization: Bearer eyJ0b2tlbg",
                "https://h/"
            ]),
            "curl -H Authorization: Bearer <redacted> https://h/"
        );
        assert_eq!(
            joined(&["curl", "-d", "user=a&password=Pw-123456", "https://h/"]),
            "curl -d user=a&password=<redacted> https://h/"
        );
        assert_eq!(
            joined(&["npm", "config", "set", "//r.example/:_authToken=npm_x1y2"]),
            "npm config set //r.example/:_authToken=<redacted>"
        );
        assert_eq!(
            joined(&[
                "aws",
                "configure",
                "set",
                "aws_secret_access_key",
                "Sk/123+x"
            ]),
            "aws configure set aws_secret_access_key <redacted>"
        );
        for ordinary in [
            &["curl", "https://example.com/search?q=keychain&page=2"][..],
            &[
                "defaults",
                "write",
                "com.apple.dock",
                "autohide",
                "-bool",
                "true",
            ],
            &["git", "config", "--global", "user.name", "Alice"],
            &["security", "find-generic-password", "-s", "a=b", "-a", "x"],
        ] {
            assert_eq!(joined(ordinary), ordinary.join(" "));
        }
    }

    /// Tools' short password options, by their manuals.
    #[test]
    fn other_tools_short_options() {
        assert_eq!(
            joined(&["mysql", "-uroot", "-pS3cret!"]),
            "mysql -uroot -p<redacted>"
        );
        assert_eq!(
            joined(&[
                "ssh-keygen",
                "-p",
                "-P",
                "old-pw",
                "-N",
                "new-pw",
                "-f",
                "k"
            ]),
            "ssh-keygen -p -P <redacted> -N <redacted> -f k"
        );
        assert_eq!(
            joined(&["htpasswd", "-bc", "f", "u", "pw-9876"]),
            "htpasswd -bc f u <redacted>"
        );
        assert_eq!(
            joined(&["curl", "-su", "api:pw-4321", "https://h/"]),
            "curl -su api:<redacted> https://h/"
        );
        assert_eq!(
            joined(&["smbclient", "//h/s", "-U", "alice%pw-1111"]),
            "smbclient //h/s -U alice%<redacted>"
        );
        assert_eq!(
            joined(&["openssl", "enc", "-aes-256-cbc", "-k", "pw-2222"]),
            "openssl enc -aes-256-cbc -k <redacted>"
        );
    }

    /// Stdin that carries a password, an IFS-split word, an inline plist
    /// and a base64-wrapped command line.
    #[test]
    fn stdin_ifs_plist_and_encoded_commands() {
        for (text, secret) in [
            ("echo 'Sw-Pw-55' | softwareupdate -ia --user a --stdinpass", "Sw-Pw-55"),
            ("read -r p <<< 'Rd-Pw-66'; security unlock-keychain -p \"$p\" k", "Rd-Pw-66"),
            ("IFS=,; c=security,unlock-keychain,-p,Ifs-Pw-77,k; $c", "Ifs-Pw-77"),
            (
                "fdesetup enable -inputplist <<EOF\n<dict><key>Password</key><string>Pl-Pw-88</string></dict>\nEOF",
                "Pl-Pw-88",
            ),
            (
                "echo c2VjdXJpdHkgdW5sb2NrLWtleWNoYWluIC1wIEI2NC1Qdy05OSBr | base64 -d | sh",
                "c2VjdXJpdHkgdW5sb2NrLWtleWNoYWluIC1wIEI2NC1Qdy05OSBr",
            ),
            (
                "expect -c 'spawn su admin; expect Password:; send Ex-Pw-11\\r; interact'",
                "Ex-Pw-11",
            ),
        ] {
            let r = redact_text(text);
            assert!(!r.contains(secret), "{text} -> {r}");
        }
        // base64 of ordinary text, and ordinary pipes, stay.
        for s in [
            "echo aGVsbG8gd29ybGQgZnJvbSBhIHNjcmlwdA== | base64 -d",
            "echo hello | grep h",
        ] {
            assert_eq!(redact_text(s), s);
        }
    }

    /// A name in a subprocess argv list stands for the literal assigned to it.
    #[test]
    fn subprocess_list_names_resolve_to_assigned_literals() {
        let s = "import subprocess as s; p='PyVar-Pw-1'; s.call(['security','unlock-keychain','-p',p,'k'])";
        assert!(!redact_text(s).contains("PyVar-Pw-1"), "{}", redact_text(s));
    }

    /// Generic classes for tools no rule names: a user/password pair, a
    /// credential key then its value, `user/password@host`, secret stores.
    /// A path after `-p` stays (evidence, not a password).
    #[test]
    fn generic_credential_shapes() {
        assert_eq!(
            joined(&["az", "login", "-u", "app", "-p", "Sp-Secret-1"]),
            "az login -u app -p <redacted>"
        );
        assert_eq!(
            joined(&["lftp", "-u", "deploy,Lf-Pw-22", "sftp://h"]),
            "lftp -u deploy,<redacted> sftp://h"
        );
        assert_eq!(
            joined(&[
                "rclone",
                "config",
                "create",
                "r",
                "s3",
                "secret_access_key",
                "Rc+Sec/9"
            ]),
            "rclone config create r s3 secret_access_key <redacted>"
        );
        assert_eq!(
            joined(&["sqlplus", "scott/Tiger-Pw-1@db"]),
            "sqlplus scott/<redacted>"
        );
        assert_eq!(
            joined(&["gh", "secret", "set", "KC_PW", "--body", "Gh-Body-33"]),
            "gh secret set KC_PW --body <redacted>"
        );
        for kept in [
            &[
                "rsync",
                "-u",
                "-p",
                "/Users/a/Library/Keychains/login.keychain-db",
                "/tmp/x",
            ][..],
            &["ssh", "-l", "alice", "-p", "2222", "host.example.com"],
            &[
                "cp",
                "/Users/a/Library/Keychains/login.keychain-db",
                "/tmp/x",
            ],
            &[
                "dscl",
                ".",
                "-read",
                "/Users/alice",
                "AuthenticationAuthority",
            ],
            &["gh", "workflow", "run", "actions/checkout@v4"],
            &["docker", "pull", "library/nginx@sha256:0a1b"],
            &["/Applications/Keeper Password Manager.app/Contents/MacOS/Keeper Password Manager"],
            &[
                "osascript",
                "-e",
                "display dialog \"Enter your Password Now\" default answer \"\"",
            ],
        ] {
            assert_eq!(joined(kept), kept.join(" "));
        }
    }

    /// Any program piped into a stdin password reader gives up its
    /// arguments, never a path: `cat` of a keychain stays evidence.
    #[test]
    fn producers_piped_into_password_readers() {
        let r = redact_text("yes 'Yes-Pw-551' | sudo -S -k true");
        assert!(!r.contains("Yes-Pw-551"), "{r}");
        let r = redact_text("cat <<< 'Cat-Pw-808' | sudo -S -v");
        assert!(!r.contains("Cat-Pw-808"), "{r}");
        let s = "cat /Users/a/Library/Keychains/login.keychain-db | sudo -S tee /tmp/k";
        assert_eq!(redact_text(s), s);
        let r = redact_text("launchctl setenv KEYCHAIN_PASSWORD Lc-Env-3030");
        assert!(!r.contains("Lc-Env-3030"), "{r}");
    }
}
