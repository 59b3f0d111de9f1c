//! Capture files in the shapes people actually have, turned into the one
//! shape the scanner reads: one JSON record per line.
//!
//! A new user hands the CLI whatever they saved: a gzip'd capture, `log show
//! --style json` output (one JSON array of records, pretty-printed by
//! Foundation's `NSJSONSerialization` as `"key" : value`), a capture passed
//! through `jq .` (one pretty-printed object spanning many lines), a file
//! saved with a UTF-8 byte-order mark, or something else entirely (UTF-16
//! from a Windows editor, a CSV export, a binary). [`open_capture`] sniffs
//! the first bytes and returns a reader of JSON lines plus what it saw:
//!
//! * gzip (magic `1f 8b`, RFC 1952 section 2.3.1): decompressed on the fly,
//!   multi-member files included (`cat a.gz b.gz` is a valid gzip file);
//! * a UTF-8 BOM (`EF BB BF`) is dropped, so the first record is kept;
//! * UTF-16 (a `FF FE`/`FE FF` BOM, or every other byte NUL in the first
//!   bytes) cannot be read: [`InputShape::unreadable`] says so up front;
//! * JSON lines (first record complete on its first line) pass through
//!   untouched, so one bad line among good ones is still a counted skip;
//! * a JSON array or pretty-printed JSON goes through [`JsonRecords`], a
//!   streaming splitter that emits each top-level object (or each element
//!   of a top-level array) as one compact line. It keeps a constant-size
//!   state (depth, in-string, escape), never the array or a whole record,
//!   so memory stays flat whatever the file size; the scanner's line cap
//!   still bounds one record.
//!
//! When a readable file still yields no record the scanner recognises,
//! [`InputShape::explain_nothing_read`] describes in plain words what the
//! file looks like and what is expected. It never quotes the file's bytes:
//! a capture can hold secrets (a `-w` password on a command line), and
//! diagnostics must not carry them out of the process.

use std::io::{self, BufRead, BufReader, Read};

/// How many leading bytes [`open_capture`] looks at.
const SNIFF_BYTES: usize = 64 * 1024;

/// The text shape of a capture after decompression and BOM removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// No bytes at all.
    Empty,
    /// One JSON record per line (eslogger, `log ... --style ndjson`).
    JsonLines,
    /// A JSON array of records (`log show --style json`).
    JsonArray,
    /// JSON records spanning several lines (`jq .` output).
    PrettyJson,
    /// UTF-16 text: not readable as UTF-8.
    Utf16,
    /// NUL bytes or mostly non-text bytes.
    Binary,
    /// Text whose first line is not JSON.
    Text,
}

/// What [`open_capture`] learned about an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShape {
    pub gzip: bool,
    pub utf8_bom: bool,
    pub layout: Layout,
    /// For [`Layout::Text`]: a content-free description of the first line.
    pub first_line: Option<&'static str>,
}

/// What the scanner expects, said once for every diagnostic.
pub const EXPECTED: &str =
    "expected eslogger JSON lines (`eslogger exec open ... > capture.json`), \
unified-log records (`log show|stream --style ndjson`, or `--style json`), \
a JSON array of those records, or pretty-printed JSON of them; gzip is read transparently";

impl InputShape {
    /// Plain words for what the file looks like.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.gzip {
            s.push_str("gzip-compressed; inside, ");
        }
        s.push_str(match self.layout {
            Layout::Empty => "empty",
            Layout::JsonLines => "JSON, one value per line",
            Layout::JsonArray => "a JSON array",
            Layout::PrettyJson => "pretty-printed JSON",
            Layout::Utf16 => "UTF-16 text (as Windows editors and PowerShell's `>` save it)",
            Layout::Binary => "binary data, not text",
            Layout::Text => self.first_line.unwrap_or("text that is not JSON"),
        });
        s
    }

    /// An error to give before reading, for a shape that cannot be read at
    /// all (binary data is scanned: it may be a corrupt stretch among good
    /// lines, counted as malformed).
    pub fn unreadable(&self) -> Option<String> {
        match self.layout {
            Layout::Utf16 => Some(format!(
                "the file is {}; convert it to UTF-8 first (`iconv -f UTF-16 -t UTF-8 IN > OUT`); {EXPECTED}",
                self.describe()
            )),
            _ => None,
        }
    }

    /// An error when a readable file produced no record the scanner
    /// recognises (every non-blank line malformed, oversize or a banner).
    /// `None` when something was recognised, or the file is empty.
    pub fn explain_nothing_read(&self, stats: &crate::ScanStats) -> Option<String> {
        let content = stats
            .lines_read
            .saturating_sub(stats.blank_lines)
            .saturating_sub(stats.banner_lines);
        let unrecognised = stats.malformed.saturating_add(stats.oversize);
        if content == 0 || unrecognised < content {
            return None;
        }
        if stats.oversize == content {
            return Some(format!(
                "every one of its {content} line(s) is longer than --max-line; \
                 the file is {}; raise --max-line; {EXPECTED}",
                self.describe()
            ));
        }
        let json_but = match self.layout {
            Layout::JsonLines | Layout::JsonArray | Layout::PrettyJson => {
                ", but no record is an eslogger event (with `event_type`) or a unified-log record \
                 (with `eventMessage`)"
            }
            _ => "",
        };
        Some(format!(
            "no line of it is a capture record ({content} line(s), all unreadable or of another shape); \
             the file is {}{json_but}; {EXPECTED}",
            self.describe()
        ))
    }
}

