//! Private inference as two parties that exchange only bytes. The
//! [`Client`] holds the secret key; it uploads the evaluation keys once,
//! then per round encrypts each layer's input in the packing the server
//! published, and decrypts the replies. The [`Server`] holds the model; it
//! rebuilds the keys from the upload, evaluates the round's layers on the
//! ciphertexts, and seals each output before it leaves: re-randomized and
//! flooded for circuit privacy (when [`super::Flooding`] is on), then switched
//! down to the fewest primes that still decrypt it.
//!
//! Every message is a byte string (fhe.rs's `to_bytes` inside a small
//! length-prefixed frame), so the bytes a network would carry are the
//! lengths of the messages, nothing estimated.

use std::collections::BTreeMap;
use std::sync::Arc;

use fhe::bfv::{Ciphertext, EvaluationKey, Plaintext, PublicKey};
use fhe_math::rq::traits::TryConvertFrom;
use fhe_math::rq::{Poly, Representation};
use fhe_traits::{DeserializeParametrized, FheEncrypter, Serialize as _};
use rand::RngCore;
use rayon::prelude::*;

use super::HeError;
use super::context::HeContext;
use super::cost::{KeySet, LayerCost};
use super::hoist::HoistedKey;
use super::layout::{PackingLayout, Rotation};
use super::params::HeParams;
use super::plan::{KeySource, LayerPlan};

/// How the replies of one layer leave the server: the bound of the
/// flooding noise (`None`: not flooded) and the primes kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ReplyShape {
    pub flood_bits: Option<u32>,
    pub primes: usize,
}

fn wire(why: impl Into<String>) -> HeError {
    HeError::Wire(why.into())
}

/// A message being written: little-endian counts and length-prefixed parts.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn count(&mut self, n: usize) {
        self.0.extend((n as u32).to_le_bytes());
    }
    fn part(&mut self, bytes: &[u8]) {
        self.0.extend((bytes.len() as u64).to_le_bytes());
        self.0.extend(bytes);
    }
}

/// A message being read; a short or overlong message is an error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeError> {
        let part = self
            .bytes
            .get(self.at..self.at.saturating_add(n))
            .ok_or_else(|| wire("message truncated"))?;
        self.at += n;
        Ok(part)
    }
    fn count(&mut self) -> Result<usize, HeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }
    fn part(&mut self) -> Result<&'a [u8], HeError> {
        let len = u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        self.take(usize::try_from(len).map_err(|_| wire("part too long"))?)
    }
    fn done(&self) -> Result<(), HeError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(wire("trailing bytes after the message"))
        }
    }
}

fn rotation_tag(w: &mut Writer, rotation: Rotation) {
    match rotation {
        Rotation::Columns(step) => w.count(step + 1),
        Rotation::Rows => w.count(0),
    }
}

fn read_rotation(r: &mut Reader) -> Result<Rotation, HeError> {
    Ok(match r.count()? {
        0 => Rotation::Rows,
        step => Rotation::Columns(step - 1),
    })
}

/// The party with the secret key.
pub struct Client {
    ctx: HeContext,
    layouts: Vec<PackingLayout>,
}

/// The plaintext values of one layer's reply as the client reads them, and
/// the smallest noise budget its ciphertexts had left.
pub struct Answer {
    pub layer: usize,
    pub output: Vec<i64>,
    pub noise_budget_bits: i64,
}

impl Client {
    /// A client with fresh keys under `params`, packing layer `i`'s input as
    /// `layouts[i]` (what the server publishes).
    pub fn new(params: HeParams, layouts: Vec<PackingLayout>) -> Client {
        Client {
            ctx: HeContext::new(params),
            layouts,
        }
    }

