//! `explore compare`: two sweeps run on the same images, point against point,
//! paired seed by seed (see `explore_results::arms`): the arms of an
//! ablation such as `sweeps/lasso/`, or one recipe against another.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use explore_results::{arms, outcomes, points};

#[derive(clap::Args)]
pub struct Args {
    /// The first sweep's points.csv (its per-image outcomes in points/ beside it).
    a: PathBuf,
    /// The second sweep's points.csv; differences read first minus second.
    b: PathBuf,
    /// Equivalence margin in accuracy points: a verdict of "equivalent"
    /// needs the paired difference's 90 % interval inside ±margin.
    #[arg(long, default_value_t = 100.0 * explore_results::paired::DEFAULT_MARGIN)]
    margin: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Below a hundredth of a point is a fraction given where points are
    // asked for (a spec's `report.margin: 0.005` is `--margin 0.5` here).
    if !(args.margin >= 0.01 && args.margin < 100.0) {
        anyhow::bail!(
            "--margin {}: give the equivalence margin in accuracy points, from 0.01 to below 100 (0.5 is half a point; a spec's report.margin 0.005 is 0.5 here)",
            args.margin
        );
    }
    let read = |path: &Path| -> anyhow::Result<_> {
        let rows = points::read(path)?;
        let outcomes = outcomes::of_table(path, &rows)?;
        Ok((rows, outcomes))
    };
    let (a, a_out) = read(&args.a)?;
    let (b, b_out) = read(&args.b)?;
    let rows = arms::compare(&a, &a_out, &b, &b_out)
        .map_err(|e| anyhow::anyhow!("{} against {}: {e}", args.a.display(), args.b.display()))?;
    let name = |p: &Path| {
        // A sweep's table is its directory's points.csv: name it by the directory.
        p.parent().and_then(Path::file_name).map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let names = (name(&args.a), name(&args.b));
    let names = if names.0 == names.1 {
        ("first".to_string(), "second".to_string())
    } else {
        names
    };
    println!(
        "paired seed by seed on the same images, {} - {}; 95 % intervals; verdicts at ±{:.2} points (90 % interval inside)",
        names.0, names.1, args.margin
    );
    print!(
        "{}",
        arms::render(&rows, (&names.0, &names.1), args.margin / 100.0)
    );
    Ok(ExitCode::SUCCESS)
}
