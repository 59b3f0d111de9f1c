//! `pack check`: every form of the pack, checked without osquery or Fleet.
//!
//! * osquery pack JSON: keys, intervals, platforms, versions, shards
//!   ([`super::model`]), and every query and discovery statement prepared
//!   against the schema ([`super::schema_db::check_db`]).
//! * osquery config JSON (`options`, `decorators`, `packs`, `schedule`,
//!   `file_paths`, ...): decorator and schedule SQL prepared, inline packs
//!   checked as packs.
//! * `<pack>.policies.json`: Fleet policy keys, SQL prepared.
//! * Fleet YAML: `apiVersion: v1` documents of `kind: query | policy | pack`
//!   (fleetctl), GitOps lib lists (`*.queries.yml`, `*.policies.yml`), and
//!   GitOps `default.yml` / team files (top-level keys, `path:` references,
//!   which are checked in turn, `agent_options`). Keys are the documented ones
//!   (Fleet docs "Configuration files", "GitOps", "Agent configuration");
//!   unknown keys are errors, so typos surface here rather than in Fleet.
//!
//! Every problem is a [`Diag`]: `file:item: message`.

use super::model::{self, Diag};
use super::schema_db;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

const FLEET_PLATFORMS: &[&str] = &["darwin", "windows", "linux", "chrome"];
const FLEET_LOGGING: &[&str] = &["snapshot", "differential", "differential_ignore_removals"];

const FLEET_QUERY_KEYS: &[&str] = &[
    "name",
    "description",
    "query",
    "interval",
    "platform",
    "min_osquery_version",
    "automations_enabled",
    "logging",
    "observer_can_run",
    "discard_data",
    "labels_include_any",
];
const FLEET_POLICY_KEYS: &[&str] = &[
    "name",
    "description",
    "resolution",
    "query",
    "platform",
    "critical",
    "labels_include_any",
    "labels_exclude_any",
    "calendar_events_enabled",
    "conditional_access_enabled",
    "install_software",
    "run_script",
];
const FLEET_PACK_KEYS: &[&str] = &[
    "name",
    "description",
    "disabled",
    "platform",
    "targets",
    "queries",
];
const FLEET_PACK_QUERY_KEYS: &[&str] = &[
    "query",
    "name",
    "description",
    "interval",
    "snapshot",
    "removed",
    "shard",
    "platform",
    "version",
    "denylist",
];
const GITOPS_KEYS: &[&str] = &[
    "name",
    "policies",
    "queries",
    "reports",
    "agent_options",
    "controls",
    "org_settings",
    "team_settings",
    "settings",
    "software",
    "labels",
    "custom_host_vitals",
];
const AGENT_OPTIONS_KEYS: &[&str] = &[
    "path",
    "config",
    "overrides",
    "extensions",
    "command_line_flags",
    "update_channels",
    "script_execution_timeout",
];
/// osquery config top-level keys (osquery docs "Configuration").
const OSQUERY_CONFIG_KEYS: &[&str] = &[
    "options",
    "decorators",
    "packs",
    "schedule",
    "file_paths",
    "file_paths_query",
    "exclude_paths",
    "file_accesses",
    "events",
    "yara",
    "prometheus_targets",
    "views",
    "auto_table_construction",
    "feature_vectors",
];

/// What a YAML list file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Queries,
    Policies,
}

/// Accumulates problems over every file of one `pack check`.
pub struct Checker {
    db: rusqlite::Connection,
    pub diags: Vec<Diag>,
    /// SQL statements prepared.
    pub statements: usize,
    pub files: usize,
    seen: HashSet<PathBuf>,
    /// Files of a checked directory that are not pack-shaped, with why.
    pub skipped: Vec<(PathBuf, &'static str)>,
    fleet_queries: BTreeSet<String>,
    /// (file, query name): duplicates within one file are errors.
    fleet_query_defs: HashSet<(PathBuf, String)>,
    /// (file, pack, referenced query)
    pack_refs: Vec<(PathBuf, String, String)>,
}

impl Checker {
    pub fn new() -> Result<Self, String> {
        Ok(Checker {
            db: schema_db::check_db()?,
            diags: Vec::new(),
            statements: 0,
            files: 0,
            seen: HashSet::new(),
            skipped: Vec::new(),
            fleet_queries: BTreeSet::new(),
            fleet_query_defs: HashSet::new(),
            pack_refs: Vec::new(),
        })
    }

