//! The classifier: normalised Endpoint Security events in, keychain-access
//! rows out. It decides what a row says (a `Finding`: action, severity,
//! reason, target, flags); [`crate::normalise`] fills the actor and
//! enrichment columns, as it does for unified-log rows.
//!
//! What is a row: the process that does the access — a `security` exec, a
//! known tool's exec, or a file event (read, copy, move, staged create,
//! delete) on keychain material — never the shell that launched it (the
//! shell's string shows in `parent_cmdline`). Every `security` exec is a
//! row, harmless verbs included, so a responder sees the whole story. The
//! keychain subsystem's own constant access (securityd, secd, trustd and
//! their kin, identified by Apple platform signing id) is not a row; it is
//! counted.
//!
//! Severity rules (documented in the README, "Severity" and "Reader
//! model", tested below and by the field corpus in tests/field/):
//! * `medium`: what reveals or exports secrets (`dump-keychain -d`/`-r`,
//!   `find-*-password -g`/`-w` of another program's high-value item or of
//!   no named item, private-key `export`), `security -i` unless a signed
//!   program runs it, known tools, and reads, copies or moves of keychain
//!   material outside the legitimate shapes of the behaviour models.
//! * `high`: the above plus what makes theft likely: material leaving its
//!   live location, a staging path, an unsigned or ad-hoc actor or parent,
//!   an interpreter or osascript within `interpreter_depth` ancestors, a
//!   fetched script, a browser "Safe Storage" or Wi-Fi item, SystemKey,
//!   known tools.
//! * `low`: the behaviour models' legitimate shapes (the keychain API's
//!   in-process read by signed apps, one named item of a tool's own
//!   service, `security -i` run by a signed program, mirror backups to a
//!   declared destination), public certificates, routine verbs that change
//!   or unlock keychains, attribute-only queries, deletes.
//! * `info`: listing verbs (`list-keychains`, `find-identity`) and other
//!   `security` verbs.
//!
//! The alert is `severity IN ('medium','high') AND allowlisted = 0`.

use crate::es::{AuditToken, EsEvent, EsMessage, FREAD, FWRITE};
use crate::material::{self, Material, MaterialKind};
use crate::model::is_interpreter;
use crate::model::{
    acts_for_others, interprets, is_exec_wrapper, is_hostile_interpreter, mirrors_live_location,
    raw_reader, runs_downloaded_script, BoundedMap, API_CLI_TOOLS, SHORT_FACTS_CAPACITY,
};
use crate::normalise::{Actor, EventFacts, Flags};
use crate::procs::{ProcInfo, ProcessCache, Signer};
use crate::schema::{Action, KeychainAccess, Severity};
use crate::security_cli::{self, SecurityInvocation};
use crate::text::{basename, join_args, join_path, sanitize, truncate, Fnv64};
use crate::tree_secrets::TreeSecrets;
use crate::tuning::{Facts, Tuning, What};
use std::sync::Arc;

/// Command lines in rows are capped at this many bytes.
pub const ROW_CMDLINE_MAX: usize = 16 * 1024;
/// Command lines kept in the process cache are capped at this many bytes.
pub const CACHE_CMDLINE_MAX: usize = 2 * 1024;
pub use crate::procs::MAX_ANCESTORS;

/// Apple platform signing ids of the keychain subsystem: their access to
/// keychain files is the keychain working, not theft. `com.apple.security`
/// (the `security` tool) is here because its file access is already
/// described by its exec row.
pub const KEYCHAIN_SUBSYSTEM: &[&str] = &[
    "com.apple.securityd",
    "com.apple.secd",
    "com.apple.trustd",
    "com.apple.trustdFileHelper",
    "com.apple.security.XPCKeychainSandboxCheck",
    "com.apple.security.cloudkeychainproxy3",
    "com.apple.CloudKeychainProxy",
    "com.apple.security.KeychainStasher",
    "com.apple.securityuploadd",
    "com.apple.sbd",
    "com.apple.ctkd",
    "com.apple.ctkahp",
    "com.apple.authd",
    "com.apple.SecurityAgent",
    "com.apple.coreauthd",
    "com.apple.TrustedPeersHelper",
    "com.apple.keychainsharingmessagingd",
    "com.apple.accountsd",
    "com.apple.akd",
    "com.apple.security",
];

/// Whether the process's command line names the keychain file it opens,
/// or the folder holding it (`shove login.keychain-db dst`, `-srcfolder
/// ~/Library/Keychains`).
fn names_on_command_line(p: &ProcInfo, target: &str) -> bool {
    let Some(cmd) = p.cmdline.as_deref() else {
        return false;
    };
    let folder = target
        .rsplit_once('/')
        .map(|(d, _)| d)
        .filter(|d| d.len() > 1);
    cmd.split_whitespace().skip(1).any(|w| {
        let w = w
            .trim_matches(|c| c == '\'' || c == '"')
            .trim_end_matches('/');
        let w = w.split_once('=').map_or(w, |(_, v)| v);
        !w.is_empty() && (w == target || Some(w) == folder)
    })
}

/// Browser "Safe Storage" items and browser names used as item names.
fn is_browser_item(v: &str) -> bool {
    let l = v.to_ascii_lowercase();
    if l.contains("safe storage") {
        return true;
    }
    const BROWSERS: &[&str] = &[
        "chrome",
        "chromium",
        "google chrome",
        "brave",
        "brave browser",
        "opera",
        "microsoft edge",
        "edge",
        "vivaldi",
        "arc",
        "yandex",
        "firefox",
        "safari",
    ];
    BROWSERS.contains(&l.as_str())
}

/// The legitimate shape a behaviour model recognises (see the README,
/// "Reader model").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    /// A read-only open of a live file keychain: the Security.framework
    /// keychain API reads file keychains in the client process.
    ApiRead,
    /// `security -i`: judged by who drives it.
    Interactive,
    /// Keychain files mirrored to a declared backup destination.
    MirrorBackup,
    /// The password of one named item that is no other program's
    /// high-value secret (go-keyring's `-s SERVICE -wa USER`): judged by
    /// what is read, unless the driver is plainly hostile.
    NamedItem,
    /// A read-only open of a mounted copy of a live keychain (a backup or
    /// APFS snapshot keeping the live path below its mount point) by signed
    /// code that is not a raw reader: backup tools read their snapshots.
    MirrorRead,
    /// A browser's Safe Storage key read by a signed app's own helper run
    /// directly (no shell): a password manager importing browser passwords
    /// (Keeper's helper runs `security find-generic-password -wa Chrome`).
    BrowserImport,
}

/// Counters of what the classifier saw and why it made no row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClassifyCounters {
    pub execs: u64,
    pub file_events: u64,
    pub subsystem_access: u64,
    pub root_certificate_reads: u64,
    pub keychain_folder_creates: u64,
    pub keychain_closes: u64,
    /// Temporary files renamed over a live keychain (the API's in-place
    /// update, Apple's AtomicFile).
    pub keychain_updates: u64,
    /// Rowed `security`/tool processes that exited non-zero (attempted) or
    /// zero (succeeded), from exit events.
    pub accesses_failed: u64,
    pub accesses_succeeded: u64,
    pub ignored_own_events: u64,
    pub rows: u64,
    /// Command lines cut at [`ROW_CMDLINE_MAX`] and ancestor lists cut at
    /// [`MAX_ANCESTORS`] (a resource bound, counted).
    pub field_caps: u64,
}

/// Classifier state: the process cache and the tuning.
pub struct Classifier {
    pub cache: ProcessCache,
    pub tuning: Tuning,
    pub counters: ClassifyCounters,
    /// Processes whose events are ignored (the extension and its eslogger
    /// child), by pid + pidversion.
    pub own: crate::own_procs::OwnProcesses,
    /// Secrets seen in each process tree, scrubbed from later rows.
    pub tree_secrets: TreeSecrets,
    /// Paths that received keychain material under another name.
    derived: BoundedMap<String, MaterialKind>,
    /// Exec'd processes that made a row, until their exit.
    rowed: BoundedMap<(i64, i64), ()>,
    /// A `tmutil setdestination` command line seen in this stream.
    tm_destination_set: Option<String>,
    derived_version: u64,
}

