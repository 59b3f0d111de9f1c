//! HTTP: the Entra ID token (client credentials, cached) and one ingestion
//! POST, classified into what the shipper should do next.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

use crate::config::SentinelConfig;
use crate::Error;

/// `Retry-After` values above this are capped (a broken or hostile value
/// must not stall delivery for days).
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// What one ingestion attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// 2xx: the batch is accepted.
    Delivered(u16),
    /// 413: the body is too large.
    TooLarge,
    /// 429, with the server's wait if it gave one.
    Throttled(Option<Duration>),
    /// 5xx or 408.
    ServerError(u16, String),
    /// 401 from the ingestion endpoint (token refused).
    Unauthorized(String),
    /// Any other status (400, 403, 404, 3xx...).
    ClientError(u16, String),
    /// No HTTP answer: refused, reset, timeout, TLS, DNS.
    Network(String),
    /// No token could be had.
    Token(TokenError),
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Network error, 408, 429 or 5xx from the token endpoint: back off.
    Transient(String),
    /// The token endpoint refused (400/401/403...): bad tenant, client id or
    /// secret; retry slowly.
    Rejected(String),
    /// The secret file is missing or too open.
    Secret(String),
}

impl TokenError {
    pub(crate) fn message(&self) -> &str {
        match self {
            TokenError::Transient(m) | TokenError::Rejected(m) | TokenError::Secret(m) => m,
        }
    }
}

struct Token {
    value: String,
    refresh_at: Instant,
}

/// Small xorshift64* generator for jitter and request ids (not for secrets).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Rng {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = nanos
            ^ (u64::from(std::process::id()) << 32)
            ^ SEQ.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        Rng(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `[lo, hi]` (inclusive) milliseconds.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A random (version 4) UUID string for `x-ms-client-request-id`.
    pub(crate) fn uuid(&mut self) -> String {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&a);
        u[8..].copy_from_slice(&b);
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        let h: String = u.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// `[a,b,c]` from already-validated JSON object lines.
pub(crate) fn json_array(lines: &[(i64, String)]) -> Vec<u8> {
    let len = 2 + lines.iter().map(|l| l.1.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, (_, l)) in lines.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(l.as_bytes());
    }
    out.push(b']');
    out
}

pub(crate) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// The wait a 429 asks for: `retry-after-ms` / `x-ms-retry-after-ms`
/// (milliseconds), else `Retry-After` as seconds or an HTTP-date; capped.
pub(crate) fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
    };
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = get(name).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms).min(RETRY_AFTER_CAP));
        }
    }
    parse_retry_after(&get("retry-after")?, SystemTime::now())
}

pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_CAP));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(
                secs.min(RETRY_AFTER_CAP.as_secs_f64()),
            ));
        }
        return None;
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_CAP),
    )
}

fn shorten(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() <= max {
        return one_line;
    }
    let mut end = max;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

/// A short message out of an error body: Azure's `{"error":{"code","message"}}`,
/// Entra's `{"error","error_description"}`, else the text.
fn body_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let err = &v["error"];
        if let (Some(code), Some(msg)) = (err["code"].as_str(), err["message"].as_str()) {
            return shorten(&format!("{code}: {msg}"), 300);
        }
        if let (Some(code), Some(desc)) = (err.as_str(), v["error_description"].as_str()) {
            return shorten(&format!("{code}: {desc}"), 300);
        }
    }
    shorten(body, 300)
}

fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let mut buf = Vec::new();
    let reader = resp.body_mut().with_config().lossy_utf8(true).reader();
    let _ = reader.take(4096).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn net_message(e: &ureq::Error) -> String {
    shorten(&e.to_string(), 300)
}

fn agent_for(url: &str, cfg: &SentinelConfig) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .https_only(!cfg.allow_insecure_loopback)
        .timeout_global(Some(SentinelConfig::ms(cfg.request_timeout_ms)))
        .user_agent(concat!(
            "keychain-access-sentinel/",
            env!("CARGO_PKG_VERSION")
        ));
    if SentinelConfig::is_loopback_url(url) {
        b = b.proxy(None);
    }
    b.build().new_agent()
}

/// HTTP client for one destination: token cache + ingestion POST.
pub(crate) struct Client {
    cfg: SentinelConfig,
    ingest_url: String,
    token_url: String,
    ingest_agent: ureq::Agent,
    token_agent: ureq::Agent,
    token: Option<Token>,
    /// Tokens obtained / failed since creation (the shipper turns deltas into counters).
    pub(crate) tokens_fetched: u64,
    pub(crate) token_failures: u64,
    pub(crate) rng: Rng,
}

impl Client {
    pub(crate) fn new(cfg: &SentinelConfig) -> Result<Client, Error> {
        cfg.validate()?;
        let ingest_url = cfg.ingestion_url();
        let token_url = cfg.token_url();
        Ok(Client {
            ingest_agent: agent_for(&ingest_url, cfg),
            token_agent: agent_for(&token_url, cfg),
            cfg: cfg.clone(),
            ingest_url,
            token_url,
            token: None,
            tokens_fetched: 0,
            token_failures: 0,
            rng: Rng::new(),
        })
    }

    /// Forget the cached token (after a 401).
    pub(crate) fn invalidate_token(&mut self) {
        self.token = None;
    }

