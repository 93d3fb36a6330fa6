//! Hoisted rotations: several rotations of one ciphertext from a single
//! decomposition of it (Halevi-Shoup hoisting, as in Gazelle's code, OpenFHE's
//! `EvalFastRotation` and Lattigo).
//!
//! fhe.rs key-switches a rotation by substituting `c1`, taking it out of NTT
//! form, splitting it into one RNS digit per ciphertext modulus and taking
//! each digit back into NTT form over every modulus (L^2 NTTs for L moduli),
//! then one inner product with the rotation's key. The automorphism commutes
//! with the digit split, so the split can run once on the unrotated `c1`;
//! each rotation then only permutes the digits (a substitution in NTT form is
//! a permutation) and takes its inner product.
//!
//! The key of a rotation `sigma` is stored pre-permuted by `sigma^-1`, so
//! that `sum_i sigma(d_i) k_i = sigma(sum_i d_i sigma^-1(k_i))`: a rotation
//! multiplies the unpermuted digits and permutes only the two sums (with
//! `c0` folded into the first) instead of every digit.
//!
//! A layer under hoisting also switches its output rotations with these
//! keys (decomposing the ciphertext first, the work of a full key switch),
//! so each rotation step is one key uploaded, whichever way it is used.
//!
//! fhe 0.1.1 keeps its key switching crate-private, so the client makes the
//! keys here, from its secret key, the way fhe.rs makes its own: per digit
//! `i`, `a_i` uniform from a CSPRNG and `b_i = -a_i s + e_i + g_i sigma(s)`
//! with `e_i` from fhe.rs's centred binomial of variance [`ERROR_VARIANCE`]
//! and `g_i` the CRT gadget element of modulus `i`. The digits are as small
//! as fhe.rs's, so a hoisted rotation adds the noise of an ordinary one.
//!
//! With a special prime `P` ([`KeyBasis`]; hybrid key switching, as SEAL
//! and Lattigo do it) the keys live at `QP` with `P g_i` in place of `g_i`,
//! the digits are lifted to `QP`, and the two sums are divided by `P` with
//! rounding (the "modulus down" step: the `P` row out of NTT form, centred,
//! taken back into NTT form under each `q_j` and subtracted, then a scaling
//! by `P^-1 mod q_j`). The digits' noise is divided by `P` too, so a switch
//! adds little more than that rounding, and a network needs fewer
//! ciphertext primes.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, Ciphertext, SecretKey};
use fhe_math::rns::RnsContext;
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Context, Poly, Representation, SubstitutionExponent};
use fhe_traits::Serialize as _;
use prost::Message as _;
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::error::HeError;
use crate::rows;
use explore_he_model::layout::Rotation;

/// The variance of fhe.rs's error distribution: `BfvParametersBuilder`'s
/// default, which explore never changes.
pub const ERROR_VARIANCE: usize = 10;

/// The Galois exponent of a rotation under fhe.rs's convention: `3^step mod
/// 2N` for a column rotation by `step`, `2N - 1` for the row swap.
pub fn galois_exponent(rotation: Rotation, degree: usize) -> usize {
    let m = 2 * degree as u64;
    match rotation {
        Rotation::Columns(step) => {
            let (mut r, mut b, mut e) = (1u64, 3u64, step as u64);
            while e > 0 {
                if e & 1 == 1 {
                    r = r * b % m;
                }
                b = b * b % m;
                e >>= 1;
            }
            r as usize
        }
        Rotation::Rows => 2 * degree - 1,
    }
}

fn math(e: fhe_math::Error) -> HeError {
    HeError::Fhe(fhe::Error::MathError(e))
}

/// The ciphertext context: every modulus, the level fresh ciphertexts have.
fn top_context(par: &Arc<BfvParameters>) -> Result<&Arc<Context>, HeError> {
    Ok(par.context_at_level(0)?)
}

