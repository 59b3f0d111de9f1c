//! Scans the unified-log fixtures (`tests/fixtures/unified_log/`) through the
//! public `Scanner` API and checks rows, counters and correlation.

use keychain_access_tables::correlate::{apply_updates, correlation_id_for};
use keychain_access_tables::store::Store;
use keychain_access_tables::unified_log::{looks_like_unified_log, parse_log_timestamp};
use keychain_access_tables::{KeychainAccess, ScanOptions, ScanStats, Scanner};
use std::io::BufReader;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/unified_log/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn scan(name: &str) -> (Vec<KeychainAccess>, ScanStats) {
    let mut s = Scanner::new(ScanOptions::default());
    let mut rows = Vec::new();
    s.scan_reader_into(BufReader::new(&fixture(name)[..]), &mut rows)
        .unwrap();
    (rows, s.finish_stats())
}

fn by_action<'a>(rows: &'a [KeychainAccess], action: &str) -> Vec<&'a KeychainAccess> {
    rows.iter()
        .filter(|r| r.action.map(|a| a.as_str()) == Some(action))
        .collect()
}

#[test]
fn keychain_file_opened_by_its_reader() {
    let (rows, st) = scan("securityd_db_open.ndjson");
    assert_eq!(st.banner_lines, 1);
    assert_eq!(st.unified_log_records, 9);
    assert_eq!(rows.len(), 5);
    assert_eq!(st.unified_log_unmatched, 1, "the trustd policy line");
    assert_eq!(
        st.unified_log_ignored, 1,
        "the MDS database, not a keychain"
    );
    assert_eq!(
        st.unified_log_other_events, 1,
        "an activity no pattern names"
    );
    assert_eq!(st.prefiltered, 1, "the real logger line");
    assert_eq!(st.malformed, 0);
    for r in &rows {
        assert_eq!(r.source.as_deref(), Some("unified_log"));
        assert_eq!(r.event_type.as_deref(), Some("log"));
        assert_eq!(r.action.map(|a| a.as_str()), Some("keychain_db_open"));
        assert_eq!(r.severity.map(|s| s.as_str()), Some("info"));
        // The process that read the file, not securityd.
        assert_eq!(r.pid, Some(418));
        assert_eq!(
            r.path.as_deref(),
            Some(
                "/System/Applications/Utilities/Keychain Access.app/Contents/MacOS/Keychain Access"
            )
        );
        assert_eq!(r.uid, Some(501));
        assert_eq!(r.technique.as_deref(), Some("T1555.001"));
        assert_eq!(r.allowlisted, Some(0));
        assert!(r.message.as_deref().unwrap().contains(" opened "));
        assert!(r
            .reason
            .as_deref()
            .unwrap()
            .contains("pattern atomicfile-keychain-opened, confirmed on macOS 10.12"));
    }
    let login = rows
        .iter()
        .find(|r| {
            r.target_path.as_deref() == Some("/Users/hoakley/Library/Keychains/login.keychain-db")
        })
        .expect("login keychain row");
    // 18:08:41 at +0000.
    assert_eq!(login.time, parse_log_timestamp("2017-11-26 18:08:41+0000"));
    assert_eq!(login.time, Some(1_511_719_721));
    let mut eids: Vec<_> = rows.iter().map(|r| r.eid.clone()).collect();
    eids.sort();
    eids.dedup();
    assert_eq!(eids.len(), rows.len());
}

#[test]
fn authd_keychain_rights_only() {
    let (rows, st) = scan("authd_rights.ndjson");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(
        st.unified_log_ignored, 2,
        "system.preferences.datetime, Validating credential ..."
    );
    assert_eq!(st.unified_log_unmatched, 0);
    let kca = &rows[0];
    assert_eq!(kca.action.map(|a| a.as_str()), Some("authorization_right"));
    assert_eq!(kca.pid, Some(2301));
    assert_eq!(
        kca.path.as_deref(),
        Some("/System/Applications/Utilities/Keychain Access.app")
    );
    assert!(kca
        .reason
        .as_deref()
        .unwrap()
        .contains("right `system.keychain.modify`"));
    // 09:15:01 at -0700 is 16:15:01 UTC.
    assert_eq!(kca.time, parse_log_timestamp("2026-03-02T16:15:01Z"));
    assert_eq!(rows[1].pid, Some(2377));
    assert_eq!(rows[1].path.as_deref(), Some("/usr/bin/security"));
}

