//! Benchmark of the `keychain_access_events` table end to end, and of
//! ingest into its buffer. Driven by tests/bench/table_bench.sh.
//!
//! ```text
//! table_bench build-db --db PATH --rows N [--rows-per-hour R] [--batch B] [--end UNIX] [--cache-mb M] [--sequential-eids | --random-eids]
//!     Fill a fresh buffer with N real classified rows (the rows the fixtures
//!     under tests/fixtures/ produce, cloned with unique eid/time/pid/seq),
//!     R per hour (default 1000) ending at --end, inserted with
//!     `Store::insert` in batches of B (default 10000): the ingest measurement.
//!     --cache-mb: an experiment with a bigger SQLite page cache for the
//!     writer than the library's (SQLite's default, 2 MB).
//!     --sequential-eids: an experiment with eids in insertion order instead
//!     of hashes (index locality).
//!
//! table_bench query --socket PATH.UUID --from UNIX --to UNIX [--repeat N]
//!                   [--window SECS] [--mode hour|all|unindexed] [--keep-connection]
//!                   [--cols-used a,b,c]
//!     Time N `generate` calls of keychain_access_events through the
//!     extension's Thrift socket with osquery-rust-ng's generated client, as
//!     osqueryd makes them (a new connection per call unless
//!     --keep-connection). hour: a random --window (default 3600 s) time
//!     range, `time >= a AND time < b` (ops 32 and 16); all: no constraint;
//!     unindexed: `path = '/nonexistent'` (a column without an index, so
//!     SQLite reads every row and returns none). --cols-used: send osquery's
//!     `colsUsed` (and `colsUsedBitset`) as osqueryd does for a query that
//!     names those columns.
//!
//! table_bench local --db PATH --from UNIX --to UNIX [--repeat N] [--window SECS]
//!     The same one-hour generates without the socket, stage by stage: SQL
//!     (`query_conn`, what `EventsTable::answer` runs), building osquery's
//!     row maps, and Thrift-encoding the response: where the time goes.
//! ```
//! Each command prints one JSON object on stdout.

use keychain_access_tables::store::Store;
use keychain_access_tables::{KeychainAccess, ScanOptions, Scanner};
use osquery_rust::client::ExtensionClient;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!("usage: table_bench build-db --db PATH --rows N [--rows-per-hour R] [--batch B] [--end UNIX] [--cache-mb M] [--sequential-eids | --random-eids]");
    eprintln!(
        "       table_bench local --db PATH --from UNIX --to UNIX [--repeat N] [--window SECS]"
    );
    eprintln!("       table_bench query --socket PATH --from UNIX --to UNIX [--repeat N] [--window SECS] [--mode hour|all|unindexed] [--keep-connection] [--cols-used a,b,c]");
    std::process::exit(2)
}

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }
    fn num(&self, name: &str, default: i64) -> i64 {
        match self.value(name) {
            Some(v) => v.parse().unwrap_or_else(|_| usage()),
            None => default,
        }
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        usage()
    };
    let args = Args(argv);
    let result = match cmd.as_str() {
        "build-db" => build_db(&args),
        "query" => query(&args),
        "local" => local(&args),
        _ => usage(),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("table_bench: {e}");
            std::process::exit(1)
        }
    }
}

/// Rows the real fixtures produce: the shapes the buffer really holds.
fn template_rows() -> Result<Vec<KeychainAccess>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let data = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut s = Scanner::new(ScanOptions::default());
        s.scan_reader_into(&data[..], &mut rows)
            .map_err(|e| format!("{}: {e}", f.display()))?;
    }
    if rows.is_empty() {
        return Err("the fixtures produced no rows".into());
    }
    Ok(rows)
}

