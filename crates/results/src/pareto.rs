//! Pareto fronts of test accuracy (maximized) against encrypted-inference cost
//! (minimized), the hypervolume that summarizes a front in one number, the
//! cheapest point at iso-accuracy, and the rows a baseline front keeps. Pure
//! functions.
//!
//! The unit of a front is a [`Summary`]: the replicates (one per seed) of one
//! strategy and target pooled into a mean with its standard error, so a front
//! drawn from several seeds is a front of means with error bars.

use std::collections::BTreeMap;

use crate::points::PointRecord;
use explore_he_model::schedule::Schedule;
use explore_spec::Strategy;
use explore_stats::{self as stats, Estimate};

/// The cost axis of a front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cost {
    /// Rotations per inference (the cost model's count).
    Rotations,
    /// Measured latency of the encrypted layers (`latency_measured_ms`).
    Latency,
}

explore_he_model::named_enum!(Cost: String, |s| format!("unknown cost `{s}`: use rotations or latency"), {
    Rotations => "rotations",
    Latency => "latency",
});

impl Cost {
    /// Axis label with units.
    pub fn label(self) -> &'static str {
        match self {
            Cost::Rotations => "rotations per inference",
            Cost::Latency => "encrypted latency (ms)",
        }
    }

    /// The summary's mean cost; `NaN` when it was not measured.
    pub fn of(self, s: &Summary) -> f64 {
        self.estimate(s).mean
    }

    pub fn estimate(self, s: &Summary) -> Estimate {
        match self {
            Cost::Rotations => s.rotations,
            Cost::Latency => s.latency,
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
/// The accuracy a front ranks a point by: the integer model's, what the
/// encrypted network computes (the float accuracy stays a column).
pub fn front_accuracy(r: &PointRecord) -> f64 {
    r.accuracy_quantized
}

/// The replicates of one strategy and target (one row per seed), pooled.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub schedule: Schedule,
    pub strategy: Strategy,
    pub target: f64,
    pub seeds: Vec<u64>,
    /// Test images behind each replicate's accuracy (the smallest, should
    /// replicates differ).
    pub test_images: u64,
    /// Mean accuracy; its error adds the test set's binomial error to the
    /// seed-to-seed error ([`stats::accuracy_estimate`]).
    pub accuracy: Estimate,
    pub rotations: Estimate,
    /// `NaN` mean when no replicate was timed.
    pub latency: Estimate,
    /// The dense network's rotations under the same schedule.
    pub rotations_dense: u64,
}

impl Summary {
    /// `diagonal 0.5`, or `dense`.
    pub fn label(&self) -> String {
        match self.strategy {
            Strategy::Dense => "dense".to_string(),
            s => format!("{s} {}", self.target),
        }
    }

    /// Whether `r` is one of this summary's replicates.
    pub fn holds(&self, r: &PointRecord) -> bool {
        same_point(r.strategy, r.target, self.strategy, self.target)
    }
}

/// Whether two (strategy, target) pairs name one point.
pub(crate) fn same_point(a: Strategy, a_target: f64, b: Strategy, b_target: f64) -> bool {
    a == b && (a_target - b_target).abs() < 1e-9
}

/// The schedule a table's pruned points were measured under (its dense
/// rows may add references under other schedules).
pub fn primary_schedule(points: &[PointRecord]) -> Option<Schedule> {
    points
        .iter()
        .find(|p| p.strategy != Strategy::Dense)
        .or(points.first())
        .map(|p| p.schedule)
}

/// Pools the rows of `points` measured under the table's primary schedule by
/// strategy and target, in the order each pair first appears.
pub fn summarize(points: &[PointRecord]) -> Vec<Summary> {
    let primary = primary_schedule(points);
    pool_by_point(points.iter().filter(|p| Some(p.schedule) == primary))
}

/// The dense model under the schedules other than the primary one (e.g.
/// Gazelle's, beside a sweep under `best`), pooled per schedule.
pub fn references(points: &[PointRecord]) -> Vec<Summary> {
    let primary = primary_schedule(points);
    let mut out = Vec::new();
    for schedule in Schedule::ALL.into_iter().filter(|s| Some(*s) != primary) {
        out.extend(pool_by_point(points.iter().filter(|p| {
            p.schedule == schedule && p.strategy == Strategy::Dense
        })));
    }
    out
}

fn pool_by_point<'a>(points: impl Iterator<Item = &'a PointRecord>) -> Vec<Summary> {
    let mut groups: Vec<Vec<&PointRecord>> = Vec::new();
    for p in points {
        match groups
            .iter_mut()
            .find(|g| same_point(g[0].strategy, g[0].target, p.strategy, p.target))
        {
            Some(g) => g.push(p),
            None => groups.push(vec![p]),
        }
    }
    groups.into_iter().map(|rows| pool(&rows)).collect()
}

