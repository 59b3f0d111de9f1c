//! Unified-log message patterns: the pattern type as written in a tuning
//! file ([`UnifiedLogPattern`]), its validation, and the message matcher
//! (wildcards with capturing placeholders; syntax in [`crate::unified_log`]).
//! One module owns all three, so the tuning loader and the unified-log
//! parser both depend on it and not on each other.

use crate::schema::{Action, Severity};
use crate::wildcard::Patterns;
use serde::Deserialize;

/// At most this many bytes of a message are matched against patterns.
pub const MATCH_MAX: usize = 8 * 1024;
/// Longest message pattern accepted.
pub const PATTERN_MAX: usize = 512;
/// Memory one compiled message pattern may use (the `regex` crate's
/// compiled-program and lazy-DFA cache limits): tuning files supply
/// patterns, so their cost is bounded here as well as by [`PATTERN_MAX`].
pub const PATTERN_MEMORY_MAX: usize = 1 << 20;

/// Actions a unified-log pattern may give a row: a checked subset of
/// [`Action::ALL`] (a pattern naming another action is refused), besides
/// [`PatternAction::Ignore`] for known noise.
pub const UNIFIED_LOG_ACTIONS: &[Action] = &[
    Action::KeychainUnlock,
    Action::KeychainPrompt,
    Action::KeychainDbOpen,
    Action::KeychainAuth,
    Action::AuthorizationRight,
    Action::KeychainPromptAnswer,
    Action::KeychainApi,
];

/// What a matching record becomes: a row with this action, or nothing
/// (`ignore`: known noise, counted as `unified_log_ignored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternAction {
    Row(Action),
    Ignore,
}

impl PatternAction {
    /// The name a tuning file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternAction::Row(a) => a.as_str(),
            PatternAction::Ignore => "ignore",
        }
    }

    /// The names a pattern may use, comma-separated.
    pub fn names() -> String {
        UNIFIED_LOG_ACTIONS
            .iter()
            .map(|a| a.as_str())
            .chain(["ignore"])
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::str::FromStr for PatternAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ignore" => Ok(PatternAction::Ignore),
            _ => s
                .parse::<Action>()
                .ok()
                .filter(|a| UNIFIED_LOG_ACTIONS.contains(a))
                .map(PatternAction::Row)
                .ok_or_else(|| format!("unknown action `{s}` (one of {})", Self::names())),
        }
    }
}

impl<'de> Deserialize<'de> for PatternAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Record kinds a unified-log pattern applies to: `log` (`eventType`
/// `logEvent`, the default) or `activity` (`activityCreateEvent`: the
/// activity name is the message, logged in the calling process).
pub const UNIFIED_LOG_EVENTS: &[&str] = &["log", "activity"];

/// Levels a message is logged at (`messageType`; activities have none).
pub const LOG_LEVELS: &[&str] = &["default", "info", "debug", "error", "activity"];

/// Kinds of evidence behind a pattern's message text.
pub const EVIDENCE: &[&str] = &[
    "log_capture",
    "apple_source",
    "article",
    "synthetic",
    "none",
];

/// One unified-log message pattern as written in the tuning file. See
/// [`crate::unified_log`] for the matcher syntax and semantics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnifiedLogPattern {
    /// Unique id (letters, digits, `.`, `_`, `-`); shown in the row's reason.
    pub id: String,
    /// The row's action (one of [`UNIFIED_LOG_ACTIONS`]), or `ignore`.
    pub action: PatternAction,
    /// Wildcards on the record's `subsystem` (`""` when it has none).
    #[serde(default)]
    pub subsystem: Option<Patterns>,
    /// Wildcards on the record's `category`.
    #[serde(default)]
    pub category: Option<Patterns>,
    /// Wildcards on the basename of the record's `processImagePath`.
    #[serde(default)]
    pub process: Option<Patterns>,
    /// Wildcards on the whole `processImagePath` (two binaries are called
    /// `securityd`: `/usr/sbin/securityd` and `/usr/libexec/securityd`).
    #[serde(default)]
    pub process_path: Option<Patterns>,
    /// Wildcards on the whole `processImagePath` that exclude a record
    /// (activity volume: Apple's own daemons under `/System/`). A literal
    /// prefix ending in one `*` also goes into the `log stream` predicate.
    #[serde(default)]
    pub process_path_except: Option<Patterns>,
    /// Wildcards on the basename of `senderImagePath` (the library that
    /// logged, e.g. `Security` for Security.framework).
    #[serde(default)]
    pub sender: Option<Patterns>,
    /// `log` (default) or `activity`.
    #[serde(default)]
    pub event: Option<String>,
    /// Message matchers (any may match): wildcards with placeholders.
    pub message: Patterns,
    /// Wildcards the `{right}` placeholder's value must match.
    #[serde(default)]
    pub right: Option<Patterns>,
    /// Wildcards the `{keychain}` placeholder's value must match.
    #[serde(default)]
    pub keychain: Option<Patterns>,
    /// `info`, `low`, `medium` or `high` (not for `ignore`).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Why this is keychain access, in words (goes into the row's reason).
    pub reason: String,
    /// Citation: where the message text comes from.
    pub source: String,
    /// The macOS release the text was seen on, or `unconfirmed`.
    pub seen_on: String,
    /// True only when a captured log line from a known release shows the text.
    pub confirmed: bool,
    /// `log_capture`, `apple_source`, `article`, `synthetic` or `none`.
    #[serde(default)]
    pub evidence: Option<String>,
    /// The level the text is logged at (`default`, `info`, `debug`,
    /// `error`, or `activity`), and since which release, in `levels`.
    #[serde(default)]
    pub level: Option<String>,
    /// What each release family logs, in words (README table).
    #[serde(default)]
    pub levels: Option<String>,
}

