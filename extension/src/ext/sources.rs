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

/// What sources send to the ingest thread.
pub enum Feed {
    Lines {
        source: usize,
        lines: Vec<Vec<u8>>,
        oversize: Vec<usize>,
        offset: Option<SourceOffset>,
    },
    /// A new process (or file) started: reset sequence tracking; ignore its pid.
    Started {
        source: usize,
        child_pid: Option<u32>,
    },
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
            pump(id, out, None, &tx, &board, &stop);
        }
        // stdout closed: the child exited or we are stopping.
        if stop.load(Ordering::Acquire) {
            let _ = child.kill();
        }
        let status = child.wait();
        if let Ok(mut c) = children.lock() {
            c.retain(|p| *p != pid);
        }
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

/// Read lines from a stream and send them in batches. Returns at EOF.
fn pump<R: Read>(
    id: usize,
    r: R,
    _offset: Option<u64>,
    tx: &SyncSender<Feed>,
    board: &Arc<Mutex<Board>>,
    stop: &AtomicBool,
) {
    let max_line = board.lock().map(|b| b.max_line).unwrap_or(4 << 20);
    let mut reader = BufReader::with_capacity(256 * 1024, r);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut oversize: Vec<usize> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut skipping: Option<usize> = None;
    loop {
        let (consumed, eof) = {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("source {id}: read error: {e}");
                    break;
                }
            };
            if buf.is_empty() {
                (0, true)
            } else {
                let mut start = 0;
                while let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
                    let piece = &buf[start..start + i];
                    match skipping.take() {
                        Some(n) => oversize.push(n + piece.len()),
                        None if cur.len() + piece.len() > max_line => {
                            oversize.push(cur.len() + piece.len())
                        }
                        None => {
                            cur.extend_from_slice(piece);
                            lines.push(std::mem::take(&mut cur));
                        }
                    }
                    cur.clear();
                    start += i + 1;
                }
                let rest = &buf[start..];
                match &mut skipping {
                    Some(n) => *n += rest.len(),
                    None if cur.len() + rest.len() > max_line => {
                        skipping = Some(cur.len() + rest.len());
                        cur = Vec::new();
                    }
                    None => cur.extend_from_slice(rest),
                }
                (buf.len(), false)
            }
        };
        reader.consume(consumed);
        let idle = reader.buffer().is_empty();
        if !lines.is_empty() && (lines.len() >= BATCH_LINES || idle || eof) || !oversize.is_empty()
        {
            let batch = Feed::Lines {
                source: id,
                lines: std::mem::take(&mut lines),
                oversize: std::mem::take(&mut oversize),
                offset: None,
            };
            if tx.send(batch).is_err() {
                return;
            }
        }
        if eof || stop.load(Ordering::Acquire) {
            break;
        }
    }
    if !cur.is_empty() {
        let _ = tx.send(Feed::Lines {
            source: id,
            lines: vec![cur],
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
        let mut pending: Vec<u8> = Vec::new();
        let mut skipping: Option<usize> = None;
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
                    Ok(m) if m.len() < offset + pending.len() as u64 => {
                        log::info!("{}: truncated; reading from the start", path.display());
                        resume = None;
                        continue 'reopen;
                    }
                    _ => {}
                }
                sleep_unless_stopped(Duration::from_millis(200), &stop);
                continue;
            }
            let data = &chunk[..n];
            let mut lines = Vec::new();
            let mut oversize = Vec::new();
            let mut start = 0;
            let mut consumed_to = offset + pending.len() as u64;
            while let Some(i) = memchr::memchr(b'\n', &data[start..]) {
                let piece = &data[start..start + i];
                match skipping.take() {
                    Some(k) => oversize.push(k + piece.len()),
                    None if pending.len() + piece.len() > max_line => {
                        oversize.push(pending.len() + piece.len())
                    }
                    None => {
                        let mut line = std::mem::take(&mut pending);
                        line.extend_from_slice(piece);
                        lines.push(line);
                    }
                }
                pending.clear();
                start += i + 1;
                consumed_to = offset + (start as u64);
            }
            let rest = &data[start..];
            match &mut skipping {
                Some(k) => *k += rest.len(),
                None if pending.len() + rest.len() > max_line => {
                    skipping = Some(pending.len() + rest.len());
                    pending = Vec::new();
                }
                None => pending.extend_from_slice(rest),
            }
            // Offset of the first byte not yet part of a complete line.
            let new_offset = if start > 0 { consumed_to } else { offset };
            let advanced = offset + n as u64;
            let _ = advanced;
            if !lines.is_empty() || !oversize.is_empty() {
                let batch = Feed::Lines {
                    source: id,
                    lines,
                    oversize,
                    offset: Some(SourceOffset {
                        source: name.clone(),
                        file_id: fid.clone(),
                        offset: new_offset,
                    }),
                };
                if tx.send(batch).is_err() {
                    break 'reopen;
                }
            }
            // `offset` tracks the start of `pending` in the file.
            offset = new_offset;
            if start == 0 {
                // No newline in this chunk: pending grew; the offset stays.
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
    fn known_eslogger_failures_are_explained() {
        let (state, msg) =
            explain_stderr("ERROR: es_new_client: ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED").unwrap();
        assert_eq!(state, "not_permitted");
        assert!(msg.contains("Full Disk Access"));
        assert!(explain_stderr("hello").is_none());
    }
}
