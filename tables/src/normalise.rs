//! Normalise: the one row builder every source goes through.
//!
//! A source (Endpoint Security events in [`crate::classify`], unified-log
//! records in [`crate::unified_log`]) first says who acted: a process the
//! process cache knows ([`Actor::known`]), or only what a log record says
//! about one it does not ([`Actor::unknown`]). This stage enriches it once
//! (ancestry, the responsible process) and fills every actor and
//! enrichment column of the row the same way for both sources, sanitised
//! ([`Actor::row`]); the source then supplies only what is its own
//! ([`EventFacts`]: event type, action, verb, target and destination,
//! flags, severity, reason, message, ES version and sequence number, eid).
//! Santa's enrich step before its per-event serializers has this shape.
//!
//! The reading of `ancestors` is the same for both sources: NULL = the
//! process is unknown, `"[]"` = known with no recorded ancestor.

use crate::procs::{ProcInfo, ProcessCache, MAX_ANCESTORS};
use crate::schema::{Action, KeychainAccess, Severity, TECHNIQUE};
use crate::text::sanitize;
use std::borrow::Cow;

/// The acting process of one event, enriched from the process cache.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    /// The process as behaviour models and tuning rules see it. For an
    /// unknown process, only pid (0 when not known), path (`""`) and uid.
    process: Cow<'a, ProcInfo>,
    /// Whether the process cache (or the event itself) knows the process.
    known: bool,
    /// The pid and path columns: for an unknown process, what the record
    /// says (either may be missing).
    pid: Option<i64>,
    path: Option<String>,
    /// The `uid` column: the process's effective uid, unless the source
    /// reports one itself ([`Actor::with_uid`]).
    uid: Option<i64>,
    /// Ancestors, nearest first, at most [`MAX_ANCESTORS`].
    ancestors: Vec<ProcInfo>,
    responsible_path: Option<String>,
}

impl<'a> Actor<'a> {
    /// A process the source or the process cache knows: an ES event's
    /// process (enriched from the cache), or the cached image a unified-log
    /// record names.
    pub fn known(process: &'a ProcInfo, cache: &ProcessCache) -> Self {
        let ancestors: Vec<ProcInfo> = cache
            .ancestors(process, MAX_ANCESTORS)
            .into_iter()
            .cloned()
            .collect();
        let responsible_path = process
            .responsible
            .filter(|r| *r != process.key())
            .and_then(|r| cache.get(r))
            .map(|r| sanitize(&r.path).into_owned());
        Actor {
            pid: Some(process.pid),
            path: Some(process.path.clone()),
            uid: process.euid,
            known: true,
            ancestors,
            responsible_path,
            process: Cow::Borrowed(process),
        }
    }

    /// A process no cache knows: only what a log record says about it.
    /// Every enrichment column is NULL (`ancestors` too: unknown, not
    /// "no ancestor").
    pub fn unknown(pid: Option<i64>, path: Option<String>, uid: Option<i64>) -> Self {
        let process = ProcInfo {
            pid: pid.unwrap_or(0),
            path: path.clone().unwrap_or_default(),
            euid: uid,
            ..Default::default()
        };
        Actor {
            process: Cow::Owned(process),
            known: false,
            pid,
            path,
            uid,
            ancestors: Vec::new(),
            responsible_path: None,
        }
    }

    /// The uid the event itself reports for the actor (a unified-log
    /// record's `userID` when the logging process is the actor), which
    /// wins over the cached one.
    pub fn with_uid(mut self, uid: Option<i64>) -> Self {
        self.uid = uid;
        self
    }

    /// The process, as behaviour models and tuning rules see it.
    pub fn process(&self) -> &ProcInfo {
        &self.process
    }

    /// Whether the process is known (its enrichment columns are filled).
    pub fn is_known(&self) -> bool {
        self.known
    }

    /// Ancestors, nearest first.
    pub fn ancestors(&self) -> &[ProcInfo] {
        &self.ancestors
    }

    /// The ancestors as tuning facts take them.
    pub fn ancestor_refs(&self) -> Vec<&ProcInfo> {
        self.ancestors.iter().collect()
    }

