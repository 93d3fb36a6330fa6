//! The sweep runner: trains the dense model once, then runs every
//! `(strategy, target, seed)` point (regularize, prune, fine-tune, evaluate,
//! quantize, count, run on real ciphertexts) and appends each finished point
//! to `points.csv` atomically, so a killed run resumes where it stopped.
//!
//! An output directory belongs to one spec: the settings that shape results
//! are stored in `spec.lock.json` on first use, and a later run with different
//! settings is refused instead of mixing incomparable points.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::arch::{FoldedNet, NetSpec};
use crate::config::PrimitiveCosts;
use crate::config::{
    ConfigError, DataSpec, HeSpec, ModelSpec, PruneSpec, Spec, Strategy, TrainConfig,
};
use crate::data::{self, DataError, Dataset, Split};
use crate::he::{self, HeContext, HeCost, HeError, HeParams};
use crate::model::{ModelError, ResNet};
use crate::pareto::{self, Cost};
use crate::plot::{self, PlotError};
use crate::points::{self, PointRecord, PointsError};
use crate::prune::{MaskHook, PruneError, Pruner};
use crate::quant::{QuantError, QuantizedNet};
use crate::report::{self, ReportError};
use crate::train::{self, DenseSummary, NoHook, TrainError};

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error(transparent)]
    He(#[from] HeError),
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(
        "layer {layer}: the executor ran {executed} but the cost model counts {modeled}: the executor and the cost model disagree"
    )]
    CountMismatch {
        layer: String,
        executed: String,
        modeled: String,
    },
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
        field: &'static str,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The settings that shape a sweep's results. Strategies, targets and seeds
/// are left out: adding points to a finished sweep is what resuming is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SpecLock {
    data: DataSpec,
    model: ModelSpec,
    train: TrainConfig,
    regularization: Option<crate::config::RegularizationSpec>,
    finetune: Option<TrainConfig>,
    target_metric: crate::config::TargetMetric,
    include_first: bool,
    he: LockedHe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LockedHe {
    poly_degree: usize,
    plaintext_bits: Option<u32>,
    weight_bits: u32,
    activation_bits: u32,
    costs: crate::config::PrimitiveCosts,
}

impl SpecLock {
    fn of(spec: &Spec) -> SpecLock {
        let HeSpec {
            poly_degree,
            plaintext_bits,
            weight_bits,
            activation_bits,
            costs,
            ..
        } = spec.he.clone();
        let PruneSpec {
            regularization,
            finetune,
            target_metric,
            include_first,
            ..
        } = spec.prune.clone();
        SpecLock {
            data: spec.data.clone(),
            model: spec.model.clone(),
            train: spec.train.clone(),
            regularization,
            finetune,
            target_metric,
            include_first,
            he: LockedHe {
                poly_degree,
                plaintext_bits,
                weight_bits,
                activation_bits,
                costs,
            },
        }
    }

    /// The first section that differs, for the error message.
    fn first_difference(&self, other: &SpecLock) -> Option<&'static str> {
        [
            ("data", self.data != other.data),
            ("model", self.model != other.model),
            ("train", self.train != other.train),
            (
                "prune.regularization",
                self.regularization != other.regularization,
            ),
            ("prune.finetune", self.finetune != other.finetune),
            (
                "prune.target_metric",
                self.target_metric != other.target_metric,
            ),
            (
                "prune.include_first",
                self.include_first != other.include_first,
            ),
            ("he", self.he != other.he),
        ]
        .into_iter()
        .find(|(_, differs)| *differs)
        .map(|(f, _)| f)
    }
}

/// An output directory bound to one spec, with the data loaded once.
pub struct Workspace {
    pub spec: Spec,
    pub dir: PathBuf,
    pub net: NetSpec,
    pub train_data: Dataset,
    pub test_data: Dataset,
}

impl Workspace {
    /// Opens (or creates) the spec's output directory, refusing one made by a
    /// spec with different result-shaping settings, and loads the data.
    pub fn open(spec: Spec, output: Option<PathBuf>) -> Result<Workspace, SweepError> {
        let dir = output.unwrap_or_else(|| spec.output_dir());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("spec.lock.json");
        let lock = SpecLock::of(&spec);
        if lock_path.exists() {
            let stored: SpecLock = read_json(&lock_path)?;
            if let Some(field) = lock.first_difference(&stored) {
                return Err(SweepError::SpecChanged {
                    dir,
                    lock: lock_path,
                    field,
                });
            }
        } else {
            let text = serde_json::to_string_pretty(&lock).expect("lock serializes");
            write_atomic(&lock_path, text.as_bytes())?;
        }
        let train_data = data::load(&spec.data, Split::Train)?;
        let test_data = data::load(&spec.data, Split::Test)?;
        let net = spec.net_spec();
        Ok(Workspace {
            spec,
            dir,
            net,
            train_data,
            test_data,
        })
    }