/// The source-specific context of one event.
struct EventCtx<'a> {
    msg: &'a EsMessage<'a>,
    name: &'static str,
}

/// What the classifier decided about one access.
struct Finding {
    action: Action,
    target: Option<String>,
    destination: Option<String>,
    keychain_dump: bool,
    password_query: bool,
    cert_export: bool,
    reveals: bool,
    base: Severity,
    reasons: Vec<String>,
    high_reasons: Vec<String>,
    verb: Option<&'static str>,
    /// Item names the row carries (for rules that excuse by what).
    items: Vec<String>,
    /// Other software's high-value secrets, everything, or hidden commands.
    high_value: bool,
    model: Option<Model>,
}

impl Finding {
    fn new(action: Action, base: Severity, reason: impl Into<String>) -> Self {
        Finding {
            action,
            target: None,
            destination: None,
            keychain_dump: false,
            password_query: false,
            cert_export: false,
            reveals: false,
            base,
            reasons: vec![reason.into()],
            high_reasons: Vec::new(),
            verb: None,
            items: Vec::new(),
            high_value: false,
            model: None,
        }
    }
}

impl Classifier {
    pub fn new(tuning: Tuning, cache_capacity: usize) -> Self {
        Classifier {
            cache: ProcessCache::new(cache_capacity),
            tuning,
            counters: ClassifyCounters::default(),
            own: Default::default(),
            tree_secrets: TreeSecrets::new(cache_capacity),
            derived: BoundedMap::new(SHORT_FACTS_CAPACITY),
            rowed: BoundedMap::new(SHORT_FACTS_CAPACITY),
            tm_destination_set: None,
            derived_version: 0,
        }
    }

    /// Remember that `dest` now holds keychain material.
    fn derive(&mut self, dest: &str, m: Material) {
        if material::classify(dest).is_none() && self.derived.get(dest).is_none() {
            self.derived.insert(dest.to_string(), m.kind);
            self.derived_version += 1;
        }
    }

    fn forget_derived(&mut self, path: &str) {
        if self.derived.remove(&path.to_string()).is_some() {
            self.derived_version += 1;
        }
    }

    /// Changes whenever a file receives keychain material under another
    /// name (0: none yet).
    pub fn derived_version(&self) -> u64 {
        self.derived_version
    }

    /// The base names of the files that received keychain material under
    /// another name (what a byte-level prefilter must let through).
    pub fn derived_names(&self) -> impl Iterator<Item = &str> {
        self.derived.keys().map(basename)
    }

    /// The reader model: whether this actor's read-only open of a live
    /// file keychain has the keychain API's shape (the driver was already
    /// found clean). `None` names nothing: the read stays `medium`.
    fn api_read_shape(
        &self,
        actor: &ProcInfo,
        parent: Option<&ProcInfo>,
        target: Option<&str>,
    ) -> Option<String> {
        let model = &self.tuning.model;
        if !model.reader_model || !actor.has_code_identity() {
            return None;
        }
        if raw_reader(actor, &model.extra_raw_readers).is_some() || acts_for_others(actor) {
            return None;
        }
        // Apple's own API users are apps and daemons launchd starts; Apple
        // code run from a shell or script is a tool doing what it is told
        // (a file copier in a framework's Resources, PlistBuddy, ...),
        // unless it is one of the command-line API users.
        // The same holds for Apple code outside the OS (the Command Line
        // Tools' swift-frontend interpreting a script).
        let name = basename(&actor.path).to_ascii_lowercase();
        let apple = actor.platform_binary || actor.signer == Some(Signer::Apple);
        if apple
            && !API_CLI_TOOLS.contains(&name.as_str())
            && parent.is_some_and(|p| raw_reader(p, &model.extra_raw_readers).is_some())
        {
            return None;
        }
        // The API finds keychains through the search list; a program told
        // on its command line which keychain file (or Keychains folder) to
        // open is a tool doing what it is told, whoever started it (a
        // LaunchAgent running an Apple file copier), unless it is one of
        // the command-line API users that take a keychain argument.
        if !API_CLI_TOOLS.contains(&name.as_str())
            && target.is_some_and(|t| names_on_command_line(actor, t))
        {
            return None;
        }
        let who = match (&actor.team_id, actor.platform_binary) {
            (_, true) => "Apple".to_string(),
            (Some(t), _) => format!("team {}", short(t)),
            (None, _) => "Apple".to_string(),
        };
        Some(format!(
            "read-only open by a signed app ({who}): the keychain API reads file keychains in-process"
        ))
    }

    /// Keychain files mirrored by signed code to a declared backup
    /// destination, keeping their live path below it.
    fn mirror_backup_shape(&self, actor: &ProcInfo, dest: Option<&str>) -> Option<String> {
        let dest = dest?;
        if !actor.has_code_identity() {
            return None;
        }
        if raw_reader(actor, &self.tuning.model.extra_raw_readers).is_some() {
            return None;
        }
        let declared = self
            .tuning
            .model
            .backup_destinations
            .iter()
            .any(|p| crate::tuning::wildcard(p, dest));
        let mirrors = mirrors_live_location(dest);
        if !declared || !mirrors {
            return None;
        }
        let is_backupd = actor
            .signing_id
            .as_deref()
            .is_some_and(|s| s.starts_with("com.apple.backupd"));
        if is_backupd && self.tm_destination_set.is_some() {
            return None;
        }
        Some("mirrored below a declared backup destination by signed backup code".into())
    }

