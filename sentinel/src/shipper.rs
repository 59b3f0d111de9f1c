//! The delivery loop: queue → JSON array → gzip → POST, with the status
//! handling Azure's Logs Ingestion API calls for (413 split, 429 Retry-After, 5xx/network backoff
//! with jitter, 400/401/403 surfaced and retried slowly).
//!
//! The backoff is kept hand-written (doubling with "equal jitter", capped,
//! Retry-After honoured): a retry crate would own the loop, and this loop
//! must also stop promptly on the stop flag and commit the queue between tries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::SentinelConfig;
use crate::http::{json_array, Attempt, Client, TokenError};
use crate::queue::Queue;
use crate::{sleep_unless_stopped, unix_now, Error};

/// Smallest batch limit a run of 413s can shrink to (one line still goes).
const MIN_SPLIT_BYTES: usize = 64;

/// What the loop does after one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Go on at once (delivered, split, or nothing to do).
    Continue,
    /// Wait this long before the next attempt.
    Wait(Duration),
}

/// Ships the queue's lines to the Logs Ingestion API until stopped. Run it on
/// its own thread ([`Shipper::spawn`]); [`SentinelSink`](crate::SentinelSink)
/// and [`forward`](crate::forward()) do that for you.
pub struct Shipper {
    cfg: SentinelConfig,
    queue: Arc<Queue>,
    client: Client,
    backoff_step: u32,
    batch_limit: usize,
    unauthorized_streak: u32,
    seen_tokens: u64,
    seen_token_failures: u64,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("endpoint", &self.cfg.endpoint)
            .field("stream", &self.cfg.stream)
            .finish()
    }
}

impl Shipper {
    /// Validate the config, check the secret file, and prepare the HTTP client.
    pub fn new(cfg: &SentinelConfig, queue: Arc<Queue>) -> Result<Shipper, Error> {
        cfg.validate()?;
        cfg.check_secret_file()?;
        Ok(Shipper {
            client: Client::new(cfg)?,
            cfg: cfg.clone(),
            queue,
            backoff_step: 0,
            batch_limit: cfg.batch_max_bytes,
            unauthorized_streak: 0,
            seen_tokens: 0,
            seen_token_failures: 0,
        })
    }

