//! Extension mode: serve keychain_access_events to osquery.

pub mod forward;

use std::path::PathBuf;

#[derive(Debug)]
#[allow(dead_code)]
pub struct ExtensionArgs {
    pub socket: PathBuf,
    pub timeout: u64,
    pub interval: u64,
    pub verbose: bool,
    pub config: Option<PathBuf>,
    pub inputs: Vec<PathBuf>,
}

pub fn run(_args: ExtensionArgs) -> Result<(), String> {
    Err("extension mode is not built yet".into())
}
