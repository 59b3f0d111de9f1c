//! Reading captures: bounded lines, a byte-level prefilter, parsing,
//! classification and the counters a person needs to trust the result.
//!
//! Bounds are part of the design: a line longer than the cap is skipped and
//! counted without being buffered whole (the shared splitter in
//! [`crate::lines`]); the process cache is bounded; memory does not grow
//! with input size.
//!
//! The prefilter runs on raw bytes before any JSON parsing: a line is parsed
//! only if it mentions keychain material (`eychain`, `SystemKey`), a known
//! tool, the name of a file that received keychain material under another
//! name (a hard link or copy the classifier followed), or is an
//! exec/fork/exit (needed for process ancestry and the cache's memory).
//! Needles contain no `/`, because eslogger escapes slashes as `\/`.

use crate::classify::Classifier;
use crate::correlate::{CorrelationOptions, CorrelationUpdate, Correlator};
use crate::es::{self, EsError};
use crate::procs::DEFAULT_CACHE_CAPACITY;
use crate::schema::KeychainAccess;
use crate::tuning::Tuning;
use aho_corasick::{AhoCorasick, MatchKind};
use std::io::{self, BufRead};

/// The line reader the scan uses (the shared splitter of [`crate::lines`]).
pub use crate::lines::{Line, LineReader};

/// Default maximum line length (bytes). Longer lines are skipped and counted.
pub const DEFAULT_MAX_LINE: usize = 4 * 1024 * 1024;

/// Needles that make an eslogger line worth parsing.
pub const PREFILTER_NEEDLES: &[&str] = &[
    "eychain",
    "SystemKey",
    "\"exec\":",
    "\"fork\":",
    "\"exit\":",
    "azagne",
    "AZAGNE",
    "hainbreaker",
];

const SEQ_NEEDLE: &str = "\"global_seq_num\":";
const TYPE_NEEDLE: &str = "\"event_type\":";

/// ES event type numbers the classifier handles (exec, open, fork, close,
/// create, exit, link, rename, unlink, clone, copyfile). Others are counted
/// as unknown types, without parsing.
pub const HANDLED_EVENT_TYPES: &[u64] = &[9, 10, 11, 12, 13, 15, 19, 25, 32, 61, 110];

pub use crate::counters::ScanStats;

/// Options for a scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub max_line: usize,
    pub cache_capacity: usize,
    pub tuning: Tuning,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_line: DEFAULT_MAX_LINE,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            tuning: Tuning::builtin(),
        }
    }
}

/// The byte-level prefilter.
pub struct Prefilter {
    ac: AhoCorasick,
    seq_index: usize,
    type_index: usize,
}

/// What the prefilter learned from one line's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peek {
    /// The line mentions keychain material, a tool, or is an exec/fork.
    pub relevant: bool,
    pub global_seq_num: Option<u64>,
    pub event_type: Option<u64>,
}

impl Default for Prefilter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prefilter {
    pub fn new() -> Self {
        let mut needles: Vec<&str> = PREFILTER_NEEDLES.to_vec();
        needles.push(SEQ_NEEDLE);
        needles.push(TYPE_NEEDLE);
        // Leftmost-first semantics, not the default standard ones: only
        // leftmost searchers get aho-corasick's SIMD (Teddy) prefilter; the
        // standard searcher's prefilter keys on first bytes, and `"` starts
        // half the needles and every JSON key, so it walks the automaton
        // byte by byte (~3x slower on eslogger lines). The needles cannot
        // overlap one another in a way that changes what `peek` reports.
        // The needles are fixed and valid; building cannot fail.
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&needles)
            .unwrap_or_else(|_| AhoCorasick::new(["eychain"]).unwrap_or_else(|_| unreachable!()));
        Prefilter {
            ac,
            seq_index: needles.len() - 2,
            type_index: needles.len() - 1,
        }
    }

    /// Whether the line is worth parsing, and its `global_seq_num` and
    /// `event_type` if seen. One pass over the bytes.
    pub fn peek(&self, line: &[u8]) -> Peek {
        let mut p = Peek::default();
        for m in self.ac.find_iter(line) {
            let i = m.pattern().as_usize();
            let rest = line.get(m.end()..).unwrap_or(&[]);
            if i == self.seq_index {
                if p.global_seq_num.is_none() {
                    p.global_seq_num = parse_u64(rest);
                }
            } else if i == self.type_index {
                if p.event_type.is_none() {
                    p.event_type = parse_u64(rest);
                }
            } else {
                p.relevant = true;
            }
        }
        p
    }
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    let b = b.iter().skip_while(|c| c.is_ascii_whitespace());
    let mut v: u64 = 0;
    let mut any = false;
    for c in b {
        if c.is_ascii_digit() {
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            any = true;
        } else {
            break;
        }
    }
    any.then_some(v)
}

