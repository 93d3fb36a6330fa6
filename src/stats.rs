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

#[cfg(test)]
mod tests {
    use super::*;

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
