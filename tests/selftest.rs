//! `keychain-access selftest` end to end, off a Mac: the real extension
//! (under the fake osqueryd) tails a capture, and stand-ins for `security`
//! and `cp` write to it the eslogger events a Mac would log for them, with
//! their real pid and parent pid. So the process tree the self-test marks by
//! is real; only the event source is simulated, as `tests/extension.rs`
//! simulates eslogger.
//!
//! Event shapes come from the committed fixtures (Atomic Red Team
//! T1555.001 tests 1 and 4, `tests/fixtures/cases.json`).

#[path = "support/common.rs"]
mod common;
use common::{bin, ext_bin, fake_em, python, repo, Manager, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Placeholders the stand-ins replace with `$$` and `$PPID`.
const PID: i64 = 999_001;
const PPID: i64 = 999_002;

fn tempdir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    // Unix socket paths must stay short.
    let d = PathBuf::from(format!("/tmp/kca-st-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn fixture_line(name: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let text = std::fs::read_to_string(repo().join("tests/fixtures").join(name)).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| pick(v))
        .unwrap_or_else(|| panic!("no such line in {name}"))
}

fn now_rfc3339() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.000000000Z"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Give a process object our placeholder pid and parent.
fn set_ids(p: &mut Value) {
    p["audit_token"]["pid"] = PID.into();
    p["ppid"] = PPID.into();
    p["original_ppid"] = PPID.into();
    p["parent_audit_token"]["pid"] = PPID.into();
    p["group_id"] = PID.into();
}

/// An eslogger exec of `/usr/bin/security` with these arguments.
fn security_exec(args: &[&str], time: &str) -> String {
    let mut v = fixture_line("art_t1555_001_1_dump_keychain.ndjson", |v| {
        v["event_type"] == 9
            && v["event"]["exec"]["target"]["executable"]["path"] == "/usr/bin/security"
    });
    set_ids(&mut v["process"]);
    set_ids(&mut v["event"]["exec"]["target"]);
    v["event"]["exec"]["args"] = json!(args);
    v["time"] = time.into();
    serde_json::to_string(&v).unwrap()
}

/// An eslogger open of the keychain by `/bin/cp`.
fn cp_open(time: &str) -> String {
    let mut v = fixture_line("art_t1555_001_4_cat_copy.ndjson", |v| {
        v["event_type"] == 10 && v["process"]["executable"]["path"] == "/bin/cat"
    });
    set_ids(&mut v["process"]);
    v["process"]["executable"]["path"] = "/bin/cp".into();
    v["process"]["signing_id"] = "com.apple.cp".into();
    v["event"]["open"]["file"]["path"] = "__KC__".into();
    v["time"] = time.into();
    serde_json::to_string(&v).unwrap()
}

/// The stand-in tools: each appends its own event to the capture (with its
/// pid and parent pid), as eslogger would log it, then does its job.
fn write_tools(dir: &Path, capture: &Path, report_copy: bool) -> PathBuf {
    let time = now_rfc3339();
    let tools = dir.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("dump.json"),
        security_exec(&["security", "dump-keychain", "-d", "__KC__"], &time) + "\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("find.json"),
        security_exec(
            &["security", "find-generic-password", "-w", "__KC__"],
            &time,
        ) + "\n",
    )
    .unwrap();
    std::fs::write(templates.join("cp.json"), cp_open(&time) + "\n").unwrap();
    let emit = format!(
        "emit() {{ sed -e \"s/{PID}/$$/g\" -e \"s/{PPID}/$PPID/g\" -e \"s|__KC__|$2|g\" -e \"s|__SVC__|$3|g\" \"{}/$1.json\" >> \"{}\"; }}\n",
        templates.display(),
        capture.display()
    );
    let security = format!(
        "#!/bin/sh\n# Stand-in for /usr/bin/security (see tests/selftest.rs).\n{emit}\
         case \"$1\" in\n\
         create-keychain) : > \"$4\" ;;\n\
         add-generic-password|unlock-keychain) ;;\n\
         delete-keychain) rm -f \"$2\" ;;\n\
         dump-keychain) emit dump \"$3\" && echo 'keychain: \"dumped item data\"' ;;\n\
         find-generic-password) emit find \"$3\" && echo 'item-password' ;;\n\
         *) exit 1 ;;\n\
         esac\n"
    );
    let cp = format!(
        "#!/bin/sh\n# Stand-in for /bin/cp that reports its open of the keychain.\n{emit}{}exec /bin/cp \"$@\"\n",
        if report_copy { "emit cp \"$1\"\n" } else { "" }
    );
    for (name, body) in [("security", security), ("cp", cp)] {
        let p = tools.join(name);
        std::fs::write(&p, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    tools
}

struct Running {
    _manager: Manager,
    _extension: Proc,
    /// The extension's socket (osquery's is `<manager socket>`).
    listen: PathBuf,
    config: PathBuf,
}

fn start(dir: &Path, capture: &Path) -> Running {
    let manager = Manager::start(dir, &[]);
    let socket = manager.socket.clone();
    let config = dir.join("cfg.json");
    let cfg = json!({
        "database": dir.join("db/buffer.db"),
        "sources": {"eslogger": {"enabled": false}, "log_stream": {"enabled": false},
                    "files": [capture]}
    });
    std::fs::write(&config, cfg.to_string()).unwrap();
    let extension = Proc(
        Command::new(ext_bin())
            .arg("--socket")
            .arg(&socket)
            .args(["--timeout", "10", "--interval", "1", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("ext.log")).unwrap())
            .spawn()
            .expect("start extension"),
    );
    // The extension's own socket, where the fake osqueryd calls it.
    let listen = PathBuf::from(
        manager.wait_event("registered", Duration::from_secs(15))["listen_path"]
            .as_str()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !dir.join("db/selftest").is_dir() {
        assert!(
            Instant::now() < deadline,
            "extension did not start: {}",
            std::fs::read_to_string(dir.join("ext.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Running {
        _manager: manager,
        _extension: extension,
        listen,
        config,
    }
}

fn selftest(dir: &Path, run: &Running, tools: &Path, deadline: u64) -> Output {
    Command::new(bin())
        .args(["selftest", "--config"])
        .arg(&run.config)
        .args(["--deadline", &deadline.to_string(), "--tools-dir"])
        .arg(tools)
        .env("HOME", dir.join("home"))
        .env_remove("SUDO_USER")
        .env("TMPDIR", dir)
        .output()
        .unwrap()
}

/// Every row of the live table, through the fake osqueryd.
fn table_rows(socket: &Path) -> Vec<Value> {
    let listen = format!("{}", socket.display());
    let out = Command::new(python())
        .arg(fake_em())
        .args([
            "generate",
            "--table",
            "keychain_access_events",
            "--context",
            "{}",
        ])
        .args(["--socket", &listen])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    v["response"].as_array().cloned().unwrap_or_default()
}

#[test]
fn selftest_alerts_per_behaviour_marks_only_its_own_tree_and_cleans_up() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("home/Library/Keychains")).unwrap();
    let capture = dir.join("capture.ndjson");
    // A stealer that reuses the self-test's keychain naming: same commands,
    // not the self-test's process tree.
    let time = now_rfc3339();
    let stealer = security_exec(
        &[
            "security",
            "dump-keychain",
            "-d",
            "kca-selftest-000000000000.keychain-db",
        ],
        &time,
    )
    .replace(&PID.to_string(), "777")
    .replace(&PPID.to_string(), "1");
    std::fs::write(&capture, stealer + "\n").unwrap();
    let run = start(&dir, &capture);
    let tools = write_tools(&dir, &capture, true);

    let out = selftest(&dir, &run, &tools, 20);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}",
        std::fs::read_to_string(dir.join("ext.log")).unwrap_or_default()
    );
    for label in [
        "PASS  security dump-keychain -d: alert row",
        "PASS  security find-generic-password -w: alert row",
        "PASS  cp of the keychain to a temporary folder: alert row",
    ] {
        assert!(stdout.contains(label), "{label}: {stdout}");
    }
    // The run's nonce, as printed, is what marks its rows.
    let nonce = stdout
        .split("run ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(nonce.len(), 32, "{stdout}");
    let rows = table_rows(&run.listen);
    let marked: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("self-test run {nonce} (process tree of pid")))
        })
        .collect();
    assert_eq!(marked.len(), 3, "{rows:#?}");
    let stealer_row = rows
        .iter()
        .find(|r| r["pid"] == "777")
        .unwrap_or_else(|| panic!("stealer row: {rows:#?}"));
    assert!(
        !stealer_row["reason"]
            .as_str()
            .unwrap_or("")
            .contains("self-test"),
        "a reused keychain name is not a mark: {stealer_row}"
    );
    assert!(matches!(
        stealer_row["severity"].as_str(),
        Some("medium" | "high")
    ));
    // Secrets never leave the process: not the item password the stand-in
    // printed for `-w`, nor the dump.
    for s in ["item-password", "dumped item data"] {
        assert!(!stdout.contains(s) && !stderr.contains(s), "{s} shown");
    }
    // Cleaned up: the keychain, the copy, the registration.
    let left: Vec<_> = std::fs::read_dir(dir.join("home/Library/Keychains"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(std::fs::read_dir(dir.join("db/selftest"))
        .unwrap()
        .next()
        .is_none());
    assert!(!std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("kca-selftest-")));

    // A behaviour the sensor misses (here: the copy is not reported) fails
    // the run, naming it, within the deadline.
    let tools = write_tools(&dir, &capture, false);
    let t0 = Instant::now();
    let out = selftest(&dir, &run, &tools, 3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("PASS  security dump-keychain -d"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  cp of the keychain to a temporary folder: no row within 3s"),
        "{stdout}"
    );
    assert!(t0.elapsed() < Duration::from_secs(15));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn selftest_without_the_extension_or_with_untrusted_tools_says_so() {
    let dir = tempdir();
    let cfg = dir.join("cfg.json");
    std::fs::write(
        &cfg,
        json!({"database": dir.join("db/buffer.db")}).to_string(),
    )
    .unwrap();
    let tools = dir.join("tools");
    std::fs::create_dir(&tools).unwrap();
    let selftest = || {
        Command::new(bin())
            .args(["selftest", "--config"])
            .arg(&cfg)
            .arg("--tools-dir")
            .arg(&tools)
            .output()
            .unwrap()
    };
    let out = selftest();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("is the extension running"), "{err}");
    // Tools others could have replaced are not run (the self-test runs as root).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tools, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = selftest();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("--tools-dir") && err.contains("not group/other-writable"),
        "{err}"
    );
    // Off a Mac, without stand-ins, it says where it runs.
    if !cfg!(target_os = "macos") {
        let out = Command::new(bin())
            .args(["selftest", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("runs on macOS"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
