//! The osquery table plugins: `keychain_access_events` answered from the
//! buffer with constraints pushed into SQL, and `keychain_access_status`.
//!
//! osquery calls `generate` from several threads at once (each call is a new
//! connection served by a worker of the extension's thread pool), so each
//! call takes its own read-only SQLite connection from a small pool: WAL
//! readers never block the ingest writer or each other.

use super::status::Board;
use keychain_access_tables::constraints::{parse_context, where_clause};
use keychain_access_tables::schema::{Column, ColumnType as KType, Value, COLUMNS, TABLE_NAME};
use keychain_access_tables::status::{STATUS_COLUMNS, STATUS_TABLE};
use keychain_access_tables::store::{Store, EVENTS_TABLE};
use osquery_rust::plugin::{ColumnDef, ColumnOptions, ColumnType, ReadOnlyTable};
use osquery_rust::rows::RowWriter;
use osquery_rust::{
    ExtensionPluginRequest, ExtensionPluginResponse, ExtensionResponse, ExtensionStatus,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn column_defs(cols: &[Column]) -> Vec<ColumnDef> {
    cols.iter()
        .map(|c| {
            let t = match c.kind {
                KType::Text => ColumnType::Text,
                KType::Integer => ColumnType::Integer,
                KType::BigInt => ColumnType::BigInt,
            };
            ColumnDef::new(c.name, t, ColumnOptions::DEFAULT)
        })
        .collect()
}

fn ok(rows: ExtensionPluginResponse) -> ExtensionResponse {
    ExtensionResponse::new(ExtensionStatus::new(0, "OK".to_string(), None), rows)
}

fn failure(msg: String) -> ExtensionResponse {
    ExtensionResponse::new(
        ExtensionStatus::new(1, msg, None),
        ExtensionPluginResponse::new(),
    )
}

/// `keychain_access_events`.
pub struct EventsTable {
    pub db: PathBuf,
    pub max_rows: usize,
    pub board: Arc<Mutex<Board>>,
    pool: Mutex<Vec<rusqlite::Connection>>,
}

impl EventsTable {
    pub fn new(db: PathBuf, max_rows: usize, board: Arc<Mutex<Board>>) -> Self {
        EventsTable {
            db,
            max_rows,
            board,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Answer one generate request by writing each row into `out` as SQLite
    /// produces it (the vendored server's streamed answer): the rows are
    /// never held as maps, only once as encoded bytes, spilled to disk past
    /// a small memory limit. Only the columns osquery uses (`colsUsed`) are
    /// selected and sent; NULL is sent as "" as osquery expects.
    pub fn answer_into(&self, context: &str, out: &mut RowWriter) -> Result<(), AnswerError> {
        let constraints = parse_context(context).map_err(AnswerError::Context)?;
        let only = keychain_access_tables::constraints::cols_used(context);
        let cols: Vec<&'static Column> = COLUMNS
            .iter()
            .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
            .collect();
        let conn = match self.pool.lock().ok().and_then(|mut p| p.pop()) {
            Some(c) => c,
            None => Store::open_reader(&self.db).map_err(AnswerError::OpenBuffer)?,
        };
        let result = stream_rows(&conn, &constraints, &cols, self.max_rows, out);
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < MAX_POOLED_READERS {
                p.push(conn);
            }
        }
        let truncated = result?;
        if truncated {
            if let Ok(mut b) = self.board.lock() {
                b.bound_hit(
                    "result_rows",
                    "a query matched more than max_result_rows rows; add a time constraint",
                );
            }
        }
        Ok(())
    }
}

/// Why a generate request got no answer; its text is the failure status
/// osquery shows. Sources are part of the text, not chained.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// osquery's query context is not what it sends.
    #[error("{0}")]
    Context(keychain_access_tables::constraints::ContextError),
    #[error("opening the buffer: {0}")]
    OpenBuffer(keychain_access_tables::store::StoreError),
    #[error("querying the buffer: {0}")]
    Query(rusqlite::Error),
    /// Encoding or spilling the answer failed.
    #[error("writing the answer: {0}")]
    Write(std::io::Error),
}

/// Readers kept between calls: osquery calls from a few threads at once.
const MAX_POOLED_READERS: usize = 4;

/// Run the constrained query and write at most `limit` rows of `cols`;
/// true when more rows matched.
fn stream_rows(
    conn: &rusqlite::Connection,
    constraints: &[keychain_access_tables::constraints::Constraint],
    cols: &[&'static Column],
    limit: usize,
    out: &mut RowWriter,
) -> Result<bool, AnswerError> {
    use rusqlite::types::ValueRef;
    let (clause, mut params) = where_clause(constraints);
    let select = if cols.is_empty() {
        // osquery sent a colsUsed naming none of ours: rows still count.
        "1".to_string()
    } else {
        cols.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    };
    let sql =
        format!("SELECT {select} FROM {EVENTS_TABLE} WHERE {clause} ORDER BY time, rowid LIMIT ?");
    params.push(Value::Int(
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let err = AnswerError::Query;
    let mut stmt = conn.prepare_cached(&sql).map_err(err)?;
    let mut q = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(err)?;
    // One scratch string per column, reused for every row.
    let mut values: Vec<String> = vec![String::new(); cols.len()];
    let mut n = 0usize;
    while let Some(r) = q.next().map_err(err)? {
        if n == limit {
            return Ok(true);
        }
        for (i, v) in values.iter_mut().enumerate() {
            v.clear();
            match r.get_ref(i).map_err(err)? {
                ValueRef::Null => {}
                ValueRef::Integer(x) => {
                    use std::fmt::Write as _;
                    let _ = write!(v, "{x}");
                }
                // Stored values stay faithful (tuning matches what
                // happened); what leaves for osquery's logs and the SIEM
                // shows bidi and zero-width characters as visible escapes,
                // as every other output does.
                ValueRef::Text(t) => v.push_str(&keychain_access_tables::text::display_safe(
                    &String::from_utf8_lossy(t),
                )),
                ValueRef::Real(x) => {
                    use std::fmt::Write as _;
                    let _ = write!(v, "{x}");
                }
                ValueRef::Blob(_) => {}
            }
        }
        out.row(
            cols.iter()
                .map(|c| c.name)
                .zip(values.iter().map(String::as_str)),
        )
        .map_err(AnswerError::Write)?;
        n += 1;
    }
    Ok(false)
}

impl ReadOnlyTable for EventsTable {
    fn name(&self) -> String {
        TABLE_NAME.to_string()
    }

    fn columns(&self) -> Vec<ColumnDef> {
        column_defs(COLUMNS)
    }

    fn generate(&self, req: ExtensionPluginRequest) -> ExtensionResponse {
        // Only reached through a server that does not stream: build the
        // rows through the same path and decode them.
        let ctx = req.get("context").map(String::as_str).unwrap_or("");
        let mut out = RowWriter::new(None, usize::MAX);
        match self.answer_into(ctx, &mut out) {
            Ok(()) => ok(out.into_maps()),
            Err(e) => {
                log::warn!("{TABLE_NAME} generate: {e}");
                failure(e.to_string())
            }
        }
    }

    fn generate_streamed(
        &self,
        req: &ExtensionPluginRequest,
        rows: &mut RowWriter,
    ) -> Option<ExtensionStatus> {
        let ctx = req.get("context").map(String::as_str).unwrap_or("");
        Some(match self.answer_into(ctx, rows) {
            Ok(()) => ExtensionStatus::new(0, "OK".to_string(), None),
            Err(e) => {
                log::warn!("{TABLE_NAME} generate: {e}");
                ExtensionStatus::new(1, e.to_string(), None)
            }
        })
    }

    fn shutdown(&self) {
        // Close pooled readers so the writer's close can remove the WAL.
        if let Ok(mut p) = self.pool.lock() {
            p.clear();
        }
        log::debug!("{TABLE_NAME}: shutdown");
    }
}

/// `keychain_access_status`.
pub struct StatusTable {
    pub board: Arc<Mutex<Board>>,
    /// The Sentinel delivery, shown as its own row.
    pub sentinel: Option<Arc<keychain_access_sentinel::SentinelLogger>>,
}

impl ReadOnlyTable for StatusTable {
    fn name(&self) -> String {
        STATUS_TABLE.to_string()
    }

    fn columns(&self) -> Vec<ColumnDef> {
        column_defs(STATUS_COLUMNS)
    }

    fn generate(&self, _req: ExtensionPluginRequest) -> ExtensionResponse {
        let mut rows = match self.board.lock() {
            Ok(b) => b.rows(),
            Err(_) => return failure("status board unavailable".into()),
        };
        if let Some(s) = &self.sentinel {
            rows.push(super::logger::status_row(s));
        }
        ok(rows.iter().map(|r| r.to_osquery_map()).collect())
    }

    fn shutdown(&self) {}
}
