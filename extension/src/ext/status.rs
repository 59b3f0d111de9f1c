//! The health board behind `keychain_access_status`: sources update their
//! state, the ingest thread its counters, the table reads a snapshot.

use keychain_access_tables::status::SourceStatus;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Board {
    pub sources: Vec<SourceStatus>,
    pub buffer_rows: u64,
    pub buffer_bytes: u64,
    /// Resource bounds hit (name -> count), shown in every status row.
    pub bounds: BTreeMap<String, u64>,
    pub max_line: usize,
}

impl Board {
    /// Snapshot rows for the status table.
    pub fn rows(&self) -> Vec<SourceStatus> {
        let bounds = serde_json::to_string(&self.bounds).ok();
        self.sources
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s.buffer_rows = Some(self.buffer_rows);
                s.buffer_bytes = Some(self.buffer_bytes);
                s.bound_hits = bounds.clone();
                s
            })
            .collect()
    }

    /// Count a bound being hit; log the first time only.
    pub fn bound_hit(&mut self, name: &str, what: &str) {
        let n = self.bounds.entry(name.to_string()).or_insert(0);
        if *n == 0 {
            log::warn!("resource bound reached: {name}: {what} (counted in keychain_access_status.bound_hits; logged once)");
        }
        *n += 1;
    }
}
