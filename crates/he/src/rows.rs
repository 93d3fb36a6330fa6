//! The arithmetic of a key switch and of a giant step's sum on flat RNS
//! rows (prime `j`'s residues at `j*n..(j+1)*n`), in place and in constant
//! time: each prime's NTT, sums of products (the digits' inner product with
//! a key, a giant step's plaintexts with its ciphertexts), the division by
//! a special prime, and an automorphism in NTT form as a permutation of
//! indices.
//!
//! fhe-math offers these on `Poly`, where each step allocates its result,
//! converts through signed or big integers, and (for large blocks) takes
//! fresh pages from the kernel, which zeroes them: profiled on he-bench, a
//! hoisted rotation with the special prime spent more time in page faults
//! and copies than in arithmetic. Here a rotation writes into scratch rows
//! its thread reuses, and allocates only the two rows of its result.

use std::cell::RefCell;

use fhe_math::ntt::NttOperator;
use fhe_math::zq::Modulus;

/// Coefficients summed per block before their reduction: two 128-bit
/// accumulators of this many live on the stack (64 KB). A block reads a
/// stretch of every term's rows in turn, so a block this long keeps each
/// stretch sequential for the hardware prefetcher: on he-bench at one
/// thread, giant-step sums in blocks of 256 took 5 % longer than fhe.rs's
/// whole-row sums, in blocks of 1,024 to 4,096 about 15 % less (README,
/// "Throughput").
const BLOCK: usize = 2048;

/// Products of primes below `2^60` summed before a reduction: a residue
/// below `2^60` and 255 products below `2^120` stay below `2^128`.
const MAX_TERMS: usize = 255;

/// The primes of a basis (`Q`, or `Q` then `P`) with their NTTs, for
/// polynomials of degree `n`.
#[derive(Debug)]
pub(crate) struct Basis {
    n: usize,
    moduli: Vec<Modulus>,
    ntt: Vec<NttOperator>,
}

impl Basis {
    /// `None` if a prime has no NTT of size `n` (not `1 mod 2n`), or has
    /// more than 60 bits (the 128-bit sums of [`Self::inner_products`]).
    pub fn new(moduli: &[Modulus], n: usize) -> Option<Basis> {
        if moduli.iter().any(|q| **q >> 60 != 0) {
            return None;
        }
        let ntt = moduli
            .iter()
            .map(|q| NttOperator::new(q, n))
            .collect::<Option<Vec<_>>>()?;
        Some(Basis {
            n,
            moduli: moduli.to_vec(),
            ntt,
        })
    }

    pub fn degree(&self) -> usize {
        self.n
    }

    pub fn len(&self) -> usize {
        self.moduli.len()
    }

    /// A digit's residues (`[0, q_i)`, coefficient form) lifted to every
    /// prime of the basis and taken into NTT form; `own_ntt` is the same
    /// digit's row `i` already in NTT form (the ciphertext's own), copied
    /// rather than transformed again.
    pub fn lift(&self, residues: &[u64], i: usize, own_ntt: &[u64]) -> Vec<u64> {
        let n = self.n;
        let mut out = vec![0u64; self.len() * n];
        for (j, (row, q)) in out.chunks_exact_mut(n).zip(&self.moduli).enumerate() {
            if j == i {
                row.copy_from_slice(own_ntt);
            } else {
                for (x, &c) in row.iter_mut().zip(residues) {
                    *x = q.reduce(c);
                }
                self.ntt[j].forward(row);
            }
        }
        out
    }

