//! The sweep's `report.md`: the spec, the Pareto fronts under both costs, the
//! plots, speedups over the dense model at iso-accuracy and the hypervolume
//! per strategy, then every point. [`render`] builds the markdown (pure);
//! [`write`] puts it in the output directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::pareto::{self, Cost, Summary};
use crate::points::PointRecord;
use crate::prune::Strategy;

/// "Iso-accuracy": within one accuracy point (accuracies are fractions) of dense.
pub const ISO_ACCURACY_TOLERANCE: f64 = 0.01;

/// Standard errors within which the report calls a difference noise (the
/// same default `explore check` uses).
const NOISE_Z: f64 = crate::stats::DEFAULT_Z;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Writes `dir/report.md` and returns its path. `plots` are (title, path
/// relative to `dir`).
pub fn write(
    dir: &Path,
    spec_yaml: &str,
    points: &[PointRecord],
    plots: &[(String, PathBuf)],
) -> Result<PathBuf, ReportError> {
    let path = dir.join("report.md");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, render(spec_yaml, points, plots)))
        .map_err(|error| ReportError::Write {
            path: path.clone(),
            error,
        })?;
    Ok(path)
}

/// The report as markdown.
pub fn render(spec_yaml: &str, points: &[PointRecord], plots: &[(String, PathBuf)]) -> String {
    let mut md = String::new();
    let mut names: Vec<&str> = points.iter().map(|p| p.sweep.as_str()).collect();
    names.dedup();
    let summaries = pareto::summarize(points);
    let _ = writeln!(md, "# Sweep report: {}\n", names.join(", "));
    let _ = writeln!(
        md,
        "{} points ({} strategy/target pairs). Accuracies are test accuracies in percent \
         of the integer model the encrypted network computes (the float model's are in \
         the last table), each with its standard error: the binomial error of the test \
         set ({}), plus the seed-to-seed error of the mean where a pair has several \
         seeds. Costs are rotations per inference and the measured latency of the \
         encrypted layers (ms).\n",
        points.len(),
        summaries.len(),
        test_sets(points)
    );
    md += "## Spec\n\n```yaml\n";
    md += spec_yaml.trim_end();
    md += "\n```\n\n";
    if !plots.is_empty() {
        md += "## Plots\n\n";
        for (title, path) in plots {
            let _ = writeln!(md, "![{title}]({})\n", path.display());
        }
    }
    md += &speedups(&summaries, &pareto::references(points));
    md += &hypervolumes(&summaries);
    md += "## Pareto fronts\n\n";
    for cost in Cost::ALL {
        let _ = writeln!(md, "### By {}\n", cost.label());
        md += "Overall:\n\n";
        md += &front_table(&pareto::front(&summaries, cost));
        md += "\nPer strategy:\n\n";
        let per: Vec<&Summary> = pareto::fronts_by_strategy(&summaries, cost)
            .into_values()
            .flatten()
            .collect();
        md += &front_table(&per);
        md += "\n";
    }
    md += "## All points\n\n";
    md += &points_table(points);
    md
}

/// "1,000 test images", or the sizes found when rows differ.
fn test_sets(points: &[PointRecord]) -> String {
    let mut sizes: Vec<u64> = points.iter().map(|p| p.test_images).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let list: Vec<String> = sizes.iter().map(u64::to_string).collect();
    format!("{} test images", list.join(" or "))
}

