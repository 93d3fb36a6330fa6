//! Groups and the pruner: which weights each strategy prunes together, their
//! penalty weights, and which groups a target removes.

use serde::{Deserialize, Serialize};

use super::{GroupWeighting, PruneError, Strategy, TargetMetric};
use explore_he_model::arch::NetSpec;
use explore_he_model::cost::{self, LayerCost};
use explore_he_model::layout::{PackingLayout, PruneGroup};
use explore_he_model::schedule::{Role, Scheduler};

/// The cost model's counts for one layer's weights or mask.
fn layer_cost(layout: &PackingLayout, weights: &[f32]) -> LayerCost {
    cost::conv_cost(layout, weights).cost
}

/// What one group is: an HE group of the cost model, an internal channel of
/// a residual block, or a single weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupKind {
    He(PruneGroup),
    Channel { block: usize, channel: usize },
    Weight { layer: usize, index: usize },
}

/// A set of weights pruned together: indices into one or more conv layers'
/// row-major `[c_out, c_in, k, k]` weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub kind: GroupKind,
    /// `(layer, indices)`, one entry per layer the group touches.
    pub parts: Vec<(usize, Vec<usize>)>,
    /// Penalty weight `w_g`; the ranking divides the group norm by it.
    pub weight: f64,
}

impl Group {
    fn single(kind: GroupKind, layer: usize, indices: Vec<usize>) -> Group {
        Group {
            kind,
            parts: vec![(layer, indices)],
            weight: 1.0,
        }
    }

