//! osquery pack JSON: parse with diagnostics, never panicking on bad input.
//!
//! Keys follow osquery's configuration docs ("Query Packs", "Schedule") and
//! are the fields of [`PackKeys`] and [`QueryKeys`]. Anything else is
//! reported as an unknown key (a typo osquery would silently ignore), every
//! one of them, by the deserializer ([`super::keys`]).

use super::keys::{deserialize_reporting, field_names, Field};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value as Json;
use std::fmt;
use std::path::{Path, PathBuf};

/// osquery's maximum schedule interval (one week).
pub const MAX_INTERVAL: u64 = 604_800;

/// Platforms osquery accepts in `platform` (comma lists allowed).
pub const PLATFORMS: &[&str] = &[
    "darwin", "linux", "posix", "windows", "freebsd", "any", "all",
];

/// The keys of an osquery pack (osquery docs "Query Packs"): the fields are
/// the known keys, so anything else is reported as an unknown key.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PackKeys {
    queries: JsonField<serde_json::Map<String, Json>>,
    platform: JsonField<String>,
    version: JsonField<String>,
    shard: JsonField<Uint>,
    /// Items checked one by one, so each bad entry is named.
    discovery: JsonField<Vec<Json>>,
}

/// The keys of a scheduled query (osquery docs "Schedule"), in a pack or a
/// config's `schedule`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct QueryKeys {
    query: JsonField<String>,
    interval: JsonField<Uint>,
    removed: JsonField<bool>,
    snapshot: JsonField<bool>,
    platform: JsonField<String>,
    version: JsonField<String>,
    shard: JsonField<Uint>,
    denylist: JsonField<bool>,
    startup_priority: JsonField<Uint>,
    description: JsonField<String>,
    value: JsonField<String>,
}

type JsonField<T> = Field<T, Json>;

/// A whole number osquery accepts: an integer or a numeric string (osquery's
/// own packs write `"interval": "3600"`), with the value as written for
/// messages.
struct Uint {
    n: u64,
    written: Json,
}

impl<'de> Deserialize<'de> for Uint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = Json::deserialize(d)?;
        match uint(&written) {
            Some(n) => Ok(Uint { n, written }),
            None => Err(serde::de::Error::custom("not a whole number")),
        }
    }
}

/// Deserialise `T` from a JSON object, reporting every key `T` does not have
/// as `unknown <what> key `k` (known: ...)` on `item`.
fn typed_keys<T: DeserializeOwned + Default>(
    path: &Path,
    item: Option<&str>,
    what: &str,
    json: &Json,
    diags: &mut Vec<Diag>,
) -> T {
    match deserialize_reporting::<T, _>(json) {
        Ok((keys, unknown)) => {
            for k in unknown {
                diags.push(Diag::new(
                    path,
                    item,
                    format!(
                        "unknown {what} key `{k}` (known: {})",
                        field_names::<T>().join(", ")
                    ),
                ));
            }
            keys
        }
        // Every field takes any JSON value, so an object always fits; kept
        // as a message rather than a panic all the same.
        Err(e) => {
            diags.push(Diag::new(path, item, format!("unreadable {what}: {e}")));
            T::default()
        }
    }
}

/// One problem found in a file: `file:query: message` (or `file: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: String,
    pub item: Option<String>,
    pub message: String,
}

impl Diag {
    pub fn new(file: &Path, item: Option<&str>, message: impl Into<String>) -> Self {
        Diag {
            file: file.display().to_string(),
            item: item.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Some(i) => write!(f, "{}:{}: {}", self.file, i, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A scheduled query of a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub name: String,
    pub sql: String,
    pub interval: u64,
    /// osquery's default is true: "removed" rows are logged.
    pub removed: bool,
    pub snapshot: bool,
    pub platform: Option<String>,
    pub version: Option<String>,
    pub shard: Option<u64>,
    pub denylist: Option<bool>,
    pub startup_priority: Option<u64>,
    pub description: Option<String>,
    pub value: Option<String>,
}

/// An osquery pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    /// The pack's name: the file stem (`keychain-access.conf` -> `keychain-access`).
    pub name: String,
    pub path: PathBuf,
    pub platform: Option<String>,
    pub version: Option<String>,
    pub shard: Option<u64>,
    pub discovery: Vec<String>,
    /// Queries in the file's order.
    pub queries: Vec<Query>,
}

impl Pack {
    /// The name osquery's scheduler gives a pack query (`--pack_delimiter=_`).
    pub fn result_name(&self, query: &str) -> String {
        format!("pack_{}_{}", self.name, query)
    }
}

/// The pack name osquery would be given for this file by convention: its stem.
pub fn pack_name_from_path(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pack".to_string())
}

/// Read and parse a pack file. `Err` carries every problem found.
pub fn load_pack(path: &Path) -> Result<Pack, Vec<Diag>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Diag::new(path, None, format!("cannot read: {e}"))])?;
    parse_pack(path, &text)
}

