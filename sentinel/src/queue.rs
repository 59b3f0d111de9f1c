//! The durable on-disk queue (SQLite, WAL, file mode 0600).
//!
//! Schema (`PRAGMA user_version = 2`; each version's step in `migrate` is
//! never edited, a new one is appended):
//!
//! * `queue(id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT, bytes INTEGER, enqueued_unix INTEGER)`:
//!   ids are never reused, so id order is arrival order.
//! * `counters(name, value)`: every counter of [`Stats`], written in the same
//!   transaction as the change it counts.
//! * `state(name, value)`: last status/error of the shipper.
//! * `cursors(source, dev, ino, offset, updated_unix, fingerprint)`:
//!   `forward`'s position in its results file, written in the same
//!   transaction as the lines read. `fingerprint` (version 2) is the
//!   tailer's digest of the bytes before the offset; NULL in a cursor
//!   written by version 1, which is trusted on dev and inode alone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use keychain_access_tables::tail::{Fingerprint, Switch};

use crate::counters::{Counters, ShipState};
use crate::limits::QueueLimits;
use crate::stats::Stats;
use crate::{unix_now, Error};

const SCHEMA_VERSION: i64 = 2;

/// What happened to one offered line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Committed to the queue: it will be delivered (at least once).
    Queued,
    /// Left out by `name_filter` (by design; counted in `filtered`).
    Filtered,
    /// Not a JSON object (or not UTF-8): dropped, counted in `dropped_invalid`.
    Invalid,
    /// Longer than a batch can carry: dropped, counted in `dropped_too_large`.
    TooLarge,
    /// The queue is at its bound (drop-newest): dropped, counted in `dropped_at_bound`.
    DroppedAtBound,
}

impl Offer {
    /// True when the caller may treat the line as handled (queued or
    /// filtered out on purpose); false when it was dropped.
    pub fn is_acknowledged(self) -> bool {
        matches!(self, Offer::Queued | Offer::Filtered)
    }
}

/// Position of `forward` in a results file: file identity and byte offset of
/// the first byte not yet queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCursor {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    /// Offset just after the last line committed to the queue.
    pub offset: u64,
    /// The tailer's fingerprint of the bytes before `offset`; None in a
    /// cursor persisted before fingerprints existed.
    pub fingerprint: Option<Fingerprint>,
}

struct Inner {
    conn: Connection,
    rows: u64,
    bytes: u64,
    counters: Counters,
    state: ShipState,
}

/// Per-call tallies of an intake transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub queued: u64,
    pub filtered: u64,
    pub invalid: u64,
    pub too_large: u64,
    pub dropped_at_bound: u64,
}

/// The durable queue. `Send + Sync`: share it with `Arc`. One process per
/// file (an exclusive `flock` on `<path>.lock`).
pub struct Queue {
    path: PathBuf,
    limits: QueueLimits,
    inner: Mutex<Inner>,
    pushes: Mutex<u64>,
    pushed: Condvar,
    invalid_logged: AtomicU64,
    _lock: File,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("path", &self.path).finish()
    }
}

