//! Row output: JSON lines, an aligned text table, or CSV.
//!
//! Every string that reaches here was already sanitised by the library;
//! the table and CSV writers quote and escape on top of that.

use keychain_access_tables::schema::Value;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per row; keys are column names, integers are numbers.
    Jsonl,
    /// An aligned text table for a terminal.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// A result set: column names and rows of values.
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
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
            const MAX_CELL: usize = 60;
            let cells: Vec<Vec<String>> = rs
                .rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| cell(&v.to_osquery_string(), MAX_CELL))
                        .collect()
                })
                .collect();
            let mut widths: Vec<usize> = rs.columns.iter().map(|c| c.chars().count()).collect();
            for r in &cells {
                for (i, c) in r.iter().enumerate() {
                    if let Some(w) = widths.get_mut(i) {
                        *w = (*w).max(c.chars().count());
                    }
                }
            }
            let line = |out: &mut dyn Write, vals: &[String]| -> io::Result<()> {
                let parts: Vec<String> = vals
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}", w = *w))
                    .collect();
                writeln!(out, "{}", parts.join("  ").trim_end())
            };
            line(out, &rs.columns)?;
            line(
                out,
                &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
            )?;
            for r in &cells {
                line(out, r)?;
            }
        }
    }
    Ok(())
}

/// One JSON object on one line: keys are column names, integers numbers,
/// NULL null.
pub fn write_jsonl_row(out: &mut dyn Write, columns: &[String], row: &[Value]) -> io::Result<()> {
    let mut map = serde_json::Map::new();
    for (c, v) in columns.iter().zip(row) {
        map.insert(
            c.clone(),
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        );
    }
    serde_json::to_writer(&mut *out, &map)?;
    out.write_all(b"\n")
}

/// One CSV record.
pub fn write_csv_row(out: &mut dyn Write, row: &[Value]) -> io::Result<()> {
    let fields: Vec<String> = row
        .iter()
        .map(|v| csv_field(&v.to_osquery_string()))
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn cell(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        let mut t: String = s.chars().take(max.saturating_sub(3)).collect();
        t.push_str("...");
        t
    } else {
        s.to_string()
    }
}
