//! The stages of a point, as functions of the spec and the data: the dense
//! model, its group-Lasso regularization, pruning with fine-tuning, and the
//! encrypted measurement. Each finished stage is cached in the [`Store`],
//! with its summary written last, so a killed run redoes at most the stage
//! it was in.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::store::{self, Store};
use super::{PointKey, SweepError};
use explore_data::{self as data, Dataset};
use explore_he::{self as he, HeContext, HeCost, HeParamsBuilder, PrimitiveCosts, Scheduler};
use explore_he_model::arch::{FoldedNet, NetSpec};
use explore_quant::QuantizedNet;
use explore_results::outcomes::{Correct, Outcomes};
use explore_results::points::PointRecord;
use explore_spec::TrainConfig;
use explore_spec::{PhaseKind, PruneSchedule, Spec, Strategy};
use explore_train::checkpoint;
use explore_train::model::{FakeQuant, ResNet};
use explore_train::prune::{
    GradualPruning, GroupLasso, LassoMethod, Mask, MaskHook, ProximalLasso, Pruner,
};
use explore_train::train::{self, DenseSummary, KeptLogits, NoHook, Phase, Teacher, TrainHook};

/// Training images that activation statistics and quantization ranges are
/// measured on.
const CALIBRATION_IMAGES: usize = 64;

/// A spec, its output directory and its data, loaded once.
pub struct Workspace {
    pub spec: Spec,
    pub store: Store,
    pub net: NetSpec,
    pub train_data: Dataset,
    /// Held out of the training split (`data.validation`); may be empty.
    pub val_data: Dataset,
    pub test_data: Dataset,
    /// Each replicate's dense model's logits on the training images, kept
    /// for every distilled phase of the replicate's points (the dense model
    /// of a seed is their one teacher).
    teacher_logits: Mutex<HashMap<u64, Arc<KeptLogits>>>,
}

/// What the training half of a point measured (`trained.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedSummary {
    /// Float test accuracy of the final model (after QAT).
    pub accuracy: f64,
    pub weight_sparsity: f64,
    pub train_seconds: f64,
    /// Optimizer steps of every phase the model went through.
    pub train_steps: u64,
    /// The float model right after pruning, before any recovery: the start
    /// model with the target's mask (the start model itself for the dense
    /// point and the twin). `None` in points trained before it was kept.
    #[serde(default)]
    pub pruned: Option<Accuracy>,
    /// The float model after recovery (and BatchNorm recalibration),
    /// before QAT: what quantization then costs is the difference from the
    /// integer accuracy.
    #[serde(default)]
    pub recovered: Option<Accuracy>,
    /// The point's own fine-tuning: its epochs (its budget) and steps; 0
    /// for the dense point and in points trained before it was kept.
    #[serde(default)]
    pub recovery_epochs: u64,
    #[serde(default)]
    pub recovery_steps: u64,
}

/// A float model's accuracy on the validation images (`None` without
/// them) and the test images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub validation: Option<f64>,
    pub test: f64,
}

/// A pruned, fine-tuned point waiting for its encrypted measurement.
pub struct TrainedPoint {
    pub key: PointKey,
    pub summary: TrainedSummary,
    pub folded: FoldedNet,
    pub dir: PathBuf,
}

/// A pruned, fine-tuned model and everything measured about it.
pub struct PointResult {
    pub record: PointRecord,
    pub dense_cost: HeCost,
    pub cost: HeCost,
    pub checkpoint: PathBuf,
}

impl Workspace {
    /// Loads the data, then opens (or creates) the spec's output directory,
    /// refusing one made by a spec with different result-shaping settings.
    pub fn open(spec: Spec, output: Option<PathBuf>) -> Result<Workspace, SweepError> {
        // Data first: a spec whose data cannot load must not lock the
        // directory to its settings.
        let splits = data::load_splits(&spec.data)?;
        let store = Store::open(output.unwrap_or_else(|| spec.output_dir()), &spec)?;
        let net = spec.net_spec();
        Ok(Workspace {
            spec,
            store,
            net,
            train_data: splits.train,
            val_data: splits.validation,
            test_data: splits.test,
            teacher_logits: Mutex::default(),
        })
    }

