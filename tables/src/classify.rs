//! The classifier: normalised Endpoint Security events in, keychain-access
//! rows out.
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
//! Severity rules (documented in the README, tested below):
//! * `medium`: anything that reveals or exports secrets or certificates
//!   (`dump-keychain -d`/`-r`, `find-*-password -g`/`-w`, `find-certificate
//!   -p`, `export`), `security -i`, and any read, copy or move of keychain
//!   material by a process outside the keychain subsystem.
//! * `high`: the above plus what makes theft likely: material leaving its
//!   Keychains folder, a staging path (`/tmp`, `/Users/Shared`, ...), an
//!   unsigned or ad-hoc actor or parent, an interpreter or osascript in the
//!   ancestry, a browser "Safe Storage" item, SystemKey, known tools.
//! * `low`: routine verbs that change or unlock keychains (`unlock-keychain`,
//!   `create-keychain`, `import`, `set-key-partition-list`,
//!   `add-*-password`), attribute-only queries (no `-d`/`-g`/`-w`/`-p`),
//!   deletes of keychain files.
//! * `info`: listing verbs (`list-keychains`, `find-identity`) and other
//!   `security` verbs.
//!
//! The alert is `severity IN ('medium','high') AND allowlisted = 0`.

use crate::es::{AuditToken, EsEvent, EsMessage, FREAD};
use crate::material::{self, Material, MaterialKind};
use crate::procs::{ProcInfo, ProcessCache, Signer};
use crate::schema::{KeychainAccess, TECHNIQUE};
use crate::security_cli::{self, SecurityInvocation};
use crate::text::{basename, join_args, join_path, sanitize, truncate, Fnv64};
use crate::tree_secrets::TreeSecrets;
use crate::tuning::{Facts, Tuning};

/// Command lines in rows are capped at this many bytes.
pub const ROW_CMDLINE_MAX: usize = 16 * 1024;
/// Command lines kept in the process cache are capped at this many bytes.
pub const CACHE_CMDLINE_MAX: usize = 2 * 1024;
/// How many ancestors a row lists.
pub const MAX_ANCESTORS: usize = 16;

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

/// Interpreters whose presence in the ancestry makes theft likely.
fn is_interpreter(path: &str) -> bool {
    let b = basename(path).to_ascii_lowercase();
    b.starts_with("python")
        || b.starts_with("perl")
        || b.starts_with("ruby")
        || b == "node"
        || b == "osascript"
        || b.starts_with("php")
        || b == "pwsh"
        || b == "deno"
        || b == "bun"
        || b == "tclsh"
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

/// Counters of what the classifier saw and why it made no row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClassifyCounters {
    pub execs: u64,
    pub file_events: u64,
    pub subsystem_access: u64,
    pub root_certificate_reads: u64,
    pub keychain_folder_creates: u64,
    pub keychain_closes: u64,
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
}

/// The source-specific context of one event.
struct EventCtx<'a> {
    msg: &'a EsMessage<'a>,
    name: &'static str,
}

/// What the classifier decided about one access.
struct Finding {
    action: &'static str,
    target: Option<String>,
    destination: Option<String>,
    keychain_dump: bool,
    password_query: bool,
    cert_export: bool,
    reveals: bool,
    base: Sev,
    reasons: Vec<String>,
    high_reasons: Vec<String>,
    verb: Option<&'static str>,
}

