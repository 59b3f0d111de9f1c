//! Live sources: a command whose stdout is a stream of JSON lines (eslogger,
//! `log stream`), and a tailed capture file. Both feed raw lines to the
//! ingest thread; neither parses anything.
//!
//! The command source restarts its command with exponential backoff when it
//! dies and turns its known failures into status a person can act on. The
//! file source starts at the beginning the first time, follows appends,
//! survives rotation and truncation, and resumes at its stored offset after
//! a restart (the offset is committed with the rows it produced).

use super::status::Board;
use keychain_access_tables::store::SourceOffset;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lines of one batch in one buffer. A heap buffer per line cost about
/// 12% of the live path's CPU: allocated by the source thread, freed by the
/// ingest thread (docs/performance.md).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineBatch {
    data: Vec<u8>,
    /// End offset of each line in `data`.
    ends: Vec<usize>,
}

impl LineBatch {
    pub fn push(&mut self, line: &[u8]) {
        self.data.extend_from_slice(line);
        self.ends.push(self.data.len());
    }

    /// One line made of two pieces (a line that spanned two reads).
    fn push_joined(&mut self, head: &[u8], tail: &[u8]) {
        self.data.extend_from_slice(head);
        self.push(tail);
    }

    /// Room for `bytes` of lines without growing (growing by doubling
    /// would copy the batch again and again).
    pub fn reserve(&mut self, bytes: usize) {
        self.data.reserve(bytes);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The lines, in order, without their newlines.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let line = self.data.get(start..end).unwrap_or(&[]);
            start = end;
            line
        })
    }
}

impl<T: AsRef<[u8]>> From<Vec<T>> for LineBatch {
    fn from(lines: Vec<T>) -> Self {
        let mut b = LineBatch::default();
        for l in &lines {
            b.push(l.as_ref());
        }
        b
    }
}

/// What sources send to the ingest thread.
pub enum Feed {
    Lines {
        source: usize,
        lines: LineBatch,
        oversize: Vec<usize>,
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

/// Splits bytes that arrive in chunks (a pipe, a tailed file) into lines,
/// with the line-length cap: an over-long line is skipped and only its
/// length kept, never buffered whole. (`scan::LineReader` does the same for
/// a `BufRead` it owns; sources need to feed chunks and know the offsets.)
struct LineSplitter {
    partial: Vec<u8>,
    skipping: Option<usize>,
    cap: usize,
}

/// What a chunk completed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Split {
    lines: LineBatch,
    oversize: Vec<usize>,
}

impl Split {
    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.oversize.is_empty()
    }
}

impl LineSplitter {
    fn new(cap: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            skipping: None,
            cap: cap.max(1),
        }
    }

    /// Feed a chunk. Returns how many bytes of it end complete lines (the
    /// position just after its last newline; 0 when it holds none).
    fn push(&mut self, chunk: &[u8], out: &mut Split) -> usize {
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &chunk[start..]) {
            let piece = &chunk[start..start + i];
            match self.skipping.take() {
                Some(n) => out.oversize.push(n + piece.len()),
                None if self.partial.len() + piece.len() > self.cap => {
                    out.oversize.push(self.partial.len() + piece.len());
                    self.partial.clear();
                }
                None if self.partial.is_empty() => out.lines.push(piece),
                None => {
                    out.lines.push_joined(&self.partial, piece);
                    self.partial.clear();
                }
            }
            start += i + 1;
        }
        let rest = &chunk[start..];
        match &mut self.skipping {
            Some(n) => *n += rest.len(),
            None if self.partial.len() + rest.len() > self.cap => {
                self.skipping = Some(self.partial.len() + rest.len());
                self.partial = Vec::new();
            }
            None => self.partial.extend_from_slice(rest),
        }
        start
    }

    /// The unterminated last line at the end of a stream.
    fn finish(&mut self) -> Option<Vec<u8>> {
        if self.skipping.take().is_some() || self.partial.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.partial))
    }
}

/// Read lines from a stream and send them in batches. Returns at EOF.
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
    let mut split = Split::default();
    loop {
        let (consumed, eof) = match reader.fill_buf() {
            Ok([]) => (0, true),
            Ok(buf) => {
                splitter.push(buf, &mut split);
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
        if !split.oversize.is_empty()
            || !split.lines.is_empty() && (split.lines.len() >= BATCH_LINES || idle || eof)
        {
            let batch = std::mem::take(&mut split);
            // The next batch is likely as large as this one.
            split.lines.reserve(batch.lines.data.len());
            let feed = Feed::Lines {
                source: id,
                lines: batch.lines,
                oversize: batch.oversize,
                offset: None,
            };
            if tx.send(feed).is_err() {
                return;
            }
        }
        if eof || stop.load(Ordering::Acquire) {
            break;
        }
    }
    if let Some(last) = splitter.finish() {
        let _ = tx.send(Feed::Lines {
            source: id,
            lines: LineBatch::from(vec![last]),
            oversize: Vec::new(),
            offset: None,
        });
    }
}

/// Identity of a file: device and inode.
#[cfg(unix)]
pub fn file_id(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}:{}", meta.dev(), meta.ino())
}

