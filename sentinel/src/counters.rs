//! The persisted delivery counters and the shipper's last outcome: written
//! by the queue (same transaction as the change they count), read into a
//! [`Stats`](crate::Stats) snapshot. Kept apart so `queue` and `stats` both
//! depend on it and not on each other.

/// Persisted counters (names are the `counters` table keys and the [`Stats`] fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub accepted: u64,
    pub delivered: u64,
    pub dropped_at_bound: u64,
    pub dropped_too_large: u64,
    pub dropped_invalid: u64,
    pub filtered: u64,
    pub requests: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub network_errors: u64,
    pub client_errors: u64,
    pub splits: u64,
    pub token_requests: u64,
    pub token_failures: u64,
}

macro_rules! counter_names {
    ($($f:ident),*) => {
        impl Counters {
            pub(crate) fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($f), self.$f)),*]
            }
            pub(crate) fn set(&mut self, name: &str, v: u64) {
                match name { $(stringify!($f) => self.$f = v,)* _ => {} }
            }
        }
    };
}
counter_names!(
    accepted,
    delivered,
    dropped_at_bound,
    dropped_too_large,
    dropped_invalid,
    filtered,
    requests,
    throttled,
    server_errors,
    network_errors,
    client_errors,
    splits,
    token_requests,
    token_failures
);

/// The shipper's last outcome, persisted so a restart still shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShipState {
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_error_unix: Option<i64>,
    pub last_success_unix: Option<i64>,
    pub consecutive_failures: u64,
    pub retry_at_unix: Option<i64>,
    /// `running`, `backoff` (transient trouble) or `failed` (needs a person).
    pub state: Option<String>,
}
