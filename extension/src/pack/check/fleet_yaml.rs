//! Fleet YAML: `apiVersion: v1` documents of `kind: query | policy | pack`
//! (fleetctl), GitOps lib lists (`*.queries.yml`, `*.policies.yml`), and
//! GitOps `default.yml` / team files (top-level keys, `path:` references,
//! which are checked in turn, `agent_options`). Keys are the documented ones
//! (Fleet docs "Configuration files", "GitOps", "Agent configuration");
//! unknown keys are errors, so typos surface here rather than in Fleet.

use super::{Checker, ListKind};
use crate::pack::model;
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use std::path::Path;

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

impl Checker {
    pub(super) fn check_yaml(&mut self, path: &Path, text: &str, kind: Option<ListKind>) {
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
    pub(super) fn fleet_item(
        &mut self,
        path: &Path,
        item: &Yaml,
        index: usize,
        kind: ListKind,
        gitops: bool,
    ) {
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
                                self.diag(path, Some(&label), e.to_string());
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
                self.diag(path, Some(&label), e.to_string());
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
                    self.diag(path, Some(&ql), e.to_string());
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

/// Why a YAML file is not Fleet's, or `None` if it looks like Fleet YAML
/// (or does not parse: a broken file is checked and reported).
pub(super) fn not_fleet_shaped(text: &str) -> Option<&'static str> {
    let mut any_fleet = false;
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
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
    (!any_fleet).then_some(
        "YAML that is not Fleet's (no fleetctl apiVersion/kind, GitOps keys or list of queries)",
    )
}

fn sniff_kind(item: &Yaml) -> ListKind {
    let m = item.as_mapping();
    if m.is_some_and(|m| m.contains_key("resolution") || m.contains_key("critical")) {
        ListKind::Policies
    } else {
        ListKind::Queries
    }
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
