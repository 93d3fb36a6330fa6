//! `explore prune <spec.yaml> --strategy S --target T`: one point of a sweep,
//! with the counts before and after and a closing JSON line.

use std::path::PathBuf;
use std::process::ExitCode;

use explore::config::{Spec, Strategy};
use explore::sweep::{PointKey, Workspace};

#[derive(clap::Args)]
pub struct Args {
    /// Sweep spec (YAML) whose dense model, regularization and fine-tuning to use.
    spec: PathBuf,
    /// positional, diagonal, hybrid, unstructured, channel or dense.
    #[arg(long)]
    strategy: Strategy,
    /// Fraction of prunable weights (or, with target_metric: rotations, of
    /// dense rotations) to remove, in [0, 1).
    #[arg(long)]
    target: f64,
    /// Seed of the regularization and fine-tuning (default: the spec's first seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory (default: the spec's `output`, or results/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = Spec::load(&args.spec)?;
    super::set_threads(spec.threads)?;
    let key = PointKey {
        strategy: args.strategy,
        target: args.target,
        seed: args.seed.unwrap_or(spec.prune.seeds[0]),
    };
    let ws = Workspace::open(spec, args.output)?;
    let (dense, summary) = ws.dense(key.seed)?;
    let progress = indicatif::ProgressBar::new_spinner();
    let trained = ws.train_point(&dense, summary.seconds, key, &progress)?;
    progress.finish_and_clear();
    let mut ctx = ws.he_context()?;
    let measured = ctx.measure_primitives(5)?;
    let result = ws.measure_point(&trained, &mut ctx, &measured)?;

    let row = |name: &str, d: &explore::he::LayerCost, p: &explore::he::LayerCost| {
        println!(
            "{name:<20} {:>10} {:>10} {:>11} {:>11}",
            d.rotations(),
            p.rotations(),
            d.pmults,
            p.pmults
        )
    };
    println!(
        "{:<20} {:>10} {:>10} {:>11} {:>11}",
        "layer", "rot_dense", "rot", "pmult_dense", "pmult"
    );
    for (d, p) in result.dense_cost.layers.iter().zip(&result.cost.layers) {
        row(&d.layer, &d.cost, &p.cost);
    }
    row("total", &result.dense_cost.total, &result.cost.total);
    let r = &result.record;
    let line = serde_json::json!({
        "strategy": r.strategy.name(),
        "target": r.target,
        "accuracy": r.accuracy,
        "weight_sparsity": r.weight_sparsity,
        "rotations": r.rotations,
        "rotations_dense": r.rotations_dense,
        "pmults": r.pmults,
        "checkpoint": result.checkpoint,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}