    /// Run [`Shipper::run`] on a thread named `sentinel-shipper`.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>, Error> {
        std::thread::Builder::new()
            .name("sentinel-shipper".into())
            .spawn(move || self.run(&stop))
            .map_err(|e| Error::io("starting the sentinel shipper thread", e))
    }

    /// Deliver until `stop` is set. Returns within about 50 ms of `stop`
    /// (or, when a request is in flight, when it ends: at most
    /// `request_timeout_ms`). Never returns early on errors: they are
    /// recorded in [`Stats`](crate::Stats) and retried.
    pub fn run(&mut self, stop: &AtomicBool) {
        // A wait recorded by a previous process that died is stale.
        let _ = self.queue.record(|_, s| s.retry_at_unix = None);
        let mut was_idle = true;
        while !stop.load(Ordering::SeqCst) {
            let (rows, bytes) = self.queue.len();
            if rows == 0 {
                was_idle = true;
                self.queue.wait_for_push(Duration::from_millis(100));
                continue;
            }
            if was_idle && self.cfg.linger_ms > 0 {
                self.linger(stop, rows, bytes);
            }
            was_idle = false;
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let wait = match self.step() {
                Ok(Next::Continue) => continue,
                Ok(Next::Wait(d)) => d,
                Err(e) => {
                    log::error!("sentinel shipper: {e}");
                    let msg = e.to_string();
                    let d = self.next_backoff();
                    let _ = self.queue.record(|_, s| {
                        s.state = Some("backoff".into());
                        s.last_error = Some(msg);
                        s.last_error_unix = Some(unix_now());
                        s.consecutive_failures += 1;
                    });
                    d
                }
            };
            let retry_at = unix_now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2);
            let _ = self.queue.record(|_, s| s.retry_at_unix = Some(retry_at));
            if sleep_unless_stopped(wait, stop) {
                break;
            }
            let _ = self.queue.record(|_, s| s.retry_at_unix = None);
        }
        let _ = self.queue.record(|_, s| s.retry_at_unix = None);
    }

    /// After an idle period, give a query's rows `linger_ms` to arrive so
    /// they share a request (cut short when a batch is full or on stop).
    fn linger(&self, stop: &AtomicBool, mut rows: u64, mut bytes: u64) {
        let deadline = Instant::now() + SentinelConfig::ms(self.cfg.linger_ms);
        loop {
            let body = bytes + rows + 1;
            let now = Instant::now();
            if stop.load(Ordering::SeqCst) || now >= deadline || body >= self.batch_limit as u64 {
                return;
            }
            self.queue
                .wait_for_push((deadline - now).min(Duration::from_millis(50)));
            (rows, bytes) = self.queue.len();
        }
    }

    /// Exponential backoff with "equal jitter": step n waits a random time
    /// in [d/2, d], d = min(backoff_max, backoff_initial * 2^n).
    fn next_backoff(&mut self) -> Duration {
        let exp = self.backoff_step.min(40);
        self.backoff_step = self.backoff_step.saturating_add(1);
        let d = self
            .cfg
            .backoff_initial_ms
            .saturating_mul(1u64 << exp)
            .min(self.cfg.backoff_max_ms);
        Duration::from_millis(self.client.rng.between(d / 2, d))
    }

    fn sync_token_counters(&mut self) -> Result<(), Error> {
        let got = self.client.tokens_fetched - self.seen_tokens;
        let failed = self.client.token_failures - self.seen_token_failures;
        if got + failed == 0 {
            return Ok(());
        }
        self.seen_tokens = self.client.tokens_fetched;
        self.seen_token_failures = self.client.token_failures;
        self.queue.record(|c, _| {
            c.token_requests += got;
            c.token_failures += failed;
        })
    }

    fn fail(
        &self,
        state: &str,
        status: Option<u16>,
        msg: String,
        count: impl FnOnce(&mut crate::counters::Counters),
    ) -> Result<(), Error> {
        self.queue.record(|c, s| {
            count(c);
            s.state = Some(state.to_string());
            s.last_status = status;
            s.last_error = Some(msg);
            s.last_error_unix = Some(unix_now());
            s.consecutive_failures += 1;
        })
    }

    /// One attempt at the oldest batch.
    fn step(&mut self) -> Result<Next, Error> {
        let batch = self.queue.peek_batch(self.batch_limit)?;
        if batch.is_empty() {
            return Ok(Next::Continue);
        }
        let body = json_array(&batch);
        let ids: Vec<i64> = batch.iter().map(|b| b.0).collect();
        let attempt = self.client.post(&body);
        self.sync_token_counters()?;
        let retry_slow = SentinelConfig::ms(self.cfg.error_retry_ms);
        match attempt {
            Attempt::Delivered(status) => {
                self.queue.ack_delivered(&ids, status)?;
                log::debug!(
                    "sentinel: delivered {} line(s), {} bytes (HTTP {status})",
                    ids.len(),
                    body.len()
                );
                self.backoff_step = 0;
                self.unauthorized_streak = 0;
                self.batch_limit = self
                    .batch_limit
                    .saturating_mul(2)
                    .min(self.cfg.batch_max_bytes);
                Ok(Next::Continue)
            }
            Attempt::TooLarge => {
                self.queue.record(|c, s| {
                    c.requests += 1;
                    s.last_status = Some(413);
                })?;
                if ids.len() == 1 {
                    log::warn!(
                        "sentinel: HTTP 413 for a single line of {} bytes; dropping it \
                         (counted in dropped_too_large)",
                        body.len()
                    );
                    self.queue.drop_too_large(&ids)?;
                    let msg = format!("HTTP 413 for a single {}-byte line: dropped", body.len());
                    self.queue.record(|_, s| {
                        s.last_error = Some(msg);
                        s.last_error_unix = Some(unix_now());
                    })?;
                } else {
                    self.batch_limit = (body.len() / 2).max(MIN_SPLIT_BYTES);
                    log::info!(
                        "sentinel: HTTP 413 for {} lines / {} bytes; splitting (batch limit now {} bytes)",
                        ids.len(),
                        body.len(),
                        self.batch_limit
                    );
                    self.queue.record(|c, _| c.splits += 1)?;
                }
                Ok(Next::Continue)
            }
            Attempt::Throttled(after) => {
                let wait = match after {
                    Some(d) => d,
                    None => self.next_backoff(),
                };
                let msg = format!(
                    "HTTP 429 throttled; retrying in {:.1}s{}",
                    wait.as_secs_f64(),
                    if after.is_some() {
                        " (Retry-After)"
                    } else {
                        ""
                    }
                );
                log::warn!("sentinel: {msg}");
                self.fail("backoff", Some(429), msg, |c| {
                    c.requests += 1;
                    c.throttled += 1;
                })?;
                Ok(Next::Wait(wait))
            }
            Attempt::ServerError(status, msg) => {
                let wait = self.next_backoff();
                log::warn!("sentinel: {msg}; retrying in {:.1}s", wait.as_secs_f64());
                self.fail("backoff", Some(status), msg, |c| {
                    c.requests += 1;
                    c.server_errors += 1;
                })?;
                Ok(Next::Wait(wait))
            }
            Attempt::Network(msg) => {
                let wait = self.next_backoff();
                log::warn!("sentinel: {msg}; retrying in {:.1}s", wait.as_secs_f64());
                self.fail("backoff", None, msg, |c| {
                    c.requests += 1;
                    c.network_errors += 1;
                })?;
                Ok(Next::Wait(wait))
            }
            Attempt::Unauthorized(msg) => {
                self.client.invalidate_token();
                self.unauthorized_streak += 1;
                log::error!("sentinel: {msg}; getting a new token");
                self.fail("failed", Some(401), msg, |c| {
                    c.requests += 1;
                    c.client_errors += 1;
                })?;
                // First 401: retry at once with a fresh token; after that, slowly.
                Ok(if self.unauthorized_streak == 1 {
                    Next::Continue
                } else {
                    Next::Wait(retry_slow)
                })
            }
            Attempt::ClientError(status, msg) => {
                log::error!(
                    "sentinel: {msg}; keeping the batch, retrying in {}s",
                    retry_slow.as_secs()
                );
                self.fail("failed", Some(status), msg, |c| {
                    c.requests += 1;
                    c.client_errors += 1;
                })?;
                Ok(Next::Wait(retry_slow))
            }
            Attempt::Token(e) => {
                let wait = match &e {
                    TokenError::Transient(_) => self.next_backoff(),
                    TokenError::Rejected(_) | TokenError::Secret(_) => retry_slow,
                };
                log::error!(
                    "sentinel: no token: {}; retrying in {:.1}s",
                    e.message(),
                    wait.as_secs_f64()
                );
                let msg = format!("token: {}", e.message());
                let state = match e {
                    TokenError::Transient(_) => "backoff",
                    TokenError::Rejected(_) | TokenError::Secret(_) => "failed",
                };
                self.queue.record(|_, s| {
                    s.state = Some(state.to_string());
                    s.last_error = Some(msg);
                    s.last_error_unix = Some(unix_now());
                    s.consecutive_failures += 1;
                })?;
                Ok(Next::Wait(wait))
            }
        }
    }
}
