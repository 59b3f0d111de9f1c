//! Which records are about the keychain: the components whose subsystem or
//! process always counts, and the live `log stream` command and predicate
//! built from them and the patterns in effect.

use crate::tuning::Tuning;

/// Subsystems that always count as keychain components.
pub const RELEVANT_SUBSYSTEMS: &[&str] = &["com.apple.securityd", "com.apple.Authorization"];
/// Process basenames that always count as keychain components.
pub const RELEVANT_PROCESSES: &[&str] =
    &["securityd", "secd", "SecurityAgent", "authd", "security"];

/// Arguments for the live source, before `--predicate`.
///
/// `--level default`: every line the built-in patterns need is logged at
/// Default level by the releases that log it visibly (securityd's `kcacl`,
/// `integrity` and `clientid` lines, `%p(%p) unlocking for makeUnlocked()`,
/// authd's rights) or is an activity (no level). `Info` adds only the
/// `Syslog::info` copies of the `kcacl` lines (same text, no subsystem:
/// duplicates). `Debug` would add the client-side `opened <keychain>: N
/// bytes` line (Debug since macOS 10.13) and the other `KCdb` lines, at a
/// cost paid by the whole Mac: Debug logging is disabled by default
/// (os_log(5): "Debug level logging is disabled"), so a Debug-level stream
/// has the processes that log under a streamed subsystem format and send
/// Debug messages they otherwise drop (inferred from the man page; not
/// measured here), and `com.apple.securityd` is used in-process by every
/// program that touches the keychain. The extension therefore streams
/// Default; run `log stream --level debug` by hand for an investigation.
pub const LOG_STREAM_ARGS: &[&str] = &["stream", "--style", "ndjson", "--level", "default"];

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A wildcard usable in a predicate as `BEGINSWITH`: a literal prefix
/// ending in one `*`.
fn literal_prefix(w: &str) -> Option<&str> {
    let p = w.strip_suffix('*')?;
    (!p.is_empty() && !p.contains(['*', '?'])).then_some(p)
}

/// The `log stream --predicate` for the live source.
///
/// Log events: the built-in keychain components plus every wildcard-free
/// `subsystem` and `process` the patterns name (a pattern with a wildcard
/// there is still matched, but its records only arrive if the predicate
/// lets them through: name it literally, or widen the predicate in the
/// extension's config). `process_path` conditions are checked by the
/// parser, not the predicate (the basename is in `process ==`).
///
/// Activities (the volume control): only `activityCreateEvent` records whose
/// name is one the activity patterns list (`eventMessage IN {...}`), not
/// from a path the patterns exclude (`NOT processImagePath BEGINSWITH
/// "/System/"` ...). Security.framework creates an activity for each public
/// call, in every process; without the name list every activity of every
/// process on the Mac would be streamed.
pub fn log_stream_predicate(tuning: &Tuning) -> String {
    let mut subsystems: Vec<String> = RELEVANT_SUBSYSTEMS.iter().map(|s| s.to_string()).collect();
    let mut processes: Vec<String> = RELEVANT_PROCESSES.iter().map(|s| s.to_string()).collect();
    let mut activities: Vec<String> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    let push = |list: &mut Vec<String>, w: &str| {
        if !w.is_empty() && !w.contains(['*', '?']) && !list.iter().any(|x| x == w) {
            list.push(w.to_string());
        }
    };
    for p in &tuning.unified_log_patterns {
        if p.event.as_deref() == Some("activity") {
            if p.action == crate::log_pattern::PatternAction::Ignore {
                continue;
            }
            for w in p.message.list() {
                push(&mut activities, w);
            }
            for w in p.process_path_except.iter().flat_map(|f| f.list()) {
                if let Some(prefix) = literal_prefix(w) {
                    push(&mut excluded, prefix);
                }
            }
            continue;
        }
        for w in p.subsystem.iter().flat_map(|f| f.list()) {
            push(&mut subsystems, w);
        }
        for w in p.process.iter().flat_map(|f| f.list()) {
            push(&mut processes, w);
        }
    }
    let logs = subsystems
        .iter()
        .map(|s| format!("subsystem == {}", quote(s)))
        .chain(processes.iter().map(|p| format!("process == {}", quote(p))))
        .collect::<Vec<_>>()
        .join(" OR ");
    if activities.is_empty() {
        return logs;
    }
    let names = activities
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(", ");
    let mut act = format!("eventType == activityCreateEvent AND eventMessage IN {{{names}}}");
    for e in &excluded {
        act.push_str(&format!(
            " AND NOT processImagePath BEGINSWITH {}",
            quote(e)
        ));
    }
    format!("(eventType == logEvent AND ({logs})) OR ({act})")
}
