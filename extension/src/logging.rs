//! The process logger: env_logger's filter (`RUST_LOG`) and format, with
//! two guards no `RUST_LOG` setting can lift:
//!
//! * every record, at every level and from every crate, has the secrets
//!   this process holds (the Sentinel client secret, access tokens) removed
//!   in all their encodings ([`keychain_access_sentinel::secrets`]);
//! * raw wire dumps are never logged: at trace level `ureq-proto` writes
//!   every request and response byte as hex rows of 16 bytes, where a secret
//!   can be cut across records and no per-record search would find it; and
//!   `rustls` is capped at debug (its trace level describes key exchange
//!   internals, not anything a user needs).

use keychain_access_sentinel::secrets;
use log::{Level, Log, Metadata, Record};

/// Install the logger; `default_filter` applies when `RUST_LOG` is unset.
pub fn init(default_filter: &str) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter));
    builder.format_timestamp_millis();
    let logger = Scrubbing::new(builder);
    let max = logger.inner.filter();
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

/// True for records never written, whatever the filter says.
fn capped(target: &str, level: Level) -> bool {
    (target.starts_with("ureq_proto") && level >= Level::Trace)
        || (target.starts_with("rustls") && level > Level::Debug)
}

struct Scrubbing {
    inner: env_logger::Logger,
}

impl Scrubbing {
    fn new(mut builder: env_logger::Builder) -> Self {
        Scrubbing {
            inner: builder.build(),
        }
    }
}

impl Log for Scrubbing {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        !capped(m.target(), m.level()) && self.inner.enabled(m)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let clean = secrets::scrub(&text);
        self.inner.log(
            &Record::builder()
                .metadata(record.metadata().clone())
                .args(format_args!("{clean}"))
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_record_at_every_level_is_scrubbed() {
        let token = "eyJ0eXAiOiJKV1QiLCJhbGciOi.test-token.Zm9vYmFy";
        let secret = "Kx8~client/secret+value";
        secrets::remember(token);
        secrets::remember(secret);
        let out = Captured::default();
        let mut b = env_logger::Builder::new();
        b.parse_filters("trace")
            .target(env_logger::Target::Pipe(Box::new(out.clone())));
        let logger = Scrubbing::new(b);
        let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
        let form = "Kx8%7Eclient%2Fsecret%2Bvalue";
        for (level, target, text) in [
            (
                Level::Trace,
                "ureq::run",
                format!("Authorization: Bearer {token}"),
            ),
            (
                Level::Debug,
                "keychain_access_sentinel::http",
                format!("body client_secret={form}"),
            ),
            (Level::Error, "anything", format!("dump {hex}")),
            (
                Level::Trace,
                "ureq_proto::util",
                "6d6f 636b mock".to_string(),
            ),
        ] {
            logger.log(
                &Record::builder()
                    .level(level)
                    .target(target)
                    .args(format_args!("{text}"))
                    .build(),
            );
        }
        let got = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(got.matches(secrets::REPLACEMENT).count(), 3, "{got}");
        for leak in [token, secret, form, hex.as_str(), "6d6f 636b"] {
            assert!(!got.contains(leak), "{leak} in {got}");
        }
    }

    #[test]
    fn wire_dumps_and_rustls_trace_are_capped() {
        assert!(capped("ureq_proto::util", Level::Trace));
        assert!(!capped("ureq_proto::client", Level::Debug));
        assert!(capped("rustls::client::hs", Level::Trace));
        assert!(!capped("rustls::client::hs", Level::Debug));
        assert!(!capped("keychain_access_sentinel::http", Level::Trace));
    }
}
