//! Paired comparisons between two sweeps run on the same images: the arms
//! of an ablation (the group-Lasso penalty off, uniform or HE-cost
//! weighted), or a recipe against another. Each strategy and target that
//! both sweeps hold is compared seed by seed, `a - b`, on the validation
//! images (where a choice between arms is made) and on the test images
//! (what is reported), with the same crossed images-by-seeds statistics as
//! the twin comparisons ([`crate::paired`]). Points are matched by target,
//! so two arms are at matched cost only when the sweeps' targets are
//! costs (`prune.target_metric: rotations`); the rotations of both are
//! shown beside each difference to say how close they came. Pure functions
//! over the two tables and their outcomes.

use crate::budgets;
use crate::outcomes::Outcomes;
use crate::paired::{self, Table, Versus};
use crate::pareto;
use crate::points::PointRecord;
use crate::table;
use explore_he_model::schedule::Schedule;
use explore_spec::Strategy;
use explore_stats::Paired;

/// One strategy and target (and recovery budget, in sweeps of several)
/// held by both sweeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRow {
    /// `hybrid 0.5`, with `, 8 epochs` in sweeps of several budgets.
    pub label: String,
    /// Mean rotations per inference of each side, over its seeds.
    pub rotations: (f64, f64),
    /// `a - b` on each image set (`None` where no seed of both sides has
    /// outcomes on the same images, or the set has fewer than 2 images).
    pub versus: Versus,
    /// Both sides have the same outcome on every paired image: one model
    /// (an ablation's arms share their dense controls), not two models
    /// found equivalent.
    pub identical: bool,
}

/// Why two tables cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MismatchError(String);

/// `a - b` for every strategy and target of `a` that `b` holds too, at each
/// recovery budget; `outcomes` are aligned with their table's rows (as
/// [`crate::outcomes::of_table`] reads them). Both sweeps must hold the
/// same budgets, so no point is set against one trained for longer, and be
/// measured under the same schedule, so their rotations count the same
/// thing; and some point must pair on the same images.
pub fn compare(
    a: &[PointRecord],
    a_outcomes: &[Option<Outcomes>],
    b: &[PointRecord],
    b_outcomes: &[Option<Outcomes>],
) -> Result<Vec<ArmRow>, MismatchError> {
    let (ours, theirs) = (budgets::budgets(a), budgets::budgets(b));
    if ours != theirs {
        return Err(MismatchError(format!(
            "the first table holds recovery budgets {ours:?} and the second {theirs:?} ([] is one unnamed budget): compare sweeps run with the same prune.finetune.epochs"
        )));
    }
    let (sa, sb) = (pareto::primary_schedule(a), pareto::primary_schedule(b));
    if sa != sb {
        let name = |s: Option<Schedule>| s.map_or("none".to_string(), |s| s.to_string());
        return Err(MismatchError(format!(
            "the first table was measured under schedule {} and the second under {}, so their rotations count different things: compare sweeps run with the same he.schedule",
            name(sa),
            name(sb)
        )));
    }
    let several = !ours.is_empty();
    let mut rows = Vec::new();
    for (i, budget) in (if several { ours } else { vec![0] })
        .into_iter()
        .enumerate()
    {
        let (a_rows, a_out) = budgets::at_budget(a, a_outcomes, budget);
        let (b_rows, b_out) = budgets::at_budget(b, b_outcomes, budget);
        let (a_table, b_table) = (Table::new(&a_rows, &a_out), Table::new(&b_rows, &b_out));
        let b_summaries = pareto::summarize(&b_rows);
        for sa in pareto::summarize(&a_rows) {
            // The dense model has no budget: every budget's rows hold it.
            if sa.strategy == Strategy::Dense && i > 0 {
                continue;
            }
            let Some(sb) = b_summaries
                .iter()
                .find(|sb| pareto::same_point(sa.strategy, sa.target, sb.strategy, sb.target))
            else {
                continue;
            };
            let mut label = sa.label();
            if several && sa.strategy != Strategy::Dense {
                label += &format!(", {budget} epochs");
            }
            rows.push(ArmRow {
                label,
                rotations: (sa.rotations.mean, sb.rotations.mean),
                versus: a_table.versus_in(&sa, &b_table, sb),
                identical: a_table.identical_in(&sa, &b_table, sb),
            });
        }
    }
    if rows.is_empty() {
        return Err(MismatchError(
            "the tables hold no strategy and target in common: compare sweeps of the same strategies and targets".into(),
        ));
    }
    if rows.iter().all(|r| r.versus == Versus::default()) {
        return Err(MismatchError(
            "no point pairs: none has per-image outcomes (points/<point>/outcomes.json beside its table) on the same images as its counterpart: compare the points.csv of two sweeps written by `explore sweep` on the same data".into(),
        ));
    }
    Ok(rows)
}

