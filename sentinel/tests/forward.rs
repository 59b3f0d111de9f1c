//! `forward`: tailing a results log (appends, partial lines, rotation,
//! truncation, restart) into Sentinel through the loopback mock.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use keychain_access_sentinel::{forward, SentinelConfig, Stats};
use serde_json::json;

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open results");
    f.write_all(text.as_bytes()).expect("append");
}

fn lines(range: std::ops::Range<usize>) -> String {
    range.map(|i| line(i, 40) + "\n").collect()
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<Stats, keychain_access_sentinel::Error>>,
}

fn start(cfg: &SentinelConfig, results: &Path) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let (cfg, results, s) = (cfg.clone(), PathBuf::from(results), Arc::clone(&stop));
    let handle = std::thread::spawn(move || forward(&cfg, &results, s));
    Running { stop, handle }
}

impl Running {
    fn stop(self) -> Stats {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .expect("forward thread")
            .expect("forward ok")
    }
}

fn assert_exactly_once(mock: &Mock, n: usize) {
    let mut ids = mock.ids();
    assert_eq!(mock.unique_ids(), n, "every line arrives");
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(total, ids.len(), "no duplicates");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[test]
fn follows_appends_partial_lines_rotation_and_truncation() {
    let mock = Mock::start();
    let dir = TempDir::new("fwd");
    let cfg = config(&mock, dir.path(), json!({}));
    let results = dir.path().join("osqueryd.results.log");
    // Started before the file exists: it waits.
    let run = start(&cfg, &results);
    std::thread::sleep(Duration::from_millis(100));
    append(&results, &lines(0..20));
    assert!(wait_until(10, || mock.unique_ids() == 20), "first lines");

    // A line written in two pieces is read once, whole.
    let l20 = line(20, 40);
    append(&results, &l20[..30]);
    std::thread::sleep(Duration::from_millis(100));
    append(&results, &format!("{}\n{}", &l20[30..], lines(21..40)));
    assert!(wait_until(10, || mock.unique_ids() == 40), "appends");

    // Rotation: rename, a last write to the old file, then a new file.
    let rotated = dir.path().join("osqueryd.results.log.1");
    std::fs::rename(&results, &rotated).expect("rotate");
    append(&rotated, &lines(40..45));
    std::thread::sleep(Duration::from_millis(100));
    append(&results, &lines(45..60));
    assert!(wait_until(10, || mock.unique_ids() == 60), "rotation");

    // copytruncate-style: truncated, then written again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&results)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    std::thread::sleep(Duration::from_millis(100));
    append(&results, &lines(60..70));
    assert!(wait_until(10, || mock.unique_ids() == 70), "truncation");

    // An invalid line and a blank one.
    append(&results, "this is not json\n\n");
    append(&results, &lines(70..71));
    assert!(wait_until(10, || mock.unique_ids() == 71));

    let stats = run.stop();
    assert_eq!(stats.accepted, 71);
    assert_eq!(stats.delivered, 71);
    assert_eq!(stats.dropped_invalid, 1);
    assert_eq!(stats.queued_rows, 0);
    // The tailer's events are counters in the stats and its line.
    assert_eq!(
        (stats.rotations, stats.truncations, stats.rotated_lost),
        (1, 1, 0)
    );
    let line = stats.to_string();
    assert!(
        line.contains(" rotations=1 truncations=1 rotated_lost=0"),
        "{line}"
    );
    assert_exactly_once(&mock, 71);
}

#[test]
fn restart_resumes_and_drains_a_file_rotated_while_stopped() {
    let mock = Mock::start();
    let dir = TempDir::new("fwd-restart");
    let cfg = config(&mock, dir.path(), json!({}));
    let results = dir.path().join("results.log");
    append(&results, &lines(0..30));
    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 30));
    let s = run.stop();
    assert_eq!((s.delivered, s.queued_rows), (30, 0));

    // While stopped: more lines, then rotation and a new file.
    append(&results, &lines(30..40));
    std::fs::rename(&results, dir.path().join("results.log.1")).expect("rotate");
    append(&results, &lines(40..50));

    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 50));
    let s = run.stop();
    assert_eq!((s.accepted, s.delivered), (50, 50));
    assert_eq!((s.rotations, s.rotated_lost), (1, 0), "drained, not lost");
    assert_exactly_once(&mock, 50);

    // And once more with nothing new: nothing is sent again, and the
    // persisted rotation is neither lost nor counted twice.
    let before = mock.ids().len();
    let run = start(&cfg, &results);
    std::thread::sleep(Duration::from_millis(300));
    let s = run.stop();
    assert_eq!(mock.ids().len(), before);
    assert_eq!((s.rotations, s.truncations, s.rotated_lost), (1, 0, 0));
}