    /// The dense training phase of replicate `seed`: the spec's training
    /// with its seed offset by the replicate's (seed 0 is the spec's own run).
    fn dense_config(&self, seed: u64) -> TrainConfig {
        TrainConfig {
            seed: self.spec.train.seed.wrapping_add(seed),
            ..self.spec.train.clone()
        }
    }

    /// Where the dense model of replicate `seed` lives: a hash of the data,
    /// model and training settings, so a changed setting never reuses it.
    pub fn dense_dir(&self, seed: u64) -> PathBuf {
        let key =
            serde_json::to_string(&(&self.spec.data, &self.spec.model, &self.dense_config(seed)))
                .expect("settings serialize");
        let hash = Sha256::digest(key.as_bytes());
        let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("dense-{hex}"))
    }

    /// The dense model of replicate `seed`: loaded when already trained, else
    /// trained and saved.
    pub fn dense(&self, seed: u64) -> Result<(ResNet, DenseSummary), SweepError> {
        let dir = self.dense_dir(seed);
        let summary_path = dir.join("train.json");
        let cfg = self.dense_config(seed);
        let device = train::device(cfg.seed);
        if let Ok(text) = std::fs::read_to_string(&summary_path)
            && let Ok(summary) = serde_json::from_str::<DenseSummary>(&text)
        {
            let model = ResNet::load(&dir, &self.net, &device)?;
            return Ok((model, summary));
        }
        let model = ResNet::new(&self.net, &device);
        let (model, stats) = train::train(model, &self.train_data, &cfg, &NoHook, "dense")?;
        let accuracy = train::evaluate(&model, &self.test_data, cfg.batch_size, cfg.replicas);
        let summary = DenseSummary {
            test_accuracy: accuracy,
            epochs: stats.epochs,
            seconds: stats.seconds,
            checkpoint: save_model(&model, &dir)?,
        };
        let text = serde_json::to_string(&summary).expect("summary serializes");
        write_atomic(&summary_path, text.as_bytes())?;
        Ok((model, summary))
    }
}

/// Saves the checkpoint with its BN-folded weights beside it (`folded.json`,
/// what `explore count --checkpoint` and the HE executor read).
fn save_model(model: &ResNet, dir: &Path) -> Result<PathBuf, SweepError> {
    let weights = model.save(dir)?;
    let folded = serde_json::to_vec(&model.fold()).expect("folded net serializes");
    write_atomic(&dir.join("folded.json"), &folded)?;
    Ok(weights)
}

/// Reads a JSON file the sweep wrote; a malformed one is an error naming it.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SweepError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| SweepError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// Writes a file so that a crash leaves either the old or the new content
/// (the points table's own atomic replace).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    use std::io::Write;
    Ok(points::replace_file(path, |f| f.write_all(bytes))?)
}

/// One point of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointKey {
    pub strategy: Strategy,
    pub target: f64,
    pub seed: u64,
}

impl PointKey {
    fn matches(&self, r: &PointRecord) -> bool {
        r.strategy == self.strategy && (r.target - self.target).abs() < 1e-9 && r.seed == self.seed
    }
    fn dir_name(&self) -> String {
        format!("{}-{}-s{}", self.strategy, self.target, self.seed)
    }
}

/// A pruned, fine-tuned model and everything measured about it.
pub struct PointResult {
    pub record: PointRecord,
    pub dense_cost: HeCost,
    pub cost: HeCost,
    pub checkpoint: PathBuf,
}

impl Workspace {
    /// Keys and parameters for the spec's network (t sized for its layers).
    pub fn he_context(&self) -> Result<HeContext, SweepError> {
        let he = &self.spec.he;
        let params = HeParams::new(
            he.poly_degree,
            he.plaintext_bits,
            he.weight_bits,
            he.activation_bits,
            &self.net.convs,
        )?;
        Ok(HeContext::new(params))
    }

