//! BFV parameters for fhe.rs: the ring degree N, the plaintext prime that
//! [`PlaintextModulus`] chooses, and the ciphertext primes (the fewest that
//! [`ModulusChoice`] finds for a network's noise, or the whole 128-bit
//! table), built into fhe.rs's own parameter type.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

use super::HeError;
use crate::arch::ConvShape;
use explore_he_model::noise::{Flooding, ModulusChoice, NoiseDepth};
use explore_he_model::plaintext::{
    MIN_PLAINTEXT_BITS, PlaintextModulus, moduli_sizes, plaintext_prime,
};

/// Serialized bytes of one Galois key (one rotation) at ring degree
/// `poly_degree` under ciphertext primes of `moduli` bits: what each
/// rotation a network uses costs the client to send. The plaintext modulus
/// does not change it.
pub fn galois_key_bytes(poly_degree: usize, moduli: &[usize]) -> Result<usize, HeError> {
    use fhe::bfv::{EvaluationKeyBuilder, SecretKey};
    use fhe_traits::Serialize as _;
    use rand::SeedableRng;
    let t = plaintext_prime(MIN_PLAINTEXT_BITS, poly_degree).ok_or(
        explore_he_model::Error::NoPlaintextPrime {
            bits: MIN_PLAINTEXT_BITS,
            poly_degree,
        },
    )?;
    let par = BfvParametersBuilder::new()
        .set_degree(poly_degree)
        .set_plaintext_modulus(t)
        .set_moduli_sizes(moduli)
        .build_arc()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let sk = SecretKey::random(&par, &mut rng);
    let mut b = EvaluationKeyBuilder::new(&sk)?;
    b.enable_column_rotation(1)?;
    Ok(b.build(&mut rng)?.to_bytes().len())
}

/// Chosen BFV parameters for a set of layers.
#[derive(Debug, Clone)]
pub struct HeParams {
    pub poly_degree: usize,
    pub plaintext_modulus: u64,
    pub plaintext_bits: u32,
    pub weight_bits: u32,
    pub activation_bits: u32,
    pub bfv: Arc<BfvParameters>,
}

impl HeParams {
    /// The parameters of [`PlaintextModulus::for_layers`] at ring degree
    /// `poly_degree` with every ciphertext prime of its 128-bit table.
    pub fn new(
        poly_degree: usize,
        plaintext_bits: Option<u32>,
        weight_bits: u32,
        activation_bits: u32,
        layers: &[ConvShape],
    ) -> Result<HeParams, HeError> {
        let PlaintextModulus { t, bits } = PlaintextModulus::for_layers(
            poly_degree,
            plaintext_bits,
            weight_bits,
            activation_bits,
            layers,
        )?;
        Self::build(
            poly_degree,
            t,
            bits,
            weight_bits,
            activation_bits,
            moduli_sizes(poly_degree)?,
        )
    }

    /// [`Self::new`] with the fewest ciphertext primes that leave
    /// `margin_bits` of noise budget after a layer of `depth` (the deepest
    /// of the network) and after its reply is flooded under `flooding`:
    /// returns them with the budget the bound leaves.
    pub fn sized(
        poly_degree: usize,
        plaintext_bits: Option<u32>,
        weight_bits: u32,
        activation_bits: u32,
        layers: &[ConvShape],
        depth: NoiseDepth,
        margin_bits: f64,
        flooding: Flooding,
    ) -> Result<(HeParams, ModulusChoice), HeError> {
        let PlaintextModulus { t, bits } = PlaintextModulus::for_layers(
            poly_degree,
            plaintext_bits,
            weight_bits,
            activation_bits,
            layers,
        )?;
        let choice = ModulusChoice::fewest(poly_degree, bits, depth, margin_bits, flooding)?;
        let params = Self::build(
            poly_degree,
            t,
            bits,
            weight_bits,
            activation_bits,
            &choice.moduli,
        )?;
        Ok((params, choice))
    }

    fn build(
        poly_degree: usize,
        t: u64,
        bits: u32,
        weight_bits: u32,
        activation_bits: u32,
        sizes: &[usize],
    ) -> Result<HeParams, HeError> {
        let bfv = BfvParametersBuilder::new()
            .set_degree(poly_degree)
            .set_plaintext_modulus(t)
            .set_moduli_sizes(sizes)
            .build_arc()?;
        Ok(HeParams {
            poly_degree,
            plaintext_modulus: t,
            plaintext_bits: bits,
            weight_bits,
            activation_bits,
            bfv,
        })
    }

    /// Encodes `slots` (both batching rows, row 0 first; zero-padded to N).
    pub fn encode(&self, slots: &[i64]) -> Result<fhe::bfv::Plaintext, HeError> {
        use fhe_traits::FheEncoder as _;
        let mut v = slots.to_vec();
        v.resize(self.poly_degree, 0);
        Ok(fhe::bfv::Plaintext::try_encode(
            &v,
            fhe::bfv::Encoding::simd(),
            &self.bfv,
        )?)
    }

    /// Slots in one batching row (the rotation domain).
    pub fn slots(&self) -> usize {
        self.poly_degree / 2
    }

    /// Total ciphertext modulus bits.
    pub fn modulus_bits(&self) -> usize {
        self.bfv.moduli_sizes().iter().sum()
    }

    /// Bits of each ciphertext prime.
    pub fn moduli_bits(&self) -> &[usize] {
        self.bfv.moduli_sizes()
    }
}
