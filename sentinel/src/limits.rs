//! Bounds shared by the config reader and the queue: the ingestion API's body
//! limit and the queue's intake rules. Kept apart so `config` and `queue`
//! both depend on it and not on each other.

use crate::filter::NameFilter;

/// Azure's limit for one Logs Ingestion API call is 1 MB; a batch's JSON
/// array is kept at or under this many bytes before compression.
pub(crate) const API_MAX_BODY: usize = 1_000_000;

/// Queue bounds and intake rules (see [`SentinelConfig::queue_limits`](crate::SentinelConfig::queue_limits)).
#[derive(Debug, Clone)]
pub struct QueueLimits {
    /// At most this many lines queued; at the bound the newest is refused.
    pub max_rows: u64,
    /// At most this many bytes of line text queued.
    pub max_bytes: u64,
    /// A longer line is refused (`dropped_too_large`): it could never fit a batch.
    pub max_line_bytes: usize,
    /// Which result names are kept.
    pub filter: NameFilter,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_rows: 100_000,
            max_bytes: 100_000_000,
            max_line_bytes: API_MAX_BODY - 2,
            filter: NameFilter::default(),
        }
    }
}
