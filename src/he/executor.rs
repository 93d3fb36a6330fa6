//! The encrypted executor: keys, per-layer plans (weights encoded once as
//! plaintext masks, Galois keys only for the steps the layer uses), and an
//! evaluation that follows [`PackingLayout`] on real BFV ciphertexts, counts
//! every operation it performs, and checks the decryption against the exact
//! integer convolution.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use fhe::bfv::{
    BfvParameters, Ciphertext, Encoding, EvaluationKey, EvaluationKeyBuilder, Plaintext, PublicKey,
    SecretKey,
};
use fhe_traits::{FheDecoder, FheDecrypter, FheEncoder, FheEncrypter};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use super::HeError;
use super::cost::{LayerCost, PrimitiveCosts};
use super::layout::PackingLayout;
use super::params::{HeParams, max_magnitude};
use crate::arch::ConvShape;
use crate::quant::{QuantizedNet, conv_int};

/// Parameters, keys and the randomness for encryption and key generation.
/// Galois keys are made once per rotation step, as a client would send them
/// once for a whole network, and shared by every layer plan that uses the step.
pub struct HeContext {
    params: HeParams,
    sk: SecretKey,
    pk: PublicKey,
    rng: StdRng,
    galois: BTreeMap<usize, Arc<EvaluationKey>>,
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
        }
    }

    pub fn params(&self) -> &HeParams {
        &self.params
    }

    fn bfv(&self) -> &Arc<BfvParameters> {
        &self.params.bfv
    }

    /// Encodes one batching row (row 1 stays zero).
    pub fn encode_row(&self, row: &[i64]) -> Result<Plaintext, HeError> {
        let mut slots = row.to_vec();
        slots.resize(self.params.poly_degree, 0);
        Ok(Plaintext::try_encode(&slots, Encoding::simd(), self.bfv())?)
    }

    /// Encrypts one batching row with the public key.
    pub fn encrypt_row(&mut self, row: &[i64]) -> Result<Ciphertext, HeError> {
        let pt = self.encode_row(row)?;
        Ok(self.pk.try_encrypt(&pt, &mut self.rng)?)
    }

    fn decrypt(&self, ct: &Ciphertext) -> Result<Vec<i64>, HeError> {
        let pt = self.sk.try_decrypt(ct)?;
        let mut v = Vec::<i64>::try_decode(&pt, Encoding::simd())?;
        v.truncate(self.params.slots());
        Ok(v)
    }

    /// Galois keys for exactly these left-rotation steps, one key per step;
    /// steps not seen before are generated (in parallel, each from its own
    /// seed drawn from the context's generator).
    pub fn rotation_keys(
        &mut self,
        steps: &[usize],
    ) -> Result<BTreeMap<usize, Arc<EvaluationKey>>, HeError> {
        let missing: Vec<(usize, u64)> = steps
            .iter()
            .filter(|s| !self.galois.contains_key(s))
            .map(|&s| (s, self.rng.random()))
            .collect();
        let sk = &self.sk;
        let made = missing
            .into_par_iter()
            .map(|(step, seed)| {
                let mut b = EvaluationKeyBuilder::new(sk)?;
                b.enable_column_rotation(step)?;
                Ok((step, Arc::new(b.build(&mut StdRng::seed_from_u64(seed))?)))
            })
            .collect::<Result<Vec<_>, HeError>>()?;
        self.galois.extend(made);
        Ok(steps
            .iter()
            .map(|s| (*s, Arc::clone(&self.galois[s])))
            .collect())
    }

    /// Remaining noise budget of `ct` in bits: log2(q) - log2(t) - 1 minus the
    /// measured noise; decryption is exact while it stays positive.
    fn noise_budget(&self, ct: &Ciphertext) -> Result<i64, HeError> {
        // SAFETY: `measure_noise` is only variable-time, which leaks nothing
        // here: this is a benchmark's own secret key.
        let noise = unsafe { self.sk.measure_noise(ct)? };
        Ok(
            self.params.modulus_bits() as i64
                - self.params.plaintext_bits as i64
                - 1
                - noise as i64,
        )
    }

    /// Times one rotation, one ct x pt multiply and one ct + ct addition
    /// (minimum over `repeats`) on random data at this context's N.
    pub fn measure_primitives(&mut self, repeats: usize) -> Result<PrimitiveCosts, HeError> {
        let slots = self.params.slots();
        let row: Vec<i64> = (0..slots as i64).map(|i| i % 7 - 3).collect();
        let ct = self.encrypt_row(&row)?;
        let pt = self.encode_row(&row)?;
        let ek = Arc::clone(&self.rotation_keys(&[1])?[&1]);
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
            rot_ms: time(&|| Ok(ek.rotates_columns_by(&ct, 1)?))?,
            pmul_ms: time(&|| Ok(&ct * &pt))?,
            add_ms: time(&|| Ok(&ct + &ct))?,
        })
    }
}

