//! The regression gate behind `explore check`: does a new sweep's front still
//! reach what a baseline front reached, allowing for training noise?
//!
//! Training noise is what decides, not the test set's binomial error: a
//! reseed (and another CPU is one) moves accuracies by several binomial
//! errors, and moves every point of a run together when its dense model
//! comes out weaker. The statistical rule therefore reads the baseline's
//! [`NoiseProfile`] (measured over at least three seeds, common and
//! per-point parts) and tests three things, splitting a family-wise
//! false-alarm budget `alpha` (default 5 %) between them:
//!
//! 1. **No accuracy shift** (`0.3 alpha`, one-sided t test). The mean
//!    accuracy change over the baseline front points the new sweep measured
//!    too is within what the common and the point noise allow for runs of
//!    these many seeds. This is what sees a uniform drop.
//! 2. **Reach** (`0.2 alpha`, Bonferroni over the front points). Every
//!    baseline front point is matched by some new point that costs at most
//!    its cost raised by the rotation noise and whose accuracy is not lower
//!    by more than one point's noise allows.
//! 3. **No cost shift** (`0.3 alpha`, one-sided t test). The mean change of
//!    ln(rotations) over the pruned front points stays within their noise,
//!    and no dense count rises at all (dense counts do not depend on
//!    training, so any rise is a cost-model change).
//!
//! Where both tables' points carry per-image outcomes of the same test
//! images, accuracy differences are paired and the test set's sampling
//! error cancels; otherwise each table's binomial error is added. The
//! hypervolume is reported beside the rules. `Rule::Fixed` keeps the plain
//! tolerance rule (accuracy, cost and hypervolume within fixed margins).

use crate::pareto::{Cost, Summary, front, hypervolume, reference_cost, summarize};
use crate::points::PointRecord;
use crate::seed_noise::NoiseProfile;
use explore_stats::{Estimate, binomial_se, t_quantile};

/// The family-wise false-alarm rate of the statistical rule by default.
pub const DEFAULT_ALPHA: f64 = 0.05;

/// Shares of `alpha` spent on the accuracy shift, the reach and the cost
/// shift rules (their sum is below 1, so the union bound holds).
const SHARES: [f64; 3] = [0.3, 0.2, 0.3];

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("--tolerance {0} is outside [0, 1): use a fraction such as 0.01")]
    Tolerance(f64),
    #[error("--cost-tolerance {0} is outside [0, 1): use a fraction such as 0.03")]
    CostTolerance(f64),
    #[error("--alpha {0} is outside (0, 0.5): use e.g. 0.05")]
    Alpha(f64),
    #[error(
        "the statistical rule needs the baseline's noise profile (noise.json, from 3 or more seeds): pass one, or use the fixed rule (--tolerance)"
    )]
    NoNoise,
    #[error(
        "neither table gives the dense {0} (the hypervolume reference): add the dense row (strategy `dense`) with its measured latency, or compare with --cost rotations"
    )]
    NoReference(Cost),
}

/// How much a new front may differ from the baseline before it fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Calibrated on the baseline's training noise, with family-wise
    /// false-alarm rate `alpha`; `cost_tolerance` (relative) bounds latency,
    /// whose noise depends on the machine and is not in the profile.
    Statistical { alpha: f64, cost_tolerance: f64 },
    /// An explicit override: accuracy within `tolerance` (absolute, a
    /// fraction), cost and hypervolume within `tolerance` (relative).
    Fixed { tolerance: f64 },
}

/// Relative latency increase of one point allowed by default.
pub const DEFAULT_LATENCY_TOLERANCE: f64 = 0.2;

impl Default for Rule {
    fn default() -> Rule {
        Rule::Statistical {
            alpha: DEFAULT_ALPHA,
            cost_tolerance: DEFAULT_LATENCY_TOLERANCE,
        }
    }
}

