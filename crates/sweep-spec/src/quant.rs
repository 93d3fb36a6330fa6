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
