//! Fleet YAML: `apiVersion: v1` documents of `kind: query | policy | pack`
//! (fleetctl), GitOps lib lists (`*.queries.yml`, `*.policies.yml`), and
//! GitOps `default.yml` / team files (top-level keys, `path:` references,
//! which are checked in turn, `agent_options`). Keys are the documented ones
//! (Fleet docs "Configuration files", "GitOps", "Agent configuration"), the
//! fields of one struct per shape; unknown keys are errors, every one of
//! them, so typos surface here rather than in Fleet.

use super::{Checker, ListKind};
use crate::pack::keys::{deserialize_reporting, field_names, Field};
use crate::pack::model;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use std::path::Path;

const FLEET_PLATFORMS: &[&str] = &["darwin", "windows", "linux", "chrome"];
const FLEET_LOGGING: &[&str] = &["snapshot", "differential", "differential_ignore_removals"];

type YamlField<T> = Field<T, Yaml>;

/// A Fleet query: a GitOps `queries:`/`reports:` item, or the `spec` of a
/// fleetctl `kind: query` (which alone takes `team`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct FleetQuery {
    name: YamlField<String>,
    description: YamlField<String>,
    query: YamlField<String>,
    interval: YamlField<u64>,
    platform: YamlField<String>,
    min_osquery_version: YamlField<String>,
    automations_enabled: YamlField<bool>,
    logging: YamlField<String>,
    observer_can_run: YamlField<bool>,
    discard_data: YamlField<bool>,
    labels_include_any: YamlField<Vec<String>>,
    team: YamlField<String>,
}

/// A Fleet policy: a GitOps `policies:` item, a `<pack>.policies.json`
/// entry, or the `spec` of a fleetctl `kind: policy` (which alone takes `team`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct FleetPolicy {
    name: YamlField<String>,
    description: YamlField<String>,
    resolution: YamlField<String>,
    query: YamlField<String>,
    platform: YamlField<String>,
    critical: YamlField<bool>,
    labels_include_any: YamlField<Vec<String>>,
    labels_exclude_any: YamlField<Vec<String>>,
    calendar_events_enabled: YamlField<bool>,
    conditional_access_enabled: YamlField<bool>,
    /// Fleet's own shapes, not checked here.
    install_software: YamlField<Yaml>,
    run_script: YamlField<Yaml>,
    team: YamlField<String>,
}

/// The keys only a fleetctl `spec` takes: GitOps files say the team by
/// where they are.
const FLEETCTL_ONLY: &[&str] = &["team"];

/// A fleetctl document (`apiVersion: v1`, `kind`, `spec`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct FleetctlDoc {
    #[serde(rename = "apiVersion")]
    api_version: YamlField<String>,
    kind: YamlField<String>,
    /// Read by kind.
    spec: YamlField<Yaml>,
}

/// The `spec` of a fleetctl `kind: pack` (Kolide's form).
#[derive(Deserialize, Default)]
#[serde(default)]
struct FleetPack {
    name: YamlField<String>,
    description: YamlField<Yaml>,
    disabled: YamlField<Yaml>,
    platform: YamlField<String>,
    /// A [`PackTargets`] mapping.
    targets: YamlField<Yaml>,
    /// [`FleetPackQuery`] mappings, each checked on its own.
    queries: YamlField<Vec<Yaml>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PackTargets {
    labels: YamlField<Yaml>,
    teams: YamlField<Yaml>,
}

/// One query of a fleetctl pack: `query` names a `kind: query`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct FleetPackQuery {
    query: YamlField<String>,
    name: YamlField<String>,
    description: YamlField<Yaml>,
    interval: YamlField<u64>,
    snapshot: YamlField<bool>,
    removed: YamlField<bool>,
    shard: YamlField<Yaml>,
    platform: YamlField<String>,
    version: YamlField<Yaml>,
    denylist: YamlField<bool>,
}

