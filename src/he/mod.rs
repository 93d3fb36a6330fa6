//! Homomorphic evaluation of a network's layers with BFV (fhe.rs): fhe.rs
//! parameters ([`params`]), keys and encryption ([`context`]), one layer
//! planned, run on ciphertexts, verified and timed ([`plan`]), and a network
//! run layer by layer against the cost model ([`runner`]), a client and a
//! server that run layers as a private-inference protocol ([`protocol`]), on top of the pure HE model of the
//! `explore-he-model` crate (slot layout and prune groups, schedules, the
//! operation-count cost model of a layer and of a network), re-exported
//! here under its own module names.

pub mod context;
pub mod hoist;
pub mod params;
pub mod plan;
pub mod protocol;
pub mod runner;

pub use explore_he_model::{cost, layout, network, noise, plaintext, schedule};

pub use context::HeContext;
pub use cost::{KeySet, LayerCost, LayerPlanCost, PrimitiveCosts, conv_cost};
pub use layout::{Half, LayerSchedule, PackingLayout, PruneGroup, Rotation};
pub use network::{HeCost, LayerRow, dense_network_cost, network_cost};
pub use noise::{Flooding, ModulusChoice, NoiseDepth};
pub use params::HeParams;
pub use plan::{KeySource, LayerPlan, LayerRun};
pub use runner::{LayerJob, NetworkRun, check_counts, run_layers, run_network};
pub use schedule::{Hoisting, Role, Schedule, Scheduler};

/// Errors of the HE layer: parameters that cannot hold a layer, malformed
/// weights, library failures, and decryptions that disagree with the
/// plaintext reference.
#[derive(Debug, thiserror::Error)]
pub enum HeError {
    /// A layer or network the HE model cannot pack or count.
    #[error(transparent)]
    Model(#[from] explore_he_model::Error),
    #[error("layer {layer}: {got} input values given, the shape needs {expected}")]
    InputLength {
        layer: String,
        expected: usize,
        got: usize,
    },
    #[error(
        "layer {layer}: |value| {value} exceeds the {bits}-bit range the plaintext modulus was chosen for: quantize to {bits} bits"
    )]
    ValueRange {
        layer: String,
        value: i64,
        bits: u32,
    },
    #[error(
        "layer {layer}: the executor ran {executed} but the cost model counts {modeled}: the executor and the cost model disagree"
    )]
    CountMismatch {
        layer: String,
        executed: String,
        modeled: String,
    },
    #[error(
        "layer {layer}: no key for rotation {rotation}: the plan's keys do not cover its rotations"
    )]
    MissingKey { layer: String, rotation: String },
    #[error("malformed protocol message: {0}")]
    Wire(String),
    #[error("quantized model: {0}")]
    Quant(#[from] crate::quant::QuantError),
    #[error("fhe: {0}")]
    Fhe(#[from] fhe::Error),
    #[error(
        "layer {layer}: decrypted output block {block} slot {slot} is {got}, the integer reference is {expected}; noise budget left {noise_budget_bits} bits (at or below 0: the noise overflowed, use a larger --poly-degree or fewer plaintext bits)"
    )]
    Mismatch {
        layer: String,
        block: usize,
        slot: usize,
        expected: i64,
        got: i64,
        noise_budget_bits: i64,
    },
}
