//! A whole network's counts: every layer (the convs, then the FC layer)
//! under the layout its [`Scheduler`] chooses for its weights (slots, or
//! coefficients), with the distinct rotations (Galois keys) of the network,
//! and the layouts the executor then runs.

use std::collections::BTreeSet;
use std::ops::Add;

use serde::Serialize;

use crate::Error;
use crate::arch::ConvShape;
use crate::arch::NetSpec;
use crate::cost::{KeySet, LayerCost, LayerPlanCost, conv_cost};
use crate::layer::LayerLayout;
use crate::layout::Rotation;
use crate::noise::NoiseDepth;
use crate::schedule::{Role, Schedule, Scheduler};

/// One row of a network's cost table: the layer's shape, the schedule it
/// runs under, and its counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    pub layer: String,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    /// The layer's packing (`bsgs`, `bsgs+phases`, `gazelle`,
    /// `coefficients 3x34x34`, ...).
    pub schedule: String,
    /// Baby step (0 under coefficient encoding, which has none).
    pub baby_step: usize,
    /// Input period `p` (channel positions between repeats; 0 under
    /// coefficient encoding).
    pub period: usize,
    /// Stride phases the layer runs on (1: the full grid).
    pub phases: usize,
    /// Channel positions per ciphertext (both rows; channels per block
    /// under coefficient encoding).
    pub cn: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub cost: LayerCost,
    /// What the layer's noisiest output block goes through.
    pub depth: NoiseDepth,
}

/// Per-layer rows (convs in `NetSpec` order, then fc), their total, and the
/// layouts they were counted under (what the executor runs).
#[derive(Debug, Clone, Serialize)]
pub struct HeCost {
    pub poly_degree: usize,
    pub schedule: Schedule,
    pub layers: Vec<LayerRow>,
    pub total: LayerCost,
    /// Distinct rotations over the whole network (Galois keys a client
    /// would generate once).
    pub keys: usize,
    #[serde(skip)]
    pub rotations: BTreeSet<Rotation>,
    /// The keys of those rotations by how they are applied.
    #[serde(skip)]
    pub key_set: KeySet,
    #[serde(skip)]
    pub layouts: Vec<LayerLayout>,
}

impl HeCost {
    /// A depth no layer exceeds: what the ciphertext modulus must hold.
    pub fn depth(&self) -> NoiseDepth {
        self.layers
            .iter()
            .map(|r| r.depth)
            .fold(NoiseDepth::default(), NoiseDepth::max)
    }
}

/// Counts every layer of `spec` for the given weights, each under the
/// layout `scheduler` chooses for its nonzero pattern.
pub fn network_cost<T: Copy + Default + PartialEq>(
    spec: &NetSpec,
    conv_weights: &[Vec<T>],
    fc_weight: &[T],
    scheduler: &Scheduler,
) -> Result<HeCost, Error> {
    counted(
        spec,
        conv_weights,
        fc_weight,
        scheduler,
        |_, shape, role, w| scheduler.layer(shape, role, w),
    )
}

/// Counts every layer of `spec` for the given weights under fixed
/// `layouts` (one per conv, then the FC, as another network's [`HeCost`]
/// chose them): what a pruned network costs when it must keep the dense
/// network's packing, so that its packing says nothing about its pruning.
pub fn network_cost_under<T: Copy + Default + PartialEq>(
    spec: &NetSpec,
    conv_weights: &[Vec<T>],
    fc_weight: &[T],
    scheduler: &Scheduler,
    layouts: &[LayerLayout],
) -> Result<HeCost, Error> {
    if layouts.len() != spec.convs.len() + 1 {
        return Err(Error::LayerCount {
            expected: spec.convs.len() + 1,
            got: layouts.len(),
        });
    }
    counted(
        spec,
        conv_weights,
        fc_weight,
        scheduler,
        |i, shape, _, w| {
            let layout = &layouts[i];
            if layout.shape() != shape {
                return Err(Error::WeightLength {
                    layer: shape.name.clone(),
                    expected: layout.shape().weight_len(),
                    got: shape.weight_len(),
                });
            }
            let cost = match layout {
                LayerLayout::Slots(l) => conv_cost(l, w),
                // Every product is computed, whatever the weights.
                LayerLayout::Coefficients(l) => LayerPlanCost {
                    cost: l.cost(),
                    depth: l.depth(),
                    ..LayerPlanCost::default()
                },
            };
            Ok((layout.clone(), cost))
        },
    )
}

