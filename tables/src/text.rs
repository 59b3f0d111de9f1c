//! String hygiene shared by every output: control-character escaping, length
//! caps, command-line joining and small path helpers.
//!
//! Attackers control paths and arguments, so every string that reaches a row
//! passes through [`sanitize`] after redaction: control characters (C0, DEL,
//! C1) become visible escapes, so a terminal, a CSV or a SIEM never sees raw
//! escape sequences.

use std::borrow::Cow;

/// Escape control characters: `\n`, `\r`, `\t` as such, others as `\xNN`
/// (C0, DEL) or `\u{NN}` (C1). Allocates only when something changes.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    let u = c as u32;
    u < 0x20 || (0x7f..=0x9f).contains(&u)
}

/// True for characters that change how the text around them displays while
/// being invisible themselves: bidirectional controls (Unicode UAX #9:
/// U+061C, U+200E-200F, U+202A-202E, U+2066-2069; the "Trojan Source"
/// attack, CVE-2021-42574, uses them to make `invoice<U+202E>gpj.app` read
/// `invoice ppa.jpg`), zero-width and invisible format characters (U+180E,
/// U+200B-200D, U+2060-2064, U+206A-206F, U+FEFF) and the line and
/// paragraph separators U+2028/2029, which break lines in some viewers.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064
        | 0x2066..=0x206F | 0xFEFF)
}

/// A value as it may be shown to a person or handed to another tool: control
/// characters escaped as [`sanitize`] does, and invisible and bidirectional
/// characters ([`is_invisible`]) written as `\u{202e}`, the same form C1
/// controls take, so the code point stays readable and recoverable. Applied
/// at every output boundary (tables, CSV, JSON lines, pack results,
/// Sentinel records); stored values keep the characters, so tuning patterns
/// match what really happened. Allocates only when something changes.
pub fn display_safe(s: &str) -> Cow<'_, str> {
    // One pass in the common case: nothing to escape.
    if !s.chars().any(|c| is_control(c) || is_invisible(c)) {
        return Cow::Borrowed(s);
    }
    let s = sanitize(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Truncate to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut cut = max;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str("...<truncated>");
    (s, true)
}

/// Join argv the way a shell user would read it: arguments with whitespace,
/// quotes or nothing in them are single-quoted.
pub fn join_args(args: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let needs_quotes = a.is_empty()
            || a.chars()
                .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
        if needs_quotes {
            out.push('\'');
            out.push_str(&a.replace('\'', "'\\''"));
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

/// The last path component (the whole string when it has no `/`).
pub fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The directory part of a path ("" when there is none).
pub fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => "",
    }
}

/// Join a directory and a file name as osquery does (`dir + "/" + name`).
pub fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// FNV-1a 64-bit: a tiny stable hash for event ids. Stable across Rust
/// versions and platforms, unlike `std`'s `DefaultHasher`.
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A field separator, so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        self
    }

    pub fn finish_hex(&self) -> String {
        format!("{:016x}", self.0)
    }

    /// An event id: the event's unix time (10 hex digits) then the hash.
    /// The time prefix keeps ids of nearby events close in the buffer's
    /// unique index, so inserts stay fast as the buffer fills.
    pub fn event_id(&self, time: Option<i64>) -> String {
        format!(
            "{:010x}{:016x}",
            time.unwrap_or(0).clamp(0, 0xff_ffff_ffff),
            self.0
        )
    }
}

/// Parse an RFC 3339 timestamp (`2025-08-07T15:13:09.811587464Z`, or with a
/// `+hh:mm` offset; none means UTC) into unix seconds. Fractions are dropped.
/// The crate's one parser, [`crate::timestamp::parse_timestamp`], does it.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    crate::timestamp::parse_timestamp(s, crate::timestamp::MissingOffset::Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // Any string, including every bidi, zero-width and control
        // character: nothing invisible survives, and a second pass changes
        // nothing (spooled rows go through it twice).
        #[test]
        fn display_safe_leaves_nothing_invisible(s in "(\\PC|[\u{0}-\u{9f}\u{61c}\u{180e}\u{200b}-\u{200f}\u{2028}-\u{202e}\u{2060}-\u{206f}\u{feff}])*") {
            let once = display_safe(&s).into_owned();
            proptest::prop_assert!(!once.chars().any(|c| is_control(c) || is_invisible(c)), "{:?}", once);
            proptest::prop_assert_eq!(display_safe(&once).into_owned(), once);
        }
    }

    #[test]
    fn display_safe_escapes_bidi_and_zero_width_and_keeps_the_rest() {
        // Trojan Source (CVE-2021-42574): RLO makes "invoice<RLO>gpj.app" read "invoice ppa.jpg".
        assert_eq!(
            display_safe("invoice\u{202e}gpj.app"),
            "invoice\\u{202e}gpj.app"
        );
        for c in [
            '\u{200b}', '\u{200f}', '\u{202a}', '\u{2066}', '\u{2069}', '\u{feff}', '\u{61c}',
        ] {
            let input = format!("a{c}b");
            let out = display_safe(&input);
            assert!(!out.contains(c), "{c:?} -> {out}");
            assert_eq!(out, format!("a\\u{{{:x}}}b", c as u32));
        }
        assert_eq!(display_safe("tab\there"), "tab\\there");
        assert!(matches!(
            display_safe("/Users/ålice/日本.keychain"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn sanitize_escapes_controls_and_ansi() {
        assert_eq!(sanitize("plain /path"), "plain /path");
        assert_eq!(sanitize("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\x1b[31m");
        assert_eq!(sanitize("nul\0"), "nul\\x00");
        assert_eq!(sanitize("c1\u{9b}x"), "c1\\u{9b}x");
    }

    #[test]
    fn rfc3339_parses_eslogger_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2025-08-07T15:13:09.811587464Z"),
            Some(1_754_579_589)
        );
        assert_eq!(
            parse_rfc3339("2025-08-07T17:13:09+02:00"),
            Some(1_754_579_589)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2025-13-07T15:13:09Z"), None);
    }

    #[test]
    fn join_quotes_what_needs_it() {
        let a: Vec<String> = ["sh", "-c", "echo hi", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(join_args(&a), "sh -c 'echo hi' ''");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let (s, cut) = truncate("ééé".to_string(), 3);
        assert!(cut);
        assert!(s.starts_with('é'));
    }
}
