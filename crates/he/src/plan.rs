//! One layer on ciphertexts: its plan (weights encoded once as plaintext
//! masks, Galois keys only for the rotations the layer uses), and an
//! evaluation that follows a [`PackingLayout`] on real BFV ciphertexts and
//! counts every operation it performs. Running a plan against a context
//! and checking each decryption is the runner's ([`crate::runner`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fhe::bfv::{Ciphertext, EvaluationKey};
use fhe_math::rq::{Poly, Representation};
use rayon::prelude::*;

use crate::error::HeError;
use crate::hoist::{Decomposed, HoistedKey, KeyBasis, flat, is_fresh};
use crate::keys::KeySource;
use crate::params::check_weights;
use explore_he_model::cost::LayerCost;
use explore_he_model::layout::{Half, PackingLayout, Rotation};
use explore_quant::conv_int;

/// One live mask: input block `a` read at (offset, baby step), its
/// plaintext as the product multiplies it (NTT form at `Q`).
struct Product {
    a: usize,
    offset: usize,
    baby: usize,
    pt: Poly,
}

/// The products of one giant step of one half of one output block.
struct GiantSum {
    b: usize,
    half: Half,
    giant: usize,
    products: Vec<Product>,
}

/// Which masks a plan multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Only the nonzero masks: pruning saves their products and the
    /// rotations only they read, and the layer's time follows its pruning.
    Pruned,
    /// Every mask the layout fills when no weight is zero (the dense
    /// network's), pruned ones multiplied as zeros: the same products,
    /// rotations and blocks, so the same time, whatever was pruned.
    Dense,
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
    /// The client's own keys ([`crate::hoist`]), which every rotation
    /// switches with under hoisting or a special prime; empty otherwise.
    hoisted: BTreeMap<Rotation, Arc<HoistedKey>>,
    /// Whether rotations switch with `hoisted` rather than `keys`.
    own_keys: bool,
    /// Distinct rotations over both key sets: the Galois keys the layer uses.
    distinct_keys: usize,
    basis: Arc<KeyBasis>,
}