    /// Handle one parsed message, appending any rows to `out`.
    pub fn handle(&mut self, msg: &EsMessage<'_>, ev: &EsEvent, out: &mut Vec<KeychainAccess>) {
        let ctx = EventCtx {
            msg,
            name: ev.name(),
        };
        let actor_tok: AuditToken = msg.process.audit_token.into();
        if self.own.is_own(actor_tok.pid, actor_tok.pidversion) {
            self.counters.ignored_own_events += 1;
            match ev {
                EsEvent::Exec(exec) => {
                    let image = ProcInfo::from_es(&exec.target);
                    self.own.exec(image.pid, Some(image.pidversion));
                }
                EsEvent::Exit(_) => self.own.exited(actor_tok.pid, actor_tok.pidversion),
                _ => {}
            }
            return;
        }
        match ev {
            EsEvent::Exec(exec) => {
                self.counters.execs += 1;
                let mut info = ProcInfo::from_es(&exec.target);
                let script = exec.script.as_ref().map(|s| s.path.as_str());
                let redacted = crate::tree_secrets::redact_exec_and_remember(
                    &self.cache,
                    &mut self.tree_secrets,
                    &info,
                    exec,
                    &self.tuning.redaction,
                );
                let full = sanitize(&join_args(&redacted)).into_owned();
                let (row_cmd, cut) = truncate(full.clone(), ROW_CMDLINE_MAX);
                if cut {
                    self.counters.field_caps += 1;
                }
                let (cache_cmd, _) = truncate(full, CACHE_CMDLINE_MAX);
                info.cwd = exec.cwd.as_ref().map(|c| sanitize(&c.path).into_owned());
                info.cmdline = Some(cache_cmd);
                info.runs_as_node = exec.runs_as_node;
                // Ancestry is recorded now: the image that really spawned
                // this one is what a fork event recorded for the pre-exec
                // image, else the image the parent token names now.
                let pre_es = ProcInfo::from_es(&msg.process);
                let pre_key = pre_es.key();
                let pre_cached = self
                    .cache
                    .get_arc(pre_key)
                    .filter(|_| pre_key != info.key());
                let forked = match &pre_cached {
                    Some(pre) if pre.fork_linked => pre.spawned_by.clone(),
                    _ => None,
                };
                info.fork_linked = forked.is_some();
                let spawner = forked.or_else(|| {
                    // Without fork events: the pre-exec image of a forked
                    // child still runs the image it was forked from. When
                    // the parent pid has since exec'd something else (its
                    // token names the new image), the image it replaced is
                    // the real spawner. pidversions come from one counter
                    // the kernel bumps at fork and at exec, so a child
                    // forked before the parent's exec has the smaller one.
                    let parent = self.cache.parent_by_token(&info)?;
                    match &parent.replaced {
                        Some(prior)
                            if pre_cached.is_none()
                                && pre_es.pid != parent.pid
                                && prior.pidversion < pre_es.pidversion
                                && pre_es.pidversion < parent.pidversion
                                && pre_es.path != parent.path
                                && prior.path == pre_es.path
                                && (prior.cdhash.is_none() || prior.cdhash == pre_es.cdhash) =>
                        {
                            Some(Arc::clone(prior))
                        }
                        _ => Some(parent),
                    }
                });
                if let Some(sp) = &spawner {
                    info.link_to(sp);
                }
                // Remember the image this exec replaced (one level).
                info.replaced = Some(match pre_cached {
                    Some(pre) if pre.replaced.is_none() => pre,
                    Some(pre) => {
                        let mut light = ProcInfo::clone(&pre);
                        light.replaced = None;
                        Arc::new(light)
                    }
                    None => Arc::new(pre_es),
                });
                if pre_key != info.key() {
                    self.cache.remove_replaced(pre_key);
                }
                self.note_exec(&info, &exec.args);
                self.cache.insert(info.clone());
                self.cache.touch(info.key());
                info.cmdline = Some(row_cmd);
                // Classified on the redacted argv: same getopt structure
                // (a redacted word keeps its option prefix), so no secret
                // reaches target_path or a reason.
                if let Some(f) = classify_exec(&info, &redacted, script) {
                    self.emit(&ctx, &info, f, out);
                }
            }
            EsEvent::Fork(fork) => {
                // A forked child runs its parent's image until it execs; it
                // is linked to that image as it is now.
                let mut child = ProcInfo::from_es(&fork.child);
                let parent_key = ProcInfo::from_es(&msg.process).key();
                let parent = self
                    .cache
                    .get_arc(parent_key)
                    .or_else(|| self.cache.parent_by_token(&child));
                if let Some(parent) = parent {
                    child.cmdline = parent.cmdline.clone();
                    child.cwd = parent.cwd.clone();
                    child.link_to(&parent);
                    child.fork_linked = true;
                }
                self.cache.insert(child);
                self.cache.touch(parent_key);
            }
            EsEvent::Exit(exit) => {
                let key = actor_tok.key();
                if self.rowed.remove(&key).is_some() {
                    // The exit status says whether the access it made
                    // succeeded (security(1) exits non-zero when the item
                    // is not found or access is denied).
                    if exit.stat.unwrap_or(0) != 0 {
                        self.counters.accesses_failed += 1;
                    } else {
                        self.counters.accesses_succeeded += 1;
                    }
                }
                self.cache.remove(key);
            }
            other => {
                self.counters.file_events += 1;
                let actor = self.actor_info(&msg.process);
                self.cache.touch(actor.key());
                if is_subsystem(&actor) {
                    if file_event_touches_material(other) {
                        self.counters.subsystem_access += 1;
                    }
                    return;
                }
                if let Some(f) = self.classify_file(other) {
                    self.emit(&ctx, &actor, f, out);
                }
            }
        }
    }

    /// The acting process of a non-exec event, enriched from the cache.
    fn actor_info(&self, p: &crate::es::EsProcess) -> ProcInfo {
        let mut info = ProcInfo::from_es(p);
        if let Some(cached) = self.cache.get(info.key()) {
            info.cmdline = cached.cmdline.clone();
            info.cwd = cached.cwd.clone();
            info.spawned_by = cached.spawned_by.clone();
            info.link_depth = cached.link_depth;
            info.runs_as_node = cached.runs_as_node;
            // An event without code-signing fields (osquery's file events)
            // takes them from the image the process exec'd.
            if info.signer.is_none() && info.signing_id.is_none() {
                info.signer = cached.signer;
                info.signing_id = cached.signing_id.clone();
                info.team_id = cached.team_id.clone();
                info.cdhash = cached.cdhash.clone();
                info.platform_binary = cached.platform_binary;
            }
        }
        info
    }

    /// Keychain material by name, or a file that received keychain
    /// material under another name (a hard link, a copy, a move).
    fn material_of(&self, path: &str) -> Option<Material> {
        material::classify(path).or_else(|| {
            self.derived.get(path).map(|kind| Material {
                kind,
                in_keychains_folder: false,
            })
        })
    }

    /// Exec facts some behaviour models need later.
    fn note_exec(&mut self, info: &ProcInfo, args: &[String]) {
        // A Time Machine destination set from a command line: backups to
        // it are not the routine job (T1555.001 via an attacker-chosen
        // backup destination).
        let is_tmutil = basename(&info.path) == "tmutil"
            || info.signing_id.as_deref() == Some("com.apple.tmutil");
        if is_tmutil && args.iter().skip(1).any(|a| a == "setdestination") {
            // Who set it, not the command line: a destination URL can carry
            // a password.
            self.tm_destination_set = Some(format!("tmutil setdestination (pid {})", info.pid));
        }
    }

    fn classify_file(&mut self, ev: &EsEvent) -> Option<Finding> {
        match ev {
            EsEvent::Open(o) => {
                if o.fflag & FREAD == 0 {
                    return None;
                }
                let path = &o.file.path;
                if is_root_certificates(path) {
                    self.counters.root_certificate_reads += 1;
                    return None;
                }
                let m = self.material_of(path)?;
                let mut f = read_finding(path, m);
                // The keychain API's own shape: a read-only open of a live
                // file keychain (the data-protection keychain and SystemKey
                // are only ever opened by the subsystem).
                if o.fflag & FWRITE == 0
                    && m.at_home(path)
                    && matches!(
                        m.kind,
                        MaterialKind::LoginKeychain
                            | MaterialKind::FileKeychain
                            | MaterialKind::SystemKeychain
                    )
                {
                    f.model = Some(Model::ApiRead);
                } else if o.fflag & FWRITE == 0 && mirrors_live_location(path) {
                    f.model = Some(Model::MirrorRead);
                }
                Some(f)
            }
            EsEvent::Clone(c) => {
                let m = self.material_of(&c.source.path)?;
                let dest = join_path(&c.target_dir.path, &c.target_name);
                self.derive(&dest, m);
                Some(copy_finding(
                    Action::KeychainCopy,
                    "cloned (APFS copy)",
                    &c.source.path,
                    dest,
                    m,
                ))
            }
            EsEvent::Copyfile(c) => {
                let m = self.material_of(&c.source.path)?;
                let dest = c
                    .target_file
                    .as_ref()
                    .map(|f| f.path.clone())
                    .unwrap_or_else(|| join_path(&c.target_dir.path, &c.target_name));
                self.derive(&dest, m);
                Some(copy_finding(
                    Action::KeychainCopy,
                    "copied (copyfile)",
                    &c.source.path,
                    dest,
                    m,
                ))
            }
            EsEvent::Link(l) => {
                let m = self.material_of(&l.source.path)?;
                let dest = join_path(&l.target_dir.path, &l.target_filename);
                self.derive(&dest, m);
                Some(copy_finding(
                    Action::KeychainCopy,
                    "hard-linked",
                    &l.source.path,
                    dest,
                    m,
                ))
            }
            EsEvent::Rename(r) => {
                let dest = r.destination.path().unwrap_or_default();
                if let Some(m) = self.material_of(&r.source.path) {
                    self.forget_derived(&r.source.path);
                    self.derive(&dest, m);
                    return Some(copy_finding(
                        Action::KeychainMove,
                        "moved (rename)",
                        &r.source.path,
                        dest,
                        m,
                    ));
                }
                // A temporary file renamed onto a keychain name.
                let m = material::classify(&dest)?;
                if m.at_home(&dest) {
                    // Apple's AtomicFile: the API writes a temporary file
                    // beside the database and renames it over the database
                    // path. An in-place update, not a copy.
                    self.counters.keychain_updates += 1;
                    return None;
                }
                // Elsewhere it is a copy that passed through a temporary
                // name (rsync's receiver writes `.login.keychain-db.XXXXXX`
                // in the destination folder, then renames it).
                let mut f = Finding::new(
                    Action::KeychainCopy,
                    Severity::Medium,
                    format!(
                        "{} written outside its Keychains folder through a temporary name",
                        m.kind.label()
                    ),
                );
                f.target = Some(r.source.path.clone());
                f.reveals = true;
                f.high_reasons
                    .push("keychain material outside its Keychains folder".into());
                if material::is_staging_path(&dest) {
                    f.high_reasons.push("staging destination".into());
                }
                f.model = Some(Model::MirrorBackup);
                f.destination = Some(dest);
                Some(f)
            }
            EsEvent::Create(c) => {
                let dest = c.destination.path()?;
                // A new file at a followed path holds something else now.
                self.forget_derived(&dest);
                let m = material::classify(&dest)?;
                if m.at_home(&dest) {
                    // New keychains are created in their folder by design.
                    self.counters.keychain_folder_creates += 1;
                    return None;
                }
                let mut f = Finding::new(
                    Action::KeychainCopy,
                    Severity::Medium,
                    format!(
                        "{} file created outside its Keychains folder (a copy)",
                        m.kind.label()
                    ),
                );
                if material::is_staging_path(&dest) {
                    f.high_reasons.push("staging destination".into());
                }
                f.destination = Some(dest);
                f.reveals = true;
                f.high_reasons
                    .push("keychain material outside its Keychains folder".into());
                f.model = Some(Model::MirrorBackup);
                Some(f)
            }
            EsEvent::Unlink(u) => {
                let m = self.material_of(&u.target.path)?;
                self.forget_derived(&u.target.path);
                let mut f = Finding::new(
                    Action::KeychainDelete,
                    Severity::Low,
                    format!("{} deleted", m.kind.label()),
                );
                f.target = Some(u.target.path.clone());
                Some(f)
            }
            EsEvent::Close(c) => {
                if material::classify(&c.target.path).is_some() {
                    self.counters.keychain_closes += 1;
                }
                None
            }
            _ => None,
        }
    }

