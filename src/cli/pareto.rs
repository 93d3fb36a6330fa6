//! `explore pareto`: prints the Pareto front of a points table, overall and
//! optionally per strategy, as a table or as CSV (usable as a `check` baseline).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use explore_results::pareto::{self, Cost, Summary};
use explore_results::points;
use explore_results::report;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// A sweep's points.csv.
    points: PathBuf,
    /// Cost axis: rotations (per inference) or latency (measured, ms).
    #[arg(long, default_value = "rotations")]
    cost: Cost,
    /// `csv` prints the front's rows plus the dense rows, so the output can be
    /// saved as a baseline for `explore check`.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also print each strategy's own front (with csv: include its rows).
    #[arg(long)]
    per_strategy: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let all = points::read(&args.points)?;
    let summaries = pareto::summarize(&all);
    let overall = pareto::front(&summaries, args.cost);
    let per = pareto::fronts_by_strategy(&summaries, args.cost);
    match args.format {
        Format::Table => {
            let reference = pareto::reference_cost(&summaries, args.cost);
            let summary = |front: &[&Summary]| match reference {
                Some(r) if r > 0.0 => {
                    // Above accuracy 0, as `explore check` measures it.
                    let hv = pareto::hypervolume(front.iter().copied(), (r, 0.0), args.cost);
                    format!(
                        "hypervolume {:.4} ± {:.4} (normalized by the dense {} {})",
                        hv.mean / r,
                        hv.se / r,
                        args.cost.name(),
                        args.cost.format(r)
                    )
                }
                _ => "no dense reference, no hypervolume".to_string(),
            };
            println!(
                "Overall front by {}: {}\n",
                args.cost.label(),
                summary(&overall)
            );
            print!("{}", report::front_table(&overall));
            if args.per_strategy {
                for (strategy, front) in &per {
                    println!("\n{strategy}: {}\n", summary(front));
                    print!("{}", report::front_table(front));
                }
            }
        }
        Format::Csv => {
            let rows = pareto::baseline_rows(&all, args.cost, args.per_strategy);
            points::write_csv(std::io::stdout().lock(), &rows)
                .context("cannot write CSV to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