    fn diag(&mut self, path: &Path, item: Option<&str>, msg: impl Into<String>) {
        self.diags.push(Diag::new(path, item, msg));
    }

    /// Prepare one statement; a failure becomes `file:item: SQL error: ...`.
    fn sql(&mut self, path: &Path, item: &str, sql: &str) {
        if sql.trim().is_empty() {
            return;
        }
        self.statements += 1;
        if let Some(e) = schema_db::prepare_error(&self.db, sql) {
            self.diag(path, Some(item), format!("SQL error: {e}"));
        }
    }

    /// Check one file (type by extension and content), or every pack-form
    /// file (`.conf`, `.json`, `.yml`, `.yaml`) under a directory.
    pub fn check_file(&mut self, path: &Path) {
        if path.is_dir() {
            if !self.check_dir(path) {
                self.diag(
                    path,
                    None,
                    "no pack, config or Fleet file in this directory",
                );
            }
            return;
        }
        self.check_file_as(path, None);
    }

    /// Check the pack-shaped files under a directory; whether there was one.
    fn check_dir(&mut self, path: &Path) -> bool {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                self.diag(path, None, format!("cannot read directory: {e}"));
                return true;
            }
        };
        entries.sort();
        let mut found = false;
        for p in entries {
            let ext = p
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if p.is_dir() {
                found |= self.check_dir(&p);
            } else if !matches!(ext.as_str(), "conf" | "json" | "yml" | "yaml") {
                self.skipped
                    .push((p, "not a .conf, .json, .yml or .yaml file"));
            } else if let Some(why) = not_pack_shaped(&p) {
                self.skipped.push((p, why));
            } else {
                found = true;
                self.check_file(&p);
            }
        }
        found
    }

    fn check_file_as(&mut self, path: &Path, kind: Option<ListKind>) {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if !self.seen.insert(key) {
            return;
        }
        self.files += 1;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.diag(path, None, format!("cannot read: {e}"));
                return;
            }
        };
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if ext == "yml" || ext == "yaml" {
            self.check_yaml(path, &text, kind);
        } else {
            self.check_json(path, &text);
        }
    }

    /// Cross-file checks: every `kind: pack` query names a known query.
    pub fn finish(&mut self) {
        let refs = std::mem::take(&mut self.pack_refs);
        for (file, pack, q) in refs {
            if !self.fleet_queries.contains(&q) {
                self.diag(
                    &file,
                    Some(&format!("pack {pack}")),
                    format!("references query `{q}`, which no checked file defines as kind: query (check the queries file with it)"),
                );
            }
        }
    }

    // ---- JSON ----

    fn check_json(&mut self, path: &Path, text: &str) {
        let json: Json = match serde_json::from_str(text) {
            Ok(j) => j,
            Err(e) => {
                self.diag(path, None, format!("not valid JSON: {e}"));
                return;
            }
        };
        let Some(obj) = json.as_object() else {
            self.diag(
                path,
                None,
                "expected a JSON object (an osquery pack, an osquery config or a policies file)",
            );
            return;
        };
        if obj.contains_key("policies") && !obj.contains_key("queries") {
            match obj.get("policies") {
                Some(Json::Array(items)) => {
                    for k in obj.keys().filter(|k| *k != "policies") {
                        self.diag(
                            path,
                            None,
                            format!("unknown key `{k}` in a policies file (only `policies`)"),
                        );
                    }
                    for (i, item) in items.iter().enumerate() {
                        match serde_yaml_ng::to_value(item) {
                            Ok(y) => self.fleet_item(path, &y, i, ListKind::Policies, false),
                            Err(e) => self.diag(path, None, format!("policies[{i}]: {e}")),
                        }
                    }
                }
                _ => self.diag(path, None, "`policies` must be a list of Fleet policies"),
            }
        } else if obj
            .keys()
            .any(|k| OSQUERY_CONFIG_KEYS.contains(&k.as_str()) && k != "queries")
        {
            self.osquery_config(path, "", &json);
        } else {
            self.osquery_pack(path, &json, None);
        }
    }

    fn osquery_pack(&mut self, path: &Path, json: &Json, label: Option<&str>) {
        let mut diags = Vec::new();
        let pack = model::pack_from_json(path, json, &mut diags);
        if let Some(l) = label {
            for d in &mut diags {
                d.item = Some(match d.item.take() {
                    Some(i) => format!("{l}:{i}"),
                    None => l.to_string(),
                });
            }
        }
        self.diags.extend(diags);
        let Some(pack) = pack else { return };
        let prefix = label.map(|l| format!("{l}:")).unwrap_or_default();
        for (i, d) in pack.discovery.iter().enumerate() {
            self.sql(path, &format!("{prefix}discovery[{i}]"), d);
        }
        for q in &pack.queries {
            self.sql(path, &format!("{prefix}{}", q.name), &q.sql);
        }
    }

    /// An osquery config object (a config file, or Fleet's agent_options.config).
    fn osquery_config(&mut self, path: &Path, prefix: &str, json: &Json) {
        let Some(obj) = json.as_object() else {
            self.diag(
                path,
                Some(prefix.trim_end_matches('.')),
                "an osquery config must be an object",
            );
            return;
        };
        for (k, v) in obj {
            let item = format!("{prefix}{k}");
            match k.as_str() {
                "decorators" => self.decorators(path, &item, v),
                "schedule" => match v.as_object() {
                    Some(m) => {
                        for (name, q) in m {
                            let mut diags = Vec::new();
                            let label = format!("{item}.{name}");
                            if let Some(q) = model::query_from_json(path, &label, q, &mut diags) {
                                self.diags.extend(diags);
                                self.sql(path, &label, &q.sql);
                            } else {
                                self.diags.extend(diags);
                            }
                        }
                    }
                    None => self.diag(path, Some(&item), "must be an object of name -> query"),
                },
                "packs" => match v.as_object() {
                    Some(m) => {
                        for (name, p) in m {
                            let label = format!("{item}.{name}");
                            match p {
                                // A path on the host: checked when given to `pack check` itself.
                                Json::String(s) if !s.is_empty() => {}
                                Json::Object(_) => self.osquery_pack(path, p, Some(&label)),
                                _ => self.diag(
                                    path,
                                    Some(&label),
                                    "a pack must be a file path or an inline pack object",
                                ),
                            }
                        }
                    }
                    None => self.diag(
                        path,
                        Some(&item),
                        "must be an object of pack name -> path or pack",
                    ),
                },
                "file_paths" | "exclude_paths" => match v.as_object() {
                    Some(m) => {
                        for (cat, paths) in m {
                            let ok = paths.as_array().is_some_and(|a| {
                                a.iter().all(|p| p.as_str().is_some_and(|s| !s.is_empty()))
                            });
                            if !ok {
                                self.diag(
                                    path,
                                    Some(&format!("{item}.{cat}")),
                                    "must be a list of path patterns",
                                );
                            }
                        }
                    }
                    None => self.diag(
                        path,
                        Some(&item),
                        "must be an object of category -> path patterns",
                    ),
                },
                "options" => match v.as_object() {
                    Some(m) => {
                        for (opt, val) in m {
                            if val.is_object() || val.is_array() {
                                self.diag(
                                    path,
                                    Some(&format!("{item}.{opt}")),
                                    "an option value must be a string, number or boolean",
                                );
                            }
                        }
                    }
                    None => self.diag(path, Some(&item), "must be an object of option -> value"),
                },
                k if OSQUERY_CONFIG_KEYS.contains(&k) => {}
                _ => self.diag(
                    path,
                    Some(&item),
                    format!(
                        "unknown osquery config key (known: {})",
                        OSQUERY_CONFIG_KEYS.join(", ")
                    ),
                ),
            }
        }
    }

    fn decorators(&mut self, path: &Path, item: &str, v: &Json) {
        let Some(m) = v.as_object() else {
            self.diag(
                path,
                Some(item),
                "must be an object with load, always and/or interval",
            );
            return;
        };
        for (k, list) in m {
            match k.as_str() {
                "load" | "always" => self.sql_list(path, &format!("{item}.{k}"), list),
                "interval" => match list.as_object() {
                    Some(iv) => {
                        for (secs, l) in iv {
                            if !secs.parse::<u64>().is_ok_and(|n| n > 0 && n % 60 == 0) {
                                self.diag(
                                    path,
                                    Some(&format!("{item}.interval.{secs}")),
                                    "interval decorator keys are seconds, multiples of 60",
                                );
                            }
                            self.sql_list(path, &format!("{item}.interval.{secs}"), l);
                        }
                    }
                    None => self.diag(
                        path,
                        Some(&format!("{item}.interval")),
                        "must be an object of seconds -> SQL list",
                    ),
                },
                _ => self.diag(
                    path,
                    Some(&format!("{item}.{k}")),
                    "unknown decorator kind (load, always, interval)",
                ),
            }
        }
    }

    fn sql_list(&mut self, path: &Path, item: &str, list: &Json) {
        match list.as_array() {
            Some(a) => {
                for (i, s) in a.iter().enumerate() {
                    match s.as_str() {
                        Some(sql) => self.sql(path, &format!("{item}[{i}]"), sql),
                        None => {
                            self.diag(path, Some(&format!("{item}[{i}]")), "must be an SQL string")
                        }
                    }
                }
            }
            None => self.diag(path, Some(item), "must be a list of SQL strings"),
        }
    }

    // ---- YAML ----

    fn check_yaml(&mut self, path: &Path, text: &str, kind: Option<ListKind>) {
        let mut docs = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            match Yaml::deserialize(doc) {
                Ok(v) => docs.push(v),
                Err(e) => {
                    self.diag(path, None, format!("not valid YAML: {e}"));
                    return;
                }
            }
        }
        let kind = kind.or_else(|| list_kind_from_name(path));
        for (n, doc) in docs.iter().enumerate() {
            match doc {
                Yaml::Null => {}
                Yaml::Sequence(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let k = kind.unwrap_or_else(|| sniff_kind(item));
                        self.fleet_item(path, item, i, k, true);
                    }
                }
                Yaml::Mapping(m) if m.contains_key("apiVersion") || m.contains_key("kind") => {
                    self.fleetctl_doc(path, n, m);
                }
                Yaml::Mapping(m) if m.keys().any(|k| k.as_str().is_some_and(|k| GITOPS_KEYS.contains(&k))) => {
                    self.gitops(path, m);
                }
                _ => self.diag(
                    path,
                    Some(&format!("document {}", n + 1)),
                    "not a fleetctl document (apiVersion/kind/spec), a GitOps lib list or a GitOps default.yml/team file",
                ),
            }
        }
    }

    /// Keys of a YAML mapping as strings; others are reported.
    fn keys<'a>(
        &mut self,
        path: &Path,
        item: &str,
        m: &'a serde_yaml_ng::Mapping,
    ) -> Vec<(String, &'a Yaml)> {
        let mut out = Vec::new();
        for (k, v) in m {
            match k.as_str() {
                Some(s) => out.push((s.to_string(), v)),
                None => self.diag(path, Some(item), format!("non-string key {k:?}")),
            }
        }
        out
    }

    fn unknown_keys(
        &mut self,
        path: &Path,
        item: &str,
        keys: &[(String, &Yaml)],
        known: &[&str],
        what: &str,
    ) {
        for (k, _) in keys {
            if !known.contains(&k.as_str()) {
                self.diag(
                    path,
                    Some(item),
                    format!("unknown {what} key `{k}` (known: {})", known.join(", ")),
                );
            }
        }
    }

    /// A Fleet query or policy object (GitOps list item, inline, or spec).
    fn fleet_item(&mut self, path: &Path, item: &Yaml, index: usize, kind: ListKind, gitops: bool) {
        let Some(m) = item.as_mapping() else {
            self.diag(
                path,
                Some(&format!("[{index}]")),
                "a list item must be a mapping",
            );
            return;
        };
        let name = m
            .get("name")
            .and_then(Yaml::as_str)
            .unwrap_or("")
            .to_string();
        let label = if name.is_empty() {
            format!("[{index}]")
        } else {
            name.clone()
        };
        let keys = self.keys(path, &label, m);
        let (known, what): (Vec<&str>, &str) = match kind {
            ListKind::Queries => {
                let mut k = FLEET_QUERY_KEYS.to_vec();
                if !gitops {
                    k.push("team");
                }
                (k, "Fleet query")
            }
            ListKind::Policies => {
                let mut k = FLEET_POLICY_KEYS.to_vec();
                if !gitops {
                    k.push("team");
                }
                (k, "Fleet policy")
            }
        };
        self.unknown_keys(path, &label, &keys, &known, what);
        if name.is_empty() {
            self.diag(path, Some(&label), "missing `name`");
        }
        match m.get("query").and_then(Yaml::as_str) {
            Some(sql) if !sql.trim().is_empty() => self.sql(path, &label, sql),
            _ => self.diag(path, Some(&label), "missing `query` (SQL string)"),
        }
        for (k, v) in &keys {
            let bad = match k.as_str() {
                "name" | "description" | "resolution" | "team" => !v.is_string(),
                "query" => false,
                "automations_enabled"
                | "observer_can_run"
                | "discard_data"
                | "critical"
                | "calendar_events_enabled"
                | "conditional_access_enabled" => !v.is_bool(),
                "interval" => {
                    let in_range = matches!(v.as_u64(), Some(n) if n <= model::MAX_INTERVAL);
                    if !in_range {
                        self.diag(
                            path,
                            Some(&label),
                            format!(
                                "`interval` must be an integer 0..{} (0: not scheduled)",
                                model::MAX_INTERVAL
                            ),
                        );
                    }
                    false
                }
                "platform" => {
                    match v.as_str() {
                        Some("") => {}
                        Some(p) => {
                            if let Err(e) = model::check_platform_list(p, FLEET_PLATFORMS) {
                                self.diag(path, Some(&label), e);
                            }
                        }
                        None => self.diag(path, Some(&label), "`platform` must be a string"),
                    }
                    false
                }
                "min_osquery_version" => {
                    match v.as_str() {
                        Some("") => {}
                        Some(s) if model::is_version(s) => {}
                        _ => self.diag(
                            path,
                            Some(&label),
                            "`min_osquery_version` must be \"\" or a version like 5.4.0",
                        ),
                    }
                    false
                }
                "logging" => {
                    if !v.as_str().is_some_and(|s| FLEET_LOGGING.contains(&s)) {
                        self.diag(
                            path,
                            Some(&label),
                            format!("`logging` must be one of {}", FLEET_LOGGING.join(", ")),
                        );
                    }
                    false
                }
                "labels_include_any" | "labels_exclude_any" => !v
                    .as_sequence()
                    .is_some_and(|s| s.iter().all(Yaml::is_string)),
                _ => false,
            };
            if bad {
                self.diag(path, Some(&label), format!("`{k}` has the wrong type"));
            }
        }
        if kind == ListKind::Queries && !name.is_empty() {
            self.fleet_queries.insert(name.clone());
            if !self
                .fleet_query_defs
                .insert((path.to_path_buf(), name.clone()))
            {
                self.diag(path, Some(&label), "duplicate query name");
            }
        }
    }

    fn fleetctl_doc(&mut self, path: &Path, n: usize, m: &serde_yaml_ng::Mapping) {
        let item = format!("document {}", n + 1);
        let keys = self.keys(path, &item, m);
        self.unknown_keys(
            path,
            &item,
            &keys,
            &["apiVersion", "kind", "spec"],
            "fleetctl document",
        );
        if m.get("apiVersion").and_then(Yaml::as_str) != Some("v1") {
            self.diag(path, Some(&item), "`apiVersion` must be v1");
        }
        let Some(spec) = m.get("spec") else {
            self.diag(path, Some(&item), "missing `spec`");
            return;
        };
        match m.get("kind").and_then(Yaml::as_str) {
            Some("query") => self.fleet_item(path, spec, n, ListKind::Queries, false),
            Some("policy") => self.fleet_item(path, spec, n, ListKind::Policies, false),
            Some("pack") => self.fleet_pack(path, n, spec),
            Some(other) => self.diag(
                path,
                Some(&item),
                format!("kind `{other}` is not checked here (query, policy, pack)"),
            ),
            None => self.diag(path, Some(&item), "missing `kind`"),
        }
    }

    fn fleet_pack(&mut self, path: &Path, n: usize, spec: &Yaml) {
        let Some(m) = spec.as_mapping() else {
            self.diag(
                path,
                Some(&format!("document {}", n + 1)),
                "`spec` must be a mapping",
            );
            return;
        };
        let name = m
            .get("name")
            .and_then(Yaml::as_str)
            .unwrap_or("")
            .to_string();
        let label = format!("pack {}", if name.is_empty() { "?" } else { &name });
        let keys = self.keys(path, &label, m);
        self.unknown_keys(path, &label, &keys, FLEET_PACK_KEYS, "Fleet pack");
        if name.is_empty() {
            self.diag(path, Some(&label), "missing `name`");
        }
        if let Some(t) = m.get("targets") {
            match t.as_mapping() {
                Some(tm) => {
                    let tk = self.keys(path, &label, tm);
                    self.unknown_keys(path, &label, &tk, &["labels", "teams"], "pack targets");
                }
                None => self.diag(
                    path,
                    Some(&label),
                    "`targets` must be a mapping of labels/teams",
                ),
            }
        }
        if let Some(p) = m.get("platform").and_then(Yaml::as_str) {
            if let Err(e) = model::check_platform_list(p, model::PLATFORMS) {
                self.diag(path, Some(&label), e);
            }
        }
        let Some(qs) = m.get("queries").and_then(Yaml::as_sequence) else {
            self.diag(path, Some(&label), "missing `queries` (list)");
            return;
        };
        for (i, q) in qs.iter().enumerate() {
            let Some(qm) = q.as_mapping() else {
                self.diag(
                    path,
                    Some(&label),
                    format!("queries[{i}] must be a mapping"),
                );
                continue;
            };
            let qname = qm
                .get("name")
                .or_else(|| qm.get("query"))
                .and_then(Yaml::as_str)
                .unwrap_or("")
                .to_string();
            let ql = format!(
                "{label}:{}",
                if qname.is_empty() {
                    format!("queries[{i}]")
                } else {
                    qname
                }
            );
            let qk = self.keys(path, &ql, qm);
            self.unknown_keys(path, &ql, &qk, FLEET_PACK_QUERY_KEYS, "pack query");
            match qm.get("query").and_then(Yaml::as_str) {
                Some(r) if !r.is_empty() => {
                    self.pack_refs
                        .push((path.to_path_buf(), name.clone(), r.to_string()))
                }
                _ => self.diag(
                    path,
                    Some(&ql),
                    "missing `query` (the name of a kind: query)",
                ),
            }
            match qm.get("interval").and_then(Yaml::as_u64) {
                Some(n) if (1..=model::MAX_INTERVAL).contains(&n) => {}
                _ => self.diag(
                    path,
                    Some(&ql),
                    format!("`interval` must be an integer 1..{}", model::MAX_INTERVAL),
                ),
            }
            for b in ["snapshot", "removed", "denylist"] {
                if qm.get(b).is_some_and(|v| !v.is_bool()) {
                    self.diag(path, Some(&ql), format!("`{b}` must be true or false"));
                }
            }
            if let Some(p) = qm.get("platform").and_then(Yaml::as_str) {
                if let Err(e) = model::check_platform_list(p, model::PLATFORMS) {
                    self.diag(path, Some(&ql), e);
                }
            }
        }
    }

    fn gitops(&mut self, path: &Path, m: &serde_yaml_ng::Mapping) {
        let keys = self.keys(path, "gitops", m);
        for (k, v) in keys {
            match k.as_str() {
                "queries" | "reports" | "policies" => {
                    let kind = if k == "policies" {
                        ListKind::Policies
                    } else {
                        ListKind::Queries
                    };
                    let Some(items) = v.as_sequence() else {
                        if !v.is_null() {
                            self.diag(path, Some(&k), "must be a list");
                        }
                        continue;
                    };
                    for (i, item) in items.iter().enumerate() {
                        match item.as_mapping().and_then(|im| im.get("path")) {
                            Some(p) => {
                                let Some(rel) = p.as_str() else {
                                    self.diag(
                                        path,
                                        Some(&format!("{k}[{i}]")),
                                        "`path` must be a string",
                                    );
                                    continue;
                                };
                                if item.as_mapping().is_some_and(|im| im.len() > 1) {
                                    self.diag(
                                        path,
                                        Some(&format!("{k}[{i}]")),
                                        "a `path` entry takes no other keys",
                                    );
                                }
                                let target = path.parent().unwrap_or(Path::new(".")).join(rel);
                                if target.is_file() {
                                    self.check_file_as(&target, Some(kind));
                                } else {
                                    self.diag(
                                        path,
                                        Some(&format!("{k}[{i}]")),
                                        format!(
                                            "`path: {rel}` does not exist ({})",
                                            target.display()
                                        ),
                                    );
                                }
                            }
                            None => self.fleet_item(path, item, i, kind, true),
                        }
                    }
                }
                "agent_options" => self.agent_options(path, v),
                k if GITOPS_KEYS.contains(&k) => {}
                _ => self.diag(
                    path,
                    None,
                    format!(
                        "unknown GitOps key `{k}` (known: {})",
                        GITOPS_KEYS.join(", ")
                    ),
                ),
            }
        }
    }

    fn agent_options(&mut self, path: &Path, v: &Yaml) {
        let Some(m) = v.as_mapping() else {
            self.diag(path, Some("agent_options"), "must be a mapping");
            return;
        };
        let keys = self.keys(path, "agent_options", m);
        self.unknown_keys(
            path,
            "agent_options",
            &keys,
            AGENT_OPTIONS_KEYS,
            "agent_options",
        );
        for (k, v) in keys {
            let item = format!("agent_options.{k}");
            match k.as_str() {
                "config" => match serde_json::to_value(v) {
                    Ok(j) => self.osquery_config(path, &format!("{item}."), &j),
                    Err(e) => self.diag(path, Some(&item), e.to_string()),
                },
                "overrides" => {
                    let platforms = v
                        .as_mapping()
                        .and_then(|o| o.get("platforms"))
                        .and_then(Yaml::as_mapping);
                    match platforms {
                        Some(pm) => {
                            for (p, cfg) in pm {
                                let pl = p.as_str().unwrap_or("?");
                                match serde_json::to_value(cfg) {
                                    Ok(j) => self.osquery_config(
                                        path,
                                        &format!("{item}.platforms.{pl}."),
                                        &j,
                                    ),
                                    Err(e) => self.diag(path, Some(&item), e.to_string()),
                                }
                            }
                        }
                        None => self.diag(path, Some(&item), "must be a mapping with `platforms`"),
                    }
                }
                "extensions" => match v.as_mapping() {
                    Some(exts) => {
                        for (name, e) in exts {
                            let el = format!("{item}.{}", name.as_str().unwrap_or("?"));
                            let Some(em) = e.as_mapping() else {
                                self.diag(
                                    path,
                                    Some(&el),
                                    "must be a mapping with channel and platform",
                                );
                                continue;
                            };
                            let ek = self.keys(path, &el, em);
                            self.unknown_keys(
                                path,
                                &el,
                                &ek,
                                &["channel", "platform"],
                                "extension",
                            );
                            if !em.get("channel").is_some_and(Yaml::is_string) {
                                self.diag(path, Some(&el), "missing `channel` (e.g. stable)");
                            }
                            match em.get("platform").and_then(Yaml::as_str) {
                                Some("macos" | "linux" | "windows") => {}
                                _ => self.diag(
                                    path,
                                    Some(&el),
                                    "`platform` must be macos, linux or windows",
                                ),
                            }
                        }
                    }
                    None => self.diag(
                        path,
                        Some(&item),
                        "must be a mapping of extension name -> {channel, platform}",
                    ),
                },
                "command_line_flags" => match v.as_mapping() {
                    Some(fm) => {
                        for (f, val) in fm {
                            if val.is_mapping() || val.is_sequence() {
                                self.diag(
                                    path,
                                    Some(&format!("{item}.{}", f.as_str().unwrap_or("?"))),
                                    "a flag value must be a scalar",
                                );
                            }
                        }
                    }
                    None => {
                        if !v.is_null() {
                            self.diag(path, Some(&item), "must be a mapping of flag -> value");
                        }
                    }
                },
                _ => {}
            }
        }
    }
}

