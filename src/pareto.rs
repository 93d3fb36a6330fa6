//! Pareto fronts of test accuracy (maximized) against encrypted-inference cost
//! (minimized), the hypervolume that summarizes a front in one number, the
//! cheapest point at iso-accuracy, and the regression check ([`check`]) that
//! compares a sweep's front with a baseline. Pure functions over
//! [`PointRecord`]s.

use std::collections::BTreeMap;

use crate::config::Strategy;
use crate::points::PointRecord;

/// The cost axis of a front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cost {
    /// Rotations per inference (the cost model's count; deterministic).
    Rotations,
    /// Measured latency of the encrypted conv layers (`latency_measured_ms`).
    Latency,
}

impl Cost {
    pub const ALL: [Cost; 2] = [Cost::Rotations, Cost::Latency];

    pub fn name(self) -> &'static str {
        match self {
            Cost::Rotations => "rotations",
            Cost::Latency => "latency",
        }
    }

    /// Axis label with units.
    pub fn label(self) -> &'static str {
        match self {
            Cost::Rotations => "rotations per inference",
            Cost::Latency => "encrypted conv latency (ms)",
        }
    }

    /// The point's cost; `NaN` when it was not measured.
    pub fn of(self, p: &PointRecord) -> f64 {
        match self {
            Cost::Rotations => p.rotations as f64,
            Cost::Latency => p.latency_measured_ms,
        }
    }

    /// The cost as a table cell: rotations are counts, latencies milliseconds.
    pub fn format(self, value: f64) -> String {
        match self {
            Cost::Rotations => format!("{value:.0}"),
            Cost::Latency => format!("{value:.1}"),
        }
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Cost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cost::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown cost `{s}`: use rotations or latency"))
    }
}

/// The non-dominated points, sorted by increasing cost (so accuracy increases
/// too). A point is dominated when another is at least as accurate and at most
/// as costly, and strictly better in one of the two; exact duplicates dominate
/// neither each other, so both stay. Points whose cost was not measured are
/// left out.
pub fn front<'a>(
    points: impl IntoIterator<Item = &'a PointRecord>,
    cost: Cost,
) -> Vec<&'a PointRecord> {
    let mut sorted: Vec<&PointRecord> = points
        .into_iter()
        .filter(|p| cost.of(p).is_finite() && p.accuracy.is_finite())
        .collect();
    sorted.sort_by(|a, b| {
        cost.of(a)
            .total_cmp(&cost.of(b))
            .then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut front: Vec<&PointRecord> = Vec::new();
    for p in sorted {
        // The last front point is the most accurate one seen so far, and no
        // more costly than `p`: `p` survives only by beating it or equalling it.
        let kept = match front.last() {
            None => true,
            Some(last) => {
                p.accuracy > last.accuracy
                    || (p.accuracy == last.accuracy && cost.of(p) == cost.of(last))
            }
        };
        if kept {
            front.push(p);
        }
    }
    front
}

/// The rows a baseline front file holds: the overall front (plus each
/// strategy's front with `per_strategy`) and the dense rows, in table order.
/// Dense rows carry the reference cost, so `check` works on either axis.
pub fn baseline_rows(points: &[PointRecord], cost: Cost, per_strategy: bool) -> Vec<PointRecord> {
    let per = fronts_by_strategy(points, cost);
    let extra = per.values().flatten().filter(|_| per_strategy);
    let listed: Vec<&PointRecord> = front(points, cost)
        .into_iter()
        .chain(extra.copied())
        .collect();
    points
        .iter()
        .filter(|p| p.strategy == Strategy::Dense || listed.iter().any(|q| std::ptr::eq(*q, *p)))
        .cloned()
        .collect()
}

/// The front of each strategy's points (dense is a strategy of its own).
pub fn fronts_by_strategy(
    points: &[PointRecord],
    cost: Cost,
) -> BTreeMap<Strategy, Vec<&PointRecord>> {
    let mut groups: BTreeMap<Strategy, Vec<&PointRecord>> = BTreeMap::new();
    for p in points {
        groups.entry(p.strategy).or_default().push(p);
    }
    groups
        .into_iter()
        .map(|(s, ps)| (s, front(ps, cost)))
        .filter(|(_, f)| !f.is_empty())
        .collect()
}

/// The area dominated by the points' front inside the box from cost 0 to
/// `reference_cost` and accuracy 0 up: the integral over cost c in
/// [0, reference_cost] of the best accuracy reachable at cost <= c. Units are
/// cost x accuracy; divide by `reference_cost` for the mean best accuracy.
/// Points at or beyond the reference cost add nothing (the dense model itself
/// sits on the reference cost), so the value measures what pruning buys.
pub fn hypervolume<'a>(
    points: impl IntoIterator<Item = &'a PointRecord>,
    reference_cost: f64,
    cost: Cost,
) -> f64 {
    let front = front(points, cost);
    let mut area = 0.0;
    for (i, p) in front.iter().enumerate() {
        let start = cost.of(p);
        let end = front
            .get(i + 1)
            .map_or(reference_cost, |next| cost.of(next).min(reference_cost));
        if end > start {
            area += p.accuracy * (end - start);
        }
    }
    area
}

