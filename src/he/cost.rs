//! The HE cost model: how many rotations, ct x pt multiplications and
//! additions a layer's packing needs given which of its weights are nonzero,
//! and what that costs in milliseconds. The pruner, the sweep and `explore
//! count` all count through this module.

use std::collections::BTreeSet;
use std::ops::Add;

use serde::Serialize;

use super::HeError;
use super::layout::{FcLayout, PackingLayout};
use crate::arch::NetSpec;
use serde::Deserialize;

/// Milliseconds per HE primitive: what prices a count as latency. The spec
/// fixes them (so pruning and schedule choices are reproducible); a sweep
/// also measures them at its start for the latency model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimitiveCosts {
    pub rot_ms: f64,
    pub pmul_ms: f64,
    pub add_ms: f64,
}

impl Default for PrimitiveCosts {
    /// fhe.rs at N = 8192 on the project's 2-core machines.
    fn default() -> Self {
        PrimitiveCosts {
            rot_ms: 2.5,
            pmul_ms: 0.19,
            add_ms: 0.056,
        }
    }
}

/// Operation counts of one layer (or a sum of layers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LayerCost {
    pub rot_positional: usize,
    pub rot_diagonal: usize,
    pub pmults: usize,
    pub adds: usize,
    /// Distinct rotation steps, i.e. Galois keys the layer needs.
    pub keys: usize,
}

impl LayerCost {
    pub fn rotations(&self) -> usize {
        self.rot_positional + self.rot_diagonal
    }

    pub fn latency_ms(&self, c: &PrimitiveCosts) -> f64 {
        self.rotations() as f64 * c.rot_ms
            + self.pmults as f64 * c.pmul_ms
            + self.adds as f64 * c.add_ms
    }
}

/// Summing layers adds keys too: an upper bound on the network's distinct
/// keys, see [`HeCost::keys`] for the exact union.
impl Add for LayerCost {
    type Output = LayerCost;
    fn add(self, o: LayerCost) -> LayerCost {
        LayerCost {
            rot_positional: self.rot_positional + o.rot_positional,
            rot_diagonal: self.rot_diagonal + o.rot_diagonal,
            pmults: self.pmults + o.pmults,
            adds: self.adds + o.adds,
            keys: self.keys + o.keys,
        }
    }
}

/// A layer's counts together with the rotation steps it uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerPlanCost {
    pub cost: LayerCost,
    pub steps: BTreeSet<usize>,
}

/// Counts for a conv layer whose nonzero weights are those of `weights`
/// (`[c_out, c_in, k, k]`; any type with a zero default: f32 weights, 0/1
/// masks, quantized integers).
pub fn conv_cost<T: Copy + Default + PartialEq>(
    layout: &PackingLayout,
    weights: &[T],
) -> LayerPlanCost {
    let mut c = LayerCost::default();
    let mut steps = BTreeSet::new();
    let mut rotated = vec![false; layout.n_in() * layout.positions()];
    for b in 0..layout.n_out() {
        let mut live_diagonals = 0usize;
        for d in 0..layout.cn() {
            let mut products = 0;
            for a in 0..layout.n_in() {
                for p in 0..layout.positions() {
                    if layout.mask_is_live(weights, (a, b, d, p)) {
                        products += 1;
                        rotated[a * layout.positions() + p] = true;
                    }
                }
            }
            if products > 0 {
                c.pmults += products;
                c.adds += products - 1;
                live_diagonals += 1;
                if let Some(s) = layout.diagonal_step(d) {
                    c.rot_diagonal += 1;
                    steps.insert(s);
                }
            }
        }
        c.adds += live_diagonals.saturating_sub(1);
    }
    for (ap, _) in rotated.iter().enumerate().filter(|(_, r)| **r) {
        if let Some(s) = layout.positional_step(ap % layout.positions()) {
            c.rot_positional += 1;
            steps.insert(s);
        }
    }
    c.keys = steps.len();
    LayerPlanCost { cost: c, steps }
}

/// Counts for the FC layer (`[out, in]` weights), diagonal method.
pub fn fc_cost<T: Copy + Default + PartialEq>(layout: &FcLayout, weights: &[T]) -> LayerPlanCost {
    let live: Vec<usize> = (0..layout.n())
        .filter(|&d| layout.diagonal_is_live(weights, d))
        .collect();
    let steps: BTreeSet<usize> = live.iter().copied().filter(|&d| d > 0).collect();
    LayerPlanCost {
        cost: LayerCost {
            rot_positional: 0,
            rot_diagonal: steps.len(),
            pmults: live.len(),
            adds: live.len().saturating_sub(1),
            keys: steps.len(),
        },
        steps,
    }
}

/// One row of a network's cost table (the FC row has h = w = k = stride = 1,
/// cn = its padded length, n_in = n_out = 1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    pub layer: String,
    pub c_in: usize,
    pub c_out: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub cn: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub cost: LayerCost,
}

/// Per-layer rows (convs in `NetSpec` order, then fc) and their total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeCost {
    pub poly_degree: usize,
    pub layers: Vec<LayerRow>,
    pub total: LayerCost,
    /// Distinct rotation steps over the whole network (Galois keys a client
    /// would generate once).
    pub keys: usize,
}

