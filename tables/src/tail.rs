//! Following a log file someone else writes, the one way: the extension's
//! file source and the Sentinel forwarder both run a [`Tailer`], and differ
//! only in their [`TailSink`] (what consumes the lines and where the
//! position is committed).
//!
//! * Reading starts at the beginning of the file the first time, and at the
//!   committed [`FilePosition`] (device, inode, offset) after a restart.
//! * Appends are followed every `poll`. A line is delivered only once its
//!   newline is there ([`crate::lines`]): an unfinished last line is never
//!   split, and the committed offset is always a line start.
//! * Rotation by rename (then a new file at the path): the old file is
//!   drained to its end (its unfinished last line is then a line), and the
//!   new one is read from the start. If the rename happened while nothing
//!   was running, the committed file is looked for in the same folder (a
//!   rotated name with its identity and fingerprint, see below), drained
//!   from the committed offset, then the new one is read.
//! * Copy-truncate (the file shrinks below the read position): reading
//!   restarts at 0, counted in [`TailCounters::truncations`]; lines written
//!   between the last read and the truncation cannot be recovered.
//! * Each of these is a [`Switch`] handed to the sink, and
//!   [`TailCounters::count`] is the one place a switch becomes a counter
//!   (rotations, truncations, rotated files lost): the tailer keeps its own
//!   [`TailCounters`], and a sink that shows or persists them counts the
//!   switches it is handed the same way (the extension's status row, the
//!   forwarder's queue, in the same transaction as the position).
//! * A file that does not exist yet is waited for.
//! * The stop flag is checked between reads and while waiting.
//!
//! What identifies the file across a restart is device, inode and a
//! [`Fingerprint`]: a SHA-256 digest of the (up to)
//! [`FINGERPRINT_WINDOW`] bytes just before the committed offset, taken
//! from the file when the position is made. Device and inode alone are not
//! an identity: a file system may give a deleted file's inode to the next
//! file created in the folder (a new log, or the forwarder's own SQLite
//! `-wal`/`-shm` files when the queue sits beside the log). So before
//! reading from the committed offset, the bytes before it are read again
//! from the candidate and must digest to the fingerprint:
//!
//! * At the path: the same inode with other bytes before the offset was
//!   rewritten in place or is a new file that got the freed inode; it is
//!   read from the start, counted as a truncation (as a file shorter than
//!   the offset is).
//! * In the folder (rotated while stopped): a candidate must be a regular
//!   file (not a link) whose name is a rotated name of the tailed file (it
//!   starts with the file's name, or the name a symbolic link at the path
//!   points to, followed by `.`, `-` or `_`: logrotate's
//!   `x.log.1` and `x.log-20261201`, newsyslog's `x.log.0`; not a
//!   compressed one, `.gz`, `.bz2`, `.xz`, `.zst`, `.lz4`, `.Z`, which
//!   cannot be read as lines), with the committed identity and the
//!   fingerprint, both checked on the open handle. Any other file with the
//!   inode is not the file: the rotated one is counted lost
//!   ([`Switch::RotatedLost`]) and a warning names what was found.
//!
//! The digest covers the bytes before the offset, not the file's head: it
//! vouches for exactly what the position claims was consumed, and it
//! tells a copy-truncated file that grew past the offset again from the
//! one that was read. A position at offset 0 covers no bytes (nothing was
//! read, nothing can be compared); there the name rule alone applies. A
//! position persisted before fingerprints existed (`fingerprint: None`)
//! is trusted on device and inode as it was then (the name rule still
//! applies in the folder); the next commit carries a fingerprint.
//!
//! The file is opened like any log (`File::open`): a symbolic link at the
//! path is followed, and the identity checked is always that of the file
//! actually read (the link's target). The tailer only reads it.

use crate::lines::{LineBatch, LineSplitter};
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How many bytes before a committed offset its [`Fingerprint`] covers (all
/// of them below this offset). One page: a single read, of bytes just read
/// and so still cached; several lines of a typical log, so two unrelated
/// files do not share them.
pub const FINGERPRINT_WINDOW: u64 = 4096;

/// A SHA-256 digest of the bytes just before a committed offset (see the
/// module docs). A digest, not the bytes: the state it is persisted in
/// must not hold a copy of log lines.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

/// Read back from SQLite (the extension buffer's `source_offsets`, the
/// forwarder's `cursors`): a blob of another length was written by no
/// version of this code, so it is a clear error, not a guess at where to
/// resume.
impl rusqlite::types::FromSql for Fingerprint {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let b = v.as_blob()?;
        Fingerprint::from_slice(b).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!(
                    "a stored tail-position fingerprint of {} bytes, not {}",
                    b.len(),
                    Fingerprint::LEN
                )
                .into(),
            )
        })
    }
}

impl Fingerprint {
    /// Its length in bytes, as persisted.
    pub const LEN: usize = 32;

