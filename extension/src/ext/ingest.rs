//! The ingest thread: the only writer of the buffer.
//!
//! Sources send raw lines; this thread classifies them with one scanner
//! (so every source shares one process cache) and commits each batch's rows
//! together with the source's offset in one transaction.

use super::config::Retention;
use super::sources::Feed;
use super::status::Board;
use keychain_access_tables::lines::Line;
use keychain_access_tables::store::Store;
use keychain_access_tables::{KeychainAccess, Scanner};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Ingest {
    pub store: Store,
    pub scanner: Scanner,
    pub board: Arc<Mutex<Board>>,
    pub retention: Retention,
    /// Per source: whether it is a live command on this host (usernames are
    /// resolved only for live sources, never for captures from elsewhere).
    pub live: Vec<bool>,
    usernames: HashMap<i64, Option<String>>,
    /// Set when eslogger and osquery's ES tables both run.
    pub dedup: Option<super::dedup::CrossSourceDedup>,
    /// The source index of osquery's ES tables, if configured.
    pub osquery_source: Option<usize>,
    /// Marks the rows of registered `keychain-access selftest` runs.
    pub selftest: Option<crate::selftest::Marks>,
}

/// How often retention runs and buffer size is measured.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

impl Ingest {
    pub fn new(
        store: Store,
        scanner: Scanner,
        board: Arc<Mutex<Board>>,
        retention: Retention,
        live: Vec<bool>,
    ) -> Self {
        let mut scanner = scanner;
        scanner
            .classifier
            .own
            .set_self(i64::from(std::process::id()));
        Ingest {
            store,
            scanner,
            board,
            retention,
            live,
            usernames: HashMap::new(),
            dedup: None,
            osquery_source: None,
            selftest: None,
        }
    }

    pub fn run(mut self, rx: Receiver<Feed>, stop: Arc<AtomicBool>) {
        let mut last_maintenance = Instant::now() - MAINTENANCE_EVERY;
        loop {
            if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
                self.maintenance();
                last_maintenance = Instant::now();
            }
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(feed) => self.handle(feed),
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Acquire) {
                        // Drain what sources already sent, then stop.
                        while let Ok(feed) = rx.try_recv() {
                            self.handle(feed);
                        }
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.maintenance();
    }

    fn handle(&mut self, feed: Feed) {
        match feed {
            Feed::Started { source, child_pid } => {
                log::debug!("source {source} (re)started");
                self.scanner.reset_sequence();
                if let Some(pid) = child_pid {
                    self.scanner.classifier.own.child_started(i64::from(pid));
                }
            }
            Feed::Exited { child_pid } => {
                self.scanner
                    .classifier
                    .own
                    .child_exited(i64::from(child_pid));
            }
            Feed::Lines {
                source,
                lines,
                offset,
            } => {
                let before = self.scanner.finish_stats();
                let mut rows: Vec<KeychainAccess> = Vec::new();
                for (line, _) in lines.entries() {
                    match line {
                        Line::Complete(l) => self.scanner.scan_line(l, &mut rows),
                        Line::Oversize(n) => self.scanner.oversize_line(n),
                    }
                }
                // Unified-log and ES rows of the same access share a
                // correlation id; rows already stored are updated by eid.
                let updates = self.scanner.take_correlation_updates();
                if !updates.is_empty() {
                    keychain_access_tables::correlate::apply_updates(&mut rows, &updates);
                }
                if self.osquery_source == Some(source) {
                    super::osquery_es::clear_absent_columns(&mut rows);
                }
                let dropped_alerts = match self.dedup.as_mut() {
                    Some(d) => d.filter(source, &mut rows),
                    None => 0,
                };
                if self.live.get(source).copied().unwrap_or(false) {
                    self.fill_usernames(&mut rows);
                }
                if let Some(marks) = &mut self.selftest {
                    marks.mark(&mut rows, &self.scanner.classifier.cache);
                }
                let added = match self.store.insert(&rows, offset.as_ref()) {
                    Ok(n) => n,
                    Err(e) => {
                        log::error!("buffer insert failed: {e}");
                        if let Ok(mut b) = self.board.lock() {
                            if let Some(s) = b.sources.get_mut(source) {
                                s.last_error = Some(format!("buffer insert failed: {e}"));
                            }
                        }
                        0
                    }
                };
                if !updates.is_empty() {
                    if let Err(e) = self.store.apply_correlation_updates(&updates) {
                        log::warn!("correlation update failed: {e}");
                    }
                }
                let after = self.scanner.finish_stats();
                let newest = rows.iter().filter_map(|r| r.time).max();
                if let Ok(mut b) = self.board.lock() {
                    if after.oversize > before.oversize {
                        b.bound_hit(
                            "line_length",
                            "a line longer than max_line_bytes was skipped",
                        );
                    }
                    if after.field_caps > before.field_caps {
                        b.bound_hit(
                            "field_caps",
                            "a command line or ancestor list was cut at its cap",
                        );
                    }
                    if after.cache_evictions > before.cache_evictions {
                        b.bound_hit(
                            "process_cache",
                            "the process cache is full; oldest entries evicted",
                        );
                    }
                    if let Some(s) = b.sources.get_mut(source) {
                        s.stats.add(&after.since(&before));
                        s.stats.alerts = s.stats.alerts.saturating_sub(dropped_alerts);
                        s.rows_stored += added as u64;
                        if newest.is_some() {
                            s.last_event_time = newest.max(s.last_event_time);
                        }
                    }
                }
            }
        }
    }

    fn maintenance(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let deleted = self
            .store
            .enforce_retention(now, self.retention.max_age_seconds, self.retention.max_rows)
            .unwrap_or_else(|e| {
                log::warn!("retention failed: {e}");
                0
            });
        let rows = self.store.row_count().unwrap_or(0);
        let bytes = self.store.size_bytes().unwrap_or(0);
        if let Ok(mut b) = self.board.lock() {
            if deleted > 0 && rows >= self.retention.max_rows {
                b.bound_hit(
                    "buffer_rows",
                    "the buffer is at max_rows; oldest rows deleted",
                );
            }
            b.buffer_rows = rows;
            b.buffer_bytes = bytes;
        }
    }

    fn fill_usernames(&mut self, rows: &mut [KeychainAccess]) {
        for r in rows.iter_mut() {
            let Some(uid) = r.auid.or(r.uid) else {
                continue;
            };
            let name = self
                .usernames
                .entry(uid)
                .or_insert_with(|| resolve_username(uid))
                .clone();
            r.username = name;
        }
    }
}

/// The user name of a uid on this host (macOS: via `id`, cached per uid).
#[cfg(target_os = "macos")]
fn resolve_username(uid: i64) -> Option<String> {
    if !(0..=i64::from(u32::MAX - 1)).contains(&uid) {
        return None;
    }
    let out = std::process::Command::new("/usr/bin/id")
        .args(["-nu", &uid.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// Off macOS the live sources do not exist; nothing to resolve.
#[cfg(not(target_os = "macos"))]
fn resolve_username(_uid: i64) -> Option<String> {
    None
}
