//! The extension's JSON config: what osquery cannot pass on the command line.
//!
//! Path: `--config PATH`, else `$KEYCHAIN_ACCESS_CONFIG`, else
//! `/var/osquery/keychain_access.json`. A missing default file means
//! defaults; a missing explicit file or a bad file is a clear error naming
//! the key. Every setting is documented in the README.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The default config path.
pub const DEFAULT_CONFIG_PATH: &str = "/var/osquery/keychain_access.json";
/// The environment variable overriding the config path.
pub const CONFIG_ENV: &str = "KEYCHAIN_ACCESS_CONFIG";

/// The event list eslogger is started with (what the classifier needs).
pub const ESLOGGER_EVENTS: &[&str] = &[
    "exec", "fork", "exit", "open", "close", "clone", "copyfile", "rename", "create", "unlink",
    "link",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SQLite buffer path.
    pub database: PathBuf,
    pub retention: Retention,
    /// Cap on rows one `generate` returns.
    pub max_result_rows: usize,
    /// Lines longer than this are skipped and counted.
    pub max_line_bytes: usize,
    /// Process-cache capacity (entries).
    pub process_cache_entries: usize,
    /// Tuning file replacing the built-in default.
    pub tuning: Option<PathBuf>,
    /// Turn tuning off.
    pub no_tuning: bool,
    pub sources: Sources,
    /// The Sentinel delivery settings (see the sentinel crate).
    pub sentinel: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub max_age_seconds: i64,
    pub max_rows: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sources {
    pub eslogger: CommandSource,
    pub log_stream: CommandSource,
    /// Captures to tail (NDJSON from eslogger or `log stream`).
    pub files: Vec<PathBuf>,
    /// osquery's own ES tables, read through the extension manager.
    pub osquery_es: OsqueryEsSource,
}

/// `sources.osquery_es`: poll `es_process_events` and
/// `es_process_file_events` through osquery's `query` call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OsqueryEsSource {
    pub enabled: bool,
    /// Seconds between polls; keep it well under osquery's `events_expiry`.
    pub interval_seconds: u64,
}

impl Default for OsqueryEsSource {
    fn default() -> Self {
        OsqueryEsSource {
            enabled: false,
            interval_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandSource {
    pub enabled: bool,
    /// argv of the command.
    pub command: Vec<String>,
    pub restart_backoff_initial_ms: u64,
    pub restart_backoff_max_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: PathBuf::from("/var/osquery/keychain_access/buffer.db"),
            retention: Retention::default(),
            max_result_rows: keychain_access_tables::store::DEFAULT_MAX_RESULT_ROWS,
            max_line_bytes: keychain_access_tables::scan::DEFAULT_MAX_LINE,
            process_cache_entries: keychain_access_tables::procs::DEFAULT_CACHE_CAPACITY,
            tuning: None,
            no_tuning: false,
            sources: Sources::default(),
            sentinel: None,
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_seconds: keychain_access_tables::store::DEFAULT_MAX_AGE_SECS,
            max_rows: keychain_access_tables::store::DEFAULT_MAX_ROWS,
        }
    }
}

impl Default for Sources {
    fn default() -> Self {
        let mut eslogger = vec!["/usr/bin/eslogger".to_string()];
        eslogger.extend(ESLOGGER_EVENTS.iter().map(|s| s.to_string()));
        Sources {
            eslogger: CommandSource {
                // The live sources exist on macOS only.
                enabled: cfg!(target_os = "macos"),
                command: eslogger,
                ..CommandSource::default()
            },
            log_stream: CommandSource {
                enabled: cfg!(target_os = "macos"),
                command: default_log_stream_command(),
                ..CommandSource::default()
            },
            files: Vec::new(),
            osquery_es: OsqueryEsSource::default(),
        }
    }
}

impl Default for CommandSource {
    fn default() -> Self {
        CommandSource {
            enabled: false,
            command: Vec::new(),
            restart_backoff_initial_ms: 1_000,
            restart_backoff_max_ms: 60_000,
        }
    }
}

/// The default `log stream` command; at start-up its predicate is rebuilt
/// from the unified-log patterns in effect.
pub fn default_log_stream_command() -> Vec<String> {
    use keychain_access_tables::unified_log::{log_stream_predicate, LOG_STREAM_ARGS};
    let mut argv = vec!["/usr/bin/log".to_string()];
    argv.extend(LOG_STREAM_ARGS.iter().map(|s| s.to_string()));
    argv.push("--predicate".into());
    argv.push(log_stream_predicate(
        &keychain_access_tables::Tuning::builtin(),
    ));
    argv
}

/// Which file to read: explicit, environment, default.
pub fn config_path(explicit: Option<&Path>) -> (PathBuf, bool) {
    if let Some(p) = explicit {
        return (p.to_path_buf(), true);
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV) {
        return (PathBuf::from(p), true);
    }
    (PathBuf::from(DEFAULT_CONFIG_PATH), false)
}

/// Why the config could not be used. Each message names the file and,
/// for a bad value, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Missing (when named explicitly) or unreadable.
    #[error("config {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Others could change it (it names commands the extension runs as root).
    #[error("config {0}")]
    Untrusted(keychain_access_tables::state_file::StateFileError),
    #[error("config {}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        reason: InvalidConfig,
    },
}

