//! The SQLite buffer behind the osquery table.
//!
//! Rows are collected continuously and answered from here. Conventions from
//! cargo's `util/sqlite.rs`: the schema is versioned with `user_version`,
//! migrations run in one exclusive transaction and are never edited (add a
//! new one instead; a test checks that the migrated table has exactly the
//! columns of [`crate::schema::COLUMNS`]); WAL so readers never block the
//! writer. The file is created 0600 in a directory owned by the running
//! user and not writable by group or others (refused otherwise).
//!
//! Rows and a source's read offset are committed in one transaction, and
//! `eid` is unique, so a kill -9 at any moment loses no committed row and a
//! restart stores no row twice.
//!
//! Retention (defaults, documented in the README): rows older than
//! [`DEFAULT_MAX_AGE_SECS`] and beyond the newest [`DEFAULT_MAX_ROWS`] are
//! deleted.

use crate::constraints::{where_clause, Constraint};
use crate::schema::{column_list, KeychainAccess, Value, COLUMNS};
use crate::tail::Fingerprint;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, TransactionBehavior,
};
use std::path::{Path, PathBuf};

/// Default retention by age: 7 days.
pub const DEFAULT_MAX_AGE_SECS: i64 = 7 * 24 * 3600;
/// Default retention by count: the newest 1,000,000 rows.
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;
/// Default cap on rows returned by one generate.
pub const DEFAULT_MAX_RESULT_ROWS: usize = 10_000;

/// The table name inside the buffer.
pub const EVENTS_TABLE: &str = "keychain_access_events";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database directory {path}: {msg}")]
    UnsafeDirectory { path: String, msg: String },
    #[error("database {path}: {msg}")]
    UnsafeFile { path: String, msg: String },
    #[error("io on {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("database {path} has schema version {found}, newer than this build ({supported})")]
    TooNew {
        path: String,
        found: i64,
        supported: usize,
    },
}

type Migration = &'static str;

/// Never edit a migration; append one.
const MIGRATIONS: &[Migration] = &[
    // 1: the events table (columns as of schema v1) and its indexes.
    "CREATE TABLE keychain_access_events (
    time BIGINT,
    eid TEXT,
    source TEXT,
    event_type TEXT,
    pid BIGINT,
    pidversion BIGINT,
    ppid BIGINT,
    parent_pidversion BIGINT,
    uid BIGINT,
    auid BIGINT,
    username TEXT,
    path TEXT,
    cmdline TEXT,
    cwd TEXT,
    parent_path TEXT,
    parent_cmdline TEXT,
    ancestors TEXT,
    responsible_path TEXT,
    signing_id TEXT,
    team_id TEXT,
    cdhash TEXT,
    signer TEXT,
    platform_binary INTEGER,
    action TEXT,
    verb TEXT,
    target_path TEXT,
    destination_path TEXT,
    keychain_dump INTEGER,
    password_query INTEGER,
    cert_export INTEGER,
    reveals_secret INTEGER,
    allowlisted INTEGER,
    allow_reason TEXT,
    severity TEXT,
    reason TEXT,
    technique TEXT,
    message TEXT,
    correlation_id TEXT,
    es_version INTEGER,
    global_seq_num BIGINT
);
CREATE UNIQUE INDEX keychain_access_events_eid ON keychain_access_events(eid);
CREATE INDEX keychain_access_events_time ON keychain_access_events(time);",
    // 2: per-source read offsets (committed with the rows they produced) and
    // an index for pid lookups.
    "CREATE TABLE source_offsets (
    source TEXT PRIMARY KEY,
    file_id TEXT,
    offset INTEGER NOT NULL,
    updated BIGINT
);
CREATE INDEX keychain_access_events_pid ON keychain_access_events(pid);",
    // 3: a tailed file's fingerprint (the digest of the bytes before the
    // offset), so a restart never takes another file for it. NULL in rows
    // written before: trusted on `file_id` alone.
    "ALTER TABLE source_offsets ADD COLUMN fingerprint BLOB;",
];

/// Where a source stopped reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOffset {
    pub source: String,
    /// Identity of the file (device and inode), to notice rotation.
    pub file_id: String,
    pub offset: u64,
    /// A tailed file's [`Fingerprint`]: None for other sources and for
    /// offsets stored before fingerprints existed.
    pub fingerprint: Option<Fingerprint>,
}

/// The buffer.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

