//! The pack, tested without osquery: the real `keychain-access` binary runs
//! `pack check`, `pack export` and `pack run` over the checked-in packs, the
//! broken examples in tests/pack_cases/ and the fixtures of
//! tests/fixtures/cases.json.

use keychain_access_tables::schema::ALERT_PREDICATE_SQL;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_keychain-access");
const PACK: &str = "packs/keychain-access.conf";
const ALERT: &str = "keychain_credential_access";
const AUDIT: &str = "keychain_allowlisted_audit";
const HEALTH: &str = "keychain_access_health";
const NOW: i64 = 1_412_098_650;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .output()
        .expect("run keychain-access")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp_dir(name: &str) -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn pack_json() -> Json {
    serde_json::from_str(&std::fs::read_to_string(root().join(PACK)).expect("read pack"))
        .expect("pack JSON")
}

/// The fallback pack (the Endpoint Security queries for Macs without the extension).
fn fallback_json() -> Json {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("packs/keychain-access-fallback.conf"))
            .expect("read fallback pack"),
    )
    .expect("fallback pack JSON")
}

fn query<'a>(pack: &'a Json, name: &str) -> &'a Json {
    &pack["queries"][name]
}

/// Every checked-in form of the pack (the files `pack export` generates,
/// plus the pack and its policies).
fn pack_forms() -> Vec<PathBuf> {
    let mut v = vec![
        PathBuf::from(PACK),
        PathBuf::from("packs/keychain-access-fallback.conf"),
        PathBuf::from("packs/keychain-access.policies.json"),
        PathBuf::from("packs/osquery-config-snippet.json"),
        PathBuf::from("packs/osquery-fallback-config-snippet.json"),
    ];
    for dir in ["packs/fleet", "packs/kolide"] {
        v.extend(
            yaml_files(&root().join(dir))
                .into_iter()
                .map(|p| p.strip_prefix(root()).map(Path::to_path_buf).unwrap_or(p)),
        );
    }
    v
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
    out
}

fn result_lines(stdout: &[u8]) -> Vec<Json> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn pack_run(inputs: &[&str], extra: &[&str]) -> (Vec<Json>, String) {
    let now = NOW.to_string();
    let mut args = vec!["pack", "run", PACK, "--now", &now];
    for i in inputs {
        args.push("--input");
        args.push(i);
    }
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "pack run failed: {}",
        text(&out.stderr)
    );
    (result_lines(&out.stdout), text(&out.stderr))
}

// ---------------------------------------------------------------- check

