//! `explore train <spec.yaml>`: trains the spec's dense model (or finds it
//! already trained), writes its checkpoint under the spec's output directory
//! and prints the summary as one JSON line (also saved as `train.json`).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The spec's `data`, `model` and `train` sections are used.
    #[command(flatten)]
    spec: super::SpecArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ws = args.spec.open()?;
    let (_, summary) = ws.dense(ws.spec.prune.seeds[0])?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}
