//! Delivery through `SentinelSink` (the logger plugin's path) against the
//! loopback mock: normal delivery, 429, 5xx bursts, 413, outage, tokens,
//! surfaced client errors, the queue bound, secret-file checks.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use keychain_access_sentinel::{LogError, Offer, SentinelConfig, SentinelLogger, SentinelSink};
use serde_json::json;

fn push_all(sink: &SentinelSink, range: std::ops::Range<usize>, pad: usize) {
    for i in range {
        let offers = sink.log_string(&line(i, pad)).expect("push");
        assert_eq!(offers, vec![Offer::Queued]);
    }
}

/// Wait until the sink itself has recorded `n` deliveries (the mock sees a
/// batch before the client reads the answer and acknowledges it).
fn settle(sink: &SentinelSink, n: u64) {
    assert!(
        wait_until(10, || {
            let s = sink.stats();
            s.delivered == n && s.queued_rows == 0
        }),
        "settled at {n}: {}",
        sink.stats()
    );
}

fn assert_exactly_once(mock: &Mock, n: usize) {
    let mut ids = mock.ids();
    assert_eq!(mock.unique_ids(), n, "every line arrives");
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "no duplicates");
    assert!(
        mock.problems().is_empty(),
        "protocol problems: {:?}",
        mock.problems()
    );
}

#[test]
fn normal_delivery() {
    let mock = Mock::start();
    let dir = TempDir::new("normal");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    // Two lines in one logString call, then 48 more.
    let two = format!("{}\n{}\n", line(0, 10), line(1, 10));
    assert_eq!(sink.log_string(&two).expect("push"), vec![Offer::Queued; 2]);
    push_all(&sink, 2..50, 10);
    assert!(wait_until(10, || mock.unique_ids() == 50), "delivered");
    settle(&sink, 50);
    let s = sink.stats();
    assert_eq!((s.accepted, s.delivered), (50, 50));
    assert_eq!(s.last_status, Some(204));
    assert_eq!(s.state, "running");
    assert_eq!(s.token_requests, 1, "token cached");
    assert_eq!(mock.state().token_requests, 1);
    assert_exactly_once(&mock, 50);
    // Lines arrive as the objects themselves.
    let first = mock.state().received[0].clone();
    assert_eq!(first["name"], "pack/Global/keychain_credential_access");
    assert_eq!(first["columns"]["eid"], "e0");
    sink.shutdown();
}

#[test]
fn throttled_429_honours_retry_after() {
    let mock = Mock::start();
    mock.state()
        .script
        .push_back(Action::RetryAfter(429, "1".into()));
    let dir = TempDir::new("429");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    push_all(&sink, 0..10, 10);
    assert!(wait_until(10, || mock.unique_ids() == 10));
    settle(&sink, 10);
    let attempts = mock.state().attempts.clone();
    assert_eq!(attempts[0].1, 429);
    assert_eq!(attempts[1].1, 204);
    let gap = attempts[1].0 - attempts[0].0;
    assert!(
        gap >= Duration::from_millis(950),
        "waited Retry-After: {gap:?}"
    );
    // backoff_max is 200 ms here: only Retry-After explains a 1 s wait.
    let s = sink.stats();
    assert_eq!(s.throttled, 1);
    assert_eq!(s.last_status, Some(204));
    assert!(s.last_error.as_deref().unwrap_or("").contains("429"));
    assert_exactly_once(&mock, 10);
}

#[test]
fn server_error_burst_backs_off_then_delivers() {
    let mock = Mock::start();
    for s in [500, 503, 500, 502, 500] {
        mock.state().script.push_back(Action::Status(s));
    }
    let dir = TempDir::new("5xx");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    let t0 = Instant::now();
    push_all(&sink, 0..20, 10);
    assert!(wait_until(10, || mock.unique_ids() == 20));
    let elapsed = t0.elapsed();
    settle(&sink, 20);
    let s = sink.stats();
    assert_eq!(s.server_errors, 5);
    assert_eq!(s.consecutive_failures, 0, "reset by the success");
    assert_eq!(s.last_status, Some(204));
    // Backoff 20,40,80,160,200 ms with jitter in [d/2, d]: at least 250 ms.
    assert!(
        elapsed >= Duration::from_millis(250),
        "backed off: {elapsed:?}"
    );
    let attempts = mock.state().attempts.clone();
    for w in attempts.windows(2).take(4) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(9), "{attempts:?}");
    }
    assert_exactly_once(&mock, 20);
}

