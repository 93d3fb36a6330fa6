//! `explore merge DIR... --output DIR`: shard outputs combined into one
//! sweep (points.csv, fronts, plots, report), saying which points are
//! missing.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Output directories of the shards (one directory if they shared it).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where the merged sweep goes (may be one of the inputs).
    #[arg(long)]
    output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let merged = explore::sweep::merge(&args.dirs, &args.output)?;
    eprintln!(
        "{} points merged into {}: points.csv, front.csv, plots and report.md",
        merged.points.len(),
        merged.output.display()
    );
    if !merged.missing.is_empty() {
        eprintln!(
            "missing {} point(s) the spec asks for (a shard not finished, or a target out of reach):",
            merged.missing.len()
        );
        for k in &merged.missing {
            eprintln!("  {k}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
