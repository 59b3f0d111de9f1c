//! `pack export`: every other form of the pack, generated from the pack (and
//! its siblings `<pack>.policies.json` and `<pack>-fallback.conf`), so there is
//! one source of truth.
//!
//! The fallback queries live in their own pack, never in the main one: the
//! main pack's discovery requires the extension's table and the fallback
//! queries require it absent, so in one pack they could never return a row
//! and would still run on every interval.
//!
//! | file (under `--out`) | for |
//! |---|---|
//! | `fleet/lib/<pack>.queries.yml` | Fleet GitOps: bare list of queries (reports) |
//! | `fleet/lib/<pack>.policies.yml` | Fleet GitOps: bare list of policies |
//! | `fleet/lib/<pack>-fallback.queries.yml` | Fleet GitOps: the fallback queries, for Macs without the extension |
//! | `fleet/default.yml` | Fleet GitOps snippet (`reports:`, Fleet 4.82 and later): the lib paths + agent_options |
//! | `fleet/default-before-4.82.yml` | the same with the older top-level `queries:` key |
//! | `fleet/fleetctl/<pack>-queries.yml`, `<pack>-fallback-queries.yml` | `fleetctl apply -f`: `kind: query` docs |
//! | `fleet/fleetctl/<pack>-policies.yml` | `fleetctl apply -f`: `kind: policy` docs |
//! | `kolide/<pack>-pack.yml` | Kolide Fleet / Fleet 2017 packs: `kind: query` + `kind: pack` (main, then fallback) |
//! | `osquery-config-snippet.json`, `osquery.flags` | osqueryd config and flags for Macs with the extension |
//! | `osquery-fallback-config-snippet.json`, `osquery-fallback.flags` | the same for Macs without it |

use super::model::{self, Diag, Pack, Query};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Queries whose name starts with this use osquery's built-in Endpoint
/// Security tables instead of the extension's: they belong in the fallback
/// pack (`<pack>-fallback.conf`) only.
pub const FALLBACK_PREFIX: &str = "es_fallback_";

/// The first Fleet release whose GitOps reads the top-level `reports:` key
/// (it renamed `queries:`, which later releases still accept with a
/// deprecation warning): fleetdm/fleet-gitops "Update for Fleet 4.82.0".
pub const FLEET_REPORTS_KEY_SINCE: &str = "4.82";

/// The extension's registered name (`--extensions_require`, `osquery_extensions.name`).
pub const EXTENSION_NAME: &str = "keychain_access";

/// Where the packs live on a Mac (osquery's macOS layout).
const OSQUERY_DIR: &str = "/var/osquery";

/// Decorators that put the host in every result line (`decorations`): the
/// Sentinel tables read `hostname`, `hardware_serial` and `uuid` (or Fleet's
/// `host_uuid`).
pub const DECORATORS: &[&str] = &[
    "SELECT hostname FROM system_info;",
    "SELECT hardware_serial FROM system_info;",
    "SELECT uuid FROM system_info;",
];

/// Fleet's default decorators plus the serial number.
const FLEET_DECORATORS: &[&str] = &[
    "SELECT uuid AS host_uuid FROM system_info;",
    "SELECT hostname AS hostname FROM system_info;",
    "SELECT hardware_serial FROM system_info;",
];

/// osquery `file_paths` the fallback's Endpoint Security FIM must watch.
const FIM_PATHS: &[&str] = &["/Users/%/Library/Keychains/%%", "/Library/Keychains/%%"];

/// The osqueryd flags the fallback needs (ES tables are off by default).
const ES_FLAGS: &[(&str, &str)] = &[
    ("disable_endpointsecurity", "false"),
    ("disable_endpointsecurity_fim", "false"),
    ("es_fim_enable_open_events", "true"),
];

/// A Fleet query (GitOps lib list item and `kind: query` spec).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetQuery {
    pub name: String,
    pub description: String,
    pub query: String,
    pub interval: u64,
    pub platform: String,
    pub min_osquery_version: String,
    pub automations_enabled: bool,
    pub logging: String,
    pub observer_can_run: bool,
    pub discard_data: bool,
}

/// A Fleet policy (GitOps lib list item and `kind: policy` spec); also the
/// shape of the hand-written `<pack>.policies.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FleetPolicy {
    pub name: String,
    pub description: String,
    pub resolution: String,
    pub query: String,
    pub platform: String,
    pub critical: bool,
}

/// `<pack>.policies.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySource {
    pub policies: Vec<FleetPolicy>,
}

#[derive(Serialize)]
struct Doc<'a, T: Serialize> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    spec: &'a T,
}

