//! How much noise a layer adds, as a worst-case bound, and the fewest
//! ciphertext primes that leave a safety margin of noise budget after every
//! layer of a network.
//!
//! Every layer starts from a fresh encryption of its input and runs once:
//! input rotations (key switches), products with plaintext masks, their sums,
//! output rotations, a row swap and the fold. In fhe.rs's BFV a key switch
//! decomposes over every ciphertext prime with no special prime, so it adds
//! `sum_i d_i e_i`: `L` digits below the largest prime `q_max`, times errors
//! of fhe.rs's centred binomial (variance 10, so `|e| <= 20`), over `N`
//! coefficients. With a special prime `P` (hybrid key switching, the keys at
//! `QP`) that sum is divided by `P` and the division's rounding adds at most
//! `1/2 + N/2 * 20`: a key switch then costs a few bits instead of about a
//! prime's worth. fhe.rs encodes a plaintext uncentred, its coefficients in
//! `[0, t)`, and encrypts `floor(q m / t)`: so a product with a mask
//! multiplies the noise (and the encryption's rounding, below 1) by at most
//! `N (t - 1)`, and its message, taken modulo `t`, adds only the rounding of
//! `q / t` (below 1). A public-key encryption's noise is `e u + e1 + e2 s`
//! with `u`, `s` and the errors all drawn from that centred binomial. The
//! bound takes every one of these at its largest (infinity norms, no
//! averaging); the executor measures the real budgets, which sit well above
//! it (tests check that no layer's measured budget falls below its bound).
//!
//! A reply that leaves the server may be flooded for circuit privacy (a
//! fresh encryption of zero re-randomizes it, and uniform noise far larger
//! than the worst case of the server's own hides it), which the modulus must
//! also hold, and is then switched down to the fewest primes that still
//! decrypt it: both are sized here from the same bound.

use serde::Serialize;

use crate::Error;
use crate::plaintext::moduli_sizes;

/// |e| of fhe.rs's centred binomial error of variance 10 (the difference of
/// two sums of 20 bits).
const ERROR_BOUND: f64 = 20.0;

/// What a layer does to one output ciphertext, for its noise: the products
/// summed into it, the rotations applied after them, the folds (each adds a
/// rotated copy to itself) and whether its inputs are rotated first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NoiseDepth {
    pub products: usize,
    pub rotations_after: usize,
    pub folds: usize,
    pub input_rotated: bool,
}

impl NoiseDepth {
    /// The larger of two layers' depths, field by field: a bound for both.
    pub fn max(self, o: NoiseDepth) -> NoiseDepth {
        NoiseDepth {
            products: self.products.max(o.products),
            rotations_after: self.rotations_after.max(o.rotations_after),
            folds: self.folds.max(o.folds),
            input_rotated: self.input_rotated || o.input_rotated,
        }
    }

    /// log2 of the worst-case noise of the layer's output under `moduli`
    /// (bits per prime) at ring degree `n` with a `t_bits`-bit plaintext
    /// modulus.
    ///
    /// `special` is the special prime's bits, `None` for fhe.rs's key
    /// switching without one.
    pub fn noise_bits(
        &self,
        n: usize,
        t_bits: u32,
        moduli: &[usize],
        special: Option<usize>,
    ) -> f64 {
        let (n, t) = (n as f64, 2f64.powi(t_bits as i32));
        let key_switch = key_switch_noise(n, moduli, special);
        let input = fresh_noise(n) + if self.input_rotated { key_switch } else { 0.0 };
        let product = (input + 1.0) * n * (t - 1.0) + 1.0;
        let summed = self.products.max(1) as f64 * product;
        let rotated = summed + self.rotations_after as f64 * key_switch;
        (rotated * 2f64.powi(self.folds as i32)).log2()
    }

    /// The noise budget left in bits: `log2(q) - log2(t) - 1` less the
    /// noise, fhe.rs's definition.
    pub fn budget_bits(
        &self,
        n: usize,
        t_bits: u32,
        moduli: &[usize],
        special: Option<usize>,
    ) -> f64 {
        let q: usize = moduli.iter().sum();
        q as f64 - t_bits as f64 - 1.0 - self.noise_bits(n, t_bits, moduli, special)
    }