/// A state file of the queue (the database, its lock): folder checked,
/// never opened through a symlink, 0600 (see
/// [`keychain_access_tables::state_file`]).
fn owner_only_file(path: &Path) -> Result<File, Error> {
    keychain_access_tables::state_file::open(path, true).map_err(|e| Error::QueueState {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// True when some string (or key) of `v` would change under
/// [`keychain_access_tables::text::display_safe`].
fn needs_display_escape(v: &serde_json::Value) -> bool {
    use keychain_access_tables::text::display_safe;
    let changes = |s: &str| matches!(display_safe(s), std::borrow::Cow::Owned(_));
    match v {
        serde_json::Value::String(s) => changes(s),
        serde_json::Value::Array(a) => a.iter().any(needs_display_escape),
        serde_json::Value::Object(o) => {
            o.iter().any(|(k, x)| changes(k) || needs_display_escape(x))
        }
        _ => false,
    }
}

/// `v` with every string and key made display-safe.
fn display_safe_value(v: serde_json::Value) -> serde_json::Value {
    use keychain_access_tables::text::display_safe;
    match v {
        serde_json::Value::String(s) => serde_json::Value::String(display_safe(&s).into_owned()),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(display_safe_value).collect())
        }
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.into_iter()
                .map(|(k, x)| (display_safe(&k).into_owned(), display_safe_value(x)))
                .collect(),
        ),
        other => other,
    }
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Queue {
    /// Open (creating if needed) the queue at `path`: directory 0700 if
    /// created, file 0600, WAL, `synchronous=FULL`. Fails if another process
    /// holds it or its schema is newer than this build.
    pub fn open(path: &Path, limits: QueueLimits) -> Result<Queue, Error> {
        let dir = keychain_access_tables::state_file::parent_dir(path);
        keychain_access_tables::state_file::ensure_dir(dir).map_err(|e| Error::QueueState {
            path: path.to_path_buf(),
            message: format!("unsafe folder for the queue: {e}"),
        })?;
        let lock_path = side_file(path, ".lock");
        let lock = owner_only_file(&lock_path)?;
        if let Err(e) =
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        {
            return Err(Error::QueueState {
                path: path.to_path_buf(),
                message: format!(
                    "in use by another process (lock {}: {e}); the extension and a \
                     forwarder each need their own queue_path",
                    lock_path.display()
                ),
            });
        }
        drop(owner_only_file(path)?);
        let qerr = |source| Error::Queue {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(qerr)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(qerr)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(qerr)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!(
                "sentinel queue {}: journal_mode is {mode}, not WAL",
                path.display()
            );
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")
            .map_err(qerr)?;
        migrate(&mut conn).map_err(|e| match e {
            MigrateError::Sql(source) => Error::Queue {
                path: path.to_path_buf(),
                source,
            },
            MigrateError::TooNew(v) => Error::QueueState {
                path: path.to_path_buf(),
                message: format!(
                    "schema version {v} is newer than this build supports ({SCHEMA_VERSION})"
                ),
            },
        })?;
        for suffix in ["-wal", "-shm"] {
            let p = side_file(path, suffix);
            keychain_access_tables::state_file::harden_existing(&p).map_err(|e| {
                Error::QueueState {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            })?;
        }
        let (rows, bytes): (i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM queue",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(qerr)?;
        let counters = load_counters(&conn).map_err(qerr)?;
        let state = load_state(&conn).map_err(qerr)?;
        Ok(Queue {
            path: path.to_path_buf(),
            limits,
            inner: Mutex::new(Inner {
                conn,
                rows: u64::try_from(rows).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
                counters,
                state,
            }),
            pushes: Mutex::new(0),
            pushed: Condvar::new(),
            invalid_logged: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// The queue file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The limits in force.
    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the DB inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sql(&self, source: rusqlite::Error) -> Error {
        Error::Queue {
            path: self.path.clone(),
            source,
        }
    }

    /// Offer one line (an osquery result JSON object). Returns only after the
    /// outcome is committed: `Offer::Queued` means it is on disk.
    pub fn push(&self, line: &str) -> Result<Offer, Error> {
        let offers = self.push_lines(&[line])?;
        Ok(offers.first().copied().unwrap_or(Offer::Filtered))
    }

    /// Offer several lines in one transaction. Blank lines are skipped (no
    /// entry in the result).
    pub fn push_lines(&self, lines: &[&str]) -> Result<Vec<Offer>, Error> {
        let bytes: Vec<&[u8]> = lines
            .iter()
            .map(|l| l.as_bytes())
            .filter(|l| !l.trim_ascii().is_empty())
            .collect();
        let (offers, _) = self.ingest(&bytes, 0, None, None)?;
        Ok(offers)
    }

    /// Intake of raw lines (and `oversized` lines already skipped by the
    /// tailer), plus optionally a tail cursor and the tailer's switch that
    /// moved it (counted in `rotations`, `truncations`, `rotated_lost`), all
    /// in one transaction: a crash neither loses nor repeats a count.
    pub(crate) fn ingest(
        &self,
        lines: &[&[u8]],
        oversized: u64,
        cursor: Option<(&str, FileCursor)>,
        switched: Option<Switch>,
    ) -> Result<(Vec<Offer>, Tally), Error> {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut counters = inner.counters;
        let mut rows = inner.rows;
        let mut bytes = inner.bytes;
        let mut offers = Vec::with_capacity(lines.len());
        let mut tally = Tally {
            too_large: oversized,
            ..Tally::default()
        };
        let now = unix_now();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO queue(line, bytes, enqueued_unix) VALUES (?1, ?2, ?3)")
                .map_err(|e| self.sql(e))?;
            for raw in lines {
                let offer = match self.classify(raw) {
                    Ok(line) => {
                        let line = line.as_ref();
                        let len = line.len() as u64;
                        if rows + 1 > self.limits.max_rows || bytes + len > self.limits.max_bytes {
                            Offer::DroppedAtBound
                        } else {
                            insert
                                .execute(params![line, len as i64, now])
                                .map_err(|e| self.sql(e))?;
                            rows += 1;
                            bytes += len;
                            Offer::Queued
                        }
                    }
                    Err(o) => o,
                };
                match offer {
                    Offer::Queued => tally.queued += 1,
                    Offer::Filtered => tally.filtered += 1,
                    Offer::Invalid => tally.invalid += 1,
                    Offer::TooLarge => tally.too_large += 1,
                    Offer::DroppedAtBound => tally.dropped_at_bound += 1,
                }
                offers.push(offer);
            }
        }
        counters.accepted += tally.queued;
        counters.filtered += tally.filtered;
        counters.dropped_invalid += tally.invalid;
        counters.dropped_too_large += tally.too_large;
        counters.dropped_at_bound += tally.dropped_at_bound;
        if let Some(why) = switched {
            counters.count_switch(why);
        }
        save_counters(&tx, &inner.counters, &counters).map_err(|e| self.sql(e))?;
        if let Some((source, c)) = cursor {
            tx.execute(
                "INSERT INTO cursors(source, dev, ino, offset, updated_unix, fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(source) DO UPDATE
                 SET dev = ?2, ino = ?3, offset = ?4, updated_unix = ?5, fingerprint = ?6",
                params![
                    source,
                    c.dev as i64,
                    c.ino as i64,
                    c.offset as i64,
                    now,
                    c.fingerprint.as_ref().map(|f| f.as_bytes().as_slice())
                ],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))?;
        inner.counters = counters;
        inner.rows = rows;
        inner.bytes = bytes;
        drop(g);
        if tally.dropped_at_bound > 0 {
            log::warn!(
                "sentinel queue full ({} lines / {} bytes max): dropped {} newest line(s); \
                 {} dropped at the bound so far",
                self.limits.max_rows,
                self.limits.max_bytes,
                tally.dropped_at_bound,
                counters.dropped_at_bound
            );
        }
        if tally.too_large > 0 {
            log::warn!(
                "sentinel: dropped {} line(s) longer than {} bytes (cannot fit one ingestion call); \
                 {} so far",
                tally.too_large,
                self.limits.max_line_bytes,
                counters.dropped_too_large
            );
        }
        if tally.queued > 0 {
            let mut n = self.pushes.lock().unwrap_or_else(|p| p.into_inner());
            *n = n.wrapping_add(1);
            self.pushed.notify_all();
        }
        Ok((offers, tally))
    }

    /// Decide a line's fate before it touches the DB; Ok(trimmed text) to
    /// queue, with strings made display-safe when they need it.
    fn classify<'a>(&self, raw: &'a [u8]) -> Result<std::borrow::Cow<'a, str>, Offer> {
        let raw = raw.trim_ascii();
        if raw.len() > self.limits.max_line_bytes {
            return Err(Offer::TooLarge);
        }
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                self.log_invalid(raw, &format!("not UTF-8 ({e})"));
                return Err(Offer::Invalid);
            }
        };
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.log_invalid(raw, &format!("not JSON ({e})"));
                return Err(Offer::Invalid);
            }
        };
        let Some(obj) = value.as_object() else {
            self.log_invalid(raw, "JSON but not an object");
            return Err(Offer::Invalid);
        };
        let name = obj.get("name").and_then(|n| n.as_str());
        if !self.limits.filter.matches(name) {
            return Err(Offer::Filtered);
        }
        if !needs_display_escape(&value) {
            return Ok(text.into());
        }
        // Sentinel records are an output boundary: an analyst reads them in
        // the portal, so bidirectional, zero-width and control characters
        // (raw or as JSON \u escapes) are written as visible escapes.
        let escaped =
            serde_json::to_string(&display_safe_value(value)).map_err(|_| Offer::Invalid)?;
        if escaped.len() > self.limits.max_line_bytes {
            return Err(Offer::TooLarge);
        }
        Ok(escaped.into())
    }

    fn log_invalid(&self, raw: &[u8], why: &str) {
        let n = self.invalid_logged.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 10 || n.is_power_of_two() {
            let head = String::from_utf8_lossy(&raw[..raw.len().min(60)]).into_owned();
            log::warn!(
                "sentinel: dropping a result line that is {why}: {} bytes, starts {head:?} \
                 (invalid lines this run: {n}; each one is counted in dropped_invalid)",
                raw.len()
            );
        }
    }

    /// The oldest lines whose JSON array (`[a,b,...]`) is at most `max_bytes`
    /// long; always at least one line when the queue is not empty.
    pub fn peek_batch(&self, max_bytes: usize) -> Result<Vec<(i64, String)>, Error> {
        let g = self.lock();
        let mut stmt = g
            .conn
            .prepare_cached("SELECT id, line FROM queue ORDER BY id")
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        let mut size = 2usize; // "[" + "]"
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let id: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let line: String = row.get(1).map_err(|e| self.sql(e))?;
            let add = line.len() + usize::from(!out.is_empty());
            if !out.is_empty() && size + add > max_bytes {
                break;
            }
            size += add;
            out.push((id, line));
        }
        Ok(out)
    }

    /// Remove delivered lines (after a 2xx) and count them in `delivered`.
    pub fn ack(&self, ids: &[i64]) -> Result<(), Error> {
        self.remove(
            ids,
            |c, n| c.delivered += n,
            |s| {
                s.last_success_unix = Some(unix_now());
            },
        )
    }

    /// [`Queue::ack`] plus the shipper's success bookkeeping, in one transaction.
    pub(crate) fn ack_delivered(&self, ids: &[i64], status: u16) -> Result<(), Error> {
        self.remove(
            ids,
            |c, n| {
                c.delivered += n;
                c.requests += 1;
            },
            |s| {
                s.last_success_unix = Some(unix_now());
                s.last_status = Some(status);
                s.consecutive_failures = 0;
                s.state = Some("running".into());
            },
        )
    }

    /// Remove lines Azure refused as too large (413 on a one-line batch) and
    /// count them in `dropped_too_large`.
    pub(crate) fn drop_too_large(&self, ids: &[i64]) -> Result<(), Error> {
        self.remove(ids, |c, n| c.dropped_too_large += n, |_| {})
    }

    fn remove(
        &self,
        ids: &[i64],
        count: impl FnOnce(&mut Counters, u64),
        state: impl FnOnce(&mut ShipState),
    ) -> Result<(), Error> {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut counters = inner.counters;
        let mut st = inner.state.clone();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let mut removed = 0u64;
        let mut removed_bytes = 0u64;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM queue WHERE id = ?1 RETURNING bytes")
                .map_err(|e| self.sql(e))?;
            for id in ids {
                let b: Option<i64> = del
                    .query_row([id], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.sql(e))?;
                if let Some(b) = b {
                    removed += 1;
                    removed_bytes += u64::try_from(b).unwrap_or(0);
                }
            }
        }
        count(&mut counters, removed);
        state(&mut st);
        save_counters(&tx, &inner.counters, &counters).map_err(|e| self.sql(e))?;
        save_state(&tx, &inner.state, &st).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        inner.counters = counters;
        inner.state = st;
        inner.rows = inner.rows.saturating_sub(removed);
        inner.bytes = inner.bytes.saturating_sub(removed_bytes);
        Ok(())
    }

    /// Update counters and shipper state together (persisted).
    pub(crate) fn record(
        &self,
        f: impl FnOnce(&mut Counters, &mut ShipState),
    ) -> Result<(), Error> {
        let mut g = self.lock();
        let inner = &mut *g;
        let mut counters = inner.counters;
        let mut st = inner.state.clone();
        f(&mut counters, &mut st);
        if counters == inner.counters && st == inner.state {
            return Ok(());
        }
        let tx = inner.conn.transaction().map_err(|e| self.sql(e))?;
        save_counters(&tx, &inner.counters, &counters).map_err(|e| self.sql(e))?;
        save_state(&tx, &inner.state, &st).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        inner.counters = counters;
        inner.state = st;
        Ok(())
    }

    /// `forward`'s stored position for `source`.
    pub fn cursor(&self, source: &str) -> Result<Option<FileCursor>, Error> {
        let g = self.lock();
        g.conn
            .query_row(
                "SELECT dev, ino, offset, fingerprint FROM cursors WHERE source = ?1",
                [source],
                |r| {
                    let fingerprint: Option<Fingerprint> = r.get(3)?;
                    Ok(FileCursor {
                        dev: r.get::<_, i64>(0)? as u64,
                        ino: r.get::<_, i64>(1)? as u64,
                        offset: r.get::<_, i64>(2)? as u64,
                        fingerprint,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Lines and bytes queued now.
    pub fn len(&self) -> (u64, u64) {
        let g = self.lock();
        (g.rows, g.bytes)
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len().0 == 0
    }

    /// Block up to `timeout` for a push (returns early on any push).
    pub(crate) fn wait_for_push(&self, timeout: Duration) {
        let g = self.pushes.lock().unwrap_or_else(|p| p.into_inner());
        let start = *g;
        let guard = match self.pushed.wait_timeout_while(g, timeout, |n| *n == start) {
            Ok(r) => r.0,
            Err(p) => p.into_inner().0,
        };
        drop(guard);
    }

    /// Wake a shipper blocked in `wait_for_push` (used on shutdown).
    pub(crate) fn wake(&self) {
        let mut n = self.pushes.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.wrapping_add(1);
        self.pushed.notify_all();
    }

    /// A snapshot of every counter and the shipper's last outcome.
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        Stats::from_parts(g.rows, g.bytes, &g.counters, &g.state)
    }
}

enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(i64),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if v > SCHEMA_VERSION {
        return Err(MigrateError::TooNew(v));
    }
    if v == 0 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS queue (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 line TEXT NOT NULL,
                 bytes INTEGER NOT NULL,
                 enqueued_unix INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS counters (
                 name TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS state (
                 name TEXT PRIMARY KEY,
                 value TEXT
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS cursors (
                 source TEXT PRIMARY KEY,
                 dev INTEGER NOT NULL,
                 ino INTEGER NOT NULL,
                 offset INTEGER NOT NULL,
                 updated_unix INTEGER NOT NULL
             ) WITHOUT ROWID;
             PRAGMA user_version = 1;",
        )?;
        tx.commit()?;
    }
    if v < 2 {
        // 2: the tailer's fingerprint with the cursor, so a restart never
        // takes another file for the results log.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "ALTER TABLE cursors ADD COLUMN fingerprint BLOB;
             PRAGMA user_version = 2;",
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn load_counters(conn: &Connection) -> rusqlite::Result<Counters> {
    let mut c = Counters::default();
    let mut stmt = conn.prepare("SELECT name, value FROM counters")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (name, v) = row?;
        c.set(&name, u64::try_from(v).unwrap_or(0));
    }
    Ok(c)
}

fn save_counters(conn: &Connection, old: &Counters, new: &Counters) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO counters(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = ?2",
    )?;
    for ((name, o), (_, n)) in old.pairs().into_iter().zip(new.pairs()) {
        if o != n {
            stmt.execute(params![name, i64::try_from(n).unwrap_or(i64::MAX)])?;
        }
    }
    Ok(())
}

fn state_pairs(s: &ShipState) -> [(&'static str, Option<String>); 7] {
    [
        ("last_status", s.last_status.map(|v| v.to_string())),
        // An error may quote a server's answer: never persist a secret.
        (
            "last_error",
            s.last_error
                .as_deref()
                .map(|e| crate::secrets::scrub(e).into_owned()),
        ),
        ("last_error_unix", s.last_error_unix.map(|v| v.to_string())),
        (
            "last_success_unix",
            s.last_success_unix.map(|v| v.to_string()),
        ),
        (
            "consecutive_failures",
            Some(s.consecutive_failures.to_string()),
        ),
        ("retry_at_unix", s.retry_at_unix.map(|v| v.to_string())),
        ("state", s.state.clone()),
    ]
}

fn load_state(conn: &Connection) -> rusqlite::Result<ShipState> {
    let mut s = ShipState::default();
    let mut stmt = conn.prepare("SELECT name, value FROM state")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for row in rows {
        let (name, v) = row?;
        match name.as_str() {
            "last_status" => s.last_status = v.and_then(|x| x.parse().ok()),
            "last_error" => s.last_error = v,
            "last_error_unix" => s.last_error_unix = v.and_then(|x| x.parse().ok()),
            "last_success_unix" => s.last_success_unix = v.and_then(|x| x.parse().ok()),
            "consecutive_failures" => {
                s.consecutive_failures = v.and_then(|x| x.parse().ok()).unwrap_or(0)
            }
            "retry_at_unix" => s.retry_at_unix = v.and_then(|x| x.parse().ok()),
            "state" => s.state = v,
            _ => {}
        }
    }
    Ok(s)
}

fn save_state(conn: &Connection, old: &ShipState, new: &ShipState) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO state(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = ?2",
    )?;
    for ((name, o), (_, n)) in state_pairs(old).into_iter().zip(state_pairs(new)) {
        if o != n {
            stmt.execute(params![name, n])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::NameFilter;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicUsize;

    static N: AtomicUsize = AtomicUsize::new(0);

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ka-sentinel-q-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d.join("sub").join("q.db")
    }

    fn line(i: usize) -> String {
        format!(r#"{{"name":"pack/Global/keychain_credential_access","eid":"e{i}"}}"#)
    }

    #[test]
    fn push_peek_ack_and_reopen() {
        let p = tmp();
        {
            let q = Queue::open(&p, QueueLimits::default()).expect("open");
            for i in 0..5 {
                assert_eq!(q.push(&line(i)).expect("push"), Offer::Queued);
            }
            let b = q.peek_batch(1_000_000).expect("peek");
            assert_eq!(b.len(), 5);
            q.ack(&[b[0].0, b[1].0]).expect("ack");
            assert_eq!(q.len().0, 3);
        }
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(p.parent().expect("dir"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let q = Queue::open(&p, QueueLimits::default()).expect("reopen");
        let b = q.peek_batch(1_000_000).expect("peek");
        assert_eq!(
            b.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
            vec![line(2), line(3), line(4)]
        );
        let s = q.stats();
        assert_eq!((s.accepted, s.delivered, s.queued_rows), (5, 2, 3));
        assert!(s.last_success_unix.is_some());
        let _ = std::fs::remove_dir_all(p.parent().and_then(|d| d.parent()).expect("root"));
    }

    #[test]
    fn peek_respects_bytes() {
        let p = tmp();
        let q = Queue::open(&p, QueueLimits::default()).expect("open");
        for i in 0..10 {
            q.push(&line(i)).expect("push");
        }
        let l = line(0).len();
        // Exactly three lines: 2 + 3*l + 2 commas.
        let b = q.peek_batch(2 + 3 * l + 2).expect("peek");
        assert_eq!(b.len(), 3);
        let b = q.peek_batch(2 + 3 * l + 1).expect("peek");
        assert_eq!(b.len(), 2);
        // Always at least one.
        assert_eq!(q.peek_batch(1).expect("peek").len(), 1);
    }

    #[test]
    fn bound_drops_newest_and_counts() {
        let p = tmp();
        let limits = QueueLimits {
            max_rows: 3,
            ..QueueLimits::default()
        };
        let q = Queue::open(&p, limits.clone()).expect("open");
        let offers: Vec<Offer> = (0..5).map(|i| q.push(&line(i)).expect("push")).collect();
        assert_eq!(&offers[..3], &[Offer::Queued; 3]);
        assert_eq!(&offers[3..], &[Offer::DroppedAtBound; 2]);
        assert_eq!(q.stats().dropped_at_bound, 2);
        drop(q);
        let q = Queue::open(&p, limits).expect("reopen");
        assert_eq!(q.stats().dropped_at_bound, 2, "persisted");
        let b = q.peek_batch(1_000_000).expect("peek");
        assert_eq!(b[0].1, line(0), "drop-newest keeps the oldest");
    }

    #[test]
    fn invalid_filtered_too_large() {
        let p = tmp();
        let limits = QueueLimits {
            max_line_bytes: 100,
            filter: NameFilter::new(&["*keychain*".to_string()]).expect("filter"),
            ..QueueLimits::default()
        };
        let q = Queue::open(&p, limits).expect("open");
        let big = format!(r#"{{"name":"keychain","pad":"{}"}}"#, "x".repeat(200));
        let offers = q
            .push_lines(&[
                "not json",
                "[1,2]",
                r#"{"name":"other"}"#,
                &big,
                "",
                &line(1),
            ])
            .expect("push");
        assert_eq!(
            offers,
            vec![
                Offer::Invalid,
                Offer::Invalid,
                Offer::Filtered,
                Offer::TooLarge,
                Offer::Queued
            ]
        );
        let s = q.stats();
        assert_eq!(
            (
                s.dropped_invalid,
                s.filtered,
                s.dropped_too_large,
                s.accepted
            ),
            (2, 1, 1, 1)
        );
        let (o, _) = q
            .ingest(&[&[0xff, 0xfe][..]], 0, None, None)
            .expect("ingest");
        assert_eq!(o, vec![Offer::Invalid]);
    }

    #[test]
    fn second_opener_refused_and_schema_versioned() {
        let p = tmp();
        let q = Queue::open(&p, QueueLimits::default()).expect("open");
        let e = Queue::open(&p, QueueLimits::default()).expect_err("locked");
        assert!(e.to_string().contains("in use by another process"), "{e}");
        drop(q);
        {
            let c = Connection::open(&p).expect("raw");
            c.execute_batch("PRAGMA user_version = 9").expect("bump");
        }
        let e = Queue::open(&p, QueueLimits::default()).expect_err("too new");
        assert!(e.to_string().contains("schema version 9"), "{e}");
    }

    #[test]
    fn cursor_committed_with_lines() {
        let p = tmp();
        let q = Queue::open(&p, QueueLimits::default()).expect("open");
        assert_eq!(q.cursor("f").expect("cursor"), None);
        let c = FileCursor {
            dev: 1,
            ino: u64::MAX - 1,
            offset: 42,
            fingerprint: Fingerprint::from_slice(&[9; Fingerprint::LEN]),
        };
        let l = line(0);
        q.ingest(&[l.as_bytes()], 0, Some(("f", c)), None)
            .expect("ingest");
        assert_eq!(q.cursor("f").expect("cursor"), Some(c));
        assert_eq!(q.len().0, 1);
    }

    #[test]
    fn a_version_one_cursor_is_read_without_a_fingerprint_and_new_ones_carry_it() {
        let p = tmp();
        let q = Queue::open(&p, QueueLimits::default()).expect("open");
        let old = FileCursor {
            dev: 3,
            ino: 4,
            offset: 5,
            fingerprint: None,
        };
        q.ingest(&[], 0, Some(("f", old)), None).expect("ingest");
        drop(q);
        {
            // Back to the version 1 schema, as a queue written then is.
            let c = Connection::open(&p).expect("raw");
            c.execute_batch(
                "ALTER TABLE cursors DROP COLUMN fingerprint; PRAGMA user_version = 1;",
            )
            .expect("downgrade");
        }
        let q = Queue::open(&p, QueueLimits::default()).expect("upgrade");
        assert_eq!(
            q.cursor("f").expect("cursor"),
            Some(old),
            "trusted as before"
        );
        let new = FileCursor {
            offset: 9,
            fingerprint: Fingerprint::from_slice(&[1; Fingerprint::LEN]),
            ..old
        };
        q.ingest(&[], 0, Some(("f", new)), None).expect("ingest");
        assert_eq!(q.cursor("f").expect("cursor"), Some(new));
        drop(q);
        let c = Connection::open(&p).expect("raw");
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
        // A fingerprint no version wrote: a clear error, not a guess.
        c.execute("UPDATE cursors SET fingerprint = x'01'", [])
            .expect("corrupt");
        drop(c);
        let q = Queue::open(&p, QueueLimits::default()).expect("open");
        let e = q.cursor("f").expect_err("bad fingerprint").to_string();
        assert!(e.contains("1 bytes, not 32"), "{e}");
    }

    #[test]
    fn records_carry_bidi_and_zero_width_characters_as_visible_escapes() {
        let p = tmp();
        let q = Queue::open(&p, QueueLimits::default()).unwrap();
        // Raw U+202E in one line, a JSON \u escape of U+200B in another.
        let raw = "{\"name\":\"n\",\"columns\":{\"path\":\"invoice\u{202e}gpj.app\"}}";
        let escaped = r#"{"name":"n","columns":{"path":"a\u200bb"}}"#;
        let plain = r#"{"name":"n","columns":{"path":"/usr/bin/security"}}"#;
        q.push_lines(&[raw, escaped, plain]).unwrap();
        let got: Vec<String> = q
            .peek_batch(1 << 20)
            .unwrap()
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        let paths: Vec<String> = got
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["columns"]["path"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            paths,
            [
                "invoice\\u{202e}gpj.app",
                "a\\u{200b}b",
                "/usr/bin/security"
            ]
        );
        assert_eq!(got[2], plain, "a clean line is queued byte for byte");
        let _ = std::fs::remove_dir_all(p.parent().unwrap().parent().unwrap());
    }
}
