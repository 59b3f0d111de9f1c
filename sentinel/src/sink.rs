//! What the extension's osquery logger plugin calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::config::SentinelConfig;
use crate::queue::{Offer, Queue};
use crate::shipper::Shipper;
use crate::stats::Stats;
use crate::Error;

/// Why [`SentinelLogger::log_string`] did not take every line.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The queue itself failed (nothing of this call is known to be kept).
    #[error(transparent)]
    Queue(#[from] Error),
    /// Some lines were dropped, each counted in the status counters.
    #[error(
        "sentinel: {} of {lines} line(s) dropped ({}); see the status counters",
        reasons.len(),
        reasons.join(", ")
    )]
    Dropped {
        /// Why each dropped line was dropped ("queue full", "line too
        /// large", "not a JSON object"), in line order.
        reasons: Vec<&'static str>,
        /// How many lines the call carried.
        lines: usize,
    },
}

/// A running delivery pipeline: the queue plus a background shipper thread.
/// `Send + Sync`; dropping it stops the shipper (queued lines stay on disk
/// and go on the next start).
pub struct SentinelSink {
    queue: Arc<Queue>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SentinelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSink")
            .field("queue", &self.queue.path())
            .finish()
    }
}

impl SentinelSink {
    /// Validate the config, check the secret file, open the queue and start
    /// the shipper thread.
    pub fn start(cfg: &SentinelConfig) -> Result<SentinelSink, Error> {
        cfg.validate()?;
        cfg.check_secret_file()?;
        let queue = Arc::new(Queue::open(&cfg.queue_path, cfg.queue_limits()?)?);
        let shipper = Shipper::new(cfg, Arc::clone(&queue))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = shipper.spawn(Arc::clone(&stop))?;
        let (rows, _) = queue.len();
        log::info!(
            "sentinel: shipping to {} stream {} (queue {}, {rows} line(s) waiting)",
            cfg.endpoint,
            cfg.stream,
            cfg.queue_path.display()
        );
        Ok(SentinelSink {
            queue,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queue what osquery hands the logger plugin: one result line, or
    /// several separated by newlines (blank lines are skipped). Returns after
    /// the outcome is committed; one [`Offer`] per non-blank line.
    pub fn log_string(&self, text: &str) -> Result<Vec<Offer>, Error> {
        let lines: Vec<&str> = text.lines().collect();
        self.queue.push_lines(&lines)
    }

    /// Counters and last outcome, for the status table.
    pub fn stats(&self) -> Stats {
        self.queue.stats()
    }

    /// The queue (e.g. to peek at its length).
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Stop the shipper and wait for it (idempotent). A request in flight
    /// finishes first (at most `request_timeout_ms`).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.queue.wake();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                log::error!("sentinel shipper thread panicked");
            }
        }
    }
}

impl Drop for SentinelSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The logger plugin's state: a running [`SentinelSink`], or "not
/// configured" (says so once at `warn`, keeps nothing).
#[derive(Debug)]
pub struct SentinelLogger {
    sink: Option<SentinelSink>,
    warned: AtomicBool,
}

impl SentinelLogger {
    /// From the extension's whole JSON config document (None: no config at
    /// all). No `sentinel` section → not configured; a wrong section, a bad
    /// secret file or an unusable queue → `Err` (report it and fall back to
    /// [`SentinelLogger::unconfigured`] if the extension should keep running).
    pub fn from_document(doc: Option<&serde_json::Value>) -> Result<SentinelLogger, Error> {
        let cfg = match doc {
            Some(d) => SentinelConfig::from_document(d)?,
            None => None,
        };
        Ok(match cfg {
            Some(c) => SentinelLogger::new(SentinelSink::start(&c)?),
            None => SentinelLogger::unconfigured(),
        })
    }

    /// A logger that ships to `sink`.
    pub fn new(sink: SentinelSink) -> SentinelLogger {
        SentinelLogger {
            sink: Some(sink),
            warned: AtomicBool::new(false),
        }
    }

    /// A logger that keeps nothing and says so once.
    pub fn unconfigured() -> SentinelLogger {
        SentinelLogger {
            sink: None,
            warned: AtomicBool::new(false),
        }
    }

    /// Whether lines are shipped.
    pub fn is_configured(&self) -> bool {
        self.sink.is_some()
    }

    /// The logger plugin's `logString`. `Ok(())` when every line is queued
    /// (or filtered out on purpose), and when not configured (keeps nothing;
    /// warns once). An error when a line was dropped (queue full, too large,
    /// not a JSON object) or the queue failed: report a failure status to
    /// osquery with its message.
    pub fn log_string(&self, text: &str) -> Result<(), LogError> {
        let Some(sink) = &self.sink else {
            if !self.warned.swap(true, Ordering::SeqCst) {
                log::warn!(
                    "keychain_access_sentinel logger: no `sentinel` section in the extension \
                     config; result lines are NOT shipped to Sentinel (said once)"
                );
            }
            return Ok(());
        };
        let offers = sink.log_string(text)?;
        let dropped: Vec<&'static str> = offers
            .iter()
            .filter(|o| !o.is_acknowledged())
            .map(|o| match o {
                Offer::DroppedAtBound => "queue full",
                Offer::TooLarge => "line too large",
                _ => "not a JSON object",
            })
            .collect();
        if dropped.is_empty() {
            Ok(())
        } else {
            Err(LogError::Dropped {
                reasons: dropped,
                lines: offers.len(),
            })
        }
    }

    /// Stats when configured.
    pub fn stats(&self) -> Option<Stats> {
        self.sink.as_ref().map(SentinelSink::stats)
    }

    /// Stop the shipper (also done on drop).
    pub fn shutdown(&self) {
        if let Some(s) = &self.sink {
            s.shutdown();
        }
    }
}