/// Where rotation keys live and digits are multiplied: the ciphertext
/// primes `Q` (fhe.rs's way), or `QP` with a special prime `P`.
pub struct KeyBasis {
    par: Arc<BfvParameters>,
    special: Option<Special>,
    /// The keys' primes with their NTTs, for the switch's own arithmetic.
    rows: rows::Basis,
}

/// A special prime and what dividing by it needs.
struct Special {
    /// `Q` and `P` together: the keys' and the lifted digits' context.
    qp: Arc<Context>,
    /// `P^-1 mod q_j`, one per ciphertext prime.
    p_inverse: Vec<u64>,
}

impl std::fmt::Debug for KeyBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBasis")
            .field("moduli", &self.par.moduli())
            .field("special_prime", &self.special_prime())
            .finish()
    }
}

impl KeyBasis {
    /// Keys at `Q` alone (`special_bits` `None`), or at `QP` with `P` the
    /// largest `special_bits`-bit prime `= 1 mod 2N` that is not one of
    /// `Q`'s. The 128-bit bound on `Q` and `P` together is the modulus
    /// choice's to keep ([`explore_he_model::noise::ModulusChoice`]); the
    /// 128-bit sums of [`Decomposed::rotate`] bound `P` to 60 bits.
    pub fn new(par: &Arc<BfvParameters>, special_bits: Option<usize>) -> Result<KeyBasis, HeError> {
        let rows_of = |ctx: &Arc<Context>| {
            rows::Basis::new(ctx.moduli_operators(), par.degree()).ok_or_else(|| {
                math(fhe_math::Error::Default(
                    "a prime above 60 bits or without an NTT of the ring's degree".into(),
                ))
            })
        };
        let Some(bits) = special_bits else {
            return Ok(KeyBasis {
                par: Arc::clone(par),
                special: None,
                rows: rows_of(top_context(par)?)?,
            });
        };
        let q = par.moduli();
        let n = par.degree();
        let bad = |why: String| HeError::Fhe(fhe::Error::DefaultError(why));
        if !(20..=60).contains(&bits) {
            return Err(bad(format!(
                "a special prime of {bits} bits: it must have 20 to 60"
            )));
        }
        let mut upper = 1u64 << bits;
        let p = loop {
            match fhe_math::zq::primes::generate_prime(bits, 2 * n as u64, upper) {
                Some(p) if q.contains(&p) => upper = p,
                Some(p) => break p,
                None => return Err(bad(format!("no {bits}-bit prime = 1 mod {}", 2 * n))),
            }
        };
        let qp: Vec<u64> = q.iter().copied().chain([p]).collect();
        let p_inverse = top_context(par)?
            .moduli_operators()
            .iter()
            .map(|qj| qj.inv(qj.reduce(p)).expect("P is a prime other than q_j"))
            .collect();
        let qp = Context::new_arc(&qp, n).map_err(math)?;
        Ok(KeyBasis {
            par: Arc::clone(par),
            rows: rows_of(&qp)?,
            special: Some(Special { qp, p_inverse }),
        })
    }

    /// The special prime `P`, if keys live at `QP`.
    pub fn special_prime(&self) -> Option<u64> {
        self.special
            .as_ref()
            .map(|s| *s.qp.moduli().last().expect("P is QP's last prime"))
    }

    pub fn par(&self) -> &Arc<BfvParameters> {
        &self.par
    }

    /// The keys' context: `QP`, or `Q` without a special prime.
    fn key_context(&self) -> Result<&Arc<Context>, HeError> {
        match &self.special {
            Some(s) => Ok(&s.qp),
            None => top_context(&self.par),
        }
    }

    /// `P g_i`, or `g_i` without a special prime: what key `i` multiplies
    /// the rotated secret by.
    fn gadget(&self, i: usize) -> Result<num_bigint::BigUint, HeError> {
        let rns = RnsContext::new(self.par.moduli()).map_err(math)?;
        let g = rns
            .get_garner(i)
            .expect("one gadget element per modulus")
            .clone();
        Ok(match self.special_prime() {
            Some(p) => g * p,
            None => g,
        })
    }
}

