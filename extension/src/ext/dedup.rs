//! One row per access when eslogger and osquery's ES tables both run.
//!
//! The two sources are separate Endpoint Security clients: their sequence
//! numbers differ, osquery keeps no `mach_time`, and its `time` is the
//! second osquery stored the event, not the event's own. So the row ids
//! differ and the key is what both sources say about the access itself:
//! the event type, the acting pid, the action, the file and the
//! destination, within a few seconds of each other. The first source to
//! deliver an access keeps its row; the other's is dropped and counted.

use keychain_access_tables::KeychainAccess;
use std::collections::{HashMap, VecDeque};

/// How far apart the two sources' times of one access may be (osquery
/// stores events when its subscriber receives them, usually within a second).
pub const WINDOW_SECONDS: i64 = 5;
/// Keys remembered (the newest).
pub const CAPACITY: usize = 8192;

pub struct CrossSourceDedup {
    /// Per source index: which side it is on (None: not an ES source).
    sides: Vec<Option<u8>>,
    seen: HashMap<String, (u8, i64)>,
    order: VecDeque<String>,
    pub dropped: u64,
}

/// The key both sources agree on.
pub fn key(r: &KeychainAccess) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        r.event_type.as_deref().unwrap_or(""),
        r.pid.unwrap_or(-1),
        r.action.map_or("", |a| a.as_str()),
        r.target_path.as_deref().unwrap_or(""),
        r.destination_path.as_deref().unwrap_or(""),
    )
}

impl CrossSourceDedup {
    pub fn new(sides: Vec<Option<u8>>) -> Self {
        CrossSourceDedup {
            sides,
            seen: HashMap::new(),
            order: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Drop from `rows` (all from `source`) those the other side already
    /// delivered; remember the rest. Returns how many dropped rows were
    /// alerts (the source's `alerts` counts stored rows).
    pub fn filter(&mut self, source: usize, rows: &mut Vec<KeychainAccess>) -> u64 {
        let Some(side) = self.sides.get(source).copied().flatten() else {
            return 0;
        };
        let mut dropped_alerts = 0;
        rows.retain(|r| {
            if r.source.as_deref() != Some("esf") {
                return true;
            }
            let k = key(r);
            let t = r.time.unwrap_or(0);
            if let Some(&(other, seen_t)) = self.seen.get(&k) {
                if other != side && (t - seen_t).abs() <= WINDOW_SECONDS {
                    self.dropped += 1;
                    dropped_alerts += u64::from(r.is_alert());
                    return false;
                }
            }
            if self.seen.insert(k.clone(), (side, t)).is_none() {
                self.order.push_back(k);
                if self.order.len() > CAPACITY {
                    if let Some(old) = self.order.pop_front() {
                        self.seen.remove(&old);
                    }
                }
            }
            true
        });
        dropped_alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keychain_access_tables::schema::{Action, Severity};

    fn row(t: i64, pid: i64, target: &str) -> KeychainAccess {
        KeychainAccess {
            time: Some(t),
            source: Some("esf".into()),
            event_type: Some("open".into()),
            pid: Some(pid),
            action: Some(Action::KeychainRead),
            target_path: Some(target.into()),
            ..Default::default()
        }
    }

    #[test]
    fn one_row_per_access_across_sources_only() {
        let mut d = CrossSourceDedup::new(vec![Some(0), None, Some(1)]);
        let k = "/Users/a/Library/Keychains/login.keychain-db";
        let mut a = vec![row(100, 7, k), row(100, 8, k)];
        d.filter(0, &mut a);
        assert_eq!(a.len(), 2);
        // osquery's copy of pid 7's access, a second later: dropped; pid 9
        // is another access; pid 8 far later is another access too.
        let mut b = vec![row(101, 7, k), row(101, 9, k), row(200, 8, k)];
        b[0].severity = Some(Severity::High);
        b[0].allowlisted = Some(0);
        assert_eq!(d.filter(2, &mut b), 1);
        assert_eq!(b.iter().map(|r| r.pid.unwrap()).collect::<Vec<_>>(), [9, 8]);
        assert_eq!(d.dropped, 1);
        // Repeats within one source are not this filter's business (the
        // buffer's unique eid handles exact repeats).
        let mut c = vec![row(100, 7, k)];
        d.filter(0, &mut c);
        assert_eq!(c.len(), 1);
        // A source outside both sides passes untouched.
        let mut u = vec![row(101, 7, k)];
        d.filter(1, &mut u);
        assert_eq!(u.len(), 1);
    }
}