/// A GitOps `default.yml` or team file (Fleet docs "GitOps"); the sections
/// not checked here are kept as they are.
#[derive(Deserialize, Default)]
#[serde(default)]
struct GitOps {
    name: YamlField<Yaml>,
    policies: YamlField<Yaml>,
    queries: YamlField<Yaml>,
    reports: YamlField<Yaml>,
    agent_options: YamlField<Yaml>,
    controls: YamlField<Yaml>,
    org_settings: YamlField<Yaml>,
    team_settings: YamlField<Yaml>,
    settings: YamlField<Yaml>,
    software: YamlField<Yaml>,
    labels: YamlField<Yaml>,
    custom_host_vitals: YamlField<Yaml>,
}

/// GitOps `agent_options` (Fleet docs "Agent configuration").
#[derive(Deserialize, Default)]
#[serde(default)]
struct AgentOptions {
    path: YamlField<Yaml>,
    /// An osquery config, checked as one.
    config: YamlField<Yaml>,
    /// An [`Overrides`] mapping.
    overrides: YamlField<Yaml>,
    extensions: YamlField<serde_yaml_ng::Mapping>,
    command_line_flags: YamlField<serde_yaml_ng::Mapping>,
    update_channels: YamlField<Yaml>,
    script_execution_timeout: YamlField<Yaml>,
}

/// `agent_options.overrides`: osquery configs by platform.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Overrides {
    platforms: YamlField<serde_yaml_ng::Mapping>,
}

/// One of `agent_options.extensions`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ExtensionChannel {
    channel: YamlField<String>,
    platform: YamlField<String>,
}

