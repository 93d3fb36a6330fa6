//! Training noise of a sweep, measured over its seeds: the noise profile a
//! baseline front carries (`noise.json` beside `front.csv`), so that
//! `explore check` can tell a regression from a reseed, which is what
//! another CPU is. The one home of that file's format and of how the noise
//! is estimated.
//!
//! Seed noise has two parts, and the gate needs both: a **common** part that
//! moves every point of one run together (a weaker dense model lowers every
//! point trained from it) and a **point** part that moves each point on its
//! own. They are estimated with a two-way analysis of variance over the
//! points and the seeds that measured all of them: the residual variance is
//! the point part, the variance of the per-seed means over the points, less
//! its point share, the common part. Accuracies are the integer model's on
//! the test images; rotations are taken on the log scale (relative noise)
//! over the pruned points only, since dense counts do not depend on training.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::pareto::{front_accuracy, primary_schedule};
use crate::points::PointRecord;
use explore_spec::Strategy;
use explore_spec::atomic::{self, WriteError};
use explore_stats as stats;

/// The file name beside a baseline's `front.csv`.
pub const FILE: &str = "noise.json";

/// The fewest seeds a profile is measured from.
pub const MIN_SEEDS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {message}: regenerate the baseline with `explore sweep` (prune.seeds with at least {MIN_SEEDS} seeds writes noise.json beside front.csv)"
    )]
    Malformed { path: PathBuf, message: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The two parts of one quantity's seed-to-seed standard deviation, each
/// with the degrees of freedom of its estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Components {
    /// Moves every point of a run together.
    pub common_sd: f64,
    pub common_df: f64,
    /// Moves each point on its own.
    pub point_sd: f64,
    pub point_df: f64,
}

impl Components {
    /// The variance of one point of one run.
    pub fn point_variance(&self) -> f64 {
        self.common_sd.powi(2) + self.point_sd.powi(2)
    }

    /// The variance of the mean over `k` points of one run.
    pub fn mean_variance(&self, k: usize) -> f64 {
        self.common_sd.powi(2) + self.point_sd.powi(2) / k.max(1) as f64
    }

    /// Degrees of freedom of the variance of the mean over `k` points.
    pub fn mean_df(&self, k: usize) -> f64 {
        stats::satterthwaite(&[
            (self.common_sd.powi(2), self.common_df),
            (self.point_sd.powi(2) / k.max(1) as f64, self.point_df),
        ])
    }

    /// Degrees of freedom of the variance of one point.
    pub fn point_df(&self) -> f64 {
        stats::satterthwaite(&[
            (self.common_sd.powi(2), self.common_df),
            (self.point_sd.powi(2), self.point_df),
        ])
    }

    fn check(&self, what: &str) -> Result<(), String> {
        for (name, v) in [("common_sd", self.common_sd), ("point_sd", self.point_sd)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{what}.{name} {v} is not a standard deviation"));
            }
        }
        for (name, v) in [("common_df", self.common_df), ("point_df", self.point_df)] {
            if !(v > 0.0) {
                return Err(format!("{what}.{name} {v} is not a positive count"));
            }
        }
        Ok(())
    }
}

/// One point's spread over the profile's seeds, for the reader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointNoise {
    pub strategy: Strategy,
    pub target: f64,
    pub accuracy_mean: f64,
    pub accuracy_sd: f64,
    pub rotations_mean: f64,
    pub rotations_sd: f64,
}

/// A sweep's measured training noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseProfile {
    /// The seeds behind every estimate.
    pub seeds: Vec<u64>,
    pub test_images: u64,
    /// Of the integer model's test accuracy (a fraction).
    pub accuracy: Components,
    /// Of ln(rotations), pruned points.
    pub rotations: Components,
    pub points: Vec<PointNoise>,
}

