//! Unified-log NDJSON (`log show|stream --style ndjson`) as a second source.
//!
//! The unified log sees what Endpoint Security cannot: the keychain prompt
//! securityd raises for a client (from macOS 15.4 naming the item) and the
//! user's answer, the client's partition, keychain unlocks, authd's
//! authorization rights, and the Security API activities a process creates
//! when it calls the keychain (the only trace of a read its access list
//! already allows). This module turns such records into
//! `keychain_access_events` rows with `source = 'unified_log'` and
//! `event_type = 'log'`.
//!
//! # Input
//!
//! One JSON object per line, as `log stream --style ndjson` and `log show
//! --style ndjson` print them (the shape of a real line quoted by a public
//! `log stream` parser's test, infinitehaiku/ih-muse-macos): keys
//! `eventMessage`, `subsystem`, `category`, `processImagePath`,
//! `senderImagePath`, `processID`, `userID`, `threadID`, `timestamp`,
//! `messageType`, `eventType`, `formatString`, `machTimestamp`, ... Missing
//! and unknown keys are tolerated; a key of an unexpected type reads as
//! missing. `log stream` first prints a banner (`Filtering the log data
//! using "..."`), which the scanner skips and counts (`banner_lines`).
//! `eventType == "logEvent"` records (or records without `eventType`) are
//! matched by `log` patterns; `activityCreateEvent` records (the activity
//! name is `eventMessage`, the calling process is `processImagePath`, the
//! library is `senderImagePath`) by `activity` patterns; other event types,
//! and activities no pattern names, are counted (`unified_log_other_events`).
//!
//! Timestamps are local time with the UTC offset of the Mac that logged
//! them (`2026-10-04 17:50:33.803491+0200`); [`parse_log_timestamp`]
//! converts them with plain arithmetic ([`crate::text::civil_to_unix`] minus
//! the offset: no time-zone database, no DST rules needed, since the offset
//! is written in the record). `+0200`, `-0700`, `+0000`, `+02:00`, `+02`
//! and `Z` are accepted. A record whose timestamp cannot be read still
//! makes its row (time NULL), counted as `unified_log_bad_time`.
//!
//! # Pipeline and counters
//!
//! 1. Byte-level prefilter (as for ES): a line is parsed only if it contains
//!    a needle of the keychain components (`securityd`, `secd`,
//!    `SecurityAgent`, `authd`, `security`, `com.apple.Authorization`, plus
//!    the literal parts of every pattern's `subsystem` / `process`).
//!    Others: `prefiltered`.
//! 2. JSON parse (bad: `malformed`), event type filter.
//! 3. Relevance: the record's subsystem or process is a keychain component
//!    (built-in list above, or named by a pattern). Others: `prefiltered`.
//!    (Activities: any process; the pattern's `sender` and names decide.)
//! 4. Patterns, in order, first match wins. No match: `unified_log_unmatched`
//!    (a relevant record we could not place: watch this number after a macOS
//!    update). Action `ignore`, or a `process_path_except` path:
//!    `unified_log_ignored` (known noise). An activity already rowed for the
//!    same process, path and name within
//!    [`crate::keychain_prompts::ACTIVITY_REPEAT_SECS`]:
//!    `unified_log_activity_repeats`.
//! 5. [`crate::keychain_prompts::PromptTracker`] links answers to prompts
//!    and partitions to prompts, and may raise the severity.
//! 6. A row.
//!
//! # Patterns are data
//!
//! Message texts differ between macOS releases and are often `<private>`,
//! so the patterns live in the tuning JSON (`unified_log_patterns` in
//! `tuning/default.json`, type [`crate::tuning::UnifiedLogPattern`]), not
//! in code. A fleet adds one without a rebuild:
//!
//! ```json
//! { "version": 1, "rules": [ ... ],
//!   "unified_log_patterns_mode": "extend",
//!   "unified_log_patterns": [
//!     { "id": "fleet-example", "action": "keychain_prompt", "process": "securityd",
//!       "message": "displaying keychain prompt for {client}({pid})",
//!       "severity": "low", "reason": "...", "source": "our capture 2026-05-01",
//!       "seen_on": "macOS 15.5", "confirmed": true, "evidence": "log_capture" } ] }
//! ```
//!
//! given as `--tuning FILE` to `scan`, `query` and `pack run`, or as the
//! extension config's `tuning` file. `extend` puts the file's patterns in
//! front of the built-in ones (a file pattern with a built-in id replaces
//! it); without it the file's list replaces the built-in list; a file
//! without the key keeps the built-in list. (`--tuning FILE` replaces the
//! allowlist *rules* either way; copy the default rules you want to keep.)
//!
//! Each pattern cites its `source`, the release it was `seen_on`, and
//! whether it is `confirmed`: true only when a captured log line from a
//! known release shows the text. `evidence` says what the text rests on:
//! `log_capture`, `apple_source` (a format string in Apple's published
//! Security/authd source, release not pinned), `article`, `synthetic` or
//! `none`. Validation errors name the pattern (`unified_log_patterns[3]
//! (id): ...`).
//!
//! ## Matcher
//!
//! `subsystem`, `category`, `process` (the basename of `processImagePath`),
//! `process_path` (the whole `processImagePath`: two binaries are called
//! `securityd`, and any process may log under any subsystem, so securityd's
//! patterns name `/usr/sbin/securityd`), `process_path_except` and `sender`
//! (the basename of `senderImagePath`) are [`crate::tuning::wildcard`]s;
//! `event` is `log` (default) or `activity`. `message` is one
//! or a list of message patterns (any may match) against the whole
//! `eventMessage` (trimmed; at most [`MATCH_MAX`] bytes are looked at):
//!
//! * literal text matches itself (case-sensitive);
//! * `*` matches any run of characters (shortest that lets the rest match);
//! * `?` matches one character;
//! * `{pid}` matches one or more ASCII digits (greedy) and captures the
//!   client's process id;
//! * `{creator_pid}` likewise captures authd's creator pid;
//! * `{client}`, `{keychain}`, `{right}`, `{item}`, `{creator}`,
//!   `{partition}` match like `*` and capture the client (a path or a name),
//!   the keychain path, the authorization right, the item's description
//!   (`desc:` of securityd's ACL text), authd's creator of the authorization,
//!   securityd's partition id of the client;
//! * `\*`, `\?`, `\{`, `\\` are literal.
//!
//! Two variable parts (`*` or a capturing `{...}` other than `{pid}`) may not
//! touch. Matching is a left-to-right search: the text between variable
//! parts is placed at its leftmost occurrence (the last one must end the
//! message), so the cost is at most (message length x pattern length) per
//! pattern, with no backtracking blow-up, and a hard budget
//! ([`MATCH_BUDGET`] bytes examined) caps even that. One exception:
//! `{client}` takes the longest value that lets the rest match, because a
//! client path may contain what the daemon writes after it (`(12); ACL: `
//! in a folder name); its following text is tried from the rightmost
//! occurrence, still under the budget. A captured `<private>` counts as not
//! captured. The optional `right` and `keychain` fields filter on the
//! `{right}` and `{keychain}` captures (e.g. only keychain rights, only
//! paths under `/Keychains/`).
//!
//! # Rows
//!
//! * `source = 'unified_log'`, `event_type = 'log'`, `technique =
//!   'T1555.001'`, `action` and `severity` from the pattern.
//! * The actor (`pid`, `path`, ...) is the process whose keychain access the
//!   record is about: authd's creator of the authorization (`{creator}`,
//!   `{creator_pid}`: for trust settings the client is a system helper such
//!   as `ocspd`), else the client the message names (`{pid}`, `{client}` when
//!   it is an absolute path), else the logging process itself (for
//!   `atomicfile` lines and activities, the process that called
//!   Security.framework). When the
//!   actor's pid is in the scanner's process cache (from eslogger exec/fork
//!   events of the same stream), the row is enriched from it: path,
//!   command line, signing facts, parent and ancestors.
//! * The logging daemon (for example securityd), the subsystem/category, the
//!   pattern id and its evidence (`confirmed on <release>`, `text from
//!   Apple's format string only`, `message text unconfirmed`) are written
//!   into `reason`, so a responder sees who said it and how sure we are; so
//!   are the item (``item `...` ``), the authd client, the partition and the
//!   user's answer.
//! * `target_path` = the `{keychain}` capture; `message` = the
//!   `eventMessage`, redacted ([`crate::redact::redact_text`]), with control
//!   characters escaped and capped at [`MESSAGE_MAX`] bytes.
//! * `uid` is the record's `userID` when the actor is the logging process.
//! * `eid` = hash of (`timestamp`, `processID`, `threadID`, `machTimestamp`,
//!   `eventMessage`): the same record read by `log show` and by `log stream`
//!   gets the same eid.
//! * Tuning rules apply as for ES rows (facts: the action, the actor as far
//!   as known, `target_path`).
//! * `correlation_id`: see [`crate::correlate`].
//!
//! # What is confirmed and what is not
//!
//! Each built-in pattern says so itself (`evidence`, `confirmed`, `source`
//! quoting the real line and where it was published, `level`, `levels` per
//! release family); the README's "Unified log" section tabulates them, and
//! `tests/fixtures/unified_log/real_lines.json` replays the real lines
//! verbatim. Not found anywhere: a SecurityAgent log line about the keychain
//! dialog ("wants to use your confidential information" is dialog text) or
//! a keychain message of the `security` tool itself (its keychain lines come
//! from Security.framework in-process: activities and `integrity` lines).
//! A process that copies `login.keychain-db` itself never goes through
//! Security.framework and leaves no unified-log line: only ESF sees it.
//!
//! Any process can log under any subsystem name, so a unified-log row is a
//! claim, not proof; patterns that matter name the `process` as well (the
//! logging system, not the logger, fills `processImagePath`).

