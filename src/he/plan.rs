//! One layer on ciphertexts: its plan (weights encoded once as plaintext
//! masks, Galois keys only for the rotations the layer uses), an evaluation
//! that follows a [`PackingLayout`] on real BFV ciphertexts and counts every
//! operation it performs, and a check of each decryption against the exact
//! integer convolution: once on the layer's real input and once on a random
//! full-range input, so a wrong mask on a pixel the real input leaves at
//! zero cannot pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use fhe::bfv::{BfvParameters, Ciphertext, EvaluationKey, Plaintext};
use rayon::prelude::*;
use serde::Serialize;

use super::HeError;
use super::context::HeContext;
use super::cost::LayerCost;
use super::hoist::{Decomposed, HoistedKey};
use super::layout::{Half, PackingLayout, Rotation};
use super::params::HeParams;
use crate::quant::{conv_int, max_magnitude};

/// Where a layer plan gets its parameters and Galois keys: a context that
/// makes the keys ([`HeContext`]), or a server that holds the ones a client
/// uploaded. Either returns the keys it has of those asked for.
pub trait KeySource {
    fn params(&self) -> &HeParams;
    /// fhe.rs's keys, applied as a full key switch.
    fn full_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<EvaluationKey>>, HeError>;
    /// The keys rotations of a decomposed input use.
    fn hoisted_keys(
        &mut self,
        rotations: &[Rotation],
    ) -> Result<BTreeMap<Rotation, Arc<HoistedKey>>, HeError>;
}

/// One live mask: input block `a` read at (offset, baby step), its plaintext.
struct Product {
    a: usize,
    offset: usize,
    baby: usize,
    pt: Plaintext,
}

/// The products of one giant step of one half of one output block.
struct GiantSum {
    b: usize,
    half: Half,
    giant: usize,
    products: Vec<Product>,
}

/// A layer ready to run: masks encoded, keys generated.
pub struct LayerPlan {
    layout: PackingLayout,
    weights: Vec<i64>,
    /// Giant sums, grouped by output block, in key order.
    giants: Vec<GiantSum>,
    /// (a, offset, baby) readings that need a rotated input.
    rotations: Vec<(usize, usize, usize)>,
    /// fhe.rs's Galois keys of the rotations this plan key-switches in full.
    keys: BTreeMap<Rotation, Arc<EvaluationKey>>,
    /// With hoisting, the keys of the input rotations, applied to each
    /// input block's one decomposition; empty without.
    hoisted: BTreeMap<Rotation, Arc<HoistedKey>>,
    /// Distinct rotations over both key sets: the Galois keys the layer uses.
    distinct_keys: usize,
    bfv: Arc<BfvParameters>,
}

/// One layer's evaluation: the executor's own operation counts (keys = the
/// Galois keys it used) and the wall time of the encrypted evaluation only
/// (rotations, products and sums, with rayon over giant sums; not key
/// generation, encoding, encryption or decryption), minimum over repeats.
/// It exists only when every output decrypted to the integer reference.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRun {
    pub layer: String,
    pub schedule: String,
    pub baby_step: usize,
    pub executed: LayerCost,
    pub measured_ms: f64,
    /// Smallest remaining noise budget over the output ciphertexts, in bits.
    pub noise_budget_bits: i64,
}

