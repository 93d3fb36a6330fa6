//! The fhe.rs side of a client: BFV parameters, the secret and public keys,
//! encoding, encryption and decryption, Galois keys made once per rotation
//! and shared by every layer, the noise budget, and the primitive timings
//! that price the cost model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use fhe::bfv::{
    BfvParameters, Ciphertext, Encoding, EvaluationKey, EvaluationKeyBuilder, Plaintext, PublicKey,
    SecretKey,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncrypter, Serialize as _};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::error::HeError;
use crate::hoist::{Decomposed, HoistedKey};
use crate::params::HeParams;
use explore_he_model::coefficient::CoefficientLayout;
use explore_he_model::cost::{KeySet, PrimitiveCosts};
use explore_he_model::layer::{self, LayerLayout};
use explore_he_model::layout::{PackingLayout, Rotation};

/// Parameters, keys and the randomness for encryption and key generation.
/// Galois keys are made once per rotation, as a client would send them once
/// for a whole network, and shared by every layer plan that uses them.
pub struct HeContext {
    params: HeParams,
    sk: SecretKey,
    pk: PublicKey,
    rng: StdRng,
    galois: BTreeMap<Rotation, (Arc<EvaluationKey>, usize)>,
    hoisted: BTreeMap<Rotation, Arc<HoistedKey>>,
}

impl HeContext {
    pub fn new(params: HeParams) -> HeContext {
        let mut rng = StdRng::from_os_rng();
        let sk = SecretKey::random(&params.bfv, &mut rng);
        let pk = PublicKey::new(&sk, &mut rng);
        HeContext {
            params,
            sk,
            pk,
            rng,
            galois: BTreeMap::new(),
            hoisted: BTreeMap::new(),
        }
    }

    pub fn params(&self) -> &HeParams {
        &self.params
    }

    fn bfv(&self) -> &Arc<BfvParameters> {
        &self.params.bfv
    }

    /// Encodes `slots` (both batching rows, row 0 first; zero-padded to N).
    pub fn encode(&self, slots: &[i64]) -> Result<Plaintext, HeError> {
        self.params.encode(slots)
    }

    /// Encrypts `slots` with the public key.
    pub fn encrypt(&mut self, slots: &[i64]) -> Result<Ciphertext, HeError> {
        let pt = self.encode(slots)?;
        Ok(self.pk.try_encrypt(&pt, &mut self.rng)?)
    }

    /// Encrypts a `[c_in, h, w]` integer input as `layout` packs it, one
    /// ciphertext per input block (in parallel, each from its own 256-bit
    /// seed drawn from the context's CSPRNG). The values must lie in the
    /// activation range. The client encrypts its own input with its secret
    /// key (symmetric BFV, less noise than a public-key encryption): `c1` is
    /// then expanded from a seed, and a serialized query carries only the
    /// seed in its place, half the bytes.
    pub fn encrypt_input(
        &mut self,
        layout: &PackingLayout,
        input: &[i64],
    ) -> Result<Vec<Ciphertext>, HeError> {
        crate::params::check_input(layout.shape(), input, self.params.activation_bits)?;
        let blocks = (0..layout.n_in()).map(|a| self.encode(&layout.pack_input(input, a)));
        let blocks = blocks.collect::<Result<Vec<_>, HeError>>()?;
        self.encrypt_all(blocks)
    }

    /// Encrypts a `[c_in, h, w]` integer input as `layout` lays it out in
    /// polynomial coefficients, one ciphertext per input block, as
    /// [`Self::encrypt_input`] does slots.
    pub fn encrypt_coefficients(
        &mut self,
        layout: &CoefficientLayout,
        input: &[i64],
    ) -> Result<Vec<Ciphertext>, HeError> {
        crate::params::check_input(layout.shape(), input, self.params.activation_bits)?;
        let polys = layout
            .blocks()
            .into_iter()
            .map(|b| layout.pack_input(input, b));
        let blocks = polys.map(|p| self.params.encode_coefficients(&p));
        let blocks = blocks.collect::<Result<Vec<_>, HeError>>()?;
        self.encrypt_all(blocks)
    }

