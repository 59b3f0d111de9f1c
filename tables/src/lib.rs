//! keychain_access_tables: the library behind the `keychain_access_events`
//! osquery table.
//!
//! It turns Apple Endpoint Security events (as `eslogger` prints them) and
//! unified-log NDJSON into rows describing macOS Keychain credential access
//! (MITRE ATT&CK T1555.001). Data flows one way:
//! source ([`scan::LineReader`]) -> parse ([`es`], [`unified_log`]) ->
//! normalise ([`procs`], [`redact`], [`text`]) -> classify ([`classify`],
//! [`security_cli`], [`material`], [`tuning`]) -> correlate ([`correlate`])
//! -> store ([`store`]) ->
//! table/CLI ([`constraints`], [`schema`]).
//!
//! The crate has no osquery dependency: the `keychain-access` binary wraps it.

#![forbid(unsafe_code)]

pub mod classify;
pub mod constraints;
pub mod correlate;
pub mod es;
pub mod inline_code;
pub mod input;
pub mod keychain_prompts;
pub mod material;
pub mod own_procs;
pub mod procs;
pub mod redact;
pub mod scan;
pub mod schema;
pub mod security_cli;
pub mod state_file;
pub mod status;
pub mod store;
pub mod text;
pub mod tree_secrets;
pub mod tuning;
pub mod unified_log;

pub use scan::{ScanOptions, ScanStats, Scanner};
pub use schema::{KeychainAccess, COLUMNS};
pub use tuning::Tuning;