/// One live mask: input block `a` at kernel position `p`, its plaintext.
struct Product {
    a: usize,
    p: usize,
    pt: Plaintext,
}

/// The products of one channel diagonal of one output block.
struct Diagonal {
    d: usize,
    products: Vec<Product>,
}

/// A conv layer ready to run: masks encoded, keys generated.
pub struct LayerPlan {
    layout: PackingLayout,
    /// The layer at stride 1: what the ciphertexts compute.
    shape: ConvShape,
    weights: Vec<i64>,
    /// Output block b's live diagonals.
    blocks: Vec<Vec<Diagonal>>,
    /// (a, p) pairs whose rotated input some product reads.
    rotations: Vec<(usize, usize)>,
    /// The Galois keys of exactly the steps this plan rotates by.
    keys: BTreeMap<usize, Arc<EvaluationKey>>,
}

/// One layer's evaluation: the executor's own operation counts (keys = the
/// Galois keys generated), the wall time of the encrypted evaluation only
/// (positional rotations, products, diagonal rotations and sums, with rayon
/// over output blocks; not key generation, encoding, encryption or
/// decryption), minimum over repeats.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRun {
    pub layer: String,
    pub executed: LayerCost,
    pub measured_ms: f64,
    /// Set once every output block decrypted to the integer reference (a
    /// mismatch is an error instead).
    pub verified: bool,
    /// Smallest remaining noise budget over the output ciphertexts, in bits.
    pub noise_budget_bits: i64,
}

impl LayerPlan {
    /// Encodes the nonzero masks of `weights` (`[c_out, c_in, k, k]` integers
    /// within the context's weight bits) and generates the layer's keys.
    pub fn new(
        ctx: &mut HeContext,
        shape: &ConvShape,
        weights: &[i64],
    ) -> Result<LayerPlan, HeError> {
        let layout = PackingLayout::new(shape, ctx.params.slots())?;
        if weights.len() != shape.weight_len() {
            return Err(HeError::WeightLength {
                layer: shape.name.clone(),
                expected: shape.weight_len(),
                got: weights.len(),
            });
        }
        check_range(&shape.name, weights, ctx.params.weight_bits)?;
        let entries: Vec<(usize, usize, usize, usize)> = (0..layout.n_out())
            .flat_map(|b| (0..layout.cn()).map(move |d| (b, d)))
            .flat_map(|(b, d)| (0..layout.n_in()).map(move |a| (a, b, d)))
            .flat_map(|(a, b, d)| (0..layout.positions()).map(move |p| (a, b, d, p)))
            .collect();
        let ctx_ref = &*ctx;
        // The executor skips by the values it encodes, not the cost model.
        let encoded: Vec<Option<((usize, usize, usize, usize), Plaintext)>> = entries
            .into_par_iter()
            .map(|e| {
                let mask = layout.mask(weights, e);
                if mask.iter().all(|&v| v == 0) {
                    Ok(None)
                } else {
                    Ok(Some((e, ctx_ref.encode_row(&mask)?)))
                }
            })
            .collect::<Result<_, HeError>>()?;
        let mut blocks: Vec<Vec<Diagonal>> = (0..layout.n_out()).map(|_| Vec::new()).collect();
        let mut used = vec![false; layout.n_in() * layout.positions()];
        for ((a, b, d, p), pt) in encoded.into_iter().flatten() {
            used[a * layout.positions() + p] = true;
            let diagonals = &mut blocks[b];
            if diagonals.last().is_none_or(|x| x.d != d) {
                diagonals.push(Diagonal {
                    d,
                    products: Vec::new(),
                });
            }
            diagonals
                .last_mut()
                .expect("pushed")
                .products
                .push(Product { a, p, pt });
        }
        let rotations: Vec<(usize, usize)> = (0..used.len())
            .filter(|&ap| used[ap] && layout.positional_step(ap % layout.positions()).is_some())
            .map(|ap| (ap / layout.positions(), ap % layout.positions()))
            .collect();
        let mut steps: Vec<usize> = rotations
            .iter()
            .filter_map(|&(_, p)| layout.positional_step(p))
            .chain(
                blocks
                    .iter()
                    .flatten()
                    .filter_map(|g| layout.diagonal_step(g.d)),
            )
            .collect();
        steps.sort_unstable();
        steps.dedup();
        let keys = ctx.rotation_keys(&steps)?;
        Ok(LayerPlan {
            layout,
            shape: ConvShape {
                stride: 1,
                ..shape.clone()
            },
            weights: weights.to_vec(),
            blocks,
            rotations,
            keys,
        })
    }