/// The top-level keys of a GitOps file, for telling one apart.
fn gitops_keys() -> &'static [&'static str] {
    field_names::<GitOps>()
}

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
                Yaml::Mapping(m) if m.keys().any(|k| k.as_str().is_some_and(|k| gitops_keys().contains(&k))) => {
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

    /// Deserialise `T` from a YAML mapping, reporting on `item`, in document
    /// order, every key that is not one of its fields, or is one of
    /// `not_here` (a field this form of the shape does not take), as
    /// `unknown <what> key `k` (known: ...)`.
    fn typed_keys<T: DeserializeOwned + Default>(
        &mut self,
        path: &Path,
        item: &str,
        what: &str,
        m: &serde_yaml_ng::Mapping,
        not_here: &[&str],
    ) -> T {
        let (value, mut unknown) = self.read_keys::<T>(path, item, what, m);
        let known: Vec<&str> = field_names::<T>()
            .iter()
            .copied()
            .filter(|f| !not_here.contains(f))
            .collect();
        unknown.extend(
            not_here
                .iter()
                .filter(|f| m.contains_key(**f))
                .map(|f| f.to_string()),
        );
        unknown.sort_by_key(|k| m.keys().position(|mk| mk.as_str() == Some(k.as_str())));
        for k in unknown {
            self.diag(
                path,
                Some(item),
                format!("unknown {what} key `{k}` (known: {})", known.join(", ")),
            );
        }
        value
    }

    /// Deserialise `T` from a YAML mapping: the value and the paths of the
    /// keys it does not have. Non-string keys are reported on `item` and left
    /// out (serde would read an integer key as a field's index).
    fn read_keys<T: DeserializeOwned + Default>(
        &mut self,
        path: &Path,
        item: &str,
        what: &str,
        m: &serde_yaml_ng::Mapping,
    ) -> (T, Vec<String>) {
        let mut strings = serde_yaml_ng::Mapping::new();
        for (k, v) in m {
            if k.as_str().is_some() {
                strings.insert(k.clone(), v.clone());
            } else {
                self.diag(path, Some(item), format!("non-string key {k:?}"));
            }
        }
        match deserialize_reporting::<T, _>(&Yaml::Mapping(strings)) {
            Ok((value, ignored)) => (value, ignored.iter().map(|p| p.to_string()).collect()),
            // Every field takes any YAML value, so a mapping always fits;
            // kept as a message rather than a panic all the same.
            Err(e) => {
                self.diag(path, Some(item), format!("unreadable {what}: {e}"));
                (T::default(), Vec::new())
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
        let not_here = if gitops { FLEETCTL_ONLY } else { &[] };
        // Each field's problem, by key; reported in document order below.
        let mut problems: Vec<(&str, String)> = Vec::new();
        let sql = match kind {
            ListKind::Queries => {
                let q: FleetQuery = self.typed_keys(path, &label, "Fleet query", m, not_here);
                check_string(&mut problems, "name", &q.name);
                check_string(&mut problems, "description", &q.description);
                check_string(&mut problems, "team", &q.team);
                for (key, b) in [
                    ("automations_enabled", &q.automations_enabled),
                    ("observer_can_run", &q.observer_can_run),
                    ("discard_data", &q.discard_data),
                ] {
                    check_bool(&mut problems, key, b);
                }
                let in_range = match &q.interval {
                    Field::Absent => true,
                    Field::Typed(n) => *n <= model::MAX_INTERVAL,
                    Field::Wrong(_) => false,
                };
                if !in_range {
                    problems.push((
                        "interval",
                        format!(
                            "`interval` must be an integer 0..{} (0: not scheduled)",
                            model::MAX_INTERVAL
                        ),
                    ));
                }
                check_fleet_platform(&mut problems, &q.platform);
                match &q.min_osquery_version {
                    Field::Absent => {}
                    Field::Typed(s) if s.is_empty() || model::is_version(s) => {}
                    _ => problems.push((
                        "min_osquery_version",
                        "`min_osquery_version` must be \"\" or a version like 5.4.0".to_string(),
                    )),
                }
                if q.logging.is_present()
                    && !q
                        .logging
                        .typed()
                        .is_some_and(|s| FLEET_LOGGING.contains(&s.as_str()))
                {
                    problems.push((
                        "logging",
                        format!("`logging` must be one of {}", FLEET_LOGGING.join(", ")),
                    ));
                }
                check_labels(&mut problems, "labels_include_any", &q.labels_include_any);
                q.query
            }
            ListKind::Policies => {
                let p: FleetPolicy = self.typed_keys(path, &label, "Fleet policy", m, not_here);
                check_string(&mut problems, "name", &p.name);
                check_string(&mut problems, "description", &p.description);
                check_string(&mut problems, "resolution", &p.resolution);
                check_string(&mut problems, "team", &p.team);
                for (key, b) in [
                    ("critical", &p.critical),
                    ("calendar_events_enabled", &p.calendar_events_enabled),
                    ("conditional_access_enabled", &p.conditional_access_enabled),
                ] {
                    check_bool(&mut problems, key, b);
                }
                check_fleet_platform(&mut problems, &p.platform);
                check_labels(&mut problems, "labels_include_any", &p.labels_include_any);
                check_labels(&mut problems, "labels_exclude_any", &p.labels_exclude_any);
                p.query
            }
        };
        if name.is_empty() {
            self.diag(path, Some(&label), "missing `name`");
        }
        match sql.typed() {
            Some(sql) if !sql.trim().is_empty() => self.sql(path, &label, sql),
            _ => self.diag(path, Some(&label), "missing `query` (SQL string)"),
        }
        problems.sort_by_key(|(k, _)| m.keys().position(|mk| mk.as_str() == Some(*k)));
        for (_, msg) in problems {
            self.diag(path, Some(&label), msg);
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
        let doc: FleetctlDoc = self.typed_keys(path, &item, "fleetctl document", m, &[]);
        if doc.api_version.typed().map(String::as_str) != Some("v1") {
            self.diag(path, Some(&item), "`apiVersion` must be v1");
        }
        let spec = match &doc.spec {
            Field::Absent => {
                self.diag(path, Some(&item), "missing `spec`");
                return;
            }
            Field::Typed(s) | Field::Wrong(s) => s,
        };
        match &doc.kind {
            Field::Typed(k) if k == "query" => {
                self.fleet_item(path, spec, n, ListKind::Queries, false)
            }
            Field::Typed(k) if k == "policy" => {
                self.fleet_item(path, spec, n, ListKind::Policies, false)
            }
            Field::Typed(k) if k == "pack" => self.fleet_pack(path, n, spec),
            Field::Typed(other) => self.diag(
                path,
                Some(&item),
                format!("kind `{other}` is not checked here (query, policy, pack)"),
            ),
            Field::Absent | Field::Wrong(_) => self.diag(path, Some(&item), "missing `kind`"),
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
        let pack: FleetPack = self.typed_keys(path, &label, "Fleet pack", m, &[]);
        if name.is_empty() {
            self.diag(path, Some(&label), "missing `name`");
        }
        match &pack.targets {
            Field::Absent => {}
            Field::Typed(t) | Field::Wrong(t) => match t.as_mapping() {
                Some(tm) => {
                    let _: PackTargets = self.typed_keys(path, &label, "pack targets", tm, &[]);
                }
                None => self.diag(
                    path,
                    Some(&label),
                    "`targets` must be a mapping of labels/teams",
                ),
            },
        }
        if let Some(p) = pack.platform.typed() {
            if let Err(e) = model::check_platform_list(p, model::PLATFORMS) {
                self.diag(path, Some(&label), e.to_string());
            }
        }
        let Some(qs) = pack.queries.typed() else {
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
            let pq: FleetPackQuery = self.typed_keys(path, &ql, "pack query", qm, &[]);
            match pq.query.typed() {
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
            match pq.interval.typed() {
                Some(n) if (1..=model::MAX_INTERVAL).contains(n) => {}
                _ => self.diag(
                    path,
                    Some(&ql),
                    format!("`interval` must be an integer 1..{}", model::MAX_INTERVAL),
                ),
            }
            for (b, v) in [
                ("snapshot", &pq.snapshot),
                ("removed", &pq.removed),
                ("denylist", &pq.denylist),
            ] {
                if matches!(v, Field::Wrong(_)) {
                    self.diag(path, Some(&ql), format!("`{b}` must be true or false"));
                }
            }
            if let Some(p) = pq.platform.typed() {
                if let Err(e) = model::check_platform_list(p, model::PLATFORMS) {
                    self.diag(path, Some(&ql), e.to_string());
                }
            }
        }
    }

    fn gitops(&mut self, path: &Path, m: &serde_yaml_ng::Mapping) {
        let (g, unknown) = self.read_keys::<GitOps>(path, "gitops", "GitOps file", m);
        // The checked sections in document order, as their problems read.
        for k in m.keys().filter_map(Yaml::as_str) {
            let (section, kind) = match k {
                "queries" => (&g.queries, ListKind::Queries),
                "reports" => (&g.reports, ListKind::Queries),
                "policies" => (&g.policies, ListKind::Policies),
                "agent_options" => {
                    if let Field::Typed(v) = &g.agent_options {
                        self.agent_options(path, v);
                    }
                    continue;
                }
                _ => {
                    if unknown.iter().any(|u| u == k) {
                        self.diag(
                            path,
                            None,
                            format!(
                                "unknown GitOps key `{k}` (known: {})",
                                gitops_keys().join(", ")
                            ),
                        );
                    }
                    continue;
                }
            };
            let Field::Typed(v) = section else { continue };
            let Some(items) = v.as_sequence() else {
                if !v.is_null() {
                    self.diag(path, Some(k), "must be a list");
                }
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                match item.as_mapping().and_then(|im| im.get("path")) {
                    Some(p) => {
                        let Some(rel) = p.as_str() else {
                            self.diag(path, Some(&format!("{k}[{i}]")), "`path` must be a string");
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
                                format!("`path: {rel}` does not exist ({})", target.display()),
                            );
                        }
                    }
                    None => self.fleet_item(path, item, i, kind, true),
                }
            }
        }
    }

    fn agent_options(&mut self, path: &Path, v: &Yaml) {
        let Some(m) = v.as_mapping() else {
            self.diag(path, Some("agent_options"), "must be a mapping");
            return;
        };
        let ao: AgentOptions = self.typed_keys(path, "agent_options", "agent_options", m, &[]);
        // The checked keys in document order, as their problems read.
        for k in m.keys().filter_map(Yaml::as_str) {
            let item = format!("agent_options.{k}");
            match k {
                "config" => {
                    let Field::Typed(v) = &ao.config else {
                        continue;
                    };
                    match serde_json::to_value(v) {
                        Ok(j) => self.osquery_config(path, &format!("{item}."), &j),
                        Err(e) => self.diag(path, Some(&item), e.to_string()),
                    }
                }
                "overrides" => {
                    let Field::Typed(v) = &ao.overrides else {
                        continue;
                    };
                    let Some(om) = v.as_mapping() else {
                        self.diag(path, Some(&item), "must be a mapping with `platforms`");
                        continue;
                    };
                    let o: Overrides = self.typed_keys(path, &item, "overrides", om, &[]);
                    let Some(pm) = o.platforms.typed() else {
                        self.diag(path, Some(&item), "must be a mapping with `platforms`");
                        continue;
                    };
                    for (p, cfg) in pm {
                        let pl = p.as_str().unwrap_or("?");
                        match serde_json::to_value(cfg) {
                            Ok(j) => {
                                self.osquery_config(path, &format!("{item}.platforms.{pl}."), &j)
                            }
                            Err(e) => self.diag(path, Some(&item), e.to_string()),
                        }
                    }
                }
                "extensions" => {
                    let Some(exts) = ao.extensions.typed() else {
                        self.diag(
                            path,
                            Some(&item),
                            "must be a mapping of extension name -> {channel, platform}",
                        );
                        continue;
                    };
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
                        let ext: ExtensionChannel =
                            self.typed_keys(path, &el, "extension", em, &[]);
                        if ext.channel.typed().is_none() {
                            self.diag(path, Some(&el), "missing `channel` (e.g. stable)");
                        }
                        match ext.platform.typed().map(String::as_str) {
                            Some("macos" | "linux" | "windows") => {}
                            _ => self.diag(
                                path,
                                Some(&el),
                                "`platform` must be macos, linux or windows",
                            ),
                        }
                    }
                }
                "command_line_flags" => match &ao.command_line_flags {
                    Field::Typed(fm) => {
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
                    Field::Wrong(v) if !v.is_null() => {
                        self.diag(path, Some(&item), "must be a mapping of flag -> value")
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
}

/// One problem per field of the wrong type, by key.
fn check_string(
    problems: &mut Vec<(&'static str, String)>,
    key: &'static str,
    v: &YamlField<String>,
) {
    if matches!(v, Field::Wrong(_)) {
        problems.push((key, format!("`{key}` has the wrong type")));
    }
}

fn check_bool(problems: &mut Vec<(&'static str, String)>, key: &'static str, v: &YamlField<bool>) {
    if matches!(v, Field::Wrong(_)) {
        problems.push((key, format!("`{key}` has the wrong type")));
    }
}

fn check_labels(
    problems: &mut Vec<(&'static str, String)>,
    key: &'static str,
    v: &YamlField<Vec<String>>,
) {
    if matches!(v, Field::Wrong(_)) {
        problems.push((key, format!("`{key}` has the wrong type")));
    }
}

/// Fleet's `platform`: "" (every platform) or a comma list of Fleet's names.
fn check_fleet_platform(problems: &mut Vec<(&'static str, String)>, v: &YamlField<String>) {
    match v {
        Field::Absent => {}
        Field::Typed(p) if p.is_empty() => {}
        Field::Typed(p) => {
            if let Err(e) = model::check_platform_list(p, FLEET_PLATFORMS) {
                problems.push(("platform", e.to_string()));
            }
        }
        Field::Wrong(_) => problems.push(("platform", "`platform` must be a string".to_string())),
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
                            .is_some_and(|k| k != "name" && gitops_keys().contains(&k))
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
