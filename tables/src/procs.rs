//! Process identity and a bounded cache of what exec events told us.
//!
//! Endpoint Security file events name the acting process but not its
//! command line, and exec events name the parent's pid (and, from message
//! version 4, its audit token) but not the parent's command line. The cache,
//! filled from exec events and keyed by pid + pidversion (pids are reused;
//! pidversion tells images apart), supplies both. It is bounded: the oldest
//! entries are evicted first and evictions are counted, so memory does not
//! grow with the input.

use crate::es::{AuditToken, EsProcess};
use std::collections::{HashMap, VecDeque};

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
    // Apple-signed code outside the OS (Xcode, its tools) has no team id and
    // is not a platform binary. Before message version 10, ES does not say
    // who signed it; a valid, non-ad-hoc signature with an Apple identifier
    // is taken as Apple's (documented limitation).
    if !has_team
        && flags & CS_VALID != 0
        && p.signing_id
            .as_deref()
            .is_some_and(|s| s.starts_with("com.apple."))
        && !zero_cdhash
    {
        return Signer::Apple;
    }
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
}

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
        }
    }

    pub fn key(&self) -> (i64, i64) {
        (self.pid, self.pidversion)
    }
}

/// Bounded cache of process images, keyed by (pid, pidversion).
#[derive(Debug)]
pub struct ProcessCache {
    map: HashMap<(i64, i64), ProcInfo>,
    /// Latest pidversion seen per pid, for events without a parent token.
    latest: HashMap<i64, i64>,
    order: VecDeque<(i64, i64)>,
    capacity: usize,
    pub evictions: u64,
}

/// Default number of process images remembered.
pub const DEFAULT_CACHE_CAPACITY: usize = 8192;

impl ProcessCache {
    pub fn new(capacity: usize) -> Self {
        ProcessCache {
            map: HashMap::new(),
            latest: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn insert(&mut self, info: ProcInfo) {
        let key = info.key();
        self.latest.insert(info.pid, info.pidversion);
        if self.map.insert(key, info).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if self.map.remove(&old).is_some() {
                self.evictions += 1;
                if self.latest.get(&old.0) == Some(&old.1) {
                    self.latest.remove(&old.0);
                }
            }
        }
    }

    pub fn get(&self, key: (i64, i64)) -> Option<&ProcInfo> {
        self.map.get(&key)
    }

    /// The newest image seen for a pid (when only the pid is known).
    pub fn latest_for_pid(&self, pid: i64) -> Option<&ProcInfo> {
        let pv = self.latest.get(&pid)?;
        self.map.get(&(pid, *pv))
    }

    /// The parent of a process: by its audit token when the event carried
    /// one, else (old message versions) by ppid. A parent token that is not
    /// in the cache (never seen, or evicted) gives no parent: the newest
    /// image with the same pid is another process when the pid was reused,
    /// and pidversion is what tells them apart.
    pub fn parent_of(&self, p: &ProcInfo) -> Option<&ProcInfo> {
        if let Some(k) = p.parent {
            return self.map.get(&k).filter(|q| q.key() != p.key());
        }
        let ppid = p.ppid?;
        if ppid == p.pid {
            return None;
        }
        self.latest_for_pid(ppid).filter(|q| q.key() != p.key())
    }

    /// Ancestors, nearest first, at most `max` deep, stopping at cycles.
    pub fn ancestors(&self, p: &ProcInfo, max: usize) -> Vec<&ProcInfo> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn ancestors_stop_at_cycles() {
        let mut c = ProcessCache::new(10);
        c.insert(info(1, 1, Some((2, 1)), "/a"));
        c.insert(info(2, 1, Some((1, 1)), "/b"));
        let p = info(3, 1, Some((1, 1)), "/c");
        let a = c.ancestors(&p, 16);
        assert_eq!(a.len(), 2);
    }
}
