//! Subcommands, one file each; every `run` returns the process exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use clap::{Parser, Subcommand};

mod check;
mod compare;
mod count;
mod he_bench;
mod infer;
mod merge;
mod pareto;
mod prune;
mod sweep;
mod train;

#[derive(Parser)]
#[command(
    name = "explore",
    version,
    about = "HE-aware pruning: how much encrypted inference cost can pruning remove, and at what accuracy?"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Count HE operations (rotations, plaintext multiplications, additions) per layer.
    Count(count::Args),
    /// Run layers on real ciphertexts, verify them and time them.
    HeBench(he_bench::Args),
    /// Run a sweep's model end to end as private inference (client and
    /// server on ciphertexts) on test images; check it against the integer
    /// model and report time, bytes and rounds per inference.
    Infer(infer::Args),
    /// Train the spec's dense model.
    Train(train::Args),
    /// Prune the spec's dense model with one strategy to one target.
    Prune(prune::Args),
    /// Run a whole sweep: train, prune every strategy x target, measure, report.
    Sweep(sweep::Args),
    /// Combine the outputs of a sweep's shards into one sweep.
    Merge(merge::Args),
    /// Print the Pareto front of a points.csv.
    Pareto(pareto::Args),
    /// Compare a sweep's front with a baseline front; exit 1 on regression.
    Check(check::Args),
    /// Compare two sweeps on the same images point by point, paired seed by
    /// seed (the arms of an ablation).
    Compare(compare::Args),
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Count(a) => count::run(a),
            Command::HeBench(a) => he_bench::run(a),
            Command::Infer(a) => infer::run(a),
            Command::Train(a) => train::run(a),
            Command::Prune(a) => prune::run(a),
            Command::Sweep(a) => sweep::run(a),
            Command::Merge(a) => merge::run(a),
            Command::Pareto(a) => pareto::run(a),
            Command::Check(a) => check::run(a),
            Command::Compare(a) => compare::run(a),
        }
    }
}

/// The network a command counts or runs, and the ring it is packed into.
#[derive(clap::Args)]
pub struct NetworkArgs {
    /// resnet20, resnet32, resnet56 or resnet18.
    #[arg(long)]
    pub model: explore_he_model::arch::Arch,
    /// cifar10, cifar100, fashion-mnist or mnist.
    #[arg(long)]
    pub dataset: explore_he_model::arch::DatasetKind,
    /// Channel width multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Ring degree N (a power of two in 4096..32768); each of the two rows
    /// holds N/2 slots.
    #[arg(long, default_value_t = 8192)]
    pub poly_degree: usize,
    /// best (the cheapest packing and baby step per layer) or gazelle (the
    /// paper's setting: Gazelle's packing, output rotations, both rows).
    #[arg(long, default_value = "best")]
    pub schedule: explore_he::Schedule,
    /// Force this baby step on every layer (a power of two; best only).
    #[arg(long)]
    pub baby_step: Option<usize>,
    /// on (each input block's rotations share one decomposition: the first
    /// is a full key switch, the rest hoisted) or off (all full, the
    /// paper's setting).
    #[arg(long, default_value = "on")]
    pub hoisting: explore_he::Hoisting,
    /// Noise budget (bits) the ciphertext primes must leave after every
    /// layer under the worst-case bound; the fewest primes that do are used.
    #[arg(long, default_value_t = explore_he::noise::DEFAULT_MARGIN_BITS)]
    pub noise_margin: f64,
    /// on (key switching with a special prime: keys at QP, a rotation adds
    /// little noise, so a ciphertext prime fewer holds the network and
    /// every key and ciphertext is a third smaller) or off (over the
    /// ciphertext primes alone). Default: whichever costs less compute
    /// under --hoisting: off with hoisting, on without.
    // A bool is a flag to clap unless its action says it takes a value:
    // without `Set`, `--special-prime off` was refused.
    #[arg(
        long,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(["on", "off"]),
            |v| v == "on"
        )
    )]
    pub special_prime: Option<bool>,
}

impl NetworkArgs {
    pub fn spec(&self) -> anyhow::Result<explore_he_model::arch::NetSpec> {
        Ok(explore_he_model::arch::NetSpec::new(
            self.model,
            self.dataset,
            self.width,
        )?)
    }