fn pool(rows: &[&PointRecord]) -> Summary {
    let of = |f: fn(&PointRecord) -> f64| rows.iter().map(|r| f(r)).collect::<Vec<f64>>();
    let test_images = rows.iter().map(|r| r.test_images).min().unwrap_or(0);
    let latencies: Vec<f64> = of(|r| r.latency_measured_ms)
        .into_iter()
        .filter(|l| l.is_finite())
        .collect();
    let unmeasured = Estimate {
        mean: f64::NAN,
        se: f64::NAN,
    };
    Summary {
        schedule: rows[0].schedule,
        strategy: rows[0].strategy,
        target: rows[0].target,
        seeds: rows.iter().map(|r| r.seed).collect(),
        test_images,
        accuracy: stats::accuracy_estimate(&of(front_accuracy), test_images)
            .expect("a group has a row"),
        rotations: stats::cost_estimate(&of(|r| r.rotations as f64)).expect("a group has a row"),
        latency: stats::cost_estimate(&latencies).unwrap_or(unmeasured),
        rotations_dense: rows.iter().map(|r| r.rotations_dense).max().unwrap_or(0),
    }
}

/// The non-dominated summaries, sorted by increasing cost (so accuracy
/// increases too). A point is dominated when another is at least as accurate
/// and at most as costly, and strictly better in one of the two; exact
/// duplicates dominate neither each other, so both stay. Points whose cost
/// was not measured are left out.
pub fn front<'a>(points: impl IntoIterator<Item = &'a Summary>, cost: Cost) -> Vec<&'a Summary> {
    let mut sorted: Vec<&Summary> = points
        .into_iter()
        .filter(|p| cost.of(p).is_finite() && p.accuracy.mean.is_finite())
        .collect();
    sorted.sort_by(|a, b| {
        cost.of(a)
            .total_cmp(&cost.of(b))
            .then(b.accuracy.mean.total_cmp(&a.accuracy.mean))
    });
    let mut front: Vec<&Summary> = Vec::new();
    for p in sorted {
        // The last front point is the most accurate one seen so far, and no
        // more costly than `p`: `p` survives only by beating it or equalling it.
        let kept = match front.last() {
            None => true,
            Some(last) => {
                p.accuracy.mean > last.accuracy.mean
                    || (p.accuracy.mean == last.accuracy.mean && cost.of(p) == cost.of(last))
            }
        };
        if kept {
            front.push(p);
        }
    }
    front
}

/// The rows a baseline front file holds: every replicate of the overall
/// front's summaries (plus each strategy's front with `per_strategy`) and the
/// dense rows, in table order. Dense rows carry the reference cost, so
/// `check` works on either axis, and the replicates keep the seed-to-seed
/// spread a later check needs.
pub fn baseline_rows(points: &[PointRecord], cost: Cost, per_strategy: bool) -> Vec<PointRecord> {
    let summaries = summarize(points);
    let per = fronts_by_strategy(&summaries, cost);
    let extra = per.values().flatten().filter(|_| per_strategy);
    let listed: Vec<&Summary> = front(&summaries, cost)
        .into_iter()
        .chain(extra.copied())
        .collect();
    points
        .iter()
        .filter(|p| {
            p.strategy == Strategy::Dense
                || listed
                    .iter()
                    .any(|s| s.holds(p) && s.schedule == p.schedule)
        })
        .cloned()
        .collect()
}

