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
//! # Stages and the files that own them
//!
//! * `record.rs`: telling a unified-log line from an eslogger one, reading
//!   the record leniently ([`LogRecord`]).
//! * `predicate.rs`: which components always count, and the live
//!   `log stream` command and predicate ([`log_stream_predicate`]).
//! * [`crate::log_pattern`]: the pattern type of the tuning file, its
//!   validation and the message matcher (shared with the tuning loader).
//! * [`crate::timestamp`]: the record's time.
//! * `mod.rs` ([`UnifiedLogParser`]): prefilter, relevance, first matching
//!   pattern, prompt tracking, counters ([`crate::counters::ScanStats`]).
//! * `row.rs`: what a matched record's row has of its own (actor named by
//!   the record, reason, message, eid); [`crate::normalise`] fills the actor
//!   and enrichment columns as it does for ES rows.
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
//! converts them with the crate's one timestamp parser
//! ([`crate::timestamp`]: jiff's calendar, the offset written in the record
//! applied as it stands, so no time-zone database and no DST rules).
//! `+0200`, `-0700`, `+0000`, `+02:00`, `+02` and `Z` are accepted; a date
//! that does not exist (2025-02-31) is not. A record whose timestamp cannot
//! be read still makes its row (time NULL), counted as
//! `unified_log_bad_time`.
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
//! `tuning/default.json`, type [`crate::log_pattern::UnifiedLogPattern`]), not
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
//! (the basename of `senderImagePath`) are [`crate::wildcard::wildcard`]s;
//! `event` is `log` (default) or `activity`. `message` is one
//! or a list of message patterns (any may match) against the whole
//! `eventMessage` (trimmed; at most [`MATCH_MAX`] bytes are looked at;
//! the matcher is [`crate::log_pattern::MessagePattern`]):
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
//! touch. A pattern is translated to an anchored regular expression and
//! matched by the `regex` crate, whose time is linear in the message for
//! any pattern (no backtracking blow-up; a tuning file's pattern is also
//! bounded in size, [`crate::log_pattern::PATTERN_MAX`] bytes and
//! [`crate::log_pattern::PATTERN_MEMORY_MAX`] compiled). `*` and text
//! placeholders take the shortest value that lets the rest match (the text
//! after them is placed at its leftmost possible occurrence; the last one
//! must end the message). One exception: `{client}` takes the longest
//! value that lets the rest match, because a client path may contain what
//! the daemon writes after it (`(12); ACL: ` in a folder name). A
//! `<private>` capture counts as not
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

mod predicate;
mod record;
mod row;
#[cfg(test)]
mod tests;

pub use crate::log_pattern::{validate_pattern, Capture, Captures, MessagePattern, MATCH_MAX};
pub use predicate::{
    log_stream_predicate, LOG_STREAM_ARGS, RELEVANT_PROCESSES, RELEVANT_SUBSYSTEMS,
};
pub use record::{looks_like_unified_log, parse_record, LogRecord};
pub use row::{LineContext, MESSAGE_MAX};

use crate::counters::ScanStats;
use crate::keychain_prompts::{Observation, PromptTracker};
use crate::log_pattern::{
    match_text, wildcard_needle, Compiled, PatternAction, UnifiedLogPattern, Where,
};
use crate::schema::KeychainAccess;
use crate::text::{basename, sanitize};
use crate::tuning::Tuning;
use aho_corasick::AhoCorasick;
use row::build_row;
use std::borrow::Cow;

/// Parse a unified-log timestamp (`2026-10-04 17:50:33.803491+0200`) into
/// unix seconds (fractions dropped). The offset is required: the local time
/// of an unknown zone cannot be placed. See [`crate::timestamp`].
pub fn parse_log_timestamp(s: &str) -> Option<i64> {
    crate::timestamp::parse_timestamp(s, crate::timestamp::MissingOffset::Reject)
}

/// Turns unified-log records into rows.
#[derive(Debug, Default)]
pub struct UnifiedLogParser {
    patterns: Vec<Compiled>,
    prefilter: Option<AhoCorasick>,
    tracker: PromptTracker,
    /// Rows whose actor's ancestor list was cut at
    /// [`MAX_ANCESTORS`](crate::procs::MAX_ANCESTORS). Kept here, as the
    /// classifier keeps its own for ES rows, because the scanner sets
    /// `ScanStats::field_caps` from both owners (the sum), not by adding to it.
    pub field_caps: u64,
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
            field_caps: 0,
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
        let action = match pat.spec.action {
            PatternAction::Row(a) if !pat.excluded(process_path) => a,
            PatternAction::Row(_) | PatternAction::Ignore => {
                stats.unified_log_ignored += 1;
                return;
            }
        };
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
        let row::BuiltRow {
            mut row,
            origin,
            signer,
            ancestors_capped,
        } = build_row(&rec, pat, action, &caps, ctx);
        if ancestors_capped {
            self.field_caps += 1;
        }
        let assessment = self.tracker.observe(&Observation {
            action,
            logger: (rec.process_id.unwrap_or(-1), rec.thread_id.unwrap_or(0)),
            time: row.time,
            client_pid: caps.pid,
            client: caps.client.as_deref(),
            actor_path: row.path.as_deref().filter(|p| p.starts_with('/')),
            signer,
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
        // The tracker only ever raises a severity.
        row.severity = row.severity.max(assessment.severity);
        if row.time.is_none() {
            stats.unified_log_bad_time += 1;
        }
        out.push(row);
    }
}