    fn bearer(&mut self) -> Result<String, TokenError> {
        if let Some(t) = &self.token {
            if Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        match self.fetch_token() {
            Ok(t) => {
                self.tokens_fetched += 1;
                let v = t.value.clone();
                self.token = Some(t);
                Ok(v)
            }
            Err(e) => {
                self.token_failures += 1;
                Err(e)
            }
        }
    }

    /// The client-credentials token request, kept hand-written rather than an
    /// Azure identity SDK: one form POST, so every byte that carries the
    /// secret is in this file (never logged: `secrets.rs` scrubs log records),
    /// with no async runtime or credential chain that could pick up another
    /// identity on a managed Mac.
    fn fetch_token(&mut self) -> Result<Token, TokenError> {
        let secret = self
            .cfg
            .read_client_secret()
            .map_err(|e| TokenError::Secret(e.to_string()))?;
        let started = Instant::now();
        let result = self.token_agent.post(&self.token_url).send_form([
            ("grant_type", "client_credentials"),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", self.cfg.scope()),
        ]);
        drop(secret);
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                return Err(TokenError::Transient(format!(
                    "token endpoint unreachable: {}",
                    net_message(&e)
                )))
            }
        };
        let status = resp.status().as_u16();
        let body = read_body(&mut resp);
        if !(200..300).contains(&status) {
            let msg = format!("token endpoint HTTP {status}: {}", body_message(&body));
            return Err(if status == 408 || status == 429 || status >= 500 {
                TokenError::Transient(msg)
            } else {
                TokenError::Rejected(msg)
            });
        }
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            TokenError::Transient(format!("token endpoint answered non-JSON ({e})"))
        })?;
        let Some(value) = v["access_token"].as_str().filter(|s| !s.is_empty()) else {
            return Err(TokenError::Rejected(
                "token endpoint answer has no access_token".into(),
            ));
        };
        crate::secrets::remember(value);
        // expires_in is a number in v2.0, a string in some v1 answers.
        let lifetime = v["expires_in"]
            .as_u64()
            .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(3600);
        let lifetime = Duration::from_secs(lifetime);
        // Refresh 5 minutes early, or halfway through a short lifetime.
        let margin = (lifetime / 2).min(Duration::from_secs(300));
        Ok(Token {
            value: value.to_string(),
            refresh_at: started + lifetime.saturating_sub(margin),
        })
    }

    /// POST one batch (`body` is the uncompressed JSON array).
    pub(crate) fn post(&mut self, body: &[u8]) -> Attempt {
        let token = match self.bearer() {
            Ok(t) => t,
            Err(e) => return Attempt::Token(e),
        };
        let gz = match gzip(body) {
            Ok(g) => g,
            Err(e) => return Attempt::Network(format!("gzip failed: {e}")),
        };
        let request_id = self.rng.uuid();
        let result = self
            .ingest_agent
            .post(&self.ingest_url)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .header("x-ms-client-request-id", request_id.as_str())
            .send(&gz[..]);
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Network(format!("request {request_id}: {}", net_message(&e)))
            }
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => Attempt::Delivered(status),
            413 => Attempt::TooLarge,
            429 => Attempt::Throttled(retry_after(resp.headers())),
            401 => Attempt::Unauthorized(format!(
                "HTTP 401 (request {request_id}): {}",
                body_message(&read_body(&mut resp))
            )),
            408 | 500..=599 => Attempt::ServerError(
                status,
                format!(
                    "HTTP {status} (request {request_id}): {}",
                    body_message(&read_body(&mut resp))
                ),
            ),
            _ => Attempt::ClientError(
                status,
                format!(
                    "HTTP {status} (request {request_id}): {}",
                    body_message(&read_body(&mut resp))
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("999999", now), Some(RETRY_AFTER_CAP));
        // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        let mut h = ureq::http::HeaderMap::new();
        h.insert("retry-after", ureq::http::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after-ms",
            ureq::http::HeaderValue::from_static("250"),
        );
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
    }

    #[test]
    fn body_and_gzip() {
        let lines = vec![(1, r#"{"a":1}"#.to_string()), (2, r#"{"b":2}"#.to_string())];
        let body = json_array(&lines);
        assert_eq!(body, br#"[{"a":1},{"b":2}]"#);
        assert_eq!(json_array(&[]), b"[]");
        let gz = gzip(&body).expect("gzip");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .expect("gunzip");
        assert_eq!(out.as_bytes(), &body[..]);
    }

    #[test]
    fn uuid_and_jitter() {
        let mut r = Rng::new();
        let u = r.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, r.uuid());
        for _ in 0..1000 {
            let v = r.between(10, 20);
            assert!((10..=20).contains(&v));
        }
        assert_eq!(r.between(5, 5), 5);
    }

    #[test]
    fn messages() {
        assert_eq!(
            body_message(r#"{"error":{"code":"InvalidStream","message":"no such stream"}}"#),
            "InvalidStream: no such stream"
        );
        assert_eq!(
            body_message(r#"{"error":"invalid_client","error_description":"AADSTS7000215"}"#),
            "invalid_client: AADSTS7000215"
        );
        let long = "é".repeat(400);
        assert!(body_message(&long).len() <= 304);
    }
}