    fn emit(
        &mut self,
        ctx: &EventCtx<'_>,
        actor: &ProcInfo,
        mut f: Finding,
        out: &mut Vec<KeychainAccess>,
    ) {
        // Who acted, enriched once (the row's actor columns come from here).
        let acting = Actor::known(actor, &self.cache);
        if acting.ancestors_capped() {
            self.counters.field_caps += 1;
        }
        let ancestors = acting.ancestors();
        let parent = acting.parent();
        // Who drives the access, seen through launchers that only exec
        // their argument (`nohup env caffeinate -i TOOL`): padding a chain
        // with them moves nothing out of reach.
        let depth = self.tuning.model.interpreter_depth;
        let drivers: Vec<&ProcInfo> = ancestors.iter().filter(|a| !is_exec_wrapper(a)).collect();
        let driver = drivers.first().copied();
        let near = || std::iter::once(actor).chain(drivers.iter().copied().take(depth));

        // Who drives the access: what makes theft likely whatever is read.
        let mut suspicion: Vec<String> = Vec::new();
        if actor.signer.is_some_and(Signer::is_untrusted) && !is_security(actor) {
            suspicion.push(format!(
                "{} actor",
                actor.signer.map(Signer::as_str).unwrap_or("unsigned")
            ));
        }
        if let Some(p) = driver {
            if p.signer.is_some_and(Signer::is_untrusted) {
                suspicion.push(format!(
                    "{} parent {}",
                    p.signer.map(Signer::as_str).unwrap_or("unsigned"),
                    basename(&p.path)
                ));
            }
        }
        // An interpreter or osascript counts only near the access: node or
        // ruby several levels above a build tool is not evidence.
        if let Some(interp) = near().find(|a| interprets(a)) {
            let what = if interp.runs_as_node {
                format!(
                    "{} run as node (ELECTRON_RUN_AS_NODE)",
                    basename(&interp.path)
                )
            } else {
                basename(&interp.path).to_string()
            };
            suspicion.push(format!("{what} in the process tree"));
        }
        if let Some(dl) = drivers
            .iter()
            .take(depth)
            .find(|a| a.cmdline.as_deref().is_some_and(runs_downloaded_script))
        {
            suspicion.push(format!(
                "{} runs a script fetched from the network",
                basename(&dl.path)
            ));
        }
        if material::is_staging_path(&actor.path) {
            suspicion.push(format!("runs from staging path {}", actor.path));
        } else if let Some(p) = driver.filter(|p| material::is_staging_path(&p.path)) {
            suspicion.push(format!("parent runs from staging path {}", p.path));
        }
        // Plainly hostile drivers, which even a routine-looking read does
        // not survive: unsigned code, staging paths, osascript, inline or
        // staged interpreter code, a fetched script, and ad-hoc code that
        // launchd started (a LaunchAgent or an app opened from Finder, not
        // a tool a user ran from a shell, as Homebrew's ad-hoc builds are).
        let is_launchd =
            |p: &ProcInfo| p.pid == 1 || matches!(basename(&p.path), "launchd" | "xpcproxy");
        let launchd_started = |a: &ProcInfo| {
            match std::iter::once(actor)
                .chain(ancestors.iter())
                .skip_while(|x| x.key() != a.key())
                .nth(1)
            {
                Some(p) => is_launchd(p),
                // launchd itself never execs, so it is rarely in the cache:
                // the image's recorded spawner or parent token names it.
                None => {
                    a.spawned_by.as_deref().is_some_and(is_launchd)
                        || a.parent.is_some_and(|(pid, _)| pid == 1)
                        || (a.parent.is_none() && a.ppid == Some(1))
                }
            }
        };
        let hostile_driver = near().any(|a| {
            a.signer == Some(Signer::Unsigned)
                || (a.signer == Some(Signer::Adhoc) && launchd_started(a))
                || material::is_staging_path(&a.path)
                || is_hostile_interpreter(a)
                || a.cmdline.as_deref().is_some_and(runs_downloaded_script)
        });

        // Behaviour models: the legitimate shape of an access, when the
        // driver is clean, is `low`.
        if f.model == Some(Model::MirrorBackup)
            && actor
                .signing_id
                .as_deref()
                .is_some_and(|s| s.starts_with("com.apple.backupd"))
        {
            if let Some(cmd) = &self.tm_destination_set {
                // Not the routine job: no rule excuses it without naming it.
                f.high_value = true;
                f.high_reasons.push(format!(
                    "Time Machine destination set from a command line: {cmd}"
                ));
            }
        }
        let modelled: Option<String> = match f.model {
            _ if !suspicion.is_empty() => None,
            Some(Model::MirrorBackup) => self.mirror_backup_shape(actor, f.destination.as_deref()),
            Some(Model::MirrorRead) => self.api_read_shape(actor, parent, f.target.as_deref()).map(|_| {
                "read-only open of a mounted copy (a backup or snapshot keeping the live path) by signed code that is not a raw reader"
                    .to_string()
            }),
            Some(Model::BrowserImport) => parent
                .filter(|p| {
                    p.signer == Some(Signer::DeveloperId)
                        && !p.platform_binary
                        && p.path.contains(".app/Contents/")
                        && raw_reader(p, &self.tuning.model.extra_raw_readers).is_none()
                })
                .map(|p| {
                    format!(
                        "run directly by {} (team {}): a password manager importing browser passwords",
                        basename(&p.path),
                        short(p.team_id.as_deref().unwrap_or("?"))
                    )
                }),
            _ if !f.high_reasons.is_empty() => None,
            Some(Model::ApiRead) => self.api_read_shape(actor, parent, f.target.as_deref()),
            Some(Model::Interactive) => parent
                .filter(|p| {
                    p.has_code_identity()
                        && raw_reader(p, &self.tuning.model.extra_raw_readers).is_none()
                })
                .map(|p| {
                    format!(
                        "run by {} (signed, not a shell or interpreter): credential libraries such as go-keyring store items this way",
                        basename(&p.path)
                    )
                }),
            None => None,
            Some(Model::NamedItem) => None,
        };
        let modelled = match (modelled, f.model) {
            (None, Some(Model::NamedItem)) if !hostile_driver => Some(
                "one named item that is no other program's high-value secret: the shape of a credential library reading its own service"
                    .to_string(),
            ),
            (m, _) => m,
        };
        let severity = if let Some(why) = &modelled {
            f.reasons.push(why.clone());
            f.base = Severity::Low;
            Severity::Low
        } else if f.base >= Severity::Medium {
            f.high_reasons.extend(suspicion);
            if f.high_reasons.is_empty() {
                f.base
            } else {
                Severity::High
            }
        } else {
            f.base
        };
        let mut reasons = f.reasons.clone();
        if severity == Severity::High {
            let mut seen = Vec::new();
            for r in &f.high_reasons {
                if !seen.contains(r) {
                    seen.push(r.clone());
                }
            }
            reasons.extend(seen);
        }
        if ctx.name == "exec" {
            self.rowed.insert(actor.key(), ());
        }

        let anc_refs = acting.ancestor_refs();
        let allow = self.tuning.allow_reason_for(
            &Facts {
                action: f.action,
                actor,
                ancestors: &anc_refs,
                cmdline: actor.cmdline.as_deref(),
                target_path: f.target.as_deref(),
                destination_path: f.destination.as_deref(),
                reveals_secret: f.reveals,
            },
            &What {
                items: &f.items,
                high_value: f.high_value,
            },
        );

        let msg = ctx.msg;
        let time_str = msg.time.as_deref().unwrap_or("");
        let time = msg.time.as_deref().and_then(crate::text::parse_rfc3339);
        let eid = Fnv64::default()
            .write(b"esf")
            .write(time_str.as_bytes())
            .write(&msg.mach_time.unwrap_or(0).to_le_bytes())
            .write(&msg.global_seq_num.unwrap_or(0).to_le_bytes())
            .write(&actor.pid.to_le_bytes())
            .write(&actor.pidversion.to_le_bytes())
            .write(ctx.name.as_bytes())
            .write(f.action.as_str().as_bytes())
            .write(f.target.as_deref().unwrap_or("").as_bytes())
            .write(f.destination.as_deref().unwrap_or("").as_bytes())
            .event_id(time);

        let row = acting.row(EventFacts {
            time,
            eid,
            source: "esf",
            event_type: ctx.name,
            action: f.action,
            verb: f.verb,
            target_path: f.target.as_deref(),
            destination_path: f.destination.as_deref(),
            flags: Flags {
                keychain_dump: f.keychain_dump,
                password_query: f.password_query,
                cert_export: f.cert_export,
                reveals_secret: f.reveals,
            },
            allow_reason: allow,
            severity: Some(severity),
            reason: sanitize(&reasons.join("; ")).into_owned(),
            message: None,
            es_version: msg.version,
            global_seq_num: msg.global_seq_num.and_then(|g| i64::try_from(g).ok()),
        });
        self.counters.rows += 1;
        out.push(row);
    }
}