    /// log2 of the bound on the flooding noise a reply of this depth gets
    /// (`None` when flooding is off): the worst case of the server's noise
    /// plus the statistical bits plus `log2 N`, rounded up.
    pub fn flood_bits(
        &self,
        n: usize,
        t_bits: u32,
        moduli: &[usize],
        special: Option<usize>,
        flooding: Flooding,
    ) -> Option<u32> {
        flooding.is_on().then(|| {
            let bits =
                self.noise_bits(n, t_bits, moduli, special) + flooding.0 as f64 + (n as f64).log2();
            bits.ceil() as u32
        })
    }

    /// log2 of the worst-case noise of a reply as it leaves the server: the
    /// layer's, plus with flooding a fresh encryption of zero and the
    /// flooding noise.
    pub fn reply_noise_bits(
        &self,
        n: usize,
        t_bits: u32,
        moduli: &[usize],
        special: Option<usize>,
        flooding: Flooding,
    ) -> f64 {
        let own = self.noise_bits(n, t_bits, moduli, special);
        match self.flood_bits(n, t_bits, moduli, special, flooding) {
            None => own,
            Some(flood) => {
                (2f64.powf(own) + fresh_noise(n as f64) + 2f64.powi(flood as i32)).log2()
            }
        }
    }

    /// The budget a reply has left at the full modulus of `moduli`.
    pub fn reply_budget_bits(
        &self,
        n: usize,
        t_bits: u32,
        moduli: &[usize],
        special: Option<usize>,
        flooding: Flooding,
    ) -> f64 {
        let q: usize = moduli.iter().sum();
        let noise = self.reply_noise_bits(n, t_bits, moduli, special, flooding);
        q as f64 - t_bits as f64 - 1.0 - noise
    }

    /// How many of `moduli`'s primes a reply keeps when it is switched down
    /// to the fewest that leave `margin_bits` (fhe.rs drops the last prime
    /// first, so it keeps a prefix), with the budget left there. Switching
    /// scales the noise with the modulus and adds its own rounding, so a
    /// reply keeps its budget until that rounding dominates. At least the
    /// full modulus is returned when nothing smaller holds.
    pub fn reply_primes(
        &self,
        n: usize,
        t_bits: u32,
        moduli: &[usize],
        special: Option<usize>,
        flooding: Flooding,
        margin_bits: f64,
    ) -> (usize, f64) {
        let noise = self.reply_noise_bits(n, t_bits, moduli, special, flooding);
        let q: usize = moduli.iter().sum();
        let budget_at = |k: usize| {
            let qk: usize = moduli[..k].iter().sum();
            let scaled = 2f64.powf(noise - (q - qk) as f64);
            qk as f64 - t_bits as f64 - 1.0 - (scaled + switching_noise(n, t_bits)).log2()
        };
        (1..moduli.len())
            .map(|k| (k, budget_at(k)))
            .find(|&(_, budget)| budget >= margin_bits)
            .unwrap_or((moduli.len(), q as f64 - t_bits as f64 - 1.0 - noise))
    }
}

/// The safety margin of noise budget kept after every layer when none is
/// given, in bits.
pub const DEFAULT_MARGIN_BITS: f64 = 10.0;

/// Noise flooding of the server's replies, as its statistical security in
/// bits (0: off). With `Flooding(k)` a reply's noise is hidden under
/// uniform noise of `k + log2 N` bits more than the worst case of the
/// server's, so the statistical distance between the replies of any two
/// models that compute the same output is at most `2^-k` per ciphertext
/// (the smudging lemma, summed over the `N` coefficients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Flooding(pub u32);

impl Flooding {
    pub const OFF: Flooding = Flooding(0);
    /// Gazelle's and most two-party HE papers' statistical security.
    pub const DEFAULT: Flooding = Flooding(40);