    /// The parent (nearest ancestor), if recorded.
    pub fn parent(&self) -> Option<&ProcInfo> {
        self.ancestors.first()
    }

    /// Whether the ancestor list was cut at [`MAX_ANCESTORS`] (a resource
    /// bound the source counts).
    pub fn ancestors_capped(&self) -> bool {
        self.ancestors.len() >= MAX_ANCESTORS
    }

    /// The row: every actor and enrichment column from here, the rest
    /// from the source's facts.
    pub fn row(&self, facts: EventFacts<'_>) -> KeychainAccess {
        let known = self.known.then_some(&*self.process);
        let parent = self.parent();
        let clean = |s: &str| sanitize(s).into_owned();
        let ancestors = known.and_then(|_| {
            serde_json::to_string(
                &self
                    .ancestors
                    .iter()
                    .map(|a| clean(&a.path))
                    .collect::<Vec<_>>(),
            )
            .ok()
        });
        KeychainAccess {
            time: facts.time,
            eid: Some(facts.eid),
            source: Some(facts.source.into()),
            event_type: Some(facts.event_type.into()),
            pid: self.pid,
            pidversion: known.map(|p| p.pidversion),
            ppid: known.and_then(|p| p.ppid),
            parent_pidversion: known.and_then(|p| p.parent.map(|(_, pv)| pv)),
            uid: self.uid,
            auid: known.and_then(|p| p.auid),
            // Resolved on the collecting Mac only.
            username: None,
            path: self.path.as_deref().map(clean),
            // Command lines are redacted and sanitised where they enter the
            // process cache (an exec event), so they are taken as they are.
            cmdline: known.and_then(|p| p.cmdline.clone()),
            cwd: known.and_then(|p| p.cwd.clone()),
            parent_path: parent.map(|p| clean(&p.path)),
            parent_cmdline: parent.and_then(|p| p.cmdline.clone()),
            ancestors,
            responsible_path: self.responsible_path.clone(),
            signing_id: known.and_then(|p| p.signing_id.as_deref()).map(clean),
            team_id: known.and_then(|p| p.team_id.as_deref()).map(clean),
            cdhash: known.and_then(|p| p.cdhash.as_deref()).map(clean),
            signer: known.and_then(|p| p.signer).map(|s| s.as_str().to_string()),
            platform_binary: known.map(|p| i64::from(p.platform_binary)),
            action: Some(facts.action),
            verb: facts.verb.map(String::from),
            target_path: facts.target_path.map(clean),
            destination_path: facts.destination_path.map(clean),
            keychain_dump: Some(i64::from(facts.flags.keychain_dump)),
            password_query: Some(i64::from(facts.flags.password_query)),
            cert_export: Some(i64::from(facts.flags.cert_export)),
            reveals_secret: Some(i64::from(facts.flags.reveals_secret)),
            allowlisted: Some(i64::from(facts.allow_reason.is_some())),
            allow_reason: facts.allow_reason,
            severity: facts.severity,
            reason: Some(facts.reason),
            technique: Some(TECHNIQUE.into()),
            message: facts.message,
            // Set later by the correlator, when it links the two sources.
            correlation_id: None,
            es_version: facts.es_version,
            global_seq_num: facts.global_seq_num,
        }
    }
}

/// The seed query's flags and `reveals_secret`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    pub keychain_dump: bool,
    pub password_query: bool,
    pub cert_export: bool,
    pub reveals_secret: bool,
}

