//! Row building: a matched record, its pattern and captures become a
//! `keychain_access_events` row (actor, enrichment from the process cache,
//! reason with the pattern's evidence, redacted message, stable eid).

use super::record::LogRecord;
use crate::log_pattern::{Captures, Compiled};
use crate::procs::{ProcInfo, ProcessCache};
use crate::redact::redact_text;
use crate::schema::{KeychainAccess, TECHNIQUE};
use crate::text::{basename, sanitize, truncate, Fnv64};
use crate::timestamp::{parse_timestamp, MissingOffset};
use crate::tuning::{Facts, Tuning};

/// Messages in rows are capped at this many bytes.
pub const MESSAGE_MAX: usize = 8 * 1024;

/// What the parser needs from the scanner for one line.
pub struct LineContext<'a> {
    /// Processes seen in eslogger events of the same stream (enrichment).
    pub cache: Option<&'a ProcessCache>,
    /// Allowlist rules.
    pub tuning: &'a Tuning,
}

/// The row for a matched record, and the `(unified log: ...)` origin that
/// ends its reason (the caller adds what the prompt tracker found first).
pub(crate) fn build_row(
    rec: &LogRecord,
    pat: &Compiled,
    caps: &Captures,
    ctx: &LineContext<'_>,
) -> (KeychainAccess, String) {
    let spec = &pat.spec;
    let logger_pid = rec.process_id;
    let logger_path = rec.process_image_path.clone().filter(|p| !p.is_empty());
    // authd: the creator of the authorization is the actor (for trust
    // settings the client is a system helper such as ocspd); the client is
    // named in the reason.
    let (named_pid, named) = match (caps.creator_pid, caps.creator.as_deref()) {
        (Some(p), c) => (Some(p), c),
        (None, Some(c)) => (None, Some(c)),
        (None, None) => (caps.pid, caps.client.as_deref()),
    };
    let client_path = named.filter(|c| c.starts_with('/'));
    let client_name = named.filter(|c| !c.starts_with('/'));
    let names_client = named_pid.is_some() || named.is_some();
    let actor_is_logger = !names_client || (named_pid.is_some() && named_pid == logger_pid);
    let (pid, path) = if actor_is_logger {
        (
            logger_pid,
            client_path
                .map(String::from)
                .or_else(|| logger_path.clone()),
        )
    } else {
        (named_pid, client_path.map(String::from))
    };

    // Enrich from the process cache when the pid (and path, if known) fit.
    let cached: Option<&ProcInfo> = pid
        .and_then(|p| ctx.cache.and_then(|c| c.latest_for_pid(p)))
        .filter(|c| match path.as_deref() {
            None => true,
            Some(p) => p == c.path,
        });
    let path = path.or_else(|| cached.map(|c| c.path.clone()));
    let uid = if actor_is_logger {
        rec.user_id
    } else {
        cached.and_then(|c| c.euid)
    };
    let actor: ProcInfo = match cached {
        Some(c) => c.clone(),
        None => ProcInfo {
            pid: pid.unwrap_or(0),
            path: path.clone().unwrap_or_default(),
            euid: uid,
            ..Default::default()
        },
    };
    let ancestors: Vec<ProcInfo> = match (cached, ctx.cache) {
        (Some(c), Some(cache)) => cache
            .ancestors(c, crate::procs::MAX_ANCESTORS)
            .into_iter()
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let parent = ancestors.first();
    let responsible_path = cached
        .and_then(|c| c.responsible.filter(|r| *r != c.key()))
        .and_then(|r| ctx.cache.and_then(|cache| cache.get(r)))
        .map(|r| sanitize(&r.path).into_owned());
    // NULL = unknown (the client was never seen by the process cache); "[]"
    // = known, with no recorded ancestor: the same reading as ES rows.
    let ancestors_json = (cached.is_some() && ctx.cache.is_some())
        .then(|| {
            serde_json::to_string(
                &ancestors
                    .iter()
                    .map(|a| sanitize(&a.path).into_owned())
                    .collect::<Vec<_>>(),
            )
            .ok()
        })
        .flatten();

    let target = caps.keychain.as_deref();
    let anc_refs: Vec<&ProcInfo> = ancestors.iter().collect();
    let allow = ctx.tuning.allow_reason(&Facts {
        action: &spec.action,
        actor: &actor,
        ancestors: &anc_refs,
        cmdline: actor.cmdline.as_deref(),
        target_path: target,
        destination_path: None,
        reveals_secret: false,
    });

    // The reason: what, who said it, and how sure we are.
    let mut reason = spec.reason.clone();
    if let Some(n) = client_name {
        reason.push_str(&format!("; client `{n}`"));
    }
    if caps.creator.is_some() || caps.creator_pid.is_some() {
        if let Some(c) = caps.client.as_deref() {
            match caps.pid {
                Some(p) => reason.push_str(&format!("; for client `{c}` [{p}]")),
                None => reason.push_str(&format!("; for client `{c}`")),
            }
        }
    }
    if let Some(r) = &caps.right {
        reason.push_str(&format!("; right `{r}`"));
    }
    if let Some(i) = &caps.item {
        reason.push_str(&format!("; item `{i}`"));
    }
    let logger = match (logger_path.as_deref(), logger_pid) {
        (Some(p), Some(id)) => format!("{}[{id}]", basename(p)),
        (Some(p), None) => basename(p).to_string(),
        (None, Some(id)) => format!("pid {id}"),
        (None, None) => "unknown process".to_string(),
    };
    let mut origin = format!("unified log: {logger}");
    if pat.is_activity() {
        let sender = basename(rec.sender_image_path.as_deref().unwrap_or(""));
        origin.push_str(&format!(" activity ({sender})"));
    }
    if let Some(s) = rec.subsystem.as_deref().filter(|s| !s.is_empty()) {
        origin.push_str(&format!(" {s}"));
        if let Some(c) = rec.category.as_deref().filter(|c| !c.is_empty()) {
            origin.push_str(&format!(":{c}"));
        }
    }
    let confidence = match (spec.confirmed, spec.evidence.as_deref()) {
        (true, _) => format!("confirmed on {}", spec.seen_on),
        (false, Some("apple_source")) => "text from Apple's format string only".to_string(),
        _ => "message text unconfirmed".to_string(),
    };
    let origin = format!(" ({origin}; pattern {}, {confidence})", spec.id);

    let raw_message = rec.event_message.as_deref().unwrap_or("");
    let (message, _) = truncate(
        sanitize(&redact_text(raw_message)).into_owned(),
        MESSAGE_MAX,
    );
    let timestamp = rec.timestamp.as_deref().unwrap_or("");
    let eid = Fnv64::default()
        .write(b"unified_log")
        .write(timestamp.as_bytes())
        .write(logger_pid.unwrap_or(-1).to_string().as_bytes())
        .write(rec.thread_id.unwrap_or(0).to_string().as_bytes())
        .write(rec.mach_timestamp.unwrap_or(0).to_string().as_bytes())
        .write(raw_message.as_bytes())
        .event_id(parse_timestamp(timestamp, MissingOffset::Reject));

    let row = KeychainAccess {
        time: parse_timestamp(timestamp, MissingOffset::Reject),
        eid: Some(eid),
        source: Some("unified_log".into()),
        event_type: Some("log".into()),
        pid,
        pidversion: cached.map(|c| c.pidversion),
        ppid: cached.and_then(|c| c.ppid),
        parent_pidversion: cached.and_then(|c| c.parent.map(|p| p.1)),
        uid,
        auid: cached.and_then(|c| c.auid),
        username: None,
        path: path.as_deref().map(|p| sanitize(p).into_owned()),
        cmdline: cached.and_then(|c| c.cmdline.clone()),
        cwd: cached.and_then(|c| c.cwd.clone()),
        parent_path: parent.map(|p| sanitize(&p.path).into_owned()),
        parent_cmdline: parent.and_then(|p| p.cmdline.clone()),
        ancestors: ancestors_json,
        responsible_path,
        signing_id: cached
            .and_then(|c| c.signing_id.as_deref())
            .map(|s| sanitize(s).into_owned()),
        team_id: cached
            .and_then(|c| c.team_id.as_deref())
            .map(|s| sanitize(s).into_owned()),
        cdhash: cached
            .and_then(|c| c.cdhash.as_deref())
            .map(|s| sanitize(s).into_owned()),
        signer: cached
            .and_then(|c| c.signer)
            .map(|s| s.as_str().to_string()),
        platform_binary: cached.map(|c| i64::from(c.platform_binary)),
        action: Some(spec.action.clone()),
        verb: None,
        target_path: target.map(|t| sanitize(t).into_owned()),
        destination_path: None,
        keychain_dump: Some(0),
        password_query: Some(0),
        cert_export: Some(0),
        reveals_secret: Some(0),
        allowlisted: Some(i64::from(allow.is_some())),
        allow_reason: allow,
        severity: spec.severity.clone(),
        reason: Some(reason),
        technique: Some(TECHNIQUE.into()),
        message: Some(message),
        correlation_id: None,
        es_version: None,
        global_seq_num: None,
    };
    (row, origin)
}