use crate::keychain_prompts::{max_severity, Observation, PromptTracker};
use crate::procs::{ProcInfo, ProcessCache};
use crate::redact::redact_text;
use crate::scan::ScanStats;
use crate::schema::{KeychainAccess, TECHNIQUE};
use crate::text::{basename, civil_to_unix, sanitize, truncate, Fnv64};
use crate::tuning::{
    Facts, Patterns, Tuning, UnifiedLogPattern, EVIDENCE, LOG_LEVELS, SEVERITIES,
    UNIFIED_LOG_ACTIONS, UNIFIED_LOG_EVENTS,
};
use aho_corasick::AhoCorasick;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;

/// At most this many bytes of a message are matched against patterns.
pub const MATCH_MAX: usize = 8 * 1024;
/// Messages in rows are capped at this many bytes.
pub const MESSAGE_MAX: usize = 8 * 1024;
/// Longest message pattern accepted.
pub const PATTERN_MAX: usize = 512;
/// Bytes one message-pattern match may examine before it gives up (no
/// match). Typical matches use a few hundred.
pub const MATCH_BUDGET: usize = 256 * 1024;

/// Subsystems that always count as keychain components.
pub const RELEVANT_SUBSYSTEMS: &[&str] = &["com.apple.securityd", "com.apple.Authorization"];
/// Process basenames that always count as keychain components.
pub const RELEVANT_PROCESSES: &[&str] =
    &["securityd", "secd", "SecurityAgent", "authd", "security"];

/// Arguments for the live source, before `--predicate`.
///
/// `--level default`: every line the built-in patterns need is logged at
/// Default level by the releases that log it visibly (securityd's `kcacl`,
/// `integrity` and `clientid` lines, `%p(%p) unlocking for makeUnlocked()`,
/// authd's rights) or is an activity (no level). `Info` adds only the
/// `Syslog::info` copies of the `kcacl` lines (same text, no subsystem:
/// duplicates). `Debug` would add the client-side `opened <keychain>: N
/// bytes` line (Debug since macOS 10.13) and the other `KCdb` lines, at a
/// cost paid by the whole Mac: Debug logging is disabled by default
/// (os_log(5): "Debug level logging is disabled"), so a Debug-level stream
/// has the processes that log under a streamed subsystem format and send
/// Debug messages they otherwise drop (inferred from the man page; not
/// measured here), and `com.apple.securityd` is used in-process by every
/// program that touches the keychain. The extension therefore streams
/// Default; run `log stream --level debug` by hand for an investigation.
pub const LOG_STREAM_ARGS: &[&str] = &["stream", "--style", "ndjson", "--level", "default"];

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A wildcard usable in a predicate as `BEGINSWITH`: a literal prefix
/// ending in one `*`.
fn literal_prefix(w: &str) -> Option<&str> {
    let p = w.strip_suffix('*')?;
    (!p.is_empty() && !p.contains(['*', '?'])).then_some(p)
}

/// The `log stream --predicate` for the live source.
///
/// Log events: the built-in keychain components plus every wildcard-free
/// `subsystem` and `process` the patterns name (a pattern with a wildcard
/// there is still matched, but its records only arrive if the predicate
/// lets them through: name it literally, or widen the predicate in the
/// extension's config). `process_path` conditions are checked by the
/// parser, not the predicate (the basename is in `process ==`).
///
/// Activities (the volume control): only `activityCreateEvent` records whose
/// name is one the activity patterns list (`eventMessage IN {...}`), not
/// from a path the patterns exclude (`NOT processImagePath BEGINSWITH
/// "/System/"` ...). Security.framework creates an activity for each public
/// call, in every process; without the name list every activity of every
/// process on the Mac would be streamed.
pub fn log_stream_predicate(tuning: &Tuning) -> String {
    let mut subsystems: Vec<String> = RELEVANT_SUBSYSTEMS.iter().map(|s| s.to_string()).collect();
    let mut processes: Vec<String> = RELEVANT_PROCESSES.iter().map(|s| s.to_string()).collect();
    let mut activities: Vec<String> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    let push = |list: &mut Vec<String>, w: &str| {
        if !w.is_empty() && !w.contains(['*', '?']) && !list.iter().any(|x| x == w) {
            list.push(w.to_string());
        }
    };
    for p in &tuning.unified_log_patterns {
        if p.event.as_deref() == Some("activity") {
            if p.action == "ignore" {
                continue;
            }
            for w in p.message.list() {
                push(&mut activities, w);
            }
            for w in p.process_path_except.iter().flat_map(|f| f.list()) {
                if let Some(prefix) = literal_prefix(w) {
                    push(&mut excluded, prefix);
                }
            }
            continue;
        }
        for w in p.subsystem.iter().flat_map(|f| f.list()) {
            push(&mut subsystems, w);
        }
        for w in p.process.iter().flat_map(|f| f.list()) {
            push(&mut processes, w);
        }
    }
    let logs = subsystems
        .iter()
        .map(|s| format!("subsystem == {}", quote(s)))
        .chain(processes.iter().map(|p| format!("process == {}", quote(p))))
        .collect::<Vec<_>>()
        .join(" OR ");
    if activities.is_empty() {
        return logs;
    }
    let names = activities
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(", ");
    let mut act = format!("eventType == activityCreateEvent AND eventMessage IN {{{names}}}");
    for e in &excluded {
        act.push_str(&format!(
            " AND NOT processImagePath BEGINSWITH {}",
            quote(e)
        ));
    }
    format!("(eventType == logEvent AND ({logs})) OR ({act})")
}

/// Whether a JSON line is a unified-log record rather than an eslogger one.
pub fn looks_like_unified_log(line: &[u8]) -> bool {
    use memchr::memmem::find;
    find(line, b"\"event_type\"").is_none()
        && (find(line, b"\"eventMessage\"").is_some() || find(line, b"\"eventType\"").is_some())
}

// ---------------------------------------------------------------------------
// Timestamps

