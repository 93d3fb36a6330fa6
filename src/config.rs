//! The sweep spec: one YAML file (`sweeps/*.yaml`) shared by `explore train`,
//! `prune` and `sweep`. Parsing rejects unknown keys with their line and column;
//! [`Spec::load`] then checks values and names the field and the fix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::{Arch, DatasetKind, NetSpec};
use crate::he::PrimitiveCosts;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    /// Worker threads for rayon (HE, data loading); 0 means all cores.
    #[serde(default)]
    pub threads: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub dataset: DatasetKind,
    /// Directory holding the dataset files; searched first.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Use a deterministic subset of this many training images.
    #[serde(default)]
    pub train_size: Option<usize>,
    #[serde(default)]
    pub test_size: Option<usize>,
    /// Seed of the subset choice.
    #[serde(default)]
    pub seed: u64,
    /// Download the official archive when the files are missing.
    #[serde(default = "yes")]
    pub download: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub arch: Arch,
    #[serde(default = "one")]
    pub width: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    /// Divide the rate by 10 at 50% and 75% of the epochs.
    Step,
    Constant,
}

/// One SGD training phase (dense training, regularization or fine-tuning).
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
    pub schedule: Schedule,
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
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The unpruned model.
    #[default]
    Dense,
    Positional,
    Diagonal,
    Hybrid,
    Unstructured,
    Channel,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::Dense,
        Strategy::Positional,
        Strategy::Diagonal,
        Strategy::Hybrid,
        Strategy::Unstructured,
        Strategy::Channel,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Dense => "dense",
            Strategy::Positional => "positional",
            Strategy::Diagonal => "diagonal",
            Strategy::Hybrid => "hybrid",
            Strategy::Unstructured => "unstructured",
            Strategy::Channel => "channel",
        }
    }
    /// Strategies whose groups are HE groups and so take the group-Lasso phase.
    pub fn is_he_aware(self) -> bool {
        matches!(
            self,
            Strategy::Positional | Strategy::Diagonal | Strategy::Hybrid
        )
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown strategy `{s}`: use one of dense, positional, diagonal, hybrid, unstructured, channel"
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetMetric {
    /// Fraction of prunable conv weights removed.
    Weights,
    /// Fraction of the dense model's rotations removed.
    Rotations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupWeighting {
    Uniform,
    SqrtSize,
    HeCost,
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
    #[serde(default)]
    pub finetune: Option<TrainConfig>,
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
            finetune: None,
        }
    }
}

/// The group-Lasso phase before pruning HE-aware strategies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegularizationSpec {
    pub lambda: f64,
    #[serde(default = "default_weighting")]
    pub weighting: GroupWeighting,
    pub train: TrainConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeSpec {
    #[serde(default = "default_degree")]
    pub poly_degree: usize,
    /// `best` (the cheapest packing and baby step per layer) or `gazelle`
    /// (the paper's setting).
    #[serde(default)]
    pub schedule: crate::he::Schedule,
    /// Force this baby step on every layer (a power of two; `best` only).
    #[serde(default)]
    pub baby_step: Option<usize>,
    /// Bits of the plaintext modulus; chosen from the accumulator bound when absent.
    #[serde(default)]
    pub plaintext_bits: Option<u32>,
    #[serde(default = "default_bits")]
    pub weight_bits: u32,
    #[serde(default = "default_bits")]
    pub activation_bits: u32,
    /// Test images run through every layer under encryption per point.
    #[serde(default = "one_usize")]
    pub images: usize,
    #[serde(default = "one_usize")]
    pub repeats: usize,
    #[serde(default)]
    pub costs: PrimitiveCosts,
}

impl Default for HeSpec {
    fn default() -> Self {
        HeSpec {
            poly_degree: default_degree(),
            schedule: crate::he::Schedule::default(),
            baby_step: None,
            plaintext_bits: None,
            weight_bits: default_bits(),
            activation_bits: default_bits(),
            images: 1,
            repeats: 1,
            costs: PrimitiveCosts::default(),
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
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
fn default_schedule() -> Schedule {
    Schedule::Cosine
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
fn default_metric() -> TargetMetric {
    TargetMetric::Weights
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_weighting() -> GroupWeighting {
    GroupWeighting::HeCost
}
fn default_degree() -> usize {
    8192
}
fn default_bits() -> u32 {
    8
}

impl Spec {
    /// Reads, parses and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::parse(&text, path)
    }

    /// Parses and validates spec text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Spec, ConfigError> {
        let spec: Spec = serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        spec.validate(path)?;
        Ok(spec)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| ConfigError::Invalid {
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
            self.prune.finetune.as_ref().map(|t| ("prune.finetune", t)),
            self.prune
                .regularization
                .as_ref()
                .map(|r| ("prune.regularization.train", &r.train)),
        ];
        for (field, t) in phases.into_iter().flatten() {
            check_phase(t).map_err(|m| bad(field, m))?;
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
        let n = self.he.poly_degree;
        if !(n.is_power_of_two() && (4096..=32768).contains(&n)) {
            return Err(bad(
                "he.poly_degree",
                format!("{n} is not a power of two in 4096..32768: use 8192"),
            ));
        }
        for (field, b) in [
            ("he.weight_bits", self.he.weight_bits),
            ("he.activation_bits", self.he.activation_bits),
        ] {
            if !(2..=16).contains(&b) {
                return Err(bad(field, format!("{b} bits is outside 2..16: use 8")));
            }
        }
        if let Some(b) = self.he.baby_step {
            if !b.is_power_of_two() {
                return Err(bad(
                    "he.baby_step",
                    format!("{b} is not a power of two: use 1, 2, 4, ... or leave it out"),
                ));
            }
            if self.he.schedule == crate::he::Schedule::Gazelle && b != 1 {
                return Err(bad(
                    "he.baby_step",
                    format!(
                        "{b} with `schedule: gazelle`, whose baby step is 1: drop he.baby_step or use `schedule: best`"
                    ),
                ));
            }
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

    /// What chooses each layer's HE schedule under this spec.
    pub fn scheduler(&self) -> crate::he::Scheduler {
        crate::he::Scheduler {
            schedule: self.he.schedule,
            baby_step: self.he.baby_step,
            costs: self.he.costs,
            poly_degree: self.he.poly_degree,
        }
    }

    pub fn net_spec(&self) -> NetSpec {
        NetSpec::new(self.model.arch, self.data.dataset, self.model.width)
            .expect("validated in Spec::load")
    }
}

fn check_phase(t: &TrainConfig) -> Result<(), String> {
    if t.batch_size == 0 {
        return Err("batch_size must be at least 1, e.g. 64".into());
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
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        return Err(format!(
            "weight_decay {} must be >= 0, e.g. 5e-4",
            t.weight_decay
        ));
    }
    Ok(())
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
        let text = format!("{MINIMAL}prune: {{targets: [1.0]}}\n");
        let e = Spec::parse(&text, Path::new("t.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prune.targets"), "{e}");
    }
}