/// Why a file met in a directory is not checked, or `None` if it looks like
/// a pack, an osquery config, a policies file or Fleet YAML. Such folders
/// also hold Sentinel ARM templates, Sigma rules and schemas. A file that
/// does not parse is checked (and reported): it may be a broken pack.
fn not_pack_shaped(path: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(path).ok()?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "yml" || ext == "yaml" {
        let mut any_fleet = false;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let doc = Yaml::deserialize(doc).ok()?;
            any_fleet |= match &doc {
                Yaml::Null => false,
                Yaml::Sequence(items) => items
                    .iter()
                    .all(|i| i.as_mapping().is_some_and(|m| m.contains_key("query"))),
                Yaml::Mapping(m) => {
                    (m.contains_key("apiVersion") && m.contains_key("kind"))
                        || m.keys().any(|k| {
                            k.as_str()
                                .is_some_and(|k| k != "name" && GITOPS_KEYS.contains(&k))
                        })
                }
                _ => false,
            };
        }
        return (!any_fleet).then_some(
            "YAML that is not Fleet's (no fleetctl apiVersion/kind, GitOps keys or list of queries)",
        );
    }
    if ext == "conf" {
        return None;
    }
    let json: Json = serde_json::from_str(&text).ok()?;
    let shaped = json.as_object().is_some_and(|o| {
        o.contains_key("queries")
            || o.contains_key("policies")
            || o.keys().any(|k| OSQUERY_CONFIG_KEYS.contains(&k.as_str()))
    });
    (!shaped).then_some(
        "JSON that is not an osquery pack, config or policies file (no queries, policies, packs or schedule key)",
    )
}

