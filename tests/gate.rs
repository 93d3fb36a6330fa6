//! Monte Carlo tests of the regression gate on the quick spec's measured
//! training noise (the committed reports/quick/noise.json, from several
//! seeds). Each trial draws a whole baseline of as many seeds as the profile
//! was measured from, measures its noise profile the way a sweep does (so
//! the profile's own estimation error is part of the test), then draws one
//! fresh run, as CI makes on another machine, and asks `check` for a
//! verdict. The rates it prints are the README's.
//!
//! Noise model, as the profile measures it: every point of a run moves by
//! one common draw plus its own draw, in accuracy and in ln(rotations);
//! dense counts do not move; accuracies land on whole test images.

use std::path::Path;

use explore_results::gate::{self, Noise, Rule};
use explore_results::pareto::{self, Cost, Summary};
use explore_results::points::{self, PointRecord};
use explore_results::seed_noise::NoiseProfile;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

const TRIALS: usize = 2000;

/// The committed baseline: its front's points (means over seeds) and the
/// noise profile measured with it.
fn baseline() -> (Vec<PointRecord>, NoiseProfile) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/quick");
    let rows = points::read(&dir.join("front.csv")).unwrap();
    let profile = NoiseProfile::read(&dir.join("noise.json"))
        .unwrap()
        .expect("reports/quick/noise.json is committed with the baseline");
    // One row per point of the primary schedule, at its mean.
    let summaries = pareto::summarize(&rows);
    let truth = summaries
        .iter()
        .map(|s| {
            let mut r = rows
                .iter()
                .find(|r| s.holds(r) && r.schedule == s.schedule)
                .unwrap()
                .clone();
            r.accuracy_quantized = s.accuracy.mean;
            r.rotations = s.rotations.mean.round() as u64;
            r
        })
        .collect();
    (truth, profile)
}

/// What a regression does to a run.
#[derive(Clone, Copy)]
enum Change {
    None,
    /// Every point loses this much accuracy (a fraction).
    Drop(f64),
    /// Every pruned point (`false`) or every point (`true`) costs this
    /// factor more rotations.
    Rotations(f64, bool),
}

impl Change {
    /// The regression applied to one point of a run.
    fn apply(self, r: &mut PointRecord) {
        match self {
            Change::None => {}
            Change::Drop(d) => r.accuracy_quantized -= d,
            Change::Rotations(f, all) => {
                if all || !r.strategy.is_dense() {
                    r.rotations = (r.rotations as f64 * f).round() as u64;
                    if all {
                        r.rotations_dense = (r.rotations_dense as f64 * f).round() as u64;
                    }
                }
            }
        }
    }
}

