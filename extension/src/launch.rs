//! How a binary enters extension mode: osquery's autoload flags, the
//! logger, the one-line error and the exit code. Both binaries call
//! [`serve`]: `keychain-access-extension` always, `keychain-access` when it
//! is started with `--socket` and no subcommand (existing installs and
//! `osqueryi --extension`).

use crate::ext;
use std::path::PathBuf;
use std::process::ExitCode;

/// What osqueryd passes an autoloaded extension (`--socket PATH --timeout N
/// --interval N [--verbose]`), plus this extension's own `--config` and
/// `--input`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExtensionFlags {
    /// Extension mode: osquery's extension manager socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Extension mode: seconds to wait for osquery's socket.
    #[arg(long, default_value_t = 3, value_name = "SECONDS")]
    pub timeout: u64,
    /// Extension mode: seconds between health checks of osquery.
    #[arg(long, default_value_t = 3, value_name = "SECONDS")]
    pub interval: u64,
    /// Extension mode: verbose logging.
    #[arg(long)]
    pub verbose: bool,
    /// Extension mode: JSON config file (default /var/osquery/keychain_access.json,
    /// or $KEYCHAIN_ACCESS_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extension mode: tail this capture as a source (repeatable; also in the config).
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
}

/// The extension flags that take a value (`--socket PATH`), for a caller
/// that has to tell a flag's value from a stray word.
pub const FLAGS_WITH_VALUE: &[&str] =
    &["--socket", "--timeout", "--interval", "--config", "--input"];

impl ExtensionFlags {
    /// The log filter of extension mode.
    pub fn log_filter(&self) -> &'static str {
        if self.verbose {
            "debug"
        } else {
            "warn"
        }
    }
}

/// Run extension mode to its end and turn the outcome into the exit code;
/// an error is one line on stderr prefixed with `program`. The logger must
/// be installed already ([`crate::logging::init`] with
/// [`ExtensionFlags::log_filter`]). Without `--socket` it explains what is
/// missing (exit 2) rather than wait for nothing.
pub fn serve(program: &str, flags: ExtensionFlags) -> ExitCode {
    let Some(socket) = flags.socket else {
        eprintln!(
            "{program}: error: extension mode (--input, --config) needs --socket PATH, \
             osquery's extension manager socket (osqueryd passes it when it autoloads the extension); \
             to scan a capture offline use `keychain-access scan --input FILE`"
        );
        return ExitCode::from(2);
    };
    let result = ext::run(ext::ExtensionArgs {
        socket,
        timeout: flags.timeout,
        interval: flags.interval,
        config: flags.config,
        inputs: flags.inputs,
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message may quote a config value or a server's answer:
            // scrub it as a log record is scrubbed.
            eprintln!(
                "{program}: error: {}",
                keychain_access_sentinel::secrets::scrub(&e.to_string())
            );
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        flags: ExtensionFlags,
    }

    #[test]
    fn flags_with_value_are_exactly_those_clap_parses_with_a_value() {
        let mut with_value: Vec<String> = Flags::command()
            .get_arguments()
            .filter(|a| a.get_action().takes_values())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        with_value.sort();
        let mut listed: Vec<String> = FLAGS_WITH_VALUE.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(with_value, listed);
    }
}