/// What only the source knows about one event. Paths are sanitised here;
/// `reason` and `message` are taken as given (each source sanitises its
/// own once it is complete).
#[derive(Debug, Clone)]
pub struct EventFacts<'a> {
    pub time: Option<i64>,
    pub eid: String,
    /// `esf` or `unified_log`.
    pub source: &'static str,
    /// The ES event name, or `log`.
    pub event_type: &'static str,
    pub action: Action,
    pub verb: Option<&'a str>,
    pub target_path: Option<&'a str>,
    pub destination_path: Option<&'a str>,
    pub flags: Flags,
    /// The tuning rule that excused the row (`allowlisted = 1`).
    pub allow_reason: Option<String>,
    pub severity: Option<Severity>,
    pub reason: String,
    pub message: Option<String>,
    pub es_version: Option<i64>,
    pub global_seq_num: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::Signer;

    fn facts() -> EventFacts<'static> {
        EventFacts {
            time: Some(1),
            eid: "e".into(),
            source: "esf",
            event_type: "open",
            action: Action::KeychainRead,
            verb: None,
            target_path: Some("/Users/a/Library/Keychains/login.keychain-db"),
            destination_path: Some("/tmp/x\u{1b}[31m"),
            flags: Flags::default(),
            allow_reason: None,
            severity: Some(Severity::Medium),
            reason: "r".into(),
            message: None,
            es_version: None,
            global_seq_num: None,
        }
    }

    fn proc(pid: i64, pv: i64, path: &str, parent: Option<(i64, i64)>) -> ProcInfo {
        ProcInfo {
            pid,
            pidversion: pv,
            ppid: parent.map(|p| p.0),
            parent,
            euid: Some(501),
            auid: Some(501),
            path: path.into(),
            signing_id: Some("com.example.x\u{7}".into()),
            signer: Some(Signer::DeveloperId),
            cmdline: Some(format!("{path} -x")),
            ..Default::default()
        }
    }

    #[test]
    fn a_known_process_fills_every_actor_column() {
        let mut cache = ProcessCache::new(16);
        cache.insert(proc(1, 1, "/sbin/launchd", None));
        cache.insert(proc(10, 2, "/bin/zsh", Some((1, 1))));
        let actor = proc(20, 3, "/usr/bin/cp", Some((10, 2)));
        let a = Actor::known(&actor, &cache);
        let row = a.row(facts());
        assert_eq!(row.pid, Some(20));
        assert_eq!(row.pidversion, Some(3));
        assert_eq!(row.ppid, Some(10));
        assert_eq!(row.parent_pidversion, Some(2));
        assert_eq!((row.uid, row.auid), (Some(501), Some(501)));
        assert_eq!(row.path.as_deref(), Some("/usr/bin/cp"));
        assert_eq!(row.parent_path.as_deref(), Some("/bin/zsh"));
        assert_eq!(row.parent_cmdline.as_deref(), Some("/bin/zsh -x"));
        assert_eq!(
            row.ancestors.as_deref(),
            Some(r#"["/bin/zsh","/sbin/launchd"]"#)
        );
        assert_eq!(row.signer.as_deref(), Some("developer_id"));
        assert_eq!(row.platform_binary, Some(0));
        // Sanitised: control characters are escaped.
        assert!(!row.signing_id.as_deref().unwrap().contains('\u{7}'));
        assert!(!row.destination_path.as_deref().unwrap().contains('\u{1b}'));
        assert_eq!(row.action, Some(Action::KeychainRead));
        assert_eq!(row.technique.as_deref(), Some(TECHNIQUE));
        assert_eq!(row.allowlisted, Some(0));
    }

    #[test]
    fn ancestors_say_unknown_or_none_recorded() {
        let cache = ProcessCache::new(4);
        let lone = proc(20, 3, "/usr/bin/cp", None);
        let known = Actor::known(&lone, &cache).row(facts());
        assert_eq!(known.ancestors.as_deref(), Some("[]"));
        let unknown = Actor::unknown(Some(20), Some("/usr/bin/cp".into()), Some(0)).row(facts());
        assert_eq!(unknown.ancestors, None);
        assert_eq!(unknown.pid, Some(20));
        assert_eq!(unknown.uid, Some(0));
        assert_eq!(unknown.path.as_deref(), Some("/usr/bin/cp"));
        for col in [
            unknown.pidversion,
            unknown.ppid,
            unknown.auid,
            unknown.platform_binary,
        ] {
            assert_eq!(col, None);
        }
        assert_eq!(unknown.signer, None);
    }

    #[test]
    fn the_sources_uid_wins() {
        let cache = ProcessCache::new(4);
        let p = proc(20, 3, "/usr/bin/cp", None);
        let row = Actor::known(&p, &cache).with_uid(Some(0)).row(facts());
        assert_eq!(row.uid, Some(0));
        assert_eq!(row.auid, Some(501));
    }
}
