//! The errors of the HE layer, the one type every module of this crate
//! returns and the layers above match on.

/// Errors of the HE layer: parameters that cannot hold a layer, malformed
/// weights, library failures, and decryptions that disagree with the
/// plaintext reference.
#[derive(Debug, thiserror::Error)]
pub enum HeError {
    /// A layer or network the HE model cannot pack or count.
    #[error(transparent)]
    Model(#[from] explore_he_model::Error),
    /// Shares that do not fit the plaintext modulus.
    #[error(transparent)]
    Private(#[from] explore_private::PrivateError),
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
        "layer {layer}: share value {value} is not a residue mod the plaintext modulus {modulus}: reduce shares into [0, t)"
    )]
    ShareRange {
        layer: String,
        value: u64,
        modulus: u64,
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
    /// A query the session does not expect now: a replayed or skipped
    /// round, one past the last, or a round holding other layers.
    #[error("query refused: {why} (a session answers rounds 0 to {last} once each, in order)")]
    Round { why: String, last: usize },
    #[error("quantized model: {0}")]
    Quant(#[from] explore_quant::QuantError),
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
