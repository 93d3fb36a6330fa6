//! `explore prune <spec.yaml> --strategy S --target T`: one point of a sweep,
//! with the counts before and after and a closing JSON line.

use std::process::ExitCode;

use explore_spec::PointKey;
use explore_spec::Strategy;

#[derive(clap::Args)]
pub struct Args {
    /// The spec whose dense model, regularization and fine-tuning to use.
    #[command(flatten)]
    spec: super::SpecArgs,
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
    /// Recovery budget in fine-tuning epochs, one of the spec's
    /// `prune.finetune.epochs` (default: the first).
    #[arg(long)]
    budget: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ws = args.spec.open()?;
    let budgets = ws.spec.prune.budgets();
    if let Some(b) = args.budget
        && !budgets.contains(&b)
    {
        anyhow::bail!(
            "--budget {b}: not one of the spec's recovery budgets (prune.finetune.epochs: {budgets:?}): pick one of those"
        );
    }
    let key = PointKey {
        strategy: args.strategy,
        target: args.target,
        budget: (budgets.len() > 1).then(|| args.budget.unwrap_or(budgets[0])),
        seed: args.seed.unwrap_or(ws.spec.prune.seeds[0]),
        schedule: ws.spec.he.schedule,
    };
    let (dense, summary) = ws.dense(key.seed)?;
    let progress = indicatif::ProgressBar::new_spinner();
    let trained = ws.train_point(&dense, &summary, key, &progress)?;
    progress.finish_and_clear();
    let mut ctx = ws.he_context()?;
    let measured = ctx.measure_primitives(5)?;
    let result = ws.measure_point(
        &trained,
        &key.scheduler(&ws.spec),
        &mut ctx,
        &measured,
        None,
    )?;

    // Pruning may change the cheapest schedule of a layer: both are shown.
    println!(
        "{:<20} {:>16} {:>16} {:>10} {:>10} {:>11} {:>11}",
        "layer", "schedule_dense", "schedule", "rot_dense", "rot", "pmult_dense", "pmult"
    );
    let with_b = |r: &explore_he::LayerRow| format!("{} B={}", r.schedule, r.baby_step);
    for (d, p) in result.dense_cost.layers.iter().zip(&result.cost.layers) {
        println!(
            "{:<20} {:>16} {:>16} {:>10} {:>10} {:>11} {:>11}",
            d.layer,
            with_b(d),
            with_b(p),
            d.cost.rotations(),
            p.cost.rotations(),
            d.cost.pmults,
            p.cost.pmults
        );
    }
    let (d, p) = (&result.dense_cost.total, &result.cost.total);
    println!(
        "{:<20} {:>16} {:>16} {:>10} {:>10} {:>11} {:>11}",
        "total",
        "",
        "",
        d.rotations(),
        p.rotations(),
        d.pmults,
        p.pmults
    );
    let r = &result.record;
    let line = serde_json::json!({
        "strategy": r.strategy.name(),
        "schedule": r.schedule.name(),
        "target": r.target,
        "accuracy": r.accuracy,
        "weight_sparsity": r.weight_sparsity,
        "rotations": r.rotations,
        "rotations_hoisted": r.rotations_hoisted,
        "rotations_dense": r.rotations_dense,
        "pmults": r.pmults,
        "galois_keys": r.galois_keys,
        "galois_key_bytes": r.galois_key_bytes,
        "accuracy_quantized": r.accuracy_quantized,
        "test_images": r.test_images,
        "val_accuracy": r.val_accuracy,
        "val_images": r.val_images,
        "train_steps": r.train_steps,
        "checkpoint": result.checkpoint,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}
