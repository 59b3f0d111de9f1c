//! Correlation: one key shared by the Endpoint Security row and the
//! unified-log row that describe the same keychain access.
//!
//! ESF sees *who* ran `security find-generic-password -ga Chrome` or read
//! `login.keychain-db`; the unified log sees what the keychain daemons did
//! about it (a prompt, an unlock, an authorization). A responder needs both
//! halves, so rows of the two sources that concern the same process close in
//! time get the same `correlation_id`.
//!
//! # Rule
//!
//! * ES side: `exec` rows (every `security` invocation and known tool) and
//!   `keychain_read` / `keychain_copy` / `keychain_move` rows.
//! * Unified-log side: every unified-log row (prompt, unlock, auth,
//!   authorization right, database open).
//! * Same process: the same `pid` (for a unified-log row that is the client
//!   the message names, else the logging process; see
//!   [`crate::unified_log`]). When the unified-log row has no pid but a path,
//!   the same `path`.
//! * Close in time: `|Δtime| <= window_secs` (default
//!   [`DEFAULT_WINDOW_SECS`] = 10 s; rows carry whole seconds).
//! * Of several candidates the nearest in time wins (the newest on a tie).
//! * The id is `corr-` + a stable hash of the ES row's `eid`; a row that
//!   joins a row already correlated takes that row's id (so a prompt and an
//!   unlock after the same exec share one id).
//!
//! # Offline and streaming alike
//!
//! The [`Correlator`] sees rows as the scanner makes them. The row being
//! made gets its id directly. The earlier row has already left (into the
//! CLI's `Vec` or the extension's SQLite buffer), so the correlator queues a
//! [`CorrelationUpdate`] (`eid` -> `correlation_id`) that the caller drains
//! with [`crate::Scanner::take_correlation_updates`] and applies: offline
//! with [`apply_updates`] on its rows, in the extension with
//! [`crate::store::Store::apply_correlation_updates`] (an `UPDATE ... WHERE
//! eid = ?`).
//!
//! # Bounds
//!
//! Each side remembers at most `max_entries` rows (default
//! [`DEFAULT_MAX_ENTRIES`]); older ones are evicted first and counted
//! (`correlation_evictions`). Entries are not aged out by time, so a scan of
//! an ES file followed by a unified-log file of the same period correlates
//! as long as each side's rows fit the cap. Pending updates are capped at
//! `max_pending` (default [`DEFAULT_MAX_PENDING`]); a caller that never
//! drains loses the oldest, counted (`correlation_updates_dropped`).

use crate::schema::{Action, KeychainAccess};
use crate::text::Fnv64;
use std::collections::VecDeque;

/// Default correlation window in seconds.
pub const DEFAULT_WINDOW_SECS: i64 = 10;
/// Default number of rows remembered per side.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;
/// Default cap on undrained updates.
pub const DEFAULT_MAX_PENDING: usize = 65_536;

/// Correlation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationOptions {
    pub enabled: bool,
    pub window_secs: i64,
    pub max_entries: usize,
    pub max_pending: usize,
}

impl Default for CorrelationOptions {
    fn default() -> Self {
        CorrelationOptions {
            enabled: true,
            window_secs: DEFAULT_WINDOW_SECS,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

/// A row that was already emitted and now has a correlation id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CorrelationUpdate {
    pub eid: String,
    pub correlation_id: String,
}

/// What the correlator did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CorrelationCounters {
    /// Rows given a correlation id (each half counts once).
    pub correlated_rows: u64,
    /// Remembered rows evicted because a side was full.
    pub evictions: u64,
    /// Pending updates dropped because nobody drained them.
    pub updates_dropped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Es,
    UnifiedLog,
}

#[derive(Debug)]
struct Entry {
    time: i64,
    pid: Option<i64>,
    path: Option<String>,
    eid: String,
    corr: Option<String>,
}

/// Bounded windows of recent rows of both sources.
#[derive(Debug)]
pub struct Correlator {
    opts: CorrelationOptions,
    es: VecDeque<Entry>,
    ul: VecDeque<Entry>,
    pending: VecDeque<CorrelationUpdate>,
    pub counters: CorrelationCounters,
}

impl Default for Correlator {
    fn default() -> Self {
        Self::new(CorrelationOptions::default())
    }
}

/// The correlation id derived from the ES row's eid.
pub fn correlation_id_for(es_eid: &str) -> String {
    format!(
        "corr-{}",
        Fnv64::default()
            .write(b"corr")
            .write(es_eid.as_bytes())
            .finish_hex()
    )
}

fn side_of(row: &KeychainAccess) -> Option<Side> {
    match row.source.as_deref() {
        Some("esf") => {
            let exec = row.event_type.as_deref() == Some("exec");
            let file = matches!(
                row.action,
                Some(Action::KeychainRead | Action::KeychainCopy | Action::KeychainMove)
            );
            (exec || file).then_some(Side::Es)
        }
        Some("unified_log") => Some(Side::UnifiedLog),
        _ => None,
    }
}

impl Correlator {
    pub fn new(opts: CorrelationOptions) -> Self {
        Correlator {
            opts,
            es: VecDeque::new(),
            ul: VecDeque::new(),
            pending: VecDeque::new(),
            counters: CorrelationCounters::default(),
        }
    }

