//! Large `keychain_access_events` answers through the real binary and the
//! fake osqueryd: an answer past the 1 MiB the extension keeps in memory is
//! spilled to an unlinked file beside the buffer and streamed from it. The
//! rows must equal the buffer's, every column, in order; `colsUsed` must cut
//! the columns; and nothing may be left beside the buffer afterwards.

#[path = "support/common.rs"]
mod common;
use common::{ext_bin, fake_em, python, Proc};
use keychain_access_tables::schema::{Action, Severity};
use keychain_access_tables::store::Store;
use keychain_access_tables::KeychainAccess;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tempdir(name: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/kca-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("db")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in [d.clone(), d.join("db")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    d
}

/// `n` rows shaped like `security find-generic-password -w` rows, with
/// command lines long enough that the whole answer is several MiB.
fn rows(n: usize) -> Vec<KeychainAccess> {
    (0..n)
        .map(|i| KeychainAccess {
            time: Some(1_754_579_589 + i as i64),
            eid: Some(format!("{:010x}{:016x}", 1_754_579_589 + i as i64, i)),
            source: Some("esf".into()),
            event_type: Some("exec".into()),
            pid: Some(4000 + i as i64),
            pidversion: Some(90_000 + i as i64),
            uid: Some(501),
            path: Some("/usr/bin/security".into()),
            cmdline: Some(format!(
                "security find-generic-password -w -s service-{i} -a {}",
                "a".repeat(900)
            )),
            signer: Some("apple".into()),
            platform_binary: Some(1),
            action: Some(Action::FindGenericPassword),
            verb: Some("find-generic-password".into()),
            password_query: Some(1),
            reveals_secret: Some(1),
            allowlisted: Some(0),
            severity: Some(Severity::Medium),
            reason: Some("security find-generic-password -w prints a password".into()),
            technique: Some("T1555.001".into()),
            ..Default::default()
        })
        .collect()
}

fn generate(listen: &str, context: &Value) -> Vec<BTreeMap<String, String>> {
    let out = Command::new(python())
        .arg(fake_em())
        .args([
            "generate",
            "--table",
            "keychain_access_events",
            "--socket",
            listen,
        ])
        .args(["--timeout", "60", "--context", &context.to_string()])
        .output()
        .expect("fake_em generate");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("generate: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["status"]["code"], 0, "{}", v["status"]);
    serde_json::from_value(v["response"].clone()).unwrap()
}

fn files_beside(db: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_spilled_answer_equals_the_buffer_and_leaves_nothing_behind() {
    let dir = tempdir("answers");
    let db = dir.join("db/buffer.db");
    let mut stored = rows(3000);
    // A name that displays reversed (U+202E) and a zero-width space: stored
    // as they happened, answered as visible escapes.
    stored[7].target_path = Some("/Users/alice/invoice\u{202e}gpj.app\u{200b}".into());
    {
        let mut store = Store::open(&db).unwrap();
        assert_eq!(store.insert(&stored, None).unwrap(), stored.len());
    }
    let before = files_beside(&db);

    let socket = dir.join("osq.em");
    let mut mgr = Command::new(python())
        .arg(fake_em())
        .args(["manager", "--socket"])
        .arg(&socket)
        .args(["--max-seconds", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(mgr.stdout.take().unwrap());
    let _mgr = Proc(mgr);
    let cfg = dir.join("cfg.json");
    std::fs::write(
        &cfg,
        json!({
            "database": db,
            "retention": {"max_age_seconds": 3153600000u64, "max_rows": 10000000},
            "sources": {"eslogger": {"enabled": false}, "log_stream": {"enabled": false}, "files": []}
        })
        .to_string(),
    )
    .unwrap();
    let mut listen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = out.lines();
    let mut ext = None;
    while Instant::now() < deadline {
        let Some(Ok(l)) = lines.next() else { break };
        let e: Value = serde_json::from_str(&l).unwrap();
        if e["event"] == "listening" {
            ext = Some(Proc(
                Command::new(ext_bin())
                    .arg("--socket")
                    .arg(&socket)
                    .args(["--timeout", "10", "--interval", "1", "--config"])
                    .arg(&cfg)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            ));
        }
        if e["event"] == "registered" {
            listen = e["listen_path"].as_str().unwrap().to_string();
            break;
        }
    }
    assert!(!listen.is_empty(), "the extension did not register");
    let _ext = ext;

    // Every column of 3,000 rows (about 4 MB on the wire): spilled.
    let got = generate(&listen, &json!({"constraints": []}));
    let want: Vec<BTreeMap<String, String>> = stored
        .iter()
        .map(|r| {
            r.to_osquery_map()
                .into_iter()
                .map(|(k, v)| {
                    let v = keychain_access_tables::text::display_safe(&v).into_owned();
                    (k, v)
                })
                .collect()
        })
        .collect();
    assert_eq!(
        got[7]["target_path"], "/Users/alice/invoice\\u{202e}gpj.app\\u{200b}",
        "bidi and zero-width characters leave as visible escapes"
    );
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the streamed rows differ from the buffer's");

    // colsUsed as osqueryd sends it: only those columns, same rows.
    let ctx =
        json!({"constraints": [], "colsUsed": ["time", "pid", "cmdline"], "colsUsedBitset": 4129});
    let narrow = generate(&listen, &ctx);
    assert_eq!(narrow.len(), stored.len());
    for (n, w) in narrow.iter().zip(&want) {
        assert_eq!(n.len(), 3);
        assert_eq!(n["cmdline"], w["cmdline"]);
        assert_eq!(n["time"], w["time"]);
    }

    // The spool files were unlinked when created: none is left beside the
    // buffer (the extension also keeps its own entries there).
    let left: Vec<String> = files_beside(&db)
        .into_iter()
        .filter(|f| !before.contains(f) && f.contains("spool"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
