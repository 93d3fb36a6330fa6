//! Paired comparisons of a sweep's points with their dense controls: each
//! pruned point against its budget-matched dense twin (same target, so the
//! same optimizer steps) and against the plain dense model, on the
//! validation images (where choices are made) and on the test images (what
//! is reported), from the points' per-image outcomes. Seeds pair with
//! seeds: a point of seed `s` is compared with the dense models of seed `s`.
//! Pure functions over the table and its outcomes.

use std::collections::HashMap;

use crate::outcomes::{Correct, Outcomes};
use crate::pareto::{Cost, Summary, primary_schedule};
use crate::points::PointRecord;
use explore_spec::Strategy;
use explore_stats::{self as stats, Paired, Verdict};

pub use explore_spec::DEFAULT_MARGIN;

/// A point's paired differences from one control on both image sets.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Versus {
    pub validation: Option<Paired>,
    pub test: Option<Paired>,
}

/// The outcomes and steps of a table's rows, by point and seed.
pub struct Table<'a> {
    rows: HashMap<(Strategy, u64, u64), (&'a PointRecord, Option<&'a Outcomes>)>,
}

fn key(strategy: Strategy, target: f64, seed: u64) -> (Strategy, u64, u64) {
    // Targets are short decimals from the spec; their bits identify them.
    (strategy, target.to_bits(), seed)
}

impl<'a> Table<'a> {
    /// `outcomes[i]` belongs to `points[i]` (shorter when some are
    /// missing); rows under other schedules than the primary one are left
    /// out, since outcomes do not depend on the schedule.
    pub fn new(points: &'a [PointRecord], outcomes: &'a [Option<Outcomes>]) -> Table<'a> {
        let primary = primary_schedule(points);
        let rows = points
            .iter()
            .enumerate()
            .filter(|(_, p)| Some(p.schedule) == primary)
            .map(|(i, p)| {
                let o = outcomes.get(i).and_then(Option::as_ref);
                (key(p.strategy, p.target, p.seed), (p, o))
            })
            .collect();
        Table { rows }
    }

    fn row(&self, s: &Summary, seed: u64) -> Option<&(&'a PointRecord, Option<&'a Outcomes>)> {
        self.rows.get(&key(s.strategy, s.target, seed))
    }

    /// The budget-matched dense twin of a point: dense-matched at the same
    /// target (the plain dense model is its own twin).
    pub fn twin<'s>(&self, point: &Summary, summaries: &'s [Summary]) -> Option<&'s Summary> {
        let strategy = match point.strategy {
            Strategy::Dense => Strategy::Dense,
            _ => Strategy::DenseMatched,
        };
        summaries.iter().find(|s| {
            s.strategy == strategy && (strategy == Strategy::Dense || s.target == point.target)
        })
    }

    /// `a - b`, paired seed by seed on each image set.
    pub fn versus(&self, a: &Summary, b: &Summary) -> Versus {
        self.versus_in(a, self, b)
    }

    /// `a - b` where `b` is a point of `other`, another sweep's table (an
    /// ablation's arm), paired seed by seed on each image set.
    pub fn versus_in(&self, a: &Summary, other: &Table, b: &Summary) -> Versus {
        Versus {
            validation: stats::paired_difference(&self.pairs_in(a, other, b, |o| &o.validation)),
            test: stats::paired_difference(&self.pairs_in(a, other, b, |o| &o.test)),
        }
    }

    /// Whether `a` and `b` (a point of `other`) have paired outcomes and
    /// the same outcome on every image of both sets under every paired
    /// seed: one model, copied (an ablation's shared controls), or two
    /// that cannot be told apart.
    pub fn identical_in(&self, a: &Summary, other: &Table, b: &Summary) -> bool {
        let sets: [fn(&Outcomes) -> &Correct; 2] = [|o| &o.validation, |o| &o.test];
        let pairs: Vec<_> = sets
            .into_iter()
            .flat_map(|set| self.pairs_in(a, other, b, set))
            .collect();
        !pairs.is_empty() && pairs.iter().all(|(x, y)| x == y)
    }

    /// The outcomes of `a` and of `b` (a point of `other`) on one image set,
    /// seed by seed, where both were tested on the same images.
    fn pairs_in<'s>(
        &'s self,
        a: &Summary,
        other: &'s Table<'_>,
        b: &Summary,
        set: fn(&Outcomes) -> &Correct,
    ) -> Vec<(&'s [bool], &'s [bool])> {
        a.seeds
            .iter()
            .filter_map(|&seed| {
                let oa = self.row(a, seed)?.1?;
                let ob = other.row(b, seed)?.1?;
                let (ca, cb) = (set(oa), set(ob));
                // Paired only on the same images.
                (ca.set == cb.set).then_some((ca.as_slice(), cb.as_slice()))
            })
            .collect()
    }

    /// The mean optimizer steps of a summary's replicates.
    pub fn steps(&self, s: &Summary) -> Option<f64> {
        let steps: Vec<f64> = s
            .seeds
            .iter()
            .filter_map(|&seed| self.row(s, seed).map(|r| r.0.train_steps as f64))
            .collect();
        stats::mean(&steps)
    }

    /// The point's own recovery, mean over its replicates: fine-tuning
    /// epochs and steps (`None` where not recorded).
    pub fn recovery(&self, s: &Summary) -> Option<(f64, f64)> {
        let rows: Vec<&PointRecord> = s
            .seeds
            .iter()
            .filter_map(|&seed| self.row(s, seed).map(|r| r.0))
            .filter(|r| r.recovery_epochs > 0)
            .collect();
        let epochs: Vec<f64> = rows.iter().map(|r| r.recovery_epochs as f64).collect();
        let steps: Vec<f64> = rows.iter().map(|r| r.recovery_steps as f64).collect();
        Some((stats::mean(&epochs)?, stats::mean(&steps)?))
    }

    /// The mean validation accuracy of a summary's replicates (`None`
    /// without a validation split).
    pub fn validation_accuracy(&self, s: &Summary) -> Option<f64> {
        let v: Vec<f64> = s
            .seeds
            .iter()
            .filter_map(|&seed| self.row(s, seed).map(|r| r.0.val_accuracy))
            .filter(|a| a.is_finite())
            .collect();
        stats::mean(&v)
    }
}