#[test]
fn every_checked_in_form_passes_pack_check() {
    let forms = pack_forms();
    assert!(
        forms.len() >= 11,
        "expected every generated form, got {forms:?}"
    );
    let mut args = vec!["pack".to_string(), "check".to_string()];
    args.extend(forms.iter().map(|p| p.display().to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&argv);
    assert!(
        out.status.success(),
        "pack check failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );
    // Directories are walked (tests/run-all.sh checks packs/fleet and packs/kolide).
    let out = run(&["pack", "check", PACK, "packs/fleet", "packs/kolide"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let files: usize = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let yaml = yaml_files(&root().join("packs/fleet")).len()
        + yaml_files(&root().join("packs/kolide")).len();
    assert_eq!(files, 1 + yaml, "{}", text(&out.stdout));
    let empty = tmp_dir("empty-dir");
    let out = Command::new(BIN)
        .args(["pack", "check"])
        .arg(&empty)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no pack, config or Fleet file in this directory"));
}

/// Every form's SQL is really prepared: a column typo injected into the
/// alert query of any one form makes `pack check` of that form fail, naming
/// the file and the query.
#[test]
fn pack_check_prepares_the_sql_of_every_form() {
    let dir = tmp_dir("mutate");
    let mut mutated = BTreeSet::new();
    for form in pack_forms() {
        let src = std::fs::read_to_string(root().join(&form)).expect("read form");
        if !src.contains(ALERT_PREDICATE_SQL) {
            continue;
        }
        // Keep the tree (GitOps `path:` references) next to the mutated file.
        let copy = dir.join(&form);
        std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
        for sib in std::fs::read_dir(root().join(&form).parent().expect("parent"))
            .expect("ls")
            .flatten()
        {
            if sib.path().is_file() {
                let _ = std::fs::copy(
                    sib.path(),
                    copy.parent().expect("parent").join(sib.file_name()),
                );
            }
        }
        let lib = root().join("packs/fleet/lib");
        if form.starts_with("packs/fleet") && !form.starts_with("packs/fleet/lib") {
            let to = dir.join("packs/fleet/lib");
            std::fs::create_dir_all(&to).expect("mkdir lib");
            for f in std::fs::read_dir(&lib).expect("ls lib").flatten() {
                std::fs::copy(f.path(), to.join(f.file_name())).expect("copy lib");
            }
        }
        std::fs::write(
            &copy,
            src.replace(
                ALERT_PREDICATE_SQL,
                "severity IN ('medium','high') AND allowlistd = 0",
            ),
        )
        .expect("write mutant");
        let out = Command::new(BIN)
            .args(["pack", "check"])
            .arg(&form)
            .current_dir(&dir)
            .output()
            .expect("run");
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{}: mutant passed pack check",
            form.display()
        );
        assert!(
            err.contains(&format!(
                "{}:{ALERT}: SQL error: no such column: allowlistd",
                form.display()
            )),
            "{}: unexpected message:\n{err}",
            form.display()
        );
        mutated.insert(form.display().to_string());
    }
    // The pack, the queries lib list, the fleetctl docs and the Kolide file.
    for form in [
        PACK,
        "packs/fleet/lib/keychain-access.queries.yml",
        "packs/fleet/fleetctl/keychain-access-queries.yml",
        "packs/kolide/keychain-access-pack.yml",
    ] {
        assert!(
            mutated.contains(form),
            "{form} was not mutated: {mutated:?}"
        );
    }
}

#[test]
fn pack_check_rejects_broken_packs_with_file_and_query() {
    let cases: &[(&str, &[&str])] = &[
        (
            "tests/pack_cases/bad_sql.conf",
            &[
                "tests/pack_cases/bad_sql.conf:discovery[0]: SQL error: no such column: nam",
                "tests/pack_cases/bad_sql.conf:column_typo: SQL error: no such column: severty",
                "tests/pack_cases/bad_sql.conf:table_typo: SQL error: no such table: keychain_access_event ",
                "tests/pack_cases/bad_sql.conf:es_column_typo: SQL error: no such column: destination",
                "tests/pack_cases/bad_sql.conf:syntax: SQL error: near \"SELEC\": syntax error",
            ],
        ),
        (
            "tests/pack_cases/bad_keys.conf",
            &[
                // The known keys come from the typed struct: pinned whole once.
                "tests/pack_cases/bad_keys.conf: unknown pack key `platfrom` (known: queries, platform, version, shard, discovery)",
                "tests/pack_cases/bad_keys.conf: `shard` must be 1..100",
                "tests/pack_cases/bad_keys.conf:interval_zero: `interval` 0 is outside 1..604800",
                "tests/pack_cases/bad_keys.conf:interval_word: `interval` must be a whole number of seconds",
                "tests/pack_cases/bad_keys.conf:interval_over_a_week: `interval` 604801 is outside",
                "tests/pack_cases/bad_keys.conf:no_interval: missing `interval`",
                "tests/pack_cases/bad_keys.conf:removed_string: `removed` must be true or false",
                "tests/pack_cases/bad_keys.conf:bad_platform: unknown platform `macos`",
                // Two typos in one query: both, not just the first.
                "tests/pack_cases/bad_keys.conf:key_typo: unknown query key `snapshoot`",
                "tests/pack_cases/bad_keys.conf:key_typo: unknown query key `descripton` (known: query, interval, removed, snapshot, platform, version, shard, denylist, startup_priority, description, value)",
                "tests/pack_cases/bad_keys.conf:bad_version: `version` `latest`",
            ],
        ),
        ("tests/pack_cases/not_json.conf", &["tests/pack_cases/not_json.conf: not valid JSON"]),
        (
            "tests/pack_cases/bad_fleet.queries.yml",
            &[
                "tests/pack_cases/bad_fleet.queries.yml:bad_logging: `logging` must be one of",
                "tests/pack_cases/bad_fleet.queries.yml:bad_sql: SQL error: no such column: O",
                "tests/pack_cases/bad_fleet.queries.yml:bad_keys: unknown Fleet query key `platfrom`",
                "tests/pack_cases/bad_fleet.queries.yml:bad_keys: unknown Fleet query key `team_id`",
                "tests/pack_cases/bad_fleet.queries.yml:bad_keys: `interval` must be an integer",
                "tests/pack_cases/bad_fleet.queries.yml:bad_platform: unknown platform `macos`",
            ],
        ),
        (
            "tests/pack_cases/bad_kolide_pack.yml",
            &[
                "tests/pack_cases/bad_kolide_pack.yml:pack keychain-access: references query `unknown_query`",
                "tests/pack_cases/bad_kolide_pack.yml:pack keychain-access:unknown_query: `snapshot` must be true or false",
            ],
        ),
        (
            "tests/pack_cases/bad_policies.json",
            &[
                "tests/pack_cases/bad_policies.json: unknown policies file key `polices` (known: policies)",
                "tests/pack_cases/bad_policies.json:two typos and a query key: unknown Fleet policy key `critcal` (known: name, description, resolution, query, platform, critical, labels_include_any, labels_exclude_any, calendar_events_enabled, conditional_access_enabled, install_software, run_script, team)",
                "tests/pack_cases/bad_policies.json:two typos and a query key: unknown Fleet policy key `platfrom`",
                // A query's key in a policy: reported once, as unknown, not
                // also held to the query's `interval` rule.
                "tests/pack_cases/bad_policies.json:two typos and a query key: unknown Fleet policy key `interval`",
            ],
        ),
        (
            "tests/pack_cases/bad_agent_options.yml",
            &[
                // Keys below agent_options are checked too, with their path.
                "tests/pack_cases/bad_agent_options.yml:agent_options.overrides: unknown overrides key `platfroms` (known: platforms)",
                "tests/pack_cases/bad_agent_options.yml:agent_options.overrides: must be a mapping with `platforms`",
                "tests/pack_cases/bad_agent_options.yml:agent_options.extensions.keychain_access: unknown extension key `chanel` (known: channel, platform)",
                "tests/pack_cases/bad_agent_options.yml:agent_options.extensions.keychain_access: unknown extension key `platfrom`",
                "tests/pack_cases/bad_agent_options.yml:agent_options.extensions.keychain_access: missing `channel`",
                "tests/pack_cases/bad_agent_options.yml:agent_options.extensions.keychain_access: `platform` must be macos",
            ],
        ),
        (
            "tests/pack_cases/bad_gitops.yml",
            &[
                "tests/pack_cases/bad_gitops.yml:queries[0]: `path: ./lib/missing.queries.yml` does not exist",
                "tests/pack_cases/bad_gitops.yml:inline policy with a typo: SQL error: no such table: osquery_extension ",
                "tests/pack_cases/bad_gitops.yml:agent_options: unknown agent_options key `command_line_flag`",
                "tests/pack_cases/bad_gitops.yml:agent_options.config.decorators.load[0]: SQL error: no such column: serial",
                "tests/pack_cases/bad_gitops.yml:agent_options.extensions.keychain_access: `platform` must be macos",
            ],
        ),
    ];
    for (file, expected) in cases {
        let out = run(&["pack", "check", file]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: exit status\n{err}");
        for e in *expected {
            assert!(err.contains(e), "{file}: missing {e:?} in\n{err}");
        }
        // One line per problem plus the summary: nothing unexpected.
        assert_eq!(
            err.lines().count(),
            expected.len() + 1,
            "{file}: unexpected problems:\n{err}"
        );
        assert!(
            err.lines()
                .last()
                .is_some_and(|l| l.contains("problem(s) in 1 file(s)")),
            "{err}"
        );
    }
    let out = run(&["pack", "check", "tests/pack_cases/does-not-exist.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("tests/pack_cases/does-not-exist.conf: cannot read"));
    // pack run and export refuse broken packs too, naming the file.
    let out = run(&[
        "pack",
        "run",
        "tests/pack_cases/not_json.conf",
        "-i",
        "tests/fixtures/cp_clone.ndjson",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("tests/pack_cases/not_json.conf: not valid JSON"));
    let dir = tmp_dir("export-broken");
    let out = Command::new(BIN)
        .args(["pack", "export", "tests/pack_cases/bad_sql.conf", "--out"])
        .arg(&dir)
        .current_dir(root())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad_sql.conf:column_typo"));
    assert!(
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) == 0,
        "nothing written"
    );
}

// ---------------------------------------------------------------- export

#[test]
fn exported_forms_match_the_checked_in_copies() {
    let dir = tmp_dir("export");
    let out = Command::new(BIN)
        .args(["pack", "export", PACK, "--out"])
        .arg(&dir)
        .current_dir(root())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written: Vec<PathBuf> = text(&out.stdout).lines().map(PathBuf::from).collect();
    assert!(written.len() >= 11, "{written:?}");
    let mut drift = Vec::new();
    let mut generated = BTreeSet::new();
    for p in &written {
        let rel = p.strip_prefix(&dir).expect("under --out").to_path_buf();
        let want = std::fs::read_to_string(p).expect("generated");
        let have = std::fs::read_to_string(root().join("packs").join(&rel)).unwrap_or_default();
        if want != have {
            drift.push(rel.display().to_string());
        }
        generated.insert(rel);
    }
    assert!(
        drift.is_empty(),
        "checked-in copies drifted from the pack; run `keychain-access pack export {PACK}`: {drift:?}"
    );
    // No stale hand-made file in the generated directories.
    for d in ["packs/fleet", "packs/kolide"] {
        for f in yaml_files(&root().join(d)) {
            let rel = f
                .strip_prefix(root().join("packs"))
                .expect("under packs")
                .to_path_buf();
            assert!(
                generated.contains(&rel),
                "{} is not generated by pack export",
                f.display()
            );
        }
    }
    // --check agrees.
    let out = run(&["pack", "export", PACK, "--check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn fleet_forms_carry_the_pack_queries_with_documented_keys() {
    let pack = pack_json();
    let queries = pack["queries"].as_object().expect("queries");
    let lib: Vec<serde_yaml_ng::Mapping> = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("packs/fleet/lib/keychain-access.queries.yml"))
            .expect("lib"),
    )
    .expect("GitOps list");
    // Fleet docs: "For possible options, see the Create query API endpoint".
    let documented: BTreeSet<&str> = [
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
    ]
    .into_iter()
    .collect();
    assert_eq!(lib.len(), queries.len());
    for item in &lib {
        for k in item.keys() {
            assert!(
                documented.contains(k.as_str().unwrap_or("")),
                "undocumented key {k:?}"
            );
        }
        let name = item["name"].as_str().expect("name");
        let q = &queries[name];
        assert_eq!(
            item["query"].as_str(),
            q["query"].as_str(),
            "{name}: SQL differs from the pack"
        );
        assert_eq!(item["interval"].as_u64(), q["interval"].as_u64(), "{name}");
        assert_eq!(item["platform"].as_str(), Some("darwin"), "{name}");
        let logging = match (q["snapshot"].as_bool(), q["removed"].as_bool()) {
            (Some(true), _) => "snapshot",
            (_, Some(false)) => "differential_ignore_removals",
            _ => "differential",
        };
        assert_eq!(item["logging"].as_str(), Some(logging), "{name}");
    }
    // fleetctl: kind: query docs; Kolide: the queries and a kind: pack.
    let docs = |p: &str| -> Vec<serde_yaml_ng::Value> {
        use serde::Deserialize;
        let t = std::fs::read_to_string(root().join(p)).expect("read");
        serde_yaml_ng::Deserializer::from_str(&t)
            .map(|d| serde_yaml_ng::Value::deserialize(d).expect("YAML doc"))
            .collect()
    };
    let fleetctl = docs("packs/fleet/fleetctl/keychain-access-queries.yml");
    assert_eq!(fleetctl.len(), queries.len());
    for d in &fleetctl {
        assert_eq!(d["apiVersion"].as_str(), Some("v1"));
        assert_eq!(d["kind"].as_str(), Some("query"));
        assert_eq!(
            d["spec"]["query"].as_str(),
            queries[d["spec"]["name"].as_str().expect("name")]["query"].as_str()
        );
    }
    let kolide = docs("packs/kolide/keychain-access-pack.yml");
    let packs: Vec<&serde_yaml_ng::Value> = kolide
        .iter()
        .filter(|d| d["kind"].as_str() == Some("pack"))
        .collect();
    assert_eq!(packs.len(), 2, "the main pack and the fallback pack");
    assert_eq!(packs[0]["spec"]["name"].as_str(), Some("keychain-access"));
    assert_eq!(
        packs[1]["spec"]["name"].as_str(),
        Some("keychain-access-fallback")
    );
    let fb_entries = packs[1]["spec"]["queries"]
        .as_sequence()
        .expect("fallback pack queries");
    assert_eq!(
        fb_entries.len(),
        fallback_json()["queries"].as_object().expect("q").len()
    );
    assert!(fb_entries.iter().all(|e| e["query"]
        .as_str()
        .is_some_and(|q| q.starts_with("es_fallback_"))));
    let entries = packs[0]["spec"]["queries"]
        .as_sequence()
        .expect("pack queries");
    assert_eq!(entries.len(), queries.len());
    for e in entries {
        let name = e["query"].as_str().expect("query ref");
        assert!(kolide.iter().any(
            |d| d["kind"].as_str() == Some("query") && d["spec"]["name"].as_str() == Some(name)
        ));
        assert_eq!(e["removed"].as_bool(), queries[name]["removed"].as_bool());
        assert_eq!(e["interval"].as_u64(), queries[name]["interval"].as_u64());
    }
    // Policies: extension loaded, healthy, eslogger permitted.
    let policies: Vec<serde_yaml_ng::Mapping> = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("packs/fleet/lib/keychain-access.policies.yml"))
            .expect("policies"),
    )
    .expect("policy list");
    let sql: Vec<&str> = policies
        .iter()
        .filter_map(|p| p["query"].as_str())
        .collect();
    assert!(sql
        .iter()
        .any(|s| s.contains("FROM osquery_extensions WHERE name = 'keychain_access'")));
    assert!(sql
        .iter()
        .any(|s| s.contains("state IN ('failed', 'not_permitted')")));
    assert!(sql.iter().any(|s| s.contains("source = 'eslogger'")));
    // default.yml: lib paths that resolve, decorators, the extension.
    let default: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("packs/fleet/default.yml")).expect("default.yml"),
    )
    .expect("default.yml YAML");
    // Current Fleet GitOps names the list `reports:`; the file for older
    // Fleet keeps `queries:`. Both point at the same lib files.
    assert!(
        default.get("queries").is_none(),
        "default.yml uses the current `reports:` key, not the deprecated `queries:`"
    );
    for k in ["reports", "policies"] {
        let p = default[k][0]["path"].as_str().expect("path");
        assert!(root().join("packs/fleet").join(p).is_file(), "{p}");
    }
    let legacy: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("packs/fleet/default-before-4.82.yml"))
            .expect("default-before-4.82.yml"),
    )
    .expect("legacy YAML");
    assert!(legacy.get("reports").is_none());
    assert_eq!(legacy["queries"], default["reports"]);
    assert_eq!(legacy["agent_options"], default["agent_options"]);
    // The fallback lib exists for the team file of Macs without the extension,
    // and default.yml does not schedule it next to the main list.
    let fb_lib: Vec<serde_yaml_ng::Mapping> = serde_yaml_ng::from_str(
        &std::fs::read_to_string(
            root().join("packs/fleet/lib/keychain-access-fallback.queries.yml"),
        )
        .expect("fallback lib"),
    )
    .expect("fallback GitOps list");
    assert!(!fb_lib.is_empty());
    assert!(fb_lib.iter().all(|q| q["name"]
        .as_str()
        .is_some_and(|n| n.starts_with("es_fallback_"))));
    assert_eq!(default["reports"].as_sequence().map(Vec::len), Some(1));
    assert_eq!(
        default["agent_options"]["extensions"]["keychain_access"]["platform"].as_str(),
        Some("macos")
    );
    let deco: Vec<&str> = default["agent_options"]["config"]["decorators"]["load"]
        .as_sequence()
        .expect("decorators")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        deco.iter().any(|d| d.contains("hardware_serial"))
            && deco.iter().any(|d| d.contains("hostname"))
    );
}

