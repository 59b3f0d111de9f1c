//! Per-line costs of the unified-log source: `Scanner::scan_line` on every
//! record of a real capture (prefilter, parse, relevance, the built-in
//! patterns, the row), and the message matcher alone on the worst case the
//! tests know (a `{client}` pattern against an 8 KiB message of thousands of
//! near-placements), which the `regex` engine keeps linear.
//!
//! `cargo bench -p keychain-access-tables --bench unified_log_match`
//! (`cargo test --benches` runs each once, as a smoke test).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use keychain_access_tables::log_pattern::{MessagePattern, MATCH_MAX};
use keychain_access_tables::{ScanOptions, Scanner};

/// Real unified-log lines (see tests/fixtures/unified_log/README.md).
const CAPTURE: &str =
    include_str!("../../tests/fixtures/unified_log/real_captures_2026_release_not_stated.ndjson");

fn scan_capture(c: &mut Criterion) {
    let lines: Vec<&[u8]> = CAPTURE
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::as_bytes)
        .collect();
    let mut s = Scanner::new(ScanOptions::default());
    let mut out = Vec::new();
    for l in &lines {
        s.scan_line(l, &mut out);
    }
    assert!(!out.is_empty(), "the capture makes rows");
    let mut g = c.benchmark_group("unified_log");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("scan_line_real_capture", |b| {
        b.iter(|| {
            out.clear();
            for l in &lines {
                s.scan_line(black_box(l), &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

fn matcher_worst_case(c: &mut Criterion) {
    let p = MessagePattern::compile(
        "displaying keychain prompt for {client}({pid}); ACL: *desc:{item})>*",
    )
    .expect("pattern");
    let mut text = String::from("displaying keychain prompt for ");
    while text.len() + 12 <= MATCH_MAX {
        text.push_str("/a(1); ACL: ");
    }
    assert!(p.matches(&text).is_none());
    let mut g = c.benchmark_group("unified_log");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("match_client_8k_no_match", |b| {
        b.iter(|| p.matches(black_box(&text)).is_none())
    });
    g.finish();
}

criterion_group!(benches, scan_capture, matcher_worst_case);
criterion_main!(benches);
