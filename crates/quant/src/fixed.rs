//! Fixed-point rescaling: a positive real factor as an integer multiplier
//! over a power of two ([`Rescale`]), and the rounding shift
//! ([`round_shift`]) that the integer model and the two-party circuits
//! both apply, so that a garbled ReLU can compute exactly what the
//! integer model does.

/// Bits of a multiplier: a factor keeps 16 significant bits, a relative
/// error below 2^-16, far under one level of an 8-bit activation.
pub const MULTIPLIER_BITS: u32 = 16;

/// The largest shift: a factor as small as 2^-46 still gets all its bits
/// (sums are formed in `i128`, so no shift overflows them).
pub const MAX_SHIFT: u32 = 46;

/// A positive real factor `f` as `multiplier / 2^shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescale {
    pub multiplier: i64,
    pub shift: u32,
}

impl Rescale {
    /// The shift that gives `factor` a multiplier of [`MULTIPLIER_BITS`]
    /// bits; a factor of 2^16 or more gets shift 0 and a wider multiplier.
    pub fn shift_for(factor: f64) -> u32 {
        debug_assert!(factor > 0.0 && factor.is_finite(), "{factor}");
        let at = MULTIPLIER_BITS as i32 - 1 - factor.log2().floor() as i32;
        at.clamp(0, MAX_SHIFT as i32) as u32
    }

    /// The one shift of several factors whose terms a single rounding adds
    /// (a residual sum's two): the smallest keeps [`MULTIPLIER_BITS`] bits,
    /// unless that would give the largest more than twice as many (the
    /// smallest is then under 2^-16 of the largest, and its lost bits lie
    /// below the rounding).
    pub fn shared_shift(factors: &[f64]) -> u32 {
        let (lo, hi) = factors
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), &f| {
                (lo.min(f), hi.max(f))
            });
        Rescale::shift_for(lo).min(Rescale::shift_for(hi) + MULTIPLIER_BITS)
    }

    /// `factor` at `shift`.
    pub fn at(factor: f64, shift: u32) -> Rescale {
        Rescale {
            multiplier: (factor * (1u64 << shift) as f64).round() as i64,
            shift,
        }
    }

    /// `factor` at its own shift.
    pub fn of(factor: f64) -> Rescale {
        Rescale::at(factor, Rescale::shift_for(factor))
    }

    /// `round(x * factor)`, halves up.
    pub fn apply(self, x: i64) -> i64 {
        round_shift(x as i128 * self.multiplier as i128, self.shift) as i64
    }
}

/// `round(v / 2^shift)`, halves rounded up (towards +infinity): an
/// arithmetic shift floors, so half a unit is added first.
pub fn round_shift(v: i128, shift: u32) -> i128 {
    if shift == 0 {
        v
    } else {
        (v + (1 << (shift - 1))) >> shift
    }
}

/// One output channel's step between linear layers, in integers only:
/// `min(max(round((acc * acc_multiplier + short * short_multiplier +
/// bias) / 2^shift), 0), clamp)`, the ReLU of the channel's accumulator
/// plus a residual block's shortcut term, at the next layer's scale. What
/// the integer model computes for every output, and what a two-party
/// circuit must compute on shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub acc_multiplier: i64,
    /// Zero where no shortcut is added.
    pub short_multiplier: i64,
    /// In units of 2^-shift.
    pub bias: i64,
    pub shift: u32,
    /// The largest level of the reader's range, if it clamps.
    pub clamp: Option<i64>,
}

impl Step {
    /// The step for real factors `acc` and `short` (the shortcut's, if
    /// any) and a real `bias`, all in the reader's units, at one shift.
    pub fn new(acc: f64, short: Option<f64>, bias: f64, clamp: Option<i64>) -> Step {
        let shift = Rescale::shared_shift(&[acc, short.unwrap_or(acc)]);
        Step {
            acc_multiplier: Rescale::at(acc, shift).multiplier,
            short_multiplier: short.map_or(0, |f| Rescale::at(f, shift).multiplier),
            bias: at_shift(bias, shift),
            shift,
            clamp,
        }
    }

    /// The largest output when the accumulator and the shortcut term lie
    /// within ±`acc_bound` and ±`short_bound`: the clamp, or the rounded
    /// largest sum.
    pub fn bound(&self, acc_bound: u64, short_bound: u64) -> u64 {
        let largest = acc_bound as i128 * self.acc_multiplier as i128
            + short_bound as i128 * self.short_multiplier as i128
            + self.bias as i128;
        let y = round_shift(largest, self.shift).max(0) as u64;
        self.clamp.map_or(y, |m| y.min(m as u64))
    }

    /// The step of one accumulator and its shortcut term (0 without one).
    pub fn apply(&self, acc: i64, short: i64) -> i64 {
        let v = acc as i128 * self.acc_multiplier as i128
            + short as i128 * self.short_multiplier as i128
            + self.bias as i128;
        let y = round_shift(v, self.shift).max(0);
        self.clamp.map_or(y, |m| y.min(m as i128)) as i64
    }
}