/// Speedups of the cheapest point within [`ISO_ACCURACY_TOLERANCE`] of the
/// dense accuracy, per strategy and overall, under each cost, with the
/// point's accuracy difference to dense in standard errors.
fn speedups(points: &[Summary], references: &[Summary]) -> String {
    let mut md = String::from("## Speedup over dense at iso-accuracy\n\n");
    let Some(dense) = pareto::dense(points) else {
        md += "No dense point (strategy `dense`), so no speedups.\n\n";
        return md;
    };
    let floor = dense.accuracy.mean - ISO_ACCURACY_TOLERANCE;
    let _ = writeln!(
        md,
        "The cheapest point with mean accuracy at least {} % (dense {} % minus {} point). \
         `difference` is its accuracy minus dense's with the standard error of that \
         difference; within {NOISE_Z} standard errors it is noise, not a loss.\n",
        pct(floor),
        pct(dense.accuracy.mean),
        100.0 * ISO_ACCURACY_TOLERANCE
    );
    let schedule = dense.schedule;
    let _ = write!(
        md,
        "`speedup` is against the dense model under the same schedule ({schedule}: {} rotations",
        Cost::Rotations.format(dense.rotations.mean)
    );
    if dense.latency.mean.is_finite() {
        let _ = write!(md, ", {} ms", Cost::Latency.format(dense.latency.mean));
    }
    md += ")";
    for r in references {
        let _ = write!(
            md,
            "; `vs {}` against the dense model under {}'s schedule ({} rotations, {} ms), the paper's setting",
            r.schedule,
            r.schedule,
            Cost::Rotations.format(r.rotations.mean),
            Cost::Latency.format(r.latency.mean)
        );
    }
    md += ".\n\n";
    let mut rows = Vec::new();
    let pruned = |s: Option<Strategy>| {
        points
            .iter()
            .filter(move |p| p.strategy != Strategy::Dense && s.is_none_or(|s| p.strategy == s))
    };
    for cost in Cost::ALL {
        let Some(reference) = pareto::reference_cost(points, cost) else {
            continue;
        };
        let groups = strategies(points)
            .into_iter()
            .map(|s| (s.name(), Some(s)))
            .chain([("overall", None)]);
        for (name, s) in groups {
            let mut row = vec![cost.name().to_string(), name.to_string()];
            match pareto::cheapest_within(pruned(s), cost, floor) {
                Some(p) => {
                    let d = p.accuracy.mean - dense.accuracy.mean;
                    let se = p.accuracy.se_of_difference(&dense.accuracy);
                    row.extend([
                        format!("{}", p.target),
                        p.seeds.len().to_string(),
                        estimate(p.accuracy.mean, p.accuracy.se),
                        format!(
                            "{} ({})",
                            estimate(d, se),
                            if d.abs() <= NOISE_Z * se {
                                "within noise"
                            } else if d < 0.0 {
                                "a loss"
                            } else {
                                "a gain"
                            }
                        ),
                        cost.format(cost.of(p)),
                        format!("{:.2}x", reference / cost.of(p)),
                    ]);
                    row.extend(
                        references
                            .iter()
                            .map(|r| format!("{:.2}x", cost.of(r) / cost.of(p))),
                    );
                }
                None => {
                    row.extend(std::iter::repeat_n("-".to_string(), 5));
                    row.push("none within 1 point".into());
                    row.extend(references.iter().map(|_| "-".to_string()));
                }
            }
            rows.push(row);
        }
    }
    let reference_headers: Vec<String> = references
        .iter()
        .map(|r| format!("vs {}", r.schedule))
        .collect();
    let mut header = vec![
        "cost",
        "strategy",
        "target",
        "seeds",
        "accuracy (%)",
        "difference (points)",
        "cost value",
        "speedup",
    ];
    header.extend(reference_headers.iter().map(String::as_str));
    md += &table(&header, &rows);
    md + "\n"
}

/// Hypervolume per strategy and overall, divided by the dense cost so it reads
/// as the mean best accuracy over costs 0..dense (0 when nothing is cheaper
/// than dense), with its standard error.
fn hypervolumes(points: &[Summary]) -> String {
    let mut md = String::from("## Hypervolume\n\n");
    md += "Area under each front's attainment curve between cost 0 and the dense cost, \
           divided by the dense cost (reference point: dense cost, accuracy 0), with \
           the standard error its points' accuracies give it.";
    let references: Vec<Option<f64>> = Cost::ALL
        .iter()
        .map(|&c| pareto::reference_cost(points, c))
        .collect();
    for (cost, reference) in Cost::ALL.iter().zip(&references) {
        if let Some(r) = reference {
            let _ = write!(md, " Dense {}: {}.", cost.name(), cost.format(*r));
        }
    }
    md += "\n\n";
    let cell = |subset: &[&Summary], cost: Cost, reference: Option<f64>| match reference {
        Some(r) if r > 0.0 => {
            let hv = pareto::hypervolume(subset.iter().copied(), r, cost);
            format!("{:.4} ± {:.4}", hv.mean / r, hv.se / r)
        }
        _ => "n/a".to_string(),
    };
    let mut groups: Vec<(String, Vec<&Summary>)> = strategies(points)
        .into_iter()
        .map(|s| {
            (
                s.name().to_string(),
                points.iter().filter(|p| p.strategy == s).collect(),
            )
        })
        .collect();
    groups.push(("overall".into(), points.iter().collect()));
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(name, subset)| {
            let mut row = vec![name.clone()];
            row.extend(
                Cost::ALL
                    .iter()
                    .zip(&references)
                    .map(|(&c, &r)| cell(subset, c, r)),
            );
            row
        })
        .collect();
    md += &table(&["strategy", "by rotations", "by latency"], &rows);
    md + "\n"
}

