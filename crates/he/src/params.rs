//! BFV parameters for fhe.rs: the ring degree N, the plaintext prime that
//! [`PlaintextModulus`] chooses, and the ciphertext primes (the fewest that
//! [`ModulusChoice`] finds for a network's noise, or the whole 128-bit
//! table), built into fhe.rs's own parameter type.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

use crate::error::HeError;
use crate::hoist::KeyBasis;
use explore_he_model::arch::ConvShape;
use explore_he_model::cost::KeySet;
use explore_he_model::layout::Rotation;
use explore_he_model::noise::{Flooding, ModulusChoice, NoiseDepth};
use explore_he_model::plaintext::{
    MIN_PLAINTEXT_BITS, PlaintextModulus, moduli_sizes, plaintext_prime,
};
use explore_quant::max_magnitude;

/// Serialized bytes of one Galois key (one rotation) at ring degree
/// `poly_degree` under the primes of `moduli`: what each rotation a network
/// uses costs the client to send. Without a special prime it is fhe.rs's
/// key (a hoisting key, which a network under hoisting sends instead, is
/// the same size within a few bytes: tested in `context`); with one, the
/// client's own key at `QP`, one digit per ciphertext prime over one more
/// prime. The plaintext modulus does not change it.
pub fn galois_key_bytes(poly_degree: usize, moduli: &ModulusChoice) -> Result<usize, HeError> {
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
        .set_moduli_sizes(&moduli.moduli)
        .build_arc()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let sk = SecretKey::random(&par, &mut rng);
    let one = Rotation::Columns(1);
    if moduli.special.is_some() {
        let basis = KeyBasis::new(&par, moduli.special)?;
        return Ok(crate::hoist::HoistedKey::new(&sk, &basis, one, &mut rng)?
            .to_bytes()
            .len());
    }
    let mut b = EvaluationKeyBuilder::new(&sk)?;
    b.enable_column_rotation(1)?;
    Ok(b.build(&mut rng)?.to_bytes().len())
}

/// Chosen BFV parameters for a set of layers, built by [`HeParamsBuilder`].
#[derive(Debug, Clone)]
pub struct HeParams {
    pub poly_degree: usize,
    pub plaintext_modulus: u64,
    pub plaintext_bits: u32,
    pub weight_bits: u32,
    pub activation_bits: u32,
    pub bfv: Arc<BfvParameters>,
    /// The ciphertext primes sized to a network's noise and the budget the
    /// bound leaves ([`HeParamsBuilder::fewest_primes`]); `None` when every
    /// prime of the 128-bit table is used.
    pub sized: Option<ModulusChoice>,
    /// Where rotation keys live: at the ciphertext primes, or with a
    /// special prime ([`HeParamsBuilder::special_prime`]).
    pub key_basis: Arc<KeyBasis>,
    /// The special prime's bits, if there is one.
    pub special_bits: Option<usize>,
}

/// The one validated way to choose [`HeParams`], as fhe.rs's
/// `BfvParametersBuilder` is for its own: the ring degree and the layers
/// whose accumulators the plaintext prime must hold are required;
/// quantization is 8-bit and the plaintext prime the smallest that holds
/// the layers ([`PlaintextModulus::for_layers`]) unless set; the ciphertext
/// primes are every prime of the degree's 128-bit table unless
/// [`Self::fewest_primes`] sizes them to a network's noise.
#[derive(Debug, Clone)]
pub struct HeParamsBuilder<'a> {
    poly_degree: usize,
    layers: &'a [ConvShape],
    plaintext_bits: Option<u32>,
    weight_bits: u32,
    activation_bits: u32,
    noise: Option<(NoiseDepth, f64, Flooding)>,
    special_prime: bool,
}

