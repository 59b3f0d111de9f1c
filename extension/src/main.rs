//! `keychain-access`: the offline CLI (scan captures, query them, print the
//! schema, run, check and export the pack, forward results to Sentinel, run
//! the self-test), over the `keychain-access-tables` library and this
//! package's extension library. Its modules (the pack and YAML tooling,
//! output formats, the SQL guard) are compiled into this binary alone.
//!
//! Started with `--socket PATH` and no subcommand it runs extension mode
//! through the library's `launch::serve`, the same entry point as the
//! `keychain-access-extension` binary, so existing installs and
//! `osqueryi --extension` keep working; `keychain-access-extension` is the
//! binary to install as `keychain_access.ext`.

#![forbid(unsafe_code)]

mod cli;
mod forward;
mod output;
mod pack;
mod result_set;
mod selftest_run;
mod sql_guard;
mod table;

use clap::{Parser, Subcommand};
use keychain_access_extension::{launch, logging};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "keychain-access",
    version,
    about = "Detect macOS Keychain credential theft (ATT&CK T1555.001): the offline CLI, and the osquery extension (also the keychain-access-extension binary).",
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,

    #[command(flatten)]
    extension: launch::ExtensionFlags,
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
    Forward(forward::ForwardArgs),
    /// macOS, as root, with the extension running: run the T1555.001 atomic
    /// behaviours against a throwaway keychain and check each becomes an
    /// alert row in the live buffer (marked as this self-test's), then clean up.
    Selftest(selftest_run::SelftestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match &cli.cmd {
        Some(Cmd::Forward(f)) => forward::log_filter(f),
        _ => cli.extension.log_filter().to_string(),
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
        Some(Cmd::Forward(f)) => forward::run(f),
        Some(Cmd::Selftest(a)) => selftest_run::run(a),
        None => {
            let e = &cli.extension;
            if e.socket.is_none() && e.inputs.is_empty() && e.config.is_none() {
                use clap::CommandFactory;
                let _ = Cli::command().print_help();
                return ExitCode::from(2);
            }
            // Extension mode, kept for existing installs: the library's
            // entry point, as in keychain-access-extension.
            let code = launch::serve("keychain-access", cli.extension);
            #[cfg(feature = "count-alloc")]
            keychain_access_extension::report_heap("keychain-access");
            return code;
        }
    };
    #[cfg(feature = "count-alloc")]
    keychain_access_extension::report_heap("keychain-access");
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
