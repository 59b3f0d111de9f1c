//! `forward`: tail an osquery or Fleet results log into the queue while the
//! shipper delivers it.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::SentinelConfig;
use crate::queue::{FileCursor, Queue};
use crate::shipper::Shipper;
use crate::stats::Stats;
use crate::{sleep_unless_stopped, Error};

const READ_CHUNK: usize = 1 << 20;

/// The log target of the periodic and final stats lines.
pub const STATS_LOG_TARGET: &str = "keychain_access_sentinel::stats";

/// Tail `results_path` (an osquery `filesystem` logger results log or a Fleet
/// results file: one JSON object per line) into the queue at
/// `config.queue_path` and ship it, until `stop` is set. Returns the final
/// [`Stats`] (also logged at `info`, as every `stats_interval_ms`, with the
/// target [`STATS_LOG_TARGET`] so a CLI can show those lines by default).
///
/// * The first time, reading starts at the beginning of the file; after that
///   at the stored position. The position (dev, inode, offset) is committed
///   in the same transaction as the lines read, so a crash neither loses nor
///   duplicates queue entries.
/// * Appends are followed (every `tail_poll_ms`). Rotation by rename + new
///   file: the old file is drained to its end, then the new one is read from
///   the start; if the rename happened while `forward` was not running, the
///   old file is still found (by inode) in the same directory and drained.
///   Truncation (`copytruncate`) restarts at offset 0.
/// * A missing file is waited for.
///
/// Returns `Err` on a bad config or secret file, a queue that cannot be
/// opened, or a read/queue failure while tailing (run it under a supervisor:
/// a restart resumes where it stopped).
pub fn forward(
    config: &SentinelConfig,
    results_path: &Path,
    stop: Arc<AtomicBool>,
) -> Result<Stats, Error> {
    config.validate()?;
    config.check_secret_file()?;
    let queue = Arc::new(Queue::open(&config.queue_path, config.queue_limits()?)?);
    let shipper = Shipper::new(config, Arc::clone(&queue))?;
    let ship_stop = Arc::new(AtomicBool::new(false));
    let handle = shipper.spawn(Arc::clone(&ship_stop))?;
    let path = std::path::absolute(results_path)
        .map_err(|e| Error::io(format!("resolving {}", results_path.display()), e))?;
    log::info!(
        "sentinel forward: {} -> {} stream {} (queue {})",
        path.display(),
        config.endpoint,
        config.stream,
        config.queue_path.display()
    );
    let mut tailer = Tailer {
        queue: &queue,
        key: path.to_string_lossy().into_owned(),
        path,
        poll: SentinelConfig::ms(config.tail_poll_ms),
        stats_every: SentinelConfig::ms(config.stats_interval_ms),
        last_stats: Instant::now(),
        max_line: queue.limits().max_line_bytes,
    };
    let result = tailer.run(&stop);
    ship_stop.store(true, Ordering::SeqCst);
    queue.wake();
    if handle.join().is_err() {
        log::error!("sentinel shipper thread panicked");
    }
    let stats = queue.stats();
    match &result {
        Ok(()) => log::info!(target: STATS_LOG_TARGET, "sentinel forward stopped: {stats}"),
        Err(e) => log::error!("sentinel forward failed: {e}; {stats}"),
    }
    result.map(|()| stats)
}

struct Tailer<'a> {
    queue: &'a Queue,
    path: PathBuf,
    key: String,
    poll: Duration,
    stats_every: Duration,
    last_stats: Instant,
    max_line: usize,
}

/// One open results file: bytes from `pos` on are in `buf` (read, not yet
/// committed: a partial line), or being skipped (an over-long line).
struct Reader {
    file: File,
    dev: u64,
    ino: u64,
    /// File offset of `buf[0]`; when not skipping, also the committed offset.
    pos: u64,
    buf: Vec<u8>,
    skipping: bool,
    chunk: Vec<u8>,
}

impl Reader {
    fn open(file: File, offset: u64) -> std::io::Result<Reader> {
        let meta = file.metadata()?;
        let mut r = Reader {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            pos: offset,
            buf: Vec::new(),
            skipping: false,
            chunk: vec![0u8; READ_CHUNK],
        };
        r.file.seek(SeekFrom::Start(offset))?;
        Ok(r)
    }

