//! The real extension binary (`keychain-access-extension`, as installed;
//! one test runs the CLI's kept extension mode), driven by a fake osqueryd: the PyPI
//! packages `osquery` (osquery-python's generated Thrift code), `thrift`
//! and `future` acting as osquery's extension manager
//! (`tests/fake_osqueryd/fake_em.py`). These tests never skip: without the
//! Python packages they fail and say how to install them.

#[path = "support/common.rs"]
mod common;
use common::{bin, ext_bin, fake_em, python, repo, Manager, Proc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private temp dir (0700; unix socket paths must stay short).
fn tempdir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = PathBuf::from(format!("/tmp/kca-{}-{}-{n}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    d
}

fn start_extension(dir: &Path, socket: &Path, config: &Value, interval: u64) -> Proc {
    start_extension_env(dir, socket, config, interval, &[])
}

fn start_extension_env(
    dir: &Path,
    socket: &Path,
    config: &Value,
    interval: u64,
    env: &[(String, String)],
) -> Proc {
    start_binary(&ext_bin(), dir, socket, config, interval, env)
}

/// Start `program` in extension mode (the thin binary, or the CLI).
fn start_binary(
    program: &Path,
    dir: &Path,
    socket: &Path,
    config: &Value,
    interval: u64,
    env: &[(String, String)],
) -> Proc {
    let cfg = dir.join("cfg.json");
    std::fs::write(&cfg, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let child = Command::new(program)
        .arg("--socket")
        .arg(socket)
        .args([
            "--timeout",
            "10",
            "--interval",
            &interval.to_string(),
            "--config",
        ])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("ext.log")).unwrap())
        .spawn()
        .expect("start extension");
    Proc(child)
}

fn base_config(dir: &Path) -> Value {
    json!({
        "database": dir.join("db/buffer.db"),
        "max_result_rows": 1000000,
        "sources": {"eslogger": {"enabled": false}, "log_stream": {"enabled": false}, "files": []}
    })
}

/// Call the extension through the fake osqueryd client.
fn fake_call(listen: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(fake_em())
        .args(args)
        .args(["--socket", listen])
        .output()
        .expect("fake_em call");
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.trim()).unwrap_or_else(|e| {
        panic!(
            "fake_em {args:?}: {e}: {s} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn generate(listen: &str, table: &str, context: &Value) -> Value {
    let ctx = context.to_string();
    fake_call(listen, &["generate", "--table", table, "--context", &ctx])
}

fn rows(resp: &Value) -> Vec<BTreeMap<String, String>> {
    assert_eq!(resp["status"]["code"], 0, "generate failed: {resp}");
    serde_json::from_value(resp["response"].clone()).unwrap()
}

fn status_row(listen: &str, source_prefix: &str) -> BTreeMap<String, String> {
    rows(&generate(listen, "keychain_access_status", &json!({})))
        .into_iter()
        .find(|r| r["source"].starts_with(source_prefix))
        .unwrap_or_else(|| panic!("no status row for {source_prefix}"))
}

/// Wait until the file source has read every line of its input.
fn wait_ingested(
    listen: &str,
    source: &str,
    lines: u64,
    timeout: Duration,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status_row(listen, source);
        if s["lines_read"].parse::<u64>().unwrap_or(0) >= lines {
            return s;
        }
        assert!(Instant::now() < deadline, "ingest stalled: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `scan` rows of a capture, as osquery's string rows.
fn scan_as_osquery(input: &Path) -> Vec<BTreeMap<String, String>> {
    let out = Command::new(bin())
        .arg("scan")
        .arg("--input")
        .arg(input)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: BTreeMap<String, Value> = serde_json::from_str(l).unwrap();
            v.into_iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::Null => String::new(),
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, s)
                })
                .collect()
        })
        .collect()
}

fn by_eid(mut v: Vec<BTreeMap<String, String>>) -> Vec<BTreeMap<String, String>> {
    v.sort_by(|a, b| a["eid"].cmp(&b["eid"]));
    v
}

fn line_count(p: &Path) -> u64 {
    std::fs::read(p)
        .unwrap()
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
}

fn capture() -> PathBuf {
    repo().join("samples/capture.ndjson")
}

