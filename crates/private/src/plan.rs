//! The integer model's steps as circuits on shares: one [`ChannelCircuit`]
//! (a share ReLU) per output channel, its parameters from the channel's
//! [`Step`] and the bounds of its terms (the accumulator's from the
//! channel's weights, the shortcut's from its conv or the activation
//! range), and one [`MeanCircuit`] per pooled channel; all checked against
//! the plaintext modulus so that no shared value wraps.

use explore_gc::{Circuit, GcError, MeanParams, ReluParams, ShareInputs, Term};
use explore_quant::fixed::Step;

use crate::PrivateError;

/// The plaintext modulus t the shares live in, with its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulus {
    pub t: u64,
    pub bits: usize,
}

impl Modulus {
    /// An odd t of at most 62 bits (two shares' sum then fits a u64).
    pub fn new(t: u64) -> Result<Modulus, PrivateError> {
        let bits = (u64::BITS - t.leading_zeros()) as usize;
        if t < 3 || t.is_multiple_of(2) || bits > 62 {
            return Err(PrivateError::Modulus(t));
        }
        Ok(Modulus { t, bits })
    }

    /// `v` mod t.
    pub fn reduce(&self, v: i64) -> u64 {
        v.rem_euclid(self.t as i64) as u64
    }

    /// A residue read as signed: above (t - 1)/2 stands for y - t.
    pub fn signed(&self, y: u64) -> i64 {
        if y > (self.t - 1) / 2 {
            y as i64 - self.t as i64
        } else {
            y as i64
        }
    }

    /// (a + b) mod t.
    pub fn add(&self, a: u64, b: u64) -> u64 {
        (a + b) % self.t
    }
}

/// A circuit on shares, built once for many garblings, with the
/// parameters that lay out its inputs.
#[derive(Debug, Clone)]
pub struct Garbling<P> {
    pub params: P,
    pub circuit: Circuit,
}

impl<P: ShareInputs> Garbling<P> {
    fn of(params: P) -> Garbling<P> {
        Garbling {
            circuit: params.circuit(),
            params,
        }
    }
}

/// One output channel's step as a share ReLU.
pub type ChannelCircuit = Garbling<ReluParams>;

/// Pooling's step on one channel: the channel's values summed inside the
/// circuit (their shares' sum could wrap mod t), then the mean's step.
pub type MeanCircuit = Garbling<MeanParams>;

impl ChannelCircuit {
    /// The circuit of `step` when its accumulator lies within
    /// ±`acc_bound` and its shortcut term (if the step has one) within
    /// ±`short_bound`.
    pub fn new(
        step: &Step,
        acc_bound: u64,
        short_bound: Option<u64>,
        modulus: Modulus,
    ) -> Result<ChannelCircuit, GcError> {
        let term = |multiplier: i64, bound: u64| {
            // The integer model's multipliers come from positive scale
            // ratios; a negative one would be a bug upstream.
            u64::try_from(multiplier)
                .map(|multiplier| Term { multiplier, bound })
                .map_err(|_| GcError::ReluParams("a step's multiplier must be nonnegative"))
        };
        let acc = term(step.acc_multiplier, acc_bound)?;
        let short = short_bound
            .map(|b| term(step.short_multiplier, b))
            .transpose()?;
        let clamp = step.clamp.map(|c| c.max(0) as u64);
        Ok(Garbling::of(ReluParams::new(
            modulus.t,
            modulus.bits,
            acc,
            short,
            step.bias,
            step.shift,
            clamp,
        )?))
    }
}

impl MeanCircuit {
    /// The circuit of pooling's `step` (no bias, a clamp) over `count`
    /// values, each within `[0, bound]`.
    pub fn new(
        step: &Step,
        count: usize,
        bound: u64,
        modulus: Modulus,
    ) -> Result<MeanCircuit, GcError> {
        let (Ok(multiplier), 0, Some(clamp)) =
            (u64::try_from(step.acc_multiplier), step.bias, step.clamp)
        else {
            return Err(GcError::ReluParams(
                "a mean's step has a nonnegative multiplier, no bias and a clamp",
            ));
        };
        Ok(Garbling::of(MeanParams::new(
            modulus.t,
            modulus.bits,
            count,
            bound,
            multiplier,
            step.shift,
            clamp.max(0) as u64,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use explore_gc::share_relu_reference;

    use super::*;

    #[test]
    fn a_channel_circuit_computes_its_step_on_shares() {
        let modulus = Modulus::new(786_433).unwrap();
        let step = Step::new(0.013, Some(0.7), -0.4, Some(127));
        let c = ChannelCircuit::new(&step, 200_000, Some(127), modulus).unwrap();
        let mut r = 12_345u64;
        for (acc, short) in [
            (0i64, 0i64),
            (1_000, 3),
            (-5_000, 127),
            (199_999, -127),
            (31, 1),
        ] {
            // Shares that wrap and shares that do not.
            r = (r * 7_919 + 17) % modulus.t;
            let (a, b) = (r, modulus.reduce(acc - r as i64));
            let (c2, d) = (modulus.t - 1 - r, modulus.reduce(short + 1 + r as i64));
            let mask = (r * 3) % modulus.t;
            let share = share_relu_reference(&c.params, &[a, c2], &[b, d], mask);
            let z = modulus.reduce(share as i64 - mask as i64);
            assert_eq!(z as i64, step.apply(acc, short), "{acc} {short}");
        }
    }

    #[test]
    fn a_step_that_would_wrap_is_refused() {
        let modulus = Modulus::new(786_433).unwrap();
        let step = Step::new(0.013, None, 0.0, Some(127));
        // An accumulator bound beyond (t - 1)/2 cannot be read as signed.
        assert!(ChannelCircuit::new(&step, 400_000, None, modulus).is_err());
        // Unclamped, the largest output must stay below (t - 1)/2 too.
        let open = Step::new(3.0, None, 0.0, None);
        assert!(ChannelCircuit::new(&open, 200_000, None, modulus).is_err());
        assert!(Modulus::new(786_432).is_err());
        assert!(Modulus::new((1 << 63) + 1).is_err());
    }
}