    /// The spec's training device (`train.device`) for replicate `seed`,
    /// seeded as the replicate's dense phase is (its weight initialization).
    fn device(&self, seed: u64) -> Result<burn::tensor::Device, SweepError> {
        Ok(train::device(
            self.spec.train.device,
            self.dense_config(seed).seed,
        )?)
    }

    /// The dense training phase of replicate `seed`.
    fn dense_config(&self, seed: u64) -> TrainConfig {
        self.spec.train.for_replicate(seed, PhaseKind::Dense)
    }

    /// Trains `model` through phase `cfg` (of kind `kind`) of replicate
    /// `seed` ([`TrainConfig::for_replicate`]) and returns it with the
    /// phase's optimizer steps: the one way every phase after the dense one
    /// runs.
    fn run_phase(
        &self,
        model: ResNet,
        (cfg, kind): (&TrainConfig, PhaseKind),
        seed: u64,
        phase: Phase,
        label: &str,
    ) -> Result<(ResNet, u64), SweepError> {
        let cfg = cfg.for_replicate(seed, kind);
        let (model, _) = train::train(model, &self.train_data, &cfg, phase, label)?;
        Ok((
            model,
            train::phase_steps(&cfg, self.train_data.len()) as u64,
        ))
    }

    /// [`Self::run_phase`] with `mask` held fixed: returns the model, the
    /// mask and the phase's steps.
    fn masked_phase(
        &self,
        (model, mask): (ResNet, Mask),
        cfg: (&TrainConfig, PhaseKind),
        seed: u64,
        (teacher, fake_quant): (Option<Teacher>, Option<&FakeQuant>),
        label: &str,
    ) -> Result<(ResNet, Mask, u64), SweepError> {
        let mut hook = MaskHook::new(mask);
        let phase = Phase {
            hook: &mut hook,
            teacher,
            fake_quant,
            profile: false,
        };
        let (model, steps) = self.run_phase(model, cfg, seed, phase, label)?;
        Ok((model, hook.into_mask(), steps))
    }

    /// Where the dense model of replicate `seed` lives.
    pub fn dense_dir(&self, seed: u64) -> PathBuf {
        let cfg = self.dense_config(seed);
        self.store
            .dense_dir(&(&self.spec.data, &self.spec.model, &cfg))
    }

    /// The dense model of replicate `seed`: loaded when already trained, else
    /// trained and saved.
    pub fn dense(&self, seed: u64) -> Result<(ResNet, DenseSummary), SweepError> {
        let dir = self.dense_dir(seed);
        let _lock = self.store.lock(&dir)?;
        let summary_path = dir.join(store::DENSE_SUMMARY);
        let cfg = self.dense_config(seed);
        let device = self.device(seed)?;
        if let Some(summary) = store::finished::<DenseSummary>(&summary_path) {
            let model = checkpoint::load(&dir, &self.net, &device)?;
            return Ok((model, summary));
        }
        let model = ResNet::new(&self.net, &device);
        let label = format!("dense-s{seed}");
        let (model, stats) = train::train(
            model,
            &self.train_data,
            &cfg,
            Phase::with(&mut NoHook),
            &label,
        )?;
        let accuracy = train::evaluate(&model, &self.test_data, cfg.batch_size, cfg.replicas);
        let val_accuracy = (!self.val_data.is_empty())
            .then(|| train::evaluate(&model, &self.val_data, cfg.batch_size, cfg.replicas));
        let summary = DenseSummary {
            test_accuracy: accuracy,
            val_accuracy,
            epochs: stats.epochs,
            steps: stats.steps,
            seconds: stats.seconds,
            checkpoint: checkpoint::save(&model, &dir)?,
        };
        store::write_json(&summary_path, &summary)?;
        Ok((model, summary))
    }