/// A capture scanner: feed it lines, get rows.
pub struct Scanner {
    pub classifier: Classifier,
    prefilter: Prefilter,
    pub stats: ScanStats,
    pub max_line: usize,
    last_seq: Option<u64>,
    pub unified: crate::unified_log::UnifiedLogParser,
    /// Links ES and unified-log rows of the same access (see `correlate`).
    pub correlator: Correlator,
    /// Needles for the names of files that received keychain material
    /// under another name, with the classifier's version they were built
    /// from.
    derived_needles: Option<(u64, AhoCorasick)>,
}

impl Scanner {
    pub fn new(opts: ScanOptions) -> Self {
        let unified = crate::unified_log::UnifiedLogParser::from_tuning(&opts.tuning);
        Scanner {
            classifier: Classifier::new(opts.tuning, opts.cache_capacity),
            prefilter: Prefilter::new(),
            stats: ScanStats::default(),
            max_line: opts.max_line,
            last_seq: None,
            unified,
            correlator: Correlator::default(),
            derived_needles: None,
        }
    }

    /// Whether the line names a file that received keychain material under
    /// another name (by its JSON-escaped base name).
    fn mentions_derived(&mut self, line: &[u8]) -> bool {
        let version = self.classifier.derived_version();
        if version == 0 {
            return false;
        }
        if self.derived_needles.as_ref().map(|(v, _)| *v) != Some(version) {
            let names: Vec<String> = self
                .classifier
                .derived_names()
                .filter_map(|n| serde_json::to_string(n).ok())
                .map(|q| q.trim_matches('"').to_string())
                .filter(|n| !n.is_empty())
                .collect();
            self.derived_needles = AhoCorasick::new(&names).ok().map(|ac| (version, ac));
        }
        self.derived_needles
            .as_ref()
            .is_some_and(|(_, ac)| ac.is_match(line))
    }

    /// Change the correlation settings (window, bounds, on/off). Rows
    /// already remembered are forgotten.
    pub fn set_correlation(&mut self, opts: CorrelationOptions) {
        let counters = self.correlator.counters.clone();
        self.correlator = Correlator::new(opts);
        self.correlator.counters = counters;
    }

    /// Correlation ids for rows already handed out (by `scan_line` or the
    /// `scan_reader` sink) before their partner row arrived. Drain after each
    /// line or batch and apply: `correlate::apply_updates` on rows in
    /// memory, `Store::apply_correlation_updates` on the buffer.
    pub fn take_correlation_updates(&mut self) -> Vec<CorrelationUpdate> {
        self.correlator.take_updates()
    }

