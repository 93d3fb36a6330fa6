//! BFV parameters for fhe.rs: the ring degree N with the 128-bit ciphertext
//! moduli and the plaintext prime that [`PlaintextModulus`] chooses, built
//! into fhe.rs's own parameter type.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

use super::HeError;
use crate::arch::ConvShape;
use explore_he_model::plaintext::{
    MIN_PLAINTEXT_BITS, PlaintextModulus, moduli_sizes, plaintext_prime,
};

/// Serialized bytes of one Galois key (one rotation) at ring degree
/// `poly_degree` under this module's moduli: what each rotation a network
/// uses costs the client to send. The plaintext modulus does not change it.
pub fn galois_key_bytes(poly_degree: usize) -> Result<usize, HeError> {
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
        .set_moduli_sizes(moduli_sizes(poly_degree)?)
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
    /// `poly_degree` with its 128-bit ciphertext moduli.
    pub fn new(
        poly_degree: usize,
        plaintext_bits: Option<u32>,
        weight_bits: u32,
        activation_bits: u32,
        layers: &[ConvShape],
    ) -> Result<HeParams, HeError> {
        let sizes = moduli_sizes(poly_degree)?;
        let PlaintextModulus { t, bits } = PlaintextModulus::for_layers(
            poly_degree,
            plaintext_bits,
            weight_bits,
            activation_bits,
            layers,
        )?;
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

    /// Slots in one batching row (the rotation domain).
    pub fn slots(&self) -> usize {
        self.poly_degree / 2
    }

    /// Total ciphertext modulus bits.
    pub fn modulus_bits(&self) -> usize {
        self.bfv.moduli_sizes().iter().sum()
    }
}