    /// Keys and parameters for the spec's network (t sized for its layers).
    /// The sweep's keys and parameters: the fewest ciphertext primes that
    /// leave `he.noise_margin` after every layer of the dense network under
    /// every schedule the sweep measures (pruning only removes products and
    /// rotations, so a pruned network needs no more).
    pub fn he_context(&self) -> Result<HeContext, SweepError> {
        let he = &self.spec.he;
        let mut depth = he::NoiseDepth::default();
        for schedule in he::Schedule::ALL {
            let scheduler = self.spec.scheduler().with_schedule(schedule);
            depth = depth.max(he::dense_network_cost(&self.net, &scheduler)?.depth());
        }
        let params = HeParamsBuilder::new(he.poly_degree, &self.net.layer_shapes())
            .plaintext_bits(he.plaintext_bits)
            .quantization(he.weight_bits, he.activation_bits)
            .fewest_primes(depth, he.noise_margin, he::Flooding::OFF)
            // One context serves every schedule; under coefficient encoding
            // nothing switches keys, so the hoisting alone decides.
            .special_prime(he.hoisting.special_prime(he.special_prime))
            .build()?;
        Ok(HeContext::new(params))
    }

    /// The first training images (at most [`CALIBRATION_IMAGES`]): what
    /// activation statistics and quantization ranges are measured on.
    pub fn calibration(&self) -> &[f32] {
        let n = self.train_data.len().min(CALIBRATION_IMAGES);
        &self.train_data.images[..self.train_data.image_len() * n]
    }

    /// The RMS of each conv layer's input over the calibration images.
    fn input_rms(&self, model: &ResNet) -> Vec<f64> {
        let (c, h, w) = self.spec.data.dataset.input_shape();
        let images = self.calibration();
        let n = images.len() / (c * h * w);
        let device = model.fc.weight.device();
        let x = Tensor::<4>::from_data(TensorData::new(images.to_vec(), [n, c, h, w]), &device);
        model.conv_input_rms(x)
    }

    /// The model a strategy's pruning starts from, with the optimizer steps
    /// of its regularization phase (`prune.regularization`). HE-aware
    /// strategies take the group Lasso; every other strategy, and the
    /// budget-matched dense control, takes the same phase without a penalty
    /// (the lambda = 0 arm), so that every point has the same training
    /// budget before pruning. Cached on disk per strategy (one shared plain
    /// model) and seed: it does not depend on the target.
    pub fn regularized(
        &self,
        dense: &ResNet,
        pruner: &Pruner,
        seed: u64,
    ) -> Result<(ResNet, u64), SweepError> {
        let Some(reg) = &self.spec.prune.regularization else {
            return Ok((dense.clone(), 0));
        };
        let lasso = pruner.strategy.is_he_aware() && reg.lambda > 0.0;
        let device = self.device(seed)?;
        let dir = if lasso {
            self.store.regularized_dir(pruner.strategy, seed)
        } else {
            self.store.plain_dir(seed)
        };
        let _lock = self.store.lock(&dir)?;
        // The phase's steps, whether it is trained now or was cached.
        let steps = train::phase_steps(&reg.train, self.train_data.len()) as u64;
        if dir.join(checkpoint::FOLDED_FILE).exists() {
            return Ok((checkpoint::load(&dir, &self.net, &device)?, steps));
        }
        let (mut none, mut subgradient, mut proximal);
        let hook: &mut dyn TrainHook = match (lasso, reg.method) {
            (false, _) => {
                none = NoHook;
                &mut none
            }
            (true, LassoMethod::Subgradient) => {
                subgradient = GroupLasso::new(pruner, reg.lambda, &device)
                    .expect("an HE-aware strategy has groups");
                &mut subgradient
            }
            (true, LassoMethod::Proximal) => {
                proximal = ProximalLasso {
                    groups: &pruner.groups,
                    lambda: reg.lambda,
                    ramp: reg.ramp,
                    norm: self.spec.prune.norm,
                    input_rms: self.input_rms(dense),
                };
                &mut proximal
            }
        };
        let label = if lasso {
            format!("{}-s{seed} group lasso", pruner.strategy)
        } else {
            format!("s{seed} regularization phase, no penalty")
        };
        let (model, _) = self.run_phase(
            dense.clone(),
            (&reg.train, PhaseKind::Regularization),
            seed,
            Phase::with(hook),
            &label,
        )?;
        checkpoint::save(&model, &dir)?;
        Ok((model, steps))
    }