/// Counts every layer under the layout `choose` gives layer `i`.
fn counted<T: Copy + Default + PartialEq>(
    spec: &NetSpec,
    conv_weights: &[Vec<T>],
    fc_weight: &[T],
    scheduler: &Scheduler,
    mut choose: impl FnMut(usize, &ConvShape, Role, &[T]) -> Result<(LayerLayout, LayerPlanCost), Error>,
) -> Result<HeCost, Error> {
    if conv_weights.len() != spec.convs.len() {
        return Err(Error::LayerCount {
            expected: spec.convs.len(),
            got: conv_weights.len(),
        });
    }
    let fc = spec.fc.as_conv();
    let layers = spec
        .convs
        .iter()
        .zip(conv_weights)
        .map(|(shape, w)| (shape, Role::Conv, w.as_slice()))
        .chain([(&fc, Role::Fc, fc_weight)]);
    let mut rows = Vec::with_capacity(spec.convs.len() + 1);
    let mut layouts = Vec::with_capacity(spec.convs.len() + 1);
    let mut rotations = BTreeSet::new();
    let mut key_set = KeySet::default();
    for (i, (shape, role, w)) in layers.enumerate() {
        check_len(&shape.name, shape.weight_len(), w.len())?;
        let (layout, plan) = choose(i, shape, role, w)?;
        rotations.extend(plan.steps);
        key_set.extend(&plan.key_set);
        let (baby_step, period, phases, cn) = match &layout {
            LayerLayout::Slots(l) => (l.baby_step(), l.period(), l.phase_count(), l.positions()),
            LayerLayout::Coefficients(l) => (0, 0, 1, l.channels_per_block()),
        };
        rows.push(LayerRow {
            layer: shape.name.clone(),
            c_in: shape.c_in,
            c_out: shape.c_out,
            h: shape.h,
            w: shape.w,
            k: shape.k,
            stride: shape.stride,
            schedule: layout.describe(),
            baby_step,
            period,
            phases,
            cn,
            n_in: layout.n_in(),
            n_out: layout.n_out(),
            cost: plan.cost,
            depth: plan.depth,
        });
        layouts.push(layout);
    }
    let total = rows
        .iter()
        .map(|r| r.cost)
        .fold(LayerCost::default(), Add::add);
    Ok(HeCost {
        poly_degree: scheduler.poly_degree(),
        schedule: scheduler.schedule(),
        layers: rows,
        total,
        keys: rotations.len(),
        rotations,
        key_set,
        layouts,
    })
}

/// The dense network (every weight nonzero).
pub fn dense_network_cost(spec: &NetSpec, scheduler: &Scheduler) -> Result<HeCost, Error> {
    let convs: Vec<Vec<bool>> = spec
        .convs
        .iter()
        .map(|c| vec![true; c.weight_len()])
        .collect();
    let fc = vec![true; spec.fc.in_features * spec.fc.out_features];
    network_cost(spec, &convs, &fc, scheduler)
}

