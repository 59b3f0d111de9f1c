//! `--format table`: osqueryi's boxed layout, fitted to the terminal.
//!
//! osqueryi draws `+---+` rules and `| a | b |` rows; people who know it
//! read this the same way. A table wider than the terminal is unreadable
//! once lines wrap, and cutting every value at a fixed length hides the part
//! that matters (the end of a command line, the file name of a path). So
//! the widest columns shrink until the table fits, and a value longer than
//! its column wraps onto further lines of its cell, at a `/`, space or `,`
//! where one is near. A cell shows at most [`MAX_CELL_LINES`] lines: a
//! longer value keeps its start and its end around a `…`, unless
//! `--no-truncate` asks for every character.
//! When even shrunk columns cannot fit (many columns, a narrow terminal),
//! each row is shown as `column = value` lines, osqueryi's `.mode line`.
//!
//! The width is `COLUMNS` when set (as `ls` and `git` honour it), else the
//! terminal's when stdout is one; output into a pipe or file is not fitted.
//! Integer `time` and `*_time` columns show as UTC dates here only: jsonl
//! and CSV keep Unix seconds, which is what tools read.

use crate::result_set::ResultSet;
use keychain_access_tables::schema::Value;
use keychain_access_tables::text::display_safe;
use std::io::{self, Write};

/// Lines a cell may take before it is cut (without `--no-truncate`).
pub const MAX_CELL_LINES: usize = 4;

/// The narrowest a shrunk column gets (a header may wrap below its length).
/// When the columns cannot all get this much, rows are shown one
/// `column = value` per line instead, as osqueryi's `.mode line` does.
const MIN_COLUMN: usize = 12;

/// How to lay a table out.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOptions {
    /// The width to fit, if any.
    pub width: Option<usize>,
    /// Show every character of every value.
    pub no_truncate: bool,
}

impl TableOptions {
    /// Options for a table written to stdout.
    pub fn for_stdout(no_truncate: bool) -> TableOptions {
        TableOptions {
            width: output_width(),
            no_truncate,
        }
    }
}

/// `COLUMNS`, else the width of the terminal on stdout.
fn output_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return Some(n);
    }
    terminal_width()
}

#[cfg(unix)]
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    let ws = rustix::termios::tcgetwinsize(io::stdout()).ok()?;
    (ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

#[cfg(not(unix))]
fn terminal_width() -> Option<usize> {
    None
}

/// Whether a column holds Unix times.
fn is_time_column(name: &str) -> bool {
    name == "time" || name.ends_with("_time")
}

/// The text of one cell.
fn cell_text(column: &str, v: &Value) -> String {
    match v {
        Value::Int(t) if is_time_column(column) => crate::pack::time::Civil::from_unix(*t)
            .iso_8601()
            .replacen('T', " ", 1),
        _ => printable(&v.to_osquery_string()),
    }
}

/// A terminal must not act on what it shows: control characters, direction
/// overrides and zero-width characters are escaped the way every output
/// format escapes them ([`display_safe`]: reversible, `\u{202e}`). Library
/// values are already escaped; SQL can build new strings.
fn printable(s: &str) -> String {
    display_safe(s).into_owned()
}

/// Column widths that fit `width`: the widest columns shrink first, none
/// below [`MIN_COLUMN`] (or its natural width, if smaller). `None` when
/// that cannot fit.
fn fit_widths(natural: &[usize], width: Option<usize>) -> Option<Vec<usize>> {
    let Some(width) = width else {
        return Some(natural.to_vec());
    };
    let n = natural.len();
    // `| ` + ` | ` between + ` |`
    let frame = 3 * n + 1;
    let available = width.saturating_sub(frame);
    if natural.iter().sum::<usize>() <= available {
        return Some(natural.to_vec());
    }
    let floor = |w: usize| w.min(MIN_COLUMN);
    if natural.iter().map(|&w| floor(w)).sum::<usize>() > available {
        return None;
    }
    let capped =
        |cap: usize| -> Vec<usize> { natural.iter().map(|&w| w.min(cap.max(floor(w)))).collect() };
    // The largest cap under which everything fits (binary search).
    let (mut lo, mut hi) = (0usize, natural.iter().copied().max().unwrap_or(0));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if capped(mid).iter().sum::<usize>() <= available {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut widths = capped(lo);
    // Hand what is left to the columns still short of their natural width.
    let mut left = available.saturating_sub(widths.iter().sum());
    for (w, &nat) in widths.iter_mut().zip(natural) {
        if left == 0 {
            break;
        }
        if *w < nat {
            let add = (nat - *w).min(left);
            *w += add;
            left -= add;
        }
    }
    Some(widths)
}

/// Split `s` into lines of at most `width` characters, breaking after a
/// `/`, space or `,` in the second half of a line when there is one. With
/// `max_lines`, a longer value loses its middle (`…`): the start says what
/// ran, the end is often what matters (the file a command line writes, the
/// name at the end of a path).
fn wrap(s: &str, width: usize, max_lines: Option<usize>) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= width {
        return vec![s.to_string()];
    }
    let lines = wrap_chars(&chars, width);
    match max_lines {
        Some(max) if lines.len() > max => {
            let budget = max * width;
            let head = (budget - 1) / 2;
            let tail = budget - 1 - head;
            let mut cut: Vec<char> = chars[..head].to_vec();
            cut.push('…');
            cut.extend_from_slice(&chars[chars.len() - tail..]);
            cut.chunks(width).map(|c| c.iter().collect()).collect()
        }
        _ => lines,
    }
}

fn wrap_chars(chars: &[char], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + width).min(chars.len());
        if end < chars.len() {
            let half = start + width / 2;
            if let Some(b) = (half..end)
                .rev()
                .find(|&i| matches!(chars[i], '/' | ' ' | ','))
            {
                end = b + 1;
            }
        }
        lines.push(chars[start..end].iter().collect());
        start = end;
    }
    lines
}

