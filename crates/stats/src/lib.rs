//! Measurement error of the numbers a sweep reports: the binomial standard
//! error of an accuracy measured on a finite test set, the seed-to-seed
//! spread of replicates, and the standard error of a difference between two
//! such estimates. Pure functions; `pareto` and `check` decide with them.

/// Standard errors a difference may reach before it counts as more than
/// noise: the default of `explore check` and of the report's verdicts.
pub const DEFAULT_Z: f64 = 2.0;

/// An estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub se: f64,
}

impl Estimate {
    /// The standard error of `self - other` for independent estimates.
    pub fn se_of_difference(&self, other: &Estimate) -> f64 {
        self.se.hypot(other.se)
    }
}

/// Mean of the values; `None` when there are none.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (n - 1 in the denominator); 0 for fewer than
/// two values, where no spread can be estimated.
pub fn sample_sd(values: &[f64]) -> f64 {
    let Some(m) = mean(values) else { return 0.0 };
    if values.len() < 2 {
        return 0.0;
    }
    let ss: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Binomial standard error of an accuracy `p` (a fraction) measured on
/// `n` test images: sqrt(p (1 - p) / n). Infinite for an empty test set.
pub fn binomial_se(p: f64, n: u64) -> f64 {
    if n == 0 {
        return f64::INFINITY;
    }
    let p = p.clamp(0.0, 1.0);
    (p * (1.0 - p) / n as f64).sqrt()
}

/// The accuracy of a group of replicates (one per seed, each measured on
/// `test_images` images): their mean, with a standard error that adds the
/// binomial error of one test set to the seed-to-seed error of the mean,
/// sqrt(p(1-p)/n + s^2/k).
///
/// The replicates share one test set, so its sampling error does not average
/// out over seeds and is counted once. With one seed the seed term is
/// unknown and the binomial term stands in for training noise as well.
pub fn accuracy_estimate(accuracies: &[f64], test_images: u64) -> Option<Estimate> {
    let m = mean(accuracies)?;
    let k = accuracies.len() as f64;
    let seed_var = sample_sd(accuracies).powi(2) / k;
    Some(Estimate {
        mean: m,
        se: (binomial_se(m, test_images).powi(2) + seed_var).sqrt(),
    })
}

/// A cost (rotations, latency) over replicates: mean and the standard error
/// of the mean from the seed-to-seed spread (0 with one seed).
pub fn cost_estimate(costs: &[f64]) -> Option<Estimate> {
    let m = mean(costs)?;
    Some(Estimate {
        mean: m,
        se: sample_sd(costs) / (costs.len() as f64).sqrt(),
    })
}

/// A paired difference `a - b` between two models measured on the same
/// images (one pair per seed), with its standard error split into its two
/// sources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Mean over seeds of each seed's difference in accuracy.
    pub mean: f64,
    pub se: f64,
    /// The images part: the variance over images of the per-image
    /// difference (averaged over seeds) over the number of images, the
    /// McNemar variance for one seed. It holds the image-by-seed interaction
    /// too, which is why the seed part leaves it out.
    pub within_se: f64,
    /// The standard deviation of the seed effect alone: the variance of the
    /// per-seed differences less their interaction share (0 when that
    /// unbiased estimate is negative; `se` keeps the negative value). `None`
    /// with one seed, where it cannot be measured (and `se` holds the
    /// images part alone).
    pub between_sd: Option<f64>,
    pub seeds: usize,
    pub images: usize,
    /// Degrees of freedom of `se` (Welch-Satterthwaite): small when the
    /// seed part, measured from few seeds, dominates.
    pub df: f64,
}

impl Paired {
    pub fn estimate(&self) -> Estimate {
        Estimate {
            mean: self.mean,
            se: self.se,
        }
    }

    /// The two-sided `level` confidence interval (t quantile at `df`).
    pub fn interval(&self, level: f64) -> (f64, f64) {
        let q = t_quantile(0.5 + level / 2.0, self.df);
        (self.mean - q * self.se, self.mean + q * self.se)
    }

    /// The equivalence verdict at `margin` (a fraction): two one-sided
    /// tests at 5 % each, i.e. whether the 90 % interval lies inside
    /// (-margin, margin); else `Worse` when the 95 % interval (the one the
    /// report prints) lies below 0 (`Better` above), else `Inconclusive`.
    pub fn verdict(&self, margin: f64) -> Verdict {
        let (lo, hi) = self.interval(0.90);
        let (lo95, hi95) = self.interval(0.95);
        if lo > -margin && hi < margin {
            Verdict::Equivalent
        } else if hi95 < 0.0 {
            Verdict::Worse
        } else if lo95 > 0.0 {
            Verdict::Better
        } else {
            Verdict::Inconclusive
        }
    }

