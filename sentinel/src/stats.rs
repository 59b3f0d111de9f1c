//! The stats snapshot read by the extension's status table and `forward`'s
//! stats line.

use std::fmt;

use serde::Serialize;

use crate::counters::{Counters, ShipState};

/// Everything the queue and shipper know, as one snapshot. All counters are
/// totals since the queue file was created (they survive restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Delivery state for the status table's `state` column: `running`
    /// (delivering or idle), `backoff` (429, 5xx, network or token endpoint
    /// trouble: retrying with backoff) or `failed` (400/401/403/404, token
    /// refused or secret file unusable: retrying slowly, needs a person).
    pub state: String,
    /// Lines waiting in the queue now.
    pub queued_rows: u64,
    /// Bytes of line text waiting in the queue now.
    pub queued_bytes: u64,
    /// Lines ever committed to the queue.
    pub accepted: u64,
    /// Lines removed after a 2xx.
    pub delivered: u64,
    /// Lines refused because the queue was at its bound (drop-newest).
    pub dropped_at_bound: u64,
    /// Lines too long for one ingestion call (refused at intake, or 413 alone).
    pub dropped_too_large: u64,
    /// Lines that were not a JSON object (or not UTF-8).
    pub dropped_invalid: u64,
    /// Lines left out by `name_filter` (on purpose).
    pub filtered: u64,
    /// Ingestion POSTs sent.
    pub requests: u64,
    /// 429 answers.
    pub throttled: u64,
    /// 5xx and 408 answers.
    pub server_errors: u64,
    /// Requests that failed below HTTP (refused, reset, timeout, TLS, DNS).
    pub network_errors: u64,
    /// 4xx answers other than 408/413/429 (400/401/403/404...).
    pub client_errors: u64,
    /// Batches split after a 413.
    pub splits: u64,
    /// Tokens obtained from Entra ID.
    pub token_requests: u64,
    /// Token requests that failed.
    pub token_failures: u64,
    /// HTTP status of the last ingestion attempt (None: never, or no answer).
    pub last_status: Option<u16>,
    /// The last error (cleared by nothing: read it with `last_error_unix`).
    pub last_error: Option<String>,
    /// When `last_error` happened (Unix seconds).
    pub last_error_unix: Option<i64>,
    /// Last 2xx (Unix seconds).
    pub last_success_unix: Option<i64>,
    /// Failed attempts since the last 2xx.
    pub consecutive_failures: u64,
    /// When the shipper will try again, if it is waiting (Unix seconds).
    pub retry_at_unix: Option<i64>,
}

impl Stats {
    pub(crate) fn from_parts(rows: u64, bytes: u64, c: &Counters, s: &ShipState) -> Stats {
        Stats {
            state: s.state.clone().unwrap_or_else(|| "running".into()),
            queued_rows: rows,
            queued_bytes: bytes,
            accepted: c.accepted,
            delivered: c.delivered,
            dropped_at_bound: c.dropped_at_bound,
            dropped_too_large: c.dropped_too_large,
            dropped_invalid: c.dropped_invalid,
            filtered: c.filtered,
            requests: c.requests,
            throttled: c.throttled,
            server_errors: c.server_errors,
            network_errors: c.network_errors,
            client_errors: c.client_errors,
            splits: c.splits,
            token_requests: c.token_requests,
            token_failures: c.token_failures,
            last_status: s.last_status,
            // Shown in keychain_access_status and logs: never a secret.
            last_error: s
                .last_error
                .as_deref()
                .map(|e| crate::secrets::scrub(e).into_owned()),
            last_error_unix: s.last_error_unix,
            last_success_unix: s.last_success_unix,
            consecutive_failures: s.consecutive_failures,
            retry_at_unix: s.retry_at_unix,
        }
    }

    /// Lines dropped for any reason (excluding `filtered`, which is on purpose).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_at_bound + self.dropped_too_large + self.dropped_invalid
    }

    /// `(name, value)` pairs in a fixed order, for a key/value status table.
    /// Absent values are empty strings.
    pub fn to_rows(&self) -> Vec<(&'static str, String)> {
        fn opt<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map(|x| x.to_string()).unwrap_or_default()
        }
        vec![
            ("state", self.state.clone()),
            ("queued_rows", self.queued_rows.to_string()),
            ("queued_bytes", self.queued_bytes.to_string()),
            ("accepted", self.accepted.to_string()),
            ("delivered", self.delivered.to_string()),
            ("dropped_at_bound", self.dropped_at_bound.to_string()),
            ("dropped_too_large", self.dropped_too_large.to_string()),
            ("dropped_invalid", self.dropped_invalid.to_string()),
            ("filtered", self.filtered.to_string()),
            ("requests", self.requests.to_string()),
            ("throttled", self.throttled.to_string()),
            ("server_errors", self.server_errors.to_string()),
            ("network_errors", self.network_errors.to_string()),
            ("client_errors", self.client_errors.to_string()),
            ("splits", self.splits.to_string()),
            ("token_requests", self.token_requests.to_string()),
            ("token_failures", self.token_failures.to_string()),
            ("last_status", opt(&self.last_status)),
            ("last_error", opt(&self.last_error)),
            ("last_error_unix", opt(&self.last_error_unix)),
            ("last_success_unix", opt(&self.last_success_unix)),
            (
                "consecutive_failures",
                self.consecutive_failures.to_string(),
            ),
            ("retry_at_unix", opt(&self.retry_at_unix)),
        ]
    }
}

/// One line of `key=value` pairs (strings quoted), for logs.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, v) in self.to_rows() {
            if v.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            if k == "last_error" {
                write!(f, "{k}={v:?}")?;
            } else {
                write!(f, "{k}={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line() {
        let s = Stats {
            delivered: 3,
            last_error: Some("HTTP 403: \"no\"\nmore".into()),
            ..Stats::default()
        };
        let text = s.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("delivered=3"));
        assert!(text.contains("last_error=\"HTTP 403"));
        assert!(!text.contains("last_status="));
        assert_eq!(s.to_rows().len(), 23);
    }
}