    /// The digest, as persisted.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// A persisted digest; None when it is not [`Fingerprint::LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Fingerprint> {
        bytes.try_into().ok().map(Fingerprint)
    }

    /// The fingerprint of the position `offset` in `file`: the digest of up
    /// to [`FINGERPRINT_WINDOW`] bytes before it. If the file no longer
    /// holds them all (truncated meanwhile), the digest is of the bytes it
    /// holds, and no later read of the full window matches it: a restart
    /// then reads the file from the start, as for any truncation.
    pub fn of(file: &File, offset: u64) -> io::Result<Fingerprint> {
        let start = offset.saturating_sub(FINGERPRINT_WINDOW);
        let want = usize::try_from(offset - start).unwrap_or(0);
        let mut buf = [0u8; FINGERPRINT_WINDOW as usize];
        let mut got = 0;
        while got < want {
            let Some(rest) = buf.get_mut(got..want) else {
                break;
            };
            match file.read_at(rest, start + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Fingerprint(
            Sha256::digest(buf.get(..got).unwrap_or(&[])).into(),
        ))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprint(")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// Where a tailer is in a file: its identity and the offset of the first
/// byte not yet consumed (always a line start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePosition {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    pub offset: u64,
    /// The bytes before `offset` (see the module docs). Every position the
    /// tailer makes has one; None only for a position persisted before
    /// fingerprints existed, trusted on device and inode alone.
    pub fingerprint: Option<Fingerprint>,
}

impl FilePosition {
    fn same_file(&self, meta: &std::fs::Metadata) -> bool {
        (self.dev, self.ino) == (meta.dev(), meta.ino())
    }

    /// Whether `file` (already known to have this identity and to be at
    /// least `offset` long) holds the bytes this position was made after.
    fn content_matches(&self, file: &File) -> io::Result<bool> {
        match self.fingerprint {
            None => Ok(true),
            Some(f) => Ok(Fingerprint::of(file, self.offset)? == f),
        }
    }
}

/// Whether `candidate`, a name in the tailed file's folder, is a name a
/// rotation gives the file named `name`: `name` followed by `.`, `-` or
/// `_` and more (logrotate's `x.log.1`, `x.log-20261201`; newsyslog's
/// `x.log.0`), and not compressed (a compressed file cannot be read as
/// lines). logrotate's `extension` option (`x.1.log`) is not recognised:
/// such a file is counted lost rather than guessed at.
pub fn is_rotated_name(name: &OsStr, candidate: &OsStr) -> bool {
    const COMPRESSED: [&str; 6] = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z"];
    let (name, candidate) = (name.as_encoded_bytes(), candidate.as_encoded_bytes());
    let Some(rest) = candidate.strip_prefix(name) else {
        return false;
    };
    matches!(rest.first(), Some(b'.' | b'-' | b'_'))
        && rest.len() > 1
        && !COMPRESSED.iter().any(|c| candidate.ends_with(c.as_bytes()))
}

/// Why reading (re)starts in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// First run: no committed position.
    First,
    /// At the committed position (or a rotated file found by its identity
    /// and fingerprint).
    Resumed,
    /// The path names a new file after a rename; the old one was drained
    /// (while running, or found by its identity and fingerprint after a
    /// restart).
    Rotated,
    /// After a restart the path names a new file and the committed one is
    /// no longer in its folder (nothing, or only another file given its
    /// inode, is there): its lines after the committed offset are lost;
    /// the new file is read from the start.
    RotatedLost,
    /// The file shrank below the read position, or after a restart holds
    /// other bytes before the committed offset: from the start again.
    Truncated,
}

/// What consumes a tailer's lines and commits its position.
pub trait TailSink {
    type Error;

    /// The lines one read completed, and the position just after the last
    /// of them. Consume the lines and commit the position together (one
    /// transaction): a restart resumes there, losing and repeating nothing.
    fn lines(&mut self, batch: LineBatch, at: FilePosition) -> Result<(), Self::Error>;

    /// Reading (re)starts at `at` in a file, nothing new consumed: commit
    /// `at` (and reset what depends on the file, such as sequence tracking).
    fn switched(&mut self, at: FilePosition, why: Switch) -> Result<(), Self::Error>;

    /// At the end of the file, before waiting for more (periodic work).
    fn idle(&mut self) {}

    /// The file does not exist (yet): called at every poll while waiting.
    fn waiting(&mut self, _error: &io::Error) {}
}

/// A tailer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailOptions {
    /// How often to look for appends, rotation and truncation at the end of
    /// the file, and for the file while it does not exist.
    pub poll: Duration,
    /// Lines longer than this are skipped and counted (never buffered whole).
    pub max_line: usize,
    /// Bytes read at a time (and so the most one batch spans).
    pub read_chunk: usize,
    /// The log target of the tailer's status lines (start, resume,
    /// rotation, truncation): the user's, so its log filter shows them.
    pub log_target: &'static str,
}

/// What a tailer saw happen to its file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TailCounters {
    /// Rotations by rename followed (while running or found after a restart).
    pub rotations: u64,
    /// Times the file shrank below the read position (copy-truncate), or
    /// held other bytes before the committed offset after a restart.
    pub truncations: u64,
    /// Restarts that found a new file at the path and the committed one no
    /// longer in its folder (nothing, or only another file given its inode):
    /// its lines after the committed offset are lost.
    pub rotated_lost: u64,
}

impl TailCounters {
    /// Count one switch: the one mapping from what happened to a counter.
    pub fn count(&mut self, why: Switch) {
        match why {
            Switch::Rotated => self.rotations += 1,
            Switch::Truncated => self.truncations += 1,
            Switch::RotatedLost => self.rotated_lost += 1,
            Switch::First | Switch::Resumed => {}
        }
    }
}

