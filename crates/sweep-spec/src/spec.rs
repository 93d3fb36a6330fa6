//! The sweep spec: one YAML file (`sweeps/*.yaml`) shared by `explore train`,
//! `prune` and `sweep`, assembled from the domain types it configures (data,
//! training, pruning, HE). Parsing rejects unknown keys with their line and
//! column; [`Spec::load`] then checks values and names the field and the fix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::inference::{ConstantTime, ConstantTimeError, KeysMode, Protocol};
use crate::quant::{BITS, QuantConfig, Requantization};
use crate::recovery::{Finetune, PruneSchedule};
use crate::strategy::{GroupWeighting, LassoMethod, Norm, Strategy, TargetMetric};
use crate::training::{Backend, TrainConfig};
use explore_he_model::arch::{Arch, NetSpec};
use explore_he_model::cost::PrimitiveCosts;
use explore_he_model::schedule::{Hoisting, Schedule, Scheduler};

/// Equivalence margin of the report's claims by default: half a point.
pub const DEFAULT_MARGIN: f64 = 0.005;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read spec {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spec {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("spec {path}: field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    /// Defaults to `results/<name>`.
    #[serde(default)]
    pub output: Option<PathBuf>,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainConfig,
    #[serde(default)]
    pub prune: PruneSpec,
    #[serde(default)]
    pub he: HeSpec,
    #[serde(default)]
    pub report: ReportSpec,
    /// Worker threads for rayon (HE, data loading); 0 means all cores.
    #[serde(default)]
    pub threads: usize,
}

/// How the report states its claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Equivalence margin of paired accuracy claims, a fraction (0.005 is
    /// half a point): a point is "equivalent" to its control when the 90 %
    /// interval of their paired difference lies inside ±margin.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// The accuracy (a fraction) hypervolume is measured above: a point
    /// below it adds nothing. Absent: the dense model's mean accuracy less
    /// [`DEFAULT_HV_DROP`], so the area measures accuracy worth having
    /// rather than cost alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hv_reference: Option<f64>,
}

/// How far below dense the hypervolume's reference accuracy lies by
/// default: 2 points.
pub const DEFAULT_HV_DROP: f64 = 0.02;

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            margin: default_margin(),
            hv_reference: None,
        }
    }
}

fn default_margin() -> f64 {
    DEFAULT_MARGIN
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub arch: Arch,
    #[serde(default = "one")]
    pub width: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    #[serde(default = "default_strategies")]
    pub strategies: Vec<Strategy>,
    #[serde(default = "default_targets")]
    pub targets: Vec<f64>,
    #[serde(default = "default_metric")]
    pub target_metric: TargetMetric,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Prune the stem conv too (excluded by default: it is tiny and sensitive).
    #[serde(default)]
    pub include_first: bool,
    #[serde(default)]
    pub regularization: Option<RegularizationSpec>,
    /// The norm groups are ranked (and proximally shrunk) by: `saliency`
    /// (BN-folded weights times the layer's input RMS) or `raw`.
    #[serde(default)]
    pub norm: Norm,
    /// Recovery after pruning, at one budget or several
    /// ([`Finetune`]).
    #[serde(default)]
    pub finetune: Option<Finetune>,
    /// Prune gradually during fine-tuning, over the first `ramp` of the
    /// phase (else one shot before it).
    #[serde(default)]
    pub gradual: Option<GradualSpec>,
    /// `independent` (every target from the regularized model) or
    /// `trajectory` (each target on from the previous one). Absent: a
    /// trajectory with `gradual`, else independent, as sweeps before the
    /// choice ran; [`PruneSpec::schedule`] resolves it.
    #[serde(default, rename = "schedule", skip_serializing_if = "Option::is_none")]
    pub schedule_choice: Option<PruneSchedule>,
    /// Fine-tune (and QAT) with knowledge distillation from the dense model.
    #[serde(default)]
    pub distill: Option<DistillSpec>,
    /// Quantization-aware training after fine-tuning: the integer model's
    /// rounding in the forward pass, BatchNorm frozen.
    #[serde(default)]
    pub qat: Option<TrainConfig>,
}

impl Default for PruneSpec {
    fn default() -> Self {
        PruneSpec {
            strategies: default_strategies(),
            targets: default_targets(),
            target_metric: default_metric(),
            seeds: default_seeds(),
            include_first: false,
            regularization: None,
            norm: Norm::default(),
            finetune: None,
            gradual: None,
            schedule_choice: None,
            distill: None,
            qat: None,
        }
    }
}

