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
//!   was running, the committed file is looked for by identity in the same
//!   folder, drained from the committed offset, then the new one is read.
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
//! Identity is device and inode. A file system may give a deleted file's
//! inode to the next file created: a new file that reuses the committed
//! inode and is at least as long as the committed offset is taken for the
//! committed one (resumed at its offset), a limit every inode-based tailer
//! shares.
//!
//! The file is opened like any log (`File::open`): a symbolic link at the
//! path is followed, and the identity checked is always that of the file
//! actually read (the link's target). The tailer only reads it. A file
//! found in the folder after a rotation is read only if it is a regular
//! file (not a link) with the committed identity, checked again on the
//! open handle.

use crate::lines::{LineBatch, LineSplitter};
use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where a tailer is in a file: its identity and the offset of the first
/// byte not yet consumed (always a line start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePosition {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    pub offset: u64,
}

impl FilePosition {
    fn same_file(&self, meta: &std::fs::Metadata) -> bool {
        (self.dev, self.ino) == (meta.dev(), meta.ino())
    }
}

/// Why reading (re)starts in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// First run: no committed position.
    First,
    /// At the committed position (or a rotated file found by its identity).
    Resumed,
    /// The path names a new file after a rename; the old one was drained
    /// (while running, or found by its identity after a restart).
    Rotated,
    /// After a restart the path names a new file and the committed one is
    /// no longer in its folder: its lines after the committed offset are
    /// lost; the new file is read from the start.
    RotatedLost,
    /// The file shrank below the read position: from the start again.
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
    /// Times the file shrank below the read position (copy-truncate).
    pub truncations: u64,
    /// Restarts that found a new file at the path and the committed one no
    /// longer in its folder: its lines after the committed offset are lost.
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
    fn position(&self, offset: u64) -> FilePosition {
        FilePosition {
            dev: self.dev,
            ino: self.ino,
            offset,
        }
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
                            self.switch(sink, cur.position(0), Switch::Rotated)?;
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
                    self.switch(sink, cur.position(0), Switch::Truncated)?;
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
                if meta.len() >= c.offset {
                    log::info!(
                        target: self.opts.log_target,
                        "{}: resuming at offset {}",
                        self.path.display(),
                        c.offset
                    );
                    let cur = self.open_at(file, c.offset)?;
                    self.switch(sink, cur.position(c.offset), Switch::Resumed)?;
                    return Ok(Some(cur));
                }
                why = Switch::Truncated;
                log::warn!(
                target: self.opts.log_target,
                    "{}: shorter ({}) than the committed offset {}; it was truncated, \
                     reading from the start",
                    self.path.display(),
                    meta.len(),
                    c.offset
                );
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
        self.switch(sink, cur.position(0), why)?;
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
    /// folder by identity and drain it. How the new file is reached:
    /// [`Switch::Rotated`] (drained) or [`Switch::RotatedLost`] (not
    /// found); None when stopped meanwhile.
    fn drain_rotated<S: TailSink>(
        &mut self,
        c: FilePosition,
        sink: &mut S,
        stop: &AtomicBool,
    ) -> TailResult<Option<Switch>, S::Error> {
        let Some(old_path) = self.find_rotated(c) else {
            log::warn!(
                target: self.opts.log_target,
                "{}: a new file, and the previous one (inode {}) is no longer in its folder; \
                 its lines after offset {} were not read",
                self.path.display(),
                c.ino,
                c.offset
            );
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
        log::info!(
                target: self.opts.log_target,
            "{}: rotated while stopped; draining {} from offset {}",
            self.path.display(),
            old_path.display(),
            c.offset
        );
        let mut cur = self.open_at(old, c.offset)?;
        self.switch(sink, cur.position(c.offset), Switch::Resumed)?;
        if !self.drain(&mut cur, sink, stop)? {
            return Ok(None);
        }
        self.finish(&mut cur, sink)?;
        Ok(Some(Switch::Rotated))
    }

    /// The regular file with this identity in the path's folder, if any
    /// (a symbolic link there is never taken for it).
    fn find_rotated(&self, c: FilePosition) -> Option<PathBuf> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let entries = std::fs::read_dir(dir).ok()?;
        entries.flatten().find_map(|e| {
            // DirEntry::metadata does not follow a symbolic link.
            let m = e.metadata().ok()?;
            (m.is_file() && c.same_file(&m)).then(|| e.path())
        })
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
            sink.lines(batch, cur.position(end))
                .map_err(TailError::Sink)?;
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
            Some(end) => sink
                .lines(batch, cur.position(end))
                .map_err(TailError::Sink),
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
        assert_eq!(
            s.committed,
            Some(FilePosition {
                dev: meta.dev(),
                ino: meta.ino(),
                offset: 3
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
}