    pub fn options(&self) -> CorrelationOptions {
        self.opts
    }

    /// Rows remembered now (ES side, unified-log side).
    pub fn remembered(&self) -> (usize, usize) {
        (self.es.len(), self.ul.len())
    }

    /// Look at a new row: link it to a remembered row of the other source,
    /// setting its `correlation_id` (and queueing an update for the other
    /// row), then remember it.
    pub fn observe(&mut self, row: &mut KeychainAccess) {
        if !self.opts.enabled {
            return;
        }
        let Some(side) = side_of(row) else {
            return;
        };
        let (Some(time), Some(eid)) = (row.time, row.eid.clone()) else {
            return;
        };
        let pid = row.pid;
        let path = row.path.clone();
        if pid.is_none() && path.is_none() {
            return;
        }
        let window = self.opts.window_secs.max(0);
        let other = match side {
            Side::Es => &mut self.ul,
            Side::UnifiedLog => &mut self.es,
        };
        let mut best: Option<(usize, i64)> = None;
        for (i, e) in other.iter().enumerate() {
            let same = match (pid, e.pid) {
                (Some(a), Some(b)) => a == b,
                _ => path.is_some() && path == e.path,
            };
            if !same {
                continue;
            }
            let dt = time.saturating_sub(e.time).saturating_abs();
            if dt > window {
                continue;
            }
            let nearer = match best {
                None => true,
                Some((_, d)) => dt <= d,
            };
            if nearer {
                best = Some((i, dt));
            }
        }
        let mut linked: Option<String> = None;
        let mut update: Option<CorrelationUpdate> = None;
        if let Some(e) = best.and_then(|(i, _)| other.get_mut(i)) {
            let id = match &e.corr {
                Some(c) => c.clone(),
                None => {
                    let es_eid = if side == Side::Es { &eid } else { &e.eid };
                    let c = correlation_id_for(es_eid);
                    e.corr = Some(c.clone());
                    update = Some(CorrelationUpdate {
                        eid: e.eid.clone(),
                        correlation_id: c.clone(),
                    });
                    c
                }
            };
            linked = Some(id);
        }
        if let Some(u) = update {
            self.counters.correlated_rows += 1;
            self.queue(u);
        }
        if let Some(id) = linked {
            if row.correlation_id.is_none() {
                row.correlation_id = Some(id);
                self.counters.correlated_rows += 1;
            }
        }
        let own = match side {
            Side::Es => &mut self.es,
            Side::UnifiedLog => &mut self.ul,
        };
        own.push_back(Entry {
            time,
            pid,
            path,
            eid,
            corr: row.correlation_id.clone(),
        });
        let cap = self.opts.max_entries.max(1);
        while own.len() > cap {
            own.pop_front();
            self.counters.evictions += 1;
        }
    }

    fn queue(&mut self, u: CorrelationUpdate) {
        self.pending.push_back(u);
        let cap = self.opts.max_pending.max(1);
        while self.pending.len() > cap {
            self.pending.pop_front();
            self.counters.updates_dropped += 1;
        }
    }