    /// The pruner of `strategy` under this spec.
    pub fn pruner(&self, strategy: Strategy) -> Result<Pruner, SweepError> {
        let spec = &self.spec;
        let weighting = spec
            .prune
            .regularization
            .as_ref()
            .map_or(explore_spec::GroupWeighting::HeCost, |r| r.weighting);
        Ok(Pruner::new(
            &self.net,
            strategy,
            spec.prune.include_first,
            &spec.scheduler(),
            weighting,
        )?)
    }

    /// A trained point from its directory, with its model and mask.
    fn load_point(
        &self,
        key: PointKey,
    ) -> Result<Option<(TrainedPoint, ResNet, Mask)>, SweepError> {
        let dir = self.store.point_dir(&key);
        let Some(summary) = store::finished::<TrainedSummary>(&dir.join(store::POINT_SUMMARY))
        else {
            return Ok(None);
        };
        let model = checkpoint::load(&dir, &self.net, &self.device(key.seed)?)?;
        let mask: Mask = store::read_json(&dir.join(store::MASK))?;
        let point = TrainedPoint {
            key,
            summary,
            folded: model.fold(),
            dir,
        };
        Ok(Some((point, model, mask)))
    }

    /// Under `independent`, a twin does not depend on its target: it starts
    /// from the plain model, prunes nothing and recovers on its point's
    /// budget, all seeded by seed and phase alone. So the twins of one
    /// budget and seed are one model.
    fn twin_shared_across_targets(&self, key: PointKey) -> bool {
        key.strategy == Strategy::DenseMatched
            && self.spec.prune.schedule() == PruneSchedule::Independent
    }

    /// Whether `row` is a point with the very weights of `key`: the same
    /// point under another (or the same) schedule, or a twin shared across
    /// targets ([`Self::twin_shared_across_targets`]) at another target.
    pub fn same_weights(&self, key: PointKey, row: PointKey) -> bool {
        let target = if self.twin_shared_across_targets(key) {
            row.target
        } else {
            key.target
        };
        row == PointKey {
            target,
            schedule: row.schedule,
            ..key
        }
    }

    /// A shared twin ([`Self::twin_shared_across_targets`]) is trained for
    /// the first target and copied for the others (the summary last, so a
    /// copy cut short is no finished point).
    fn shared_twin(&self, key: PointKey) -> Result<Option<TrainedPoint>, SweepError> {
        if !self.twin_shared_across_targets(key) {
            return Ok(None);
        }
        let trained = self.spec.prune.targets.iter().find_map(|&target| {
            let dir = self.store.point_dir(&PointKey { target, ..key });
            (target != key.target
                && store::finished::<TrainedSummary>(&dir.join(store::POINT_SUMMARY)).is_some())
            .then_some(dir)
        });
        let Some(from) = trained else {
            return Ok(None);
        };
        let to = self.store.point_dir(&key);
        std::fs::create_dir_all(&to).map_err(store::io(&to))?;
        for file in [
            checkpoint::WEIGHTS_FILE,
            checkpoint::NET_FILE,
            checkpoint::FOLDED_FILE,
            store::MASK,
            store::POINT_SUMMARY,
        ] {
            let bytes = std::fs::read(from.join(file)).map_err(store::io(&from))?;
            store::write_bytes(&to.join(file), &bytes)?;
        }
        Ok(self.load_point(key)?.map(|(point, _, _)| point))
    }

