//! Loopback mock of Entra ID's token endpoint and the Logs Ingestion API,
//! plus helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keychain_access_sentinel::SentinelConfig;
use serde_json::{json, Value};

pub const TENANT: &str = "test-tenant";
pub const DCR: &str = "dcr-0123456789abcdef";
pub const STREAM: &str = "Custom-OsqueryResultLine";
pub const CLIENT_ID: &str = "client-123";
pub const SECRET: &str = "not-a-real-secret";

/// A scripted answer for the next ingestion request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status (lines are recorded only for 2xx).
    Status(u16),
    /// Answer with this status and a `Retry-After` header.
    RetryAfter(u16, String),
    /// Close the connection without answering.
    Close,
}

#[derive(Debug, Default)]
pub struct MockState {
    /// Consumed one per ingestion request, before anything else.
    pub script: VecDeque<Action>,
    /// Until then, every connection is closed without an answer.
    pub outage_until: Option<Instant>,
    /// Wait after recording an accepted batch, before answering 204.
    pub delay: Duration,
    /// 413 when the decoded JSON body is longer than this.
    pub max_body: Option<usize>,
    /// Token lifetime handed out.
    pub expires_in: u64,
    /// Live tokens and their expiry.
    pub tokens: HashMap<String, Instant>,
    /// Lines of accepted batches, in arrival order.
    pub received: Vec<Value>,
    /// Line count of each accepted batch.
    pub batches: Vec<Vec<String>>,
    /// Every ingestion request: when, and the status sent (0 = closed).
    pub attempts: Vec<(Instant, u16)>,
    /// Decoded body sizes of every ingestion request.
    pub body_sizes: Vec<usize>,
    pub token_requests: usize,
    /// Protocol violations seen (must stay empty).
    pub problems: Vec<String>,
    /// Accepted batches whose answer is being delayed.
    pub in_flight: usize,
    /// Requests (token or ingestion) closed unanswered by an outage.
    pub refused: usize,
}

pub struct Mock {
    pub addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    stop: Arc<AtomicBool>,
}

