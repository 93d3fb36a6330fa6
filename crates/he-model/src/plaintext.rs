//! The plaintext side of BFV parameter choice, as arithmetic: the
//! ciphertext moduli sizes at the 128-bit bound for each ring degree, and a
//! batching-friendly plaintext prime t (t = 1 mod 2N) wide enough that no
//! quantized conv accumulator wraps around in the centred representation.

use crate::Error;
use crate::arch::ConvShape;
use crate::reference::max_magnitude;

/// Plaintext moduli are searched from this many bits up when none is given.
pub const MIN_PLAINTEXT_BITS: u32 = 20;
/// fhe.rs reduces plaintext values in u64 arithmetic; stay well inside it.
pub const MAX_PLAINTEXT_BITS: u32 = 60;

/// Ciphertext modulus bit sizes at the 128-bit bound of the
/// homomorphicencryption.org standard (total 109, 218, 438, 881 bits).
pub fn moduli_sizes(poly_degree: usize) -> Result<&'static [usize], Error> {
    const N16384: [usize; 9] = [48, 48, 48, 49, 49, 49, 49, 49, 49];
    const N32768: [usize; 16] = [
        55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 55, 56,
    ];
    match poly_degree {
        4096 => Ok(&[36, 36, 37]),
        8192 => Ok(&[54, 54, 55, 55]),
        16384 => Ok(&N16384),
        32768 => Ok(&N32768),
        n => Err(Error::BadDegree(n)),
    }
}

/// Deterministic Miller-Rabin for every u64 (these 12 prime bases are
/// exact below 3.3e24).
pub fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mul = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let pow = |mut b: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, b);
            }
            b = mul(b, b);
            e >>= 1;
        }
        r
    };
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'witness: for a in BASES {
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// The largest prime of exactly `bits` bits with t = 1 mod 2N, if any.
pub fn plaintext_prime(bits: u32, poly_degree: usize) -> Option<u64> {
    if !(2..=63).contains(&bits) {
        return None;
    }
    let m = 2 * poly_degree as u64;
    let (lo, hi) = (1u64 << (bits - 1), (1u64 << bits) - 1);
    let mut t = (hi - 1) / m * m + 1;
    while t >= lo {
        if is_prime(t) {
            return Some(t);
        }
        t = t.checked_sub(m)?;
    }
    None
}

/// Worst-case |accumulator| of one conv output: every one of the c_in*k*k
/// products at its largest magnitude.
pub fn accumulator_bound(shape: &ConvShape, weight_bits: u32, activation_bits: u32) -> u64 {
    max_magnitude(weight_bits)
        * max_magnitude(activation_bits)
        * (shape.c_in * shape.k * shape.k) as u64
}

/// The narrowest plaintext prime of at least `min_bits` bits that holds
/// values in [-bound, bound] centred (t > 2 * bound + 1).
fn fitting_prime(min_bits: u32, bound: u64, poly_degree: usize) -> Option<(u64, u32)> {
    let floor = 64 - (2 * bound + 1).leading_zeros();
    (min_bits.max(floor)..=MAX_PLAINTEXT_BITS).find_map(|b| {
        plaintext_prime(b, poly_degree)
            .filter(|&t| t > 2 * bound + 1)
            .map(|t| (t, b))
    })
}

/// A plaintext modulus chosen for a set of layers: the prime t and its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaintextModulus {
    pub t: u64,
    pub bits: u32,
}

impl PlaintextModulus {
    /// Picks t for `layers`: with `plaintext_bits`, checks every layer's
    /// accumulator fits; without, takes the smallest width (>= 20 bits) that
    /// fits them all and has a prime t = 1 mod 2N.
    pub fn for_layers(
        poly_degree: usize,
        plaintext_bits: Option<u32>,
        weight_bits: u32,
        activation_bits: u32,
        layers: &[ConvShape],
    ) -> Result<PlaintextModulus, Error> {
        moduli_sizes(poly_degree)?;
        let worst = layers
            .iter()
            .map(|l| (accumulator_bound(l, weight_bits, activation_bits), l))
            .max_by_key(|(b, _)| *b);
        let bound = worst.map_or(0, |(b, _)| b);
        let no_prime = |bits| Error::NoPlaintextPrime { bits, poly_degree };
        let (t, bits) = match plaintext_bits {
            Some(bits) => {
                let t = plaintext_prime(bits, poly_degree).ok_or(no_prime(bits))?;
                if let Some((bound, layer)) = worst.filter(|(b, _)| t <= 2 * b + 1) {
                    return Err(Error::PlaintextTooSmall {
                        layer: layer.name.clone(),
                        bound,
                        bits,
                        needed: fitting_prime(bits, bound, poly_degree).map_or(0, |(_, b)| b),
                    });
                }
                (t, bits)
            }
            None => fitting_prime(MIN_PLAINTEXT_BITS, bound, poly_degree)
                .ok_or(no_prime(MAX_PLAINTEXT_BITS))?,
        };
        Ok(PlaintextModulus { t, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miller_rabin_agrees_with_trial_division() {
        let trial = |n: u64| {
            n >= 2
                && (2..)
                    .take_while(|d| d * d <= n)
                    .all(|d| !n.is_multiple_of(d))
        };
        for n in 0..5000 {
            assert_eq!(is_prime(n), trial(n), "{n}");
        }
        // Strong pseudoprimes to several small bases, and large primes.
        for c in [3_215_031_751u64, 3_825_123_056_546_413_051, 4_759_123_141] {
            assert!(!is_prime(c), "{c}");
        }
        assert!(is_prime(18_446_744_073_709_551_557)); // largest u64 prime
        assert!(is_prime(0x7fffffd8001)); // an fhe.rs default modulus
    }

    #[test]
    fn plaintext_primes_have_the_width_and_congruence() {
        for (bits, n) in [(20, 4096), (30, 8192), (36, 16384), (40, 32768)] {
            let t = plaintext_prime(bits, n).unwrap();
            assert_eq!(64 - t.leading_zeros(), bits);
            assert_eq!(t % (2 * n as u64), 1);
            assert!(is_prime(t));
        }
    }

    #[test]
    fn moduli_totals_are_the_128_bit_bounds() {
        let total = |n| moduli_sizes(n).unwrap().iter().sum::<usize>();
        assert_eq!([4096, 8192, 16384, 32768].map(total), [109, 218, 438, 881]);
        assert!(matches!(moduli_sizes(6000), Err(Error::BadDegree(6000))));
        assert!(moduli_sizes(2048).unwrap_err().to_string().contains("2048"));
    }

    #[test]
    fn plaintext_width_follows_the_accumulator_bound() {
        let layer = ConvShape {
            name: "l".into(),
            c_in: 64,
            c_out: 64,
            h: 8,
            w: 8,
            k: 3,
            stride: 1,
        };
        // 127 * 127 * 576 = 9_290_304; 2b+1 = 18_580_609 has 25 bits, so t has 25 or 26.
        assert_eq!(accumulator_bound(&layer, 8, 8), 9_290_304);
        let p =
            PlaintextModulus::for_layers(4096, None, 8, 8, std::slice::from_ref(&layer)).unwrap();
        assert!(p.t > 2 * 9_290_304 + 1);
        assert!((25..=26).contains(&p.bits));
        assert_eq!(p.t % 8192, 1);
        let e = PlaintextModulus::for_layers(4096, Some(20), 8, 8, &[layer]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::PlaintextTooSmall {
                    needed: 25 | 26,
                    bits: 20,
                    ..
                }
            ),
            "{e}"
        );
    }
}