/// Pragmas run outside any transaction (WAL cannot be set inside one).
fn setup_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let version: i64 = tx.query_row("SELECT user_version FROM pragma_user_version", [], |r| {
        r.get(0)
    })?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found: version,
            supported: MIGRATIONS.len(),
        });
    }
    let from = usize::try_from(version).unwrap_or(0);
    for m in MIGRATIONS.iter().skip(from) {
        tx.execute_batch(m)?;
    }
    if from < MIGRATIONS.len() {
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// Refuse a database directory that others could tamper with (see
/// [`crate::state_file::check_dir`]).
#[cfg(unix)]
pub fn check_directory(dir: &Path) -> Result<(), StoreError> {
    crate::state_file::check_dir(dir).map_err(|e| StoreError::UnsafeDirectory {
        path: e.path.display().to_string(),
        msg: e.msg,
    })
}

impl Store {
    /// Open (creating if needed) the buffer at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        #[cfg(unix)]
        {
            check_directory(dir)?;
            // Created 0600, never through a symlink; the folder is ours, so
            // the name cannot be swapped before SQLite opens it.
            crate::state_file::open(path, true).map_err(|e| StoreError::UnsafeFile {
                path: e.path.display().to_string(),
                msg: e.msg,
            })?;
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        setup_pragmas(&conn)?;
        migrate(&mut conn, &path.display().to_string())?;
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
        })
    }

    /// An in-memory buffer (offline scans and `query`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn, ":memory:")?;
        Ok(Store { conn, path: None })
    }

    /// A separate read-only connection for answering queries concurrently.
    pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, mutably (to install an authorizer, say).
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Insert rows and (optionally) a source offset in one transaction.
    /// Rows whose `eid` is already stored are skipped. Returns rows added.
    pub fn insert(
        &mut self,
        rows: &[KeychainAccess],
        offset: Option<&SourceOffset>,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            let placeholders = vec!["?"; COLUMNS.len()].join(",");
            let sql = format!(
                "INSERT OR IGNORE INTO {EVENTS_TABLE} ({}) VALUES ({placeholders})",
                column_list()
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            for r in rows {
                added += stmt.execute(params_from_iter(r.values()))?;
            }
        }
        if let Some(o) = offset {
            tx.execute(
                "INSERT INTO source_offsets (source, file_id, offset, fingerprint, updated) VALUES (?1, ?2, ?3, ?4, strftime('%s','now'))
                 ON CONFLICT(source) DO UPDATE SET file_id = excluded.file_id, offset = excluded.offset, fingerprint = excluded.fingerprint, updated = excluded.updated",
                params![
                    o.source,
                    o.file_id,
                    i64::try_from(o.offset).unwrap_or(i64::MAX),
                    o.fingerprint.as_ref().map(|f| f.as_bytes().as_slice())
                ],
            )?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Set `correlation_id` on stored rows (by `eid`) that a later row was
    /// correlated with (see `correlate`). One transaction; returns rows
    /// changed. Unknown eids (rows pruned, or never stored) are ignored.
    pub fn apply_correlation_updates(
        &mut self,
        updates: &[crate::correlate::CorrelationUpdate],
    ) -> Result<usize, StoreError> {
        if updates.is_empty() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = 0;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE {EVENTS_TABLE} SET correlation_id = ?1 WHERE eid = ?2"
            ))?;
            for u in updates {
                changed += stmt.execute(params![u.correlation_id, u.eid])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Where a source stopped, if it ever committed.
    pub fn source_offset(&self, source: &str) -> Result<Option<SourceOffset>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT source, file_id, offset, fingerprint FROM source_offsets WHERE source = ?1",
                [source],
                |r| {
                    let fingerprint: Option<Fingerprint> = r.get(3)?;
                    Ok(SourceOffset {
                        source: r.get(0)?,
                        file_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        offset: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        fingerprint,
                    })
                },
            )
            .optional()?)
    }

    /// Rows matching the constraints, oldest first, at most `limit`.
    /// Returns the rows and whether the limit cut the result.
    pub fn query(
        &self,
        constraints: &[Constraint],
        limit: usize,
    ) -> Result<(Vec<KeychainAccess>, bool), StoreError> {
        query_conn(&self.conn, constraints, limit)
    }

    /// Apply retention. Returns rows deleted.
    ///
    /// Age is measured back from `min(now, newest row)`: on a live Mac the
    /// newest row is about now, while a replayed capture from last year keeps
    /// its rows instead of losing them all on the first pass (and a row
    /// stamped in the future cannot push every other row out).
    pub fn enforce_retention(
        &mut self,
        now: i64,
        max_age_secs: i64,
        max_rows: u64,
    ) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let newest: Option<i64> =
            tx.query_row(&format!("SELECT max(time) FROM {EVENTS_TABLE}"), [], |r| {
                r.get(0)
            })?;
        let reference = newest.map_or(now, |n| n.min(now));
        let mut deleted = tx.execute(
            &format!("DELETE FROM {EVENTS_TABLE} WHERE time < ?1"),
            [reference.saturating_sub(max_age_secs)],
        )? as u64;
        deleted += tx.execute(
            &format!(
                "DELETE FROM {EVENTS_TABLE} WHERE rowid IN
                 (SELECT rowid FROM {EVENTS_TABLE} ORDER BY time DESC, rowid DESC LIMIT -1 OFFSET ?1)"
            ),
            [i64::try_from(max_rows).unwrap_or(i64::MAX)],
        )? as u64;
        tx.commit()?;
        Ok(deleted)
    }

    pub fn row_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.conn
                .query_row(&format!("SELECT count(*) FROM {EVENTS_TABLE}"), [], |r| {
                    r.get(0)
                })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Database size in bytes (pages in use).
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Run a constrained query on any connection to a buffer.
pub fn query_conn(
    conn: &Connection,
    constraints: &[Constraint],
    limit: usize,
) -> Result<(Vec<KeychainAccess>, bool), StoreError> {
    let (clause, mut params) = where_clause(constraints);
    let sql = format!(
        "SELECT {} FROM {EVENTS_TABLE} WHERE {clause} ORDER BY time, rowid LIMIT ?",
        column_list()
    );
    params.push(Value::Int(
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows: Vec<KeychainAccess> = stmt
        .query_map(
            params_from_iter(params.iter()),
            KeychainAccess::from_sql_row,
        )?
        .collect::<Result<_, _>>()?;
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraints::parse_context;

    fn row(t: i64, eid: &str, pid: i64) -> KeychainAccess {
        KeychainAccess {
            time: Some(t),
            eid: Some(eid.into()),
            pid: Some(pid),
            action: Some(crate::schema::Action::KeychainRead),
            severity: Some(crate::schema::Severity::Medium),
            allowlisted: Some(0),
            ..Default::default()
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kca-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        d
    }

    #[test]
    fn migrated_table_has_exactly_the_schema_columns() {
        let s = Store::open_in_memory().unwrap();
        let mut stmt = s
            .conn
            .prepare(&format!("PRAGMA table_info({EVENTS_TABLE})"))
            .unwrap();
        let got: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want: Vec<(String, String)> = COLUMNS
            .iter()
            .map(|c| (c.name.to_string(), c.kind.sqlite_name().to_string()))
            .collect();
        assert_eq!(
            got, want,
            "schema.rs changed: add a migration that brings the table in line"
        );
    }

    #[test]
    fn upgrades_a_version_one_database_keeping_rows() {
        let d = tempdir("migrate");
        let path = d.join("buffer.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                &format!("INSERT INTO {EVENTS_TABLE} (time, eid, pid) VALUES (5, 'old', 7)"),
                [],
            )
            .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.row_count().unwrap(), 1);
        let v: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        // Version 2 features work on the upgraded file.
        s.insert(
            &[row(6, "new", 8)],
            Some(&SourceOffset {
                source: "f".into(),
                file_id: "1:2".into(),
                offset: 10,
                fingerprint: None,
            }),
        )
        .unwrap();
        assert_eq!(s.source_offset("f").unwrap().unwrap().offset, 10);
        drop(s);
        // Opening twice is a no-op.
        let s = Store::open(&path).unwrap();
        assert_eq!(s.row_count().unwrap(), 2);
    }

    #[test]
    fn offsets_stored_before_fingerprints_read_back_without_one_and_new_ones_carry_it() {
        let d = tempdir("fingerprint");
        let path = d.join("buffer.db");
        {
            // A buffer as version 2 wrote it, with a file source's offset.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute(
                "INSERT INTO source_offsets (source, file_id, offset, updated) \
                 VALUES ('file:x', '5:9', 42, 0)",
                [],
            )
            .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        let old = s.source_offset("file:x").unwrap().unwrap();
        assert_eq!(
            old,
            SourceOffset {
                source: "file:x".into(),
                file_id: "5:9".into(),
                offset: 42,
                fingerprint: None,
            }
        );
        let log = d.join("x.log");
        std::fs::write(&log, "a\nb\n").unwrap();
        let f = crate::tail::Fingerprint::of(&std::fs::File::open(&log).unwrap(), 4).unwrap();
        let new = SourceOffset {
            offset: 4,
            fingerprint: Some(f),
            ..old
        };
        s.insert(&[], Some(&new)).unwrap();
        assert_eq!(s.source_offset("file:x").unwrap(), Some(new));
        // A fingerprint no version wrote: a clear error, not a guess.
        s.conn
            .execute(
                "UPDATE source_offsets SET fingerprint = x'0102' WHERE source = 'file:x'",
                [],
            )
            .unwrap();
        let e = s.source_offset("file:x").unwrap_err().to_string();
        assert!(e.contains("2 bytes, not 32"), "{e}");
    }

    #[test]
    fn refuses_newer_schema_and_unsafe_directories() {
        let d = tempdir("newer");
        let path = d.join("b.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let w = tempdir("worldwritable");
            std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o777)).unwrap();
            let e = Store::open(&w.join("b.db")).err().unwrap().to_string();
            assert!(e.contains("writable by group or others"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_neither_followed_nor_chmodded() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempdir("dblink");
        let victim = d.join("victim");
        std::fs::write(&victim, "important").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        // As the database itself.
        let db = d.join("buffer.db");
        std::os::unix::fs::symlink(&victim, &db).unwrap();
        let e = Store::open(&db).err().unwrap().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // And where the old uid probe lived: `$TMPDIR/.kca-uid-<pid>`,
        // which root used to create+truncate through a planted link.
        let probe = std::env::temp_dir().join(format!(".kca-uid-{}", std::process::id()));
        let _ = std::fs::remove_file(&probe);
        std::os::unix::fs::symlink(&victim, &probe).unwrap();
        let fresh = tempdir("dbfresh");
        let opened = Store::open(&fresh.join("b.db"));
        let _ = std::fs::remove_file(&probe);
        opened.unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "important");
        assert_eq!(
            std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[cfg(unix)]
    #[test]
    fn database_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempdir("mode");
        let path = d.join("b.db");
        let _s = Store::open(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn duplicates_are_ignored_and_constraints_select() {
        let mut s = Store::open_in_memory().unwrap();
        let rows: Vec<_> = (0..100)
            .map(|i| row(1000 + i, &format!("e{i}"), i % 7))
            .collect();
        assert_eq!(s.insert(&rows, None).unwrap(), 100);
        assert_eq!(s.insert(&rows, None).unwrap(), 0);
        let c = parse_context(r#"{"constraints":[{"name":"time","list":[{"op":32,"expr":"1010"},{"op":16,"expr":"1020"}]},{"name":"pid","list":[{"op":2,"expr":"3"}]}]}"#).unwrap();
        let (got, truncated) = s.query(&c, 1000).unwrap();
        assert!(!truncated);
        let want: Vec<i64> = (1010..1020).filter(|t| (t - 1000) % 7 == 3).collect();
        assert_eq!(
            got.iter().map(|r| r.time.unwrap()).collect::<Vec<_>>(),
            want
        );
        let (got, truncated) = s.query(&[], 10).unwrap();
        assert_eq!(got.len(), 10);
        assert!(truncated);
    }

    /// A row another version wrote with an action this one does not know:
    /// the query fails, naming the value, rather than answering without it.
    #[test]
    fn an_unknown_stored_action_fails_the_query_instead_of_vanishing() {
        let mut s = Store::open_in_memory().unwrap();
        s.insert(&[row(1000, "e1", 1), row(1001, "e2", 1)], None)
            .unwrap();
        s.conn
            .execute(
                &format!("UPDATE {EVENTS_TABLE} SET action = 'keychain_teleport' WHERE eid = 'e2'"),
                [],
            )
            .unwrap();
        let e = s.query(&[], 10).unwrap_err().to_string();
        assert!(e.contains("keychain_teleport"), "{e}");
    }

    #[test]
    fn retention_by_age_and_count() {
        let mut s = Store::open_in_memory().unwrap();
        let rows: Vec<_> = (0..50)
            .map(|i| row(1000 + i, &format!("e{i}"), 1))
            .collect();
        s.insert(&rows, None).unwrap();
        let deleted = s.enforce_retention(1040, 30, 1_000).unwrap();
        assert_eq!(deleted, 10); // times 1000..1009 are older than 1010
                                 // An old capture (newest row 1049) seen from a much later `now`: age
                                 // counts back from the newest row, so nothing more goes.
        assert_eq!(s.enforce_retention(9_999_999, 40, 1_000).unwrap(), 0);
        let deleted = s.enforce_retention(1040, 1_000, 15).unwrap();
        assert_eq!(deleted, 25);
        let (left, _) = s.query(&[], 100).unwrap();
        assert_eq!(left.first().unwrap().time, Some(1035));
    }
}