/// Write `rs` as a boxed table.
pub fn write(out: &mut dyn Write, rs: &ResultSet, opts: &TableOptions) -> io::Result<()> {
    let headers: Vec<String> = rs.columns.iter().map(|c| printable(c)).collect();
    let cells: Vec<Vec<String>> = rs
        .rows
        .iter()
        .map(|r| {
            rs.columns
                .iter()
                .zip(r)
                .map(|(c, v)| cell_text(c, v))
                .collect()
        })
        .collect();
    let mut natural: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (w, c) in natural.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let max_lines = (!opts.no_truncate).then_some(MAX_CELL_LINES);
    let Some(widths) = fit_widths(&natural, opts.width) else {
        return write_line_mode(out, &headers, &cells, opts.width, max_lines);
    };
    let rule: String = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    };
    writeln!(out, "{rule}")?;
    write_row(out, &headers, &widths, None)?;
    writeln!(out, "{rule}")?;
    for r in &cells {
        write_row(out, r, &widths, max_lines)?;
    }
    if !cells.is_empty() {
        writeln!(out, "{rule}")?;
    }
    Ok(())
}

/// osqueryi's `.mode line`: `column = value`, names right-aligned, a blank
/// line between rows; long values wrap under themselves.
fn write_line_mode(
    out: &mut dyn Write,
    headers: &[String],
    cells: &[Vec<String>],
    width: Option<usize>,
    max_lines: Option<usize>,
) -> io::Result<()> {
    let name_width = headers.iter().map(|h| h.chars().count()).max().unwrap_or(0);
    let indent = name_width + 3;
    let value_width = width.map_or(usize::MAX, |w| w.saturating_sub(indent).max(MIN_COLUMN));
    for (i, row) in cells.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        for (h, v) in headers.iter().zip(row) {
            let lines = if value_width == usize::MAX {
                vec![v.clone()]
            } else {
                wrap(v, value_width, max_lines)
            };
            for (k, l) in lines.iter().enumerate() {
                let line = if k == 0 {
                    format!("{h:>name_width$} = {l}")
                } else {
                    format!("{:indent$}{l}", "")
                };
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    Ok(())
}

fn write_row(
    out: &mut dyn Write,
    values: &[String],
    widths: &[usize],
    max_lines: Option<usize>,
) -> io::Result<()> {
    let wrapped: Vec<Vec<String>> = values
        .iter()
        .zip(widths)
        .map(|(v, &w)| wrap(v, w, max_lines))
        .collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    for i in 0..height {
        let mut line = String::from("|");
        for (cell, &w) in wrapped.iter().zip(widths) {
            let part = cell.get(i).map_or("", String::as_str);
            let pad = w.saturating_sub(part.chars().count());
            line.push(' ');
            line.push_str(part);
            line.push_str(&" ".repeat(pad));
            line.push_str(" |");
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widest_columns_shrink_to_fit() {
        let w = fit_widths(&[4, 5, 120, 80], Some(100)).unwrap();
        assert!(w.iter().sum::<usize>() + 3 * 4 < 100, "{w:?}");
        assert_eq!(&w[..2], &[4, 5], "narrow columns keep their width");
        assert!(w[2] >= w[3] && w[3] > 30, "{w:?}");
        assert_eq!(fit_widths(&[4, 5], Some(100)), Some(vec![4, 5]));
        assert_eq!(fit_widths(&[400], None), Some(vec![400]));
        // Nine wide columns in 80 characters: line mode instead.
        assert_eq!(fit_widths(&[40; 9], Some(80)), None);
    }

    #[test]
    fn long_values_wrap_at_path_separators_and_are_cut_only_past_the_cap() {
        let p = "/Users/alice/Library/Keychains/login.keychain-db";
        let lines = wrap(p, 20, None);
        assert_eq!(lines.concat(), p);
        assert!(lines.iter().all(|l| l.chars().count() <= 20));
        assert!(lines[0].ends_with('/'), "{lines:?}");
        let long = format!("{}END", "x".repeat(100));
        let cut = wrap(&long, 10, Some(3));
        assert_eq!(cut.len(), 3);
        let joined = cut.concat();
        assert!(joined.contains('…') && joined.ends_with("END"), "{cut:?}");
    }

    #[test]
    fn control_and_direction_characters_cannot_reach_the_terminal() {
        let shown = printable("a\u{1b}[2Jb\u{202E}c");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{202E}'),
            "{shown}"
        );
        assert!(shown.contains("\\u{202e}"), "{shown}");
    }
}