    pub fn layout(&self) -> &PackingLayout {
        &self.layout
    }

    /// Encrypts a `[c_in, h, w]` integer input, one ciphertext per block.
    pub fn encrypt_input(
        &self,
        ctx: &mut HeContext,
        input: &[i64],
    ) -> Result<Vec<Ciphertext>, HeError> {
        let expected = self.shape.c_in * self.shape.h * self.shape.w;
        if input.len() != expected {
            return Err(HeError::InputLength {
                layer: self.shape.name.clone(),
                expected,
                got: input.len(),
            });
        }
        check_range(&self.shape.name, input, ctx.params.activation_bits)?;
        (0..self.layout.n_in())
            .map(|a| ctx.encrypt_row(&self.layout.pack_input(input, a)))
            .collect()
    }

    fn rotate(&self, ct: &Ciphertext, step: usize) -> Result<Ciphertext, HeError> {
        let ek = self
            .keys
            .get(&step)
            .expect("keys exist for every step the plan uses");
        Ok(ek.rotates_columns_by(ct, step)?)
    }

    /// The encrypted layer: output block b, or None when every weight feeding
    /// it is zero (it decrypts to zeros without any work). Returns the
    /// operations performed.
    pub fn evaluate(
        &self,
        inputs: &[Ciphertext],
    ) -> Result<(Vec<Option<Ciphertext>>, LayerCost), HeError> {
        let l = &self.layout;
        let rotated: Vec<Ciphertext> = self
            .rotations
            .par_iter()
            .map(|&(a, p)| self.rotate(&inputs[a], l.positional_step(p).expect("non-centre")))
            .collect::<Result<_, _>>()?;
        let mut slot = vec![None; l.n_in() * l.positions()];
        for (i, &(a, p)) in self.rotations.iter().enumerate() {
            slot[a * l.positions() + p] = Some(i);
        }
        let source = |a: usize, p: usize| match slot[a * l.positions() + p] {
            Some(i) => &rotated[i],
            None => &inputs[a],
        };
        let outputs: Vec<(Option<Ciphertext>, LayerCost)> = self
            .blocks
            .par_iter()
            .map(|diagonals| {
                let mut c = LayerCost::default();
                let mut out: Option<Ciphertext> = None;
                for g in diagonals {
                    let mut t: Option<Ciphertext> = None;
                    for pr in &g.products {
                        let prod = source(pr.a, pr.p) * &pr.pt;
                        c.pmults += 1;
                        t = Some(match t {
                            None => prod,
                            Some(acc) => {
                                c.adds += 1;
                                acc + &prod
                            }
                        });
                    }
                    let mut t = t.expect("live diagonals hold products");
                    if let Some(step) = l.diagonal_step(g.d) {
                        t = self.rotate(&t, step)?;
                        c.rot_diagonal += 1;
                    }
                    out = Some(match out {
                        None => t,
                        Some(acc) => {
                            c.adds += 1;
                            acc + &t
                        }
                    });
                }
                Ok((out, c))
            })
            .collect::<Result<_, HeError>>()?;
        let mut total = LayerCost {
            rot_positional: self.rotations.len(),
            keys: self.keys.len(),
            ..LayerCost::default()
        };
        let cts = outputs
            .into_iter()
            .map(|(ct, c)| {
                total = total + c;
                ct
            })
            .collect();
        Ok((cts, total))
    }

