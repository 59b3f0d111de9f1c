//! `keychain-access selftest`: prove on a deployed Mac that the extension
//! turns the T1555.001 behaviours into alert rows, the way detection
//! engineers validate a fleet with Atomic Red Team.
//!
//! The run, as root (like the extension):
//! 1. registers itself with the extension (the protocol and the mark the
//!    extension puts on its rows are in the library's `selftest` module);
//! 2. creates a throwaway keychain inside the user's Keychains folder (so it
//!    is keychain material) with one item, both with random secrets;
//! 3. runs the atomic behaviours against that keychain only: `security
//!    dump-keychain -d`, `security find-generic-password -w` and a `cp` of
//!    the keychain to a private temporary folder (Atomic Red Team
//!    T1555.001 tests 1 and 4, and the password read of `-w`);
//! 4. waits for an alert row of each in the live buffer, until a deadline;
//! 5. reports per behaviour, and cleans up (keychain, copy, registration).
//!
//! The macOS part is only which tools run; the rest (registration, matching
//! rows to behaviours, the report) runs and is tested anywhere
//! (`--tools-dir` points at stand-ins in tests, as the extension's config
//! points at a fake eslogger).

use anyhow::{anyhow, Context};
use keychain_access_extension::selftest::{
    now_unix, registration_dir, trusted_dir, Registration, RELOAD_EVERY,
};
use keychain_access_tables::schema::{Action, Severity};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One atomic behaviour the self-test performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `security dump-keychain -d KEYCHAIN` (Atomic Red Team T1555.001 #1).
    DumpKeychain,
    /// `security find-generic-password -w KEYCHAIN` (no item named).
    FindPassword,
    /// `cp KEYCHAIN TMPDIR/` (Atomic Red Team T1555.001 #4 copies it away).
    CopyKeychain,
}

pub const BEHAVIOURS: &[Behaviour] = &[
    Behaviour::DumpKeychain,
    Behaviour::FindPassword,
    Behaviour::CopyKeychain,
];

impl Behaviour {
    pub fn label(self) -> &'static str {
        match self {
            Behaviour::DumpKeychain => "security dump-keychain -d",
            Behaviour::FindPassword => "security find-generic-password -w",
            Behaviour::CopyKeychain => "cp of the keychain to a temporary folder",
        }
    }

    /// Whether a marked row is this behaviour on the throwaway keychain.
    pub fn matches(self, row: &BufferRow, keychain: &Path) -> bool {
        let kc = keychain.to_string_lossy();
        let name = keychain
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let on_keychain = row
            .target_path
            .as_deref()
            .is_some_and(|t| t == kc || t.ends_with(&format!("/{name}")) || t == name);
        match self {
            Behaviour::DumpKeychain => row.action == Some(Action::DumpKeychain) && on_keychain,
            Behaviour::FindPassword => row.action == Some(Action::FindGenericPassword),
            Behaviour::CopyKeychain => {
                row.path.as_deref().is_some_and(|p| p.ends_with("/cp"))
                    && on_keychain
                    && row.event_type.as_deref() != Some("exec")
            }
        }
    }
}

/// The columns of a buffer row the self-test looks at.
#[derive(Debug, Clone, Default)]
pub struct BufferRow {
    pub eid: String,
    pub action: Option<Action>,
    pub event_type: Option<String>,
    pub path: Option<String>,
    pub target_path: Option<String>,
    pub severity: Option<Severity>,
    pub allowlisted: Option<i64>,
}

impl BufferRow {
    pub fn is_alert(&self) -> bool {
        self.severity.is_some_and(Severity::alerts) && self.allowlisted == Some(0)
    }
}

/// The rows of the live buffer marked with this run's nonce (read-only).
pub fn marked_rows(database: &Path, reg: &Registration) -> anyhow::Result<Vec<BufferRow>> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| anyhow!("opening the buffer {}: {e}", database.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| anyhow!("{e}"))?;
    let mut stmt = conn
        .prepare(
            "SELECT eid, action, event_type, path, target_path, severity, allowlisted \
             FROM keychain_access_events WHERE substr(reason, -length(?1)) = ?1",
        )
        .map_err(|e| anyhow!("reading the buffer: {e}"))?;
    let rows = stmt
        .query_map([reg.mark()], |r| {
            Ok(BufferRow {
                eid: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                // A name outside the set (a buffer another version wrote)
                // is an error, not a row that silently matches nothing.
                action: r.get(1)?,
                event_type: r.get(2)?,
                path: r.get(3)?,
                target_path: r.get(4)?,
                severity: r.get(5)?,
                allowlisted: r.get(6)?,
            })
        })
        .map_err(|e| anyhow!("reading the buffer: {e}"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("reading the buffer: {e}"))
}

