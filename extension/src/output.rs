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
    /// A boxed text table for a terminal, as osqueryi draws it.
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