/// Whether `check` fails `new` against `base`, calibrated on `profile` and
/// paired (every run here is on the same test images).
fn fails(new: &[PointRecord], base: &[PointRecord], profile: &NoiseProfile) -> bool {
    let c = gate::compare(
        new,
        base,
        Cost::Rotations,
        Rule::default(),
        Some(Noise {
            profile,
            paired: true,
        }),
    )
    .unwrap();
    !c.passed()
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

/// One run of `seed` drawn around the truth.
fn draw(
    truth: &[PointRecord],
    p: &NoiseProfile,
    seed: u64,
    change: Change,
    rng: &mut StdRng,
) -> Vec<PointRecord> {
    let (ca, cr) = (
        p.accuracy.common_sd * normal(rng),
        p.rotations.common_sd * normal(rng),
    );
    truth
        .iter()
        .map(|t| {
            let mut r = t.clone();
            r.seed = seed;
            let n = r.test_images as f64;
            let a = t.accuracy_quantized + ca + p.accuracy.point_sd * normal(rng);
            if !t.strategy.is_dense() {
                let noise = cr + p.rotations.point_sd * normal(rng);
                r.rotations = ((t.rotations as f64) * noise.exp()).round().max(1.0) as u64;
            }
            r.accuracy_quantized = a;
            change.apply(&mut r);
            r.accuracy_quantized = ((r.accuracy_quantized * n).round() / n).clamp(0.0, 1.0);
            r
        })
        .collect()
}

/// The fraction of trials in which `check` fails a fresh one-seed run.
fn failure_rate(change: Change, trials: usize, rng_seed: u64) -> f64 {
    let (truth, profile) = baseline();
    let k = profile.seeds.len() as u64;
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut failures = 0;
    for _ in 0..trials {
        let base: Vec<PointRecord> = (0..k)
            .flat_map(|s| draw(&truth, &profile, s, Change::None, &mut rng))
            .collect();
        let measured = NoiseProfile::measure(&base).expect("a profile from the drawn seeds");
        let new = draw(&truth, &profile, 100, change, &mut rng);
        failures += usize::from(fails(&new, &base, &measured));
    }
    failures as f64 / trials as f64
}

#[test]
fn an_unchanged_front_reseeded_fails_at_most_five_percent_of_the_time() {
    let rate = failure_rate(Change::None, TRIALS, 1);
    eprintln!(
        "false alarms on an unchanged front, one fresh seed: {:.1}%",
        100.0 * rate
    );
    assert!(rate <= 0.05, "false-alarm rate {rate}");
}

#[test]
fn five_percent_more_rotations_everywhere_fails_at_least_95_percent_of_the_time() {
    let everywhere = failure_rate(Change::Rotations(1.05, true), TRIALS, 3);
    // On the pruned points alone, +5 % is within one run's rotation noise
    // (the profile's per-point SD is larger than 5 % on this spec): printed,
    // for the README, not required.
    let pruned = failure_rate(Change::Rotations(1.05, false), TRIALS / 4, 2);
    eprintln!(
        "power against +5% rotations: {:.1}% everywhere (dense included), {:.1}% on the pruned points alone",
        100.0 * everywhere,
        100.0 * pruned
    );
    assert!(everywhere >= 0.95, "power {everywhere}");
}

/// A uniform drop moves every point the way a weaker dense model does, so
/// one fresh seed can only tell it from training noise once it is larger
/// than that noise allows. On the quick spec (16 dense epochs, 6 epochs of
/// rewound recovery per target, a 10-seed baseline) the pruned points track
/// their dense model closely: the part of the noise common to a run is 0.65
/// points and the per-point part 0.90, and one fresh seed carries all of the
/// common part, so a 2-point drop is caught about half the time and 80 %
/// power lies at 3 points (8 recovery epochs: 0.73 and 0.87, 49 % at 2
/// points, 80 % at 3). (The recipe before, 2 fine-tuning epochs along a trajectory,
/// left the points noisier but less tied to dense: common 0.35, per point
/// 1.19, 68 % at 2 points, 80 % at 2.5.) The test measures where
/// the power lies and holds it within 3 points, and the 2-point rate at 45 %
/// or more, so a change that makes the gate blinder fails.
#[test]
fn a_uniform_accuracy_drop_is_caught_once_it_exceeds_the_common_noise() {
    let at_two = failure_rate(Change::Drop(0.02), TRIALS, 4);
    // The smallest drop, in steps of half a point, caught 80 % of the time.
    let detected = (1..=30)
        .map(|half_points| half_points as f64 * 0.005)
        .find(|&d| failure_rate(Change::Drop(d), TRIALS / 4, 5) >= 0.8)
        .expect("a 15-point drop is caught");
    let profile = baseline().1;
    eprintln!(
        "power against a uniform 2-point drop: {:.1}%; 80% power at a {:.1}-point drop (common seed SD {:.2} points, point SD {:.2}, from {} seeds)",
        100.0 * at_two,
        100.0 * detected,
        100.0 * profile.accuracy.common_sd,
        100.0 * profile.accuracy.point_sd,
        profile.seeds.len()
    );
    assert!(
        at_two >= 0.45,
        "a 2-point drop caught only {at_two} of the time"
    );
    assert!(detected <= 0.03, "80% power only at a {detected} drop");
}

/// The Monte Carlo noise model is the profile's: a run drawn from it and
/// measured back gives the profile's standard deviations.
#[test]
fn the_drawn_noise_is_the_measured_noise() {
    let (truth, profile) = baseline();
    let mut rng = StdRng::seed_from_u64(6);
    let runs: Vec<PointRecord> = (0..200)
        .flat_map(|s| draw(&truth, &profile, s, Change::None, &mut rng))
        .collect();
    let m = NoiseProfile::measure(&runs).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 0.15 * b + 0.001;
    assert!(
        close(m.accuracy.point_sd, profile.accuracy.point_sd),
        "{m:?}"
    );
    assert!(
        close(m.accuracy.common_sd, profile.accuracy.common_sd),
        "{m:?}"
    );
    let summaries: Vec<Summary> = pareto::summarize(&runs);
    assert_eq!(summaries.len(), truth.len());
}

/// Verdicts on real reseeds, not drawn ones: each seed of the committed
/// baseline (reports/quick/points.csv, every seed's points) is checked, as
/// a fresh run, against a baseline made of the other seeds, with that
/// baseline's own measured profile, paired as `check` pairs them there. It
/// tests the noise model itself: points trained from one dense model may
/// move together in ways the profile's common-plus-point split does not
/// capture, and a model that missed them would show more false alarms
/// here than the Monte Carlo's. Returns how many seeds failed unchanged,
/// with every accuracy 2 and 3 points lower, and with 5 % more rotations
/// on every point (dense included).
fn leave_one_seed_out() -> (usize, usize, [usize; 2], usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/quick");
    let rows = points::read(&dir.join("points.csv")).unwrap();
    let mut seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let (mut unchanged, mut dropped, mut costlier) = (0, [0, 0], 0);
    for &s in &seeds {
        let (new, base): (Vec<PointRecord>, Vec<PointRecord>) =
            rows.iter().cloned().partition(|r| r.seed == s);
        let profile = NoiseProfile::measure(&base).expect("a profile from the other seeds");
        let changed = |change: Change| -> Vec<PointRecord> {
            new.iter()
                .cloned()
                .map(|mut r| {
                    change.apply(&mut r);
                    r
                })
                .collect()
        };
        let verdict = |change| usize::from(fails(&changed(change), &base, &profile));
        unchanged += verdict(Change::None);
        dropped[0] += verdict(Change::Drop(0.02));
        dropped[1] += verdict(Change::Drop(0.03));
        costlier += verdict(Change::Rotations(1.05, true));
    }
    (seeds.len(), unchanged, dropped, costlier)
}

#[test]
fn real_reseeds_of_the_baseline_pass_and_real_shifts_fail() {
    let (seeds, unchanged, dropped, costlier) = leave_one_seed_out();
    eprintln!(
        "leave one seed out, {seeds} seeds: {unchanged} unchanged fail, {} fail 2 points lower, {} 3 points lower, {costlier} fail with 5% more rotations",
        dropped[0], dropped[1]
    );
    // At a 5 % false-alarm rate, 3 or more failures of 10 unchanged seeds
    // happen 1 % of the time; at 80 % power, fewer than 6 catches 3 %. The
    // Monte Carlo puts 80 % power at a 3-point drop
    // (`a_uniform_accuracy_drop_is_caught_once_it_exceeds_the_common_noise`)
    // and about half at 2 points, where 10 real reseeds vary too much to
    // test (at 50 % power, fewer than 6 catches of 10 happen 62 % of the
    // time); they are printed.
    assert!(seeds >= 10, "the baseline has {seeds} seeds");
    assert!(unchanged <= 2, "{unchanged} of {seeds} real reseeds fail");
    assert!(
        dropped[1] * 10 >= 6 * seeds,
        "a 3-point drop caught on {} of {seeds}",
        dropped[1]
    );
    assert_eq!(costlier, seeds, "+5 % rotations passed on some seed");
}
