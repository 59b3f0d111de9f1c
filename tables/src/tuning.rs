//! Tuning: allowlist rules that excuse known-good keychain access.
//!
//! A rule names the actions it excuses (nothing else) and the conditions
//! under which it applies: the acting process, its parent or any ancestor —
//! always by code identity (team id, or `apple` for platform binaries, with
//! an optional signing id; a path or command line may only narrow such a
//! matcher, since anyone can place a binary at a path or write a string) —
//! the row's command line, target, destination and the item it names.
//! Rows that read other software's high-value secrets (browser Safe
//! Storage, Wi-Fi, `-d` dumps, private-key exports, hidden `security -i`
//! commands, known tools) are only excused by a rule that names the item
//! (`item`): an agent rule excuses its own work, never whatever its agent is
//! made to read. An allowlisted row is kept with `allowlisted = 1` and
//! `allow_reason`: tuning hides, it never deletes.
//!
//! The section `model` tunes the behaviour models of [`crate::classify`]
//! (the keychain-file reader model, how far up an interpreter counts,
//! extra raw-reader tools, backup destinations).
//!
//! The default tuning (`tuning/default.json`, built in) covers the false
//! positives the original Sentinel query lists. `--tuning FILE` replaces it
//! and `--no-tuning` turns it off. Patterns are simple wildcards: `*` any
//! run of characters (including `/`), `?` one character.
//!
//! The same file carries the unified-log message patterns
//! ([`UnifiedLogPattern`], section `unified_log_patterns`; see
//! [`crate::unified_log`]). They are detection content, not allowlisting:
//! a tuning file without the key keeps the built-in patterns, `--no-tuning`
//! keeps them too, and `"unified_log_patterns_mode": "extend"` adds a file's
//! patterns in front of the built-in ones (same id = replaced) instead of
//! replacing them.

use crate::procs::ProcInfo;
use crate::schema::Action;
use serde::de::DeserializeOwned;
use serde::Deserialize;

// The unified-log pattern type and its vocabulary live in `log_pattern`, the
// wildcard matcher in `wildcard`; re-exported for the rules and for callers.
pub use crate::log_pattern::{
    PatternAction, UnifiedLogPattern, EVIDENCE, LOG_LEVELS, UNIFIED_LOG_ACTIONS, UNIFIED_LOG_EVENTS,
};
pub use crate::wildcard::{wildcard, Patterns};

/// The built-in default tuning.
pub const DEFAULT_TUNING_JSON: &str = include_str!("../tuning/default.json");

#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    #[error("tuning is not valid JSON or has an unknown key: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tuning rule {index} ({id}): {msg}")]
    Rule {
        index: usize,
        id: String,
        msg: String,
    },
    #[error("unified_log_patterns[{index}] ({id}): {msg}")]
    Pattern {
        index: usize,
        id: String,
        msg: String,
    },
    #[error("reading tuning file {path}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// Conditions on one process. `team_id` is required: trust is bound to
/// code identity; `signing_id`, `path` and `cmdline` narrow it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProcMatch {
    pub signing_id: Option<Patterns>,
    /// A team id, or `apple` for Apple platform binaries.
    pub team_id: Option<Patterns>,
    pub path: Option<Patterns>,
    pub cmdline: Option<Patterns>,
}

impl ProcMatch {
    fn matches(&self, p: &ProcInfo) -> bool {
        if let Some(s) = &self.signing_id {
            if !s.any(p.signing_id.as_deref()) {
                return false;
            }
        }
        if let Some(t) = &self.team_id {
            // A team id counts only with a valid signature that carries it
            // (Developer ID, App Store, enterprise); `apple` only for
            // platform code.
            let team = match p.signer {
                _ if p.platform_binary => Some("apple"),
                Some(crate::procs::Signer::Apple) => Some("apple"),
                Some(crate::procs::Signer::DeveloperId) => p.team_id.as_deref(),
                _ => None,
            };
            if !t.any(team) {
                return false;
            }
        }
        if let Some(path) = &self.path {
            if !path.any(Some(p.path.as_str())) {
                return false;
            }
        }
        if let Some(c) = &self.cmdline {
            if !c.any(p.cmdline.as_deref()) {
                return false;
            }
        }
        true
    }

    fn is_empty(&self) -> bool {
        self.signing_id.is_none()
            && self.team_id.is_none()
            && self.path.is_none()
            && self.cmdline.is_none()
    }
}