/// A paired difference in points with its verdict at `margin`:
/// `-0.21 [-0.60, +0.18], equivalent within ±0.50` with the 95 % interval,
/// `-0.21, equivalent within ±0.50` without; `n/a` without outcomes.
pub fn cell(p: Option<Paired>, margin: f64, interval: bool) -> String {
    let Some(p) = p else {
        return "n/a".into();
    };
    let verdict = p.verdict(margin).phrase(margin);
    if interval {
        let (lo, hi) = p.interval(0.95);
        format!(
            "{:+.2} [{:+.2}, {:+.2}], {verdict}",
            100.0 * p.mean,
            100.0 * lo,
            100.0 * hi
        )
    } else {
        format!("{:+.2}, {verdict}", 100.0 * p.mean)
    }
}

/// Which points a choice may take across strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicates {
    /// Any point (within one strategy, where the seeds are shown beside).
    Any,
    /// Only the equivalent points compared on the most seeds any
    /// equivalent point has: a comparison on fewer seeds has a thinner
    /// seed-to-seed part in its interval (none at all on one seed), so it
    /// must not outrank a better-replicated one on cost alone.
    Most,
}

/// The candidates with finite cost whose paired validation difference from
/// their budget-matched twin is equivalent within `margin` (or better),
/// with that difference.
fn equivalent<'s>(
    table: &Table,
    candidates: impl IntoIterator<Item = &'s Summary>,
    summaries: &'s [Summary],
    cost: Cost,
    margin: f64,
) -> Vec<(&'s Summary, Paired)> {
    candidates
        .into_iter()
        .filter(|p| cost.of(p).is_finite())
        .filter_map(|p| {
            let twin = table.twin(p, summaries)?;
            let v = table.versus(p, twin).validation?;
            matches!(v.verdict(margin), Verdict::Equivalent | Verdict::Better).then_some((p, v))
        })
        .collect()
}

/// The most seeds any of `eligible`'s comparisons rests on.
fn most_seeds(eligible: &[(&Summary, Paired)]) -> usize {
    eligible.iter().map(|(_, v)| v.seeds).max().unwrap_or(0)
}

/// The equivalent points (as [`cheapest_equivalent`] admits them) that
/// [`Replicates::Most`] leaves out, each with its seeds: those on fewer
/// seeds than the best-replicated equivalent point.
pub fn equivalent_on_fewer_seeds<'s>(
    table: &Table,
    candidates: impl IntoIterator<Item = &'s Summary>,
    summaries: &'s [Summary],
    cost: Cost,
    margin: f64,
) -> Vec<(&'s Summary, usize)> {
    let eligible = equivalent(table, candidates, summaries, cost, margin);
    let most = most_seeds(&eligible);
    eligible
        .into_iter()
        .filter(|(_, v)| v.seeds < most)
        .map(|(p, v)| (p, v.seeds))
        .collect()
}