/// What is wrong inside a config text.
#[derive(Debug, thiserror::Error)]
pub enum InvalidConfig {
    /// Not JSON, an unknown key, or a value of the wrong type (serde's
    /// message names the key).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("`{key}` must be at least {min}")]
    TooSmall { key: &'static str, min: u64 },
    #[error("`sources.{source_name}.command` is empty")]
    EmptyCommand { source_name: &'static str },
}

/// Load the config. A missing default file means defaults.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let (path, required) = config_path(explicit);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            log::info!("no config at {}; using defaults", path.display());
            return Ok(Config::default());
        }
        Err(error) => return Err(ConfigError::Read { path, error }),
    };
    // The config names commands the extension runs as root.
    keychain_access_tables::state_file::check_trusted_input(&path)
        .map_err(ConfigError::Untrusted)?;
    parse(&text).map_err(|reason| ConfigError::Invalid { path, reason })
}

/// Parse config text; errors name the key (serde's messages do).
pub fn parse(text: &str) -> Result<Config, InvalidConfig> {
    let c: Config = serde_json::from_str(text)?;
    if c.max_result_rows == 0 {
        return Err(InvalidConfig::TooSmall {
            key: "max_result_rows",
            min: 1,
        });
    }
    if c.max_line_bytes < 1024 {
        return Err(InvalidConfig::TooSmall {
            key: "max_line_bytes",
            min: 1024,
        });
    }
    for (name, s) in [
        ("eslogger", &c.sources.eslogger),
        ("log_stream", &c.sources.log_stream),
    ] {
        if s.enabled && s.command.is_empty() {
            return Err(InvalidConfig::EmptyCommand { source_name: name });
        }
    }
    if c.sources.osquery_es.interval_seconds == 0 {
        return Err(InvalidConfig::TooSmall {
            key: "sources.osquery_es.interval_seconds",
            min: 1,
        });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_named() {
        let e = parse(r#"{"databse": "/x"}"#).unwrap_err().to_string();
        assert!(e.contains("databse"), "{e}");
        let e = parse(r#"{"retention": {"max_age": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_age"), "{e}");
        let e = parse(r#"{"max_result_rows": "many"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type"), "{e}");
        let e = parse(r#"{"max_line_bytes": 10}"#).unwrap_err();
        assert_eq!(e.to_string(), "`max_line_bytes` must be at least 1024");
        let e =
            parse(r#"{"sources": {"log_stream": {"enabled": true, "command": []}}}"#).unwrap_err();
        assert_eq!(e.to_string(), "`sources.log_stream.command` is empty");
    }

    #[test]
    fn defaults_and_partial_files() {
        let c = parse(r#"{"database": "/tmp/x.db", "sources": {"files": ["/a"]}}"#).unwrap();
        assert_eq!(c.database, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.sources.files.len(), 1);
        assert_eq!(
            c.retention.max_rows,
            keychain_access_tables::store::DEFAULT_MAX_ROWS
        );
        assert_eq!(c.sources.eslogger.command[0], "/usr/bin/eslogger");
    }
}