/// Parse pack JSON text; `path` names the file in messages and gives the name.
pub fn parse_pack(path: &Path, text: &str) -> Result<Pack, Vec<Diag>> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| vec![Diag::new(path, None, format!("not valid JSON: {e}"))])?;
    let mut diags = Vec::new();
    let pack = pack_from_json(path, &json, &mut diags);
    match pack {
        Some(mut p) if diags.is_empty() => {
            // Keep the file's order (serde_json's map sorts keys).
            let order = query_order(text);
            p.queries.sort_by_key(|q| {
                order
                    .iter()
                    .position(|n| *n == q.name)
                    .unwrap_or(usize::MAX)
            });
            Ok(p)
        }
        _ => Err(diags),
    }
}

/// The names of `queries` in document order.
fn query_order(text: &str) -> Vec<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Names(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Names {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Names;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Names, A::Error> {
                    let mut v = Vec::new();
                    while let Some((k, IgnoredAny)) = m.next_entry::<String, IgnoredAny>()? {
                        v.push(k);
                    }
                    Ok(Names(v))
                }
            }
            d.deserialize_map(V)
        }
    }
    #[derive(serde::Deserialize)]
    struct Top {
        #[serde(default)]
        queries: Option<Names>,
    }
    serde_json::from_str::<Top>(text)
        .ok()
        .and_then(|t| t.queries)
        .map(|n| n.0)
        .unwrap_or_default()
}

/// Validate a pack object already parsed (also used for packs inlined in an
/// osquery config). Problems go to `diags`; `None` when the shape is unusable.
pub fn pack_from_json(path: &Path, json: &Json, diags: &mut Vec<Diag>) -> Option<Pack> {
    if !json.is_object() {
        diags.push(Diag::new(path, None, "a pack must be a JSON object"));
        return None;
    }
    let keys: PackKeys = typed_keys(path, None, "pack", json, diags);
    let platform = opt_platform(path, None, &keys.platform, diags);
    let version = opt_version(path, None, &keys.version, diags);
    let shard = opt_shard(path, None, &keys.shard, diags);
    let mut discovery = Vec::new();
    match &keys.discovery {
        Field::Absent => {}
        Field::Typed(items) => {
            for (i, d) in items.iter().enumerate() {
                match d.as_str() {
                    Some(s) if !s.trim().is_empty() => discovery.push(s.to_string()),
                    _ => diags.push(Diag::new(
                        path,
                        Some(&format!("discovery[{i}]")),
                        "a discovery entry must be a non-empty SQL string",
                    )),
                }
            }
        }
        Field::Wrong(_) => diags.push(Diag::new(
            path,
            None,
            "`discovery` must be an array of SQL strings",
        )),
    }
    let mut queries = Vec::new();
    match &keys.queries {
        Field::Typed(qs) => {
            if qs.is_empty() {
                diags.push(Diag::new(path, None, "`queries` is empty"));
            }
            for (name, q) in qs {
                if let Some(q) = query_from_json(path, name, q, diags) {
                    queries.push(q);
                }
            }
        }
        Field::Wrong(_) => diags.push(Diag::new(
            path,
            None,
            "`queries` must be an object of name -> query",
        )),
        Field::Absent => diags.push(Diag::new(path, None, "missing `queries`")),
    }
    Some(Pack {
        name: pack_name_from_path(path),
        path: path.to_path_buf(),
        platform,
        version,
        shard,
        discovery,
        queries,
    })
}