impl NoiseProfile {
    /// Measures the profile of a points table over the seeds that measured
    /// every one of its points (under its primary schedule); `None` with
    /// fewer than [`MIN_SEEDS`] such seeds or fewer than two points.
    pub fn measure(points: &[PointRecord]) -> Option<NoiseProfile> {
        let primary = primary_schedule(points)?;
        let rows: Vec<&PointRecord> = points.iter().filter(|p| p.schedule == primary).collect();
        let mut keys: Vec<(Strategy, f64)> = Vec::new();
        for r in &rows {
            if !keys
                .iter()
                .any(|k| k.0 == r.strategy && (k.1 - r.target).abs() < 1e-9)
            {
                keys.push((r.strategy, r.target));
            }
        }
        let at = |k: &(Strategy, f64), seed: u64| {
            rows.iter()
                .find(|r| r.strategy == k.0 && (r.target - k.1).abs() < 1e-9 && r.seed == seed)
        };
        let mut seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        // Points some seed did not measure (a strategy run with one seed)
        // do not enter: the decomposition needs every point at every seed.
        keys.retain(|k| seeds.iter().all(|&s| at(k, s).is_some()));
        if seeds.len() < MIN_SEEDS || keys.len() < 2 {
            return None;
        }
        let table = |keys: &[(Strategy, f64)], f: &dyn Fn(&PointRecord) -> f64| -> Vec<Vec<f64>> {
            keys.iter()
                .map(|k| seeds.iter().map(|&s| f(at(k, s).expect("kept"))).collect())
                .collect()
        };
        let accuracy = components(&table(&keys, &front_accuracy))?;
        let pruned: Vec<(Strategy, f64)> =
            keys.iter().copied().filter(|k| !k.0.is_dense()).collect();
        let rotations = if pruned.len() >= 2 {
            components(&table(&pruned, &|r| (r.rotations.max(1) as f64).ln()))?
        } else {
            Components {
                common_sd: 0.0,
                common_df: 1.0,
                point_sd: 0.0,
                point_df: 1.0,
            }
        };
        let points = keys
            .iter()
            .map(|k| {
                let acc: Vec<f64> = seeds
                    .iter()
                    .map(|&s| front_accuracy(at(k, s).expect("kept")))
                    .collect();
                let rot: Vec<f64> = seeds
                    .iter()
                    .map(|&s| at(k, s).expect("kept").rotations as f64)
                    .collect();
                PointNoise {
                    strategy: k.0,
                    target: k.1,
                    accuracy_mean: stats::mean(&acc).expect("seeds"),
                    accuracy_sd: stats::sample_sd(&acc),
                    rotations_mean: stats::mean(&rot).expect("seeds"),
                    rotations_sd: stats::sample_sd(&rot),
                }
            })
            .collect();
        Some(NoiseProfile {
            test_images: rows.iter().map(|r| r.test_images).min().unwrap_or(0),
            seeds,
            accuracy,
            rotations,
            points,
        })
    }

    /// The profile beside a baseline table (`noise.json` in its directory).
    pub fn beside(baseline: &Path) -> PathBuf {
        baseline
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(FILE)
    }

    pub fn write(&self, path: &Path) -> Result<(), NoiseError> {
        let bytes = serde_json::to_vec_pretty(self).expect("a profile serializes");
        Ok(atomic::write(path, &bytes)?)
    }

    /// Reads and checks a profile; `None` when the file does not exist.
    pub fn read(path: &Path) -> Result<Option<NoiseProfile>, NoiseError> {
        let Some(bytes) = atomic::read_optional(path).map_err(|source| NoiseError::Io {
            path: path.to_path_buf(),
            source,
        })?
        else {
            return Ok(None);
        };
        let malformed = |message: String| NoiseError::Malformed {
            path: path.to_path_buf(),
            message,
        };
        let p: NoiseProfile =
            serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
        if p.seeds.len() < MIN_SEEDS {
            return Err(malformed(format!(
                "measured from {} seeds, fewer than {MIN_SEEDS}",
                p.seeds.len()
            )));
        }
        p.accuracy.check("accuracy").map_err(malformed)?;
        p.rotations.check("rotations").map_err(malformed)?;
        Ok(Some(p))
    }
}

