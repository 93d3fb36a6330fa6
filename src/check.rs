//! The regression gate behind `explore check`: does a new sweep's front still
//! reach what a baseline front reached, allowing for measurement noise?
//!
//! Accuracy differences are judged in standard errors (binomial error of
//! both test sets plus the seed-to-seed error where there are several
//! seeds, [`crate::stats`]); costs within a relative tolerance set from the
//! measured seed-to-seed spread of rotations. Three rules, each reported so
//! a reader sees the difference beside what was allowed:
//!
//! 1. **Reach.** Every baseline front point is matched by some new point that
//!    costs at most `cost * (1 + cost_tolerance)` and whose accuracy is not
//!    significantly lower: `new - baseline >= -z * se(difference)`.
//! 2. **No shift in cost.** Over the `K` baseline front points the new sweep
//!    measured too, the mean relative cost change is at most
//!    `cost_tolerance / sqrt(K)`. Training noise moves each point's cost on
//!    its own and averages out; a cost-model or packing regression moves
//!    them all, which is what this rule sees (5 % more rotations everywhere
//!    fails it while each point alone is within its tolerance).
//! 3. **Hypervolume.** The new front's hypervolume is at least the baseline's,
//!    computed with the baseline's costs raised by the cost tolerance, minus
//!    `z` standard errors of the difference.

use crate::pareto::{Cost, Summary, front, hypervolume, reference_cost, summarize};
use crate::points::PointRecord;
use crate::stats::Estimate;

/// The relative standard deviation of one point's rotations over training
/// seeds of one spec: 2.6 %, pooled over the pruned points of
/// `sweeps/quick.yaml` run with seeds 0, 1 and 2 (the README has the run).
pub const ROTATION_NOISE: f64 = 0.026;

/// Relative cost increase allowed for one point when none is given: `z`
/// standard deviations of the difference of two independent runs' costs,
/// `z * sqrt(2) * ROTATION_NOISE` (7.4 %).
pub const DEFAULT_COST_TOLERANCE: f64 = DEFAULT_Z * std::f64::consts::SQRT_2 * ROTATION_NOISE;

pub use crate::stats::DEFAULT_Z;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("--tolerance {0} is outside [0, 1): use a fraction such as 0.01")]
    Tolerance(f64),
    #[error("--cost-tolerance {0} is outside [0, 1): use a fraction such as 0.03")]
    CostTolerance(f64),
    #[error("--z {0} is not a positive number: use e.g. 2")]
    Z(f64),
    #[error(
        "neither table gives the dense {0} (the hypervolume reference): add the dense row (strategy `dense`) with its measured latency, or compare with --cost rotations"
    )]
    NoReference(Cost),
}

/// How much a new front may differ from the baseline before it fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Accuracy within `z` standard errors of the difference, cost within
    /// `cost_tolerance` (relative).
    Statistical { z: f64, cost_tolerance: f64 },
    /// An explicit override: accuracy within `tolerance` (absolute, a
    /// fraction), cost and hypervolume within `tolerance` (relative).
    Fixed { tolerance: f64 },
}

impl Default for Rule {
    fn default() -> Rule {
        Rule::Statistical {
            z: DEFAULT_Z,
            cost_tolerance: DEFAULT_COST_TOLERANCE,
        }
    }
}

impl Rule {
    fn validate(self) -> Result<Rule, CheckError> {
        match self {
            Rule::Statistical { z, .. } if !(z.is_finite() && z > 0.0) => Err(CheckError::Z(z)),
            Rule::Statistical { cost_tolerance, .. } if !(0.0..1.0).contains(&cost_tolerance) => {
                Err(CheckError::CostTolerance(cost_tolerance))
            }
            Rule::Fixed { tolerance } if !(0.0..1.0).contains(&tolerance) => {
                Err(CheckError::Tolerance(tolerance))
            }
            r => Ok(r),
        }
    }

    pub fn cost_tolerance(self) -> f64 {
        match self {
            Rule::Statistical { cost_tolerance, .. } => cost_tolerance,
            Rule::Fixed { tolerance } => tolerance,
        }
    }

