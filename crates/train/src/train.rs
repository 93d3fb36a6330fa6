//! SGD training and evaluation of a [`ResNet`] on a [`Dataset`], and the
//! device they run on. (The dense run behind `explore train`, with its
//! checkpoint cache, is the sweep's workspace in the `explore` crate.)
//!
//! A [`TrainHook`] lets the pruner add a penalty to the loss (group Lasso)
//! and re-apply masks after every optimizer step without its own loop.
//! Runs are deterministic in `cfg.seed`: it fixes the shuffling and the
//! augmentation, and [`device`] seeds weight initialization.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsAccumulator, GradientsParams, SgdConfig};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::model::{FakeQuant, ResNet};
use crate::profile::{Laps, StepProfile};
use explore_data::{self as data, Dataset};
use explore_he_model::arch::DatasetKind;
// A phase's settings are the spec's, re-exported beside the training that
// reads them.
pub use explore_spec::training::{Backend, LrSchedule, TrainConfig};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// `epoch` and `step` count from 1.
    #[error(
        "{label}: loss became {loss} at epoch {epoch}, step {step}: lower the learning rate (`lr`) or the regularization `lambda`"
    )]
    NonFinite {
        label: String,
        epoch: usize,
        step: usize,
        loss: f32,
    },
    #[error(
        "train.device: {0} needs a binary built with its feature: cargo build --release --features {feature} (or train on cpu)", feature = .0.feature().unwrap_or("")
    )]
    NotBuilt(Backend),
    #[error(
        "train.device: {0} found no device at run time: install a driver (for wgpu without a GPU, Mesa's software Vulkan: apt-get install mesa-vulkan-drivers libvulkan1) or train on cpu"
    )]
    NoDevice(Backend),
    #[error("{label}: the training set is empty: raise data.train_size")]
    EmptyDataset { label: String },
    #[error(
        "{label}: the model is built for {model} images but the data is {data}: use the same dataset in data.dataset and the checkpoint"
    )]
    DatasetMismatch {
        label: String,
        model: DatasetKind,
        data: DatasetKind,
    },
}

/// Where a phase stands after an optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The learning rate the step used.
    pub lr: f64,
    /// Fraction of the phase's steps done, in (0, 1].
    pub progress: f64,
}

/// Extends the training loop: a term added to the loss, and a transformation
/// of the model after each optimizer step (a proximal step, a mask, a
/// pruning schedule).
pub trait TrainHook {
    fn penalty(&self, _model: &ResNet) -> Option<Tensor<1>> {
        None
    }
    fn after_step(&mut self, model: ResNet, _step: &Step) -> ResNet {
        model
    }
}

/// Plain training.
pub struct NoHook;

impl TrainHook for NoHook {}

/// Knowledge distillation: the loss becomes `(1 - weight) * CE + weight *
/// T^2 * KL(teacher || student)` on logits softened by temperature `T`
/// (Hinton et al. 2015); the teacher runs in eval mode, without gradients.
pub struct Teacher<'a> {
    pub model: &'a ResNet,
    pub weight: f64,
    pub temperature: f64,
    /// Where the teacher's logits on the training images are kept across
    /// the phases that distil from it on them; `None` for a phase that
    /// computes its own.
    pub kept: Option<&'a KeptLogits>,
}

/// One teacher's logits on one training set, computed by the first
/// distilled phase whose images are fixed (see [`train`]) and reused by the
/// next: the teacher and the images do not change between those phases, so
/// neither do the logits. Kept with the batch size that computed them, and
/// reused only at that size: eval mode does not mix images, but a kernel
/// may round differently on another shape, and a reused run must equal a
/// recomputed one bit for bit. The caller keeps one per teacher and
/// training set.
#[derive(Debug, Default)]
pub struct KeptLogits(OnceLock<(usize, Vec<f32>)>);

impl Teacher<'_> {
    /// The teacher's logits on `x`.
    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        Tensor::from_inner(self.model.forward(x.inner()))
    }

    /// The teacher's logits for every image of `data`, in order, `classes`
    /// to an image, in batches of `batch_size`. In eval mode an image's
    /// logits do not depend on the batch around it, so when the images do
    /// not change between epochs (no augmentation) a phase computes them
    /// once instead of at every step.
    fn logits_of_all(&self, data: &Dataset, batch_size: usize, device: &Device) -> Vec<f32> {
        let indices: Vec<usize> = (0..data.len()).collect();
        let parts: Vec<Tensor<2>> = indices
            .chunks(batch_size.max(1))
            .map(|chunk| self.logits(Batch::new(data, chunk, None).tensors(device).0))
            .collect();
        Tensor::cat(parts, 0)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 logits")
    }
}

/// What a training phase adds to plain SGD on the cross-entropy.
pub struct Phase<'a> {
    pub hook: &'a mut dyn TrainHook,
    pub teacher: Option<Teacher<'a>>,
    /// Train through the integer model's rounding (quantization-aware).
    pub fake_quant: Option<&'a FakeQuant>,
    /// Time each part of every step ([`StepProfile`]), synchronizing the
    /// device at each boundary.
    pub profile: bool,
}

