//! How a training phase is configured (epochs, batch, rate schedule,
//! replicas) and where it runs ([`Backend`]), as a spec gives it; the
//! training itself is the `explore-train` crate.

use serde::{Deserialize, Serialize};

/// How the learning rate moves over a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Cosine,
    /// Divide the rate by 10 at 50% and 75% of the epochs.
    Step,
    Constant,
}

/// One SGD training phase (dense training, regularization, fine-tuning),
/// as a spec gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    pub lr: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    #[serde(default = "default_schedule")]
    pub schedule: LrSchedule,
    /// Fraction of the phase's steps over which the rate rises linearly to
    /// `lr` before `schedule` runs over the rest: with a cosine, the
    /// learning-rate rewinding of a recovery phase (Renda et al. 2020).
    /// Left out of the serialized phase at 0, so that the hashes naming
    /// earlier phases' checkpoints (and earlier sweeps' locks) still match.
    #[serde(default, skip_serializing_if = "no_warmup")]
    pub warmup: f64,
    /// Random crop (4-pixel padding) and horizontal flip; CIFAR only.
    #[serde(default)]
    pub augment: bool,
    #[serde(default)]
    pub seed: u64,
    /// Model replicas each batch is split across, each on its own threads,
    /// their gradients summed (data parallelism: what makes training use
    /// more than one core). Results depend on it, since BatchNorm sees
    /// per-replica statistics, but not on the machine's core count. (With
    /// more than two, burn averages BatchNorm's per-thread running
    /// statistics in hash-map order, so repeat runs may differ in the last
    /// bits.)
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Where the phase trains: set once, in the spec's `train`; a later
    /// phase that names none takes it ([`crate::Spec::parse`]).
    #[serde(default)]
    pub device: Backend,
    /// Stop after this many optimizer steps (a phase shorter than its
    /// epochs; the learning-rate schedule spans the steps taken).
    #[serde(default)]
    pub steps: Option<usize>,
}

impl TrainConfig {
    /// This phase in replicate `replicate` of a sweep: its seed offset by
    /// the replicate's, so replicate 0's dense phase is the spec's own run,
    /// and mixed with the phase's kind, so that each phase of a replicate
    /// draws its own batch order (the same seed would replay the dense
    /// phase's first epochs in every later one). The one seed rule of every
    /// phase.
    pub fn for_replicate(&self, replicate: u64, phase: PhaseKind) -> TrainConfig {
        TrainConfig {
            seed: self.seed.wrapping_add(replicate) ^ phase.stream(),
            ..self.clone()
        }
    }

    /// What is wrong with the phase, as a message naming the fix.
    pub fn check(&self) -> Result<(), String> {
        let t = self;
        if t.batch_size == 0 {
            return Err("batch_size must be at least 1, e.g. 64".into());
        }
        if t.steps == Some(0) {
            return Err("steps 0 trains nothing: give a positive cap or leave steps out".into());
        }
        if !(1..=t.batch_size).contains(&t.replicas) {
            return Err(format!(
                "replicas {} must be between 1 and batch_size ({}), e.g. 2 on a 2-core machine",
                t.replicas, t.batch_size
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(format!("lr {} must be a positive number, e.g. 0.1", t.lr));
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return Err(format!(
                "momentum {} must be in [0, 1), e.g. 0.9",
                t.momentum
            ));
        }
        if !(0.0..1.0).contains(&t.warmup) {
            return Err(format!(
                "warmup {} must be a fraction of the phase in [0, 1), e.g. 0.1",
                t.warmup
            ));
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(format!(
                "weight_decay {} must be >= 0, e.g. 5e-4",
                t.weight_decay
            ));
        }
        Ok(())
    }
}

/// The phases of a replicate, each with its own stream of batch orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    Dense,
    Regularization,
    Finetune,
    Qat,
}

impl PhaseKind {
    /// What the phase's seed is mixed with: 0 for the dense phase, whose
    /// seed (and so every trained dense model) stays what it was.
    fn stream(self) -> u64 {
        match self {
            PhaseKind::Dense => 0,
            PhaseKind::Regularization => 0x5EED_0001 << 32,
            PhaseKind::Finetune => 0x5EED_0002 << 32,
            PhaseKind::Qat => 0x5EED_0003 << 32,
        }
    }
}

fn no_warmup(w: &f64) -> bool {
    *w == 0.0
}

fn default_batch() -> usize {
    64
}
fn default_replicas() -> usize {
    2
}
fn default_momentum() -> f64 {
    0.9
}
fn default_wd() -> f64 {
    5e-4
}
fn default_schedule() -> LrSchedule {
    LrSchedule::Cosine
}

/// Where training runs: burn's `flex` backend on the CPU, or a GPU through
/// burn's `wgpu` (Vulkan, Metal, DirectX; or a software Vulkan driver) or
/// `cuda` backends, each behind the cargo feature of the same name; or
/// PyTorch's own kernels through burn's LibTorch backend (feature `tch`),
/// on the CPU (`libtorch`) or the first CUDA GPU (`libtorch-cuda`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Cpu,
    Wgpu,
    Cuda,
    Libtorch,
    #[serde(rename = "libtorch-cuda")]
    LibtorchCuda,
}

explore_he_model::named_enum!(Backend: String, |s| format!("unknown device `{s}`: use cpu, wgpu, cuda, libtorch or libtorch-cuda"), {
    Cpu => "cpu",
    Wgpu => "wgpu",
    Cuda => "cuda",
    Libtorch => "libtorch",
    LibtorchCuda => "libtorch-cuda",
});

impl Backend {
    /// Whether it trains on a GPU.
    pub fn on_gpu(self) -> bool {
        !matches!(self, Backend::Cpu | Backend::Libtorch)
    }

    /// The cargo feature a binary needs to train here (`None` for the
    /// default CPU backend).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Backend::Cpu => None,
            Backend::Wgpu => Some("wgpu"),
            Backend::Cuda => Some("cuda"),
            Backend::Libtorch | Backend::LibtorchCuda => Some("tch"),
        }
    }
}