/// Old Kolide Fleet `kind: query` spec (name, description, query only).
#[derive(Serialize)]
struct KolideQuery<'a> {
    name: &'a str,
    description: &'a str,
    query: &'a str,
}

#[derive(Serialize)]
struct KolidePack<'a> {
    name: &'a str,
    description: String,
    disabled: bool,
    platform: &'a str,
    targets: KolideTargets,
    queries: Vec<KolidePackQuery<'a>>,
}

#[derive(Serialize)]
struct KolideTargets {
    labels: Vec<String>,
}

#[derive(Serialize)]
struct KolidePackQuery<'a> {
    query: &'a str,
    name: &'a str,
    description: &'a str,
    interval: u64,
    snapshot: bool,
    removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<u64>,
}

/// Fleet's `logging` for a pack query.
pub fn fleet_logging(q: &Query) -> &'static str {
    if q.snapshot {
        "snapshot"
    } else if q.removed {
        "differential"
    } else {
        "differential_ignore_removals"
    }
}

/// A pack query as a Fleet query.
pub fn fleet_query(pack: &Pack, q: &Query) -> FleetQuery {
    let mut description = q.description.clone().unwrap_or_default();
    if let Some(v) = q.value.as_deref().filter(|v| !v.is_empty()) {
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str(v);
    }
    FleetQuery {
        name: q.name.clone(),
        description,
        query: q.sql.clone(),
        interval: q.interval,
        platform: q
            .platform
            .clone()
            .or_else(|| pack.platform.clone())
            .unwrap_or_default(),
        min_osquery_version: q
            .version
            .clone()
            .or_else(|| pack.version.clone())
            .unwrap_or_default(),
        // Results go to Fleet's log destination (and on to Sentinel).
        automations_enabled: true,
        logging: fleet_logging(q).to_string(),
        observer_can_run: false,
        discard_data: false,
    }
}

/// The sibling policies file of a pack: `x.conf` -> `x.policies.json`.
pub fn policies_path(pack_path: &Path) -> PathBuf {
    pack_path.with_file_name(format!(
        "{}.policies.json",
        model::pack_name_from_path(pack_path)
    ))
}

/// The sibling fallback pack of a pack: `x.conf` -> `x-fallback.conf`.
pub fn fallback_path(pack_path: &Path) -> PathBuf {
    pack_path.with_file_name(format!(
        "{}-fallback.conf",
        model::pack_name_from_path(pack_path)
    ))
}

/// Read `<pack>.policies.json` (absent: no policies).
pub fn load_policies(path: &Path) -> Result<Vec<FleetPolicy>, Diag> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Diag::new(path, None, format!("cannot read: {e}"))),
    };
    let src: PolicySource = serde_json::from_str(&text)
        .map_err(|e| Diag::new(path, None, format!("not a policies file: {e}")))?;
    Ok(src.policies)
}

fn header(pack: &Pack, what: &str, with_policies: bool) -> String {
    let file = pack
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let policies = if with_policies {
        format!(" and {}.policies.json", pack.name)
    } else {
        String::new()
    };
    format!(
        "# {what}\n# Generated by `keychain-access pack export` from {file}{policies}.\n# Do not edit: edit the source and export again (a test fails when this copy drifts).\n"
    )
}

fn yaml<T: Serialize>(v: &T) -> anyhow::Result<String> {
    serde_yaml_ng::to_string(v).map_err(|e| anyhow::anyhow!("YAML serialisation: {e}"))
}

fn docs<T: Serialize>(kind: &'static str, specs: &[T]) -> anyhow::Result<String> {
    let mut out = String::new();
    for s in specs {
        out.push_str("---\n");
        out.push_str(&yaml(&Doc {
            api_version: "v1",
            kind,
            spec: s,
        })?);
    }
    Ok(out)
}