    /// Encrypts a two-party client's share of a layer's `[c_in, h, w]`
    /// input, residues in `[0, t)` (uniform, so no activation range
    /// applies), as `layout` packs inputs; the server adds its own share
    /// to the ciphertexts in plaintext.
    pub fn encrypt_share(
        &mut self,
        layout: &LayerLayout,
        share: &[u64],
    ) -> Result<Vec<Ciphertext>, HeError> {
        let share =
            crate::params::check_share(layout.shape(), share, self.params.plaintext_modulus)?;
        let blocks = layout
            .pack_input(&share)
            .iter()
            .map(|b| self.params.encode_in(layout.encoding(), b))
            .collect::<Result<Vec<_>, HeError>>()?;
        self.encrypt_all(blocks)
    }

    /// Encrypts a layer's input under whichever encoding its layout has.
    pub fn encrypt_layer(
        &mut self,
        layout: &LayerLayout,
        input: &[i64],
    ) -> Result<Vec<Ciphertext>, HeError> {
        match layout {
            LayerLayout::Slots(l) => self.encrypt_input(l, input),
            LayerLayout::Coefficients(l) => self.encrypt_coefficients(l, input),
        }
    }

    /// Encrypts each plaintext with the secret key, in parallel, each from
    /// its own 256-bit seed drawn from the context's CSPRNG.
    fn encrypt_all(&mut self, pts: Vec<Plaintext>) -> Result<Vec<Ciphertext>, HeError> {
        let seeds: Vec<[u8; 32]> = pts.iter().map(|_| self.rng.random()).collect();
        let sk = &self.sk;
        pts.into_par_iter()
            .zip(seeds)
            .map(|(pt, seed)| Ok(sk.try_encrypt(&pt, &mut StdRng::from_seed(seed))?))
            .collect()
    }

    /// The public key: what a server re-randomizes replies with.
    pub fn public_key(&self) -> &PublicKey {
        &self.pk
    }

