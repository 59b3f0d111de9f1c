//! Bytes to lines, the one way every reader in the workspace does it: the
//! offline scan ([`LineReader`] over a `BufRead`), the extension's command
//! and file sources, and the Sentinel forwarder (through [`crate::tail`]).
//!
//! [`LineSplitter`] is fed chunks as they arrive (a pipe, a tailed file)
//! and appends every line a chunk completes to a [`LineBatch`]:
//!
//! * a line longer than the cap is skipped and only its length kept
//!   ([`Line::Oversize`]), never buffered whole; skipping ends at its
//!   newline, so the next line is read whole (resynchronised);
//! * each line carries the stream offset just after its newline, so a
//!   consumer commits exactly the bytes it has consumed, never half a line;
//! * an unfinished last line is held back until its newline arrives, or
//!   delivered by [`LineSplitter::finish`] at a true end of input (a
//!   finite capture, a rotated file that will not grow again).
//!
//! Kept hand-written: the split must be byte-exact (offsets are committed
//! and resumed from), bounded while a line is being skipped, and agree with
//! the naive `split(b'\n')` model the property tests hold it to; a codec
//! crate would add a dependency for thirty lines and still need the cap and
//! the offsets around it.

use std::io::{self, BufRead};

/// One line of a [`LineBatch`] (or from a [`LineReader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes, without its newline.
    Complete(&'a [u8]),
    /// A line longer than the cap, skipped, never buffered whole: its
    /// length without the newline.
    Oversize(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// End of the line's bytes in `LineBatch::data` (for an oversize line,
    /// the previous line's end: it has no bytes there).
    data_end: usize,
    oversize: Option<usize>,
    /// Stream offset just after the line (after its newline, or at the end
    /// of input for a last line without one).
    stream_end: u64,
}

/// Lines in one buffer, in order, each with its stream offset. One buffer
/// for the whole batch: a heap buffer per line cost about 12% of the live
/// path's CPU (allocated by a source thread, freed by the ingest thread).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineBatch {
    data: Vec<u8>,
    entries: Vec<Entry>,
}

impl LineBatch {
    fn last_stream_end(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.stream_end)
    }

    /// Append a complete line that did not come from a stream (its offset
    /// is the batch's last one).
    pub fn push(&mut self, line: &[u8]) {
        let end = self.last_stream_end();
        self.push_at(line, end);
    }

    fn push_at(&mut self, line: &[u8], stream_end: u64) {
        self.data.extend_from_slice(line);
        self.entries.push(Entry {
            data_end: self.data.len(),
            oversize: None,
            stream_end,
        });
    }

    /// One line made of two pieces (a line that spanned two reads).
    fn push_joined(&mut self, head: &[u8], tail: &[u8], stream_end: u64) {
        self.data.extend_from_slice(head);
        self.push_at(tail, stream_end);
    }

    fn push_oversize(&mut self, len: usize, stream_end: u64) {
        self.entries.push(Entry {
            data_end: self.data.len(),
            oversize: Some(len),
            stream_end,
        });
    }

    /// Room for `bytes` of lines without growing (growing by doubling
    /// would copy the batch again and again).
    pub fn reserve(&mut self, bytes: usize) {
        self.data.reserve(bytes);
    }

    /// Bytes of line text held.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Lines held, complete and oversize.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Empty it, keeping its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// Every line in order, with the stream offset just after it.
    pub fn entries(&self) -> impl Iterator<Item = (Line<'_>, u64)> {
        (0..self.entries.len()).filter_map(|i| self.get(i))
    }

    /// The `i`th line and the stream offset just after it.
    pub fn get(&self, i: usize) -> Option<(Line<'_>, u64)> {
        let e = self.entries.get(i)?;
        let line = match e.oversize {
            Some(n) => Line::Oversize(n),
            None => {
                let start = match i {
                    0 => 0,
                    _ => self.entries.get(i - 1).map_or(0, |p| p.data_end),
                };
                Line::Complete(self.data.get(start..e.data_end).unwrap_or(&[]))
            }
        };
        Some((line, e.stream_end))
    }

    /// The complete lines, in order, without their newlines.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.entries().filter_map(|(l, _)| match l {
            Line::Complete(b) => Some(b),
            Line::Oversize(_) => None,
        })
    }

    /// The lengths of the oversize lines, in order.
    pub fn oversize(&self) -> impl Iterator<Item = usize> + '_ {
        self.entries.iter().filter_map(|e| e.oversize)
    }

    /// The stream offset just after the last line: what a consumer commits
    /// once it has handled the batch. None when the batch is empty.
    pub fn end_offset(&self) -> Option<u64> {
        self.entries.last().map(|e| e.stream_end)
    }
}