#[test]
fn securityd_kcacl_prompts_name_the_client() {
    let (rows, st) = scan("synthetic_securityd_kcacl_prompt.ndjson");
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(st.unified_log_unmatched, 0);
    let query = &by_action(&rows, "keychain_auth")[0];
    assert_eq!(query.pid, Some(3120));
    assert_eq!(query.path, None, "the query line names no path");
    let prompts = by_action(&rows, "keychain_prompt");
    assert_eq!(prompts.len(), 3);
    assert_eq!(prompts[0].pid, Some(3120));
    assert_eq!(
        prompts[0].path.as_deref(),
        Some("/Applications/Slack.app/Contents/MacOS/Slack")
    );
    assert_eq!(prompts[0].severity.map(|s| s.as_str()), Some("low"));
    let unsigned = prompts[1];
    assert_eq!(unsigned.pid, Some(3188));
    assert_eq!(unsigned.severity.map(|s| s.as_str()), Some("medium"));
    assert!(unsigned.is_alert());
    let private = prompts[2];
    assert_eq!(private.pid, Some(3190));
    assert_eq!(private.path, None, "<private> is not a path");
    // The unsigned-client line is known from Apple's source only; the
    // prompt and query texts are confirmed by real lines.
    assert!(unsigned
        .reason
        .as_deref()
        .unwrap()
        .contains("text from Apple's format string only"));
    assert!(prompts[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("pattern securityd-kcacl-prompt, confirmed on macOS 26.2"));
    for r in &rows {
        let reason = r.reason.as_deref().unwrap();
        assert!(reason.contains("securityd[118]"), "{reason}");
        assert_eq!(r.uid, None, "userID is securityd's, not the client's");
    }
}

#[test]
fn unlock_lines() {
    let (rows, st) = scan("synthetic_unlock.ndjson");
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert_eq!(st.unified_log_unmatched, 0);
    let actions: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.action.map(|a| a.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            "keychain_unlock",
            "keychain_prompt",
            "keychain_auth",
            "keychain_unlock",
            "keychain_unlock"
        ]
    );
    assert_eq!(
        rows[3].target_path.as_deref(),
        Some("/Users/alice/Library/Keychains/login.keychain-db")
    );
    assert_eq!(rows[4].target_path, None, "<private>");
    // 09:30:00 at +0530 is 04:00:00 UTC.
    assert_eq!(rows[0].time, parse_log_timestamp("2026-01-15T04:00:00Z"));
    for r in &rows {
        assert_eq!(r.pid, Some(118), "no client named: securityd is the actor");
    }
}

#[test]
fn malformed_lines_are_counted_and_scanning_recovers() {
    let (rows, st) = scan("malformed.ndjson");
    assert_eq!(st.lines_read, 10);
    assert_eq!(
        st.banner_lines, 2,
        "the stream banner and the `log show` header"
    );
    assert_eq!(st.blank_lines, 1);
    assert_eq!(st.malformed, 3, "truncated JSON, an array, plain text");
    assert_eq!(
        st.unified_log_unmatched, 1,
        "wrong-typed keys read as missing"
    );
    assert_eq!(st.lossy_utf8, 1);
    assert_eq!(st.unified_log_bad_time, 1);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(rows[0].time, None);
    assert_eq!(
        rows[1].time,
        parse_log_timestamp("2026-10-04 17:50:34+0200")
    );
    assert!(rows[2].target_path.as_deref().unwrap().contains('\u{fffd}'));
}

fn correlation_rows() -> (Vec<KeychainAccess>, ScanStats) {
    scan("synthetic_correlation_security_exec.ndjson")
}

