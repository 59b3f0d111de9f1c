//! keychain_access_sentinel: deliver osquery result lines to Microsoft Sentinel.
//!
//! The Azure Monitor Agent does not run on macOS and Fleet has no Azure
//! destination, so this crate is the route from osquery to Sentinel. It posts
//! osquery result lines (one JSON object each) as JSON arrays to the Azure
//! Monitor **Logs Ingestion API**
//! (`POST {endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`,
//! gzip, `Authorization: Bearer` from an Entra ID client-credentials token),
//! through a durable SQLite queue on disk.
//!
//! Two front ends share everything below them:
//!
//! * [`SentinelSink`]: what the extension's osquery logger plugin
//!   `keychain_access_sentinel` calls for every result string
//!   ([`SentinelSink::log_string`]); it queues the line and a background
//!   thread ships it. [`SentinelLogger`] wraps it for the "not configured"
//!   case (says so once, keeps nothing).
//! * [`forward()`]: tails an osquery or Fleet results log (follows appends,
//!   rotation by rename + new file, and truncation, with the tailer shared
//!   with the extension's file source, `keychain_access_tables::tail`) and
//!   ships it; for the Linux-server route (`keychain-access forward --results
//!   FILE`).
//!
//! Both read the `sentinel` section of the extension's JSON config
//! ([`SentinelConfig`]; see its docs for every key and default).
//!
//! # Delivery guarantee: at-least-once
//!
//! * A line is acknowledged (to osquery, or by advancing the tail offset) only
//!   after it is committed to the queue. For `forward`, the lines read and the
//!   new file offset (file identity dev+inode, offset, and a fingerprint of
//!   the bytes before the offset) are committed in the
//!   **same transaction**, so a `kill -9` of the forwarder neither loses nor
//!   duplicates queue entries. The queue uses `synchronous=FULL`, so a commit
//!   also survives an OS crash as far as the disk honours `fsync`.
//! * A line leaves the queue only after a 2xx answer for the request that
//!   carried it.
//! * **Duplicates** happen only when the outcome of a request is unknown: the
//!   process dies while a batch is in flight, or the request times out or the
//!   connection drops after Azure accepted the body. Each such event re-sends
//!   **at most one batch** (≤ `batch_max_bytes`, 1,000,000 bytes by default).
//!   Sentinel can deduplicate on the row's `eid` column (`keychain_access_events`
//!   rows carry a stable event id), e.g. `| summarize arg_max(TimeGenerated, *) by eid`.
//! * Nothing is dropped silently. Lines are dropped only: at the queue bound
//!   (drop-newest: the line being offered is refused; counted in
//!   `dropped_at_bound`), when a single line alone is larger than a batch or
//!   than Azure accepts (413 on a one-line batch; `dropped_too_large`), or when
//!   it is not a JSON object (`dropped_invalid`). Lines left out by the name
//!   filter are counted in `filtered`. Every counter is persisted in the queue
//!   file and shown by [`Stats`].
//! * 400/401/403 (and other unexpected statuses) never drop data: they are
//!   surfaced in [`Stats::last_status`]/[`Stats::last_error`] and retried
//!   slowly (`error_retry_ms`); a 401 also forces a new token.
//! * `copytruncate`-style rotation can lose lines written between the
//!   forwarder's last read and the truncation; rename rotation loses nothing
//!   (the old file is drained, also across restarts when it is still in the
//!   same directory). `forward` counts each in [`Stats`]: `rotations`,
//!   `truncations`, and `rotated_lost` (after a restart, the rotated file
//!   was no longer there: its unread lines are lost).
//!
//! # Bounds and defaults
//!
//! | setting | default |
//! |---|---|
//! | `batch_max_bytes` (JSON array, before gzip) | 1,000,000 (the API's 1 MB limit) |
//! | `queue_max_rows` | 100,000 lines |
//! | `queue_max_bytes` | 100,000,000 bytes of line text |
//! | `backoff_initial_ms` / `backoff_max_ms` | 1,000 / 300,000, doubling, "equal jitter" (½..1 of the step) |
//! | `error_retry_ms` (400/401/403/other 4xx) | 60,000 |
//! | `Retry-After` honoured up to | 1 hour |
//! | `request_timeout_ms` | 30,000 |
//! | `linger_ms` (wait for more lines after idle) | 2,000 |
//!
//! Status handling: 2xx → acknowledged; 413 → the batch limit is halved and
//! the head of the queue re-sent (a one-line batch is dropped and counted);
//! 429 → wait `Retry-After` (seconds or HTTP-date; `retry-after-ms` too),
//! else backoff; 5xx, 408 and network errors → backoff; 401 → new token and
//! one immediate retry, then `error_retry_ms`; 400/403/404/other →
//! `error_retry_ms`. [`Stats::state`] is `running`, `backoff` (transient) or
//! `failed` (needs a person), for the status table's `state` column.
//!
//! HTTPS requests honour the usual proxy variables (`HTTPS_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`); loopback test endpoints never use a proxy.
//!
//! One process at a time may use a queue file (an exclusive `flock` on
//! `<queue_path>.lock` enforces it), so the extension and a forwarder need
//! different `queue_path`s.
//!
//! # Logging and the secret
//!
//! The client secret is read from `client_secret_file` (mode 0600 or stricter,
//! owned by the running user, else refused) on every token request, never from
//! argv, and never logged by this crate. Note that `ureq_proto` hex-dumps raw
//! request bytes at `trace` level: a binary that lets users enable `trace`
//! must cap the modules in [`NOISY_LOG_MODULES`] at `debug` (see there).
//!
//! # HTTP stack (one line each)
//!
//! * `ureq` 3: small, well-kept blocking client; rustls + webpki roots by
//!   default, no async runtime inside an osquery extension.
//! * `flate2`: the standard gzip encoder (pure-Rust miniz backend), already in
//!   `ureq`'s tree.
//! * `httpdate`: RFC 9110 HTTP-date parsing for `Retry-After`, already a
//!   common tiny dependency.
//! * `rustix`: `flock` for the queue lock, without `unsafe`.
//! * `keychain-access-tables`: its `state_file` helper opens the queue and its
//!   lock (folder checked, no symlink followed), `effective_uid` for the
//!   secret-file owner check, and its `text` escaping for records.

