//! The sweep runner: trains the dense model of every seed, then runs every
//! `(strategy, target, seed)` point (regularize, prune, fine-tune, evaluate,
//! quantize, count, run on real ciphertexts) and appends each finished point
//! to `points.csv` atomically, so a killed run resumes where it stopped.
//!
//! [`store`] owns the output directory (an output directory belongs to one
//! spec: the settings that shape results are locked on first use, and a
//! later run with different settings is refused instead of mixing
//! incomparable points); [`stages`] computes a point's stages; [`outputs`]
//! writes fronts, plots and the report.

mod merge;
mod outputs;
mod stages;
pub mod store;

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::atomic::WriteError;
use crate::checkpoint::CheckpointError;
use crate::config::{ConfigError, Spec};
use crate::data::DataError;
use crate::he::{HeError, Schedule, Scheduler};
use crate::plot::PlotError;
use crate::points::{self, PointRecord, PointsError};
use crate::prune::PruneError;
use crate::prune::Strategy;
use crate::quant::QuantError;
use crate::report::ReportError;
use crate::train::TrainError;

pub use merge::{Merged, merge};
pub use outputs::write_outputs;
pub use stages::{PointResult, TrainedPoint, TrainedSummary, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error(transparent)]
    He(#[from] HeError),
    #[error(transparent)]
    HeModel(#[from] explore_he_model::Error),
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(transparent)]
    Outcomes(#[from] crate::outcomes::OutcomesError),
    #[error(transparent)]
    Noise(#[from] crate::noise::NoiseError),
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{dir} holds results of a different spec (`{field}` differs from {lock}): use another --output, or delete the directory to start over"
    )]
    SpecChanged {
        dir: PathBuf,
        lock: PathBuf,
        field: String,
    },
    #[error("{dir} holds no sweep (no spec.lock.json): pass directories `explore sweep` wrote to")]
    NotASweep { dir: PathBuf },
    #[error(
        "{dir} holds results of a different spec than {first} (`{field}` differs): merge only shards of one spec"
    )]
    MergeMismatch {
        dir: PathBuf,
        first: PathBuf,
        field: String,
    },
    #[error(
        "point {point} ({schedule}) differs between {a} and {b}: keep one of the two tables (they were run separately) and merge again"
    )]
    MergeConflict {
        point: String,
        schedule: &'static str,
        a: PathBuf,
        b: PathBuf,
    },
    #[error(transparent)]
    Infer(#[from] crate::infer::InferError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// One point of a sweep: what was trained (strategy, target, seed) and the
/// HE schedule it was measured under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointKey {
    pub strategy: Strategy,
    pub target: f64,
    pub seed: u64,
    pub schedule: Schedule,
}

impl PointKey {
    /// The point a row of `points.csv` measured.
    pub fn of(r: &PointRecord) -> PointKey {
        PointKey {
            strategy: r.strategy,
            target: r.target,
            seed: r.seed,
            schedule: r.schedule,
        }
    }
    pub(crate) fn matches(&self, r: &PointRecord) -> bool {
        *self == PointKey::of(r)
    }
    /// The trained model's directory name: one per strategy, target and
    /// seed, whatever schedule measures it.
    pub(crate) fn dir_name(&self) -> String {
        points::point_dir_name(self.strategy, self.target, self.seed)
    }

    /// The scheduler that measures this point under `spec`.
    pub fn scheduler(&self, spec: &Spec) -> Scheduler {
        spec.scheduler().with_schedule(self.schedule)
    }
}

impl std::fmt::Display for PointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} seed {} ({} schedule)",
            self.strategy, self.target, self.seed, self.schedule
        )
    }
}

