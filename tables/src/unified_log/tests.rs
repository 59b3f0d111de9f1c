//! Matcher, validation and end-to-end tests of the unified-log source.

use super::*;
use crate::log_pattern::{UnifiedLogPattern, PATTERN_MAX};
use crate::wildcard::Patterns;

fn m(p: &str, t: &str) -> Option<Captures> {
    MessagePattern::compile(p).unwrap().matches(t)
}

#[test]
fn matcher_literals_wildcards_and_captures() {
    let c = m(
        "*opened {keychain}: * bytes",
        "0x7fee38517e20 opened /Users/hoakley/Library/Keychains/login.keychain-db: 1646112 bytes",
    )
    .unwrap();
    assert_eq!(
        c.keychain.as_deref(),
        Some("/Users/hoakley/Library/Keychains/login.keychain-db")
    );
    assert!(m("*opened {keychain}: * bytes", "opened x: 1 bytes and more").is_none());
    let c = m(
        "displaying keychain prompt for {client}({pid})",
        "displaying keychain prompt for /Applications/Foo (beta).app/Contents/MacOS/Foo(4242)",
    )
    .unwrap();
    assert_eq!(c.pid, Some(4242));
    assert_eq!(
        c.client.as_deref(),
        Some("/Applications/Foo (beta).app/Contents/MacOS/Foo")
    );
    let c = m(
        "displaying keychain prompt for {client}({pid})",
        "displaying keychain prompt for <private>(77)",
    )
    .unwrap();
    assert_eq!((c.pid, c.client), (Some(77), None));
    assert!(m("a?c", "abc").is_some());
    assert!(m("a?c", "abbc").is_none());
    assert!(m("a?c", "aéc").is_some());
    assert!(m("\\*literal\\*", "*literal*").is_some());
    assert!(m("\\*literal\\*", "xliteralx").is_none());
    assert!(m("pid {pid} done", "pid 12a done").is_none());
    assert!(m("*", "").is_some());
    assert!(m("exact", "exact").is_some());
    assert!(m("exact", "exactly").is_none());
    assert!(m("*end", "the end").is_some());
    assert!(m("start*", "start here").is_some());
    let c = m(
        "Succeeded authorizing right '{right}' by client '{client}' [{pid}] for authorization created by *",
        "Succeeded authorizing right 'system.keychain.modify' by client '/usr/bin/security' [512] for authorization created by '/usr/bin/security' [512] (3,0) (engine 9)",
    )
    .unwrap();
    assert_eq!(c.right.as_deref(), Some("system.keychain.modify"));
    assert_eq!(c.client.as_deref(), Some("/usr/bin/security"));
    assert_eq!(c.pid, Some(512));
}

#[test]
fn matcher_rejects_bad_patterns() {
    // Regex syntax in a pattern is literal text, never a regex.
    assert!(m("a.c", "abc").is_none());
    assert!(m("a.c", "a.c").is_some());
    assert!(m("(x)+[y]|z$", "(x)+[y]|z$").is_some());
    // The longest pattern of the most expensive kind still compiles within
    // the size limit, and matches in linear time.
    let widest = "?".repeat(PATTERN_MAX);
    let p = MessagePattern::compile(&widest).unwrap();
    assert!(p.matches(&"é".repeat(PATTERN_MAX)).is_some());
    assert!(p.matches(&"é".repeat(PATTERN_MAX + 1)).is_none());
    for (p, want) in [
        ("", "empty"),
        ("a{nope}", "unknown placeholder"),
        ("a{pid", "unclosed"),
        ("**", "touch"),
        ("{client}*", "touch"),
        ("{pid}{pid}", "twice"),
        ("{client}{keychain}", "touch"),
        ("trailing\\", "escapes nothing"),
    ] {
        let e = MessagePattern::compile(p).unwrap_err();
        assert!(e.contains(want), "{p}: {e}");
    }
    let long = "a".repeat(PATTERN_MAX + 1);
    assert!(MessagePattern::compile(&long).is_err());
}

