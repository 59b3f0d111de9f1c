//! The stats snapshot read by the extension's status table and `forward`'s
//! stats line.

use std::fmt;

use serde::Serialize;

use crate::counters::{Counters, ShipState};

/// Declares [`Stats`] around the counters of
/// [`delivery_counters!`](crate::counters::delivery_counters): their fields
/// (with their meaning), their copy from the persisted [`Counters`] and
/// their place in [`Stats::to_rows`] and the stats line come from that one
/// list.
macro_rules! declare_stats {
    ($( $(#[doc = $doc:literal])+ $name:ident ),+ $(,)?) => {
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
            $( $(#[doc = $doc])+ pub $name: u64, )+
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
                    $( $name: c.$name, )+
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
                    $( (stringify!($name), self.$name.to_string()), )+
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
    };
}
crate::counters::delivery_counters!(declare_stats);

impl Stats {
    /// Lines dropped for any reason (excluding `filtered`, which is on purpose).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_at_bound + self.dropped_too_large + self.dropped_invalid
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
        // 3 queue-level values, every declared counter, 6 shipper values.
        assert_eq!(s.to_rows().len(), 3 + Counters::NAMES.len() + 6);
    }

    /// Each persisted counter reaches its own `Stats` field and stats-line
    /// key: distinct values in, the same values out under the same names.
    #[test]
    fn every_counter_is_copied_and_shown_under_its_name() {
        let mut c = Counters::default();
        for (i, name) in Counters::NAMES.iter().enumerate() {
            c.set(name, 100 + i as u64);
        }
        let s = Stats::from_parts(1, 2, &c, &ShipState::default());
        let rows = s.to_rows();
        for (i, name) in Counters::NAMES.iter().enumerate() {
            let want = (100 + i as u64).to_string();
            assert!(rows.contains(&(name, want.clone())), "{name}");
            assert!(s.to_string().contains(&format!(" {name}={want}")), "{name}");
        }
        assert_eq!((s.accepted, s.rotated_lost), (100, c.rotated_lost));
    }
}