fn check_len(layer: &str, expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::WeightLength {
            layer: layer.to_string(),
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, DatasetKind};

    use crate::schedule::Hoisting;

    #[test]
    fn resnet20_networks_have_a_row_per_layer_and_a_total() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        let scheduler = |schedule| crate::fixtures::scheduler(schedule, Hoisting::Off);
        let best = dense_network_cost(&spec, &scheduler(Schedule::Best)).unwrap();
        let gazelle = dense_network_cost(&spec, &scheduler(Schedule::Gazelle)).unwrap();
        for cost in [&best, &gazelle] {
            assert_eq!(cost.layers.len(), spec.convs.len() + 1);
            let sum: usize = cost.layers.iter().map(|r| r.cost.rotations()).sum();
            assert_eq!(cost.total.rotations(), sum);
            assert_eq!(cost.layouts.len(), cost.layers.len());
        }
        assert_eq!(gazelle.layers.last().unwrap().cost.rotations(), 17);
        // One key per rotation step: fhe.rs's without hoisting, the
        // hoisting key under it, even for a step that rotates both inputs
        // (hoisted) and outputs (a full switch).
        for cost in [&best, &gazelle] {
            assert_eq!(cost.key_set.rotations(), cost.rotations);
            assert!(cost.key_set.hoisted.is_empty(), "hoisting is off");
        }
        assert!(best.total.rotations() < gazelle.total.rotations());
        let hoisting = crate::fixtures::scheduler(Schedule::Best, Hoisting::On);
        let hoisted = dense_network_cost(&spec, &hoisting).unwrap();
        assert!(hoisted.key_set.full.is_empty());
        assert_eq!(hoisted.key_set.hoisted, hoisted.rotations);
        assert!(hoisted.total.full_rotations() > 0, "outputs rotate in full");
    }

    /// Under coefficient encoding every layer, the FC layer included, is
    /// laid out in coefficients: no rotation, no key, and every product
    /// computed, so pruning single weights changes nothing.
    #[test]
    fn the_coefficient_schedule_rotates_nothing_and_ignores_zeros() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        let scheduler = crate::fixtures::scheduler(Schedule::Coefficients, Hoisting::On);
        let dense = dense_network_cost(&spec, &scheduler).unwrap();
        assert_eq!(dense.layers.len(), spec.convs.len() + 1);
        assert_eq!((dense.total.rotations(), dense.keys), (0, 0));
        assert_eq!(dense.key_set, KeySet::default());
        let mut sum = LayerCost::default();
        for (row, layout) in dense.layers.iter().zip(&dense.layouts) {
            let LayerLayout::Coefficients(l) = layout else {
                panic!("{} is not in coefficients", row.layer);
            };
            assert_eq!(row.cost, l.cost());
            assert_eq!(
                (row.n_in, row.n_out),
                (l.input_ciphertexts(), l.output_ciphertexts())
            );
            sum = sum + l.cost();
        }
        assert_eq!(dense.total, sum);
        let zeros: Vec<Vec<bool>> = spec
            .convs
            .iter()
            .map(|c| vec![false; c.weight_len()])
            .collect();
        let fc = vec![false; spec.fc.in_features * spec.fc.out_features];
        let pruned = network_cost(&spec, &zeros, &fc, &scheduler).unwrap();
        assert_eq!(pruned.total, dense.total);
        let under = network_cost_under(&spec, &zeros, &fc, &scheduler, &dense.layouts).unwrap();
        assert_eq!(under.total, dense.total);
    }

    #[test]
    fn a_pruned_network_under_the_dense_packing_needs_only_dense_keys() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
        let scheduler = crate::fixtures::scheduler(Schedule::Best, Hoisting::On);
        let dense = dense_network_cost(&spec, &scheduler).unwrap();
        // Every second output channel of every layer pruned away.
        let prune = |c: &crate::arch::ConvShape| -> Vec<bool> {
            let per = c.weight_len() / c.c_out;
            (0..c.weight_len())
                .map(|i| (i / per).is_multiple_of(2))
                .collect()
        };
        let convs: Vec<Vec<bool>> = spec.convs.iter().map(prune).collect();
        let fc = prune(&spec.fc.as_conv());
        let own = network_cost(&spec, &convs, &fc, &scheduler).unwrap();
        let under = network_cost_under(&spec, &convs, &fc, &scheduler, &dense.layouts).unwrap();
        assert!(dense.key_set.covers(&under.key_set));
        assert!(under.total.rotations() <= dense.total.rotations());
        assert!(
            own.total.latency_ms(scheduler.costs())
                <= under.total.latency_ms(scheduler.costs()) + 1e-9
        );
        for (row, layout) in under.layers.iter().zip(&dense.layouts) {
            assert_eq!(row.schedule, layout.describe());
        }
        assert!(matches!(
            network_cost_under(&spec, &convs, &fc, &scheduler, &dense.layouts[1..]),
            Err(Error::LayerCount { .. })
        ));
    }
}
