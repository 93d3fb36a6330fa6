//! Garbled circuits for the two-party ReLU of model-private inference.
//! Between two linear layers run on BFV ciphertexts the client and the
//! server hold additive shares of the activations mod t; the nonlinear step
//! (reconstruct, ReLU, requantize, re-mask) runs as a boolean circuit that
//! the server garbles and the client evaluates, Gazelle and Cheetah style,
//! so the client ends with a fresh share and nothing else.
//!
//! Security is semi-honest only: free-XOR and half-gates (two blocks per AND
//! gate) over a fixed-key AES hash, and the evaluator's input labels by
//! oblivious transfer ([`ot`]): once per session pair the client starts
//! [`ExtReceiver::setup`], the server answers with [`ExtSender::setup`] and
//! the client completes it with [`ot::ReceiverSetup::finish`]; per garbling the client sends [`ExtReceiver::extend`]'s request for its
//! bits, the server answers with [`send_evaluator_labels`], and
//! the client's [`PendingExtend::finish`] yields the labels of its bits.
//!
//! [`block`] holds the labels, [`hash`] the tweakable hash, [`circuit`] the
//! gates and their plain evaluation, [`builder`] word-level construction,
//! [`garble`] garbling, evaluation and decoding, [`ot`] the oblivious
//! transfer, [`relu`] the share ReLU circuit and [`mean`] pooling's share
//! mean, each with its plain reference.

pub mod block;
pub mod builder;
pub mod circuit;
pub mod garble;
pub mod hash;
pub mod mean;
pub mod ot;
pub mod relu;

pub use block::{BLOCK_BYTES, Block, blocks_from_bytes, blocks_to_bytes, write_blocks};
pub use builder::Builder;
pub use circuit::{Circuit, Wire, from_bits, to_bits};
pub use garble::{Encoding, GarbledCircuit, Tweaks, evaluate, garble, send_evaluator_labels};
pub use hash::FixedKeyHash;
pub use mean::{MeanParams, share_mean, share_mean_reference};
pub use ot::{ExtReceiver, ExtSender, ExtendRequest, ExtendResponse, OtError, PendingExtend};
pub use relu::{ReluParams, Term, share_relu, share_relu_reference};

/// The parameters of a circuit on additive shares mod t, which lay out its
/// inputs: the evaluator's share of each of its `values`, then the
/// garbler's share of each and its mask, `share_bits` bits each,
/// little-endian.
pub trait ShareInputs {
    /// The bits of one share (those of t).
    fn share_bits(&self) -> usize;
    /// How many shared values the circuit reads.
    fn values(&self) -> usize;
    /// The circuit these parameters describe.
    fn circuit(&self) -> Circuit;

    /// The evaluator's input bits: its share of each value.
    fn evaluator_bits(&self, shares: &[u64]) -> Vec<bool> {
        debug_assert_eq!(shares.len(), self.values());
        shares
            .iter()
            .flat_map(|&s| to_bits(s, self.share_bits()))
            .collect()
    }

    /// The garbler's input bits: its share of each value, then its mask.
    fn garbler_bits(&self, shares: &[u64], mask: u64) -> Vec<bool> {
        debug_assert_eq!(shares.len(), self.values());
        shares
            .iter()
            .chain([&mask])
            .flat_map(|&s| to_bits(s, self.share_bits()))
            .collect()
    }
}

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
    #[error(
        "the session has garbled 2^62 AND gates, all its tweaks: start a new session (fresh base OTs and tweaks)"
    )]
    TweaksExhausted,
    #[error(
        "{message}: {got} bytes, at least {expected} expected: the message is malformed or truncated"
    )]
    Message {
        message: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("share ReLU parameters: {0}")]
    ReluParams(&'static str),
    #[error("oblivious transfer: {0}")]
    Ot(#[from] OtError),
}

/// What a circuit computes on these inputs, in the clear and garbled under
/// `session` (the tests' check that the two agree): the plain output and
/// the garbled one, decoded.
#[cfg(test)]
pub(crate) fn plain_and_garbled(
    circuit: &Circuit,
    garbler: &[bool],
    evaluator: &[bool],
    session: &mut Tweaks,
    rng: &mut rand::rngs::StdRng,
) -> (u64, u64) {
    let plain = from_bits(&circuit.eval_plain(garbler, evaluator).unwrap());
    let (garbled, encoding) = garble(circuit, session, rng).unwrap();
    let labels = evaluate(
        circuit,
        &garbled,
        &encoding.garbler_labels(garbler).unwrap(),
        &encoding.evaluator_labels(evaluator).unwrap(),
    )
    .unwrap();
    (plain, from_bits(&garbled.decode(&labels).unwrap()))
}

/// The seeded generator of every test, so that a failure reproduces.
#[cfg(test)]
pub(crate) fn test_rng() -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(0x6761_7262_6c65)
}