    /// The schedule chooser these flags ask for, priced with the default
    /// primitive costs.
    pub fn scheduler(&self) -> anyhow::Result<explore_he::Scheduler> {
        explore_he::Scheduler::new(
            self.schedule,
            self.baby_step,
            self.hoisting,
            explore_he::PrimitiveCosts::default(),
            self.poly_degree,
        )
        .map_err(|e| {
            let flag = match e {
                explore_he_model::Error::BabyStep { .. } => "--baby-step",
                _ => "--poly-degree",
            };
            anyhow::anyhow!("{flag}: {e}")
        })
    }
}

/// A spec and where its results go: what `train`, `prune` and `sweep` share.
#[derive(clap::Args)]
pub struct SpecArgs {
    /// Sweep spec (YAML), e.g. sweeps/quick.yaml.
    pub spec: PathBuf,
    /// Output directory (default: the spec's `output`, or results/<name>).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Train on this device instead of the spec's `train.device`: cpu,
    /// wgpu, cuda, libtorch or libtorch-cuda (all but cpu need a binary
    /// built with their feature: wgpu, cuda, or tch for both libtorch ones).
    #[arg(long)]
    pub device: Option<explore_spec::Backend>,
    /// Replicate seeds instead of the spec's `prune.seeds`, e.g. 0,1,2,3,4
    /// (how a baseline with a noise profile is made from a one-seed spec).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub seeds: Option<Vec<u64>>,
    /// Strategies instead of the spec's `prune.strategies`, e.g.
    /// diagonal,hybrid: with `--seeds`, how some strategies get more
    /// replicates than others in one output directory.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub strategies: Option<Vec<explore_spec::Strategy>>,
}

impl SpecArgs {
    /// Loads the spec (the file with `--seeds` and `--strategies` applied,
    /// validated as a file is, then `--device`), sizes rayon's pool from it,
    /// and opens its output directory with its data.
    pub fn open(&self) -> anyhow::Result<explore::sweep::Workspace> {
        let mut spec = explore_spec::Spec::parse(&self.yaml()?, &self.spec)?;
        if let Some(backend) = self.device {
            spec = spec.on_device(backend);
        }
        set_threads(spec.threads)?;
        Ok(explore::sweep::Workspace::open(spec, self.output.clone())?)
    }

    /// The spec's text as this run uses it: the file, or with `--seeds` or
    /// `--strategies` the file's settings with those replaced (comments are
    /// not kept).
    pub fn yaml(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.spec)
            .with_context(|| format!("reading {}", self.spec.display()))?;
        if self.seeds.is_none() && self.strategies.is_none() {
            return Ok(text);
        }
        let mut value: serde_yaml::Value = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing {}", self.spec.display()))?;
        let mut flags = Vec::new();
        if let Some(seeds) = &self.seeds {
            let seeds = distinct(seeds)?;
            let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
            flags.push(format!("--seeds {}", list.join(",")));
            value["prune"]["seeds"] = serde_yaml::to_value(seeds)?;
        }
        if let Some(strategies) = &self.strategies {
            let names: Vec<&str> = strategies.iter().map(|s| s.name()).collect();
            flags.push(format!("--strategies {}", names.join(",")));
            value["prune"]["strategies"] = serde_yaml::to_value(names)?;
        }
        Ok(format!(
            "# {} run with {}\n{}",
            self.spec.display(),
            flags.join(" "),
            serde_yaml::to_string(&value)?
        ))
    }
}

/// The seeds, refused when one repeats.
fn distinct(seeds: &[u64]) -> anyhow::Result<Vec<u64>> {
    for (i, s) in seeds.iter().enumerate() {
        if seeds[..i].contains(s) {
            anyhow::bail!(
                "--seeds lists seed {s} twice: give each replicate seed once, e.g. 0,1,2"
            );
        }
    }
    Ok(seeds.to_vec())
}

/// Sizes rayon's global pool from the spec (`threads: 0` keeps all cores).
pub(crate) fn set_threads(threads: usize) -> anyhow::Result<()> {
    if threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| anyhow::anyhow!("threads: {threads}: {e}"))?;
    }
    Ok(())
}
