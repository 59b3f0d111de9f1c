//! Row output: JSON lines, an aligned text table, or CSV.
//!
//! This is an output boundary: every string leaves through
//! [`display_safe`] (control, bidirectional and zero-width characters
//! escaped visibly; stored values keep them), and CSV cells that a
//! spreadsheet would run as a formula are neutralised.

use keychain_access_tables::schema::Value;
use keychain_access_tables::text::display_safe;
use std::io::{self, Write};

pub use crate::result_set::ResultSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per row; keys are column names, integers are numbers.
    Jsonl,
    /// A boxed text table for a terminal, as osqueryi draws it.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
}

pub fn write(out: &mut dyn Write, format: Format, rs: &ResultSet) -> io::Result<()> {
    match format {
        Format::Jsonl => {
            for row in &rs.rows {
                write_jsonl_row(out, &rs.columns, row)?;
            }
        }
        Format::Csv => {
            write_csv_header(out, &rs.columns)?;
            for row in &rs.rows {
                write_csv_row(out, row)?;
            }
        }
        Format::Table => {
            crate::table::write(out, rs, &crate::table::TableOptions::for_stdout(false))?;
        }
    }
    Ok(())
}

/// One JSON object on one line: keys are column names, integers numbers,
/// NULL null.
pub fn write_jsonl_row(out: &mut dyn Write, columns: &[String], row: &[Value]) -> io::Result<()> {
    let mut map = serde_json::Map::new();
    for (c, v) in columns.iter().zip(row) {
        map.insert(display_safe(c).into_owned(), json_value(v));
    }
    serde_json::to_writer(&mut *out, &map)?;
    out.write_all(b"\n")
}

/// A value as JSON, text made [`display_safe`].
pub fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Text(t) => serde_json::Value::String(display_safe(t).into_owned()),
    }
}

/// One CSV record.
pub fn write_csv_row(out: &mut dyn Write, row: &[Value]) -> io::Result<()> {
    let fields: Vec<String> = row
        .iter()
        .map(|v| match v {
            // Numbers are numbers: a negative one is not a formula.
            Value::Int(i) => i.to_string(),
            Value::Null => String::new(),
            Value::Text(t) => csv_field(t),
        })
        .collect();
    writeln!(out, "{}", fields.join(","))
}

/// The CSV header.
pub fn write_csv_header(out: &mut dyn Write, columns: &[String]) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        columns
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// One CSV cell: [`display_safe`], then a text cell a spreadsheet would
/// evaluate (one starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return: OWASP's "CSV Injection" guidance) gets a leading `'`, which
/// Excel, LibreOffice and Google Sheets treat as "this is text"; then RFC
/// 4180 quoting.
fn csv_field(s: &str) -> String {
    let safe = display_safe(s);
    let s: std::borrow::Cow<'_, str> = if safe.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{safe}").into()
    } else {
        safe
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(values: Vec<Value>) -> String {
        let mut out = Vec::new();
        write_csv_row(&mut out, &values).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_cells_that_would_run_as_formulas_are_text() {
        for (cell, want) in [
            (
                "=HYPERLINK(\"http://x\",\"a\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"a\"\")\"",
            ),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("/usr/bin/security", "/usr/bin/security"),
        ] {
            assert_eq!(csv(vec![Value::Text(cell.into())]), format!("{want}\n"));
        }
        // A number stays a number; SQL-built control characters are escaped.
        assert_eq!(csv(vec![Value::Int(-5), Value::Null]), "-5,\n");
        // A tab is escaped before the check, so the cell no longer starts with one.
        assert_eq!(csv(vec![Value::Text("\t=1".into())]), "\\t=1\n");
    }

    #[test]
    fn every_format_escapes_bidi_and_zero_width() {
        let rs = ResultSet {
            columns: vec!["path".into()],
            rows: vec![vec![Value::Text("invoice\u{202e}gpj.app\u{200b}".into())]],
        };
        for f in [Format::Jsonl, Format::Csv, Format::Table] {
            let mut out = Vec::new();
            write(&mut out, f, &rs).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                !text.contains('\u{202e}') && !text.contains('\u{200b}'),
                "{f:?}: {text}"
            );
            assert!(text.contains("\\u{202e}"), "{f:?}: {text}");
        }
    }
}