    /// Where a point's pruning starts, with the optimizer steps behind it:
    /// on a trajectory, the previous (lower) target of the spec, trained
    /// first if needed; else, and for the first target, the regularized
    /// model with nothing pruned.
    fn start_of(
        &self,
        dense: &ResNet,
        dense_summary: &DenseSummary,
        pruner: &Pruner,
        key: PointKey,
        progress: &ProgressBar,
    ) -> Result<(ResNet, Mask, f64, u64), SweepError> {
        let previous = self
            .spec
            .prune
            .targets
            .iter()
            .copied()
            .filter(|&t| t < key.target - 1e-9)
            .max_by(f64::total_cmp)
            .filter(|_| self.spec.prune.schedule() == PruneSchedule::Trajectory);
        if let Some(target) = previous {
            let prev = PointKey { target, ..key };
            self.train_point(dense, dense_summary, prev, progress)?;
            let (point, model, mask) = self.load_point(prev)?.expect("just trained");
            return Ok((model, mask, target, point.summary.train_steps));
        }
        let (base, steps) = self.regularized(dense, pruner, key.seed)?;
        Ok((
            base,
            Mask::dense(&self.net),
            0.0,
            dense_summary.steps as u64 + steps,
        ))
    }

    /// The float model's accuracy on the validation and test images.
    fn accuracy_of(&self, model: &ResNet) -> Accuracy {
        let (batch, replicas) = (self.spec.train.batch_size, self.spec.train.replicas);
        Accuracy {
            validation: (!self.val_data.is_empty())
                .then(|| train::evaluate(model, &self.val_data, batch, replicas)),
            test: train::evaluate(model, &self.test_data, batch, replicas),
        }
    }

