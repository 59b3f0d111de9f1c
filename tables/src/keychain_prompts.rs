//! Keychain prompts, the user's answers and Security API activities: the
//! unified-log state that one line alone cannot carry.
//!
//! securityd (`/usr/sbin/securityd`, category `kcacl`) logs, at Default
//! level, `displaying keychain prompt for <client>(<pid>); ACL: <...>` when
//! a client asks for an item whose access list does not trust it; from
//! Security-61439.101.1 (macOS 15.4, inferred from the tag) the ACL text
//! names the item (`<KeychainPromptAclSubject(flags: 0x0, desc:Chrome Safe
//! Storage)>`) and the answer follows minutes or hours later as `user
//! approved 'always allow' for <client>(<pid>)` (or `'allow'`, or `did not
//! approve`). Just before the prompt the same securityd thread may log the
//! client's partition (`ACL partition mismatch: client cdhash:... ACL ...`,
//! `asking user about XARA partition for 'cdhash:...'`): `cdhash:` is an
//! ad-hoc signed client, `teamid:` a Developer ID one, `apple-tool:` an
//! Apple tool. (Format strings: Apple's Security source,
//! `securityd/src/acl_keychain.cpp` and `securityd/src/acls.cpp`.)
//!
//! [`PromptTracker`] remembers recent prompts (by client pid) and partition
//! lines (by securityd thread), so an answer row names the item the prompt
//! named, and it raises the severity by one documented rule:
//!
//! * an item is **high-value** when its description matches
//!   [`HIGH_VALUE_ITEMS`] (Chromium-family and Electron `... Safe Storage`
//!   keys, which decrypt the browser's saved passwords and cookies; Wi-Fi
//!   passwords);
//! * it is **another software's** item when the client does not belong to
//!   the item's owner: for `X Safe Storage`, the client path does not name
//!   `X`; for Wi-Fi items, the client is not an Apple system binary;
//! * the client is **suspicious** when it is unsigned or ad-hoc signed (the
//!   Endpoint Security process cache of the same stream says so, or its
//!   partition is `cdhash:`), or runs from a staging folder
//!   ([`is_staged_path`]). A suspicious client's name never makes an item
//!   its own (a stealer can call itself "Chrome").
//!
//! | row | high-value item, suspicious client | high-value item of another software | otherwise |
//! |---|---|---|---|
//! | prompt | `medium` | the pattern's (`low`) | the pattern's |
//! | user approved `allow` / `always allow` | `high` | `medium` | the pattern's (`low`) |
//! | user did not approve | `medium` | the pattern's | the pattern's |
//!
//! Severity only goes up from the pattern's. Activity rows
//! (`activityCreateEvent` of a Security API, logged by the calling process)
//! are throttled: one row per process, path and API name per
//! [`ACTIVITY_REPEAT_SECS`]; repeats are counted, not rowed.

use crate::procs::Signer;
use crate::schema::{Action, Severity};
use crate::wildcard::wildcard;
use std::collections::{HashMap, VecDeque};

/// Item descriptions that guard other software's secrets.
pub const HIGH_VALUE_ITEMS: &[&str] = &["* Safe Storage", "AirPort*", "*Wi-Fi*", "*WiFi*"];

/// Folders a downloaded or dropped program runs from. App Translocation
/// (`/private/var/folders/.../AppTranslocation/...`) is where macOS runs a
/// quarantined app opened from Downloads or a disk image.
pub const STAGING_PREFIXES: &[&str] = &[
    "/tmp/",
    "/private/tmp/",
    "/var/tmp/",
    "/private/var/tmp/",
    "/var/folders/",
    "/private/var/folders/",
    "/Users/Shared/",
    "/Volumes/",
];

/// One activity row per (process, path, API name) per this many seconds.
pub const ACTIVITY_REPEAT_SECS: i64 = 60;
/// An answer is linked to a prompt of the same pid at most this old (users
/// answer dialogs hours later).
pub const ANSWER_WINDOW_SECS: i64 = 24 * 3600;
/// A partition line belongs to a prompt on the same securityd thread at
/// most this many seconds later.
pub const PARTITION_WINDOW_SECS: i64 = 2;
/// Prompts and partition lines remembered.
pub const MAX_REMEMBERED: usize = 1024;
/// Activity keys remembered for throttling.
pub const MAX_ACTIVITY_KEYS: usize = 4096;

