//! keychain_access_tables: the library behind the `keychain_access_events`
//! osquery table.
//!
//! It turns Apple Endpoint Security events (as `eslogger` prints them) and
//! unified-log NDJSON into rows describing macOS Keychain credential access
//! (MITRE ATT&CK T1555.001). Data flows one way, and modules depend only
//! on the stages below them (no module cycle; `tests/module_cycles.py`
//! checks it):
//!
//! * source: [`input`] (plain or gzip captures), [`lines`] (the one line
//!   splitter: bounded lines with their byte offsets, the unfinished last
//!   line held back), [`tail`] (the one file tailer: rotation, truncation,
//!   restart from a committed position; used by the extension's file
//!   source and the Sentinel forwarder), [`scan`] (byte prefilter, the
//!   [`scan::Scanner`] that drives the stages below);
//! * parse: [`es`] (eslogger JSON), [`unified_log`] (unified-log NDJSON:
//!   record, relevance, patterns, rows);
//! * normalise: [`procs`] (process cache and ancestry), [`redact`],
//!   [`redact::inline_code`], [`tree_secrets`], [`text`], [`timestamp`] (the one
//!   timestamp parser), and [`normalise`], the one row builder: the acting
//!   process, known to the cache or only named by a log record, fills every
//!   actor and enrichment column the same way for both sources;
//! * classify: [`classify`] (ES findings), [`security_cli`], [`material`],
//!   [`model`], [`keychain_prompts`], and the unified-log matcher, each
//!   handing [`normalise`] only what is its own (action, severity, reason,
//!   ...), with [`tuning`] (allowlist rules), [`log_pattern`] (unified-log
//!   patterns and their matcher) and [`wildcard`] (the one wildcard
//!   matcher) below them;
//! * correlate: [`correlate`];
//! * store: [`store`] (the SQLite buffer), [`state_file`];
//! * table: [`schema`] (the columns, declared once, and the closed sets
//!   [`schema::Action`] and [`schema::Severity`] every stage above uses),
//!   [`constraints`], [`status`] (the health table), fed by [`counters`]
//!   (every count a scan keeps) and [`own_procs`].
//!
//! The crate has no osquery dependency: the extension library
//! (`keychain_access_extension`, under `keychain-access-extension` and the
//! `keychain-access` CLI) wraps it, and `keychain-access-sentinel` reads its
//! tailer and wildcard matcher.

#![forbid(unsafe_code)]

pub mod classify;
pub mod constraints;
pub mod correlate;
pub mod counters;
pub mod es;
pub mod input;
pub mod keychain_prompts;
pub mod lines;
pub mod log_pattern;
pub mod material;
pub mod model;
pub mod normalise;
pub mod own_procs;
pub mod procs;
pub mod redact;
pub mod scan;
pub mod schema;
pub mod security_cli;
pub mod state_file;
pub mod status;
pub mod store;
pub mod tail;
pub mod text;
pub mod timestamp;
pub mod tree_secrets;
pub mod tuning;
pub mod unified_log;
pub mod wildcard;

pub use scan::{ScanOptions, ScanStats, Scanner};
pub use schema::{KeychainAccess, COLUMNS};
pub use tuning::Tuning;
