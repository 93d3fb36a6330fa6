//! Pruning strategies: which weights form a group, how groups are weighted in
//! the group-Lasso penalty, and which groups a target removes.
//!
//! The HE-aware strategies take their groups from the cost model
//! ([`crate::he`]): a positional group removes one input block's spatial
//! rotation, a diagonal group one channel-alignment rotation and its plaintext
//! multiplications. `hybrid` lets both kinds compete on importance per unit of
//! latency saved. The baselines (`unstructured`, `channel`) are the usual
//! plaintext pruning. Masks are 0/1 per conv weight, in `NetSpec::convs` order.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::arch::NetSpec;
use crate::config::{GroupWeighting, Strategy, TargetMetric};
use crate::he::{self, HeError, LayerCost, PackingLayout, PrimitiveCosts, PruneGroup};

/// The cost model's counts for one layer's weights or mask.
fn layer_cost(layout: &PackingLayout, weights: &[f32]) -> LayerCost {
    he::conv_cost(layout, weights).cost
}
use crate::model::ResNet;
use crate::train::TrainHook;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(
        "target {0} is outside [0, 1): give the fraction removed, e.g. 0.8 (1.0 would remove everything)"
    )]
    BadTarget(f64),
    #[error(
        "strategy `{strategy}` cannot remove {target} of the {what}: at most {reachable:.3} while every layer keeps its last group; lower the target"
    )]
    Unreachable {
        strategy: Strategy,
        target: f64,
        what: &'static str,
        reachable: f64,
    },
    #[error(transparent)]
    He(#[from] HeError),
}

/// What one group is: an HE group of the cost model, a whole output filter,
/// or a single weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKind {
    He(PruneGroup),
    Filter { layer: usize, filter: usize },
    Weight { layer: usize, index: usize },
}

/// A set of weights of one conv layer that is pruned together.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub kind: GroupKind,
    pub layer: usize,
    /// Indices into the layer's row-major `[c_out, c_in, k, k]` weights.
    pub indices: Vec<usize>,
    /// Penalty weight `w_g`; the ranking divides the group norm by it.
    pub weight: f64,
}

/// Everything a strategy needs about a network: its prunable layers, their
/// packing layouts, and its groups.
#[derive(Debug, Clone)]
pub struct Pruner {
    pub strategy: Strategy,
    pub net: NetSpec,
    pub layouts: Vec<PackingLayout>,
    /// `prunable[l]` is false for layers the spec keeps dense (the stem by default).
    pub prunable: Vec<bool>,
    pub groups: Vec<Group>,
}

/// A 0/1 mask per conv layer (1 keeps the weight).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mask {
    pub layers: Vec<Vec<f32>>,
}

impl Mask {
    pub fn dense(net: &NetSpec) -> Mask {
        Mask {
            layers: net
                .convs
                .iter()
                .map(|c| vec![1.0; c.weight_len()])
                .collect(),
        }
    }

    /// Fraction of the prunable layers' weights the mask removes.
    pub fn sparsity(&self, prunable: &[bool]) -> f64 {
        let (zero, total) = self
            .layers
            .iter()
            .zip(prunable)
            .filter(|(_, p)| **p)
            .fold((0usize, 0usize), |(z, t), (m, _)| {
                (z + m.iter().filter(|v| **v == 0.0).count(), t + m.len())
            });
        if total == 0 {
            0.0
        } else {
            zero as f64 / total as f64
        }
    }
}

