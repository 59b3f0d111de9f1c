//! Live sources: a command whose stdout is a stream of JSON lines (eslogger,
//! `log stream`), and a tailed capture file. Both feed raw lines to the
//! ingest thread; neither parses anything.
//!
//! Lines are split by the shared splitter (`keychain_access_tables::lines`).
//! The command source restarts its command with exponential backoff when it
//! dies and turns its known failures into status a person can act on. The
//! file source is the shared tailer (`keychain_access_tables::tail`, as the
//! Sentinel forwarder's): it starts at the beginning the first time, follows
//! appends, drains a rotated file (also one rotated while the extension was
//! stopped), restarts at 0 after a truncation, and resumes at its committed
//! position after a restart (committed with the rows it produced: device,
//! inode, offset and the fingerprint of the bytes before the offset, so
//! another file given a freed inode is never taken for the capture). What the
//! tailer saw (rotations, truncations, rotated files lost) is counted in the
//! source's status row.

use super::status::Board;
pub use keychain_access_tables::lines::LineBatch;
use keychain_access_tables::lines::LineSplitter;
use keychain_access_tables::store::SourceOffset;
use keychain_access_tables::tail::{
    FilePosition, Switch, TailError, TailOptions, TailSink, Tailer,
};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What sources send to the ingest thread.
pub enum Feed {
    /// Lines (complete and oversize, in order) and, for a file, the
    /// position to commit with their rows.
    Lines {
        source: usize,
        lines: LineBatch,
        offset: Option<SourceOffset>,
    },
    /// A new process (or file) started: reset sequence tracking; ignore its
    /// events (by pid until an event names its pidversion).
    Started {
        source: usize,
        child_pid: Option<u32>,
    },
    /// A child was reaped: its pid may be reused by anyone from now on.
    Exited { child_pid: u32 },
}

/// Lines per batch sent to the ingest thread.
const BATCH_LINES: usize = 512;

/// Known eslogger / log failures and what a person should do about them.
pub fn explain_stderr(line: &str) -> Option<(&'static str, String)> {
    let l = line.trim();
    if l.contains("ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED") {
        return Some((
            "not_permitted",
            "eslogger is not permitted: grant Full Disk Access to osqueryd and /usr/bin/eslogger (the PPPC profile in packs/macos/keychain-access-pppc.mobileconfig), then restart osqueryd".into(),
        ));
    }
    if l.contains("ES_NEW_CLIENT_RESULT_ERR_NOT_PRIVILEGED") {
        return Some((
            "failed",
            "eslogger must run as root: run osqueryd as root (launchd daemon)".into(),
        ));
    }
    if l.contains("ES_NEW_CLIENT_RESULT_ERR_NOT_ENTITLED") {
        return Some((
            "failed",
            "eslogger is not entitled: use Apple's /usr/bin/eslogger, not a copy".into(),
        ));
    }
    if l.contains("ES_NEW_CLIENT_RESULT_ERR_TOO_MANY_CLIENTS") {
        return Some((
            "failed",
            "too many Endpoint Security clients on this Mac: stop another ES client".into(),
        ));
    }
    if l.contains("ES_NEW_CLIENT_RESULT_ERR") {
        return Some(("failed", format!("eslogger failed to start: {l}")));
    }
    None
}