#[test]
fn prompt_near_security_exec_is_correlated() {
    let (rows, st) = correlation_rows();
    let exec = rows
        .iter()
        .find(|r| r.source.as_deref() == Some("esf"))
        .expect("the security exec row");
    assert_eq!(
        exec.action.map(|a| a.as_str()),
        Some("find_generic_password")
    );
    assert_eq!(exec.pid, Some(48141));
    let id = correlation_id_for(exec.eid.as_deref().unwrap());
    assert_eq!(exec.correlation_id.as_deref(), Some(id.as_str()));
    let ul: Vec<&KeychainAccess> = rows
        .iter()
        .filter(|r| r.source.as_deref() == Some("unified_log"))
        .collect();
    assert_eq!(ul.len(), 5, "{ul:#?}");
    // Query, the `security` process's own API activity and securityd's
    // prompt, 1-2 s after the exec.
    for r in &ul[..3] {
        assert_eq!(r.pid, Some(48141));
        assert_eq!(r.correlation_id.as_deref(), Some(id.as_str()), "{r:#?}");
        // Enriched from the eslogger exec seen in the same stream.
        assert_eq!(r.path.as_deref(), Some("/usr/bin/security"));
        assert_eq!(
            r.cmdline.as_deref(),
            Some("security find-generic-password -ga Chrome")
        );
        assert_eq!(r.parent_path.as_deref(), Some("/bin/sh"));
        assert_eq!(r.signing_id.as_deref(), Some("com.apple.security"));
        assert_eq!(r.uid, Some(501));
    }
    assert_eq!(
        ul[1].action.map(|a| a.as_str()),
        Some("keychain_api"),
        "the activity"
    );
    assert_eq!(
        ul[1].message.as_deref(),
        Some("SecKeychainFindGenericPassword")
    );
    // Another client, and the same pid 30 s later: not linked.
    assert_eq!(ul[3].pid, Some(3120));
    assert_eq!(ul[3].correlation_id, None);
    assert_eq!(ul[4].pid, Some(48141));
    assert_eq!(ul[4].correlation_id, None);
    assert_eq!(st.correlated_rows, 4);
    // UTC (eslogger) against +0200 (log): the times line up.
    assert_eq!(exec.time, Some(1_754_579_320));
    assert_eq!(ul[0].time, Some(1_754_579_321));
}

