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
use crate::pareto::{self, Summary};
use crate::points::PointRecord;
use crate::table;
use explore_spec::Strategy;

/// One strategy and target (and recovery budget, in sweeps of several)
/// held by both sweeps.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRow {
    /// `hybrid 0.5`, with `, 8 epochs` in sweeps of several budgets.
    pub label: String,
    /// Mean rotations per inference of each side.
    pub rotations: (f64, f64),
    /// `a - b` on each image set (`None` where no seed of both sides has
    /// outcomes on the same images).
    pub versus: Versus,
}

/// Why two tables cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MismatchError(String);

/// `a - b` for every strategy and target of `a` that `b` holds too, at each
/// recovery budget; `outcomes` are aligned with their table's rows (as
/// [`crate::outcomes::of_table`] reads them). Both sweeps must hold the
/// same budgets, so no point is set against one trained for longer.
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
    let several = !ours.is_empty();
    let mut rows = Vec::new();
    for budget in if several { ours } else { vec![0] } {
        let (a_rows, a_out) = budgets::at_budget(a, a_outcomes, budget);
        let (b_rows, b_out) = budgets::at_budget(b, b_outcomes, budget);
        let (a_table, b_table) = (Table::new(&a_rows, &a_out), Table::new(&b_rows, &b_out));
        let b_summaries = pareto::summarize(&b_rows);
        for sa in pareto::summarize(&a_rows) {
            let Some(sb) = b_summaries.iter().find(|sb| same(&sa, sb)) else {
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
            });
        }
    }
    Ok(rows)
}

fn same(a: &Summary, b: &Summary) -> bool {
    a.strategy == b.strategy && (a.target - b.target).abs() < 1e-9
}

/// The comparison as a markdown table: per row, both sides' rotations and
/// the paired differences with their 95 % intervals and verdicts at
/// `margin` (a fraction), on validation and test.
pub fn render(rows: &[ArmRow], names: (&str, &str), margin: f64) -> String {
    let (a, b) = names;
    let header = [
        "point",
        "seeds",
        &format!("rotations, {a}"),
        &format!("rotations, {b}"),
        &format!("validation, {a} - {b} (points)"),
        &format!("test, {a} - {b} (points)"),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let seeds = r.versus.test.or(r.versus.validation).map_or(0, |p| p.seeds);
            vec![
                r.label.clone(),
                seeds.to_string(),
                format!("{:.0}", r.rotations.0),
                format!("{:.0}", r.rotations.1),
                paired::cell(r.versus.validation, margin, true),
                paired::cell(r.versus.test, margin, true),
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
        // Arm a: 100 wrong per seed; arm b: those 100 and 60 more, so a is
        // 3 points better on every image set of every seed.
        let a = vec![
            row(Strategy::Hybrid, 0.5, 0, 384),
            row(Strategy::Hybrid, 0.5, 1, 380),
            row(Strategy::Hybrid, 0.7, 0, 234),
        ];
        let b = vec![
            row(Strategy::Hybrid, 0.5, 0, 392),
            row(Strategy::Hybrid, 0.5, 1, 390),
            row(Strategy::Diagonal, 0.7, 0, 239),
        ];
        let a_out: Vec<Option<Outcomes>> = vec![
            Some(outcomes(n, 100, 0)),
            Some(outcomes(n, 100, 7)),
            Some(outcomes(n, 100, 0)),
        ];
        let b_out: Vec<Option<Outcomes>> = vec![
            Some(outcomes(n, 160, 0)),
            Some(outcomes(n, 160, 7)),
            Some(outcomes(n, 100, 0)),
        ];
        let rows = compare(&a, &a_out, &b, &b_out).unwrap();
        // Hybrid 0.7 has no counterpart in b (b's 0.7 is diagonal).
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.label, "hybrid 0.5");
        assert_eq!(r.rotations, (382.0, 391.0));
        let test = r.versus.test.unwrap();
        assert_eq!(test.seeds, 2);
        assert!((test.mean - 0.03).abs() < 1e-12, "{}", test.mean);
        assert_eq!(test.verdict(0.005), Verdict::Better);
        let text = render(&rows, ("he-cost", "none"), 0.005);
        assert!(text.contains("| hybrid 0.5 | 2     | 382"), "{text}");
        assert!(text.contains("+3.00 ["), "{text}");
        assert!(
            text.contains("validation, he-cost - none (points)"),
            "{text}"
        );
    }

    #[test]
    fn sweeps_of_different_budgets_are_not_compared() {
        let mut a = row(Strategy::Hybrid, 0.5, 0, 384);
        a.budget = 8;
        let b = row(Strategy::Hybrid, 0.5, 0, 384);
        let e = compare(&[a], &[], &[b], &[]).unwrap_err();
        assert!(e.to_string().contains("prune.finetune.epochs"), "{e}");
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