/// What to run and how to back off between restarts.
pub struct CommandSpec {
    pub argv: Vec<String>,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// Run a command source until `stop` is set.
pub fn run_command(
    id: usize,
    spec: CommandSpec,
    tx: SyncSender<Feed>,
    board: Arc<Mutex<Board>>,
    children: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
) {
    let CommandSpec {
        argv,
        backoff_initial,
        backoff_max,
    } = spec;
    let mut backoff = backoff_initial;
    let mut first = true;
    while !stop.load(Ordering::Acquire) {
        if !first {
            board_update(&board, id, |s| s.restarts += 1);
        }
        first = false;
        let started = Instant::now();
        let spawned = Command::new(argv.first().map(String::as_str).unwrap_or(""))
            .args(argv.iter().skip(1))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child: Child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let msg = format!(
                    "cannot start {}: {e}",
                    argv.first().map(String::as_str).unwrap_or("?")
                );
                log::warn!("{msg}");
                board_update(&board, id, |s| {
                    s.state = "backoff".into();
                    s.last_error = Some(msg.clone());
                });
                sleep_unless_stopped(backoff, &stop);
                backoff = (backoff * 2).min(backoff_max);
                continue;
            }
        };
        let pid = child.id();
        if let Ok(mut c) = children.lock() {
            c.push(pid);
        }
        board_update(&board, id, |s| s.state = "running".into());
        let _ = tx.send(Feed::Started {
            source: id,
            child_pid: Some(pid),
        });
        // stderr: remember it and explain known failures.
        let stderr_thread = child.stderr.take().map(|err| {
            let board = board.clone();
            std::thread::spawn(move || {
                let mut verdict: Option<&'static str> = None;
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    log::warn!("source {id} stderr: {line}");
                    if let Some((state, msg)) = explain_stderr(&line) {
                        verdict = Some(state);
                        board_update(&board, id, |s| {
                            s.state = state.into();
                            s.last_error = Some(msg.clone());
                        });
                    }
                }
                verdict
            })
        });
        if let Some(out) = child.stdout.take() {
            pump(id, out, &tx, &board, &stop);
        }
        // stdout closed: the child exited or we are stopping.
        if stop.load(Ordering::Acquire) {
            let _ = child.kill();
        }
        let status = child.wait();
        if let Ok(mut c) = children.lock() {
            c.retain(|p| *p != pid);
        }
        // After every line it wrote (same channel, in order).
        let _ = tx.send(Feed::Exited { child_pid: pid });
        let verdict = stderr_thread.and_then(|t| t.join().ok()).flatten();
        if stop.load(Ordering::Acquire) {
            break;
        }
        let ran = started.elapsed();
        log::warn!(
            "source {id}: command exited ({status:?}) after {ran:?}; restarting in {backoff:?}"
        );
        board_update(&board, id, |s| {
            if verdict.is_none() {
                s.state = "backoff".into();
                s.last_error = Some(format!("command exited: {status:?}"));
            }
        });
        if ran > Duration::from_secs(60) {
            backoff = backoff_initial;
        }
        sleep_unless_stopped(backoff, &stop);
        backoff = (backoff * 2).min(backoff_max);
    }
    board_update(&board, id, |s| s.state = "stopped".into());
}