impl LayerPlan {
    /// Encodes the masks of `weights` (`[c_out, c_in, k, k]` integers
    /// within the parameters' weight bits) under `layout` that `work` asks
    /// for, and takes the layer's keys from `keys`; a key it lacks is an
    /// error naming the layer.
    pub fn new(
        keys: &mut impl KeySource,
        layout: PackingLayout,
        weights: &[i64],
        work: Work,
    ) -> Result<LayerPlan, HeError> {
        let shape = layout.shape().clone();
        check_weights(&shape, weights, keys.params().weight_bits)?;
        let mut masks = layout.masks(weights);
        // The executor skips by the values it encodes, not by the cost model.
        let filled = |slots: &[i64]| slots.iter().any(|&v| v != 0);
        masks.retain(|_, slots| filled(slots));
        if work == Work::Dense {
            for (key, slots) in layout.masks(&vec![1; weights.len()]) {
                if filled(&slots) {
                    masks.entry(key).or_insert_with(|| vec![0; slots.len()]);
                }
            }
        }
        let params = keys.params();
        let encoded: Vec<(explore_he_model::layout::MaskKey, Poly)> = masks
            .into_iter()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(key, slots)| {
                let pt = params.key_basis.plaintext_rows(&params.encode(&slots)?)?;
                Ok((key, pt))
            })
            .collect::<Result<_, HeError>>()?;
        let mut giants: Vec<GiantSum> = Vec::new();
        let mut rotations = BTreeSet::new();
        for (k, pt) in encoded {
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
        let steps: Vec<Rotation> = input_steps.union(&output_steps).copied().collect();
        let distinct_keys = steps.len();
        // One key per step (the cost model's key set): under hoisting or a
        // special prime every rotation switches with the step's own key,
        // else with fhe.rs's.
        let own_keys = keys.params().own_keys(layout.schedule().hoist);
        let (full, wanted_hoisted) = if own_keys {
            (Vec::new(), steps)
        } else {
            (steps, Vec::new())
        };
        let basis = Arc::clone(&keys.params().key_basis);
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
            own_keys,
            distinct_keys,
            basis,
        })
    }

    /// The plaintext masks the plan holds (the server's encoded weights).
    pub fn plaintexts(&self) -> usize {
        self.giants.iter().map(|g| g.products.len()).sum()
    }

    pub fn layout(&self) -> &PackingLayout {
        &self.layout
    }

    /// The exact integer convolution of `input` by the plan's weights: what
    /// its output blocks must decrypt to.
    pub fn reference(&self, input: &[i64]) -> Vec<i64> {
        conv_int(&self.layout.computed_shape(), input, &self.weights)
    }

    fn missing(&self, rotation: Rotation) -> HeError {
        HeError::MissingKey {
            layer: self.layout.name().to_string(),
            rotation: format!("{rotation:?}"),
        }
    }

    /// A full key switch of `ct` by `rotation`: with the client's own keys
    /// a decomposition of `ct` rotated by the step's key (the same work as
    /// fhe.rs's own switch, from the one key the step has), else fhe.rs's
    /// rotation.
    fn rotate(&self, ct: &Ciphertext, rotation: Rotation) -> Result<Ciphertext, HeError> {
        if self.own_keys {
            let key = self
                .hoisted
                .get(&rotation)
                .ok_or_else(|| self.missing(rotation))?;
            return Decomposed::new(ct, &self.basis)?.rotate(key);
        }
        let ek = self
            .keys
            .get(&rotation)
            .ok_or_else(|| self.missing(rotation))?;
        Ok(match rotation {
            Rotation::Columns(step) => ek.rotates_columns_by(ct, step)?,
            Rotation::Rows => ek.rotates_rows(ct)?,
        })
    }

    /// `sum_k c_k m_k` over a giant step's products, as one lazy
    /// multiply-accumulate: each block of coefficients summed in 128-bit
    /// integers on the stack and reduced once ([`crate::rows::Basis::inner_products`]),
    /// where a product and an addition each would reduce and allocate.
    /// fhe.rs's own `dot_product_scalar` sums the same way, but over whole
    /// rows of 128-bit accumulators it allocates per call: on he-bench its
    /// accumulators' traffic and fresh pages cost more than the products.
    fn multiply_accumulate<'c>(
        &self,
        terms: impl Iterator<Item = (&'c Ciphertext, &'c Poly)>,
    ) -> Result<Ciphertext, HeError> {
        let (mut pts, mut c0s, mut c1s) = (Vec::new(), Vec::new(), Vec::new());
        for (ct, pt) in terms {
            if !is_fresh(ct, self.basis.par()) {
                return Err(HeError::Fhe(fhe::Error::DefaultError(
                    "a product needs a two-part ciphertext at the top level in NTT form".into(),
                )));
            }
            debug_assert_eq!(pt.representation(), &Representation::Ntt);
            pts.push(flat(pt));
            c0s.push(flat(&ct[0]));
            c1s.push(flat(&ct[1]));
        }
        let len = pts.first().expect("a giant step has products").len();
        let (mut s0, mut s1) = (vec![0u64; len], vec![0u64; len]);
        self.basis
            .rows()
            .inner_products(&pts, &c0s, &c1s, &mut s0, &mut s1);
        self.basis.ciphertext([s0, s1])
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
                .map(|&a| Ok((a, Decomposed::new(&inputs[a], &self.basis)?)))
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
                let mut t =
                    self.multiply_accumulate(g.products.iter().map(|p| (source(p), &p.pt)))?;
                let mut c = LayerCost {
                    pmults: g.products.len(),
                    adds: g.products.len() - 1,
                    ..LayerCost::default()
                };
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::tests::{context, random, schedule, shape, special_prime_context};

    /// The blocked sums equal fhe.rs's own products and additions, residue
    /// for residue, past the 255 terms after which they reduce on the way,
    /// with keys at `Q` and at `QP` (whose rows basis has one prime more).
    #[test]
    fn a_giant_step_sum_equals_fhe_rs_products_and_additions() {
        let s = shape(4, 4, 4, 3, 1);
        let w = random(s.weight_len(), 8, 1);
        for mut ctx in [context(&[s.clone()]), special_prime_context(&[s.clone()])] {
            let layout = PackingLayout::new(&s, 8192, schedule(false, true, false, 2)).unwrap();
            let plan = LayerPlan::new(&mut ctx, layout, &w, Work::Pruned).unwrap();
            let terms = 300;
            let cts: Vec<Ciphertext> = (0..terms)
                .map(|k| ctx.encrypt(&random(64, 8, k)).unwrap())
                .collect();
            let pts: Vec<_> = (0..terms)
                .map(|k| ctx.encode(&random(64, 8, 1000 + k)).unwrap())
                .collect();
            let rows: Vec<Poly> = pts
                .iter()
                .map(|pt| plan.basis.plaintext_rows(pt).unwrap())
                .collect();
            let ours = plan.multiply_accumulate(cts.iter().zip(&rows)).unwrap();
            let theirs = cts
                .iter()
                .zip(&pts)
                .map(|(ct, pt)| ct * pt)
                .reduce(|a, b| &a + &b)
                .unwrap();
            for part in 0..2 {
                assert_eq!(ours[part].coefficients(), theirs[part].coefficients());
            }
            // A ciphertext one prime short is refused, not summed.
            let mut low = cts[0].clone();
            low.switch_to_level(1).unwrap();
            assert!(
                plan.multiply_accumulate([(&low, &rows[0])].into_iter())
                    .is_err()
            );
        }
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
            let mut plan = LayerPlan::new(&mut ctx, layout, &w, Work::Pruned).unwrap();
            let inputs = ctx.encrypt_input(plan.layout(), &x).unwrap();
            let keys = if plan.own_keys {
                plan.hoisted.pop_first().map(|(r, _)| r)
            } else {
                plan.keys.pop_first().map(|(r, _)| r)
            };
            assert!(keys.is_some(), "the layer rotates its input");
            let e = plan.evaluate(&inputs).err().unwrap();
            assert!(matches!(e, HeError::MissingKey { .. }), "{e}");
        }
    }
}
