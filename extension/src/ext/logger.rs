//! The osquery logger plugin `keychain_access_sentinel`: with
//! `--logger_plugin=filesystem,keychain_access_sentinel` osqueryd hands every
//! result line to us as well; each is acknowledged only once it is committed
//! to the durable Sentinel queue (see the `keychain-access-sentinel` crate).
//! Unconfigured (no `sentinel` section), it says so once and keeps nothing.

use keychain_access_sentinel::SentinelLogger;
use keychain_access_tables::status::SourceStatus;
use osquery_rust::plugin::LoggerPlugin;
use std::sync::Arc;

/// The plugin's registered name.
pub const LOGGER_NAME: &str = "keychain_access_sentinel";

pub struct SentinelLoggerPlugin {
    pub inner: Arc<SentinelLogger>,
}

impl LoggerPlugin for SentinelLoggerPlugin {
    fn name(&self) -> String {
        LOGGER_NAME.to_string()
    }

    // osquery-rust's plugin trait carries the failure as the text osquery
    // shows in its status: the typed error ends here.
    fn log_string(&self, message: &str) -> Result<(), String> {
        self.inner.log_string(message).map_err(|e| e.to_string())
    }

    fn log_snapshot(&self, snapshot: &str) -> Result<(), String> {
        self.inner.log_string(snapshot).map_err(|e| e.to_string())
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// The delivery's row in `keychain_access_status`.
pub fn status_row(logger: &SentinelLogger) -> SourceStatus {
    let mut row = SourceStatus {
        source: "sentinel".into(),
        kind: "delivery".into(),
        ..Default::default()
    };
    match logger.stats() {
        None => {
            row.state = "unconfigured".into();
            row.last_error =
                Some("no `sentinel` section in the config: result lines are not shipped".into());
        }
        Some(st) => {
            row.state = st.state.clone();
            row.stats.lines_read = st.accepted
                + st.filtered
                + st.dropped_at_bound
                + st.dropped_too_large
                + st.dropped_invalid;
            row.rows_stored = st.delivered;
            row.stats.malformed = st.dropped_invalid;
            row.stats.oversize = st.dropped_too_large;
            row.buffer_rows = Some(st.queued_rows);
            row.buffer_bytes = Some(st.queued_bytes);
            row.last_error = st.last_error.clone();
            row.last_event_time = st.last_success_unix;
            row.bound_hits = Some(format!("{{\"dropped_at_bound\":{}}}", st.dropped_at_bound));
        }
    }
    row
}