impl Pruner {
    /// Builds the groups of `strategy` over the prunable convs of `net`.
    /// `weighting` sets the penalty weights of HE groups (baselines rank by
    /// plain or size-normalized norm); `costs` prices the latency a group saves.
    pub fn new(
        net: &NetSpec,
        strategy: Strategy,
        include_first: bool,
        poly_degree: usize,
        weighting: GroupWeighting,
        costs: &PrimitiveCosts,
    ) -> Result<Pruner, PruneError> {
        he::params::moduli_sizes(poly_degree)?;
        let slots = poly_degree / 2;
        let layouts = net
            .convs
            .iter()
            .map(|c| PackingLayout::new(c, slots))
            .collect::<Result<Vec<_>, _>>()?;
        let prunable: Vec<bool> = (0..net.convs.len())
            .map(|l| l > 0 || include_first)
            .collect();
        let mut groups = Vec::new();
        for (l, layout) in layouts.iter().enumerate().filter(|(l, _)| prunable[*l]) {
            let shape = &net.convs[l];
            let he_groups = |keep: fn(&PruneGroup) -> bool| {
                layout
                    .groups(l)
                    .into_iter()
                    .filter(move |(g, _)| keep(g))
                    .map(move |(g, indices)| (GroupKind::He(g), indices))
            };
            let raw: Vec<(GroupKind, Vec<usize>)> = match strategy {
                Strategy::Dense => Vec::new(),
                Strategy::Positional => {
                    he_groups(|g| matches!(g, PruneGroup::Positional { .. })).collect()
                }
                Strategy::Diagonal => {
                    he_groups(|g| matches!(g, PruneGroup::Diagonal { .. })).collect()
                }
                Strategy::Hybrid => he_groups(|_| true).collect(),
                Strategy::Channel => {
                    let per = shape.c_in * shape.k * shape.k;
                    (0..shape.c_out)
                        .map(|o| {
                            (
                                GroupKind::Filter {
                                    layer: l,
                                    filter: o,
                                },
                                (o * per..(o + 1) * per).collect(),
                            )
                        })
                        .collect()
                }
                Strategy::Unstructured => (0..shape.weight_len())
                    .map(|i| (GroupKind::Weight { layer: l, index: i }, vec![i]))
                    .collect(),
            };
            let dense = vec![1.0f32; shape.weight_len()];
            let dense_ms = layer_cost(layout, &dense).latency_ms(costs);
            for (kind, indices) in raw {
                let size = (indices.len() as f64).sqrt();
                let weight = match (strategy, weighting) {
                    (Strategy::Channel, _) => size,
                    (s, _) if !s.is_he_aware() => 1.0,
                    (_, GroupWeighting::Uniform) => 1.0,
                    (_, GroupWeighting::SqrtSize) => size,
                    (_, GroupWeighting::HeCost) => {
                        let mut w = dense.clone();
                        indices.iter().for_each(|&i| w[i] = 0.0);
                        dense_ms - layer_cost(layout, &w).latency_ms(costs)
                    }
                };
                groups.push(Group {
                    kind,
                    layer: l,
                    indices,
                    weight,
                });
            }
        }
        if strategy.is_he_aware() && weighting == GroupWeighting::HeCost {
            let mean = groups.iter().map(|g| g.weight).sum::<f64>() / groups.len().max(1) as f64;
            groups.iter_mut().for_each(|g| g.weight /= mean);
        }
        Ok(Pruner {
            strategy,
            net: net.clone(),
            layouts,
            prunable,
            groups,
        })
    }

