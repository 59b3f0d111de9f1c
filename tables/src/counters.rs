//! The counters of a scan ([`ScanStats`]): every line read, skipped,
//! parsed, matched or capped is counted here, by every source (eslogger,
//! unified log) and shown in the status table. Its own module so the
//! sources and the scanner depend on it and not on each other.

/// Declares [`ScanStats`] and its field-by-field arithmetic from one list,
/// so a new counter needs no other code.
macro_rules! scan_counters {
    ($( $(#[$doc:meta])* $name:ident ),+ $(,)?) => {
        /// Counters for one scan (and for a live source's status row).
        #[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct ScanStats {
            $( $(#[$doc])* pub $name: u64, )+
        }

        impl ScanStats {
            /// The counters gained since `before` (counters only grow).
            pub fn since(&self, before: &ScanStats) -> ScanStats {
                ScanStats { $( $name: self.$name.saturating_sub(before.$name), )+ }
            }

            /// Add another set of counters to this one.
            pub fn add(&mut self, other: &ScanStats) {
                $( self.$name = self.$name.saturating_add(other.$name); )+
            }
        }
    };
}

scan_counters! {
    lines_read,
    bytes_read,
    blank_lines,
    prefiltered,
    parsed,
    malformed,
    oversize,
    lossy_utf8,
    unknown_types,
    es_drops,
    rows,
    alerts,
    allowlisted,
    subsystem_access,
    root_certificate_reads,
    cache_evictions,
    /// Values cut at a documented cap: ES rows' command lines, and the
    /// ancestor lists of ES and unified-log rows alike.
    field_caps,
    unified_log_records,
    unified_log_unmatched,
    banner_lines,
    /// Unified-log records matched by an `ignore` pattern (known noise).
    unified_log_ignored,
    /// Unified-log records that are neither `logEvent`s nor Security API
    /// activities a pattern names (signposts, other activities, ...).
    unified_log_other_events,
    /// Security API activity rows not made: the same process, path and API
    /// within `keychain_prompts::ACTIVITY_REPEAT_SECS`.
    unified_log_activity_repeats,
    /// Unified-log rows whose timestamp could not be read (row kept, time NULL).
    unified_log_bad_time,
    /// Rows given a correlation id (see `correlate`).
    correlated_rows,
    /// Correlation window entries evicted at the cap.
    correlation_evictions,
    /// Correlation updates dropped because nobody drained them.
    correlation_updates_dropped,
    /// Secret words scrubbed from rows' free text (see `tree_secrets`).
    secrets_scrubbed,
    /// Temporary files renamed over a live keychain: the keychain API's
    /// in-place update (Apple's AtomicFile), not a copy.
    keychain_updates,
    /// Rowed `security`/tool processes whose exit event said 0 (the access
    /// succeeded) or non-zero (attempted: not found, denied, cancelled).
    accesses_succeeded,
    accesses_failed,
}
