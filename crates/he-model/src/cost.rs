//! The HE cost model: how many rotations, ct x pt multiplications and
//! additions a layer needs under its [`PackingLayout`] given which of its
//! weights are nonzero, and what that costs in milliseconds. The schedule
//! chooser, the pruner, `explore count` and the executor's check all count
//! through this module: a mask is live when some nonzero weight lands in it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Add;

use serde::{Deserialize, Serialize};

use crate::layout::{Half, MaskKey, PackingLayout, Rotation};
use crate::noise::NoiseDepth;

/// Milliseconds per HE primitive: what prices a count as latency. The spec
/// fixes them (so pruning and schedule choices are reproducible); a sweep
/// also measures them at its start for the latency model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimitiveCosts {
    /// A full key switch: a rotation of a ciphertext not yet decomposed.
    pub rot_ms: f64,
    /// A further rotation of an already decomposed ciphertext (hoisted).
    #[serde(default = "default_hoisted_rot_ms")]
    pub hoisted_rot_ms: f64,
    pub pmul_ms: f64,
    pub add_ms: f64,
}

fn default_hoisted_rot_ms() -> f64 {
    PrimitiveCosts::default().hoisted_rot_ms
}

impl Default for PrimitiveCosts {
    /// fhe.rs at N = 8192 on the project's 2-core machines.
    fn default() -> Self {
        PrimitiveCosts {
            rot_ms: 2.5,
            hoisted_rot_ms: 0.85,
            pmul_ms: 0.19,
            add_ms: 0.056,
        }
    }
}

/// Operation counts of one layer (or a sum of layers). Every rotation is
/// one key switch; `rot_hoisted` of the input rotations reuse an earlier
/// decomposition of the same ciphertext and are priced at the hoisted cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LayerCost {
    /// Rotations of input blocks (kernel offsets and baby steps).
    pub rot_input: usize,
    /// Of `rot_input`, those after the first of their block under hoisting.
    pub rot_hoisted: usize,
    /// Rotations of output sums (giant steps and the output fold).
    pub rot_output: usize,
    /// Row swaps (cross-row halves of a two-row period).
    pub row_swaps: usize,
    pub pmults: usize,
    pub adds: usize,
    /// Distinct rotations, i.e. Galois keys the layer needs.
    pub keys: usize,
}

impl LayerCost {
    pub fn rotations(&self) -> usize {
        self.rot_input + self.rot_output + self.row_swaps
    }

    /// Rotations that pay a full key switch.
    pub fn full_rotations(&self) -> usize {
        self.rotations() - self.rot_hoisted
    }

    pub fn latency_ms(&self, c: &PrimitiveCosts) -> f64 {
        self.full_rotations() as f64 * c.rot_ms
            + self.rot_hoisted as f64 * c.hoisted_rot_ms
            + self.pmults as f64 * c.pmul_ms
            + self.adds as f64 * c.add_ms
    }
}

/// Summing layers adds keys too: an upper bound on the network's distinct
/// keys, see [`crate::network::HeCost::keys`] for the exact union.
impl Add for LayerCost {
    type Output = LayerCost;
    fn add(self, o: LayerCost) -> LayerCost {
        LayerCost {
            rot_input: self.rot_input + o.rot_input,
            rot_hoisted: self.rot_hoisted + o.rot_hoisted,
            rot_output: self.rot_output + o.rot_output,
            row_swaps: self.row_swaps + o.row_swaps,
            pmults: self.pmults + o.pmults,
            adds: self.adds + o.adds,
            keys: self.keys + o.keys,
        }
    }
}

/// A layer's counts together with the rotations it uses (and the keys
/// they need) and the depth its noisiest output block reaches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerPlanCost {
    pub cost: LayerCost,
    pub steps: BTreeSet<Rotation>,
    pub key_set: KeySet,
    pub depth: NoiseDepth,
}

