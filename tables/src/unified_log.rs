//! Unified-log NDJSON (`log show|stream --style ndjson`) as a second source.
//!
//! Not yet implemented beyond recognising and counting records (issue 7).

use crate::scan::ScanStats;
use crate::schema::KeychainAccess;
use crate::tuning::Tuning;

/// Whether a JSON line is a unified-log record rather than an eslogger one.
pub fn looks_like_unified_log(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"\"eventMessage\"").is_some()
        && memchr::memmem::find(line, b"\"event_type\"").is_none()
}

/// Turns unified-log records into rows.
#[derive(Debug, Default)]
pub struct UnifiedLogParser {}

impl UnifiedLogParser {
    pub fn from_tuning(_tuning: &Tuning) -> Self {
        UnifiedLogParser {}
    }

    pub fn scan_line(
        &mut self,
        _line: &[u8],
        stats: &mut ScanStats,
        _out: &mut Vec<KeychainAccess>,
    ) {
        stats.unified_log_records += 1;
        stats.unified_log_unmatched += 1;
    }
}