/// Validate one scheduled query object (pack query or `schedule` entry).
pub fn query_from_json(
    path: &Path,
    name: &str,
    json: &Json,
    diags: &mut Vec<Diag>,
) -> Option<Query> {
    let item = Some(name);
    if !json.is_object() {
        diags.push(Diag::new(path, item, "a query must be a JSON object"));
        return None;
    }
    if name.trim().is_empty() {
        diags.push(Diag::new(path, item, "a query name must not be empty"));
    }
    let keys: QueryKeys = typed_keys(path, item, "query", json, diags);
    let sql = match &keys.query {
        Field::Typed(s) if !s.trim().is_empty() => s.clone(),
        Field::Typed(_) | Field::Wrong(_) => {
            diags.push(Diag::new(
                path,
                item,
                "`query` must be a non-empty SQL string",
            ));
            String::new()
        }
        Field::Absent => {
            diags.push(Diag::new(path, item, "missing `query`"));
            String::new()
        }
    };
    let interval = match &keys.interval {
        Field::Absent => {
            diags.push(Diag::new(
                path,
                item,
                "missing `interval` (seconds, 1..604800)",
            ));
            0
        }
        Field::Typed(Uint { n, .. }) if (1..=MAX_INTERVAL).contains(n) => *n,
        Field::Typed(Uint { n, .. }) => {
            diags.push(Diag::new(
                path,
                item,
                format!("`interval` {n} is outside 1..{MAX_INTERVAL} seconds"),
            ));
            0
        }
        Field::Wrong(v) => {
            diags.push(Diag::new(
                path,
                item,
                format!("`interval` must be a whole number of seconds (integer or numeric string), not {v}"),
            ));
            0
        }
    };
    let removed = opt_bool(path, item, "removed", &keys.removed, diags).unwrap_or(true);
    let snapshot = opt_bool(path, item, "snapshot", &keys.snapshot, diags).unwrap_or(false);
    let denylist = opt_bool(path, item, "denylist", &keys.denylist, diags);
    let platform = opt_platform(path, item, &keys.platform, diags);
    let version = opt_version(path, item, &keys.version, diags);
    let shard = opt_shard(path, item, &keys.shard, diags);
    let startup_priority = match &keys.startup_priority {
        Field::Absent => None,
        Field::Typed(u) => Some(u.n),
        Field::Wrong(_) => {
            diags.push(Diag::new(
                path,
                item,
                "`startup_priority` must be a non-negative integer",
            ));
            None
        }
    };
    let description = opt_string(path, item, "description", &keys.description, diags);
    let value = opt_string(path, item, "value", &keys.value, diags);
    Some(Query {
        name: name.to_string(),
        sql,
        interval,
        removed,
        snapshot,
        platform,
        version,
        shard,
        denylist,
        startup_priority,
        description,
        value,
    })
}