impl<'a> HeParamsBuilder<'a> {
    pub fn new(poly_degree: usize, layers: &'a [ConvShape]) -> HeParamsBuilder<'a> {
        HeParamsBuilder {
            poly_degree,
            layers,
            plaintext_bits: None,
            weight_bits: 8,
            activation_bits: 8,
            noise: None,
            special_prime: false,
        }
    }

    /// Key switching with a special prime (hybrid key switching; keys at
    /// `QP`): the next prime of the 128-bit table after the ciphertext
    /// primes, so that together they stay within the bound. Every rotation
    /// then switches with the client's own keys ([`crate::hoist`]), hoisted
    /// or not, since fhe.rs's have no special prime.
    pub fn special_prime(self, on: bool) -> Self {
        HeParamsBuilder {
            special_prime: on,
            ..self
        }
    }

    /// The plaintext prime's bits; `None` for the fewest the layers need.
    pub fn plaintext_bits(self, bits: Option<u32>) -> Self {
        HeParamsBuilder {
            plaintext_bits: bits,
            ..self
        }
    }

    /// The bits of the integer weights and activations the layers compute on.
    pub fn quantization(self, weight_bits: u32, activation_bits: u32) -> Self {
        HeParamsBuilder {
            weight_bits,
            activation_bits,
            ..self
        }
    }

    /// The fewest ciphertext primes that leave `margin_bits` of noise budget
    /// after a layer of `depth` (the deepest of the network) and after its
    /// reply is flooded under `flooding`.
    pub fn fewest_primes(self, depth: NoiseDepth, margin_bits: f64, flooding: Flooding) -> Self {
        HeParamsBuilder {
            noise: Some((depth, margin_bits, flooding)),
            ..self
        }
    }

    /// Checks the choices (the ring degree, a plaintext prime that holds
    /// every layer, primes within the 128-bit bound that leave the margin)
    /// and builds fhe.rs's parameters.
    pub fn build(self) -> Result<HeParams, HeError> {
        let PlaintextModulus { t, bits } = PlaintextModulus::for_layers(
            self.poly_degree,
            self.plaintext_bits,
            self.weight_bits,
            self.activation_bits,
            self.layers,
        )?;
        let sized = match self.noise {
            Some((depth, margin_bits, flooding)) => Some(ModulusChoice::fewest(
                self.poly_degree,
                bits,
                depth,
                margin_bits,
                flooding,
                self.special_prime,
            )?),
            None => None,
        };
        let (sizes, special_bits) = match &sized {
            Some(choice) => (choice.moduli.clone(), choice.special),
            None => {
                let table = moduli_sizes(self.poly_degree)?;
                match self.special_prime {
                    // The table's last prime becomes P.
                    true => (table[..table.len() - 1].to_vec(), table.last().copied()),
                    false => (table.to_vec(), None),
                }
            }
        };
        let bfv = BfvParametersBuilder::new()
            .set_degree(self.poly_degree)
            .set_plaintext_modulus(t)
            .set_moduli_sizes(&sizes)
            .build_arc()?;
        Ok(HeParams {
            key_basis: Arc::new(KeyBasis::new(&bfv, special_bits)?),
            special_bits,
            poly_degree: self.poly_degree,
            plaintext_modulus: t,
            plaintext_bits: bits,
            weight_bits: self.weight_bits,
            activation_bits: self.activation_bits,
            bfv,
            sized,
        })
    }
}

impl HeParams {
    /// Encodes `slots` (both batching rows, row 0 first; zero-padded to N).
    pub fn encode(&self, slots: &[i64]) -> Result<fhe::bfv::Plaintext, HeError> {
        self.encode_as(slots, fhe::bfv::Encoding::simd())
    }

    /// Encodes `coefficients` as the plaintext polynomial's own
    /// coefficients, constant term first (zero-padded to N).
    pub fn encode_coefficients(
        &self,
        coefficients: &[i64],
    ) -> Result<fhe::bfv::Plaintext, HeError> {
        self.encode_as(coefficients, fhe::bfv::Encoding::poly())
    }