    /// `s0 = sum_k d_k b_k` and `s1 = sum_k d_k a_k`, prime by prime, over
    /// the first `s0.len() / n` primes of the basis: the products of a block
    /// of coefficients summed in 128-bit integers and reduced once per
    /// [`MAX_TERMS`] terms. A key switch sums digits with a key's parts
    /// (at `Q`, or `QP` before dividing by `P`); a giant step sums
    /// plaintexts with the two parts of the ciphertexts they multiply (at
    /// `Q`).
    pub fn inner_products(
        &self,
        d: &[&[u64]],
        b: &[&[u64]],
        a: &[&[u64]],
        s0: &mut [u64],
        s1: &mut [u64],
    ) {
        let n = self.n;
        assert!(
            d.len() == b.len() && d.len() == a.len(),
            "one pair of rows per term"
        );
        assert!(
            s0.len() == s1.len() && s0.len() % n == 0 && s0.len() <= self.len() * n,
            "whole rows of the basis's primes"
        );
        let primes = s0.len() / n;
        for (j, q) in self.moduli.iter().take(primes).enumerate() {
            for start in (j * n..(j + 1) * n).step_by(BLOCK) {
                let len = BLOCK.min((j + 1) * n - start);
                let (mut acc0, mut acc1) = ([0u128; BLOCK], [0u128; BLOCK]);
                for (chunk, ((d, b), a)) in d.iter().zip(b).zip(a).enumerate() {
                    if chunk > 0 && chunk % MAX_TERMS == 0 {
                        for i in 0..len {
                            acc0[i] = q.reduce_u128(acc0[i]) as u128;
                            acc1[i] = q.reduce_u128(acc1[i]) as u128;
                        }
                    }
                    let d = &d[start..start + len];
                    let (b, a) = (&b[start..start + len], &a[start..start + len]);
                    for i in 0..len {
                        acc0[i] += d[i] as u128 * b[i] as u128;
                        acc1[i] += d[i] as u128 * a[i] as u128;
                    }
                }
                for i in 0..len {
                    s0[start + i] = q.reduce_u128(acc0[i]);
                    s1[start + i] = q.reduce_u128(acc1[i]);
                }
            }
        }
    }

    /// `round(x / P)` at `Q`, in place, for `x` in NTT form with `P` the
    /// basis's last prime: `(x - [x]_P) / P` with `[x]_P` centred is exact
    /// over the integers and within 1/2 of `x / P`. `p_inverse[j]` is `P^-1
    /// mod q_j`; `x`'s `P` row is consumed and `tmp` (`n` long) is scratch.
    pub fn divide_by_last(&self, x: &mut [u64], p_inverse: &[u64], tmp: &mut [u64]) {
        let n = self.n;
        let last = self.len() - 1;
        let (q_rows, p_row) = x.split_at_mut(last * n);
        self.ntt[last].backward(p_row);
        let p = *self.moduli[last];
        let half = p / 2;
        for (j, row) in q_rows.chunks_exact_mut(n).enumerate() {
            let q = &self.moduli[j];
            let p_mod_q = q.reduce(p);
            for (t, &c) in tmp.iter_mut().zip(p_row.iter()) {
                // [c]_P centred, mod q_j: c, less P where c > P/2, without
                // a branch on the (possibly secret-dependent) value: both
                // are below 2^62, so the difference's sign bit is the test.
                let above = half.wrapping_sub(c) >> 63;
                *t = q.sub(q.reduce(c), above * p_mod_q);
            }
            self.ntt[j].forward(tmp);
            let inverse = p_inverse[j];
            let inverse_shoup = q.shoup(inverse);
            for (r, &t) in row.iter_mut().zip(tmp.iter()) {
                *r = q.mul_shoup(q.sub(*r, t), inverse, inverse_shoup);
            }
        }
    }

    /// `x += y` on the first `y.len() / n` rows.
    pub fn add_rows(&self, x: &mut [u64], y: &[u64]) {
        let n = self.n;
        for ((x, y), q) in x
            .chunks_exact_mut(n)
            .zip(y.chunks_exact(n))
            .zip(&self.moduli)
        {
            q.add_vec(x, y);
        }
    }
}

/// An automorphism in NTT form moves evaluations: row by row, `out[i] =
/// x[perm[i]]`, for the first `rows` rows of `x`.
pub(crate) fn permute(x: &[u64], perm: &[u32], rows: usize) -> Vec<u64> {
    let n = perm.len();
    let mut out = Vec::with_capacity(rows * n);
    for row in x.chunks_exact(n).take(rows) {
        out.extend(perm.iter().map(|&k| row[k as usize]));
    }
    out
}