    /// The slots of what `ct` encrypts.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Vec<i64>, HeError> {
        self.decrypt_as(layer::Encoding::Slots, ct)
    }

    /// What `ct` encrypts, decoded as slots or as coefficients (each in
    /// `(-t/2, t/2]`).
    pub fn decrypt_as(
        &self,
        encoding: layer::Encoding,
        ct: &Ciphertext,
    ) -> Result<Vec<i64>, HeError> {
        let pt = self.sk.try_decrypt(ct)?;
        let encoding = match encoding {
            layer::Encoding::Slots => Encoding::simd(),
            layer::Encoding::Coefficients => Encoding::poly(),
        };
        Ok(Vec::<i64>::try_decode(&pt, encoding)?)
    }

    /// The serialized bytes of an input ciphertext (secret-key encrypted,
    /// its `c1` sent as a seed) and of a full two-part one (what a server
    /// returns), both at the top level.
    pub fn ciphertext_bytes(&mut self) -> Result<(usize, usize), HeError> {
        let pt = self.encode(&[])?;
        let input: Ciphertext = self.sk.try_encrypt(&pt, &mut self.rng)?;
        let full: Ciphertext = self.pk.try_encrypt(&pt, &mut self.rng)?;
        Ok((input.to_bytes().len(), full.to_bytes().len()))
    }

    /// `len` values drawn uniformly from the signed `bits`-bit range.
    pub(super) fn random_values(&mut self, len: usize, bits: u32) -> Vec<i64> {
        let m = explore_he_model::reference::max_magnitude(bits) as i64;
        (0..len).map(|_| self.rng.random_range(-m..=m)).collect()
    }

    /// Galois keys for exactly these rotations, one key each (with its
    /// serialized size), made by [`made_once`].
    pub fn rotation_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<EvaluationKey>>, HeError> {
        let sk = &self.sk;
        let keys = made_once(
            &mut self.galois,
            rotations,
            &mut self.rng,
            |rotation, rng| {
                let mut b = EvaluationKeyBuilder::new(sk)?;
                match rotation {
                    Rotation::Columns(step) => b.enable_column_rotation(step)?,
                    Rotation::Rows => b.enable_row_rotation()?,
                };
                let key = b.build(rng)?;
                let bytes = key.to_bytes().len();
                Ok((Arc::new(key), bytes))
            },
        )?;
        Ok(keys.into_iter().map(|(r, (k, _))| (r, k)).collect())
    }

    /// Hoisting keys for exactly these rotations, made by [`made_once`].
    pub fn hoisted_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<HoistedKey>>, HeError> {
        let (sk, basis) = (&self.sk, &self.params.key_basis);
        made_once(
            &mut self.hoisted,
            rotations,
            &mut self.rng,
            |rotation, rng| Ok(Arc::new(HoistedKey::new(sk, basis, rotation, rng)?)),
        )
    }

    /// Serialized bytes of the keys of `keys` (generated if needed): what a
    /// client sends the server once, of each kind
    /// ([`HeParams::key_kinds`]).
    pub fn key_bytes(&mut self, keys: &KeySet) -> Result<usize, HeError> {
        let (full, hoisted) = self.params.key_kinds(keys);
        self.rotation_keys(&full)?;
        let hoisting: usize = self
            .hoisted_keys(&hoisted)?
            .values()
            .map(|k| k.to_bytes().len())
            .sum();
        Ok(full.iter().map(|r| self.galois[r].1).sum::<usize>() + hoisting)
    }

    /// Remaining noise budget of `ct` in bits: log2(q) - log2(t) - 1 minus the
    /// measured noise, with q the modulus of the ciphertext's level (the
    /// primes it kept); decryption is exact while it stays positive.
    pub fn noise_budget(&self, ct: &Ciphertext) -> Result<i64, HeError> {
        // SAFETY: `measure_noise` is only variable-time, which leaks nothing
        // here: this is a benchmark's own secret key.
        let noise = unsafe { self.sk.measure_noise(ct)? };
        let level = self.bfv().level_of_context(ct[0].ctx())?;
        let sizes = self.params.moduli_bits();
        let kept: usize = sizes[..sizes.len() - level].iter().sum();
        Ok(kept as i64 - self.params.plaintext_bits as i64 - 1 - noise as i64)
    }

    /// Times one full rotation (fhe.rs's, or with a special prime a
    /// decomposition and a rotation with the client's own key, which is
    /// what runs then), one further rotation of an already decomposed
    /// ciphertext (hoisted), one ct x pt multiply and one ct + ct addition
    /// (minimum over `repeats`) on random data at this context's N.
    pub fn measure_primitives(&mut self, repeats: usize) -> Result<PrimitiveCosts, HeError> {
        let n = self.params.poly_degree;
        let slots: Vec<i64> = (0..n as i64).map(|i| i % 7 - 3).collect();
        let ct = self.encrypt(&slots)?;
        let pt = self.encode(&slots)?;
        let one = Rotation::Columns(1);
        let ek = Arc::clone(&self.rotation_keys(&[one])?[&one]);
        let hk = Arc::clone(&self.hoisted_keys(&[one])?[&one]);
        let basis = &self.params.key_basis;
        let decomposed = Decomposed::new(&ct, basis)?;
        let own = self.params.own_keys(false);
        let time = |f: &dyn Fn() -> Result<Ciphertext, HeError>| -> Result<f64, HeError> {
            let mut best = f64::INFINITY;
            for _ in 0..repeats.max(1) {
                let t = Instant::now();
                std::hint::black_box(f()?);
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok(best)
        };
        Ok(PrimitiveCosts {
            rot_ms: match own {
                true => time(&|| Decomposed::new(&ct, basis)?.rotate(&hk))?,
                false => time(&|| Ok(ek.rotates_columns_by(&ct, 1)?))?,
            },
            hoisted_rot_ms: time(&|| decomposed.rotate(&hk))?,
            pmul_ms: time(&|| Ok(&ct * &pt))?,
            add_ms: time(&|| Ok(&ct + &ct))?,
        })
    }
}