impl<'a> Phase<'a> {
    /// A phase with only `hook`.
    pub fn with(hook: &'a mut dyn TrainHook) -> Phase<'a> {
        Phase {
            hook,
            teacher: None,
            fake_quant: None,
            profile: false,
        }
    }
}

/// What a training run saw; loss and accuracy are means over the last epoch
/// (training mode, augmented inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainStats {
    pub epochs: usize,
    pub steps: usize,
    pub final_loss: f64,
    pub train_accuracy: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// Where the steps' time went, when the phase was profiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<StepProfile>,
}

/// The training device of `backend`, with autodiff, its weight
/// initialization seeded by `seed` (process-wide: initialization repeats
/// exactly when no other thread creates random tensors at the same time).
/// Errors when the binary was built without the backend's feature, or the
/// backend finds no device. The rest of the crate never names a backend.
pub fn device(backend: Backend, seed: u64) -> Result<Device, TrainError> {
    let device = match backend {
        Backend::Cpu => Device::flex(),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Device::cuda(0),
        // burn 0.22 deprecates its LibTorch backend, but it is the one that
        // runs PyTorch's own kernels: the reference the others are timed
        // against (README, "Backends and throughput").
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        Backend::Libtorch => Device::libtorch(),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        Backend::LibtorchCuda => Device::libtorch_cuda(0),
        #[allow(unreachable_patterns)]
        other => return Err(TrainError::NotBuilt(other)),
    };
    if backend != Backend::Cpu {
        probe(&device, backend)?;
    }
    let device = device.autodiff();
    device.seed(seed);
    Ok(device)
}

/// Creates one tensor on `device`: backends find their adapter lazily and
/// panic when there is none, which becomes an error naming the fix.
fn probe(device: &Device, backend: Backend) -> Result<(), TrainError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = std::panic::catch_unwind(|| {
        Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), device)
            .into_data()
            .try_into_vec::<f32>()
            .ok()
    });
    std::panic::set_hook(hook);
    match found {
        Ok(Some(_)) => Ok(()),
        _ => Err(TrainError::NoDevice(backend)),
    }
}

/// Optimizer steps in a phase of `cfg` with `steps_per_epoch` batches per
/// epoch: its epochs, or fewer when `cfg.steps` caps them.
/// The optimizer steps a phase takes on `images` training images: its
/// budget, known before it runs.
pub fn phase_steps(cfg: &TrainConfig, images: usize) -> usize {
    total_steps(cfg, images.div_ceil(cfg.batch_size))
}

pub fn total_steps(cfg: &TrainConfig, steps_per_epoch: usize) -> usize {
    let all = cfg.epochs * steps_per_epoch;
    cfg.steps.map_or(all, |cap| cap.min(all))
}

