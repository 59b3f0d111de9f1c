//! Process identity and a bounded cache of what exec events told us.
//!
//! Endpoint Security file events name the acting process but not its
//! command line, and exec events name the parent's pid (and, from message
//! version 4, its audit token) but not the parent's command line. The cache,
//! filled from exec events and keyed by pid + pidversion (pids are reused;
//! pidversion tells images apart), supplies both.
//!
//! Ancestry is recorded when a child is forked or exec'd: each image keeps a
//! shared link to the image that really spawned it at that moment, so a
//! dropper that exits (or is evicted, or whose pid later execs a genuine
//! agent) still shows above the child that reads the keychain. The cache is
//! bounded and evicts the least recently used image (a long-lived shell or
//! agent that keeps spawning children stays), exit events free an image's
//! entry, and evictions are counted, so memory does not grow with the input.

use crate::es::{AuditToken, EsProcess};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How many ancestors a row lists.
pub const MAX_ANCESTORS: usize = 16;

/// Code-signing flags (from `<kern/cs_blobs.h>`).
pub const CS_VALID: u32 = 0x0000_0001;
pub const CS_ADHOC: u32 = 0x0000_0002;
pub const CS_LINKER_SIGNED: u32 = 0x0002_0000;
pub const CS_SIGNED: u32 = 0x2000_0000;

/// `cs_validation_category` values (macOS 26, message version 10).
pub const CS_VALIDATION_CATEGORY_PLATFORM: i64 = 1;
pub const CS_VALIDATION_CATEGORY_TESTFLIGHT: i64 = 2;
pub const CS_VALIDATION_CATEGORY_DEVELOPMENT: i64 = 3;
pub const CS_VALIDATION_CATEGORY_APP_STORE: i64 = 4;
pub const CS_VALIDATION_CATEGORY_ENTERPRISE: i64 = 5;
pub const CS_VALIDATION_CATEGORY_DEVELOPER_ID: i64 = 6;
pub const CS_VALIDATION_CATEGORY_LOCAL_SIGNING: i64 = 7;
pub const CS_VALIDATION_CATEGORY_NONE: i64 = 10;

/// Who signed a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    Apple,
    DeveloperId,
    Adhoc,
    Unsigned,
}

impl Signer {
    pub fn as_str(self) -> &'static str {
        match self {
            Signer::Apple => "apple",
            Signer::DeveloperId => "developer_id",
            Signer::Adhoc => "adhoc",
            Signer::Unsigned => "unsigned",
        }
    }

    /// Unsigned or ad-hoc: code nobody vouches for.
    pub fn is_untrusted(self) -> bool {
        matches!(self, Signer::Adhoc | Signer::Unsigned)
    }
}

/// Whether the event carried any code-signing field. eslogger always does;
/// osquery's `es_process_file_events` carries none, and "no information"
/// must not read as "unsigned".
pub fn has_code_signing_info(p: &EsProcess) -> bool {
    p.cdhash.is_some()
        || p.signing_id.is_some()
        || p.team_id.is_some()
        || p.codesigning_flags.is_some()
        || p.is_platform_binary.is_some()
        || p.cs_validation_category.is_some()
}