/// The two-way decomposition of `values[point][seed]`; `None` for fewer
/// than two points or seeds.
fn components(values: &[Vec<f64>]) -> Option<Components> {
    let k = values.len();
    let s = values.first()?.len();
    if k < 2 || s < 2 {
        return None;
    }
    let grand = values.iter().flatten().sum::<f64>() / (k * s) as f64;
    let point_mean: Vec<f64> = values
        .iter()
        .map(|row| row.iter().sum::<f64>() / s as f64)
        .collect();
    let seed_mean: Vec<f64> = (0..s)
        .map(|j| values.iter().map(|row| row[j]).sum::<f64>() / k as f64)
        .collect();
    let residual: f64 = values
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            let (pm, sm) = (&point_mean, &seed_mean);
            row.iter()
                .enumerate()
                .map(move |(j, v)| (v - pm[i] - sm[j] + grand).powi(2))
        })
        .sum();
    let point_df = ((k - 1) * (s - 1)) as f64;
    let point_var = residual / point_df;
    let seed_var = stats::sample_sd(&seed_mean).powi(2);
    let common_var = (seed_var - point_var / k as f64).max(0.0);
    Some(Components {
        common_sd: common_var.sqrt(),
        common_df: (s - 1) as f64,
        point_sd: point_var.sqrt(),
        point_df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::tests::record;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr_free::normal;

    /// Normal deviates without another dependency (Box-Muller).
    mod rand_distr_free {
        use rand::Rng;
        pub fn normal(rng: &mut impl Rng) -> f64 {
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    #[test]
    fn the_decomposition_recovers_common_and_point_noise() {
        let mut rng = StdRng::seed_from_u64(5);
        let (common, point) = (0.02, 0.01);
        let (k, s) = (12, 40);
        let base: Vec<f64> = (0..k).map(|i| 0.6 + 0.02 * i as f64).collect();
        let shifts: Vec<f64> = (0..s).map(|_| common * normal(&mut rng)).collect();
        let values: Vec<Vec<f64>> = base
            .iter()
            .map(|b| {
                shifts
                    .iter()
                    .map(|c| b + c + point * normal(&mut rng))
                    .collect()
            })
            .collect();
        let c = components(&values).unwrap();
        assert!((c.point_sd - point).abs() < 0.1 * point, "{c:?}");
        assert!((c.common_sd - common).abs() < 0.3 * common, "{c:?}");
        assert_eq!((c.common_df, c.point_df), (39.0, 11.0 * 39.0));
    }

    #[test]
    fn a_table_with_three_seeds_has_a_profile_that_round_trips() {
        let mut rows = Vec::new();
        for seed in 0..3u64 {
            let shift = [0.0, -0.02, 0.01][seed as usize];
            for (s, t, a, r) in [
                (Strategy::Dense, 0.0, 0.90, 1000),
                (Strategy::Diagonal, 0.5, 0.88, 600 + 10 * seed),
                (Strategy::Diagonal, 0.8, 0.80, 300 - 5 * seed),
                (Strategy::Hybrid, 0.8, 0.82, 320),
            ] {
                let mut p = record(s, t, a + shift + 0.003 * seed as f64 * t, r);
                p.seed = seed;
                rows.push(p);
            }
        }
        // A point only one seed measured does not enter.
        let mut extra = record(Strategy::Channel, 0.5, 0.5, 900);
        extra.seed = 1;
        rows.push(extra);
        let p = NoiseProfile::measure(&rows).unwrap();
        assert_eq!(p.seeds, [0, 1, 2]);
        assert_eq!(p.points.len(), 4);
        assert!(p.accuracy.common_sd > 0.01, "{p:?}");
        assert!(p.rotations.point_sd > 0.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        p.write(&path).unwrap();
        assert_eq!(NoiseProfile::read(&path).unwrap(), Some(p));
        assert_eq!(
            NoiseProfile::read(&dir.path().join("absent")).unwrap(),
            None
        );
        // Two seeds are no profile.
        let two: Vec<PointRecord> = rows.iter().filter(|r| r.seed < 2).cloned().collect();
        assert_eq!(NoiseProfile::measure(&two), None);
    }

    #[test]
    fn malformed_profiles_name_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, "{\"seeds\": [0]}").unwrap();
        let e = NoiseProfile::read(&path).unwrap_err().to_string();
        assert!(
            e.contains("noise.json") && e.contains("explore sweep"),
            "{e}"
        );
        let ok = Components {
            common_sd: 0.01,
            common_df: 2.0,
            point_sd: 0.01,
            point_df: 10.0,
        };
        let mut p = NoiseProfile {
            seeds: vec![0, 1],
            test_images: 100,
            accuracy: ok,
            rotations: ok,
            points: vec![],
        };
        p.write(&path).unwrap();
        let e = NoiseProfile::read(&path).unwrap_err().to_string();
        assert!(e.contains("2 seeds"), "{e}");
        p.seeds.push(2);
        p.accuracy.point_sd = f64::NAN;
        // NaN is written as null, which is no number.
        p.write(&path).unwrap();
        assert!(NoiseProfile::read(&path).is_err());
    }
}