/// An integer or a numeric string (osquery's own packs write `"interval": "3600"`).
fn uint(v: &Json) -> Option<u64> {
    match v {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

fn opt_bool(
    path: &Path,
    item: Option<&str>,
    key: &str,
    v: &JsonField<bool>,
    diags: &mut Vec<Diag>,
) -> Option<bool> {
    match v {
        Field::Absent => None,
        Field::Typed(b) => Some(*b),
        Field::Wrong(other) => {
            diags.push(Diag::new(
                path,
                item,
                format!("`{key}` must be true or false, not {other}"),
            ));
            None
        }
    }
}

fn opt_string(
    path: &Path,
    item: Option<&str>,
    key: &str,
    v: &JsonField<String>,
    diags: &mut Vec<Diag>,
) -> Option<String> {
    match v {
        Field::Absent => None,
        Field::Typed(s) => Some(s.clone()),
        Field::Wrong(_) => {
            diags.push(Diag::new(path, item, format!("`{key}` must be a string")));
            None
        }
    }
}

fn opt_platform(
    path: &Path,
    item: Option<&str>,
    v: &JsonField<String>,
    diags: &mut Vec<Diag>,
) -> Option<String> {
    let s = opt_string(path, item, "platform", v, diags)?;
    if let Err(e) = check_platform_list(&s, PLATFORMS) {
        diags.push(Diag::new(path, item, e.to_string()));
    }
    Some(s)
}

/// Check a comma-separated platform list against the allowed names.
pub fn check_platform_list(s: &str, allowed: &[&str]) -> anyhow::Result<()> {
    for p in s.split(',') {
        let p = p.trim();
        if !allowed.contains(&p) {
            return Err(anyhow::anyhow!(
                "unknown platform `{p}` in `{s}` (known: {}; comma-separated)",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

fn opt_version(
    path: &Path,
    item: Option<&str>,
    v: &JsonField<String>,
    diags: &mut Vec<Diag>,
) -> Option<String> {
    let s = opt_string(path, item, "version", v, diags)?;
    if !is_version(&s) {
        diags.push(Diag::new(
            path,
            item,
            format!("`version` `{s}` is not an osquery version like 5.4.0"),
        ));
    }
    Some(s)
}

/// `5`, `5.4`, `5.4.0`: dot-separated numbers.
pub fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn opt_shard(
    path: &Path,
    item: Option<&str>,
    v: &JsonField<Uint>,
    diags: &mut Vec<Diag>,
) -> Option<u64> {
    let written = match v {
        Field::Absent => return None,
        Field::Typed(Uint { n, .. }) if (1..=100).contains(n) => return Some(*n),
        Field::Typed(Uint { written, .. }) | Field::Wrong(written) => written,
    };
    diags.push(Diag::new(
        path,
        item,
        format!("`shard` must be 1..100, not {written}"),
    ));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pack, Vec<Diag>> {
        parse_pack(Path::new("packs/x.conf"), text)
    }

    #[test]
    fn accepts_osquery_style_packs() {
        let p = parse(
            r#"{"platform":"darwin","discovery":["SELECT 1"],"queries":{
                "b":{"query":"SELECT 1","interval":"3600","version":"1.4.5","description":"d","value":"v"},
                "a":{"query":"SELECT 2","interval":60,"removed":false,"platform":"darwin,linux","shard":10}}}"#,
        )
        .unwrap();
        assert_eq!(p.name, "x");
        assert_eq!(p.queries[0].name, "b", "file order is kept");
        assert!(!p.queries[1].removed);
        assert!(
            p.queries[0].removed,
            "osquery's default for removed is true"
        );
        assert_eq!(p.queries[0].interval, 3600);
        assert_eq!(p.result_name("a"), "pack_x_a");
    }

    #[test]
    fn reports_every_problem_with_file_and_query() {
        let errs = parse(
            r#"{"platfrom":"darwin","queries":{
                "q":{"query":"","interval":0,"removed":"no","platform":"macos","shard":101,"intreval":5,"version":"five"}}}"#,
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        let all = text.join("\n");
        for needle in [
            "packs/x.conf: unknown pack key `platfrom` (known: queries, platform, version, shard, discovery)\n",
            "packs/x.conf:q: unknown query key `intreval` (known: query, interval, removed, snapshot, platform, version, shard, denylist, startup_priority, description, value)\n",
            "packs/x.conf:q: `query` must be a non-empty SQL string",
            "packs/x.conf:q: `interval` 0 is outside 1..604800",
            "packs/x.conf:q: `removed` must be true or false",
            "packs/x.conf:q: unknown platform `macos`",
            "packs/x.conf:q: `shard` must be 1..100",
            "packs/x.conf:q: `version` `five`",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn bad_json_names_the_file() {
        let errs = parse("{not json").unwrap_err();
        assert!(errs[0]
            .to_string()
            .starts_with("packs/x.conf: not valid JSON"));
        let errs = parse("[]").unwrap_err();
        assert!(errs[0].to_string().contains("must be a JSON object"));
        let errs =
            parse(r#"{"queries":{"q":{"query":"SELECT 1","interval":604801}}}"#).unwrap_err();
        assert!(errs[0].to_string().contains("outside"));
        let errs = parse(r#"{"queries":{"q":{"query":"SELECT 1"}}}"#).unwrap_err();
        assert!(errs[0].to_string().contains("missing `interval`"));
    }
}