/// The front of each strategy's summaries (dense is a strategy of its own).
pub fn fronts_by_strategy(points: &[Summary], cost: Cost) -> BTreeMap<Strategy, Vec<&Summary>> {
    let mut groups: BTreeMap<Strategy, Vec<&Summary>> = BTreeMap::new();
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
/// `reference_cost` and from `reference_accuracy` up: the integral over
/// cost c in [0, reference_cost] of how far the best accuracy reachable at
/// cost <= c lies above the reference accuracy. Units are cost x accuracy.
/// Points at or beyond the reference cost add nothing (the dense model
/// itself sits on the reference cost), so the value measures what pruning
/// buys; points below the reference accuracy add nothing either.
///
/// Its standard error propagates each front point's accuracy error through
/// the width of its segment, sqrt(sum (width_i * se_i)^2) over the segments
/// above the reference accuracy, holding the front and its costs fixed.
pub fn hypervolume<'a>(
    points: impl IntoIterator<Item = &'a Summary>,
    (reference_cost, reference_accuracy): (f64, f64),
    cost: Cost,
) -> Estimate {
    let front = front(points, cost);
    let (mut area, mut variance) = (0.0, 0.0);
    for (i, p) in front.iter().enumerate() {
        let start = cost.of(p);
        let end = front
            .get(i + 1)
            .map_or(reference_cost, |next| cost.of(next).min(reference_cost));
        let height = p.accuracy.mean - reference_accuracy;
        if end > start && height > 0.0 {
            area += height * (end - start);
            variance += ((end - start) * p.accuracy.se).powi(2);
        }
    }
    Estimate {
        mean: area,
        se: variance.sqrt(),
    }
}

/// The dense model's cost, the reference of hypervolumes and speedups:
/// `rotations_dense` for rotations (the same on every row of one sweep; the
/// largest is taken), the mean measured latency of the dense replicates for
/// latency. `None` when the table cannot say.
pub fn reference_cost(points: &[Summary], cost: Cost) -> Option<f64> {
    match cost {
        Cost::Rotations => points
            .iter()
            .map(|p| p.rotations_dense)
            .max()
            .map(|r| r as f64),
        Cost::Latency => dense(points)
            .map(|d| d.latency.mean)
            .filter(|l| l.is_finite()),
    }
}

/// The dense model's summary (its replicates over seeds).
pub fn dense(points: &[Summary]) -> Option<&Summary> {
    points.iter().find(|p| p.strategy == Strategy::Dense)
}

/// The cheapest dense model by `cost` among the schedules a table ran: the
/// dense model under its primary schedule (in `points`) and under every
/// other one (`references`, e.g. Gazelle's, or coefficient encoding with
/// no rotations at all). What a pruned network must beat to be worth
/// deploying, whatever the encoding.
pub fn cheapest_dense<'a>(
    points: &'a [Summary],
    references: &'a [Summary],
    cost: Cost,
) -> Option<&'a Summary> {
    dense(points)
        .into_iter()
        .chain(references)
        .filter(|s| cost.of(s).is_finite())
        .min_by(|a, b| cost.of(a).total_cmp(&cost.of(b)))
}