#[test]
fn payload_too_large_splits_the_batch() {
    let mock = Mock::start();
    // Lines of ~300 bytes; the mock takes at most 2,000 bytes per call.
    mock.state().max_body = Some(2_000);
    let dir = TempDir::new("413");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    let sink_q = sink.queue().clone();
    // Queue everything first so the first batch is large.
    sink.shutdown();
    for i in 0..40 {
        assert_eq!(sink_q.push(&line(i, 100)).expect("push"), Offer::Queued);
    }
    // A single line the server will always refuse.
    assert_eq!(sink_q.push(&line(999, 3_000)).expect("push"), Offer::Queued);
    drop(sink);
    drop(sink_q);
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("restart");
    assert!(wait_until(10, || sink.stats().queued_rows == 0));
    let s = sink.stats();
    assert!(s.splits >= 2, "split repeatedly: {s}");
    assert_eq!(s.dropped_too_large, 1, "the lone oversize line: {s}");
    assert_eq!(s.delivered, 40);
    assert_exactly_once(&mock, 40);
    let st = mock.state();
    assert!(st.attempts.iter().any(|a| a.1 == 413));
    assert!(
        st.batches.iter().all(|b| b.len() > 1),
        "split to halves, not to single lines"
    );
}

#[test]
fn outage_then_recovery() {
    let mock = Mock::start();
    mock.state().outage_until = Some(Instant::now() + Duration::from_millis(1_500));
    let dir = TempDir::new("outage");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    push_all(&sink, 0..30, 10);
    std::thread::sleep(Duration::from_millis(700));
    let s = sink.stats();
    assert_eq!(s.delivered, 0);
    assert!(s.consecutive_failures >= 1, "{s}");
    assert_eq!(s.state, "backoff");
    assert!(s.last_error.is_some());
    assert!(wait_until(10, || mock.unique_ids() == 30), "recovered");
    settle(&sink, 30);
    let s = sink.stats();
    // The outage hits the token endpoint first (no token yet), then ingestion.
    assert!(s.network_errors + s.token_failures >= 1, "{s}");
    assert_eq!(s.consecutive_failures, 0);
    // Backoff capped at 200 ms (jittered ≥ 100 ms): about 15 tries in 1.5 s, not thousands.
    let refused = mock.state().refused;
    assert!(
        (1..=25).contains(&refused),
        "backoff limits the retry rate: {refused}"
    );
    assert_exactly_once(&mock, 30);
}

#[test]
fn token_refreshed_before_expiry() {
    let mock = Mock::start();
    mock.state().expires_in = 2; // refresh after 1 s (half of a short lifetime)
    let dir = TempDir::new("token");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    for wave in 0..4 {
        push_all(&sink, wave * 5..wave * 5 + 5, 10);
        assert!(wait_until(5, || mock.unique_ids() == wave * 5 + 5));
        settle(&sink, (wave * 5 + 5) as u64);
        std::thread::sleep(Duration::from_millis(600));
    }
    let st = mock.state();
    assert!(st.token_requests >= 2, "refreshed: {}", st.token_requests);
    assert!(
        st.attempts.iter().all(|a| a.1 == 204),
        "never refused: {:?}",
        st.attempts
    );
    drop(st);
    assert_exactly_once(&mock, 20);
    assert!(sink.stats().token_requests >= 2);
}