    /// The layer of a group that lies in one layer (HE groups, weights).
    pub fn layer(&self) -> Option<usize> {
        match self.parts.as_slice() {
            [(l, _)] => Some(*l),
            _ => None,
        }
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|(_, i)| i.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The L2 norm of the group's entries of `weights` (per conv layer).
    pub fn norm(&self, weights: &[Vec<f32>]) -> f64 {
        self.parts
            .iter()
            .flat_map(|(l, idx)| idx.iter().map(move |&i| (weights[*l][i] as f64).powi(2)))
            .sum::<f64>()
            .sqrt()
    }
}

/// Everything a strategy needs about a network: its prunable layers, the
/// layouts they run under, and its groups.
#[derive(Debug, Clone)]
pub struct Pruner {
    pub strategy: Strategy,
    pub net: NetSpec,
    /// Each conv's layout under the spec's schedule, chosen for the dense
    /// network: the rotations the HE groups remove.
    pub layouts: Vec<PackingLayout>,
    /// `prunable[l]` is false for layers the spec keeps dense (the stem by default).
    pub prunable: Vec<bool>,
    pub groups: Vec<Group>,
    /// What re-chooses a pruned layer's schedule, as deployment does.
    scheduler: Scheduler,
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
    /// Builds the groups of `strategy` over the prunable convs of `net`,
    /// each conv laid out as `scheduler` lays out the dense network.
    /// `weighting` sets the penalty weights of HE groups (baselines rank by
    /// plain or size-normalized norm); the scheduler's costs price the
    /// latency a group saves.
    pub fn new(
        net: &NetSpec,
        strategy: Strategy,
        include_first: bool,
        scheduler: &Scheduler,
        weighting: GroupWeighting,
    ) -> Result<Pruner, PruneError> {
        let layouts = net
            .convs
            .iter()
            .map(|c| {
                let dense = vec![true; c.weight_len()];
                Ok(scheduler.layout(c, Role::Conv, &dense)?.0)
            })
            .collect::<Result<Vec<_>, explore_he_model::Error>>()?;
        let prunable: Vec<bool> = (0..net.convs.len())
            .map(|l| l > 0 || include_first)
            .collect();
        let mut groups = Vec::new();
        match strategy {
            Strategy::Dense | Strategy::DenseMatched => {}
            Strategy::Channel => {
                for (block, b) in net.blocks.iter().enumerate() {
                    let (c1, c2) = (&net.convs[b.conv1], &net.convs[b.conv2]);
                    let per = c1.c_in * c1.k * c1.k;
                    let k2 = c2.k * c2.k;
                    for channel in 0..c1.c_out {
                        let slice: Vec<usize> = (0..c2.c_out)
                            .flat_map(|o| {
                                let start = (o * c2.c_in + channel) * k2;
                                start..start + k2
                            })
                            .collect();
                        let parts = vec![
                            (b.conv1, (channel * per..(channel + 1) * per).collect()),
                            (b.conv2, slice),
                        ];
                        let size = parts
                            .iter()
                            .map(|(_, i): &(usize, Vec<usize>)| i.len())
                            .sum::<usize>();
                        groups.push(Group {
                            kind: GroupKind::Channel { block, channel },
                            parts,
                            weight: (size as f64).sqrt(),
                        });
                    }
                }
            }
            Strategy::Unstructured => {
                for (l, shape) in net.convs.iter().enumerate().filter(|(l, _)| prunable[*l]) {
                    groups.extend((0..shape.weight_len()).map(|i| {
                        Group::single(GroupKind::Weight { layer: l, index: i }, l, vec![i])
                    }));
                }
            }
            Strategy::Positional | Strategy::Diagonal | Strategy::Hybrid => {
                let keep = |g: &PruneGroup| match (strategy, g) {
                    (Strategy::Hybrid, _) => true,
                    (Strategy::Positional, PruneGroup::Positional { .. }) => true,
                    (Strategy::Diagonal, PruneGroup::Diagonal { .. }) => true,
                    _ => false,
                };
                for (l, layout) in layouts.iter().enumerate().filter(|(l, _)| prunable[*l]) {
                    let dense = vec![1.0f32; net.convs[l].weight_len()];
                    let dense_ms = layer_cost(layout, &dense).latency_ms(scheduler.costs());
                    for (g, indices) in layout.groups(l).into_iter().filter(|(g, _)| keep(g)) {
                        let size = (indices.len() as f64).sqrt();
                        let weight = match weighting {
                            GroupWeighting::Uniform => 1.0,
                            GroupWeighting::SqrtSize => size,
                            GroupWeighting::HeCost => {
                                let mut w = dense.clone();
                                indices.iter().for_each(|&i| w[i] = 0.0);
                                dense_ms - layer_cost(layout, &w).latency_ms(scheduler.costs())
                            }
                        };
                        groups.push(Group {
                            weight,
                            ..Group::single(GroupKind::He(g), l, indices)
                        });
                    }
                }
                if weighting == GroupWeighting::HeCost {
                    let mean =
                        groups.iter().map(|g| g.weight).sum::<f64>() / groups.len().max(1) as f64;
                    groups.iter_mut().for_each(|g| g.weight /= mean);
                }
            }
        }
        Ok(Pruner {
            strategy,
            net: net.clone(),
            layouts,
            prunable,
            groups,
            scheduler: *scheduler,
        })
    }

    /// Counts of conv `layer` with the nonzero pattern of `mask`, under the
    /// schedule deployment would choose for that pattern (pruning can make
    /// a smaller baby step the cheaper one).
    fn deployed_cost(&self, layer: usize, mask: &[f32]) -> LayerCost {
        match self
            .scheduler
            .layout(&self.net.convs[layer], Role::Conv, mask)
        {
            Ok((_, plan)) => plan.cost,
            // The dense layout was possible, so the pruned one is too.
            Err(_) => layer_cost(&self.layouts[layer], mask),
        }
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
        self.select_from(weights, target, metric, &Mask::dense(&self.net))
    }