    /// The regularized (group-Lasso) model for an HE-aware strategy and seed,
    /// cached on disk: it does not depend on the target.
    fn regularized(
        &self,
        dense: &ResNet,
        pruner: &Pruner,
        seed: u64,
    ) -> Result<ResNet, SweepError> {
        let Some(reg) = &self.spec.prune.regularization else {
            return Ok(dense.clone());
        };
        let device = train::device(seed);
        let Some(lasso) = pruner.group_lasso(reg.lambda, &device) else {
            return Ok(dense.clone());
        };
        let dir = self
            .dir
            .join("regularized")
            .join(format!("{}-s{seed}", pruner.strategy));
        if dir.join("folded.json").exists() {
            return Ok(ResNet::load(&dir, &self.net, &device)?);
        }
        let cfg = TrainConfig {
            seed: reg.train.seed.wrapping_add(seed),
            ..reg.train.clone()
        };
        let (model, _) = train::train(
            dense.clone(),
            &self.train_data,
            &cfg,
            &lasso,
            &format!("{} group lasso", pruner.strategy),
        )?;
        save_model(&model, &dir)?;
        Ok(model)
    }

    /// The pruner of `strategy` under this spec.
    fn pruner(&self, strategy: Strategy) -> Result<Pruner, SweepError> {
        let spec = &self.spec;
        let weighting = spec
            .prune
            .regularization
            .as_ref()
            .map_or(crate::config::GroupWeighting::HeCost, |r| r.weighting);
        Ok(Pruner::new(
            &self.net,
            strategy,
            spec.prune.include_first,
            spec.he.poly_degree,
            weighting,
            &spec.he.costs,
        )?)
    }

    /// The training half of a point: regularize (HE-aware strategies, cached
    /// per strategy and seed), prune to the target, fine-tune with the mask
    /// fixed, evaluate. Saved under `points/<key>/` with `trained.json` last,
    /// so a finished half is loaded instead of retrained.
    pub fn train_point(
        &self,
        dense: &ResNet,
        dense_seconds: f64,
        key: PointKey,
        progress: &ProgressBar,
    ) -> Result<TrainedPoint, SweepError> {
        let dir = self.dir.join("points").join(key.dir_name());
        let trained_path = dir.join("trained.json");
        if let Ok(text) = std::fs::read_to_string(&trained_path)
            && let Ok(summary) = serde_json::from_str::<TrainedSummary>(&text)
        {
            let folded = read_json(&dir.join("folded.json"))?;
            return Ok(TrainedPoint {
                key,
                summary,
                folded,
                dir,
            });
        }
        let start = Instant::now();
        let spec = &self.spec;
        let pruner = self.pruner(key.strategy)?;
        let base = if key.strategy.is_he_aware() {
            self.regularized(dense, &pruner, key.seed)?
        } else {
            dense.clone()
        };
        let mask = pruner.select(
            &base.conv_weight_data(),
            key.target,
            spec.prune.target_metric,
        )?;
        let mut model = base.apply_masks(&mask.layers);
        if let (Some(ft), true) = (&spec.prune.finetune, key.target > 0.0) {
            progress.set_message(format!("{}: fine-tuning", key.dir_name()));
            let cfg = TrainConfig {
                seed: ft.seed.wrapping_add(key.seed),
                ..ft.clone()
            };
            model = train::train(
                model,
                &self.train_data,
                &cfg,
                &MaskHook(mask.clone()),
                &key.dir_name(),
            )?
            .0;
        }
        let train_seconds = if key.strategy == Strategy::Dense {
            dense_seconds
        } else {
            start.elapsed().as_secs_f64()
        };
        let summary = TrainedSummary {
            accuracy: train::evaluate(
                &model,
                &self.test_data,
                spec.train.batch_size,
                spec.train.replicas,
            ),
            weight_sparsity: mask.sparsity(&pruner.prunable),
            train_seconds,
        };
        save_model(&model, &dir)?;
        write_atomic(
            &dir.join("mask.json"),
            &serde_json::to_vec(&mask).expect("mask serializes"),
        )?;
        write_atomic(
            &trained_path,
            &serde_json::to_vec(&summary).expect("summary serializes"),
        )?;
        Ok(TrainedPoint {
            key,
            summary,
            folded: model.fold(),
            dir,
        })
    }