/// Whether a program path is in a staging folder: [`STAGING_PREFIXES`],
/// a user's `Downloads`, or any hidden folder (`/.name/`).
pub fn is_staged_path(path: &str) -> bool {
    if STAGING_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return true;
    }
    let mut parts = path.split('/').filter(|s| !s.is_empty()).peekable();
    let mut prev = "";
    while let Some(part) = parts.next() {
        let is_last = parts.peek().is_none();
        if !is_last && part.starts_with('.') && part != "." && part != ".." {
            return true;
        }
        if part == "Downloads" && !prev.is_empty() {
            return true;
        }
        prev = part;
    }
    false
}

/// Whether an item description is high-value.
pub fn is_high_value(item: &str) -> bool {
    HIGH_VALUE_ITEMS.iter().any(|p| wildcard(p, item))
}

/// Whether the client (path or name as securityd wrote it) is the item's
/// owner.
pub fn owns_item(client: Option<&str>, item: &str) -> bool {
    let Some(client) = client else {
        return false;
    };
    if let Some(owner) = item.strip_suffix(" Safe Storage") {
        let owner = owner.trim().to_ascii_lowercase();
        return !owner.is_empty() && client.to_ascii_lowercase().contains(&owner);
    }
    // Wi-Fi passwords belong to the system.
    ["/System/", "/usr/libexec/", "/usr/sbin/"]
        .iter()
        .any(|p| client.starts_with(p))
}

/// What the user answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    AlwaysAllow,
    Allow,
    Denied,
}

impl Answer {
    /// Read the answer from an answer line's text.
    pub fn of_message(m: &str) -> Self {
        if m.contains("did not approve") || m.contains("rejected") {
            Answer::Denied
        } else if m.contains("'always allow'") {
            Answer::AlwaysAllow
        } else {
            Answer::Allow
        }
    }

    fn words(self) -> &'static str {
        match self {
            Answer::AlwaysAllow => "approved 'always allow' (the client is added to the item's access list: later reads are silent)",
            Answer::Allow => "approved 'allow' (this once)",
            Answer::Denied => "did not approve",
        }
    }
}

#[derive(Debug, Clone)]
struct Prompt {
    pid: i64,
    time: i64,
    item: Option<String>,
    partition: Option<String>,
}

#[derive(Debug, Clone)]
struct PartitionSeen {
    logger: (i64, u64),
    time: i64,
    partition: String,
}

/// What one line tells the tracker.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The row's action.
    pub action: Action,
    /// The logging process's pid and thread.
    pub logger: (i64, u64),
    /// Row time (unix seconds), if readable.
    pub time: Option<i64>,
    /// The client pid the line names.
    pub client_pid: Option<i64>,
    /// The client as the line names it (path or elided name).
    pub client: Option<&'a str>,
    /// The row's process path (client path, or the logging process).
    pub actor_path: Option<&'a str>,
    /// The actor's signer, from the Endpoint Security process cache.
    pub signer: Option<Signer>,
    pub item: Option<&'a str>,
    pub partition: Option<&'a str>,
    pub message: &'a str,
}

/// The tracker's verdict for a row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Raised severity, when the rule raises it.
    pub severity: Option<Severity>,
    /// Facts for the row's reason.
    pub notes: Vec<String>,
    /// The item the row is about (from the line or its prompt).
    pub item: Option<String>,
}

/// Remembers prompts, partitions and activity keys (all bounded).
#[derive(Debug, Default)]
pub struct PromptTracker {
    prompts: VecDeque<Prompt>,
    partitions: VecDeque<PartitionSeen>,
    activities: HashMap<(i64, String, String), i64>,
}

impl PromptTracker {
    /// Whether an activity row should be made (false: a repeat within
    /// [`ACTIVITY_REPEAT_SECS`], to be counted). Rows without a time are
    /// never throttled.
    pub fn activity_is_new(&mut self, pid: i64, path: &str, name: &str, time: Option<i64>) -> bool {
        let Some(t) = time else {
            return true;
        };
        let key = (pid, path.to_string(), name.to_string());
        if let Some(&last) = self.activities.get(&key) {
            if (t - last).abs() < ACTIVITY_REPEAT_SECS {
                return false;
            }
        }
        if self.activities.len() >= MAX_ACTIVITY_KEYS {
            self.activities
                .retain(|_, last| (t - *last).abs() < ACTIVITY_REPEAT_SECS);
            if self.activities.len() >= MAX_ACTIVITY_KEYS {
                self.activities.clear();
            }
        }
        self.activities.insert(key, t);
        true
    }

