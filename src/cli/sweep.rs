//! `explore sweep <spec.yaml>`: the whole job, resumable.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore::config::Spec;
use explore::sweep::{self, Workspace};

#[derive(clap::Args)]
pub struct Args {
    /// Sweep spec (YAML), e.g. sweeps/quick.yaml.
    spec: PathBuf,
    /// Output directory (default: the spec's `output`, or results/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Insist on resuming: fail if the output directory has no finished
    /// points. (Finished points are always skipped.)
    #[arg(long)]
    resume: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    super::set_threads(spec.threads)?;
    let yaml = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("reading {}", args.spec.display()))?;
    let ws = Workspace::open(spec, args.output)?;
    if args.resume && !ws.store.points_csv().exists() {
        anyhow::bail!(
            "--resume: {} has no finished points; run without --resume to start the sweep",
            ws.store.dir().display()
        );
    }
    let points = sweep::run(&ws, &yaml)?;
    eprintln!(
        "{} points in {}: points.csv, front.csv, plots and report.md",
        points.len(),
        ws.store.dir().display()
    );
    Ok(ExitCode::SUCCESS)
}