    /// The power of [`Paired::verdict`]'s equivalence test at `margin`: the
    /// chance that a design with this standard error and these degrees of
    /// freedom calls a truly equal pair (true difference 0) equivalent.
    /// Each one-sided test rejects when the mean lies more than
    /// `t(0.95, df) se` inside its bound, so with the mean distributed as
    /// `se` times a t variable the chance is `2 T(margin / se - q) - 1`,
    /// floored at 0. This treats `se` as known, the usual approximation.
    pub fn tost_power(&self, margin: f64) -> f64 {
        tost_power(margin, self.se, self.df)
    }
}

/// The power of two one-sided tests at 5 % each with bounds `±margin`, for
/// a true difference of 0 estimated with standard error `se` on `df`
/// degrees of freedom (see [`Paired::tost_power`]).
pub fn tost_power(margin: f64, se: f64, df: f64) -> f64 {
    if se <= 0.0 {
        return 1.0;
    }
    let q = t_quantile(0.95, df);
    (2.0 * t_cdf(margin / se - q, df) - 1.0).max(0.0)
}

/// What a paired comparison with a margin supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Both one-sided tests reject a difference of the margin or more.
    Equivalent,
    /// Significantly below the control, and not equivalent.
    Worse,
    /// Significantly above the control, and not equivalent.
    Better,
    /// Neither: the interval is too wide to say.
    Inconclusive,
}

impl Verdict {
    /// How a report reads it, with the margin in points.
    pub fn phrase(self, margin: f64) -> String {
        match self {
            Verdict::Equivalent => format!("equivalent within ±{:.2}", 100.0 * margin),
            Verdict::Worse => "worse".into(),
            Verdict::Better => "better".into(),
            Verdict::Inconclusive => "inconclusive".into(),
        }
    }
}

/// The paired difference `a - b` over seeds, from per-image correctness:
/// `pairs[s]` are the two models of seed `s` on the same images.
///
/// Images and seeds are crossed: the difference on image `i` under seed
/// `s` is `mu + image_i + seed_s + interaction_is`, and the variance of the
/// overall mean is `var(image) / n + var(seed) / k + var(interaction) / nk`.
/// The sample variance of the per-image means (over `n`) estimates the
/// first and the last term; the sample variance of the per-seed means (over
/// `k`) estimates the second and, again, the last. Adding the two would
/// count the interaction twice, so the seed part subtracts the interaction
/// mean square (the two-way residual, `(n - 1)(k - 1)` degrees of freedom)
/// once. The result is unbiased.
/// The test set is shared, so the images part does not shrink with seeds.
/// `None` without pairs or images, or when pairs differ in length.
pub fn paired_difference(pairs: &[(&[bool], &[bool])]) -> Option<Paired> {
    let n = pairs.first()?.0.len();
    if n < 2 || pairs.iter().any(|(a, b)| a.len() != n || b.len() != n) {
        return None;
    }
    let k = pairs.len();
    let cell = |s: usize, i: usize| pairs[s].0[i] as i64 as f64 - pairs[s].1[i] as i64 as f64;
    let per_seed: Vec<f64> = (0..k)
        .map(|s| (0..n).map(|i| cell(s, i)).sum::<f64>() / n as f64)
        .collect();
    let mean = mean(&per_seed)?;
    // Per image, the difference averaged over seeds.
    let per_image: Vec<f64> = (0..n)
        .map(|i| (0..k).map(|s| cell(s, i)).sum::<f64>() / k as f64)
        .collect();
    let within = sample_sd(&per_image).powi(2) / n as f64;
    if k < 2 {
        return Some(Paired {
            mean,
            se: within.sqrt(),
            within_se: within.sqrt(),
            between_sd: None,
            seeds: k,
            images: n,
            df: (n - 1) as f64,
        });
    }
    let seed_means_var = sample_sd(&per_seed).powi(2);
    let residual_df = ((n - 1) * (k - 1)) as f64;
    let interaction = (0..k)
        .flat_map(|s| (0..n).map(move |i| (s, i)))
        .map(|(s, i)| (cell(s, i) - per_image[i] - per_seed[s] + mean).powi(2))
        .sum::<f64>()
        / residual_df;
    let seed_var = seed_means_var - interaction / n as f64;
    let between = seed_var / k as f64;
    // Unbiased, so the seed part may come out negative when the seed effect
    // is small: truncating it at 0 would bias the variance upward (by 17 %
    // in a simulation like the test's with a seed effect of 0.15).
    // Only a total that is not positive, which needs a negative seed part
    // larger than the images part, falls back to the images part alone.
    let (between, df) = if within + between > 0.0 {
        let df = satterthwaite(&[
            (within, (n - 1) as f64),
            (seed_means_var / k as f64, (k - 1) as f64),
            (-interaction / (n * k) as f64, residual_df),
        ]);
        (between, df)
    } else {
        (0.0, (n - 1) as f64)
    };
    Some(Paired {
        mean,
        se: (within + between).sqrt(),
        within_se: within.sqrt(),
        between_sd: Some(seed_var.max(0.0).sqrt()),
        seeds: k,
        images: n,
        df,
    })
}

