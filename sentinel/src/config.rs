//! The `sentinel` section of the extension's JSON config.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::filter::NameFilter;
use crate::limits::{QueueLimits, API_MAX_BODY};
use crate::Error;

/// The OAuth2 scope for the Logs Ingestion API in Azure's public cloud
/// (`https://monitor.azure.us/.default` / `https://monitor.azure.cn/.default`
/// for sovereign clouds; set `scope`).
pub const DEFAULT_SCOPE: &str = "https://monitor.azure.com/.default";

const MIN_BATCH: usize = 256;

/// Delivery settings: the `sentinel` section of the extension's JSON config,
/// also read by `keychain-access forward --config FILE`.
///
/// ```json
/// { "sentinel": {
///     "endpoint": "https://my-dce-abcd.eastus-1.ingest.monitor.azure.com",
///     "dcr_immutable_id": "dcr-00000000000000000000000000000000",
///     "stream": "Custom-OsqueryResultLine",
///     "tenant_id": "00000000-0000-0000-0000-000000000000",
///     "client_id": "00000000-0000-0000-0000-000000000000",
///     "client_secret_file": "/etc/keychain-access/sentinel.secret",
///     "queue_path": "/var/osquery/keychain_access_sentinel.db",
///     "name_filter": ["*keychain_credential_access"]
/// } }
/// ```
///
/// Required keys: `endpoint`, `dcr_immutable_id`, `stream`, `tenant_id`,
/// `client_id`, `client_secret_file`, `queue_path`. Every other key has the
/// default given on its field. Unknown keys are refused with an error naming
/// the key. Durations are integers in milliseconds (`*_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// Data collection endpoint, or the DCR's own `logsIngestion` endpoint,
    /// e.g. `https://my-dce-5kyl.eastus-1.ingest.monitor.azure.com`. Must be
    /// `https://` (see `allow_insecure_loopback`).
    pub endpoint: String,
    /// The DCR's immutable id, `dcr-…`.
    pub dcr_immutable_id: String,
    /// The stream declared in the DCR: `Custom-OsqueryResultLine` for
    /// `packs/sentinel/dcr-logs-ingestion.json`.
    pub stream: String,
    /// Entra ID tenant (GUID or domain).
    pub tenant_id: String,
    /// The app registration's client id.
    pub client_id: String,
    /// File holding the client secret: mode 0600 or stricter, owned by the
    /// running user. Read on every token request, never logged.
    pub client_secret_file: PathBuf,
    /// Token endpoint. Default:
    /// `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// OAuth2 scope. Default [`DEFAULT_SCOPE`].
    #[serde(default)]
    pub scope: Option<String>,
    /// The SQLite queue file (created 0600; its directory is created 0700
    /// if missing).
    pub queue_path: PathBuf,
    /// Allow plain `http://` to 127.0.0.1, ::1 or localhost only (tests).
    /// Default false: TLS everywhere.
    #[serde(default)]
    pub allow_insecure_loopback: bool,
    /// Result names to ship (the osquery line's `name`, e.g.
    /// `pack_keychain-access_keychain_credential_access` or
    /// `pack/Global/keychain_credential_access`). Patterns: `*` any run of
    /// characters, `?` one character, otherwise exact. Default empty: ship
    /// every line.
    #[serde(default)]
    pub name_filter: Vec<String>,
    /// Largest JSON array body before gzip, 256..=1,000,000. Default 1,000,000.
    #[serde(default = "d_batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// Queue bound in lines. Default 100,000. At the bound the newest line is
    /// refused and counted (`dropped_at_bound`).
    #[serde(default = "d_queue_max_rows")]
    pub queue_max_rows: u64,
    /// Queue bound in bytes of line text. Default 100,000,000.
    #[serde(default = "d_queue_max_bytes")]
    pub queue_max_bytes: u64,
    /// First backoff step after a 5xx, 408 or network error. Default 1,000.
    #[serde(default = "d_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// Backoff cap. Default 300,000 (5 minutes).
    #[serde(default = "d_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Wait before retrying after 400/401/403/other 4xx. Default 60,000.
    #[serde(default = "d_error_retry_ms")]
    pub error_retry_ms: u64,
    /// Timeout of one HTTP request (token or ingestion). Default 30,000.
    #[serde(default = "d_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// After the queue was empty, wait this long for more lines before
    /// sending, so a query's rows go in one request. Default 2,000.
    #[serde(default = "d_linger_ms")]
    pub linger_ms: u64,
    /// `forward`: how often to look for new data and rotation. Default 500.
    #[serde(default = "d_tail_poll_ms")]
    pub tail_poll_ms: u64,
    /// `forward`: how often to log a stats line. Default 60,000.
    #[serde(default = "d_stats_interval_ms")]
    pub stats_interval_ms: u64,
}