impl Finding {
    fn new(action: &'static str, base: Sev, reason: impl Into<String>) -> Self {
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
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sev {
    Info,
    Low,
    Medium,
    High,
}

impl Sev {
    fn as_str(self) -> &'static str {
        match self {
            Sev::Info => "info",
            Sev::Low => "low",
            Sev::Medium => "medium",
            Sev::High => "high",
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
        }
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
                EsEvent::Exit => self.own.exited(actor_tok.pid, actor_tok.pidversion),
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
                self.cache.insert(info.clone());
                info.cmdline = Some(row_cmd);
                // Classified on the redacted argv: same getopt structure
                // (a redacted word keeps its option prefix), so no secret
                // reaches target_path or a reason.
                if let Some(f) = classify_exec(&info, &redacted, script) {
                    self.emit(&ctx, &info, f, out);
                }
            }
            EsEvent::Fork(fork) => {
                // A forked child runs its parent's image until it execs.
                let mut child = ProcInfo::from_es(&fork.child);
                if let Some(parent) = self.cache.get(ProcInfo::from_es(&msg.process).key()) {
                    child.cmdline = parent.cmdline.clone();
                    child.cwd = parent.cwd.clone();
                }
                self.cache.insert(child);
            }
            EsEvent::Exit => {}
            other => {
                self.counters.file_events += 1;
                let actor = self.actor_info(&msg.process);
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
                let m = material::classify(path)?;
                Some(read_finding(path, m))
            }
            EsEvent::Clone(c) => {
                let m = material::classify(&c.source.path)?;
                let dest = join_path(&c.target_dir.path, &c.target_name);
                Some(copy_finding(
                    "keychain_copy",
                    "cloned (APFS copy)",
                    &c.source.path,
                    dest,
                    m,
                ))
            }
            EsEvent::Copyfile(c) => {
                let m = material::classify(&c.source.path)?;
                let dest = c
                    .target_file
                    .as_ref()
                    .map(|f| f.path.clone())
                    .unwrap_or_else(|| join_path(&c.target_dir.path, &c.target_name));
                Some(copy_finding(
                    "keychain_copy",
                    "copied (copyfile)",
                    &c.source.path,
                    dest,
                    m,
                ))
            }
            EsEvent::Rename(r) => {
                let m = material::classify(&r.source.path)?;
                let dest = r.destination.path().unwrap_or_default();
                Some(copy_finding(
                    "keychain_move",
                    "moved (rename)",
                    &r.source.path,
                    dest,
                    m,
                ))
            }
            EsEvent::Create(c) => {
                let dest = c.destination.path()?;
                let m = material::classify(&dest)?;
                if m.in_keychains_folder {
                    // New keychains are created in their folder by design.
                    self.counters.keychain_folder_creates += 1;
                    return None;
                }
                let mut f = Finding::new(
                    "keychain_copy",
                    Sev::Medium,
                    format!(
                        "{} file created outside a Keychains folder (staged copy)",
                        m.kind.label()
                    ),
                );
                f.destination = Some(dest);
                f.reveals = true;
                f.high_reasons
                    .push("keychain material outside its Keychains folder".into());
                Some(f)
            }
            EsEvent::Unlink(u) => {
                let m = material::classify(&u.target.path)?;
                let mut f = Finding::new(
                    "keychain_delete",
                    Sev::Low,
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
        let ancestors: Vec<ProcInfo> = self
            .cache
            .ancestors(actor, MAX_ANCESTORS)
            .into_iter()
            .cloned()
            .collect();
        if ancestors.len() >= MAX_ANCESTORS {
            self.counters.field_caps += 1;
        }
        let parent = ancestors.first();

        // Raise to high for what makes theft likely (only accesses that are
        // already medium: a routine verb stays routine).
        if f.base >= Sev::Medium {
            if actor.signer.is_some_and(Signer::is_untrusted) && !is_security(actor) {
                f.high_reasons.push(format!(
                    "{} actor",
                    actor.signer.map(Signer::as_str).unwrap_or("unsigned")
                ));
            }
            if let Some(p) = parent {
                if p.signer.is_some_and(Signer::is_untrusted) {
                    f.high_reasons.push(format!(
                        "{} parent {}",
                        p.signer.map(Signer::as_str).unwrap_or("unsigned"),
                        basename(&p.path)
                    ));
                }
            }
            if let Some(interp) = std::iter::once(actor)
                .chain(ancestors.iter())
                .find(|a| is_interpreter(&a.path))
            {
                f.high_reasons
                    .push(format!("{} in the process tree", basename(&interp.path)));
            }
            if material::is_staging_path(&actor.path) {
                f.high_reasons
                    .push(format!("runs from staging path {}", actor.path));
            } else if let Some(p) = parent.filter(|p| material::is_staging_path(&p.path)) {
                f.high_reasons
                    .push(format!("parent runs from staging path {}", p.path));
            }
        }
        let severity = if f.base >= Sev::Medium && !f.high_reasons.is_empty() {
            Sev::High
        } else {
            f.base
        };
        let mut reasons = f.reasons.clone();
        if severity == Sev::High {
            let mut seen = Vec::new();
            for r in &f.high_reasons {
                if !seen.contains(r) {
                    seen.push(r.clone());
                }
            }
            reasons.extend(seen);
        }

        let anc_refs: Vec<&ProcInfo> = ancestors.iter().collect();
        let allow = self.tuning.allow_reason(&Facts {
            action: f.action,
            actor,
            ancestors: &anc_refs,
            cmdline: actor.cmdline.as_deref(),
            target_path: f.target.as_deref(),
            destination_path: f.destination.as_deref(),
            reveals_secret: f.reveals,
        });

        let msg = ctx.msg;
        let tok: AuditToken = msg.process.audit_token.into();
        let (uid, auid) = if ctx.name == "exec" {
            (actor.euid, actor.auid)
        } else {
            (tok.euid, tok.auid)
        };
        let ancestors_json = serde_json::to_string(
            &ancestors
                .iter()
                .map(|a| sanitize(&a.path).into_owned())
                .collect::<Vec<_>>(),
        )
        .ok();
        let responsible_path = actor
            .responsible
            .filter(|r| *r != actor.key())
            .and_then(|r| self.cache.get(r))
            .map(|r| sanitize(&r.path).into_owned());
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
            .write(f.action.as_bytes())
            .write(f.target.as_deref().unwrap_or("").as_bytes())
            .write(f.destination.as_deref().unwrap_or("").as_bytes())
            .event_id(time);

        let row = KeychainAccess {
            time,
            eid: Some(eid),
            source: Some("esf".into()),
            event_type: Some(ctx.name.into()),
            pid: Some(actor.pid),
            pidversion: Some(actor.pidversion),
            ppid: actor.ppid,
            parent_pidversion: actor.parent.map(|p| p.1),
            uid,
            auid,
            username: None,
            path: Some(sanitize(&actor.path).into_owned()),
            cmdline: actor.cmdline.clone(),
            cwd: actor.cwd.clone(),
            parent_path: parent.map(|p| sanitize(&p.path).into_owned()),
            parent_cmdline: parent.and_then(|p| p.cmdline.clone()),
            ancestors: ancestors_json,
            responsible_path,
            signing_id: actor
                .signing_id
                .as_deref()
                .map(|s| sanitize(s).into_owned()),
            team_id: actor.team_id.as_deref().map(|s| sanitize(s).into_owned()),
            cdhash: actor.cdhash.as_deref().map(|s| sanitize(s).into_owned()),
            signer: actor.signer.map(|s| s.as_str().to_string()),
            platform_binary: Some(i64::from(actor.platform_binary)),
            action: Some(f.action.into()),
            verb: f.verb.map(String::from),
            target_path: f.target.as_deref().map(|s| sanitize(s).into_owned()),
            destination_path: f.destination.as_deref().map(|s| sanitize(s).into_owned()),
            keychain_dump: Some(i64::from(f.keychain_dump)),
            password_query: Some(i64::from(f.password_query)),
            cert_export: Some(i64::from(f.cert_export)),
            reveals_secret: Some(i64::from(f.reveals)),
            allowlisted: Some(i64::from(allow.is_some())),
            allow_reason: allow,
            severity: Some(severity.as_str().into()),
            reason: Some(sanitize(&reasons.join("; ")).into_owned()),
            technique: Some(TECHNIQUE.into()),
            message: None,
            correlation_id: None,
            es_version: msg.version,
            global_seq_num: msg.global_seq_num.and_then(|g| i64::try_from(g).ok()),
        };
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
        "keychain_read",
        Sev::Medium,
        format!("{} read", m.kind.label()),
    );
    f.target = Some(path.to_string());
    f.reveals = true;
    if m.kind == MaterialKind::SystemKey {
        f.high_reasons
            .push("SystemKey unlocks the System keychain".into());
    }
    if !m.in_keychains_folder && m.kind != MaterialKind::SystemKey {
        f.high_reasons
            .push("staged copy outside its Keychains folder".into());
    }
    f
}

fn copy_finding(action: &'static str, verb: &str, src: &str, dest: String, m: Material) -> Finding {
    let mut f = Finding::new(
        action,
        Sev::Medium,
        format!("{} {verb} to {dest}", m.kind.label()),
    );
    f.target = Some(src.to_string());
    f.reveals = true;
    let dest_material_home = material::in_keychains_folder(&dest);
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
    f.destination = Some(dest);
    f
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
            "security_interactive",
            Sev::Medium,
            "security -i: commands read from stdin, hidden from the command line",
        );
        f.reveals = false;
        return f;
    }
    let Some(verb) = inv.verb else {
        let what = match &inv.verb_word {
            Some(w) => format!("security with unknown verb `{}`", short(w)),
            None => "security with no verb".into(),
        };
        return Finding::new("security_other", Sev::Info, what);
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
                    "dump_keychain",
                    Sev::Medium,
                    format!("dump-keychain dumps {what} item data{abbrev}"),
                )
            } else {
                Finding::new(
                    "dump_keychain",
                    Sev::Low,
                    format!("dump-keychain without -d lists item attributes only{abbrev}"),
                )
            };
            f.reveals = reveal;
            f.keychain_dump = true;
            f.target = first_pos;
            // `-o file`: where the dump is written.
            f.destination = inv.value('o').map(String::from);
            f
        }
        "find-generic-password" | "find-internet-password" => {
            let action = if verb == "find-generic-password" {
                "find_generic_password"
            } else {
                "find_internet_password"
            };
            let reveal = inv.has_flag('g') || inv.has_flag('w');
            let mut f = if reveal {
                Finding::new(
                    action,
                    Sev::Medium,
                    format!("{verb} reveals the password (-g/-w){abbrev}"),
                )
            } else {
                Finding::new(
                    action,
                    Sev::Low,
                    format!("{verb} queries item attributes only{abbrev}"),
                )
            };
            f.reveals = reveal;
            f.password_query = true;
            f.target = first_pos;
            let item_values = ['s', 'a', 'l', 'D', 'G', 'j']
                .iter()
                .flat_map(|c| inv.values(*c).map(String::from).collect::<Vec<_>>())
                .chain(inv.positionals.iter().cloned());
            if reveal {
                for v in item_values {
                    if is_browser_item(&v) {
                        f.high_reasons
                            .push(format!("browser Safe Storage item `{}`", short(&v)));
                        break;
                    }
                }
            }
            f
        }
        "find-certificate" => {
            let pem = inv.has_flag('p');
            let mut f = if pem {
                Finding::new(
                    "find_certificate",
                    Sev::Medium,
                    format!("find-certificate -p exports certificates as PEM{abbrev}"),
                )
            } else {
                Finding::new(
                    "find_certificate",
                    Sev::Low,
                    format!("find-certificate lookup{abbrev}"),
                )
            };
            f.reveals = pem;
            f.cert_export = true;
            f.target = first_pos;
            f
        }
        "export" => {
            let kind_raw = inv.value('t').unwrap_or("all");
            let kind = short(kind_raw);
            let mut f = Finding::new(
                "export",
                Sev::Medium,
                format!("export of keychain items (type {kind}){abbrev}"),
            );
            f.reveals = true;
            f.cert_export = true;
            f.target = inv.value('k').map(String::from);
            f.destination = inv.value('o').map(String::from);
            if let Some(o) = &f.destination {
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
                "find_identity",
                Sev::Info,
                "find-identity lists signing identities",
            ),
            first_pos,
        ),
        "list-keychains" => Finding::new("list_keychains", Sev::Info, "list-keychains"),
        "import" => with_target(
            Finding::new("import", Sev::Low, "import into a keychain"),
            inv.value('k').map(String::from),
        ),
        "unlock-keychain" => with_target(
            Finding::new("unlock_keychain", Sev::Low, "unlock-keychain"),
            first_pos,
        ),
        "create-keychain" => with_target(
            Finding::new("create_keychain", Sev::Low, "create-keychain"),
            first_pos,
        ),
        "set-key-partition-list"
        | "set-generic-password-partition-list"
        | "set-internet-password-partition-list" => with_target(
            Finding::new(
                "set_key_partition_list",
                Sev::Low,
                format!("{verb} (grants tools access to keys)"),
            ),
            first_pos,
        ),
        "add-generic-password" | "add-internet-password" => with_target(
            Finding::new("add_password", Sev::Low, format!("{verb} stores an item")),
            first_pos,
        ),
        other => {
            let base = if other == "add-trusted-cert" {
                Sev::Low
            } else {
                Sev::Info
            };
            // Verbs that name their keychain with -k (add-trusted-cert, ...).
            let target = inv.value('k').map(String::from).or(first_pos);
            with_target(
                Finding::new("security_other", base, format!("security {other}")),
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
        ("tool_keychaindump", "keychaindump")
    } else if names.iter().any(|n| n.contains("chainbreaker")) {
        ("tool_chainbreaker", "chainbreaker")
    } else if names.iter().any(|n| n.contains("lazagne")) {
        ("tool_lazagne", "LaZagne")
    } else {
        return None;
    };
    let mut f = Finding::new(
        action,
        Sev::Medium,
        format!("known keychain-theft tool {tool}"),
    );
    f.reveals = true;
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

    fn sec(s: &[&str]) -> Finding {
        security_finding(&security_cli::parse(&argv(s)))
    }

    #[test]
    fn security_verbs_map_to_actions_and_base_severity() {
        let cases: &[(&[&str], &str, Sev, bool)] = &[
            (
                &["security", "dump-keychain", "-d", "login.keychain"],
                "dump_keychain",
                Sev::Medium,
                true,
            ),
            (
                &["security", "dump", "-d"],
                "dump_keychain",
                Sev::Medium,
                true,
            ),
            (
                &["security", "dump-keychain"],
                "dump_keychain",
                Sev::Low,
                false,
            ),
            (
                &["security", "find-generic-password", "-ga", "Chrome"],
                "find_generic_password",
                Sev::Medium,
                true,
            ),
            (
                &["security", "find", "-ga", "Chrome"],
                "find_generic_password",
                Sev::Medium,
                true,
            ),
            (
                &["security", "find-generic-password", "-s", "x"],
                "find_generic_password",
                Sev::Low,
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
                Sev::Medium,
                true,
            ),
            (
                &["security", "find-certificate", "-a", "-p"],
                "find_certificate",
                Sev::Medium,
                true,
            ),
            (
                &["security", "find-certificate", "-c", "Apple WWDR"],
                "find_certificate",
                Sev::Low,
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
                Sev::Medium,
                true,
            ),
            (
                &["security", "-i"],
                "security_interactive",
                Sev::Medium,
                false,
            ),
            (
                &["security", "find-identity", "-v", "-p", "codesigning"],
                "find_identity",
                Sev::Info,
                false,
            ),
            (
                &["security", "list-keychains", "-d", "user"],
                "list_keychains",
                Sev::Info,
                false,
            ),
            (
                &["security", "unlock-keychain", "-p", "pw", "k"],
                "unlock_keychain",
                Sev::Low,
                false,
            ),
            (
                &["security", "create-keychain", "-p", "pw", "k"],
                "create_keychain",
                Sev::Low,
                false,
            ),
            (
                &["security", "import", "c.p12", "-k", "k", "-P", "pw"],
                "import",
                Sev::Low,
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
                Sev::Low,
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
                Sev::Low,
                false,
            ),
            (
                &["security", "set-keychain-settings", "-lut", "21600", "k"],
                "security_other",
                Sev::Info,
                false,
            ),
            (&["security"], "security_other", Sev::Info, false),
        ];
        for (a, action, sev, reveals) in cases {
            let f = sec(a);
            assert_eq!(f.action, *action, "{a:?}");
            assert_eq!(f.base, *sev, "{a:?}");
            assert_eq!(f.reveals, *reveals, "{a:?}");
        }
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
            .action,
            "tool_chainbreaker"
        );
        assert_eq!(
            tool_finding(
                &p("/usr/bin/python2", None),
                &argv(&["python2", "laZagne.py", "all"]),
                None
            )
            .unwrap()
            .action,
            "tool_lazagne"
        );
        assert_eq!(
            tool_finding(
                &p("/tmp/debug", Some("keychaindump-55a0d4b1c3f2e9a7")),
                &argv(&["/tmp/debug"]),
                None
            )
            .unwrap()
            .action,
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
            "dump_keychain",
            "export",
            "tool_keychaindump",
            "tool_chainbreaker",
            "tool_lazagne",
            "security_interactive",
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
            action: "keychain_copy",
            actor: &backupd,
            ancestors: &[],
            cmdline: None,
            target_path: Some("/Users/alice/Library/Keychains/login.keychain-db"),
            destination_path: Some("/tmp/stage/login.keychain-db"),
            reveals_secret: true,
        };
        assert!(t.allow_reason(&copy).is_none());
        let backup = Facts {
            destination_path: Some("/Volumes/Backups of alice/2026/login.keychain-db"),
            ..copy
        };
        assert!(t.allow_reason(&backup).is_some());
    }
}