/// What became of one behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An alert row arrived after this long.
    Alert { after: Duration, eid: String },
    /// Rows arrived, none of them an alert (allowlisted, or low severity).
    NotAlert { eid: String, why: String },
    /// The command itself failed, so there was nothing to detect.
    NotRun(String),
    /// Nothing by the deadline.
    Missing,
}

/// Match marked rows to behaviours.
pub fn outcomes(
    rows: &[BufferRow],
    keychain: &Path,
    ran: &[(Behaviour, anyhow::Result<Instant>)],
    now: Instant,
) -> Vec<(Behaviour, Outcome)> {
    ran.iter()
        .map(|(b, started)| {
            let started = match started {
                Ok(t) => *t,
                Err(e) => return (*b, Outcome::NotRun(format!("{e:#}"))),
            };
            let mine: Vec<&BufferRow> = rows.iter().filter(|r| b.matches(r, keychain)).collect();
            let outcome = if let Some(r) = mine.iter().find(|r| r.is_alert()) {
                Outcome::Alert {
                    after: now.saturating_duration_since(started),
                    eid: r.eid.clone(),
                }
            } else if let Some(r) = mine.first() {
                Outcome::NotAlert {
                    eid: r.eid.clone(),
                    why: match r.allowlisted {
                        Some(1) => "allowlisted by the tuning".into(),
                        _ => format!("severity {}", r.severity.map_or("none", |s| s.as_str())),
                    },
                }
            } else {
                Outcome::Missing
            };
            (*b, outcome)
        })
        .collect()
}

/// The per-behaviour report, and whether every behaviour alerted.
pub fn report(outcomes: &[(Behaviour, Outcome)], deadline: Duration) -> (String, bool) {
    let mut s = String::new();
    let mut ok = true;
    for (b, o) in outcomes {
        let line = match o {
            Outcome::Alert { after, eid } => format!(
                "PASS  {}: alert row within {:.1}s (eid {eid})",
                b.label(),
                after.as_secs_f64()
            ),
            Outcome::NotAlert { eid, why } => {
                ok = false;
                format!(
                    "FAIL  {}: a row arrived but is not an alert: {why} (eid {eid})",
                    b.label()
                )
            }
            Outcome::NotRun(e) => {
                ok = false;
                format!("FAIL  {}: could not run: {e}", b.label())
            }
            Outcome::Missing => {
                ok = false;
                format!(
                    "FAIL  {}: no row within {}s: is eslogger running with Full Disk Access?",
                    b.label(),
                    deadline.as_secs()
                )
            }
        };
        s.push_str(&line);
        s.push('\n');
    }
    (s, ok)
}

#[derive(Debug, clap::Args)]
pub struct SelftestArgs {
    /// The extension's config (for the buffer path; default as the extension).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seconds to wait for each behaviour's alert row.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub deadline: u64,
    /// Where `security` and `cp` are (stand-ins in tests; default /usr/bin
    /// and /bin on macOS).
    #[arg(long, value_name = "DIR", hide = true)]
    pub tools_dir: Option<PathBuf>,
}

/// Random hex from the kernel's generator.
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes what the run created, whatever happens.
struct Cleanup {
    registration: Option<PathBuf>,
    keychain: Option<PathBuf>,
    copy_dir: Option<PathBuf>,
    security: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(kc) = &self.keychain {
            let _ = std::process::Command::new(&self.security)
                .arg("delete-keychain")
                .arg(kc)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            let _ = std::fs::remove_file(kc);
        }
        if let Some(d) = &self.copy_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some(r) = &self.registration {
            let _ = std::fs::remove_file(r);
        }
    }
}

