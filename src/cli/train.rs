//! `explore train <spec.yaml>`: trains the spec's dense model (or finds it
//! already trained), writes its checkpoint under the spec's output directory
//! and prints the summary as one JSON line (also saved as `train.json`).

use std::path::PathBuf;
use std::process::ExitCode;

use explore::config::Spec;
use explore::sweep::Workspace;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep spec (YAML); its `data`, `model` and `train` sections are used.
    spec: PathBuf,
    /// Output directory (default: the spec's `output`, or results/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    super::set_threads(spec.threads)?;
    let ws = Workspace::open(spec, args.output)?;
    let (_, summary) = ws.dense(ws.spec.prune.seeds[0])?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}