/// Wait for a child to exit, polling every 20 ms; fails the test with
/// `what` if it is still running after `within`.
fn wait_exit(
    child: &mut std::process::Child,
    within: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn registers_serves_and_answers_like_scan() {
    let dir = tempdir("serve");
    let m = Manager::start(&dir, &[]);
    let mut cfg = base_config(&dir);
    cfg["sources"]["files"] = json!([capture()]);
    let _ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    assert_eq!(reg["info"]["name"], "keychain_access");
    assert_eq!(reg["info"]["version"], env!("CARGO_PKG_VERSION"));
    let tables = reg["registry"]["table"].as_object().unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("packs/schema/keychain_access_events.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<(String, String)> = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["osquery_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    let got: Vec<(String, String)> = tables["keychain_access_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == "column")
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, want, "column routes follow the schema");
    assert!(tables.contains_key("keychain_access_status"));
    let listen = reg["listen_path"].as_str().unwrap().to_string();

    let total = line_count(&capture());
    let status = wait_ingested(&listen, "file:", total, Duration::from_secs(60));
    let expected = scan_as_osquery(&capture());
    assert!(expected.len() > 50, "the sample capture holds many rows");

    // generate without constraints == scan of the same capture.
    let all = rows(&generate(&listen, "keychain_access_events", &json!({})));
    assert_eq!(by_eid(all.clone()), by_eid(expected.clone()));

    // The status counters match the input.
    assert_eq!(status["lines_read"].parse::<u64>().unwrap(), total);
    assert_eq!(
        status["rows_stored"].parse::<usize>().unwrap(),
        expected.len()
    );
    let alerts = expected
        .iter()
        .filter(|r| {
            (r["severity"] == "medium" || r["severity"] == "high") && r["allowlisted"] == "0"
        })
        .count();
    assert_eq!(status["alerts"].parse::<usize>().unwrap(), alerts);

    // time and pid constraints return exactly the matching rows.
    let mut times: Vec<i64> = expected
        .iter()
        .map(|r| r["time"].parse().unwrap())
        .collect();
    times.sort_unstable();
    let (lo, hi) = (times[times.len() / 4], times[times.len() * 3 / 4]);
    let ctx = json!({"constraints": [{"name": "time", "affinity": "BIGINT",
        "list": [{"op": 32, "expr": lo.to_string()}, {"op": 16, "expr": hi.to_string()}]}]});
    let got = rows(&generate(&listen, "keychain_access_events", &ctx));
    let want: Vec<_> = expected
        .iter()
        .filter(|r| {
            let t: i64 = r["time"].parse().unwrap();
            t >= lo && t < hi
        })
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(by_eid(got), by_eid(want));
    let pid = expected[expected.len() / 2]["pid"].clone();
    let ctx = json!({"constraints": [{"name": "pid", "affinity": "BIGINT", "list": [{"op": 2, "expr": pid}]}]});
    let got = rows(&generate(&listen, "keychain_access_events", &ctx));
    let want: Vec<_> = expected
        .iter()
        .filter(|r| r["pid"] == pid)
        .cloned()
        .collect();
    assert_eq!(by_eid(got), by_eid(want));
    // Legacy string op codes and hostile values are handled.
    let ctx = json!({"constraints": [{"name": "path", "affinity": "TEXT",
        "list": [{"op": "2", "expr": "x' OR '1'='1"}]}]});
    assert!(rows(&generate(&listen, "keychain_access_events", &ctx)).is_empty());

    // colsUsed: only the columns the query uses are filled.
    let ctx =
        json!({"constraints": [], "colsUsed": ["time", "path", "severity"], "colsUsedBitset": 7});
    let got = rows(&generate(&listen, "keychain_access_events", &ctx));
    assert_eq!(got.len(), expected.len());
    assert!(got.iter().all(|r| r.len() == 3 && r.contains_key("path")));

    // 8 concurrent generates agree.
    let ctx = json!({}).to_string();
    let many = fake_call(
        &listen,
        &[
            "generate",
            "--table",
            "keychain_access_events",
            "--context",
            &ctx,
            "--concurrent",
            "8",
        ],
    );
    let results = many.as_array().expect("a list of 8 results");
    assert_eq!(results.len(), 8);
    let first = by_eid(rows(&results[0]));
    for r in results {
        assert_eq!(by_eid(rows(r)), first);
    }

    // Malformed context: an error status, never a crash.
    let req = json!({"action": "generate", "context": "{not json"}).to_string();
    let bad = fake_call(
        &listen,
        &[
            "call",
            "--item",
            "keychain_access_events",
            "--request",
            &req,
        ],
    );
    assert_eq!(bad["status"]["code"], 1, "{bad}");
    let req = json!({"action": "generate", "context": "{\"constraints\":[{\"name\":\"pid\",\"list\":[{\"op\":2,\"expr\":[1]}]}]}"}).to_string();
    let bad = fake_call(
        &listen,
        &[
            "call",
            "--item",
            "keychain_access_events",
            "--request",
            &req,
        ],
    );
    assert_eq!(bad["status"]["code"], 1, "{bad}");
    // Still serving afterwards.
    assert_eq!(
        rows(&generate(&listen, "keychain_access_events", &json!({}))).len(),
        expected.len()
    );
}

/// `keychain-access --socket ...`, kept for existing installs and
/// `osqueryi --extension`: the same library entry point registers the same
/// extension and answers.
#[test]
fn cli_extension_mode_still_registers_and_answers() {
    let dir = tempdir("cli-ext");
    let m = Manager::start(&dir, &[]);
    let _ext = start_binary(&bin(), &dir, &m.socket, &base_config(&dir), 1, &[]);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    assert_eq!(reg["info"]["name"], "keychain_access");
    let tables = reg["registry"]["table"].as_object().unwrap();
    assert!(tables.contains_key("keychain_access_events"));
    assert!(tables.contains_key("keychain_access_status"));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    let st = rows(&generate(&listen, "keychain_access_status", &json!({})));
    assert!(st.iter().any(|r| r["source"] == "sentinel"), "{st:?}");
}

/// The installed extension is only the extension: a CLI subcommand gets a
/// one-line pointer to `keychain-access`, and `--help` describes the
/// extension role alone.
#[test]
fn thin_binary_refuses_cli_subcommands_and_helps_only_as_the_extension() {
    for args in [
        &["scan", "--input", "x.ndjson"][..],
        &["pack", "run", "--pack", "p.conf"],
        &["--verbose", "selftest"],
        &["--socket", "/tmp/s.em", "forward", "--results", "r.log"],
    ] {
        let out = Command::new(ext_bin()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        let word = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.starts_with('/'))
            .unwrap();
        assert!(
            err.contains(&format!("run `keychain-access {word} --help`")),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = Command::new(ext_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: keychain-access-extension [OPTIONS]"),
        "{help}"
    );
    for flag in [
        "--socket",
        "--timeout",
        "--interval",
        "--verbose",
        "--config",
        "--input",
    ] {
        assert!(help.contains(flag), "{flag} missing: {help}");
    }
    // Whole words: "osquery" is not the `query` command.
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_alphanumeric() || c == ':'))
            .map(String::from)
            .collect()
    };
    let commands = [
        "Commands:",
        "scan",
        "query",
        "schema",
        "pack",
        "forward",
        "selftest",
    ];
    let ext_words = words(&help);
    for cli in commands {
        assert!(
            !ext_words.iter().any(|w| w == cli),
            "{cli:?} in the extension's help: {help}"
        );
    }
    // The CLI's help does list them.
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let cli_words = words(&help);
    for cli in commands {
        assert!(
            cli_words.iter().any(|w| w == cli),
            "{cli:?} missing from the CLI's help: {help}"
        );
    }
    // Without --socket there is nothing to serve: said in one line.
    let out = Command::new(ext_bin()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("keychain-access-extension: error: ") && err.contains("needs --socket"),
        "{err}"
    );
}

/// The root-running binary links none of the CLI's tooling: no YAML
/// library (pack export/check), no pack runner. The CLI, built from the
/// same package, has both, which shows the search would find them.
#[test]
fn thin_binary_links_no_pack_or_yaml_code() {
    let has = |program: &Path, needle: &str| {
        let bytes = std::fs::read(program).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    // The YAML crate by its symbols; `pack run` by one of its messages.
    for needle in ["serde_yaml_ng", "is not emulated offline"] {
        assert!(has(&bin(), needle), "control: the CLI has {needle}");
        assert!(
            !has(&ext_bin(), needle),
            "keychain-access-extension links {needle}"
        );
    }
}

#[test]
fn refused_registration_exits_non_zero_with_a_clear_message() {
    let dir = tempdir("refuse");
    let m = Manager::start(&dir, &["--refuse", "Duplicate extension registered"]);
    let mut ext = start_extension(&dir, &m.socket, &base_config(&dir), 1);
    let status = wait_exit(
        &mut ext.0,
        Duration::from_secs(15),
        "extension kept running after a refused registration",
    );
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.join("ext.log")).unwrap();
    assert!(
        log.contains("refused") && log.contains("Duplicate extension"),
        "{log}"
    );
}

fn pid_alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn eslogger_config(dir: &Path, mode: &str, fixture: &Path) -> (Value, Vec<(String, String)>) {
    let state = dir.join("fake-es");
    std::fs::create_dir_all(&state).unwrap();
    let mut cfg = base_config(dir);
    cfg["sources"]["eslogger"] = json!({
        "enabled": true,
        "command": [repo().join("tests/support/fake_eslogger.sh")],
        "restart_backoff_initial_ms": 200,
        "restart_backoff_max_ms": 400
    });
    let env = vec![
        ("FAKE_ES_MODE".to_string(), mode.to_string()),
        ("FAKE_ES_FIXTURE".to_string(), fixture.display().to_string()),
        ("FAKE_ES_STATE".to_string(), state.display().to_string()),
    ];
    (cfg, env)
}

#[test]
fn manager_gone_ends_extension_and_children_within_two_intervals() {
    let dir = tempdir("gone");
    let m = Manager::start(&dir, &[]);
    let fixture = repo().join("tests/fixtures/art_t1555_001_1_dump_keychain.ndjson");
    let (cfg, env) = eslogger_config(&dir, "hang", &fixture);
    let mut ext = start_extension_env(&dir, &m.socket, &cfg, 1, &env);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    // The fake eslogger replayed its capture and is now a live child.
    let deadline = Instant::now() + Duration::from_secs(15);
    while status_row(&listen, "eslogger")["rows_stored"] == "0" {
        assert!(Instant::now() < deadline, "eslogger rows never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids: Vec<u32> = std::fs::read_to_string(dir.join("fake-es/pids"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(
        pids.iter().any(|p| pid_alive(*p)),
        "fake eslogger is running"
    );

    let mut manager = m.proc;
    manager.0.kill().unwrap();
    let status = wait_exit(
        &mut ext.0,
        Duration::from_secs(2),
        "extension still running 2 intervals after osquery died",
    );
    assert!(status.success(), "a clean exit when osquery goes away");
    std::thread::sleep(Duration::from_millis(200));
    for p in pids {
        assert!(!pid_alive(p), "child {p} outlived the extension");
    }
    // Nothing left behind but the database (and the test's own files).
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|f| f.starts_with("osq.em.")),
        "extension socket left behind: {left:?}"
    );
}

