//! `keychain_access_extension`: the osquery extension `keychain_access`,
//! as a library both binaries of this package sit on.
//!
//! The flow really here: osqueryd starts the extension with its autoload
//! flags ([`launch::ExtensionFlags`]); [`launch::serve`] installs the
//! scrubbing logger ([`logging`]) and runs extension mode ([`ext::run`]):
//! load the config, connect to osquery's socket, start the sources (eslogger
//! and `log stream` children, osquery's own ES tables, tailed files), feed
//! their lines through the classifier of `keychain-access-tables` into the
//! SQLite buffer ([`ext::ingest`]), mark the rows of registered self-test
//! runs ([`selftest`]), and answer osquery from the buffer
//! (`keychain_access_events`, `keychain_access_status`) while the logger
//! plugin hands result lines to `keychain-access-sentinel`.
//!
//! The binaries: `keychain-access-extension` (`src/bin/`) is only this, the
//! root-running program installed as `keychain_access.ext`;
//! `keychain-access` (`src/main.rs`) is the offline CLI (scan, query, schema,
//! pack, forward, selftest), whose modules are compiled into it alone, and
//! reaches extension mode through the same [`launch::serve`].

#![forbid(unsafe_code)]

pub mod ext;
pub mod launch;
pub mod logging;
pub mod selftest;

/// Benchmarks only (cargo feature `count-alloc`): the `cap` crate's
/// counting wrapper around the system allocator, for the peak live heap,
/// a figure that carries over to macOS (unlike RSS, which depends on how the
/// platform's allocator keeps freed memory). Declared here, it counts in
/// every binary over this library.
#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Benchmarks only: print the peak and final live heap to stderr.
#[cfg(feature = "count-alloc")]
pub fn report_heap(program: &str) {
    let (live, peak) = (ALLOCATOR.allocated(), ALLOCATOR.max_allocated());
    eprintln!("{program}: heap: peak_live_bytes={peak} live_bytes_at_exit={live}");
}