/// The dense model's cost, the reference of hypervolumes and speedups:
/// `rotations_dense` for rotations (the same on every row of one sweep; the
/// largest is taken), the mean measured latency of the `dense` rows for
/// latency. `None` when the table cannot say.
pub fn reference_cost(points: &[PointRecord], cost: Cost) -> Option<f64> {
    match cost {
        Cost::Rotations => points
            .iter()
            .map(|p| p.rotations_dense)
            .max()
            .map(|r| r as f64),
        Cost::Latency => mean(
            points
                .iter()
                .filter(|p| p.strategy == Strategy::Dense)
                .map(|p| p.latency_measured_ms)
                .filter(|l| l.is_finite()),
        ),
    }
}

/// Mean accuracy of the `dense` rows (one per seed).
pub fn dense_accuracy(points: &[PointRecord]) -> Option<f64> {
    mean(
        points
            .iter()
            .filter(|p| p.strategy == Strategy::Dense)
            .map(|p| p.accuracy),
    )
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The cheapest point with accuracy at least `min_accuracy` (iso-accuracy);
/// among equally cheap ones, the most accurate.
pub fn cheapest_within<'a>(
    points: impl IntoIterator<Item = &'a PointRecord>,
    cost: Cost,
    min_accuracy: f64,
) -> Option<&'a PointRecord> {
    // The front holds the cheapest point of every accuracy level.
    front(points, cost)
        .into_iter()
        .find(|p| p.accuracy >= min_accuracy)
}

/// Regression check of a sweep's front against a baseline front.
pub mod check {
    use super::{Cost, front, hypervolume, reference_cost};
    use crate::points::PointRecord;