/// The rotation key of one Galois element, for ciphertexts at the top level:
/// one `(b_i, a_i)` pair per RNS digit, permuted by the inverse element and
/// in NTT-Shoup form.
pub struct HoistedKey {
    rotation: Rotation,
    /// The key's Galois element in NTT form at `Q`: the sums' evaluations
    /// `perm[i]` move to `i`.
    perm: Vec<u32>,
    /// The seed of the uniform `a_i`, which is all a client sends of them
    /// (as fhe.rs does for its own keys).
    seed: [u8; 32],
    b: Vec<Poly>,
    a: Vec<Poly>,
}

/// Why a hoisted key's bytes are not a key.
fn malformed(why: &str) -> HeError {
    HeError::Fhe(fhe::Error::DefaultError(format!("hoisted key: {why}")))
}

impl HoistedKey {
    /// Made by the client from its secret key, with `rng` (a CSPRNG) for
    /// the uniform and the error polynomials.
    pub fn new<R: RngCore + CryptoRng>(
        sk: &SecretKey,
        basis: &KeyBasis,
        rotation: Rotation,
        rng: &mut R,
    ) -> Result<HoistedKey, HeError> {
        let par = &basis.par;
        let ctx = basis.key_context()?;
        // fhe.rs serializes the secret key as its coefficients (fhe::proto).
        let coeffs = Zeroizing::new(
            fhe::proto::bfv::SecretKey::decode(sk.to_bytes().as_slice())
                .map_err(|e| HeError::Fhe(fhe::Error::DefaultError(e.to_string())))?
                .coeffs,
        );
        let element = galois_exponent(rotation, par.degree());
        // The final substitution acts on the sums back at `Q`.
        let exponent = SubstitutionExponent::new(top_context(par)?, element).map_err(math)?;
        let inverse =
            SubstitutionExponent::new(ctx, inverse_mod(element, 2 * par.degree())).map_err(math)?;
        let mut s = Zeroizing::new(
            Poly::try_convert_from(coeffs.as_slice(), ctx, false, Representation::PowerBasis)
                .map_err(math)?,
        );
        let mut s_rotated = Zeroizing::new(s.substitute(&exponent).map_err(math)?);
        s.change_representation(Representation::Ntt);
        s_rotated.change_representation(Representation::Ntt);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let uniform = uniform_parts(ctx, par.moduli().len(), seed);
        let mut b = Vec::new();
        for (i, a_i) in uniform.iter().enumerate() {
            let mut b_i =
                Poly::small(ctx, Representation::PowerBasis, ERROR_VARIANCE, rng).map_err(math)?;
            b_i.change_representation(Representation::Ntt);
            let a_s = Zeroizing::new(a_i * s.as_ref());
            b_i -= a_s.as_ref();
            b_i += &Zeroizing::new(&basis.gadget(i)? * s_rotated.as_ref());
            let mut b_i = b_i.substitute(&inverse).map_err(math)?;
            b_i.change_representation(Representation::NttShoup);
            b.push(b_i);
        }
        Ok(HoistedKey {
            rotation,
            perm: ntt_permutation(top_context(par)?, par.degree(), &exponent)?,
            seed,
            b,
            a: permuted(uniform, &inverse)?,
        })
    }