impl Mock {
    pub fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(MockState {
            expires_in: 3600,
            ..MockState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !sp.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (st, sp) = (Arc::clone(&st), Arc::clone(&sp));
                        std::thread::spawn(move || serve(conn, st, sp));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Mock { addr, state, stop }
    }

    pub fn state(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Ids (`columns.eid`) of every line received, with repeats.
    pub fn ids(&self) -> Vec<String> {
        self.state().received.iter().map(eid).collect()
    }

    pub fn unique_ids(&self) -> usize {
        let mut v = self.ids();
        v.sort();
        v.dedup();
        v.len()
    }

    pub fn problems(&self) -> Vec<String> {
        self.state().problems.clone()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn eid(v: &Value) -> String {
    v["columns"]["eid"].as_str().unwrap_or("?").to_string()
}

struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>, stop: &AtomicBool) -> Option<Request> {
    let mut line = String::new();
    loop {
        match r.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => break,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = headers.get("content-length") {
        let n: usize = n.parse().ok()?;
        body = vec![0u8; n];
        r.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn respond(w: &mut TcpStream, status: u16, extra: &[(&str, String)], body: &str) -> bool {
    let mut head = format!(
        "HTTP/1.1 {status} Mock\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).is_ok() && w.write_all(body.as_bytes()).is_ok()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (pct(k), pct(v)))
        .collect()
}

fn pct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

static TOKEN_SEQ: AtomicUsize = AtomicUsize::new(0);

fn serve(conn: TcpStream, state: Arc<Mutex<MockState>>, stop: Arc<AtomicBool>) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    while let Some(req) = read_request(&mut r, &stop) {
        let token_path = format!("/{TENANT}/oauth2/v2.0/token");
        let ingest_path =
            format!("/dataCollectionRules/{DCR}/streams/{STREAM}?api-version=2023-01-01");
        if lock().outage_until.is_some_and(|t| Instant::now() < t) {
            let mut st = lock();
            st.refused += 1;
            if req.target == ingest_path {
                st.attempts.push((Instant::now(), 0));
            }
            return;
        }
        if req.target == token_path {
            let f = form(&req.body);
            let mut st = lock();
            st.token_requests += 1;
            if req.method != "POST"
                || f.get("grant_type").map(String::as_str) != Some("client_credentials")
                || f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
                || f.get("scope").map(String::as_str) != Some("https://monitor.azure.com/.default")
            {
                st.problems
                    .push(format!("bad token request {:?}", f.keys()));
            }
            if f.get("client_secret").map(String::as_str) != Some(SECRET) {
                drop(st);
                let body = json!({"error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided."});
                if !respond(&mut w, 401, &[], &body.to_string()) {
                    return;
                }
                continue;
            }
            // Long and distinctive, so a test can search logs for it.
            let tok = format!(
                "mock-access-token-{:08x}-{}",
                std::process::id(),
                TOKEN_SEQ.fetch_add(1, Ordering::SeqCst)
            );
            let exp = st.expires_in;
            st.tokens
                .insert(tok.clone(), Instant::now() + Duration::from_secs(exp));
            drop(st);
            let body = json!({"token_type": "Bearer", "expires_in": exp, "access_token": tok});
            if !respond(&mut w, 200, &[], &body.to_string()) {
                return;
            }
            continue;
        }
        if req.target != ingest_path || req.method != "POST" {
            lock()
                .problems
                .push(format!("unexpected {} {}", req.method, req.target));
            if !respond(&mut w, 404, &[], "") {
                return;
            }
            continue;
        }
        // Ingestion.
        let mut st = lock();
        let now = Instant::now();
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let token = auth.strip_prefix("Bearer ").unwrap_or("");
        let token_ok = match st.tokens.get(token) {
            Some(exp) if *exp > now => true,
            Some(_) => {
                st.problems.push(format!("expired token {token} used"));
                false
            }
            None => false,
        };
        for (h, want) in [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ] {
            if req.headers.get(h).map(String::as_str) != Some(want) {
                st.problems
                    .push(format!("header {h} = {:?}", req.headers.get(h)));
            }
        }
        if req
            .headers
            .get("x-ms-client-request-id")
            .is_none_or(|v| v.len() != 36)
        {
            st.problems.push("missing x-ms-client-request-id".into());
        }
        let mut decoded = Vec::new();
        if flate2::read::GzDecoder::new(&req.body[..])
            .read_to_end(&mut decoded)
            .is_err()
        {
            st.problems.push("body is not gzip".into());
        }
        st.body_sizes.push(decoded.len());
        let lines: Vec<Value> = match serde_json::from_slice::<Value>(&decoded) {
            Ok(Value::Array(a)) if a.iter().all(Value::is_object) => a,
            _ => {
                st.problems
                    .push("body is not a JSON array of objects".into());
                Vec::new()
            }
        };
        if decoded.len() > 1_000_000 {
            st.problems
                .push(format!("body of {} bytes > 1 MB", decoded.len()));
        }
        let scripted = st.script.pop_front();
        let (status, extra): (u16, Vec<(&str, String)>) = if !token_ok {
            (401, vec![])
        } else {
            match scripted {
                Some(Action::Close) => {
                    st.attempts.push((now, 0));
                    return;
                }
                Some(Action::Status(s)) => (s, vec![]),
                Some(Action::RetryAfter(s, v)) => (s, vec![("Retry-After", v)]),
                None if st.max_body.is_some_and(|m| decoded.len() > m) => (413, vec![]),
                None => (204, vec![]),
            }
        };
        st.attempts.push((now, status));
        let mut delay = Duration::ZERO;
        if (200..300).contains(&status) {
            st.batches.push(lines.iter().map(eid).collect());
            st.received.extend(lines);
            delay = st.delay;
        }
        if !delay.is_zero() {
            st.in_flight += 1;
        }
        drop(st);
        if !delay.is_zero() {
            std::thread::sleep(delay);
            lock().in_flight -= 1;
        }
        let body = if status >= 400 {
            json!({"error": {"code": format!("Mock{status}"), "message": "scripted"}}).to_string()
        } else {
            String::new()
        };
        if !respond(&mut w, status, &extra, &body) {
            return;
        }
    }
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ka-sentinel-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        // State folders must be writable only by their owner, whatever the umask.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `sentinel` section for this mock, with test-speed timings; `extra`
/// overrides keys.
pub fn section(mock: &Mock, dir: &Path, extra: Value) -> Value {
    let secret = dir.join("client.secret");
    if !secret.exists() {
        std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut v = json!({
        "endpoint": mock.base(),
        "dcr_immutable_id": DCR,
        "stream": STREAM,
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret_file": secret,
        "token_url": format!("{}/{TENANT}/oauth2/v2.0/token", mock.base()),
        "queue_path": dir.join("queue.db"),
        "allow_insecure_loopback": true,
        "backoff_initial_ms": 20,
        "backoff_max_ms": 200,
        "error_retry_ms": 200,
        "request_timeout_ms": 5000,
        "linger_ms": 0,
        "tail_poll_ms": 20,
        "stats_interval_ms": 1000
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

pub fn config(mock: &Mock, dir: &Path, extra: Value) -> SentinelConfig {
    SentinelConfig::from_section(&section(mock, dir, extra)).expect("valid test config")
}

/// An osquery result line with id `eid` = `e{i}` and `pad` bytes of padding.
pub fn line(i: usize, pad: usize) -> String {
    json!({
        "name": "pack/Global/keychain_credential_access",
        "hostIdentifier": "mac-1",
        "calendarTime": "Fri Nov 27 21:00:00 2026 UTC",
        "unixTime": 1_795_900_000u64 + i as u64,
        "epoch": 0,
        "counter": i,
        "numerics": false,
        "action": "added",
        "columns": {"eid": format!("e{i}"), "pad": "x".repeat(pad)}
    })
    .to_string()
}

/// Poll `cond` every 10 ms for up to `secs` seconds.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