    #[derive(Debug, thiserror::Error)]
    pub enum CheckError {
        #[error("tolerance {0} is outside [0, 1): use a fraction such as 0.01")]
        Tolerance(f64),
        #[error(
            "neither table gives the dense {0} (the hypervolume reference): add the dense row (strategy `dense`) with its measured latency, or compare with --cost rotations"
        )]
        NoReference(Cost),
    }

    /// The outcome of [`compare`].
    #[derive(Debug, Clone)]
    pub struct Comparison {
        pub cost: Cost,
        pub tolerance: f64,
        /// The larger of the two tables' dense costs, shared by both hypervolumes.
        pub reference_cost: f64,
        pub hypervolume: f64,
        pub baseline_hypervolume: f64,
        /// Baseline front points that no new point matches within the tolerance.
        pub regressions: Vec<PointRecord>,
    }

    impl Comparison {
        pub fn hypervolume_ok(&self) -> bool {
            self.hypervolume >= (1.0 - self.tolerance) * self.baseline_hypervolume
        }

        pub fn passed(&self) -> bool {
            self.hypervolume_ok() && self.regressions.is_empty()
        }
    }

    /// Compares `new` with `baseline` under one cost. It passes when the new
    /// hypervolume is at least `(1 - tolerance)` times the baseline's, both
    /// against the larger of the two dense costs (so a cheaper dense model in
    /// one table cannot shrink the other's box), and when every baseline
    /// front point is matched: some new point has accuracy at least
    /// `accuracy - tolerance` (accuracies are fractions, so 0.01 is one
    /// point) at cost at most `cost * (1 + tolerance)`.
    pub fn compare(
        new: &[PointRecord],
        baseline: &[PointRecord],
        cost: Cost,
        tolerance: f64,
    ) -> Result<Comparison, CheckError> {
        if !(0.0..1.0).contains(&tolerance) {
            return Err(CheckError::Tolerance(tolerance));
        }
        let reference = match (reference_cost(new, cost), reference_cost(baseline, cost)) {
            (Some(a), Some(b)) => a.max(b),
            (Some(r), None) | (None, Some(r)) => r,
            (None, None) => return Err(CheckError::NoReference(cost)),
        };
        let regressions = front(baseline, cost)
            .into_iter()
            .filter(|b| {
                !new.iter().any(|n| {
                    n.accuracy >= b.accuracy - tolerance
                        && cost.of(n) <= cost.of(b) * (1.0 + tolerance)
                })
            })
            .cloned()
            .collect();
        Ok(Comparison {
            cost,
            tolerance,
            reference_cost: reference,
            hypervolume: hypervolume(new, reference, cost),
            baseline_hypervolume: hypervolume(baseline, reference, cost),
            regressions,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::config::Strategy;
        use crate::points::tests::record;

        fn sweep() -> Vec<PointRecord> {
            vec![
                record(Strategy::Dense, 0.0, 0.91, 1000),
                record(Strategy::Diagonal, 0.5, 0.905, 600),
                record(Strategy::Diagonal, 0.8, 0.89, 300),
                record(Strategy::Channel, 0.8, 0.80, 350),
            ]
        }

        #[test]
        fn a_front_passes_against_itself() {
            let points = sweep();
            let c = compare(&points, &points, Cost::Rotations, 0.01).unwrap();
            assert!(c.passed(), "{c:?}");
            assert_eq!(c.hypervolume, c.baseline_hypervolume);
            assert!(c.hypervolume > 0.0);
        }

        #[test]
        fn a_clearly_better_baseline_names_the_regressed_points() {
            let new = sweep();
            let mut baseline = sweep();
            // The baseline reached 0.90 at 200 rotations where the new sweep
            // needs 300 for 0.89: 200 * 1.01 < 300, so nothing new matches it.
            baseline.push(record(Strategy::Hybrid, 0.9, 0.90, 200));
            let c = compare(&new, &baseline, Cost::Rotations, 0.01).unwrap();
            assert!(!c.passed());
            assert!(!c.hypervolume_ok(), "{c:?}");
            let named: Vec<_> = c
                .regressions
                .iter()
                .map(|p| (p.strategy, p.rotations))
                .collect();
            assert_eq!(named, vec![(Strategy::Hybrid, 200)]);
        }

        #[test]
        fn small_losses_within_tolerance_pass() {
            let baseline = sweep();
            let mut new = sweep();
            new[2].accuracy -= 0.005;
            new[2].rotations += 2;
            let c = compare(&new, &baseline, Cost::Rotations, 0.01).unwrap();
            assert!(c.passed(), "{c:?}");
        }

        #[test]
        fn the_reference_is_the_larger_dense_cost() {
            let baseline = sweep();
            let mut new = sweep();
            for p in &mut new {
                p.rotations_dense = 2000;
            }
            let c = compare(&new, &baseline, Cost::Rotations, 0.01).unwrap();
            assert_eq!(c.reference_cost, 2000.0);
        }

        #[test]
        fn latency_without_a_dense_row_is_an_error_naming_the_fix() {
            let points: Vec<_> = sweep().into_iter().skip(1).collect();
            let e = compare(&points, &points, Cost::Latency, 0.01)
                .unwrap_err()
                .to_string();
            assert!(e.contains("dense") && e.contains("--cost rotations"), "{e}");
            let e = compare(&points, &points, Cost::Rotations, 1.5)
                .unwrap_err()
                .to_string();
            assert!(e.contains("tolerance 1.5"), "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;

    /// Points given as (accuracy, rotations); all diagonal.
    fn points(spec: &[(f64, u64)]) -> Vec<PointRecord> {
        spec.iter()
            .map(|&(a, r)| record(Strategy::Diagonal, 0.5, a, r))
            .collect()
    }

    fn pairs(front: &[&PointRecord]) -> Vec<(f64, u64)> {
        front.iter().map(|p| (p.accuracy, p.rotations)).collect()
    }

    #[test]
    fn dominated_points_leave_the_front_which_is_sorted_by_cost() {
        let ps = points(&[(0.8, 100), (0.7, 200), (0.9, 300), (0.5, 50), (0.85, 400)]);
        let f = front(&ps, Cost::Rotations);
        assert_eq!(pairs(&f), vec![(0.5, 50), (0.8, 100), (0.9, 300)]);
        // 0.5 * (100 - 50) + 0.8 * (300 - 100) + 0.9 * (1000 - 300)
        assert!((hypervolume(&ps, 1000.0, Cost::Rotations) - 815.0).abs() < 1e-9);
    }

    #[test]
    fn ties_keep_the_better_coordinate_and_exact_duplicates() {
        // Same cost: the more accurate wins. Same accuracy: the cheaper wins.
        let ps = points(&[(0.7, 100), (0.8, 100), (0.8, 150), (0.9, 200), (0.9, 200)]);
        let f = front(&ps, Cost::Rotations);
        assert_eq!(pairs(&f), vec![(0.8, 100), (0.9, 200), (0.9, 200)]);
        // Duplicates add no area: 0.8 * 100 + 0.9 * 800.
        assert!((hypervolume(&ps, 1000.0, Cost::Rotations) - 800.0).abs() < 1e-9);
    }

    #[test]
    fn single_point_and_empty_front() {
        let one = points(&[(0.6, 250)]);
        assert_eq!(front(&one, Cost::Rotations).len(), 1);
        assert!((hypervolume(&one, 1000.0, Cost::Rotations) - 0.6 * 750.0).abs() < 1e-9);
        assert!(front(&[], Cost::Rotations).is_empty());
        assert_eq!(hypervolume(&[], 1000.0, Cost::Rotations), 0.0);
    }

    #[test]
    fn points_at_or_beyond_the_reference_add_nothing() {
        let ps = points(&[(0.5, 500), (0.95, 1000), (0.99, 1200)]);
        assert_eq!(front(&ps, Cost::Rotations).len(), 3);
        assert!((hypervolume(&ps, 1000.0, Cost::Rotations) - 250.0).abs() < 1e-9);
    }

    #[test]
    fn latency_fronts_skip_unmeasured_points() {
        let mut ps = points(&[(0.8, 100), (0.9, 300)]);
        ps[0].latency_measured_ms = f64::NAN;
        let f = front(&ps, Cost::Latency);
        assert_eq!(pairs(&f), vec![(0.9, 300)]);
        let reference = 1000.0 * 2.6;
        let expected = 0.9 * (reference - 300.0 * 2.6);
        assert!((hypervolume(&ps, reference, Cost::Latency) - expected).abs() < 1e-9);
    }

    #[test]
    fn fronts_per_strategy_and_references() {
        let mut ps = points(&[(0.8, 100), (0.7, 200)]);
        ps.push(record(Strategy::Channel, 0.5, 0.75, 150));
        ps.push(record(Strategy::Dense, 0.0, 0.91, 1000));
        ps.push(record(Strategy::Dense, 0.0, 0.89, 1000));
        let by = fronts_by_strategy(&ps, Cost::Rotations);
        assert_eq!(
            by.keys().copied().collect::<Vec<_>>(),
            vec![Strategy::Dense, Strategy::Diagonal, Strategy::Channel]
        );
        assert_eq!(pairs(&by[&Strategy::Diagonal]), vec![(0.8, 100)]);
        // Overall, channel's 0.75 at 150 is dominated by diagonal's 0.8 at 100.
        assert_eq!(
            pairs(&front(&ps, Cost::Rotations)),
            vec![(0.8, 100), (0.91, 1000)]
        );
        assert_eq!(reference_cost(&ps, Cost::Rotations), Some(1000.0));
        assert!((reference_cost(&ps, Cost::Latency).unwrap() - 2600.0).abs() < 1e-9);
        assert!((dense_accuracy(&ps).unwrap() - 0.90).abs() < 1e-12);
        assert_eq!(reference_cost(&ps[..3], Cost::Latency), None);
    }

    #[test]
    fn cheapest_within_picks_the_least_cost_at_iso_accuracy() {
        let ps = points(&[(0.905, 600), (0.89, 300), (0.902, 450), (0.85, 100)]);
        let p = cheapest_within(&ps, Cost::Rotations, 0.90).unwrap();
        assert_eq!((p.accuracy, p.rotations), (0.902, 450));
        assert!(cheapest_within(&ps, Cost::Rotations, 0.95).is_none());
    }

    #[test]
    fn cost_names_parse() {
        for c in Cost::ALL {
            assert_eq!(c.name().parse::<Cost>(), Ok(c));
        }
        assert!(
            "flops"
                .parse::<Cost>()
                .unwrap_err()
                .contains("rotations or latency")
        );
    }
}