thread_local! {
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` words of this thread's scratch (contents unspecified),
/// grown once and reused by every rotation the thread runs. Should `f` ever
/// come back here on the same thread (a rayon task stolen inside it), the
/// inner call gets words of its own rather than a double borrow.
pub(crate) fn with_scratch<T>(len: usize, f: impl FnOnce(&mut [u64]) -> T) -> T {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            if scratch.len() < len {
                scratch.resize(len, 0);
            }
            f(&mut scratch[..len])
        }
        Err(_) => f(&mut vec![0; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis() -> Basis {
        // Two NTT-friendly primes for n = 16 (1 mod 32).
        let moduli: Vec<Modulus> = [97u64, 193]
            .iter()
            .map(|&p| Modulus::new(p).unwrap())
            .collect();
        Basis::new(&moduli, 16).unwrap()
    }

    fn rows(x: &[Vec<u64>]) -> Vec<&[u64]> {
        x.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn inner_products_equal_the_sums_of_products_mod_each_prime() {
        let b = basis();
        let n = 16;
        let v = |seed: u64| -> Vec<u64> {
            (0..2 * n as u64)
                .map(|i| (i * 31 + seed * 17) % 97)
                .collect()
        };
        let (digits, kb, ka) = (vec![v(1), v(2)], vec![v(3), v(4)], vec![v(5), v(6)]);
        let (mut s0, mut s1) = (vec![0; 2 * n], vec![0; 2 * n]);
        b.inner_products(&rows(&digits), &rows(&kb), &rows(&ka), &mut s0, &mut s1);
        for i in 0..2 * n {
            let q = if i < n { 97 } else { 193 };
            let want = |k: &[Vec<u64>]| (0..2).map(|d| digits[d][i] * k[d][i]).sum::<u64>() % q;
            assert_eq!((s0[i], s1[i]), (want(&kb), want(&ka)), "{i}");
        }
        // Rows of the first prime alone: the sums at that prime only.
        let (mut t0, mut t1) = (vec![0; n], vec![0; n]);
        b.inner_products(&rows(&digits), &rows(&kb), &rows(&ka), &mut t0, &mut t1);
        assert_eq!((&t0[..], &t1[..]), (&s0[..n], &s1[..n]));
    }

    #[test]
    fn sums_of_more_terms_than_128_bits_hold_are_reduced_on_the_way() {
        // A 60-bit prime with an NTT of size 16, and 600 products of
        // residues near it: their plain sum would pass 2^128 near term 256.
        let n = 16;
        let p = fhe_math::zq::primes::generate_prime(60, 2 * n as u64, 1 << 60).unwrap();
        let b = Basis::new(&[Modulus::new(p).unwrap()], n).unwrap();
        let terms = 600;
        let x: Vec<Vec<u64>> = (0..terms)
            .map(|k| {
                (0..n as u64)
                    .map(|i| p - 1 - (k as u64 * 7 + i) % 5)
                    .collect()
            })
            .collect();
        let x_rows = rows(&x);
        let (mut s0, mut s1) = (vec![0; n], vec![0; n]);
        b.inner_products(
            &x_rows,
            &x_rows,
            &x_rows[..1].repeat(terms),
            &mut s0,
            &mut s1,
        );
        let p = p as u128;
        for i in 0..n {
            let sum = |y: &dyn Fn(usize) -> u128| {
                (0..terms).fold(0u128, |s, k| (s + x[k][i] as u128 * y(k) % p) % p) as u64
            };
            assert_eq!(s0[i], sum(&|k| x[k][i] as u128), "{i}");
            assert_eq!(s1[i], sum(&|_| x[0][i] as u128), "{i}");
        }
    }

    #[test]
    fn division_by_the_last_prime_rounds_the_integer_quotient() {
        // One prime of Q (97) and P = 193; x's coefficients as integers
        // below 97 * 193, through both NTTs.
        let b = basis();
        let n = 16;
        let (q, p) = (97u64, 193u64);
        let ints: Vec<u64> = (0..n as u64).map(|i| (i * 1217 + 5) % (q * p)).collect();
        let mut x: Vec<u64> = ints
            .iter()
            .map(|c| c % q)
            .chain(ints.iter().map(|c| c % p))
            .collect();
        b.ntt[0].forward(&mut x[..n]);
        b.ntt[1].forward(&mut x[n..]);
        let p_inverse = [b.moduli[0].inv(p % q).unwrap()];
        let mut tmp = vec![0; n];
        b.divide_by_last(&mut x, &p_inverse, &mut tmp);
        let mut quotient = x[..n].to_vec();
        b.ntt[0].backward(&mut quotient);
        for (i, (&c, &got)) in ints.iter().zip(&quotient).enumerate() {
            let exact = c as f64 / p as f64;
            let want = (exact.round() as u64) % q;
            // Ties (c mod P = P/2 exactly cannot happen for odd P).
            assert_eq!(got, want, "coefficient {i}: {c} / {p}");
        }
    }

    #[test]
    fn a_permutation_reads_each_row_through_the_same_indices() {
        let x: Vec<u64> = (0..8).collect();
        assert_eq!(permute(&x, &[3, 0, 1, 2], 2), [3, 0, 1, 2, 7, 4, 5, 6]);
        assert_eq!(permute(&x, &[3, 0, 1, 2], 1), [3, 0, 1, 2]);
    }
}