impl<T: AsRef<[u8]>> From<Vec<T>> for LineBatch {
    fn from(lines: Vec<T>) -> Self {
        let mut b = LineBatch::default();
        for l in &lines {
            b.push(l.as_ref());
        }
        b
    }
}

/// Splits bytes that arrive in chunks into lines (see the module docs).
#[derive(Debug)]
pub struct LineSplitter {
    cap: usize,
    /// The unfinished line so far (when not skipping).
    partial: Vec<u8>,
    /// Length so far of an over-long line being skipped.
    skipping: Option<usize>,
    /// Stream offset of the next byte to be fed.
    fed: u64,
}

/// What an over-long line may leave allocated while it is skipped.
const KEEP_AFTER_OVERSIZE: usize = 64 * 1024;

impl LineSplitter {
    /// A splitter at the start of a stream, for lines of at most `cap`
    /// bytes (at least 1).
    pub fn new(cap: usize) -> Self {
        Self::at(cap, 0)
    }

    /// A splitter whose first byte is at stream offset `offset` (resuming a
    /// file at a committed offset, which is always a line start).
    pub fn at(cap: usize, offset: u64) -> Self {
        LineSplitter {
            cap: cap.max(1),
            partial: Vec::new(),
            skipping: None,
            fed: offset,
        }
    }

    /// Stream offset of the next byte to be fed (the read position).
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// Bytes held back: an unfinished line, or the part of an over-long
    /// one seen so far.
    pub fn held(&self) -> u64 {
        self.skipping.unwrap_or(self.partial.len()) as u64
    }

    /// Bytes of an unfinished line in memory (0 while skipping an
    /// over-long one: those are not kept).
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Stream offset of the first byte not part of a delivered line: where
    /// a restart must resume to lose nothing and split nothing.
    pub fn line_start(&self) -> u64 {
        self.fed - self.held()
    }

    /// Forget what is held and continue at `offset` (a file truncated and
    /// rewritten: the held bytes are gone from it).
    pub fn reset(&mut self, offset: u64) {
        self.partial.clear();
        self.skipping = None;
        self.fed = offset;
    }

    /// Feed a chunk; every line it completes is appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut LineBatch) {
        let base = self.fed;
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', chunk.get(start..).unwrap_or(&[])) {
            let piece = chunk.get(start..start + i).unwrap_or(&[]);
            let end = base + (start + i + 1) as u64;
            match self.skipping.take() {
                Some(n) => out.push_oversize(n + piece.len(), end),
                None if self.partial.len() + piece.len() > self.cap => {
                    out.push_oversize(self.partial.len() + piece.len(), end);
                    self.partial.clear();
                }
                None if self.partial.is_empty() => out.push_at(piece, end),
                None => {
                    out.push_joined(&self.partial, piece, end);
                    self.partial.clear();
                }
            }
            start += i + 1;
        }
        let rest = chunk.get(start..).unwrap_or(&[]);
        match &mut self.skipping {
            Some(n) => *n += rest.len(),
            None if self.partial.len() + rest.len() > self.cap => {
                self.skipping = Some(self.partial.len() + rest.len());
                self.partial.clear();
                self.partial.shrink_to(KEEP_AFTER_OVERSIZE);
            }
            None => self.partial.extend_from_slice(rest),
        }
        self.fed += chunk.len() as u64;
    }

    /// The true end of the input: an unfinished last line is a line (or an
    /// oversize one), appended to `out`.
    pub fn finish(&mut self, out: &mut LineBatch) {
        if let Some(n) = self.skipping.take() {
            out.push_oversize(n, self.fed);
        } else if !self.partial.is_empty() {
            out.push_at(&self.partial, self.fed);
            self.partial.clear();
        }
    }
}

/// At most this many bytes of a reader's buffer are split at a time, so a
/// reader that hands out everything at once (a byte slice) still costs a
/// bounded batch.
const READER_STEP: usize = 256 * 1024;

