//! `forward`: tail an osquery or Fleet results log into the queue while the
//! shipper delivers it. The tailing is the shared tailer
//! (`keychain_access_tables::tail`, as the extension's file source's); this
//! module is its sink: lines and file position committed to the queue in one
//! transaction.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keychain_access_tables::lines::LineBatch;
use keychain_access_tables::tail::{
    FilePosition, Switch, TailError, TailOptions, TailSink, Tailer,
};

use crate::config::SentinelConfig;
use crate::queue::{FileCursor, Queue};
use crate::shipper::Shipper;
use crate::stats::Stats;
use crate::Error;

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
///   at the stored position. The position (dev, inode, offset and the
///   fingerprint of the bytes before the offset) is committed in the same
///   transaction as the lines read, so a crash neither loses nor duplicates
///   queue entries.
/// * Appends are followed (every `tail_poll_ms`). Rotation by rename + new
///   file: the old file is drained to its end, then the new one is read from
///   the start; if the rename happened while `forward` was not running, the
///   old file is still found in the same directory (a rotated name of the
///   results file with its inode and fingerprint: never another file that
///   got the freed inode, such as the queue's own) and drained.
///   Truncation (`copytruncate`) restarts at offset 0. An unfinished last
///   line is read once its newline arrives (or when its file was rotated
///   away), never split.
/// * A missing file is waited for.
/// * Rotations followed, truncations and rotated files not found after a
///   restart (lines lost) are counted in [`Stats`] (`rotations`,
///   `truncations`, `rotated_lost`), persisted with the position they moved.
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
    let key = path.to_string_lossy().into_owned();
    let resume = queue.cursor(&key)?.map(|c| FilePosition {
        dev: c.dev,
        ino: c.ino,
        offset: c.offset,
        fingerprint: c.fingerprint,
    });
    let mut tailer = Tailer::new(
        path.clone(),
        TailOptions {
            poll: SentinelConfig::ms(config.tail_poll_ms),
            max_line: queue.limits().max_line_bytes,
            read_chunk: READ_CHUNK,
            // The tailer's status lines under this module's target, which
            // `forward`'s default log filter shows.
            log_target: module_path!(),
        },
    );
    let mut sink = QueueSink {
        queue: &queue,
        key,
        path,
        stats_every: SentinelConfig::ms(config.stats_interval_ms),
        last_stats: Instant::now(),
        missing: None,
    };
    let result = tailer.run(resume, &mut sink, &stop).map_err(|e| match e {
        TailError::Io { what, path, source } => {
            Error::io(format!("{what} {}", path.display()), source)
        }
        TailError::Sink(e) => e,
    });
    ship_stop.store(true, Ordering::SeqCst);
    queue.wake();
    if handle.join().is_err() {
        log::error!("sentinel shipper thread panicked");
    }
    // The tailer's rotations, truncations and lost rotated files are in
    // the stats (persisted with the position they moved).
    let stats = queue.stats();
    match &result {
        Ok(()) => log::info!(target: STATS_LOG_TARGET, "sentinel forward stopped: {stats}"),
        Err(e) => log::error!("sentinel forward failed: {e}; {stats}"),
    }
    result.map(|()| stats)
}

/// The forwarder's sink: lines go to the queue, committed with the file
/// position (dev, inode, offset, fingerprint) in one transaction.
struct QueueSink<'a> {
    queue: &'a Queue,
    /// The queue's cursor key: the results file's absolute path.
    key: String,
    path: PathBuf,
    stats_every: Duration,
    last_stats: Instant,
    /// While the results file does not exist: since when, and when that
    /// was last said.
    missing: Option<(Instant, Instant)>,
}

impl QueueSink<'_> {
    fn cursor(at: FilePosition) -> FileCursor {
        FileCursor {
            dev: at.dev,
            ino: at.ino,
            offset: at.offset,
            fingerprint: at.fingerprint,
        }
    }
}

impl TailSink for QueueSink<'_> {
    type Error = Error;

    fn lines(&mut self, batch: LineBatch, at: FilePosition) -> Result<(), Error> {
        self.missing = None;
        let lines: Vec<&[u8]> = batch
            .iter()
            .filter(|l| !l.trim_ascii().is_empty())
            .collect();
        let oversized = batch.oversize().count() as u64;
        self.queue
            .ingest(&lines, oversized, Some((&self.key, Self::cursor(at))), None)?;
        log::debug!(
            "sentinel forward: queued {} line(s) ({} over-long skipped) from {}, now at offset {}",
            lines.len(),
            oversized,
            self.path.display(),
            at.offset
        );
        Ok(())
    }

    /// The new position and the switch's counter (rotations, truncations,
    /// rotated_lost), committed together.
    fn switched(&mut self, at: FilePosition, why: Switch) -> Result<(), Error> {
        self.missing = None;
        self.queue
            .ingest(&[], 0, Some((&self.key, Self::cursor(at))), Some(why))
            .map(|_| ())
    }

    fn idle(&mut self) {
        if self.last_stats.elapsed() >= self.stats_every {
            self.last_stats = Instant::now();
            log::info!(target: STATS_LOG_TARGET, "sentinel forward: {}", self.queue.stats());
        }
    }

    /// A missing results file is most often a wrong `--results` path: warn
    /// (the default level) at once and again every stats interval, so a
    /// forwarder that has nothing to read does not look idle-healthy.
    fn waiting(&mut self, _e: &std::io::Error) {
        let now = Instant::now();
        let (since, said) = self.missing.get_or_insert((now, now));
        if *said == now || said.elapsed() >= self.stats_every {
            log::warn!(
                "sentinel forward: {} does not exist (waiting {}s so far); nothing is \
                 forwarded until it appears: is --results the osquery results log \
                 (e.g. /var/log/osquery/osqueryd.results.log)?",
                self.path.display(),
                since.elapsed().as_secs()
            );
            *said = now;
        }
    }
}