/// Classify the signer from what ES reports.
pub fn signer_of(p: &EsProcess) -> Signer {
    if p.is_platform_binary == Some(true)
        || p.cs_validation_category == Some(CS_VALIDATION_CATEGORY_PLATFORM)
    {
        return Signer::Apple;
    }
    match p.cs_validation_category {
        // From message version 10 the kernel says how the code was validated.
        Some(CS_VALIDATION_CATEGORY_DEVELOPER_ID)
        | Some(CS_VALIDATION_CATEGORY_APP_STORE)
        | Some(CS_VALIDATION_CATEGORY_ENTERPRISE)
        | Some(CS_VALIDATION_CATEGORY_TESTFLIGHT) => return Signer::DeveloperId,
        Some(CS_VALIDATION_CATEGORY_LOCAL_SIGNING) | Some(CS_VALIDATION_CATEGORY_DEVELOPMENT) => {
            return Signer::Adhoc
        }
        Some(CS_VALIDATION_CATEGORY_NONE) => return Signer::Unsigned,
        _ => {}
    }
    let zero_cdhash = p
        .cdhash
        .as_deref()
        .is_none_or(|c| c.is_empty() || c.bytes().all(|b| b == b'0'));
    let flags = p.codesigning_flags.unwrap_or(0);
    let has_team = p.team_id.as_deref().is_some_and(|t| !t.is_empty());
    if flags & (CS_ADHOC | CS_LINKER_SIGNED) != 0 {
        return Signer::Adhoc;
    }
    if has_team && (flags & CS_VALID != 0 || p.codesigning_flags.is_none()) {
        return Signer::DeveloperId;
    }
    // A team id whose signature no longer validates (CS_VALID clear: the
    // code was changed after signing) vouches for nothing, not even ad hoc:
    // the ids it reports are whatever the broken signature claims.
    if has_team && flags & CS_VALID == 0 {
        return Signer::Unsigned;
    }
    // Apple-signed code outside the OS (Xcode, its tools) has no team id and
    // is not a platform binary. Before message version 10 ES does not say who
    // signed it, and a self-signed certificate can claim any `com.apple.`
    // identifier (Apple's Endpoint Security release notes for message
    // version 10 add `cs_validation_category` for this reason), so "no team
    // id and a com.apple. signing id" is not taken as Apple: nobody vouches
    // for it (ad hoc).
    if zero_cdhash && p.signing_id.is_none() {
        return Signer::Unsigned;
    }
    if flags & CS_SIGNED != 0 || p.signing_id.is_some() {
        // Signed, but with no team and not by Apple: nobody vouches for it.
        return Signer::Adhoc;
    }
    Signer::Unsigned
}

/// What we know of one process image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i64,
    pub pidversion: i64,
    pub ppid: Option<i64>,
    /// The parent's identity, when the event carried its audit token.
    pub parent: Option<(i64, i64)>,
    pub responsible: Option<(i64, i64)>,
    pub euid: Option<i64>,
    pub auid: Option<i64>,
    pub path: String,
    pub signing_id: Option<String>,
    pub team_id: Option<String>,
    pub cdhash: Option<String>,
    pub signer: Option<Signer>,
    pub platform_binary: bool,
    /// Redacted, sanitised, capped command line (from an exec event).
    pub cmdline: Option<String>,
    pub cwd: Option<String>,
    /// The image that spawned this one, as it was when this one was forked
    /// or exec'd (not the parent pid's current image). Shared, so exited
    /// and evicted ancestors stay reachable from their descendants.
    pub spawned_by: Option<Arc<ProcInfo>>,
    /// Links above this image (bounded by [`MAX_LINK_DEPTH`]).
    pub link_depth: u16,
    /// `spawned_by` was recorded by a fork event (directly, or inherited
    /// through execs of the forked child): the real spawner, whatever the
    /// parent pid runs now.
    pub fork_linked: bool,
    /// The image this one replaced by exec (same pid), one level deep:
    /// what a child forked before that exec still runs.
    pub replaced: Option<Arc<ProcInfo>>,
    /// Exec'd with `ELECTRON_RUN_AS_NODE` set: a signed Electron app running
    /// its caller's script as plain Node.js (an interpreter, whatever its
    /// signature).
    pub runs_as_node: bool,
}

/// Longest recorded ancestry chain; deeper links are cut (a bound on memory
/// and on the work of dropping a chain).
pub const MAX_LINK_DEPTH: u16 = 32;

impl ProcInfo {
    /// Identity and signing facts from an es_process_t (no command line).
    pub fn from_es(p: &EsProcess) -> Self {
        let tok: AuditToken = p.audit_token.into();
        let parent = p.parent_audit_token.map(|t| AuditToken::from(t).key());
        let responsible = p.responsible_audit_token.map(|t| AuditToken::from(t).key());
        ProcInfo {
            pid: tok.pid,
            pidversion: tok.pidversion.unwrap_or(0),
            ppid: p.ppid,
            parent,
            responsible,
            euid: tok.euid,
            auid: tok.auid,
            path: p.executable.path.clone(),
            signing_id: p.signing_id.clone().filter(|s| !s.is_empty()),
            team_id: p.team_id.clone().filter(|s| !s.is_empty()),
            cdhash: p.cdhash.clone().filter(|s| !s.is_empty()),
            signer: has_code_signing_info(p).then(|| signer_of(p)),
            platform_binary: p.is_platform_binary == Some(true),
            cmdline: None,
            cwd: None,
            spawned_by: None,
            link_depth: 0,
            fork_linked: false,
            replaced: None,
            runs_as_node: false,
        }
    }