/// Open a capture: sniff, decompress, drop a BOM, and split JSON arrays and
/// pretty JSON into lines. The returned reader yields JSON lines.
pub fn open_capture<'a>(
    raw: Box<dyn Read + Send + 'a>,
) -> io::Result<(Box<dyn BufRead + Send + 'a>, InputShape)> {
    let mut outer = BufReader::with_capacity(256 * 1024, raw);
    let gzip = outer.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut text: Box<dyn BufRead + Send + 'a> = if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(outer),
        ))
    } else {
        Box::new(outer)
    };
    let mut head = fill_at_least(&mut text, SNIFF_BYTES)?;
    let utf8_bom = head.starts_with(b"\xEF\xBB\xBF");
    if utf8_bom {
        head.drain(..3);
    }
    let (layout, first_line) = sniff(&head);
    let shape = InputShape {
        gzip,
        utf8_bom,
        layout,
        first_line,
    };
    // The sniffed bytes were taken out of `text`: put them back in front.
    let rest = io::Cursor::new(head).chain(text);
    let out: Box<dyn BufRead + Send + 'a> = match layout {
        Layout::JsonArray | Layout::PrettyJson => {
            Box::new(BufReader::with_capacity(256 * 1024, JsonRecords::new(rest)))
        }
        _ => Box::new(rest),
    };
    Ok((out, shape))
}