#[test]
fn unauthorized_gets_a_new_token() {
    let mock = Mock::start();
    let dir = TempDir::new("401");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    push_all(&sink, 0..5, 10);
    assert!(wait_until(5, || mock.unique_ids() == 5));
    mock.state().tokens.clear(); // revoke
    push_all(&sink, 5..10, 10);
    assert!(wait_until(5, || mock.unique_ids() == 10));
    settle(&sink, 10);
    let s = sink.stats();
    assert_eq!(s.token_requests, 2);
    assert_eq!(s.client_errors, 1, "{s}");
    assert!(s.last_error.as_deref().unwrap_or("").contains("401"));
    assert_exactly_once(&mock, 10);
}

#[test]
fn client_errors_are_surfaced_and_nothing_is_dropped() {
    let mock = Mock::start();
    mock.state()
        .script
        .extend([Action::Status(403), Action::Status(400)]);
    let dir = TempDir::new("403");
    let sink = SentinelSink::start(&config(&mock, dir.path(), json!({}))).expect("start");
    push_all(&sink, 0..5, 10);
    assert!(wait_until(5, || {
        let s = sink.stats();
        s.last_status == Some(403) && s.retry_at_unix.is_some()
    }));
    let s = sink.stats();
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("HTTP 403"),
        "{s}"
    );
    assert_eq!(s.queued_rows, 5, "kept");
    assert!(s.retry_at_unix.is_some(), "waiting to retry: {s}");
    assert_eq!(s.state, "failed", "needs a person");
    assert!(wait_until(5, || mock.unique_ids() == 5));
    settle(&sink, 5);
    let s = sink.stats();
    assert_eq!(s.client_errors, 2);
    assert_eq!(s.dropped_total(), 0);
    assert_exactly_once(&mock, 5);
}

#[test]
fn bad_secret_is_surfaced() {
    let mock = Mock::start();
    let dir = TempDir::new("badsecret");
    let cfg = config(&mock, dir.path(), json!({}));
    std::fs::write(&cfg.client_secret_file, "wrong\n").expect("write");
    let sink = SentinelSink::start(&cfg).expect("start");
    push_all(&sink, 0..3, 10);
    assert!(wait_until(5, || {
        let s = sink.stats();
        s.token_failures >= 1 && s.state == "failed"
    }));
    let s = sink.stats();
    let err = s.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("token endpoint HTTP 401") && err.contains("invalid_client"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "secret not in messages");
    assert_eq!(s.state, "failed");
    assert_eq!(s.queued_rows, 3);
    // Fix the secret: delivery resumes without a restart.
    std::fs::write(&cfg.client_secret_file, format!("{SECRET}\n")).expect("write");
    assert!(wait_until(5, || mock.unique_ids() == 3));
}

#[test]
fn queue_bound_counts_drops() {
    let mock = Mock::start();
    mock.state().outage_until = Some(Instant::now() + Duration::from_secs(3_600));
    let dir = TempDir::new("bound");
    let cfg = config(&mock, dir.path(), json!({"queue_max_rows": 5}));
    let logger = SentinelLogger::new(SentinelSink::start(&cfg).expect("start"));
    let mut refused = 0;
    for i in 0..8 {
        if let Err(e) = logger.log_string(&line(i, 10)) {
            assert!(
                matches!(&e, LogError::Dropped { reasons, lines: 1 } if reasons == &["queue full"]),
                "{e:?}"
            );
            assert!(e.to_string().contains("queue full"), "{e}");
            refused += 1;
        }
    }
    assert_eq!(refused, 3, "acknowledged only when queued");
    let s = logger.stats().expect("configured");
    assert_eq!((s.queued_rows, s.dropped_at_bound), (5, 3));
    assert!(s.to_string().contains("dropped_at_bound=3"));
    // The outage ends: the five kept (oldest) lines arrive.
    mock.state().outage_until = None;
    assert!(wait_until(10, || mock.unique_ids() == 5));
    let mut ids = mock.ids();
    ids.sort();
    assert_eq!(ids, vec!["e0", "e1", "e2", "e3", "e4"]);
    logger.shutdown();
}