    /// The measuring half of a point: quantize, count on the integer weights,
    /// and run every conv layer on real ciphertexts for `he.images` test
    /// images, each decrypted and verified; the executor's counts must equal
    /// the cost model's, layer by layer.
    pub fn measure_point(
        &self,
        trained: &TrainedPoint,
        ctx: &mut HeContext,
        measured: &PrimitiveCosts,
    ) -> Result<PointResult, SweepError> {
        let spec = &self.spec;
        let calibration =
            &self.train_data.images[..self.train_data.image_len() * self.train_data.len().min(64)];
        let qnet = QuantizedNet::new(
            &trained.folded,
            spec.he.weight_bits,
            spec.he.activation_bits,
            calibration,
        )?;
        let accuracy_quantized = qnet.accuracy(&self.test_data.images, &self.test_data.labels)?;
        // Counted on the integer weights the executor runs (quantization
        // keeps the float sparsity pattern, so `explore count` on the saved
        // folded.json gives the same counts).
        let q_convs: Vec<Vec<i64>> = qnet.convs.iter().map(|l| l.weight.clone()).collect();
        let cost = he::network_cost(&self.net, &q_convs, &qnet.fc.weight, spec.he.poly_degree)?;
        let dense_cost = he::dense_network_cost(&self.net, spec.he.poly_degree)?;
        let images = spec.he.images.min(self.test_data.len());
        let mut measured_ms = 0.0;
        for i in 0..images {
            let run = he::run_network(ctx, &qnet, self.test_data.image(i), spec.he.repeats)?;
            for (executed, modeled) in run.layers.iter().zip(&cost.layers) {
                if executed.executed != modeled.cost {
                    return Err(SweepError::CountMismatch {
                        layer: modeled.layer.clone(),
                        executed: format!("{:?}", executed.executed),
                        modeled: format!("{:?}", modeled.cost),
                    });
                }
            }
            measured_ms += run.measured_ms / images as f64;
        }
        // The latency model covers what was measured: the conv layers.
        let convs = self.net.convs.len();
        let conv_cost = |c: &HeCost| {
            c.layers[..convs]
                .iter()
                .map(|r| r.cost)
                .fold(he::LayerCost::default(), |a, b| a + b)
        };
        let key = trained.key;
        let record = PointRecord {
            sweep: spec.name.clone(),
            model: spec.model.arch.to_string(),
            dataset: spec.data.dataset.to_string(),
            strategy: key.strategy,
            target: key.target,
            seed: key.seed,
            accuracy: trained.summary.accuracy,
            accuracy_quantized,
            test_images: self.test_data.len() as u64,
            weight_sparsity: trained.summary.weight_sparsity,
            rotations: cost.total.rotations() as u64,
            rotations_dense: dense_cost.total.rotations() as u64,
            pmults: cost.total.pmults as u64,
            adds: cost.total.adds as u64,
            latency_model_ms: conv_cost(&cost).latency_ms(measured),
            latency_measured_ms: measured_ms,
            he_verified: true,
            train_seconds: trained.summary.train_seconds,
        };
        Ok(PointResult {
            record,
            dense_cost,
            cost,
            checkpoint: trained.dir.clone(),
        })
    }
}

/// What the training half of a point measured (`trained.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedSummary {
    pub accuracy: f64,
    pub weight_sparsity: f64,
    pub train_seconds: f64,
}

/// A pruned, fine-tuned point waiting for its encrypted measurement.
pub struct TrainedPoint {
    pub key: PointKey,
    pub summary: TrainedSummary,
    pub folded: FoldedNet,
    pub dir: PathBuf,
}

/// Every point of the spec, the dense model of each seed first. A seed is a
/// replicate of the whole pipeline: its own dense training, regularization
/// and fine-tuning.
pub fn point_keys(spec: &Spec) -> Vec<PointKey> {
    let mut keys: Vec<PointKey> = spec
        .prune
        .seeds
        .iter()
        .map(|&seed| PointKey {
            strategy: Strategy::Dense,
            target: 0.0,
            seed,
        })
        .collect();
    for &strategy in spec
        .prune
        .strategies
        .iter()
        .filter(|s| **s != Strategy::Dense)
    {
        for &target in &spec.prune.targets {
            for &seed in &spec.prune.seeds {
                keys.push(PointKey {
                    strategy,
                    target,
                    seed,
                });
            }
        }
    }
    keys
}

