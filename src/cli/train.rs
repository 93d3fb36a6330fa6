//! `explore train <spec.yaml>`: trains the spec's dense model, writes its
//! checkpoint under `<output>/dense/` and prints the summary as one JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore::config::Spec;
use explore::train;

#[derive(clap::Args)]
pub struct Args {
    /// The sweep spec (YAML); its `data`, `model` and `train` sections are used.
    pub spec: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    let run = train::train_dense(&spec)
        .with_context(|| format!("training the dense model of {}", args.spec.display()))?;
    println!("{}", serde_json::to_string(&run.summary)?);
    Ok(ExitCode::SUCCESS)
}
