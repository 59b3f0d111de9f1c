//! The self-test protocol, the extension's side: where a
//! `keychain-access selftest` run registers (a file `<nonce>.json`, 0600,
//! created new, never through a symlink, in the `selftest` folder beside the
//! buffer database, holding its pid and a per-run random nonce), and the
//! mark the extension appends to the `reason` of every row whose process is
//! the registered run or its descendant:
//! `; keychain-access self-test run <nonce> (process tree of pid <pid>)`.
//!
//! Self-test alerts reach the SOC from every Mac that runs it, so they carry
//! this mark. It rests on what an attacker cannot copy: the self-test's own
//! process tree (a stealer is not its child) and a nonce known only to the
//! run and the extension (a root-owned 0600 file). A keychain name proves
//! nothing: any stealer can reuse it.
//!
//! The command that registers and runs the behaviours is the CLI's
//! (`selftest_run.rs` of the `keychain-access` binary).

use keychain_access_tables::procs::ProcessCache;
use keychain_access_tables::KeychainAccess;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A folder the self-test protocol may not trust.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedDir {
    #[error("{}: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("creating {}: {error}", path.display())]
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} must be owned by uid {uid} and not group/other-writable", path.display())]
    Open { path: PathBuf, uid: u32 },
}

/// The text the extension appends to a self-test row's `reason`.
pub const MARK_PREFIX: &str = "; keychain-access self-test run ";

/// A registration is ignored after this long (a crashed run's leftover).
const REGISTRATION_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// How often the extension rereads the registration folder.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Where runs register: `selftest/` beside the buffer database.
pub fn registration_dir(database: &Path) -> PathBuf {
    database
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("selftest")
}

/// One self-test run, as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub nonce: String,
    pub pid: i64,
    /// Unix seconds.
    pub started: i64,
}

impl Registration {
    pub fn mark(&self) -> String {
        format!(
            "{MARK_PREFIX}{} (process tree of pid {})",
            self.nonce, self.pid
        )
    }
}

/// Now, in Unix seconds (0 before 1970).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn alive(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only checks that the process exists; EPERM means it exists
    // under another user.
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// A folder we may trust: a real directory (not a symlink), ours, not
/// writable by group or others.
pub fn trusted_dir(dir: &Path) -> Result<(), UntrustedDir> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir).map_err(|error| UntrustedDir::Unreadable {
        path: dir.to_path_buf(),
        error,
    })?;
    if !m.file_type().is_dir() {
        return Err(UntrustedDir::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if m.uid() != euid() || m.mode() & 0o022 != 0 {
        return Err(UntrustedDir::Open {
            path: dir.to_path_buf(),
            uid: euid(),
        });
    }
    Ok(())
}

/// Create the registration folder (0700) if missing; the extension does
/// this at start.
pub fn ensure_registration_dir(database: &Path) -> Result<PathBuf, UntrustedDir> {
    let dir = registration_dir(database);
    match std::fs::symlink_metadata(&dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|error| UntrustedDir::Create {
                    path: dir.clone(),
                    error,
                })?;
        }
        Err(error) => return Err(UntrustedDir::Unreadable { path: dir, error }),
    }
    trusted_dir(&dir)?;
    Ok(dir)
}

/// The registrations in `dir` the extension trusts: regular files (never
/// symlinks) owned by its own uid, not writable by others, young, of a
/// process still alive.
fn load_registrations(dir: &Path) -> Vec<Registration> {
    use std::os::unix::fs::MetadataExt;
    if trusted_dir(dir).is_err() {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = now_unix();
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if !m.file_type().is_file() || m.uid() != euid() || m.mode() & 0o022 != 0 || m.len() > 4096
        {
            continue;
        }
        let Some(reg) = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Registration>(&b).ok())
        else {
            continue;
        };
        let fresh = now.saturating_sub(reg.started) <= REGISTRATION_MAX_AGE.as_secs() as i64;
        let named = p.file_stem().and_then(|s| s.to_str()) == Some(reg.nonce.as_str());
        if fresh && named && valid_nonce(&reg.nonce) && alive(reg.pid) {
            out.push(reg);
        }
    }
    out
}

fn valid_nonce(n: &str) -> bool {
    n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The extension's side: marks rows of registered self-test runs.
pub struct Marks {
    dir: PathBuf,
    loaded: Option<Instant>,
    runs: Vec<Registration>,
}

impl Marks {
    pub fn new(dir: PathBuf) -> Marks {
        Marks {
            dir,
            loaded: None,
            runs: Vec::new(),
        }
    }

    /// Mark the rows whose process is a registered run or its descendant.
    pub fn mark(&mut self, rows: &mut [KeychainAccess], cache: &ProcessCache) {
        if rows.is_empty() {
            return;
        }
        let due = match self.loaded {
            Some(t) => t.elapsed() >= RELOAD_EVERY,
            None => true,
        };
        if due {
            let runs = load_registrations(&self.dir);
            for r in &runs {
                if !self.runs.iter().any(|o| o.nonce == r.nonce) {
                    log::info!(
                        "self-test run {} registered by pid {}: its rows are marked",
                        r.nonce,
                        r.pid
                    );
                }
            }
            self.runs = runs;
            self.loaded = Some(Instant::now());
        }
        for run in &self.runs {
            for row in rows.iter_mut() {
                if in_process_tree(row, run.pid, cache) {
                    let mark = run.mark();
                    let reason = row.reason.get_or_insert_with(String::new);
                    if !reason.ends_with(&mark) {
                        reason.push_str(&mark);
                    }
                }
            }
        }
    }
}

/// Whether the row's process is `root` or descends from it: its parent
/// pid, then its ancestors as the process cache knows them.
pub fn in_process_tree(row: &KeychainAccess, root: i64, cache: &ProcessCache) -> bool {
    if row.pid == Some(root) || row.ppid == Some(root) {
        return true;
    }
    let (Some(pid), Some(pv)) = (row.pid, row.pidversion) else {
        return false;
    };
    cache
        .get((pid, pv))
        .map(|p| cache.ancestors(p, 32).iter().any(|a| a.pid == root))
        .unwrap_or(false)
}