fn quote_json(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Every generated file: relative path and contents. `fallback` is the
/// sibling fallback pack, when there is one.
pub fn render(
    pack: &Pack,
    policies: &[FleetPolicy],
    fallback: Option<&Pack>,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let name = &pack.name;
    if let Some(q) = pack
        .queries
        .iter()
        .find(|q| q.name.starts_with(FALLBACK_PREFIX))
    {
        return Err(anyhow::anyhow!(
            "{}: query {} belongs in the fallback pack ({}): the pack's discovery requires the extension, the fallback requires it absent, so here it could never return a row",
            pack.path.display(),
            q.name,
            fallback_path(&pack.path).display()
        ));
    }
    if let Some(q) = fallback.and_then(|fb| {
        fb.queries
            .iter()
            .find(|q| !q.name.starts_with(FALLBACK_PREFIX))
    }) {
        return Err(anyhow::anyhow!(
            "fallback pack: query {} does not start with {FALLBACK_PREFIX}; the fallback pack holds only the Endpoint Security fallbacks",
            q.name
        ));
    }
    let mut files = Vec::new();
    let fleet_queries: Vec<FleetQuery> =
        pack.queries.iter().map(|q| fleet_query(pack, q)).collect();
    let fallback_queries: Vec<FleetQuery> = fallback
        .map(|fb| fb.queries.iter().map(|q| fleet_query(fb, q)).collect())
        .unwrap_or_default();

    files.push((
        PathBuf::from(format!("fleet/lib/{name}.queries.yml")),
        format!(
            "{}{}",
            header(
                pack,
                "Fleet GitOps reports (lib list): reference from default.yml or a team/fleet file.",
                false
            ),
            yaml(&fleet_queries)?
        ),
    ));
    files.push((
        PathBuf::from(format!("fleet/lib/{name}.policies.yml")),
        format!(
            "{}{}",
            header(pack, "Fleet GitOps policies (lib list).", true),
            yaml(&policies)?
        ),
    ));
    files.push((
        PathBuf::from(format!("fleet/fleetctl/{name}-queries.yml")),
        format!(
            "{}{}",
            header(
                pack,
                "Fleet queries for `fleetctl apply -f` (kind: query; Fleet 4.82 and later also read it, with a deprecation warning for kind: report).",
                false
            ),
            docs("query", &fleet_queries)?
        ),
    ));
    files.push((
        PathBuf::from(format!("fleet/fleetctl/{name}-policies.yml")),
        format!(
            "{}{}",
            header(
                pack,
                "Fleet policies for `fleetctl apply -f` (kind: policy).",
                true
            ),
            docs("policy", policies)?
        ),
    ));
    if let Some(fb) = fallback {
        files.push((
            PathBuf::from(format!("fleet/lib/{name}-fallback.queries.yml")),
            format!(
                "{}{}",
                header(
                    fb,
                    "Fleet GitOps reports (lib list) for Macs WITHOUT the extension only: reference from their team/fleet file, never next to the main list.",
                    false
                ),
                yaml(&fallback_queries)?
            ),
        ));
        files.push((
            PathBuf::from(format!("fleet/fleetctl/{name}-fallback-queries.yml")),
            format!(
                "{}{}",
                header(
                    fb,
                    "Fleet queries for `fleetctl apply -f` (kind: query), for Macs WITHOUT the extension only.",
                    false
                ),
                docs("query", &fallback_queries)?
            ),
        ));
    }
    files.push((
        PathBuf::from("fleet/default.yml"),
        fleet_default_yml(pack, fallback.is_some(), "reports"),
    ));
    files.push((
        PathBuf::from(format!(
            "fleet/default-before-{FLEET_REPORTS_KEY_SINCE}.yml"
        )),
        fleet_default_yml(pack, fallback.is_some(), "queries"),
    ));

    // Kolide Fleet / Fleet 2017 packs: the queries, then one pack naming
    // them; the fallback queries in a pack of their own (legacy packs have
    // no discovery, so target the fallback pack at Macs without the extension).
    let mut kolide = header(
        pack,
        "Kolide Fleet / Fleet 2017 \"packs\" for `fleetctl apply -f`: the kind: query docs, then the kind: pack naming them.",
        false,
    );
    kolide.push_str(&kolide_docs(
        pack,
        &fleet_queries,
        name,
        "macOS Keychain credential access (ATT&CK T1555.001): alert, tuning audit and collection health. Legacy packs have no discovery: the extension queries fail on Macs without the extension.",
    )?);
    if let Some(fb) = fallback {
        kolide.push_str(&kolide_docs(
            fb,
            &fallback_queries,
            &format!("{name}-fallback"),
            "macOS Keychain credential access (ATT&CK T1555.001), Endpoint Security fallback: target only Macs WITHOUT the keychain_access extension.",
        )?);
    }
    files.push((PathBuf::from(format!("kolide/{name}-pack.yml")), kolide));

    files.push((
        PathBuf::from("osquery-config-snippet.json"),
        osquery_config(pack, false)?,
    ));
    files.push((PathBuf::from("osquery.flags"), osquery_flags(false)));
    if fallback.is_some() {
        files.push((
            PathBuf::from("osquery-fallback-config-snippet.json"),
            osquery_config(pack, true)?,
        ));
        files.push((PathBuf::from("osquery-fallback.flags"), osquery_flags(true)));
    }
    Ok(files)
}

/// The `kind: query` docs of a legacy pack, then the `kind: pack` naming them.
fn kolide_docs(
    pack: &Pack,
    fleet_queries: &[FleetQuery],
    pack_name: &str,
    description: &str,
) -> anyhow::Result<String> {
    let kq: Vec<KolideQuery> = fleet_queries
        .iter()
        .map(|q| KolideQuery {
            name: &q.name,
            description: &q.description,
            query: &q.query,
        })
        .collect();
    let kpack = KolidePack {
        name: pack_name,
        description: description.to_string(),
        disabled: false,
        platform: pack.platform.as_deref().unwrap_or("darwin"),
        targets: KolideTargets {
            labels: vec!["macOS".to_string()],
        },
        queries: pack
            .queries
            .iter()
            .map(|q| KolidePackQuery {
                query: &q.name,
                name: &q.name,
                description: q.description.as_deref().unwrap_or(""),
                interval: q.interval,
                snapshot: q.snapshot,
                removed: q.removed,
                platform: q.platform.as_deref(),
                version: q.version.as_deref(),
                shard: q.shard,
            })
            .collect(),
    };
    let mut out = docs("query", &kq)?;
    out.push_str("---\n");
    out.push_str(&yaml(&Doc {
        api_version: "v1",
        kind: "pack",
        spec: &kpack,
    })?);
    Ok(out)
}

/// osqueryd config (JSON) for a Mac with the extension (or, `fallback`, without).
fn osquery_config(pack: &Pack, fallback: bool) -> anyhow::Result<String> {
    let file = if fallback {
        format!("{OSQUERY_DIR}/packs/{}-fallback.conf", pack.name)
    } else {
        format!("{OSQUERY_DIR}/packs/{}.conf", pack.name)
    };
    let mut packs = serde_json::Map::new();
    // Same pack name either way: result names stay pack_<pack>_<query>.
    packs.insert(pack.name.clone(), serde_json::Value::String(file));
    let mut cfg = serde_json::Map::new();
    cfg.insert(
        "decorators".into(),
        serde_json::json!({ "load": DECORATORS }),
    );
    cfg.insert("packs".into(), serde_json::Value::Object(packs));
    if fallback {
        cfg.insert(
            "file_paths".into(),
            serde_json::json!({ "keychains": FIM_PATHS }),
        );
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(cfg))?;
    Ok(format!("{text}\n"))
}

/// osqueryd flagfile lines.
fn osquery_flags(fallback: bool) -> String {
    let mut s = String::new();
    if fallback {
        s.push_str(
            "# osqueryd flags for Macs WITHOUT the keychain_access extension (the ES fallback).\n\
             # Add to /var/osquery/osquery.flags; osqueryd needs Full Disk Access (PPPC profile).\n\
             # Generated by `keychain-access pack export`; do not edit.\n",
        );
        for (k, v) in ES_FLAGS {
            s.push_str(&format!("--{k}={v}\n"));
        }
        s.push_str("--logger_plugin=filesystem\n");
    } else {
        s.push_str(&format!(
            "# osqueryd flags for Macs WITH the keychain_access extension.\n\
             # Add to /var/osquery/osquery.flags. extensions.load lists the extension binary\n\
             # (root-owned, not writable by others, name ending in .ext), one path per line.\n\
             # --extensions_require makes osqueryd refuse to start without the extension: a\n\
             # missing extension is then a dark host (seen as missing heartbeats), never a\n\
             # silently blind one. Drop it if you prefer osquery up without it.\n\
             # Generated by `keychain-access pack export`; do not edit.\n\
             --extensions_autoload={OSQUERY_DIR}/extensions.load\n\
             --extensions_require={EXTENSION_NAME}\n\
             --extensions_timeout=10\n\
             --logger_plugin=filesystem\n"
        ));
    }
    s
}

/// The Fleet GitOps snippet (hand-laid YAML so it can carry comments).
/// `list_key` is `reports` (Fleet 4.82 and later) or `queries` (before).
fn fleet_default_yml(pack: &Pack, has_fallback: bool, list_key: &str) -> String {
    let name = &pack.name;
    let versions = if list_key == "reports" {
        format!("Fleet {FLEET_REPORTS_KEY_SINCE} and later (top-level `reports:`; older Fleet: default-before-{FLEET_REPORTS_KEY_SINCE}.yml).")
    } else {
        format!("Fleet before {FLEET_REPORTS_KEY_SINCE} (top-level `queries:`, which {FLEET_REPORTS_KEY_SINCE} renamed to `reports:`; later\n# releases still read it with a deprecation warning: use default.yml there).")
    };
    let mut s = header(
        pack,
        &format!("Fleet GitOps snippet for {versions}\n# Merge into default.yml (paths as here) or a team/fleet file (paths ../lib/...).\n# agent_options REPLACES the current agent options: keep your own options next to these."),
        true,
    );
    s.push_str(&format!(
        "{list_key}:\n  - path: ./lib/{name}.queries.yml\n"
    ));
    if has_fallback {
        s.push_str(&format!(
            "  # Only in the team/fleet file of Macs WITHOUT the extension, instead of the line above:\n  # - path: ../lib/{name}-fallback.queries.yml\n"
        ));
    }
    s.push_str(&format!(
        "policies:\n  - path: ./lib/{name}.policies.yml\nagent_options:\n  config:\n    decorators:\n      load:\n"
    ));
    for d in FLEET_DECORATORS {
        s.push_str(&format!("        - {}\n", quote_json(d)));
    }
    s.push_str(
        "    options:\n      # Fleet's defaults.\n      pack_delimiter: /\n      logger_tls_period: 10\n      distributed_plugin: tls\n      disable_distributed: false\n      logger_tls_endpoint: /api/osquery/log\n      distributed_interval: 10\n      distributed_tls_max_attempts: 3\n",
    );
    s.push_str("    # Only for Macs WITHOUT the extension (es_fallback_* queries), e.g. in their team file:\n    # file_paths:\n    #   keychains:\n");
    for p in FIM_PATHS {
        s.push_str(&format!("    #     - {}\n", quote_json(p)));
    }
    s.push_str(&format!(
        "  # fleetd downloads {EXTENSION_NAME}.ext from your TUF server (target extensions/{EXTENSION_NAME});\n  # without TUF, install a package that adds the binary to /opt/orbit/extensions.load (packs/README.md).\n  extensions:\n    {EXTENSION_NAME}:\n      channel: stable\n      platform: macos\n"
    ));
    s.push_str("  # Only for Macs WITHOUT the extension (Endpoint Security tables are off by default):\n  # command_line_flags:\n");
    for (k, v) in ES_FLAGS {
        s.push_str(&format!("  #   {k}: {v}\n"));
    }
    s
}

/// Write `text` to `path` without ever opening an existing name: the bytes
/// go to a fresh temporary file created exclusively (`O_EXCL`) in the same
/// folder, which is then renamed over `path`. A symbolic link planted at
/// `path` is replaced, never followed, so nothing is written where it
/// points; a reader never sees a half-written file.
fn write_replacing(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".keychain-access-export-")
        .tempfile_in(dir)
        .map_err(|e| err(&e))?;
    tmp.write_all(text.as_bytes()).map_err(|e| err(&e))?;
    // Generated packs are shared content: readable like any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| err(&e))?;
    }
    tmp.persist(path).map_err(|e| err(&e.error))?;
    Ok(())
}