/// One allowlist rule as written in the tuning file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub reason: String,
    /// Where the pattern comes from (documentation only).
    #[serde(default)]
    pub source: Option<String>,
    /// The actions it excuses (an unknown name is an error naming the rule).
    pub actions: Vec<Action>,
    #[serde(default)]
    pub actor: Option<ProcMatch>,
    #[serde(default)]
    pub parent: Option<ProcMatch>,
    #[serde(default)]
    pub ancestor: Option<ProcMatch>,
    #[serde(default)]
    pub cmdline: Option<Patterns>,
    #[serde(default)]
    pub target_path: Option<Patterns>,
    #[serde(default)]
    pub destination_path: Option<Patterns>,
    /// When set, the rule only applies to rows whose reveals_secret equals it.
    #[serde(default)]
    pub reveals_secret: Option<bool>,
    /// Item names (service, account, label, kind of a `security` row) the
    /// rule excuses. Required to excuse a high-value read (see the module
    /// documentation); when set, rows that name no matching item are not
    /// excused.
    #[serde(default)]
    pub item: Option<Patterns>,
}

/// Tunable parts of the classifier's behaviour models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A read-only open of a live file keychain by a validly signed app that
    /// is not a raw reader, not staged and not driven by an interpreter is
    /// the keychain API at work: `low`. `false`: every such open is `medium`.
    pub reader_model: bool,
    /// How many ancestors above the acting process an interpreter or
    /// osascript counts as driving it (node five levels above an npm
    /// script is not evidence).
    pub interpreter_depth: usize,
    /// More raw readers / copy tools (executable basenames, lower case).
    pub extra_raw_readers: Vec<String>,
    /// Where a signed backup tool may mirror keychain files (wildcards).
    /// Narrow it to the destinations your fleet declares.
    pub backup_destinations: Vec<String>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            reader_model: true,
            interpreter_depth: 3,
            extra_raw_readers: Vec::new(),
            backup_destinations: vec!["/Volumes/*".into()],
        }
    }
}

/// The tuning file. Rules and patterns are read one by one ([`Entry`]), so
/// an error in one names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TuningFile {
    /// Required; the only version there is.
    #[serde(rename = "version")]
    _version: u32,
    /// For the file's reader only.
    #[serde(default, rename = "description")]
    _description: Option<String>,
    #[serde(default)]
    rules: Vec<Entry<Rule>>,
    /// Unified-log message patterns (see [`crate::log_pattern`]); kept here
    /// so a fleet can add one without a rebuild. Absent: the built-in ones.
    #[serde(default)]
    unified_log_patterns: Option<Vec<Entry<UnifiedLogPattern>>>,
    /// `replace` (default): the file's patterns are the only ones.
    /// `extend`: the file's patterns come first, then the built-in ones
    /// whose id the file does not reuse.
    #[serde(default)]
    unified_log_patterns_mode: Option<PatternsMode>,
    /// Redaction settings (see [`crate::redact::RedactionConfig`]).
    #[serde(default)]
    redaction: Option<crate::redact::RedactionConfig>,
    /// Behaviour-model settings; absent: the defaults.
    #[serde(default)]
    model: Option<ModelConfig>,
}

/// One entry of a list in a tuning file (a rule, a pattern), read on its
/// own: a bad entry (an unknown action or severity, an unknown key) is an
/// error naming the entry by index and id, as the checks after reading do,
/// rather than a line and column of the whole file.
#[derive(Debug, Clone)]
struct Entry<T> {
    id: String,
    read: Result<T, String>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Entry<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let id = v
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_string();
        let read = serde_json::from_value(v).map_err(|e| e.to_string());
        Ok(Entry { id, read })
    }
}

/// The entries, or the first one's error built by `err(index, id, msg)`.
fn read_entries<T>(
    entries: Vec<Entry<T>>,
    err: fn(usize, String, String) -> TuningError,
) -> Result<Vec<T>, TuningError> {
    entries
        .into_iter()
        .enumerate()
        .map(|(index, e)| e.read.map_err(|msg| err(index, e.id, msg)))
        .collect()
}

fn rule_error(index: usize, id: String, msg: String) -> TuningError {
    TuningError::Rule { index, id, msg }
}

fn pattern_error(index: usize, id: String, msg: String) -> TuningError {
    TuningError::Pattern { index, id, msg }
}

/// How a tuning file's unified-log patterns combine with the built-in ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternsMode {
    Replace,
    Extend,
}