    /// The most negative accuracy difference (new - baseline) that is still
    /// noise, given the two estimates.
    pub fn allowed_loss(self, new: &Estimate, baseline: &Estimate) -> f64 {
        match self {
            Rule::Statistical { z, .. } => -z * new.se_of_difference(baseline),
            Rule::Fixed { tolerance } => -tolerance,
        }
    }
}

/// The verdict on one baseline front point.
#[derive(Debug, Clone)]
pub struct PointCheck {
    pub baseline: Summary,
    /// The highest cost a matching new point may have.
    pub cost_bound: f64,
    /// The new point within the cost bound whose accuracy comes closest to
    /// (or beyond) the baseline's, in units of the allowed loss.
    pub best: Option<Summary>,
    /// `best` accuracy minus the baseline's.
    pub difference: f64,
    /// The most negative difference allowed (negative, or 0).
    pub allowed: f64,
}

impl PointCheck {
    pub fn passed(&self) -> bool {
        self.best.is_some() && self.difference >= self.allowed
    }
}

/// Rule 2: the cost change of the baseline front points the new sweep
/// measured too.
#[derive(Debug, Clone)]
pub struct CostShift {
    /// (baseline point, its cost, the new cost of the same point).
    pub twins: Vec<(Summary, f64, f64)>,
    /// The geometric mean of new / baseline cost, minus 1.
    pub mean_change: f64,
    /// The largest mean change allowed.
    pub allowed: f64,
}

impl CostShift {
    fn of(baseline: &[&Summary], new: &[Summary], cost: Cost, rule: Rule) -> CostShift {
        let twins: Vec<(Summary, f64, f64)> = baseline
            .iter()
            .filter_map(|b| {
                new.iter()
                    .find(|n| n.strategy == b.strategy && (n.target - b.target).abs() < 1e-9)
                    .map(|n| ((*b).clone(), cost.of(b), cost.of(n)))
            })
            .filter(|(_, b, n)| *b > 0.0 && n.is_finite())
            .collect();
        let k = twins.len().max(1) as f64;
        let mean_log = twins.iter().map(|(_, b, n)| (n / b).ln()).sum::<f64>() / k;
        let allowed = match rule {
            Rule::Statistical { cost_tolerance, .. } => cost_tolerance / k.sqrt(),
            Rule::Fixed { tolerance } => tolerance,
        };
        CostShift {
            twins,
            mean_change: mean_log.exp() - 1.0,
            allowed,
        }
    }

    pub fn passed(&self) -> bool {
        self.mean_change <= self.allowed
    }
}

/// The outcome of [`compare`].
#[derive(Debug, Clone)]
pub struct Comparison {
    pub cost: Cost,
    pub rule: Rule,
    /// The larger of the two tables' dense costs, shared by both hypervolumes.
    pub reference_cost: f64,
    pub hypervolume: Estimate,
    pub baseline_hypervolume: Estimate,
    /// The lowest new hypervolume that passes.
    pub hypervolume_floor: f64,
    pub points: Vec<PointCheck>,
    pub cost_shift: CostShift,
}

impl Comparison {
    pub fn hypervolume_ok(&self) -> bool {
        self.hypervolume.mean >= self.hypervolume_floor
    }

    pub fn passed(&self) -> bool {
        self.hypervolume_ok()
            && self.cost_shift.passed()
            && self.points.iter().all(PointCheck::passed)
    }

    /// The baseline points that regressed: those no new point reaches, and
    /// when costs shifted, those whose own cost rose.
    pub fn regressions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .points
            .iter()
            .filter(|p| !p.passed())
            .map(|p| p.baseline.label())
            .collect();
        if !self.cost_shift.passed() {
            for (b, base, new) in &self.cost_shift.twins {
                if new > base && !names.contains(&b.label()) {
                    names.push(b.label());
                }
            }
        }
        names
    }
}