fn d_batch_max_bytes() -> usize {
    API_MAX_BODY
}
fn d_queue_max_rows() -> u64 {
    100_000
}
fn d_queue_max_bytes() -> u64 {
    100_000_000
}
fn d_backoff_initial_ms() -> u64 {
    1_000
}
fn d_backoff_max_ms() -> u64 {
    300_000
}
fn d_error_retry_ms() -> u64 {
    60_000
}
fn d_request_timeout_ms() -> u64 {
    30_000
}
fn d_linger_ms() -> u64 {
    2_000
}
fn d_tail_poll_ms() -> u64 {
    500
}
fn d_stats_interval_ms() -> u64 {
    60_000
}

fn cfg_err(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

impl SentinelConfig {
    /// Parse and validate the `sentinel` section itself (a JSON object).
    /// Does not touch the file system; call [`SentinelConfig::check_secret_file`]
    /// (or use [`SentinelConfig::load`]) before use.
    pub fn from_section(section: &serde_json::Value) -> Result<Self, Error> {
        if !section.is_object() {
            return Err(cfg_err("the `sentinel` section must be a JSON object"));
        }
        let cfg: SentinelConfig =
            serde_path_to_error::deserialize(section.clone()).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let text = inner.to_string();
                if path == "." || text.starts_with("unknown field") {
                    cfg_err(format!("in the `sentinel` section: {text}"))
                } else {
                    cfg_err(format!("`{path}`: {text}"))
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// From the whole extension config document: `Ok(None)` when it has no
    /// `sentinel` key (the logger is then "not configured"), an error when
    /// the section is present but wrong.
    pub fn from_document(doc: &serde_json::Value) -> Result<Option<Self>, Error> {
        match doc.get("sentinel") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(section) => Self::from_section(section).map(Some),
        }
    }

    /// Read a config file (the extension's JSON config format), take its
    /// `sentinel` section, validate it and check the secret file. This is
    /// what `forward --config FILE` should call.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        // It says where the queue lives and which secret file to send.
        keychain_access_tables::state_file::check_trusted_input(path)
            .map_err(|e| cfg_err(format!("config {e}")))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| cfg_err(format!("{} is not valid JSON: {e}", path.display())))?;
        let cfg = Self::from_document(&doc)?
            .ok_or_else(|| cfg_err(format!("{} has no `sentinel` section", path.display())))?;
        cfg.check_secret_file()?;
        Ok(cfg)
    }

    /// Shape checks: URLs (https unless loopback+allowed), ids, bounds.
    pub fn validate(&self) -> Result<(), Error> {
        check_url("endpoint", &self.endpoint, self.allow_insecure_loopback)?;
        check_url("token_url", &self.token_url(), self.allow_insecure_loopback)?;
        for (key, value) in [
            ("dcr_immutable_id", &self.dcr_immutable_id),
            ("stream", &self.stream),
            ("tenant_id", &self.tenant_id),
            ("client_id", &self.client_id),
        ] {
            if value.is_empty() {
                return Err(cfg_err(format!("`{key}` must not be empty")));
            }
            if !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(cfg_err(format!(
                    "`{key}` = {value:?}: only letters, digits, '-', '_' and '.' are allowed"
                )));
            }
        }
        if self.client_secret_file.as_os_str().is_empty() {
            return Err(cfg_err("`client_secret_file` must not be empty"));
        }
        if self.queue_path.as_os_str().is_empty() {
            return Err(cfg_err("`queue_path` must not be empty"));
        }
        if let Some(scope) = &self.scope {
            if scope.trim().is_empty() {
                return Err(cfg_err("`scope` must not be empty"));
            }
        }
        if !(MIN_BATCH..=API_MAX_BODY).contains(&self.batch_max_bytes) {
            return Err(cfg_err(format!(
                "`batch_max_bytes` = {} must be between {MIN_BATCH} and {API_MAX_BODY} \
                 (the Logs Ingestion API takes at most 1 MB per call)",
                self.batch_max_bytes
            )));
        }
        if self.queue_max_rows == 0 {
            return Err(cfg_err("`queue_max_rows` must be at least 1"));
        }
        if self.queue_max_bytes < self.batch_max_bytes as u64 {
            return Err(cfg_err(format!(
                "`queue_max_bytes` = {} must be at least `batch_max_bytes` = {}",
                self.queue_max_bytes, self.batch_max_bytes
            )));
        }
        if self.backoff_initial_ms == 0 || self.backoff_initial_ms > self.backoff_max_ms {
            return Err(cfg_err(format!(
                "`backoff_initial_ms` = {} must be at least 1 and at most `backoff_max_ms` = {}",
                self.backoff_initial_ms, self.backoff_max_ms
            )));
        }
        for (key, value, min) in [
            ("error_retry_ms", self.error_retry_ms, 1),
            ("request_timeout_ms", self.request_timeout_ms, 100),
            ("tail_poll_ms", self.tail_poll_ms, 1),
            ("stats_interval_ms", self.stats_interval_ms, 1),
        ] {
            if value < min {
                return Err(cfg_err(format!("`{key}` = {value} must be at least {min}")));
            }
        }
        NameFilter::new(&self.name_filter).map_err(|e| cfg_err(e.to_string()))?;
        Ok(())
    }

    /// Refuse a secret file that is missing, not a regular file, readable or
    /// writable by group/others (anything but 0600 or stricter), or not owned
    /// by the running user.
    pub fn check_secret_file(&self) -> Result<(), Error> {
        check_secret_path(&self.client_secret_file)
    }

    /// Read the client secret (after [`check_secret_file`](Self::check_secret_file)),
    /// trimmed of surrounding whitespace.
    pub(crate) fn read_client_secret(&self) -> Result<String, Error> {
        check_secret_path(&self.client_secret_file)?;
        let p = &self.client_secret_file;
        let text = fs::read_to_string(p)
            .map_err(|e| Error::Secret(format!("{}: cannot read: {e}", p.display())))?;
        let secret = text.trim().to_string();
        if secret.is_empty() {
            return Err(Error::Secret(format!("{} is empty", p.display())));
        }
        // Before it is used anywhere: no log record may carry it.
        crate::secrets::remember(&secret);
        Ok(secret)
    }

    /// The token endpoint in effect.
    pub fn token_url(&self) -> String {
        match &self.token_url {
            Some(u) => u.clone(),
            None => format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant_id
            ),
        }
    }

    /// The scope in effect.
    pub fn scope(&self) -> &str {
        self.scope.as_deref().unwrap_or(DEFAULT_SCOPE)
    }

    /// `{endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`.
    pub fn ingestion_url(&self) -> String {
        format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version=2023-01-01",
            self.endpoint.trim_end_matches('/'),
            self.dcr_immutable_id,
            self.stream
        )
    }

    /// The queue bounds and intake rules.
    pub fn queue_limits(&self) -> Result<QueueLimits, Error> {
        Ok(QueueLimits {
            max_rows: self.queue_max_rows,
            max_bytes: self.queue_max_bytes,
            // A line must fit in a batch on its own: "[" line "]".
            max_line_bytes: self.batch_max_bytes.saturating_sub(2),
            filter: NameFilter::new(&self.name_filter).map_err(|e| cfg_err(e.to_string()))?,
        })
    }

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// True when plain HTTP to loopback is in use for `url` (then no proxy).
    pub(crate) fn is_loopback_url(url: &str) -> bool {
        parse_url(url).is_some_and(|(_, host)| is_loopback_host(&host))
    }
}