/// The iso-accuracy choice: among `candidates`, the cheapest under `cost`
/// whose paired validation difference from its budget-matched twin is
/// equivalent within `margin` (or better), chosen without looking at the
/// test images; under [`Replicates::Most`], only among those compared on
/// the most seeds. Among equally cheap ones, the one with the larger
/// validation difference.
pub fn cheapest_equivalent<'s>(
    table: &Table,
    candidates: impl IntoIterator<Item = &'s Summary>,
    summaries: &'s [Summary],
    cost: Cost,
    margin: f64,
    replicates: Replicates,
) -> Option<&'s Summary> {
    let eligible = equivalent(table, candidates, summaries, cost, margin);
    let most = match replicates {
        Replicates::Any => 0,
        Replicates::Most => most_seeds(&eligible),
    };
    eligible
        .into_iter()
        .filter(|(_, v)| v.seeds >= most)
        .min_by(|a, b| {
            cost.of(a.0)
                .total_cmp(&cost.of(b.0))
                .then(b.1.mean.total_cmp(&a.1.mean))
        })
        .map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pareto::summarize;
    use crate::points::tests::record;

    /// Outcomes with `right` of `n` images correct, image `i` right when
    /// `i < right` shifted by `offset` (so two models disagree on images).
    fn outcome(n: usize, right: usize, offset: usize) -> Correct {
        Correct::new(
            (0..n).map(|i| (i + offset) % n < right).collect(),
            "s".into(),
        )
    }

    fn row(
        strategy: Strategy,
        target: f64,
        seed: u64,
        val: usize,
        test: usize,
    ) -> (PointRecord, Outcomes) {
        let mut r = record(
            strategy,
            target,
            test as f64 / 1000.0,
            (1000.0 * (1.0 - target)) as u64,
        );
        r.seed = seed;
        r.val_images = 1000;
        r.val_accuracy = val as f64 / 1000.0;
        r.train_steps = if strategy == Strategy::Dense {
            100
        } else {
            250
        };
        let o = Outcomes {
            validation: outcome(1000, val, 0),
            test: outcome(1000, test, 0),
        };
        (r, o)
    }

    #[test]
    fn the_choice_is_made_on_validation_and_pairs_seed_by_seed() {
        let mut rows = Vec::new();
        for seed in 0..3 {
            rows.push(row(Strategy::Dense, 0.0, seed, 880, 870));
            for target in [0.5, 0.8] {
                rows.push(row(Strategy::DenseMatched, target, seed, 900, 890));
            }
            // 0.5 is equivalent on validation; 0.8 loses 3 points there
            // (but would look fine on test: the choice must not see it).
            rows.push(row(Strategy::Diagonal, 0.5, seed, 899, 860));
            rows.push(row(Strategy::Diagonal, 0.8, seed, 870, 889));
        }
        let (points, outcomes): (Vec<PointRecord>, Vec<Outcomes>) = rows.into_iter().unzip();
        let outcomes: Vec<Option<Outcomes>> = outcomes.into_iter().map(Some).collect();
        let table = Table::new(&points, &outcomes);
        let summaries = summarize(&points);
        let diagonal: Vec<&Summary> = summaries
            .iter()
            .filter(|s| s.strategy == Strategy::Diagonal)
            .collect();
        let chosen = cheapest_equivalent(
            &table,
            diagonal.iter().copied(),
            &summaries,
            Cost::Rotations,
            0.005,
            Replicates::Any,
        )
        .unwrap();
        assert_eq!(chosen.target, 0.5);
        let twin = table.twin(chosen, &summaries).unwrap();
        assert_eq!((twin.strategy, twin.target), (Strategy::DenseMatched, 0.5));
        let v = table.versus(chosen, twin);
        let test = v.test.unwrap();
        assert!((test.mean - (-0.030)).abs() < 1e-12, "{test:?}");
        assert_eq!((test.seeds, test.images), (3, 1000));
        assert_eq!(table.steps(chosen), table.steps(twin));
        assert_eq!(table.steps(&summaries[0]), Some(100.0));
        assert!((table.validation_accuracy(chosen).unwrap() - 0.899).abs() < 1e-12);
    }

    #[test]
    fn without_outcomes_or_validation_nothing_is_chosen() {
        let (a, _) = row(Strategy::Diagonal, 0.5, 0, 900, 900);
        let (b, _) = row(Strategy::DenseMatched, 0.5, 0, 900, 900);
        let points = vec![a, b];
        let table = Table::new(&points, &[]);
        let summaries = summarize(&points);
        assert_eq!(
            table.versus(&summaries[0], &summaries[1]),
            Versus::default()
        );
        assert!(
            cheapest_equivalent(
                &table,
                &summaries[..1],
                &summaries,
                Cost::Rotations,
                0.005,
                Replicates::Any
            )
            .is_none()
        );
    }
}
