//! What a unified-log row has of its own: a matched record, its pattern and
//! captures name the actor (handed to [`crate::normalise`], which fills the
//! actor and enrichment columns as for ES rows) and give the reason with the
//! pattern's evidence, the redacted message and a stable eid.

use super::record::LogRecord;
use crate::log_pattern::{Captures, Compiled};
use crate::normalise::{Actor, EventFacts, Flags};
use crate::procs::{ProcInfo, ProcessCache, Signer};
use crate::redact::redact_text;
use crate::schema::{Action, KeychainAccess};
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

/// What [`build_row`] makes of a matched record.
pub(crate) struct BuiltRow {
    pub row: KeychainAccess,
    /// The `(unified log: ...)` origin that ends the reason (the caller
    /// adds what the prompt tracker found first).
    pub origin: String,
    /// The actor's signer when the process cache knows it (for the prompt
    /// tracker).
    pub signer: Option<Signer>,
    /// The actor's ancestor list was cut at
    /// [`MAX_ANCESTORS`](crate::procs::MAX_ANCESTORS): counted in
    /// `field_caps`, as for ES rows.
    pub ancestors_capped: bool,
}

/// The row for a matched record (see [`BuiltRow`]).
pub(crate) fn build_row(
    rec: &LogRecord,
    pat: &Compiled,
    action: Action,
    caps: &Captures,
    ctx: &LineContext<'_>,
) -> BuiltRow {
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
    let cached: Option<(&ProcInfo, &ProcessCache)> = pid
        .and_then(|p| ctx.cache.and_then(|c| Some((c.latest_for_pid(p)?, c))))
        .filter(|(c, _)| match path.as_deref() {
            None => true,
            Some(p) => p == c.path,
        });
    let actor = match cached {
        // The record's userID is the logging process's: it is the actor's
        // uid only when the logger is the actor.
        Some((c, cache)) if actor_is_logger => Actor::known(c, cache).with_uid(rec.user_id),
        Some((c, cache)) => Actor::known(c, cache),
        None => Actor::unknown(pid, path, actor_is_logger.then_some(rec.user_id).flatten()),
    };

    let target = caps.keychain.as_deref();
    let allow = ctx.tuning.allow_reason(&Facts {
        action,
        actor: actor.process(),
        ancestors: &actor.ancestor_refs(),
        cmdline: actor.process().cmdline.as_deref(),
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

    let time = parse_timestamp(timestamp, MissingOffset::Reject);
    let row = actor.row(EventFacts {
        time,
        eid,
        source: "unified_log",
        event_type: "log",
        action,
        verb: None,
        target_path: target,
        destination_path: None,
        // The seed query's flags describe `security` invocations and file
        // copies; a log line reveals nothing by itself.
        flags: Flags::default(),
        allow_reason: allow,
        severity: spec.severity,
        reason,
        message: Some(message),
        es_version: None,
        global_seq_num: None,
    });
    BuiltRow {
        signer: actor.is_known().then(|| actor.process().signer).flatten(),
        ancestors_capped: actor.ancestors_capped(),
        row,
        origin,
    }
}