    /// The training half of a point: from where it starts (see
    /// [`Self::start_of`]), prune to the target during fine-tuning at the
    /// point's recovery budget (gradually, or one shot with the mask
    /// fixed), with distillation from the dense model when the spec asks,
    /// recalibrate BatchNorm, then quantization-aware training; evaluate
    /// after pruning, after recovery and at the end. The dense point takes
    /// only the last phase; the budget-matched dense control takes every
    /// phase at the same budget and prunes nothing. Saved in the point's
    /// directory with its summary last, so a finished point is loaded
    /// instead of retrained.
    pub fn train_point(
        &self,
        dense: &ResNet,
        dense_summary: &DenseSummary,
        key: PointKey,
        progress: &ProgressBar,
    ) -> Result<TrainedPoint, SweepError> {
        if let Some((point, _, _)) = self.load_point(key)? {
            return Ok(point);
        }
        if let Some(point) = self.shared_twin(key)? {
            return Ok(point);
        }
        let spec = &self.spec;
        let pruner = self.pruner(key.strategy)?;
        let teacher = dense.valid();
        let kept = Arc::clone(
            self.teacher_logits
                .lock()
                .expect("no panic holds the lock")
                .entry(key.seed)
                .or_default(),
        );
        let distill = |weight: f64, temperature: f64| Teacher {
            model: &teacher,
            weight,
            temperature,
            kept: Some(&kept),
        };
        let teacher_of = || {
            spec.prune
                .distill
                .as_ref()
                .map(|d| distill(d.weight, d.temperature))
        };
        let (start_model, start_mask, from, mut steps) = if key.strategy == Strategy::Dense {
            (
                dense.clone(),
                Mask::dense(&self.net),
                0.0,
                dense_summary.steps as u64,
            )
        } else {
            self.start_of(dense, dense_summary, &pruner, key, progress)?
        };
        // The point's own recovery phase, at its budget.
        let finetune = spec
            .prune
            .finetune
            .as_ref()
            .filter(|_| key.strategy != Strategy::Dense);
        let recovery = finetune.map(|f| {
            let cfg = f.at(key.budget.unwrap_or(f.train.epochs));
            (cfg, f.bn_recalibration)
        });
        // Fine-tuning with the mask held fixed: the twin's, and a one-shot
        // point's.
        let recover_masked = |start: (ResNet, Mask), ft: &TrainConfig| {
            let phase = (teacher_of(), None);
            let label = key.dir_name();
            self.masked_phase(start, (ft, PhaseKind::Finetune), key.seed, phase, &label)
        };
        let start = Instant::now();
        let mut model = start_model;
        let mut mask = start_mask;
        let mut recovery_steps = 0;
        let pruned;
        if key.strategy.is_dense() {
            pruned = self.accuracy_of(&model);
            // The same fine-tuning phase as a pruned point's (same budget,
            // schedule and distillation), with nothing pruned.
            if let Some((ft, _)) = &recovery {
                progress.set_message(format!("{}: fine-tuning, unpruned", key.dir_name()));
                (model, mask, recovery_steps) = recover_masked((model, mask), ft)?;
            }
        } else {
            let rms = self.input_rms(&model);
            let norm = spec.prune.norm;
            // Fails here, before any training, when the target is out of reach.
            let one_shot = pruner.select_from(
                &model.ranked_weights(norm, &rms),
                key.target,
                spec.prune.target_metric,
                &mask,
            )?;
            pruned = self.accuracy_of(&model.clone().apply_masks(&one_shot.layers));
            match (&recovery, &spec.prune.gradual) {
                (Some((ft, _)), Some(g)) => {
                    progress.set_message(format!("{}: pruning gradually", key.dir_name()));
                    let mut hook = GradualPruning::new(
                        &pruner,
                        norm,
                        rms,
                        spec.prune.target_metric,
                        (from, key.target),
                        (g.ramp, g.updates),
                        mask,
                    );
                    let phase = Phase {
                        hook: &mut hook,
                        teacher: teacher_of(),
                        fake_quant: None,
                        profile: false,
                    };
                    let trained = self.run_phase(
                        model,
                        (ft, PhaseKind::Finetune),
                        key.seed,
                        phase,
                        &key.dir_name(),
                    )?;
                    model = trained.0;
                    mask = hook.finish()?;
                    recovery_steps = trained.1;
                }
                (Some((ft, _)), None) => {
                    progress.set_message(format!("{}: fine-tuning", key.dir_name()));
                    let pruned = (model.apply_masks(&one_shot.layers), one_shot);
                    (model, mask, recovery_steps) = recover_masked(pruned, ft)?;
                }
                (None, _) => {
                    model = model.apply_masks(&one_shot.layers);
                    mask = one_shot;
                }
            }
        }
        steps += recovery_steps;
        if let Some((ft, batches)) = &recovery
            && *batches > 0
        {
            progress.set_message(format!("{}: recalibrating BatchNorm", key.dir_name()));
            let cfg = ft.for_replicate(key.seed, PhaseKind::Finetune);
            model = train::recalibrate_batchnorm(model, &self.train_data, &cfg, *batches);
        }
        let recovered = self.accuracy_of(&model);
        if let Some(qat) = &spec.prune.qat {
            progress.set_message(format!("{}: quantization-aware training", key.dir_name()));
            let qnet = QuantizedNet::new(&model.fold(), spec.quant_config(), self.calibration())?;
            let fake_quant = FakeQuant::of(&qnet);
            let phase = (teacher_of(), Some(&fake_quant));
            let label = format!("{} qat", key.dir_name());
            let trained = self.masked_phase(
                (model, mask),
                (qat, PhaseKind::Qat),
                key.seed,
                phase,
                &label,
            )?;
            (model, mask) = (trained.0, trained.1);
            steps += trained.2;
        }
        let seconds = start.elapsed().as_secs_f64();
        let summary = TrainedSummary {
            accuracy: train::evaluate(
                &model,
                &self.test_data,
                spec.train.batch_size,
                spec.train.replicas,
            ),
            weight_sparsity: mask.sparsity(&pruner.prunable),
            train_seconds: if key.strategy == Strategy::Dense {
                dense_summary.seconds + seconds
            } else {
                seconds
            },
            train_steps: steps,
            pruned: Some(pruned),
            recovered: Some(recovered),
            recovery_epochs: recovery.as_ref().map_or(0, |(ft, _)| ft.epochs as u64),
            recovery_steps,
        };
        let dir = self.store.point_dir(&key);
        checkpoint::save(&model, &dir)?;
        store::write_json(&dir.join(store::MASK), &mask)?;
        store::write_json(&dir.join(store::POINT_SUMMARY), &summary)?;
        Ok(TrainedPoint {
            key,
            summary,
            folded: model.fold(),
            dir,
        })
    }