impl LayerPlan {
    /// Encodes the nonzero masks of `weights` (`[c_out, c_in, k, k]` integers
    /// within the parameters' weight bits) under `layout` and takes the
    /// layer's keys from `keys`; a key it lacks is an error naming the layer.
    pub fn new(
        keys: &mut impl KeySource,
        layout: PackingLayout,
        weights: &[i64],
    ) -> Result<LayerPlan, HeError> {
        let shape = layout.shape().clone();
        if weights.len() != shape.weight_len() {
            return Err(explore_he_model::Error::WeightLength {
                layer: shape.name.clone(),
                expected: shape.weight_len(),
                got: weights.len(),
            }
            .into());
        }
        check_range(&shape.name, weights, keys.params().weight_bits)?;
        let masks: Vec<_> = layout.masks(weights).into_iter().collect();
        let params = keys.params();
        // The executor skips by the values it encodes, not by the cost model.
        let encoded: Vec<Option<(super::layout::MaskKey, Plaintext)>> = masks
            .into_par_iter()
            .map(|(key, slots)| {
                if slots.iter().all(|&v| v == 0) {
                    Ok(None)
                } else {
                    Ok(Some((key, params.encode(&slots)?)))
                }
            })
            .collect::<Result<_, HeError>>()?;
        let mut giants: Vec<GiantSum> = Vec::new();
        let mut rotations = BTreeSet::new();
        for (k, pt) in encoded.into_iter().flatten() {
            if layout.input_rotation(k.offset, k.baby).is_some() {
                rotations.insert((k.a, k.offset, k.baby));
            }
            let same = |g: &GiantSum| (g.b, g.half, g.giant) == (k.b, k.half, k.giant);
            if giants.last().is_none_or(|g| !same(g)) {
                giants.push(GiantSum {
                    b: k.b,
                    half: k.half,
                    giant: k.giant,
                    products: Vec::new(),
                });
            }
            giants.last_mut().expect("pushed").products.push(Product {
                a: k.a,
                offset: k.offset,
                baby: k.baby,
                pt,
            });
        }
        let rotations: Vec<(usize, usize, usize)> = rotations.into_iter().collect();
        let input_steps: BTreeSet<Rotation> = rotations
            .iter()
            .filter_map(|&(_, offset, baby)| layout.input_rotation(offset, baby))
            .collect();
        let mut output_steps: BTreeSet<Rotation> = giants
            .iter()
            .filter_map(|g| layout.giant_rotation(g.giant))
            .collect();
        if giants.iter().any(|g| g.half == Half::Cross) {
            output_steps.insert(Rotation::Rows);
        }
        if !giants.is_empty() {
            output_steps.extend(layout.fold_rotations());
        }
        let distinct_keys = input_steps.union(&output_steps).count();
        let hoist = layout.schedule().hoist;
        let full: Vec<Rotation> = if hoist {
            output_steps.into_iter().collect()
        } else {
            input_steps.union(&output_steps).copied().collect()
        };
        let wanted_hoisted: Vec<Rotation> = if hoist {
            input_steps.into_iter().collect()
        } else {
            Vec::new()
        };
        let bfv = Arc::clone(&keys.params().bfv);
        let hoisted = keys.hoisted_keys(&wanted_hoisted)?;
        let full_keys = keys.full_keys(&full)?;
        let lacking = full
            .iter()
            .find(|r| !full_keys.contains_key(r))
            .or_else(|| wanted_hoisted.iter().find(|r| !hoisted.contains_key(r)));
        if let Some(&rotation) = lacking {
            return Err(HeError::MissingKey {
                layer: shape.name.clone(),
                rotation: format!("{rotation:?}"),
            });
        }
        Ok(LayerPlan {
            layout,
            weights: weights.to_vec(),
            giants,
            rotations,
            keys: full_keys,
            hoisted,
            distinct_keys,
            bfv,
        })
    }

    /// The plaintext masks the plan holds (the server's encoded weights).
    pub fn plaintexts(&self) -> usize {
        self.giants.iter().map(|g| g.products.len()).sum()
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
        ctx.encrypt_input(&self.layout, input)
    }

    fn missing(&self, rotation: Rotation) -> HeError {
        HeError::MissingKey {
            layer: self.layout.name().to_string(),
            rotation: format!("{rotation:?}"),
        }
    }

    fn rotate(&self, ct: &Ciphertext, rotation: Rotation) -> Result<Ciphertext, HeError> {
        let ek = self
            .keys
            .get(&rotation)
            .ok_or_else(|| self.missing(rotation))?;
        Ok(match rotation {
            Rotation::Columns(step) => ek.rotates_columns_by(ct, step)?,
            Rotation::Rows => ek.rotates_rows(ct)?,
        })
    }

