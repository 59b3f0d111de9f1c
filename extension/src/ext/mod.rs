//! Extension mode: collect continuously, buffer in SQLite, answer osquery.
//!
//! osquery starts an autoloaded extension as `<path> --socket PATH --timeout
//! N --interval N [--verbose]`. We wait up to `--timeout` seconds for the
//! socket, register as extension `keychain_access` (sending our version)
//! with the tables `keychain_access_events` and `keychain_access_status`,
//! and run until osquery goes away (ping fails or the socket is removed),
//! asks us to shut down, or we get SIGTERM/SIGINT. A refused registration is
//! a clear error and a non-zero exit. On the way out, child processes are
//! ended and nothing is left behind but the database.

pub mod config;
pub mod dedup;
pub mod ingest;
pub mod logger;
pub mod osquery_es;
pub mod sources;
pub mod status;
pub mod tables;

use keychain_access_tables::state_file::StateFileError;
use keychain_access_tables::status::SourceStatus;
use keychain_access_tables::store::{Store, StoreError};
use keychain_access_tables::{ScanOptions, Scanner, Tuning};
use osquery_rust::plugin::Plugin;
use osquery_rust::{RegistrationRefused, Server};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The extension's registered name (what `--extensions_require` names).
pub const EXTENSION_NAME: &str = "keychain_access";

#[derive(Debug)]
pub struct ExtensionArgs {
    pub socket: PathBuf,
    pub timeout: u64,
    pub interval: u64,
    pub config: Option<PathBuf>,
    pub inputs: Vec<PathBuf>,
}

/// Why extension mode stopped with an error. The message is complete on its
/// own (what it wraps is part of the text, not a chained source); a
/// supervisor can tell a refused registration (another copy running) from
/// the rest.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Others could change the tuning file.
    #[error("tuning {0}")]
    UntrustedTuning(StateFileError),
    #[error("{0}")]
    Tuning(keychain_access_tables::tuning::TuningError),
    #[error("cannot reach osquery at {socket}: {error}")]
    Unreachable {
        socket: String,
        error: std::io::Error,
    },
    /// The buffer's folder could not be created, or others could write to it.
    #[error("database folder {0}")]
    DatabaseFolder(StateFileError),
    #[error("{0}")]
    Store(StoreError),
    #[error("config `sentinel`: {0}")]
    Sentinel(keychain_access_sentinel::Error),
    /// osquery's extension manager said no (a name already registered).
    #[error(
        "osquery refused to register extension `{EXTENSION_NAME}`: {message} (is another copy running?)"
    )]
    RegistrationRefused { message: String },
    #[error("extension server: {0}")]
    Server(osquery_rust::thrift::Error),
}

/// Create the database directory (0700, ours) when it does not exist, and
/// refuse one that others could write to.
fn ensure_db_dir(db: &Path) -> Result<(), ExtensionError> {
    let dir = keychain_access_tables::state_file::parent_dir(db);
    keychain_access_tables::state_file::ensure_dir(dir).map_err(ExtensionError::DatabaseFolder)
}