impl Rule {
    fn validate(self) -> Result<Rule, CheckError> {
        match self {
            Rule::Statistical { alpha, .. } if !(alpha > 0.0 && alpha < 0.5) => {
                Err(CheckError::Alpha(alpha))
            }
            Rule::Statistical { cost_tolerance, .. } if !(0.0..1.0).contains(&cost_tolerance) => {
                Err(CheckError::CostTolerance(cost_tolerance))
            }
            Rule::Fixed { tolerance } if !(0.0..1.0).contains(&tolerance) => {
                Err(CheckError::Tolerance(tolerance))
            }
            r => Ok(r),
        }
    }
}

/// What the comparison knows about noise: the profile, and whether the two
/// tables' accuracies were measured on the same test images.
#[derive(Debug, Clone, Copy)]
pub struct Noise<'a> {
    pub profile: &'a NoiseProfile,
    /// Both tables' points carry outcomes of the same test images.
    pub paired: bool,
}

/// The verdict on one baseline front point.
#[derive(Debug, Clone)]
pub struct PointCheck {
    pub baseline: Summary,
    /// The highest cost a matching new point may have.
    pub cost_bound: f64,
    /// The new point within the cost bound whose accuracy comes closest to
    /// (or beyond) the baseline's, relative to what is allowed.
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

/// A front-wide mean change over the twins (baseline front points the new
/// sweep measured too) against the largest change allowed.
#[derive(Debug, Clone)]
pub struct Shift {
    /// (baseline point, its value, the new value of the same point).
    pub twins: Vec<(Summary, f64, f64)>,
    pub mean_change: f64,
    /// The bound on `mean_change` (a floor for accuracy, a ceiling for cost).
    pub allowed: f64,
    /// Dense twins whose cost rose (cost shift only).
    pub dense_rises: Vec<(Summary, f64, f64)>,
}

impl Shift {
    fn accuracy_passed(&self) -> bool {
        self.mean_change >= self.allowed
    }
    fn cost_passed(&self) -> bool {
        self.mean_change <= self.allowed && self.dense_rises.is_empty()
    }
}

/// The outcome of [`compare`].
#[derive(Debug, Clone)]
pub struct Comparison {
    pub cost: Cost,
    pub rule: Rule,
    /// Whether accuracy differences were paired on the same test images.
    pub paired: bool,
    /// The seeds of the noise profile (empty under the fixed rule).
    pub profile_seeds: Vec<u64>,
    /// The larger of the two tables' dense costs, shared by both hypervolumes.
    pub reference_cost: f64,
    pub hypervolume: Estimate,
    pub baseline_hypervolume: Estimate,
    /// The lowest new hypervolume that passes (fixed rule only; `None`
    /// where the hypervolume is reported, not gated).
    pub hypervolume_floor: Option<f64>,
    pub points: Vec<PointCheck>,
    pub accuracy_shift: Shift,
    pub cost_shift: Shift,
}

impl Comparison {
    pub fn hypervolume_ok(&self) -> bool {
        self.hypervolume_floor
            .is_none_or(|f| self.hypervolume.mean >= f)
    }

    pub fn passed(&self) -> bool {
        self.hypervolume_ok()
            && self.accuracy_shift.accuracy_passed()
            && self.cost_shift.cost_passed()
            && self.points.iter().all(PointCheck::passed)
    }

    /// The baseline points that regressed: those no new point reaches, and
    /// when a front-wide rule failed, the points that moved its way.
    pub fn regressions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .points
            .iter()
            .filter(|p| !p.passed())
            .map(|p| p.baseline.label())
            .collect();
        let add = |b: &Summary, names: &mut Vec<String>| {
            if !names.contains(&b.label()) {
                names.push(b.label());
            }
        };
        if !self.accuracy_shift.accuracy_passed() {
            for (b, base, new) in &self.accuracy_shift.twins {
                if new < base {
                    add(b, &mut names);
                }
            }
        }
        if !self.cost_shift.cost_passed() {
            let all = self
                .cost_shift
                .twins
                .iter()
                .chain(&self.cost_shift.dense_rises);
            for (b, base, new) in all {
                if new > base {
                    add(b, &mut names);
                }
            }
        }
        names
    }
}