    /// The encrypted layer: output block b, or None when every weight feeding
    /// it is zero (it decrypts to zeros without any work). Returns the
    /// operations performed.
    pub fn evaluate(
        &self,
        inputs: &[Ciphertext],
    ) -> Result<(Vec<Option<Ciphertext>>, LayerCost), HeError> {
        let l = &self.layout;
        let reading = |&(_, offset, baby): &(usize, usize, usize)| {
            l.input_rotation(offset, baby).expect("a rotated reading")
        };
        let (rotated, hoisted): (Vec<Ciphertext>, usize) = if l.schedule().hoist {
            // Each rotated block decomposed once, every reading of it
            // rotated from that decomposition.
            let blocks: BTreeSet<usize> = self.rotations.iter().map(|r| r.0).collect();
            let decomposed: BTreeMap<usize, Decomposed> = blocks
                .par_iter()
                .map(|&a| Ok((a, Decomposed::new(&inputs[a], &self.bfv)?)))
                .collect::<Result<_, HeError>>()?;
            let rotated = self
                .rotations
                .par_iter()
                .map(|r| {
                    let rotation = reading(r);
                    let key = self
                        .hoisted
                        .get(&rotation)
                        .ok_or_else(|| self.missing(rotation))?;
                    decomposed[&r.0].rotate(key)
                })
                .collect::<Result<_, _>>()?;
            (rotated, self.rotations.len() - blocks.len())
        } else {
            let rotated = self
                .rotations
                .par_iter()
                .map(|r| self.rotate(&inputs[r.0], reading(r)))
                .collect::<Result<_, _>>()?;
            (rotated, 0)
        };
        let source = |p: &Product| match self.rotations.binary_search(&(p.a, p.offset, p.baby)) {
            Ok(i) => &rotated[i],
            Err(_) => &inputs[p.a],
        };
        // Each giant sum: its products, then its giant rotation.
        let sums: Vec<(Ciphertext, LayerCost)> = self
            .giants
            .par_iter()
            .map(|g| {
                let mut c = LayerCost::default();
                let mut acc: Option<Ciphertext> = None;
                for p in &g.products {
                    let prod = source(p) * &p.pt;
                    c.pmults += 1;
                    acc = Some(match acc {
                        None => prod,
                        Some(acc) => {
                            c.adds += 1;
                            acc + &prod
                        }
                    });
                }
                let mut t = acc.expect("a giant sum holds products");
                if let Some(r) = l.giant_rotation(g.giant) {
                    t = self.rotate(&t, r)?;
                    c.rot_output += 1;
                }
                Ok((t, c))
            })
            .collect::<Result<_, HeError>>()?;
        let mut total = LayerCost {
            rot_input: self.rotations.len(),
            rot_hoisted: hoisted,
            keys: self.distinct_keys,
            ..LayerCost::default()
        };
        // Per block: sum each half's giants, swap the cross half, add the
        // halves, fold.
        let mut halves: BTreeMap<(usize, Half), Ciphertext> = BTreeMap::new();
        for (g, (t, c)) in self.giants.iter().zip(sums) {
            total = total + c;
            match halves.remove(&(g.b, g.half)) {
                None => halves.insert((g.b, g.half), t),
                Some(acc) => {
                    total.adds += 1;
                    halves.insert((g.b, g.half), acc + &t)
                }
            };
        }
        let mut outputs: Vec<Option<Ciphertext>> = vec![None; l.n_out()];
        for ((b, half), mut t) in halves {
            if half == Half::Cross {
                t = self.rotate(&t, Rotation::Rows)?;
                total.row_swaps += 1;
            }
            outputs[b] = Some(match outputs[b].take() {
                None => t,
                Some(acc) => {
                    total.adds += 1;
                    acc + &t
                }
            });
        }
        for out in outputs.iter_mut().flatten() {
            for r in l.fold_rotations() {
                let moved = self.rotate(out, r)?;
                *out = &*out + &moved;
                total.rot_output += 1;
                total.adds += 1;
            }
        }
        Ok((outputs, total))
    }

    /// Decrypts `outputs` and compares every slot that holds an output with
    /// the integer convolution of `input` (zeros where no channel or pixel
    /// is). Returns the smallest noise budget left.
    pub fn verify(
        &self,
        ctx: &HeContext,
        input: &[i64],
        outputs: &[Option<Ciphertext>],
    ) -> Result<i64, HeError> {
        let reference = conv_int(&self.layout.computed_shape(), input, &self.weights);
        let mut budget = i64::MAX;
        for (b, ct) in outputs.iter().enumerate() {
            let expected = self.layout.expected_output(&reference, b);
            let (got, block_budget) = match ct {
                Some(ct) => (ctx.decrypt(ct)?, ctx.noise_budget(ct)?),
                None => (vec![0; expected.len()], i64::MAX),
            };
            budget = budget.min(block_budget);
            let wrong = (0..expected.len()).find(|&s| expected[s].is_some_and(|e| e != got[s]));
            if let Some(slot) = wrong {
                return Err(HeError::Mismatch {
                    layer: self.layout.name().to_string(),
                    block: b,
                    slot,
                    expected: expected[slot].expect("a compared slot"),
                    got: got[slot],
                    noise_budget_bits: block_budget,
                });
            }
        }
        Ok(budget)
    }