/// What a rule is checked against.
pub struct Facts<'a> {
    pub action: Action,
    pub actor: &'a ProcInfo,
    pub ancestors: &'a [&'a ProcInfo],
    pub cmdline: Option<&'a str>,
    pub target_path: Option<&'a str>,
    pub destination_path: Option<&'a str>,
    pub reveals_secret: bool,
}

/// What a row reads, for the "excuse by what" check.
#[derive(Debug, Clone, Copy, Default)]
pub struct What<'a> {
    /// Item names the row carries (service, account, label, kind).
    pub items: &'a [String],
    /// Other software's high-value secrets, a dump of everything, hidden
    /// commands or a known tool: only a rule naming the item excuses it.
    pub high_value: bool,
}

/// Loaded, validated tuning.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    pub model: ModelConfig,
    pub rules: Vec<Rule>,
    /// Validated unified-log patterns, in match order (first match wins).
    pub unified_log_patterns: Vec<UnifiedLogPattern>,
    /// Which script parameters are secrets (Jamf's 4-11 by default).
    pub redaction: crate::redact::RedactionConfig,
}

impl Tuning {
    /// No allowlist rules at all (`--no-tuning`). The built-in unified-log
    /// patterns stay: they are detection content, not allowlisting.
    pub fn none() -> Self {
        Tuning {
            model: ModelConfig::default(),
            rules: Vec::new(),
            unified_log_patterns: builtin_unified_log_patterns(),
            redaction: Default::default(),
        }
    }

