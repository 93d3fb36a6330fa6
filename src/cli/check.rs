//! `explore check`: compares a sweep's Pareto front with a baseline front and
//! exits 1 when it regressed (see `pareto::check::compare` for the rule).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore::pareto::{Cost, check};
use explore::points;

#[derive(clap::Args)]
pub struct Args {
    /// The new sweep's points.csv.
    points: PathBuf,
    /// The baseline: a points table, e.g. saved from `explore pareto --format csv`
    /// (it must hold the dense row to compare latency).
    #[arg(long)]
    baseline: PathBuf,
    /// Allowed loss: relative for hypervolume and cost, absolute for accuracy
    /// (a fraction: 0.01 is one accuracy point).
    #[arg(long, default_value_t = 0.01)]
    tolerance: f64,
    /// Cost axis: rotations or latency.
    #[arg(long, default_value = "rotations")]
    cost: Cost,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let new = points::read(&args.points)?;
    let baseline = points::read(&args.baseline)?;
    let c = check::compare(&new, &baseline, args.cost, args.tolerance).with_context(|| {
        format!(
            "comparing {} with {}",
            args.points.display(),
            args.baseline.display()
        )
    })?;
    let cost = c.cost;
    let normalized = |hv: f64| hv / c.reference_cost;
    println!(
        "cost {cost}, reference {} (the larger dense cost), tolerance {}",
        cost.format(c.reference_cost),
        c.tolerance
    );
    println!(
        "hypervolume: new {:.4}, baseline {:.4} (normalized; new must be >= {:.4}): {}",
        normalized(c.hypervolume),
        normalized(c.baseline_hypervolume),
        normalized((1.0 - c.tolerance) * c.baseline_hypervolume),
        if c.hypervolume_ok() {
            "ok"
        } else {
            "REGRESSED"
        }
    );
    if !c.regressions.is_empty() {
        println!(
            "baseline front points no new point matches (accuracy within {} point, {cost} within {}%):",
            100.0 * c.tolerance,
            100.0 * c.tolerance
        );
        for p in &c.regressions {
            println!(
                "  {} target {} seed {}: accuracy {:.2} %, {cost} {}",
                p.strategy,
                p.target,
                p.seed,
                100.0 * p.accuracy,
                cost.format(cost.of(p))
            );
        }
    }
    Ok(if c.passed() {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::from(1)
    })
}
