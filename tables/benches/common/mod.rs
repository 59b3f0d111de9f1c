//! Real eslogger lines for the benches, taken from the repository's captures
//! (never synthesised), so the benches measure what a Mac produces.

#![allow(dead_code)]

use keychain_access_tables::{KeychainAccess, ScanOptions, Scanner};
use std::path::PathBuf;

pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// Lines of a capture in the repository.
pub fn lines(rel: &str) -> Vec<Vec<u8>> {
    let p = repo_file(rel);
    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn has(line: &[u8], needle: &str) -> bool {
    memchr::memmem::find(line, needle.as_bytes()).is_some()
}

/// The first line of samples/capture.ndjson that contains every `want` and
/// none of `avoid`.
pub fn sample_line(want: &[&str], avoid: &[&str]) -> Vec<u8> {
    lines("samples/capture.ndjson")
        .into_iter()
        .find(|l| want.iter().all(|w| has(l, w)) && !avoid.iter().any(|a| has(l, a)))
        .unwrap_or_else(|| panic!("no sample line with {want:?} and without {avoid:?}"))
}

/// An open of an ordinary file: what most of a real capture is.
pub fn open_miss() -> Vec<u8> {
    sample_line(
        &[r#""event":{"open""#],
        &["eychain", "SystemKey", "azagne", "hainbreaker"],
    )
}

/// An open of a keychain file.
pub fn open_keychain() -> Vec<u8> {
    sample_line(&[r#""event":{"open""#, "login.keychain-db"], &[])
}

/// An unrelated exec (parsed for process ancestry, produces no row).
pub fn exec_unrelated() -> Vec<u8> {
    sample_line(
        &[r#""event":{"exec""#],
        &["eychain", "security", "SystemKey"],
    )
}

/// The fixture where `sudo security dump-keychain -d login.keychain` runs:
/// the lines before that exec (fork/exec of the shell and sudo, which warm
/// the process cache) and the exec itself.
pub fn dump_keychain_case() -> (Vec<Vec<u8>>, Vec<u8>) {
    let all = lines("tests/fixtures/art_t1555_001_1_dump_keychain.ndjson");
    let i = all
        .iter()
        .position(|l| {
            has(l, r#""event":{"exec""#)
                && has(l, "dump-keychain")
                && has(l, r#""path":"\/usr\/bin\/security""#)
        })
        .expect("the dump-keychain exec of /usr/bin/security");
    (all[..i].to_vec(), all[i].clone())
}

/// A real classified row (the dump-keychain exec), to insert many times.
pub fn real_row() -> KeychainAccess {
    let (before, exec) = dump_keychain_case();
    let mut s = Scanner::new(ScanOptions::default());
    let mut out = Vec::new();
    for l in &before {
        s.scan_line(l, &mut out);
    }
    out.clear();
    s.scan_line(&exec, &mut out);
    out.pop().expect("the dump-keychain exec yields a row")
}