/// Extension mode, start to finish: load the config, connect to osquery,
/// start the sources and serve until osquery goes away or a signal comes.
pub fn run(args: ExtensionArgs) -> Result<(), ExtensionError> {
    let mut cfg = config::load(args.config.as_deref())?;
    cfg.sources.files.extend(args.inputs.iter().cloned());
    let tuning = if cfg.no_tuning {
        Tuning::none()
    } else if let Some(t) = &cfg.tuning {
        keychain_access_tables::state_file::check_trusted_input(t)
            .map_err(ExtensionError::UntrustedTuning)?;
        Tuning::from_file(t).map_err(ExtensionError::Tuning)?
    } else {
        Tuning::builtin()
    };
    // The default `log stream` predicate follows the unified-log patterns, so
    // a pattern a fleet adds in its tuning file is also streamed.
    if cfg.sources.log_stream.command == config::default_log_stream_command() {
        let mut argv = vec!["/usr/bin/log".to_string()];
        argv.extend(
            keychain_access_tables::unified_log::LOG_STREAM_ARGS
                .iter()
                .map(|s| s.to_string()),
        );
        argv.push("--predicate".into());
        argv.push(keychain_access_tables::unified_log::log_stream_predicate(
            &tuning,
        ));
        cfg.sources.log_stream.command = argv;
    }

    // Connect to osquery first: without it there is nothing to serve.
    let timeout = Duration::from_secs(args.timeout.max(1));
    let socket = args.socket.to_string_lossy().into_owned();
    let mut server: Server<Plugin> =
        Server::new_with_timeout(Some(EXTENSION_NAME), &socket, timeout)
            .map_err(|error| ExtensionError::Unreachable {
                socket: socket.clone(),
                error,
            })?
            .with_version(env!("CARGO_PKG_VERSION"))
            // osquery calls from a few threads at once; each worker keeps its own
            // allocator arena, so a small pool keeps memory down.
            .with_listener_threads(4)
            .with_ping_interval(
                Duration::from_millis(500).min(Duration::from_secs(args.interval.max(1))),
            );

    ensure_db_dir(&cfg.database)?;
    let mut store = Store::open(&cfg.database).map_err(ExtensionError::Store)?;
    // A large answer spills, encoded, to an unlinked file beside the buffer
    // (a directory Store::open has checked is ours and private) instead of
    // being held in memory.
    let spool_dir = cfg
        .database
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    server = server.with_spool_dir(spool_dir);

    // Sources, in status-row order.
    struct Planned {
        status: SourceStatus,
        live: bool,
    }
    let mut planned: Vec<Planned> = Vec::new();
    if cfg.sources.eslogger.enabled {
        planned.push(Planned {
            status: SourceStatus {
                source: "eslogger".into(),
                kind: "command".into(),
                state: "starting".into(),
                ..Default::default()
            },
            live: true,
        });
    }
    if cfg.sources.log_stream.enabled {
        planned.push(Planned {
            status: SourceStatus {
                source: "log_stream".into(),
                kind: "command".into(),
                state: "starting".into(),
                ..Default::default()
            },
            live: true,
        });
    }
    if cfg.sources.osquery_es.enabled {
        planned.push(Planned {
            status: SourceStatus {
                source: osquery_es::SOURCE_NAME.into(),
                kind: "osquery".into(),
                state: "starting".into(),
                ..Default::default()
            },
            live: true,
        });
    }
    for f in &cfg.sources.files {
        planned.push(Planned {
            status: SourceStatus {
                source: format!("file:{}", f.display()),
                kind: "file".into(),
                state: "starting".into(),
                // Tailed: its rotation counters are 0, not NULL, from the start.
                tail: Some(Default::default()),
                ..Default::default()
            },
            live: false,
        });
    }
    let board = Arc::new(Mutex::new(status::Board {
        sources: planned.iter().map(|p| p.status.clone()).collect(),
        max_line: cfg.max_line_bytes,
        buffer_rows: store.row_count().unwrap_or(0),
        buffer_bytes: store.size_bytes().unwrap_or(0),
        ..Default::default()
    }));
    if planned.is_empty() {
        log::warn!("no sources configured: the table will only show what the buffer already holds");
    }

    // Resume offsets for file sources.
    let osquery_resume = if cfg.sources.osquery_es.enabled {
        store
            .source_offset(osquery_es::SOURCE_NAME)
            .map_err(ExtensionError::Store)?
    } else {
        None
    };
    let mut resumes = Vec::new();
    for f in &cfg.sources.files {
        let name = format!("file:{}", f.display());
        resumes.push(store.source_offset(&name).map_err(ExtensionError::Store)?);
    }
    // A fresh start of the buffer file is ours to keep; make sure of the mode.
    let _ = &mut store;

    let stop = Arc::new(AtomicBool::new(false));
    let children: Arc<Mutex<Vec<u32>>> = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::sync_channel::<sources::Feed>(64);
    #[allow(unused_mut)]
    let mut scanner = Scanner::new(ScanOptions {
        max_line: cfg.max_line_bytes,
        cache_capacity: cfg.process_cache_entries,
        tuning,
    });
    // Processes that were running before eslogger started have no exec
    // event: seed the tree from the running processes (macOS only).
    #[cfg(target_os = "macos")]
    seed_process_tree(
        &mut scanner,
        keychain_access_tables::procs::running_processes(
            keychain_access_tables::classify::CACHE_CMDLINE_MAX,
        ),
    );
    let mut ingest = ingest::Ingest::new(
        store,
        scanner,
        board.clone(),
        cfg.retention.clone(),
        planned.iter().map(|p| p.live).collect(),
    );
    ingest.osquery_source = planned
        .iter()
        .position(|p| p.status.source == osquery_es::SOURCE_NAME);
    // Both ES sources see the same accesses: keep one row of each.
    if cfg.sources.eslogger.enabled && cfg.sources.osquery_es.enabled {
        let sides = planned
            .iter()
            .map(|p| match p.status.source.as_str() {
                "eslogger" => Some(0u8),
                osquery_es::SOURCE_NAME => Some(1u8),
                _ => None,
            })
            .collect();
        ingest.dedup = Some(dedup::CrossSourceDedup::new(sides));
    }
    // `keychain-access selftest` runs register here; their rows are marked.
    match crate::selftest::ensure_registration_dir(&cfg.database) {
        Ok(dir) => ingest.selftest = Some(crate::selftest::Marks::new(dir)),
        Err(e) => log::warn!("self-test marking off: {e}"),
    }
    let mut threads = Vec::new();
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || ingest.run(rx, stop)));
    }
    let mut id = 0usize;
    for (enabled, src) in [
        (cfg.sources.eslogger.enabled, cfg.sources.eslogger.clone()),
        (
            cfg.sources.log_stream.enabled,
            cfg.sources.log_stream.clone(),
        ),
    ] {
        if !enabled {
            continue;
        }
        let (tx, board, children, stop) =
            (tx.clone(), board.clone(), children.clone(), stop.clone());
        let this = id;
        threads.push(std::thread::spawn(move || {
            sources::run_command(
                this,
                sources::CommandSpec {
                    argv: src.command,
                    backoff_initial: Duration::from_millis(src.restart_backoff_initial_ms),
                    backoff_max: Duration::from_millis(src.restart_backoff_max_ms),
                },
                tx,
                board,
                children,
                stop,
            )
        }));
        id += 1;
    }
    if cfg.sources.osquery_es.enabled {
        let (tx, board, stop) = (tx.clone(), board.clone(), stop.clone());
        let spec = osquery_es::Spec {
            socket: args.socket.clone(),
            interval: Duration::from_secs(cfg.sources.osquery_es.interval_seconds),
            io_timeout: Duration::from_secs(30),
        };
        let this = id;
        threads.push(std::thread::spawn(move || {
            osquery_es::run(this, spec, osquery_resume, tx, board, stop)
        }));
        id += 1;
    }
    for (f, resume) in cfg.sources.files.iter().zip(resumes) {
        let (tx, board, stop) = (tx.clone(), board.clone(), stop.clone());
        let (this, path, name) = (id, f.clone(), format!("file:{}", f.display()));
        threads.push(std::thread::spawn(move || {
            sources::run_file(this, name, path, resume, tx, board, stop)
        }));
        id += 1;
    }
    drop(tx);

    server.register_plugin(Plugin::readonly_table(tables::EventsTable::new(
        cfg.database.clone(),
        cfg.max_result_rows,
        board.clone(),
    )));
    // The Sentinel logger plugin (unconfigured without a `sentinel` section).
    let doc = cfg
        .sentinel
        .as_ref()
        .map(|s| serde_json::json!({ "sentinel": s }));
    let sentinel = Arc::new(
        keychain_access_sentinel::SentinelLogger::from_document(doc.as_ref())
            .map_err(ExtensionError::Sentinel)?,
    );
    server.register_plugin(Plugin::readonly_table(tables::StatusTable {
        board: board.clone(),
        sentinel: Some(sentinel.clone()),
    }));
    server.register_plugin(Plugin::logger(logger::SentinelLoggerPlugin {
        inner: sentinel.clone(),
    }));

    // osquery removes its socket when it exits; notice that too.
    let handle = server.get_stop_handle();
    {
        let socket = args.socket.clone();
        let stop = stop.clone();
        let interval = Duration::from_secs(args.interval.max(1));
        std::thread::spawn(move || {
            let mut last_check = Instant::now();
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(200));
                if last_check.elapsed() >= interval.min(Duration::from_secs(1)) {
                    last_check = Instant::now();
                    if !socket.exists() {
                        log::warn!(
                            "osquery's socket {} is gone; shutting down",
                            socket.display()
                        );
                        handle.stop();
                        break;
                    }
                }
            }
        });
    }

    let result = server.run_with_signal_handling();
    sentinel.shutdown();
    // Stop sources, end children, let ingest commit what it has.
    stop.store(true, Ordering::Release);
    if let Ok(c) = children.lock() {
        for pid in c.iter() {
            kill_child(*pid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    match result {
        Ok(()) => Ok(()),
        Err(e) => match RegistrationRefused::from_thrift_error(&e) {
            Some(r) => Err(ExtensionError::RegistrationRefused {
                message: r.message.clone(),
            }),
            None => Err(ExtensionError::Server(e)),
        },
    }
}

/// End a child process (eslogger, log) with SIGTERM, by kill(2) itself:
/// no `kill` found through `PATH`, no `unsafe`.
fn kill_child(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
        log::debug!("kill {}: {e}", pid.as_raw_nonzero());
    }
}

/// Seed the classifier's process tree with the running processes; a failure
/// is logged, never fatal (ancestry of older processes is then unknown).
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn seed_process_tree(
    scanner: &mut Scanner,
    running: std::io::Result<(Vec<keychain_access_tables::procs::ProcInfo>, usize)>,
) -> usize {
    match running {
        Ok((procs, skipped)) => {
            let n = procs.len();
            scanner.classifier.cache.seed(procs);
            log::info!(
                "process tree seeded with {n} running processes ({skipped} ps lines skipped)"
            );
            scanner.classifier.cache.seeded_len()
        }
        Err(e) => {
            log::warn!("could not list running processes to seed the process tree: {e}");
            0
        }
    }
}

#[cfg(test)]
mod seed_tests {
    use super::*;

    #[test]
    fn seeding_logs_and_bounds_and_survives_failure() {
        let mut scanner = Scanner::new(ScanOptions::default());
        let ps = "1 0 0 /sbin/launchd\n412 1 501 /usr/bin/osascript -e x\n";
        let n = seed_process_tree(
            &mut scanner,
            Ok(keychain_access_tables::procs::parse_ps(ps, 2048)),
        );
        assert_eq!(n, 2);
        let err = seed_process_tree(&mut scanner, Err(std::io::Error::other("no ps")));
        assert_eq!(err, 0);
    }
}