/// Read until `want` bytes or end of input; the bytes are taken out of `r`.
fn fill_at_least(r: &mut dyn BufRead, want: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(want.min(1 << 16));
    r.take(want as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn sniff(body: &[u8]) -> (Layout, Option<&'static str>) {
    if body.is_empty() {
        return (Layout::Empty, None);
    }
    if body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF") || looks_utf16(body) {
        return (Layout::Utf16, None);
    }
    if body.contains(&0) || mostly_non_text(body) {
        return (Layout::Binary, None);
    }
    // The first meaningful line: `log stream` banners come before the JSON.
    let mut lines = body.split(|&b| b == b'\n').map(trim);
    let first = loop {
        match lines.next() {
            Some([]) => continue,
            Some(l) if is_banner(l) => continue,
            Some(l) => break l,
            None => return (Layout::JsonLines, None),
        }
    };
    match first.first() {
        Some(b'[') => (Layout::JsonArray, None),
        // `jq .`, Python's `json.dumps(indent=...)` and Foundation all put
        // a record's opening brace alone on its line. Anything else starting
        // with `{` is JSON lines, even when that line is broken: a truncated
        // first record must stay a counted skip, not swallow the file.
        Some(b'{') if first == b"{" => (Layout::PrettyJson, None),
        Some(b'{') => (Layout::JsonLines, None),
        _ => (Layout::Text, Some(describe_text_line(first))),
    }
}

fn is_banner(l: &[u8]) -> bool {
    l.starts_with(b"Filtering the log data") || l.starts_with(b"Timestamp")
}

fn trim(l: &[u8]) -> &[u8] {
    let s = l
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(l.len());
    let e = l
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    l.get(s..e).unwrap_or(&[])
}

/// Every other byte NUL over the first bytes: UTF-16 without a BOM.
fn looks_utf16(b: &[u8]) -> bool {
    let n = b.len().min(512) & !1;
    if n < 4 {
        return false;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for (i, c) in b.iter().take(n).enumerate() {
        if *c == 0 {
            if i % 2 == 0 {
                even += 1
            } else {
                odd += 1
            }
        }
    }
    let half = n / 2;
    even * 10 >= half * 9 || odd * 10 >= half * 9
}

fn mostly_non_text(b: &[u8]) -> bool {
    let sample = &b[..b.len().min(4096)];
    let valid = match std::str::from_utf8(sample) {
        Ok(_) => return false,
        // A multi-byte character cut by the sample edge is fine.
        Err(e) if e.error_len().is_none() => return false,
        Err(e) => e.valid_up_to(),
    };
    let bad = sample
        .iter()
        .skip(valid)
        .filter(|&&c| c >= 0x80 || (c < 0x20 && !c.is_ascii_whitespace()))
        .count();
    bad * 4 > sample.len()
}

/// What a non-JSON first line looks like, without quoting it.
fn describe_text_line(l: &[u8]) -> &'static str {
    let commas = l.iter().filter(|&&c| c == b',').count();
    let tabs = l.iter().filter(|&&c| c == b'\t').count();
    if l.starts_with(b"<") {
        "XML or HTML (a plist or a web page?), not JSON"
    } else if l.len() >= 19 && l[..4].iter().all(u8::is_ascii_digit) && l[4] == b'-' {
        "text log lines starting with a timestamp (`log show` in its default or compact style?), not JSON"
    } else if commas >= 2 {
        "comma-separated text (CSV?), not JSON"
    } else if tabs >= 2 {
        "tab-separated text, not JSON"
    } else {
        "plain text lines, not JSON"
    }
}

/// A streaming splitter: JSON arrays of records and pretty-printed records
/// in, one compact record per line out.
///
/// Outside strings, whitespace is dropped and a record ends when its
/// brackets balance; the brackets of one top-level array around the records
/// are dropped with the commas between them. Inside strings bytes are copied
/// as they are (a raw newline, invalid JSON anyway, becomes a control byte
/// so the record stays one line and is counted malformed). A top-level line
/// that is not JSON (a banner) passes through as its own line.
pub struct JsonRecords<R> {
    inner: R,
    out: Vec<u8>,
    pos: usize,
    depth: u32,
    top_array: bool,
    in_string: bool,
    escape: bool,
    pending: bool,
    raw_line: bool,
}

impl<R: BufRead> JsonRecords<R> {
    pub fn new(inner: R) -> Self {
        JsonRecords {
            inner,
            out: Vec::with_capacity(64 * 1024),
            pos: 0,
            depth: 0,
            top_array: false,
            in_string: false,
            escape: false,
            pending: false,
            raw_line: false,
        }
    }

    fn end_record(&mut self) {
        if self.pending {
            self.out.push(b'\n');
        }
        self.pending = false;
    }

    fn push(&mut self, b: u8) {
        if self.raw_line {
            self.out.push(b);
            if b == b'\n' {
                self.raw_line = false;
                self.pending = false;
            }
            return;
        }
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            self.out
                .push(if b == b'\n' || b == b'\r' { 0x01 } else { b });
            return;
        }
        let level = u32::from(self.top_array);
        if self.depth > level {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => {
                    self.in_string = true;
                    self.out.push(b);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.out.push(b);
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    self.out.push(b);
                    if self.depth == level {
                        self.end_record();
                    }
                }
                _ => self.out.push(b),
            }
            return;
        }
        // Between records.
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b',' if self.top_array => self.end_record(),
            b']' if self.top_array => {
                self.end_record();
                self.top_array = false;
                self.depth = 0;
            }
            b'[' if !self.top_array && self.depth == 0 => {
                self.top_array = true;
                self.depth = 1;
            }
            b'{' | b'[' => {
                self.end_record();
                self.depth += 1;
                self.pending = true;
                self.out.push(b);
            }
            b'"' => {
                self.in_string = true;
                self.pending = true;
                self.out.push(b);
            }
            _ if !self.top_array => {
                // Not JSON at the top level: pass the line through.
                self.end_record();
                self.raw_line = true;
                self.pending = true;
                self.out.push(b);
            }
            _ => {
                // A scalar element of the array: its own (malformed) line.
                self.pending = true;
                self.out.push(b);
            }
        }
    }
}