// ---------------------------------------------------------------- the pack's content

#[test]
fn the_alert_query_is_the_core_rule_and_the_pack_is_complete() {
    let pack = pack_json();
    assert_eq!(pack["platform"].as_str(), Some("darwin"));
    let discovery = pack["discovery"].as_array().expect("discovery");
    assert!(discovery.iter().any(|d| {
        let d = d.as_str().unwrap_or("");
        d.contains("osquery_registry")
            && d.contains("'keychain_access_events'")
            && d.contains("active = 1")
    }));

    let alert = query(&pack, ALERT);
    let sql = alert["query"].as_str().expect("alert SQL");
    assert!(
        sql.ends_with(&format!(
            "FROM keychain_access_events WHERE {ALERT_PREDICATE_SQL};"
        )),
        "the alert must be exactly the core rule: {sql}"
    );
    assert_eq!(
        alert["removed"],
        Json::Bool(false),
        "differential, added rows only"
    );
    assert_ne!(alert["snapshot"], Json::Bool(true));
    let lower = sql.to_ascii_lowercase();
    for relative_to_now in [
        "'now'",
        "strftime",
        "unix_time",
        " from time",
        "julianday",
        "datetime(",
    ] {
        assert!(
            !lower.contains(relative_to_now),
            "alert must not be relative to now: {relative_to_now}"
        );
    }
    assert!(
        !lower.contains(" join "),
        "the host comes from decorators, not joins"
    );
    let interval = alert["interval"].as_u64().expect("interval");
    assert!(
        (30..=300).contains(&interval),
        "a SOC interval, got {interval}"
    );

    let audit = query(&pack, AUDIT);
    let asql = audit["query"].as_str().expect("audit SQL");
    assert!(asql.contains("allowlisted = 1") && asql.contains("severity IN ('medium','high')"));
    assert!(
        audit["interval"].as_u64().expect("interval") > interval,
        "the audit runs less often"
    );

    let health = query(&pack, HEALTH);
    assert!(health["query"]
        .as_str()
        .expect("health SQL")
        .contains("FROM keychain_access_status"));

    let fallback = fallback_json();
    for (name, table) in [
        ("es_fallback_process_events", "FROM es_process_events"),
        ("es_fallback_file_events", "FROM es_process_file_events"),
    ] {
        let q = query(&fallback, name);
        assert!(q["query"].as_str().expect("SQL").contains(table), "{name}");
        let d = q["description"].as_str().expect("description");
        assert!(
            d.contains("FALLBACK") && d.contains("--disable_endpointsecurity=false"),
            "{name}: {d}"
        );
    }
    let fim = query(&fallback, "es_fallback_file_events")["description"]
        .as_str()
        .expect("d");
    for needle in [
        "--disable_endpointsecurity_fim=false",
        "--es_fim_enable_open_events",
        "file_paths",
        "clone",
        "copyfile",
    ] {
        assert!(
            fim.contains(needle),
            "file fallback description lacks {needle}"
        );
    }

    // Deployment: decorators give the host; flags load the extension.
    let cfg: Json = serde_json::from_str(
        &std::fs::read_to_string(root().join("packs/osquery-config-snippet.json"))
            .expect("snippet"),
    )
    .expect("snippet JSON");
    let deco = cfg["decorators"]["load"].to_string();
    for col in ["hostname", "hardware_serial", "uuid"] {
        assert!(deco.contains(col), "decorators lack {col}");
    }
    assert!(cfg["packs"]["keychain-access"]
        .as_str()
        .is_some_and(|p| p.ends_with("keychain-access.conf")));
    let flags = std::fs::read_to_string(root().join("packs/osquery.flags")).expect("flags");
    for f in [
        "--extensions_autoload=",
        "--extensions_require=keychain_access",
        "--logger_plugin=filesystem",
    ] {
        assert!(flags.contains(f), "osquery.flags lacks {f}");
    }
    let fb_flags = std::fs::read_to_string(root().join("packs/osquery-fallback.flags"))
        .expect("fallback flags");
    for f in [
        "--disable_endpointsecurity=false",
        "--disable_endpointsecurity_fim=false",
        "--es_fim_enable_open_events=true",
    ] {
        assert!(fb_flags.contains(f), "osquery-fallback.flags lacks {f}");
    }
    let fb_cfg = std::fs::read_to_string(root().join("packs/osquery-fallback-config-snippet.json"))
        .expect("fb cfg");
    assert!(fb_cfg.contains("file_paths") && fb_cfg.contains("/Library/Keychains/%%"));
}

