//! Homomorphic evaluation of a network's layers with BFV (fhe.rs): the slot
//! layout and prune groups ([`layout`]), the schedule each layer runs
//! ([`schedule`]), the operation-count cost model of a layer ([`cost`]) and
//! of a network ([`network`]), parameter
//! choice ([`params`]), and a real encrypted executor that runs, verifies
//! and times layers ([`executor`]).

pub mod cost;
pub mod executor;
pub mod layout;
pub mod network;
pub mod params;
pub mod schedule;

pub use cost::{LayerCost, LayerPlanCost, PrimitiveCosts, conv_cost};
pub use executor::{HeContext, LayerPlan, LayerRun, NetworkRun, check_counts, run_network};
pub use layout::{Half, LayerSchedule, PackingLayout, PruneGroup, Rotation};
pub use network::{HeCost, LayerRow, dense_network_cost, network_cost};
pub use params::HeParams;
pub use schedule::{Role, Schedule, Scheduler};

/// Errors of the HE layer: parameters that cannot hold a layer, malformed
/// weights, library failures, and decryptions that disagree with the
/// plaintext reference.
#[derive(Debug, thiserror::Error)]
pub enum HeError {
    #[error(
        "ring degree {0} is not a power of two in 4096..32768: use 8192 (he.poly_degree, --poly-degree)"
    )]
    BadDegree(usize),
    #[error(
        "layer {layer}: one channel needs {footprint} slots but N = {poly_degree} gives {} per row: use a ring degree (he.poly_degree, --poly-degree) of {} or more",
        poly_degree / 2,
        2 * footprint
    )]
    LayerTooLarge {
        layer: String,
        footprint: usize,
        poly_degree: usize,
    },
    #[error(
        "layer {layer}: accumulator bound {bound} needs a plaintext modulus above {}, which {bits} bits cannot give: use plaintext_bits {needed} (or fewer weight/activation bits)",
        2 * bound + 1
    )]
    PlaintextTooSmall {
        layer: String,
        bound: u64,
        bits: u32,
        needed: u32,
    },
    #[error(
        "no prime plaintext modulus t = 1 mod {} of {bits} bits fits: use plaintext_bits between 20 and 60",
        2 * poly_degree
    )]
    NoPlaintextPrime { bits: u32, poly_degree: usize },
    #[error("layer {layer}: {got} weights given, the shape needs {expected}")]
    WeightLength {
        layer: String,
        expected: usize,
        got: usize,
    },
    #[error("layer {layer}: {got} input values given, the shape needs {expected}")]
    InputLength {
        layer: String,
        expected: usize,
        got: usize,
    },
    #[error("{got} conv weight tensors given, the network has {expected} convs")]
    LayerCount { expected: usize, got: usize },
    #[error(
        "layer {layer}: |value| {value} exceeds the {bits}-bit range the plaintext modulus was chosen for: quantize to {bits} bits"
    )]
    ValueRange {
        layer: String,
        value: i64,
        bits: u32,
    },
    #[error(
        "layer {layer}: schedule {schedule} is impossible: {why}; leave the choice to the `best` schedule (he.schedule, --schedule) or drop the forced baby step (he.baby_step, --baby-step)"
    )]
    ImpossibleSchedule {
        layer: String,
        schedule: String,
        why: String,
    },
    #[error(
        "layer {layer}: the executor ran {executed} but the cost model counts {modeled}: the executor and the cost model disagree"
    )]
    CountMismatch {
        layer: String,
        executed: String,
        modeled: String,
    },
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