impl PruneSpec {
    /// How targets are reached: as the spec says, or by the documented
    /// default (a trajectory with gradual pruning, else independent).
    pub fn schedule(&self) -> PruneSchedule {
        self.schedule_choice.unwrap_or(if self.gradual.is_some() {
            PruneSchedule::Trajectory
        } else {
            PruneSchedule::Independent
        })
    }

    /// The recovery budgets (fine-tuning epochs) a point can have: the
    /// spec's list, or none without a fine-tuning phase.
    pub fn budgets(&self) -> &[usize] {
        self.finetune.as_ref().map_or(&[], |f| &f.budgets)
    }
}

/// The group-Lasso phase before pruning HE-aware strategies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegularizationSpec {
    pub lambda: f64,
    #[serde(default = "default_weighting")]
    pub weighting: GroupWeighting,
    /// `proximal` (a soft-threshold after every step) or `subgradient` (the
    /// penalty's gradient in the loss).
    #[serde(default)]
    pub method: LassoMethod,
    /// Fraction of the phase over which lambda rises from 0 (proximal).
    #[serde(default = "default_ramp")]
    pub ramp: f64,
    pub train: TrainConfig,
}

/// The cubic pruning schedule of a fine-tuning phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradualSpec {
    /// Fraction of the phase over which the pruned fraction rises.
    #[serde(default = "default_ramp")]
    pub ramp: f64,
    /// Mask updates along the ramp.
    #[serde(default = "default_updates")]
    pub updates: usize,
}

/// Knowledge distillation from the dense model of the same seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// Weight of the distillation term (the cross-entropy gets 1 - weight).
    pub weight: f64,
    #[serde(default = "default_temperature")]
    pub temperature: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeSpec {
    #[serde(default = "default_degree")]
    pub poly_degree: usize,
    /// `best` (the cheapest packing and baby step per layer) or `gazelle`
    /// (the paper's setting).
    #[serde(default)]
    pub schedule: Schedule,
    /// Force this baby step on every layer (a power of two; `best` only).
    #[serde(default)]
    pub baby_step: Option<usize>,
    /// `on` (rotations of one input block share one decomposition) or `off`
    /// (every rotation a full key switch, the paper's setting).
    #[serde(default)]
    pub hoisting: Hoisting,
    /// Noise budget (bits) the ciphertext modulus must leave after every
    /// layer under the worst-case bound: the fewest primes that do are used.
    #[serde(default = "default_noise_margin")]
    pub noise_margin: f64,
    /// Key switching with a special prime (`true`: keys at QP, a rotation
    /// adds little noise, so a ciphertext prime fewer holds the network and
    /// every key and ciphertext is a third smaller) or over the ciphertext
    /// primes alone (`false`). Absent: whichever costs less compute under
    /// `hoisting` ([`Hoisting::special_prime`]: off with hoisting, on
    /// without).
    #[serde(default)]
    pub special_prime: Option<bool>,
    /// Bits of the plaintext modulus; chosen from the accumulator bound when absent.
    #[serde(default)]
    pub plaintext_bits: Option<u32>,
    #[serde(default = "default_bits")]
    pub weight_bits: u32,
    #[serde(default = "default_bits")]
    pub activation_bits: u32,
    /// One weight scale per output channel (else one per layer).
    #[serde(default = "yes")]
    pub per_channel: bool,
    /// Input scales map this percentile of |input| to the largest level
    /// (100: the maximum).
    #[serde(default = "default_percentile")]
    pub calibration_percentile: f64,
    /// `fixed` (integer multipliers and shifts between layers, as a
    /// two-party protocol computes) or `float` (f64 between layers, the
    /// model of sweeps locked before fixed point).
    #[serde(default)]
    pub requantization: Requantization,
    /// What the client of private inference decrypts per layer:
    /// `two-party` (masked shares; ReLUs as garbled circuits: the model
    /// stays private) or `client-aided` (exact outputs: the client learns
    /// the model; a baseline). Two-party needs `requantization: fixed`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Which Galois keys a client of private inference is asked for:
    /// `dense` (the dense network's, with its packing: they say nothing
    /// about the pruning) or `live` (only the pruned network's).
    #[serde(default)]
    pub keys: KeysMode,
    /// `on`: the server computes every block of the dense network, pruned
    /// weights as zeros, so its time says nothing about the pruning; `off`:
    /// only the nonzero products. Default: on under dense keys with the
    /// two-party protocol, else off (on is refused with live keys and with
    /// the client-aided protocol).
    #[serde(default)]
    pub constant_time: Option<ConstantTime>,
    /// Statistical security (bits) of the noise flooding that gives a
    /// server's replies circuit privacy; 0 turns it off.
    #[serde(default = "default_flooding")]
    pub flooding: explore_he_model::noise::Flooding,
    /// Test images run through every layer under encryption per point.
    #[serde(default = "one_usize")]
    pub images: usize,
    /// Test images run end to end as private inference (client and server,
    /// the whole network) per point; 0 skips it.
    #[serde(default = "one_usize")]
    pub infer_images: usize,
    #[serde(default = "one_usize")]
    pub repeats: usize,
    #[serde(default)]
    pub costs: PrimitiveCosts,
}