#[test]
fn eslogger_restarts_and_permission_errors_show_in_status() {
    let dir = tempdir("perm");
    let m = Manager::start(&dir, &[]);
    let fixture = repo().join("tests/fixtures/cp_clone.ndjson");
    let (cfg, env) = eslogger_config(&dir, "permission", &fixture);
    let _ext = start_extension_env(&dir, &m.socket, &cfg, 1, &env);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = status_row(&listen, "eslogger");
        if s["state"] == "not_permitted" && s["restarts"].parse::<u64>().unwrap_or(0) >= 2 {
            break s;
        }
        assert!(Instant::now() < deadline, "no not_permitted state: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(s["last_error"].contains("Full Disk Access"), "{s:?}");
    // The first, successful run's rows were kept.
    assert!(s["rows_stored"].parse::<u64>().unwrap() >= 1, "{s:?}");
    let got = rows(&generate(&listen, "keychain_access_events", &json!({})));
    assert!(got.iter().any(|r| r["action"] == "keychain_copy"));
}

/// A large capture with unique events: the sample capture repeated, with
/// every `global_seq_num` renumbered (it is part of the event id).
fn big_capture(dir: &Path, copies: usize) -> PathBuf {
    let src = std::fs::read_to_string(capture()).unwrap();
    let mut out = String::with_capacity(src.len() * copies);
    let mut seq = 0u64;
    for _ in 0..copies {
        for line in src.lines() {
            seq += 1;
            match line.find("\"global_seq_num\":") {
                Some(i) => {
                    let start = i + "\"global_seq_num\":".len();
                    let end = line[start..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(line.len(), |e| start + e);
                    out.push_str(&line[..start]);
                    out.push_str(&seq.to_string());
                    out.push_str(&line[end..]);
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
    }
    let p = dir.join("big.ndjson");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn kill9_during_ingest_then_restart_loses_nothing_and_stores_nothing_twice() {
    let dir = tempdir("kill9");
    let big = big_capture(&dir, 20);
    let total = line_count(&big);
    let expected = scan_as_osquery(&big).len();
    let m = Manager::start(&dir, &[]);
    let mut cfg = base_config(&dir);
    cfg["sources"]["files"] = json!([big]);
    let mut ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    // Kill -9 once some, but not all, rows are in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status_row(&listen, "file:");
        let n: usize = s["rows_stored"].parse().unwrap();
        if n > 0 {
            assert!(
                n < expected,
                "ingest finished before the kill; make the capture bigger"
            );
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    ext.0.kill().unwrap();
    let _ = ext.0.wait();
    std::mem::forget(ext);

    // osqueryd would notice the dead extension on its next ping and drop
    // its registration; the fake manager does not ping, so restart it too
    // (as osqueryd's watcher restarts both after a crash).
    drop(m);
    let m = Manager::start(&dir, &[]);
    let _ext2 = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(20));
    let listen2 = reg["listen_path"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = rows(&generate(
            &listen2,
            "keychain_access_events",
            &json!({"constraints": [
            {"name": "eid", "list": [{"op": 65, "expr": "%"}]}]}),
        ));
        if got.len() >= expected {
            let mut eids: Vec<&String> = got.iter().map(|r| &r["eid"]).collect();
            eids.sort();
            eids.dedup();
            assert_eq!(eids.len(), got.len(), "a row was stored twice");
            assert_eq!(got.len(), expected, "rows lost or added across kill -9");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} rows after restart",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = status_row(&listen2, "file:");
    // The restart resumed at its stored offset instead of rereading, and
    // that offset was a line boundary: no fragment of a line was read.
    assert!(s["lines_read"].parse::<u64>().unwrap() < total, "{s:?}");
    assert_eq!(s["malformed"], "0", "restart began mid-line: {s:?}");
}

#[test]
fn file_source_follows_appends_rotation_and_truncation() {
    let dir = tempdir("tail");
    let live = dir.join("live.ndjson");
    let a = repo().join("tests/fixtures/cp_clone.ndjson");
    let b = repo().join("tests/fixtures/art_t1555_001_4_cat_copy.ndjson");
    let c = repo().join("tests/fixtures/finder_copyfile.ndjson");
    std::fs::copy(&a, &live).unwrap();
    let m = Manager::start(&dir, &[]);
    let mut cfg = base_config(&dir);
    cfg["sources"]["files"] = json!([live]);
    let _ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    let want =
        |paths: &[&PathBuf]| -> usize { paths.iter().map(|p| scan_as_osquery(p).len()).sum() };
    let wait_rows = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = rows(&generate(&listen, "keychain_access_events", &json!({}))).len();
            if got == n {
                return;
            }
            assert!(Instant::now() < deadline, "expected {n} rows, have {got}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_rows(want(&[&a]));
    // The tailer's counters: what it saw happen to the file (0, not NULL,
    // for a file source).
    let tail_counters = || {
        let s = status_row(&listen, "file:");
        let get = |k: &str| s[k].clone();
        (get("rotations"), get("truncations"), get("rotated_lost"))
    };
    let counted = |want: (&str, &str, &str)| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = tail_counters();
            if (got.0.as_str(), got.1.as_str(), got.2.as_str()) == want {
                return;
            }
            assert!(Instant::now() < deadline, "want {want:?}, have {got:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    counted(("0", "0", "0"));
    // Append (in two writes, the first ending mid-line).
    let more = std::fs::read(&b).unwrap();
    let cut = more.len() / 2;
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    f.write_all(&more[..cut]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    f.write_all(&more[cut..]).unwrap();
    drop(f);
    wait_rows(want(&[&a, &b]));
    // Rotation: rename, then a new file at the same path.
    std::fs::rename(&live, dir.join("live.ndjson.1")).unwrap();
    std::fs::copy(&c, &live).unwrap();
    wait_rows(want(&[&a, &b, &c]));
    counted(("1", "0", "0"));
    // Truncation: the same file cut to nothing and rewritten.
    std::fs::write(&live, b"").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let d = repo().join("tests/fixtures/empire_python_sh_dump.ndjson");
    std::fs::copy(&d, &live).unwrap();
    wait_rows(want(&[&a, &b, &c, &d]));
    counted(("1", "1", "0"));
}

/// Stop the extension with SIGTERM and wait for its clean exit.
fn terminate(ext: &mut Proc) {
    let pid = ext.0.id();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    wait_exit(&mut ext.0, Duration::from_secs(10), "no exit after SIGTERM");
}

#[test]
fn file_source_loses_nothing_across_rotation_while_stopped_and_unfinished_lines() {
    let dir = tempdir("tail-restart");
    let live = dir.join("live.ndjson");
    let a = repo().join("tests/fixtures/cp_clone.ndjson");
    let b = repo().join("tests/fixtures/art_t1555_001_4_cat_copy.ndjson");
    let c = repo().join("tests/fixtures/finder_copyfile.ndjson");
    let d = repo().join("tests/fixtures/empire_python_sh_dump.ndjson");
    let e = repo().join("tests/fixtures/lazagne_systemkey.ndjson");
    let want =
        |paths: &[&PathBuf]| -> usize { paths.iter().map(|p| scan_as_osquery(p).len()).sum() };
    let append = |path: &Path, bytes: &[u8]| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    };
    let wait_rows = |listen: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = rows(&generate(listen, "keychain_access_events", &json!({}))).len();
            if got == n {
                return;
            }
            assert!(Instant::now() < deadline, "expected {n} rows, have {got}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The file ends in the middle of a line of `b`.
    let b_bytes = std::fs::read(&b).unwrap();
    let cut = b_bytes.len() / 2;
    assert_ne!(b_bytes[cut - 1], b'\n');
    std::fs::copy(&a, &live).unwrap();
    append(&live, &b_bytes[..cut]);
    let m = Manager::start(&dir, &[]);
    let mut cfg = base_config(&dir);
    cfg["sources"]["files"] = json!([live]);
    let mut ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    wait_ingested(&listen, "file:", line_count(&a), Duration::from_secs(20));
    terminate(&mut ext);
    drop(m);

    // While stopped: the unfinished line is completed, then the file is
    // rotated away and a new one takes its path.
    append(&live, &b_bytes[cut..]);
    std::fs::rename(&live, dir.join("live.ndjson.1")).unwrap();
    std::fs::copy(&c, &live).unwrap();
    let m = Manager::start(&dir, &[]);
    let _ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    wait_rows(&listen, want(&[&a, &b, &c]));

    // While running: an unfinished line, the rename, its end written to
    // the rotated file, then a new file.
    let d_bytes = std::fs::read(&d).unwrap();
    let cut = d_bytes.len() / 2;
    append(&live, &d_bytes[..cut]);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&live, dir.join("live.ndjson.2")).unwrap();
    append(&dir.join("live.ndjson.2"), &d_bytes[cut..]);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::copy(&e, &live).unwrap();
    wait_rows(&listen, want(&[&a, &b, &c, &d, &e]));
    // No fragment of a line was ever read.
    let s = status_row(&listen, "file:");
    assert_eq!(s["malformed"], "0", "a line was split: {s:?}");
    // Both rotations counted (since this start): the one found and drained
    // after the restart, and the one followed while running; nothing lost.
    assert_eq!(
        (s["rotations"].as_str(), s["rotated_lost"].as_str()),
        ("2", "0"),
        "{s:?}"
    );
}

#[test]
fn file_source_never_reads_another_file_given_the_rotated_captures_inode() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempdir("tail-reused");
    let live = dir.join("live.ndjson");
    let a = repo().join("tests/fixtures/cp_clone.ndjson");
    let c = repo().join("tests/fixtures/finder_copyfile.ndjson");
    let d = repo().join("tests/fixtures/empire_python_sh_dump.ndjson");
    let want =
        |paths: &[&PathBuf]| -> usize { paths.iter().map(|p| scan_as_osquery(p).len()).sum() };
    std::fs::copy(&a, &live).unwrap();
    let m = Manager::start(&dir, &[]);
    let mut cfg = base_config(&dir);
    cfg["sources"]["files"] = json!([live]);
    let mut ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    wait_ingested(&listen, "file:", line_count(&a), Duration::from_secs(20));
    terminate(&mut ext);
    drop(m);

    // While stopped: the capture is rotated and deleted, a new one takes
    // its path, and another file in the folder, with a rotated name, gets
    // the old inode (made certain here by pointing the stored identity at
    // it). It is as long as the committed offset and has a whole capture
    // right there: read from the offset, it would be rows.
    let a_len = std::fs::metadata(&a).unwrap().len() as usize;
    std::fs::rename(&live, dir.join("live.ndjson.1")).unwrap();
    std::fs::remove_file(dir.join("live.ndjson.1")).unwrap();
    let mut other = vec![b'z'; a_len - 1];
    other.push(b'\n');
    other.extend(std::fs::read(&d).unwrap());
    let other_path = dir.join("live.ndjson.2");
    std::fs::write(&other_path, other).unwrap();
    std::fs::copy(&c, &live).unwrap();
    let meta = std::fs::metadata(&other_path).unwrap();
    {
        let db = rusqlite::Connection::open(dir.join("db/buffer.db")).unwrap();
        let n = db
            .execute(
                "UPDATE source_offsets SET file_id = ?1 WHERE source LIKE 'file:%'",
                [format!("{}:{}", meta.dev(), meta.ino())],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    let m = Manager::start(&dir, &[]);
    let _ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    let n = want(&[&a, &c]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rows(&generate(&listen, "keychain_access_events", &json!({}))).len();
        let s = status_row(&listen, "file:");
        if s["rotated_lost"] == "1" && got >= n {
            break;
        }
        assert!(Instant::now() < deadline, "{got} of {n} rows; {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = rows(&generate(&listen, "keychain_access_events", &json!({}))).len();
    assert_eq!(got, n, "only the old and the new capture's rows");
    let s = status_row(&listen, "file:");
    assert_eq!(
        (
            s["rotations"].as_str(),
            s["rotated_lost"].as_str(),
            s["malformed"].as_str()
        ),
        ("0", "1", "0"),
        "{s:?}"
    );
}

#[test]
fn sigterm_is_a_clean_exit_that_deregisters() {
    let dir = tempdir("term");
    let m = Manager::start(&dir, &[]);
    let mut ext = start_extension(&dir, &m.socket, &base_config(&dir), 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let uuid = reg["uuid"].clone();
    let pid = ext.0.id();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = wait_exit(&mut ext.0, Duration::from_secs(5), "no exit after SIGTERM");
    assert!(status.success());
    let dereg = m.wait_event("deregistered", Duration::from_secs(5));
    assert_eq!(dereg["uuid"], uuid);
    assert!(
        !Path::new(reg["listen_path"].as_str().unwrap()).exists(),
        "socket removed"
    );
    // Every socket thread stopped and was joined: none orphaned or stuck.
    let log = std::fs::read_to_string(dir.join("ext.log")).unwrap();
    assert!(log.contains("Shutting down"), "{log}");
    for bad in [
        "orphaning",
        "did not exit",
        "still answering",
        "WARN  osquery_rust_ng",
        "ERROR",
    ] {
        assert!(!log.contains(bad), "{bad:?} in the extension's log:\n{log}");
    }
}

#[test]
fn sentinel_logger_plugin_acknowledges_lines_once_queued() {
    let dir = tempdir("logger");
    let secret = dir.join("secret");
    std::fs::write(&secret, "not-a-real-secret").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Nothing listens on this port: lines must wait in the durable queue.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = base_config(&dir);
    cfg["sentinel"] = json!({
        "endpoint": format!("http://127.0.0.1:{port}"),
        "dcr_immutable_id": "dcr-00000000000000000000000000000000",
        "stream": "Custom-OsqueryResultLine",
        "tenant_id": "00000000-0000-0000-0000-000000000000",
        "client_id": "00000000-0000-0000-0000-000000000000",
        "client_secret_file": secret,
        "token_url": format!("http://127.0.0.1:{port}/token"),
        "queue_path": dir.join("db/sentinel.db"),
        "allow_insecure_loopback": true,
        "backoff_initial_ms": 100,
        "backoff_max_ms": 200
    });
    let m = Manager::start(&dir, &[]);
    let _ext = start_extension(&dir, &m.socket, &cfg, 1);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    assert!(
        reg["registry"]["logger"]["keychain_access_sentinel"].is_array(),
        "{reg}"
    );
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    let line = json!({"name": "pack_keychain-access_keychain_credential_access", "hostIdentifier": "mac1",
        "unixTime": 1754550000, "columns": {"eid": "e1", "severity": "high"}, "action": "added"});
    let req = json!({"string": line.to_string()}).to_string();
    let resp = fake_call(
        &listen,
        &[
            "call",
            "--registry",
            "logger",
            "--item",
            "keychain_access_sentinel",
            "--request",
            &req,
        ],
    );
    assert_eq!(resp["status"]["code"], 0, "{resp}");
    let s = status_row(&listen, "sentinel");
    assert_eq!(s["buffer_rows"], "1", "{s:?}");
    assert_eq!(
        s["rows_stored"], "0",
        "nothing delivered while the endpoint is down: {s:?}"
    );
    // A line that is not a JSON object is refused (an error status), not kept.
    let req = json!({"string": "not json"}).to_string();
    let resp = fake_call(
        &listen,
        &[
            "call",
            "--registry",
            "logger",
            "--item",
            "keychain_access_sentinel",
            "--request",
            &req,
        ],
    );
    assert_ne!(resp["status"]["code"], 0, "{resp}");
}

#[test]
fn forward_refuses_a_readable_secret_file() {
    let dir = tempdir("fwd");
    let secret = dir.join("secret");
    std::fs::write(&secret, "s").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let cfg = dir.join("forward.json");
    std::fs::write(
        &cfg,
        json!({"sentinel": {
            "endpoint": "https://example.ingest.monitor.azure.com",
            "dcr_immutable_id": "dcr-0", "stream": "Custom-OsqueryResultLine",
            "tenant_id": "t", "client_id": "c", "client_secret_file": secret,
            "queue_path": dir.join("q.db")}})
        .to_string(),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["forward", "--results", "/nonexistent", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600") || err.contains("0600"), "{err}");
}

#[test]
fn own_child_is_ignored_by_pid_and_pidversion_and_forgotten_when_it_exits() {
    let dir = tempdir("pidreuse");
    let m = Manager::start(&dir, &[]);
    let fixture = repo().join("tests/fixtures/art_t1555_001_1_dump_keychain.ndjson");
    let (mut cfg, env) = eslogger_config(&dir, "unused", &fixture);
    cfg["sources"]["eslogger"]["command"] =
        json!([repo().join("tests/support/fake_eslogger_pid_reuse.sh")]);
    let _ext = start_extension_env(&dir, &m.socket, &cfg, 1, &env);
    let reg = m.wait_event("registered", Duration::from_secs(15));
    let listen = reg["listen_path"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let got = rows(&generate(&listen, "keychain_access_events", &json!({})));
        if got.iter().any(|r| r["action"] == "dump_keychain") {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the process that reused the dead child's pid was never reported: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let first: String = std::fs::read_to_string(dir.join("fake-es/first_pid"))
        .unwrap()
        .trim()
        .to_string();
    let dumps: Vec<_> = got
        .iter()
        .filter(|r| r["action"] == "dump_keychain")
        .collect();
    // Only the second image (pidversion 9...) of that pid: the child's own
    // events (pidversion 158123) stayed ignored.
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert_eq!(dumps[0]["pid"], first);
    assert_eq!(dumps[0]["pidversion"], "958123");
}

#[test]
fn a_planted_database_symlink_is_refused_not_followed_or_chmodded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("dblink");
    let victim = dir.join("victim");
    std::fs::write(&victim, "important").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(dir.join("db")).unwrap();
    std::fs::set_permissions(dir.join("db"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("db/buffer.db")).unwrap();
    let m = Manager::start(&dir, &[]);
    let mut ext = start_extension(&dir, &m.socket, &base_config(&dir), 1);
    let status = wait_exit(
        &mut ext.0,
        Duration::from_secs(15),
        "extension ran on a symlinked database",
    );
    assert!(!status.success());
    let log = std::fs::read_to_string(dir.join("ext.log")).unwrap();
    assert!(log.contains("symbolic link"), "{log}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "important");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644,
        "{log}"
    );
}
