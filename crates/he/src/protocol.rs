//! Private inference as two parties that exchange only bytes. The
//! [`Client`] holds the secret key; it uploads the evaluation keys once,
//! then per round encrypts each layer's input in the packing the server
//! published, and decrypts the replies. The [`Server`] holds the model; it
//! rebuilds the keys from the upload, evaluates the round's layers on the
//! ciphertexts, and seals each output before it leaves: re-randomized and
//! flooded for circuit privacy (when [`explore_he_model::noise::Flooding`] is on), then switched
//! down to the fewest primes that still decrypt it.
//!
//! Under the two-party [`Protocol`] the client encrypts its additive share
//! of each layer's input, the server adds its own share in plaintext, and
//! before sealing adds a fresh uniform mask r mod t to every slot (or
//! coefficient) of every output block, the partial-sum and unused ones
//! included, returning an encryption of r where the model computes no
//! block: what the client decrypts is its share of the layer's output, and
//! the server keeps the other, -r as the layout reads it. Under
//! client-aided the client decrypts the exact outputs (and so learns the
//! model); it remains as a baseline.
//!
//! The server answers only within a [`Session`]: one per inference, which
//! takes each round of the network once, in order, and only with exactly
//! that round's layers, so a client cannot query a layer at will, replay a
//! round or skip ahead.
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

use crate::context::HeContext;
use crate::error::HeError;
use crate::hoist::{HoistedKey, is_fresh};
use crate::keys::KeySource;
use crate::layer::Plan;
use crate::params::HeParams;
use crate::plan::Work;
use crate::runner::EncryptedLayer as _;
use explore_he_model::cost::{KeySet, LayerCost};
use explore_he_model::layer::LayerLayout;
use explore_he_model::layout::Rotation;
use explore_spec::Protocol;

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
    layouts: Vec<LayerLayout>,
}

/// One layer's output as the client reads it from a reply.
pub struct Answer {
    pub layer: usize,
    pub output: Vec<i64>,
}

/// One reply's parts: per layer, its index and each output block's bytes
/// (`None`: a block the server left out).
type ReplyParts<'a> = Vec<(usize, Vec<Option<&'a [u8]>>)>;

impl Client {
    /// A client with fresh keys under `params`, packing layer `i`'s input as
    /// `layouts[i]` (what the server publishes).
    pub fn new(params: HeParams, layouts: Vec<LayerLayout>) -> Client {
        Client {
            ctx: HeContext::new(params),
            layouts,
        }
    }

    /// The one-time upload: the public key, then one key per rotation of
    /// `keys`, fhe.rs's or the client's own ([`HeParams::key_kinds`]).
    pub fn upload(&mut self, keys: &KeySet) -> Result<Vec<u8>, HeError> {
        let (full, hoisted) = self.ctx.params().key_kinds(keys);
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

    /// Round `index`'s query: each layer's integer input, encrypted block by
    /// block in that layer's packing (the client-aided protocol).
    pub fn query(&mut self, index: usize, round: &[(usize, &[i64])]) -> Result<Vec<u8>, HeError> {
        let mut layers = Vec::with_capacity(round.len());
        for &(layer, input) in round {
            let layout = self.layout(layer)?.clone();
            let cts = self.ctx.encrypt_layer(&layout, input)?;
            layers.push((layer, cts));
        }
        Ok(Self::write_query(index, &layers))
    }

    /// Round `index`'s query under the two-party protocol: the client's
    /// share of each layer's input, residues mod t, encrypted the same way.
    pub fn query_shares(
        &mut self,
        index: usize,
        round: &[(usize, &[u64])],
    ) -> Result<Vec<u8>, HeError> {
        let mut layers = Vec::with_capacity(round.len());
        for &(layer, share) in round {
            let layout = self.layout(layer)?.clone();
            layers.push((layer, self.ctx.encrypt_share(&layout, share)?));
        }
        Ok(Self::write_query(index, &layers))
    }

    fn layout(&self, layer: usize) -> Result<&LayerLayout, HeError> {
        self.layouts
            .get(layer)
            .ok_or_else(|| wire(format!("layer {layer} is not published")))
    }

    fn write_query(index: usize, layers: &[(usize, Vec<Ciphertext>)]) -> Vec<u8> {
        let mut w = Writer::default();
        w.count(index);
        w.count(layers.len());
        for (layer, cts) in layers {
            w.count(*layer);
            w.count(cts.len());
            let bytes: Vec<Vec<u8>> = cts.par_iter().map(|ct| ct.to_bytes()).collect();
            bytes.iter().for_each(|b| w.part(b));
        }
        w.0
    }

    /// Splits a reply into its layers' ciphertext bytes, checking each
    /// layer against its published packing.
    fn parts<'a>(&self, reply: &'a [u8]) -> Result<ReplyParts<'a>, HeError> {
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
            layers.push((layer, parts));
        }
        r.done()?;
        Ok(layers)
    }

    /// Decrypts a reply into each layer's output (`[c_out, out_h, out_w]`).
    pub fn read(&self, reply: &[u8]) -> Result<Vec<Answer>, HeError> {
        let par = &self.ctx.params().bfv;
        self.parts(reply)?
            .into_iter()
            .map(|(layer, parts)| {
                let encoding = self.layouts[layer].encoding();
                let blocks: Vec<Option<Vec<i64>>> = parts
                    .par_iter()
                    .map(|part| {
                        part.map(|bytes| {
                            self.ctx
                                .decrypt_as(encoding, &Ciphertext::from_bytes(bytes, par)?)
                        })
                        .transpose()
                    })
                    .collect::<Result<_, HeError>>()?;
                Ok(Answer {
                    layer,
                    output: self.layouts[layer].read_output(&blocks),
                })
            })
            .collect()
    }

    /// The noise budget each returned ciphertext of `reply` has left, in
    /// bits (a diagnostic with the secret key, not part of the protocol).
    pub fn reply_budgets(&self, reply: &[u8]) -> Result<Vec<i64>, HeError> {
        let par = &self.ctx.params().bfv;
        self.parts(reply)?
            .into_iter()
            .flat_map(|(_, parts)| parts.into_iter().flatten())
            .map(|bytes| self.ctx.noise_budget(&Ciphertext::from_bytes(bytes, par)?))
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
    layout: LayerLayout,
    plan: Plan,
    reply: ReplyShape,
}