    /// Encrypts `input`, evaluates `repeats` times (each run verified), then
    /// verifies once more on a random full-range input, and reports the
    /// counts and the fastest evaluation.
    pub fn run(
        &self,
        ctx: &mut HeContext,
        input: &[i64],
        repeats: usize,
    ) -> Result<LayerRun, HeError> {
        let inputs = self.encrypt_input(ctx, input)?;
        let mut best = f64::INFINITY;
        let mut counted = None;
        let mut budget = i64::MAX;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            let (outputs, executed) = self.evaluate(&inputs)?;
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
            budget = budget.min(self.verify(ctx, input, &outputs)?);
            counted = Some(executed);
        }
        let random = ctx.random_values(input.len(), ctx.params().activation_bits);
        let encrypted = self.encrypt_input(ctx, &random)?;
        let (outputs, _) = self.evaluate(&encrypted)?;
        budget = budget.min(self.verify(ctx, &random, &outputs)?);
        Ok(LayerRun {
            layer: self.layout.name().to_string(),
            schedule: self.layout.schedule().describe(),
            baby_step: self.layout.baby_step(),
            executed: counted.expect("at least one repeat"),
            measured_ms: best,
            noise_budget_bits: budget,
        })
    }
}

pub(super) fn check_range(layer: &str, values: &[i64], bits: u32) -> Result<(), HeError> {
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

#[cfg(test)]
pub(crate) mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::arch::ConvShape;
    use crate::he::cost::conv_cost;
    use crate::he::layout::{LayerSchedule, PruneGroup};
    use crate::he::params::HeParams;

    pub(crate) fn shape(
        c_in: usize,
        c_out: usize,
        hw: usize,
        k: usize,
        stride: usize,
    ) -> ConvShape {
        ConvShape {
            name: format!("{c_in}to{c_out}k{k}s{stride}"),
            c_in,
            c_out,
            h: hw,
            w: hw,
            k,
            stride,
        }
    }

    pub(crate) fn random(len: usize, bits: u32, seed: u64) -> Vec<i64> {
        let m = max_magnitude(bits) as i64;
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-m..=m)).collect()
    }

    pub(crate) fn context(layers: &[ConvShape]) -> HeContext {
        HeContext::new(HeParams::new(8192, None, 8, 8, layers).unwrap())
    }

    /// Runs a layer and checks executed counts against the cost model.
    fn run_and_count(
        ctx: &mut HeContext,
        layout: &PackingLayout,
        w: &[i64],
        x: &[i64],
    ) -> LayerRun {
        let plan = LayerPlan::new(ctx, layout.clone(), w).unwrap();
        let run = plan.run(ctx, x, 1).unwrap();
        assert_eq!(
            run.executed,
            conv_cost(layout, w).cost,
            "{} under {:?}",
            layout.name(),
            layout.schedule()
        );
        assert!(run.noise_budget_bits > 0);
        run
    }

    fn schedule(phases: bool, replicate: bool, fold: bool, baby_step: usize) -> LayerSchedule {
        LayerSchedule {
            phases,
            replicate,
            fold,
            baby_step,
            rows: false,
            hoist: false,
        }
    }

    #[test]
    fn every_schedule_decrypts_exactly_with_modelled_counts() {
        // Small grids so N = 8192 holds many channel positions: two-row
        // periods with partial blocks, replicated periods, stride phases of
        // 3x3 and 1x1 convs, and a folded matrix-vector product.
        let cases = [
            (shape(6, 80, 8, 3, 1), schedule(false, false, false, 1)),
            (shape(80, 6, 8, 3, 1), schedule(false, true, false, 4)),
            (shape(6, 20, 8, 3, 1), schedule(false, true, false, 2)),
            (shape(5, 12, 9, 3, 2), schedule(true, true, false, 2)),
            (shape(5, 12, 9, 3, 2), schedule(false, true, false, 1)),
            (shape(8, 16, 8, 1, 2), schedule(true, true, false, 4)),
            (
                shape(64, 64, 8, 3, 1),
                LayerSchedule {
                    rows: true,
                    ..schedule(false, true, false, 2)
                },
            ),
            (
                shape(6, 80, 8, 3, 1),
                LayerSchedule {
                    rows: true,
                    ..schedule(false, true, false, 1)
                },
            ),
            (shape(40, 10, 1, 1, 1), LayerSchedule::GAZELLE_FC),
            (shape(40, 10, 1, 1, 1), schedule(false, true, true, 4)),
        ];
        let shapes: Vec<ConvShape> = cases.iter().map(|c| c.0.clone()).collect();
        let mut ctx = context(&shapes);
        // Every case with and without hoisting.
        let cases = cases
            .iter()
            .flat_map(|(s, sched)| [false, true].map(|h| (s.clone(), sched.hoisted(h))));
        for (i, (s, sched)) in cases.enumerate() {
            let layout = PackingLayout::new(&s, 8192, sched).unwrap();
            let mut w = random(s.weight_len(), 8, i as u64);
            let x = random(s.c_in * s.h * s.w, 8, 100 + i as u64);
            let dense = run_and_count(&mut ctx, &layout, &w, &x);
            if sched.hoist && dense.executed.rot_input > layout.n_in() {
                assert!(dense.executed.rot_hoisted > 0, "{}", s.name);
            }
            // Zero one positional group and two diagonal groups, run again.
            let groups = layout.groups(0);
            let positional = groups
                .iter()
                .filter(|(g, _)| matches!(g, PruneGroup::Positional { .. }))
                .nth(1);
            let diagonal = groups
                .iter()
                .filter(|(g, _)| matches!(g, PruneGroup::Diagonal { giant, .. } if *giant > 0))
                .take(2);
            for (_, idx) in positional.into_iter().chain(diagonal) {
                idx.iter().for_each(|&i| w[i] = 0);
            }
            let pruned = run_and_count(&mut ctx, &layout, &w, &x);
            assert!(
                pruned.executed.rotations() < dense.executed.rotations(),
                "{}: {:?} -> {:?}",
                s.name,
                dense.executed,
                pruned.executed
            );
        }
    }

    #[test]
    fn a_corrupted_reference_is_a_mismatch() {
        let s = shape(4, 4, 4, 3, 1);
        let mut ctx = context(std::slice::from_ref(&s));
        let w = random(s.weight_len(), 8, 1);
        let x = random(4 * 16, 8, 2);
        let layout = PackingLayout::new(&s, 8192, schedule(false, true, false, 2)).unwrap();
        let plan = LayerPlan::new(&mut ctx, layout, &w).unwrap();
        let inputs = plan.encrypt_input(&mut ctx, &x).unwrap();
        let (outputs, _) = plan.evaluate(&inputs).unwrap();
        let mut other = x.clone();
        other[5] += 1;
        let e = plan.verify(&ctx, &other, &outputs).unwrap_err();
        assert!(matches!(e, HeError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn a_rotation_without_its_key_is_an_error_not_a_fallback() {
        let s = shape(4, 4, 4, 3, 1);
        let mut ctx = context(std::slice::from_ref(&s));
        let w = random(s.weight_len(), 8, 1);
        let x = random(4 * 16, 8, 2);
        for hoist in [true, false] {
            let sched = schedule(false, true, false, 2).hoisted(hoist);
            let layout = PackingLayout::new(&s, 8192, sched).unwrap();
            let mut plan = LayerPlan::new(&mut ctx, layout, &w).unwrap();
            let inputs = plan.encrypt_input(&mut ctx, &x).unwrap();
            let keys = if hoist {
                plan.hoisted.pop_first().map(|(r, _)| r)
            } else {
                plan.keys.pop_first().map(|(r, _)| r)
            };
            assert!(keys.is_some(), "the layer rotates its input");
            let e = plan.evaluate(&inputs).err().unwrap();
            assert!(matches!(e, HeError::MissingKey { .. }), "{e}");
        }
    }

    #[test]
    fn values_beyond_the_chosen_bits_are_refused() {
        let s = shape(2, 2, 4, 3, 1);
        let mut ctx = context(std::slice::from_ref(&s));
        let mut w = random(s.weight_len(), 8, 3);
        w[0] = 300;
        let layout = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV).unwrap();
        let e = LayerPlan::new(&mut ctx, layout, &w).err().unwrap();
        assert!(matches!(e, HeError::ValueRange { value: 300, .. }), "{e}");
    }
}