#[test]
fn correlation_across_separate_files_and_in_the_buffer() {
    // The offline CLI reads an eslogger file, then a log file: split the
    // combined fixture into two inputs to the same scanner.
    let data = fixture("synthetic_correlation_security_exec.ndjson");
    let text = String::from_utf8(data).unwrap();
    let (es, ul): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .partition(|l| !looks_like_unified_log(l.as_bytes()));
    assert_eq!(es.len(), 2);

    // Streaming-style: rows go to the SQLite buffer as they come; the
    // updates are applied there with UPDATE ... WHERE eid.
    let mut s = Scanner::new(ScanOptions::default());
    let mut store = Store::open_in_memory().unwrap();
    let mut stored_rows = 0;
    let mut all = Vec::new();
    for input in [&es, &ul] {
        let joined = input.join("\n");
        let mut rows = Vec::new();
        s.scan_reader(BufReader::new(joined.as_bytes()), |r| rows.push(r))
            .unwrap();
        let updates = s.take_correlation_updates();
        apply_updates(&mut rows, &updates);
        stored_rows += store.insert(&rows, None).unwrap();
        store.apply_correlation_updates(&updates).unwrap();
        // Offline: rows of earlier inputs are in memory.
        all.extend(rows);
        apply_updates(&mut all, &updates);
    }
    assert_eq!(stored_rows, all.len());
    let conn = store.connection();
    let groups: Vec<(String, i64, String)> = conn
        .prepare(
            "SELECT correlation_id, count(*), group_concat(source) FROM keychain_access_events \
             WHERE correlation_id IS NOT NULL GROUP BY correlation_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].1, 4);
    assert!(groups[0].2.contains("esf") && groups[0].2.contains("unified_log"));
    // Rows in memory agree with the buffer.
    assert_eq!(all.iter().filter(|r| r.correlation_id.is_some()).count(), 4);
}

/// The README's table of what each release logs is the built-in patterns'
/// `level` / `levels` / `evidence`, row for row.
#[test]
fn readme_level_table_matches_the_patterns() {
    let readme = std::fs::read_to_string(format!("{}/../README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("README.md");
    let mut table = String::from(
        "| pattern | action | level | what each release logs | evidence |\n|---|---|---|---|---|\n",
    );
    for p in keychain_access_tables::tuning::builtin_unified_log_patterns() {
        let evidence = match p.evidence.as_deref() {
            Some("log_capture") => "real line",
            Some("apple_source") => "Apple format string only",
            _ => "unconfirmed",
        };
        table.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            p.id,
            p.action.as_str(),
            p.level.as_deref().unwrap_or("?"),
            p.levels.as_deref().unwrap_or("?").replace('|', "\\|"),
            evidence
        ));
    }
    assert!(
        readme.contains(&table),
        "README's unified-log level table is out of date; expected:\n{table}"
    );
}

/// The activity volume control: 10,000 `SecItemCopyMatching` activities
/// from 50 processes within a minute make 50 rows; Apple daemons' make
/// none; the rest are counted.
#[test]
fn activity_flood_is_throttled_and_counted() {
    let mut text = String::new();
    for i in 0..10_000u32 {
        let pid = 20_000 + i % 50;
        let process = if i % 10 == 9 {
            "\\/System\\/Library\\/PrivateFrameworks\\/X.framework\\/xd".to_string()
        } else {
            format!(
                "\\/Applications\\/App{}.app\\/Contents\\/MacOS\\/App",
                i % 50
            )
        };
        text.push_str(&format!(
            concat!(
                r#"{{"eventType":"activityCreateEvent","subsystem":"","category":"","#,
                r#""processImagePath":"{}","senderImagePath":"\/System\/Library\/Frameworks\/Security.framework\/Versions\/A\/Security","#,
                r#""processID":{},"threadID":{},"timestamp":"2026-10-04 17:50:{:02}.{:06}+0200","eventMessage":"SecItemCopyMatching"}}"#,
                "\n"
            ),
            process,
            pid,
            i,
            i % 59,
            i
        ));
    }
    let mut s = Scanner::new(ScanOptions::default());
    let mut rows = Vec::new();
    s.scan_reader_into(BufReader::new(text.as_bytes()), &mut rows)
        .unwrap();
    let st = s.finish_stats();
    // i % 10 == 9 picks pids 20009, 20019, ... (5 of the 50): Apple daemons.
    assert_eq!(rows.len(), 45, "one row per app process and API");
    assert_eq!(st.unified_log_ignored, 1_000, "Apple daemons under /System");
    assert_eq!(st.unified_log_activity_repeats, 10_000 - 1_000 - 45);
    assert!(rows
        .iter()
        .all(|r| r.action.map(|a| a.as_str()) == Some("keychain_api")));
}

/// `ancestors` reads the same from both sources: NULL when the process is
/// unknown, `[]` when it is known with no recorded ancestor (here the
/// `security` exec is in the stream, its parent shell's exec is not).
#[test]
fn ancestors_null_means_unknown_and_empty_means_none_recorded() {
    let text = String::from_utf8(fixture("synthetic_correlation_security_exec.ndjson")).unwrap();
    let without_parent: String = text
        .lines()
        .filter(|l| {
            // Drop the shell's own exec (its target is pid 48137); keep the
            // `security` exec, whose parent token names 48137.
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["event"]["exec"]["target"]["audit_token"]["pid"] != 48137
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut s = Scanner::new(ScanOptions::default());
    let mut rows = Vec::new();
    s.scan_reader_into(BufReader::new(without_parent.as_bytes()), &mut rows)
        .unwrap();
    let known: Vec<&KeychainAccess> = rows.iter().filter(|r| r.pid == Some(48141)).collect();
    assert!(
        known
            .iter()
            .any(|r| r.source.as_deref() == Some("unified_log")),
        "{rows:#?}"
    );
    for r in &known {
        assert_eq!(r.ancestors.as_deref(), Some("[]"), "{r:#?}");
    }
    // A reader the stream never exec'd: unknown.
    let (unseen, _) = scan("securityd_db_open.ndjson");
    assert!(!unseen.is_empty());
    for r in &unseen {
        assert_eq!(r.ancestors, None, "{r:#?}");
    }
}

/// One row builder: a unified-log row about a process the stream exec'd
/// carries the same actor and enrichment columns as that process's ES row.
#[test]
fn both_sources_fill_the_actor_columns_alike() {
    let (rows, _) = scan("synthetic_correlation_security_exec.ndjson");
    let of = |source: &str| {
        rows.iter()
            .find(|r| r.pid == Some(48141) && r.source.as_deref() == Some(source))
            .unwrap_or_else(|| panic!("no {source} row for pid 48141: {rows:#?}"))
    };
    let (es, ul) = (of("esf"), of("unified_log"));
    let actor = |r: &KeychainAccess| {
        (
            (
                r.pid,
                r.pidversion,
                r.ppid,
                r.parent_pidversion,
                r.uid,
                r.auid,
            ),
            (
                r.path.clone(),
                r.cmdline.clone(),
                r.cwd.clone(),
                r.parent_path.clone(),
                r.parent_cmdline.clone(),
                r.ancestors.clone(),
                r.responsible_path.clone(),
            ),
            (
                r.signing_id.clone(),
                r.team_id.clone(),
                r.cdhash.clone(),
                r.signer.clone(),
                r.platform_binary,
                r.technique.clone(),
            ),
        )
    };
    assert_eq!(actor(es), actor(ul));
    assert!(
        es.ancestors.as_deref().is_some_and(|a| a != "[]"),
        "{es:#?}"
    );
    assert!(es.signing_id.is_some() && es.cmdline.is_some(), "{es:#?}");
}