    /// The one-time upload: the public key, then one fhe.rs key per full
    /// rotation and one hoisting key per hoisted rotation of `keys`.
    pub fn upload(&mut self, keys: &KeySet) -> Result<Vec<u8>, HeError> {
        let full: Vec<Rotation> = keys.full.iter().copied().collect();
        let hoisted: Vec<Rotation> = keys.hoisted.iter().copied().collect();
        let full_keys = self.ctx.rotation_keys(&full)?;
        let hoisted_keys = self.ctx.hoisted_keys(&hoisted)?;
        let mut w = Writer::default();
        w.part(&self.ctx.public_key().to_bytes());
        w.count(full_keys.len());
        for (rotation, key) in &full_keys {
            rotation_tag(&mut w, *rotation);
            w.part(&key.to_bytes());
        }
        w.count(hoisted_keys.len());
        for key in hoisted_keys.values() {
            w.part(&key.to_bytes());
        }
        Ok(w.0)
    }

    /// One round's query: each layer's integer input, encrypted block by
    /// block in that layer's packing.
    pub fn query(&mut self, round: &[(usize, &[i64])]) -> Result<Vec<u8>, HeError> {
        let mut w = Writer::default();
        w.count(round.len());
        for &(layer, input) in round {
            let layout = self
                .layouts
                .get(layer)
                .ok_or_else(|| wire(format!("layer {layer} is not published")))?;
            let cts = self.ctx.encrypt_input(layout, input)?;
            w.count(layer);
            w.count(cts.len());
            let bytes: Vec<Vec<u8>> = cts.par_iter().map(|ct| ct.to_bytes()).collect();
            bytes.iter().for_each(|b| w.part(b));
        }
        Ok(w.0)
    }

    /// Decrypts a reply into each layer's output (`[c_out, out_h, out_w]`).
    pub fn read(&self, reply: &[u8]) -> Result<Vec<Answer>, HeError> {
        let par = &self.ctx.params().bfv;
        let mut r = Reader::new(reply);
        let mut layers = Vec::new();
        for _ in 0..r.count()? {
            let layer = r.count()?;
            let layout = self
                .layouts
                .get(layer)
                .ok_or_else(|| wire(format!("reply for unknown layer {layer}")))?;
            let blocks = r.count()?;
            if blocks != layout.n_out() {
                return Err(wire(format!(
                    "layer {layer}: {blocks} output blocks, the packing has {}",
                    layout.n_out()
                )));
            }
            let mut parts = Vec::with_capacity(blocks);
            for _ in 0..blocks {
                parts.push(match r.count()? {
                    0 => None,
                    _ => Some(r.part()?),
                });
            }
            layers.push((layer, layout, parts));
        }
        r.done()?;
        layers
            .into_iter()
            .map(|(layer, layout, parts)| {
                let decrypted: Vec<(Option<Vec<i64>>, i64)> = parts
                    .par_iter()
                    .map(|part| match part {
                        None => Ok((None, i64::MAX)),
                        Some(bytes) => {
                            let ct = Ciphertext::from_bytes(bytes, par)?;
                            Ok((Some(self.ctx.decrypt(&ct)?), self.ctx.noise_budget(&ct)?))
                        }
                    })
                    .collect::<Result<_, HeError>>()?;
                let budget = decrypted.iter().map(|d| d.1).min().unwrap_or(i64::MAX);
                let blocks: Vec<Option<Vec<i64>>> = decrypted.into_iter().map(|d| d.0).collect();
                Ok(Answer {
                    layer,
                    output: layout.read_output(&blocks),
                    noise_budget_bits: budget,
                })
            })
            .collect()
    }
}

/// The keys a server rebuilt from a client's upload.
struct UploadedKeys {
    params: HeParams,
    full: BTreeMap<Rotation, Arc<EvaluationKey>>,
    hoisted: BTreeMap<Rotation, Arc<HoistedKey>>,
}

impl KeySource for UploadedKeys {
    fn params(&self) -> &HeParams {
        &self.params
    }
    fn full_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<EvaluationKey>>, HeError> {
        Ok(rotations
            .iter()
            .filter_map(|r| self.full.get(r).map(|k| (*r, Arc::clone(k))))
            .collect())
    }
    fn hoisted_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<HoistedKey>>, HeError> {
        Ok(rotations
            .iter()
            .filter_map(|r| self.hoisted.get(r).map(|k| (*r, Arc::clone(k))))
            .collect())
    }
}