    /// [`Self::select`] starting from `from`: its zeros stay zero and count
    /// towards the target (masks only grow along a pruning trajectory).
    pub fn select_from(
        &self,
        weights: &[Vec<f32>],
        target: f64,
        metric: TargetMetric,
        from: &Mask,
    ) -> Result<Mask, PruneError> {
        if !(0.0..1.0).contains(&target) {
            return Err(PruneError::BadTarget(target));
        }
        let mut mask = from.clone();
        if target == 0.0 {
            return Ok(mask);
        }
        let score = |g: &Group| {
            if g.weight > 0.0 {
                g.norm(weights) / g.weight
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
        let zeros = |m: &[f32]| m.iter().filter(|v| **v == 0.0).count();
        let mut removed: usize = mask
            .layers
            .iter()
            .zip(&self.prunable)
            .filter(|(_, p)| **p)
            .map(|(m, _)| zeros(m))
            .sum();
        let mut kept: Vec<usize> = mask.layers.iter().map(|m| m.len() - zeros(m)).collect();
        let mut layer_rot: Vec<usize> = (0..self.net.convs.len())
            .map(|l| self.deployed_cost(l, &mask.layers[l]).rotations())
            .collect();
        let dense_rot: usize = (0..self.net.convs.len())
            .map(|l| layer_cost(&self.layouts[l], &vec![1.0f32; mask.layers[l].len()]).rotations())
            .sum();
        let met = |removed: usize, rot: usize| match metric {
            TargetMetric::Weights => removed as f64 >= target * total_weights as f64,
            TargetMetric::Rotations => rot as f64 <= (1.0 - target) * dense_rot as f64,
        };
        if met(removed, layer_rot.iter().sum()) {
            return Ok(mask);
        }
        for (_, gi) in order {
            let g = &self.groups[gi];
            let newly: Vec<usize> = g
                .parts
                .iter()
                .map(|(l, idx)| idx.iter().filter(|&&i| mask.layers[*l][i] != 0.0).count())
                .collect();
            // A layer with no weight left cuts the network in two (and a
            // downsampling block with its shortcut), so its last group stays.
            if newly.iter().all(|&n| n == 0)
                || g.parts.iter().zip(&newly).any(|((l, _), &n)| n == kept[*l])
            {
                continue;
            }
            for ((l, idx), n) in g.parts.iter().zip(&newly) {
                idx.iter().for_each(|&i| mask.layers[*l][i] = 0.0);
                removed += n;
                kept[*l] -= n;
                if metric == TargetMetric::Rotations {
                    layer_rot[*l] = self.deployed_cost(*l, &mask.layers[*l]).rotations();
                }
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

    /// Cost-model counts per conv layer of `mask`, each under the schedule
    /// deployment chooses for its pattern.
    pub fn layer_costs(&self, mask: &Mask) -> Vec<LayerCost> {
        (0..self.net.convs.len())
            .map(|l| self.deployed_cost(l, &mask.layers[l]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use explore_he_model::arch::{Arch, DatasetKind};

    use explore_he_model::schedule::{Hoisting, Schedule};
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

    /// The paper's setting, every rotation a full key switch: with hoisting
    /// the schedule moves still more rotations to the input side, where
    /// diagonal groups cannot remove them.
    fn scheduler() -> Scheduler {
        explore_he_model::fixtures::scheduler(Schedule::Best, Hoisting::Off)
    }

    fn pruner(strategy: Strategy) -> Pruner {
        Pruner::new(
            &net(),
            strategy,
            false,
            &scheduler(),
            GroupWeighting::HeCost,
        )
        .unwrap()
    }

    /// A group's layer, its dense and pruned counts, and the masks it empties.
    fn remove(p: &Pruner, g: &Group) -> (LayerCost, LayerCost, usize) {
        let l = g.layer().unwrap();
        let layout = &p.layouts[l];
        let dense = vec![1.0f32; p.net.convs[l].weight_len()];
        let mut pruned = dense.clone();
        g.parts[0].1.iter().for_each(|&i| pruned[i] = 0.0);
        let emptied =
            cost::live_masks(layout, &dense).len() - cost::live_masks(layout, &pruned).len();
        (
            layer_cost(layout, &dense),
            layer_cost(layout, &pruned),
            emptied,
        )
    }

    #[test]
    fn one_diagonal_group_removes_one_giant_rotation_and_its_multiplications() {
        let p = pruner(Strategy::Diagonal);
        let g = p
            .groups
            .iter()
            .find(|g| matches!(g.kind, GroupKind::He(PruneGroup::Diagonal { giant, .. }) if giant > 0))
            .unwrap();
        let (before, after, emptied) = remove(&p, g);
        assert_eq!(before.rot_output - after.rot_output, 1);
        assert_eq!(before.rot_input, after.rot_input);
        assert!(emptied > 0);
        assert_eq!(before.pmults - after.pmults, emptied);
    }

    #[test]
    fn one_positional_group_removes_one_rotated_input() {
        let p = pruner(Strategy::Positional);
        let g = &p.groups[0];
        let (before, after, emptied) = remove(&p, g);
        assert_eq!(before.rot_input - after.rot_input, 1);
        assert_eq!(
            before.rot_output + before.row_swaps,
            after.rot_output + after.row_swaps
        );
        assert_eq!(before.pmults - after.pmults, emptied);
    }

    #[test]
    fn channel_groups_span_a_filter_and_the_slice_it_feeds() {
        let p = pruner(Strategy::Channel);
        let b = p.net.blocks[0];
        let g = &p.groups[0];
        assert_eq!(
            g.kind,
            GroupKind::Channel {
                block: 0,
                channel: 0
            }
        );
        let (c1, c2) = (&p.net.convs[b.conv1], &p.net.convs[b.conv2]);
        assert_eq!(g.parts[0], (b.conv1, (0..c1.c_in * 9).collect()));
        assert_eq!((g.parts[1].0, g.parts[1].1.len()), (b.conv2, c2.c_out * 9));
        let internal: usize = p
            .net
            .blocks
            .iter()
            .map(|b| p.net.convs[b.conv1].c_out)
            .sum();
        assert_eq!(p.groups.len(), internal);
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
            let largest = p.groups.iter().map(Group::len).max().unwrap();
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
        // Row folds halve the output-side rotations of these narrow layers,
        // so diagonal groups can remove only about 30 % of the rotations.
        let m = p.select(&w, 0.25, TargetMetric::Rotations).unwrap();
        let rot: usize = p.layer_costs(&m).iter().map(LayerCost::rotations).sum();
        assert!(
            rot as f64 <= 0.75 * dense_rot as f64,
            "{rot} of {dense_rot}"
        );
        let e = p.select(&w, 0.5, TargetMetric::Rotations).unwrap_err();
        assert!(matches!(e, PruneError::Unreachable { .. }), "{e}");
    }

    #[test]
    fn no_layer_is_pruned_away() {
        let w = random_weights(&net(), 4);
        for strategy in [Strategy::Positional, Strategy::Hybrid, Strategy::Channel] {
            let p = pruner(strategy);
            let m = p.select(&w, 0.85, TargetMetric::Weights).unwrap();
            for (l, layer) in m.layers.iter().enumerate() {
                assert!(
                    layer.contains(&1.0),
                    "{strategy}: layer {l} lost every weight"
                );
            }
        }
        // Keeping one rotated input per layer caps positional pruning: each
        // layer keeps the weights of its last (offset, baby step) group.
        let p = pruner(Strategy::Positional);
        let total: usize = p.net.convs.iter().skip(1).map(|c| c.weight_len()).sum();
        let smallest_kept: usize = (1..p.net.convs.len())
            .map(|l| {
                p.groups
                    .iter()
                    .filter(|g| g.layer() == Some(l))
                    .map(Group::len)
                    .min()
                    .unwrap()
            })
            .sum();
        let cap = 1.0 - smallest_kept as f64 / total as f64;
        match p.select(&w, 0.999, TargetMetric::Weights) {
            Err(PruneError::Unreachable { reachable, .. }) => {
                assert!(
                    reachable > 0.8 && reachable <= cap + 1e-12,
                    "{reachable} vs {cap}"
                )
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
        // The giant-0 group saves no rotation, so it is cheaper than a
        // giant-1 group of the same layer.
        let of = |d: usize| {
            p.groups
                .iter()
                .find(|g| g.layer() == Some(1) && matches!(g.kind, GroupKind::He(PruneGroup::Diagonal { giant, .. }) if giant == d))
                .unwrap()
                .weight
        };
        assert!(of(0) < of(1));
    }
}