/// A newline-delimited reader over a `BufRead`, with the line-length cap:
/// [`LineSplitter`] in pull form, for finite inputs (a final line without a
/// newline is a line).
pub struct LineReader<R> {
    inner: R,
    splitter: LineSplitter,
    batch: LineBatch,
    next: usize,
    at_end: bool,
    /// Bytes consumed so far (the offset after the last returned line).
    pub offset: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, cap: usize) -> Self {
        LineReader {
            inner,
            splitter: LineSplitter::new(cap),
            batch: LineBatch::default(),
            next: 0,
            at_end: false,
            offset: 0,
        }
    }

    /// The next line, or `None` at end of input. A final line without a
    /// newline is returned too.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        while self.next >= self.batch.len() {
            if self.at_end {
                return Ok(None);
            }
            self.batch.clear();
            self.next = 0;
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                self.splitter.finish(&mut self.batch);
                self.at_end = true;
                continue;
            }
            let n = avail.len().min(READER_STEP);
            self.splitter
                .push(avail.get(..n).unwrap_or(avail), &mut self.batch);
            self.inner.consume(n);
        }
        let Some((line, end)) = self.batch.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        self.offset = end;
        Ok(Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(b: &LineBatch) -> Vec<(String, u64)> {
        b.entries()
            .map(|(l, end)| {
                let s = match l {
                    Line::Complete(b) => String::from_utf8_lossy(b).into_owned(),
                    Line::Oversize(n) => format!("<oversize {n}>"),
                };
                (s, end)
            })
            .collect()
    }

    #[test]
    fn chunk_boundaries_caps_offsets_and_the_held_line() {
        let mut sp = LineSplitter::new(8);
        let mut out = LineBatch::default();
        // A line split across two chunks is one line, ending at its newline.
        sp.push(b"ab", &mut out);
        assert!(out.is_empty());
        assert_eq!((sp.fed(), sp.line_start()), (2, 0));
        sp.push(b"c\nde", &mut out);
        assert_eq!(show(&out), vec![("abc".into(), 4)]);
        assert_eq!(out.end_offset(), Some(4));
        assert_eq!(sp.line_start(), 4);
        // An over-long line spanning chunks is skipped and measured, and
        // the next line is read whole (resynchronised at the newline).
        sp.push(b"fghijklm", &mut out);
        assert_eq!((sp.held(), sp.buffered()), (10, 0));
        sp.push(b"no\nok\n", &mut out);
        assert_eq!(
            show(&out),
            vec![
                ("abc".into(), 4),
                ("<oversize 12>".into(), 17),
                ("ok".into(), 20)
            ]
        );
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![&b"abc"[..], b"ok"]);
        assert_eq!(out.oversize().collect::<Vec<_>>(), vec![12]);
        // An unfinished last line is held back, then delivered at the end.
        out.clear();
        sp.push(b"tail", &mut out);
        assert!(out.is_empty());
        assert_eq!(sp.line_start(), 20);
        sp.finish(&mut out);
        assert_eq!(show(&out), vec![("tail".into(), 24)]);
        out.clear();
        sp.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn an_oversize_last_line_at_the_end_is_counted_and_reset_forgets() {
        let mut sp = LineSplitter::at(4, 100);
        let mut out = LineBatch::default();
        sp.push(b"abcdefgh", &mut out);
        sp.finish(&mut out);
        assert_eq!(show(&out), vec![("<oversize 8>".into(), 108)]);
        out.clear();
        sp.push(b"xy", &mut out);
        sp.reset(0);
        sp.push(b"z\n", &mut out);
        assert_eq!(show(&out), vec![("z".into(), 2)]);
    }

    #[test]
    fn exactly_the_cap_is_a_line_one_more_is_not() {
        let mut sp = LineSplitter::new(3);
        let mut out = LineBatch::default();
        sp.push(b"abc\nabcd\n", &mut out);
        assert_eq!(
            show(&out),
            vec![("abc".into(), 4), ("<oversize 4>".into(), 9)]
        );
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
    fn line_reader_offsets_follow_each_line() {
        let data = b"a\nbb\n\nccc";
        let mut r = LineReader::new(&data[..], 10);
        let mut offsets = Vec::new();
        while r.next_line().unwrap().is_some() {
            offsets.push(r.offset);
        }
        assert_eq!(offsets, vec![2, 5, 6, 9]);
    }
}
