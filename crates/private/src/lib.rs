//! The nonlinear half of model-private inference. Between two linear
//! layers the client and the server hold additive shares mod the BFV
//! plaintext modulus t of a layer's accumulators; each output then goes
//! through the integer model's own step (explore-quant's
//! [`Step`](explore_quant::fixed::Step): rescale, bias, round, ReLU, clamp)
//! as a share-ReLU garbled circuit that the server garbles and the client
//! evaluates, so that both end with fresh shares of the next layer's input
//! and neither learns an activation.
//!
//! [`plan`] maps the integer model's steps and their bounds to checked
//! circuit parameters, for a whole network; [`channel`] carries the parties'
//! messages as bytes, in memory or over a loopback socket, with each party
//! in its own thread; [`shared`] is each party's half of a forward pass on
//! shares, implementing explore-quant's [`Steps`](explore_quant::Steps) so
//! that the order of the rounds stays the integer model's; [`dealer`]
//! supplies linear layers on shares in the clear, to measure this half
//! alone.

pub mod channel;
pub mod dealer;
pub mod plan;
pub mod shared;

pub use channel::{Channel, Network, two_parties};
pub use plan::{ChannelCircuit, Garbling, MeanCircuit, Modulus, Plan};
pub use shared::{ClientSteps, PartySteps, ServerSteps, Shares, Traffic};

/// Why a step cannot run on shares.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrivateError {
    #[error(
        "layer {layer}, channel {channel}: its step does not fit a share circuit at t = {modulus} ({source}): choose a larger plaintext modulus (he.plaintext_bits)"
    )]
    Step {
        layer: String,
        channel: usize,
        modulus: u64,
        source: explore_gc::GcError,
    },
    #[error(
        "the plaintext modulus must be an odd prime of at most 62 bits, got {0}: pick it with PlaintextModulus::for_layers"
    )]
    Modulus(u64),
    #[error("the channel between the parties: {0}")]
    Channel(String),
    #[error("malformed message: {0}")]
    Message(String),
    #[error(transparent)]
    Gc(#[from] explore_gc::GcError),
    #[error(transparent)]
    Quant(#[from] explore_quant::QuantError),
}

/// An oblivious-transfer message that fails to parse or finish is the
/// garbling layer's error.
impl From<explore_gc::OtError> for PrivateError {
    fn from(e: explore_gc::OtError) -> Self {
        PrivateError::Gc(e.into())
    }
}
