//! osquery JSON: packs (keys, intervals, platforms, versions, shards; every
//! query and discovery statement prepared), configs (`options`,
//! `decorators`, `packs`, `schedule`, ...: decorator and schedule SQL
//! prepared, inline packs checked as packs) and Fleet policy lists
//! (`<pack>.policies.json`).

use super::{Checker, ListKind};
use crate::pack::keys::{deserialize_reporting, field_names, Field};
use crate::pack::model;
use serde::Deserialize;
use serde_json::Value as Json;
use std::path::Path;

/// An osquery config's top-level keys (osquery docs "Configuration"). The
/// sections not checked here are kept as they are.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OsqueryConfig {
    options: JsonField<serde_json::Map<String, Json>>,
    /// A [`Decorators`] object.
    decorators: JsonField<Json>,
    /// Pack name -> a path on the host or an inline pack.
    packs: JsonField<serde_json::Map<String, Json>>,
    /// Query name -> scheduled query.
    schedule: JsonField<serde_json::Map<String, Json>>,
    file_paths: JsonField<serde_json::Map<String, Json>>,
    file_paths_query: JsonField<Json>,
    exclude_paths: JsonField<serde_json::Map<String, Json>>,
    file_accesses: JsonField<Json>,
    events: JsonField<Json>,
    yara: JsonField<Json>,
    prometheus_targets: JsonField<Json>,
    views: JsonField<Json>,
    auto_table_construction: JsonField<Json>,
    feature_vectors: JsonField<Json>,
}

/// An osquery config's `decorators`, by kind.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Decorators {
    /// SQL lists, each statement prepared.
    load: JsonField<Json>,
    always: JsonField<Json>,
    /// Seconds -> SQL list.
    interval: JsonField<serde_json::Map<String, Json>>,
}

/// A `<pack>.policies.json`: Fleet policies, each checked as one.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PoliciesFile {
    policies: JsonField<Vec<Json>>,
}

type JsonField<T> = Field<T, Json>;

fn osquery_config_keys() -> &'static [&'static str] {
    field_names::<OsqueryConfig>()
}

impl Checker {
    pub(super) fn check_json(&mut self, path: &Path, text: &str) {
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
            let (file, unknown) = match deserialize_reporting::<PoliciesFile, _>(&json) {
                Ok(v) => v,
                Err(e) => {
                    self.diag(path, None, format!("unreadable policies file: {e}"));
                    return;
                }
            };
            for k in unknown {
                self.diag(
                    path,
                    None,
                    format!(
                        "unknown policies file key `{k}` (known: {})",
                        field_names::<PoliciesFile>().join(", ")
                    ),
                );
            }
            match &file.policies {
                Field::Typed(items) => {
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
            .any(|k| osquery_config_keys().contains(&k.as_str()) && k != "queries")
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
    pub(super) fn osquery_config(&mut self, path: &Path, prefix: &str, json: &Json) {
        let Some(obj) = json.as_object() else {
            self.diag(
                path,
                Some(prefix.trim_end_matches('.')),
                "an osquery config must be an object",
            );
            return;
        };
        let (cfg, unknown) = match deserialize_reporting::<OsqueryConfig, _>(json) {
            Ok(v) => v,
            // Every field takes any JSON value, so an object always fits;
            // kept as a message rather than a panic all the same.
            Err(e) => {
                self.diag(path, Some(prefix.trim_end_matches('.')), e.to_string());
                return;
            }
        };
        // The sections in the order serde_json keeps them, as before.
        for k in obj.keys() {
            let item = format!("{prefix}{k}");
            match k.as_str() {
                "decorators" => self.decorators(path, &item, &cfg.decorators),
                "schedule" => match cfg.schedule.typed() {
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
                "packs" => match cfg.packs.typed() {
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
                "file_paths" => self.path_patterns(path, &item, &cfg.file_paths),
                "exclude_paths" => self.path_patterns(path, &item, &cfg.exclude_paths),
                "options" => match cfg.options.typed() {
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
                k if unknown.iter().any(|u| u.to_string() == k) => self.diag(
                    path,
                    Some(&item),
                    format!(
                        "unknown osquery config key (known: {})",
                        osquery_config_keys().join(", ")
                    ),
                ),
                _ => {}
            }
        }
    }

    /// `file_paths` / `exclude_paths`: category -> list of path patterns.
    fn path_patterns(
        &mut self,
        path: &Path,
        item: &str,
        v: &JsonField<serde_json::Map<String, Json>>,
    ) {
        let Some(m) = v.typed() else {
            self.diag(
                path,
                Some(item),
                "must be an object of category -> path patterns",
            );
            return;
        };
        for (cat, paths) in m {
            let ok = paths
                .as_array()
                .is_some_and(|a| a.iter().all(|p| p.as_str().is_some_and(|s| !s.is_empty())));
            if !ok {
                self.diag(
                    path,
                    Some(&format!("{item}.{cat}")),
                    "must be a list of path patterns",
                );
            }
        }
    }

    fn decorators(&mut self, path: &Path, item: &str, v: &JsonField<Json>) {
        let decorators = match v {
            Field::Typed(j) if j.is_object() => deserialize_reporting::<Decorators, _>(j),
            _ => {
                self.diag(
                    path,
                    Some(item),
                    "must be an object with load, always and/or interval",
                );
                return;
            }
        };
        let (d, unknown) = match decorators {
            Ok(v) => v,
            // Every field takes any JSON value, so an object always fits;
            // kept as a message rather than a panic all the same.
            Err(e) => {
                self.diag(path, Some(item), e.to_string());
                return;
            }
        };
        let known = field_names::<Decorators>().join(", ");
        // By kind in the order serde_json keeps them, as before.
        for k in v
            .typed()
            .and_then(Json::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            match k.as_str() {
                "load" | "always" => {
                    let list = if k == "load" { &d.load } else { &d.always };
                    if let Field::Typed(list) = list {
                        self.sql_list(path, &format!("{item}.{k}"), list);
                    }
                }
                "interval" => match d.interval.typed() {
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
                k if unknown.iter().any(|u| u.to_string() == k) => self.diag(
                    path,
                    Some(&format!("{item}.{k}")),
                    format!("unknown decorator kind ({known})"),
                ),
                _ => {}
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
}

/// Why a JSON file is not an osquery pack, config or policies file, or
/// `None` if it looks like one (or does not parse: a broken pack is checked
/// and reported).
pub(super) fn not_osquery_shaped(text: &str) -> Option<&'static str> {
    let json: Json = serde_json::from_str(text).ok()?;
    let shaped = json.as_object().is_some_and(|o| {
        o.contains_key("queries")
            || o.contains_key("policies")
            || o.keys()
                .any(|k| osquery_config_keys().contains(&k.as_str()))
    });
    (!shaped).then_some(
        "JSON that is not an osquery pack, config or policies file (no queries, policies, packs or schedule key)",
    )
}
