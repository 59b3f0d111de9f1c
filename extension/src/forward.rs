//! `keychain-access forward`: tail an osquery or Fleet results log (with
//! rotation) and deliver it to Microsoft Sentinel — the route for a Linux
//! Fleet server or log host. The config file has the same `sentinel`
//! section as the extension's.

use anyhow::Context;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// The osquery or Fleet results log to tail (e.g. /var/log/osquery/osqueryd.results.log).
    #[arg(long, value_name = "FILE")]
    pub results: PathBuf,
    /// JSON config with a `sentinel` section (same format as the extension's config).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Log every step (debug level). By default warnings, errors, where
    /// reading starts, rotations and the stats line every `stats_interval_ms`.
    #[arg(long)]
    pub verbose: bool,
}

/// The default log filter of `forward`: warnings, plus the tailer's status
/// (start, resume, rotation) and the periodic stats line, so a running
/// forwarder shows it is alive and what it has sent.
pub fn log_filter(args: &ForwardArgs) -> String {
    if args.verbose {
        "debug".into()
    } else {
        format!(
            "warn,keychain_access_sentinel::forward=info,{}=info",
            keychain_access_sentinel::STATS_LOG_TARGET
        )
    }
}

pub fn run(args: ForwardArgs) -> anyhow::Result<()> {
    // The sentinel errors' messages are complete (their causes are part of
    // the text): wrap them as messages, no context chain to repeat them.
    let cfg = keychain_access_sentinel::SentinelConfig::load(&args.config)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("signal handler")?;
    }
    let stats = keychain_access_sentinel::forward(&cfg, &args.results, stop)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("keychain-access forward: {stats}");
    Ok(())
}
