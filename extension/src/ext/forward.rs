//! `keychain-access forward`: tail an osquery/Fleet results log to Sentinel.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// The osquery or Fleet results log to tail.
    #[arg(long, value_name = "FILE")]
    pub results: PathBuf,
    /// JSON config with a `sentinel` section (same format as the extension's).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

pub fn run(_args: ForwardArgs) -> Result<(), String> {
    Err("forward is not built yet".into())
}