/// What a placeholder captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    Pid,
    Client,
    Keychain,
    Right,
    Item,
    Creator,
    CreatorPid,
    Partition,
}

impl Capture {
    fn from_name(n: &str) -> Option<Self> {
        match n {
            "pid" => Some(Capture::Pid),
            "client" => Some(Capture::Client),
            "keychain" => Some(Capture::Keychain),
            "right" => Some(Capture::Right),
            "item" => Some(Capture::Item),
            "creator" => Some(Capture::Creator),
            "creator_pid" => Some(Capture::CreatorPid),
            "partition" => Some(Capture::Partition),
            _ => None,
        }
    }

    /// Digit-run placeholders (`{pid}`, `{creator_pid}`).
    fn is_digits(self) -> bool {
        matches!(self, Capture::Pid | Capture::CreatorPid)
    }
}

/// The placeholders the matcher knows, for error messages.
const PLACEHOLDERS: &str =
    "{pid}, {client}, {keychain}, {right}, {item}, {creator}, {creator_pid}, {partition}";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Char(char),
    AnyChar,
    Star(Option<Capture>),
    Digits(Option<Capture>),
}

/// A compiled message pattern: the placeholders it captures, in order, and
/// the anchored regular expression it is translated to (module docs of
/// [`crate::unified_log`] give the syntax).
///
/// Matching runs in the `regex` crate, whose engines take time linear in
/// the message for any pattern (no backtracking blow-up), so no step budget
/// is needed; [`PATTERN_MAX`] and [`PATTERN_MEMORY_MAX`] bound a pattern's
/// size. The translation keeps the matcher's documented choices: `*` and
/// text placeholders are lazy (the text after them is placed at its
/// leftmost occurrence), `{client}` is greedy (the longest value that lets
/// the rest match: a client path may contain what the daemon writes after
/// it), `{pid}` is a run of ASCII digits.
#[derive(Debug, Clone)]
pub struct MessagePattern {
    regex: regex::Regex,
    /// The capture group of each placeholder (group `i + 1` is `captures[i]`).
    captures: Vec<Capture>,
}

/// Values captured by a match (`<private>` and empty values are `None`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captures {
    pub pid: Option<i64>,
    pub client: Option<String>,
    pub keychain: Option<String>,
    pub right: Option<String>,
    /// The keychain item's description (`desc:` of the prompt's ACL text).
    pub item: Option<String>,
    /// authd: the process that created the authorization (the actor when
    /// the client is a system helper, as for trust settings).
    pub creator: Option<String>,
    pub creator_pid: Option<i64>,
    /// securityd's partition id of a client (`apple-tool:`, `teamid:...`,
    /// `cdhash:...`).
    pub partition: Option<String>,
}