    /// What the client sends: the rotation, the seed of the `a_i` and the
    /// `b_i`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let (tag, step) = match self.rotation {
            Rotation::Columns(step) => (0u8, step as u64),
            Rotation::Rows => (1u8, 0),
        };
        out.push(tag);
        out.extend(step.to_le_bytes());
        out.extend(self.seed);
        out.extend((self.b.len() as u32).to_le_bytes());
        for b in &self.b {
            let bytes = b.to_bytes();
            out.extend((bytes.len() as u64).to_le_bytes());
            out.extend(bytes);
        }
        out
    }

    /// The key a server rebuilds from [`Self::to_bytes`]: the `a_i` from
    /// their seed, the `b_i` as sent.
    pub fn from_bytes(bytes: &[u8], basis: &KeyBasis) -> Result<HoistedKey, HeError> {
        use fhe_traits::DeserializeWithContext as _;
        let par = &basis.par;
        let ctx = basis.key_context()?;
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], HeError> {
            let part = bytes
                .get(at..at + n)
                .ok_or_else(|| malformed("truncated"))?;
            at += n;
            Ok(part)
        };
        let tag = take(1)?[0];
        let step = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let rotation = match tag {
            0 => Rotation::Columns(step as usize),
            1 => Rotation::Rows,
            _ => return Err(malformed("unknown rotation")),
        };
        let seed: [u8; 32] = take(32)?.try_into().expect("32 bytes");
        let digits = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        if digits != par.moduli().len() {
            return Err(malformed("one part per ciphertext prime expected"));
        }
        let mut b = Vec::with_capacity(digits);
        for _ in 0..digits {
            let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes")) as usize;
            let mut b_i = Poly::from_bytes(take(len)?, ctx).map_err(math)?;
            b_i.change_representation(Representation::NttShoup);
            b.push(b_i);
        }
        if at != bytes.len() {
            return Err(malformed("trailing bytes"));
        }
        let element = galois_exponent(rotation, par.degree());
        let exponent = SubstitutionExponent::new(top_context(par)?, element).map_err(math)?;
        let inverse =
            SubstitutionExponent::new(ctx, inverse_mod(element, 2 * par.degree())).map_err(math)?;
        Ok(HoistedKey {
            rotation,
            perm: ntt_permutation(top_context(par)?, par.degree(), &exponent)?,
            seed,
            a: permuted(uniform_parts(ctx, digits, seed), &inverse)?,
            b,
        })
    }

    pub fn rotation(&self) -> Rotation {
        self.rotation
    }
}

/// A top-level ciphertext split once into its RNS digits, ready to be
/// rotated by any step that has a [`HoistedKey`].
pub struct Decomposed<'a> {
    basis: &'a KeyBasis,
    c0: Poly,
    /// Lifted to the keys' primes, in NTT form, as flat rows.
    digits: Vec<Vec<u64>>,
}

impl<'a> Decomposed<'a> {
    /// The expensive half of a key switch, paid once per ciphertext: `c1`
    /// out of NTT form, one digit per ciphertext modulus, each digit into
    /// NTT form over every modulus of the keys (`Q`, or `QP`). A digit's
    /// own row is `c1`'s row in NTT form already, so each digit takes one
    /// NTT fewer than the keys have primes.
    pub fn new(ct: &Ciphertext, basis: &'a KeyBasis) -> Result<Decomposed<'a>, HeError> {
        if !is_fresh(ct, &basis.par) {
            return Err(HeError::Fhe(fhe::Error::DefaultError(
                "hoisting needs a fresh two-part ciphertext at the top level".into(),
            )));
        }
        let mut c1 = ct[1].clone();
        c1.change_representation(Representation::Ntt);
        let ntt = c1.coefficients().to_owned();
        c1.change_representation(Representation::PowerBasis);
        let digits = c1
            .coefficients()
            .outer_iter()
            .zip(ntt.outer_iter())
            .enumerate()
            .map(|(i, (residues, own))| {
                basis.rows.lift(
                    residues.as_slice().expect("rows are contiguous"),
                    i,
                    own.as_slice().expect("rows are contiguous"),
                )
            })
            .collect();
        let mut c0 = ct[0].clone();
        c0.change_representation(Representation::Ntt);
        Ok(Decomposed { basis, c0, digits })
    }

    /// The cheap half, per rotation: the inner product of the digits with
    /// the key (divided by `P` under a special prime), `c0` added, then the
    /// key's Galois element applied to the two sums. Each sum accumulates
    /// its products in 128-bit integers and reduces once per coefficient
    /// ([`rows::Basis::inner_products`]), in scratch rows the thread
    /// reuses; only the result's rows are allocated.
    pub fn rotate(&self, key: &HoistedKey) -> Result<Ciphertext, HeError> {
        let rows = &self.basis.rows;
        let n = rows.degree();
        let (m, l) = (rows.len(), self.basis.par.moduli().len());
        let b: Vec<&[u64]> = key.b.iter().map(flat).collect();
        let a: Vec<&[u64]> = key.a.iter().map(flat).collect();
        let c0 = flat(&self.c0);
        let sums = rows::with_scratch((2 * m + 1) * n, |scratch| {
            let (s0, rest) = scratch.split_at_mut(m * n);
            let (s1, tmp) = rest.split_at_mut(m * n);
            let digits: Vec<&[u64]> = self.digits.iter().map(Vec::as_slice).collect();
            rows.inner_products(&digits, &b, &a, s0, s1);
            if let Some(special) = &self.basis.special {
                rows.divide_by_last(s0, &special.p_inverse, tmp);
                rows.divide_by_last(s1, &special.p_inverse, tmp);
            }
            rows.add_rows(&mut s0[..l * n], c0);
            [
                rows::permute(s0, &key.perm, l),
                rows::permute(s1, &key.perm, l),
            ]
        });
        self.basis.ciphertext(sums)
    }
}

impl KeyBasis {
    /// The row arithmetic of the keys' primes (`Q`, then `P` if any), whose
    /// first primes are the ciphertexts'.
    pub(crate) fn rows(&self) -> &rows::Basis {
        &self.rows
    }