    pub fn is_on(self) -> bool {
        self.0 > 0
    }
}

/// The noise of a public-key encryption at ring degree `n`: `e u + e1 +
/// e2 s`, two products of centred-binomial polynomials (each coefficient a
/// sum of `n` products of at most `20 * 20`) and one more error.
fn fresh_noise(n: f64) -> f64 {
    2.0 * n * ERROR_BOUND * ERROR_BOUND + ERROR_BOUND
}

/// The noise one key switch adds at ring degree `n` under ciphertext primes
/// of `moduli` bits: without a special prime `L` digits below `2^q_max`
/// times errors below 20 over `n` coefficients; with a special prime of
/// `special` bits (at least `2^(bits-1)`) that sum divided by it, plus the
/// division's rounding (1/2 on `c0`, and 1/2 on `c1` times the secret key:
/// `n/2 * 20`).
fn key_switch_noise(n: f64, moduli: &[usize], special: Option<usize>) -> f64 {
    let q_max = *moduli.iter().max().unwrap_or(&0) as i32;
    let digits = moduli.len() as f64 * n * ERROR_BOUND;
    match special {
        None => digits * 2f64.powi(q_max),
        Some(p_bits) => digits * 2f64.powi(q_max - p_bits as i32 + 1) + n * ERROR_BOUND / 2.0 + 0.5,
    }
}

/// The rounding noise of switching a ciphertext down one or more primes:
/// `c1`'s rounding times the secret key (`|s| <= 20`, so at most `10 N`)
/// plus the mismatch of the two scalings of the message (below `t`).
fn switching_noise(n: usize, t_bits: u32) -> f64 {
    2f64.powi(t_bits as i32) + n as f64 * ERROR_BOUND / 2.0 + 1.0
}

/// A safety margin must be a positive number of bits.
pub fn check_margin(margin_bits: f64) -> Result<(), Error> {
    if margin_bits.is_finite() && margin_bits > 0.0 {
        Ok(())
    } else {
        Err(Error::NoiseMargin(margin_bits))
    }
}

/// The chosen ciphertext primes, the special prime of key switching if
/// there is one, and the smallest budget the bound leaves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModulusChoice {
    pub moduli: Vec<usize>,
    /// The special prime's bits: the keys live at the ciphertext primes
    /// times it, which the 128-bit bound counts. `None`: fhe.rs's key
    /// switching, without one.
    pub special: Option<usize>,
    pub budget_bits: f64,
}

impl ModulusChoice {
    /// The fewest primes of the ring degree's 128-bit table (a prefix of it,
    /// so the total only shrinks below the bound) that leave `margin_bits`
    /// after a layer of depth `depth`, and after its reply is flooded. With
    /// `special_prime` the table's next prime after them is the special
    /// prime, so ciphertext and special primes together stay a prefix of
    /// the table, within the bound.
    pub fn fewest(
        poly_degree: usize,
        t_bits: u32,
        depth: NoiseDepth,
        margin_bits: f64,
        flooding: Flooding,
        special_prime: bool,
    ) -> Result<ModulusChoice, Error> {
        let table = moduli_sizes(poly_degree)?;
        let most = table.len() - usize::from(special_prime);
        let holding = |k: usize| {
            Self::holding(
                poly_degree,
                t_bits,
                depth,
                (&table[..k], special_prime.then(|| table[k])),
                margin_bits,
                flooding,
            )
        };
        (1..most)
            .find_map(|k| holding(k).ok())
            .map_or_else(|| holding(most), Ok)
    }