/// The Galois keys a layer or a network needs, one per rotation step, by
/// the key switching that uses it: fhe.rs's own (`full`, without hoisting)
/// or the project's hoisting keys (`hoisted`). Under hoisting every rotation
/// of a layer, input or output, switches with its step's hoisting key (an
/// output rotation first decomposes the ciphertext it rotates, which is what
/// a full key switch does), so a step used both ways is uploaded once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySet {
    pub full: BTreeSet<Rotation>,
    pub hoisted: BTreeSet<Rotation>,
}

impl KeySet {
    /// Adds every key of `other`.
    pub fn extend(&mut self, other: &KeySet) {
        self.full.extend(&other.full);
        self.hoisted.extend(&other.hoisted);
    }

    /// Whether every key of `other` is in this set.
    pub fn covers(&self, other: &KeySet) -> bool {
        other.full.is_subset(&self.full) && other.hoisted.is_subset(&self.hoisted)
    }

    /// The distinct rotations (Galois elements) over both kinds.
    pub fn rotations(&self) -> BTreeSet<Rotation> {
        self.full.union(&self.hoisted).copied().collect()
    }
}

/// The masks holding a nonzero weight of `weights` (`[c_out, c_in, k, k]`;
/// any type with a zero default: f32 weights, 0/1 masks, integers).
pub fn live_masks<T: Copy + Default + PartialEq>(
    layout: &PackingLayout,
    weights: &[T],
) -> BTreeSet<MaskKey> {
    layout.placements(weights).map(|(_, p)| p.key).collect()
}

/// Counts for a layer whose nonzero weights are those of `weights`.
pub fn conv_cost<T: Copy + Default + PartialEq>(
    layout: &PackingLayout,
    weights: &[T],
) -> LayerPlanCost {
    count(layout, &live_masks(layout, weights))
}

/// Counts for a layer whose live masks are `live`: one rotation per rotated
/// input, one product per mask, one rotation per nonzero giant step, a row
/// swap per output block with a live cross half, the fold per live block,
/// and the additions that sum them.
pub fn count(layout: &PackingLayout, live: &BTreeSet<MaskKey>) -> LayerPlanCost {
    let mut c = LayerCost::default();
    let mut steps = BTreeSet::new();
    let inputs: BTreeSet<(usize, usize, usize)> =
        live.iter().map(|k| (k.a, k.offset, k.baby)).collect();
    let mut rotated_blocks = BTreeSet::new();
    for &(a, offset, baby) in &inputs {
        if let Some(r) = layout.input_rotation(offset, baby) {
            c.rot_input += 1;
            steps.insert(r);
            rotated_blocks.insert(a);
        }
    }
    if layout.schedule().hoist {
        c.rot_hoisted = c.rot_input - rotated_blocks.len();
    }
    c.pmults = live.len();
    let mut giants: BTreeMap<(usize, Half, usize), usize> = BTreeMap::new();
    for k in live {
        *giants.entry((k.b, k.half, k.giant)).or_default() += 1;
    }
    let mut halves: BTreeMap<(usize, Half), usize> = BTreeMap::new();
    for (&(b, half, giant), &products) in &giants {
        c.adds += products - 1;
        *halves.entry((b, half)).or_default() += 1;
        if let Some(r) = layout.giant_rotation(giant) {
            c.rot_output += 1;
            steps.insert(r);
        }
    }
    let mut blocks: BTreeMap<usize, usize> = BTreeMap::new();
    for (&(b, half), &live_giants) in &halves {
        c.adds += live_giants - 1;
        *blocks.entry(b).or_default() += 1;
        if half == Half::Cross {
            c.row_swaps += 1;
            steps.insert(Rotation::Rows);
        }
    }
    for &live_halves in blocks.values() {
        c.adds += live_halves - 1;
        let fold = layout.fold_rotations();
        c.rot_output += fold.len();
        c.adds += fold.len();
        steps.extend(&fold);
    }
    c.keys = steps.len();
    let mut key_set = KeySet::default();
    if layout.schedule().hoist {
        key_set.hoisted.clone_from(&steps);
    } else {
        key_set.full.clone_from(&steps);
    }
    LayerPlanCost {
        cost: c,
        steps,
        key_set,
        depth: depth(layout, live, !rotated_blocks.is_empty()),
    }
}

