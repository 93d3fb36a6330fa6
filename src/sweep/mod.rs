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

use explore_data::DataError;
use explore_he::HeError;
use explore_quant::QuantError;
use explore_results::plot::PlotError;
use explore_results::points::{self, PointRecord, PointsError};
use explore_results::report::ReportError;
use explore_spec::SpecError;
use explore_spec::Strategy;
use explore_spec::atomic::WriteError;
use explore_train::checkpoint::CheckpointError;
use explore_train::prune::PruneError;
use explore_train::train::TrainError;

pub use explore_spec::{PointKey, Shard, point_keys};
pub use merge::{Merged, merge};
pub use outputs::write_outputs;
pub use stages::{PointResult, TrainedPoint, TrainedSummary, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Config(#[from] SpecError),
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
    Outcomes(#[from] explore_results::outcomes::OutcomesError),
    #[error(transparent)]
    Noise(#[from] explore_results::seed_noise::NoiseError),
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
    Infer(#[from] explore_he::infer::InferError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Report(#[from] ReportError),
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
        .filter(|k| !done.iter().any(|r| *k == r.key()))
        .collect();

    let bars = explore_data::progress::bars();
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
                // The same weights measured already: a dense point under
                // another schedule (a schedule added to a finished sweep),
                // or a shared twin at another target, which under the same
                // schedule is measured once.
                let reported = done
                    .iter()
                    .filter(|r| ws.same_weights(key, r.key()))
                    .min_by_key(|r| r.schedule != key.schedule);
                let result = ws.measure_point(
                    &trained,
                    &key.scheduler(&ws.spec),
                    &mut ctx,
                    &measured,
                    reported,
                )?;
                points::append(&points_path, &result.record)?;
                // The point directory's per-layer rows are the spec's
                // schedule's, whatever other schedules measured it.
                if key.schedule == ws.spec.he.schedule {
                    outputs::write_layer_costs(&ws.store, &result)?;
                }
                done.push(result.record);
                overall.inc(1);
            }
        }
    }
    current.finish_and_clear();
    overall.finish();
    // A shard's table is one part of a front: `explore merge` draws it.
    if shard.is_none() {
        write_outputs(&ws.store, spec_yaml, &done, &ws.spec.report)?;
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