#[test]
fn a_rotated_file_gone_while_stopped_is_counted_as_lost() {
    let mock = Mock::start();
    let dir = TempDir::new("fwd-lost");
    let cfg = config(&mock, dir.path(), json!({}));
    // A folder of its own (the same-folder case is the next test).
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let results = logs.join("results.log");
    append(&results, &lines(0..5));
    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 5));
    run.stop();

    // While stopped: lines nobody read, then the file is rotated away and
    // deleted (the new file made first, so its inode is not the old one's).
    append(&results, &lines(5..8));
    let gone = logs.join("results.log.gone");
    std::fs::rename(&results, &gone).expect("rotate");
    append(&results, &lines(8..10));
    std::fs::remove_file(&gone).expect("delete");

    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 7));
    let s = run.stop();
    assert_eq!((s.rotations, s.truncations, s.rotated_lost), (0, 0, 1));
    assert!(s.to_string().contains(" rotated_lost=1"), "{s}");
}

#[test]
fn a_rotated_file_gone_while_stopped_is_lost_even_when_the_queue_beside_it_has_its_inode() {
    use std::os::unix::fs::MetadataExt;
    let mock = Mock::start();
    let dir = TempDir::new("fwd-lost-beside");
    let cfg = config(&mock, dir.path(), json!({}));
    // The results log beside the queue, whose files may be given a deleted
    // log's inode.
    let results = dir.path().join("results.log");
    assert_eq!(cfg.queue_path.parent(), results.parent());
    append(&results, &lines(0..5));
    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 5));
    run.stop();

    // While stopped: lines nobody read, the file rotated away and deleted,
    // and a new one.
    append(&results, &lines(5..8));
    let gone = dir.path().join("results.log.1");
    std::fs::rename(&results, &gone).expect("rotate");
    append(&results, &lines(8..10));
    std::fs::remove_file(&gone).expect("delete");
    // The freed inode went to the queue's own file (as the file system
    // may do for its -wal or -shm; here made certain for the main file).
    let queue_file = std::fs::metadata(&cfg.queue_path).expect("queue");
    {
        let c = rusqlite::Connection::open(&cfg.queue_path).expect("raw queue");
        let n = c
            .execute(
                "UPDATE cursors SET dev = ?1, ino = ?2",
                [queue_file.dev() as i64, queue_file.ino() as i64],
            )
            .expect("update cursor");
        assert_eq!(n, 1);
    }

    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 7));
    std::thread::sleep(Duration::from_millis(300));
    let s = run.stop();
    assert_eq!((s.rotations, s.truncations, s.rotated_lost), (0, 0, 1));
    // Not one byte of the queue was read as lines.
    assert_eq!((s.accepted, s.dropped_invalid), (7, 0));
    assert_exactly_once(&mock, 7);
}

#[test]
fn an_unfinished_last_line_survives_a_restart_and_a_rotated_files_last_line_is_read() {
    let mock = Mock::start();
    let dir = TempDir::new("fwd-unfinished");
    let cfg = config(&mock, dir.path(), json!({}));
    let results = dir.path().join("results.log");
    let l3 = line(3, 40);
    append(&results, &format!("{}{}", lines(0..3), &l3[..20]));
    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 3));
    std::thread::sleep(Duration::from_millis(200));
    let s = run.stop();
    assert_eq!(
        (s.accepted, s.dropped_invalid),
        (3, 0),
        "half a line is held back"
    );

    // While stopped: the line is completed, one more is left unterminated,
    // and the file is rotated away with it.
    append(&results, &format!("{}\n{}", &l3[20..], line(4, 40)));
    std::fs::rename(&results, dir.path().join("results.log.1")).expect("rotate");
    append(&results, &lines(5..7));
    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 7));
    let s = run.stop();
    assert_eq!((s.accepted, s.dropped_invalid), (7, 0));
    assert_exactly_once(&mock, 7);
}

#[test]
fn over_long_line_is_skipped_and_counted() {
    let mock = Mock::start();
    let dir = TempDir::new("fwd-long");
    let cfg = config(&mock, dir.path(), json!({"batch_max_bytes": 1000}));
    let results = dir.path().join("results.log");
    let mut text = lines(0..3);
    // Longer than a 1 MiB read chunk, so it is skipped across reads.
    text.push_str(&line(3, 1_200_000));
    text.push('\n');
    text.push_str(&lines(4..6));
    append(&results, &text);
    let run = start(&cfg, &results);
    assert!(wait_until(10, || mock.unique_ids() == 5));
    let s = run.stop();
    assert_eq!(s.dropped_too_large, 1);
    assert_eq!(s.delivered, 5);
    let mut ids = mock.ids();
    ids.sort();
    assert_eq!(ids, vec!["e0", "e1", "e2", "e4", "e5"]);
}

#[test]
fn refuses_a_bad_secret_file_before_reading() {
    use std::os::unix::fs::PermissionsExt;
    let mock = Mock::start();
    let dir = TempDir::new("fwd-secret");
    let cfg = config(&mock, dir.path(), json!({}));
    std::fs::set_permissions(
        &cfg.client_secret_file,
        std::fs::Permissions::from_mode(0o604),
    )
    .expect("chmod");
    let e = forward(
        &cfg,
        &dir.path().join("r.log"),
        Arc::new(AtomicBool::new(false)),
    )
    .expect_err("refused");
    assert!(e.to_string().contains("0600"), "{e}");
    assert!(!cfg.queue_path.exists(), "nothing created");
}