/// Executables of the keychain subsystem at paths System Integrity
/// Protection keeps read-only: the fallback when an event carries no
/// code-signing fields (osquery's `es_process_file_events`).
pub const KEYCHAIN_SUBSYSTEM_PATHS: &[&str] = &[
    "/usr/sbin/securityd",
    "/usr/libexec/secd",
    "/usr/libexec/trustd",
    "/usr/libexec/securityd_service",
];

fn is_subsystem(p: &ProcInfo) -> bool {
    if p.signer.is_none() && p.signing_id.is_none() {
        return KEYCHAIN_SUBSYSTEM_PATHS.contains(&p.path.as_str());
    }
    p.platform_binary
        && p.signing_id
            .as_deref()
            .is_some_and(|s| KEYCHAIN_SUBSYSTEM.contains(&s))
}

fn is_security(p: &ProcInfo) -> bool {
    p.path == "/usr/bin/security" || p.signing_id.as_deref() == Some("com.apple.security")
}

fn is_root_certificates(path: &str) -> bool {
    path.starts_with("/System/Library/Keychains/")
}

fn file_event_touches_material(ev: &EsEvent) -> bool {
    let path = match ev {
        EsEvent::Open(o) => &o.file.path,
        EsEvent::Clone(c) => &c.source.path,
        EsEvent::Copyfile(c) => &c.source.path,
        EsEvent::Rename(r) => &r.source.path,
        EsEvent::Unlink(u) => &u.target.path,
        EsEvent::Close(c) => &c.target.path,
        EsEvent::Create(c) => {
            return c
                .destination
                .path()
                .is_some_and(|p| material::classify(&p).is_some())
        }
        _ => return false,
    };
    material::classify(path).is_some()
}

fn read_finding(path: &str, m: Material) -> Finding {
    let mut f = Finding::new(
        Action::KeychainRead,
        Severity::Medium,
        format!("{} read", m.kind.label()),
    );
    f.target = Some(path.to_string());
    f.reveals = true;
    if m.kind == MaterialKind::SystemKey {
        f.high_reasons
            .push("SystemKey unlocks the System keychain".into());
    }
    if !m.at_home(path) && m.kind != MaterialKind::SystemKey {
        f.high_reasons
            .push("a copy, mount or snapshot outside its live Keychains folder".into());
    }
    f
}

fn copy_finding(action: Action, verb: &str, src: &str, dest: String, m: Material) -> Finding {
    let mut f = Finding::new(
        action,
        Severity::Medium,
        format!("{} {verb} to {dest}", m.kind.label()),
    );
    f.target = Some(src.to_string());
    f.reveals = true;
    let dest_material_home = material::is_live_location(&dest);
    if !dest_material_home {
        f.high_reasons
            .push("keychain material leaving its Keychains folder".into());
    }
    if material::is_staging_path(&dest) {
        f.high_reasons.push("staging destination".into());
    }
    if m.kind == MaterialKind::SystemKey {
        f.high_reasons
            .push("SystemKey unlocks the System keychain".into());
    }
    f.model = Some(Model::MirrorBackup);
    f.destination = Some(dest);
    f
}

fn is_system_keychain_path(p: &str) -> bool {
    let b = basename(p);
    b == "System.keychain" || b == "System.keychain-db"
}

/// Wi-Fi and 802.1X items (the System keychain's network secrets).
fn is_wifi_item(v: &str) -> bool {
    let l = v.to_ascii_lowercase();
    l.contains("airport") || l.contains("802.1x") || l == "wi-fi" || l == "wifi"
}

/// Rows for exec events: `security` and known tools.
fn classify_exec(info: &ProcInfo, args: &[String], script: Option<&str>) -> Option<Finding> {
    if is_security(info) {
        let mut argv: Vec<String> = args.to_vec();
        if argv.is_empty() {
            argv.push(info.path.clone());
        }
        return Some(security_finding(&security_cli::parse(&argv)));
    }
    tool_finding(info, args, script)
}

