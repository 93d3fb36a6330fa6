//! The share mean of model-private inference: pooling's step on shares.
//! The client and the server hold additive shares mod an odd t of `count`
//! nonnegative values (one channel's ReLU outputs before pooling, each at
//! most `bound`). The circuit reconstructs each value, sums them on as
//! many bits as `count · bound` needs, multiplies the sum by the public
//! multiplier, rounds by the shift (halves up), clamps, and outputs
//! (z + r) mod t for a fresh mask r of the server's:
//!
//!   z = min(⌊(Σ y_j · m + 2^(shift−1)) / 2^shift⌋, clamp)
//!
//! Summing inside the circuit keeps the sum exact: the shares' own sum mod
//! t would wrap once the channel's values add up past (t − 1)/2.
//!
//! Inputs: the evaluator's share of each value, then the garbler's share
//! of each value and its mask, `bits` bits little-endian each, in [0, t).

use crate::builder::Builder;
use crate::circuit::Circuit;
use crate::relu::{add_mod, bit_len, check_modulus};
use crate::{GcError, ShareInputs};

/// Checked parameters of [`share_mean`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeanParams {
    modulus: u64,
    bits: usize,
    count: usize,
    bound: u64,
    multiplier: u64,
    shift: u32,
    clamp: u64,
    /// Bits that hold the largest sum.
    sum_width: usize,
    /// Bits that hold the largest product plus the rounding term.
    width: usize,
}

impl MeanParams {
    /// The modulus odd and below 2^bits (bits ≤ 63); at least one value,
    /// each value's bound at most (t − 1)/2; the largest product with its
    /// rounding term within 64 bits; the clamp at most (t − 1)/2, so that
    /// the next step reads the output as nonnegative.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        modulus: u64,
        bits: usize,
        count: usize,
        bound: u64,
        multiplier: u64,
        shift: u32,
        clamp: u64,
    ) -> Result<Self, GcError> {
        let reject = |why| Err(GcError::ReluParams(why));
        let half = check_modulus(modulus, bits, shift)?;
        if count == 0 {
            return reject("a mean needs at least one value");
        }
        if bound > half {
            return reject("a value's bound must be at most (t - 1)/2");
        }
        if clamp > half {
            return reject("the clamp must be at most (t - 1)/2");
        }
        let sum = count as u128 * u128::from(bound);
        let rounding = if shift == 0 { 0 } else { 1u128 << (shift - 1) };
        let largest = sum
            .checked_mul(multiplier.into())
            .map(|p| p + rounding)
            .unwrap_or(u128::MAX);
        let width = bit_len(largest);
        if width > 64 {
            return reject("the largest product must fit 64 bits");
        }
        Ok(MeanParams {
            modulus,
            bits,
            count,
            bound,
            multiplier,
            shift,
            clamp,
            sum_width: bit_len(sum).max(1),
            width: width.max(1),
        })
    }
}

/// Its shared values are the channel's values.
impl ShareInputs for MeanParams {
    fn share_bits(&self) -> usize {
        self.bits
    }
    fn values(&self) -> usize {
        self.count
    }
    fn circuit(&self) -> Circuit {
        share_mean(self)
    }
}

/// The share mean circuit (see the module documentation).
pub fn share_mean(params: &MeanParams) -> Circuit {
    let mut builder = Builder::new();
    let clients: Vec<_> = (0..params.count)
        .map(|_| builder.evaluator_word(params.bits))
        .collect();
    let servers: Vec<_> = (0..params.count)
        .map(|_| builder.garbler_word(params.bits))
        .collect();
    let mask = builder.garbler_word(params.bits);

    // Each value is at most its bound: its low bits are the whole value.
    let k = bit_len(params.bound.into()).max(1);
    let mut sum = builder.constant(0, params.sum_width);
    for (c, s) in clients.iter().zip(&servers) {
        let y = add_mod(&mut builder, c, s, params.modulus, params.bits);
        let y = builder.resize(&builder.resize(&y, k), params.sum_width);
        sum = builder.add_wrapping(&sum, &y);
    }
    let sum = builder.resize(&sum, params.width);
    let product = builder.mul_const(&sum, params.multiplier, params.width);
    let rounding = if params.shift == 0 {
        0
    } else {
        1u64 << (params.shift - 1)
    };
    let rounding = builder.constant(rounding, params.width);
    let total = builder.add_wrapping(&product, &rounding);
    let quotient = &total[(params.shift as usize).min(params.width)..];
    let clamp = builder.constant(params.clamp, bit_len(params.clamp.into()));
    let above = builder.less_than(&clamp, quotient);
    let quotient = builder.resize(quotient, clamp.len());
    let mean = builder.mux(above, &clamp, &quotient);
    let mean = builder.resize(&mean, params.bits);
    let share = add_mod(&mut builder, &mean, &mask, params.modulus, params.bits);
    builder.output(&share);
    builder.finish()
}