    fn partition_for(&self, logger: (i64, u64), time: Option<i64>) -> Option<String> {
        let t = time?;
        self.partitions
            .iter()
            .rev()
            .find(|p| p.logger == logger && (0..=PARTITION_WINDOW_SECS).contains(&(t - p.time)))
            .map(|p| p.partition.clone())
    }

    /// Look at one unified-log row before it is finished.
    pub fn observe(&mut self, o: &Observation<'_>) -> Assessment {
        let mut out = Assessment::default();
        match o.action {
            Action::KeychainAuth if o.partition.is_some() => {
                let part = o.partition.unwrap_or_default();
                out.notes.push(partition_note(part));
                if let Some(t) = o.time {
                    self.partitions.push_back(PartitionSeen {
                        logger: o.logger,
                        time: t,
                        partition: part.to_string(),
                    });
                    if self.partitions.len() > MAX_REMEMBERED {
                        self.partitions.pop_front();
                    }
                }
            }
            Action::KeychainPrompt if o.client_pid.is_some() => {
                let partition = o
                    .partition
                    .map(String::from)
                    .or_else(|| self.partition_for(o.logger, o.time));
                let item = o.item.map(String::from);
                self.judge(o, item.as_deref(), partition.as_deref(), None, &mut out);
                if let (Some(pid), Some(t)) = (o.client_pid, o.time) {
                    self.prompts.push_back(Prompt {
                        pid,
                        time: t,
                        item: item.clone(),
                        partition: partition.clone(),
                    });
                    if self.prompts.len() > MAX_REMEMBERED {
                        self.prompts.pop_front();
                    }
                }
                out.item = item;
            }
            Action::KeychainPromptAnswer if o.client_pid.is_none() && o.partition.is_some() => {
                // securityd's partition (XARA) question names the client's
                // partition, not its pid.
                let part = o.partition.unwrap_or_default();
                out.notes.push(partition_note(part));
                let verdict = match Answer::of_message(o.message) {
                    Answer::Denied => "user rejected access for this partition",
                    _ => "user approved access for this partition (it is added to the item's partition list)",
                };
                out.notes.push(verdict.into());
            }
            Action::KeychainPromptAnswer => {
                let answer = Answer::of_message(o.message);
                let prompt = match (o.client_pid, o.time) {
                    (Some(pid), Some(t)) => self
                        .prompts
                        .iter()
                        .rev()
                        .find(|p| p.pid == pid && (0..=ANSWER_WINDOW_SECS).contains(&(t - p.time)))
                        .cloned(),
                    _ => None,
                };
                out.notes.push(format!("user {}", answer.words()));
                let item = o
                    .item
                    .map(String::from)
                    .or_else(|| prompt.as_ref().and_then(|p| p.item.clone()));
                let partition = prompt.as_ref().and_then(|p| p.partition.clone());
                if prompt.is_some() {
                    out.notes
                        .push("answers the prompt logged for this pid".into());
                }
                self.judge(
                    o,
                    item.as_deref(),
                    partition.as_deref(),
                    Some(answer),
                    &mut out,
                );
                out.item = item;
            }
            Action::KeychainApi if o.actor_path.is_some_and(is_staged_path) => {
                out.severity = Some(Severity::Low);
                out.notes
                    .push("the calling program runs from a staging folder".into());
            }
            _ => {}
        }
        out
    }

    fn judge(
        &self,
        o: &Observation<'_>,
        item: Option<&str>,
        partition: Option<&str>,
        answer: Option<Answer>,
        out: &mut Assessment,
    ) {
        if let Some(p) = partition {
            out.notes.push(partition_note(p));
        }
        let mut why: Vec<&str> = Vec::new();
        if matches!(o.signer, Some(Signer::Unsigned)) {
            why.push("unsigned");
        }
        if matches!(o.signer, Some(Signer::Adhoc))
            || partition.is_some_and(|p| p.starts_with("cdhash:"))
        {
            why.push("ad-hoc signed");
        }
        let path = o.actor_path.or(o.client);
        if path.is_some_and(is_staged_path) {
            why.push("runs from a staging folder");
        }
        let suspicious = !why.is_empty();
        if suspicious {
            out.notes.push(format!("client {}", why.join(", ")));
        }
        let Some(item) = item else {
            return;
        };
        if !is_high_value(item) {
            return;
        }
        let others = suspicious || !owns_item(path, item);
        if others {
            out.notes
                .push(format!("high-value item `{item}` of another software"));
        }
        out.severity = match (answer, suspicious, others) {
            (None, true, _) => Some(Severity::Medium),
            (Some(Answer::Allow | Answer::AlwaysAllow), true, _) => Some(Severity::High),
            (Some(Answer::Allow | Answer::AlwaysAllow), false, true) => Some(Severity::Medium),
            (Some(Answer::Denied), true, _) => Some(Severity::Medium),
            _ => None,
        };
    }
}