    /// A top-level ciphertext of two parts given as NTT rows at `Q`.
    pub(crate) fn ciphertext(&self, parts: [Vec<u64>; 2]) -> Result<Ciphertext, HeError> {
        let q_ctx = top_context(&self.par)?;
        let out = parts
            .into_iter()
            .map(|part| {
                Poly::try_convert_from(part, q_ctx, false, Representation::Ntt).map_err(math)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ciphertext::new(out, &self.par)?)
    }

    /// `pt` as a product with a ciphertext multiplies it: its values in
    /// `[0, t)` at every ciphertext prime, in NTT form (fhe.rs's own
    /// plaintext polynomial, which it keeps private).
    pub(crate) fn plaintext_rows(&self, pt: &fhe::bfv::Plaintext) -> Result<Poly, HeError> {
        let mut m = Poly::try_convert_from(
            pt,
            top_context(&self.par)?,
            false,
            Representation::PowerBasis,
        )
        .map_err(math)?;
        m.change_representation(Representation::Ntt);
        Ok(m)
    }
}

/// Whether `ct` is what a layer takes: two parts at the top level, in NTT
/// form, as fhe.rs's own encryptions and rotations and this module's are.
/// A client's bytes can decode to anything else, which the server refuses.
pub(crate) fn is_fresh(ct: &Ciphertext, par: &Arc<BfvParameters>) -> bool {
    let Ok(top) = top_context(par) else {
        return false;
    };
    ct.len() == 2
        && ct
            .iter()
            .all(|p| p.ctx() == top && p.representation() == &Representation::Ntt)
}

/// A polynomial's residues as flat rows (its array is in standard layout).
pub(crate) fn flat(p: &Poly) -> &[u64] {
    p.coefficients()
        .to_slice()
        .expect("fhe-math keeps coefficients contiguous")
}

/// The permutation of evaluations that `exponent` applies in NTT form,
/// read off fhe-math's own substitution of the indices `0..n` (each below
/// every prime), so that it cannot drift from fhe.rs's convention.
fn ntt_permutation(
    ctx: &Arc<Context>,
    degree: usize,
    exponent: &SubstitutionExponent,
) -> Result<Vec<u32>, HeError> {
    let index: Vec<u64> = (0..ctx.moduli().len())
        .flat_map(|_| 0..degree as u64)
        .collect();
    let p = Poly::try_convert_from(index, ctx, true, Representation::Ntt).map_err(math)?;
    let moved = p.substitute(exponent).map_err(math)?;
    Ok(moved
        .coefficients()
        .row(0)
        .iter()
        .map(|&i| i as u32)
        .collect())
}

/// The uniform `a_i` of a key, one per digit, expanded by fhe-math's
/// seeded sampler from SHA-256 of the key's seed and the digit's index.
fn uniform_parts(ctx: &Arc<Context>, digits: usize, seed: [u8; 32]) -> Vec<Poly> {
    use sha2::{Digest, Sha256};
    (0..digits as u32)
        .map(|i| {
            let digit_seed: [u8; 32] = Sha256::new()
                .chain_update(seed)
                .chain_update(i.to_le_bytes())
                .finalize()
                .into();
            Poly::random_from_seed(ctx, Representation::Ntt, digit_seed)
        })
        .collect()
}

/// The `a_i` as a key stores them: permuted by the inverse element, in
/// NTT-Shoup form.
fn permuted(a: Vec<Poly>, inverse: &SubstitutionExponent) -> Result<Vec<Poly>, HeError> {
    a.into_iter()
        .map(|a_i| {
            let mut a_i = a_i.substitute(inverse).map_err(math)?;
            a_i.change_representation(Representation::NttShoup);
            Ok(a_i)
        })
        .collect()
}

/// `x^-1 mod m` for odd `x` and a power-of-two `m` (Galois elements are odd).
fn inverse_mod(x: usize, m: usize) -> usize {
    // Newton's iteration doubles the correct low bits each step.
    let mut y = x;
    for _ in 0..6 {
        y = y.wrapping_mul(2usize.wrapping_sub(x.wrapping_mul(y)));
    }
    y % m
}

#[cfg(test)]
mod tests {
    use fhe::bfv::{Encoding, EvaluationKeyBuilder, Plaintext, PublicKey};
    use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::params::HeParamsBuilder;
    use explore_he_model::arch::{Arch, DatasetKind, NetSpec};
    use explore_he_model::network::dense_network_cost;
    use explore_he_model::schedule::Schedule;