/// Welch-Satterthwaite degrees of freedom of a linear combination of mean
/// squares, each term given as its signed contribution with its own degrees
/// of freedom (a term subtracted, like an interaction, enters negative);
/// infinite for a zero sum.
pub fn satterthwaite(parts: &[(f64, f64)]) -> f64 {
    let total: f64 = parts.iter().map(|p| p.0).sum();
    let denom: f64 = parts.iter().map(|(v, df)| v * v / df).sum();
    if denom > 0.0 {
        total * total / denom
    } else {
        f64::INFINITY
    }
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit,
/// relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Student's t distribution function with `df` degrees of freedom (the
/// normal one for infinite `df`), through the regularized incomplete beta
/// function.
pub fn t_cdf(x: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e7 {
        return normal_cdf(x);
    }
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + x * x));
    if x >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom, by
/// bisection on [`t_cdf`] (to 1e-10).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "quantile {p} outside (0, 1)");
    let (mut lo, mut hi) = (-1e4, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-10 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The standard normal `p` quantile.
pub fn normal_quantile(p: f64) -> f64 {
    t_quantile(p, f64::INFINITY)
}

/// The regularized incomplete beta function I_x(a, b) (Numerical Recipes'
/// continued fraction).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_and_normal_quantiles_match_the_tables() {
        // Textbook values: z 0.975 = 1.959964, t(0.975; 2) = 4.302653,
        // t(0.975; 10) = 2.228139, t(0.95; 4) = 2.131847, t(0.995; 1) = 63.65674.
        for (p, df, want) in [
            (0.975, f64::INFINITY, 1.959_964),
            (0.95, f64::INFINITY, 1.644_854),
            (0.975, 2.0, 4.302_653),
            (0.975, 10.0, 2.228_139),
            (0.95, 4.0, 2.131_847),
            (0.995, 1.0, 63.656_74),
        ] {
            let got = t_quantile(p, df);
            assert!(
                (got - want).abs() < 2e-5 * want.abs().max(1.0),
                "{p} {df}: {got}"
            );
        }
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((t_cdf(-2.228_139, 10.0) - 0.025).abs() < 1e-6);
    }

    #[test]
    fn one_seed_gives_the_mcnemar_variance() {
        // 1000 images: both right on 780, only a on 40, only b on 10.
        let n = 1000;
        let a: Vec<bool> = (0..n).map(|i| i < 820).collect();
        let b: Vec<bool> = (0..n).map(|i| i < 780 || (820..830).contains(&i)).collect();
        let (only_a, only_b) = (40.0, 10.0);
        let p = paired_difference(&[(&a, &b)]).unwrap();
        let d = (only_a - only_b) / n as f64;
        assert!((p.mean - d).abs() < 1e-12);
        // Var of the mean of per-image differences in {-1, 0, 1}, n - 1 form.
        let var = ((only_a + only_b) / n as f64 - d * d) * n as f64 / (n - 1) as f64 / n as f64;
        assert!((p.se - var.sqrt()).abs() < 1e-12, "{p:?}");
        assert_eq!(p.between_sd, None);
        assert_eq!((p.seeds, p.images), (1, 1000));
        // Far smaller than the unpaired error of two 80 % accuracies.
        assert!(p.se < 0.5 * binomial_se(0.8, 1000) * 2f64.sqrt());
    }

    #[test]
    fn seeds_add_their_spread_to_the_images_part() {
        let n = 500;
        let b: Vec<bool> = (0..n).map(|i| i % 5 != 0).collect();
        // Seed differences of +2, 0 and -1 points (10, 0 and -5 images).
        let shift = |k: i64| -> Vec<bool> {
            (0..n)
                .map(|i| {
                    let base = i % 5 != 0;
                    if k > 0 && i % 5 == 0 && (i / 5) < k as usize {
                        true
                    } else if k < 0 && i % 5 == 1 && (i / 5) < (-k) as usize {
                        false
                    } else {
                        base
                    }
                })
                .collect()
        };
        let (a1, a2, a3) = (shift(10), shift(0), shift(-5));
        let p = paired_difference(&[(&a1, &b), (&a2, &b), (&a3, &b)]).unwrap();
        let per_seed = [0.02, 0.0, -0.01];
        assert!((p.mean - mean(&per_seed).unwrap()).abs() < 1e-12);
        // The two-way ANOVA form of the same estimate:
        // var = (MS_images + MS_seeds - MS_residual) / nk.
        let cells: Vec<Vec<f64>> = [&a1, &a2, &a3]
            .iter()
            .map(|a| {
                (0..n)
                    .map(|i| a[i] as i32 as f64 - b[i] as i32 as f64)
                    .collect()
            })
            .collect();
        let (nf, kf) = (n as f64, 3.0);
        let grand = cells.iter().flatten().sum::<f64>() / (nf * kf);
        let img: Vec<f64> = (0..n)
            .map(|i| cells.iter().map(|c| c[i]).sum::<f64>() / kf)
            .collect();
        let ss_img: f64 = img.iter().map(|m| kf * (m - grand).powi(2)).sum();
        let ss_seed: f64 = per_seed.iter().map(|m| nf * (m - grand).powi(2)).sum();
        let ss_total: f64 = cells.iter().flatten().map(|x| (x - grand).powi(2)).sum();
        let ms_img = ss_img / (nf - 1.0);
        let ms_seed = ss_seed / (kf - 1.0);
        let ms_res = (ss_total - ss_img - ss_seed) / ((nf - 1.0) * (kf - 1.0));
        let want = (ms_img + ms_seed - ms_res) / (nf * kf);
        assert!(
            (p.se.powi(2) - want).abs() < 1e-15,
            "{} {want}",
            p.se.powi(2)
        );
        let seed_var = (ms_seed - ms_res) / nf;
        assert!((p.between_sd.unwrap() - seed_var.sqrt()).abs() < 1e-12);
        // Less than the old sum, which counted the interaction twice.
        let sd = sample_sd(&per_seed);
        assert!(p.se < (p.within_se.powi(2) + sd * sd / 3.0).sqrt());
        // Dominated by 3 seeds: few degrees of freedom, a wide interval.
        assert!(p.df < 4.0, "{p:?}");
        let (lo, hi) = p.interval(0.95);
        assert!(hi - lo > 2.0 * 1.96 * p.se, "{lo} {hi}");
    }

    /// A deterministic generator for the simulation (splitmix64).
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform().max(1e-300), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    #[test]
    fn variance_is_unbiased_for_images_crossed_with_seeds() {
        // Known components: each image has a difficulty, each seed shifts
        // model a, and every (image, seed) cell draws its own noise. Fresh
        // images and seeds per replication; the empirical variance of the
        // mean difference over replications is the truth the estimate's
        // average must meet.
        for (seed_effect, old_excess) in [(0.4, 0.1), (0.1, 0.15)] {
            check_unbiased(seed_effect, old_excess);
        }
    }

    fn check_unbiased(seed_effect: f64, old_excess: f64) {
        let (n, k, reps) = (150, 3, 20000);
        let mut rng = Rng(7);
        let (mut means, mut vars, mut old_vars) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let difficulty: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let seeds: Vec<(Vec<bool>, Vec<bool>)> = (0..k)
                .map(|_| {
                    let shift = seed_effect * rng.normal();
                    let mut a = Vec::with_capacity(n);
                    let mut b = Vec::with_capacity(n);
                    for d in &difficulty {
                        a.push(d + shift + 0.8 * rng.normal() > -0.8);
                        b.push(d + 0.8 * rng.normal() > -0.8);
                    }
                    (a, b)
                })
                .collect();
            let pairs: Vec<(&[bool], &[bool])> =
                seeds.iter().map(|(a, b)| (&a[..], &b[..])).collect();
            let p = paired_difference(&pairs).unwrap();
            means.push(p.mean);
            vars.push(p.se * p.se);
            let sd = sample_sd(
                &seeds
                    .iter()
                    .map(|(a, b)| {
                        a.iter()
                            .zip(b)
                            .map(|(&x, &y)| x as i32 - y as i32)
                            .sum::<i32>() as f64
                            / n as f64
                    })
                    .collect::<Vec<_>>(),
            );
            old_vars.push(p.within_se.powi(2) + sd * sd / k as f64);
        }
        let truth = sample_sd(&means).powi(2);
        let ratio = mean(&vars).unwrap() / truth;
        let old_ratio = mean(&old_vars).unwrap() / truth;
        // 20000 replications: the truth itself is known to about 1 %.
        assert!((ratio - 1.0).abs() < 0.05, "estimate/truth {ratio}");
        // The sum of the two marginal parts counts the interaction twice.
        assert!(
            old_ratio > ratio + old_excess,
            "old {old_ratio} new {ratio}"
        );
    }

    #[test]
    fn tost_power_grows_with_the_margin_over_the_error() {
        // se 0.2 points, margin 0.5, large df: 2 Phi(2.5 - 1.645) - 1.
        let p = tost_power(0.005, 0.002, f64::INFINITY);
        assert!(
            (p - (2.0 * normal_cdf(2.5 - 1.644_854) - 1.0)).abs() < 1e-6,
            "{p}"
        );
        assert!((p - 0.608).abs() < 0.01, "{p}");
        // An error as wide as the margin can never call equivalence.
        assert_eq!(tost_power(0.005, 0.005, 30.0), 0.0);
        assert!(tost_power(0.005, 0.001, 30.0) > 0.99);
    }

    #[test]
    fn verdicts_follow_two_one_sided_tests() {
        let at = |mean: f64, se: f64| Paired {
            mean,
            se,
            within_se: se,
            between_sd: None,
            seeds: 1,
            images: 10_000,
            df: f64::INFINITY,
        };
        let m = 0.005;
        assert_eq!(at(-0.001, 0.002).verdict(m), Verdict::Equivalent);
        // -0.3 points with a tight interval: a real loss, but inside ±0.5.
        assert_eq!(at(-0.003, 0.0005).verdict(m), Verdict::Equivalent);
        assert_eq!(at(-0.02, 0.002).verdict(m), Verdict::Worse);
        assert_eq!(at(0.02, 0.002).verdict(m), Verdict::Better);
        assert_eq!(at(-0.001, 0.01).verdict(m), Verdict::Inconclusive);
        assert_eq!(Verdict::Equivalent.phrase(m), "equivalent within ±0.50");
    }

    #[test]
    fn binomial_error_of_eighty_percent_on_a_thousand_images() {
        // sqrt(0.8 * 0.2 / 1000) = 0.012649...
        assert!((binomial_se(0.8, 1000) - 0.012_649_110_640_673_518).abs() < 1e-15);
        assert_eq!(binomial_se(1.0, 10), 0.0);
        assert!(binomial_se(0.5, 0).is_infinite());
    }

    #[test]
    fn sample_sd_uses_n_minus_one() {
        // Values 1, 2, 3, 4: mean 2.5, squared deviations 5, n - 1 = 3.
        assert!((sample_sd(&[1.0, 2.0, 3.0, 4.0]) - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(sample_sd(&[7.0]), 0.0);
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn replicates_add_their_spread_to_the_test_set_error() {
        let one = accuracy_estimate(&[0.8], 1000).unwrap();
        assert_eq!(one.mean, 0.8);
        assert_eq!(one.se, binomial_se(0.8, 1000));
        // Seeds at 0.78 and 0.82: mean 0.80, s = 0.02828, s^2/k = 0.0004.
        let two = accuracy_estimate(&[0.78, 0.82], 1000).unwrap();
        let expected = (binomial_se(0.8, 1000).powi(2) + 0.0004).sqrt();
        assert!((two.se - expected).abs() < 1e-12, "{two:?}");
        // Identical seeds add nothing.
        let same = accuracy_estimate(&[0.8, 0.8, 0.8], 1000).unwrap();
        assert!((same.se - one.se).abs() < 1e-15);
    }

    #[test]
    fn differences_add_errors_in_quadrature() {
        let a = Estimate {
            mean: 0.8,
            se: 0.03,
        };
        let b = Estimate {
            mean: 0.7,
            se: 0.04,
        };
        assert!((a.se_of_difference(&b) - 0.05).abs() < 1e-15);
        let c = cost_estimate(&[100.0, 104.0]).unwrap();
        assert_eq!(c.mean, 102.0);
        // s = 2.828, / sqrt(2) = 2.
        assert!((c.se - 2.0).abs() < 1e-12);
    }
}