/// The seeds behind a summary, at least 1.
fn seeds(s: &Summary) -> f64 {
    s.seeds.len().max(1) as f64
}

/// The test set's part of the variance of `new - baseline` accuracy: none
/// when paired on the same images, else both binomial variances.
fn sampling_variance(n: &Summary, b: &Summary, paired: bool) -> f64 {
    if paired {
        0.0
    } else {
        binomial_se(n.accuracy.mean, n.test_images).powi(2)
            + binomial_se(b.accuracy.mean, b.test_images).powi(2)
    }
}

/// The fewest seeds behind any new and any baseline twin (1 without twins):
/// a front-wide mean is only as replicated as its least replicated point.
fn fewest_seeds(twins: &[(&Summary, &Summary)]) -> (f64, f64) {
    let fewest = |side: fn(&(&Summary, &Summary)) -> f64| {
        twins.iter().map(side).reduce(f64::min).unwrap_or(1.0)
    };
    (fewest(|t| seeds(t.1)), fewest(|t| seeds(t.0)))
}

/// The seed part of the variance of a difference of means of `kn` and `kb`
/// seeds, for a quantity of one-run variance `var`.
fn seed_variance(var: f64, kn: f64, kb: f64) -> f64 {
    var * (1.0 / kn + 1.0 / kb)
}

/// Compares the front of `new` with that of `baseline` under one cost (both
/// are points tables; replicates are pooled by strategy and target). The
/// statistical rule needs `noise`; the fixed one ignores it.
pub fn compare(
    new: &[PointRecord],
    baseline: &[PointRecord],
    cost: Cost,
    rule: Rule,
    noise: Option<Noise>,
) -> Result<Comparison, CheckError> {
    let rule = rule.validate()?;
    let (new, baseline) = (summarize(new), summarize(baseline));
    let reference = match (reference_cost(&new, cost), reference_cost(&baseline, cost)) {
        (Some(a), Some(b)) => a.max(b),
        (Some(r), None) | (None, Some(r)) => r,
        (None, None) => return Err(CheckError::NoReference(cost)),
    };
    let baseline_front = front(&baseline, cost);
    let twins: Vec<(&Summary, &Summary)> = baseline_front
        .iter()
        .filter_map(|b| {
            new.iter()
                .find(|n| n.strategy == b.strategy && (n.target - b.target).abs() < 1e-9)
                .map(|n| (*b, n))
        })
        .collect();
    // Above accuracy 0: the gate's false-alarm and detection rates were
    // calibrated on that area.
    let hv = hypervolume(&new, (reference, 0.0), cost);
    let baseline_hv = hypervolume(&baseline, (reference, 0.0), cost);
    let judge = match (rule, noise) {
        (Rule::Fixed { tolerance }, _) => Judge::Fixed { tolerance },
        (Rule::Statistical { .. }, None) => return Err(CheckError::NoNoise),
        (
            Rule::Statistical {
                alpha,
                cost_tolerance,
            },
            Some(noise),
        ) => Judge::Statistical {
            alpha,
            cost_tolerance,
            noise,
            front_points: baseline_front.len(),
        },
    };
    let points = baseline_front
        .iter()
        .map(|b| judge.reach(b, &new, cost))
        .collect();
    let hypervolume_floor = match rule {
        Rule::Fixed { tolerance } => Some((1.0 - tolerance) * baseline_hv.mean),
        Rule::Statistical { .. } => None,
    };
    Ok(Comparison {
        cost,
        rule,
        paired: noise.is_some_and(|n| n.paired),
        profile_seeds: match rule {
            Rule::Fixed { .. } => Vec::new(),
            Rule::Statistical { .. } => noise.map(|n| n.profile.seeds.clone()).unwrap_or_default(),
        },
        reference_cost: reference,
        hypervolume: hv,
        baseline_hypervolume: baseline_hv,
        hypervolume_floor,
        points,
        accuracy_shift: judge.accuracy_shift(&twins),
        cost_shift: judge.cost_shift(&twins, cost),
    })
}