#[cfg(not(unix))]
pub fn file_id(meta: &std::fs::Metadata) -> String {
    format!("{:?}", meta.created().ok())
}

/// Tail a capture file until `stop` is set.
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
    let mut resume = resume;
    'reopen: while !stop.load(Ordering::Acquire) {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                board_update(&board, id, |s| {
                    s.state = "waiting".into();
                    s.last_error = Some(format!("cannot open {}: {e}", path.display()));
                });
                sleep_unless_stopped(Duration::from_millis(500), &stop);
                continue;
            }
        };
        let Ok(meta) = file.metadata() else {
            sleep_unless_stopped(Duration::from_millis(500), &stop);
            continue;
        };
        let fid = file_id(&meta);
        let mut offset: u64 = match resume.take() {
            Some(r) if r.file_id == fid && r.offset <= meta.len() => r.offset,
            _ => 0,
        };
        if file.seek(SeekFrom::Start(offset)).is_err() {
            offset = 0;
        }
        let _ = tx.send(Feed::Started {
            source: id,
            child_pid: None,
        });
        board_update(&board, id, |s| {
            s.state = "running".into();
            s.last_error = None;
        });
        // `pos`: the next byte to read; `line_start`: the first byte not yet
        // part of a complete line (what is committed as the offset).
        let mut pos = offset;
        let mut splitter = LineSplitter::new(max_line);
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            if stop.load(Ordering::Acquire) {
                break 'reopen;
            }
            let n = match file.read(&mut chunk) {
                Ok(n) => n,
                Err(e) => {
                    board_update(&board, id, |s| {
                        s.last_error = Some(format!("read {}: {e}", path.display()))
                    });
                    sleep_unless_stopped(Duration::from_millis(500), &stop);
                    continue 'reopen;
                }
            };
            if n == 0 {
                // At the end: rotated or truncated?
                match std::fs::metadata(&path) {
                    Ok(m) if file_id(&m) != fid => {
                        log::info!("{}: rotated; reading the new file", path.display());
                        continue 'reopen;
                    }
                    Ok(m) if m.len() < pos => {
                        log::info!("{}: truncated; reading from the start", path.display());
                        resume = None;
                        continue 'reopen;
                    }
                    _ => {}
                }
                sleep_unless_stopped(Duration::from_millis(200), &stop);
                continue;
            }
            let chunk_start = pos;
            pos += n as u64;
            let mut split = Split::default();
            split.lines.reserve(n + splitter.partial.len());
            let end = splitter.push(&chunk[..n], &mut split);
            if split.is_empty() {
                continue;
            }
            let line_start = chunk_start + end as u64;
            let batch = Feed::Lines {
                source: id,
                lines: split.lines,
                oversize: split.oversize,
                offset: Some(SourceOffset {
                    source: name.clone(),
                    file_id: fid.clone(),
                    offset: line_start,
                }),
            };
            if tx.send(batch).is_err() {
                break 'reopen;
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

    #[test]
    fn line_splitter_handles_chunk_boundaries_caps_and_offsets() {
        let mut sp = LineSplitter::new(8);
        let mut out = Split::default();
        // A line split across two chunks; the end position is per chunk.
        assert_eq!(sp.push(b"ab", &mut out), 0);
        assert_eq!(sp.push(b"c\nde", &mut out), 2);
        assert_eq!(out.lines, LineBatch::from(vec![b"abc"]));
        // An over-long line spanning chunks is skipped and measured.
        assert_eq!(sp.push(b"fghijklm", &mut out), 0);
        assert_eq!(sp.push(b"no\nok\n", &mut out), 6);
        assert_eq!(out.oversize, vec![12]);
        assert_eq!(out.lines, LineBatch::from(vec![&b"abc"[..], b"ok"]));
        assert_eq!(
            out.lines.iter().collect::<Vec<_>>(),
            vec![&b"abc"[..], b"ok"]
        );
        assert_eq!(sp.push(b"tail", &mut out), 0);
        assert_eq!(sp.finish(), Some(b"tail".to_vec()));
        assert_eq!(sp.finish(), None);
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
