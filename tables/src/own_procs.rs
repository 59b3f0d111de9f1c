//! The processes whose events are our own (the extension, the `eslogger`
//! and `log` children it runs), so they are not reported as keychain
//! access.
//!
//! Pids are reused, so a pid alone cannot say "ours": a process that later
//! gets a dead child's pid would become invisible. Children are therefore
//! keyed by pid + pidversion (Endpoint Security's audit token tells process
//! images apart with it): a child's pid is only "pending" from spawn until
//! its first event names its pidversion, an exec by it adds the new image's
//! pidversion, and its exit (the ES exit event, or the child being reaped)
//! removes it. The extension's own pid needs no pidversion: it is alive for
//! as long as it classifies.

use std::collections::VecDeque;

/// At most this many child images are remembered (oldest dropped first).
const MAX_KNOWN: usize = 32;

#[derive(Debug, Default, Clone)]
pub struct OwnProcesses {
    this_pid: Option<i64>,
    /// Children spawned whose pidversion no event has named yet.
    pending: Vec<i64>,
    /// Child images: (pid, pidversion).
    known: VecDeque<(i64, i64)>,
}

impl OwnProcesses {
    /// The running process itself.
    pub fn set_self(&mut self, pid: i64) {
        self.this_pid = Some(pid);
    }

    /// A child was spawned with this pid.
    pub fn child_started(&mut self, pid: i64) {
        if !self.pending.contains(&pid) {
            self.pending.push(pid);
        }
    }

    /// A child was reaped: its pid is no longer ours.
    pub fn child_exited(&mut self, pid: i64) {
        self.pending.retain(|p| *p != pid);
        self.known.retain(|(p, _)| *p != pid);
    }

    /// Is the process (pid, pidversion) one of ours? A pending child's
    /// first event pins its pidversion.
    pub fn is_own(&mut self, pid: i64, pidversion: Option<i64>) -> bool {
        if self.this_pid == Some(pid) {
            return true;
        }
        let Some(pv) = pidversion else {
            // Without a pidversion only a pending child can be matched.
            return self.pending.contains(&pid);
        };
        if self.known.contains(&(pid, pv)) {
            return true;
        }
        if let Some(i) = self.pending.iter().position(|p| *p == pid) {
            self.pending.remove(i);
            self.remember(pid, pv);
            return true;
        }
        false
    }

    /// One of ours exec'd: the new image (new pidversion) is ours too.
    pub fn exec(&mut self, pid: i64, new_pidversion: Option<i64>) {
        if let Some(pv) = new_pidversion {
            self.remember(pid, pv);
        }
    }

    /// One of ours exited (ES exit event): forget that image.
    pub fn exited(&mut self, pid: i64, pidversion: Option<i64>) {
        match pidversion {
            Some(pv) => self.known.retain(|k| *k != (pid, pv)),
            None => self.known.retain(|(p, _)| *p != pid),
        }
    }

    fn remember(&mut self, pid: i64, pv: i64) {
        if self.known.contains(&(pid, pv)) {
            return;
        }
        if self.known.len() >= MAX_KNOWN {
            self.known.pop_front();
        }
        self.known.push_back((pid, pv));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_not_ours() {
        let mut own = OwnProcesses::default();
        own.set_self(100);
        assert!(own.is_own(100, Some(1)));
        own.child_started(200);
        // The child's first event pins its pidversion; its exec is ours too.
        assert!(own.is_own(200, Some(7)));
        own.exec(200, Some(8));
        assert!(own.is_own(200, Some(8)));
        // Another image with the same pid (reuse after exit) is not ours.
        assert!(!own.is_own(200, Some(9)));
        own.exited(200, Some(8));
        assert!(!own.is_own(200, Some(8)));
        // A reaped child that never produced an event: its pid is released.
        own.child_started(300);
        own.child_exited(300);
        assert!(!own.is_own(300, Some(1)));
        assert!(!own.is_own(300, None));
    }
}