fn tokenize_pattern(p: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => toks.push(Tok::Char(n)),
                None => return Err("a trailing `\\` escapes nothing".into()),
            },
            '*' => toks.push(Tok::Star(None)),
            '?' => toks.push(Tok::AnyChar),
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    name.push(n);
                    if name.len() > 16 {
                        break;
                    }
                }
                if !closed {
                    return Err(format!(
                        "unclosed placeholder `{{{name}`; write `\\{{` for a literal brace"
                    ));
                }
                match Capture::from_name(&name) {
                    Some(c) if c.is_digits() => toks.push(Tok::Digits(Some(c))),
                    Some(other) => toks.push(Tok::Star(Some(other))),
                    None => {
                        return Err(format!(
                            "unknown placeholder `{{{name}}}` (known: {PLACEHOLDERS})"
                        ))
                    }
                }
            }
            c => toks.push(Tok::Char(c)),
        }
    }
    Ok(toks)
}

impl MessagePattern {
    /// Compile a message pattern; the error says what is wrong.
    pub fn compile(p: &str) -> Result<Self, String> {
        if p.is_empty() {
            return Err("empty message pattern".into());
        }
        if p.len() > PATTERN_MAX {
            return Err(format!("message pattern longer than {PATTERN_MAX} bytes"));
        }
        let toks = tokenize_pattern(p)?;
        let mut seen: Vec<Capture> = Vec::new();
        for t in &toks {
            if let Tok::Star(Some(c)) | Tok::Digits(Some(c)) = t {
                if seen.contains(c) {
                    return Err(format!("placeholder {c:?} appears twice"));
                }
                seen.push(*c);
            }
        }
        let mut captures: Vec<Capture> = Vec::new();
        // `(?s)`: `*` and `?` match any character, newlines included.
        let mut re = String::from(r"(?s)\A");
        // What the previous token was: a variable part (`*`, text
        // placeholder) or a digit run, for the "may not touch" rules.
        let (mut prev_star, mut prev_digits) = (false, false);
        for t in toks {
            match t {
                Tok::Star(cap) => {
                    if prev_star {
                        return Err(
                            "two variable parts (`*` or a text placeholder) touch; put literal text between them"
                                .into(),
                        );
                    }
                    match cap {
                        None => re.push_str(".*?"),
                        Some(c) => {
                            captures.push(c);
                            re.push_str(if c == Capture::Client {
                                "(.*)"
                            } else {
                                "(.*?)"
                            });
                        }
                    }
                    (prev_star, prev_digits) = (true, false);
                }
                Tok::Digits(cap) => {
                    if prev_digits {
                        return Err("two digit runs (`{pid}`, `{creator_pid}`) touch".into());
                    }
                    match cap {
                        None => re.push_str("[0-9]+"),
                        Some(c) => {
                            captures.push(c);
                            re.push_str("([0-9]+)");
                        }
                    }
                    (prev_star, prev_digits) = (false, true);
                }
                Tok::AnyChar => {
                    re.push('.');
                    (prev_star, prev_digits) = (false, false);
                }
                Tok::Char(c) => {
                    re.push_str(&regex::escape(c.encode_utf8(&mut [0u8; 4])));
                    (prev_star, prev_digits) = (false, false);
                }
            }
        }
        re.push_str(r"\z");
        let regex = regex::RegexBuilder::new(&re)
            .size_limit(PATTERN_MEMORY_MAX)
            .dfa_size_limit(PATTERN_MEMORY_MAX)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => {
                    format!(
                        "message pattern too complex (over {PATTERN_MEMORY_MAX} bytes compiled)"
                    )
                }
                e => format!("message pattern does not compile: {e}"),
            })?;
        Ok(MessagePattern { regex, captures })
    }

    /// Whether the pattern has this placeholder.
    pub fn has_capture(&self, c: Capture) -> bool {
        self.captures.contains(&c)
    }

    /// Match the whole text; `Some` with the captures on success.
    pub fn matches(&self, text: &str) -> Option<Captures> {
        // The lazy DFA answers "no" cheaply; groups only for a match.
        if !self.regex.is_match(text) {
            return None;
        }
        let groups = self.regex.captures(text)?;
        let mut out = Captures::default();
        for (i, c) in self.captures.iter().enumerate() {
            let v = groups.get(i + 1).map_or("", |m| m.as_str().trim());
            if v.is_empty() || v == "<private>" {
                continue;
            }
            match c {
                Capture::Pid => out.pid = v.parse().ok(),
                Capture::Client => out.client = Some(v.to_string()),
                Capture::Keychain => out.keychain = Some(v.to_string()),
                Capture::Right => out.right = Some(v.to_string()),
                Capture::Item => out.item = Some(v.to_string()),
                Capture::Creator => out.creator = Some(v.to_string()),
                Capture::CreatorPid => out.creator_pid = v.parse().ok(),
                Capture::Partition => out.partition = Some(v.to_string()),
            }
        }
        Some(out)
    }
}