fn digits(b: &[u8], start: usize, n: usize) -> Option<i64> {
    let s = b.get(start..start + n)?;
    let mut v: i64 = 0;
    for c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parse a unified-log timestamp (`2026-10-04 17:50:33.803491+0200`) into
/// unix seconds (fractions dropped, i.e. floored). Accepts a `T` instead of
/// the space and offsets `±HHMM`, `±HH:MM`, `±HH` or `Z`. No offset, or
/// anything else after the seconds, is rejected: the local time of an
/// unknown zone cannot be placed.
pub fn parse_log_timestamp(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let y = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (mo, d) = (digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !matches!(b.get(10), Some(b' ' | b'T' | b't')) {
        return None;
    }
    let h = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (mi, se) = (digits(b, 14, 2)?, digits(b, 17, 2)?);
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let rest = b.get(i + 1..)?;
            let (oh, om) = match rest.len() {
                2 => (digits(rest, 0, 2)?, 0),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                5 if rest.get(2) == Some(&b':') => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    civil_to_unix(y, mo, d, h, mi, se).map(|t| t - offset)
}

// ---------------------------------------------------------------------------
// The record

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// One unified-log record (the keys this module reads; others are ignored).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct LogRecord {
    #[serde(rename = "eventMessage", deserialize_with = "lenient_string")]
    pub event_message: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subsystem: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub category: Option<String>,
    #[serde(rename = "processImagePath", deserialize_with = "lenient_string")]
    pub process_image_path: Option<String>,
    #[serde(rename = "senderImagePath", deserialize_with = "lenient_string")]
    pub sender_image_path: Option<String>,
    #[serde(rename = "processID", deserialize_with = "lenient_i64")]
    pub process_id: Option<i64>,
    #[serde(rename = "userID", deserialize_with = "lenient_i64")]
    pub user_id: Option<i64>,
    #[serde(rename = "threadID", deserialize_with = "lenient_u64")]
    pub thread_id: Option<u64>,
    #[serde(rename = "machTimestamp", deserialize_with = "lenient_u64")]
    pub mach_timestamp: Option<u64>,
    #[serde(deserialize_with = "lenient_string")]
    pub timestamp: Option<String>,
    #[serde(rename = "messageType", deserialize_with = "lenient_string")]
    pub message_type: Option<String>,
    #[serde(rename = "eventType", deserialize_with = "lenient_string")]
    pub event_type: Option<String>,
    #[serde(rename = "formatString", deserialize_with = "lenient_string")]
    pub format_string: Option<String>,
}

/// Parse one record (a JSON object; anything else is an error).
pub fn parse_record(line: &str) -> Result<LogRecord, serde_json::Error> {
    if !line.trim_start().starts_with('{') {
        return Err(serde::de::Error::custom(
            "a unified-log record is a JSON object",
        ));
    }
    serde_json::from_str(line)
}

// ---------------------------------------------------------------------------
// Message patterns

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
enum Elem {
    Lit(String),
    AnyChar,
    Digits(Option<Capture>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Char(char),
    AnyChar,
    Star(Option<Capture>),
    Digits(Option<Capture>),
}

/// A compiled message pattern: a first unit, then (variable part, unit)
/// pairs. Units are fixed sequences (literals, `?`, `{pid}`).
#[derive(Debug, Clone)]
pub struct MessagePattern {
    first: Vec<Elem>,
    rest: Vec<(Option<Capture>, Vec<Elem>)>,
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

fn push_elem(unit: &mut Vec<Elem>, t: Tok) {
    match t {
        Tok::Char(c) => {
            if let Some(Elem::Lit(s)) = unit.last_mut() {
                s.push(c);
            } else {
                unit.push(Elem::Lit(c.to_string()));
            }
        }
        Tok::AnyChar => unit.push(Elem::AnyChar),
        Tok::Digits(c) => unit.push(Elem::Digits(c)),
        Tok::Star(_) => {}
    }
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
        let mut first: Vec<Elem> = Vec::new();
        let mut rest: Vec<(Option<Capture>, Vec<Elem>)> = Vec::new();
        let mut prev_digits = false;
        for t in toks {
            match t {
                Tok::Star(cap) => {
                    if let Some((_, unit)) = rest.last() {
                        if unit.is_empty() {
                            return Err(
                                "two variable parts (`*` or a text placeholder) touch; put literal text between them"
                                    .into(),
                            );
                        }
                    }
                    rest.push((cap, Vec::new()));
                    prev_digits = false;
                }
                t => {
                    let is_digits = matches!(t, Tok::Digits(_));
                    if is_digits && prev_digits {
                        return Err("two digit runs (`{pid}`, `{creator_pid}`) touch".into());
                    }
                    prev_digits = is_digits;
                    match rest.last_mut() {
                        Some((_, unit)) => push_elem(unit, t),
                        None => push_elem(&mut first, t),
                    }
                }
            }
        }
        Ok(MessagePattern { first, rest })
    }

    /// Whether the pattern has this placeholder.
    pub fn has_capture(&self, c: Capture) -> bool {
        let in_unit = |u: &[Elem]| u.contains(&Elem::Digits(Some(c)));
        in_unit(&self.first) || self.rest.iter().any(|(s, u)| *s == Some(c) || in_unit(u))
    }

    /// Match the whole text; `Some` with the captures on success. At most
    /// [`MATCH_BUDGET`] bytes are examined; a match that would need more is
    /// reported as no match.
    pub fn matches(&self, text: &str) -> Option<Captures> {
        let mut budget = MATCH_BUDGET;
        let mut caps: Vec<(Capture, usize, usize)> = Vec::new();
        let pos = match_unit(&self.first, text, 0, &mut caps, &mut budget)?;
        if !self.match_rest(0, text, pos, &mut caps, &mut budget) {
            return None;
        }
        let mut out = Captures::default();
        for (c, a, b) in caps {
            let v = text.get(a..b).map(str::trim).unwrap_or("");
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

    /// Match variable part `k` onwards from `pos`. Units are placed at their
    /// leftmost occurrence, except the unit after `{client}`: a client path
    /// may contain the text that follows it (`(12); ACL: ` inside a folder
    /// name), while what follows is written by the logging daemon, so
    /// `{client}` takes the longest value that lets the rest match (its
    /// unit's placements are tried from the rightmost). One `{client}` per
    /// pattern, and the budget, keep this linear in practice.
    fn match_rest(
        &self,
        k: usize,
        text: &str,
        pos: usize,
        caps: &mut Vec<(Capture, usize, usize)>,
        budget: &mut usize,
    ) -> bool {
        let Some((star, unit)) = self.rest.get(k) else {
            return pos == text.len();
        };
        let last = k + 1 == self.rest.len();
        if unit.is_empty() {
            // Only the last variable part can have no unit after it.
            if let Some(c) = star {
                caps.push((*c, pos, text.len()));
            }
            return true;
        }
        if *star == Some(Capture::Client) {
            let mut starts: Vec<usize> = Vec::new();
            let mut from = pos;
            let before = caps.len();
            while let Some((s, _)) = find_unit(unit, text, from, last, caps, budget) {
                starts.push(s);
                let step = text
                    .get(s..)
                    .and_then(|t| t.chars().next())
                    .map_or(1, char::len_utf8);
                from = s + step;
                if from > text.len() {
                    break;
                }
            }
            // find_unit pushed the unit's captures for each placement.
            caps.truncate(before);
            for s in starts.into_iter().rev() {
                let mark = caps.len();
                if let Some(e) = match_unit(unit, text, s, caps, budget) {
                    if !last || e == text.len() {
                        caps.push((Capture::Client, pos, s));
                        if self.match_rest(k + 1, text, e, caps, budget) {
                            return true;
                        }
                    }
                }
                caps.truncate(mark);
            }
            return false;
        }
        let Some((s, e)) = find_unit(unit, text, pos, last, caps, budget) else {
            return false;
        };
        if let Some(c) = star {
            caps.push((*c, pos, s));
        }
        self.match_rest(k + 1, text, e, caps, budget)
    }
}

/// Spend `n` from the budget; `None` once it is gone.
fn spend(budget: &mut usize, n: usize) -> Option<()> {
    *budget = budget.checked_sub(n)?;
    Some(())
}

/// Match a unit at `start`; the end offset on success. Captures are pushed
/// only on success.
fn match_unit(
    elems: &[Elem],
    text: &str,
    start: usize,
    caps: &mut Vec<(Capture, usize, usize)>,
    budget: &mut usize,
) -> Option<usize> {
    let mark = caps.len();
    let r = match_unit_inner(elems, text, start, caps, budget);
    if r.is_none() {
        caps.truncate(mark);
    }
    r
}

fn match_unit_inner(
    elems: &[Elem],
    text: &str,
    start: usize,
    caps: &mut Vec<(Capture, usize, usize)>,
    budget: &mut usize,
) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = start;
    for e in elems {
        match e {
            Elem::Lit(l) => {
                spend(budget, l.len())?;
                if b.get(i..i + l.len())? != l.as_bytes() {
                    return None;
                }
                i += l.len();
            }
            Elem::AnyChar => {
                spend(budget, 1)?;
                let c = text.get(i..)?.chars().next()?;
                i += c.len_utf8();
            }
            Elem::Digits(cap) => {
                let n = b
                    .get(i..)?
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                spend(budget, n + 1)?;
                if n == 0 {
                    return None;
                }
                if let Some(c) = cap {
                    caps.push((*c, i, i + n));
                }
                i += n;
            }
        }
    }
    Some(i)
}

/// The leftmost placement of a unit at or after `from` (ending the text
/// when `at_end`): (start, end).
fn find_unit(
    elems: &[Elem],
    text: &str,
    from: usize,
    at_end: bool,
    caps: &mut Vec<(Capture, usize, usize)>,
    budget: &mut usize,
) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let lead = match elems.first() {
        Some(Elem::Lit(l)) => Some(l.as_bytes()),
        _ => None,
    };
    let lead_digits = matches!(elems.first(), Some(Elem::Digits(_)));
    let mut s = from;
    loop {
        let cand = match lead {
            Some(l) => {
                let rest = b.get(s..)?;
                match memchr::memmem::find(rest, l) {
                    Some(off) => {
                        spend(budget, off)?;
                        s + off
                    }
                    None => {
                        spend(budget, rest.len())?;
                        return None;
                    }
                }
            }
            None => s,
        };
        let mark = caps.len();
        if let Some(e) = match_unit(elems, text, cand, caps, budget) {
            if !at_end || e == text.len() {
                return Some((cand, e));
            }
            caps.truncate(mark);
        }
        // A unit that starts with `{pid}` ends its digit run at the same
        // place from any start inside the run: skip the rest of the run.
        let run = if lead_digits {
            b.get(cand..)?
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count()
        } else {
            0
        };
        let step = match run {
            0 => text.get(cand..)?.chars().next()?.len_utf8(),
            n => n,
        };
        s = cand + step;
    }
}

/// The literal part of a wildcard usable as a raw-bytes needle: the longest
/// run without wildcard characters or characters JSON may escape.
fn wildcard_needle(p: &str) -> Option<&str> {
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
    if !UNIFIED_LOG_ACTIONS.contains(&p.action.as_str()) {
        return Err(format!(
            "unknown action `{}` (one of {})",
            p.action,
            UNIFIED_LOG_ACTIONS.join(", ")
        ));
    }
    match (&p.severity, p.action.as_str()) {
        (None, "ignore") => {}
        (None, _) => return Err("`severity` is required (info, low, medium, high)".into()),
        (Some(s), _) if !SEVERITIES.contains(&s.as_str()) => {
            return Err(format!("unknown severity `{s}` (info, low, medium, high)"))
        }
        _ => {}
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

// ---------------------------------------------------------------------------
// The parser

#[derive(Debug, Clone)]
struct Compiled {
    spec: UnifiedLogPattern,
    messages: Vec<MessagePattern>,
}

/// The fields of a record a pattern's conditions look at.
struct Where<'a> {
    activity: bool,
    subsystem: &'a str,
    category: &'a str,
    process: &'a str,
    process_path: &'a str,
    sender: &'a str,
}

impl Compiled {
    fn is_activity(&self) -> bool {
        self.spec.event.as_deref() == Some("activity")
    }

    fn applies(&self, w: &Where<'_>) -> bool {
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

    fn excluded(&self, process_path: &str) -> bool {
        self.spec
            .process_path_except
            .as_ref()
            .is_some_and(|p| p.any(Some(process_path)))
    }

    fn matches(&self, message: &str) -> Option<Captures> {
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

/// What the parser needs from the scanner for one line.
pub struct LineContext<'a> {
    /// Processes seen in eslogger events of the same stream (enrichment).
    pub cache: Option<&'a ProcessCache>,
    /// Allowlist rules.
    pub tuning: &'a Tuning,
}

/// Turns unified-log records into rows.
#[derive(Debug, Default)]
pub struct UnifiedLogParser {
    patterns: Vec<Compiled>,
    prefilter: Option<AhoCorasick>,
    tracker: PromptTracker,
}

impl UnifiedLogParser {
    /// Compile the tuning's (validated) patterns. A pattern that does not
    /// compile is skipped with an error logged (validation prevents it).
    pub fn from_tuning(tuning: &Tuning) -> Self {
        Self::from_patterns(&tuning.unified_log_patterns)
    }

    pub fn from_patterns(specs: &[UnifiedLogPattern]) -> Self {
        let mut patterns = Vec::new();
        for spec in specs {
            if let Err(e) = validate_pattern(spec) {
                log::error!("unified-log pattern {} skipped: {e}", spec.id);
                continue;
            }
            let messages: Vec<MessagePattern> = spec
                .message
                .list()
                .iter()
                .filter_map(|m| MessagePattern::compile(m).ok())
                .collect();
            patterns.push(Compiled {
                spec: spec.clone(),
                messages,
            });
        }
        let mut needles: Vec<String> = RELEVANT_SUBSYSTEMS
            .iter()
            .chain(RELEVANT_PROCESSES)
            .map(|s| s.to_string())
            .collect();
        for p in &patterns {
            // Activities carry no subsystem and any process: their names
            // (the message) are the needles.
            let activity_names = p.is_activity().then_some(&p.spec.message);
            for w in [&p.spec.subsystem, &p.spec.process]
                .into_iter()
                .flatten()
                .chain(activity_names)
            {
                for pat in w.list() {
                    if let Some(n) = wildcard_needle(pat) {
                        if !needles.iter().any(|x| x == n) {
                            needles.push(n.to_string());
                        }
                    }
                }
            }
        }
        let prefilter = match AhoCorasick::new(&needles) {
            Ok(ac) => Some(ac),
            Err(e) => {
                log::error!("unified-log prefilter not built ({e}); every record is parsed");
                None
            }
        };
        UnifiedLogParser {
            patterns,
            prefilter,
            tracker: PromptTracker::default(),
        }
    }

    /// Number of active patterns.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    fn relevant(&self, subsystem: &str, process: &str) -> bool {
        RELEVANT_SUBSYSTEMS.contains(&subsystem)
            || RELEVANT_PROCESSES.contains(&process)
            || self.patterns.iter().any(|p| {
                p.spec
                    .subsystem
                    .as_ref()
                    .is_some_and(|s| s.any(Some(subsystem)))
                    || p.spec
                        .process
                        .as_ref()
                        .is_some_and(|s| s.any(Some(process)))
            })
    }

    /// Process one unified-log line (already known to be a JSON object).
    pub fn scan_line(
        &mut self,
        line: &[u8],
        stats: &mut ScanStats,
        ctx: &LineContext<'_>,
        out: &mut Vec<KeychainAccess>,
    ) {
        stats.unified_log_records += 1;
        if let Some(ac) = &self.prefilter {
            if !ac.is_match(line) {
                stats.prefiltered += 1;
                return;
            }
        }
        let text: Cow<'_, str> = match std::str::from_utf8(line) {
            Ok(s) => s.into(),
            Err(_) => {
                stats.lossy_utf8 += 1;
                String::from_utf8_lossy(line)
            }
        };
        let rec = match parse_record(&text) {
            Ok(r) => r,
            Err(e) => {
                stats.malformed += 1;
                log::debug!(
                    "unified-log record malformed: {}",
                    crate::redact::without_quoted_values(&e.to_string())
                );
                return;
            }
        };
        stats.parsed += 1;
        let activity = match rec.event_type.as_deref() {
            None | Some("logEvent") => false,
            Some("activityCreateEvent") => true,
            Some(_) => {
                stats.unified_log_other_events += 1;
                return;
            }
        };
        let process_path = rec.process_image_path.as_deref().unwrap_or("");
        let w = Where {
            activity,
            subsystem: rec.subsystem.as_deref().unwrap_or(""),
            category: rec.category.as_deref().unwrap_or(""),
            process: basename(process_path),
            process_path,
            sender: basename(rec.sender_image_path.as_deref().unwrap_or("")),
        };
        if !activity && !self.relevant(w.subsystem, w.process) {
            stats.prefiltered += 1;
            return;
        }
        let message = match_text(rec.event_message.as_deref().unwrap_or(""));
        let found = self.patterns.iter().find_map(|p| {
            if !p.applies(&w) {
                return None;
            }
            p.matches(message).map(|c| (p, c))
        });
        let Some((pat, caps)) = found else {
            if activity {
                // Activities of other libraries and APIs: not ours.
                stats.unified_log_other_events += 1;
            } else {
                stats.unified_log_unmatched += 1;
            }
            return;
        };
        if pat.spec.action == "ignore" || pat.excluded(process_path) {
            stats.unified_log_ignored += 1;
            return;
        }
        if activity
            && !self.tracker.activity_is_new(
                rec.process_id.unwrap_or(-1),
                process_path,
                message,
                parse_log_timestamp(rec.timestamp.as_deref().unwrap_or("")),
            )
        {
            stats.unified_log_activity_repeats += 1;
            return;
        }
        let (mut row, origin) = build_row(&rec, pat, &caps, ctx);
        let assessment = self.tracker.observe(&Observation {
            action: &pat.spec.action,
            logger: (rec.process_id.unwrap_or(-1), rec.thread_id.unwrap_or(0)),
            time: row.time,
            client_pid: caps.pid,
            client: caps.client.as_deref(),
            actor_path: row.path.as_deref().filter(|p| p.starts_with('/')),
            signer: ctx
                .cache
                .zip(row.pid)
                .and_then(|(c, pid)| c.latest_for_pid(pid))
                .filter(|c| row.path.as_deref().is_none_or(|p| p == c.path))
                .and_then(|c| c.signer),
            item: caps.item.as_deref(),
            partition: caps.partition.as_deref(),
            message,
        });
        let mut reason = row.reason.take().unwrap_or_default();
        if let Some(item) = assessment.item.as_deref().filter(|_| caps.item.is_none()) {
            reason.push_str(&format!("; item `{item}`"));
        }
        for n in &assessment.notes {
            reason.push_str("; ");
            reason.push_str(n);
        }
        reason.push_str(&origin);
        row.reason = Some(sanitize(&reason).into_owned());
        row.severity = max_severity(row.severity.as_deref(), assessment.severity).map(String::from);
        if row.time.is_none() {
            stats.unified_log_bad_time += 1;
        }
        out.push(row);
    }
}

/// The part of a message that patterns see: trimmed, at most [`MATCH_MAX`]
/// bytes (cut on a character boundary).
fn match_text(m: &str) -> &str {
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

/// The row for a matched record, and the `(unified log: ...)` origin that
/// ends its reason (the caller adds what the prompt tracker found first).
fn build_row(
    rec: &LogRecord,
    pat: &Compiled,
    caps: &Captures,
    ctx: &LineContext<'_>,
) -> (KeychainAccess, String) {
    let spec = &pat.spec;
    let logger_pid = rec.process_id;
    let logger_path = rec.process_image_path.clone().filter(|p| !p.is_empty());
    // authd: the creator of the authorization is the actor (for trust
    // settings the client is a system helper such as ocspd); the client is
    // named in the reason.
    let (named_pid, named) = match (caps.creator_pid, caps.creator.as_deref()) {
        (Some(p), c) => (Some(p), c),
        (None, Some(c)) => (None, Some(c)),
        (None, None) => (caps.pid, caps.client.as_deref()),
    };
    let client_path = named.filter(|c| c.starts_with('/'));
    let client_name = named.filter(|c| !c.starts_with('/'));
    let names_client = named_pid.is_some() || named.is_some();
    let actor_is_logger = !names_client || (named_pid.is_some() && named_pid == logger_pid);
    let (pid, path) = if actor_is_logger {
        (
            logger_pid,
            client_path
                .map(String::from)
                .or_else(|| logger_path.clone()),
        )
    } else {
        (named_pid, client_path.map(String::from))
    };

    // Enrich from the process cache when the pid (and path, if known) fit.
    let cached: Option<&ProcInfo> = pid
        .and_then(|p| ctx.cache.and_then(|c| c.latest_for_pid(p)))
        .filter(|c| match path.as_deref() {
            None => true,
            Some(p) => p == c.path,
        });
    let path = path.or_else(|| cached.map(|c| c.path.clone()));
    let uid = if actor_is_logger {
        rec.user_id
    } else {
        cached.and_then(|c| c.euid)
    };
    let actor: ProcInfo = match cached {
        Some(c) => c.clone(),
        None => ProcInfo {
            pid: pid.unwrap_or(0),
            path: path.clone().unwrap_or_default(),
            euid: uid,
            ..Default::default()
        },
    };
    let ancestors: Vec<ProcInfo> = match (cached, ctx.cache) {
        (Some(c), Some(cache)) => cache
            .ancestors(c, crate::classify::MAX_ANCESTORS)
            .into_iter()
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let parent = ancestors.first();
    let responsible_path = cached
        .and_then(|c| c.responsible.filter(|r| *r != c.key()))
        .and_then(|r| ctx.cache.and_then(|cache| cache.get(r)))
        .map(|r| sanitize(&r.path).into_owned());
    let ancestors_json = (!ancestors.is_empty())
        .then(|| {
            serde_json::to_string(
                &ancestors
                    .iter()
                    .map(|a| sanitize(&a.path).into_owned())
                    .collect::<Vec<_>>(),
            )
            .ok()
        })
        .flatten();

    let target = caps.keychain.as_deref();
    let anc_refs: Vec<&ProcInfo> = ancestors.iter().collect();
    let allow = ctx.tuning.allow_reason(&Facts {
        action: &spec.action,
        actor: &actor,
        ancestors: &anc_refs,
        cmdline: actor.cmdline.as_deref(),
        target_path: target,
        destination_path: None,
        reveals_secret: false,
    });

    // The reason: what, who said it, and how sure we are.
    let mut reason = spec.reason.clone();
    if let Some(n) = client_name {
        reason.push_str(&format!("; client `{n}`"));
    }
    if caps.creator.is_some() || caps.creator_pid.is_some() {
        if let Some(c) = caps.client.as_deref() {
            match caps.pid {
                Some(p) => reason.push_str(&format!("; for client `{c}` [{p}]")),
                None => reason.push_str(&format!("; for client `{c}`")),
            }
        }
    }
    if let Some(r) = &caps.right {
        reason.push_str(&format!("; right `{r}`"));
    }
    if let Some(i) = &caps.item {
        reason.push_str(&format!("; item `{i}`"));
    }
    let logger = match (logger_path.as_deref(), logger_pid) {
        (Some(p), Some(id)) => format!("{}[{id}]", basename(p)),
        (Some(p), None) => basename(p).to_string(),
        (None, Some(id)) => format!("pid {id}"),
        (None, None) => "unknown process".to_string(),
    };
    let mut origin = format!("unified log: {logger}");
    if pat.is_activity() {
        let sender = basename(rec.sender_image_path.as_deref().unwrap_or(""));
        origin.push_str(&format!(" activity ({sender})"));
    }
    if let Some(s) = rec.subsystem.as_deref().filter(|s| !s.is_empty()) {
        origin.push_str(&format!(" {s}"));
        if let Some(c) = rec.category.as_deref().filter(|c| !c.is_empty()) {
            origin.push_str(&format!(":{c}"));
        }
    }
    let confidence = match (spec.confirmed, spec.evidence.as_deref()) {
        (true, _) => format!("confirmed on {}", spec.seen_on),
        (false, Some("apple_source")) => "text from Apple's format string only".to_string(),
        _ => "message text unconfirmed".to_string(),
    };
    let origin = format!(" ({origin}; pattern {}, {confidence})", spec.id);

    let raw_message = rec.event_message.as_deref().unwrap_or("");
    let (message, _) = truncate(
        sanitize(&redact_text(raw_message)).into_owned(),
        MESSAGE_MAX,
    );
    let timestamp = rec.timestamp.as_deref().unwrap_or("");
    let eid = Fnv64::default()
        .write(b"unified_log")
        .write(timestamp.as_bytes())
        .write(logger_pid.unwrap_or(-1).to_string().as_bytes())
        .write(rec.thread_id.unwrap_or(0).to_string().as_bytes())
        .write(rec.mach_timestamp.unwrap_or(0).to_string().as_bytes())
        .write(raw_message.as_bytes())
        .event_id(parse_log_timestamp(timestamp));

    let row = KeychainAccess {
        time: parse_log_timestamp(timestamp),
        eid: Some(eid),
        source: Some("unified_log".into()),
        event_type: Some("log".into()),
        pid,
        pidversion: cached.map(|c| c.pidversion),
        ppid: cached.and_then(|c| c.ppid),
        parent_pidversion: cached.and_then(|c| c.parent.map(|p| p.1)),
        uid,
        auid: cached.and_then(|c| c.auid),
        username: None,
        path: path.as_deref().map(|p| sanitize(p).into_owned()),
        cmdline: cached.and_then(|c| c.cmdline.clone()),
        cwd: cached.and_then(|c| c.cwd.clone()),
        parent_path: parent.map(|p| sanitize(&p.path).into_owned()),
        parent_cmdline: parent.and_then(|p| p.cmdline.clone()),
        ancestors: ancestors_json,
        responsible_path,
        signing_id: cached
            .and_then(|c| c.signing_id.as_deref())
            .map(|s| sanitize(s).into_owned()),
        team_id: cached
            .and_then(|c| c.team_id.as_deref())
            .map(|s| sanitize(s).into_owned()),
        cdhash: cached
            .and_then(|c| c.cdhash.as_deref())
            .map(|s| sanitize(s).into_owned()),
        signer: cached
            .and_then(|c| c.signer)
            .map(|s| s.as_str().to_string()),
        platform_binary: cached.map(|c| i64::from(c.platform_binary)),
        action: Some(spec.action.clone()),
        verb: None,
        target_path: target.map(|t| sanitize(t).into_owned()),
        destination_path: None,
        keychain_dump: Some(0),
        password_query: Some(0),
        cert_export: Some(0),
        reveals_secret: Some(0),
        allowlisted: Some(i64::from(allow.is_some())),
        allow_reason: allow,
        severity: spec.severity.clone(),
        reason: Some(reason),
        technique: Some(TECHNIQUE.into()),
        message: Some(message),
        correlation_id: None,
        es_version: None,
        global_seq_num: None,
    };
    (row, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_across_offsets() {
        // The shape of a real line: 17:50:33 at +0200 is 15:50:33 UTC.
        let utc = civil_to_unix(2026, 10, 4, 15, 50, 33).unwrap();
        assert_eq!(
            parse_log_timestamp("2026-10-04 17:50:33.803491+0200"),
            Some(utc)
        );
        assert_eq!(
            parse_log_timestamp("2026-10-04 08:50:33.000001-0700"),
            Some(utc)
        );
        assert_eq!(parse_log_timestamp("2026-10-04 15:50:33.5+0000"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 17:50:33+02:00"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04T15:50:33Z"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 17:50:33.9+02"), Some(utc));
        // Odd offsets (India, Nepal, Newfoundland).
        assert_eq!(parse_log_timestamp("2026-10-04 21:20:33+0530"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 21:35:33+0545"), Some(utc));
        assert_eq!(parse_log_timestamp("2026-10-04 13:20:33-0230"), Some(utc));
        // Across midnight, a month end and a year end.
        assert_eq!(
            parse_log_timestamp("2027-01-01 01:30:00+0200"),
            civil_to_unix(2026, 12, 31, 23, 30, 0)
        );
        assert_eq!(
            parse_log_timestamp("2026-02-28 20:00:00-0500"),
            civil_to_unix(2026, 3, 1, 1, 0, 0)
        );
        // A leap day, and the epoch.
        assert_eq!(
            parse_log_timestamp("2028-02-29 12:00:00+0000"),
            civil_to_unix(2028, 2, 29, 12, 0, 0)
        );
        assert_eq!(parse_log_timestamp("1970-01-01 02:00:00+0200"), Some(0));
        // DST is in the offset, not in a zone database: the same wall time
        // an hour apart in summer and winter offsets of one zone.
        let summer = parse_log_timestamp("2026-10-24 12:00:00+0200").unwrap();
        let winter = parse_log_timestamp("2026-10-25 12:00:00+0100").unwrap();
        assert_eq!(winter - summer, 86_400 + 3600);
        for bad in [
            "",
            "2026-10-04 17:50:33",
            "2026-10-04 17:50:33.803491",
            "2026-10-04 17:50:33.+0200",
            "2026-10-04 17:50:33+2",
            "2026-10-04 17:50:33+02000",
            "2026-10-04 17:50:33+2400",
            "2026-10-04 17:50:33+0260",
            "2026-13-04 17:50:33+0200",
            "2026-10-04 25:50:33+0200",
            "20261004 175033+0200",
            "2026-10-04 17:50:33+0200 trailing",
            "garbage",
        ] {
            assert_eq!(parse_log_timestamp(bad), None, "{bad}");
        }
    }

    fn m(p: &str, t: &str) -> Option<Captures> {
        MessagePattern::compile(p).unwrap().matches(t)
    }

    #[test]
    fn matcher_literals_wildcards_and_captures() {
        let c = m(
            "*opened {keychain}: * bytes",
            "0x7fee38517e20 opened /Users/hoakley/Library/Keychains/login.keychain-db: 1646112 bytes",
        )
        .unwrap();
        assert_eq!(
            c.keychain.as_deref(),
            Some("/Users/hoakley/Library/Keychains/login.keychain-db")
        );
        assert!(m("*opened {keychain}: * bytes", "opened x: 1 bytes and more").is_none());
        let c = m(
            "displaying keychain prompt for {client}({pid})",
            "displaying keychain prompt for /Applications/Foo (beta).app/Contents/MacOS/Foo(4242)",
        )
        .unwrap();
        assert_eq!(c.pid, Some(4242));
        assert_eq!(
            c.client.as_deref(),
            Some("/Applications/Foo (beta).app/Contents/MacOS/Foo")
        );
        let c = m(
            "displaying keychain prompt for {client}({pid})",
            "displaying keychain prompt for <private>(77)",
        )
        .unwrap();
        assert_eq!((c.pid, c.client), (Some(77), None));
        assert!(m("a?c", "abc").is_some());
        assert!(m("a?c", "abbc").is_none());
        assert!(m("a?c", "aéc").is_some());
        assert!(m("\\*literal\\*", "*literal*").is_some());
        assert!(m("\\*literal\\*", "xliteralx").is_none());
        assert!(m("pid {pid} done", "pid 12a done").is_none());
        assert!(m("*", "").is_some());
        assert!(m("exact", "exact").is_some());
        assert!(m("exact", "exactly").is_none());
        assert!(m("*end", "the end").is_some());
        assert!(m("start*", "start here").is_some());
        let c = m(
            "Succeeded authorizing right '{right}' by client '{client}' [{pid}] for authorization created by *",
            "Succeeded authorizing right 'system.keychain.modify' by client '/usr/bin/security' [512] for authorization created by '/usr/bin/security' [512] (3,0) (engine 9)",
        )
        .unwrap();
        assert_eq!(c.right.as_deref(), Some("system.keychain.modify"));
        assert_eq!(c.client.as_deref(), Some("/usr/bin/security"));
        assert_eq!(c.pid, Some(512));
    }

    #[test]
    fn matcher_rejects_bad_patterns() {
        for (p, want) in [
            ("", "empty"),
            ("a{nope}", "unknown placeholder"),
            ("a{pid", "unclosed"),
            ("**", "touch"),
            ("{client}*", "touch"),
            ("{pid}{pid}", "twice"),
            ("{client}{keychain}", "touch"),
            ("trailing\\", "escapes nothing"),
        ] {
            let e = MessagePattern::compile(p).unwrap_err();
            assert!(e.contains(want), "{p}: {e}");
        }
        let long = "a".repeat(PATTERN_MAX + 1);
        assert!(MessagePattern::compile(&long).is_err());
    }

    #[test]
    fn matcher_has_no_catastrophic_backtracking() {
        // The classic killer for backtracking globs: many stars, no match.
        let p = MessagePattern::compile("*a*a*a*a*a*a*a*a*a*b").unwrap();
        let text = "a".repeat(MATCH_MAX);
        let t0 = std::time::Instant::now();
        assert!(p.matches(&text).is_none());
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        let p = MessagePattern::compile("*x {pid} y*").unwrap();
        let text = "x 1".repeat(MATCH_MAX / 3);
        assert!(p.matches(&text).is_none());
        // Digit runs: `{pid}` leading an end-anchored unit on "111...1x".
        let p = MessagePattern::compile("*{pid}z").unwrap();
        let mut text = "1".repeat(MATCH_MAX - 1);
        text.push('x');
        assert!(p.matches(&text).is_none());
        assert_eq!(
            MessagePattern::compile("*{pid}z")
                .unwrap()
                .matches("pid 12z")
                .unwrap()
                .pid,
            Some(12)
        );
        // A long literal that nearly matches everywhere: the budget bounds it.
        let lit = format!("*{}b*", "a".repeat(PATTERN_MAX - 4));
        let p = MessagePattern::compile(&lit).unwrap();
        let text = "a".repeat(MATCH_MAX);
        assert!(p.matches(&text).is_none());
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn client_takes_the_longest_value_within_the_budget() {
        let p = "displaying keychain prompt for {client}({pid}); ACL: *desc:{item})>*";
        let c = m(
            p,
            "displaying keychain prompt for /tmp/a(1); ACL: b/Evil(6012); ACL: <x desc:Chrome Safe Storage)>]>",
        )
        .unwrap();
        assert_eq!(c.pid, Some(6012));
        assert_eq!(c.client.as_deref(), Some("/tmp/a(1); ACL: b/Evil"));
        assert_eq!(c.item.as_deref(), Some("Chrome Safe Storage"));
        // The rightmost placement that lets the rest match, not the rightmost
        // one: the ACL here holds a later `(2); ACL: ` but no `desc:` after it.
        let c = m(
            p,
            "displaying keychain prompt for /x(7); ACL: <desc:Wi-Fi)> (2); ACL: none",
        )
        .unwrap();
        assert_eq!((c.pid, c.item.as_deref()), (Some(7), Some("Wi-Fi")));
        // Thousands of candidate placements, none completing: bounded.
        let t0 = std::time::Instant::now();
        let text = format!(
            "displaying keychain prompt for {}",
            "/a(1); ACL: ".repeat(MATCH_MAX / 12)
        );
        assert!(MessagePattern::compile(p)
            .unwrap()
            .matches(match_text(&text))
            .is_none());
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn builtin_patterns_are_valid_and_cited() {
        let pats = crate::tuning::builtin_unified_log_patterns();
        assert!(pats.len() >= 10, "{}", pats.len());
        assert!(pats.iter().any(|p| p.confirmed));
        assert!(pats.iter().any(|p| !p.confirmed));
        for p in &pats {
            validate_pattern(p).unwrap();
            assert!(p.evidence.is_some(), "{} has no evidence", p.id);
            assert!(
                p.level.is_some() && p.levels.is_some(),
                "{} has no level",
                p.id
            );
            assert_ne!(p.evidence.as_deref(), Some("none"), "{}: catch-all", p.id);
            if p.process
                .iter()
                .flat_map(|f| f.list())
                .any(|w| w == "securityd")
            {
                assert!(
                    p.process_path.is_some(),
                    "{}: match securityd by path",
                    p.id
                );
            }
            if !p.confirmed {
                assert_eq!(p.seen_on, "unconfirmed", "{}", p.id);
            }
        }
        let parser = UnifiedLogParser::from_patterns(&pats);
        assert_eq!(parser.pattern_count(), pats.len());
    }

    fn pattern(json: &str) -> UnifiedLogPattern {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation_names_the_problem() {
        let base = r#"{"id":"x","action":"keychain_prompt","process":"securityd","message":"m","severity":"low","reason":"r","source":"s","seen_on":"unconfirmed","confirmed":false}"#;
        validate_pattern(&pattern(base)).unwrap();
        for (from, to, want) in [
            (
                r#""action":"keychain_prompt""#,
                r#""action":"nope""#,
                "unknown action",
            ),
            (
                r#""severity":"low""#,
                r#""severity":"urgent""#,
                "unknown severity",
            ),
            (
                r#""process":"securityd""#,
                r#""process":"*""#,
                "literal run",
            ),
            (
                r#""process":"securityd""#,
                r#""category":"kcacl""#,
                "needs `subsystem` or `process`",
            ),
            (
                r#""message":"m""#,
                r#""message":"{x}""#,
                "unknown placeholder",
            ),
            (r#""source":"s""#, r#""source":"""#, "cite"),
            (r#""confirmed":false"#, r#""confirmed":true"#, "release"),
            (r#""id":"x""#, r#""id":"has space""#, "`id`"),
            (
                r#""message":"m""#,
                r#""message":"m","right":"system.*""#,
                "no `{right}`",
            ),
        ] {
            let json = base.replacen(from, to, 1);
            let p: UnifiedLogPattern = serde_json::from_str(&json).unwrap();
            let e = validate_pattern(&p).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        // Errors through the tuning loader name the pattern.
        let e = Tuning::from_json(
            r#"{"version":1,"unified_log_patterns":[{"id":"bad-one","action":"nope","process":"securityd","message":"m","severity":"low","reason":"r","source":"s","seen_on":"unconfirmed","confirmed":false}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unified_log_patterns[0] (bad-one)"), "{e}");
        let e = Tuning::from_json(
            r#"{"version":1,"unified_log_patterns":[{"id":"a","action":"keychain_auth","process":"securityd","message":"m","severity":"low","reason":"r","source":"s","seen_on":"unconfirmed","confirmed":false,"bogus":1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn tuning_modes_keep_replace_or_extend_the_builtin_patterns() {
        let n = crate::tuning::builtin_unified_log_patterns().len();
        let t = Tuning::from_json(r#"{"version":1,"rules":[]}"#).unwrap();
        assert_eq!(t.unified_log_patterns.len(), n);
        assert_eq!(Tuning::none().unified_log_patterns.len(), n);
        let own = r#"{"id":"fleet-1","action":"keychain_prompt","process":"securityd","message":"fleet text {pid}","severity":"high","reason":"r","source":"our capture","seen_on":"macOS 15.5","confirmed":true,"evidence":"log_capture"}"#;
        let t = Tuning::from_json(&format!(
            r#"{{"version":1,"unified_log_patterns":[{own}]}}"#
        ))
        .unwrap();
        assert_eq!(t.unified_log_patterns.len(), 1);
        let t = Tuning::from_json(&format!(
            r#"{{"version":1,"unified_log_patterns_mode":"extend","unified_log_patterns":[{own}]}}"#
        ))
        .unwrap();
        assert_eq!(t.unified_log_patterns.len(), n + 1);
        assert_eq!(t.unified_log_patterns[0].id, "fleet-1");
    }

    fn line(
        process: &str,
        subsystem: &str,
        category: &str,
        pid: i64,
        ts: &str,
        msg: &str,
    ) -> String {
        serde_json::json!({
            "timezoneName": "", "messageType": "Default", "eventType": "logEvent", "source": null,
            "formatString": "%{public}s", "userID": 0, "activityIdentifier": 0,
            "subsystem": subsystem, "category": category, "threadID": 4242,
            "senderImageUUID": "00000000-0000-0000-0000-000000000000",
            "backtrace": {"frames": [{"imageOffset": 1, "imageUUID": "00000000-0000-0000-0000-000000000000"}]},
            "bootUUID": "", "processImagePath": process, "senderImagePath": process,
            "timestamp": ts, "machTimestamp": 1, "eventMessage": msg,
            "processImageUUID": "00000000-0000-0000-0000-000000000000", "traceID": 1,
            "processID": pid, "senderProgramCounter": 1, "parentActivityIdentifier": 0
        })
        .to_string()
    }

    fn scan(lines: &[String]) -> (Vec<KeychainAccess>, ScanStats) {
        let tuning = Tuning::builtin();
        let mut p = UnifiedLogParser::from_tuning(&tuning);
        let mut stats = ScanStats::default();
        let mut out = Vec::new();
        let ctx = LineContext {
            cache: None,
            tuning: &tuning,
        };
        for l in lines {
            p.scan_line(l.as_bytes(), &mut stats, &ctx, &mut out);
        }
        (out, stats)
    }

    #[test]
    fn rows_from_confirmed_and_unconfirmed_patterns() {
        let ts = "2026-10-04 17:50:33.803491+0200";
        let (rows, stats) = scan(&[
            line(
                "/Applications/Mail.app/Contents/MacOS/Mail",
                "com.apple.securityd",
                "atomicfile",
                118,
                ts,
                "0x7fee38517e20 opened /Users/alice/Library/Keychains/login.keychain-db: 1646112 bytes",
            ),
            line(
                "/usr/sbin/securityd",
                "com.apple.securityd",
                "kcacl",
                118,
                ts,
                "displaying keychain prompt for /usr/bin/security(48141)",
            ),
            line(
                "/usr/libexec/authd",
                "com.apple.Authorization",
                "authd",
                600,
                ts,
                "Succeeded authorizing right 'system.keychain.modify' by client '/Applications/Utilities/Keychain Access.app' [900] for authorization created by '/Applications/Utilities/Keychain Access.app' [900] (3,0) (engine 12)",
            ),
            // authd noise: a non-keychain right is ignored, not unmatched.
            line(
                "/usr/libexec/authd",
                "com.apple.Authorization",
                "authd",
                600,
                ts,
                "Succeeded authorizing right 'system.preferences' by client '/x' [1] for authorization created by '/x' [1] (2,0) (engine 13)",
            ),
            // Relevant process, unknown text: unmatched.
            line("/usr/sbin/securityd", "com.apple.securityd", "x", 118, ts, "something new in macOS 27"),
            // Irrelevant process: prefiltered at the byte level.
            line("/usr/bin/logger", "", "", 5, ts, "ih-muse-test hello 1"),
        ]);
        assert_eq!(rows.len(), 3, "{rows:#?}");
        assert_eq!(stats.unified_log_records, 6);
        assert_eq!(stats.unified_log_unmatched, 1);
        assert_eq!(stats.unified_log_ignored, 1);
        assert_eq!(stats.prefiltered, 1);

        let open = &rows[0];
        assert_eq!(open.action.as_deref(), Some("keychain_db_open"));
        assert_eq!(open.source.as_deref(), Some("unified_log"));
        assert_eq!(open.event_type.as_deref(), Some("log"));
        assert_eq!(open.pid, Some(118), "the reader logs the line");
        assert_eq!(
            open.path.as_deref(),
            Some("/Applications/Mail.app/Contents/MacOS/Mail")
        );
        assert_eq!(open.uid, Some(0));
        assert_eq!(
            open.target_path.as_deref(),
            Some("/Users/alice/Library/Keychains/login.keychain-db")
        );
        assert_eq!(open.time, parse_log_timestamp(ts));
        assert_eq!(open.technique.as_deref(), Some("T1555.001"));
        assert!(open
            .reason
            .as_deref()
            .unwrap()
            .contains("confirmed on macOS 10.12"));

        let prompt = &rows[1];
        assert_eq!(prompt.action.as_deref(), Some("keychain_prompt"));
        assert_eq!(prompt.pid, Some(48141), "the client is the actor");
        assert_eq!(prompt.path.as_deref(), Some("/usr/bin/security"));
        assert_eq!(
            prompt.uid, None,
            "userID belongs to securityd, not the client"
        );
        let reason = prompt.reason.as_deref().unwrap();
        assert!(reason.contains("securityd[118]"), "{reason}");
        assert!(reason.contains("confirmed on macOS 26.2"), "{reason}");

        let right = &rows[2];
        assert_eq!(right.action.as_deref(), Some("authorization_right"));
        assert_eq!(right.pid, Some(900));
        assert!(right
            .reason
            .as_deref()
            .unwrap()
            .contains("system.keychain.modify"));

        // eids are unique and stable.
        let (again, _) = scan(&[line(
            "/Applications/Mail.app/Contents/MacOS/Mail",
            "com.apple.securityd",
            "atomicfile",
            118,
            ts,
            "0x7fee38517e20 opened /Users/alice/Library/Keychains/login.keychain-db: 1646112 bytes",
        )]);
        assert_eq!(again[0].eid, open.eid);
        assert_ne!(rows[0].eid, rows[1].eid);
    }

    #[test]
    fn syslog_copies_are_not_second_rows_and_securityd_is_matched_by_path() {
        let ts = "2026-10-04 17:50:33.803491+0200";
        let msg = "displaying keychain prompt for /usr/bin/security(48141)";
        let (rows, stats) = scan(&[
            // The Default-level secnotice line: the row.
            line(
                "/usr/sbin/securityd",
                "com.apple.securityd",
                "kcacl",
                118,
                ts,
                msg,
            ),
            // Its Info-level syslog twin (no subsystem): ignored.
            line("/usr/sbin/securityd", "", "", 118, ts, msg),
            // The data-protection daemon, and an impostor, with the same
            // text: no pattern of the file-keychain daemon applies.
            line(
                "/usr/libexec/securityd",
                "com.apple.securityd",
                "kcacl",
                119,
                ts,
                msg,
            ),
            line(
                "/tmp/securityd",
                "com.apple.securityd",
                "kcacl",
                666,
                ts,
                msg,
            ),
        ]);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0].pid, Some(48141));
        assert_eq!(stats.unified_log_ignored, 1);
        assert_eq!(stats.unified_log_unmatched, 2);
    }

    #[test]
    fn malformed_other_events_bad_time_and_hostile_text() {
        let ts = "2026-10-04 17:50:33.803491+0200";
        let mut activity = line("/usr/sbin/securityd", "com.apple.securityd", "", 1, ts, "x");
        activity = activity.replace("\"logEvent\"", "\"signpostEvent\"");
        let wrong_types = r#"{"eventMessage":12,"processID":"118","processImagePath":"/usr/sbin/securityd","subsystem":["com.apple.securityd"],"eventType":"logEvent","timestamp":"2026-10-04 17:50:33+0200"}"#;
        let hostile = line(
            "/usr/sbin/securityd",
            "com.apple.securityd",
            "atomicfile",
            118,
            "yesterday",
            "0x1 opened /tmp/Keychains/\u{1b}[31mevil; security unlock-keychain -p hunter2 x.keychain-db: 1 bytes",
        );
        let (rows, stats) = scan(&[
            "{\"eventMessage\": \"securityd\", broken".to_string(),
            "[\"securityd\"]".to_string(),
            activity,
            wrong_types.to_string(),
            hostile,
        ]);
        assert_eq!(stats.malformed, 2);
        assert_eq!(stats.unified_log_other_events, 1);
        assert_eq!(
            stats.unified_log_unmatched, 1,
            "wrong types read as missing"
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(stats.unified_log_bad_time, 1);
        let r = &rows[0];
        assert_eq!(r.time, None);
        let msg = r.message.as_deref().unwrap();
        assert!(!msg.contains('\u{1b}'), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!r.target_path.as_deref().unwrap().contains('\u{1b}'));
    }

    #[test]
    fn live_predicate_names_the_components() {
        let p = log_stream_predicate(&Tuning::builtin());
        assert!(
            p.starts_with(
                "(eventType == logEvent AND (subsystem == \"com.apple.securityd\" OR \
                 subsystem == \"com.apple.Authorization\" OR process == \"securityd\" OR \
                 process == \"secd\" OR process == \"SecurityAgent\" OR process == \"authd\" OR \
                 process == \"security\")) OR (eventType == activityCreateEvent AND eventMessage IN \
                 {\"SecItemCopyMatching\", "
            ),
            "{p}"
        );
        for name in [
            "SecKeychainFindGenericPassword",
            "SecKeychainItemCopyContent",
        ] {
            assert!(p.contains(&format!("\"{name}\"")), "{p}");
        }
        assert!(
            p.ends_with(
                "AND NOT processImagePath BEGINSWITH \"/System/\" \
                 AND NOT processImagePath BEGINSWITH \"/usr/libexec/\" \
                 AND NOT processImagePath BEGINSWITH \"/usr/sbin/\")"
            ),
            "{p}"
        );
        let mut t = Tuning::builtin();
        let mut extra = t.unified_log_patterns[0].clone();
        extra.subsystem = Some(Patterns::Many(vec![
            "com.example.\"quoted\"".into(),
            "com.apple.wild*".into(),
        ]));
        t.unified_log_patterns.push(extra);
        let p = log_stream_predicate(&t);
        assert!(
            p.contains(r#"subsystem == "com.example.\"quoted\"""#),
            "{p}"
        );
        assert!(!p.contains("wild"), "{p}");
        // A fleet that turns an activity pattern into `ignore` (same id,
        // `extend`) takes its names out of the stream: the volume control.
        let t = Tuning::from_json(
            r#"{"version":1,"unified_log_patterns_mode":"extend","unified_log_patterns":[
              {"id":"security-activity-item-query","action":"ignore","event":"activity","sender":"Security",
               "message":"SecItemCopyMatching","reason":"too many on our fleet","source":"fleet decision",
               "seen_on":"unconfirmed","confirmed":false}]}"#,
        )
        .unwrap();
        let p = log_stream_predicate(&t);
        assert!(!p.contains("SecItemCopyMatching"), "{p}");
        assert!(p.contains("SecKeychainFindGenericPassword"), "{p}");
    }

    #[test]
    fn looks_like_tells_the_formats_apart() {
        assert!(looks_like_unified_log(
            br#"{"eventMessage":"x","eventType":"logEvent"}"#
        ));
        assert!(looks_like_unified_log(
            br#"{"eventType":"activityCreateEvent"}"#
        ));
        assert!(!looks_like_unified_log(
            br#"{"event_type":9,"event":{"exec":{"args":["echo","\"eventMessage\""]}}}"#
        ));
    }
}