/// One layer as the server holds it: its plan (encoded weights and keys)
/// and how its replies leave.
struct ServerLayer {
    plan: LayerPlan,
    reply: ReplyShape,
}

/// The party with the model.
pub struct Server {
    params: HeParams,
    pk: PublicKey,
    layers: Vec<ServerLayer>,
    /// Reply with every output block, an encryption of zero where the
    /// model computes none, so the reply's shape says nothing about which
    /// weights are zero.
    every_block: bool,
}

/// What the server did for one round: per layer, its executed operations.
pub type Executed = Vec<(usize, LayerCost)>;

impl Server {
    /// Rebuilds the client's keys from `upload` and plans every layer
    /// (`layout`, integer weights, reply shape), in order. A layer whose
    /// rotations the upload lacks is an error naming it.
    pub fn new(
        params: HeParams,
        upload: &[u8],
        layers: Vec<(PackingLayout, Vec<i64>, ReplyShape)>,
        every_block: bool,
    ) -> Result<Server, HeError> {
        let par = Arc::clone(&params.bfv);
        let mut r = Reader::new(upload);
        let pk = PublicKey::from_bytes(r.part()?, &par)?;
        let mut full = Vec::new();
        for _ in 0..r.count()? {
            full.push((read_rotation(&mut r)?, r.part()?));
        }
        let mut hoisted = Vec::new();
        for _ in 0..r.count()? {
            hoisted.push(r.part()?);
        }
        r.done()?;
        let full = full
            .into_par_iter()
            .map(|(rotation, bytes)| {
                Ok((rotation, Arc::new(EvaluationKey::from_bytes(bytes, &par)?)))
            })
            .collect::<Result<_, HeError>>()?;
        let hoisted = hoisted
            .into_par_iter()
            .map(|bytes| {
                let key = HoistedKey::from_bytes(bytes, &par)?;
                Ok((key.rotation(), Arc::new(key)))
            })
            .collect::<Result<_, HeError>>()?;
        let mut keys = UploadedKeys {
            params: params.clone(),
            full,
            hoisted,
        };
        let layers = layers
            .into_iter()
            .map(|(layout, weights, reply)| {
                Ok(ServerLayer {
                    plan: LayerPlan::new(&mut keys, layout, &weights)?,
                    reply,
                })
            })
            .collect::<Result<_, HeError>>()?;
        Ok(Server {
            params,
            pk,
            layers,
            every_block,
        })
    }

    /// Bytes of the encoded weights the server keeps in memory: each mask
    /// is a plaintext of N values mod t and its NTT form over every
    /// ciphertext prime, 8 bytes a value (counted from the plans, not
    /// measured by an allocator).
    pub fn encoded_bytes(&self) -> usize {
        let per = self.params.poly_degree * (self.params.moduli_bits().len() + 1) * 8;
        self.layers.iter().map(|l| l.plan.plaintexts() * per).sum()
    }

    /// Answers one query: every layer of the round evaluated on its
    /// ciphertexts, each output sealed. Returns the reply and the
    /// operations executed per layer.
    pub fn answer(&self, query: &[u8]) -> Result<(Vec<u8>, Executed), HeError> {
        let par = &self.params.bfv;
        let mut r = Reader::new(query);
        let mut round = Vec::new();
        for _ in 0..r.count()? {
            let layer = r.count()?;
            let blocks = r.count()?;
            let held = self
                .layers
                .get(layer)
                .ok_or_else(|| wire(format!("query for unknown layer {layer}")))?;
            if blocks != held.plan.layout().n_in() {
                return Err(wire(format!(
                    "layer {layer}: {blocks} input blocks, the packing has {}",
                    held.plan.layout().n_in()
                )));
            }
            let mut parts = Vec::with_capacity(blocks);
            for _ in 0..blocks {
                parts.push(r.part()?);
            }
            round.push((layer, held, parts));
        }
        r.done()?;
        let mut w = Writer::default();
        let mut executed = Vec::with_capacity(round.len());
        w.count(round.len());
        for (layer, held, parts) in round {
            let inputs: Vec<Ciphertext> = parts
                .par_iter()
                .map(|b| Ok(Ciphertext::from_bytes(b, par)?))
                .collect::<Result<_, HeError>>()?;
            let (outputs, cost) = held.plan.evaluate(&inputs)?;
            let sealed: Vec<Option<Vec<u8>>> = outputs
                .into_par_iter()
                .map(|ct| self.seal(ct, held.reply, &mut rand::rng()))
                .collect::<Result<_, HeError>>()?;
            w.count(layer);
            w.count(sealed.len());
            for part in &sealed {
                match part {
                    None => w.count(0),
                    Some(bytes) => {
                        w.count(1);
                        w.part(bytes);
                    }
                }
            }
            executed.push((layer, cost));
        }
        Ok((w.0, executed))
    }