    /// Decrypts `outputs` and compares every slot with the integer
    /// convolution of `input` (stride 1, zeros outside the channels).
    /// Returns the smallest noise budget left.
    pub fn verify(
        &self,
        ctx: &HeContext,
        input: &[i64],
        outputs: &[Option<Ciphertext>],
    ) -> Result<i64, HeError> {
        let reference = conv_int(&self.shape, input, &self.weights);
        let mut budget = i64::MAX;
        for (b, ct) in outputs.iter().enumerate() {
            let expected = self.layout.pack_output(&reference, b);
            let (got, block_budget) = match ct {
                Some(ct) => (ctx.decrypt(ct)?, ctx.noise_budget(ct)?),
                None => (vec![0; expected.len()], i64::MAX),
            };
            budget = budget.min(block_budget);
            if let Some(slot) = (0..expected.len()).find(|&s| expected[s] != got[s]) {
                return Err(HeError::Mismatch {
                    layer: self.shape.name.clone(),
                    block: b,
                    slot,
                    expected: expected[slot],
                    got: got[slot],
                    noise_budget_bits: block_budget,
                });
            }
        }
        Ok(budget)
    }

    /// Encrypts `input`, evaluates `repeats` times (each run verified), and
    /// reports the counts and the fastest evaluation.
    pub fn run(
        &self,
        ctx: &mut HeContext,
        input: &[i64],
        repeats: usize,
    ) -> Result<LayerRun, HeError> {
        let inputs = self.encrypt_input(ctx, input)?;
        let mut best = f64::INFINITY;
        let mut run = None;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            let (outputs, executed) = self.evaluate(&inputs)?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
            let noise_budget_bits = self.verify(ctx, input, &outputs)?;
            run = Some(LayerRun {
                layer: self.shape.name.clone(),
                executed,
                measured_ms: 0.0,
                verified: true,
                noise_budget_bits,
            });
        }
        let mut run = run.expect("at least one repeat");
        run.measured_ms = best;
        Ok(run)
    }
}

fn check_range(layer: &str, values: &[i64], bits: u32) -> Result<(), HeError> {
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

/// Every conv layer of a network run under encryption on one image.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkRun {
    pub layers: Vec<LayerRun>,
    pub executed: LayerCost,
    /// Sum of the layers' measured times.
    pub measured_ms: f64,
    pub verified: bool,
}