fn security_finding(inv: &SecurityInvocation) -> Finding {
    if inv.interactive {
        let mut f = Finding::new(
            Action::SecurityInteractive,
            Severity::Medium,
            "security -i: commands read from stdin, hidden from the command line",
        );
        f.reveals = false;
        // What it does is hidden: no rule can excuse it by what, only the
        // model by who drives it.
        f.high_value = true;
        f.model = Some(Model::Interactive);
        return f;
    }
    let Some(verb) = inv.verb else {
        let what = match &inv.verb_word {
            Some(w) => format!("security with unknown verb `{}`", short(w)),
            None => "security with no verb".into(),
        };
        return Finding::new(Action::SecurityOther, Severity::Info, what);
    };
    let first_pos = inv.positionals.first().cloned();
    let typed = inv.verb_word.as_deref().unwrap_or(verb);
    let abbrev = if typed != verb {
        format!(" (typed as `{typed}`)")
    } else {
        String::new()
    };
    let mut f = match verb {
        "dump-keychain" => {
            let reveal = inv.has_flag('d') || inv.has_flag('r');
            let mut f = if reveal {
                let what = if inv.has_flag('d') {
                    "decrypted"
                } else {
                    "raw encrypted"
                };
                Finding::new(
                    Action::DumpKeychain,
                    Severity::Medium,
                    format!("dump-keychain dumps {what} item data{abbrev}"),
                )
            } else {
                Finding::new(
                    Action::DumpKeychain,
                    Severity::Low,
                    format!("dump-keychain without -d lists item attributes only{abbrev}"),
                )
            };
            f.reveals = reveal;
            f.high_value = reveal;
            f.keychain_dump = true;
            f.target = first_pos;
            // `-o file`: where the dump is written.
            f.destination = inv.value('o').map(String::from);
            f
        }
        "find-generic-password" | "find-internet-password" => {
            let action = if verb == "find-generic-password" {
                Action::FindGenericPassword
            } else {
                Action::FindInternetPassword
            };
            let reveal = inv.has_flag('g') || inv.has_flag('w');
            let items: Vec<String> = ['s', 'a', 'l', 'D', 'G', 'j', 'r', 'c']
                .iter()
                .flat_map(|c| inv.values(*c).map(String::from).collect::<Vec<_>>())
                .collect();
            let target = first_pos.clone();
            // What is read: another program's high-value secret (a browser's
            // Safe Storage key, Wi-Fi and other System-keychain secrets), or
            // whatever item comes first (no item named), against one named
            // item of a tool's own (go-keyring's `-s SERVICE -wa USER`).
            let browser = items.iter().find(|v| is_browser_item(v)).cloned();
            let wifi = items.iter().find(|v| is_wifi_item(v)).cloned();
            let system_kc = target.as_deref().is_some_and(is_system_keychain_path);
            // One item is named by its service or label; an account alone
            // (`-a alice`) matches whatever item of that account is first.
            let named = ['s', 'l']
                .iter()
                .any(|c| inv.values(*c).any(|v| !v.is_empty()));
            let high_value = browser.is_some() || wifi.is_some() || system_kc || !named;
            let mut f = if !reveal {
                Finding::new(
                    action,
                    Severity::Low,
                    format!("{verb} queries item attributes only{abbrev}"),
                )
            } else if high_value {
                Finding::new(
                    action,
                    Severity::Medium,
                    format!("{verb} reveals the password (-g/-w){abbrev}"),
                )
            } else {
                let mut f = Finding::new(
                    action,
                    Severity::Medium,
                    format!("{verb} reveals the password of one named item (-g/-w){abbrev}"),
                );
                f.model = Some(Model::NamedItem);
                f
            };
            f.reveals = reveal;
            f.high_value = reveal && high_value;
            f.password_query = true;
            f.target = target;
            if reveal {
                if let Some(v) = &browser {
                    f.high_reasons
                        .push(format!("browser Safe Storage item `{}`", short(v)));
                    if wifi.is_none() && !system_kc {
                        f.model = Some(Model::BrowserImport);
                    }
                }
                if let Some(v) = wifi {
                    f.high_reasons.push(format!("Wi-Fi item `{}`", short(&v)));
                }
                if system_kc {
                    f.high_reasons
                        .push("System keychain secret (Wi-Fi, 802.1X, machine accounts)".into());
                }
                if !named && f.high_reasons.is_empty() {
                    f.reasons
                        .push("no item named: whatever matches first".into());
                }
            }
            f.items = items;
            f
        }
        "find-certificate" => {
            let pem = inv.has_flag('p');
            let mut f = if pem {
                // Certificates are public: no secret leaves (Homebrew's
                // ca-certificates, proxy CA bundles, fastlane's checks).
                Finding::new(
                    Action::FindCertificate,
                    Severity::Low,
                    format!("find-certificate -p exports public certificates as PEM{abbrev}"),
                )
            } else {
                Finding::new(
                    Action::FindCertificate,
                    Severity::Low,
                    format!("find-certificate lookup{abbrev}"),
                )
            };
            f.reveals = false;
            f.cert_export = true;
            f.target = first_pos;
            f.items = inv.values('c').map(String::from).collect();
            f
        }
        "export" => {
            let kind_raw = inv.value('t').unwrap_or("all");
            let kind = short(kind_raw);
            // Certificates and public keys are public; identities, private
            // keys and everything are not.
            let public_only = matches!(kind_raw, "certs" | "pubKeys");
            let mut f = Finding::new(
                Action::Export,
                if public_only {
                    Severity::Low
                } else {
                    Severity::Medium
                },
                format!("export of keychain items (type {kind}){abbrev}"),
            );
            f.reveals = !public_only;
            f.high_value = !public_only;
            f.items = vec![kind_raw.to_string()];
            f.cert_export = true;
            f.target = inv.value('k').map(String::from);
            f.destination = inv.value('o').map(String::from);
            if let Some(o) = f.destination.as_ref().filter(|_| !public_only) {
                if material::is_staging_path(o) {
                    f.high_reasons
                        .push("export written to a staging path".into());
                }
            }
            if matches!(kind_raw, "identities" | "privKeys" | "allKeys" | "all") {
                f.reasons.push("includes private keys".into());
            }
            f
        }
        "find-identity" => with_target(
            Finding::new(
                Action::FindIdentity,
                Severity::Info,
                "find-identity lists signing identities",
            ),
            first_pos,
        ),
        "list-keychains" => Finding::new(Action::ListKeychains, Severity::Info, "list-keychains"),
        "import" => with_target(
            Finding::new(Action::Import, Severity::Low, "import into a keychain"),
            inv.value('k').map(String::from),
        ),
        "unlock-keychain" => with_target(
            Finding::new(Action::UnlockKeychain, Severity::Low, "unlock-keychain"),
            first_pos,
        ),
        "create-keychain" => with_target(
            Finding::new(Action::CreateKeychain, Severity::Low, "create-keychain"),
            first_pos,
        ),
        "set-key-partition-list"
        | "set-generic-password-partition-list"
        | "set-internet-password-partition-list" => with_target(
            Finding::new(
                Action::SetKeyPartitionList,
                Severity::Low,
                format!("{verb} (grants tools access to keys)"),
            ),
            first_pos,
        ),
        "add-generic-password" | "add-internet-password" => with_target(
            Finding::new(
                Action::AddPassword,
                Severity::Low,
                format!("{verb} stores an item"),
            ),
            first_pos,
        ),
        other => {
            let base = if other == "add-trusted-cert" {
                Severity::Low
            } else {
                Severity::Info
            };
            // Verbs that name their keychain with -k (add-trusted-cert, ...).
            let target = inv.value('k').map(String::from).or(first_pos);
            with_target(
                Finding::new(Action::SecurityOther, base, format!("security {other}")),
                target,
            )
        }
    };
    if let Some(why) = inv.refused {
        // Still a row: an attempt, even though security(1) runs nothing.
        f.reasons.push(format!(
            "security(1) would refuse it ({}): an attempt",
            why.describe()
        ));
    }
    f.verb = Some(verb);
    f
}

/// An argv word quoted in a `reason`: attacker-controlled, so redacted,
/// escaped and kept short.
fn short(word: &str) -> String {
    let red = crate::redact::redact_text(word);
    let (cut, _) = truncate(sanitize(&red).into_owned(), 64);
    cut
}

fn with_target(mut f: Finding, t: Option<String>) -> Finding {
    f.target = t;
    f
}