#[test]
fn readme_documents_every_query_and_result_name() {
    let readme = std::fs::read_to_string(root().join("packs/README.md")).expect("packs/README.md");
    let pack = pack_json();
    for name in pack["queries"].as_object().expect("queries").keys() {
        for form in [
            format!("pack_keychain-access_{name}"),
            format!("pack/Global/{name}"),
            format!("pack/<team>/{name}"),
            format!("pack/keychain-access/{name}"),
        ] {
            assert!(
                readme.contains(&form),
                "packs/README.md does not list {form}"
            );
        }
    }
    for needle in [
        "--disable_endpointsecurity=false",
        "--disable_endpointsecurity_fim=false",
        "--es_fim_enable_open_events",
        "file_paths",
        "extensions.load",
        "decorators",
        "fleetctl apply",
        "Kolide",
        "offline-scan",
    ] {
        assert!(
            readme.contains(needle),
            "packs/README.md does not mention {needle}"
        );
    }
}

// ---------------------------------------------------------------- pack run

#[test]
fn pack_run_prints_osquery_result_lines() {
    let decorations = r#"{"hostname":"mac-1","hardware_serial":"C02XL0XXJG5H","uuid":"5C2E7A4E-0000-4000-8000-000000000001"}"#;
    let (lines, stderr) = pack_run(
        &["tests/fixtures/art_t1555_001_1_dump_keychain.ndjson"],
        &[
            "--host-identifier",
            "mac-1.example",
            "--decorations",
            decorations,
        ],
    );
    assert!(!lines.is_empty());
    let keys: BTreeSet<&str> = [
        "name",
        "hostIdentifier",
        "calendarTime",
        "unixTime",
        "epoch",
        "counter",
        "numerics",
        "decorations",
        "columns",
        "action",
    ]
    .into_iter()
    .collect();
    for l in &lines {
        let obj = l.as_object().expect("object");
        let have: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(have, keys, "{l}");
        assert!(l["name"]
            .as_str()
            .expect("name")
            .starts_with("pack_keychain-access_"));
        assert_eq!(l["hostIdentifier"], "mac-1.example");
        assert_eq!(l["calendarTime"], "Tue Sep 30 17:37:30 2014 UTC");
        assert_eq!(l["unixTime"], NOW);
        assert_eq!(l["epoch"], 0);
        assert_eq!(l["counter"], 0);
        assert_eq!(l["numerics"], false);
        assert_eq!(l["action"], "added");
        assert_eq!(l["decorations"]["hardware_serial"], "C02XL0XXJG5H");
        for (c, v) in l["columns"].as_object().expect("columns") {
            assert!(v.is_string(), "column {c} is not a string: {v}");
        }
    }
    let alert: Vec<&Json> = lines
        .iter()
        .filter(|l| l["name"] == format!("pack_keychain-access_{ALERT}"))
        .collect();
    assert_eq!(alert.len(), 1);
    let c = &alert[0]["columns"];
    // A SOC line: when, who, what, parent, signer, severity, reason.
    for col in [
        "time",
        "eid",
        "uid",
        "auid",
        "username",
        "path",
        "cmdline",
        "action",
        "target_path",
        "ppid",
        "parent_path",
        "parent_cmdline",
        "ancestors",
        "signer",
        "signing_id",
        "team_id",
        "severity",
        "reason",
        "allowlisted",
    ] {
        assert!(c.get(col).is_some(), "alert line lacks {col}");
    }
    assert_eq!(c["action"], "dump_keychain");
    assert_eq!(c["allowlisted"], "0");
    assert_eq!(c["team_id"], "", "NULL is logged as an empty string");
    // The health query ran over the emulated status table.
    let health: Vec<&Json> = lines
        .iter()
        .filter(|l| l["name"] == format!("pack_keychain-access_{HEALTH}"))
        .collect();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0]["columns"]["checked_at"], NOW.to_string());
    assert_eq!(health[0]["columns"]["healthy"], "1");
    // The Endpoint Security fallbacks are not in the main pack at all.
    assert!(!stderr.contains("es_fallback_"), "{stderr}");
    assert!(
        stderr.contains(&format!("pack_keychain-access_{AUDIT}: 0 row(s)")),
        "{stderr}"
    );

    // Defaults: offline-scan host, no decorations key.
    let (lines, _) = pack_run(
        &["tests/fixtures/art_t1555_001_1_dump_keychain.ndjson"],
        &[],
    );
    for l in &lines {
        assert_eq!(l["hostIdentifier"], "offline-scan");
        assert!(l.get("decorations").is_none());
    }
    // Bad --decorations is an error, not a panic.
    let out = run(&[
        "pack",
        "run",
        PACK,
        "-i",
        "tests/fixtures/cp_clone.ndjson",
        "--decorations",
        "[1]",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--decorations must be a JSON object"));
}

#[test]
fn the_fallback_pack_runs_only_without_the_extension() {
    let now = NOW.to_string();
    let out = run(&[
        "pack",
        "run",
        "packs/keychain-access-fallback.conf",
        "--pack-name",
        "keychain-access",
        "--now",
        &now,
        "-i",
        "tests/fixtures/cp_clone.ndjson",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "the extension's table is active offline, so nothing runs"
    );
    assert!(
        text(&out.stderr).contains("discovery query returned no rows"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn fallback_queries_live_only_in_the_fallback_pack() {
    // The main pack's discovery requires the extension's table; a fallback
    // query requires it absent. Together they could never return a row.
    let main = pack_json();
    let discovery = main["discovery"].to_string();
    assert!(discovery.contains("name = 'keychain_access_events' AND active = 1"));
    assert!(!discovery.contains("NOT EXISTS"));
    for name in main["queries"].as_object().expect("queries").keys() {
        assert!(!name.starts_with("es_fallback_"), "{name} in the main pack");
    }
    let fb = fallback_json();
    assert!(fb["discovery"].to_string().contains("NOT EXISTS"));
    let names: Vec<&String> = fb["queries"].as_object().expect("queries").keys().collect();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n.starts_with("es_fallback_")),
        "{names:?}"
    );

    // Export refuses a main pack that carries a fallback query again.
    let dir = tmp_dir("fallback-in-main");
    let mut bad = main.clone();
    bad["queries"]["es_fallback_process_events"] =
        fb["queries"]["es_fallback_process_events"].clone();
    let bad_pack = dir.join("keychain-access.conf");
    std::fs::write(&bad_pack, serde_json::to_string_pretty(&bad).expect("json")).expect("write");
    let out = Command::new(BIN)
        .args(["pack", "export"])
        .arg(&bad_pack)
        .arg("--out")
        .arg(dir.join("out"))
        .current_dir(root())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("es_fallback_process_events belongs in the fallback pack"),
        "{err}"
    );
    assert!(!dir.join("out").exists(), "nothing written");
}

#[test]
fn pack_run_logs_snapshots_and_reports_every_skip_and_failure() {
    let dir = tmp_dir("snapshot");
    let pack = dir.join("mini.conf");
    std::fs::write(
        &pack,
        r#"{"queries": {
            "per_action": {"query": "SELECT action, count(*) AS n FROM keychain_access_events GROUP BY action;", "interval": 60, "snapshot": true},
            "procs": {"query": "SELECT pid FROM processes;", "interval": 60},
            "linux_only": {"query": "SELECT 1 AS one;", "interval": 60, "platform": "linux"},
            "runtime_error": {"query": "SELECT json_extract(path, '$[') FROM keychain_access_events;", "interval": 60}
        }}"#,
    )
    .expect("write pack");
    let now = NOW.to_string();
    let out = Command::new(BIN)
        .args(["pack", "run"])
        .arg(&pack)
        .args([
            "--now",
            &now,
            "-i",
            "tests/fixtures/art_t1555_001_1_dump_keychain.ndjson",
        ])
        .current_dir(root())
        .output()
        .expect("run");
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing query fails the run:\n{err}"
    );
    let lines = result_lines(&out.stdout);
    assert_eq!(lines.len(), 1, "one snapshot line: {lines:?}");
    let l = &lines[0];
    assert_eq!(l["name"], "pack_mini_per_action");
    assert_eq!(l["action"], "snapshot");
    assert!(l.get("columns").is_none());
    assert_eq!(l["snapshot"][0]["action"], "dump_keychain");
    assert_eq!(l["snapshot"][0]["n"], "1");
    assert!(
        err.contains("pack_mini_procs: skipped: table processes is not emulated offline"),
        "{err}"
    );
    assert!(
        err.contains("pack_mini_linux_only: skipped: platform linux does not include darwin"),
        "{err}"
    );
    assert!(err.contains("mini.conf:runtime_error: error: "), "{err}");
}

