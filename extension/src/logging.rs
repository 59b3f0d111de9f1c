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
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
            .format_timestamp_millis()
            .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Scrubbing { inner })).is_ok() {
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

    #[test]
    fn wire_dumps_and_rustls_trace_are_capped() {
        assert!(capped("ureq_proto::util", Level::Trace));
        assert!(!capped("ureq_proto::client", Level::Debug));
        assert!(capped("rustls::client::hs", Level::Trace));
        assert!(!capped("rustls::client::hs", Level::Debug));
        assert!(!capped("keychain_access_sentinel::http", Level::Trace));
    }
}
