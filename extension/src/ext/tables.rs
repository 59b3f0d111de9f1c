//! The osquery table plugins: `keychain_access_events` answered from the
//! buffer with constraints pushed into SQL, and `keychain_access_status`.
//!
//! osquery calls `generate` from several threads at once (each call is a new
//! connection served by a worker of the extension's thread pool), so each
//! call takes its own read-only SQLite connection from a small pool: WAL
//! readers never block the ingest writer or each other.

use super::status::Board;
use keychain_access_tables::constraints::parse_context;
use keychain_access_tables::schema::{Column, ColumnType as KType, COLUMNS, TABLE_NAME};
use keychain_access_tables::status::{STATUS_COLUMNS, STATUS_TABLE};
use keychain_access_tables::store::{query_conn, Store};
use osquery_rust::plugin::{ColumnDef, ColumnOptions, ColumnType, ReadOnlyTable};
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

    /// Answer one generate request (also used directly by tests and benches).
    pub fn answer(&self, context: &str) -> Result<ExtensionPluginResponse, String> {
        let constraints = parse_context(context).map_err(|e| e.to_string())?;
        let conn = match self.pool.lock().ok().and_then(|mut p| p.pop()) {
            Some(c) => c,
            None => Store::open_reader(&self.db).map_err(|e| format!("opening the buffer: {e}"))?,
        };
        let result = query_conn(&conn, &constraints, self.max_rows);
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < 10 {
                p.push(conn);
            }
        }
        let (rows, truncated) = result.map_err(|e| format!("querying the buffer: {e}"))?;
        if truncated {
            if let Ok(mut b) = self.board.lock() {
                b.bound_hit(
                    "result_rows",
                    "a query matched more than max_result_rows rows; add a time constraint",
                );
            }
        }
        let only = keychain_access_tables::constraints::cols_used(context);
        Ok(rows
            .into_iter()
            .map(|r| r.into_osquery_map(only.as_deref()))
            .collect())
    }
}

impl ReadOnlyTable for EventsTable {
    fn name(&self) -> String {
        TABLE_NAME.to_string()
    }

    fn columns(&self) -> Vec<ColumnDef> {
        column_defs(COLUMNS)
    }

    fn generate(&self, req: ExtensionPluginRequest) -> ExtensionResponse {
        let ctx = req.get("context").map(String::as_str).unwrap_or("");
        match self.answer(ctx) {
            Ok(rows) => ok(rows),
            Err(e) => {
                log::warn!("{TABLE_NAME} generate: {e}");
                failure(e)
            }
        }
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