/// Compares the front of `new` with that of `baseline` under one cost (both
/// are points tables; replicates are pooled by strategy and target).
pub fn compare(
    new: &[PointRecord],
    baseline: &[PointRecord],
    cost: Cost,
    rule: Rule,
) -> Result<Comparison, CheckError> {
    let rule = rule.validate()?;
    let (new, baseline) = (summarize(new), summarize(baseline));
    let reference = match (reference_cost(&new, cost), reference_cost(&baseline, cost)) {
        (Some(a), Some(b)) => a.max(b),
        (Some(r), None) | (None, Some(r)) => r,
        (None, None) => return Err(CheckError::NoReference(cost)),
    };
    let tolerance = rule.cost_tolerance();
    let baseline_front = front(&baseline, cost);
    let points = baseline_front
        .iter()
        .map(|b| check_point(b, &new, cost, rule))
        .collect();
    let cost_shift = CostShift::of(&baseline_front, &new, cost, rule);
    let hv = hypervolume(&new, reference, cost);
    let baseline_hv = hypervolume(&baseline, reference, cost);
    let floor = match rule {
        Rule::Statistical { z, .. } => {
            let shifted: Vec<Summary> = baseline
                .iter()
                .map(|s| raise_cost(s, cost, 1.0 + tolerance))
                .collect();
            hypervolume(&shifted, reference, cost).mean - z * hv.se_of_difference(&baseline_hv)
        }
        Rule::Fixed { tolerance } => (1.0 - tolerance) * baseline_hv.mean,
    };
    Ok(Comparison {
        cost,
        rule,
        reference_cost: reference,
        hypervolume: hv,
        baseline_hypervolume: baseline_hv,
        hypervolume_floor: floor,
        points,
        cost_shift,
    })
}

fn check_point(b: &Summary, new: &[Summary], cost: Cost, rule: Rule) -> PointCheck {
    let cost_bound = cost.of(b) * (1.0 + rule.cost_tolerance());
    // The candidate with the largest margin over the allowed loss.
    let best = new
        .iter()
        .filter(|n| cost.of(n) <= cost_bound)
        .map(|n| {
            let difference = n.accuracy.mean - b.accuracy.mean;
            let allowed = rule.allowed_loss(&n.accuracy, &b.accuracy);
            (n, difference, allowed)
        })
        .max_by(|x, y| (x.1 - x.2).total_cmp(&(y.1 - y.2)));
    let (best, difference, allowed) = match best {
        Some((n, d, a)) => (Some(n.clone()), d, a),
        None => (None, f64::NAN, f64::NAN),
    };
    PointCheck {
        baseline: b.clone(),
        cost_bound,
        best,
        difference,
        allowed,
    }
}

/// `s` with its mean cost multiplied by `factor`.
fn raise_cost(s: &Summary, cost: Cost, factor: f64) -> Summary {
    let mut s = s.clone();
    match cost {
        Cost::Rotations => s.rotations.mean *= factor,
        Cost::Latency => s.latency.mean *= factor,
    }
    s
}