/// A small deterministic generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn build_db(a: &Args) -> Result<String, String> {
    let db = PathBuf::from(a.value("--db").unwrap_or_else(|| usage()));
    let n = a.num("--rows", 0).max(0) as u64;
    let per_hour = a.num("--rows-per-hour", 1000).max(1) as u64;
    let batch = a.num("--batch", 10_000).max(1) as usize;
    let end = a.num("--end", 1_754_600_400);
    let templates = template_rows()?;
    let span = (n * 3600 / per_hour).max(1) as i64;
    let start = end - span;
    let _ = std::fs::remove_file(&db);
    let mut store = Store::open(&db).map_err(|e| e.to_string())?;
    let cache_mb = a.num("--cache-mb", 0);
    let sequential = a.flag("--sequential-eids");
    let random = a.flag("--random-eids");
    if cache_mb > 0 {
        // An experiment, not what the extension does: a bigger page cache
        // for the writer (SQLite's default is 2 MB).
        store
            .connection()
            .pragma_update(None, "cache_size", -1024 * cache_mb)
            .map_err(|e| e.to_string())?;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut insert_time = Duration::ZERO;
    let mut batch_times: Vec<f64> = Vec::new();
    let total = Instant::now();
    let mut done = 0u64;
    while done < n {
        let k = (batch as u64).min(n - done);
        let rows: Vec<KeychainAccess> = (0..k)
            .map(|j| {
                let i = done + j;
                let mut r = templates[(i as usize) % templates.len()].clone();
                // Evenly spread over the span (so any hour holds ~per_hour rows).
                r.time = Some(start + (i as i64 * span) / n.max(1) as i64);
                // Real eids are the event time (10 hex digits) then a hash
                // (`Fnv64::event_id`), so they arrive nearly in index order;
                // `--random-eids` measures plain hashes for contrast.
                let h = rng.next();
                r.eid = Some(if sequential {
                    format!("{i:016x}")
                } else if random {
                    format!("{h:016x}")
                } else {
                    format!("{:010x}{h:016x}", r.time.unwrap_or(0))
                });
                r.global_seq_num = Some(i as i64 + 1);
                r.pid = Some(100 + rng.below(90_000) as i64);
                r.pidversion = Some(100_000 + i as i64);
                r.correlation_id = None;
                r
            })
            .collect();
        let t = Instant::now();
        let added = store.insert(&rows, None).map_err(|e| e.to_string())?;
        let dt = t.elapsed();
        insert_time += dt;
        batch_times.push(dt.as_secs_f64() * 1e3);
        if added != rows.len() {
            return Err(format!("inserted {added} of {} rows", rows.len()));
        }
        done += k;
    }
    let rows = store.row_count().map_err(|e| e.to_string())?;
    let bytes = store.size_bytes().map_err(|e| e.to_string())?;
    drop(store);
    let tail: Vec<f64> = batch_times.iter().rev().take(10).copied().collect();
    let tail_rows = (tail.len() * batch).min(n as usize) as f64;
    let last10 = (tail_rows / (tail.iter().sum::<f64>() / 1e3).max(1e-9)).round();
    batch_times.sort_by(f64::total_cmp);
    let ins = insert_time.as_secs_f64();
    Ok(serde_json::json!({
        "db": db,
        "rows": rows,
        "batch": batch,
        "batches": batch_times.len(),
        "templates": templates.len(),
        "time_from": start,
        "time_to": end,
        "rows_per_hour": per_hour,
        "insert_seconds": round3(ins),
        "insert_rows_per_second": (n as f64 / ins.max(1e-9)).round(),
        "batch_ms_p50": round3(pct(&batch_times, 0.50)),
        "batch_ms_max": round3(batch_times.last().copied().unwrap_or(0.0)),
        "total_seconds": round3(total.elapsed().as_secs_f64()),
        "db_bytes": bytes,
        "sequential_eids": sequential,
        "random_eids": random,
        "writer_cache_mb": if cache_mb > 0 { cache_mb } else { 2 },
        "insert_rows_per_second_last_10_batches": last10,
    })
    .to_string())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The query context osqueryd sends, with `colsUsed` (and its bitset over
/// the table's columns) when the query names its columns.
fn context_with_cols(mode: &str, from: i64, to: i64, cols: &[String]) -> String {
    let base = context(mode, from, to);
    if cols.is_empty() {
        return base;
    }
    let mut v: serde_json::Value = serde_json::from_str(&base).unwrap_or_default();
    let bits: u64 = keychain_access_tables::COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| cols.iter().any(|n| n == c.name))
        .map(|(i, _)| 1u64 << i)
        .sum();
    v["colsUsed"] = serde_json::json!(cols);
    v["colsUsedBitset"] = serde_json::json!(bits);
    v.to_string()
}

fn context(mode: &str, from: i64, to: i64) -> String {
    match mode {
        "hour" => serde_json::json!({"constraints": [{
            "name": "time",
            "list": [{"op": 32, "expr": from.to_string()}, {"op": 16, "expr": to.to_string()}],
            "affinity": "BIGINT"
        }]})
        .to_string(),
        "unindexed" => serde_json::json!({"constraints": [{
            "name": "path",
            "list": [{"op": 2, "expr": "/nonexistent"}],
            "affinity": "TEXT"
        }]})
        .to_string(),
        _ => r#"{"constraints":[]}"#.to_string(),
    }
}

fn query(a: &Args) -> Result<String, String> {
    let socket = PathBuf::from(a.value("--socket").unwrap_or_else(|| usage()));
    let from = a.num("--from", 0);
    let to = a.num("--to", 0);
    let repeat = a.num("--repeat", 50).max(1) as usize;
    let window = a.num("--window", 3600).max(1);
    let mode = a.value("--mode").unwrap_or("hour").to_string();
    let keep = a.flag("--keep-connection");
    let cols: Vec<String> = a
        .value("--cols-used")
        .map(|l| l.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let connect = || {
        ExtensionClient::connect_with_timeout(
            &socket,
            Duration::from_secs(10),
            Some(Duration::from_secs(120)),
        )
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))
    };
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut kept = if keep { Some(connect()?) } else { None };
    // One untimed call first (connection pool, SQLite page cache), as a
    // long-running extension has.
    let mut times = Vec::with_capacity(repeat);
    let mut rows_returned = Vec::with_capacity(repeat);
    for i in 0..=repeat {
        let lo = if to - from > window {
            from + rng.below((to - from - window) as u64) as i64
        } else {
            from
        };
        let req = BTreeMap::from([
            ("action".to_string(), "generate".to_string()),
            (
                "context".to_string(),
                context_with_cols(&mode, lo, lo + window, &cols),
            ),
        ]);
        let t = Instant::now();
        let mut fresh;
        let client = match kept.as_mut() {
            Some(c) => c,
            None => {
                fresh = connect()?;
                &mut fresh
            }
        };
        let resp = client
            .call("table", "keychain_access_events", req)
            .map_err(|e| format!("generate: {e}"))?;
        let dt = t.elapsed().as_secs_f64() * 1e3;
        let code = resp.status.as_ref().and_then(|s| s.code).unwrap_or(-1);
        if code != 0 {
            return Err(format!("generate failed: {:?}", resp.status));
        }
        let n = resp.response.as_ref().map_or(0, Vec::len);
        if i > 0 {
            times.push(dt);
            rows_returned.push(n as f64);
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let mut rs = rows_returned.clone();
    rs.sort_by(f64::total_cmp);
    Ok(serde_json::json!({
        "mode": mode,
        "window_seconds": window,
        "calls": times.len(),
        "new_connection_per_call": !keep,
        "cols_used": cols,
        "ms_p50": round3(pct(&sorted, 0.50)),
        "ms_p95": round3(pct(&sorted, 0.95)),
        "ms_max": round3(sorted.last().copied().unwrap_or(0.0)),
        "ms_min": round3(sorted.first().copied().unwrap_or(0.0)),
        "rows_min": rs.first().copied().unwrap_or(0.0),
        "rows_p50": pct(&rs, 0.5),
        "rows_max": rs.last().copied().unwrap_or(0.0),
    })
    .to_string())
}

fn local(a: &Args) -> Result<String, String> {
    use keychain_access_tables::constraints::parse_context;
    use keychain_access_tables::store::{query_conn, DEFAULT_MAX_RESULT_ROWS};
    use osquery_rust::thrift::protocol::{TBinaryOutputProtocol, TSerializable};
    use osquery_rust::{ExtensionResponse, ExtensionStatus};
    let db = PathBuf::from(a.value("--db").unwrap_or_else(|| usage()));
    let from = a.num("--from", 0);
    let to = a.num("--to", 0);
    let repeat = a.num("--repeat", 50).max(1) as usize;
    let window = a.num("--window", 3600).max(1);
    let conn = Store::open_reader(&db).map_err(|e| e.to_string())?;
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut sql, mut maps, mut encode) = (Vec::new(), Vec::new(), Vec::new());
    let (mut direct, mut decode) = (Vec::new(), Vec::new());
    let (mut direct_bytes, mut non_null) = (0usize, 0usize);
    let mut bytes = 0usize;
    let mut rows_n = 0usize;
    for i in 0..=repeat {
        let lo = if to - from > window {
            from + rng.below((to - from - window) as u64) as i64
        } else {
            from
        };
        let t = Instant::now();
        let c = parse_context(&context("hour", lo, lo + window)).map_err(|e| e.to_string())?;
        let (rows, _) =
            query_conn(&conn, &c, DEFAULT_MAX_RESULT_ROWS).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let resp: Vec<BTreeMap<String, String>> = rows.iter().map(|r| r.to_osquery_map()).collect();
        let t2 = Instant::now();
        let out = ExtensionResponse::new(ExtensionStatus::new(0, "OK".to_string(), None), resp);
        let mut buf: Vec<u8> = Vec::new();
        {
            let mut proto = TBinaryOutputProtocol::new(&mut buf, true);
            out.write_to_out_protocol(&mut proto)
                .map_err(|e| e.to_string())?;
        }
        let t3 = Instant::now();
        // What the client does with those bytes (osqueryd does it in C++).
        {
            use osquery_rust::thrift::protocol::TBinaryInputProtocol;
            let mut rd: &[u8] = &buf;
            let mut proto = TBinaryInputProtocol::new(&mut rd, true);
            let back =
                ExtensionResponse::read_from_in_protocol(&mut proto).map_err(|e| e.to_string())?;
            if back.response.as_ref().map_or(0, Vec::len) != rows.len() {
                return Err("decode lost rows".into());
            }
        }
        let t3b = Instant::now();
        // A prototype for comparison: osquery's row maps straight from
        // SQLite (no KeychainAccess, no cloned values, NULL columns left
        // out as osquery reads a missing column as NULL).
        let direct_rows = direct_maps(&conn, &c).map_err(|e| e.to_string())?;
        let mut buf2: Vec<u8> = Vec::new();
        let entries: usize = direct_rows.iter().map(BTreeMap::len).sum();
        {
            let out = ExtensionResponse::new(
                ExtensionStatus::new(0, "OK".to_string(), None),
                direct_rows,
            );
            let mut proto = TBinaryOutputProtocol::new(&mut buf2, true);
            out.write_to_out_protocol(&mut proto)
                .map_err(|e| e.to_string())?;
        }
        let t4 = Instant::now();
        if i > 0 {
            sql.push((t1 - t).as_secs_f64() * 1e3);
            maps.push((t2 - t1).as_secs_f64() * 1e3);
            encode.push((t3 - t2).as_secs_f64() * 1e3);
            decode.push((t3b - t3).as_secs_f64() * 1e3);
            direct.push((t4 - t3b).as_secs_f64() * 1e3);
            bytes = buf.len();
            direct_bytes = buf2.len();
            rows_n = rows.len();
            non_null = entries;
        }
    }
    for v in [&mut sql, &mut maps, &mut encode, &mut direct, &mut decode] {
        v.sort_by(f64::total_cmp);
    }
    Ok(serde_json::json!({
        "calls": repeat,
        "rows": rows_n,
        "response_bytes": bytes,
        "sql_ms_p50": round3(pct(&sql, 0.5)),
        "maps_ms_p50": round3(pct(&maps, 0.5)),
        "thrift_encode_ms_p50": round3(pct(&encode, 0.5)),
        "sql_ms_min": round3(sql.first().copied().unwrap_or(0.0)),
        "maps_ms_min": round3(maps.first().copied().unwrap_or(0.0)),
        "thrift_encode_ms_min": round3(encode.first().copied().unwrap_or(0.0)),
        "answer_ms_p50": round3(pct(&sql, 0.5) + pct(&maps, 0.5) + pct(&encode, 0.5)),
        "client_decode_ms_p50": round3(pct(&decode, 0.5)),
        "client_decode_ms_min": round3(decode.first().copied().unwrap_or(0.0)),
        "prototype_direct_nonnull_ms_p50": round3(pct(&direct, 0.5)),
        "prototype_direct_nonnull_ms_min": round3(direct.first().copied().unwrap_or(0.0)),
        "prototype_response_bytes": direct_bytes,
        "values_per_row": keychain_access_tables::COLUMNS.len(),
        "non_null_values_per_row": non_null as f64 / rows_n.max(1) as f64,
    })
    .to_string())
}

/// The prototype of `local`: SQL, maps of the non-NULL columns, in one pass.
fn direct_maps(
    conn: &rusqlite::Connection,
    constraints: &[keychain_access_tables::constraints::Constraint],
) -> rusqlite::Result<Vec<BTreeMap<String, String>>> {
    use keychain_access_tables::constraints::where_clause;
    use keychain_access_tables::schema::{column_list, Value};
    use keychain_access_tables::store::{DEFAULT_MAX_RESULT_ROWS, EVENTS_TABLE};
    use keychain_access_tables::COLUMNS;
    let (clause, mut params) = where_clause(constraints);
    let sql = format!(
        "SELECT {} FROM {EVENTS_TABLE} WHERE {clause} ORDER BY time, rowid LIMIT ?",
        column_list()
    );
    params.push(Value::Int(DEFAULT_MAX_RESULT_ROWS as i64 + 1));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut q = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = q.next()? {
        let mut m = BTreeMap::new();
        for (i, c) in COLUMNS.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let v = match r.get_ref(i)? {
                ValueRef::Null => continue,
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Real(f) => f.to_string(),
                ValueRef::Blob(_) => continue,
            };
            m.insert(c.name.to_string(), v);
        }
        out.push(m);
    }
    out.truncate(DEFAULT_MAX_RESULT_ROWS);
    Ok(out)
}