    /// The built-in default.
    pub fn builtin() -> Self {
        // The default is tested at build time; failing here is a build bug.
        Tuning::from_json(DEFAULT_TUNING_JSON).unwrap_or_else(|e| {
            log::error!("built-in tuning is invalid: {e}");
            Tuning::none()
        })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, TuningError> {
        let text = std::fs::read_to_string(path).map_err(|err| TuningError::Io {
            path: path.display().to_string(),
            err,
        })?;
        Tuning::from_json(&text)
    }

    pub fn from_json(text: &str) -> Result<Self, TuningError> {
        let file: TuningFile = serde_json::from_str(text)?;
        let rules = read_entries(file.rules, rule_error)?;
        for (index, r) in rules.iter().enumerate() {
            let err = |msg: &str| TuningError::Rule {
                index,
                id: r.id.clone(),
                msg: msg.to_string(),
            };
            if r.actions.is_empty() {
                return Err(err(
                    "`actions` is empty: a rule must name the actions it excuses",
                ));
            }
            for m in [&r.actor, &r.parent, &r.ancestor].into_iter().flatten() {
                if m.is_empty() {
                    return Err(err("an empty process matcher would match everything"));
                }
                if m.team_id.is_none() {
                    return Err(err(
                        "a process matcher needs `team_id` (or `apple`): trust is bound to code identity; signing ids can be self-assigned and paths and command lines forged",
                    ));
                }
            }
            let has_condition = r.item.is_some()
                || r.actor.is_some()
                || r.parent.is_some()
                || r.ancestor.is_some()
                || r.cmdline.is_some()
                || r.target_path.is_some();
            if !has_condition {
                return Err(err("a rule needs at least one condition on who or what"));
            }
        }
        let patterns = match file.unified_log_patterns {
            None => builtin_unified_log_patterns(),
            Some(own) => {
                let own = read_entries(own, pattern_error)?;
                validate_patterns(&own)?;
                match file.unified_log_patterns_mode {
                    Some(PatternsMode::Extend) => {
                        let mut all = own;
                        for b in builtin_unified_log_patterns() {
                            if !all.iter().any(|p| p.id == b.id) {
                                all.push(b);
                            }
                        }
                        all
                    }
                    _ => own,
                }
            }
        };
        let model = file.model.unwrap_or_default();
        Ok(Tuning {
            model,
            rules,
            unified_log_patterns: patterns,
            redaction: file.redaction.unwrap_or_default(),
        })
    }

    /// The first rule that excuses these facts, as `"<id>: <reason>"`
    /// (rows that name no item and read nothing of high value).
    pub fn allow_reason(&self, f: &Facts<'_>) -> Option<String> {
        self.allow_reason_for(f, &What::default())
    }

    /// The first rule that excuses these facts given what the row reads.
    pub fn allow_reason_for(&self, f: &Facts<'_>, what: &What<'_>) -> Option<String> {
        self.rules
            .iter()
            .find(|r| rule_matches(r, f) && item_matches(r, what))
            .map(|r| format!("{}: {}", r.id, r.reason))
    }
}

/// The built-in unified-log patterns (the `unified_log_patterns` section of
/// `tuning/default.json`). Empty, with an error logged, if that section is
/// invalid (a test keeps it valid).
pub fn builtin_unified_log_patterns() -> Vec<UnifiedLogPattern> {
    let file: TuningFile = match serde_json::from_str(DEFAULT_TUNING_JSON) {
        Ok(f) => f,
        Err(e) => {
            log::error!("built-in tuning is invalid: {e}");
            return Vec::new();
        }
    };
    let patterns = read_entries(file.unified_log_patterns.unwrap_or_default(), pattern_error);
    match patterns.and_then(|p| validate_patterns(&p).map(|()| p)) {
        Ok(patterns) => patterns,
        Err(e) => {
            log::error!("built-in unified-log patterns are invalid: {e}");
            Vec::new()
        }
    }
}

/// Validate unified-log patterns; the error names the pattern.
pub fn validate_patterns(patterns: &[UnifiedLogPattern]) -> Result<(), TuningError> {
    for (index, p) in patterns.iter().enumerate() {
        let err = |msg: String| TuningError::Pattern {
            index,
            id: p.id.clone(),
            msg,
        };
        if patterns[..index].iter().any(|q| q.id == p.id) {
            return Err(err("duplicate id".into()));
        }
        crate::log_pattern::validate_pattern(p).map_err(err)?;
    }
    Ok(())
}

/// Excuse by what: a rule with `item` needs a matching item; a high-value
/// read needs a rule with `item`.
fn item_matches(r: &Rule, what: &What<'_>) -> bool {
    match &r.item {
        Some(p) => what.items.iter().any(|i| p.any(Some(i))),
        None => !what.high_value,
    }
}

fn rule_matches(r: &Rule, f: &Facts<'_>) -> bool {
    if !r.actions.contains(&f.action) {
        return false;
    }
    if let Some(want) = r.reveals_secret {
        if want != f.reveals_secret {
            return false;
        }
    }
    if let Some(m) = &r.actor {
        if !m.matches(f.actor) {
            return false;
        }
    }
    if let Some(m) = &r.parent {
        match f.ancestors.first() {
            Some(p) if m.matches(p) => {}
            _ => return false,
        }
    }
    if let Some(m) = &r.ancestor {
        if !f.ancestors.iter().any(|a| m.matches(a)) {
            return false;
        }
    }
    if let Some(p) = &r.cmdline {
        if !p.any(f.cmdline) {
            return false;
        }
    }
    if let Some(p) = &r.target_path {
        if !p.any(f.target_path) {
            return false;
        }
    }
    if let Some(p) = &r.destination_path {
        if !p.any(f.destination_path) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_basics() {
        assert!(wildcard("*fastlane*", "ruby /usr/local/bin/fastlane match"));
        assert!(wildcard(
            "/Volumes/*",
            "/Volumes/Backup/x/login.keychain-db"
        ));
        assert!(!wildcard("/Volumes/*", "/tmp/x"));
        assert!(wildcard("com.apple.?ds", "com.apple.mds"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "a"));
    }

    #[test]
    fn builtin_default_is_valid() {
        let t = Tuning::from_json(DEFAULT_TUNING_JSON).unwrap();
        assert!(t.rules.len() >= 8);
    }

    #[test]
    fn bad_tuning_names_the_problem() {
        let e =
            Tuning::from_json(r#"{"version":1,"rules":[{"id":"x","reason":"r","actions":[]}]}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("actions"), "{e}");
        let e = Tuning::from_json(r#"{"version":1,"rules":[{"id":"x","reason":"r","actions":["nope"],"actor":{"path":"/x"}}]}"#)
            .unwrap_err()
            .to_string();
        // The rule is named, and so is every valid action.
        assert!(
            e.contains("tuning rule 0 (x): unknown action `nope` (one of dump_keychain, "),
            "{e}"
        );
        let e = Tuning::from_json(r#"{"version":1,"rules":[{"id":"y","reason":"r","actions":["keychain_read"],"actor":{"team_id":"apple"},"colour":1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tuning rule 0 (y): unknown field `colour`"),
            "{e}"
        );
        let e = Tuning::from_json(r#"{"version":1,"rules":[{"id":"x","reason":"r","actions":["keychain_read"],"actor":{"signing_id":"com.evil"}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("team_id"), "{e}");
        let e = Tuning::from_json(r#"{"version":1,"rules":[{"id":"x","reason":"r","actions":["keychain_read"],"ancestor":{"path":"/usr/local/jamf/*"}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("code identity"), "{e}");
        let e = Tuning::from_json(r#"{"version":1,"bogus":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }
}