/// The learning rate of step `step` (from 0) of epoch `epoch` (from 0).
/// The first `warmup` of the phase's steps rise linearly to `lr` (step `i`
/// of `w` takes `lr (i + 1) / w`); the schedule then runs over the rest.
/// Cosine decays per step, from `lr` to 0; step divides by 10 once half and
/// again once three quarters of the scheduled steps have passed, at the
/// start of an epoch.
pub fn learning_rate(cfg: &TrainConfig, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
    let total = total_steps(cfg, steps_per_epoch).max(1);
    let warm = (cfg.warmup * total as f64).round() as usize;
    let at = epoch * steps_per_epoch + step;
    if at < warm {
        return cfg.lr * (at + 1) as f64 / warm as f64;
    }
    let scheduled = (total - warm).max(1) as f64;
    match cfg.schedule {
        LrSchedule::Constant => cfg.lr,
        LrSchedule::Cosine => {
            let t = (at - warm) as f64 / scheduled;
            cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
        LrSchedule::Step => {
            let start = (epoch * steps_per_epoch).saturating_sub(warm) as f64 / scheduled;
            let drops = [0.5, 0.75].iter().filter(|&&f| start >= f).count();
            cfg.lr * 0.1f64.powi(drops as i32)
        }
    }
}

/// Batches gathered ahead of the step that trains.
const PREFETCH: usize = 2;

/// Trains `model` with SGD (momentum, weight decay) for `cfg.epochs` on
/// `train`, shuffled and (if `cfg.augment`) augmented by `cfg.seed`, with
/// what `phase` adds. `label` names the run in the progress bar and errors.
pub fn train(
    model: ResNet,
    train: &Dataset,
    cfg: &TrainConfig,
    phase: Phase,
    label: &str,
) -> Result<(ResNet, TrainStats), TrainError> {
    let Phase {
        hook,
        teacher,
        fake_quant,
        profile,
    } = phase;
    if train.is_empty() {
        return Err(TrainError::EmptyDataset {
            label: label.into(),
        });
    }
    check_dataset(&model, train.kind, label)?;
    let model = model.train();
    let device = model.fc.weight.device();
    let mut optim = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(cfg.momentum)
                .with_dampening(0.0),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)))
        .init();
    let loss_fn = CrossEntropyLoss::new(None, &device);
    let replicas = Replicas::new(cfg.replicas);
    let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
    let total = total_steps(cfg, steps_per_epoch);
    let progress = progress_bar(label, total);
    let start = Instant::now();
    let mut last = EpochTotals::default();
    let mut seen = 0usize;
    let profiling = profile.then_some(&device);
    let mut profiled = StepProfile::default();
    let mut unread = Unread::default();
    // The teacher's eval-mode forward ran at every step of a distilled
    // phase; where every epoch shows the teacher the same images, one
    // pass over them replaces it, or none where an earlier phase kept it.
    let fixed_inputs = !cfg.augment || !data::augments(train.kind);
    let computed: Vec<f32>;
    let cached: Option<&[f32]> = match teacher.as_ref().filter(|_| fixed_inputs) {
        None => None,
        Some(t) => {
            let compute = || t.logits_of_all(train, cfg.batch_size, &device);
            let kept = t
                .kept
                .map(|k| k.0.get_or_init(|| (cfg.batch_size, compute())))
                .filter(|(batch_size, _)| *batch_size == cfg.batch_size);
            Some(match kept {
                Some((_, logits)) => logits,
                None => {
                    computed = compute();
                    &computed
                }
            })
        }
    };
    let model = std::thread::scope(|scope| -> Result<ResNet, TrainError> {
        let mut model = model;
        // Batches are gathered (and augmented) on a thread of their own, a
        // few steps ahead of the step that trains: the same shuffles and
        // augmentations in the same order as gathering them here, so the
        // run is unchanged, and a GPU need not wait for the host. Dropping
        // the receiver (the run stopped early) ends the thread.
        let (ready, batches) = std::sync::mpsc::sync_channel::<(usize, usize, Batch)>(PREFETCH);
        scope.spawn(move || {
            let mut rng = StdRng::seed_from_u64(cfg.seed);
            let mut order: Vec<usize> = (0..train.len()).collect();
            for epoch in 0..cfg.epochs {
                if epoch * steps_per_epoch >= total {
                    break;
                }
                order.shuffle(&mut rng);
                let steps = order
                    .chunks(cfg.batch_size)
                    .enumerate()
                    .take(total - epoch * steps_per_epoch);
                for (step, indices) in steps {
                    let mut batch = Batch::new(train, indices, cfg.augment.then_some(&mut rng));
                    if let Some(all) = &cached {
                        batch = batch.with_teacher_logits(all, train.kind.classes(), indices);
                    }
                    if ready.send((epoch, step, batch)).is_err() {
                        return;
                    }
                }
            }
        });
        let mut laps = Laps::new(profiling);
        for (epoch, step, batch) in batches {
            laps.lap(|p| &mut p.data_ms);
            if step == 0 {
                last = EpochTotals::default();
            }
            let epoch_steps = steps_per_epoch.min(total - epoch * steps_per_epoch);
            let images = batch.len();
            // Each shard's mean loss is weighted by its share of the batch,
            // so the summed gradients are those of the whole batch's mean.
            let shards = replicas.map(batch.shards(cfg.replicas), |shard| {
                let mut laps = Laps::new(profiling);
                // A fork has its own autodiff leaves: replicas sharing the
                // parameters' nodes would share one graph and its lock.
                let model = model.clone().fork(&device);
                let share = shard.len() as f32 / images as f32;
                let cached = shard.teacher_logits(&device);
                let (x, y) = shard.tensors(&device);
                laps.lap(|p| &mut p.upload_ms);
                let logits = match fake_quant {
                    Some(fq) => model.forward_fake_quant(x.clone(), fq),
                    None => model.forward(x.clone()),
                };
                let mut loss = loss_fn.forward(logits.clone(), y.clone());
                if let Some(t) = &teacher {
                    let z_t = cached.unwrap_or_else(|| t.logits(x));
                    loss = loss.mul_scalar(1.0 - t.weight)
                        + distillation(logits.clone(), z_t, t.temperature).mul_scalar(t.weight);
                }
                let loss = loss.mul_scalar(share);
                laps.lap(|p| &mut p.forward_ms);
                // Kept on the device: read with the next few steps' (Unread).
                let loss_value = loss.clone().detach();
                let correct = correct(logits.detach(), y);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                laps.lap(|p| &mut p.backward_ms);
                (loss_value, correct, grads, laps.parts)
            });
            laps.skip();
            let per_replica = 1.0 / shards.len() as f64;
            let mut loss_value: Option<Tensor<1>> = None;
            let mut right: Option<Tensor<1>> = None;
            let mut accumulator = GradientsAccumulator::<ResNet>::new();
            for (loss, correct, grads, parts) in shards {
                loss_value = Some(loss_value.map_or(loss.clone(), |l| l + loss));
                right = Some(right.map_or(correct.clone(), |r| r + correct));
                accumulator.accumulate(&model, grads);
                profiled.add(&parts, per_replica);
            }
            laps.lap(|p| &mut p.gradients_ms);
            let mut loss_value = loss_value.expect("at least one replica");
            if let Some(penalty) = hook.penalty(&model) {
                loss_value = loss_value + penalty.clone().detach();
                accumulator.accumulate(
                    &model,
                    GradientsParams::from_grads(penalty.backward(), &model),
                );
            }
            laps.lap(|p| &mut p.hook_ms);
            unread.push(
                (epoch, step, images),
                loss_value,
                right.expect("at least one replica"),
            );
            // Read every few steps and at the end of an epoch: a read waits
            // for the device, which a GPU would otherwise run ahead of.
            if unread.len() == READ_EVERY || step + 1 == epoch_steps {
                if let Err(e) = unread.read(&mut last, label) {
                    progress.abandon();
                    return Err(e);
                }
                laps.lap(|p| &mut p.readback_ms);
                progress.set_message(format!(
                    "epoch {}/{} loss {:.3} acc {:.3} {:.0} img/s",
                    epoch + 1,
                    cfg.epochs,
                    last.loss(),
                    last.accuracy(),
                    (epoch * train.len() + last.images) as f64 / start.elapsed().as_secs_f64()
                ));
            }
            let lr = learning_rate(cfg, epoch, step, steps_per_epoch);
            let done = Step {
                lr,
                progress: (epoch * steps_per_epoch + step + 1) as f64 / total as f64,
            };
            seen += images;
            laps.skip();
            let stepped = optim.step(lr, model, accumulator.grads());
            laps.lap(|p| &mut p.optimizer_ms);
            model = hook.after_step(stepped, &done);
            laps.lap(|p| &mut p.hook_ms);
            profiled.add(&laps.parts, 1.0);
            profiled.steps += 1;
            progress.inc(1);
            laps = Laps::new(profiling);
        }
        Ok(model)
    })?;
    progress.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let stats = TrainStats {
        epochs: cfg.epochs,
        steps: total,
        final_loss: last.loss(),
        train_accuracy: last.accuracy(),
        seconds,
        images_per_second: seen as f64 / seconds,
        profile: profile.then_some(profiled),
    };
    Ok((model, stats))
}