/// Every point of the spec, the dense model of each seed first (under the
/// spec's schedule, and under Gazelle's as the paper's reference when the
/// spec's is another). A seed is a replicate of the whole pipeline: its own
/// dense training, regularization and fine-tuning.
pub fn point_keys(spec: &Spec) -> Vec<PointKey> {
    let schedule = spec.he.schedule;
    let key = |strategy, target, seed, schedule| PointKey {
        strategy,
        target,
        seed,
        schedule,
    };
    let mut keys = Vec::new();
    for &seed in &spec.prune.seeds {
        keys.push(key(Strategy::Dense, 0.0, seed, schedule));
        if schedule != Schedule::Gazelle {
            keys.push(key(Strategy::Dense, 0.0, seed, Schedule::Gazelle));
        }
    }
    // Every pruned strategy, then the budget-matched dense control, whose
    // twins share the targets' step budgets.
    let mut strategies: Vec<Strategy> = spec
        .prune
        .strategies
        .iter()
        .copied()
        .filter(|s| !s.is_dense())
        .collect();
    if !strategies.is_empty() {
        strategies.push(Strategy::DenseMatched);
    }
    for strategy in strategies {
        // Ascending, so a gradual trajectory finds its previous point done.
        let mut targets = spec.prune.targets.clone();
        targets.sort_by(f64::total_cmp);
        for &target in &targets {
            for &seed in &spec.prune.seeds {
                keys.push(key(strategy, target, seed, schedule));
            }
        }
    }
    keys
}

