//! The HE model of explore, as pure arithmetic: the shapes of a network
//! ([`arch`]), how each layer is packed into BFV's batching slots and which
//! prune groups that induces ([`layout`]), the operations a layer performs
//! under a packing ([`cost`]), which packing each layer runs ([`schedule`]),
//! a whole network's counts ([`network`]), the plaintext modulus and the
//! 128-bit ciphertext moduli ([`plaintext`]), the fewest primes a network's
//! noise needs ([`noise`]), Cheetah's coefficient encoding of a convolution,
//! the baseline without rotations ([`coefficient`]), a layer's layout under
//! either encoding ([`layer`]), and the exact integer
//! convolution every encrypted result is checked against ([`reference`]).
//! [`named_enum!`] gives every plain enum of the tool its names.
//!
//! It depends on no ML, table, plot or HE crate, so its tests run in
//! seconds; the `explore` crate trains, encrypts and reports on top of it.

pub mod arch;
pub mod coefficient;
pub mod cost;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod layer;
pub mod layout;
pub mod names;
pub mod network;
pub mod noise;
pub mod plaintext;
pub mod reference;
pub mod schedule;

/// Why a layer or network cannot be packed or counted: a ring degree
/// outside the table, a layer too large for its ring, a plaintext modulus
/// too narrow for its accumulators, weights of the wrong length, or a
/// schedule the layer cannot run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
        "layer {layer}: a {kernel}x{kernel} kernel window does not fit the {poly_degree} coefficients of one polynomial: use a ring degree (he.poly_degree, --poly-degree) of at least {}",
        (kernel * kernel).next_power_of_two().max(4096)
    )]
    KernelTooLarge {
        layer: String,
        kernel: usize,
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
    #[error("{got} conv weight tensors given, the network has {expected} convs")]
    LayerCount { expected: usize, got: usize },
    #[error(
        "noise margin {0} is not a positive number of bits: use e.g. 10 (he.noise_margin, --noise-margin)"
    )]
    NoiseMargin(f64),
    #[error(
        "at N = {poly_degree} even every 128-bit ciphertext prime leaves only {budget_bits:.1} bits of noise budget after the deepest layer, below the {margin_bits} bit margin: use a larger he.poly_degree (--poly-degree), fewer weight/activation bits, or a smaller he.noise_margin"
    )]
    NoiseBudget {
        poly_degree: usize,
        budget_bits: f64,
        margin_bits: f64,
    },
    #[error(
        "noise flooding of {flooding} bits (he.flooding, --flooding) needs more noise budget than N = {poly_degree} has: a flooded reply leaves {budget_bits:.1} bits, below the {margin_bits} bit margin; {}, or lower he.flooding to {most} bits at most (0 turns circuit privacy off)",
        larger.map_or("no ring degree up to 8x this one carries it".to_string(), |n| format!("use he.poly_degree: {n} (--poly-degree {n})"))
    )]
    FloodingBudget {
        poly_degree: usize,
        flooding: u32,
        budget_bits: f64,
        margin_bits: f64,
        larger: Option<usize>,
        most: u32,
    },
    #[error("baby step {baby_step} {why} (he.baby_step, --baby-step)")]
    BabyStep { baby_step: usize, why: &'static str },
    #[error(
        "layer {layer}: schedule {schedule} is impossible: {why}; leave the choice to the `best` schedule (he.schedule, --schedule) or drop the forced baby step (he.baby_step, --baby-step)"
    )]
    ImpossibleSchedule {
        layer: String,
        schedule: String,
        why: String,
    },
}
