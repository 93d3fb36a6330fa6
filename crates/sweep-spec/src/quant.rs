//! How a float network becomes the integer one the HE executor runs: the
//! bit widths and calibration a spec sets, checked once here (the integer
//! model itself is the `explore-quant` crate).

use serde::{Deserialize, Serialize};

/// A quantization setting out of range, naming the spec field to fix.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum QuantConfigError {
    #[error("{0} quantization bits is outside 2..16: use 8 (he.weight_bits, he.activation_bits)")]
    Bits(u32),
    #[error(
        "calibration percentile {0} is outside (0, 100]: use e.g. 99.99 (he.calibration_percentile)"
    )]
    Percentile(f64),
}

/// The bit widths a quantized value may have.
pub const BITS: std::ops::RangeInclusive<u32> = 2..=16;

/// How the integer model rescales between its linear layers
/// (`he.requantization`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requantization {
    /// Integers only: per output channel an integer multiplier and a shift
    /// (rounding halves up), the bias at the shifted scale, ReLU, and a
    /// clamp to the next layer's range; a residual sum adds its two terms
    /// at the next layer's scale before one rounding; pooling sums, then
    /// rescales. What a two-party protocol computes on shares.
    #[default]
    Fixed,
    /// Rescaling, bias, ReLU, residual sums and pooling in f64, the identity
    /// shortcuts at full precision: the model the sweeps before fixed point
    /// measured, which only a client that sees every layer's output can run.
    Float,
}

explore_he_model::named_enum!(Requantization: String, |s| format!("requantization {s:?}: use fixed or float"), {
    Fixed => "fixed",
    Float => "float",
});

/// How a float network becomes the integer one the HE executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    pub weight_bits: u32,
    pub activation_bits: u32,
    /// One weight scale per output channel (else one per layer).
    pub per_channel: bool,
    /// Each layer's input scale maps this percentile of |input| over the
    /// calibration images to the largest level (100: the maximum); larger
    /// outliers saturate.
    pub percentile: f64,
    pub requantization: Requantization,
}

impl QuantConfig {
    pub fn check(&self) -> Result<(), QuantConfigError> {
        for bits in [self.weight_bits, self.activation_bits] {
            if !BITS.contains(&bits) {
                return Err(QuantConfigError::Bits(bits));
            }
        }
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(QuantConfigError::Percentile(self.percentile));
        }
        Ok(())
    }
}
