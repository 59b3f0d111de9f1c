//! keychain_access_tables: the library behind the `keychain_access_events`
//! osquery table.
//!
//! It turns Apple Endpoint Security events (as `eslogger` prints them) and
//! unified-log NDJSON into rows describing macOS Keychain credential access
//! (MITRE ATT&CK T1555.001). Data flows one way:
//! source -> parse -> normalise -> classify -> store -> table/CLI.
//!
//! The crate has no osquery dependency: the `keychain-access` binary wraps it.

pub mod schema;

pub use schema::{KeychainAccess, COLUMNS};