    /// The whole network as private inference (`explore infer`) on the
    /// first `he.infer_images` test images, deployed as the spec's
    /// `he.keys` and `he.flooding` say; `None` when that is 0.
    fn infer(
        &self,
        qnet: &QuantizedNet,
        scheduler: &Scheduler,
    ) -> Result<Option<explore_he::infer::InferReport>, SweepError> {
        let he = &self.spec.he;
        let images = he.infer_images.min(self.test_data.len());
        if images == 0 {
            return Ok(None);
        }
        let deployment = explore_he::infer::Deployment::new(qnet, scheduler, he)?;
        Ok(Some(explore_he::infer::run(
            &deployment,
            &self.test_data,
            images,
            explore_spec::Network::Memory,
            |_| {},
        )?))
    }

    /// The integer model's per-image outcomes of a trained point, on the
    /// validation and test images (per image, so that points can be
    /// compared on the same images). They do not depend on the schedule, so
    /// a point whose weights a row already `reported` (under another
    /// schedule, or a shared twin at another target) keeps that row's
    /// outcomes: re-measured after a resume on another CPU, where burn's
    /// kernels round differently, an image can move, and the table would
    /// disagree with its own files.
    fn outcomes(
        &self,
        trained: &TrainedPoint,
        qnet: &QuantizedNet,
        reported: Option<&PointRecord>,
    ) -> Result<Outcomes, SweepError> {
        let path = Outcomes::path(&trained.dir);
        if let Some(row) = reported {
            let known_path = Outcomes::path(&self.store.point_dir(&row.key()));
            if let Some(known) = Outcomes::read(&known_path)? {
                known.check_against(row, &known_path)?;
                if known_path != path {
                    known.write(&path)?;
                }
                return Ok(known);
            }
        }
        let outcomes = Outcomes {
            validation: Correct::new(
                qnet.correct(&self.val_data.images, &self.val_data.labels)?,
                self.val_data.fingerprint(),
            ),
            test: Correct::new(
                qnet.correct(&self.test_data.images, &self.test_data.labels)?,
                self.test_data.fingerprint(),
            ),
        };
        outcomes.write(&path)?;
        Ok(outcomes)
    }