#[test]
fn restart_resumes_from_the_queue() {
    let mock = Mock::start();
    mock.state().outage_until = Some(Instant::now() + Duration::from_secs(3_600));
    let dir = TempDir::new("restart");
    let cfg = config(&mock, dir.path(), json!({}));
    {
        let sink = SentinelSink::start(&cfg).expect("start");
        push_all(&sink, 0..12, 10);
        assert!(wait_until(5, || sink.stats().consecutive_failures >= 1));
    }
    mock.state().outage_until = None;
    let sink = SentinelSink::start(&cfg).expect("restart");
    assert!(wait_until(10, || mock.unique_ids() == 12));
    settle(&sink, 12);
    let s = sink.stats();
    assert_eq!((s.accepted, s.delivered), (12, 12));
    assert!(
        s.token_failures >= 1,
        "counters persisted across the restart: {s}"
    );
    assert_exactly_once(&mock, 12);
}

#[test]
fn name_filter_ships_only_matching_lines() {
    let mock = Mock::start();
    let dir = TempDir::new("filter");
    let cfg = config(
        &mock,
        dir.path(),
        json!({"name_filter": ["*keychain_credential_access"]}),
    );
    let logger = SentinelLogger::new(SentinelSink::start(&cfg).expect("start"));
    logger.log_string(&line(0, 0)).expect("match (Fleet name)");
    let mut osq: serde_json::Value = serde_json::from_str(&line(1, 0)).expect("json");
    osq["name"] = json!("pack_keychain-access_keychain_credential_access");
    logger
        .log_string(&osq.to_string())
        .expect("match (osquery pack name)");
    let mut other: serde_json::Value = serde_json::from_str(&line(2, 0)).expect("json");
    other["name"] = json!("pack_other_processes");
    logger
        .log_string(&other.to_string())
        .expect("filtered is fine");
    let e = logger
        .log_string("not json")
        .expect_err("invalid is a drop");
    assert_eq!(
        e.to_string(),
        "sentinel: 1 of 1 line(s) dropped (not a JSON object); see the status counters"
    );
    assert!(wait_until(5, || mock.unique_ids() == 2));
    assert!(wait_until(5, || logger
        .stats()
        .is_some_and(|s| s.delivered == 2)));
    let s = logger.stats().expect("configured");
    assert_eq!((s.filtered, s.dropped_invalid, s.delivered), (1, 1, 2));
    let mut ids = mock.ids();
    ids.sort();
    assert_eq!(ids, vec!["e0", "e1"]);
}

#[test]
fn unconfigured_logger_keeps_nothing() {
    let logger =
        SentinelLogger::from_document(Some(&json!({"other_section": {}}))).expect("no section");
    assert!(!logger.is_configured());
    logger
        .log_string(&line(0, 0))
        .expect("keeps nothing, no error");
    logger.log_string(&line(1, 0)).expect("said once");
    assert!(logger.stats().is_none());
    let e = SentinelLogger::from_document(Some(&json!({"sentinel": {"endpoint": "x"}})))
        .expect_err("bad section");
    assert!(e.to_string().contains("sentinel config"), "{e}");
}

#[test]
fn secret_file_0644_is_refused() {
    let mock = Mock::start();
    let dir = TempDir::new("secret");
    let cfg = config(&mock, dir.path(), json!({}));
    std::fs::set_permissions(
        &cfg.client_secret_file,
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let e = SentinelSink::start(&cfg)
        .expect_err("0644 refused")
        .to_string();
    assert!(e.contains("mode 0644") && e.contains("0600"), "{e}");
    assert!(!e.contains(SECRET));
    // `forward --config FILE` path: the whole config document.
    let file = dir.path().join("extension.json");
    std::fs::write(
        &file,
        json!({"sentinel": section(&mock, dir.path(), json!({})), "other": 1}).to_string(),
    )
    .expect("write");
    let e = SentinelConfig::load(&file)
        .expect_err("0644 refused")
        .to_string();
    assert!(e.contains("mode 0644"), "{e}");
    std::fs::set_permissions(
        &cfg.client_secret_file,
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    assert_eq!(SentinelConfig::load(&file).expect("0600 accepted"), cfg);
    assert!(
        mock.state().token_requests == 0,
        "nothing sent with a refused secret"
    );
}