impl HeSpec {
    /// Whether the server computes the dense network's work
    /// ([`ConstantTime::resolve`] of `constant_time` under `keys` and
    /// `protocol`).
    pub fn constant_time(&self) -> Result<bool, ConstantTimeError> {
        ConstantTime::resolve(self.constant_time, self.keys, self.protocol)
    }
}

impl Default for HeSpec {
    fn default() -> Self {
        HeSpec {
            poly_degree: default_degree(),
            schedule: Schedule::default(),
            baby_step: None,
            hoisting: Hoisting::default(),
            noise_margin: default_noise_margin(),
            special_prime: None,
            protocol: Protocol::default(),
            keys: KeysMode::default(),
            constant_time: None,
            flooding: default_flooding(),
            plaintext_bits: None,
            weight_bits: default_bits(),
            activation_bits: default_bits(),
            per_channel: true,
            calibration_percentile: default_percentile(),
            requantization: Requantization::default(),
            images: 1,
            infer_images: 1,
            repeats: 1,
            costs: PrimitiveCosts::default(),
        }
    }
}

fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn default_strategies() -> Vec<Strategy> {
    vec![
        Strategy::Positional,
        Strategy::Diagonal,
        Strategy::Hybrid,
        Strategy::Unstructured,
        Strategy::Channel,
    ]
}
fn default_targets() -> Vec<f64> {
    vec![0.5, 0.7, 0.8, 0.9, 0.95]
}
fn default_flooding() -> explore_he_model::noise::Flooding {
    explore_he_model::noise::Flooding::DEFAULT
}

fn default_noise_margin() -> f64 {
    explore_he_model::noise::DEFAULT_MARGIN_BITS
}