    #[test]
    fn galois_inverses_undo_their_element() {
        for step in [1, 2, 5, 100, 4095] {
            let g = galois_exponent(Rotation::Columns(step), 8192);
            assert_eq!(g * inverse_mod(g, 16384) % 16384, 1, "{step}");
        }
        assert_eq!(inverse_mod(16383, 16384), 16383);
    }

    #[test]
    fn galois_exponents_follow_fhe_rs() {
        assert_eq!(galois_exponent(Rotation::Columns(0), 8192), 1);
        assert_eq!(galois_exponent(Rotation::Columns(1), 8192), 3);
        assert_eq!(galois_exponent(Rotation::Columns(2), 8192), 9);
        assert_eq!(galois_exponent(Rotation::Rows, 8192), 16383);
        // 3 has order N/2 modulo 2N: a full turn of a row is the identity.
        assert_eq!(galois_exponent(Rotation::Columns(4096), 8192), 1);
    }

    /// Every rotation dense ResNet-20 uses at N = 8192 under the `best`
    /// schedule, hoisted from one decomposition, decrypts to exactly what
    /// fhe.rs's own key switch gives: with keys at the ciphertext primes,
    /// and with keys at `QP` (the table's last prime turned special prime,
    /// another 55-bit prime than the ciphertext's own), where each rotation
    /// also leaves far less noise than fhe.rs's.
    #[test]
    fn hoisted_rotations_decrypt_to_fhe_rs_rotations_for_every_resnet20_step() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        let scheduler = explore_he_model::fixtures::scheduler(
            Schedule::Best,
            explore_he_model::schedule::Hoisting::On,
        );
        let steps: Vec<Rotation> = dense_network_cost(&spec, &scheduler)
            .unwrap()
            .rotations
            .into_iter()
            .collect();
        assert!(steps.len() > 20, "{steps:?}");
        for special in [false, true] {
            let params = HeParamsBuilder::new(8192, &spec.layer_shapes())
                .special_prime(special)
                .build()
                .unwrap();
            let (par, basis) = (&params.bfv, params.key_basis.as_ref());
            if let Some(p) = basis.special_prime() {
                assert!(!par.moduli().contains(&p) && p >> 54 == 1, "{p}");
            }
            let mut rng = StdRng::seed_from_u64(7);
            let sk = SecretKey::random(par, &mut rng);
            let pk = PublicKey::new(&sk, &mut rng);
            let t = params.plaintext_modulus as i64;
            let slots: Vec<i64> = (0..8192).map(|i| (i * 7919) % t - t / 2).collect();
            let pt = Plaintext::try_encode(&slots, Encoding::simd(), par).unwrap();
            let ct: Ciphertext = pk.try_encrypt(&pt, &mut rng).unwrap();
            let decrypt = |c: &Ciphertext| {
                Vec::<i64>::try_decode(&sk.try_decrypt(c).unwrap(), Encoding::simd()).unwrap()
            };
            // SAFETY: only variable time, on the test's own key.
            let noise = |c: &Ciphertext| unsafe { sk.measure_noise(c).unwrap() };
            let decomposed = Decomposed::new(&ct, basis).unwrap();
            for &step in &steps {
                let mut builder = EvaluationKeyBuilder::new(&sk).unwrap();
                let theirs = match step {
                    Rotation::Columns(i) => {
                        builder.enable_column_rotation(i).unwrap();
                        builder.build(&mut rng).unwrap().rotates_columns_by(&ct, i)
                    }
                    Rotation::Rows => {
                        builder.enable_row_rotation().unwrap();
                        builder.build(&mut rng).unwrap().rotates_rows(&ct)
                    }
                }
                .unwrap();
                let made = HoistedKey::new(&sk, basis, step, &mut rng).unwrap();
                // What a server rebuilds from the client's bytes.
                let key = HoistedKey::from_bytes(&made.to_bytes(), basis).unwrap();
                let ours = decomposed.rotate(&key).unwrap();
                let expected = decrypt(&theirs);
                assert_eq!(
                    decrypt(&ours),
                    expected,
                    "{step:?}, special prime {special}"
                );
                // And both are the rotation itself, row by row.
                let h = 4096;
                let want: Vec<i64> = (0..8192)
                    .map(|j| match step {
                        Rotation::Columns(i) => slots[j / h * h + (j % h + i) % h],
                        Rotation::Rows => slots[(j + h) % 8192],
                    })
                    .collect();
                assert_eq!(expected, want, "{step:?}");
                // fhe.rs's digits leave about 2^70 of noise; divided by P
                // what is left is about the fresh encryption's.
                if special {
                    assert!(noise(&ours) + 40 < noise(&theirs), "{step:?}");
                } else {
                    assert!(noise(&ours).abs_diff(noise(&theirs)) <= 2, "{step:?}");
                }
            }
        }
    }