    /// `moduli` (ciphertext primes' bits, special prime's bits) if they leave
    /// `margin_bits` after a layer of depth `depth` and its flooded reply
    /// (with the budget the bound leaves), else the error naming the fix.
    pub fn holding(
        poly_degree: usize,
        t_bits: u32,
        depth: NoiseDepth,
        (moduli, special): (&[usize], Option<usize>),
        margin_bits: f64,
        flooding: Flooding,
    ) -> Result<ModulusChoice, Error> {
        check_margin(margin_bits)?;
        let budget_bits = depth.reply_budget_bits(poly_degree, t_bits, moduli, special, flooding);
        if budget_bits >= margin_bits {
            return Ok(ModulusChoice {
                moduli: moduli.to_vec(),
                special,
                budget_bits,
            });
        }
        let own = depth.budget_bits(poly_degree, t_bits, moduli, special);
        if !flooding.is_on() || own < margin_bits {
            return Err(Error::NoiseBudget {
                poly_degree,
                budget_bits,
                margin_bits,
            });
        }
        // The layer fits and its flooding does not: name the ring degree
        // that carries it, and the most flooding this one does.
        let fits = |n: usize| {
            moduli_sizes(n).is_ok_and(|table| {
                let (q, p) = match special {
                    Some(_) => (&table[..table.len() - 1], table.last().copied()),
                    None => (table, None),
                };
                depth.reply_budget_bits(n, t_bits, q, p, flooding) >= margin_bits
            })
        };
        let larger = (1..=3).map(|i| poly_degree << i).find(|&n| fits(n));
        let spare = own - margin_bits - (poly_degree as f64).log2();
        Err(Error::FloodingBudget {
            poly_degree,
            flooding: flooding.0,
            budget_bits,
            margin_bits,
            larger,
            most: spare.max(0.0).floor() as u32,
        })
    }

