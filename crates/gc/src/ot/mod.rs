//! Oblivious transfer of the evaluator's input labels: chosen-message
//! 1-out-of-2 OT of 128-bit blocks, the garbler (server) sending the pair
//! (zero label, zero label ⊕ Δ) of each evaluator input wire and the
//! evaluator (client) receiving the label of its bit, so that the garbler
//! learns none of the bits and the evaluator neither the other labels nor Δ.
//!
//! The layer owns the protocol messages and each party's state, not the
//! transport: every step takes the other party's message and returns the
//! next one plus the state to continue with, and every message has
//! `to_bytes` and `from_bytes` (which rejects wrong lengths and points off
//! the group), so a socket can later carry them as they are.
//!
//! Two layers, semi-honest only:
//! - [`base`]: κ = 128 public-key OTs, the "simplest OT" of Chou and
//!   Orlandi over Ristretto, run once per session pair;
//! - [`iknp`]: the OT extension of Ishai, Kilian, Nissim and Petrank, which
//!   turns them into any number of OTs at a few AES calls each.

pub mod base;
pub mod iknp;

pub use iknp::{
    ExtReceiver, ExtSender, ExtendRequest, ExtendResponse, PendingExtend, ReceiverSetup,
};

/// Why an OT message or a step of the protocol is rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtError {
    #[error("{message}: {got} bytes, expected {expected}")]
    Length {
        message: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{message}: point {index} is not the encoding of a Ristretto point")]
    InvalidPoint { message: &'static str, index: usize },
    #[error("{what}: {got}, expected {expected}")]
    Count {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error(
        "extension request for OT {got}, the sender is at OT {expected}: requests must be answered in order"
    )]
    OutOfOrder { expected: u64, got: u64 },
}

/// Checks that `bytes` is `expected` long.
fn check_length(message: &'static str, bytes: &[u8], expected: usize) -> Result<(), OtError> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(OtError::Length {
            message,
            expected,
            got: bytes.len(),
        })
    }
}

/// The 16 little-endian bytes of a chunk as a u128; chunks come from
/// `chunks_exact(16)`, so the conversion cannot fail.
fn u128_from(chunk: &[u8]) -> u128 {
    u128::from_le_bytes(chunk.try_into().expect("a 16-byte chunk"))
}