    fn read_end(&self) -> u64 {
        self.pos + self.buf.len() as u64
    }

    fn cursor(&self) -> FileCursor {
        FileCursor {
            dev: self.dev,
            ino: self.ino,
            offset: self.pos,
        }
    }
}

impl Tailer<'_> {
    fn io(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(format!("{what} {}", self.path.display()), e)
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<(), Error> {
        let Some(mut reader) = self.first_open(stop)? else {
            return Ok(());
        };
        while !stop.load(Ordering::SeqCst) {
            if self.pump(&mut reader)? {
                continue;
            }
            // At the end of the file: rotated, truncated, or just quiet?
            match std::fs::metadata(&self.path) {
                Ok(m) if (m.dev(), m.ino()) != (reader.dev, reader.ino) => {
                    // Drain what was written to the old file before the switch.
                    while self.pump(&mut reader)? {}
                    match File::open(&self.path) {
                        Ok(f) => {
                            self.finish(&mut reader)?;
                            log::info!(
                                "sentinel forward: {} was rotated; following the new file",
                                self.path.display()
                            );
                            reader = Reader::open(f, 0).map_err(|e| self.io("opening", e))?;
                            self.commit(&reader, &[], 0)?;
                            continue;
                        }
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(self.io("opening", e)),
                    }
                }
                Ok(m) if m.len() < reader.read_end() => {
                    log::warn!(
                        "sentinel forward: {} was truncated (size {} < offset {}); reading from \
                         the start (lines written between the last read and the truncation are lost)",
                        self.path.display(),
                        m.len(),
                        reader.read_end()
                    );
                    reader = Reader::open(reader.file, 0).map_err(|e| self.io("rewinding", e))?;
                    self.commit(&reader, &[], 0)?;
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(self.io("stat", e)),
            }
            self.maybe_log_stats();
            if sleep_unless_stopped(self.poll, stop) {
                break;
            }
        }
        Ok(())
    }

    fn maybe_log_stats(&mut self) {
        if self.last_stats.elapsed() >= self.stats_every {
            self.last_stats = Instant::now();
            log::info!(target: STATS_LOG_TARGET, "sentinel forward: {}", self.queue.stats());
        }
    }

    /// Open the results file at the stored position; drain a file rotated
    /// away while we were not running. None when stopped while waiting.
    fn first_open(&mut self, stop: &AtomicBool) -> Result<Option<Reader>, Error> {
        let stored = self.queue.cursor(&self.key)?;
        // A missing results file is most often a wrong `--results` path:
        // warn (the default level) at once and again every stats interval,
        // so a forwarder that has nothing to read does not look idle-healthy.
        let mut said: Option<Instant> = None;
        let waiting_since = Instant::now();
        let file = loop {
            match File::open(&self.path) {
                Ok(f) => break f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let due = match said {
                        Some(t) => t.elapsed() >= self.stats_every,
                        None => true,
                    };
                    if due {
                        log::warn!(
                            "sentinel forward: {} does not exist (waiting {}s so far); nothing is \
                             forwarded until it appears: is --results the osquery results log \
                             (e.g. /var/log/osquery/osqueryd.results.log)?",
                            self.path.display(),
                            waiting_since.elapsed().as_secs()
                        );
                        said = Some(Instant::now());
                    }
                    self.maybe_log_stats();
                    if sleep_unless_stopped(self.poll, stop) {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(self.io("opening", e)),
            }
        };
        let meta = file.metadata().map_err(|e| self.io("stat", e))?;
        let identity = (meta.dev(), meta.ino());
        match stored {
            Some(c) if (c.dev, c.ino) == identity => {
                if meta.len() >= c.offset {
                    log::info!(
                        "sentinel forward: resuming {} at offset {}",
                        self.path.display(),
                        c.offset
                    );
                    return Reader::open(file, c.offset)
                        .map(Some)
                        .map_err(|e| self.io("seeking", e));
                }
                log::warn!(
                    "sentinel forward: {} is shorter ({}) than the stored offset {}; it was \
                     truncated, reading from the start",
                    self.path.display(),
                    meta.len(),
                    c.offset
                );
            }
            Some(c) => match self.find_rotated(c.dev, c.ino) {
                Some(old_path) => {
                    log::info!(
                        "sentinel forward: {} was rotated while stopped; draining {} from offset {}",
                        self.path.display(),
                        old_path.display(),
                        c.offset
                    );
                    let old = File::open(&old_path).map_err(|e| self.io("opening rotated", e))?;
                    let mut r = Reader::open(old, c.offset).map_err(|e| self.io("seeking", e))?;
                    if (r.dev, r.ino) == (c.dev, c.ino) {
                        while self.pump(&mut r)? {}
                        self.finish(&mut r)?;
                    }
                }
                None => log::warn!(
                    "sentinel forward: {} is a new file and the previous one (inode {}) is no \
                     longer in its directory; lines after offset {} of the previous file were \
                     not forwarded",
                    self.path.display(),
                    c.ino,
                    c.offset
                ),
            },
            None => log::info!(
                "sentinel forward: first run on {}; reading from the start",
                self.path.display()
            ),
        }
        let r = Reader::open(file, 0).map_err(|e| self.io("seeking", e))?;
        self.commit(&r, &[], 0)?;
        Ok(Some(r))
    }

    /// The file with this identity in the results file's directory, if any.
    fn find_rotated(&self, dev: u64, ino: u64) -> Option<PathBuf> {
        let dir = self.path.parent()?;
        let entries = std::fs::read_dir(dir).ok()?;
        entries.flatten().find_map(|e| {
            let m = e.metadata().ok()?;
            (m.is_file() && m.dev() == dev && m.ino() == ino).then(|| e.path())
        })
    }

    fn commit(&self, r: &Reader, lines: &[&[u8]], oversized: u64) -> Result<(), Error> {
        self.queue
            .ingest(lines, oversized, Some((&self.key, r.cursor())))
            .map(|_| ())
    }

    /// Read one chunk and commit the complete lines in it with the new
    /// offset. False at the end of the file.
    fn pump(&self, r: &mut Reader) -> Result<bool, Error> {
        let n = loop {
            match r.file.read(&mut r.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io("reading", e)),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        r.buf.extend_from_slice(&r.chunk[..n]);
        let Some(last_nl) = r.buf.iter().rposition(|&b| b == b'\n') else {
            if r.buf.len() > self.max_line {
                // An over-long line: forget its bytes until its newline.
                r.skipping = true;
                r.pos += r.buf.len() as u64;
                r.buf.clear();
            }
            return Ok(true);
        };
        let complete = &r.buf[..=last_nl];
        let mut lines: Vec<&[u8]> = complete[..complete.len() - 1]
            .split(|&b| b == b'\n')
            .collect();
        let mut oversized = 0;
        if r.skipping {
            // The first piece is the tail of the over-long line.
            lines.remove(0);
            oversized = 1;
        }
        let lines: Vec<&[u8]> = lines
            .into_iter()
            .filter(|l| !l.trim_ascii().is_empty())
            .collect();
        let new_pos = r.pos + last_nl as u64 + 1;
        let cursor = FileCursor {
            dev: r.dev,
            ino: r.ino,
            offset: new_pos,
        };
        self.queue
            .ingest(&lines, oversized, Some((&self.key, cursor)))?;
        log::debug!(
            "sentinel forward: queued {} line(s) ({} over-long skipped) from {}, now at offset {}",
            lines.len(),
            oversized,
            self.path.display(),
            new_pos
        );
        r.buf.drain(..=last_nl);
        r.pos = new_pos;
        r.skipping = false;
        Ok(true)
    }

    /// A rotated file is complete: its unterminated last line (if any) is a line.
    fn finish(&self, r: &mut Reader) -> Result<(), Error> {
        if r.buf.is_empty() && !r.skipping {
            return Ok(());
        }
        let tail = std::mem::take(&mut r.buf);
        let new_pos = r.pos + tail.len() as u64;
        let (lines, oversized): (Vec<&[u8]>, u64) = if r.skipping {
            (Vec::new(), 1)
        } else {
            (vec![&tail[..]], 0)
        };
        r.pos = new_pos;
        r.skipping = false;
        self.commit(r, &lines, oversized)
    }
}
