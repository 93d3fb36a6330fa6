//! Recovery budgets as an axis: a sweep of several budgets
//! (`prune.finetune.epochs: [1, 2, 4, 8]`) is read one budget at a time,
//! each pruned point with the twin trained to the same budget and the dense
//! model shared by all, so that every front, paired difference and choice
//! compares points at one training budget; and the curve of validation
//! accuracy against budget says where recovery flattens. Pure functions
//! over the table.

use crate::outcomes::Outcomes;
use crate::points::PointRecord;
use explore_spec::Strategy;
use explore_stats as stats;

/// The budgets of a table, ascending; empty for a sweep of one budget
/// (whose rows carry budget 0).
pub fn budgets(points: &[PointRecord]) -> Vec<u64> {
    let mut b: Vec<u64> = points.iter().map(|p| p.budget).filter(|&b| b > 0).collect();
    b.sort_unstable();
    b.dedup();
    b
}

/// The rows at `budget` with their outcomes (aligned as given: `outcomes`
/// may be shorter than `points`), plus the rows that have no budget (the
/// dense model).
pub fn at_budget(
    points: &[PointRecord],
    outcomes: &[Option<Outcomes>],
    budget: u64,
) -> (Vec<PointRecord>, Vec<Option<Outcomes>>) {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.budget == budget || p.budget == 0)
        .map(|(i, p)| (p.clone(), outcomes.get(i).cloned().flatten()))
        .unzip()
}

/// The rows of `new` that compare with `baseline`: those at the
/// baseline's recovery budget (with the dense rows, which have none), so
/// that a gate never sets a point against one trained for longer or
/// shorter. A baseline of several budgets, or a budget `new` lacks, is an
/// error naming the fix.
pub fn matching(new: &[PointRecord], baseline: &[PointRecord]) -> Result<Vec<PointRecord>, String> {
    let (ours, theirs) = (budgets(new), budgets(baseline));
    match theirs.as_slice() {
        [] if ours.is_empty() => Ok(new.to_vec()),
        [] => Err(format!(
            "the new table holds recovery budgets {ours:?} and the baseline one unnamed budget (a one-budget sweep, or a table from before budgets): gate a one-budget sweep against it, or a baseline of one of those budgets"
        )),
        [b] if ours.contains(b) => Ok(at_budget(new, &[], *b).0),
        [b] => Err(format!(
            "the baseline is at a recovery budget of {b} epochs, which the new table (budgets {ours:?}) lacks: run that budget, or gate against a baseline of one you ran"
        )),
        many => Err(format!(
            "the baseline holds several recovery budgets {many:?}: gate against one budget's front (a sweep's front.csv holds its largest)"
        )),
    }
}

/// One cell of the recovery curve: a strategy at a target and budget,
/// mean over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    pub strategy: Strategy,
    pub target: f64,
    pub budget: u64,
    pub seeds: usize,
    /// Integer-model validation accuracy after QAT.
    pub validation: f64,
    /// Float validation accuracy right after pruning and after recovery.
    pub pruned_validation: f64,
    pub recovered_validation: f64,
    /// Mean optimizer steps of the point's own recovery.
    pub recovery_steps: f64,
}

/// The recovery curve: every (strategy, target, budget) of a sweep of
/// several budgets, the twin included, ordered by strategy, target and
/// budget.
pub fn curve(points: &[PointRecord]) -> Vec<CurvePoint> {
    let mut keys: Vec<(Strategy, f64, u64)> = points
        .iter()
        .filter(|p| p.budget > 0)
        .map(|p| (p.strategy, p.target, p.budget))
        .collect();
    keys.sort_by(|a, b| a.partial_cmp(b).expect("finite targets"));
    keys.dedup();
    keys.into_iter()
        .map(|(strategy, target, budget)| {
            let rows: Vec<&PointRecord> = points
                .iter()
                .filter(|p| {
                    p.strategy == strategy
                        && p.target.to_bits() == target.to_bits()
                        && p.budget == budget
                })
                .collect();
            let mean_of = |f: fn(&PointRecord) -> f64| {
                let v: Vec<f64> = rows.iter().map(|r| f(r)).collect();
                stats::mean(&v).unwrap_or(f64::NAN)
            };
            CurvePoint {
                strategy,
                target,
                budget,
                seeds: rows.len(),
                validation: mean_of(|r| r.val_accuracy),
                pruned_validation: mean_of(|r| r.pruned_val_accuracy),
                recovered_validation: mean_of(|r| r.recovered_val_accuracy),
                recovery_steps: mean_of(|r| r.recovery_steps as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;

    fn at(strategy: Strategy, target: f64, budget: u64, seed: u64, val: f64) -> PointRecord {
        let mut r = record(strategy, target, val, 100);
        (r.budget, r.seed, r.val_accuracy) = (budget, seed, val);
        r.recovery_steps = 235 * budget;
        r
    }

    #[test]
    fn each_budget_reads_with_its_twin_and_the_shared_dense_model() {
        let points = vec![
            at(Strategy::Dense, 0.0, 0, 0, 0.9),
            at(Strategy::Hybrid, 0.5, 1, 0, 0.85),
            at(Strategy::Hybrid, 0.5, 4, 0, 0.88),
            at(Strategy::DenseMatched, 0.5, 1, 0, 0.89),
            at(Strategy::DenseMatched, 0.5, 4, 0, 0.9),
        ];
        assert_eq!(budgets(&points), [1, 4]);
        assert!(budgets(&points[..1]).is_empty());
        let (four, outcomes) = at_budget(&points, &[], 4);
        let names: Vec<String> = four.iter().map(|p| p.key().dir_name()).collect();
        assert_eq!(
            names,
            ["dense-0-s0", "hybrid-0.5-e4-s0", "dense-matched-0.5-e4-s0"]
        );
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes.iter().all(Option::is_none));
    }

    #[test]
    fn a_gate_compares_at_the_baselines_budget_or_refuses() {
        let study = vec![
            at(Strategy::Dense, 0.0, 0, 0, 0.9),
            at(Strategy::Hybrid, 0.5, 2, 0, 0.86),
            at(Strategy::Hybrid, 0.5, 4, 0, 0.88),
        ];
        let one = vec![
            at(Strategy::Dense, 0.0, 0, 0, 0.9),
            at(Strategy::Hybrid, 0.5, 0, 0, 0.87),
        ];
        // A one-budget sweep against a one-budget baseline: as before.
        assert_eq!(matching(&one, &one).unwrap(), one);
        // The study against its own largest budget's front.
        let front4 = at_budget(&study, &[], 4).0;
        let kept = matching(&study, &front4).unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|r| r.budget != 2));
        for (new, base, words) in [
            (&study, &one, "one unnamed budget"),
            (&one, &front4, "lacks"),
            (&one, &study, "several recovery budgets"),
        ] {
            let e = matching(new, base).unwrap_err();
            assert!(e.contains(words), "{e}");
        }
    }

    #[test]
    fn the_curve_averages_seeds_per_budget() {
        let points = vec![
            at(Strategy::Dense, 0.0, 0, 0, 0.9),
            at(Strategy::Hybrid, 0.5, 2, 0, 0.86),
            at(Strategy::Hybrid, 0.5, 2, 1, 0.88),
            at(Strategy::Hybrid, 0.5, 1, 0, 0.80),
        ];
        let c = curve(&points);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].budget, c[0].seeds), (1, 1));
        assert_eq!((c[1].budget, c[1].seeds), (2, 2));
        assert!((c[1].validation - 0.87).abs() < 1e-12);
        assert_eq!(c[1].recovery_steps, 470.0);
    }
}