    /// Ranks groups by `||W_g|| / w_g` and zeroes the weakest until `target`
    /// (a fraction of prunable weights, or of dense rotations) is met; stops
    /// as soon as it is, so it overshoots by less than one group. No layer
    /// loses its last weights.
    pub fn select(
        &self,
        weights: &[Vec<f32>],
        target: f64,
        metric: TargetMetric,
    ) -> Result<Mask, PruneError> {
        if !(0.0..1.0).contains(&target) {
            return Err(PruneError::BadTarget(target));
        }
        let mut mask = Mask::dense(&self.net);
        if target == 0.0 {
            return Ok(mask);
        }
        let score = |g: &Group| {
            let w = &weights[g.layer];
            let norm = g
                .indices
                .iter()
                .map(|&i| (w[i] as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            if g.weight > 0.0 {
                norm / g.weight
            } else {
                f64::INFINITY
            }
        };
        let mut order: Vec<(f64, usize)> = self.groups.iter().map(score).zip(0..).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

        let total_weights: usize = self
            .net
            .convs
            .iter()
            .zip(&self.prunable)
            .filter(|(_, p)| **p)
            .map(|(c, _)| c.weight_len())
            .sum();
        let mut removed = 0usize;
        let mut kept: Vec<usize> = mask.layers.iter().map(Vec::len).collect();
        let mut layer_rot: Vec<usize> = self
            .layouts
            .iter()
            .zip(&mask.layers)
            .map(|(lay, m)| layer_cost(lay, m).rotations())
            .collect();
        let dense_rot: usize = layer_rot.iter().sum();
        let met = |removed: usize, rot: usize| match metric {
            TargetMetric::Weights => removed as f64 >= target * total_weights as f64,
            TargetMetric::Rotations => rot as f64 <= (1.0 - target) * dense_rot as f64,
        };
        for (_, gi) in order {
            let g = &self.groups[gi];
            let m = &mut mask.layers[g.layer];
            let newly = g.indices.iter().filter(|&&i| m[i] != 0.0).count();
            // A layer with no weight left cuts the network in two (and a
            // downsampling block with its shortcut), so its last group stays.
            if newly == 0 || newly == kept[g.layer] {
                continue;
            }
            g.indices.iter().for_each(|&i| m[i] = 0.0);
            removed += newly;
            kept[g.layer] -= newly;
            if metric == TargetMetric::Rotations {
                layer_rot[g.layer] = layer_cost(&self.layouts[g.layer], m).rotations();
            }
            if met(removed, layer_rot.iter().sum()) {
                return Ok(mask);
            }
        }
        let rot: usize = layer_rot.iter().sum();
        if met(removed, rot) {
            return Ok(mask);
        }
        Err(PruneError::Unreachable {
            strategy: self.strategy,
            target,
            what: match metric {
                TargetMetric::Weights => "prunable weights",
                TargetMetric::Rotations => "dense rotations",
            },
            reachable: match metric {
                TargetMetric::Weights => removed as f64 / total_weights as f64,
                TargetMetric::Rotations => 1.0 - rot as f64 / dense_rot.max(1) as f64,
            },
        })
    }

    /// The cost-weighted group-Lasso term for training, or `None` when the
    /// strategy has no HE groups.
    pub fn group_lasso(&self, lambda: f64, device: &Device) -> Option<GroupLasso> {
        if !self.strategy.is_he_aware() || lambda == 0.0 || self.groups.is_empty() {
            return None;
        }
        let layers = (0..self.net.convs.len())
            .filter_map(|l| {
                let groups: Vec<&Group> = self.groups.iter().filter(|g| g.layer == l).collect();
                (!groups.is_empty())
                    .then(|| LassoLayer::new(l, self.net.convs[l].weight_len(), &groups, device))
            })
            .collect();
        Some(GroupLasso { lambda, layers })
    }

    /// Cost-model counts per prunable layer of `mask`, for reports.
    pub fn layer_costs(&self, mask: &Mask) -> Vec<LayerCost> {
        self.layouts
            .iter()
            .zip(&mask.layers)
            .map(|(lay, m)| layer_cost(lay, m))
            .collect()
    }
}

/// `lambda * sum_g w_g * ||W_g||_2` over the groups of every prunable layer.
pub struct GroupLasso {
    lambda: f64,
    layers: Vec<LassoLayer>,
}

/// One layer's groups as a `[numel, G]` 0/1 membership matrix, so the squared
/// group norms are one matmul that autodiff differentiates.
struct LassoLayer {
    conv: usize,
    membership: Tensor<2>,
    weights: Tensor<2>,
}

impl LassoLayer {
    fn new(conv: usize, numel: usize, groups: &[&Group], device: &Device) -> LassoLayer {
        let g = groups.len();
        let mut m = vec![0.0f32; numel * g];
        for (j, group) in groups.iter().enumerate() {
            group.indices.iter().for_each(|&i| m[i * g + j] = 1.0);
        }
        let w: Vec<f32> = groups.iter().map(|x| x.weight as f32).collect();
        LassoLayer {
            conv,
            membership: Tensor::from_data(TensorData::new(m, [numel, g]), device),
            weights: Tensor::from_data(TensorData::new(w, [1, g]), device),
        }
    }
}

/// `sum_g w_g * sqrt(||W_g||^2 + eps)` for one weight tensor; `eps` keeps the
/// gradient finite at an all-zero group.
pub fn group_lasso_term(
    weight: Tensor<4>,
    membership: &Tensor<2>,
    weights: &Tensor<2>,
) -> Tensor<1> {
    const EPS: f32 = 1e-12;
    let numel: usize = weight.dims().iter().product();
    let squares = weight.reshape([1, numel]).square();
    let norms = squares.matmul(membership.clone()).add_scalar(EPS).sqrt();
    norms.mul(weights.clone()).sum()
}

impl TrainHook for GroupLasso {
    fn penalty(&self, model: &ResNet) -> Option<Tensor<1>> {
        let convs = model.conv_weights();
        self.layers
            .iter()
            .map(|l| group_lasso_term(convs[l.conv].clone(), &l.membership, &l.weights))
            .reduce(|a, b| a + b)
            .map(|p| p.mul_scalar(self.lambda))
    }
}

/// Re-applies a fixed mask after every optimizer step (fine-tuning).
pub struct MaskHook(pub Mask);

impl TrainHook for MaskHook {
    fn after_step(&self, model: ResNet) -> ResNet {
        model.apply_masks(&self.0.layers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, DatasetKind};
    use rand::{Rng, SeedableRng};

    fn net() -> NetSpec {
        NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap()
    }

    fn random_weights(net: &NetSpec, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        net.convs
            .iter()
            .map(|c| {
                (0..c.weight_len())
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect()
            })
            .collect()
    }

    fn pruner(strategy: Strategy) -> Pruner {
        Pruner::new(
            &net(),
            strategy,
            false,
            8192,
            GroupWeighting::HeCost,
            &PrimitiveCosts::default(),
        )
        .unwrap()
    }

    #[test]
    fn one_diagonal_group_removes_one_rotation_and_its_multiplications() {
        let p = pruner(Strategy::Diagonal);
        let g = p
            .groups
            .iter()
            .find(|g| matches!(g.kind, GroupKind::He(PruneGroup::Diagonal { diagonal, .. }) if diagonal > 0))
            .unwrap();
        let layout = &p.layouts[g.layer];
        let dense = vec![1.0f32; p.net.convs[g.layer].weight_len()];
        let mut pruned = dense.clone();
        g.indices.iter().for_each(|&i| pruned[i] = 0.0);
        let (before, after) = (layer_cost(layout, &dense), layer_cost(layout, &pruned));
        let k2 = p.net.convs[g.layer].k.pow(2);
        assert_eq!(before.rot_diagonal - after.rot_diagonal, 1);
        assert_eq!(before.rot_positional, after.rot_positional);
        assert_eq!(before.pmults - after.pmults, layout.n_in() * k2);
    }

    #[test]
    fn one_positional_group_removes_one_rotation() {
        let p = pruner(Strategy::Positional);
        let g = &p.groups[0];
        let layout = &p.layouts[g.layer];
        let dense = vec![1.0f32; p.net.convs[g.layer].weight_len()];
        let mut pruned = dense.clone();
        g.indices.iter().for_each(|&i| pruned[i] = 0.0);
        let (before, after) = (layer_cost(layout, &dense), layer_cost(layout, &pruned));
        assert_eq!(before.rot_positional - after.rot_positional, 1);
        assert_eq!(before.rot_diagonal, after.rot_diagonal);
    }

    #[test]
    fn unstructured_half_sparsity_keeps_rotations_diagonal_removes_them() {
        let w = random_weights(&net(), 1);
        let total = |p: &Pruner, m: &Mask| {
            p.layer_costs(m)
                .iter()
                .map(LayerCost::rotations)
                .sum::<usize>()
        };
        let u = pruner(Strategy::Unstructured);
        let um = u.select(&w, 0.5, TargetMetric::Weights).unwrap();
        let dense = total(&u, &Mask::dense(&u.net));
        let unstructured = total(&u, &um);
        let d = pruner(Strategy::Diagonal);
        let dm = d.select(&w, 0.5, TargetMetric::Weights).unwrap();
        let diagonal = total(&d, &dm);
        eprintln!(
            "rotations at 50% weight sparsity: dense {dense}, unstructured {unstructured}, diagonal {diagonal}"
        );
        assert!((um.sparsity(&u.prunable) - 0.5).abs() < 1e-3);
        assert_eq!(unstructured, dense);
        assert!(diagonal < dense);
    }

    #[test]
    fn target_is_met_within_one_group() {
        let w = random_weights(&net(), 2);
        for strategy in [
            Strategy::Positional,
            Strategy::Diagonal,
            Strategy::Hybrid,
            Strategy::Channel,
        ] {
            let p = pruner(strategy);
            let m = p.select(&w, 0.8, TargetMetric::Weights).unwrap();
            let total: usize = p.net.convs.iter().skip(1).map(|c| c.weight_len()).sum();
            let largest = p.groups.iter().map(|g| g.indices.len()).max().unwrap();
            let s = m.sparsity(&p.prunable);
            assert!(
                s >= 0.8 && s < 0.8 + largest as f64 / total as f64,
                "{strategy}: {s}"
            );
            assert!(m.layers[0].iter().all(|&v| v == 1.0), "stem stays dense");
        }
        let p = pruner(Strategy::Diagonal);
        let dense_rot: usize = p
            .layer_costs(&Mask::dense(&p.net))
            .iter()
            .map(LayerCost::rotations)
            .sum();
        let m = p.select(&w, 0.5, TargetMetric::Rotations).unwrap();
        let rot: usize = p.layer_costs(&m).iter().map(LayerCost::rotations).sum();
        assert!(rot as f64 <= 0.5 * dense_rot as f64, "{rot} of {dense_rot}");
    }

    #[test]
    fn no_layer_is_pruned_away() {
        let w = random_weights(&net(), 4);
        for strategy in [Strategy::Positional, Strategy::Hybrid, Strategy::Channel] {
            let p = pruner(strategy);
            let m = p.select(&w, 0.85, TargetMetric::Weights).unwrap();
            for (l, layer) in m.layers.iter().enumerate() {
                assert!(
                    layer.iter().any(|&v| v == 1.0),
                    "{strategy}: layer {l} lost every weight"
                );
            }
        }
        // Keeping one of nine kernel positions per layer caps positional
        // pruning below 8/9 of the weights.
        match pruner(Strategy::Positional).select(&w, 0.95, TargetMetric::Weights) {
            Err(PruneError::Unreachable { reachable, .. }) => {
                assert!(reachable > 0.8 && reachable < 8.0 / 9.0, "{reachable}")
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn target_zero_is_dense_and_one_is_refused() {
        let w = random_weights(&net(), 3);
        let p = pruner(Strategy::Hybrid);
        assert_eq!(
            p.select(&w, 0.0, TargetMetric::Weights).unwrap(),
            Mask::dense(&p.net)
        );
        let e = p
            .select(&w, 1.0, TargetMetric::Weights)
            .unwrap_err()
            .to_string();
        assert!(e.contains("target 1"), "{e}");
        let e = "magnitude".parse::<Strategy>().unwrap_err();
        assert!(e.contains("unknown strategy `magnitude`"), "{e}");
    }

    #[test]
    fn he_cost_weights_have_mean_one_and_price_rotations() {
        let p = pruner(Strategy::Hybrid);
        let mean = p.groups.iter().map(|g| g.weight).sum::<f64>() / p.groups.len() as f64;
        assert!((mean - 1.0).abs() < 1e-9);
        // A diagonal group at d = 0 saves no rotation, so it is cheaper than a
        // d > 0 group of the same layer.
        let of = |d: usize| {
            p.groups
                .iter()
                .find(|g| g.layer == 1 && matches!(g.kind, GroupKind::He(PruneGroup::Diagonal { diagonal, .. }) if diagonal == d))
                .unwrap()
                .weight
        };
        assert!(of(0) < of(1));
    }

    #[test]
    fn penalty_gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let (c_out, c_in, k) = (4usize, 6usize, 3usize);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let w: Vec<f32> = (0..c_out * c_in * k * k)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        // Overlapping groups: filters, and one kernel position across all channels.
        let mut groups: Vec<Vec<usize>> = (0..c_out)
            .map(|o| (o * c_in * k * k..(o + 1) * c_in * k * k).collect())
            .collect();
        groups.push((0..c_out * c_in).map(|oi| oi * k * k + 4).collect());
        let gw: Vec<f64> = (0..groups.len()).map(|j| 0.5 + j as f64 * 0.25).collect();
        let numel = w.len();
        let g = groups.len();
        let mut m = vec![0.0f32; numel * g];
        for (j, grp) in groups.iter().enumerate() {
            grp.iter().for_each(|&i| m[i * g + j] = 1.0);
        }
        let membership = Tensor::<2>::from_data(TensorData::new(m, [numel, g]), &device);
        let weights = Tensor::<2>::from_data(
            TensorData::new(gw.iter().map(|x| *x as f32).collect::<Vec<_>>(), [1, g]),
            &device,
        );
        let wt = Tensor::<4>::from_data(TensorData::new(w.clone(), [c_out, c_in, k, k]), &device)
            .require_grad();
        let grads = group_lasso_term(wt.clone(), &membership, &weights).backward();
        let grad = wt
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();

        let value = |w: &[f64]| -> f64 {
            groups
                .iter()
                .zip(&gw)
                .map(|(grp, c)| c * grp.iter().map(|&i| w[i] * w[i]).sum::<f64>().sqrt())
                .sum()
        };
        let w64: Vec<f64> = w.iter().map(|x| *x as f64).collect();
        let h = 1e-6;
        for i in (0..numel).step_by(7) {
            let (mut up, mut down) = (w64.clone(), w64.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (value(&up) - value(&down)) / (2.0 * h);
            assert!(
                (fd - grad[i] as f64).abs() < 1e-4,
                "weight {i}: autodiff {} vs finite difference {fd}",
                grad[i]
            );
        }
    }
}