/// The per-point table `explore check` prints: every baseline front point,
/// its best match, the accuracy difference and what was allowed, and the cost
/// against its bound.
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write as _;
    let pct = |x: f64| format!("{:.2}", 100.0 * x);
    let est = |e: &Estimate| format!("{} ± {}", pct(e.mean), pct(e.se));
    let mut out = String::new();
    let cost = c.cost;
    let _ = writeln!(
        out,
        "cost {cost}, reference {} (the larger dense cost); {}",
        cost.format(c.reference_cost),
        match c.rule {
            Rule::Statistical { z, cost_tolerance } => format!(
                "accuracy may fall {z} standard errors of the difference, {cost} may rise {:.1}%",
                100.0 * cost_tolerance
            ),
            Rule::Fixed { tolerance } => format!(
                "fixed tolerance: accuracy may fall {} point, {cost} and hypervolume {:.1}%",
                100.0 * tolerance,
                100.0 * tolerance
            ),
        }
    );
    let header = [
        "baseline point",
        "seeds",
        "accuracy (%)",
        cost.name(),
        "best new match",
        "accuracy (%)",
        cost.name(),
        "difference",
        "allowed",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = c
        .points
        .iter()
        .map(|p| {
            let b = &p.baseline;
            let mut row = vec![
                b.label(),
                b.seeds.len().to_string(),
                est(&b.accuracy),
                cost.format(cost.of(b)),
            ];
            match &p.best {
                Some(n) => row.extend([
                    n.label(),
                    est(&n.accuracy),
                    format!(
                        "{} (<= {})",
                        cost.format(cost.of(n)),
                        cost.format(p.cost_bound)
                    ),
                    format!("{:+.2}", 100.0 * p.difference),
                    format!(">= {:.2}", 100.0 * p.allowed),
                ]),
                None => row.extend([
                    format!("none at {cost} <= {}", cost.format(p.cost_bound)),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]),
            }
            row.push(if p.passed() { "ok" } else { "REGRESSED" }.to_string());
            row
        })
        .collect();
    out += &crate::report::table(&header, &rows);
    let shift = &c.cost_shift;
    let _ = writeln!(
        out,
        "{cost} of the {} baseline front points measured again: mean change {:+.2}% (allowed {:+.2}%, the per-point tolerance over sqrt({})): {}",
        shift.twins.len(),
        100.0 * shift.mean_change,
        100.0 * shift.allowed,
        shift.twins.len(),
        if shift.passed() { "ok" } else { "REGRESSED" }
    );
    if !shift.passed() {
        for (b, base, new) in &shift.twins {
            let _ = writeln!(
                out,
                "  {}: {} -> {} ({:+.1}%)",
                b.label(),
                cost.format(*base),
                cost.format(*new),
                100.0 * (new / base - 1.0)
            );
        }
    }
    let normalized = |x: f64| x / c.reference_cost;
    let _ = writeln!(
        out,
        "hypervolume: new {:.4} ± {:.4}, baseline {:.4} ± {:.4} (normalized; new must be >= {:.4}): {}",
        normalized(c.hypervolume.mean),
        normalized(c.hypervolume.se),
        normalized(c.baseline_hypervolume.mean),
        normalized(c.baseline_hypervolume.se),
        normalized(c.hypervolume_floor),
        if c.hypervolume_ok() {
            "ok"
        } else {
            "REGRESSED"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;
    use crate::prune::Strategy;
    use crate::stats::binomial_se;

    /// A front of well-separated points, each measured on 1000 images.
    fn sweep() -> Vec<PointRecord> {
        vec![
            record(Strategy::Dense, 0.0, 0.91, 1000),
            record(Strategy::Diagonal, 0.5, 0.90, 600),
            record(Strategy::Diagonal, 0.8, 0.80, 300),
            record(Strategy::Diagonal, 0.9, 0.65, 200),
            record(Strategy::Channel, 0.8, 0.60, 350),
        ]
    }

    /// The standard error of a difference of two accuracies near `p`.
    fn se_diff(p: f64) -> f64 {
        binomial_se(p, 1000) * 2f64.sqrt()
    }

    fn names(c: &Comparison) -> Vec<String> {
        c.regressions()
    }

    #[test]
    fn a_front_passes_against_itself() {
        let points = sweep();
        let c = compare(&points, &points, Cost::Rotations, Rule::default()).unwrap();
        assert!(c.passed(), "{}", render(&c));
        assert_eq!(c.hypervolume, c.baseline_hypervolume);
        assert!(c.hypervolume.mean > 0.0);
        assert_eq!(c.points.len(), 4, "dense and the three diagonal points");
    }

    #[test]
    fn noise_of_one_standard_error_and_the_measured_cost_spread_pass() {
        let baseline = sweep();
        let mut new = sweep();
        for p in &mut new {
            // One SE of the difference down, and rotations up by less than
            // the default tolerance.
            p.accuracy_quantized -= se_diff(p.accuracy_quantized);
            p.rotations = (p.rotations as f64 * 1.02) as u64;
        }
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert!(c.passed(), "{}", render(&c));
    }

    #[test]
    fn three_standard_errors_worse_fails_and_names_the_points() {
        let baseline = sweep();
        let mut new = sweep();
        for p in new.iter_mut().filter(|p| p.strategy == Strategy::Diagonal) {
            p.accuracy_quantized -= 3.0 * se_diff(p.accuracy_quantized);
        }
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert!(!c.passed());
        assert_eq!(
            names(&c),
            ["diagonal 0.9", "diagonal 0.8", "diagonal 0.5"],
            "{}",
            render(&c)
        );
        let text = render(&c);
        assert!(
            text.contains("REGRESSED") && text.contains("allowed"),
            "{text}"
        );
    }

    #[test]
    fn five_percent_more_rotations_at_the_same_accuracy_fails() {
        let baseline = sweep();
        let mut new = sweep();
        for p in &mut new {
            p.rotations = (p.rotations as f64 * 1.05).round() as u64;
            p.rotations_dense = (p.rotations_dense as f64 * 1.05).round() as u64;
        }
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert!(!c.passed(), "{}", render(&c));
        // Each point alone is within its tolerance (7.4 %); the four moved
        // together by 5 %, beyond the 3.7 % their mean may move.
        assert!(!c.cost_shift.passed());
        assert!(
            (c.cost_shift.mean_change - 0.05).abs() < 0.002,
            "{}",
            render(&c)
        );
        assert_eq!(
            names(&c),
            ["diagonal 0.9", "diagonal 0.8", "diagonal 0.5", "dense"],
            "{}",
            render(&c)
        );
        assert!(render(&c).contains("(+5.0%)"), "{}", render(&c));
    }

    #[test]
    fn one_point_costlier_is_noise_when_the_front_still_reaches() {
        let baseline = sweep();
        let mut new = sweep();
        // Diagonal 0.8 now costs 10% more but is 10 points more accurate,
        // and a new target covers the cost it left: one of four points
        // moving is what noise does.
        new[2].rotations = 330;
        new[2].accuracy_quantized = 0.90;
        new.push(record(Strategy::Diagonal, 0.85, 0.80, 295));
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert!(c.passed(), "{}", render(&c));
    }

    #[test]
    fn a_doctored_better_baseline_fails() {
        let new = sweep();
        let baseline: Vec<PointRecord> = sweep()
            .into_iter()
            .map(|mut p| {
                p.accuracy_quantized = (p.accuracy_quantized + 0.05).min(1.0);
                p.rotations /= 2;
                p
            })
            .collect();
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert!(!c.passed());
        assert!(!c.hypervolume_ok(), "{}", render(&c));
        assert!(names(&c).len() >= 3, "{}", render(&c));
    }

    #[test]
    fn seeds_shrink_the_error_only_by_their_spread() {
        // Two seeds that agree: the error is the binomial one, so a loss of
        // 1.5 binomial SEs of the difference still passes.
        let mut baseline = sweep();
        let mut second = sweep();
        second.iter_mut().for_each(|p| p.seed = 1);
        baseline.extend(second);
        let mut new = baseline.clone();
        for p in &mut new {
            p.accuracy_quantized -= 1.5 * se_diff(p.accuracy_quantized);
        }
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert!(c.passed(), "{}", render(&c));
        assert!(c.points.iter().all(|p| p.baseline.seeds.len() == 2));
    }

    #[test]
    fn the_fixed_tolerance_override_keeps_the_old_rule() {
        let baseline = sweep();
        let mut new = sweep();
        new[2].accuracy_quantized -= 0.005;
        new[2].rotations += 2;
        let fixed = Rule::Fixed { tolerance: 0.01 };
        assert!(
            compare(&new, &baseline, Cost::Rotations, fixed)
                .unwrap()
                .passed()
        );
        new[2].accuracy_quantized -= 0.01;
        assert!(
            !compare(&new, &baseline, Cost::Rotations, fixed)
                .unwrap()
                .passed()
        );
    }

    #[test]
    fn bad_rules_and_missing_references_name_the_fix() {
        let points: Vec<_> = sweep().into_iter().skip(1).collect();
        let e = compare(&points, &points, Cost::Latency, Rule::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("dense") && e.contains("--cost rotations"), "{e}");
        let e = compare(
            &points,
            &points,
            Cost::Rotations,
            Rule::Fixed { tolerance: 1.5 },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tolerance 1.5"), "{e}");
        let e = compare(
            &points,
            &points,
            Cost::Rotations,
            Rule::Statistical {
                z: -1.0,
                cost_tolerance: 0.03,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--z -1"), "{e}");
    }

    #[test]
    fn the_reference_is_the_larger_dense_cost() {
        let baseline = sweep();
        let mut new = sweep();
        for p in &mut new {
            p.rotations_dense = 2000;
        }
        let c = compare(&new, &baseline, Cost::Rotations, Rule::default()).unwrap();
        assert_eq!(c.reference_cost, 2000.0);
        assert!(crate::pareto::dense(&summarize(&new)).is_some());
    }
}
