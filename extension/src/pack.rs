//! The osquery pack, offline: run every query over captures, check packs and
//! Fleet YAML against the real schema, export the Fleet/Kolide forms.

mod check;
mod export;
mod keys;
mod model;
mod run;
mod schema_db;
pub(crate) mod time;

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Subcommand)]
pub enum PackCmd {
    /// Run every query of a pack over captures and print what osqueryd's
    /// filesystem logger would write for the first scheduled run: one JSON
    /// line per row (`pack_<pack>_<query>`, `"action":"added"`). Queries on
    /// tables that cannot be emulated offline are listed on stderr as skipped.
    Run {
        /// The pack (osquery pack JSON).
        pack: PathBuf,
        #[command(flatten)]
        input: crate::cli::InputArgs,
        /// `hostIdentifier` of every line.
        #[arg(long, value_name = "ID", default_value = run::DEFAULT_HOST_IDENTIFIER)]
        host_identifier: String,
        /// `decorations` of every line, as a JSON object (e.g.
        /// '{"hostname":"mac-1","hardware_serial":"C02X","uuid":"..."}').
        /// Left out unless given, as osquery does without decorators.
        #[arg(long, value_name = "JSON")]
        decorations: Option<String>,
        /// Run time (Unix seconds) for `unixTime`, `calendarTime` and the
        /// `time` table (default: now).
        #[arg(long, value_name = "UNIX_SECONDS")]
        now: Option<i64>,
        /// Pack name in result names (default: the file stem; osquery takes
        /// it from the config's `packs` key).
        #[arg(long, value_name = "NAME")]
        pack_name: Option<String>,
    },
    /// Check packs, osquery configs, policies JSON and Fleet YAML: keys,
    /// intervals, platforms, and every SQL statement prepared against the
    /// real schema. Problems are printed as `file:query: error`.
    Check {
        /// Pack JSON, osquery config JSON, policies JSON or Fleet YAML files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Generate the Fleet GitOps, fleetctl, Kolide and osquery-deployment
    /// forms from the pack (and its sibling `<pack>.policies.json`).
    Export {
        /// The pack (osquery pack JSON).
        pack: PathBuf,
        /// Output directory (default: the pack's directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write nothing; fail if a file under the output directory differs.
        #[arg(long)]
        check: bool,
    },
}

pub fn run(cmd: PackCmd) -> anyhow::Result<()> {
    match cmd {
        PackCmd::Run {
            pack,
            input,
            host_identifier,
            decorations,
            now,
            pack_name,
        } => cmd_run(&pack, &input, host_identifier, decorations, now, pack_name),
        PackCmd::Check { files } => cmd_check(&files),
        PackCmd::Export { pack, out, check } => cmd_export(&pack, out, check),
    }
}

fn load(pack: &Path) -> anyhow::Result<model::Pack> {
    model::load_pack(pack).map_err(|diags| anyhow::Error::msg(report(&diags)))
}

/// Print problems on stderr; the summary becomes the error.
fn report(diags: &[model::Diag]) -> String {
    for d in diags {
        eprintln!("{d}");
    }
    let files: std::collections::BTreeSet<&str> = diags.iter().map(|d| d.file.as_str()).collect();
    format!("{} problem(s) in {} file(s)", diags.len(), files.len())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn cmd_run(
    pack_path: &Path,
    input: &crate::cli::InputArgs,
    host_identifier: String,
    decorations: Option<String>,
    now: Option<i64>,
    pack_name: Option<String>,
) -> anyhow::Result<()> {
    let mut pack = load(pack_path)?;
    if let Some(n) = pack_name {
        pack.name = n;
    }
    let decorations = decorations
        .as_deref()
        .map(run::parse_decorations)
        .transpose()?;
    let opts = run::RunOptions {
        host_identifier,
        decorations,
        now: now.unwrap_or_else(now_unix),
    };
    let scanned = crate::cli::scan_inputs(input)?;
    let mut store = crate::cli::load_database(&scanned)?;
    run::prepare_database(store.connection_mut(), opts.now)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stderr = std::io::stderr();
    let mut log = stderr.lock();
    let failed = run::run_pack(store.connection(), &pack, &opts, &mut out, &mut log)?;
    out.flush().map_err(crate::cli::write_error)?;
    eprintln!(
        "{}",
        crate::cli::summary(&scanned.total, input.inputs.len())
    );
    if failed > 0 {
        return Err(anyhow::anyhow!(
            "{failed} query(ies) of {} failed",
            pack_path.display()
        ));
    }
    Ok(())
}

fn cmd_check(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut c = check::Checker::new()?;
    for f in files {
        c.check_file(f);
    }
    c.finish();
    for (p, why) in &c.skipped {
        eprintln!("skipped {}: {why}", p.display());
    }
    if !c.diags.is_empty() {
        return Err(anyhow::Error::msg(report(&c.diags)));
    }
    let skipped = match c.skipped.len() {
        0 => String::new(),
        n => format!("; {n} file(s) skipped as not pack-shaped (listed on stderr)"),
    };
    crate::cli::print_stdout(&format!(
        "ok: {} file(s), {} SQL statement(s) prepared against the schema{skipped}\n",
        c.files, c.statements
    ))
}

fn cmd_export(pack_path: &Path, out: Option<PathBuf>, check_only: bool) -> anyhow::Result<()> {
    // Never export a broken pack.
    let mut c = check::Checker::new()?;
    c.check_file(pack_path);
    let policies_path = export::policies_path(pack_path);
    if policies_path.is_file() {
        c.check_file(&policies_path);
    }
    if !c.diags.is_empty() {
        return Err(anyhow::Error::msg(report(&c.diags)));
    }
    let fallback_path = export::fallback_path(pack_path);
    let has_fallback = fallback_path.is_file();
    if has_fallback {
        let mut c = check::Checker::new()?;
        c.check_file(&fallback_path);
        if !c.diags.is_empty() {
            return Err(anyhow::Error::msg(report(&c.diags)));
        }
    }
    let pack = load(pack_path)?;
    let fallback = if has_fallback {
        Some(load(&fallback_path)?)
    } else {
        None
    };
    let policies = export::load_policies(&policies_path).map_err(|d| anyhow::anyhow!("{d}"))?;
    let files = export::render(&pack, &policies, fallback.as_ref())?;
    let out = out.unwrap_or_else(|| {
        pack_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    if check_only {
        let mut drift = Vec::new();
        for (rel, want) in &files {
            let p = out.join(rel);
            if std::fs::read_to_string(&p).ok().as_deref() != Some(want.as_str()) {
                drift.push(p.display().to_string());
            }
        }
        if !drift.is_empty() {
            for d in &drift {
                eprintln!(
                    "{d}: differs from `keychain-access pack export {}`",
                    pack_path.display()
                );
            }
            return Err(anyhow::anyhow!(
                "{} generated file(s) out of date",
                drift.len()
            ));
        }
        return crate::cli::print_stdout(&format!(
            "ok: {} generated file(s) up to date\n",
            files.len()
        ));
    }
    for p in export::write_all(&out, &files)? {
        crate::cli::print_stdout(&format!("{}\n", p.display()))?;
    }
    Ok(())
}