/// `T^2 * KL(softmax(z_t / T) || softmax(z_s / T))`, averaged over the
/// batch, for the student's `logits` and the teacher's `teacher_logits` on
/// the same images, at temperature `t`.
fn distillation(logits: Tensor<2>, teacher_logits: Tensor<2>, t: f64) -> Tensor<1> {
    let z_t = teacher_logits.div_scalar(t);
    let log_p_t = log_softmax(z_t.clone(), 1);
    let p_t = softmax(z_t, 1);
    let log_p_s = log_softmax(logits.div_scalar(t), 1);
    (p_t * (log_p_t - log_p_s))
        .sum_dim(1)
        .mean()
        .mul_scalar(t * t)
}

/// Top-1 accuracy in `[0, 1]` of `model` in eval mode (BatchNorm running
/// statistics, no autodiff) on `data`.
pub fn evaluate(model: &ResNet, data: &Dataset, batch_size: usize, replicas: usize) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let model = model.valid();
    let device = model.fc.weight.device();
    let replicas = Replicas::new(replicas);
    let indices: Vec<usize> = (0..data.len()).collect();
    // Counted on the device and read once, at the end.
    let right: Vec<Tensor<1>> = indices
        .chunks(batch_size.max(1))
        .flat_map(|chunk| {
            let batch = Batch::new(data, chunk, None);
            replicas.map(batch.shards(replicas.len()), |shard| {
                let (x, y) = shard.tensors(&device);
                correct(model.clone().forward(x), y)
            })
        })
        .collect();
    let right: usize = read_all(right).into_iter().map(|r| r as usize).sum();
    right as f64 / data.len() as f64
}

/// Re-estimates BatchNorm's running statistics for the network as it now
/// is: pruning changes what every later layer sees, and a final mask update
/// leaves statistics averaged over masks that no longer hold. Runs
/// `batches` batches of `cfg.batch_size` training images (shuffled by
/// `cfg.seed`, augmented when `cfg.augment`, cycling when the set is
/// shorter) forward in training mode; nothing else changes. BatchNorm's
/// momentum (0.1) leaves the old statistics a weight of 0.9^batches.
pub fn recalibrate_batchnorm(
    model: ResNet,
    data: &Dataset,
    cfg: &TrainConfig,
    batches: usize,
) -> ResNet {
    if batches == 0 || data.is_empty() {
        return model;
    }
    let model = model.train();
    let device = model.fc.weight.device();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut rng);
    let chunks: Vec<Vec<usize>> = order
        .chunks(cfg.batch_size)
        .map(<[usize]>::to_vec)
        .collect();
    for indices in chunks.iter().cycle().take(batches) {
        let batch = Batch::new(data, indices, cfg.augment.then_some(&mut rng));
        let (x, _) = batch.tensors(&device);
        // The statistics move inside the forward; the output is not needed.
        let _ = model.forward(x);
    }
    model
}

/// The one-line summary `explore train` prints and saves as `train.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseSummary {
    pub test_accuracy: f64,
    /// Float accuracy on the validation split, what a choice of training
    /// budget reads (`null` without one, and in caches written before it).
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Wall time of training (not evaluation or saving).
    pub seconds: f64,
    /// The weights file, `<output>/dense-<hash>/model.safetensors`.
    pub checkpoint: PathBuf,
}

fn check_dataset(model: &ResNet, data: DatasetKind, label: &str) -> Result<(), TrainError> {
    let expected = model.spec().dataset;
    let fits = expected.input_shape() == data.input_shape() && expected.classes() == data.classes();
    if fits {
        Ok(())
    } else {
        Err(TrainError::DatasetMismatch {
            label: label.into(),
            model: expected,
            data,
        })
    }
}

