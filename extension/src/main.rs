//! `keychain-access`: the osquery extension serving `keychain_access_events`,
//! and an offline CLI to scan captures, query them and run the pack.
//!
//! Run by osquery (autoload) it receives `--socket PATH --timeout N
//! --interval N [--verbose]` and no subcommand: that is extension mode.
//! Otherwise a subcommand is required.

#![forbid(unsafe_code)]

mod cli;
mod ext;
mod logging;
mod output;
mod pack;
mod result_set;
mod selftest;
mod sql_guard;
mod table;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "keychain-access",
    version,
    about = "Detect macOS Keychain credential theft (ATT&CK T1555.001): an osquery extension serving keychain_access_events, and an offline CLI.",
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,

    /// Extension mode: osquery's extension manager socket.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Extension mode: seconds to wait for osquery's socket.
    #[arg(long, default_value_t = 3, value_name = "SECONDS")]
    timeout: u64,
    /// Extension mode: seconds between health checks of osquery.
    #[arg(long, default_value_t = 3, value_name = "SECONDS")]
    interval: u64,
    /// Extension mode: verbose logging.
    #[arg(long)]
    verbose: bool,
    /// Extension mode: JSON config file (default /var/osquery/keychain_access.json,
    /// or $KEYCHAIN_ACCESS_CONFIG).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Extension mode: tail this capture as a source (repeatable; also in the config).
    #[arg(long = "input", value_name = "FILE")]
    inputs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Classify captures and print the rows of keychain_access_events.
    Scan {
        #[command(flatten)]
        input: cli::InputArgs,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: output::Format,
        /// With --format table, show every column (default: the key ones).
        #[arg(long)]
        all_columns: bool,
        /// With --format table, show every character of every value (long
        /// values still wrap to fit the terminal).
        #[arg(long)]
        no_truncate: bool,
    },
    /// Run SQL over keychain_access_events (and keychain_access_status) built
    /// from captures, as osqueryi would.
    Query {
        #[command(flatten)]
        input: cli::InputArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        /// With --format table, show every character of every value (long
        /// values still wrap to fit the terminal).
        #[arg(long)]
        no_truncate: bool,
        /// The SQL statement.
        sql: String,
    },
    /// Print the table schema (drives the README, packs and Sentinel tables).
    Schema {
        #[arg(long, value_enum, default_value = "markdown")]
        format: cli::SchemaFormat,
    },
    /// Run, check and export the osquery pack.
    #[command(subcommand)]
    Pack(pack::PackCmd),
    /// Tail an osquery or Fleet results log and deliver it to Microsoft Sentinel.
    Forward(ext::forward::ForwardArgs),
    /// macOS, as root, with the extension running: run the T1555.001 atomic
    /// behaviours against a throwaway keychain and check each becomes an
    /// alert row in the live buffer (marked as this self-test's), then clean up.
    Selftest(selftest::SelftestArgs),
}

/// Benchmarks only (cargo feature `count-alloc`): the `cap` crate's
/// counting wrapper around the system allocator, for the peak live heap,
/// a figure that carries over to macOS (unlike RSS, which depends on how the
/// platform's allocator keeps freed memory).
#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match &cli.cmd {
        Some(Cmd::Forward(f)) => ext::forward::log_filter(f),
        _ if cli.verbose => "debug".into(),
        _ => "warn".into(),
    };
    logging::init(&filter);
    let result = match cli.cmd {
        Some(Cmd::Scan {
            input,
            format,
            all_columns,
            no_truncate,
        }) => cli::run_scan(&input, format, all_columns, no_truncate),
        Some(Cmd::Query {
            input,
            format,
            no_truncate,
            sql,
        }) => cli::run_query(&input, format, no_truncate, &sql),
        Some(Cmd::Schema { format }) => cli::run_schema(format),
        Some(Cmd::Pack(p)) => pack::run(p),
        Some(Cmd::Forward(f)) => ext::forward::run(f).map_err(cli::from_message),
        Some(Cmd::Selftest(a)) => selftest::run(a).map_err(cli::from_message),
        None => match cli.socket {
            Some(socket) => ext::run(ext::ExtensionArgs {
                socket,
                timeout: cli.timeout,
                interval: cli.interval,
                config: cli.config,
                inputs: cli.inputs,
            })
            .map_err(cli::from_message),
            None if !cli.inputs.is_empty() || cli.config.is_some() => {
                // Extension options without the socket: say what is missing
                // rather than print the whole help.
                eprintln!(
                    "keychain-access: error: extension mode (--input, --config) needs --socket PATH, \
                     osquery's extension manager socket (osqueryd passes it when it autoloads the extension); \
                     to scan a capture offline use `keychain-access scan --input FILE`"
                );
                return ExitCode::from(2);
            }
            None => {
                use clap::CommandFactory;
                let _ = Cli::command().print_help();
                return ExitCode::from(2);
            }
        },
    };
    #[cfg(feature = "count-alloc")]
    {
        let (live, peak) = (ALLOCATOR.allocated(), ALLOCATOR.max_allocated());
        eprintln!("keychain-access: heap: peak_live_bytes={peak} live_bytes_at_exit={live}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `keychain-access scan ... | head`: the reader has what it wanted.
        Err(e) if e.is::<cli::BrokenPipe>() => ExitCode::SUCCESS,
        Err(e) => {
            // An error may quote an answer from a server: scrub it as a log record.
            eprintln!(
                "keychain-access: error: {}",
                keychain_access_sentinel::secrets::scrub(&format!("{e:#}"))
            );
            ExitCode::from(1)
        }
    }
}
