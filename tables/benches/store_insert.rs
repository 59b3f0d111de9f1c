//! Ingest throughput of the SQLite buffer: `Store::insert` of batches of real
//! classified rows (unique eids) into an on-disk WAL database, as the
//! extension's ingest thread does. Reported as rows/s (elements/s); the
//! target is at least 50,000 relevant events a second.
//!
//! `cargo bench -p keychain-access-tables --bench store_insert`

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use keychain_access_tables::store::Store;
use keychain_access_tables::KeychainAccess;
use std::path::PathBuf;

fn temp_db(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kca-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    d.join("buffer.db")
}

fn insert(c: &mut Criterion) {
    let template = common::real_row();
    let path = temp_db("insert");
    let mut store = Store::open(&path).expect("open buffer");
    let mut next: i64 = 0;
    let mut batch = |n: usize| -> Vec<KeychainAccess> {
        (0..n)
            .map(|_| {
                next += 1;
                let mut r = template.clone();
                r.eid = Some(format!("bench{next:012x}"));
                r.time = Some(1_754_571_601 + next / 1000);
                r.global_seq_num = Some(next);
                r.pid = Some(10_000 + next % 50_000);
                r
            })
            .collect()
    };
    let mut g = c.benchmark_group("store_insert");
    for n in [100usize, 1000, 10_000] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("batch_{n}"), |b| {
            b.iter_batched(
                || batch(n),
                |rows| store.insert(&rows, None).expect("insert"),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    drop(store);
    if let Some(d) = path.parent() {
        let _ = std::fs::remove_dir_all(d);
    }
}

criterion_group!(benches, insert);
criterion_main!(benches);