/// The comparison as a markdown table: per row, the seeds paired, both
/// sides' rotations and the paired differences with their 95 % intervals
/// and verdicts at `margin` (a fraction), on validation and test.
pub fn render(rows: &[ArmRow], names: (&str, &str), margin: f64) -> String {
    let (a, b) = names;
    let header = [
        "point",
        "seeds paired",
        &format!("rotations, {a}"),
        &format!("rotations, {b}"),
        &format!("validation, {a} - {b} (points)"),
        &format!("test, {a} - {b} (points)"),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let seeds = r.versus.test.or(r.versus.validation).map_or(0, |p| p.seeds);
            let difference = |p: Option<Paired>| match p {
                Some(_) if r.identical => "identical on every image".to_string(),
                p => paired::cell(p, margin, true),
            };
            vec![
                r.label.clone(),
                seeds.to_string(),
                format!("{:.0}", r.rotations.0),
                format!("{:.0}", r.rotations.1),
                difference(r.versus.validation),
                difference(r.versus.test),
            ]
        })
        .collect();
    let header: Vec<&str> = header.iter().map(|h| h.as_ref()).collect();
    table::markdown(&header, &cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcomes::Correct;
    use explore_stats::Verdict;

    fn row(strategy: Strategy, target: f64, seed: u64, rotations: u64) -> PointRecord {
        PointRecord {
            strategy,
            target,
            seed,
            rotations,
            ..PointRecord::default()
        }
    }

    /// Outcomes with `wrong` of `n` images wrong on each set, the first
    /// `wrong` after `offset`.
    fn outcomes(n: usize, wrong: usize, offset: usize) -> Outcomes {
        let correct = |set: &str| {
            Correct::new(
                (0..n)
                    .map(|i| !(offset..offset + wrong).contains(&i))
                    .collect(),
                set.into(),
            )
        };
        Outcomes {
            validation: correct("val"),
            test: correct("test"),
        }
    }

    #[test]
    fn arms_pair_seed_by_seed_on_the_points_both_hold() {
        let n = 2000;
        // Seed 1 is the only seed both arms ran: arm a has 100 wrong there,
        // arm b those 100 and 60 more, so a is 3 points better. Paired with
        // b's seed 1 by anything but its seed, a's seed 0 (other images
        // wrong) would give another difference.
        let a = vec![
            row(Strategy::Hybrid, 0.5, 0, 384),
            row(Strategy::Hybrid, 0.5, 1, 380),
            row(Strategy::Hybrid, 0.7, 1, 234),
        ];
        let b = vec![
            row(Strategy::Hybrid, 0.5, 1, 392),
            row(Strategy::Hybrid, 0.5, 2, 390),
            row(Strategy::Diagonal, 0.7, 1, 239),
        ];
        let a_out: Vec<Option<Outcomes>> = vec![
            Some(outcomes(n, 100, 0)),
            Some(outcomes(n, 100, 7)),
            Some(outcomes(n, 100, 0)),
        ];
        let b_out: Vec<Option<Outcomes>> = vec![
            Some(outcomes(n, 160, 7)),
            Some(outcomes(n, 300, 0)),
            Some(outcomes(n, 100, 0)),
        ];
        let rows = compare(&a, &a_out, &b, &b_out).unwrap();
        // Hybrid 0.7 has no counterpart in b (b's 0.7 is diagonal).
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.label, "hybrid 0.5");
        assert_eq!(r.rotations, (382.0, 391.0));
        assert!(!r.identical);
        let test = r.versus.test.unwrap();
        assert_eq!(test.seeds, 1);
        assert!((test.mean - 0.03).abs() < 1e-12, "{}", test.mean);
        assert_eq!(test.verdict(0.005), Verdict::Better);
        let text = render(&rows, ("he-cost", "none"), 0.005);
        assert!(text.contains("| hybrid 0.5 | 1            | 382"), "{text}");
        assert!(text.contains("+3.00 ["), "{text}");
        assert!(
            text.contains("validation, he-cost - none (points)"),
            "{text}"
        );
    }

    #[test]
    fn a_shared_model_reads_identical_and_dense_appears_once_over_budgets() {
        let n = 500;
        let mut a = Vec::new();
        let mut b = Vec::new();
        for budget in [2, 4] {
            for side in [&mut a, &mut b] {
                let mut p = row(Strategy::Hybrid, 0.5, 0, 384);
                p.budget = budget;
                side.push(p);
            }
        }
        a.push(row(Strategy::Dense, 0.0, 0, 775));
        b.push(row(Strategy::Dense, 0.0, 0, 775));
        let a_out = vec![
            Some(outcomes(n, 50, 0)),
            Some(outcomes(n, 40, 0)),
            Some(outcomes(n, 30, 0)),
        ];
        let b_out = vec![
            Some(outcomes(n, 60, 0)),
            Some(outcomes(n, 40, 0)),
            Some(outcomes(n, 30, 0)),
        ];
        let rows = compare(&a, &a_out, &b, &b_out).unwrap();
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            ["hybrid 0.5, 2 epochs", "dense", "hybrid 0.5, 4 epochs"]
        );
        let identical: Vec<bool> = rows.iter().map(|r| r.identical).collect();
        assert_eq!(identical, [false, true, true]);
        let text = render(&rows, ("a", "b"), 0.005);
        assert_eq!(
            text.matches("identical on every image").count(),
            4,
            "{text}"
        );
        assert!(text.contains("+2.00 ["), "{text}");
    }

    #[test]
    fn sweeps_that_cannot_be_compared_say_why_and_the_fix() {
        let point = |budget| PointRecord {
            budget,
            ..row(Strategy::Hybrid, 0.5, 0, 384)
        };
        let paired = [Some(outcomes(100, 10, 0))];
        let error = |a: PointRecord, b: PointRecord, b_out: &[Option<Outcomes>]| {
            compare(&[a], &paired, &[b], b_out).unwrap_err().to_string()
        };
        let e = error(point(8), point(0), &paired);
        assert!(e.contains("prune.finetune.epochs"), "{e}");
        let gazelle = PointRecord {
            schedule: Schedule::Gazelle,
            ..point(0)
        };
        let e = error(point(0), gazelle, &paired);
        assert!(e.contains("he.schedule") && e.contains("gazelle"), "{e}");
        let e = error(point(0), row(Strategy::Diagonal, 0.5, 0, 384), &paired);
        assert!(e.contains("no strategy and target in common"), "{e}");
        let e = error(point(0), point(0), &[None]);
        assert!(e.contains("outcomes.json"), "{e}");
    }

    #[test]
    fn a_point_without_outcomes_on_the_same_images_has_no_difference() {
        let a = vec![row(Strategy::Hybrid, 0.5, 0, 384)];
        let b = vec![row(Strategy::Hybrid, 0.5, 0, 392)];
        let mut other = outcomes(100, 10, 0);
        other.test.set = "other".into();
        let rows = compare(&a, &[Some(outcomes(100, 10, 0))], &b, &[Some(other)]).unwrap();
        assert!(rows[0].versus.validation.is_some());
        assert_eq!(rows[0].versus.test, None);
        assert!(render(&rows, ("a", "b"), 0.005).contains("n/a"));
    }
}