/// Images `indices` of `data` (augmented when `rng` is given) and their
/// labels, gathered in order so augmentation does not depend on how the
/// batch is later split.
struct Batch {
    shape: (usize, usize, usize),
    pixels: Vec<f32>,
    labels: Vec<i64>,
    /// The teacher's logits for these images, computed ahead
    /// ([`Teacher::logits_of_all`]); empty when the teacher runs at the
    /// step (or there is none).
    teacher_logits: Vec<f32>,
}

impl Batch {
    fn new(data: &Dataset, indices: &[usize], mut rng: Option<&mut StdRng>) -> Batch {
        let mut pixels = Vec::with_capacity(indices.len() * data.image_len());
        for &i in indices {
            let start = pixels.len();
            pixels.extend_from_slice(data.image(i));
            if let Some(rng) = rng.as_deref_mut() {
                data::augment(data.kind, &mut pixels[start..], rng);
            }
        }
        Batch {
            shape: data.kind.input_shape(),
            pixels,
            labels: indices.iter().map(|&i| data.labels[i] as i64).collect(),
            teacher_logits: Vec::new(),
        }
    }

    /// The batch with images `indices`' rows of `all`, the teacher's
    /// logits for every image of the set, `classes` to an image, in order.
    fn with_teacher_logits(mut self, all: &[f32], classes: usize, indices: &[usize]) -> Batch {
        self.teacher_logits = indices
            .iter()
            .flat_map(|&i| &all[i * classes..(i + 1) * classes])
            .copied()
            .collect();
        self
    }

    /// `[n, classes]` teacher logits on `device`, if computed ahead.
    fn teacher_logits(&self, device: &Device) -> Option<Tensor<2>> {
        if self.teacher_logits.is_empty() {
            return None;
        }
        let n = self.len();
        let classes = self.teacher_logits.len() / n;
        let data = TensorData::new(self.teacher_logits.clone(), [n, classes]);
        Some(Tensor::from_data(data, device))
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    /// `n` contiguous shards of near-equal size (fewer when the batch is
    /// smaller than `n`).
    fn shards(self, n: usize) -> Vec<Batch> {
        let (c, h, w) = self.shape;
        let len = self.len();
        let size = len.div_ceil(n).max(1);
        let classes = self.teacher_logits.len() / len.max(1);
        (0..len)
            .step_by(size)
            .map(|start| {
                let images = start..(start + size).min(len);
                let rows = |per: usize| images.start * per..images.end * per;
                Batch {
                    shape: self.shape,
                    pixels: self.pixels[rows(c * h * w)].to_vec(),
                    labels: self.labels[images.clone()].to_vec(),
                    teacher_logits: self.teacher_logits[rows(classes)].to_vec(),
                }
            })
            .collect()
    }

    /// `[n, c, h, w]` images and `[n]` labels on `device`.
    fn tensors(self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let (c, h, w) = self.shape;
        let n = self.len();
        let x = Tensor::from_data(TensorData::new(self.pixels, [n, c, h, w]), device);
        let y = Tensor::from_data(TensorData::new(self.labels, [n]), device);
        (x, y)
    }
}

/// Dedicated worker threads, one group per model replica, kept for a whole
/// run: burn-flex parallelizes inside an operation through rayon, which
/// leaves most of the backward pass on one core, whereas replicas run whole
/// forward and backward passes side by side. Each replica must stay on the
/// same thread because BatchNorm keeps its running statistics per thread.
struct Replicas {
    pools: Vec<rayon::ThreadPool>,
}

impl Replicas {
    /// `n` replicas sharing the current rayon pool's threads.
    fn new(n: usize) -> Replicas {
        let threads = (rayon::current_num_threads() / n.max(1)).max(1);
        let pools = (0..n.max(1))
            .map(|_| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("threads can be spawned")
            })
            .collect();
        Replicas { pools }
    }

    fn len(&self) -> usize {
        self.pools.len()
    }

    /// `f` of each item, item `i` on replica `i`, all at once; results in
    /// item order.
    fn map<I: Send, T: Send>(&self, items: Vec<I>, f: impl Fn(I) -> T + Sync) -> Vec<T> {
        assert!(items.len() <= self.pools.len(), "one item per replica");
        let f = &f;
        std::thread::scope(|scope| {
            let running: Vec<_> = items
                .into_iter()
                .zip(&self.pools)
                .map(|(item, pool)| scope.spawn(move || pool.install(|| f(item))))
                .collect();
            running
                .into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }
}

/// How many of `logits` pick their label, as a one-element tensor on the
/// device.
fn correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let predicted = logits.argmax(1).reshape([n]);
    predicted.equal(labels).float().sum()
}

/// One-element tensors read back to the host in one transfer.
fn read_all(parts: Vec<Tensor<1>>) -> Vec<f32> {
    Tensor::cat(parts, 0)
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 values")
}

/// Steps between reads of the loss and accuracy.
const READ_EVERY: usize = 16;

/// Steps whose loss and number right are still on the device, read
/// together so that a step does not wait for the device.
#[derive(Default)]
struct Unread {
    /// (epoch, step, images) of each step.
    steps: Vec<(usize, usize, usize)>,
    losses: Vec<Tensor<1>>,
    right: Vec<Tensor<1>>,
}

impl Unread {
    fn len(&self) -> usize {
        self.steps.len()
    }