/// The cheapest point with mean accuracy at least `min_accuracy`
/// (iso-accuracy); among equally cheap ones, the most accurate.
pub fn cheapest_within<'a>(
    points: impl IntoIterator<Item = &'a Summary>,
    cost: Cost,
    min_accuracy: f64,
) -> Option<&'a Summary> {
    // The front holds the cheapest point of every accuracy level.
    front(points, cost)
        .into_iter()
        .find(|p| p.accuracy.mean >= min_accuracy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;

    /// Summaries of single-seed diagonal points given as (accuracy, rotations).
    fn points(spec: &[(f64, u64)]) -> Vec<Summary> {
        let rows: Vec<PointRecord> = spec
            .iter()
            .enumerate()
            .map(|(i, &(a, r))| record(Strategy::Diagonal, i as f64 / 100.0, a, r))
            .collect();
        summarize(&rows)
    }

    fn pairs(front: &[&Summary]) -> Vec<(f64, f64)> {
        front
            .iter()
            .map(|p| (p.accuracy.mean, p.rotations.mean))
            .collect()
    }

    #[test]
    fn dominated_points_leave_the_front_which_is_sorted_by_cost() {
        let ps = points(&[(0.8, 100), (0.7, 200), (0.9, 300), (0.5, 50), (0.85, 400)]);
        let f = front(&ps, Cost::Rotations);
        assert_eq!(pairs(&f), vec![(0.5, 50.0), (0.8, 100.0), (0.9, 300.0)]);
        // 0.5 * (100 - 50) + 0.8 * (300 - 100) + 0.9 * (1000 - 300)
        let hv = hypervolume(&ps, (1000.0, 0.0), Cost::Rotations);
        assert!((hv.mean - 815.0).abs() < 1e-9);
        // Each point's binomial error (1000 test images) weighted by its width.
        let se = |a: f64| stats::binomial_se(a, 1000);
        let expected =
            ((50.0 * se(0.5)).powi(2) + (200.0 * se(0.8)).powi(2) + (700.0 * se(0.9)).powi(2))
                .sqrt();
        assert!((hv.se - expected).abs() < 1e-9, "{hv:?}");
    }

    #[test]
    fn ties_keep_the_better_coordinate_and_exact_duplicates() {
        // Same cost: the more accurate wins. Same accuracy: the cheaper wins.
        let ps = points(&[(0.7, 100), (0.8, 100), (0.8, 150), (0.9, 200), (0.9, 200)]);
        let f = front(&ps, Cost::Rotations);
        assert_eq!(pairs(&f), vec![(0.8, 100.0), (0.9, 200.0), (0.9, 200.0)]);
        // Duplicates add no area: 0.8 * 100 + 0.9 * 800.
        assert!((hypervolume(&ps, (1000.0, 0.0), Cost::Rotations).mean - 800.0).abs() < 1e-9);
    }

    #[test]
    fn single_point_and_empty_front() {
        let one = points(&[(0.6, 250)]);
        assert_eq!(front(&one, Cost::Rotations).len(), 1);
        assert!(
            (hypervolume(&one, (1000.0, 0.0), Cost::Rotations).mean - 0.6 * 750.0).abs() < 1e-9
        );
        assert!(front(&[], Cost::Rotations).is_empty());
        assert_eq!(hypervolume(&[], (1000.0, 0.0), Cost::Rotations).mean, 0.0);
    }

    #[test]
    fn points_at_or_beyond_the_reference_add_nothing() {
        let ps = points(&[(0.5, 500), (0.95, 1000), (0.99, 1200)]);
        assert_eq!(front(&ps, Cost::Rotations).len(), 3);
        assert!((hypervolume(&ps, (1000.0, 0.0), Cost::Rotations).mean - 250.0).abs() < 1e-9);
    }

    #[test]
    fn a_reference_accuracy_counts_only_what_lies_above_it() {
        // A cheap collapsed point and a dearer good one, over 0.85.
        let ps = points(&[(0.60, 100), (0.90, 400)]);
        let hv = hypervolume(&ps, (1000.0, 0.85), Cost::Rotations);
        // Only 0.90 - 0.85 over [400, 1000]; the 0.60 point adds nothing.
        assert!((hv.mean - 0.05 * 600.0).abs() < 1e-9, "{hv:?}");
        let se = stats::binomial_se(0.9, 1000);
        assert!((hv.se - 600.0 * se).abs() < 1e-9, "{hv:?}");
        // From accuracy 0 the collapsed point counts, and wins on area.
        let from_zero = hypervolume(&ps, (1000.0, 0.0), Cost::Rotations);
        assert!((from_zero.mean - (0.6 * 300.0 + 0.9 * 600.0)).abs() < 1e-9);
    }

    #[test]
    fn latency_fronts_skip_unmeasured_points() {
        let mut rows = vec![
            record(Strategy::Diagonal, 0.5, 0.8, 100),
            record(Strategy::Diagonal, 0.7, 0.9, 300),
        ];
        rows[0].latency_measured_ms = f64::NAN;
        let ps = summarize(&rows);
        let f = front(&ps, Cost::Latency);
        assert_eq!(pairs(&f), vec![(0.9, 300.0)]);
        let reference = 1000.0 * 2.6;
        let expected = 0.9 * (reference - 300.0 * 2.6);
        assert!((hypervolume(&ps, (reference, 0.0), Cost::Latency).mean - expected).abs() < 1e-9);
    }

    #[test]
    fn seeds_pool_into_one_point_with_their_spread() {
        let mut rows = vec![
            record(Strategy::Diagonal, 0.5, 0.80, 100),
            record(Strategy::Diagonal, 0.5, 0.84, 104),
            record(Strategy::Channel, 0.5, 0.70, 150),
        ];
        rows[1].seed = 1;
        let ps = summarize(&rows);
        assert_eq!(ps.len(), 2);
        let d = &ps[0];
        assert_eq!(
            (d.label().as_str(), d.seeds.as_slice()),
            ("diagonal 0.5", &[0, 1][..])
        );
        assert!((d.accuracy.mean - 0.82).abs() < 1e-12);
        assert_eq!(
            d.accuracy,
            stats::accuracy_estimate(&[0.80, 0.84], 1000).unwrap()
        );
        assert_eq!((d.rotations.mean, d.rotations.se), (102.0, 2.0));
        assert!(d.holds(&rows[1]) && !d.holds(&rows[2]));
        // The baseline keeps both replicates of a front point.
        let kept = baseline_rows(&rows, Cost::Rotations, false);
        assert_eq!(kept.len(), 2, "{kept:?}");
    }

    #[test]
    fn fronts_per_strategy_and_references() {
        let mut rows = vec![
            record(Strategy::Diagonal, 0.5, 0.8, 100),
            record(Strategy::Diagonal, 0.7, 0.7, 200),
            record(Strategy::Channel, 0.5, 0.75, 150),
            record(Strategy::Dense, 0.0, 0.91, 1000),
            record(Strategy::Dense, 0.0, 0.89, 1000),
        ];
        rows[4].seed = 1;
        let ps = summarize(&rows);
        let by = fronts_by_strategy(&ps, Cost::Rotations);
        assert_eq!(
            by.keys().copied().collect::<Vec<_>>(),
            vec![Strategy::Dense, Strategy::Diagonal, Strategy::Channel]
        );
        assert_eq!(pairs(&by[&Strategy::Diagonal]), vec![(0.8, 100.0)]);
        // Overall, channel's 0.75 at 150 is dominated by diagonal's 0.8 at 100.
        assert_eq!(
            pairs(&front(&ps, Cost::Rotations)),
            vec![(0.8, 100.0), (0.90, 1000.0)]
        );
        assert_eq!(reference_cost(&ps, Cost::Rotations), Some(1000.0));
        assert!((reference_cost(&ps, Cost::Latency).unwrap() - 2600.0).abs() < 1e-9);
        assert!((dense(&ps).unwrap().accuracy.mean - 0.90).abs() < 1e-12);
        assert_eq!(reference_cost(&ps[..3], Cost::Latency), None);
    }

    #[test]
    fn a_dense_row_under_another_schedule_is_a_reference_not_a_point() {
        let mut rows = vec![
            record(Strategy::Dense, 0.0, 0.91, 700),
            record(Strategy::Diagonal, 0.5, 0.90, 400),
            record(Strategy::Dense, 0.0, 0.91, 1000),
        ];
        rows[0].rotations_dense = 700;
        rows[1].rotations_dense = 700;
        rows[2].schedule = Schedule::Gazelle;
        let ps = summarize(&rows);
        assert_eq!(ps.len(), 2);
        assert_eq!(reference_cost(&ps, Cost::Rotations), Some(700.0));
        let refs = references(&rows);
        assert_eq!(refs.len(), 1);
        assert_eq!(
            (refs[0].schedule, refs[0].rotations.mean),
            (Schedule::Gazelle, 1000.0)
        );
        assert_eq!(baseline_rows(&rows, Cost::Rotations, false).len(), 3);
    }

    #[test]
    fn cheapest_within_picks_the_least_cost_at_iso_accuracy() {
        let ps = points(&[(0.905, 600), (0.89, 300), (0.902, 450), (0.85, 100)]);
        let p = cheapest_within(&ps, Cost::Rotations, 0.90).unwrap();
        assert_eq!((p.accuracy.mean, p.rotations.mean), (0.902, 450.0));
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
