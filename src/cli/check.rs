//! `explore check`: compares a sweep's Pareto front with a baseline front and
//! exits 1 when it regressed beyond measurement noise (see `explore::check`
//! for the rules).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore::check::{self, DEFAULT_COST_TOLERANCE, DEFAULT_Z, Rule};
use explore::pareto::Cost;
use explore::points;

#[derive(clap::Args)]
pub struct Args {
    /// The new sweep's points.csv.
    points: PathBuf,
    /// The baseline: a points table, e.g. a sweep's front.csv or the output
    /// of `explore pareto --format csv` (it must hold the dense row to
    /// compare latency).
    #[arg(long)]
    baseline: PathBuf,
    /// Standard errors of an accuracy difference that still count as noise.
    #[arg(long, default_value_t = DEFAULT_Z)]
    z: f64,
    /// Relative cost increase of one point that still counts as noise (by
    /// default two standard deviations of the difference of two runs'
    /// rotations, from their measured seed-to-seed spread; for --cost
    /// latency give the spread of your timings). The mean change over the
    /// K points both fronts hold may be this over sqrt(K).
    #[arg(long, default_value_t = DEFAULT_COST_TOLERANCE)]
    cost_tolerance: f64,
    /// Override the statistics with one fixed tolerance: absolute for
    /// accuracy (a fraction: 0.01 is one point), relative for cost and
    /// hypervolume.
    #[arg(long, conflicts_with_all = ["z", "cost_tolerance"])]
    tolerance: Option<f64>,
    /// Cost axis: rotations or latency.
    #[arg(long, default_value = "rotations")]
    cost: Cost,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let new = points::read(&args.points)?;
    let baseline = points::read(&args.baseline)?;
    let rule = match args.tolerance {
        Some(tolerance) => Rule::Fixed { tolerance },
        None => Rule::Statistical {
            z: args.z,
            cost_tolerance: args.cost_tolerance,
        },
    };
    let c = check::compare(&new, &baseline, args.cost, rule).with_context(|| {
        format!(
            "comparing {} with {}",
            args.points.display(),
            args.baseline.display()
        )
    })?;
    print!("{}", check::render(&c));
    Ok(if c.passed() {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL: {}", c.regressions().join(", "));
        ExitCode::from(1)
    })
}
