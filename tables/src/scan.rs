//! Reading captures: bounded lines, a byte-level prefilter, parsing,
//! classification and the counters a person needs to trust the result.
//!
//! Bounds are part of the design: a line longer than the cap is skipped and
//! counted without being buffered whole; the process cache is bounded;
//! memory does not grow with input size.
//!
//! The prefilter runs on raw bytes before any JSON parsing: a line is parsed
//! only if it mentions keychain material (`eychain`, `SystemKey`), a known
//! tool, or is an exec/fork (needed for process ancestry). Needles contain
//! no `/`, because eslogger escapes slashes as `\/`.

use crate::classify::Classifier;
use crate::es::{self, EsError};
use crate::procs::DEFAULT_CACHE_CAPACITY;
use crate::schema::KeychainAccess;
use crate::tuning::Tuning;
use aho_corasick::AhoCorasick;
use std::io::{self, BufRead};

/// Default maximum line length (bytes). Longer lines are skipped and counted.
pub const DEFAULT_MAX_LINE: usize = 4 * 1024 * 1024;

/// Needles that make an eslogger line worth parsing.
pub const PREFILTER_NEEDLES: &[&str] = &[
    "eychain",
    "SystemKey",
    "\"exec\":",
    "\"fork\":",
    "azagne",
    "AZAGNE",
    "hainbreaker",
];

const SEQ_NEEDLE: &str = "\"global_seq_num\":";

/// Counters for one scan (and for a live source's status row).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ScanStats {
    pub lines_read: u64,
    pub bytes_read: u64,
    pub blank_lines: u64,
    pub prefiltered: u64,
    pub parsed: u64,
    pub malformed: u64,
    pub oversize: u64,
    pub lossy_utf8: u64,
    pub unknown_types: u64,
    pub es_drops: u64,
    pub rows: u64,
    pub alerts: u64,
    pub allowlisted: u64,
    pub subsystem_access: u64,
    pub root_certificate_reads: u64,
    pub cache_evictions: u64,
    pub unified_log_records: u64,
    pub unified_log_unmatched: u64,
    pub banner_lines: u64,
}

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
        // The needles are fixed and valid; building cannot fail.
        let ac = AhoCorasick::new(&needles)
            .unwrap_or_else(|_| AhoCorasick::new(["eychain"]).unwrap_or_else(|_| unreachable!()));
        Prefilter {
            ac,
            seq_index: needles.len() - 1,
        }
    }

    /// Whether the line is worth parsing, and its `global_seq_num` if seen.
    pub fn check(&self, line: &[u8]) -> (bool, Option<u64>) {
        let mut relevant = false;
        let mut seq = None;
        for m in self.ac.find_iter(line) {
            if m.pattern().as_usize() == self.seq_index {
                if seq.is_none() {
                    seq = parse_u64(line.get(m.end()..).unwrap_or(&[]));
                }
            } else {
                relevant = true;
            }
            if relevant && seq.is_some() {
                break;
            }
        }
        (relevant, seq)
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
        }
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
        if crate::unified_log::looks_like_unified_log(trimmed) {
            let before = out.len();
            self.unified.scan_line(trimmed, &mut self.stats, out);
            self.count_rows(&out[before..]);
            return;
        }
        let (relevant, seq) = self.prefilter.check(trimmed);
        if let Some(seq) = seq {
            self.track_seq(seq);
        }
        if !relevant {
            self.stats.prefiltered += 1;
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
                log::debug!("line {}: malformed: {e}", self.stats.lines_read);
            }
            Err(EsError::UnknownType(t)) => {
                self.stats.unknown_types += 1;
                log::debug!("line {}: unknown event type {t}", self.stats.lines_read);
            }
        }
        self.count_rows(&out[before..]);
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
        self.stats.clone()
    }

    /// Scan a whole reader, calling `sink` for each row.
    pub fn scan_reader<R: BufRead>(
        &mut self,
        reader: R,
        mut sink: impl FnMut(KeychainAccess),
    ) -> io::Result<()> {
        let mut lines = LineReader::new(reader, self.max_line);
        let mut out = Vec::new();
        self.reset_sequence();
        while let Some(line) = lines.next_line()? {
            match line {
                Line::Complete(bytes) => self.scan_line(bytes, &mut out),
                Line::Oversize(len) => self.oversize_line(len),
            }
            for row in out.drain(..) {
                sink(row);
            }
        }
        Ok(())
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

/// One line from a [`LineReader`].
pub enum Line<'a> {
    Complete(&'a [u8]),
    /// A line longer than the cap: skipped, never buffered whole.
    Oversize(usize),
}

/// A newline-delimited reader with a line-length cap and a reusable buffer.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    cap: usize,
    /// Bytes consumed so far (the offset after the last returned line).
    pub offset: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, cap: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            cap: cap.max(1),
            offset: 0,
        }
    }

    /// The next line, or `None` at end of input. A final line without a
    /// newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut oversize: Option<usize> = None;
        loop {
            let (done, used) = {
                let avail = match self.inner.fill_buf() {
                    Ok(a) => a,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if avail.is_empty() {
                    if oversize.is_none() && self.buf.is_empty() {
                        return Ok(None);
                    }
                    break;
                }
                match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        match &mut oversize {
                            Some(n) => *n += i,
                            None if self.buf.len() + i > self.cap => {
                                oversize = Some(self.buf.len() + i)
                            }
                            None => self.buf.extend_from_slice(&avail[..i]),
                        }
                        (true, i + 1)
                    }
                    None => {
                        let n = avail.len();
                        match &mut oversize {
                            Some(total) => *total += n,
                            None if self.buf.len() + n > self.cap => {
                                oversize = Some(self.buf.len() + n);
                                self.buf.clear();
                                self.buf.shrink_to(64 * 1024);
                            }
                            None => self.buf.extend_from_slice(avail),
                        }
                        (false, n)
                    }
                }
            };
            self.inner.consume(used);
            self.offset += used as u64;
            if done {
                break;
            }
        }
        if let Some(n) = oversize {
            self.buf.clear();
            return Ok(Some(Line::Oversize(n)));
        }
        Ok(Some(Line::Complete(&self.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefilter_sees_escaped_paths_and_seq() {
        let p = Prefilter::new();
        let line = br#"{"event":{"open":{"fflag":1,"file":{"path":"\/Users\/a\/Library\/Keychains\/login.keychain-db"}}},"global_seq_num":42}"#;
        assert_eq!(p.check(line), (true, Some(42)));
        let noise = br#"{"event":{"open":{"file":{"path":"\/usr\/lib\/libc.dylib"}}},"global_seq_num": 43}"#;
        assert_eq!(p.check(noise), (false, Some(43)));
    }

    #[test]
    fn line_reader_caps_and_recovers() {
        let mut data = Vec::new();
        data.extend_from_slice(b"short\n");
        data.extend(std::iter::repeat_n(b'x', 100));
        data.extend_from_slice(b"\nafter\nlast-no-newline");
        let mut r = LineReader::new(io::BufReader::with_capacity(16, &data[..]), 50);
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push(match l {
                Line::Complete(b) => String::from_utf8_lossy(b).into_owned(),
                Line::Oversize(n) => format!("<oversize {n}>"),
            });
        }
        assert_eq!(
            got,
            vec!["short", "<oversize 100>", "after", "last-no-newline"]
        );
        assert_eq!(r.offset, data.len() as u64);
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