/// A tailer's failure: reading the file, or the sink's own error.
#[derive(Debug)]
pub enum TailError<E> {
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    Sink(E),
}

impl<E: std::fmt::Display> std::fmt::Display for TailError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TailError::Io { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            TailError::Sink(e) => e.fmt(f),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for TailError<E> {}

/// One open file: the handle, its identity, and the splitter whose `fed`
/// offset is the handle's read position.
struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
    splitter: LineSplitter,
}

impl OpenFile {
    /// The position `offset` in this file, with its fingerprint (read from
    /// the file).
    fn position(&self, offset: u64) -> io::Result<FilePosition> {
        Ok(FilePosition {
            dev: self.dev,
            ino: self.ino,
            offset,
            fingerprint: Some(Fingerprint::of(&self.file, offset)?),
        })
    }
}

/// Follows one path (see the module docs).
pub struct Tailer {
    path: PathBuf,
    opts: TailOptions,
    counters: TailCounters,
    chunk: Vec<u8>,
}

type TailResult<T, E> = Result<T, TailError<E>>;

impl Tailer {
    pub fn new(path: impl Into<PathBuf>, opts: TailOptions) -> Self {
        let opts = TailOptions {
            read_chunk: opts.read_chunk.max(1),
            ..opts
        };
        Tailer {
            path: path.into(),
            opts,
            counters: TailCounters::default(),
            chunk: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn counters(&self) -> TailCounters {
        self.counters
    }

    fn io<E>(&self, what: &'static str, source: io::Error) -> TailError<E> {
        TailError::Io {
            what,
            path: self.path.clone(),
            source,
        }
    }

    /// Follow the file until `stop` is set, starting at `resume` (the last
    /// position the sink committed; None the first time). Returns on stop,
    /// on a read error (the sink's committed position is where to resume),
    /// or on the sink's error.
    pub fn run<S: TailSink>(
        &mut self,
        resume: Option<FilePosition>,
        sink: &mut S,
        stop: &AtomicBool,
    ) -> TailResult<(), S::Error> {
        let Some(mut cur) = self.first_open(resume, sink, stop)? else {
            return Ok(());
        };
        while !stop.load(Ordering::Acquire) {
            if self.pump(&mut cur, sink)? {
                continue;
            }
            // At the end of the file: rotated, truncated, or just quiet?
            match std::fs::metadata(&self.path) {
                Ok(m) if (m.dev(), m.ino()) != (cur.dev, cur.ino) => {
                    // What was written to the old file before the switch.
                    if !self.drain(&mut cur, sink, stop)? {
                        break;
                    }
                    match File::open(&self.path) {
                        Ok(f) => {
                            self.finish(&mut cur, sink)?;
                            log::info!(
                            target: self.opts.log_target,
                                            "{}: rotated; the old file is drained, following the new one",
                                            self.path.display()
                                        );
                            cur = self.open_at(f, 0)?;
                            let at = self.at(&cur, 0)?;
                            self.switch(sink, at, Switch::Rotated)?;
                            continue;
                        }
                        // Renamed, the new file not created yet: keep
                        // reading the old one.
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(self.io("opening", e)),
                    }
                }
                Ok(m) if m.len() < cur.splitter.fed() => {
                    log::warn!(
                    target: self.opts.log_target,
                            "{}: truncated (size {} < read offset {}); reading from the start \
                             (lines written between the last read and the truncation are lost)",
                            self.path.display(),
                            m.len(),
                            cur.splitter.fed()
                        );
                    cur.file
                        .seek(SeekFrom::Start(0))
                        .map_err(|e| self.io("rewinding", e))?;
                    cur.splitter.reset(0);
                    let at = self.at(&cur, 0)?;
                    self.switch(sink, at, Switch::Truncated)?;
                    continue;
                }
                Ok(_) => {}
                // Renamed away, nothing new at the path yet.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(self.io("stat", e)),
            }
            sink.idle();
            sleep_unless_stopped(self.opts.poll, stop);
        }
        Ok(())
    }

    /// Open the file at the committed position, draining first a file
    /// rotated away while nothing ran. None when stopped.
    fn first_open<S: TailSink>(
        &mut self,
        resume: Option<FilePosition>,
        sink: &mut S,
        stop: &AtomicBool,
    ) -> TailResult<Option<OpenFile>, S::Error> {
        let file = loop {
            match File::open(&self.path) {
                Ok(f) => break f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    sink.waiting(&e);
                    sink.idle();
                    if sleep_unless_stopped(self.opts.poll, stop) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(self.io("opening", e)),
            }
        };
        let meta = file.metadata().map_err(|e| self.io("stat", e))?;
        let mut why = Switch::First;
        match resume {
            Some(c) if c.same_file(&meta) => {
                let long_enough = meta.len() >= c.offset;
                let same_bytes = long_enough
                    && c.content_matches(&file)
                        .map_err(|e| self.io("reading", e))?;
                if same_bytes {
                    log::info!(
                        target: self.opts.log_target,
                        "{}: resuming at offset {}",
                        self.path.display(),
                        c.offset
                    );
                    let cur = self.open_at(file, c.offset)?;
                    let at = self.at(&cur, c.offset)?;
                    self.switch(sink, at, Switch::Resumed)?;
                    return Ok(Some(cur));
                }
                why = Switch::Truncated;
                if long_enough {
                    log::warn!(
                        target: self.opts.log_target,
                        "{}: the bytes before the committed offset {} are not the ones read \
                         (rewritten in place, or a new file given the old one's inode); \
                         reading from the start",
                        self.path.display(),
                        c.offset
                    );
                } else {
                    log::warn!(
                        target: self.opts.log_target,
                        "{}: shorter ({}) than the committed offset {}; it was truncated, \
                         reading from the start",
                        self.path.display(),
                        meta.len(),
                        c.offset
                    );
                }
            }
            Some(c) => match self.drain_rotated(c, sink, stop)? {
                Some(drained) => why = drained,
                None => return Ok(None),
            },
            None => log::info!(
                target: self.opts.log_target,
                "{}: first run; reading from the start",
                self.path.display()
            ),
        }
        let cur = self.open_at(file, 0)?;
        let at = self.at(&cur, 0)?;
        self.switch(sink, at, why)?;
        Ok(Some(cur))
    }

    /// Reading (re)starts at `at`: count the switch, then tell the sink.
    fn switch<S: TailSink>(
        &mut self,
        sink: &mut S,
        at: FilePosition,
        why: Switch,
    ) -> TailResult<(), S::Error> {
        self.counters.count(why);
        sink.switched(at, why).map_err(TailError::Sink)
    }

    /// The committed file is no longer at the path: find it in the same
    /// folder (a rotated name, the committed identity and fingerprint) and
    /// drain it. How the new file is reached: [`Switch::Rotated`] (drained)
    /// or [`Switch::RotatedLost`] (not found, or only other files with its
    /// inode); None when stopped meanwhile.
    fn drain_rotated<S: TailSink>(
        &mut self,
        c: FilePosition,
        sink: &mut S,
        stop: &AtomicBool,
    ) -> TailResult<Option<Switch>, S::Error> {
        let found = self.with_identity(c);
        // The path's name, and when the path is a symbolic link, its
        // target's (`app.log -> real.log` is rotated as `real.log.1`).
        let target = std::fs::read_link(&self.path).ok();
        let names: Vec<&OsStr> = [
            self.path.file_name(),
            target.as_deref().and_then(Path::file_name),
        ]
        .into_iter()
        .flatten()
        .collect();
        let rotated = found.iter().find(|p| {
            let candidate = p.file_name().unwrap_or_default();
            names.iter().any(|n| is_rotated_name(n, candidate))
        });
        let Some(old_path) = rotated.cloned() else {
            if found.is_empty() {
                log::warn!(
                    target: self.opts.log_target,
                    "{}: a new file, and the previous one (inode {}) is no longer in its \
                     folder; its lines after offset {} were not read",
                    self.path.display(),
                    c.ino,
                    c.offset
                );
            } else {
                let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
                log::warn!(
                    target: self.opts.log_target,
                    "{}: a new file, and the previous one (inode {}) is no longer in its \
                     folder; {} has its inode but is not a rotated name of the file, so it \
                     is not read; the previous file's lines after offset {} were not read",
                    self.path.display(),
                    c.ino,
                    names.join(", "),
                    c.offset
                );
            }
            return Ok(Some(Switch::RotatedLost));
        };
        let old = File::open(&old_path).map_err(|e| self.io("opening rotated", e))?;
        let meta = old.metadata().map_err(|e| self.io("stat", e))?;
        // Checked on the handle: the name may have changed since the search.
        // Gone meanwhile: as lost as if it had not been found.
        if !c.same_file(&meta) || !meta.is_file() {
            log::warn!(
                target: self.opts.log_target,
                "{}: the previous file (inode {}) left {} while being opened; \
                 its lines after offset {} were not read",
                self.path.display(),
                c.ino,
                old_path.display(),
                c.offset
            );
            return Ok(Some(Switch::RotatedLost));
        }
        // A rotated file only grows; then the bytes before the offset must
        // be the ones read, or another file got the freed inode.
        let same_bytes = meta.len() >= c.offset
            && c.content_matches(&old)
                .map_err(|e| self.io("reading rotated", e))?;
        if !same_bytes {
            log::warn!(
                target: self.opts.log_target,
                "{}: {} has the previous file's inode {} but not the bytes read before \
                 offset {}: another file got the inode, so it is not read; the previous \
                 file's lines after that offset were not read",
                self.path.display(),
                old_path.display(),
                c.ino,
                c.offset
            );
            return Ok(Some(Switch::RotatedLost));
        }
        log::info!(
            target: self.opts.log_target,
            "{}: rotated while stopped; draining {} from offset {}",
            self.path.display(),
            old_path.display(),
            c.offset
        );
        let mut cur = self.open_at(old, c.offset)?;
        let at = self.at(&cur, c.offset)?;
        self.switch(sink, at, Switch::Resumed)?;
        if !self.drain(&mut cur, sink, stop)? {
            return Ok(None);
        }
        self.finish(&mut cur, sink)?;
        Ok(Some(Switch::Rotated))
    }

    /// The regular files with this identity in the path's folder (several
    /// only for hard links; a symbolic link there is never taken for it).
    fn with_identity(&self, c: FilePosition) -> Vec<PathBuf> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                // DirEntry::metadata does not follow a symbolic link.
                let m = e.metadata().ok()?;
                (m.is_file() && c.same_file(&m)).then(|| e.path())
            })
            .collect()
    }

    /// The position `offset` in the open file, fingerprinted.
    fn at<E>(&self, cur: &OpenFile, offset: u64) -> TailResult<FilePosition, E> {
        cur.position(offset)
            .map_err(|e| self.io("reading the bytes before the offset of", e))
    }

    fn open_at<E>(&self, mut file: File, offset: u64) -> TailResult<OpenFile, E> {
        let meta = file.metadata().map_err(|e| self.io("stat", e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| self.io("seeking", e))?;
        Ok(OpenFile {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            splitter: LineSplitter::at(self.opts.max_line, offset),
        })
    }

    /// Read one chunk; hand the lines it completes to the sink. False at
    /// the end of the file.
    fn pump<S: TailSink>(
        &mut self,
        cur: &mut OpenFile,
        sink: &mut S,
    ) -> TailResult<bool, S::Error> {
        if self.chunk.len() != self.opts.read_chunk {
            self.chunk = vec![0u8; self.opts.read_chunk];
        }
        let n = loop {
            match cur.file.read(&mut self.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io("reading", e)),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        let mut batch = LineBatch::default();
        batch.reserve(n + cur.splitter.buffered());
        cur.splitter
            .push(self.chunk.get(..n).unwrap_or(&[]), &mut batch);
        if let Some(end) = batch.end_offset() {
            let at = self.at(cur, end)?;
            sink.lines(batch, at).map_err(TailError::Sink)?;
        }
        Ok(true)
    }

    /// Read to the end of the file. False when stopped first.
    fn drain<S: TailSink>(
        &mut self,
        cur: &mut OpenFile,
        sink: &mut S,
        stop: &AtomicBool,
    ) -> TailResult<bool, S::Error> {
        while self.pump(cur, sink)? {
            if stop.load(Ordering::Acquire) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A rotated file is complete: its unfinished last line is a line.
    fn finish<S: TailSink>(
        &mut self,
        cur: &mut OpenFile,
        sink: &mut S,
    ) -> TailResult<(), S::Error> {
        let mut batch = LineBatch::default();
        cur.splitter.finish(&mut batch);
        match batch.end_offset() {
            Some(end) => {
                let at = self.at(cur, end)?;
                sink.lines(batch, at).map_err(TailError::Sink)
            }
            None => Ok(()),
        }
    }
}

/// Sleep `d` in short steps; true when `stop` was set (at once or meanwhile).
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::Line;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kca-tail-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[derive(Debug, Default)]
    struct Seen {
        lines: Vec<String>,
        committed: Option<FilePosition>,
        switches: Vec<Switch>,
        waited: usize,
    }

    #[derive(Clone, Default)]
    struct TestSink(Arc<Mutex<Seen>>);

    impl TailSink for TestSink {
        type Error = std::convert::Infallible;
        fn lines(&mut self, batch: LineBatch, at: FilePosition) -> Result<(), Self::Error> {
            let mut s = self.0.lock().unwrap();
            for (l, _) in batch.entries() {
                s.lines.push(match l {
                    Line::Complete(b) => String::from_utf8_lossy(b).into_owned(),
                    Line::Oversize(n) => format!("<oversize {n}>"),
                });
            }
            s.committed = Some(at);
            Ok(())
        }
        fn switched(&mut self, at: FilePosition, why: Switch) -> Result<(), Self::Error> {
            let mut s = self.0.lock().unwrap();
            s.committed = Some(at);
            s.switches.push(why);
            Ok(())
        }
        fn waiting(&mut self, _e: &io::Error) {
            self.0.lock().unwrap().waited += 1;
        }
    }

    impl TestSink {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().lines.clone()
        }
        fn committed(&self) -> Option<FilePosition> {
            self.0.lock().unwrap().committed
        }
        /// Wait until exactly `want` lines were seen (fails after 10 s).
        fn wait_lines(&self, want: &[&str]) {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = self.lines();
                if got == want {
                    return;
                }
                assert!(Instant::now() < deadline, "want {want:?}, have {got:?}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    struct Running {
        stop: Arc<AtomicBool>,
        handle: std::thread::JoinHandle<TailCounters>,
    }

    fn options(read_chunk: usize, max_line: usize) -> TailOptions {
        TailOptions {
            poll: Duration::from_millis(20),
            max_line,
            read_chunk,
            log_target: "tail-test",
        }
    }

    fn start(
        path: &Path,
        resume: Option<FilePosition>,
        sink: &TestSink,
        opts: TailOptions,
    ) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let (path, mut sink, s) = (path.to_path_buf(), sink.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut t = Tailer::new(path, opts);
            t.run(resume, &mut sink, &s).unwrap();
            t.counters()
        });
        Running { stop, handle }
    }

    impl Running {
        fn stop(self) -> TailCounters {
            self.stop.store(true, Ordering::Release);
            self.handle.join().unwrap()
        }
    }

    fn pause() {
        std::thread::sleep(Duration::from_millis(120));
    }

    #[test]
    fn waits_follows_rotation_unfinished_lines_and_truncation() {
        let d = temp_dir("run");
        let log = d.join("app.log");
        let sink = TestSink::default();
        // The file does not exist yet: waited for.
        let run = start(&log, None, &sink, options(7, 1000));
        pause();
        assert!(sink.0.lock().unwrap().waited > 0);
        append(&log, "a1\na2\n");
        sink.wait_lines(&["a1", "a2"]);
        // An unfinished last line is held back across polls, then read whole.
        append(&log, "a3-first-half");
        pause();
        assert_eq!(sink.lines(), ["a1", "a2"]);
        assert_eq!(sink.committed().unwrap().offset, 6, "a line start");
        append(&log, "-second-half\n");
        sink.wait_lines(&["a1", "a2", "a3-first-half-second-half"]);
        // Rotation while running: an unfinished line and a last write go to
        // the old file after the rename; both are read before the new file.
        append(&log, "a4-unfinished");
        pause();
        let old = d.join("app.log.1");
        std::fs::rename(&log, &old).unwrap();
        append(&old, "-done\na5\na6-never-terminated");
        pause();
        append(&log, "b1\n");
        let mut want = vec!["a1", "a2", "a3-first-half-second-half"];
        want.extend(["a4-unfinished-done", "a5", "a6-never-terminated", "b1"]);
        sink.wait_lines(&want);
        // Copy-truncate: the file shrinks, reading restarts at 0, counted.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        pause();
        append(&log, "c1\n");
        want.push("c1");
        sink.wait_lines(&want);
        let counters = run.stop();
        assert_eq!((counters.rotations, counters.truncations), (1, 1));
        let s = sink.0.lock().unwrap();
        assert_eq!(
            s.switches,
            [Switch::First, Switch::Rotated, Switch::Truncated]
        );
        let meta = std::fs::metadata(&log).unwrap();
        let file = File::open(&log).unwrap();
        assert_eq!(
            s.committed,
            Some(FilePosition {
                dev: meta.dev(),
                ino: meta.ino(),
                offset: 3,
                fingerprint: Some(Fingerprint::of(&file, 3).unwrap()),
            })
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn restart_resumes_at_the_committed_line_start_and_drains_a_file_rotated_meanwhile() {
        let d = temp_dir("restart");
        let log = d.join("app.log");
        append(&log, "a1\na2\na3-half");
        let sink = TestSink::default();
        let run = start(&log, None, &sink, options(4096, 1000));
        sink.wait_lines(&["a1", "a2"]);
        run.stop();
        let committed = sink.committed().unwrap();
        assert_eq!(committed.offset, 6, "the unfinished line is not committed");
        // While stopped: the line completed, more lines, then rotation and
        // a new file.
        append(&log, "-rest\na4\na5-never-terminated");
        std::fs::rename(&log, d.join("app.log.1")).unwrap();
        append(&log, "b1\n");
        let run = start(&log, Some(committed), &sink, options(4096, 1000));
        let want = [
            "a1",
            "a2",
            "a3-half-rest",
            "a4",
            "a5-never-terminated",
            "b1",
        ];
        sink.wait_lines(&want);
        let counters = run.stop();
        assert_eq!(
            counters,
            TailCounters {
                rotations: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            sink.0.lock().unwrap().switches,
            [Switch::First, Switch::Resumed, Switch::Rotated],
            "the rotated file resumed at the committed offset, then the new one"
        );
        // Once more with nothing new: nothing is read twice.
        let run = start(&log, sink.committed(), &sink, options(4096, 1000));
        pause();
        run.stop();
        assert_eq!(sink.lines(), want);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_rotated_file_gone_while_stopped_is_counted_and_a_shrunk_one_restarts() {
        let d = temp_dir("lost");
        let log = d.join("app.log");
        append(&log, "a1\n");
        let sink = TestSink::default();
        let run = start(&log, None, &sink, options(4096, 1000));
        sink.wait_lines(&["a1"]);
        run.stop();
        // Rotated away and deleted while stopped: counted, the new file read.
        // (The new file is made first: a file system may give a deleted
        // file's inode to the next one, and identity is device+inode.)
        std::fs::rename(&log, d.join("gone")).unwrap();
        append(&log, "b1\nb2\n");
        std::fs::remove_file(d.join("gone")).unwrap();
        let run = start(&log, sink.committed(), &sink, options(4096, 1000));
        sink.wait_lines(&["a1", "b1", "b2"]);
        let counters = run.stop();
        assert_eq!(
            (
                counters.rotated_lost,
                counters.rotations,
                counters.truncations
            ),
            (1, 0, 0)
        );
        assert_eq!(
            sink.0.lock().unwrap().switches.last(),
            Some(&Switch::RotatedLost)
        );
        // Truncated and rewritten shorter while stopped: from the start.
        std::fs::write(&log, "c\n").unwrap();
        let run = start(&log, sink.committed(), &sink, options(4096, 1000));
        sink.wait_lines(&["a1", "b1", "b2", "c"]);
        assert_eq!(run.stop().truncations, 1);
        // The sink, counting the switches it was handed, saw the same.
        let mut seen = TailCounters::default();
        for why in &sink.0.lock().unwrap().switches {
            seen.count(*why);
        }
        assert_eq!(
            (seen.rotated_lost, seen.truncations, seen.rotations),
            (1, 1, 0)
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_oversize_line_across_reads_is_skipped_counted_and_never_committed_half() {
        let d = temp_dir("long");
        let log = d.join("app.log");
        let long = "x".repeat(100);
        append(&log, &format!("a1\n{long}"));
        let sink = TestSink::default();
        let run = start(&log, None, &sink, options(16, 10));
        sink.wait_lines(&["a1"]);
        pause();
        // Being skipped, not yet ended: the commit stays at its start.
        assert_eq!(sink.committed().unwrap().offset, 3);
        append(&log, "yy\na2\n");
        sink.wait_lines(&["a1", "<oversize 102>", "a2"]);
        run.stop();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlinked_path_is_followed_and_its_target_is_the_identity() {
        let d = temp_dir("link");
        let target = d.join("real.log");
        let link = d.join("app.log");
        append(&target, "a1\n");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let sink = TestSink::default();
        let run = start(&link, None, &sink, options(4096, 1000));
        sink.wait_lines(&["a1"]);
        append(&target, "a2\n");
        sink.wait_lines(&["a1", "a2"]);
        run.stop();
        let meta = std::fs::metadata(&target).unwrap();
        let c = sink.committed().unwrap();
        assert_eq!((c.dev, c.ino, c.offset), (meta.dev(), meta.ino(), 6));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn stop_is_honoured_promptly_while_waiting_and_while_following() {
        let d = temp_dir("stop");
        let log = d.join("never.log");
        let sink = TestSink::default();
        let slow = TailOptions {
            poll: Duration::from_secs(30),
            max_line: 100,
            read_chunk: 4096,
            log_target: "tail-test",
        };
        let run = start(&log, None, &sink, slow);
        pause();
        let t = Instant::now();
        run.stop();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        append(&log, "a\n");
        let run = start(&log, None, &sink, slow);
        sink.wait_lines(&["a"]);
        let t = Instant::now();
        run.stop();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The position `offset` in the file at `path`, as the tailer makes it.
    fn position_in(path: &Path, offset: u64) -> FilePosition {
        let meta = std::fs::metadata(path).unwrap();
        FilePosition {
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
            fingerprint: Some(Fingerprint::of(&File::open(path).unwrap(), offset).unwrap()),
        }
    }

    /// Run from `resume` until `want` lines were seen, then a little more
    /// (to see that nothing else comes); the counters and switches.
    fn run_from(
        log: &Path,
        resume: FilePosition,
        want: &[&str],
    ) -> (TailCounters, Vec<Switch>, TestSink) {
        let sink = TestSink::default();
        let run = start(log, Some(resume), &sink, options(4096, 1000));
        sink.wait_lines(want);
        pause();
        let counters = run.stop();
        assert_eq!(sink.lines(), want);
        let switches = sink.0.lock().unwrap().switches.clone();
        (counters, switches, sink)
    }

    #[test]
    fn the_fingerprint_is_a_digest_of_the_window_before_the_offset() {
        let d = temp_dir("fp");
        let (a, b) = (d.join("a"), d.join("b"));
        let body: String = (0..2000).map(|i| format!("{i}\n")).collect();
        std::fs::write(&a, &body).unwrap();
        // Other bytes before the window, the same bytes in it.
        std::fs::write(&b, format!("x{}", &body[1..])).unwrap();
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        let end = body.len() as u64;
        assert!(end > FINGERPRINT_WINDOW + 1);
        let of = |f: &File, o: u64| Fingerprint::of(f, o).unwrap();
        assert_eq!(of(&fa, end), of(&fb, end), "only the window counts");
        let window = &body.as_bytes()[body.len() - FINGERPRINT_WINDOW as usize..];
        assert_eq!(of(&fa, end).as_bytes()[..], Sha256::digest(window)[..]);
        assert_ne!(of(&fa, 5), of(&fb, 5), "below the window: every byte");
        assert_eq!(of(&fa, 0), of(&fb, 0), "offset 0 covers nothing");
        // Past the end (the file shrank): a digest of fewer bytes, which
        // matches no full window.
        assert_ne!(of(&fa, end + 10), of(&fa, end));
        let f = of(&fa, 7);
        assert_eq!(Fingerprint::from_slice(f.as_bytes()), Some(f));
        assert_eq!(Fingerprint::from_slice(&[1, 2, 3]), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotated_names_are_the_files_name_and_a_suffix_never_compressed() {
        let ok = |c: &str| is_rotated_name(OsStr::new("app.log"), OsStr::new(c));
        for c in ["app.log.1", "app.log.0", "app.log-20261201", "app.log_old"] {
            assert!(ok(c), "{c}");
        }
        for c in [
            "app.log",
            "app.log.",
            "app.logger",
            "queue.sqlite-wal",
            "queue.sqlite-shm",
            "x-app.log.1",
            "app.log.1.gz",
            "app.log-20261201.bz2",
            "app.log.2.xz",
            "app.log.3.zst",
            "app.log.4.lz4",
            "app.log.5.Z",
            "app.1.log",
        ] {
            assert!(!ok(c), "{c}");
        }
    }

    #[test]
    fn an_inode_reused_by_an_unrelated_rotated_name_is_not_read_as_the_log() {
        let d = temp_dir("reused");
        let log = d.join("app.log");
        append(&log, "a1\na2\n");
        let committed = position_in(&log, 6);
        // While stopped: the log was rotated and deleted, and its inode
        // went to another file with a rotated name (here: the committed
        // identity is made that file's, as the file system would).
        std::fs::remove_file(&log).unwrap();
        let other = d.join("app.log.1");
        append(&other, "z1\nz2\nnot-the-log\n");
        append(&log, "b1\n");
        let reused = FilePosition {
            offset: committed.offset,
            fingerprint: committed.fingerprint,
            ..position_in(&other, 0)
        };
        let (counters, switches, _) = run_from(&log, reused, &["b1"]);
        assert_eq!((counters.rotated_lost, counters.rotations), (1, 0));
        assert_eq!(switches, [Switch::RotatedLost]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_queues_wal_beside_the_log_is_never_read_as_the_rotated_log() {
        let d = temp_dir("wal");
        let log = d.join("results.log");
        append(&log, "a1\n");
        let committed = position_in(&log, 3);
        std::fs::remove_file(&log).unwrap();
        // The queue beside the log created its -wal, which got the inode;
        // its bytes before the offset are even the log's.
        let wal = d.join("queue.sqlite-wal");
        append(&wal, "a1\nwal-page-bytes\n");
        append(&log, "b1\n");
        let reused = FilePosition {
            offset: committed.offset,
            fingerprint: committed.fingerprint,
            ..position_in(&wal, 0)
        };
        assert_eq!(
            position_in(&wal, 3).fingerprint,
            committed.fingerprint,
            "the fingerprint alone would take it"
        );
        let (counters, switches, _) = run_from(&log, reused, &["b1"]);
        assert_eq!((counters.rotated_lost, counters.rotations), (1, 0));
        assert_eq!(switches, [Switch::RotatedLost]);
        // A position persisted before fingerprints: the name rule holds too.
        let legacy = FilePosition {
            fingerprint: None,
            ..reused
        };
        let (counters, _, _) = run_from(&log, legacy, &["b1"]);
        assert_eq!(counters.rotated_lost, 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_genuine_rotated_file_is_still_drained_with_or_without_a_fingerprint() {
        let d = temp_dir("genuine");
        let log = d.join("app.log");
        append(&log, "a1\na2\n");
        let committed = position_in(&log, 3);
        assert!(committed.fingerprint.is_some());
        std::fs::rename(&log, d.join("app.log-20261201")).unwrap();
        append(&log, "b1\n");
        let (counters, switches, sink) = run_from(&log, committed, &["a2", "b1"]);
        assert_eq!((counters.rotations, counters.rotated_lost), (1, 0));
        assert_eq!(switches, [Switch::Resumed, Switch::Rotated]);
        let last = sink.committed().unwrap();
        assert_eq!(
            last,
            position_in(&log, 3),
            "the new commit is fingerprinted"
        );
        let legacy = FilePosition {
            fingerprint: None,
            ..committed
        };
        let (counters, _, _) = run_from(&log, legacy, &["a2", "b1"]);
        assert_eq!((counters.rotations, counters.rotated_lost), (1, 0));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlinked_paths_target_rotated_under_its_own_name_is_drained() {
        let d = temp_dir("link-rotated");
        let (link, target) = (d.join("app.log"), d.join("real.log"));
        append(&target, "a1\na2\n");
        std::os::unix::fs::symlink("real.log", &link).unwrap();
        let committed = position_in(&target, 3);
        std::fs::rename(&target, d.join("real.log.1")).unwrap();
        append(&target, "b1\n");
        let (counters, switches, _) = run_from(&link, committed, &["a2", "b1"]);
        assert_eq!((counters.rotations, counters.rotated_lost), (1, 0));
        assert_eq!(switches, [Switch::Resumed, Switch::Rotated]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_same_inode_at_the_path_with_other_bytes_is_read_from_the_start() {
        let d = temp_dir("rewritten");
        let log = d.join("app.log");
        append(&log, "a1\na2\n");
        let committed = position_in(&log, 6);
        // Rewritten in place while stopped (same inode), longer than the
        // offset: not the file that was read.
        std::fs::write(&log, "b1\nb2\nb3\n").unwrap();
        assert_eq!(position_in(&log, 0).ino, committed.ino);
        let (counters, switches, _) = run_from(&log, committed, &["b1", "b2", "b3"]);
        assert_eq!(counters.truncations, 1);
        assert_eq!(switches, [Switch::Truncated]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_old_format_position_is_still_resumed_on_device_and_inode() {
        let d = temp_dir("legacy");
        let log = d.join("app.log");
        append(&log, "a1\na2\n");
        let legacy = FilePosition {
            fingerprint: None,
            ..position_in(&log, 3)
        };
        let (counters, switches, sink) = run_from(&log, legacy, &["a2"]);
        assert_eq!(counters, TailCounters::default());
        assert_eq!(switches, [Switch::Resumed]);
        assert_eq!(
            sink.committed(),
            Some(position_in(&log, 6)),
            "committed again with a fingerprint"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