/// A real value in units of 2^-shift, rounded to the nearest (a bias added
/// before a rounding shift).
pub fn at_shift(value: f64, shift: u32) -> i64 {
    (value * (1u64 << shift) as f64).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_rounds_halves_up_on_both_signs() {
        assert_eq!(round_shift(5, 1), 3); // 2.5
        assert_eq!(round_shift(-5, 1), -2); // -2.5
        assert_eq!(round_shift(-6, 2), -1); // -1.5
        assert_eq!(round_shift(6, 2), 2); // 1.5
        assert_eq!(round_shift(7, 3), 1); // 0.875
        assert_eq!(round_shift(-3, 3), 0); // -0.375
        assert_eq!(round_shift(-17, 0), -17);
        for v in -300i128..300 {
            for shift in 1..6 {
                let exact = v as f64 / (1 << shift) as f64;
                assert_eq!(
                    round_shift(v, shift),
                    (exact + 0.5).floor() as i128,
                    "{v} {shift}"
                );
            }
        }
    }

    #[test]
    fn a_rescale_keeps_sixteen_bits_of_its_factor() {
        for factor in [1e-9, 3.7e-4, 0.0123, 0.5, 0.999_999, 1.0, 3.25, 40_000.0] {
            let r = Rescale::of(factor);
            if r.shift > 0 {
                assert!(
                    (1 << 15..=1 << 16).contains(&r.multiplier),
                    "{factor}: {r:?}"
                );
            }
            let back = r.multiplier as f64 / (1u64 << r.shift) as f64;
            assert!(
                (back / factor - 1.0).abs() < 2f64.powi(-15),
                "{factor}: {r:?}"
            );
        }
        // A shared shift keeps sixteen bits of the smaller factor...
        let shift = Rescale::shared_shift(&[0.9, 0.01]);
        assert_eq!(shift, Rescale::shift_for(0.01));
        assert!(Rescale::at(0.01, shift).multiplier >= 1 << 15);
        // ...unless the larger would need more than 32.
        let shift = Rescale::shared_shift(&[0.9, 1e-9]);
        assert_eq!(shift, Rescale::shift_for(0.9) + 16);
        assert!(Rescale::at(0.9, shift).multiplier < 1 << 32);
        // Beyond 2^16 the multiplier is wider, at shift 0.
        assert_eq!(
            Rescale::of(1e6),
            Rescale {
                multiplier: 1_000_000,
                shift: 0
            }
        );
    }

    #[test]
    fn apply_rounds_the_scaled_value() {
        let third = Rescale::of(1.0 / 3.0);
        for x in -1000i64..1000 {
            let exact = x as f64 / 3.0;
            assert!((third.apply(x) as f64 - exact).abs() <= 0.5 + 1e-3, "{x}");
        }
        assert_eq!(Rescale::of(0.5).apply(3), 2);
        assert_eq!(at_shift(0.25, 4), 4);
        assert_eq!(at_shift(-0.3, 1), -1);
    }

    #[test]
    fn a_step_rounds_relus_and_clamps_the_real_sum() {
        let step = Step::new(0.01, Some(0.5), -1.25, Some(127));
        for (acc, short, want) in [
            (0, 0, 0),          // -1.25: ReLU
            (250, 0, 1),        // 1.25
            (300, 1, 2),        // 3 + 0.5 - 1.25 = 2.25
            (-100_000, 200, 0), // -901.25
            (100_000, 0, 127),  // 998.75, clamped
        ] {
            let real = acc as f64 * 0.01 + short as f64 * 0.5 - 1.25;
            assert_eq!(step.apply(acc, short), want, "{acc} {short}: {real}");
        }
        // Halves round up.
        let quarter = Step::new(0.25, None, 0.0, Some(127));
        assert_eq!([quarter.apply(2, 0), quarter.apply(6, 0)], [1, 2]);
        // Without a clamp (before pooling) the value stays as large as it is.
        let open = Step::new(0.01, None, 0.0, None);
        assert_eq!(open.apply(100_000, 12345), 1000);
    }

    #[test]
    fn a_steps_bound_is_its_largest_output() {
        for step in [
            Step::new(0.01, Some(0.5), -1.25, Some(127)),
            Step::new(0.013, Some(0.7), 0.4, None),
            Step::new(0.25, None, 3.0, None),
        ] {
            let (a, s) = (20_000u64, 127u64);
            let largest = (-(a as i64)..=a as i64)
                .step_by(7)
                .chain([a as i64])
                .flat_map(|acc| [-(s as i64), 0, s as i64].map(|short| step.apply(acc, short)))
                .max()
                .unwrap();
            assert_eq!(step.bound(a, s), largest as u64, "{step:?}");
        }
    }
}
