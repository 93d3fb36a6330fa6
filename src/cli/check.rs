//! `explore check`: compares a sweep's Pareto front with a baseline front and
//! exits 1 when it regressed beyond training noise (see `explore_results::gate` for
//! the rules). The noise profile is the baseline's `noise.json` (or
//! `--noise`), else the new run's own when it has enough seeds; accuracy
//! differences are paired when every point of both tables is known to have
//! been tested on the same images: by its per-image outcomes, or by the
//! image-set fingerprint its row records.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use explore_results::budgets;
use explore_results::gate::{self, DEFAULT_ALPHA, DEFAULT_LATENCY_TOLERANCE, Noise, Rule};
use explore_results::outcomes;
use explore_results::pareto::{self, Cost};
use explore_results::points::{self, PointRecord};
use explore_results::seed_noise::{self, NoiseProfile};

#[derive(clap::Args)]
pub struct Args {
    /// The new sweep's points.csv.
    points: PathBuf,
    /// The baseline: a points table, e.g. a sweep's front.csv or the output
    /// of `explore pareto --format csv` (it must hold the dense row to
    /// compare latency), with its noise profile noise.json beside it.
    #[arg(long)]
    baseline: PathBuf,
    /// The baseline's noise profile, if not noise.json beside it.
    #[arg(long)]
    noise: Option<PathBuf>,
    /// The family-wise false-alarm rate: the chance that an unchanged
    /// front, merely reseeded, fails.
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    alpha: f64,
    /// Relative latency increase of one point that still counts as noise
    /// (with --cost latency: timings depend on the machine and are not in
    /// the noise profile). The mean over the K points both fronts hold may
    /// rise this over sqrt(K).
    #[arg(long, default_value_t = DEFAULT_LATENCY_TOLERANCE)]
    cost_tolerance: f64,
    /// Override the statistics with one fixed tolerance: absolute for
    /// accuracy (a fraction: 0.01 is one point), relative for cost and
    /// hypervolume.
    #[arg(long, conflicts_with_all = ["alpha", "cost_tolerance", "noise"])]
    tolerance: Option<f64>,
    /// Cost axis: rotations or latency.
    #[arg(long, default_value = "rotations")]
    cost: Cost,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let new = points::read(&args.points)?;
    let baseline = points::read(&args.baseline)?;
    let new = budgets::matching(&new, &baseline).map_err(|e| {
        anyhow::anyhow!(
            "{} against {}: {e}",
            args.points.display(),
            args.baseline.display()
        )
    })?;
    let rule = match args.tolerance {
        Some(tolerance) => Rule::Fixed { tolerance },
        None => Rule::Statistical {
            alpha: args.alpha,
            cost_tolerance: args.cost_tolerance,
        },
    };
    let profile = match rule {
        Rule::Fixed { .. } => None,
        Rule::Statistical { .. } => Some(profile(&args, &new)?),
    };
    let paired = same_test_images(&args.points, &new, &args.baseline, &baseline)?;
    let noise = profile.as_ref().map(|profile| Noise { profile, paired });
    let c = gate::compare(&new, &baseline, args.cost, rule, noise).with_context(|| {
        format!(
            "comparing {} with {}",
            args.points.display(),
            args.baseline.display()
        )
    })?;
    print!("{}", gate::render(&c));
    Ok(if c.passed() {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL: {}", c.regressions().join(", "));
        ExitCode::from(1)
    })
}

/// The baseline's noise profile, or the new run's own when it has enough
/// seeds; else an error that says how to get one.
fn profile(args: &Args, new: &[PointRecord]) -> anyhow::Result<NoiseProfile> {
    let path = args
        .noise
        .clone()
        .unwrap_or_else(|| NoiseProfile::beside(&args.baseline));
    if let Some(p) = NoiseProfile::read(&path)? {
        return Ok(p);
    }
    if let Some(p) = NoiseProfile::measure(new) {
        return Ok(p);
    }
    bail!(
        "baseline {}: no noise profile ({} does not exist) and {} has fewer than {} seeds to measure one: regenerate the baseline with at least {} seeds in prune.seeds (the sweep writes noise.json beside front.csv), pass --noise FILE, or use --tolerance T for a fixed rule",
        args.baseline.display(),
        path.display(),
        args.points.display(),
        seed_noise::MIN_SEEDS,
        seed_noise::MIN_SEEDS
    )
}

/// Whether every point of both tables' fronts has per-image outcomes, all of
/// one test set. Outcomes that disagree with their table are an error.
fn same_test_images(
    new_path: &Path,
    new: &[PointRecord],
    base_path: &Path,
    baseline: &[PointRecord],
) -> anyhow::Result<bool> {
    let base_front = pareto::baseline_rows(baseline, Cost::Rotations, false);
    // A point's images: its outcomes' fingerprint (checked against its
    // row), else the one its row records.
    let sets_of = |path: &Path, rows: &[PointRecord]| -> anyhow::Result<Vec<Option<String>>> {
        Ok(outcomes::of_table(path, rows)?
            .into_iter()
            .zip(rows)
            .map(|(o, r)| match o {
                Some(o) => Some(o.test.set),
                None => (!r.test_set.is_empty()).then(|| r.test_set.clone()),
            })
            .collect())
    };
    let mut sets = sets_of(new_path, new)?;
    sets.extend(sets_of(base_path, &base_front)?);
    Ok(sets.iter().all(|s| s.is_some()) && sets.windows(2).all(|w| w[0] == w[1]))
}