#![cfg(unix)]
#![forbid(unsafe_code)]

mod config;
mod counters;
mod filter;
mod forward;
mod http;
mod limits;
mod queue;
pub mod secrets;
mod shipper;
mod sink;
mod stats;

pub use config::{SentinelConfig, DEFAULT_SCOPE};
pub use filter::{EmptyPattern, NameFilter};
pub use forward::{forward, STATS_LOG_TARGET};
pub use limits::QueueLimits;
pub use queue::{FileCursor, Offer, Queue};
pub use shipper::Shipper;
pub use sink::{LogError, SentinelLogger, SentinelSink};
pub use stats::Stats;

/// Log targets that must be capped at `debug` when the process allows
/// `trace` logging: `ureq_proto` hex-dumps the raw request (headers with the
/// bearer token, and the token request body with the client secret) at
/// `trace`. With env_logger:
/// `for m in NOISY_LOG_MODULES { builder.filter_module(m, log::LevelFilter::Debug); }`
/// after `parse_default_env()`.
pub const NOISY_LOG_MODULES: &[&str] = &["ureq", "ureq_proto", "rustls"];

/// Everything that can go wrong in this crate. Messages are written for the
/// operator: they name the config key, file or status involved, and never
/// contain the client secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `sentinel` config is missing, malformed or invalid.
    #[error("sentinel config: {0}")]
    Config(String),
    /// The client secret file is missing, unreadable, empty or too open.
    #[error("sentinel client_secret_file: {0}")]
    Secret(String),
    /// The queue database failed.
    #[error("sentinel queue {path}: {source}")]
    Queue {
        /// The queue file.
        path: std::path::PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The queue file is in use by another process, or its schema is unknown.
    #[error("sentinel queue {path}: {message}")]
    QueueState {
        /// The queue file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Sleep for `total`, waking every 50 ms to check `stop`. Returns true when
/// stopped.
pub(crate) fn sleep_unless_stopped(
    total: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> bool {
    let deadline = std::time::Instant::now() + total;
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(50)));
    }
}