    /// One output block as it leaves: with flooding, plus a fresh
    /// encryption of zero (a new uniform `c1`) and uniform noise in
    /// `[-2^b, 2^b)` on `c0`; then switched down to the reply's primes. A
    /// block the model never computes is an encryption of zero when every
    /// block is returned, else left out.
    fn seal(
        &self,
        ct: Option<Ciphertext>,
        shape: ReplyShape,
        rng: &mut (impl RngCore + rand::CryptoRng),
    ) -> Result<Option<Vec<u8>>, HeError> {
        let par = &self.params.bfv;
        let zero = || -> Result<Ciphertext, HeError> {
            let pt = Plaintext::zero(fhe::bfv::Encoding::simd(), par)?;
            Ok(self.pk.try_encrypt(&pt, &mut rand::rng())?)
        };
        let mut ct = match ct {
            Some(ct) => ct,
            None if self.every_block => zero()?,
            None => return Ok(None),
        };
        if let Some(bits) = shape.flood_bits {
            ct = &ct + &zero()?;
            let noise = flooding_noise(&self.params, bits, rng)?;
            ct[0] += &noise;
        }
        let level = self.params.moduli_bits().len() - shape.primes;
        ct.switch_to_level(level)?;
        Ok(Some(ct.to_bytes()))
    }
}

/// A polynomial over the full ciphertext modulus (NTT form) whose
/// coefficients are drawn uniformly from `[-2^bits, 2^bits)`: the same
/// integer reduced modulo every prime, built from 64-bit limbs so no big
/// integers are needed.
fn flooding_noise(params: &HeParams, bits: u32, rng: &mut impl RngCore) -> Result<Poly, HeError> {
    let par = &params.bfv;
    let ctx = par.context_at_level(0)?;
    let n = params.poly_degree;
    let limbs = (bits as usize + 1).div_ceil(64);
    let top_bits = (bits as usize + 1) - 64 * (limbs - 1);
    let moduli = par.moduli();
    let mut residues = vec![0u64; moduli.len() * n];
    let mut limb = vec![0u64; limbs];
    // 2^bits mod each prime, subtracted to centre the range on zero.
    let offsets: Vec<u128> = moduli
        .iter()
        .map(|&q| (0..bits).fold(1u128, |acc, _| (acc << 1) % q as u128))
        .collect();
    for j in 0..n {
        // u uniform in [0, 2^(bits+1)), most significant limb first.
        limb.iter_mut().for_each(|l| *l = rng.next_u64());
        if top_bits < 64 {
            limb[0] &= (1u64 << top_bits) - 1;
        }
        for (i, &q) in moduli.iter().enumerate() {
            let q = q as u128;
            let u = limb
                .iter()
                .fold(0u128, |acc, &l| ((acc << 64) | l as u128) % q);
            residues[i * n + j] = ((u + q - offsets[i]) % q) as u64;
        }
    }
    let mut poly = Poly::try_convert_from(residues, ctx, false, Representation::PowerBasis)
        .map_err(|e| HeError::Fhe(fhe::Error::MathError(e)))?;
    poly.change_representation(Representation::Ntt);
    Ok(poly)
}