/// Runs (or resumes) a whole sweep and writes points.csv, front.csv, plots
/// and report.md into the workspace directory.
pub fn run(ws: &Workspace, spec_yaml: &str) -> Result<Vec<PointRecord>, SweepError> {
    let points_path = ws.dir.join("points.csv");
    let mut done = if points_path.exists() {
        points::read(&points_path)?
    } else {
        Vec::new()
    };
    let keys = point_keys(&ws.spec);
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
        // Seed by seed (each a replicate from its own dense model), points
        // train one after another, each on every core through its
        // data-parallel replicas; the regularized models come first because
        // all targets of a strategy share one. Encrypted timing then runs
        // alone, one point after another, so nothing else competes with it.
        let mut seeds: Vec<u64> = todo.iter().map(|k| k.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let mut trained = Vec::new();
        for seed in seeds {
            current.set_message(format!("dense model, seed {seed}"));
            let (dense, dense_summary) = ws.dense(seed)?;
            let mut regularize: Vec<Strategy> = todo
                .iter()
                .filter(|k| k.seed == seed && k.strategy.is_he_aware())
                .map(|k| k.strategy)
                .collect();
            regularize.sort();
            regularize.dedup();
            current.set_message(format!("group-Lasso regularization, seed {seed}"));
            for &strategy in &regularize {
                ws.regularized(&dense, &ws.pruner(strategy)?, seed)?;
            }
            current.set_message("pruning and fine-tuning");
            for &key in todo.iter().filter(|k| k.seed == seed) {
                trained.push(ws.train_point(&dense, dense_summary.seconds, key, &current));
                overall.inc(1);
            }
        }
        // A target a strategy cannot reach is no result: say so and go on
        // with the others (a resume tries it again, cheaply: the group-Lasso
        // model is cached and selection fails before fine-tuning).
        let mut points_trained = Vec::new();
        for t in trained {
            match t {
                Err(SweepError::Prune(e @ PruneError::Unreachable { .. })) => {
                    overall.inc(1);
                    bars.suspend(|| eprintln!("skipped: {e}"));
                }
                other => points_trained.push(other?),
            }
        }
        let trained = points_trained;
        current.set_message("measuring HE primitives");
        let mut ctx = ws.he_context()?;
        let measured = ctx.measure_primitives(5)?;
        for t in &trained {
            current.set_message(format!("{}: encrypted inference", t.key.dir_name()));
            let result = ws.measure_point(t, &mut ctx, &measured)?;
            points::append(&points_path, &result.record)?;
            write_layer_costs(&result)?;
            done.push(result.record);
            overall.inc(1);
        }
    }
    current.finish_and_clear();
    overall.finish();
    write_outputs(ws, spec_yaml, &done)?;
    Ok(done)
}

/// Per-layer rotations (dense and pruned) beside each point's checkpoint,
/// for the per-layer chart.
fn write_layer_costs(r: &PointResult) -> Result<(), SweepError> {
    let rows: Vec<(String, u64, u64)> = r
        .dense_cost
        .layers
        .iter()
        .zip(&r.cost.layers)
        .map(|(d, p)| {
            (
                d.layer.clone(),
                d.cost.rotations() as u64,
                p.cost.rotations() as u64,
            )
        })
        .collect();
    let text = serde_json::to_vec(&rows).expect("rows serialize");
    write_atomic(&r.checkpoint.join("layers.json"), &text)
}

/// front.csv, the plots and report.md from all finished points.
pub fn write_outputs(
    ws: &Workspace,
    spec_yaml: &str,
    points: &[PointRecord],
) -> Result<(), SweepError> {
    let front = pareto::baseline_rows(points, Cost::Rotations, false);
    points::write(&ws.dir.join("front.csv"), &front)?;
    let mut plots = Vec::new();
    for (cost, stem, title) in [
        (
            Cost::Rotations,
            "accuracy-vs-rotations",
            "Accuracy vs rotations",
        ),
        (
            Cost::Latency,
            "accuracy-vs-latency",
            "Accuracy vs measured encrypted latency",
        ),
    ] {
        let png = PathBuf::from(format!("{stem}.png"));
        plot::accuracy_vs_cost(
            points,
            cost,
            title,
            &ws.dir.join(&png),
            &ws.dir.join(format!("{stem}.svg")),
        )?;
        plots.push((title.to_string(), png));
    }
    // The per-layer chart shows the cheapest diagonal point on the front (or
    // the most accurate diagonal point when none is on it).
    let diagonal = || points.iter().filter(|p| p.strategy == Strategy::Diagonal);
    let best = diagonal()
        .filter(|p| front.contains(p))
        .min_by_key(|p| p.rotations)
        .or_else(|| diagonal().max_by(|a, b| a.accuracy.total_cmp(&b.accuracy)));
    if let Some(best) = best {
        let key = PointKey {
            strategy: best.strategy,
            target: best.target,
            seed: best.seed,
        };
        let layers_path = ws
            .dir
            .join("points")
            .join(key.dir_name())
            .join("layers.json");
        let rows: Vec<(String, u64, u64)> = read_json(&layers_path)?;
        let png = PathBuf::from("layer-rotations.png");
        plot::layer_rotations(
            &rows,
            &format!(
                "Rotations per layer: dense vs diagonal at target {}",
                best.target
            ),
            &ws.dir.join(&png),
            &ws.dir.join("layer-rotations.svg"),
        )?;
        plots.push(("Rotations per layer, best diagonal point".into(), png));
    }
    report::write(&ws.dir, spec_yaml, points, &plots)?;
    Ok(())
}