    /// `54+54+55`, or `54+54+P55` with a special prime: the primes' bits,
    /// as tables show them.
    pub fn describe(&self) -> String {
        let mut bits: Vec<String> = self.moduli.iter().map(usize::to_string).collect();
        bits.extend(self.special.map(|p| format!("P{p}")));
        bits.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage3() -> NoiseDepth {
        // A stage-3 ResNet-20 conv under the best schedule: 150 products
        // into one output, 16 giant rotations after them, no fold.
        NoiseDepth {
            products: 150,
            rotations_after: 16,
            folds: 0,
            input_rotated: true,
        }
    }

    #[test]
    fn one_prime_fewer_than_the_table_holds_a_resnet_layer_at_n_8192() {
        let c = ModulusChoice::fewest(
            8192,
            25,
            stage3(),
            DEFAULT_MARGIN_BITS,
            Flooding::OFF,
            false,
        )
        .unwrap();
        assert_eq!(c.moduli, vec![54, 54, 55]);
        assert!(c.budget_bits >= DEFAULT_MARGIN_BITS);
        // Two primes leave nothing; the full table leaves a prime more.
        assert!(stage3().budget_bits(8192, 25, &[54, 54], None) < 0.0);
        let full = stage3().budget_bits(8192, 25, &[54, 54, 55, 55], None);
        assert!((full - c.budget_bits - 55.0).abs() < 1.0, "{full}");
    }

    #[test]
    fn more_work_means_more_noise_and_a_margin_must_be_positive() {
        let m = [54, 54, 55, 55];
        let base = stage3().noise_bits(8192, 25, &m, None);
        let more = NoiseDepth {
            products: 300,
            ..stage3()
        };
        assert!((more.noise_bits(8192, 25, &m, None) - base - 1.0).abs() < 0.01);
        let folded = NoiseDepth {
            folds: 2,
            ..stage3()
        };
        assert!(folded.noise_bits(8192, 25, &m, None) > base + 1.99);
        assert_eq!(stage3().max(folded), folded);
        assert!(matches!(
            ModulusChoice::fewest(8192, 25, stage3(), 0.0, Flooding::OFF, false),
            Err(Error::NoiseMargin(_))
        ));
        // Nothing fits at N = 4096 with a 25-bit t and a rotated input.
        let e = ModulusChoice::fewest(4096, 25, stage3(), 10.0, Flooding::OFF, false).unwrap_err();
        assert!(matches!(e, Error::NoiseBudget { .. }), "{e}");
        assert!(e.to_string().contains("poly_degree"), "{e}");
    }

    #[test]
    fn flooding_takes_the_last_prime_and_replies_switch_down_to_two() {
        let n = 8192;
        // Without flooding a reply keeps its budget down to two primes; one
        // prime is below the rounding of the switch.
        let three = [54, 54, 55];
        let (k, budget) = stage3().reply_primes(n, 25, &three, None, Flooding::OFF, 10.0);
        assert_eq!(k, 2);
        let full = stage3().budget_bits(n, 25, &three, None);
        assert!((budget - full).abs() < 0.5, "{budget} vs {full}");
        // 40 bits of statistical security add 40 + 13 bits of noise: three
        // primes cannot carry it, the whole 218-bit table can.
        let c = ModulusChoice::fewest(n, 25, stage3(), 10.0, Flooding::DEFAULT, false).unwrap();
        assert_eq!(c.moduli, vec![54, 54, 55, 55]);
        let own = stage3().noise_bits(n, 25, &c.moduli, None);
        let flood = stage3()
            .flood_bits(n, 25, &c.moduli, None, Flooding::DEFAULT)
            .unwrap();
        assert!((flood as f64 - own - 53.0).abs() <= 1.0, "{flood} vs {own}");
        let (k, budget) = stage3().reply_primes(n, 25, &c.moduli, None, Flooding::DEFAULT, 10.0);
        assert_eq!(k, 2, "a flooded reply also returns on two primes");
        assert!(budget >= 10.0 && (budget - c.budget_bits).abs() < 0.5);
        assert_eq!(
            stage3().flood_bits(n, 25, &c.moduli, None, Flooding::OFF),
            None
        );
    }

    #[test]
    fn flooding_that_does_not_fit_names_the_ring_degree_and_the_most_that_does() {
        let e = ModulusChoice::holding(
            8192,
            25,
            stage3(),
            (&[54, 54, 55], None),
            10.0,
            Flooding::DEFAULT,
        )
        .unwrap_err();
        match &e {
            Error::FloodingBudget { larger, most, .. } => {
                assert_eq!(*larger, Some(16384));
                // The layer leaves about 15.5 bits over the margin's 10,
                // less 13 for N: two bits of statistical security at most.
                assert!(*most <= 3, "{most}");
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("he.flooding"), "{e}");
        assert!(e.to_string().contains("16384"), "{e}");
    }

    #[test]
    fn a_special_prime_makes_a_key_switch_cheap_and_saves_a_ciphertext_prime() {
        let n = 8192;
        // Divided by a 55-bit P, a switch adds L N 20 (2^18.3) and the
        // rounding 10 N (2^16.3) in place of L N 20 2^54 (2^72.3).
        let digits = key_switch_noise(n as f64, &[54, 54], None).log2();
        let special = key_switch_noise(n as f64, &[54, 54], Some(55)).log2();
        assert!(digits > 71.0 && special < 19.0, "{digits} {special}");
        // Two primes now hold the stage-3 layer, the table's third is P:
        // 163 bits counted against the bound, as three primes were.
        let c = ModulusChoice::fewest(n, 25, stage3(), 10.0, Flooding::OFF, true).unwrap();
        assert_eq!((c.moduli.as_slice(), c.special), (&[54, 54][..], Some(55)));
        assert!(c.budget_bits >= 10.0);
        assert_eq!(c.describe(), "54+54+P55");
        // Flooding needs one prime more, still leaving the last for P.
        let c = ModulusChoice::fewest(n, 25, stage3(), 10.0, Flooding::DEFAULT, true).unwrap();
        assert_eq!(
            (c.moduli.as_slice(), c.special),
            (&[54, 54, 55][..], Some(55))
        );
        // With P the deepest layer's noise falls from about 119 bits to
        // about 68: its rotated input is nearly as fresh as an encryption.
        let without = stage3().noise_bits(n, 25, &[54, 54, 55], None);
        let with = stage3().noise_bits(n, 25, &[54, 54, 55], Some(55));
        assert!(without - with > 50.0, "{without} vs {with}");
    }
}