#[test]
fn matcher_has_no_catastrophic_backtracking() {
    // The classic killer for backtracking globs: many stars, no match.
    let p = MessagePattern::compile("*a*a*a*a*a*a*a*a*a*b").unwrap();
    let text = "a".repeat(MATCH_MAX);
    let t0 = std::time::Instant::now();
    assert!(p.matches(&text).is_none());
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
    let p = MessagePattern::compile("*x {pid} y*").unwrap();
    let text = "x 1".repeat(MATCH_MAX / 3);
    assert!(p.matches(&text).is_none());
    // Digit runs: `{pid}` leading an end-anchored unit on "111...1x".
    let p = MessagePattern::compile("*{pid}z").unwrap();
    let mut text = "1".repeat(MATCH_MAX - 1);
    text.push('x');
    assert!(p.matches(&text).is_none());
    assert_eq!(
        MessagePattern::compile("*{pid}z")
            .unwrap()
            .matches("pid 12z")
            .unwrap()
            .pid,
        Some(12)
    );
    // A long literal that nearly matches everywhere: still linear.
    let lit = format!("*{}b*", "a".repeat(PATTERN_MAX - 4));
    let p = MessagePattern::compile(&lit).unwrap();
    let text = "a".repeat(MATCH_MAX);
    assert!(p.matches(&text).is_none());
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn client_takes_the_longest_value_that_lets_the_rest_match() {
    let p = "displaying keychain prompt for {client}({pid}); ACL: *desc:{item})>*";
    let c = m(
        p,
        "displaying keychain prompt for /tmp/a(1); ACL: b/Evil(6012); ACL: <x desc:Chrome Safe Storage)>]>",
    )
    .unwrap();
    assert_eq!(c.pid, Some(6012));
    assert_eq!(c.client.as_deref(), Some("/tmp/a(1); ACL: b/Evil"));
    assert_eq!(c.item.as_deref(), Some("Chrome Safe Storage"));
    // The rightmost placement that lets the rest match, not the rightmost
    // one: the ACL here holds a later `(2); ACL: ` but no `desc:` after it.
    let c = m(
        p,
        "displaying keychain prompt for /x(7); ACL: <desc:Wi-Fi)> (2); ACL: none",
    )
    .unwrap();
    assert_eq!((c.pid, c.item.as_deref()), (Some(7), Some("Wi-Fi")));
    // Thousands of candidate placements, none completing: bounded.
    let t0 = std::time::Instant::now();
    let text = format!(
        "displaying keychain prompt for {}",
        "/a(1); ACL: ".repeat(MATCH_MAX / 12)
    );
    assert!(MessagePattern::compile(p)
        .unwrap()
        .matches(match_text(&text))
        .is_none());
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn builtin_patterns_are_valid_and_cited() {
    let pats = crate::tuning::builtin_unified_log_patterns();
    assert!(pats.len() >= 10, "{}", pats.len());
    assert!(pats.iter().any(|p| p.confirmed));
    assert!(pats.iter().any(|p| !p.confirmed));
    for p in &pats {
        validate_pattern(p).unwrap();
        assert!(p.evidence.is_some(), "{} has no evidence", p.id);
        assert!(
            p.level.is_some() && p.levels.is_some(),
            "{} has no level",
            p.id
        );
        assert_ne!(p.evidence.as_deref(), Some("none"), "{}: catch-all", p.id);
        if p.process
            .iter()
            .flat_map(|f| f.list())
            .any(|w| w == "securityd")
        {
            assert!(
                p.process_path.is_some(),
                "{}: match securityd by path",
                p.id
            );
        }
        if !p.confirmed {
            assert_eq!(p.seen_on, "unconfirmed", "{}", p.id);
        }
    }
    let parser = UnifiedLogParser::from_patterns(&pats);
    assert_eq!(parser.pattern_count(), pats.len());
}

fn pattern(json: &str) -> UnifiedLogPattern {
    serde_json::from_str(json).unwrap()
}

#[test]
fn validation_names_the_problem() {
    let base = r#"{"id":"x","action":"keychain_prompt","process":"securityd","message":"m","severity":"low","reason":"r","source":"s","seen_on":"unconfirmed","confirmed":false}"#;
    validate_pattern(&pattern(base)).unwrap();
    for (from, to, want) in [
        (
            r#""action":"keychain_prompt""#,
            r#""action":"nope""#,
            "unknown action",
        ),
        (
            r#""severity":"low""#,
            r#""severity":"urgent""#,
            "unknown severity",
        ),
        (
            r#""process":"securityd""#,
            r#""process":"*""#,
            "literal run",
        ),
        (
            r#""process":"securityd""#,
            r#""category":"kcacl""#,
            "needs `subsystem` or `process`",
        ),
        (
            r#""message":"m""#,
            r#""message":"{x}""#,
            "unknown placeholder",
        ),
        (r#""source":"s""#, r#""source":"""#, "cite"),
        (r#""confirmed":false"#, r#""confirmed":true"#, "release"),
        (r#""id":"x""#, r#""id":"has space""#, "`id`"),
        (
            r#""message":"m""#,
            r#""message":"m","right":"system.*""#,
            "no `{right}`",
        ),
    ] {
        let json = base.replacen(from, to, 1);
        // An action or severity outside its set is refused as it is read
        // (the field's type is the closed set); the rest by validation.
        let e = match serde_json::from_str::<UnifiedLogPattern>(&json) {
            Ok(p) => validate_pattern(&p).unwrap_err(),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "{json}: {e}");
    }
    // The unified-log subset is checked: a row action of the ES side is
    // not a pattern's, and the error lists what is.
    let json = base.replacen("keychain_prompt", "dump_keychain", 1);
    let e = serde_json::from_str::<UnifiedLogPattern>(&json)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown action `dump_keychain` (one of keychain_unlock, ")
            && e.contains(", ignore)"),
        "{e}"
    );
    let e =
        serde_json::from_str::<UnifiedLogPattern>(&base.replacen(r#""severity":"low","#, "", 1))
            .map(|p| validate_pattern(&p).unwrap_err())
            .unwrap();
    assert!(
        e.contains("`severity` is required (info, low, medium, high)"),
        "{e}"
    );
    // Errors through the tuning loader name the pattern.
    let e = Tuning::from_json(
        r#"{"version":1,"unified_log_patterns":[{"id":"bad-one","action":"nope","process":"securityd","message":"m","severity":"low","reason":"r","source":"s","seen_on":"unconfirmed","confirmed":false}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("unified_log_patterns[0] (bad-one): unknown action `nope` (one of "),
        "{e}"
    );
    let e = Tuning::from_json(
        r#"{"version":1,"unified_log_patterns":[{"id":"a","action":"keychain_auth","process":"securityd","message":"m","severity":"low","reason":"r","source":"s","seen_on":"unconfirmed","confirmed":false,"bogus":1}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn tuning_modes_keep_replace_or_extend_the_builtin_patterns() {
    let n = crate::tuning::builtin_unified_log_patterns().len();
    let t = Tuning::from_json(r#"{"version":1,"rules":[]}"#).unwrap();
    assert_eq!(t.unified_log_patterns.len(), n);
    assert_eq!(Tuning::none().unified_log_patterns.len(), n);
    let own = r#"{"id":"fleet-1","action":"keychain_prompt","process":"securityd","message":"fleet text {pid}","severity":"high","reason":"r","source":"our capture","seen_on":"macOS 15.5","confirmed":true,"evidence":"log_capture"}"#;
    let t = Tuning::from_json(&format!(
        r#"{{"version":1,"unified_log_patterns":[{own}]}}"#
    ))
    .unwrap();
    assert_eq!(t.unified_log_patterns.len(), 1);
    let t = Tuning::from_json(&format!(
        r#"{{"version":1,"unified_log_patterns_mode":"extend","unified_log_patterns":[{own}]}}"#
    ))
    .unwrap();
    assert_eq!(t.unified_log_patterns.len(), n + 1);
    assert_eq!(t.unified_log_patterns[0].id, "fleet-1");
}

fn line(process: &str, subsystem: &str, category: &str, pid: i64, ts: &str, msg: &str) -> String {
    serde_json::json!({
        "timezoneName": "", "messageType": "Default", "eventType": "logEvent", "source": null,
        "formatString": "%{public}s", "userID": 0, "activityIdentifier": 0,
        "subsystem": subsystem, "category": category, "threadID": 4242,
        "senderImageUUID": "00000000-0000-0000-0000-000000000000",
        "backtrace": {"frames": [{"imageOffset": 1, "imageUUID": "00000000-0000-0000-0000-000000000000"}]},
        "bootUUID": "", "processImagePath": process, "senderImagePath": process,
        "timestamp": ts, "machTimestamp": 1, "eventMessage": msg,
        "processImageUUID": "00000000-0000-0000-0000-000000000000", "traceID": 1,
        "processID": pid, "senderProgramCounter": 1, "parentActivityIdentifier": 0
    })
    .to_string()
}

fn scan(lines: &[String]) -> (Vec<KeychainAccess>, ScanStats) {
    let tuning = Tuning::builtin();
    let mut p = UnifiedLogParser::from_tuning(&tuning);
    let mut stats = ScanStats::default();
    let mut out = Vec::new();
    let ctx = LineContext {
        cache: None,
        tuning: &tuning,
    };
    for l in lines {
        p.scan_line(l.as_bytes(), &mut stats, &ctx, &mut out);
    }
    (out, stats)
}

#[test]
fn rows_from_confirmed_and_unconfirmed_patterns() {
    let ts = "2026-10-04 17:50:33.803491+0200";
    let (rows, stats) = scan(&[
        line(
            "/Applications/Mail.app/Contents/MacOS/Mail",
            "com.apple.securityd",
            "atomicfile",
            118,
            ts,
            "0x7fee38517e20 opened /Users/alice/Library/Keychains/login.keychain-db: 1646112 bytes",
        ),
        line(
            "/usr/sbin/securityd",
            "com.apple.securityd",
            "kcacl",
            118,
            ts,
            "displaying keychain prompt for /usr/bin/security(48141)",
        ),
        line(
            "/usr/libexec/authd",
            "com.apple.Authorization",
            "authd",
            600,
            ts,
            "Succeeded authorizing right 'system.keychain.modify' by client '/Applications/Utilities/Keychain Access.app' [900] for authorization created by '/Applications/Utilities/Keychain Access.app' [900] (3,0) (engine 12)",
        ),
        // authd noise: a non-keychain right is ignored, not unmatched.
        line(
            "/usr/libexec/authd",
            "com.apple.Authorization",
            "authd",
            600,
            ts,
            "Succeeded authorizing right 'system.preferences' by client '/x' [1] for authorization created by '/x' [1] (2,0) (engine 13)",
        ),
        // Relevant process, unknown text: unmatched.
        line("/usr/sbin/securityd", "com.apple.securityd", "x", 118, ts, "something new in macOS 27"),
        // Irrelevant process: prefiltered at the byte level.
        line("/usr/bin/logger", "", "", 5, ts, "ih-muse-test hello 1"),
    ]);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(stats.unified_log_records, 6);
    assert_eq!(stats.unified_log_unmatched, 1);
    assert_eq!(stats.unified_log_ignored, 1);
    assert_eq!(stats.prefiltered, 1);

    let open = &rows[0];
    assert_eq!(open.action.map(|a| a.as_str()), Some("keychain_db_open"));
    assert_eq!(open.source.as_deref(), Some("unified_log"));
    assert_eq!(open.event_type.as_deref(), Some("log"));
    assert_eq!(open.pid, Some(118), "the reader logs the line");
    assert_eq!(
        open.path.as_deref(),
        Some("/Applications/Mail.app/Contents/MacOS/Mail")
    );
    assert_eq!(open.uid, Some(0));
    assert_eq!(
        open.target_path.as_deref(),
        Some("/Users/alice/Library/Keychains/login.keychain-db")
    );
    assert_eq!(open.time, parse_log_timestamp(ts));
    assert_eq!(open.technique.as_deref(), Some("T1555.001"));
    assert!(open
        .reason
        .as_deref()
        .unwrap()
        .contains("confirmed on macOS 10.12"));

    let prompt = &rows[1];
    assert_eq!(prompt.action.map(|a| a.as_str()), Some("keychain_prompt"));
    assert_eq!(prompt.pid, Some(48141), "the client is the actor");
    assert_eq!(prompt.path.as_deref(), Some("/usr/bin/security"));
    assert_eq!(
        prompt.uid, None,
        "userID belongs to securityd, not the client"
    );
    let reason = prompt.reason.as_deref().unwrap();
    assert!(reason.contains("securityd[118]"), "{reason}");
    assert!(reason.contains("confirmed on macOS 26.2"), "{reason}");

    let right = &rows[2];
    assert_eq!(
        right.action.map(|a| a.as_str()),
        Some("authorization_right")
    );
    assert_eq!(right.pid, Some(900));
    assert!(right
        .reason
        .as_deref()
        .unwrap()
        .contains("system.keychain.modify"));

    // eids are unique and stable.
    let (again, _) = scan(&[line(
        "/Applications/Mail.app/Contents/MacOS/Mail",
        "com.apple.securityd",
        "atomicfile",
        118,
        ts,
        "0x7fee38517e20 opened /Users/alice/Library/Keychains/login.keychain-db: 1646112 bytes",
    )]);
    assert_eq!(again[0].eid, open.eid);
    assert_ne!(rows[0].eid, rows[1].eid);
}

#[test]
fn syslog_copies_are_not_second_rows_and_securityd_is_matched_by_path() {
    let ts = "2026-10-04 17:50:33.803491+0200";
    let msg = "displaying keychain prompt for /usr/bin/security(48141)";
    let (rows, stats) = scan(&[
        // The Default-level secnotice line: the row.
        line(
            "/usr/sbin/securityd",
            "com.apple.securityd",
            "kcacl",
            118,
            ts,
            msg,
        ),
        // Its Info-level syslog twin (no subsystem): ignored.
        line("/usr/sbin/securityd", "", "", 118, ts, msg),
        // The data-protection daemon, and an impostor, with the same
        // text: no pattern of the file-keychain daemon applies.
        line(
            "/usr/libexec/securityd",
            "com.apple.securityd",
            "kcacl",
            119,
            ts,
            msg,
        ),
        line(
            "/tmp/securityd",
            "com.apple.securityd",
            "kcacl",
            666,
            ts,
            msg,
        ),
    ]);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].pid, Some(48141));
    assert_eq!(stats.unified_log_ignored, 1);
    assert_eq!(stats.unified_log_unmatched, 2);
}

#[test]
fn malformed_other_events_bad_time_and_hostile_text() {
    let ts = "2026-10-04 17:50:33.803491+0200";
    let mut activity = line("/usr/sbin/securityd", "com.apple.securityd", "", 1, ts, "x");
    activity = activity.replace("\"logEvent\"", "\"signpostEvent\"");
    let wrong_types = r#"{"eventMessage":12,"processID":"118","processImagePath":"/usr/sbin/securityd","subsystem":["com.apple.securityd"],"eventType":"logEvent","timestamp":"2026-10-04 17:50:33+0200"}"#;
    let hostile = line(
        "/usr/sbin/securityd",
        "com.apple.securityd",
        "atomicfile",
        118,
        "yesterday",
        "0x1 opened /tmp/Keychains/\u{1b}[31mevil; security unlock-keychain -p hunter2 x.keychain-db: 1 bytes",
    );
    let (rows, stats) = scan(&[
        "{\"eventMessage\": \"securityd\", broken".to_string(),
        "[\"securityd\"]".to_string(),
        activity,
        wrong_types.to_string(),
        hostile,
    ]);
    assert_eq!(stats.malformed, 2);
    assert_eq!(stats.unified_log_other_events, 1);
    assert_eq!(
        stats.unified_log_unmatched, 1,
        "wrong types read as missing"
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(stats.unified_log_bad_time, 1);
    let r = &rows[0];
    assert_eq!(r.time, None);
    let msg = r.message.as_deref().unwrap();
    assert!(!msg.contains('\u{1b}'), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!r.target_path.as_deref().unwrap().contains('\u{1b}'));
}

#[test]
fn live_predicate_names_the_components() {
    let p = log_stream_predicate(&Tuning::builtin());
    assert!(
        p.starts_with(
            "(eventType == logEvent AND (subsystem == \"com.apple.securityd\" OR \
             subsystem == \"com.apple.Authorization\" OR process == \"securityd\" OR \
             process == \"secd\" OR process == \"SecurityAgent\" OR process == \"authd\" OR \
             process == \"security\")) OR (eventType == activityCreateEvent AND eventMessage IN \
             {\"SecItemCopyMatching\", "
        ),
        "{p}"
    );
    for name in [
        "SecKeychainFindGenericPassword",
        "SecKeychainItemCopyContent",
    ] {
        assert!(p.contains(&format!("\"{name}\"")), "{p}");
    }
    assert!(
        p.ends_with(
            "AND NOT processImagePath BEGINSWITH \"/System/\" \
             AND NOT processImagePath BEGINSWITH \"/usr/libexec/\" \
             AND NOT processImagePath BEGINSWITH \"/usr/sbin/\")"
        ),
        "{p}"
    );
    let mut t = Tuning::builtin();
    let mut extra = t.unified_log_patterns[0].clone();
    extra.subsystem = Some(Patterns::Many(vec![
        "com.example.\"quoted\"".into(),
        "com.apple.wild*".into(),
    ]));
    t.unified_log_patterns.push(extra);
    let p = log_stream_predicate(&t);
    assert!(
        p.contains(r#"subsystem == "com.example.\"quoted\"""#),
        "{p}"
    );
    assert!(!p.contains("wild"), "{p}");
    // A fleet that turns an activity pattern into `ignore` (same id,
    // `extend`) takes its names out of the stream: the volume control.
    let t = Tuning::from_json(
        r#"{"version":1,"unified_log_patterns_mode":"extend","unified_log_patterns":[
          {"id":"security-activity-item-query","action":"ignore","event":"activity","sender":"Security",
           "message":"SecItemCopyMatching","reason":"too many on our fleet","source":"fleet decision",
           "seen_on":"unconfirmed","confirmed":false}]}"#,
    )
    .unwrap();
    let p = log_stream_predicate(&t);
    assert!(!p.contains("SecItemCopyMatching"), "{p}");
    assert!(p.contains("SecKeychainFindGenericPassword"), "{p}");
}

#[test]
fn looks_like_tells_the_formats_apart() {
    assert!(looks_like_unified_log(
        br#"{"eventMessage":"x","eventType":"logEvent"}"#
    ));
    assert!(looks_like_unified_log(
        br#"{"eventType":"activityCreateEvent"}"#
    ));
    assert!(!looks_like_unified_log(
        br#"{"event_type":9,"event":{"exec":{"args":["echo","\"eventMessage\""]}}}"#
    ));
}

/// The prompt tracker judges the client the row names by the same cache
/// entry the row's actor columns come from. It used to look the process up
/// again by the row's (sanitised) path, which misses a path with a control
/// character: an unsigned client at such a path went unjudged.
#[test]
fn the_tracker_sees_the_signer_of_the_rows_own_actor() {
    use crate::procs::{ProcInfo, ProcessCache, Signer};
    let client = "/Users/Shared/Fake\u{1b}[0m.app/Contents/MacOS/Fake";
    let mut cache = ProcessCache::new(8);
    cache.insert(ProcInfo {
        pid: 4242,
        pidversion: 7,
        path: client.into(),
        signer: Some(Signer::Unsigned),
        ..Default::default()
    });
    let tuning = Tuning::builtin();
    let mut p = UnifiedLogParser::from_tuning(&tuning);
    let mut stats = ScanStats::default();
    let mut out = Vec::new();
    let ctx = LineContext {
        cache: Some(&cache),
        tuning: &tuning,
    };
    let rec = line(
        "/usr/sbin/securityd",
        "com.apple.securityd",
        "kcacl",
        118,
        "2026-05-11 14:02:10.000200+0100",
        &format!("displaying keychain prompt for {client}(4242)"),
    );
    p.scan_line(rec.as_bytes(), &mut stats, &ctx, &mut out);
    let row = out.first().unwrap_or_else(|| panic!("no row: {stats:?}"));
    assert_eq!(row.action, Some(crate::schema::Action::KeychainPrompt));
    assert_eq!(row.pidversion, Some(7), "{row:#?}");
    assert_eq!(row.signer.as_deref(), Some("unsigned"));
    let reason = row.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("client unsigned"), "{reason}");
}

/// A unified-log row whose actor's ancestor list is cut at MAX_ANCESTORS
/// counts in the scan's `field_caps`, as an ES row's does; one whose chain
/// fits does not.
#[test]
fn a_capped_ancestor_list_counts_in_field_caps_for_unified_log_rows() {
    use crate::procs::{ProcInfo, MAX_ANCESTORS};
    use crate::scan::{ScanOptions, Scanner};
    let mut scanner = Scanner::new(ScanOptions::default());
    // Two clients: 4242 under a chain longer than the cap, 4343 under one
    // ancestor.
    let deep = MAX_ANCESTORS as i64 + 4;
    for i in 0..deep {
        scanner.classifier.cache.insert(ProcInfo {
            pid: 5000 + i,
            pidversion: 1,
            ppid: (i + 1 < deep).then_some(5001 + i),
            path: format!("/bin/ancestor{i}"),
            ..Default::default()
        });
    }
    for (pid, ppid) in [(4242, 5000), (4343, 6000)] {
        scanner.classifier.cache.insert(ProcInfo {
            pid,
            pidversion: 7,
            ppid: Some(ppid),
            path: format!("/Users/Shared/client{pid}"),
            ..Default::default()
        });
    }
    scanner.classifier.cache.insert(ProcInfo {
        pid: 6000,
        pidversion: 1,
        path: "/sbin/launchd".into(),
        ..Default::default()
    });
    let prompt = |pid: i64| {
        line(
            "/usr/sbin/securityd",
            "com.apple.securityd",
            "kcacl",
            118,
            "2026-05-11 14:02:10.000200+0100",
            &format!("displaying keychain prompt for /Users/Shared/client{pid}({pid})"),
        )
    };
    let mut out = Vec::new();
    scanner.scan_line(prompt(4343).as_bytes(), &mut out);
    assert_eq!(out.len(), 1, "{:?}", scanner.stats);
    assert_eq!(scanner.finish_stats().field_caps, 0, "one ancestor: no cap");
    scanner.scan_line(prompt(4242).as_bytes(), &mut out);
    assert_eq!(out.len(), 2, "{:?}", scanner.stats);
    let ancestors: Vec<serde_json::Value> =
        serde_json::from_str(out[1].ancestors.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(ancestors.len(), MAX_ANCESTORS, "the list was cut");
    assert_eq!(scanner.finish_stats().field_caps, 1);
}