/// The pruned strategies present, in their canonical order.
fn strategies(points: &[Summary]) -> Vec<Strategy> {
    Strategy::ALL
        .into_iter()
        .filter(|&s| s != Strategy::Dense && points.iter().any(|p| p.strategy == s))
        .collect()
}

/// A compact table of front points (both costs shown, means over seeds).
pub fn front_table(points: &[&Summary]) -> String {
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            vec![
                p.strategy.name().to_string(),
                format!("{}", p.target),
                p.seeds.len().to_string(),
                estimate(p.accuracy.mean, p.accuracy.se),
                Cost::Rotations.format(p.rotations.mean),
                ms(p.latency.mean),
            ]
        })
        .collect();
    table(
        &[
            "strategy",
            "target",
            "seeds",
            "accuracy (%)",
            "rotations",
            "latency (ms)",
        ],
        &rows,
    )
}

/// Every column of every point, sorted by strategy, target and seed.
pub fn points_table(points: &[PointRecord]) -> String {
    let mut sorted: Vec<&PointRecord> = points.iter().collect();
    sorted.sort_by(|a, b| {
        (a.strategy, a.seed)
            .cmp(&(b.strategy, b.seed))
            .then(a.target.total_cmp(&b.target))
    });
    let rows: Vec<Vec<String>> = sorted
        .iter()
        .map(|p| {
            vec![
                p.strategy.name().to_string(),
                format!("{}", p.target),
                p.seed.to_string(),
                pct(p.accuracy_quantized),
                pct(p.accuracy),
                p.test_images.to_string(),
                pct(p.weight_sparsity),
                p.rotations.to_string(),
                p.pmults.to_string(),
                p.adds.to_string(),
                ms(p.latency_model_ms),
                ms(p.latency_measured_ms),
                p.he_verified.to_string(),
                format!("{:.0}", p.train_seconds),
            ]
        })
        .collect();
    table(
        &[
            "strategy",
            "target",
            "seed",
            "integer (%)",
            "float (%)",
            "test images",
            "sparsity (%)",
            "rotations",
            "pmults",
            "adds",
            "model (ms)",
            "measured (ms)",
            "verified",
            "train (s)",
        ],
        &rows,
    )
}

/// A fraction and its standard error as percent: `78.80 ± 1.29`.
fn estimate(mean: f64, se: f64) -> String {
    format!("{} ± {}", pct(mean), pct(se))
}

fn pct(fraction: f64) -> String {
    if fraction.is_finite() {
        format!("{:.2}", 100.0 * fraction)
    } else {
        "n/a".into()
    }
}

fn ms(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "n/a".into()
    }
}