    /// Updates for rows emitted before their partner arrived. Drain after
    /// each batch and apply them ([`apply_updates`] or
    /// [`crate::store::Store::apply_correlation_updates`]).
    pub fn take_updates(&mut self) -> Vec<CorrelationUpdate> {
        self.pending.drain(..).collect()
    }
}

/// Apply updates to rows held in memory (offline scans). The earlier row is
/// usually among the last ones, so rows are searched from the end. Returns
/// how many rows changed.
pub fn apply_updates(rows: &mut [KeychainAccess], updates: &[CorrelationUpdate]) -> usize {
    let mut n = 0;
    for u in updates {
        if let Some(r) = rows
            .iter_mut()
            .rev()
            .find(|r| r.eid.as_deref() == Some(u.eid.as_str()))
        {
            if r.correlation_id.as_deref() != Some(u.correlation_id.as_str()) {
                r.correlation_id = Some(u.correlation_id.clone());
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es(eid: &str, t: i64, pid: i64, action: &str, event: &str) -> KeychainAccess {
        KeychainAccess {
            time: Some(t),
            eid: Some(eid.into()),
            source: Some("esf".into()),
            event_type: Some(event.into()),
            action: Some(action.parse().expect("a known action")),
            pid: Some(pid),
            path: Some("/usr/bin/security".into()),
            ..Default::default()
        }
    }

    fn ul(eid: &str, t: i64, pid: Option<i64>, path: Option<&str>) -> KeychainAccess {
        KeychainAccess {
            time: Some(t),
            eid: Some(eid.into()),
            source: Some("unified_log".into()),
            event_type: Some("log".into()),
            action: Some(Action::KeychainPrompt),
            pid,
            path: path.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn links_both_halves_and_queues_the_earlier_one() {
        let mut c = Correlator::default();
        let mut a = es("e1", 100, 42, "find_generic_password", "exec");
        c.observe(&mut a);
        assert!(a.correlation_id.is_none());
        let mut b = ul("u1", 102, Some(42), None);
        c.observe(&mut b);
        let id = correlation_id_for("e1");
        assert_eq!(b.correlation_id.as_deref(), Some(id.as_str()));
        let ups = c.take_updates();
        assert_eq!(
            ups,
            vec![CorrelationUpdate {
                eid: "e1".into(),
                correlation_id: id.clone()
            }]
        );
        let mut rows = vec![a];
        assert_eq!(apply_updates(&mut rows, &ups), 1);
        assert_eq!(rows[0].correlation_id.as_deref(), Some(id.as_str()));
        assert_eq!(c.counters.correlated_rows, 2);
        // A second unified-log row joins the same group without a new update.
        let mut d = ul("u2", 104, Some(42), None);
        c.observe(&mut d);
        assert_eq!(d.correlation_id.as_deref(), Some(id.as_str()));
        assert!(c.take_updates().is_empty());
    }

    #[test]
    fn either_order_same_id() {
        let mut c = Correlator::default();
        let mut b = ul("u1", 100, Some(7), None);
        c.observe(&mut b);
        let mut a = es("e9", 99, 7, "keychain_read", "open");
        c.observe(&mut a);
        let id = correlation_id_for("e9");
        assert_eq!(a.correlation_id.as_deref(), Some(id.as_str()));
        assert_eq!(c.take_updates()[0].eid, "u1");
    }

    #[test]
    fn window_pid_and_kind_are_respected() {
        let mut c = Correlator::new(CorrelationOptions {
            window_secs: 5,
            ..Default::default()
        });
        let mut a = es("e1", 100, 42, "find_generic_password", "exec");
        c.observe(&mut a);
        let mut far = ul("u1", 106, Some(42), None);
        c.observe(&mut far);
        assert!(far.correlation_id.is_none());
        let mut other_pid = ul("u2", 101, Some(43), None);
        c.observe(&mut other_pid);
        assert!(other_pid.correlation_id.is_none());
        // A delete row is not a correlation candidate.
        let mut del = es("e2", 106, 43, "keychain_delete", "unlink");
        c.observe(&mut del);
        assert!(del.correlation_id.is_none());
        // Path fallback when the unified-log row has no pid.
        let mut by_path = ul("u3", 103, None, Some("/usr/bin/security"));
        c.observe(&mut by_path);
        assert!(by_path.correlation_id.is_some());
    }

    #[test]
    fn bounded_with_counted_evictions_and_drops() {
        let mut c = Correlator::new(CorrelationOptions {
            max_entries: 3,
            max_pending: 2,
            ..Default::default()
        });
        for i in 0..10 {
            let mut r = es(&format!("e{i}"), 100, i, "keychain_read", "open");
            c.observe(&mut r);
        }
        assert_eq!(c.remembered().0, 3);
        assert_eq!(c.counters.evictions, 7);
        for i in 7..10 {
            let mut r = ul(&format!("u{i}"), 100, Some(i), None);
            c.observe(&mut r);
            assert!(r.correlation_id.is_some());
        }
        assert_eq!(c.counters.updates_dropped, 1);
        assert_eq!(c.take_updates().len(), 2);
    }

    #[test]
    fn disabled_does_nothing() {
        let mut c = Correlator::new(CorrelationOptions {
            enabled: false,
            ..Default::default()
        });
        let mut a = es("e1", 100, 42, "find_generic_password", "exec");
        c.observe(&mut a);
        let mut b = ul("u1", 100, Some(42), None);
        c.observe(&mut b);
        assert!(b.correlation_id.is_none());
        assert_eq!(c.remembered(), (0, 0));
    }
}