    fn push(&mut self, at: (usize, usize, usize), loss: Tensor<1>, right: Tensor<1>) {
        self.steps.push(at);
        self.losses.push(loss);
        self.right.push(right);
    }

    /// Reads every pending step into `totals`, in order; the first
    /// non-finite loss is an error naming its epoch and step.
    fn read(&mut self, totals: &mut EpochTotals, label: &str) -> Result<(), TrainError> {
        if self.steps.is_empty() {
            return Ok(());
        }
        let losses = read_all(std::mem::take(&mut self.losses));
        let right = read_all(std::mem::take(&mut self.right));
        for (((epoch, step, images), loss), right) in self.steps.drain(..).zip(losses).zip(right) {
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    label: label.into(),
                    epoch: epoch + 1,
                    step: step + 1,
                    loss,
                });
            }
            totals.add(images, loss, right as usize);
        }
        Ok(())
    }
}

#[derive(Default)]
struct EpochTotals {
    images: usize,
    batches: usize,
    loss_sum: f64,
    correct: usize,
}

impl EpochTotals {
    fn add(&mut self, images: usize, loss: f32, correct: usize) {
        self.images += images;
        self.batches += 1;
        self.loss_sum += loss as f64;
        self.correct += correct;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.batches.max(1) as f64
    }
    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.images.max(1) as f64
    }
}