/// A markdown table with padded columns, readable as plain text too.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len().max(3)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(&header) + &line(&rule);
    for row in rows {
        out += &line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;

    fn sweep() -> Vec<PointRecord> {
        vec![
            record(Strategy::Dense, 0.0, 0.91, 1000),
            record(Strategy::Diagonal, 0.5, 0.905, 500),
            record(Strategy::Diagonal, 0.9, 0.85, 200),
            record(Strategy::Channel, 0.5, 0.88, 400),
        ]
    }

    fn section<'a>(md: &'a str, heading: &str) -> &'a str {
        let start = md
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading} in\n{md}"));
        let rest = &md[start + heading.len()..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    #[test]
    fn report_has_spec_plots_fronts_and_points() {
        let plots = vec![(
            "Accuracy vs rotations".to_string(),
            PathBuf::from("plots/acc_rot.png"),
        )];
        let md = render("name: smoke\nseeds: [0]\n", &sweep(), &plots);
        assert!(md.starts_with("# Sweep report: smoke\n"));
        assert!(section(&md, "## Spec").contains("```yaml\nname: smoke\nseeds: [0]\n```"));
        assert!(md.contains("![Accuracy vs rotations](plots/acc_rot.png)"));
        let fronts = section(&md, "## Pareto fronts");
        assert!(
            fronts.contains("### By rotations per inference")
                && fronts.contains("### By encrypted latency (ms)")
        );
        // Each point is more accurate than every cheaper one, so all four are on
        // the overall front: 4 rows + header + rule.
        let overall =
            &fronts[fronts.find("Overall:").unwrap()..fronts.find("Per strategy:").unwrap()];
        assert_eq!(
            overall.lines().filter(|l| l.starts_with('|')).count(),
            2 + 4
        );
        assert_eq!(
            section(&md, "## All points")
                .lines()
                .filter(|l| l.starts_with('|'))
                .count(),
            2 + 4
        );
    }

    #[test]
    fn speedups_use_the_cheapest_point_within_one_accuracy_point() {
        let md = render("", &sweep(), &[]);
        let s = section(&md, "## Speedup over dense at iso-accuracy");
        assert!(s.contains("at least 90.00 %"), "{s}");
        let row = |cost: &str, strategy: &str| {
            s.lines()
                .find(|l| {
                    l.starts_with(&format!("| {cost}")) && l.contains(&format!(" {strategy} "))
                })
                .unwrap_or_else(|| panic!("no {cost} {strategy} row in\n{s}"))
                .to_string()
        };
        // Diagonal reaches 90.5% at 500 of dense's 1000 rotations; half a
        // point below dense is well within the 1.3-point standard error of
        // a difference on 1000 test images.
        assert!(row("rotations", "diagonal").contains("| 2.00x"), "{s}");
        assert!(
            row("rotations", "diagonal").contains("-0.50 ± 1.30 (within noise)"),
            "{s}"
        );
        assert!(
            row("rotations", "channel").contains("none within 1 point"),
            "{s}"
        );
        assert!(row("rotations", "overall").contains("| 2.00x"), "{s}");
        // Latency is 2.6 ms per rotation in the test records.
        assert!(
            row("latency", "diagonal").contains("1300.0")
                && row("latency", "diagonal").contains("2.00x"),
            "{s}"
        );
    }

    #[test]
    fn speedups_are_also_given_against_the_gazelle_dense_reference() {
        let mut points = sweep();
        let mut gazelle = record(Strategy::Dense, 0.0, 0.91, 1400);
        gazelle.schedule = crate::he::Schedule::Gazelle;
        points.push(gazelle);
        let md = render("", &points, &[]);
        let s = section(&md, "## Speedup over dense at iso-accuracy");
        assert!(
            s.contains("vs gazelle") && s.contains("1400 rotations"),
            "{s}"
        );
        let diagonal = s
            .lines()
            .find(|l| l.starts_with("| rotations") && l.contains(" diagonal "))
            .unwrap();
        // 1000 / 500 against best's dense, 1400 / 500 against Gazelle's.
        assert!(
            diagonal.contains("| 2.00x") && diagonal.contains("| 2.80x"),
            "{s}"
        );
        // The reference is no point of the fronts.
        assert_eq!(
            section(&md, "## All points")
                .lines()
                .filter(|l| l.starts_with('|'))
                .count(),
            2 + 5
        );
    }

    #[test]
    fn hypervolumes_are_normalized_by_the_dense_cost() {
        let md = render("", &sweep(), &[]);
        let s = section(&md, "## Hypervolume");
        assert!(
            s.contains("Dense rotations: 1000. Dense latency: 2600.0."),
            "{s}"
        );
        // Diagonal: (0.85 * 300 + 0.905 * 500) / 1000; channel: 0.88 * 600 / 1000.
        let diagonal = (0.85 * 300.0 + 0.905 * 500.0) / 1000.0;
        let se = |a: f64| crate::stats::binomial_se(a, 1000);
        let diagonal_se = ((0.3 * se(0.85)).powi(2) + (0.5 * se(0.905)).powi(2)).sqrt();
        assert!(
            s.contains(&format!("| diagonal | {diagonal:.4} ± {diagonal_se:.4}")),
            "{s}"
        );
        assert!(
            s.contains(&format!("| channel  | {:.4}", 0.88 * 0.6)),
            "{s}"
        );
        let overall = (0.85 * 200.0 + 0.88 * 100.0 + 0.905 * 500.0) / 1000.0;
        assert!(s.contains(&format!("| overall  | {overall:.4}")), "{s}");
    }

    #[test]
    fn a_sweep_without_dense_says_why_there_are_no_speedups() {
        let points: Vec<_> = sweep().into_iter().skip(1).collect();
        let md = render("", &points, &[]);
        assert!(md.contains("No dense point"), "{md}");
    }

    #[test]
    fn write_puts_report_md_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results");
        let path = write(&out, "name: smoke\n", &sweep(), &[]).unwrap();
        assert_eq!(path, out.join("report.md"));
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            render("name: smoke\n", &sweep(), &[])
        );
    }
}
