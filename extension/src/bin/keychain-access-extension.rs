//! `keychain-access-extension`: the osquery extension `keychain_access`,
//! and nothing else. This is the program installed as
//! `keychain_access.ext` and started by osqueryd as root with
//! `--socket PATH --timeout N --interval N [--verbose]`; it carries no
//! offline tooling (no subcommands, no pack or YAML code, no forwarder, no
//! self-test runner): those are the `keychain-access` CLI's. Everything it
//! does is the library's extension mode (`launch::serve`).

#![forbid(unsafe_code)]

use clap::Parser;
use keychain_access_extension::{launch, logging};
use std::process::ExitCode;

const PROGRAM: &str = "keychain-access-extension";

#[derive(Debug, Parser)]
#[command(
    name = "keychain-access-extension",
    version,
    about = "The keychain_access osquery extension (ATT&CK T1555.001): serves keychain_access_events \
             and keychain_access_status, and the keychain_access_sentinel logger plugin. osqueryd \
             starts it (autoload as keychain_access.ext) with --socket; the offline tools are the \
             separate `keychain-access` binary."
)]
struct Args {
    #[command(flatten)]
    flags: launch::ExtensionFlags,
}

/// The first word on the command line that is neither a flag nor a flag's
/// value: someone typed a CLI subcommand (`scan`, `pack`...) here.
fn stray_word(args: &[String]) -> Option<&str> {
    let mut expect_value = false;
    for a in args {
        if expect_value {
            expect_value = false;
            continue;
        }
        if a == "--" {
            return None;
        }
        if a.starts_with('-') {
            expect_value = !a.contains('=') && launch::FLAGS_WITH_VALUE.contains(&a.as_str());
            continue;
        }
        return Some(a);
    }
    None
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(word) = stray_word(&argv) {
        // One line, before clap's generic "unexpected argument".
        eprintln!(
            "{PROGRAM}: error: `{word}` is not an option of the osquery extension; \
             the offline commands are in the keychain-access CLI: run `keychain-access {word} --help`"
        );
        return ExitCode::from(2);
    }
    let args = Args::parse();
    logging::init(args.flags.log_filter());
    let code = launch::serve(PROGRAM, args.flags);
    #[cfg(feature = "count-alloc")]
    keychain_access_extension::report_heap(PROGRAM);
    code
}

#[cfg(test)]
mod tests {
    use super::stray_word;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flag_values_are_not_subcommands() {
        assert_eq!(
            stray_word(&words("--socket /s --timeout 3 --interval 3 --verbose")),
            None
        );
        assert_eq!(stray_word(&words("--socket=/s --input a --config c")), None);
        assert_eq!(stray_word(&words("scan --input a")), Some("scan"));
        assert_eq!(stray_word(&words("--verbose pack run")), Some("pack"));
        assert_eq!(stray_word(&words("--socket=/s selftest")), Some("selftest"));
    }
}