/// How long one tool may run (a keychain prompt would wait forever).
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Run one tool with its output discarded unread (a `-w` password, the
/// dump never enter this process), killed if it outlives [`TOOL_TIMEOUT`].
fn run_tool(tool: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    use std::process::Stdio;
    let mut child = std::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| tool.display().to_string())?;
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(anyhow!("{} exited with {status}", tool.display())),
            Ok(None) if t0.elapsed() >= TOOL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!(
                    "{} did not finish within {}s (waiting for a prompt?)",
                    tool.display(),
                    TOOL_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(anyhow!("{}: {e}", tool.display())),
        }
    }
}

/// The home of the user whose keychains are tested: under `sudo`, the
/// invoking user's (`SUDO_USER`), else `HOME`.
fn user_home() -> anyhow::Result<PathBuf> {
    if let Some(user) = std::env::var_os("SUDO_USER") {
        use uzers::os::unix::UserExt;
        if let Some(u) = uzers::get_user_by_name(&user) {
            return Ok(u.home_dir().to_path_buf());
        }
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("HOME is not set: cannot find the user's Keychains folder"))
}

pub fn run(args: SelftestArgs) -> anyhow::Result<()> {
    let (security, cp) = match &args.tools_dir {
        Some(d) => {
            // Run as root: only tools nobody else could have put there.
            trusted_dir(d).context("--tools-dir")?;
            (d.join("security"), d.join("cp"))
        }
        None if cfg!(target_os = "macos") => ("/usr/bin/security".into(), "/bin/cp".into()),
        None => {
            return Err(anyhow!(
                "selftest runs on macOS, next to the running extension"
            ));
        }
    };
    let cfg = keychain_access_extension::ext::config::load(args.config.as_deref())?;
    let dir = registration_dir(&cfg.database);
    trusted_dir(&dir).map_err(|e| {
        anyhow!("{e}; is the extension running (it creates this folder), and is selftest run as its user (root)?")
    })?;
    let home = user_home()?;
    let keychains = home.join("Library/Keychains");
    if !keychains.is_dir() {
        return Err(anyhow!("{} does not exist", keychains.display()));
    }
    let nonce = random_hex(16)?;
    let reg = Registration {
        nonce: nonce.clone(),
        pid: i64::from(std::process::id()),
        started: now_unix(),
    };
    let mut cleanup = Cleanup {
        registration: None,
        keychain: None,
        copy_dir: None,
        security: security.clone(),
    };
    // 1. Register (create-new, 0600, no symlink following).
    let reg_path = dir.join(format!("{nonce}.json"));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&reg_path)
            .with_context(|| format!("registering in {}", dir.display()))?;
        cleanup.registration = Some(reg_path.clone());
        f.write_all(&serde_json::to_vec(&reg)?)
            .context("registering")?;
    }
    crate::cli::print_stdout(&format!(
        "keychain-access selftest: run {nonce} (pid {})\n",
        reg.pid
    ))?;
    // Let the extension see the registration before the first behaviour.
    std::thread::sleep(RELOAD_EVERY + Duration::from_millis(200));
    // 2. The throwaway keychain and its item, with random secrets.
    let keychain = keychains.join(format!("kca-selftest-{}.keychain-db", &nonce[..12]));
    let service = format!("kca-selftest-{}", &nonce[..12]);
    let kc_password = random_hex(16)?;
    let item_password = random_hex(16)?;
    let os = |s: &str| std::ffi::OsString::from(s);
    cleanup.keychain = Some(keychain.clone());
    run_tool(
        &security,
        &[
            &os("create-keychain"),
            &os("-p"),
            &os(&kc_password),
            keychain.as_os_str(),
        ],
    )
    .context("creating the throwaway keychain")?;
    run_tool(
        &security,
        &[
            &os("add-generic-password"),
            // Any application may read it: no prompt stalls the run.
            &os("-A"),
            &os("-a"),
            &os("selftest"),
            &os("-s"),
            &os(&service),
            &os("-w"),
            &os(&item_password),
            keychain.as_os_str(),
        ],
    )
    .context("adding the throwaway item")?;
    // Unlocked, so the dump and the read do not prompt.
    let _ = run_tool(
        &security,
        &[
            &os("unlock-keychain"),
            &os("-p"),
            &os(&kc_password),
            keychain.as_os_str(),
        ],
    );
    let copy_dir = std::env::temp_dir().join(format!("kca-selftest-{nonce}"));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&copy_dir)
            .with_context(|| format!("creating {}", copy_dir.display()))?;
    }
    cleanup.copy_dir = Some(copy_dir.clone());
    // 3. The behaviours.
    let mut ran = Vec::new();
    for b in BEHAVIOURS {
        let started = Instant::now();
        let result = match b {
            Behaviour::DumpKeychain => run_tool(
                &security,
                &[&os("dump-keychain"), &os("-d"), keychain.as_os_str()],
            ),
            Behaviour::FindPassword => run_tool(
                &security,
                // No service or account named: reveal whatever item the
                // keychain holds first (the throwaway keychain holds only
                // ours), the shape of a stealer's blind `-w`. A named item
                // would be the shape of a credential library reading its own
                // service, which the detection rows at `low` by design.
                &[
                    &os("find-generic-password"),
                    &os("-w"),
                    keychain.as_os_str(),
                ],
            ),
            Behaviour::CopyKeychain => run_tool(&cp, &[keychain.as_os_str(), copy_dir.as_os_str()]),
        };
        ran.push((*b, result.map(|()| started)));
    }
    // 4. Wait for the rows.
    let deadline = Duration::from_secs(args.deadline.max(1));
    let t0 = Instant::now();
    let results = loop {
        let rows = marked_rows(&cfg.database, &reg)?;
        let now = Instant::now();
        let got = outcomes(&rows, &keychain, &ran, now);
        let done = got
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Alert { .. } | Outcome::NotRun(_)));
        if done || t0.elapsed() >= deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    // 5. Report; the cleanup guard removes the keychain, copy and registration.
    let (text, ok) = report(&results, deadline);
    drop(cleanup);
    crate::cli::print_stdout(&text)?;
    if ok {
        crate::cli::print_stdout(&format!(
            "keychain-access selftest: every behaviour raised an alert row (marked with run {nonce})\n"
        ))
    } else {
        Err(anyhow!(
            "selftest: {} of {} behaviour(s) did not raise an alert row",
            results
                .iter()
                .filter(|(_, o)| !matches!(o, Outcome::Alert { .. }))
                .count(),
            results.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, path: &str, target: &str, event: &str, sev: &str) -> BufferRow {
        BufferRow {
            eid: format!("e-{action}-{event}"),
            action: Some(action.parse().expect("a known action")),
            event_type: Some(event.into()),
            path: Some(path.into()),
            target_path: Some(target.into()),
            severity: Some(sev.parse().expect("a known severity")),
            allowlisted: Some(0),
        }
    }

    #[test]
    fn rows_are_matched_to_behaviours_and_reported() {
        let kc = Path::new("/Users/a/Library/Keychains/kca-selftest-0123456789ab.keychain-db");
        let t = Instant::now();
        let ran: Vec<(Behaviour, anyhow::Result<Instant>)> =
            BEHAVIOURS.iter().map(|b| (*b, Ok(t))).collect();
        let rows = vec![
            row(
                "dump_keychain",
                "/usr/bin/security",
                kc.to_str().unwrap(),
                "exec",
                "high",
            ),
            // Another keychain's dump is not this behaviour.
            row(
                "dump_keychain",
                "/usr/bin/security",
                "/Users/a/Library/Keychains/login.keychain-db",
                "exec",
                "high",
            ),
            row(
                "find_generic_password",
                "/usr/bin/security",
                "",
                "exec",
                "low",
            ),
        ];
        let got = outcomes(&rows, kc, &ran, t + Duration::from_millis(1500));
        assert!(matches!(got[0].1, Outcome::Alert { .. }), "{got:?}");
        assert!(matches!(got[1].1, Outcome::NotAlert { .. }), "{got:?}");
        assert_eq!(got[2].1, Outcome::Missing);
        let (text, ok) = report(&got, Duration::from_secs(30));
        assert!(!ok);
        assert!(text.contains("PASS  security dump-keychain -d: alert row within 1.5s"));
        assert!(text.contains("FAIL  security find-generic-password -w: a row arrived but is not an alert: severity low"));
        assert!(text.contains("FAIL  cp of the keychain to a temporary folder: no row within 30s"));
    }
}