/// Known credential-theft tools, by executable, signing id, argv[0], the
/// script an interpreter runs (`python laZagne.py`), or `-m module`.
fn tool_finding(info: &ProcInfo, args: &[String], script: Option<&str>) -> Option<Finding> {
    let mut names: Vec<String> = vec![basename(&info.path).to_ascii_lowercase()];
    if let Some(s) = &info.signing_id {
        names.push(s.to_ascii_lowercase());
    }
    if let Some(a0) = args.first() {
        names.push(basename(a0).to_ascii_lowercase());
    }
    if let Some(s) = script {
        names.push(basename(s).to_ascii_lowercase());
    }
    if is_interpreter(&info.path) || args.first().is_some_and(|a| is_interpreter(a)) {
        let mut it = args.iter().skip(1);
        while let Some(a) = it.next() {
            if a == "-m" {
                if let Some(m) = it.next() {
                    names.push(m.to_ascii_lowercase());
                }
                break;
            }
            if a == "-c" || a == "-e" {
                break;
            }
            if a.starts_with('-') {
                continue;
            }
            names.push(basename(a).to_ascii_lowercase());
            break;
        }
    }
    let (action, tool) = if names.iter().any(|n| n.starts_with("keychaindump")) {
        (Action::ToolKeychaindump, "keychaindump")
    } else if names.iter().any(|n| n.contains("chainbreaker")) {
        (Action::ToolChainbreaker, "chainbreaker")
    } else if names.iter().any(|n| n.contains("lazagne")) {
        (Action::ToolLazagne, "LaZagne")
    } else {
        return None;
    };
    let mut f = Finding::new(
        action,
        Severity::Medium,
        format!("known keychain-theft tool {tool}"),
    );
    f.reveals = true;
    f.high_value = true;
    f.high_reasons
        .push("its only purpose is credential theft".into());
    // A keychain argument, if any, is the target.
    f.target = args
        .iter()
        .skip(1)
        .find(|a| {
            material::classify(a).is_some()
                || a.ends_with(".keychain")
                || a.ends_with(".keychain-db")
        })
        .cloned();
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn sec_finding(s: &[&str]) -> Finding {
        security_finding(&security_cli::parse(&argv(s)))
    }

    fn sec(s: &[&str]) -> Finding {
        security_finding(&security_cli::parse(&argv(s)))
    }

    #[test]
    fn security_verbs_map_to_actions_and_base_severity() {
        let cases: &[(&[&str], &str, Severity, bool)] = &[
            (
                &["security", "dump-keychain", "-d", "login.keychain"],
                "dump_keychain",
                Severity::Medium,
                true,
            ),
            (
                &["security", "dump", "-d"],
                "dump_keychain",
                Severity::Medium,
                true,
            ),
            (
                &["security", "dump-keychain"],
                "dump_keychain",
                Severity::Low,
                false,
            ),
            (
                &["security", "find-generic-password", "-ga", "Chrome"],
                "find_generic_password",
                Severity::Medium,
                true,
            ),
            (
                &["security", "find", "-ga", "Chrome"],
                "find_generic_password",
                Severity::Medium,
                true,
            ),
            (
                &["security", "find-generic-password", "-s", "x"],
                "find_generic_password",
                Severity::Low,
                false,
            ),
            (
                &[
                    "security",
                    "-q",
                    "find-internet-password",
                    "-s",
                    "github.com",
                    "-w",
                ],
                "find_internet_password",
                Severity::Medium,
                true,
            ),
            (
                &["security", "find-internet-password", "-w"],
                "find_internet_password",
                Severity::Medium,
                true,
            ),
            (
                &["security", "find-generic-password", "-a", "alice", "-w"],
                "find_generic_password",
                Severity::Medium,
                true,
            ),
            (
                &[
                    "security",
                    "find-generic-password",
                    "-D",
                    "AirPort network password",
                    "-a",
                    "CorpWiFi",
                    "-gw",
                ],
                "find_generic_password",
                Severity::Medium,
                true,
            ),
            (
                &[
                    "security",
                    "find-generic-password",
                    "-s",
                    "gh:github.com",
                    "-wa",
                    "octocat",
                ],
                "find_generic_password",
                Severity::Medium,
                true,
            ),
            (
                &[
                    "security",
                    "export",
                    "-k",
                    "/Library/Keychains/System.keychain",
                    "-t",
                    "certs",
                    "-p",
                ],
                "export",
                Severity::Low,
                false,
            ),
            (
                &["security", "find-certificate", "-a", "-p"],
                "find_certificate",
                Severity::Low,
                false,
            ),
            (
                &["security", "find-certificate", "-c", "Apple WWDR"],
                "find_certificate",
                Severity::Low,
                false,
            ),
            (
                &[
                    "security",
                    "export",
                    "-k",
                    "login.keychain",
                    "-t",
                    "identities",
                    "-f",
                    "pkcs12",
                    "-P",
                    "x",
                    "-o",
                    "/tmp/id.p12",
                ],
                "export",
                Severity::Medium,
                true,
            ),
            (
                &["security", "-i"],
                "security_interactive",
                Severity::Medium,
                false,
            ),
            (
                &["security", "find-identity", "-v", "-p", "codesigning"],
                "find_identity",
                Severity::Info,
                false,
            ),
            (
                &["security", "list-keychains", "-d", "user"],
                "list_keychains",
                Severity::Info,
                false,
            ),
            (
                &["security", "unlock-keychain", "-p", "pw", "k"],
                "unlock_keychain",
                Severity::Low,
                false,
            ),
            (
                &["security", "create-keychain", "-p", "pw", "k"],
                "create_keychain",
                Severity::Low,
                false,
            ),
            (
                &["security", "import", "c.p12", "-k", "k", "-P", "pw"],
                "import",
                Severity::Low,
                false,
            ),
            (
                &[
                    "security",
                    "set-key-partition-list",
                    "-S",
                    "apple:",
                    "-k",
                    "pw",
                    "k",
                ],
                "set_key_partition_list",
                Severity::Low,
                false,
            ),
            (
                &[
                    "security",
                    "add-generic-password",
                    "-a",
                    "a",
                    "-s",
                    "s",
                    "-w",
                    "pw",
                ],
                "add_password",
                Severity::Low,
                false,
            ),
            (
                &["security", "set-keychain-settings", "-lut", "21600", "k"],
                "security_other",
                Severity::Info,
                false,
            ),
            (&["security"], "security_other", Severity::Info, false),
        ];
        for (a, action, sev, reveals) in cases {
            let f = sec(a);
            assert_eq!(f.action.as_str(), *action, "{a:?}");
            assert_eq!(f.base, *sev, "{a:?}");
            assert_eq!(f.reveals, *reveals, "{a:?}");
        }
    }

    #[test]
    fn named_items_are_modelled_high_value_items_are_not() {
        let named = sec(&[
            "security",
            "find-generic-password",
            "-s",
            "gh:github.com",
            "-wa",
            "me",
        ]);
        assert_eq!(named.model, Some(Model::NamedItem));
        assert!(!named.high_value);
        for argv in [
            &["security", "find-generic-password", "-wa", "Chrome"][..],
            &["security", "find-generic-password", "-a", "alice", "-w"][..],
            &[
                "security",
                "find-generic-password",
                "-s",
                "x",
                "-w",
                "/Library/Keychains/System.keychain",
            ][..],
            &["security", "dump-keychain", "-d"][..],
            &["security", "-i"][..],
        ] {
            let f = sec(argv);
            assert!(f.high_value, "{argv:?}");
            assert_ne!(f.model, Some(Model::NamedItem), "{argv:?}");
        }
    }

    /// One eslogger exec line: `pid`/`pv` execs `path` with `args`, its
    /// parent token naming `parent`.
    fn exec_line(pid: i64, pv: i64, parent: (i64, i64), path: &str, args: &[&str]) -> String {
        let proc_obj = |pid: i64, pv: i64, path: &str| {
            serde_json::json!({
                "audit_token": {"pid": pid, "pidversion": pv, "euid": 501, "auid": 501, "ruid": 501},
                "parent_audit_token": {"pid": parent.0, "pidversion": parent.1},
                "ppid": parent.0,
                "codesigning_flags": 637623057u32,
                "is_platform_binary": true,
                "signing_id": format!("com.apple.{}", basename(path)),
                "cdhash": "F988105881118CD77EF87293D97DECE8E193FA98",
                "executable": {"path": path}
            })
        };
        serde_json::json!({
            "version": 9,
            "time": "2026-01-01T00:00:00.000000000Z",
            "process": proc_obj(pid, pv - 1, "/bin/zsh"),
            "event": {"exec": {"target": proc_obj(pid, pv, path), "args": args}}
        })
        .to_string()
    }

    #[test]
    fn a_long_lived_driver_is_not_forgotten_in_a_busy_session() {
        // osascript (pid 10) keeps spawning children while 50 unrelated
        // processes come and go in a 16-entry cache; its last child runs
        // security. First-in-first-out eviction would have dropped
        // osascript, and with it the raise to high.
        let mut c = Classifier::new(Tuning::builtin(), 16);
        let mut out = Vec::new();
        let feed = |c: &mut Classifier, line: String, out: &mut Vec<KeychainAccess>| {
            let (msg, ev) = crate::es::parse_line(&line).unwrap();
            c.handle(&msg, &ev, out);
        };
        feed(
            &mut c,
            exec_line(
                10,
                100,
                (1, 1),
                "/usr/bin/osascript",
                &["osascript", "-e", "x"],
            ),
            &mut out,
        );
        for i in 0..50 {
            feed(
                &mut c,
                exec_line(1000 + i, 5, (1, 1), "/bin/ls", &["ls"]),
                &mut out,
            );
            if i % 5 == 0 {
                feed(
                    &mut c,
                    exec_line(2000 + i, 5, (10, 100), "/bin/echo", &["echo"]),
                    &mut out,
                );
            }
        }
        feed(
            &mut c,
            exec_line(
                3000,
                5,
                (10, 100),
                "/usr/bin/security",
                &["security", "dump-keychain", "-d"],
            ),
            &mut out,
        );
        let row = out.last().unwrap();
        assert_eq!(row.parent_path.as_deref(), Some("/usr/bin/osascript"));
        assert_eq!(row.severity, Some(Severity::High));
        assert!(c.cache.evictions > 0, "the cache was under pressure");
    }

    #[test]
    fn browser_items_raise_to_high() {
        let f = sec(&[
            "security",
            "find-generic-password",
            "-wa",
            "Brave Safe Storage",
        ]);
        assert!(!f.high_reasons.is_empty());
        let f = sec(&["security", "find-generic-password", "-s", "JSSCID", "-w"]);
        assert!(f.high_reasons.is_empty());
    }

    #[test]
    fn tools_by_name_script_module_and_signing_id() {
        let p = |path: &str, sid: Option<&str>| ProcInfo {
            path: path.into(),
            signing_id: sid.map(String::from),
            ..Default::default()
        };
        assert_eq!(
            tool_finding(
                &p("/usr/bin/python3", None),
                &argv(&["python3", "-m", "chainbreaker", "-a", "k"]),
                None
            )
            .unwrap()
            .action
            .as_str(),
            "tool_chainbreaker"
        );
        assert_eq!(
            tool_finding(
                &p("/usr/bin/python2", None),
                &argv(&["python2", "laZagne.py", "all"]),
                None
            )
            .unwrap()
            .action
            .as_str(),
            "tool_lazagne"
        );
        assert_eq!(
            tool_finding(
                &p("/tmp/debug", Some("keychaindump-55a0d4b1c3f2e9a7")),
                &argv(&["/tmp/debug"]),
                None
            )
            .unwrap()
            .action
            .as_str(),
            "tool_keychaindump"
        );
        assert!(tool_finding(
            &p("/usr/bin/grep", None),
            &argv(&["grep", "lazagne", "notes"]),
            None
        )
        .is_none());
        assert!(tool_finding(
            &p("/usr/bin/vim", None),
            &argv(&["vim", "chainbreaker.md"]),
            None
        )
        .is_none());
    }

    #[test]
    fn default_tuning_never_excuses_dumps_exports_tools_or_staging_copies() {
        let t = Tuning::builtin();
        let jamf = ProcInfo {
            path: "/usr/local/jamf/bin/jamf".into(),
            signing_id: Some("com.jamf.management.jamf".into()),
            team_id: Some("483DWKW443".into()),
            cmdline: Some("/usr/local/jamf/bin/jamf policy fastlane".into()),
            ..Default::default()
        };
        let backupd = ProcInfo {
            path: "/System/Library/CoreServices/backupd.bundle/Contents/Resources/backupd".into(),
            signing_id: Some("com.apple.backupd".into()),
            platform_binary: true,
            cmdline: Some("/usr/local/bin/fastlane".into()),
            ..Default::default()
        };
        let ancestors = [&jamf, &backupd];
        for action in [
            Action::DumpKeychain,
            Action::Export,
            Action::ToolKeychaindump,
            Action::ToolChainbreaker,
            Action::ToolLazagne,
            Action::SecurityInteractive,
        ] {
            for actor in [&jamf, &backupd] {
                let facts = Facts {
                    action,
                    actor,
                    ancestors: &ancestors,
                    cmdline: Some("security dump-keychain -d"),
                    target_path: Some("/Users/alice/Library/Keychains/login.keychain-db"),
                    destination_path: Some("/tmp/x"),
                    reveals_secret: true,
                };
                assert!(
                    t.allow_reason(&facts).is_none(),
                    "{action} excused for {}",
                    actor.path
                );
            }
        }
        let copy = Facts {
            action: Action::KeychainCopy,
            actor: &backupd,
            ancestors: &[],
            cmdline: None,
            target_path: Some("/Users/alice/Library/Keychains/login.keychain-db"),
            destination_path: Some("/tmp/stage/login.keychain-db"),
            reveals_secret: true,
        };
        assert!(t.allow_reason(&copy).is_none());
        let backup = Facts {
            destination_path: Some(
                "/Volumes/.timemachine/ABC/2026-01-01-120000.backup/Data/Users/alice/Library/Keychains/login.keychain-db",
            ),
            ..copy
        };
        assert!(t.allow_reason(&backup).is_some());
        // Another volume is not a declared Time Machine store.
        let elsewhere = Facts {
            destination_path: Some(
                "/Volumes/share/Users/alice/Library/Keychains/login.keychain-db",
            ),
            ..copy
        };
        assert!(t.allow_reason(&elsewhere).is_none());
    }

    #[test]
    fn a_keychain_named_on_the_command_line_is_a_tools_target() {
        let p = |cmd: &str| ProcInfo {
            cmdline: Some(cmd.into()),
            ..Default::default()
        };
        let kc = "/Users/a/Library/Keychains/login.keychain-db";
        assert!(names_on_command_line(&p(&format!("shove {kc} /tmp/x")), kc));
        assert!(names_on_command_line(
            &p("hdiutil create -srcfolder /Users/a/Library/Keychains/ o.dmg"),
            kc
        ));
        assert!(names_on_command_line(
            &p(&format!("dd if={kc} of=/tmp/k")),
            kc
        ));
        assert!(names_on_command_line(&p(&format!("tool '{kc}'")), kc));
        // The program's own path, other files and a bare `/` are not it.
        assert!(!names_on_command_line(&p(&format!("{kc} --x")), kc));
        assert!(!names_on_command_line(&p("Slack --type=renderer"), kc));
        assert!(!names_on_command_line(
            &p("x /Users/a/Library/Keychains2"),
            kc
        ));
        assert!(!names_on_command_line(&ProcInfo::default(), kc));
    }

    #[test]
    fn agent_rules_never_excuse_other_softwares_high_value_items() {
        let t = Tuning::builtin();
        let jamf = ProcInfo {
            path: "/usr/local/jamf/bin/jamf".into(),
            signing_id: Some("com.jamf.management.jamf".into()),
            team_id: Some("483DWKW443".into()),
            signer: Some(Signer::DeveloperId),
            ..Default::default()
        };
        let sec = ProcInfo {
            path: "/usr/bin/security".into(),
            signing_id: Some("com.apple.security".into()),
            platform_binary: true,
            signer: Some(Signer::Apple),
            ..Default::default()
        };
        let ancestors = [&jamf];
        let decide = |argv: &[&str]| {
            let f = sec_finding(argv);
            t.allow_reason_for(
                &Facts {
                    action: f.action,
                    actor: &sec,
                    ancestors: &ancestors,
                    cmdline: None,
                    target_path: f.target.as_deref(),
                    destination_path: None,
                    reveals_secret: f.reveals,
                },
                &What {
                    items: &f.items,
                    high_value: f.high_value,
                },
            )
        };
        assert!(decide(&["security", "find-generic-password", "-wa", "Chrome"]).is_none());
        assert!(decide(&[
            "security",
            "find-generic-password",
            "-D",
            "AirPort network password",
            "-a",
            "Corp",
            "-w",
            "/Library/Keychains/System.keychain"
        ])
        .is_none());
        assert!(decide(&["security", "find-generic-password", "-w"]).is_none());
        assert!(decide(&["security", "find-generic-password", "-s", "JSSCID", "-w"]).is_some());
        // An ad-hoc look-alike in the agent's folder is not the agent.
        let fake = ProcInfo {
            signer: Some(Signer::Adhoc),
            team_id: None,
            ..jamf.clone()
        };
        let f = sec_finding(&["security", "find-generic-password", "-s", "JSSCID", "-w"]);
        let fake_anc = [&fake];
        assert!(t
            .allow_reason_for(
                &Facts {
                    action: f.action,
                    actor: &sec,
                    ancestors: &fake_anc,
                    cmdline: None,
                    target_path: None,
                    destination_path: None,
                    reveals_secret: true,
                },
                &What {
                    items: &f.items,
                    high_value: f.high_value,
                },
            )
            .is_none());
    }
}
