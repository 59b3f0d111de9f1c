//! osquery pack JSON: parse with diagnostics, never panicking on bad input.
//!
//! Keys follow osquery's configuration docs ("Query Packs", "Schedule"):
//! pack-level `queries`, `platform`, `version`, `shard`, `discovery`; per
//! query `query`, `interval`, `removed`, `snapshot`, `platform`, `version`,
//! `shard`, `denylist`, `startup_priority`, `description`, `value`. Anything
//! else is reported as an unknown key (a typo osquery would silently ignore).

use serde_json::Value as Json;
use std::fmt;
use std::path::{Path, PathBuf};

/// osquery's maximum schedule interval (one week).
pub const MAX_INTERVAL: u64 = 604_800;

/// Platforms osquery accepts in `platform` (comma lists allowed).
pub const PLATFORMS: &[&str] = &[
    "darwin", "linux", "posix", "windows", "freebsd", "any", "all",
];

const PACK_KEYS: &[&str] = &["queries", "platform", "version", "shard", "discovery"];
const QUERY_KEYS: &[&str] = &[
    "query",
    "interval",
    "removed",
    "snapshot",
    "platform",
    "version",
    "shard",
    "denylist",
    "startup_priority",
    "description",
    "value",
];

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
    let Some(obj) = json.as_object() else {
        diags.push(Diag::new(path, None, "a pack must be a JSON object"));
        return None;
    };
    for k in obj.keys() {
        if !PACK_KEYS.contains(&k.as_str()) {
            diags.push(Diag::new(
                path,
                None,
                format!("unknown pack key `{k}` (known: {})", PACK_KEYS.join(", ")),
            ));
        }
    }
    let platform = opt_platform(path, None, obj.get("platform"), diags);
    let version = opt_version(path, None, obj.get("version"), diags);
    let shard = opt_shard(path, None, obj.get("shard"), diags);
    let mut discovery = Vec::new();
    match obj.get("discovery") {
        None => {}
        Some(Json::Array(items)) => {
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
        Some(_) => diags.push(Diag::new(
            path,
            None,
            "`discovery` must be an array of SQL strings",
        )),
    }
    let mut queries = Vec::new();
    match obj.get("queries") {
        Some(Json::Object(qs)) => {
            if qs.is_empty() {
                diags.push(Diag::new(path, None, "`queries` is empty"));
            }
            for (name, q) in qs {
                if let Some(q) = query_from_json(path, name, q, diags) {
                    queries.push(q);
                }
            }
        }
        Some(_) => diags.push(Diag::new(
            path,
            None,
            "`queries` must be an object of name -> query",
        )),
        None => diags.push(Diag::new(path, None, "missing `queries`")),
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
    let Some(obj) = json.as_object() else {
        diags.push(Diag::new(path, item, "a query must be a JSON object"));
        return None;
    };
    if name.trim().is_empty() {
        diags.push(Diag::new(path, item, "a query name must not be empty"));
    }
    for k in obj.keys() {
        if !QUERY_KEYS.contains(&k.as_str()) {
            diags.push(Diag::new(
                path,
                item,
                format!("unknown query key `{k}` (known: {})", QUERY_KEYS.join(", ")),
            ));
        }
    }
    let sql = match obj.get("query") {
        Some(Json::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            diags.push(Diag::new(
                path,
                item,
                "`query` must be a non-empty SQL string",
            ));
            String::new()
        }
        None => {
            diags.push(Diag::new(path, item, "missing `query`"));
            String::new()
        }
    };
    let interval = match obj.get("interval") {
        None => {
            diags.push(Diag::new(
                path,
                item,
                "missing `interval` (seconds, 1..604800)",
            ));
            0
        }
        Some(v) => match uint(v) {
            Some(n) if (1..=MAX_INTERVAL).contains(&n) => n,
            Some(n) => {
                diags.push(Diag::new(
                    path,
                    item,
                    format!("`interval` {n} is outside 1..{MAX_INTERVAL} seconds"),
                ));
                0
            }
            None => {
                diags.push(Diag::new(
                    path,
                    item,
                    format!("`interval` must be a whole number of seconds (integer or numeric string), not {v}"),
                ));
                0
            }
        },
    };
    let removed = opt_bool(path, item, "removed", obj.get("removed"), diags).unwrap_or(true);
    let snapshot = opt_bool(path, item, "snapshot", obj.get("snapshot"), diags).unwrap_or(false);
    let denylist = opt_bool(path, item, "denylist", obj.get("denylist"), diags);
    let platform = opt_platform(path, item, obj.get("platform"), diags);
    let version = opt_version(path, item, obj.get("version"), diags);
    let shard = opt_shard(path, item, obj.get("shard"), diags);
    let startup_priority = match obj.get("startup_priority") {
        None => None,
        Some(v) => {
            let n = uint(v);
            if n.is_none() {
                diags.push(Diag::new(
                    path,
                    item,
                    "`startup_priority` must be a non-negative integer",
                ));
            }
            n
        }
    };
    let description = opt_string(path, item, "description", obj.get("description"), diags);
    let value = opt_string(path, item, "value", obj.get("value"), diags);
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
    v: Option<&Json>,
    diags: &mut Vec<Diag>,
) -> Option<bool> {
    match v {
        None => None,
        Some(Json::Bool(b)) => Some(*b),
        Some(other) => {
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
    v: Option<&Json>,
    diags: &mut Vec<Diag>,
) -> Option<String> {
    match v {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => {
            diags.push(Diag::new(path, item, format!("`{key}` must be a string")));
            None
        }
    }
}

fn opt_platform(
    path: &Path,
    item: Option<&str>,
    v: Option<&Json>,
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
    v: Option<&Json>,
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
    v: Option<&Json>,
    diags: &mut Vec<Diag>,
) -> Option<u64> {
    let v = v?;
    match uint(v) {
        Some(n) if (1..=100).contains(&n) => Some(n),
        _ => {
            diags.push(Diag::new(
                path,
                item,
                format!("`shard` must be 1..100, not {v}"),
            ));
            None
        }
    }
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
            "packs/x.conf: unknown pack key `platfrom`",
            "packs/x.conf:q: unknown query key `intreval`",
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