    pub fn key(&self) -> (i64, i64) {
        (self.pid, self.pidversion)
    }

    /// Record `parent` as the image that spawned this one.
    pub fn link_to(&mut self, parent: &Arc<ProcInfo>) {
        if parent.key() == self.key() {
            return;
        }
        if parent.link_depth >= MAX_LINK_DEPTH {
            let mut cut = ProcInfo::clone(parent);
            cut.spawned_by = None;
            cut.link_depth = 0;
            self.spawned_by = Some(Arc::new(cut));
            self.link_depth = 1;
        } else {
            self.spawned_by = Some(Arc::clone(parent));
            self.link_depth = parent.link_depth + 1;
        }
    }

    /// Whether a valid signature names who vouches for this code: an Apple
    /// platform binary or a team id (Developer ID, App Store, enterprise).
    pub fn has_code_identity(&self) -> bool {
        matches!(self.signer, Some(Signer::Apple) | Some(Signer::DeveloperId))
    }
}

/// Bounded cache of process images, keyed by (pid, pidversion), evicting
/// the least recently used.
#[derive(Debug)]
pub struct ProcessCache {
    map: HashMap<(i64, i64), (Arc<ProcInfo>, u64)>,
    /// Latest pidversion seen per pid, for events without a parent token.
    latest: HashMap<i64, i64>,
    /// Use stamp -> key; the first entry is the least recently used.
    order: BTreeMap<u64, (i64, i64)>,
    clock: u64,
    capacity: usize,
    pub evictions: u64,
    /// Entries freed by exit events.
    pub exits_freed: u64,
    /// Processes that were running when the extension started (no
    /// pidversion known), by pid: a parent's last resort until an exit or
    /// exec of that pid says the seed is gone. See [`parse_ps`].
    seeded: HashMap<i64, Arc<ProcInfo>>,
}

/// Default number of process images remembered.
pub const DEFAULT_CACHE_CAPACITY: usize = 8192;

impl ProcessCache {
    pub fn new(capacity: usize) -> Self {
        ProcessCache {
            map: HashMap::new(),
            latest: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            capacity: capacity.max(1),
            evictions: 0,
            exits_freed: 0,
            seeded: HashMap::new(),
        }
    }

    /// Seed the tree with processes already running (pidversion unknown).
    /// Bounded by the cache capacity.
    pub fn seed(&mut self, procs: Vec<ProcInfo>) {
        for p in procs.into_iter().take(self.capacity) {
            self.seeded.insert(p.pid, Arc::new(p));
        }
    }

    /// Seeded processes still standing.
    pub fn seeded_len(&self) -> usize {
        self.seeded.len()
    }

