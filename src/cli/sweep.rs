//! `explore sweep <spec.yaml>`: the whole job, resumable; or one shard of
//! it, or the stage its shards share.

use std::process::ExitCode;

use explore::sweep::{self, Shard};

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Stage {
    /// Train only what every shard shares: the dense models and the
    /// group-Lasso models, once.
    Shared,
    /// Every stage of the points run here (the default).
    All,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    spec: super::SpecArgs,
    /// Insist on resuming: fail if the output directory has no finished
    /// points. (Finished points are always skipped.)
    #[arg(long)]
    resume: bool,
    /// Run only shard i of n (1 <= i <= n): a fixed, disjoint share of the
    /// points, written to points-i-of-n.csv; `explore merge` combines them.
    #[arg(long)]
    shard: Option<Shard>,
    #[arg(long, value_enum, default_value = "all")]
    stage: Stage,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let yaml = args.spec.yaml()?;
    let ws = args.spec.open()?;
    if args.stage == Stage::Shared {
        sweep::run_shared(&ws)?;
        eprintln!(
            "dense and group-Lasso models of {} trained in {}",
            ws.spec.name,
            ws.store.dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let table = ws.store.points_csv_of(args.shard);
    if args.resume && !table.exists() {
        anyhow::bail!(
            "--resume: {} does not exist, so nothing finished; run without --resume to start",
            table.display()
        );
    }
    let points = sweep::run(&ws, &yaml, args.shard)?;
    match args.shard {
        Some(shard) => eprintln!(
            "shard {shard}: {} points in {}; `explore merge {}` draws the fronts once every shard is done",
            points.len(),
            table.display(),
            ws.store.dir().display()
        ),
        None => eprintln!(
            "{} points in {}: points.csv, front.csv, plots and report.md",
            points.len(),
            ws.store.dir().display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