fn progress_bar(label: &str, steps: usize) -> ProgressBar {
    let bar = explore_data::progress::add(ProgressBar::new(steps as u64));
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("static template"),
    );
    bar.set_prefix(label.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use explore_he_model::arch::{Arch, NetSpec};

    fn spec() -> NetSpec {
        NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.125).unwrap()
    }

    /// `n` Fashion-MNIST-shaped images whose class is a bright 7x7 patch at
    /// one of ten positions, over seeded noise: learnable in a few steps.
    fn synthetic(n: usize, seed: u64) -> Dataset {
        use rand::Rng;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut images = Vec::with_capacity(n * 28 * 28);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % 10;
            let (py, px) = ((class / 5) * 14 + 3, (class % 5) * 5);
            for y in 0..28 {
                for x in 0..28 {
                    let inside = (py..py + 7).contains(&y) && (px..px + 7).contains(&x);
                    images.push(if inside { 2.0 } else { 0.0 } + rng.random_range(-0.3..0.3));
                }
            }
            labels.push(class as u16);
        }
        Dataset {
            kind: DatasetKind::FashionMnist,
            images,
            labels,
        }
    }

    /// The CPU training device, seeded.
    fn device(seed: u64) -> Device {
        super::device(Backend::Cpu, seed).unwrap()
    }

    fn cfg(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size: 10,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: LrSchedule::Cosine,
            augment: false,
            seed: 7,
            replicas: 2,
            device: Backend::Cpu,
            steps: None,
            warmup: 0.0,
        }
    }

    #[test]
    fn shards_split_a_batch_in_order_with_their_own_pixels() {
        let data = synthetic(5, 4);
        let shards = Batch::new(&data, &[4, 0, 2, 1, 3], None).shards(2);
        let sizes: Vec<usize> = shards.iter().map(Batch::len).collect();
        assert_eq!(sizes, [3, 2]);
        assert_eq!(shards[0].labels, [4, 0, 2]);
        assert_eq!(shards[1].labels, [1, 3]);
        assert_eq!(&shards[1].pixels[..28 * 28], data.image(1));
        assert_eq!(Batch::new(&data, &[3], None).shards(2).len(), 1);
        // Teacher logits computed ahead follow their images into the shards.
        let all: Vec<f32> = (0..5 * 10).map(|v| v as f32).collect();
        let order = [4, 0, 2, 1, 3];
        let shards = Batch::new(&data, &order, None)
            .with_teacher_logits(&all, 10, &order)
            .shards(2);
        assert_eq!(shards[0].teacher_logits[..10], all[40..50]);
        assert_eq!(shards[0].teacher_logits[10..20], all[..10]);
        assert_eq!(shards[1].teacher_logits[10..], all[30..40]);
    }

    #[test]
    fn schedules_follow_their_definitions() {
        let mut c = cfg(4);
        assert_eq!(learning_rate(&c, 0, 0, 10), 0.05);
        assert!((learning_rate(&c, 2, 0, 10) - 0.025).abs() < 1e-12);
        assert!(learning_rate(&c, 3, 9, 10) < 0.05 * 0.01);
        c.schedule = LrSchedule::Step;
        let lrs: Vec<f64> = (0..4).map(|e| learning_rate(&c, e, 5, 10)).collect();
        assert_eq!(lrs[..2], [0.05, 0.05]);
        assert!((lrs[2] - 0.005).abs() < 1e-12 && (lrs[3] - 0.0005).abs() < 1e-12);
        c.schedule = LrSchedule::Constant;
        assert_eq!(learning_rate(&c, 3, 9, 10), 0.05);
    }

    #[test]
    fn a_warm_up_rises_to_the_peak_then_the_cosine_decays_to_zero() {
        // 40 steps, the first 10 warming up.
        let c = TrainConfig {
            warmup: 0.25,
            ..cfg(4)
        };
        let lrs: Vec<f64> = (0..40)
            .map(|i| learning_rate(&c, i / 10, i % 10, 10))
            .collect();
        assert!((lrs[0] - 0.005).abs() < 1e-12, "{}", lrs[0]);
        assert!((lrs[4] - 0.025).abs() < 1e-12);
        assert!(lrs[..10].windows(2).all(|w| w[0] < w[1]));
        // The peak at the warm-up's last step and the cosine's first.
        assert_eq!((lrs[9], lrs[10]), (0.05, 0.05));
        // Half the peak halfway through the 30 cosine steps.
        assert!((lrs[25] - 0.025).abs() < 1e-12, "{}", lrs[25]);
        assert!(lrs[10..].windows(2).all(|w| w[0] > w[1]));
        assert!(lrs[39] < 0.05 * 0.01);
        // No warm-up is the plain cosine.
        let plain = cfg(4);
        assert_eq!(learning_rate(&plain, 0, 0, 10), 0.05);
    }

    #[test]
    fn recalibration_moves_batchnorm_to_the_data_and_nothing_else() {
        let data = synthetic(32, 5);
        let model = ResNet::new(&spec(), &device(4));
        let weights = model.conv_weight_data();
        let c = TrainConfig {
            batch_size: 32,
            ..cfg(1)
        };
        // The whole set in every batch: the running mean converges to the
        // mean of the stem conv's output over the set.
        let model = recalibrate_batchnorm(model, &data, &c, 120);
        let shape = [32, 1, 28, 28];
        let x = Tensor::<4>::from_data(
            TensorData::new(data.images.clone(), shape),
            &model.fc.weight.device(),
        );
        let out = model.convs[0].conv.forward(x);
        let want: Vec<f32> = out
            .mean_dim(0)
            .mean_dim(2)
            .mean_dim(3)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let got: Vec<f32> = model.convs[0]
            .bn
            .running_mean
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-3 + 1e-3 * w.abs(), "{got:?} {want:?}");
        }
        assert!(want.iter().any(|w| w.abs() > 1e-2), "{want:?}");
        assert_eq!(model.conv_weight_data(), weights);
    }

    #[test]
    fn a_step_cap_shortens_a_phase_and_its_schedule() {
        let capped = TrainConfig {
            steps: Some(15),
            ..cfg(4)
        };
        assert_eq!(total_steps(&capped, 10), 15);
        assert_eq!(total_steps(&cfg(4), 10), 40);
        // Cosine reaches half the rate at half the capped phase.
        assert!(
            (learning_rate(&capped, 0, 7, 10)
                - 0.05 * 0.5 * (1.0 + (std::f64::consts::PI * 7.0 / 15.0).cos()))
            .abs()
                < 1e-12
        );
        let data = synthetic(20, 9);
        let (_, stats) = train(
            ResNet::new(&spec(), &device(2)),
            &data,
            &TrainConfig {
                steps: Some(3),
                ..cfg(5)
            },
            Phase::with(&mut NoHook),
            "capped",
        )
        .unwrap();
        assert_eq!(stats.steps, 3);
    }

    #[test]
    fn training_learns_and_repeats_exactly_with_the_same_seed() {
        let data = synthetic(40, 1);
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        let cfg = TrainConfig { lr: 0.1, ..cfg(10) };
        // Weight initialization draws from burn's process-wide RNG, which
        // tests running in parallel share: both runs start from one model.
        let initial = ResNet::new(&spec, &device(11));
        let _ = initial.fold();
        let run = || {
            let (model, stats) = train(
                initial.clone(),
                &data,
                &cfg,
                Phase::with(&mut NoHook),
                "test",
            )
            .unwrap();
            (
                evaluate(&model, &data, 16, 2),
                stats.final_loss,
                model.conv_weight_data(),
            )
        };
        let (acc, loss, weights) = run();
        assert!(acc >= 0.8, "accuracy {acc} on an easy task");
        let (acc2, loss2, weights2) = run();
        assert_eq!((acc, loss), (acc2, loss2));
        assert_eq!(weights, weights2);
    }

    struct NanPenalty;
    impl TrainHook for NanPenalty {
        fn penalty(&self, model: &ResNet) -> Option<Tensor<1>> {
            Some(model.conv_weights()[0].clone().sum().mul_scalar(f32::NAN))
        }
    }

    #[test]
    fn a_non_finite_loss_stops_with_its_epoch_and_step() {
        let data = synthetic(20, 2);
        let model = ResNet::new(&spec(), &device(0));
        match train(
            model,
            &data,
            &cfg(2),
            Phase::with(&mut NanPenalty),
            "diagonal-0.8-s0",
        ) {
            Err(e @ TrainError::NonFinite { .. }) => {
                let TrainError::NonFinite {
                    epoch, step, loss, ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!((epoch, step), (1, 1));
                assert!(loss.is_nan());
                let text = e.to_string();
                assert!(
                    text.starts_with("diagonal-0.8-s0: loss became NaN"),
                    "{text}"
                );
            }
            other => panic!("expected NonFinite, got {:?}", other.map(|(_, s)| s)),
        }
    }

    struct KeepMasks(Vec<Vec<f32>>);
    impl TrainHook for KeepMasks {
        fn after_step(&mut self, model: ResNet, _: &Step) -> ResNet {
            model.apply_masks(&self.0)
        }
    }

    #[test]
    fn masks_reapplied_by_a_hook_survive_training() {
        let spec = spec();
        let masks: Vec<Vec<f32>> = spec
            .convs
            .iter()
            .map(|c| (0..c.weight_len()).map(|i| (i % 2) as f32).collect())
            .collect();
        let model = ResNet::new(&spec, &device(5)).apply_masks(&masks);
        let before = model.conv_weight_data();
        let data = synthetic(20, 3);
        let mut keep = KeepMasks(masks.clone());
        let (model, _) = train(model, &data, &cfg(1), Phase::with(&mut keep), "mask").unwrap();
        let after = model.conv_weight_data();
        for ((w, m), b) in after.iter().zip(&masks).zip(&before) {
            assert!(w.iter().zip(m).all(|(w, m)| *m == 1.0 || *w == 0.0));
            assert_ne!(w, b, "kept weights were trained");
        }
    }

    #[test]
    fn distillation_vanishes_on_the_teachers_own_logits_and_teaches_a_student() {
        let data = synthetic(40, 6);
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        let long = TrainConfig { lr: 0.1, ..cfg(10) };
        let (teacher, _) = train(
            ResNet::new(&spec, &device(12)),
            &data,
            &long,
            Phase::with(&mut NoHook),
            "teacher",
        )
        .unwrap();
        let teacher_accuracy = evaluate(&teacher, &data, 16, 2);
        assert!(teacher_accuracy >= 0.8, "{teacher_accuracy}");
        let valid = teacher.valid();
        let t = Teacher {
            model: &valid,
            weight: 1.0,
            temperature: 4.0,
            kept: None,
        };
        let dev = teacher.fc.weight.device();
        let (x, _) = Batch::new(&data, &[0, 1, 2, 3], None).tensors(&dev);
        let own_logits = Tensor::from_inner(valid.forward(x.clone().inner()));
        let own = distillation(own_logits, t.logits(x), t.temperature);
        assert!(own.into_scalar::<f32>().abs() < 1e-5);
        // The logits a phase computes ahead are the teacher's on any batch
        // the images land in, row for row.
        let all = t.logits_of_all(&data, 16, &dev);
        let order = [7, 3, 39, 0, 21];
        let batch = Batch::new(&data, &order, None).with_teacher_logits(&all, 10, &order);
        let ahead = batch.teacher_logits(&dev).unwrap();
        let at_step = t.logits(batch.tensors(&dev).0);
        let gap = (ahead - at_step).abs().max().into_scalar::<f32>();
        assert!(gap < 1e-5, "{gap}");
        // A student trained on the teacher's soft labels alone learns the task.
        let (student, _) = train(
            ResNet::new(&spec, &device(13)),
            &data,
            &long,
            Phase {
                hook: &mut NoHook,
                teacher: Some(t),
                fake_quant: None,
                profile: false,
            },
            "student",
        )
        .unwrap();
        let student_accuracy = evaluate(&student, &data, 16, 2);
        assert!(student_accuracy >= 0.8, "{student_accuracy}");
    }

    /// A distilled phase with a teacher's `kept` logits computes them once
    /// at its batch size; the next phase reuses them, one at another batch
    /// size computes its own, and each trains exactly as without them.
    #[test]
    fn kept_teacher_logits_are_computed_once_and_change_no_run() {
        let data = synthetic(40, 6);
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        let teacher = ResNet::new(&spec, &device(21)).valid();
        let kept = KeptLogits::default();
        let run = |cfg: &TrainConfig, kept: Option<&KeptLogits>| {
            let teacher = Teacher {
                model: &teacher,
                weight: 0.5,
                temperature: 4.0,
                kept,
            };
            let phase = Phase {
                hook: &mut NoHook,
                teacher: Some(teacher),
                fake_quant: None,
                profile: false,
            };
            let student = ResNet::new(&spec, &device(22));
            train(student, &data, cfg, phase, "kept").unwrap().0.fold()
        };
        let (small, large) = (
            cfg(1),
            TrainConfig {
                batch_size: 20,
                ..cfg(1)
            },
        );
        let first = run(&small, Some(&kept));
        let (batch_size, logits) = kept.0.get().expect("kept by the first phase");
        let dev = device(0);
        let own = Teacher {
            model: &teacher,
            weight: 0.5,
            temperature: 4.0,
            kept: None,
        };
        assert_eq!(*batch_size, small.batch_size);
        assert_eq!(*logits, own.logits_of_all(&data, small.batch_size, &dev));
        assert_eq!(first, run(&small, None));
        assert_eq!(run(&small, Some(&kept)), first);
        assert_eq!(run(&large, Some(&kept)), run(&large, None));
        assert_eq!(kept.0.get().map(|k| k.0), Some(small.batch_size));
    }

    #[test]
    fn a_model_for_other_images_is_rejected() {
        let cifar = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 0.125).unwrap();
        let model = ResNet::new(&cifar, &device(0));
        let e = train(
            model,
            &synthetic(10, 0),
            &cfg(1),
            Phase::with(&mut NoHook),
            "x",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string().contains("cifar10") && e.to_string().contains("fashion-mnist"),
            "{e}"
        );
    }
}