/// The noisiest output block of `live`: the most products summed into one
/// block and the most rotations (giant steps and its row swap) after them.
fn depth(layout: &PackingLayout, live: &BTreeSet<MaskKey>, input_rotated: bool) -> NoiseDepth {
    let mut products: BTreeMap<usize, usize> = BTreeMap::new();
    let mut after: BTreeMap<usize, BTreeSet<(Half, usize)>> = BTreeMap::new();
    for k in live {
        *products.entry(k.b).or_default() += 1;
        if layout.giant_rotation(k.giant).is_some() || k.half == Half::Cross {
            after.entry(k.b).or_default().insert((k.half, k.giant));
        }
    }
    let swaps = |b: &usize| after[b].iter().any(|(h, _)| *h == Half::Cross) as usize;
    NoiseDepth {
        products: products.values().copied().max().unwrap_or(0),
        rotations_after: after
            .keys()
            .map(|b| after[b].len() + swaps(b))
            .max()
            .unwrap_or(0),
        folds: if live.is_empty() {
            0
        } else {
            layout.fold_steps()
        },
        input_rotated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::ConvShape;
    use crate::layout::{LayerSchedule, PruneGroup};

    fn shape(c_in: usize, c_out: usize, hw: usize, k: usize, stride: usize) -> ConvShape {
        ConvShape {
            name: "l".into(),
            c_in,
            c_out,
            h: hw,
            w: hw,
            k,
            stride,
        }
    }

    fn bsgs(baby_step: usize) -> LayerSchedule {
        LayerSchedule {
            phases: false,
            replicate: true,
            fold: false,
            baby_step,
            rows: false,
            hoist: false,
        }
    }

    fn dense(s: &ConvShape, schedule: LayerSchedule) -> (PackingLayout, LayerCost) {
        let l = PackingLayout::new(s, 8192, schedule).unwrap();
        let c = conv_cost(&l, &vec![1.0f32; s.weight_len()]).cost;
        (l, c)
    }

    fn zero_group(layout: &PackingLayout, w: &mut [f32], want: PruneGroup) {
        let (_, idx) = layout
            .groups(0)
            .into_iter()
            .find(|(g, _)| *g == want)
            .unwrap();
        idx.iter().for_each(|&i| w[i] = 0.0);
    }

    #[test]
    fn gazelle_output_rotations_on_a_full_layer_follow_its_formula() {
        // 16 -> 16 at 32x32, N = 8192: P = 1024, cn = 8 channels in two rows
        // of 4; n_in = n_out = 2: n_in (k^2 - 1) + n_out (cn - 1) = 16 + 14.
        let (l, c) = dense(&shape(16, 16, 32, 3, 1), LayerSchedule::GAZELLE_CONV);
        assert_eq!(
            (l.positions(), l.n_in(), l.n_out(), l.halves()),
            (8, 2, 2, 2)
        );
        assert_eq!(c.rotations(), 30);
        // Per output block: 3 same-row and 3 cross-row giant rotations and
        // one row swap.
        assert_eq!((c.rot_input, c.rot_output, c.row_swaps), (16, 12, 2));
        assert_eq!(c.pmults, 2 * 2 * 8 * 9);
        // Keys: 8 kernel offsets, 3 diagonal steps, the row swap.
        assert_eq!(c.keys, 8 + 3 + 1);
    }

    #[test]
    fn hoisting_prices_all_but_each_blocks_first_input_rotation_at_the_hoisted_cost() {
        // The Gazelle layer above: 2 input blocks, 8 kernel offsets each.
        let s = shape(16, 16, 32, 3, 1);
        let (_, off) = dense(&s, LayerSchedule::GAZELLE_CONV);
        let (_, on) = dense(&s, LayerSchedule::GAZELLE_CONV.hoisted(true));
        assert_eq!(off.rot_hoisted, 0);
        assert_eq!(on.rot_hoisted, 16 - 2);
        assert_eq!(
            LayerCost {
                rot_hoisted: 0,
                ..on
            },
            off,
            "hoisting changes prices, not counts"
        );
        assert_eq!(on.full_rotations(), 30 - 14);
        let c = PrimitiveCosts::default();
        let saved = off.latency_ms(&c) - on.latency_ms(&c);
        assert!((saved - 14.0 * (c.rot_ms - c.hoisted_rot_ms)).abs() < 1e-9);
        // A block whose only rotated reading is pruned away needs no
        // decomposition: with one offset live per block, nothing is hoisted.
        let l = PackingLayout::new(&s, 8192, LayerSchedule::GAZELLE_CONV.hoisted(true)).unwrap();
        let mut w = vec![0.0f32; s.weight_len()];
        for o in 0..16 {
            for c_in in 0..16 {
                w[(o * 16 + c_in) * 9] = 1.0; // kernel position (0, 0) only
            }
        }
        let one = conv_cost(&l, &w).cost;
        assert_eq!((one.rot_input, one.rot_hoisted), (2, 0));
    }

    #[test]
    fn baby_steps_trade_input_for_output_rotations_as_counted_by_hand() {
        // 64 -> 64 at 8x8: P = 64, 64 positions per row, period 64 (one row,
        // replicated): n_in (9B - 1) + n_out (64/B - 1).
        let s = shape(64, 64, 8, 3, 1);
        for (b, expected) in [(1, 8 + 63), (2, 17 + 31), (4, 35 + 15), (64, 9 * 64 - 1)] {
            let (l, c) = dense(&s, bsgs(b));
            assert_eq!((l.period(), l.halves()), (64, 1));
            assert_eq!(c.rotations(), expected, "B = {b}");
            assert_eq!(c.row_swaps, 0);
            assert_eq!(
                c.pmults,
                64 * 9,
                "B = {b}: one mask per diagonal and offset"
            );
        }
        // Two-row period: 32 -> 32 at 16x16 (P = 256, 16 per row, p = 32):
        // per output block 2 (16/B - 1) + 1 = 32/B - 1.
        let s = shape(32, 32, 16, 3, 1);
        for (b, expected) in [(1, 8 + 31), (2, 17 + 15), (4, 35 + 7), (16, 143 + 1)] {
            let (l, c) = dense(&s, bsgs(b));
            assert_eq!((l.period(), l.halves()), (32, 2));
            assert_eq!(c.rotations(), expected, "B = {b}");
        }
    }

    #[test]
    fn replication_halves_the_alignment_rotations_of_a_narrow_layer() {
        // The quick spec's stage 2: 8 -> 8 at 14x14 (P = 256, 16 per row).
        // Gazelle wraps 8 channels in a period of 32; replication repeats
        // them with period 8.
        let s = shape(8, 8, 14, 3, 1);
        let (_, gazelle) = dense(&s, LayerSchedule::GAZELLE_CONV);
        let (l, replicated) = dense(&s, bsgs(1));
        assert_eq!(l.period(), 8);
        assert_eq!(replicated.rotations(), 8 + 7);
        // 8 channels in row 0 of a 32-position period: within the 16
        // positions of a row 15 diagonals pair a channel with a channel
        // (all but d = 8), so 14 rotate; nothing crosses rows. Replication
        // needs 7.
        assert_eq!(gazelle.rotations(), 8 + 14);
    }

    #[test]
    fn stride_phases_run_a_strided_conv_on_the_output_grid() {
        // 16 -> 32, 3x3 stride 2 on 32x32: on its phases a stride-1 conv on
        // 16x16 over 64 phase channels with 4 offsets (P = 256, p = 32, two
        // blocks: phases (0,0),(0,1) need offsets (0,0),(0,-1); phases
        // (1,0),(1,1) all four).
        let s = shape(16, 32, 32, 3, 2);
        let phased = LayerSchedule {
            phases: true,
            ..bsgs(2)
        };
        let (l, c) = dense(&s, phased);
        assert_eq!((l.phase_count(), l.offsets(), l.channels()), (4, 4, 64));
        assert_eq!((l.n_in(), l.n_out(), l.period()), (2, 1, 32));
        // Inputs: (2B - 1) + (4B - 1); outputs: 2 (16/B - 1) + 1.
        assert_eq!(c.rot_input, 3 + 7);
        assert_eq!(c.rot_output + c.row_swaps, 15);
        // On the full grid the best baby step needs more: 2(9 - 1) + 4 * 7.
        let (_, full) = dense(&s, bsgs(1));
        assert_eq!(full.rotations(), 44);
        assert!(c.rotations() < full.rotations());
        // A 1x1 stride-2 shortcut reads phase (0,0) only: no offset rotation.
        let (l, c) = dense(
            &shape(16, 32, 32, 1, 2),
            LayerSchedule {
                phases: true,
                ..bsgs(4)
            },
        );
        assert_eq!((l.phase_count(), l.offsets(), l.period()), (1, 1, 16));
        assert_eq!(c.rot_input, 3, "baby steps 1..4 only");
        assert_eq!(c.rot_output, 16 / 4 - 1);
    }

    #[test]
    fn the_fc_layer_folds_like_gazelles_hybrid_product() {
        // 64 -> 10: input replicated with period 64, outputs with period 16:
        // 15 diagonal rotations and a 2-step fold.
        let fc = shape(64, 10, 1, 1, 1);
        let (l, c) = dense(&fc, LayerSchedule::GAZELLE_FC);
        assert_eq!((l.period(), l.out_period(), l.fold_steps()), (64, 16, 2));
        assert_eq!((c.rot_output, c.rot_input), (15 + 2, 0));
        let (_, c) = dense(
            &fc,
            LayerSchedule {
                baby_step: 4,
                ..LayerSchedule::GAZELLE_FC
            },
        );
        assert_eq!(c.rotations(), 3 + 3 + 2);
    }

    #[test]
    fn zeroing_a_giant_group_removes_its_rotation_and_products() {
        let s = shape(16, 16, 32, 3, 1);
        let l = PackingLayout::new(&s, 8192, bsgs(2)).unwrap();
        let mut w = vec![1.0f32; s.weight_len()];
        let before = conv_cost(&l, &w).cost;
        let group = PruneGroup::Diagonal {
            layer: 0,
            block: 1,
            half: Half::Cross,
            giant: 1,
        };
        zero_group(&l, &mut w, group);
        let after = conv_cost(&l, &w).cost;
        assert_eq!(before.rot_output - after.rot_output, 1);
        assert_eq!(before.rot_input, after.rot_input);
        // B = 2 diagonals x 2 input blocks x 9 offsets.
        assert_eq!(before.pmults - after.pmults, 2 * 2 * 9);
    }

    #[test]
    fn zeroing_a_positional_group_removes_one_rotation() {
        let s = shape(16, 16, 32, 3, 1);
        let l = PackingLayout::new(&s, 8192, bsgs(2)).unwrap();
        let mut w = vec![1.0f32; s.weight_len()];
        let before = conv_cost(&l, &w).cost;
        let group = PruneGroup::Positional {
            layer: 0,
            block: 1,
            offset: 7,
            baby: 1,
        };
        zero_group(&l, &mut w, group);
        let after = conv_cost(&l, &w).cost;
        assert_eq!(before.rot_input - after.rot_input, 1);
        assert_eq!(
            before.rot_output + before.row_swaps,
            after.rot_output + after.row_swaps
        );
        // One mask per output block, giant step and half.
        assert_eq!(
            before.pmults - after.pmults,
            l.n_out() * l.giants() * l.halves()
        );
    }
}