    fn seed_for(&self, pid: i64, exclude: (i64, i64)) -> Option<Arc<ProcInfo>> {
        self.seeded
            .get(&pid)
            .filter(|q| q.key() != exclude)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn stamp(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Insert (or replace) an image; returns the shared entry.
    pub fn insert(&mut self, info: ProcInfo) -> Arc<ProcInfo> {
        let key = info.key();
        // A new image of a seeded pid: the seed no longer describes it.
        self.seeded.remove(&info.pid);
        self.latest.insert(info.pid, info.pidversion);
        let arc = Arc::new(info);
        let st = self.stamp();
        if let Some((_, old)) = self.map.insert(key, (Arc::clone(&arc), st)) {
            self.order.remove(&old);
        }
        self.order.insert(st, key);
        while self.map.len() > self.capacity {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if self.map.remove(&old).is_some() {
                self.evictions += 1;
                if self.latest.get(&old.0) == Some(&old.1) {
                    self.latest.remove(&old.0);
                }
            }
        }
        arc
    }

    /// Mark an image (and what spawned it, as far as it is cached) as used.
    pub fn touch(&mut self, key: (i64, i64)) {
        let mut cur = Some(key);
        let mut hops = 0;
        while let Some(k) = cur {
            if hops > MAX_LINK_DEPTH {
                break;
            }
            hops += 1;
            let st = self.stamp();
            let Some(entry) = self.map.get_mut(&k) else {
                break;
            };
            self.order.remove(&entry.1);
            entry.1 = st;
            self.order.insert(st, k);
            cur = entry
                .0
                .spawned_by
                .as_ref()
                .map(|p| p.key())
                .filter(|p| *p != k);
        }
    }

    /// Forget an image (its exit event). Descendants keep their links.
    pub fn remove(&mut self, key: (i64, i64)) {
        self.seeded.remove(&key.0);
        if let Some((_, st)) = self.map.remove(&key) {
            self.order.remove(&st);
            self.exits_freed += 1;
            if self.latest.get(&key.0) == Some(&key.1) {
                self.latest.remove(&key.0);
            }
        }
    }

    /// Forget the pre-exec image an exec replaced (not an exit).
    pub fn remove_replaced(&mut self, key: (i64, i64)) {
        if let Some((_, st)) = self.map.remove(&key) {
            self.order.remove(&st);
            if self.latest.get(&key.0) == Some(&key.1) {
                self.latest.remove(&key.0);
            }
        }
    }

    pub fn get(&self, key: (i64, i64)) -> Option<&ProcInfo> {
        self.map.get(&key).map(|e| &*e.0)
    }

    /// The shared entry of an image.
    pub fn get_arc(&self, key: (i64, i64)) -> Option<Arc<ProcInfo>> {
        self.map.get(&key).map(|e| Arc::clone(&e.0))
    }

    /// The newest image seen for a pid (when only the pid is known).
    pub fn latest_for_pid(&self, pid: i64) -> Option<&ProcInfo> {
        let pv = self.latest.get(&pid)?;
        self.get((pid, *pv))
    }

    /// The shared entry of the image an event names as the parent: by its
    /// audit token when the event carried one, else (old message versions)
    /// by ppid. A parent token that is not in the cache (never seen, or
    /// evicted) gives no parent: the newest image with the same pid is
    /// another process when the pid was reused, and pidversion is what
    /// tells them apart.
    pub fn parent_by_token(&self, p: &ProcInfo) -> Option<Arc<ProcInfo>> {
        if let Some(k) = p.parent {
            return self
                .get_arc(k)
                .filter(|q| q.key() != p.key())
                .or_else(|| self.seed_for(k.0, p.key()));
        }
        let ppid = p.ppid?;
        if ppid == p.pid {
            return None;
        }
        match self.latest.get(&ppid) {
            Some(pv) => self.get_arc((ppid, *pv)).filter(|q| q.key() != p.key()),
            None => self.seed_for(ppid, p.key()),
        }
    }

    /// The parent of a process: the image recorded as spawning it, else the
    /// one its event names.
    pub fn parent_of<'a>(&'a self, p: &'a ProcInfo) -> Option<&'a ProcInfo> {
        if let Some(link) = &p.spawned_by {
            return Some(&**link);
        }
        if let Some(k) = p.parent {
            return self.get(k).filter(|q| q.key() != p.key()).or_else(|| {
                self.seeded
                    .get(&k.0)
                    .map(|q| &**q)
                    .filter(|q| q.key() != p.key())
            });
        }
        let ppid = p.ppid?;
        if ppid == p.pid {
            return None;
        }
        self.latest_for_pid(ppid)
            .or_else(|| self.seeded.get(&ppid).map(|q| &**q))
            .filter(|q| q.key() != p.key())
    }

    /// Ancestors, nearest first, at most `max` deep, stopping at cycles.
    pub fn ancestors<'a>(&'a self, p: &'a ProcInfo, max: usize) -> Vec<&'a ProcInfo> {
        let mut out: Vec<&ProcInfo> = Vec::new();
        let mut cur = self.parent_of(p);
        while let Some(q) = cur {
            if out.len() >= max || out.iter().any(|o| o.key() == q.key()) || q.key() == p.key() {
                break;
            }
            out.push(q);
            cur = self.parent_of(q);
        }
        out
    }
}

/// Processes from `ps -axww -o pid=,ppid=,uid=,args=` output: the tree as
/// it stood when the extension started, for ancestry of processes whose
/// exec came before the capture. ps knows no pidversion or signature: a
/// seed is a parent of last resort (pidversion -1, signer unknown, so it
/// never satisfies an identity rule) until an exec or exit of its pid.
/// Lines that do not parse are skipped and counted.
pub fn parse_ps(text: &str, cmdline_cap: usize) -> (Vec<ProcInfo>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(pid), Some(ppid), Some(uid)) = (it.next(), it.next(), it.next()) else {
            if !line.trim().is_empty() {
                skipped += 1;
            }
            continue;
        };
        let (Ok(pid), Ok(ppid), Ok(uid)) =
            (pid.parse::<i64>(), ppid.parse::<i64>(), uid.parse::<i64>())
        else {
            skipped += 1;
            continue;
        };
        let args: Vec<&str> = it.collect();
        let Some(exe) = args.first() else {
            skipped += 1;
            continue;
        };
        // ps joins argv with spaces (quoting is lost): redact word by word
        // as for an exec's argv, then the joined text once more.
        let words: Vec<String> = args.iter().map(|w| w.to_string()).collect();
        let redacted = crate::redact::redact_argv(&words).join(" ");
        let cmd = crate::text::sanitize(&crate::redact::redact_text(&redacted)).into_owned();
        let (cmd, _) = crate::text::truncate(cmd, cmdline_cap);
        out.push(ProcInfo {
            pid,
            pidversion: -1,
            ppid: Some(ppid),
            euid: Some(uid),
            path: crate::text::sanitize(exe).into_owned(),
            cmdline: Some(cmd),
            ..Default::default()
        });
    }
    (out, skipped)
}