/// The thresholds of one rule.
enum Judge<'a> {
    Fixed {
        tolerance: f64,
    },
    Statistical {
        alpha: f64,
        cost_tolerance: f64,
        noise: Noise<'a>,
        /// Points of the baseline front (the reach rule's Bonferroni count).
        front_points: usize,
    },
}

impl Judge<'_> {
    /// Rule 2 for one baseline front point.
    fn reach(&self, b: &Summary, new: &[Summary], cost: Cost) -> PointCheck {
        let cost_bound = self.cost_bound(b, cost);
        let best = new
            .iter()
            .filter(|n| cost.of(n) <= cost_bound)
            .map(|n| {
                let difference = n.accuracy.mean - b.accuracy.mean;
                (n, difference, self.allowed_loss(n, b))
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

    /// The reach rule's quantile at `df` degrees of freedom.
    fn reach_quantile(alpha: f64, front_points: usize, df: f64) -> f64 {
        t_quantile(1.0 - SHARES[1] * alpha / front_points.max(1) as f64, df)
    }

    fn cost_bound(&self, b: &Summary, cost: Cost) -> f64 {
        match (self, cost) {
            (Judge::Fixed { tolerance }, _) => cost.of(b) * (1.0 + tolerance),
            (Judge::Statistical { cost_tolerance, .. }, Cost::Latency) => {
                cost.of(b) * (1.0 + cost_tolerance)
            }
            (Judge::Statistical { .. }, Cost::Rotations) if b.strategy.is_dense() => cost.of(b),
            (
                Judge::Statistical {
                    alpha,
                    noise,
                    front_points,
                    ..
                },
                Cost::Rotations,
            ) => {
                let r = &noise.profile.rotations;
                let sd = seed_variance(r.point_variance(), 1.0, seeds(b)).sqrt();
                let q = Self::reach_quantile(*alpha, *front_points, r.point_df());
                cost.of(b) * (q * sd).exp()
            }
        }
    }

    /// The most negative accuracy difference `n - b` that is still noise.
    fn allowed_loss(&self, n: &Summary, b: &Summary) -> f64 {
        match self {
            Judge::Fixed { tolerance } => -tolerance,
            Judge::Statistical {
                alpha,
                noise,
                front_points,
                ..
            } => {
                let a = &noise.profile.accuracy;
                let var = seed_variance(a.point_variance(), seeds(n), seeds(b))
                    + sampling_variance(n, b, noise.paired);
                -Self::reach_quantile(*alpha, *front_points, a.point_df()) * var.sqrt()
            }
        }
    }

    /// Rule 1.
    fn accuracy_shift(&self, twins: &[(&Summary, &Summary)]) -> Shift {
        let rows: Vec<(Summary, f64, f64)> = twins
            .iter()
            .map(|(b, n)| ((*b).clone(), b.accuracy.mean, n.accuracy.mean))
            .collect();
        let k = rows.len().max(1);
        let mean_change = rows.iter().map(|(_, b, n)| n - b).sum::<f64>() / k as f64;
        let allowed = match self {
            Judge::Fixed { tolerance } => -tolerance,
            Judge::Statistical { alpha, noise, .. } => {
                let a = &noise.profile.accuracy;
                let (kn, kb) = fewest_seeds(twins);
                let sampling = twins
                    .iter()
                    .map(|(b, n)| sampling_variance(n, b, noise.paired))
                    .sum::<f64>()
                    / (k * k) as f64;
                let var = seed_variance(a.mean_variance(k), kn, kb) + sampling;
                -t_quantile(1.0 - SHARES[0] * alpha, a.mean_df(k)) * var.sqrt()
            }
        };
        Shift {
            twins: rows,
            mean_change,
            allowed,
            dense_rises: Vec::new(),
        }
    }

    /// Rule 3: the geometric mean cost change of the pruned twins, and any
    /// dense rise.
    fn cost_shift(&self, twins: &[(&Summary, &Summary)], cost: Cost) -> Shift {
        let valued: Vec<(Summary, f64, f64)> = twins
            .iter()
            .map(|(b, n)| ((*b).clone(), cost.of(b), cost.of(n)))
            .filter(|(_, b, n)| *b > 0.0 && n.is_finite())
            .collect();
        let statistical_rotations =
            matches!(self, Judge::Statistical { .. }) && cost == Cost::Rotations;
        let (dense, pruned): (Vec<_>, Vec<_>) = valued
            .into_iter()
            .partition(|(s, _, _)| statistical_rotations && s.strategy.is_dense());
        let k = pruned.len().max(1);
        let mean_log = pruned.iter().map(|(_, b, n)| (n / b).ln()).sum::<f64>() / k as f64;
        let allowed = match (self, cost) {
            (Judge::Fixed { tolerance }, _) => *tolerance,
            (Judge::Statistical { cost_tolerance, .. }, Cost::Latency) => {
                cost_tolerance / (k as f64).sqrt()
            }
            (Judge::Statistical { alpha, noise, .. }, Cost::Rotations) => {
                let r = &noise.profile.rotations;
                let (kn, kb) = fewest_seeds(twins);
                let var = seed_variance(r.mean_variance(k), kn, kb);
                let q = t_quantile(1.0 - SHARES[2] * alpha, r.mean_df(k));
                (q * var.sqrt()).exp() - 1.0
            }
        };
        Shift {
            dense_rises: dense.into_iter().filter(|(_, b, n)| n > b).collect(),
            twins: pruned,
            mean_change: mean_log.exp() - 1.0,
            allowed,
        }
    }
}

/// The per-point table `explore check` prints: every baseline front point,
/// its best match, the accuracy difference and what was allowed, and the cost
/// against its bound; then the front-wide rules.
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write as _;
    let pct = |x: f64| format!("{:.2}", 100.0 * x);
    let est = |e: &Estimate| format!("{} ± {}", pct(e.mean), pct(e.se));
    let mut out = String::new();
    let cost = c.cost;
    let ok = |b: bool| if b { "ok" } else { "REGRESSED" };
    let _ = writeln!(
        out,
        "cost {cost}, reference {} (the larger dense cost); {}",
        cost.format(c.reference_cost),
        match c.rule {
            Rule::Statistical { alpha, .. } => format!(
                "calibrated on the training noise of seeds {:?}, false-alarm rate at most {:.0}%; accuracy differences {}",
                c.profile_seeds,
                100.0 * alpha,
                if c.paired {
                    "paired on the same test images"
                } else {
                    "unpaired (no per-image outcomes of one test set): binomial errors added"
                }
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
            row.push(ok(p.passed()).to_string());
            row
        })
        .collect();
    out += &crate::table::markdown(&header, &rows);
    let a = &c.accuracy_shift;
    let _ = writeln!(
        out,
        "accuracy of the {} baseline front points measured again: mean change {:+.2} points (allowed >= {:+.2}): {}",
        a.twins.len(),
        100.0 * a.mean_change,
        100.0 * a.allowed,
        ok(a.accuracy_passed())
    );
    let shift = &c.cost_shift;
    let _ = writeln!(
        out,
        "{cost} of the {} pruned baseline front points measured again: mean change {:+.2}% (allowed {:+.2}%){}: {}",
        shift.twins.len(),
        100.0 * shift.mean_change,
        100.0 * shift.allowed,
        if shift.dense_rises.is_empty() {
            String::new()
        } else {
            format!(
                "; dense {cost} rose ({}), which no training noise does",
                shift
                    .dense_rises
                    .iter()
                    .map(|(b, x, y)| format!(
                        "{}: {} -> {}",
                        b.label(),
                        cost.format(*x),
                        cost.format(*y)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        ok(shift.cost_passed())
    );
    if !shift.cost_passed() {
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
        "hypervolume: new {:.4} ± {:.4}, baseline {:.4} ± {:.4} (normalized){}",
        normalized(c.hypervolume.mean),
        normalized(c.hypervolume.se),
        normalized(c.baseline_hypervolume.mean),
        normalized(c.baseline_hypervolume.se),
        match c.hypervolume_floor {
            Some(f) => format!(
                "; new must be >= {:.4}: {}",
                normalized(f),
                ok(c.hypervolume_ok())
            ),
            None => " (reported; the rules above decide)".to_string(),
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;
    use crate::seed_noise::Components;
    use explore_spec::Strategy;

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

    /// Seed noise of 1 point in common and 1 per point, 1 % per point in
    /// rotations, from 5 seeds.
    fn profile() -> NoiseProfile {
        NoiseProfile {
            seeds: vec![0, 1, 2, 3, 4],
            test_images: 1000,
            accuracy: Components {
                common_sd: 0.01,
                common_df: 4.0,
                point_sd: 0.01,
                point_df: 16.0,
            },
            rotations: Components {
                common_sd: 0.002,
                common_df: 4.0,
                point_sd: 0.01,
                point_df: 8.0,
            },
            points: Vec::new(),
        }
    }

    fn check(new: &[PointRecord], baseline: &[PointRecord], paired: bool) -> Comparison {
        let p = profile();
        compare(
            new,
            baseline,
            Cost::Rotations,
            Rule::default(),
            Some(Noise {
                profile: &p,
                paired,
            }),
        )
        .unwrap()
    }

    #[test]
    fn a_front_passes_against_itself() {
        let points = sweep();
        let c = check(&points, &points, true);
        assert!(c.passed(), "{}", render(&c));
        assert_eq!(c.hypervolume, c.baseline_hypervolume);
        assert!(c.hypervolume.mean > 0.0);
        assert_eq!(c.points.len(), 4, "dense and the three diagonal points");
    }

    #[test]
    fn a_reseed_within_the_measured_noise_passes() {
        let baseline = sweep();
        let mut new = sweep();
        // One common SD down and the point noise spread around it; pruned
        // rotations up by about one point SD each, some down.
        for (i, p) in new.iter_mut().enumerate() {
            p.seed = 7;
            p.accuracy_quantized -= 0.01 + [0.01, -0.01, 0.005, -0.005, 0.0][i];
            if p.strategy != Strategy::Dense {
                p.rotations = (p.rotations as f64 * [1.0, 1.01, 0.99, 1.01, 1.0][i]) as u64;
            }
        }
        let c = check(&new, &baseline, true);
        assert!(c.passed(), "{}", render(&c));
    }

    #[test]
    fn a_uniform_drop_fails_the_accuracy_shift() {
        let baseline = sweep();
        let mut new = sweep();
        for p in &mut new {
            p.accuracy_quantized -= 0.045;
        }
        let c = check(&new, &baseline, true);
        assert!(!c.accuracy_shift.accuracy_passed(), "{}", render(&c));
        assert!(!c.passed());
        assert_eq!(
            c.regressions(),
            ["diagonal 0.9", "diagonal 0.8", "diagonal 0.5", "dense"],
            "{}",
            render(&c)
        );
        let text = render(&c);
        assert!(
            text.contains("REGRESSED") && text.contains("mean change -4.50"),
            "{text}"
        );
    }

    #[test]
    fn one_collapsed_point_fails_the_reach_and_is_named() {
        let baseline = sweep();
        let mut new = sweep();
        new[2].accuracy_quantized -= 0.15;
        let c = check(&new, &baseline, true);
        assert!(!c.passed());
        assert_eq!(c.regressions(), ["diagonal 0.8"], "{}", render(&c));
    }

    #[test]
    fn five_percent_more_rotations_at_the_same_accuracy_fails() {
        let baseline = sweep();
        let mut new = sweep();
        for p in new.iter_mut().filter(|p| p.strategy != Strategy::Dense) {
            p.rotations = (p.rotations as f64 * 1.05).round() as u64;
        }
        let c = check(&new, &baseline, true);
        assert!(!c.cost_shift.cost_passed(), "{}", render(&c));
        assert!(
            (c.cost_shift.mean_change - 0.05).abs() < 0.002,
            "{}",
            render(&c)
        );
        assert!(render(&c).contains("(+5.0%)"), "{}", render(&c));
        // A dense count that rises at all is a cost-model change.
        let mut new = sweep();
        new[0].rotations += 1;
        new[0].rotations_dense += 1;
        let c = check(&new, &baseline, true);
        assert!(!c.passed());
        assert!(
            render(&c).contains("which no training noise does"),
            "{}",
            render(&c)
        );
        assert_eq!(c.regressions(), ["dense"]);
    }

    #[test]
    fn unpaired_tables_add_the_test_sets_binomial_error() {
        let baseline = sweep();
        let paired = check(&baseline, &baseline, true);
        let unpaired = check(&baseline, &baseline, false);
        for (p, u) in paired.points.iter().zip(&unpaired.points) {
            assert!(u.allowed < p.allowed, "{} vs {}", u.allowed, p.allowed);
        }
        assert!(unpaired.accuracy_shift.allowed < paired.accuracy_shift.allowed);
        assert!(render(&unpaired).contains("binomial errors added"));
    }

    #[test]
    fn more_seeds_in_the_new_run_tighten_the_bounds() {
        let baseline = sweep();
        let one = check(&baseline, &baseline, true);
        let mut three = Vec::new();
        for seed in 0..3 {
            three.extend(sweep().into_iter().map(|mut p| {
                p.seed = seed;
                p
            }));
        }
        let c = check(&three, &baseline, true);
        assert!(c.accuracy_shift.allowed > one.accuracy_shift.allowed);
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
        let c = check(&new, &baseline, true);
        assert!(!c.passed());
        assert!(c.regressions().len() >= 3, "{}", render(&c));
    }

    #[test]
    fn the_fixed_tolerance_override_keeps_the_old_rule() {
        let baseline = sweep();
        let mut new = sweep();
        new[2].accuracy_quantized -= 0.005;
        new[2].rotations += 2;
        let fixed = Rule::Fixed { tolerance: 0.01 };
        let run =
            |new: &[PointRecord]| compare(new, &baseline, Cost::Rotations, fixed, None).unwrap();
        assert!(run(&new).passed(), "{}", render(&run(&new)));
        new[2].accuracy_quantized -= 0.01;
        assert!(!run(&new).passed());
        assert!(run(&new).hypervolume_floor.is_some());
    }

    #[test]
    fn bad_rules_and_missing_references_name_the_fix() {
        let points: Vec<_> = sweep().into_iter().skip(1).collect();
        let p = profile();
        let noise = Some(Noise {
            profile: &p,
            paired: true,
        });
        let e = compare(&points, &points, Cost::Latency, Rule::default(), noise)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dense") && e.contains("--cost rotations"), "{e}");
        let e = compare(
            &points,
            &points,
            Cost::Rotations,
            Rule::Fixed { tolerance: 1.5 },
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tolerance 1.5"), "{e}");
        let e = compare(
            &points,
            &points,
            Cost::Rotations,
            Rule::Statistical {
                alpha: 0.7,
                cost_tolerance: 0.03,
            },
            noise,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--alpha 0.7"), "{e}");
        let e = compare(&points, &points, Cost::Rotations, Rule::default(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("noise profile") && e.contains("--tolerance"),
            "{e}"
        );
    }

    #[test]
    fn the_reference_is_the_larger_dense_cost() {
        let baseline = sweep();
        let mut new = sweep();
        for p in &mut new {
            p.rotations_dense = 2000;
        }
        let c = check(&new, &baseline, true);
        assert_eq!(c.reference_cost, 2000.0);
    }
}