/// The literal part of a wildcard usable as a raw-bytes needle: the longest
/// run without wildcard characters or characters JSON may escape.
pub(crate) fn wildcard_needle(p: &str) -> Option<&str> {
    p.split(|c: char| matches!(c, '*' | '?' | '/' | '\\' | '"') || c.is_control() || !c.is_ascii())
        .max_by_key(|s| s.len())
        .filter(|s| s.len() >= 3)
}

fn check_wildcards(field: &str, p: &Patterns) -> Result<(), String> {
    let list = p.list();
    if list.is_empty() {
        return Err(format!("`{field}` is an empty list"));
    }
    for w in list {
        if wildcard_needle(w).is_none() {
            return Err(format!(
                "`{field}` wildcard `{w}` needs a literal run of at least 3 plain characters (the byte prefilter looks for it)"
            ));
        }
    }
    Ok(())
}

/// Validate one pattern as written in the tuning file.
pub fn validate_pattern(p: &UnifiedLogPattern) -> Result<(), String> {
    if p.id.is_empty()
        || p.id.len() > 64
        || !p
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("`id` must be 1-64 letters, digits, `.`, `_` or `-`".into());
    }
    // `action` and `severity` are checked as they are read (their types
    // are the closed sets); what is left is the pairing.
    if p.severity.is_none() && p.action != PatternAction::Ignore {
        return Err(format!(
            "`severity` is required ({})",
            Severity::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let activity = match p.event.as_deref() {
        None | Some("log") => false,
        Some("activity") => true,
        Some(e) => {
            return Err(format!(
                "unknown event `{e}` (one of {})",
                UNIFIED_LOG_EVENTS.join(", ")
            ))
        }
    };
    if activity {
        // The activity names are the prefilter's needles: each must be
        // plain text the byte prefilter can find.
        for m in p.message.list() {
            if m.contains(['*', '?', '{', '\\']) || wildcard_needle(m) != Some(m) {
                return Err(format!(
                    "activity name `{m}` must be a plain name (no wildcards), at least 3 characters"
                ));
            }
        }
        if p.sender.is_none() && p.process.is_none() && p.process_path.is_none() {
            return Err(
                "an activity pattern needs `sender`, `process` or `process_path` (activity names alone are not specific)"
                    .into(),
            );
        }
    } else if p.subsystem.is_none() && p.process.is_none() {
        return Err(
            "a pattern needs `subsystem` or `process` (a message alone would have every record parsed)"
                .into(),
        );
    }
    if let Some(s) = &p.subsystem {
        check_wildcards("subsystem", s)?;
    }
    if let Some(s) = &p.process {
        check_wildcards("process", s)?;
    }
    for (name, f) in [
        ("process_path", &p.process_path),
        ("process_path_except", &p.process_path_except),
        ("sender", &p.sender),
    ] {
        if f.as_ref().is_some_and(|f| f.list().is_empty()) {
            return Err(format!("`{name}` is an empty list"));
        }
    }
    if let Some(l) = &p.level {
        if !LOG_LEVELS.contains(&l.as_str()) {
            return Err(format!(
                "unknown level `{l}` (one of {})",
                LOG_LEVELS.join(", ")
            ));
        }
    }
    if let Some(c) = &p.category {
        if c.list().is_empty() {
            return Err("`category` is an empty list".into());
        }
    }
    let messages = p.message.list();
    if messages.is_empty() {
        return Err("`message` is an empty list".into());
    }
    for m in &messages {
        let compiled = MessagePattern::compile(m).map_err(|e| format!("message `{m}`: {e}"))?;
        if p.right.is_some() && !compiled.has_capture(Capture::Right) {
            return Err(format!(
                "`right` filters on `{{right}}`, but message `{m}` has no `{{right}}`"
            ));
        }
        if p.keychain.is_some() && !compiled.has_capture(Capture::Keychain) {
            return Err(format!(
                "`keychain` filters on `{{keychain}}`, but message `{m}` has no `{{keychain}}`"
            ));
        }
    }
    if p.reason.trim().is_empty() {
        return Err("`reason` is empty".into());
    }
    if p.source.trim().is_empty() {
        return Err("`source` is empty: cite where the message text comes from".into());
    }
    if p.seen_on.trim().is_empty() {
        return Err("`seen_on` is empty: a macOS release or `unconfirmed`".into());
    }
    if let Some(e) = &p.evidence {
        if !EVIDENCE.contains(&e.as_str()) {
            return Err(format!(
                "unknown evidence `{e}` (one of {})",
                EVIDENCE.join(", ")
            ));
        }
    }
    if p.confirmed {
        if p.seen_on.trim().eq_ignore_ascii_case("unconfirmed") {
            return Err("`confirmed: true` needs the release in `seen_on`".into());
        }
        if p.evidence.as_deref().is_some_and(|e| e != "log_capture") {
            return Err(
                "`confirmed: true` means a captured log line (`evidence: log_capture`)".into(),
            );
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) spec: UnifiedLogPattern,
    pub(crate) messages: Vec<MessagePattern>,
}

/// The fields of a record a pattern's conditions look at.
pub(crate) struct Where<'a> {
    pub(crate) activity: bool,
    pub(crate) subsystem: &'a str,
    pub(crate) category: &'a str,
    pub(crate) process: &'a str,
    pub(crate) process_path: &'a str,
    pub(crate) sender: &'a str,
}

impl Compiled {
    pub(crate) fn is_activity(&self) -> bool {
        self.spec.event.as_deref() == Some("activity")
    }

    pub(crate) fn applies(&self, w: &Where<'_>) -> bool {
        let any = |p: &Option<Patterns>, v: &str| match p {
            None => true,
            Some(p) => p.any(Some(v)),
        };
        self.is_activity() == w.activity
            && any(&self.spec.subsystem, w.subsystem)
            && any(&self.spec.category, w.category)
            && any(&self.spec.process, w.process)
            && any(&self.spec.process_path, w.process_path)
            && any(&self.spec.sender, w.sender)
    }

    pub(crate) fn excluded(&self, process_path: &str) -> bool {
        self.spec
            .process_path_except
            .as_ref()
            .is_some_and(|p| p.any(Some(process_path)))
    }

    pub(crate) fn matches(&self, message: &str) -> Option<Captures> {
        let caps = self.messages.iter().find_map(|m| m.matches(message))?;
        if let Some(r) = &self.spec.right {
            if !r.any(caps.right.as_deref()) {
                return None;
            }
        }
        if let Some(k) = &self.spec.keychain {
            if !k.any(caps.keychain.as_deref()) {
                return None;
            }
        }
        Some(caps)
    }
}

/// The part of a message that patterns see: trimmed, at most [`MATCH_MAX`]
/// bytes (cut on a character boundary).
pub(crate) fn match_text(m: &str) -> &str {
    let m = m.trim();
    if m.len() <= MATCH_MAX {
        return m;
    }
    let mut cut = MATCH_MAX;
    while cut > 0 && !m.is_char_boundary(cut) {
        cut -= 1;
    }
    m.get(..cut).unwrap_or("")
}
