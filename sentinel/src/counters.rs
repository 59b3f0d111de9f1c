//! The persisted delivery counters and the shipper's last outcome: written
//! by the queue (same transaction as the change they count), read into a
//! [`Stats`](crate::Stats) snapshot. Kept apart so `queue` and `stats` both
//! depend on it and not on each other.
//!
//! Every counter is declared once, in [`delivery_counters!`]: its name (the
//! `counters` table key, the [`Counters`] and [`Stats`](crate::Stats) field,
//! the stats line's key) and its meaning (the fields' documentation). A new
//! counter is one more line there.

/// The one list of delivery counters, handed to the macro `$declare`
/// (which declares a struct from it). The names are the keys of the queue's
/// `counters` table: renaming one makes databases written before read it as
/// 0, so names are only ever added (`persisted_names_are_stable` holds them).
macro_rules! delivery_counters {
    ($declare:ident) => {
        $declare! {
            /// Lines ever committed to the queue.
            accepted,
            /// Lines removed after a 2xx.
            delivered,
            /// Lines refused because the queue was at its bound (drop-newest).
            dropped_at_bound,
            /// Lines too long for one ingestion call (refused at intake, or 413 alone).
            dropped_too_large,
            /// Lines that were not a JSON object (or not UTF-8).
            dropped_invalid,
            /// Lines left out by `name_filter` (on purpose).
            filtered,
            /// Ingestion POSTs sent.
            requests,
            /// 429 answers.
            throttled,
            /// 5xx and 408 answers.
            server_errors,
            /// Requests that failed below HTTP (refused, reset, timeout, TLS, DNS).
            network_errors,
            /// 4xx answers other than 408/413/429 (400/401/403/404...).
            client_errors,
            /// Batches split after a 413.
            splits,
            /// Tokens obtained from Entra ID.
            token_requests,
            /// Token requests that failed.
            token_failures,
            /// `forward`: rotations of the results log followed (renamed and a new
            /// file; the old one read to its end), also one found after a restart.
            rotations,
            /// `forward`: times the results log shrank below the read position
            /// (copy-truncate): reading restarted at 0; lines written between the
            /// last read and the truncation are lost.
            truncations,
            /// `forward`: restarts that found a new results log and the previous one
            /// no longer in its folder: its lines after the committed offset are lost.
            rotated_lost,
        }
    };
}
pub(crate) use delivery_counters;

/// Declares [`Counters`] from the list.
macro_rules! declare_counters {
    ($( $(#[doc = $doc:literal])+ $name:ident ),+ $(,)?) => {
        /// Persisted counters (names are the `counters` table keys and the
        /// [`Stats`](crate::Stats) fields).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub(crate) struct Counters {
            $( $(#[doc = $doc])+ pub $name: u64, )+
        }

        impl Counters {
            /// The `counters` table keys, in declaration order.
            pub(crate) const NAMES: &[&'static str] = &[$(stringify!($name)),+];

            /// `(key, value)` for every counter, in declaration order.
            pub(crate) fn pairs(&self) -> Vec<(&'static str, u64)> {
                Self::NAMES.iter().copied().zip([$(self.$name),+]).collect()
            }

            /// Set a counter read back from the table; false for a key this
            /// version does not know (a newer version's: ignored).
            pub(crate) fn set(&mut self, name: &str, v: u64) -> bool {
                match name {
                    $(stringify!($name) => self.$name = v,)+
                    _ => return false,
                }
                true
            }
        }
    };
}
delivery_counters!(declare_counters);

impl Counters {
    /// Count one switch of the tailed results log (the tailer's own mapping
    /// from a switch to its counters, so `forward` cannot count differently).
    pub(crate) fn count_switch(&mut self, why: keychain_access_tables::tail::Switch) {
        let mut seen = keychain_access_tables::tail::TailCounters::default();
        seen.count(why);
        self.rotations += seen.rotations;
        self.truncations += seen.truncations;
        self.rotated_lost += seen.rotated_lost;
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Queue databases written before keep their counters: every key an
    /// earlier version wrote is still a counter, under the same name.
    #[test]
    fn persisted_names_are_stable() {
        let written_before = [
            "accepted",
            "delivered",
            "dropped_at_bound",
            "dropped_too_large",
            "dropped_invalid",
            "filtered",
            "requests",
            "throttled",
            "server_errors",
            "network_errors",
            "client_errors",
            "splits",
            "token_requests",
            "token_failures",
        ];
        for name in written_before {
            assert!(Counters::NAMES.contains(&name), "{name} is gone");
        }
    }

    /// Each name reads and writes its own field: `set` then `pairs` gives
    /// back a distinct value under every name.
    #[test]
    fn each_name_is_its_own_field() {
        let mut c = Counters::default();
        for (i, name) in Counters::NAMES.iter().enumerate() {
            assert!(c.set(name, i as u64 + 1), "{name}");
        }
        assert!(!c.set("no_such_counter", 7));
        let want: Vec<(&str, u64)> = Counters::NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u64 + 1))
            .collect();
        assert_eq!(c.pairs(), want);
        assert_eq!(c.accepted, 1);
        assert_eq!(c.rotated_lost, Counters::NAMES.len() as u64);
    }
}