/// The running processes, from `/bin/ps` (the extension calls it on macOS
/// to seed its process tree at start). Thin: the parsing is [`parse_ps`].
pub fn running_processes(cmdline_cap: usize) -> std::io::Result<(Vec<ProcInfo>, usize)> {
    let out = std::process::Command::new("/bin/ps")
        .args(["-axww", "-o", "pid=,ppid=,uid=,args="])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "/bin/ps exited {}",
            out.status
        )));
    }
    Ok(parse_ps(&String::from_utf8_lossy(&out.stdout), cmdline_cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_id_whose_signature_no_longer_validates_is_unsigned() {
        let signer = |flags: u32, team: Option<&str>| {
            let p: EsProcess = serde_json::from_value(serde_json::json!({
                "audit_token": [0, 0, 0, 0, 0, 10, 1, 7],
                "executable": {"path": "/usr/local/jamf/bin/jamf"},
                "codesigning_flags": flags, "is_platform_binary": false,
                "cdhash": "F988105881118CD77EF87293D97DECE8E193FA98",
                "signing_id": "com.jamf.management.jamf", "team_id": team,
            }))
            .expect("EsProcess");
            signer_of(&p)
        };
        assert_eq!(signer(0x2201_0301, Some("483DWKW443")), Signer::DeveloperId);
        assert_eq!(signer(0x2201_0100, Some("483DWKW443")), Signer::Unsigned);
        // No team id: ad hoc whatever the flags say (nobody vouches for it).
        assert_eq!(signer(0x2200_0003, None), Signer::Adhoc);
    }

    fn info(pid: i64, pv: i64, parent: Option<(i64, i64)>, path: &str) -> ProcInfo {
        ProcInfo {
            pid,
            pidversion: pv,
            ppid: parent.map(|p| p.0),
            parent,
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn pidversion_tells_reused_pids_apart() {
        let mut c = ProcessCache::new(10);
        c.insert(info(10, 1, None, "/bin/zsh"));
        c.insert(info(10, 2, None, "/usr/bin/python3"));
        let child = info(20, 5, Some((10, 1)), "/usr/bin/security");
        assert_eq!(c.parent_of(&child).unwrap().path, "/bin/zsh");
        let orphan = ProcInfo {
            parent: None,
            ..child.clone()
        };
        assert_eq!(c.parent_of(&orphan).unwrap().path, "/usr/bin/python3");
        // A parent token for an image not in the cache (evicted, or before
        // the capture) is not matched to another image of the same pid.
        let reused = info(21, 1, Some((10, 7)), "/usr/bin/security");
        assert!(c.parent_of(&reused).is_none());
        let mut small = ProcessCache::new(2);
        small.insert(info(10, 1, None, "/bin/zsh"));
        small.insert(info(10, 2, None, "/tmp/evil"));
        small.insert(info(10, 3, None, "/bin/bash"));
        assert_eq!(small.evictions, 1);
        assert!(
            small.parent_of(&child).is_none(),
            "evicted parent misattributed"
        );
    }

    #[test]
    fn bounded_with_counted_evictions() {
        let mut c = ProcessCache::new(3);
        for i in 0..10 {
            c.insert(info(i, 1, None, "/x"));
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.evictions, 7);
        assert!(c.get((0, 1)).is_none());
        assert!(c.get((9, 1)).is_some());
    }

    #[test]
    fn least_recently_used_is_evicted_not_the_oldest() {
        let mut c = ProcessCache::new(3);
        c.insert(info(1, 1, None, "/bin/zsh"));
        c.insert(info(2, 1, None, "/a"));
        c.insert(info(3, 1, None, "/b"));
        c.touch((1, 1));
        c.insert(info(4, 1, None, "/c"));
        assert!(c.get((1, 1)).is_some(), "a shell in use was evicted");
        assert!(c.get((2, 1)).is_none());
        assert_eq!(c.evictions, 1);
    }

    #[test]
    fn recorded_links_outlive_exit_and_a_later_exec_of_the_parent_pid() {
        let mut c = ProcessCache::new(10);
        let dropper = c.insert(info(10, 1, None, "/tmp/dropper"));
        let mut child = info(11, 1, Some((10, 1)), "/usr/bin/security");
        child.link_to(&dropper);
        c.insert(child.clone());
        c.remove((10, 1));
        // The parent pid now runs a genuine agent image.
        c.insert(info(10, 2, None, "/usr/local/jamf/bin/jamf"));
        assert_eq!(c.parent_of(&child).unwrap().path, "/tmp/dropper");
        assert_eq!(c.exits_freed, 1);
        assert!(c.get((10, 1)).is_none());
    }

    #[test]
    fn link_chains_are_bounded() {
        let mut c = ProcessCache::new(10_000);
        let mut prev = c.insert(info(1, 1, None, "/sbin/launchd"));
        for i in 2..2000 {
            let mut p = info(i, 1, Some((i - 1, 1)), "/bin/sh");
            p.link_to(&prev);
            assert!(p.link_depth <= MAX_LINK_DEPTH);
            prev = c.insert(p);
        }
        let last = c.get((1999, 1)).unwrap().clone();
        assert_eq!(c.ancestors(&last, 16).len(), 16);
        assert_eq!(c.ancestors(&last, 16)[0].pid, 1998);
    }

    #[test]
    fn seeds_are_parents_of_last_resort_until_their_pid_moves_on() {
        let ps = "  1     0   0 /sbin/launchd\n  700     1   501 /usr/bin/osascript -e do shell script\nnot a line\n";
        let (seeds, skipped) = parse_ps(ps, 2048);
        assert_eq!((seeds.len(), skipped), (2, 1));
        let mut c = ProcessCache::new(10);
        c.seed(seeds);
        let child = info(800, 5, Some((700, 1234)), "/bin/sh");
        assert_eq!(c.parent_of(&child).unwrap().path, "/usr/bin/osascript");
        assert_eq!(
            c.parent_by_token(&child).unwrap().cmdline.as_deref(),
            Some("/usr/bin/osascript -e do shell script")
        );
        assert!(c.parent_of(&child).unwrap().signer.is_none());
        // An exec of pid 700 replaces the seed; its exit removes it.
        c.insert(info(700, 1240, None, "/bin/zsh"));
        assert!(c.parent_of(&child).is_none());
        c.seed(parse_ps("900 1 0 /usr/bin/python3 x.py", 2048).0);
        assert_eq!(c.seeded_len(), 2, "launchd and pid 900");
        c.remove((900, 77));
        assert_eq!(c.seeded_len(), 1, "pid 900 exited");
    }

    #[test]
    fn ancestors_stop_at_cycles() {
        let mut c = ProcessCache::new(10);
        c.insert(info(1, 1, Some((2, 1)), "/a"));
        c.insert(info(2, 1, Some((1, 1)), "/b"));
        let p = info(3, 1, Some((1, 1)), "/c");
        let a = c.ancestors(&p, 16);
        assert_eq!(a.len(), 2);
    }
}
#[cfg(test)]
mod seed_redaction {
    #[test]
    fn seeded_command_lines_are_redacted() {
        let (seeds, _) = super::parse_ps(
            "42 1 501 security unlock-keychain -p hunter2 login.keychain\n43 1 0 /bin/sh -c 'security add-generic-password -a a -s s -w S3cr3t'\n",
            2048,
        );
        for s in &seeds {
            let c = s.cmdline.as_deref().unwrap();
            assert!(!c.contains("hunter2") && !c.contains("S3cr3t"), "{c}");
        }
    }
}