fn default_metric() -> TargetMetric {
    TargetMetric::Weights
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_weighting() -> GroupWeighting {
    GroupWeighting::HeCost
}
fn default_ramp() -> f64 {
    0.5
}
fn default_updates() -> usize {
    8
}
fn default_temperature() -> f64 {
    4.0
}
fn default_degree() -> usize {
    8192
}
fn default_bits() -> u32 {
    8
}
fn default_percentile() -> f64 {
    99.99
}
pub(crate) fn yes() -> bool {
    true
}

impl Spec {
    /// Reads, parses and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::parse(&text, path)
    }

    /// Parses and validates spec text; `path` only names it in errors. A
    /// phase after the dense one (`prune.regularization.train`,
    /// `prune.finetune`, `prune.qat`) that names no `device` trains on
    /// `train.device`.
    pub fn parse(text: &str, path: &Path) -> Result<Spec, SpecError> {
        let parse_error = |e: serde_yaml::Error| SpecError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut spec: Spec = serde_yaml::from_str(text).map_err(parse_error)?;
        // Serde fills an absent device with the default; the text tells an
        // absent one from an explicit `cpu`, which must still agree.
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(parse_error)?;
        let names_device = |field: &str| {
            let block = field.split('.').fold(&value, |v, key| &v[key]);
            block.get("device").is_some()
        };
        let device = spec.train.device;
        for (field, phase) in spec.later_phases_mut() {
            if !names_device(field) {
                phase.device = device;
            }
        }
        spec.validate(path)?;
        Ok(spec)
    }

    fn validate(&self, path: &Path) -> Result<(), SpecError> {
        let bad = |field: &str, message: String| SpecError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(bad(
                "name",
                format!("`{}` must be a non-empty file name (no slashes)", self.name),
            ));
        }
        NetSpec::new(self.model.arch, self.data.dataset, self.model.width)
            .map_err(|e| bad("model.width", e.to_string()))?;
        let phases = [
            Some(("train", &self.train)),
            self.prune
                .finetune
                .as_ref()
                .map(|f| ("prune.finetune", &f.train)),
            self.prune
                .regularization
                .as_ref()
                .map(|r| ("prune.regularization.train", &r.train)),
        ];
        let phases = phases
            .into_iter()
            .chain([self.prune.qat.as_ref().map(|t| ("prune.qat", t))]);
        for (field, t) in phases.into_iter().flatten() {
            t.check().map_err(|m| bad(field, m))?;
            if t.device != self.train.device {
                return Err(bad(
                    field,
                    format!(
                        "device {} differs from train.device {}: set the device once, in train.device",
                        t.device, self.train.device
                    ),
                ));
            }
        }
        for &t in &self.prune.targets {
            if !(0.0..1.0).contains(&t) {
                return Err(bad(
                    "prune.targets",
                    format!(
                        "target {t} is outside [0, 1): use a fraction of weights (or rotations) removed, e.g. 0.8"
                    ),
                ));
            }
        }
        if self.prune.strategies.is_empty() {
            return Err(bad(
                "prune.strategies",
                "is empty: list at least one strategy".into(),
            ));
        }
        if let Some(r) = &self.prune.regularization
            && !(r.lambda.is_finite() && r.lambda >= 0.0)
        {
            return Err(bad(
                "prune.regularization.lambda",
                format!("{} must be a finite number >= 0, e.g. 1e-4", r.lambda),
            ));
        }
        if let Some(r) = &self.prune.regularization
            && !(r.ramp > 0.0 && r.ramp <= 1.0)
        {
            return Err(bad(
                "prune.regularization.ramp",
                format!(
                    "{} is outside (0, 1]: give the fraction of the phase lambda rises over, e.g. 0.5",
                    r.ramp
                ),
            ));
        }
        if let Some(f) = &self.prune.finetune
            && (f.budgets.is_empty() || f.budgets.contains(&0))
        {
            return Err(bad(
                "prune.finetune.epochs",
                format!(
                    "{:?} is not a list of positive recovery budgets: give one number of epochs (e.g. 2) or several (e.g. [1, 2, 4, 8])",
                    f.budgets
                ),
            ));
        }
        if let Some(g) = &self.prune.gradual {
            if !(g.ramp > 0.0 && g.ramp < 1.0) {
                return Err(bad(
                    "prune.gradual.ramp",
                    format!(
                        "{} is outside (0, 1): the mask must be final before the phase ends, leaving a tail to recover in, e.g. 0.5",
                        g.ramp
                    ),
                ));
            }
            if g.updates == 0 {
                return Err(bad(
                    "prune.gradual.updates",
                    "0 mask updates never reach a target: use e.g. 8".into(),
                ));
            }
            if self.prune.finetune.is_none() {
                return Err(bad(
                    "prune.gradual",
                    "prunes during fine-tuning, but there is no prune.finetune phase: add one or drop prune.gradual".into(),
                ));
            }
        }
        if self.prune.schedule() == PruneSchedule::Trajectory {
            if self.prune.gradual.is_none() {
                return Err(bad(
                    "prune.schedule",
                    "trajectory prunes each target on from the previous one during fine-tuning, which needs prune.gradual: add it, or use independent".into(),
                ));
            }
            if self.prune.finetune.as_ref().is_some_and(Finetune::several) {
                return Err(bad(
                    "prune.schedule",
                    "a trajectory's later targets fine-tune on from earlier ones, so its budgets add up and cannot be compared: use independent with a list of budgets, or one budget".into(),
                ));
            }
        }
        if let Some(d) = &self.prune.distill {
            if !(0.0..=1.0).contains(&d.weight)
                || !(d.temperature.is_finite() && d.temperature > 0.0)
            {
                return Err(bad(
                    "prune.distill",
                    format!(
                        "weight {} must be in [0, 1] and temperature {} positive, e.g. weight 0.5, temperature 4",
                        d.weight, d.temperature
                    ),
                ));
            }
            if self.train.epochs == 0 {
                return Err(bad(
                    "prune.distill",
                    "needs a dense teacher, but train.epochs is 0: train the dense model or drop prune.distill".into(),
                ));
            }
        }
        if !self.he.schedule.rotates() {
            return Err(bad(
                "he.schedule",
                "coefficients is the dense baseline without rotations, which every sweep measures beside its own schedule; pruning needs a slot schedule: use best or gazelle".into(),
            ));
        }
        if let Err(e) = self.he.protocol.check(self.he.requantization) {
            return Err(bad("he.protocol", e.to_string()));
        }
        if let Err(e) = self.he.constant_time() {
            return Err(bad("he.constant_time", e.to_string()));
        }
        if let Err(e) = self.checked_scheduler() {
            let field = match e {
                explore_he_model::Error::BabyStep { .. } => "he.baby_step",
                _ => "he.poly_degree",
            };
            return Err(bad(field, e.to_string()));
        }
        for (field, b) in [
            ("he.weight_bits", self.he.weight_bits),
            ("he.activation_bits", self.he.activation_bits),
        ] {
            if !BITS.contains(&b) {
                return Err(bad(field, format!("{b} bits is outside 2..16: use 8")));
            }
        }
        if let Err(e) = self.quant_config().check() {
            return Err(bad("he.calibration_percentile", e.to_string()));
        }
        if let Err(e) = explore_he_model::noise::check_margin(self.he.noise_margin) {
            return Err(bad("he.noise_margin", e.to_string()));
        }
        if let Some(r) = self.report.hv_reference
            && !(r.is_finite() && (0.0..1.0).contains(&r))
        {
            return Err(bad(
                "report.hv_reference",
                format!(
                    "{r} is not an accuracy fraction in [0, 1): give the accuracy hypervolume counts above, e.g. 0.85, or leave it out (dense less 2 points)"
                ),
            ));
        }
        let m = self.report.margin;
        if !(m.is_finite() && m > 0.0 && m < 1.0) {
            return Err(bad(
                "report.margin",
                format!(
                    "{m} is not a positive fraction below 1: give the equivalence margin as a fraction, e.g. 0.005 for half a point"
                ),
            ));
        }
        if self.data.validation == Some(0) {
            return Err(bad(
                "data.validation",
                "0 holds out nothing: give the number of training images to hold out, e.g. 1000, or leave it out".into(),
            ));
        }
        if self.he.images == 0 || self.he.repeats == 0 {
            return Err(bad(
                "he.images",
                "he.images and he.repeats must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The output directory: `output`, or `results/<name>`.
    pub fn output_dir(&self) -> PathBuf {
        self.output
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&self.name))
    }

    /// The spec with every training phase on `backend` (the command line's
    /// `--device`).
    pub fn on_device(mut self, backend: Backend) -> Spec {
        self.train.device = backend;
        for (_, t) in self.later_phases_mut() {
            t.device = backend;
        }
        self
    }

    /// The training phases after the dense one that the spec has, with
    /// their fields.
    fn later_phases_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut TrainConfig)> {
        let prune = &mut self.prune;
        [
            (
                "prune.regularization.train",
                prune.regularization.as_mut().map(|r| &mut r.train),
            ),
            (
                "prune.finetune",
                prune.finetune.as_mut().map(|f| &mut f.train),
            ),
            ("prune.qat", prune.qat.as_mut()),
        ]
        .into_iter()
        .filter_map(|(field, phase)| phase.map(|t| (field, t)))
    }

    /// How the spec's networks are quantized for the HE executor.
    pub fn quant_config(&self) -> QuantConfig {
        QuantConfig {
            weight_bits: self.he.weight_bits,
            activation_bits: self.he.activation_bits,
            per_channel: self.he.per_channel,
            percentile: self.he.calibration_percentile,
            requantization: self.he.requantization,
        }
    }

    /// What chooses each layer's HE schedule under this spec.
    pub fn scheduler(&self) -> Scheduler {
        self.checked_scheduler().expect("validated in Spec::load")
    }

    fn checked_scheduler(&self) -> Result<Scheduler, explore_he_model::Error> {
        Scheduler::new(
            self.he.schedule,
            self.he.baby_step,
            self.he.hoisting,
            self.he.costs,
            self.he.poly_degree,
        )
    }

    pub fn net_spec(&self) -> NetSpec {
        NetSpec::new(self.model.arch, self.data.dataset, self.model.width)
            .expect("validated in Spec::load")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
name: t
data: {dataset: fashion-mnist, train_size: 100}
model: {arch: resnet20, width: 0.25}
train: {epochs: 1, lr: 0.1}
";

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = Spec::parse(MINIMAL, Path::new("t.yaml")).unwrap();
        assert_eq!(s.output_dir(), PathBuf::from("results/t"));
        assert_eq!(s.train.batch_size, 64);
        assert_eq!(s.train.replicas, 2);
        assert_eq!(s.he.poly_degree, 8192);
        assert_eq!(s.prune.strategies.len(), 5);
        assert!(s.data.download);
    }

    #[test]
    fn the_pruning_schedule_defaults_as_sweeps_before_it_ran() {
        let text = format!("{MINIMAL}prune: {{finetune: {{epochs: 2, lr: 0.1}}}}\n");
        let one_shot = Spec::parse(&text, Path::new("t.yaml")).unwrap();
        assert_eq!(one_shot.prune.schedule(), PruneSchedule::Independent);
        assert_eq!(one_shot.prune.budgets(), [2]);
        let text = format!(
            "{MINIMAL}prune: {{finetune: {{epochs: 2, lr: 0.1}}, gradual: {{ramp: 0.5}}}}\n"
        );
        let gradual = Spec::parse(&text, Path::new("t.yaml")).unwrap();
        assert_eq!(gradual.prune.schedule(), PruneSchedule::Trajectory);
        let text = format!(
            "{MINIMAL}prune: {{finetune: {{epochs: [1, 2, 4], lr: 0.1, warmup: 0.1}}, gradual: {{ramp: 0.5}}, schedule: independent}}\n"
        );
        let study = Spec::parse(&text, Path::new("t.yaml")).unwrap();
        assert_eq!(study.prune.schedule(), PruneSchedule::Independent);
        assert_eq!(study.prune.budgets(), [1, 2, 4]);
        // A spec that does not choose serializes as before the choice.
        let plain = serde_json::to_value(&gradual).unwrap();
        assert!(plain["prune"].get("schedule").is_none(), "{plain}");
        assert!(
            plain["prune"]["finetune"].get("warmup").is_none(),
            "{plain}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let text = format!("{MINIMAL}bogus: 3\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        assert!(e.contains("line 6"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let text = MINIMAL.replace("lr: 0.1", "lr: -1");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`train`") && e.contains("lr -1"), "{e}");
        let text = MINIMAL.replace("lr: 0.1", "lr: 0.1, replicas: 0");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`train`") && e.contains("replicas 0"), "{e}");
        let text = format!("{MINIMAL}he: {{poly_degree: 5000}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("he.poly_degree") && e.contains("5000"), "{e}");
        let text = format!("{MINIMAL}he: {{baby_step: 3}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("he.baby_step") && e.contains("power of two"),
            "{e}"
        );
        let text = format!("{MINIMAL}he: {{schedule: gazelle, baby_step: 4}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("he.baby_step") && e.contains("gazelle"), "{e}");
        let text = format!("{MINIMAL}he: {{schedule: fastest}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("fastest") && e.contains("best"), "{e}");
        let text = format!("{MINIMAL}he: {{schedule: coefficients}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("he.schedule") && e.contains("use best or gazelle"),
            "{e}"
        );
        let text = format!("{MINIMAL}he: {{keys: live, constant_time: on}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("he.constant_time") && e.contains("use dense keys, or constant time off"),
            "{e}"
        );
        let text = format!("{MINIMAL}he: {{protocol: client-aided, constant_time: on}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("he.constant_time") && e.contains("use the two-party protocol"),
            "{e}"
        );
        // Two-party runs fixed-point steps; a float model must say
        // client-aided (then constant time resolves to off by itself).
        let text = format!("{MINIMAL}he: {{requantization: float}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("he.protocol")
                && e.contains("use he.requantization: fixed, or the client-aided protocol"),
            "{e}"
        );
        let text = format!("{MINIMAL}he: {{requantization: float, protocol: client-aided}}\n");
        Spec::parse(&text, Path::new("t.yaml")).unwrap();
        for (extra, field, words) in [
            (
                "prune: {gradual: {ramp: 0.5}}",
                "prune.gradual",
                "no prune.finetune phase",
            ),
            (
                "prune: {finetune: {epochs: 1, lr: 0.1}, gradual: {updates: 0}}",
                "prune.gradual.updates",
                "never reach",
            ),
            (
                "prune: {regularization: {lambda: -1, train: {epochs: 1, lr: 0.1}}}",
                "prune.regularization.lambda",
                "-1",
            ),
            ("prune: {distill: {weight: 2}}", "prune.distill", "weight 2"),
            (
                "prune: {finetune: {epochs: 1, lr: 0.1, device: wgpu}}",
                "prune.finetune",
                "train.device",
            ),
            (
                "he: {calibration_percentile: 0}",
                "he.calibration_percentile",
                "(0, 100]",
            ),
            (
                "report: {margin: -0.5}",
                "report.margin",
                "positive fraction",
            ),
            ("report: {margin: 0}", "report.margin", "e.g. 0.005"),
            (
                "prune: {finetune: {epochs: [], lr: 0.1}}",
                "prune.finetune.epochs",
                "[1, 2, 4, 8]",
            ),
            (
                "prune: {finetune: {epochs: [2, 0], lr: 0.1}}",
                "prune.finetune.epochs",
                "positive recovery budgets",
            ),
            (
                "prune: {finetune: {epochs: 2, lr: 0.1, warmup: 1.0}}",
                "prune.finetune",
                "warmup 1 must be a fraction",
            ),
            (
                "prune: {finetune: {epochs: 2, lr: 0.1}, gradual: {ramp: 1.0}}",
                "prune.gradual.ramp",
                "tail to recover in",
            ),
            (
                "prune: {finetune: {epochs: [1, 2], lr: 0.1}, gradual: {ramp: 0.5}}",
                "prune.schedule",
                "use independent",
            ),
            (
                "prune: {finetune: {epochs: 1, lr: 0.1}, schedule: trajectory}",
                "prune.schedule",
                "needs prune.gradual",
            ),
            (
                "report: {hv_reference: 85}",
                "report.hv_reference",
                "e.g. 0.85",
            ),
        ] {
            let text = format!("{MINIMAL}{extra}\n");
            let e = Spec::parse(&text, Path::new("t.yaml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field) && e.contains(words), "{extra}: {e}");
        }
        let untrained = MINIMAL.replace("epochs: 1", "epochs: 0");
        let text = format!("{untrained}prune: {{distill: {{weight: 0.5}}}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prune.distill") && e.contains("dense teacher"),
            "{e}"
        );
        let text = format!("{MINIMAL}prune: {{targets: [1.0]}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prune.targets"), "{e}");
    }

    /// The devices of a spec's phases after the dense one, with their fields.
    fn later_devices(spec: &Spec) -> Vec<(&'static str, Backend)> {
        let mut spec = spec.clone();
        spec.later_phases_mut()
            .map(|(f, t)| (f, t.device))
            .collect()
    }

    #[test]
    fn every_committed_spec_trains_every_phase_on_its_train_device() {
        let sweeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
        let mut specs = Vec::new();
        for dir in [sweeps.clone(), sweeps.join("lasso")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    specs.push(path);
                }
            }
        }
        assert!(specs.len() >= 5, "{specs:?}");
        let mut with_phases = 0;
        for path in &specs {
            let text = std::fs::read_to_string(path).unwrap();
            let mut value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            value["train"]["device"] = "wgpu".into();
            let on_gpu = Spec::parse(&serde_yaml::to_string(&value).unwrap(), path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(on_gpu.train.device, Backend::Wgpu);
            for (field, device) in later_devices(&on_gpu) {
                assert_eq!(device, Backend::Wgpu, "{}: {field}", path.display());
            }
            with_phases += usize::from(!later_devices(&on_gpu).is_empty());
            // `--device` moves every phase back, as it moves them anywhere.
            let on_cpu = on_gpu.on_device(Backend::Cpu);
            assert!(
                later_devices(&on_cpu)
                    .iter()
                    .all(|(_, d)| *d == Backend::Cpu)
            );
        }
        assert!(with_phases > 0, "some committed spec fine-tunes");
    }

    #[test]
    fn a_phase_that_names_another_device_is_still_refused() {
        let text = format!("{MINIMAL}prune: {{finetune: {{epochs: 1, lr: 0.1, device: cpu}}}}\n")
            .replace(
                "train: {epochs: 1, lr: 0.1}",
                "train: {epochs: 1, lr: 0.1, device: wgpu}",
            );
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prune.finetune") && e.contains("train.device"),
            "{e}"
        );
    }
}