/// Runs every conv of `net` on `image` (normalized `c*h*w` floats): each
/// layer's integer input comes from the quantized forward pass, is
/// encrypted, evaluated `repeats` times and verified. Plans (masks and keys)
/// are built one layer at a time so only one layer's plaintexts are held.
pub fn run_network(
    ctx: &mut HeContext,
    net: &QuantizedNet,
    image: &[f32],
    repeats: usize,
) -> Result<NetworkRun, HeError> {
    let inputs = net.conv_inputs(image)?;
    let mut layers = Vec::with_capacity(inputs.len());
    for (layer, input) in net.convs.iter().zip(&inputs) {
        let plan = LayerPlan::new(ctx, &layer.shape, &layer.weight)?;
        layers.push(plan.run(ctx, input, repeats)?);
    }
    Ok(NetworkRun {
        executed: layers
            .iter()
            .map(|r| r.executed)
            .fold(LayerCost::default(), |a, b| a + b),
        measured_ms: layers.iter().map(|r| r.measured_ms).sum(),
        verified: layers.iter().all(|r| r.verified),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::he::cost::conv_cost;
    use crate::he::layout::PruneGroup;
    use rand::Rng;

    fn shape(c_in: usize, c_out: usize, hw: usize, k: usize) -> ConvShape {
        ConvShape {
            name: format!("{c_in}to{c_out}k{k}"),
            c_in,
            c_out,
            h: hw,
            w: hw,
            k,
            stride: 1,
        }
    }

    fn random(len: usize, bits: u32, seed: u64) -> Vec<i64> {
        let m = max_magnitude(bits) as i64;
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-m..=m)).collect()
    }

    fn context(layers: &[ConvShape]) -> HeContext {
        HeContext::new(HeParams::new(8192, None, 8, 8, layers).unwrap())
    }

    /// Runs a layer and checks executed counts against the cost model.
    fn run_and_count(ctx: &mut HeContext, s: &ConvShape, w: &[i64], x: &[i64]) -> LayerRun {
        let plan = LayerPlan::new(ctx, s, w).unwrap();
        let run = plan.run(ctx, x, 1).unwrap();
        assert_eq!(run.executed, conv_cost(plan.layout(), w).cost, "{}", s.name);
        assert!(run.noise_budget_bits > 0);
        run
    }

    #[test]
    fn dense_and_pruned_layers_decrypt_exactly_with_modelled_counts() {
        // 8x8 at N = 8192: P = 64, cn = 64; 80 channels give two blocks, the
        // second partial. (N = 4096 leaves fhe.rs no noise budget for 8-bit
        // products after a key switch.)
        let layers = [shape(6, 80, 8, 3), shape(80, 6, 8, 3), shape(6, 80, 8, 1)];
        let mut ctx = context(&layers);
        for (i, s) in layers.iter().enumerate() {
            let mut w = random(s.weight_len(), 8, i as u64);
            let x = random(s.c_in * 64, 8, 100 + i as u64);
            let dense = run_and_count(&mut ctx, s, &w, &x);
            let layout = PackingLayout::new(s, 4096).unwrap();
            // Zero one positional group (if the kernel has rotations) and two
            // diagonal groups, then run again.
            for (g, idx) in layout.groups(0) {
                let hit = match g {
                    PruneGroup::Positional {
                        block, position, ..
                    } => block == 0 && position == 1 && s.k == 3,
                    PruneGroup::Diagonal { diagonal, .. } => diagonal == 1 || diagonal == 5,
                };
                if hit {
                    idx.iter().for_each(|&i| w[i] = 0);
                }
            }
            let pruned = run_and_count(&mut ctx, s, &w, &x);
            assert!(pruned.executed.rotations() < dense.executed.rotations());
        }
    }

    #[test]
    fn a_whole_quantized_network_runs_encrypted_and_verified() {
        use crate::quant::tests::{images, random_net};
        let net = QuantizedNet::new(&random_net(9), 8, 8, &images(2, 10)).unwrap();
        let params = HeParams::new(8192, None, 8, 8, &net.spec.convs).unwrap();
        let mut ctx = HeContext::new(params);
        let run = run_network(&mut ctx, &net, &images(1, 11), 1).unwrap();
        assert!(run.verified);
        assert_eq!(run.layers.len(), net.convs.len());
        for (r, layer) in run.layers.iter().zip(&net.convs) {
            let layout = PackingLayout::new(&layer.shape, 4096).unwrap();
            assert_eq!(
                r.executed,
                conv_cost(&layout, &layer.weight).cost,
                "{}",
                r.layer
            );
        }
        assert!(run.measured_ms > 0.0);
    }

    #[test]
    fn a_corrupted_reference_is_a_mismatch() {
        let s = shape(4, 4, 4, 3);
        let mut ctx = context(std::slice::from_ref(&s));
        let w = random(s.weight_len(), 8, 1);
        let x = random(4 * 16, 8, 2);
        let plan = LayerPlan::new(&mut ctx, &s, &w).unwrap();
        let inputs = plan.encrypt_input(&mut ctx, &x).unwrap();
        let (outputs, _) = plan.evaluate(&inputs).unwrap();
        let mut other = x.clone();
        other[5] += 1;
        let e = plan.verify(&ctx, &other, &outputs).unwrap_err();
        assert!(matches!(e, HeError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn values_beyond_the_chosen_bits_are_refused() {
        let s = shape(2, 2, 4, 3);
        let mut ctx = context(std::slice::from_ref(&s));
        let mut w = random(s.weight_len(), 8, 3);
        w[0] = 300;
        let e = LayerPlan::new(&mut ctx, &s, &w).err().unwrap();
        assert!(matches!(e, HeError::ValueRange { value: 300, .. }), "{e}");
    }

    #[test]
    fn measured_primitives_are_positive() {
        let mut ctx = context(&[shape(2, 2, 4, 3)]);
        let c = ctx.measure_primitives(1).unwrap();
        assert!(c.rot_ms > 0.0 && c.pmul_ms > 0.0 && c.add_ms > 0.0);
    }
}
