//! Homomorphic evaluation of conv layers with BFV (fhe.rs): the slot layout
//! and prune groups ([`layout`]), the operation-count cost model ([`cost`]),
//! parameter choice ([`params`]), and a real encrypted executor that runs,
//! verifies and times layers ([`executor`]).

pub mod cost;
pub mod executor;
pub mod layout;
pub mod params;

pub use cost::{
    HeCost, LayerCost, LayerPlanCost, LayerRow, PrimitiveCosts, conv_cost, dense_network_cost,
    fc_cost, network_cost,
};
pub use executor::{HeContext, LayerPlan, LayerRun, NetworkRun, run_network};
pub use layout::{FcLayout, PackingLayout, PruneGroup};
pub use params::HeParams;

/// Errors of the HE layer: parameters that cannot hold a layer, malformed
/// weights, library failures, and decryptions that disagree with the
/// plaintext reference.
#[derive(Debug, thiserror::Error)]
pub enum HeError {
    #[error("poly degree {0} is not a power of two in 4096..32768: use 8192")]
    BadDegree(usize),
    #[error(
        "layer {layer}: one channel needs {footprint} slots but N = {poly_degree} gives {}: use --poly-degree {} or more",
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