#[derive(Debug)]
struct Case {
    name: String,
    label: String,
    file: PathBuf,
}

fn manifest() -> Vec<Case> {
    let path = root().join("tests/fixtures/cases.json");
    let m: Json =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("tests/fixtures/cases.json"))
            .expect("manifest JSON");
    m["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("case name").to_string();
            let file = c["file"]
                .as_str()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(format!("tests/fixtures/{name}.ndjson")));
            Case {
                label: c["label"].as_str().expect("case label").to_string(),
                name,
                file,
            }
        })
        .collect()
}

/// The alert over every fixture of the manifest: at least one result line
/// for each malicious case, none for any benign one (fastlane, CI keychains,
/// Jamf, backupd, securityd, root certificates, grep/vim of the words...).
#[test]
fn the_alert_fires_on_every_malicious_fixture_and_no_benign_one() {
    let cases = manifest();
    assert!(
        cases.iter().any(|c| c.label == "malicious") && cases.iter().any(|c| c.label == "benign")
    );
    let alert_name = format!("pack_keychain-access_{ALERT}");
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for c in &cases {
        assert!(
            c.label == "malicious" || c.label == "benign",
            "{}: label must be malicious or benign, not {}",
            c.name,
            c.label
        );
        let file = c.file.display().to_string();
        let (lines, _) = pack_run(&[&file], &[]);
        let n = lines
            .iter()
            .filter(|l| l["name"] == alert_name.as_str())
            .count();
        counts.insert(c.name.clone(), n);
        match c.label.as_str() {
            "malicious" if n == 0 => {
                failures.push(format!("{}: malicious, no {ALERT} line", c.name))
            }
            "benign" if n > 0 => failures.push(format!("{}: benign, {n} {ALERT} line(s)", c.name)),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\ncounts: {counts:#?}");
}

/// What tuning hid shows up in the audit query, not in the alert.
#[test]
fn tuning_hides_benign_automation_into_the_audit_query() {
    for fixture in [
        "tests/fixtures/benign_fastlane.ndjson",
        "tests/fixtures/benign_backup_spotlight.ndjson",
    ] {
        if !root().join(fixture).is_file() {
            continue;
        }
        let (lines, _) = pack_run(&[fixture], &[]);
        let audit: Vec<&Json> = lines
            .iter()
            .filter(|l| l["name"] == format!("pack_keychain-access_{AUDIT}"))
            .collect();
        assert!(!audit.is_empty(), "{fixture}: nothing in the audit query");
        for l in audit {
            assert_eq!(l["columns"]["allowlisted"], "1");
            assert_ne!(l["columns"]["allow_reason"], "");
        }
    }
}