/// The party with the model.
pub struct Server {
    params: HeParams,
    pk: PublicKey,
    layers: Vec<ServerLayer>,
    /// The layers of each round, in the order a session takes them.
    rounds: Vec<Vec<usize>>,
    /// Reply with every output block, an encryption of zero where the
    /// model computes none, so the reply's shape says nothing about which
    /// weights are zero (always, under the two-party protocol).
    every_block: bool,
    protocol: Protocol,
}

/// What the server did for one round: per layer, its executed operations.
pub type Executed = Vec<(usize, LayerCost)>;

/// The server's answer to one round.
pub struct Reply {
    pub bytes: Vec<u8>,
    pub executed: Executed,
    /// Under the two-party protocol, the server's share of each layer's
    /// output (`[c_out, out_h, out_w]` residues mod t), which it keeps;
    /// empty under client-aided.
    pub shares: Vec<Vec<u64>>,
}

/// One inference's state on the server: the round it answers next.
pub struct Session<'s> {
    server: &'s Server,
    next: usize,
}

impl Session<'_> {
    /// Answers the next round's query, and only it, under the client-aided
    /// protocol: a query for another round (replayed, skipped or past the
    /// last), for other layers, or malformed is an error naming the round,
    /// and the session still expects the same round.
    pub fn answer(&mut self, query: &[u8]) -> Result<(Vec<u8>, Executed), HeError> {
        let reply = self.next_round(query, None)?;
        Ok((reply.bytes, reply.executed))
    }

    /// Answers the next round's query under the two-party protocol, the
    /// server holding `own`, its share of each of the round's layers'
    /// inputs (residues mod t), as [`Session::answer`] does otherwise.
    pub fn answer_shares(&mut self, query: &[u8], own: &[&[u64]]) -> Result<Reply, HeError> {
        self.next_round(query, Some(own))
    }

    fn next_round(&mut self, query: &[u8], own: Option<&[&[u64]]>) -> Result<Reply, HeError> {
        let server = self.server;
        let rounds = server.rounds.len();
        if self.next == rounds {
            let why = format!("the session has answered all {rounds} rounds");
            return Err(server.refused(why));
        }
        match (server.protocol, own.is_some()) {
            (Protocol::TwoParty, false) => {
                return Err(wire(
                    "this server runs the two-party protocol: answer with its input shares",
                ));
            }
            (Protocol::ClientAided, true) => {
                return Err(wire(
                    "this server runs the client-aided protocol: it holds no shares",
                ));
            }
            _ => {}
        }
        let reply = server.answer(query, self.next, own)?;
        self.next += 1;
        Ok(reply)
    }
}