/// What [`share_mean`] computes, on plain integers, written apart from the
/// circuit's helpers: each value's shares summed mod t, the values summed,
/// the product rounded by floor division of a doubled value (halves up),
/// the clamp, the mask.
pub fn share_mean_reference(params: &MeanParams, client: &[u64], server: &[u64], mask: u64) -> u64 {
    let t = u128::from(params.modulus);
    let sum: u128 = client
        .iter()
        .zip(server)
        .map(|(&a, &b)| (u128::from(a) + u128::from(b)) % t)
        .sum();
    let scale = 1u128 << params.shift;
    let z = (2 * sum * u128::from(params.multiplier) + scale) / (2 * scale);
    let z = z.min(params.clamp.into());
    ((z + u128::from(mask)) % t) as u64
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::Tweaks;

    const T: u64 = 786_433;

    #[test]
    fn the_garbled_mean_matches_the_reference_even_where_shares_would_wrap() {
        let mut rng = crate::test_rng();
        let mut session = Tweaks::new();
        // 49 values of up to 60,000: their sum passes (t - 1)/2, so summing
        // the shares mod t would wrap; the mean by 1/49 at 16 bits.
        let (count, bound) = (49, 60_000u64);
        let shift = 21;
        let multiplier = ((1u64 << shift) as f64 / 49.0).round() as u64;
        let params = MeanParams::new(T, 20, count, bound, multiplier, shift, 127).unwrap();
        let circuit = share_mean(&params);
        eprintln!("share_mean of 49 values: {} AND gates", circuit.and_gates());
        let mut outputs = std::collections::BTreeSet::new();
        for case in 0..12 {
            let values: Vec<u64> = (0..count)
                .map(|j| match case % 3 {
                    0 => rng.random_range(0..=bound),
                    1 => rng.random_range(0..10),
                    _ => {
                        if j == 0 {
                            bound
                        } else {
                            0
                        }
                    }
                })
                .collect();
            let client: Vec<u64> = values.iter().map(|_| rng.random_range(0..T)).collect();
            let server: Vec<u64> = values
                .iter()
                .zip(&client)
                .map(|(&v, &c)| (v + T - c) % T)
                .collect();
            let mask = rng.random_range(0..T);
            let expected = share_mean_reference(&params, &client, &server, mask);
            let exact = values.iter().sum::<u64>() as f64 / 49.0;
            let z = (expected + T - mask) % T;
            assert!(
                z == 127 || (z as f64 - exact).abs() <= 0.5 + 1e-3,
                "{z} {exact}"
            );
            outputs.insert(z);
            let g = params.garbler_bits(&server, mask);
            let e = params.evaluator_bits(&client);
            let (plain, garbled) =
                crate::plain_and_garbled(&circuit, &g, &e, &mut session, &mut rng);
            assert_eq!((plain, garbled), (expected, expected));
        }
        // Clamped, small and between.
        assert!(
            outputs.contains(&127) && outputs.iter().any(|&z| z < 10),
            "{outputs:?}"
        );
    }

    #[test]
    fn parameters_that_break_the_mean_are_rejected() {
        for (bits, count, bound, clamp) in [
            (19, 4, 100, 127),
            (20, 0, 100, 127),
            (20, 4, 400_000, 127),
            (20, 4, 100, 400_000),
        ] {
            assert!(MeanParams::new(T, bits, count, bound, 3, 2, clamp).is_err());
        }
        assert!(MeanParams::new(T, 20, 4, 100, u64::MAX, 2, 127).is_err());
    }
}