/// Read lines from a stream and send them in batches. Returns at EOF (or
/// when stopping, after sending what was read).
fn pump<R: Read>(
    id: usize,
    r: R,
    tx: &SyncSender<Feed>,
    board: &Arc<Mutex<Board>>,
    stop: &AtomicBool,
) {
    let max_line = board.lock().map(|b| b.max_line).unwrap_or(4 << 20);
    let mut reader = BufReader::with_capacity(256 * 1024, r);
    let mut splitter = LineSplitter::new(max_line);
    let mut batch = LineBatch::default();
    let send = |batch: &mut LineBatch| {
        let lines = std::mem::take(batch);
        // The next batch is likely as large as this one.
        batch.reserve(lines.data_len());
        tx.send(Feed::Lines {
            source: id,
            lines,
            offset: None,
        })
        .is_ok()
    };
    loop {
        let (consumed, eof) = match reader.fill_buf() {
            Ok([]) => (0, true),
            Ok(buf) => {
                splitter.push(buf, &mut batch);
                (buf.len(), false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("source {id}: read error: {e}");
                break;
            }
        };
        reader.consume(consumed);
        let idle = reader.buffer().is_empty();
        // An oversize line is sent at once: its bound is reported promptly.
        if !batch.is_empty()
            && (batch.len() >= BATCH_LINES || idle || eof || batch.oversize().next().is_some())
            && !send(&mut batch)
        {
            return;
        }
        if eof || stop.load(Ordering::Acquire) {
            break;
        }
    }
    // The stream ended (or we stop): an unfinished last line is a line.
    splitter.finish(&mut batch);
    if !batch.is_empty() {
        send(&mut batch);
    }
}

/// How the buffer stores a file's identity (`dev:ino`, the format existing
/// buffers hold).
fn file_id(p: &FilePosition) -> String {
    format!("{}:{}", p.dev, p.ino)
}

/// A stored offset as a tailer position; None when it is not a file's
/// (`dev:ino`), so the file is read from the start. An offset stored
/// before fingerprints existed has none and is trusted on device and inode
/// (see `keychain_access_tables::tail`).
fn position_of(o: &SourceOffset) -> Option<FilePosition> {
    let (dev, ino) = o.file_id.split_once(':')?;
    Some(FilePosition {
        dev: dev.parse().ok()?,
        ino: ino.parse().ok()?,
        offset: o.offset,
        fingerprint: o.fingerprint,
    })
}

/// The ingest thread is gone: nothing more can be consumed.
#[derive(Debug)]
struct IngestGone;

impl std::fmt::Display for IngestGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the ingest thread is gone")
    }
}

/// The file source's sink: lines go to the ingest thread with the
/// position, which it commits to the buffer's `source_offsets` in the same
/// transaction as the rows they produced. The buffer, not a state file of
/// its own: rows and position are then committed together (a crash can
/// neither lose lines nor store them twice), and the buffer is already the
/// extension's checked, private state.
struct FileFeed {
    id: usize,
    name: String,
    path: PathBuf,
    tx: SyncSender<Feed>,
    board: Arc<Mutex<Board>>,
    /// The last position sent for committing: where to resume after a
    /// read error (sent feeds are handled in order).
    sent: Option<FilePosition>,
}

impl FileFeed {
    fn send(&mut self, lines: LineBatch, at: FilePosition) -> Result<(), IngestGone> {
        let feed = Feed::Lines {
            source: self.id,
            lines,
            offset: Some(SourceOffset {
                source: self.name.clone(),
                file_id: file_id(&at),
                offset: at.offset,
                fingerprint: at.fingerprint,
            }),
        };
        self.tx.send(feed).map_err(|_| IngestGone)?;
        self.sent = Some(at);
        Ok(())
    }
}

impl TailSink for FileFeed {
    type Error = IngestGone;

    fn lines(&mut self, batch: LineBatch, at: FilePosition) -> Result<(), IngestGone> {
        self.send(batch, at)
    }

    fn switched(&mut self, at: FilePosition, why: Switch) -> Result<(), IngestGone> {
        // A new file: a new event sequence.
        self.tx
            .send(Feed::Started {
                source: self.id,
                child_pid: None,
            })
            .map_err(|_| IngestGone)?;
        // Rotations, truncations and lost rotated files, counted as the
        // tailer counts them, for the status table.
        board_update(&self.board, self.id, |s| {
            s.state = "running".into();
            s.last_error = None;
            s.tail.get_or_insert_default().count(why);
        });
        self.send(LineBatch::default(), at)
    }

    fn waiting(&mut self, e: &std::io::Error) {
        board_update(&self.board, self.id, |s| {
            s.state = "waiting".into();
            s.last_error = Some(format!("cannot open {}: {e}", self.path.display()));
        });
    }
}