/// Runs (or resumes) a whole sweep and writes points.csv, front.csv, plots
/// and report.md into the workspace directory.
pub fn run(
    ws: &Workspace,
    spec_yaml: &str,
    shard: Option<Shard>,
) -> Result<Vec<PointRecord>, SweepError> {
    store::write_text(&ws.store.spec_yaml(), spec_yaml)?;
    let points_path = ws.store.points_csv_of(shard);
    let mut done = if points_path.exists() {
        points::read(&points_path)?
    } else {
        Vec::new()
    };
    let keys: Vec<PointKey> = point_keys(&ws.spec)
        .into_iter()
        .filter(|k| shard.is_none_or(|s| s.owns(k)))
        .collect();
    let todo: Vec<PointKey> = keys
        .iter()
        .copied()
        .filter(|k| !done.iter().any(|r| k.matches(r)))
        .collect();

    let bars = crate::progress::bars();
    // Two steps per point: train, then measure under encryption.
    let overall = bars.add(ProgressBar::new(2 * todo.len() as u64));
    overall.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps (train, then encrypt, per point), {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    overall.set_prefix(format!(
        "{}: {} of {} points to run",
        ws.spec.name,
        todo.len(),
        keys.len()
    ));
    let current = bars.add(ProgressBar::new_spinner());
    current.enable_steady_tick(std::time::Duration::from_millis(200));

    if !todo.is_empty() {
        current.set_message("measuring HE primitives");
        let mut ctx = ws.he_context()?;
        let measured = ctx.measure_primitives(5)?;
        // Seed by seed (each a replicate from its own dense model), each
        // point trains on every core through its data-parallel replicas,
        // then runs under encryption alone, and lands in points.csv before
        // the next starts: a failure or a kill loses at most the point in
        // progress, and a resume reuses whatever stage finished.
        let mut seeds: Vec<u64> = todo.iter().map(|k| k.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        for seed in seeds {
            current.set_message(format!("dense model, seed {seed}"));
            let (dense, dense_summary) = ws.dense(seed)?;
            for &key in todo.iter().filter(|k| k.seed == seed) {
                current.set_message(format!("{}: training", key.dir_name()));
                let trained = match ws.train_point(&dense, &dense_summary, key, &current) {
                    // A target a strategy cannot reach is no result: say so
                    // and go on (a resume tries it again, cheaply: selection
                    // fails before any training).
                    Err(SweepError::Prune(e @ PruneError::Unreachable { .. })) => {
                        overall.inc(2);
                        bars.suspend(|| eprintln!("skipped: {e}"));
                        continue;
                    }
                    other => other?,
                };
                overall.inc(1);
                current.set_message(format!("{}: encrypted inference", key.dir_name()));
                let result =
                    ws.measure_point(&trained, &key.scheduler(&ws.spec), &mut ctx, &measured)?;
                points::append(&points_path, &result.record)?;
                outputs::write_layer_costs(&ws.store, &result)?;
                done.push(result.record);
                overall.inc(1);
            }
        }
    }
    current.finish_and_clear();
    overall.finish();
    // A shard's table is one part of a front: `explore merge` draws it.
    if shard.is_none() {
        write_outputs(&ws.store, spec_yaml, &done, ws.spec.report.margin)?;
    }
    Ok(done)
}

/// The stage every shard shares: each seed's dense model and each
/// strategy's regularized model (one plain one for all that take no
/// penalty), trained once into the output directory
/// (a shard that finds them there loads them).
pub fn run_shared(ws: &Workspace) -> Result<(), SweepError> {
    for &seed in &ws.spec.prune.seeds {
        let (dense, _) = ws.dense(seed)?;
        let strategies = ws.spec.prune.strategies.iter().copied();
        for strategy in strategies.chain([Strategy::DenseMatched]) {
            ws.regularized(&dense, &ws.pruner(strategy)?, seed)?;
        }
    }
    Ok(())
}

/// One of `count` disjoint shares of a sweep's points; `index` counts from
/// 1. A strategy's trajectory for one seed (every target: gradual pruning
/// walks them in order) stays in one shard, chosen by the strategy's place
/// in [`Strategy::ALL`] plus the seed, modulo `count`: adding targets or
/// seeds moves no point to another shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn owns(&self, key: &PointKey) -> bool {
        let strategy = Strategy::ALL
            .iter()
            .position(|s| *s == key.strategy)
            .expect("a listed strategy") as u64;
        strategy.wrapping_add(key.seed) % self.count + 1 == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not a shard i/n with 1 <= i <= n: use e.g. 1/3 (the first of three)")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if count == 0 || !(1..=count).contains(&index) {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(targets: &str, seeds: &str) -> Spec {
        let text = format!(
            "name: t
data: {{dataset: fashion-mnist}}
model: {{arch: resnet20, width: 0.25}}
train: {{epochs: 1, lr: 0.1}}
prune: {{targets: {targets}, seeds: {seeds}}}
"
        );
        Spec::parse(&text, Path::new("t.yaml")).unwrap()
    }

    fn owner(key: &PointKey, n: u64) -> Vec<u64> {
        (1..=n)
            .filter(|&i| Shard { index: i, count: n }.owns(key))
            .collect()
    }

    #[test]
    fn every_point_is_in_exactly_one_shard_and_stays_there() {
        let small = point_keys(&spec("[0.5, 0.8]", "[0, 1]"));
        let large = point_keys(&spec("[0.5, 0.7, 0.8, 0.9]", "[0, 1, 2]"));
        for n in [1, 2, 3, 5] {
            for k in &large {
                assert_eq!(owner(k, n).len(), 1, "{k} in {n} shards");
            }
            // Adding targets and seeds moves no point.
            for k in &small {
                assert_eq!(owner(k, n), owner(k, n), "{k}");
                let same = large.iter().find(|l| *l == k).unwrap();
                assert_eq!(owner(k, n), owner(same, n));
            }
        }
        // A trajectory (one strategy and seed, every target) is never split.
        for k in &large {
            let first = PointKey { target: 0.5, ..*k };
            assert_eq!(owner(k, 3), owner(&first, 3));
        }
        // Seven strategies over three shards: three, two and two trajectories.
        let per: Vec<usize> = (1..=3)
            .map(|i| {
                Strategy::ALL
                    .iter()
                    .filter(|&&s| {
                        Shard { index: i, count: 3 }.owns(&PointKey {
                            strategy: s,
                            target: 0.5,
                            seed: 0,
                            schedule: Schedule::Best,
                        })
                    })
                    .count()
            })
            .collect();
        assert_eq!(per, [3, 2, 2]);
    }

    #[test]
    fn shards_parse_and_bad_ones_name_the_form() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/2", "0/0", "0/3", "1", "a/b", "1/0"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(bad) && e.contains("1 <= i <= n"), "{e}");
        }
    }
}