    /// The measuring half of a point under `scheduler`: quantize, remove
    /// the internal channels that carry nothing, count on the integer
    /// weights, and run every layer on real ciphertexts for `he.images` test
    /// images, each decrypted and verified; the executor's counts must equal
    /// the cost model's, layer by layer; then the whole network end to end.
    /// `reported` is a row that measured the same weights
    /// ([`Self::same_weights`]). Under the same schedule it measured this
    /// very computation, so its row is this point's, at this target:
    /// nothing is run twice.
    pub fn measure_point(
        &self,
        trained: &TrainedPoint,
        scheduler: &Scheduler,
        ctx: &mut HeContext,
        measured: &PrimitiveCosts,
        reported: Option<&PointRecord>,
    ) -> Result<PointResult, SweepError> {
        let spec = &self.spec;
        let qnet = QuantizedNet::new(&trained.folded, spec.quant_config(), self.calibration())?;
        let outcomes = self.outcomes(trained, &qnet, reported)?;
        let accuracy_quantized = outcomes.test.accuracy();
        // Counted on the integer weights the executor runs (quantization
        // keeps the float sparsity pattern, so `explore count` on the saved
        // folded.json gives the same counts).
        let deployed = qnet.deployed();
        let q_convs: Vec<Vec<i64>> = deployed.convs.iter().map(|l| l.weight.clone()).collect();
        let cost = he::network_cost(&deployed.spec, &q_convs, &deployed.fc.weight, scheduler)?;
        let dense_cost = he::dense_network_cost(&self.net, scheduler)?;
        let key = trained.key;
        if let Some(row) = reported.filter(|r| r.schedule == scheduler.schedule()) {
            return Ok(PointResult {
                record: PointRecord {
                    target: key.target,
                    ..row.clone()
                },
                dense_cost,
                cost,
                checkpoint: trained.dir.clone(),
            });
        }
        let p = ctx.params();
        // The special prime serves key switching; coefficient encoding has none.
        let special = p.special_bits.filter(|_| scheduler.schedule().rotates());
        let moduli = he::ModulusChoice::holding(
            p.poly_degree,
            p.plaintext_bits,
            cost.depth(),
            (p.moduli_bits(), special),
            spec.he.noise_margin,
            he::Flooding::OFF,
        )?;
        let images = spec.he.images.min(self.test_data.len());
        let mut measured_ms = 0.0;
        let mut noise_budget = i64::MAX;
        for i in 0..images {
            let run = he::run_network(
                ctx,
                &deployed,
                &cost,
                self.test_data.image(i),
                spec.he.repeats,
            )?;
            measured_ms += run.measured_ms / images as f64;
            noise_budget = noise_budget.min(run.noise_budget_bits());
        }
        let e2e = self.infer(&qnet, scheduler)?;
        let gc = e2e.as_ref().and_then(|r| r.nonlinear.as_ref());
        let (pruned, recovered) = (trained.summary.pruned, trained.summary.recovered);
        let record = PointRecord {
            sweep: spec.name.clone(),
            model: spec.model.arch.to_string(),
            dataset: spec.data.dataset.to_string(),
            schedule: scheduler.schedule(),
            device: spec.train.device,
            strategy: key.strategy,
            target: key.target,
            budget: key.budget.unwrap_or(0) as u64,
            seed: key.seed,
            // The float model's accuracy does not depend on the schedule
            // either: a row that reports the point already keeps its value.
            accuracy: reported.map_or(trained.summary.accuracy, |r| r.accuracy),
            accuracy_quantized,
            test_images: self.test_data.len() as u64,
            val_accuracy: outcomes.validation.accuracy(),
            val_images: self.val_data.len() as u64,
            weight_sparsity: trained.summary.weight_sparsity,
            rotations: cost.total.rotations() as u64,
            rotations_hoisted: cost.total.rot_hoisted as u64,
            ciphertext_moduli: moduli.describe(),
            noise_budget_bits: noise_budget.max(0) as u64,
            rotations_dense: dense_cost.total.rotations() as u64,
            pmults: cost.total.pmults as u64,
            adds: cost.total.adds as u64,
            galois_keys: cost.keys as u64,
            galois_key_bytes: ctx.key_bytes(&cost.key_set)? as u64,
            latency_model_ms: cost.total.latency_ms(measured),
            latency_measured_ms: measured_ms,
            he_verified: true,
            train_seconds: trained.summary.train_seconds,
            train_steps: trained.summary.train_steps,
            e2e_server_ms: e2e.as_ref().map_or(f64::NAN, |r| r.server_ms.mean),
            e2e_client_ms: e2e.as_ref().map_or(f64::NAN, |r| r.client_ms.mean),
            bytes_up: e2e.as_ref().map_or(0, |r| r.bytes_up.mean.round() as u64),
            bytes_down: e2e.as_ref().map_or(0, |r| r.bytes_down.mean.round() as u64),
            rounds: e2e.as_ref().map_or(0, |r| r.rounds as u64),
            infer_images: e2e.as_ref().map_or(0, |r| r.images as u64),
            test_set: outcomes.test.set.clone(),
            recovery_epochs: trained.summary.recovery_epochs,
            recovery_steps: trained.summary.recovery_steps,
            pruned_accuracy: pruned.map_or(f64::NAN, |a| a.test),
            pruned_val_accuracy: pruned.and_then(|a| a.validation).unwrap_or(f64::NAN),
            recovered_accuracy: recovered.map_or(f64::NAN, |a| a.test),
            recovered_val_accuracy: recovered.and_then(|a| a.validation).unwrap_or(f64::NAN),
            relus: gc.map_or(0, |g| g.relus as u64),
            gc_ms: gc.map_or(f64::NAN, |g| g.server_ms.mean + g.client_ms.mean),
            gc_offline_bytes: gc.map_or(0, |g| g.offline_bytes.mean.round() as u64),
            gc_online_bytes: gc.map_or(0, |g| g.online_bytes.mean.round() as u64),
            gc_rounds: gc.map_or(0, |g| g.rounds as u64),
            constant_time: e2e.as_ref().is_some_and(|r| r.constant_time),
        };
        Ok(PointResult {
            record,
            dense_cost,
            cost,
            checkpoint: trained.dir.clone(),
        })
    }
}