impl Server {
    /// Rebuilds the client's keys from `upload` and plans every layer
    /// (`layout`, integer weights, reply shape), in order, multiplying the
    /// masks `work` asks for; `rounds` lists the layers of each round. With
    /// `every_block` (implied by the two-party `protocol`) a block no
    /// weight feeds is returned as an encryption of zero rather than left
    /// out. A layer whose rotations the upload lacks is an error naming it.
    pub fn new(
        params: HeParams,
        upload: &[u8],
        layers: Vec<(LayerLayout, Vec<i64>, ReplyShape)>,
        rounds: Vec<Vec<usize>>,
        every_block: bool,
        work: Work,
        protocol: Protocol,
    ) -> Result<Server, HeError> {
        if rounds.is_empty() {
            return Err(wire("a server needs at least one round"));
        }
        if let Some(&bad) = rounds.iter().flatten().find(|&&l| l >= layers.len()) {
            return Err(wire(format!(
                "a round names layer {bad}, the server holds {}",
                layers.len()
            )));
        }
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
                let key = HoistedKey::from_bytes(bytes, &params.key_basis)?;
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
                    plan: Plan::new(&mut keys, layout.clone(), &weights, work)?,
                    layout,
                    reply,
                })
            })
            .collect::<Result<_, HeError>>()?;
        Ok(Server {
            params,
            pk,
            layers,
            rounds,
            every_block: every_block || protocol == Protocol::TwoParty,
            protocol,
        })
    }

    /// A query the session does not take now, and why.
    fn refused(&self, why: String) -> HeError {
        HeError::Round {
            why,
            last: self.rounds.len() - 1,
        }
    }

    /// A fresh session for one inference, expecting round 0. Its state is
    /// the next round; dropping it (a client that stops early) frees it and
    /// touches nothing else.
    /// The rounds of every session.
    pub fn rounds(&self) -> usize {
        self.rounds.len()
    }

    pub fn session(&self) -> Session<'_> {
        Session {
            server: self,
            next: 0,
        }
    }

    /// Bytes of the encoded weights the server keeps in memory: each mask
    /// is a plaintext of N values mod t and its NTT form over every
    /// ciphertext prime, 8 bytes a value (counted from the plans, not
    /// measured by an allocator).
    pub fn encoded_bytes(&self) -> usize {
        let per = self.params.poly_degree * (self.params.moduli_bits().len() + 1) * 8;
        self.layers.iter().map(|l| l.plan.plaintexts() * per).sum()
    }

    /// Reads a query for round `index` that must hold exactly `expected`'s
    /// layers, in order, each with its packing's input blocks.
    fn parse<'q>(
        &self,
        query: &'q [u8],
        index: usize,
        expected: &[usize],
    ) -> Result<Vec<(usize, &ServerLayer, Vec<&'q [u8]>)>, HeError> {
        let at = |why: String| wire(format!("round {index}: {why}"));
        let mut r = Reader::new(query);
        let round = r.count()?;
        if round != index {
            return Err(self.refused(format!(
                "a query for round {round} where round {index} is next"
            )));
        }
        let count = r.count()?;
        let mut round = Vec::with_capacity(count);
        for _ in 0..count {
            let layer = r.count()?;
            let blocks = r.count()?;
            if expected.get(round.len()) != Some(&layer) {
                return Err(self.refused(format!(
                    "round {index} holds layers {expected:?}, the query names layer {layer}"
                )));
            }
            let held = &self.layers[layer];
            if blocks != held.plan.n_in() {
                return Err(at(format!(
                    "layer {layer}: {blocks} input blocks, the packing has {}",
                    held.plan.n_in()
                )));
            }
            let mut parts = Vec::with_capacity(blocks);
            for _ in 0..blocks {
                parts.push(r.part().map_err(|e| at(e.to_string()))?);
            }
            round.push((layer, held, parts));
        }
        r.done().map_err(|e| at(e.to_string()))?;
        if round.len() != expected.len() {
            return Err(self.refused(format!(
                "round {index} holds layers {expected:?}, the query has {} of them",
                round.len()
            )));
        }
        Ok(round)
    }

    /// Answers round `index`'s query: every layer of the round evaluated on
    /// its ciphertexts (after adding the server's input share `own`, if
    /// two-party), its outputs masked (if two-party) and sealed. Returns
    /// the reply, the operations executed per layer and the server's
    /// output shares.
    fn answer(&self, query: &[u8], index: usize, own: Option<&[&[u64]]>) -> Result<Reply, HeError> {
        let par = &self.params.bfv;
        let round = self.parse(query, index, &self.rounds[index])?;
        if let Some(own) = own.filter(|own| own.len() != round.len()) {
            return Err(wire(format!(
                "round {index}: {} server shares for {} layers",
                own.len(),
                round.len()
            )));
        }
        let mut w = Writer::default();
        let mut executed = Vec::with_capacity(round.len());
        let mut shares = Vec::new();
        w.count(round.len());
        for (k, (layer, held, parts)) in round.into_iter().enumerate() {
            let mut inputs: Vec<Ciphertext> = parts
                .par_iter()
                .map(|b| {
                    let ct = Ciphertext::from_bytes(b, par)?;
                    if !is_fresh(&ct, par) {
                        return Err(wire(format!(
                            "round {index}, layer {layer}: an input that is not a two-part ciphertext at the top level in NTT form"
                        )));
                    }
                    Ok(ct)
                })
                .collect::<Result<_, HeError>>()?;
            if let Some(own) = own {
                inputs = self.add_share(&held.layout, inputs, own[k])?;
            }
            let (outputs, cost) = held.plan.evaluate(&inputs)?;
            let outputs = match own {
                Some(_) => {
                    let (masked, share) = self.mask(&held.layout, outputs)?;
                    shares.push(share);
                    masked
                }
                None => outputs,
            };
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
        Ok(Reply {
            bytes: w.0,
            executed,
            shares,
        })
    }

    /// The client's encrypted input share plus the server's own, packed
    /// the same way: ciphertexts of the layer's input.
    fn add_share(
        &self,
        layout: &LayerLayout,
        inputs: Vec<Ciphertext>,
        own: &[u64],
    ) -> Result<Vec<Ciphertext>, HeError> {
        let t = self.params.plaintext_modulus;
        let share = crate::params::check_share(layout.shape(), own, t)?;
        let blocks = layout.pack_input(&share);
        inputs
            .into_par_iter()
            .zip(blocks)
            .map(|(ct, block)| Ok(&ct + &self.params.encode_in(layout.encoding(), &block)?))
            .collect()
    }

    /// Every output block plus a fresh uniform mask mod t in each slot (an
    /// encryption of the mask where the model computes no block), and the
    /// server's share of the layer's output: minus the masks, read as the
    /// client reads its blocks.
    fn mask(
        &self,
        layout: &LayerLayout,
        outputs: Vec<Option<Ciphertext>>,
    ) -> Result<(Vec<Option<Ciphertext>>, Vec<u64>), HeError> {
        use rand::Rng as _;
        let t = self.params.plaintext_modulus;
        let n = self.params.poly_degree;
        let masks: Vec<Vec<i64>> = {
            let mut rng = rand::rng();
            (0..outputs.len())
                .map(|_| (0..n).map(|_| rng.random_range(0..t) as i64).collect())
                .collect()
        };
        let masked = outputs
            .into_par_iter()
            .zip(&masks)
            .map(|(ct, r)| {
                let r = self.params.encode_in(layout.encoding(), r)?;
                Ok(Some(match ct {
                    Some(ct) => &ct + &r,
                    None => self.pk.try_encrypt(&r, &mut rand::rng())?,
                }))
            })
            .collect::<Result<Vec<_>, HeError>>()?;
        let read = layout.read_output(&masks.into_iter().map(Some).collect::<Vec<_>>());
        let modulus = explore_private::Modulus::new(t)?;
        let share = read.iter().map(|&r| modulus.neg(r as u64)).collect();
        Ok((masked, share))
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
        rng: &mut impl rand::CryptoRng,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::HeParamsBuilder;
    use crate::runner::tests::{random, shape};
    use explore_he_model::arch::ConvShape;
    use explore_he_model::cost::conv_cost;
    use explore_he_model::layout::{LayerSchedule, PackingLayout};
    use explore_he_model::noise::Flooding;
    use explore_quant::conv_int;

    /// The mean noise budget (bits) of the replies `weights` gives to `x`
    /// over `n` queries, each reply checked against the integer conv.
    fn reply_budget(
        client: &mut Client,
        server: &Server,
        x: &[i64],
        weights: &[i64],
        n: usize,
    ) -> Vec<f64> {
        let s = server.layers[0].plan.shape().clone();
        (0..n)
            .map(|_| {
                let query = client.query(0, &[(0, x)]).unwrap();
                let (reply, _) = server.session().answer(&query).unwrap();
                assert_eq!(
                    client.read(&reply).unwrap()[0].output,
                    conv_int(&s, x, weights)
                );
                let budgets = client.reply_budgets(&reply).unwrap();
                budgets.iter().sum::<i64>() as f64 / budgets.len() as f64
            })
            .collect()
    }

    /// Two servers whose models compute the same output on the client's
    /// input (one uses only the centre taps of input channel 0; the other
    /// also every tap of channel 1, where the input is zero, so it rotates
    /// its input): without flooding the noise left in their replies at the
    /// full modulus tells them apart by tens of bits; flooded, the mean
    /// budget over repeated replies agrees within a bit. (Switched down to
    /// two primes, the switch's rounding covers both here: that is why the
    /// replies are compared before it.)
    #[test]
    fn flooded_replies_of_two_models_with_equal_outputs_look_alike() {
        let s = shape(2, 2, 4, 3, 1);
        let sched = LayerSchedule {
            phases: false,
            replicate: true,
            fold: false,
            baby_step: 1,
            rows: false,
            hoist: false,
        };
        let layout = PackingLayout::new(&s, 8192, sched).unwrap();
        let mut small = vec![0i64; s.weight_len()];
        let mut large = random(s.weight_len(), 8, 1);
        for o in 0..2 {
            small[o * 18 + 4] = 5;
            large[o * 18..o * 18 + 9].copy_from_slice(&small[o * 18..o * 18 + 9]);
        }
        let mut x = random(2 * 16, 8, 2);
        x[16..].fill(0);
        assert_eq!(conv_int(&s, &x, &small), conv_int(&s, &x, &large));
        // What the server publishes is the larger model's: its keys, and the
        // reply shape from its depth.
        let public = conv_cost(&layout, &large);
        assert!(conv_cost(&layout, &small).cost.rot_input == 0 && public.cost.rot_input > 0);
        for flooding in [Flooding::OFF, Flooding::DEFAULT] {
            let params = HeParamsBuilder::new(8192, std::slice::from_ref(&s))
                .fewest_primes(public.depth, 10.0, flooding)
                .build()
                .unwrap();
            let (t, moduli) = (params.plaintext_bits, params.moduli_bits().to_vec());
            let reply = ReplyShape {
                flood_bits: public.depth.flood_bits(8192, t, &moduli, None, flooding),
                primes: moduli.len(),
            };
            let mut client = Client::new(params.clone(), vec![LayerLayout::Slots(layout.clone())]);
            let upload = client.upload(&public.key_set).unwrap();
            let server = |w: &[i64]| {
                Server::new(
                    params.clone(),
                    &upload,
                    vec![(LayerLayout::Slots(layout.clone()), w.to_vec(), reply)],
                    vec![vec![0]],
                    true,
                    Work::Pruned,
                    Protocol::ClientAided,
                )
                .unwrap()
            };
            let a = reply_budget(&mut client, &server(&small), &x, &small, 6);
            let b = reply_budget(&mut client, &server(&large), &x, &large, 6);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let gap = (mean(&a) - mean(&b)).abs();
            eprintln!(
                "flooding {}: budgets left {:.1} vs {:.1} bits (gap {gap:.1})",
                flooding.0,
                mean(&a),
                mean(&b)
            );
            if flooding.is_on() {
                assert!(gap <= 1.0, "flooded: {a:?} vs {b:?}");
            } else {
                assert!(gap >= 10.0, "unflooded: {a:?} vs {b:?}");
            }
        }
    }

    /// The weights of a `k x k` convolution with zero padding, recovered
    /// from one input and its exact outputs alone: per output channel, the
    /// least-squares solution of one equation per output pixel (the input
    /// patch times the unknown kernel equals the output), rounded.
    fn solve_for_weights(s: &ConvShape, x: &[i64], y: &[i64]) -> Vec<i64> {
        let (k, pad) = (s.k, s.padding() as isize);
        let unknowns = s.c_in * k * k;
        let (oh, ow) = (s.out_h(), s.out_w());
        let patch = |oy: usize, ox: usize| -> Vec<f64> {
            let mut row = Vec::with_capacity(unknowns);
            for c in 0..s.c_in {
                for l in 0..k {
                    for l2 in 0..k {
                        let yy = (oy * s.stride) as isize + l as isize - pad;
                        let xx = (ox * s.stride) as isize + l2 as isize - pad;
                        let inside =
                            (0..s.h as isize).contains(&yy) && (0..s.w as isize).contains(&xx);
                        row.push(if inside {
                            x[(c * s.h + yy as usize) * s.w + xx as usize] as f64
                        } else {
                            0.0
                        });
                    }
                }
            }
            row
        };
        let rows: Vec<Vec<f64>> = (0..oh * ow).map(|p| patch(p / ow, p % ow)).collect();
        let mut weights = Vec::with_capacity(s.weight_len());
        for m in 0..s.c_out {
            // Normal equations A^T A w = A^T y, by Gaussian elimination.
            let mut a = vec![vec![0.0; unknowns + 1]; unknowns];
            for (p, row) in rows.iter().enumerate() {
                let target = y[m * oh * ow + p] as f64;
                for i in 0..unknowns {
                    for j in 0..unknowns {
                        a[i][j] += row[i] * row[j];
                    }
                    a[i][unknowns] += row[i] * target;
                }
            }
            for col in 0..unknowns {
                let pivot = (col..unknowns)
                    .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                    .unwrap();
                a.swap(col, pivot);
                for r in 0..unknowns {
                    if r != col {
                        let f = a[r][col] / a[col][col];
                        for c in col..=unknowns {
                            a[r][c] -= f * a[col][c];
                        }
                    }
                }
            }
            weights.extend((0..unknowns).map(|i| (a[i][unknowns] / a[i][i]).round() as i64));
        }
        weights
    }

    /// What the README's threat model says of today's protocol: a client
    /// that decrypts a layer's exact outputs recovers its weights from one
    /// inference. The stem of ResNet-20 on CIFAR (3 channels in, 16 out,
    /// 32 x 32, 27 unknowns per output channel and 1,024 equations): the
    /// client's own input and one reply give every weight exactly, zeros
    /// included. Flooding would not stop it: it hides the server's noise,
    /// and the decrypted outputs stay exact.
    #[test]
    fn one_inference_gives_the_client_the_first_convolutions_weights() {
        let s = shape(3, 16, 32, 3, 1);
        let layout = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV).unwrap();
        let mut w = random(s.weight_len(), 8, 21);
        w.iter_mut().step_by(5).for_each(|v| *v = 0);
        let params = HeParamsBuilder::new(8192, std::slice::from_ref(&s))
            .build()
            .unwrap();
        let mut client = Client::new(params.clone(), vec![LayerLayout::Slots(layout.clone())]);
        let upload = client.upload(&conv_cost(&layout, &w).key_set).unwrap();
        let reply = ReplyShape {
            flood_bits: None,
            primes: params.moduli_bits().len(),
        };
        let server = Server::new(
            params,
            &upload,
            vec![(LayerLayout::Slots(layout), w.clone(), reply)],
            vec![vec![0]],
            false,
            Work::Pruned,
            Protocol::ClientAided,
        )
        .unwrap();
        let x = random(s.c_in * s.h * s.w, 8, 22);
        let query = client.query(0, &[(0, &x)]).unwrap();
        let (answer, _) = server.session().answer(&query).unwrap();
        let y = client.read(&answer).unwrap().remove(0).output;
        assert_eq!(solve_for_weights(&s, &x, &y), w);
    }

    /// A two-party server for one layer under `layout` with weights `w`,
    /// and its client.
    fn two_party(layout: LayerLayout, w: &[i64], flood_bits: Option<u32>) -> (Client, Server) {
        let s = layout.shape().clone();
        let params = HeParamsBuilder::new(8192, std::slice::from_ref(&s))
            .build()
            .unwrap();
        let mut client = Client::new(params.clone(), vec![layout.clone()]);
        let keys = match &layout {
            LayerLayout::Slots(l) => conv_cost(l, w).key_set,
            LayerLayout::Coefficients(_) => KeySet::default(),
        };
        let upload = client.upload(&keys).unwrap();
        let reply = ReplyShape {
            flood_bits,
            primes: params.moduli_bits().len(),
        };
        let server = Server::new(
            params,
            &upload,
            vec![(layout, w.to_vec(), reply)],
            vec![vec![0]],
            false,
            Work::Pruned,
            Protocol::TwoParty,
        )
        .unwrap();
        (client, server)
    }

    /// Additive shares mod t of `x`: the first uniform.
    fn share(x: &[i64], t: u64, seed: u64) -> (Vec<u64>, Vec<u64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a: Vec<u64> = x.iter().map(|_| rng.random_range(0..t)).collect();
        let b = x
            .iter()
            .zip(&a)
            .map(|(&v, &a)| (v - a as i64).rem_euclid(t as i64) as u64)
            .collect();
        (a, b)
    }

    /// Under the two-party protocol, on shares of the input, the client's
    /// decrypted share and the server's kept share add up to the exact
    /// convolution mod t, under slot packings (strided with phases, and a
    /// pruned layer whose zero blocks become encryptions of the mask) and
    /// under coefficient encoding; and neither share alone is the output.
    #[test]
    fn masked_replies_are_shares_of_the_exact_convolution() {
        let strided = shape(4, 8, 8, 3, 2);
        let plain = shape(3, 4, 6, 3, 1);
        let mut pruned = random(plain.weight_len(), 8, 31);
        // Output channels 2 and 3 computed from nothing.
        pruned[2 * 27..].iter_mut().for_each(|v| *v = 0);
        let cases = [
            (
                LayerLayout::Slots(
                    PackingLayout::new(&strided, 8192, LayerSchedule::GAZELLE_CONV).unwrap(),
                ),
                random(strided.weight_len(), 8, 32),
            ),
            (
                LayerLayout::Slots(
                    PackingLayout::new(&plain, 8192, LayerSchedule::GAZELLE_CONV).unwrap(),
                ),
                pruned,
            ),
            (
                LayerLayout::Coefficients(
                    explore_he_model::coefficient::CoefficientLayout::new(&plain, 8192).unwrap(),
                ),
                random(plain.weight_len(), 8, 33),
            ),
        ];
        for (i, (layout, w)) in cases.into_iter().enumerate() {
            let s = layout.shape().clone();
            let (mut client, server) = two_party(layout, &w, Some(40));
            let t = server.params.plaintext_modulus;
            let x = random(s.c_in * s.h * s.w, 8, 40 + i as u64);
            let (mine, theirs) = share(&x, t, 50 + i as u64);
            let query = client.query_shares(0, &[(0, &mine)]).unwrap();
            let reply = server.session().answer_shares(&query, &[&theirs]).unwrap();
            let got = client.read(&reply.bytes).unwrap().remove(0).output;
            let want = conv_int(&s, &x, &w);
            let sum: Vec<i64> = got
                .iter()
                .zip(&reply.shares[0])
                .map(|(&c, &r)| {
                    let v = (c.rem_euclid(t as i64) as u64 + r) % t;
                    if v > t / 2 {
                        v as i64 - t as i64
                    } else {
                        v as i64
                    }
                })
                .collect();
            assert_eq!(sum, want, "case {i}");
            let matches = got.iter().zip(&want).filter(|(a, b)| a == b).count();
            assert!(
                matches * 100 < want.len(),
                "case {i}: {matches} outputs in the clear"
            );
            assert_eq!(reply.executed.len(), 1);
        }
    }

    /// The attack of the client-aided test above, under the two-party
    /// protocol: the client's own input share and what it decrypts give
    /// weights that are not the model's.
    #[test]
    fn under_the_two_party_protocol_the_same_attack_fails() {
        let s = shape(3, 16, 32, 3, 1);
        let layout = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV).unwrap();
        let mut w = random(s.weight_len(), 8, 21);
        w.iter_mut().step_by(5).for_each(|v| *v = 0);
        let (mut client, server) = two_party(LayerLayout::Slots(layout), &w, None);
        let t = server.params.plaintext_modulus;
        let x = random(s.c_in * s.h * s.w, 8, 22);
        // The client's best case: its share is the whole input (the server's
        // is zero), as for the network's first layer.
        let mine: Vec<u64> = x.iter().map(|&v| v.rem_euclid(t as i64) as u64).collect();
        let query = client.query_shares(0, &[(0, &mine)]).unwrap();
        let zero = vec![0u64; x.len()];
        let reply = server.session().answer_shares(&query, &[&zero]).unwrap();
        let y = client.read(&reply.bytes).unwrap().remove(0).output;
        let guess = solve_for_weights(&s, &x, &y);
        let right = guess.iter().zip(&w).filter(|(a, b)| a == b).count();
        assert!(
            right * 10 < w.len(),
            "{right} of {} weights recovered",
            w.len()
        );
    }

    /// A two-party server refuses a query without its shares, and a
    /// client-aided one a query with them.
    #[test]
    fn each_protocol_refuses_the_others_answer() {
        let s = shape(2, 2, 4, 3, 1);
        let layout = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV).unwrap();
        let w = random(s.weight_len(), 8, 3);
        let (mut client, server) = two_party(LayerLayout::Slots(layout), &w, None);
        let x = random(32, 8, 4);
        let query = client.query(0, &[(0, &x)]).unwrap();
        let e = server.session().answer(&query).err().unwrap();
        assert!(e.to_string().contains("two-party"), "{e}");
        let e = server.session().answer_shares(&query, &[]).err().unwrap();
        assert!(e.to_string().contains("server shares"), "{e}");
    }

    /// A session answers each round once, in order, with exactly its
    /// layers; a malformed, replayed, skipped or misaddressed query is an
    /// error naming the round, after which the session still expects the
    /// same round; a new session starts again at round 0.
    #[test]
    fn a_session_answers_each_round_once_in_order() {
        let s = shape(2, 2, 4, 3, 1);
        let layout = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV).unwrap();
        let w = random(s.weight_len(), 8, 3);
        let params = HeParamsBuilder::new(8192, std::slice::from_ref(&s))
            .build()
            .unwrap();
        let slots = LayerLayout::Slots(layout.clone());
        let mut client = Client::new(params.clone(), vec![slots.clone(), slots.clone()]);
        let keys = conv_cost(&layout, &w).key_set;
        let upload = client.upload(&keys).unwrap();
        let reply = ReplyShape {
            flood_bits: None,
            primes: params.moduli_bits().len(),
        };
        let layer = (slots.clone(), w.clone(), reply);
        let server = Server::new(
            params.clone(),
            &upload,
            vec![layer.clone(), layer.clone()],
            vec![vec![0], vec![1]],
            false,
            Work::Pruned,
            Protocol::ClientAided,
        )
        .unwrap();
        let x = random(32, 8, 4);
        let first = client.query(0, &[(0, &x)]).unwrap();
        let second = client.query(1, &[(1, &x)]).unwrap();
        let mut session = server.session();
        let refused = |e: HeError, says: &str| {
            let text = e.to_string();
            assert!(text.contains(says), "{text}");
        };
        let e = session.answer(&first[..first.len() - 5]).unwrap_err();
        assert!(matches!(e, HeError::Wire(_)), "{e}");
        refused(e, "round 0");
        // A ciphertext that decodes but is not what a layer takes (here one
        // prime short) is refused before any arithmetic.
        let mut low = client.ctx.encrypt_layer(&slots, &x).unwrap();
        low[0].switch_to_level(1).unwrap();
        let e = session
            .answer(&Client::write_query(0, &[(0, low)]))
            .unwrap_err();
        assert!(matches!(e, HeError::Wire(_)), "{e}");
        refused(e, "top level");
        refused(
            session.answer(&second).unwrap_err(),
            "round 1 where round 0 is next",
        );
        let misaddressed = client.query(0, &[(1, &x)]).unwrap();
        refused(session.answer(&misaddressed).unwrap_err(), "names layer 1");
        let (reply, _) = session.answer(&first).unwrap();
        assert_eq!(client.read(&reply).unwrap()[0].output, conv_int(&s, &x, &w));
        refused(
            session.answer(&first).unwrap_err(),
            "round 0 where round 1 is next",
        );
        session.answer(&second).unwrap();
        refused(
            session.answer(&second).unwrap_err(),
            "answered all 2 rounds",
        );
        // A session dropped early frees its state and nothing else.
        let early = server.session();
        drop(early);
        server.session().answer(&first).unwrap();
        // A round that names a layer the server does not hold, and an
        // upload without the layer's keys, are refused when building.
        let e = Server::new(
            params.clone(),
            &upload,
            vec![layer.clone()],
            vec![vec![1]],
            false,
            Work::Pruned,
            Protocol::ClientAided,
        )
        .err()
        .unwrap();
        assert!(matches!(e, HeError::Wire(_)), "{e}");
        let bare = client.upload(&KeySet::default()).unwrap();
        let e = Server::new(
            params,
            &bare,
            vec![layer],
            vec![vec![0]],
            false,
            Work::Pruned,
            Protocol::ClientAided,
        )
        .err()
        .unwrap();
        assert!(matches!(e, HeError::MissingKey { .. }), "{e}");
    }
}