    /// A key made for one key basis is refused by the other: the server
    /// cannot mistake keys at `Q` for keys at `QP`.
    #[test]
    fn a_key_for_another_basis_is_refused() {
        let build = |special| {
            HeParamsBuilder::new(8192, &[])
                .special_prime(special)
                .build()
                .unwrap()
        };
        let (with, without) = (build(true), build(false));
        let mut rng = StdRng::seed_from_u64(3);
        let sk = SecretKey::random(&with.bfv, &mut rng);
        let key = HoistedKey::new(&sk, &with.key_basis, Rotation::Columns(1), &mut rng).unwrap();
        assert!(HoistedKey::from_bytes(&key.to_bytes(), &with.key_basis).is_ok());
        assert!(HoistedKey::from_bytes(&key.to_bytes(), &without.key_basis).is_err());
    }

    #[test]
    fn a_fresh_decomposition_is_refused_after_a_level_drop() {
        let params = HeParamsBuilder::new(8192, &[]).build().unwrap();
        let par = &params.bfv;
        let mut rng = StdRng::seed_from_u64(1);
        let sk = SecretKey::random(par, &mut rng);
        let pt = Plaintext::try_encode(&[1i64, 2, 3], Encoding::simd(), par).unwrap();
        let mut ct: Ciphertext = sk.try_encrypt(&pt, &mut rng).unwrap();
        ct.switch_to_level(1).unwrap();
        assert!(Decomposed::new(&ct, &params.key_basis).is_err());
    }
}
