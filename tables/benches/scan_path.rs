//! Per-line costs of the scan path, on real eslogger lines:
//! the byte-level prefilter (hit and miss), the serde parser (exec and open),
//! and the classifier (`Scanner::scan_line` on `security dump-keychain -d`
//! with the process cache warm).
//!
//! `cargo bench -p keychain-access-tables --bench scan_path`
//! (`cargo test --benches` runs each once, as a smoke test).

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use keychain_access_tables::es;
use keychain_access_tables::scan::{Prefilter, PREFILTER_NEEDLES};
use keychain_access_tables::{ScanOptions, Scanner};

fn prefilter(c: &mut Criterion) {
    let p = Prefilter::new();
    let mut g = c.benchmark_group("prefilter");
    for (name, line, relevant) in [
        ("miss_open", common::open_miss(), false),
        ("hit_open_keychain", common::open_keychain(), true),
        ("hit_exec", common::exec_unrelated(), true),
    ] {
        assert_eq!(p.peek(&line).relevant, relevant, "{name}");
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_function(name, |b| b.iter(|| p.peek(black_box(&line))));
    }
    // For contrast: the same needles with aho-corasick's default (standard)
    // match semantics, which the prefilter used before: no SIMD prefilter.
    let mut needles: Vec<&str> = PREFILTER_NEEDLES.to_vec();
    needles.extend([r#""global_seq_num":"#, r#""event_type":"#]);
    let standard = aho_corasick::AhoCorasick::new(&needles).expect("needles");
    let miss = common::open_miss();
    g.throughput(Throughput::Bytes(miss.len() as u64));
    g.bench_function("miss_open_standard_semantics", |b| {
        b.iter(|| standard.find_iter(black_box(&miss[..])).count())
    });
    g.finish();
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_line");
    for (name, line) in [
        ("exec", common::exec_unrelated()),
        ("open", common::open_keychain()),
    ] {
        let text = String::from_utf8(line).expect("utf-8 sample line");
        assert!(es::parse_line(&text).is_ok(), "{name} parses");
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| es::parse_line(black_box(&text)).is_ok())
        });
    }
    g.finish();
}

fn classifier(c: &mut Criterion) {
    let (before, exec) = common::dump_keychain_case();
    let mut s = Scanner::new(ScanOptions::default());
    let mut out = Vec::new();
    for l in &before {
        s.scan_line(l, &mut out);
    }
    out.clear();
    s.scan_line(&exec, &mut out);
    assert!(
        out.iter()
            .any(|r| r.action.map(|a| a.as_str()) == Some("dump_keychain")),
        "the exec is classified as dump_keychain"
    );
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    // The whole per-line path for a relevant exec: prefilter, parse,
    // process cache, classification, redaction, the row.
    g.bench_function("scan_line_security_dump_keychain", |b| {
        b.iter(|| {
            out.clear();
            s.scan_line(black_box(&exec), &mut out);
            out.len()
        })
    });
    // The same line's scan_line minus nothing but the row: an unrelated exec
    // (parsed, cached for ancestry, no row), for contrast.
    let unrelated = common::exec_unrelated();
    g.bench_function("scan_line_unrelated_exec", |b| {
        b.iter(|| {
            out.clear();
            s.scan_line(black_box(&unrelated), &mut out);
            out.len()
        })
    });
    let miss = common::open_miss();
    g.bench_function("scan_line_unrelated_open", |b| {
        b.iter(|| {
            out.clear();
            s.scan_line(black_box(&miss), &mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, prefilter, parser, classifier);
criterion_main!(benches);