fn list_kind_from_name(path: &Path) -> Option<ListKind> {
    let n = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if n.contains(".policies.") || n.contains("-policies.") {
        Some(ListKind::Policies)
    } else if n.contains(".queries.") || n.contains(".reports.") || n.contains("-queries.") {
        Some(ListKind::Queries)
    } else {
        None
    }
}

fn sniff_kind(item: &Yaml) -> ListKind {
    let m = item.as_mapping();
    if m.is_some_and(|m| m.contains_key("resolution") || m.contains_key("critical")) {
        ListKind::Policies
    } else {
        ListKind::Queries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(name: &str, text: &str) -> Vec<String> {
        let dir = std::env::temp_dir().join(format!("kc-check-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let mut c = Checker::new().unwrap();
        c.check_file(&p);
        c.finish();
        let _ = std::fs::remove_dir_all(&dir);
        c.diags
            .iter()
            .map(|d| d.to_string().replace(&dir.display().to_string(), "D"))
            .collect()
    }

    #[test]
    fn fleet_query_typos_are_reported() {
        let d = check_text(
            "x.queries.yml",
            "- name: a\n  query: SELECT severty FROM keychain_access_events\n  interval: 60\n  logging: differential_ignore_removal\n  platfrom: darwin\n",
        );
        let all = d.join("\n");
        assert!(
            all.contains("D/x.queries.yml:a: SQL error: no such column: severty"),
            "{all}"
        );
        assert!(all.contains("`logging` must be one of"), "{all}");
        assert!(all.contains("unknown Fleet query key `platfrom`"), "{all}");
    }

    #[test]
    fn kolide_pack_must_reference_known_queries() {
        let d = check_text(
            "k.yml",
            "apiVersion: v1\nkind: query\nspec:\n  name: a\n  query: SELECT 1\n---\napiVersion: v1\nkind: pack\nspec:\n  name: p\n  targets:\n    labels: [macOS]\n  queries:\n    - query: a\n      interval: 60\n    - query: b\n      interval: 60\n",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("pack p: references query `b`"), "{d:?}");
    }

    #[test]
    fn osquery_config_decorators_are_prepared() {
        let d = check_text(
            "c.json",
            r#"{"decorators":{"load":["SELECT hostname FROM system_info;","SELECT serial FROM system_info;"]},"packs":{"p":"/var/osquery/packs/p.conf"},"bogus":1}"#,
        );
        let all = d.join("\n");
        assert!(
            all.contains("D/c.json:decorators.load[1]: SQL error: no such column: serial"),
            "{all}"
        );
        assert!(
            all.contains("D/c.json:bogus: unknown osquery config key"),
            "{all}"
        );
        assert_eq!(d.len(), 2, "{all}");
    }

    #[test]
    fn yaml_garbage_is_named() {
        let d = check_text("g.yml", "a: [unclosed\n");
        assert!(d[0].starts_with("D/g.yml: not valid YAML"), "{d:?}");
        let d = check_text("h.yml", "just a string\n");
        assert!(d[0].contains("not a fleetctl document"), "{d:?}");
    }
}