    /// Process one line (without its newline).
    pub fn scan_line(&mut self, line: &[u8], out: &mut Vec<KeychainAccess>) {
        self.stats.lines_read += 1;
        self.stats.bytes_read += line.len() as u64 + 1;
        let trimmed = trim_ascii(line);
        if trimmed.is_empty() {
            self.stats.blank_lines += 1;
            return;
        }
        if trimmed.first() != Some(&b'{') {
            // `log stream` prints a banner; anything else is noise.
            if trimmed.starts_with(b"Filtering the log data") || trimmed.starts_with(b"Timestamp") {
                self.stats.banner_lines += 1;
            } else {
                self.stats.malformed += 1;
                log::debug!("line {}: not a JSON object", self.stats.lines_read);
            }
            return;
        }
        // One pass of the prefilter also finds eslogger's numeric
        // `"event_type":`; only a line without it can be a unified-log
        // record, so eslogger lines skip that second search.
        let peek = self.prefilter.peek(trimmed);
        if peek.event_type.is_none() && crate::unified_log::looks_like_unified_log(trimmed) {
            let before = out.len();
            let ctx = crate::unified_log::LineContext {
                cache: Some(&self.classifier.cache),
                tuning: &self.classifier.tuning,
            };
            self.unified.scan_line(trimmed, &mut self.stats, &ctx, out);
            self.finish_rows(out, before);
            return;
        }
        if let Some(seq) = peek.global_seq_num {
            self.track_seq(seq);
        }
        if !peek.relevant && !self.mentions_derived(trimmed) {
            // Not parsed: check the structure cheaply. A type error inside an
            // event that never mentions keychain material is not detected, by
            // design (parsing it would cost what the prefilter saves).
            if trimmed.last() != Some(&b'}') || peek.event_type.is_none() {
                self.stats.malformed += 1;
            } else if peek
                .event_type
                .is_some_and(|t| !HANDLED_EVENT_TYPES.contains(&t))
            {
                self.stats.unknown_types += 1;
            } else {
                self.stats.prefiltered += 1;
            }
            return;
        }
        let text: std::borrow::Cow<'_, str> = match std::str::from_utf8(trimmed) {
            Ok(s) => s.into(),
            Err(_) => {
                // Invalid UTF-8 in a path or argument: keep the event with
                // U+FFFD in place of the bad bytes, and count it.
                self.stats.lossy_utf8 += 1;
                String::from_utf8_lossy(trimmed)
            }
        };
        let before = out.len();
        match es::parse_line(&text) {
            Ok((msg, ev)) => {
                self.stats.parsed += 1;
                self.classifier.handle(&msg, &ev, out);
            }
            Err(EsError::Malformed(e)) => {
                self.stats.malformed += 1;
                log::debug!(
                    "line {}: malformed: {}",
                    self.stats.lines_read,
                    crate::redact::without_quoted_values(&e)
                );
            }
            Err(EsError::UnknownType(t)) => {
                self.stats.unknown_types += 1;
                log::debug!("line {}: unknown event type {t}", self.stats.lines_read);
            }
        }
        self.finish_rows(out, before);
    }

    /// Correlate and count the rows this line produced.
    fn finish_rows(&mut self, out: &mut [KeychainAccess], before: usize) {
        if let Some(new) = out.get_mut(before..) {
            let c = &mut self.classifier;
            crate::tree_secrets::scrub_rows(&c.cache, &mut c.tree_secrets, new);
            for r in new.iter_mut() {
                self.correlator.observe(r);
            }
        }
        self.count_rows(out.get(before..).unwrap_or(&[]));
    }

    fn count_rows(&mut self, rows: &[KeychainAccess]) {
        for r in rows {
            self.stats.rows += 1;
            if r.is_alert() {
                self.stats.alerts += 1;
            }
            if r.allowlisted == Some(1) {
                self.stats.allowlisted += 1;
            }
        }
    }

    /// Count an oversize line (the reader skipped it).
    pub fn oversize_line(&mut self, len: usize) {
        self.stats.lines_read += 1;
        self.stats.bytes_read += len as u64;
        self.stats.oversize += 1;
    }

    fn track_seq(&mut self, seq: u64) {
        if let Some(last) = self.last_seq {
            if seq > last + 1 {
                self.stats.es_drops += seq - last - 1;
            }
        }
        // A smaller number means eslogger restarted: a new sequence.
        self.last_seq = Some(seq);
    }

    /// Reset the sequence tracking (a new eslogger process or a new file).
    pub fn reset_sequence(&mut self) {
        self.last_seq = None;
    }

    /// Final counters, including the classifier's.
    pub fn finish_stats(&mut self) -> ScanStats {
        self.stats.subsystem_access = self.classifier.counters.subsystem_access;
        self.stats.root_certificate_reads = self.classifier.counters.root_certificate_reads;
        self.stats.cache_evictions = self.classifier.cache.evictions;
        // Cut fields of both sources: ES rows' (the classifier's) and
        // unified-log rows' capped ancestor lists (the parser's).
        self.stats.field_caps = self.classifier.counters.field_caps + self.unified.field_caps;
        self.stats.secrets_scrubbed = self.classifier.tree_secrets.scrubs;
        self.stats.keychain_updates = self.classifier.counters.keychain_updates;
        self.stats.accesses_succeeded = self.classifier.counters.accesses_succeeded;
        self.stats.accesses_failed = self.classifier.counters.accesses_failed;
        self.stats.correlated_rows = self.correlator.counters.correlated_rows;
        self.stats.correlation_evictions = self.correlator.counters.evictions;
        self.stats.correlation_updates_dropped = self.correlator.counters.updates_dropped;
        self.stats.clone()
    }

    /// The one offline loop: every line of `reader` through the scanner.
    /// After each line, `each` gets the scanner (to drain correlation
    /// updates), that line's rows, and the bytes consumed so far.
    pub fn scan_lines<R: BufRead>(
        &mut self,
        reader: R,
        mut each: impl FnMut(&mut Scanner, Vec<KeychainAccess>, u64) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut lines = LineReader::new(reader, self.max_line);
        let mut out = Vec::new();
        self.reset_sequence();
        while let Some(line) = lines.next_line()? {
            match line {
                Line::Complete(bytes) => self.scan_line(bytes, &mut out),
                Line::Oversize(len) => self.oversize_line(len),
            }
            each(self, std::mem::take(&mut out), lines.offset)?;
        }
        Ok(())
    }

    /// Scan a whole reader into `rows`, applying correlation updates as
    /// they come (the offline path in one call).
    pub fn scan_reader_into<R: BufRead>(
        &mut self,
        reader: R,
        rows: &mut Vec<KeychainAccess>,
    ) -> io::Result<()> {
        self.scan_lines(reader, |s, mut produced, _| {
            rows.append(&mut produced);
            let updates = s.take_correlation_updates();
            if !updates.is_empty() {
                crate::correlate::apply_updates(rows, &updates);
            }
            Ok(())
        })
    }

    /// Scan a whole reader, calling `sink` for each row. Rows reach the sink
    /// before a later partner can correlate them: drain
    /// [`Scanner::take_correlation_updates`] afterwards (or use
    /// [`Scanner::scan_reader_into`]).
    pub fn scan_reader<R: BufRead>(
        &mut self,
        reader: R,
        mut sink: impl FnMut(KeychainAccess),
    ) -> io::Result<()> {
        self.scan_lines(reader, |_, produced, _| {
            produced.into_iter().for_each(&mut sink);
            Ok(())
        })
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefilter_sees_escaped_paths_and_seq() {
        let p = Prefilter::new();
        let line = br#"{"event":{"open":{"fflag":1,"file":{"path":"\/Users\/a\/Library\/Keychains\/login.keychain-db"}}},"global_seq_num":42}"#;
        let peek = p.peek(line);
        assert_eq!((peek.relevant, peek.global_seq_num), (true, Some(42)));
        let noise = br#"{"event":{"open":{"file":{"path":"\/usr\/lib\/libc.dylib"}}},"global_seq_num": 43}"#;
        let peek = p.peek(noise);
        assert_eq!((peek.relevant, peek.global_seq_num), (false, Some(43)));
    }

    #[test]
    fn prefilter_finds_every_needle_before_and_after_the_numbers() {
        // Leftmost-first matching must not hide a needle or a number.
        let p = Prefilter::new();
        for n in PREFILTER_NEEDLES {
            for line in [
                format!(r#"{{"global_seq_num":7,"event_type":9,"x":"{n}"}}"#),
                format!(r#"{{"x":"{n}","global_seq_num":7,"event_type":9}}"#),
                format!(r#"{{"x":"{n}{n}","event_type": 9,"global_seq_num":7}}"#),
            ] {
                let peek = p.peek(line.as_bytes());
                assert!(peek.relevant, "{line}");
                assert_eq!(peek.global_seq_num, Some(7), "{line}");
                assert_eq!(peek.event_type, Some(9), "{line}");
            }
        }
        let miss = p.peek(br#"{"event_type":10,"global_seq_num":8,"path":"\/usr\/lib"}"#);
        assert_eq!(
            miss,
            Peek {
                relevant: false,
                global_seq_num: Some(8),
                event_type: Some(10)
            }
        );
    }

    #[test]
    fn drops_are_counted_from_sequence_gaps() {
        let mut s = Scanner::new(ScanOptions::default());
        for seq in [1u64, 2, 5, 6, 1, 2] {
            s.track_seq(seq);
        }
        assert_eq!(s.stats.es_drops, 2);
    }
}
