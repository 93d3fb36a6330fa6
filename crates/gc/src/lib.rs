//! Garbled circuits for the two-party ReLU of model-private inference.
//! Between two linear layers run on BFV ciphertexts the client and the
//! server hold additive shares of the activations mod t; the nonlinear step
//! (reconstruct, ReLU, requantize, re-mask) runs as a boolean circuit that
//! the server garbles and the client evaluates, Gazelle and Cheetah style,
//! so the client ends with a fresh share and nothing else.
//!
//! Security is semi-honest only: free-XOR and half-gates (two blocks per AND
//! gate) over a fixed-key AES hash. Oblivious transfer of the evaluator's
//! input labels is NOT in this crate yet: [`Encoding::evaluator_labels`]
//! hands them over in the clear, which is sound only where one process
//! plays both parties, as in tests and benchmarks.
//!
//! [`block`] holds the labels, [`hash`] the tweakable hash, [`circuit`] the
//! gates and their plain evaluation, [`builder`] word-level construction,
//! [`garble`] garbling, evaluation and decoding, and [`relu`] the share ReLU
//! circuit with its plain reference.

pub mod block;
pub mod builder;
pub mod circuit;
pub mod garble;
pub mod hash;
pub mod relu;

pub use block::Block;
pub use builder::Builder;
pub use circuit::{Circuit, Wire, from_bits, to_bits};
pub use garble::{Encoding, GarbledCircuit, evaluate, garble};
pub use hash::FixedKeyHash;
pub use relu::{ReluParams, share_relu, share_relu_reference};

/// Why labels, bits or parameters do not fit a circuit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GcError {
    #[error("{got} {owner} input bits or labels, the circuit takes {expected}")]
    InputCount {
        owner: &'static str,
        expected: usize,
        got: usize,
    },
    #[error(
        "{got} garbled tables, the circuit has {expected} AND gates: garbled for another circuit"
    )]
    TableCount { expected: usize, got: usize },
    #[error("{got} output labels, the circuit has {expected} outputs")]
    OutputCount { expected: usize, got: usize },
    #[error(
        "output {output}: the label is neither of the wire's labels, so it is not from an honest evaluation of this garbling"
    )]
    ForeignLabel { output: usize },
    #[error("share ReLU parameters: {0}")]
    ReluParams(&'static str),
}

/// The seeded generator of every test, so that a failure reproduces.
#[cfg(test)]
pub(crate) fn test_rng() -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(0x6761_7262_6c65)
}