/// Counts every layer of `spec` for the given weights at ring degree
/// `poly_degree`.
pub fn network_cost<T: Copy + Default + PartialEq>(
    spec: &NetSpec,
    conv_weights: &[Vec<T>],
    fc_weight: &[T],
    poly_degree: usize,
) -> Result<HeCost, HeError> {
    super::params::moduli_sizes(poly_degree)?;
    let slots = poly_degree / 2;
    if conv_weights.len() != spec.convs.len() {
        return Err(HeError::LayerCount {
            expected: spec.convs.len(),
            got: conv_weights.len(),
        });
    }
    let mut layers = Vec::with_capacity(spec.convs.len() + 1);
    let mut steps = BTreeSet::new();
    for (shape, w) in spec.convs.iter().zip(conv_weights) {
        check_len(&shape.name, shape.weight_len(), w.len())?;
        let layout = PackingLayout::new(shape, slots)?;
        let plan = conv_cost(&layout, w);
        steps.extend(plan.steps);
        layers.push(LayerRow {
            layer: shape.name.clone(),
            c_in: shape.c_in,
            c_out: shape.c_out,
            h: shape.h,
            w: shape.w,
            k: shape.k,
            stride: shape.stride,
            cn: layout.cn(),
            n_in: layout.n_in(),
            n_out: layout.n_out(),
            cost: plan.cost,
        });
    }
    let fc = &spec.fc;
    check_len(&fc.name, fc.in_features * fc.out_features, fc_weight.len())?;
    let fc_layout = FcLayout::new(fc, slots)?;
    let plan = fc_cost(&fc_layout, fc_weight);
    steps.extend(plan.steps);
    layers.push(LayerRow {
        layer: fc.name.clone(),
        c_in: fc.in_features,
        c_out: fc.out_features,
        h: 1,
        w: 1,
        k: 1,
        stride: 1,
        cn: fc_layout.n(),
        n_in: 1,
        n_out: 1,
        cost: plan.cost,
    });
    let total = layers
        .iter()
        .map(|r| r.cost)
        .fold(LayerCost::default(), Add::add);
    Ok(HeCost {
        poly_degree,
        layers,
        total,
        keys: steps.len(),
    })
}

/// The dense network (every weight nonzero).
pub fn dense_network_cost(spec: &NetSpec, poly_degree: usize) -> Result<HeCost, HeError> {
    let convs: Vec<Vec<bool>> = spec
        .convs
        .iter()
        .map(|c| vec![true; c.weight_len()])
        .collect();
    let fc = vec![true; spec.fc.in_features * spec.fc.out_features];
    network_cost(spec, &convs, &fc, poly_degree)
}

fn check_len(layer: &str, expected: usize, got: usize) -> Result<(), HeError> {
    if expected == got {
        Ok(())
    } else {
        Err(HeError::WeightLength {
            layer: layer.to_string(),
            expected,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, ConvShape, DatasetKind};
    use crate::he::layout::PruneGroup;

    fn layer16() -> (PackingLayout, Vec<f32>) {
        let shape = ConvShape {
            name: "l".into(),
            c_in: 16,
            c_out: 16,
            h: 32,
            w: 32,
            k: 3,
            stride: 1,
        };
        (
            PackingLayout::new(&shape, 4096).unwrap(),
            vec![1.0; shape.weight_len()],
        )
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
    fn dense_16_to_16_at_32x32() {
        let (l, w) = layer16();
        let c = conv_cost(&l, &w).cost;
        assert_eq!((c.rot_positional, c.rot_diagonal, c.pmults), (32, 12, 576));
        assert_eq!(c.rotations(), 44);
        // Per output block: 4 diagonals of 36 products, then 3 adds across them.
        assert_eq!(c.adds, 4 * (4 * 35 + 3));
        assert_eq!(c.keys, 8 + 3);
    }

    #[test]
    fn zeroing_a_diagonal_group_removes_one_rotation_and_its_products() {
        let (l, mut w) = layer16();
        let dense = conv_cost(&l, &w).cost;
        let group = PruneGroup::Diagonal {
            layer: 0,
            block: 2,
            diagonal: 1,
        };
        zero_group(&l, &mut w, group);
        let c = conv_cost(&l, &w).cost;
        assert_eq!(c.rot_diagonal, dense.rot_diagonal - 1);
        assert_eq!(c.rot_positional, dense.rot_positional);
        assert_eq!(c.pmults, dense.pmults - l.n_in() * 9);
        assert_eq!(c.adds, dense.adds - (l.n_in() * 9 - 1) - 1);
    }

    #[test]
    fn zeroing_a_positional_group_removes_one_rotation() {
        let (l, mut w) = layer16();
        let dense = conv_cost(&l, &w).cost;
        let group = PruneGroup::Positional {
            layer: 0,
            block: 1,
            position: 7,
        };
        zero_group(&l, &mut w, group);
        let c = conv_cost(&l, &w).cost;
        assert_eq!(c.rot_positional, dense.rot_positional - 1);
        assert_eq!(c.rot_diagonal, dense.rot_diagonal);
        assert_eq!(c.pmults, dense.pmults - l.n_out() * l.cn());
        // Every input block still uses step 7, so no key is saved.
        assert_eq!(c.keys, dense.keys);
    }

    #[test]
    fn resnet20_dense_network_has_a_row_per_layer_and_a_total() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        let cost = dense_network_cost(&spec, 8192).unwrap();
        assert_eq!(cost.layers.len(), spec.convs.len() + 1);
        let fc = cost.layers.last().unwrap();
        // 64 -> 10 padded to 64: all 64 diagonals live.
        assert_eq!((fc.cn, fc.cost.pmults, fc.cost.rot_diagonal), (64, 64, 63));
        let sum: usize = cost.layers.iter().map(|r| r.cost.rotations()).sum();
        assert_eq!(cost.total.rotations(), sum);
        // The stem: 3 input channels in one block, 4 output blocks.
        let stem = &cost.layers[0];
        assert_eq!((stem.n_in, stem.n_out, stem.cost.rot_positional), (1, 4, 8));
        assert!(cost.total.latency_ms(&PrimitiveCosts::default()) > 0.0);
        assert!(matches!(
            dense_network_cost(&spec, 1000),
            Err(HeError::BadDegree(1000))
        ));
    }
}