/// Write the files under `out`; returns what was written.
pub fn write_all(out: &Path, files: &[(PathBuf, String)]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, text) in files {
        let p = out.join(rel);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        write_replacing(&p, text)?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(removed: bool, snapshot: bool) -> Query {
        Query {
            name: "q".into(),
            sql: "SELECT 1".into(),
            interval: 60,
            removed,
            snapshot,
            platform: None,
            version: None,
            shard: None,
            denylist: None,
            startup_priority: None,
            description: Some("d".into()),
            value: Some("v".into()),
        }
    }

    #[test]
    fn logging_mapping_follows_fleet() {
        assert_eq!(
            fleet_logging(&q(false, false)),
            "differential_ignore_removals"
        );
        assert_eq!(fleet_logging(&q(true, false)), "differential");
        assert_eq!(fleet_logging(&q(true, true)), "snapshot");
        assert_eq!(fleet_logging(&q(false, true)), "snapshot");
    }

    #[test]
    fn fleet_query_inherits_pack_platform_and_version() {
        let pack = Pack {
            name: "p".into(),
            path: PathBuf::from("p.conf"),
            platform: Some("darwin".into()),
            version: Some("5.4.0".into()),
            shard: None,
            discovery: vec![],
            queries: vec![q(false, false)],
        };
        let f = fleet_query(&pack, &pack.queries[0]);
        assert_eq!(f.platform, "darwin");
        assert_eq!(f.min_osquery_version, "5.4.0");
        assert_eq!(f.description, "d v");
        assert!(f.automations_enabled);
    }
}