impl<R: BufRead> Read for JsonRecords<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            self.out.clear();
            self.pos = 0;
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c.to_vec(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                // End of input: close a record left open (truncated file).
                if self.pending {
                    self.pending = false;
                    self.out.push(b'\n');
                    continue;
                }
                return Ok(0);
            }
            self.inner.consume(chunk.len());
            for b in chunk {
                self.push(b);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> (Vec<String>, InputShape) {
        let (mut r, shape) = open_capture(Box::new(io::Cursor::new(input.to_vec()))).unwrap();
        let mut b = Vec::new();
        r.read_to_end(&mut b).unwrap();
        (
            String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_string)
                .collect(),
            shape,
        )
    }

    #[test]
    fn json_lines_pass_through_untouched() {
        let input = b"{\"a\": 1}\n{broken\n{\"b\":2}\n";
        let (l, shape) = lines(input);
        assert_eq!(shape.layout, Layout::JsonLines);
        assert_eq!(l, vec!["{\"a\": 1}", "{broken", "{\"b\":2}"]);
        // A truncated first record is one bad line, not the start of a
        // pretty-printed record that swallows the file.
        let (l, shape) = lines(b"{\"a\": [1,\n{\"b\":2}\n");
        assert_eq!(shape.layout, Layout::JsonLines);
        assert_eq!(l.len(), 2);
    }

    /// An endless array: the splitter's buffer stays at one input chunk
    /// (the array is never held), whatever the number of records.
    #[test]
    fn a_large_array_is_split_with_flat_memory() {
        struct Records(u64);
        impl Read for Records {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                self.0 -= 1;
                let rec = b",\n  {\n    \"eventMessage\" : \"opened \\/Users\\/a\\/Library\\/Keychains\\/login.keychain-db\"\n  }";
                let n = rec.len().min(buf.len());
                buf[..n].copy_from_slice(&rec[..n]);
                Ok(n)
            }
        }
        let head = io::Cursor::new(b"[{\"a\":0}".to_vec());
        let mut r = JsonRecords::new(BufReader::with_capacity(8192, head.chain(Records(200_000))));
        let mut sink = [0u8; 4096];
        let (mut total, mut newlines) = (0usize, 0usize);
        loop {
            let n = r.read(&mut sink).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            newlines += sink[..n].iter().filter(|&&b| b == b'\n').count();
        }
        assert_eq!(newlines, 200_001);
        assert!(total > 10_000_000, "{total}");
        assert!(r.out.capacity() <= 64 * 1024, "{}", r.out.capacity());
    }

    #[test]
    fn arrays_and_pretty_json_become_compact_lines() {
        let input = b"[\n  {\n    \"a\" : \"x, ]}\\\"y\",\n    \"b\" : [1, {\"c\": 2}]\n  },\n  {\"d\":3}\n]\n";
        let (l, shape) = lines(input);
        assert_eq!(shape.layout, Layout::JsonArray);
        assert_eq!(l, vec![r#"{"a":"x, ]}\"y","b":[1,{"c":2}]}"#, r#"{"d":3}"#]);
        let pretty = b"{\n  \"a\": 1,\n  \"s\": \"two  spaces\"\n}\n{\n  \"b\": {}\n}\n";
        let (l, shape) = lines(pretty);
        assert_eq!(shape.layout, Layout::PrettyJson);
        assert_eq!(l, vec![r#"{"a":1,"s":"two  spaces"}"#, r#"{"b":{}}"#]);
    }

    #[test]
    fn a_banner_before_the_array_stays_its_own_line() {
        let input = b"Filtering the log data using \"x\"\n[{\"a\":1},{\"b\":2}]";
        let (l, shape) = lines(input);
        assert_eq!(shape.layout, Layout::JsonArray);
        assert_eq!(
            l,
            vec![
                "Filtering the log data using \"x\"",
                "{\"a\":1}",
                "{\"b\":2}"
            ]
        );
    }

    #[test]
    fn a_truncated_array_ends_its_last_record() {
        let (l, _) = lines(b"[{\"a\":1},{\"b\":");
        assert_eq!(l, vec!["{\"a\":1}", "{\"b\":"]);
    }

    #[test]
    fn bom_and_gzip_are_transparent() {
        let (l, shape) = lines(b"\xEF\xBB\xBF{\"a\":1}\n");
        assert!(shape.utf8_bom);
        assert_eq!(l, vec!["{\"a\":1}"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, b"[{\"a\":1},\n{\"b\":2}]").unwrap();
        let (l, shape) = lines(&gz.finish().unwrap());
        assert!(shape.gzip);
        assert_eq!(shape.layout, Layout::JsonArray);
        assert_eq!(l, vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn unreadable_shapes_are_named() {
        let utf16: Vec<u8> = "{\"a\":1}\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert_eq!(lines(&utf16).1.layout, Layout::Utf16);
        let (_, shape) = lines(b"time,pid,path\n1,2,3\n");
        assert_eq!(shape.layout, Layout::Text);
        assert!(shape.describe().contains("CSV"));
        assert_eq!(lines(b"\x00\x01\x02\x03\xff\xfe").1.layout, Layout::Binary);
        assert_eq!(lines(b"").1.layout, Layout::Empty);
    }
}