    /// Encodes `values` as slots or as coefficients, as a layer's
    /// `encoding` lays them out.
    pub fn encode_in(
        &self,
        encoding: explore_he_model::layer::Encoding,
        values: &[i64],
    ) -> Result<fhe::bfv::Plaintext, HeError> {
        match encoding {
            explore_he_model::layer::Encoding::Slots => self.encode(values),
            explore_he_model::layer::Encoding::Coefficients => self.encode_coefficients(values),
        }
    }

    fn encode_as(
        &self,
        values: &[i64],
        encoding: fhe::bfv::Encoding,
    ) -> Result<fhe::bfv::Plaintext, HeError> {
        use fhe_traits::FheEncoder as _;
        let mut v = values.to_vec();
        v.resize(self.poly_degree, 0);
        Ok(fhe::bfv::Plaintext::try_encode(&v, encoding, &self.bfv)?)
    }

    /// Whether rotations switch with the client's own keys
    /// ([`crate::hoist`]): under hoisting, and always with a special prime,
    /// which fhe.rs's keys do not have.
    pub fn own_keys(&self, hoisting: bool) -> bool {
        hoisting || self.special_bits.is_some()
    }

    /// The rotations of `keys` that switch with fhe.rs's Galois keys, and
    /// those that switch with the client's own: what a client makes and
    /// sends of each kind.
    pub fn key_kinds(&self, keys: &KeySet) -> (Vec<Rotation>, Vec<Rotation>) {
        if self.own_keys(false) {
            return (Vec::new(), keys.rotations().into_iter().collect());
        }
        (
            keys.full.iter().copied().collect(),
            keys.hoisted.iter().copied().collect(),
        )
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

/// Refuses weights of the wrong count for `shape` or beyond the
/// `bits`-bit range.
pub(crate) fn check_weights(
    shape: &explore_he_model::arch::ConvShape,
    weights: &[i64],
    bits: u32,
) -> Result<(), HeError> {
    if weights.len() != shape.weight_len() {
        return Err(explore_he_model::Error::WeightLength {
            layer: shape.name.clone(),
            expected: shape.weight_len(),
            got: weights.len(),
        }
        .into());
    }
    check_range(&shape.name, weights, bits)
}

/// Refuses a `[c_in, h, w]` input of the wrong length for `shape` or
/// beyond the `bits`-bit range.
pub(crate) fn check_input(
    shape: &explore_he_model::arch::ConvShape,
    input: &[i64],
    bits: u32,
) -> Result<(), HeError> {
    let expected = shape.c_in * shape.h * shape.w;
    if input.len() != expected {
        return Err(HeError::InputLength {
            layer: shape.name.clone(),
            expected,
            got: input.len(),
        });
    }
    check_range(&shape.name, input, bits)
}

/// A share of a `[c_in, h, w]` input for `shape` as the integers the
/// packing places: refuses the wrong length or a residue not below `t`.
pub(crate) fn check_share(
    shape: &explore_he_model::arch::ConvShape,
    share: &[u64],
    t: u64,
) -> Result<Vec<i64>, HeError> {
    let expected = shape.c_in * shape.h * shape.w;
    if share.len() != expected {
        return Err(HeError::InputLength {
            layer: shape.name.clone(),
            expected,
            got: share.len(),
        });
    }
    match share.iter().find(|&&v| v >= t) {
        Some(&value) => Err(HeError::ShareRange {
            layer: shape.name.clone(),
            value,
            modulus: t,
        }),
        None => Ok(share.iter().map(|&v| v as i64).collect()),
    }
}

/// Refuses a value beyond the `bits`-bit range the plaintext modulus was
/// chosen for (weights at plan time, inputs at encryption).
pub(crate) fn check_range(layer: &str, values: &[i64], bits: u32) -> Result<(), HeError> {
    let max = max_magnitude(bits) as i64;
    match values.iter().find(|v| v.abs() > max) {
        Some(&value) => Err(HeError::ValueRange {
            layer: layer.to_string(),
            value,
            bits,
        }),
        None => Ok(()),
    }
}