fn partition_note(p: &str) -> String {
    let kind = if p.starts_with("cdhash:") {
        " (ad-hoc signed)"
    } else if p.starts_with("teamid:") {
        " (Developer ID team)"
    } else if p.starts_with("apple-tool:") || p.starts_with("apple:") {
        " (Apple)"
    } else {
        ""
    };
    format!("client partition `{p}`{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_folders() {
        for p in [
            "/tmp/x",
            "/private/var/folders/ab/T/AppTranslocation/1/d/Evil.app/Contents/MacOS/Evil",
            "/Users/alice/Downloads/a.app/Contents/MacOS/a",
            "/Users/alice/.local/bin/x",
            "/Volumes/Installer/Setup.app/Contents/MacOS/Setup",
            "/Users/Shared/x",
        ] {
            assert!(is_staged_path(p), "{p}");
        }
        for p in [
            "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
            "/usr/bin/security",
            "/Users/alice/bin/.x",
            "/Downloads",
        ] {
            assert!(!is_staged_path(p), "{p}");
        }
    }

    #[test]
    fn ownership_and_value() {
        assert!(is_high_value("Chrome Safe Storage"));
        assert!(is_high_value("Volli Spike Safe Storage"));
        assert!(!is_high_value("Safe Storage"));
        assert!(!is_high_value("github.com"));
        let chrome = Some("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome");
        assert!(owns_item(chrome, "Chrome Safe Storage"));
        assert!(!owns_item(Some("/usr/bin/security"), "Chrome Safe Storage"));
        assert!(!owns_item(None, "Chrome Safe Storage"));
        assert!(owns_item(
            Some("/usr/libexec/airportd"),
            "AirPort network password"
        ));
        assert!(!owns_item(Some("/tmp/x"), "AirPort network password"));
    }

    fn obs<'a>(action: &'a str, pid: i64, t: i64, path: &'a str, msg: &'a str) -> Observation<'a> {
        Observation {
            action: action.parse().expect("a known action"),
            logger: (118, 7),
            time: Some(t),
            client_pid: Some(pid),
            client: Some(path),
            actor_path: Some(path),
            signer: None,
            item: None,
            partition: None,
            message: msg,
        }
    }

    #[test]
    fn prompt_then_always_allow_by_a_staged_client_is_high() {
        let mut t = PromptTracker::default();
        let mut part = obs("keychain_auth", 0, 100, "/usr/sbin/securityd", "");
        part.partition = Some("cdhash:8167e0");
        part.client_pid = None;
        t.observe(&part);
        let path = "/Applications/Helper.app/Contents/MacOS/Helper";
        let mut p = obs("keychain_prompt", 4242, 101, path, "displaying");
        p.item = Some("Chrome Safe Storage");
        let a = t.observe(&p);
        assert_eq!(a.severity, Some(Severity::Medium), "{a:?}");
        assert!(a.notes.iter().any(|n| n.contains("cdhash:8167e0")), "{a:?}");
        let ans = obs(
            "keychain_prompt_answer",
            4242,
            5000,
            path,
            "user approved 'always allow' for x(4242)",
        );
        let a = t.observe(&ans);
        assert_eq!(a.severity, Some(Severity::High));
        assert_eq!(a.item.as_deref(), Some("Chrome Safe Storage"));
        // Another pid's answer does not inherit the item.
        let other = obs(
            "keychain_prompt_answer",
            4243,
            5000,
            path,
            "user approved 'allow' for x(4243)",
        );
        let a = t.observe(&other);
        assert_eq!((a.severity, a.item), (None, None));
    }

    #[test]
    fn a_signed_tool_approved_for_a_browser_key_is_medium_and_the_owner_is_not_raised() {
        let mut t = PromptTracker::default();
        let mut p = obs("keychain_prompt", 10, 100, "/usr/bin/security", "");
        p.item = Some("Chrome Safe Storage");
        assert_eq!(t.observe(&p).severity, None);
        let a = t.observe(&obs(
            "keychain_prompt_answer",
            10,
            110,
            "/usr/bin/security",
            "user approved 'always allow' for /usr/bin/security(10)",
        ));
        assert_eq!(a.severity, Some(Severity::Medium));
        let chrome = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome";
        let mut p = obs("keychain_prompt", 11, 100, chrome, "");
        p.item = Some("Chrome Safe Storage");
        t.observe(&p);
        let a = t.observe(&obs(
            "keychain_prompt_answer",
            11,
            110,
            chrome,
            "user approved 'always allow' for x(11)",
        ));
        assert_eq!(a.severity, None);
        // A staged program calling itself Chrome does not own the key.
        let fake = "/private/tmp/Google Chrome";
        let mut p = obs("keychain_prompt", 12, 100, fake, "");
        p.item = Some("Chrome Safe Storage");
        assert_eq!(t.observe(&p).severity, Some(Severity::Medium));
        // An unsigned client (ES cache), denied: still medium.
        let mut p = obs("keychain_prompt", 13, 100, "/Users/a/bin/x", "");
        p.item = Some("Brave Safe Storage");
        p.signer = Some(Signer::Unsigned);
        t.observe(&p);
        let mut d = obs(
            "keychain_prompt_answer",
            13,
            120,
            "/Users/a/bin/x",
            "user did not approve 'allow' for x(13), reason 3",
        );
        d.signer = Some(Signer::Unsigned);
        assert_eq!(t.observe(&d).severity, Some(Severity::Medium));
    }

    #[test]
    fn wifi_password_for_a_staged_client() {
        let mut t = PromptTracker::default();
        let path = "/Users/Shared/.cache/agent";
        let mut p = obs("keychain_prompt", 21, 100, path, "");
        p.item = Some("AirPort network password");
        let a = t.observe(&p);
        assert_eq!(a.severity, Some(Severity::Medium), "{a:?}");
        let a = t.observe(&obs(
            "keychain_prompt_answer",
            21,
            130,
            path,
            "(systemdb)user approved 'allow' for /Users/Shared/.cache/agent(21)",
        ));
        assert_eq!(a.severity, Some(Severity::High));
        assert_eq!(a.item.as_deref(), Some("AirPort network password"));
        // airportd itself asking: its own item, no raise.
        let mut p = obs("keychain_prompt", 22, 100, "/usr/libexec/airportd", "");
        p.item = Some("AirPort network password");
        assert_eq!(t.observe(&p).severity, None);
    }

    #[test]
    fn partition_answers_say_what_was_answered() {
        let mut t = PromptTracker::default();
        let mut o = obs(
            "keychain_prompt_answer",
            0,
            100,
            "/usr/sbin/securityd",
            "user rejected XARA access for 'cdhash:9f'",
        );
        o.client_pid = None;
        o.partition = Some("cdhash:9f");
        let a = t.observe(&o);
        assert!(
            a.notes
                .iter()
                .any(|n| n == "user rejected access for this partition"),
            "{a:?}"
        );
        assert!(
            a.notes.iter().any(|n| n.contains("(ad-hoc signed)")),
            "{a:?}"
        );
        o.message = "user approved XARA access for 'cdhash:9f'";
        let a = t.observe(&o);
        assert!(
            a.notes
                .iter()
                .any(|n| n.starts_with("user approved access for this partition")),
            "{a:?}"
        );
        assert!(!a.notes.iter().any(|n| n.contains("'allow'")), "{a:?}");
    }

    #[test]
    fn activities_are_throttled_and_bounded() {
        let mut t = PromptTracker::default();
        assert!(t.activity_is_new(1, "/x", "SecItemCopyMatching", Some(100)));
        assert!(!t.activity_is_new(1, "/x", "SecItemCopyMatching", Some(159)));
        assert!(t.activity_is_new(1, "/x", "SecItemCopyMatching", Some(160)));
        assert!(t.activity_is_new(1, "/x", "SecKeychainFindGenericPassword", Some(160)));
        assert!(t.activity_is_new(2, "/x", "SecItemCopyMatching", Some(160)));
        assert!(t.activity_is_new(2, "/x", "SecItemCopyMatching", None));
        for i in 0..(MAX_ACTIVITY_KEYS as i64 * 2) {
            t.activity_is_new(i, "/y", "A", Some(1000));
        }
        assert!(t.activities.len() <= MAX_ACTIVITY_KEYS);
    }
}
