//! `keychain-access`: the osquery extension serving `keychain_access_events`,
//! and an offline CLI to scan captures, query them and run the pack.
//!
//! Run by osquery (autoload) it receives `--socket PATH --timeout N
//! --interval N [--verbose]` and no subcommand: that is extension mode.
//! Otherwise a subcommand is required.

#[cfg(feature = "count-alloc")]
mod alloc_count;
mod cli;
mod ext;
mod output;
mod pack;

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
    },
    /// Run SQL over keychain_access_events (and keychain_access_status) built
    /// from captures, as osqueryi would.
    Query {
        #[command(flatten)]
        input: cli::InputArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
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
}

#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.verbose { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .init();
    let result = match cli.cmd {
        Some(Cmd::Scan {
            input,
            format,
            all_columns,
        }) => cli::run_scan(&input, format, all_columns),
        Some(Cmd::Query { input, format, sql }) => cli::run_query(&input, format, &sql),
        Some(Cmd::Schema { format }) => {
            cli::run_schema(format);
            Ok(())
        }
        Some(Cmd::Pack(p)) => pack::run(p),
        Some(Cmd::Forward(f)) => ext::forward::run(f),
        None => match cli.socket {
            Some(socket) => ext::run(ext::ExtensionArgs {
                socket,
                timeout: cli.timeout,
                interval: cli.interval,
                config: cli.config,
                inputs: cli.inputs,
            }),
            None => {
                use clap::CommandFactory;
                let _ = Cli::command().print_help();
                return ExitCode::from(2);
            }
        },
    };
    #[cfg(feature = "count-alloc")]
    {
        let (live, peak) = alloc_count::heap();
        eprintln!("keychain-access: heap: peak_live_bytes={peak} live_bytes_at_exit={live}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keychain-access: error: {e}");
            ExitCode::from(1)
        }
    }
}