fn check_secret_path(p: &Path) -> Result<(), Error> {
    let meta = fs::metadata(p).map_err(|e| Error::Secret(format!("{}: {e}", p.display())))?;
    if !meta.is_file() {
        return Err(Error::Secret(format!(
            "{} is not a regular file",
            p.display()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::Secret(format!(
            "{} has mode {mode:04o}; it must be 0600 or stricter (no group/other access): \
             chmod 600 {}",
            p.display(),
            p.display()
        )));
    }
    let euid = keychain_access_tables::state_file::effective_uid();
    if meta.uid() != euid {
        return Err(Error::Secret(format!(
            "{} is owned by uid {}, not by the running user (uid {euid})",
            p.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// `(scheme, host)` of an absolute http(s) URL, host without brackets/port.
fn parse_url(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let host = if let Some(stripped) = authority.strip_prefix('[') {
        stripped.split(']').next()?.to_string()
    } else {
        authority.split(':').next()?.to_string()
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

fn check_url(key: &str, url: &str, allow_insecure_loopback: bool) -> Result<(), Error> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(cfg_err(format!("`{key}` = {url:?} contains whitespace")));
    }
    let Some((scheme, host)) = parse_url(url) else {
        return Err(cfg_err(format!(
            "`{key}` = {url:?} is not an absolute URL like https://host/..."
        )));
    };
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if allow_insecure_loopback && is_loopback_host(&host) => Ok(()),
        "http" if allow_insecure_loopback => Err(cfg_err(format!(
            "`{key}` = {url:?}: plain http is allowed only to 127.0.0.1, ::1 or localhost"
        ))),
        "http" => Err(cfg_err(format!(
            "`{key}` = {url:?}: https is required (plain http only to loopback with \
             `allow_insecure_loopback`, for tests)"
        ))),
        other => Err(cfg_err(format!(
            "`{key}` = {url:?}: unsupported scheme {other:?}, use https"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn base() -> serde_json::Value {
        json!({
            "endpoint": "https://dce.example.ingest.monitor.azure.com",
            "dcr_immutable_id": "dcr-0123abcd",
            "stream": "Custom-OsqueryResultLine",
            "tenant_id": "11111111-2222-3333-4444-555555555555",
            "client_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "client_secret_file": "/nonexistent/secret",
            "queue_path": "/tmp/q.db"
        })
    }

    fn with(key: &str, v: serde_json::Value) -> serde_json::Value {
        let mut b = base();
        b[key] = v;
        b
    }

    fn err(v: &serde_json::Value) -> String {
        match SentinelConfig::from_section(v) {
            Ok(_) => panic!("expected an error for {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults() {
        let c = SentinelConfig::from_section(&base()).expect("valid");
        assert_eq!(
            c.token_url(),
            "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token"
        );
        assert_eq!(c.scope(), "https://monitor.azure.com/.default");
        assert_eq!(c.batch_max_bytes, 1_000_000);
        assert_eq!(c.queue_max_rows, 100_000);
        assert_eq!(c.queue_max_bytes, 100_000_000);
        assert_eq!((c.backoff_initial_ms, c.backoff_max_ms), (1_000, 300_000));
        assert_eq!(c.error_retry_ms, 60_000);
        assert_eq!(c.request_timeout_ms, 30_000);
        assert!(!c.allow_insecure_loopback);
        assert!(c.name_filter.is_empty());
        assert_eq!(
            c.ingestion_url(),
            "https://dce.example.ingest.monitor.azure.com/dataCollectionRules/dcr-0123abcd/streams/Custom-OsqueryResultLine?api-version=2023-01-01"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err(&with("client_secret", json!("hunter2")));
        assert!(e.contains("unknown field `client_secret`"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn missing_required_key_is_named() {
        let mut b = base();
        b.as_object_mut().map(|o| o.remove("stream"));
        let e = err(&b);
        assert!(e.contains("missing field `stream`"), "{e}");
    }

    #[test]
    fn https_required() {
        let e = err(&with("endpoint", json!("http://dce.example.com")));
        assert!(e.contains("https is required"), "{e}");
        let mut b = with("endpoint", json!("http://10.0.0.1:8080"));
        b["allow_insecure_loopback"] = json!(true);
        assert!(err(&b).contains("only to 127.0.0.1"));
        let e = err(&with("token_url", json!("http://login.example.com/t")));
        assert!(e.contains("`token_url`"), "{e}");
        for ok in [
            "http://127.0.0.1:1234",
            "http://[::1]:80/x",
            "http://localhost",
        ] {
            let mut b = with("endpoint", json!(ok));
            b["token_url"] = json!(format!("{ok}/token"));
            b["allow_insecure_loopback"] = json!(true);
            SentinelConfig::from_section(&b).expect(ok);
        }
        assert!(err(&with("endpoint", json!("ftp://x"))).contains("unsupported scheme"));
        assert!(err(&with("endpoint", json!("dce.example.com"))).contains("absolute URL"));
    }

    #[test]
    fn bounds_checked() {
        assert!(err(&with("batch_max_bytes", json!(2_000_000))).contains("1 MB"));
        assert!(err(&with("batch_max_bytes", json!(10))).contains("batch_max_bytes"));
        assert!(err(&with("queue_max_rows", json!(0))).contains("queue_max_rows"));
        assert!(err(&with("backoff_initial_ms", json!(999_999))).contains("backoff_initial_ms"));
        assert!(err(&with("stream", json!("a/b"))).contains("`stream`"));
        assert!(err(&with("batch_max_bytes", json!(-1))).contains("batch_max_bytes"));
        assert!(err(&json!([1])).contains("must be a JSON object"));
    }

    #[test]
    fn document_without_section_is_unconfigured() {
        assert!(SentinelConfig::from_document(&json!({"other": 1}))
            .expect("ok")
            .is_none());
        let doc = json!({"sentinel": base(), "other": 1});
        assert!(SentinelConfig::from_document(&doc).expect("ok").is_some());
    }

    #[test]
    fn secret_file_modes() {
        let dir = std::env::temp_dir().join(format!("ka-sentinel-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("secret");
        std::fs::write(&p, "s3cr3t\n").expect("write");
        let mut c = SentinelConfig::from_section(&base()).expect("valid");
        c.client_secret_file = p.clone();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = c.check_secret_file().expect_err("0644 refused").to_string();
        assert!(e.contains("mode 0644") && e.contains("0600"), "{e}");
        assert!(!e.contains("s3cr3t"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(c.check_secret_file().is_err());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        c.check_secret_file().expect("0400 ok");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(c.read_client_secret().expect("read"), "s3cr3t");
        c.client_secret_file = dir.clone();
        assert!(c.check_secret_file().is_err());
        c.client_secret_file = dir.join("missing");
        assert!(c.check_secret_file().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