/// Tail a capture file until `stop` is set (the shared [`Tailer`]: drains
/// a rotated file, also one rotated while the extension was stopped; holds
/// an unfinished last line until its newline; restarts at 0 after a
/// truncation).
pub fn run_file(
    id: usize,
    name: String,
    path: PathBuf,
    resume: Option<SourceOffset>,
    tx: SyncSender<Feed>,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
) {
    let max_line = board.lock().map(|b| b.max_line).unwrap_or(4 << 20);
    let mut tailer = Tailer::new(
        path.clone(),
        TailOptions {
            poll: Duration::from_millis(200),
            max_line,
            read_chunk: 256 * 1024,
            log_target: module_path!(),
        },
    );
    let mut feed = FileFeed {
        id,
        name,
        path,
        tx,
        board: board.clone(),
        sent: resume.as_ref().and_then(position_of),
    };
    while !stop.load(Ordering::Acquire) {
        match tailer.run(feed.sent, &mut feed, &stop) {
            Ok(()) | Err(TailError::Sink(IngestGone)) => break,
            Err(e @ TailError::Io { .. }) => {
                log::warn!("source {id}: {e}");
                board_update(&board, id, |s| {
                    s.state = "waiting".into();
                    s.last_error = Some(e.to_string());
                });
                sleep_unless_stopped(Duration::from_millis(500), &stop);
            }
        }
    }
    board_update(&board, id, |s| s.state = "stopped".into());
}

fn board_update(
    board: &Arc<Mutex<Board>>,
    id: usize,
    f: impl FnOnce(&mut keychain_access_tables::status::SourceStatus),
) {
    if let Ok(mut b) = board.lock() {
        if let Some(s) = b.sources.get_mut(id) {
            f(s);
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Acquire) {
        std::thread::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(rx: std::sync::mpsc::Receiver<Feed>) -> Vec<String> {
        use keychain_access_tables::lines::Line;
        let mut got = Vec::new();
        for feed in rx.iter() {
            if let Feed::Lines { lines, .. } = feed {
                for (l, _) in lines.entries() {
                    got.push(match l {
                        Line::Complete(b) => String::from_utf8_lossy(b).into_owned(),
                        Line::Oversize(n) => format!("<oversize {n}>"),
                    });
                }
            }
        }
        got
    }

    #[test]
    fn the_command_pump_sends_every_line_oversize_counted_and_the_unterminated_last_one() {
        let board = Arc::new(Mutex::new(Board {
            max_line: 8,
            ..Default::default()
        }));
        let stop = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        pump(0, &b"ab\n0123456789\nok\ntail"[..], &tx, &board, &stop);
        drop(tx);
        assert_eq!(received(rx), ["ab", "<oversize 10>", "ok", "tail"]);
        // An over-long last line without a newline is counted, not lost.
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        pump(0, &b"ab\n0123456789"[..], &tx, &board, &stop);
        drop(tx);
        assert_eq!(received(rx), ["ab", "<oversize 10>"]);
    }

    #[test]
    fn stored_offsets_read_back_as_file_positions() {
        let stored = |file_id: &str| SourceOffset {
            source: "file:x".into(),
            file_id: file_id.into(),
            offset: 7,
            fingerprint: None,
        };
        let p = FilePosition {
            dev: 1,
            ino: 2,
            offset: 7,
            fingerprint: None,
        };
        // Stored before fingerprints: trusted on device and inode.
        assert_eq!(position_of(&stored(&file_id(&p))), Some(p));
        let fingerprint = keychain_access_tables::tail::Fingerprint::from_slice(&[7; 32]);
        let with = SourceOffset {
            fingerprint,
            ..stored(&file_id(&p))
        };
        assert_eq!(position_of(&with), Some(FilePosition { fingerprint, ..p }));
        // Not a file's identity: read the file from the start.
        assert_eq!(position_of(&stored("")), None);
        assert_eq!(position_of(&stored("eslogger=5:9")), None);
    }

    #[test]
    fn known_eslogger_failures_are_explained() {
        let (state, msg) =
            explain_stderr("ERROR: es_new_client: ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED").unwrap();
        assert_eq!(state, "not_permitted");
        assert!(msg.contains("Full Disk Access"));
        assert!(explain_stderr("hello").is_none());
    }
}