impl crate::keys::KeySource for HeContext {
    fn params(&self) -> &HeParams {
        &self.params
    }

    fn full_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<EvaluationKey>>, HeError> {
        self.rotation_keys(rotations)
    }

    fn hoisted_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<HoistedKey>>, HeError> {
        HeContext::hoisted_keys(self, rotations)
    }
}

/// The keys of `rotations` from `cache`, making each missing one once, as a
/// client would send it once for a whole network: in parallel, each from its
/// own seed drawn from the context's CSPRNG.
fn made_once<K: Clone + Send>(
    cache: &mut BTreeMap<Rotation, K>,
    rotations: &[Rotation],
    rng: &mut StdRng,
    make: impl Fn(Rotation, &mut StdRng) -> Result<K, HeError> + Sync,
) -> Result<BTreeMap<Rotation, K>, HeError> {
    let missing: Vec<(Rotation, [u8; 32])> = rotations
        .iter()
        .filter(|r| !cache.contains_key(r))
        .map(|&r| (r, rng.random()))
        .collect();
    // Full 256-bit seeds: each key's randomness is as strong as the CSPRNG's.
    let made = missing
        .into_par_iter()
        .map(|(rotation, seed)| Ok((rotation, make(rotation, &mut StdRng::from_seed(seed))?)))
        .collect::<Result<Vec<_>, HeError>>()?;
    cache.extend(made);
    Ok(rotations.iter().map(|r| (*r, cache[r].clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::HeParamsBuilder;
    use explore_he_model::arch::ConvShape;

    fn context() -> HeContext {
        let s = ConvShape {
            name: "l".into(),
            c_in: 2,
            c_out: 2,
            h: 4,
            w: 4,
            k: 3,
            stride: 1,
        };
        HeContext::new(HeParamsBuilder::new(8192, &[s]).build().unwrap())
    }

    #[test]
    fn measured_primitives_and_key_sizes_are_positive() {
        let mut ctx = context();
        // The minimum of several, so that a busy machine (another job, a
        // parallel test) does not invert the two rotation times.
        let c = ctx.measure_primitives(7).unwrap();
        assert!(c.rot_ms > 0.0 && c.pmul_ms > 0.0 && c.add_ms > 0.0);
        assert!(
            c.hoisted_rot_ms > 0.0 && c.hoisted_rot_ms < c.rot_ms,
            "{c:?}"
        );
        let set = |full: &[Rotation], hoisted: &[Rotation]| KeySet {
            full: full.iter().copied().collect(),
            hoisted: hoisted.iter().copied().collect(),
        };
        let (one, rows) = (Rotation::Columns(1), Rotation::Rows);
        let full = ctx.key_bytes(&set(&[one], &[])).unwrap();
        let two = ctx.key_bytes(&set(&[one, rows], &[])).unwrap();
        assert!(full > 100_000, "a Galois key at N = 8192 is large: {full}");
        assert!(two > full);
        // A hoisting key sends its b_i and a seed for the a_i, as fhe.rs's
        // own keys do.
        let hoisted = ctx.key_bytes(&set(&[], &[one])).unwrap();
        let both = ctx.key_bytes(&set(&[rows], &[one])).unwrap();
        assert!(hoisted > 100_000, "{hoisted}");
        assert_eq!(both, hoisted + two - full);
        // The same size within a few bytes (8 of the step, 32 of the seed,
        // framing): `explore count` prices either kind at fhe.rs's.
        assert!(hoisted.abs_diff(full) < 64, "{hoisted} vs {full}");
    }
}
