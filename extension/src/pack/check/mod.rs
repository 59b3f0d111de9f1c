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
//! Every shape is a typed serde struct whose fields are its known keys; the
//! deserializer reports every key it ignored, and the "(known: ...)" list is
//! read from the struct ([`super::keys`]).
//!
//! Every problem is a [`Diag`]: `file:item: message`.

//!
//! One module per file format: `osquery_json.rs` (packs, configs, policy
//! lists) and `fleet_yaml.rs` (fleetctl documents, GitOps files and lists);
//! this file holds the [`Checker`] they share, the directory walk and the
//! cross-file checks.

mod fleet_yaml;
mod osquery_json;

use super::model::Diag;
use super::schema_db;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

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
    pub fn new() -> anyhow::Result<Self> {
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
        return fleet_yaml::not_fleet_shaped(&text);
    }
    if ext == "conf" {
        return None;
    }
    osquery_json::not_osquery_shaped(&text)
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
    fn team_is_a_fleetctl_key_only_and_the_known_list_says_so() {
        let queries = "name, description, query, interval, platform, min_osquery_version, automations_enabled, logging, observer_can_run, discard_data, labels_include_any";
        let d = check_text("t.queries.yml", "- name: a\n  query: SELECT 1\n  team: x\n");
        assert_eq!(
            d,
            [format!(
                "D/t.queries.yml:a: unknown Fleet query key `team` (known: {queries})"
            )]
        );
        let d = check_text(
            "t.yml",
            "apiVersion: v1\nkind: query\nspec:\n  name: a\n  query: SELECT 1\n  team: x\n  tema: y\n",
        );
        assert_eq!(
            d,
            [format!(
                "D/t.yml:a: unknown Fleet query key `tema` (known: {queries}, team)"
            )]
        );
    }

    #[test]
    fn an_integer_key_is_not_read_as_a_field_index() {
        // serde's derived field visitor maps 2 to the third field (`query`).
        let d = check_text("i.queries.yml", "- name: a\n  2: SELECT 1\n");
        assert_eq!(
            d,
            [
                "D/i.queries.yml:a: non-string key Number(2)",
                "D/i.queries.yml:a: missing `query` (SQL string)"
            ]
        );
    }

    #[test]
    fn pack_targets_typos_are_all_reported() {
        let d = check_text(
            "p.yml",
            "apiVersion: v1\nkind: query\nspec:\n  name: a\n  query: SELECT 1\n---\napiVersion: v1\nkind: pack\nspec:\n  name: p\n  targets:\n    lables: [macOS]\n    taems: [x]\n  queries:\n    - query: a\n      interval: 60\n      intreval: 60\n",
        );
        assert_eq!(
            d,
            [
                "D/p.yml:pack p: unknown pack targets key `lables` (known: labels, teams)",
                "D/p.yml:pack p: unknown pack targets key `taems` (known: labels, teams)",
                "D/p.yml:pack p:a: unknown pack query key `intreval` (known: query, name, description, interval, snapshot, removed, shard, platform, version, denylist)",
            ]
        );
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
    fn decorator_kind_typos_are_all_reported() {
        let d = check_text(
            "d.json",
            r#"{"decorators":{"lod":["SELECT 1"],"always":["SELECT 1"],"intreval":{}}}"#,
        );
        assert_eq!(
            d,
            [
                "D/d.json:decorators.intreval: unknown decorator kind (load, always, interval)",
                "D/d.json:decorators.lod: unknown decorator kind (load, always, interval)",
            ]
        );
    }

    #[test]
    fn yaml_garbage_is_named() {
        let d = check_text("g.yml", "a: [unclosed\n");
        assert!(d[0].starts_with("D/g.yml: not valid YAML"), "{d:?}");
        let d = check_text("h.yml", "just a string\n");
        assert!(d[0].contains("not a fleetctl document"), "{d:?}");
    }
}
