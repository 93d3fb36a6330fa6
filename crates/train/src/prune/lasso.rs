//! The group-Lasso phase and the hooks that keep pruning in force: the
//! cost-weighted penalty `lambda * sum_g w_g ||W_g||` either as a subgradient
//! on the autodiff graph ([`GroupLasso`]) or as a proximal step after each
//! optimizer step ([`ProximalLasso`]: exact zeros, no momentum on the
//! penalty), the fixed mask of fine-tuning ([`MaskHook`]), and gradual
//! pruning along a cubic schedule ([`GradualPruning`]).

use burn::tensor::{Device, Tensor, TensorData};

use super::pruner::{Group, Mask, Pruner};
use super::{Norm, PruneError, TargetMetric};
use crate::model::{MaskTensors, ResNet};
use crate::train::{Step, TrainHook};

/// `lambda * sum_g w_g * ||W_g||_2` over the groups of every prunable layer.
pub struct GroupLasso {
    lambda: f64,
    layers: Vec<LassoLayer>,
}

impl GroupLasso {
    /// The cost-weighted group-Lasso term of `pruner`'s groups for training,
    /// or `None` when the strategy has no HE groups.
    pub fn new(pruner: &Pruner, lambda: f64, device: &Device) -> Option<GroupLasso> {
        if !pruner.strategy.is_he_aware() || lambda == 0.0 || pruner.groups.is_empty() {
            return None;
        }
        let layers = (0..pruner.net.convs.len())
            .filter_map(|l| {
                let groups: Vec<(&[usize], f64)> = pruner
                    .groups
                    .iter()
                    .filter(|g| g.layer() == Some(l))
                    .map(|g| (g.parts[0].1.as_slice(), g.weight))
                    .collect();
                (!groups.is_empty())
                    .then(|| LassoLayer::new(l, pruner.net.convs[l].weight_len(), &groups, device))
            })
            .collect();
        Some(GroupLasso { lambda, layers })
    }
}

/// One layer's groups as a `[numel, G]` 0/1 membership matrix, so the squared
/// group norms are one matmul that autodiff differentiates.
struct LassoLayer {
    conv: usize,
    membership: Tensor<2>,
    weights: Tensor<2>,
}

impl LassoLayer {
    fn new(conv: usize, numel: usize, groups: &[(&[usize], f64)], device: &Device) -> LassoLayer {
        let g = groups.len();
        let mut m = vec![0.0f32; numel * g];
        for (j, (indices, _)) in groups.iter().enumerate() {
            indices.iter().for_each(|&i| m[i * g + j] = 1.0);
        }
        let w: Vec<f32> = groups.iter().map(|x| x.1 as f32).collect();
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

/// Re-applies a fixed mask after every optimizer step (fine-tuning), from
/// tensors uploaded to the device at the first step.
pub struct MaskHook {
    mask: Mask,
    on_device: Option<MaskTensors>,
}

impl MaskHook {
    pub fn new(mask: Mask) -> MaskHook {
        MaskHook {
            mask,
            on_device: None,
        }
    }

    /// The mask it keeps in force.
    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    /// The mask it kept in force.
    pub fn into_mask(self) -> Mask {
        self.mask
    }
}

impl TrainHook for MaskHook {
    fn after_step(&mut self, model: ResNet, _: &Step) -> ResNet {
        let masks = self
            .on_device
            .get_or_insert_with(|| model.mask_tensors(&self.mask.layers));
        model.apply_mask_tensors(masks)
    }
}

/// The proximal group Lasso: after each optimizer step every group is
/// soft-thresholded, `W_g <- max(0, 1 - lr * lambda_t * w_g / ||W_g||) W_g`,
/// with the norm taken as the pruner ranks (raw, or BN-folded and scaled by
/// the layer's input RMS: then this is the exact proximal step on the folded
/// weights, BN's scale held fixed). `lambda_t` rises linearly from 0 to
/// `lambda` over the first `ramp` of the phase. Groups that share weights
/// (hybrid) are thresholded one after another.
pub struct ProximalLasso<'a> {
    pub groups: &'a [Group],
    pub lambda: f64,
    pub ramp: f64,
    pub norm: Norm,
    /// Input RMS per conv layer (used by `Norm::Saliency`).
    pub input_rms: Vec<f64>,
}

impl TrainHook for ProximalLasso<'_> {
    fn after_step(&mut self, model: ResNet, step: &Step) -> ResNet {
        let lambda = self.lambda * (step.progress / self.ramp).min(1.0);
        let mut ranked = model.ranked_weights(self.norm, &self.input_rms);
        let mut raw = model.conv_weight_data();
        for g in self.groups {
            let norm = g.norm(&ranked);
            let threshold = step.lr * lambda * g.weight;
            let factor = if norm > threshold {
                (1.0 - threshold / norm) as f32
            } else {
                0.0
            };
            if factor < 1.0 {
                for (l, idx) in &g.parts {
                    for &i in idx {
                        raw[*l][i] *= factor;
                        ranked[*l][i] *= factor;
                    }
                }
            }
        }
        model.with_conv_weights(&raw)
    }
}

/// Gradual pruning (Zhu and Gupta 2017): during a phase the pruned fraction
/// rises from `from` to `to` along `s(t) = to + (from - to) (1 - t/ramp)^3`,
/// the mask recomputed `updates` times over the first `ramp` of the phase
/// (growing only: a pruned group stays pruned) and re-applied after every
/// step.
pub struct GradualPruning<'a> {
    pub pruner: &'a Pruner,
    pub norm: Norm,
    pub input_rms: Vec<f64>,
    pub metric: TargetMetric,
    pub from: f64,
    pub to: f64,
    pub ramp: f64,
    pub updates: usize,
    /// The mask in force, applied after every step; an update replaces it
    /// (and so uploads the new one to the device).
    kept: MaskHook,
    done: usize,
    error: Option<PruneError>,
}

impl<'a> GradualPruning<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pruner: &'a Pruner,
        norm: Norm,
        input_rms: Vec<f64>,
        metric: TargetMetric,
        (from, to): (f64, f64),
        (ramp, updates): (f64, usize),
        mask: Mask,
    ) -> GradualPruning<'a> {
        GradualPruning {
            pruner,
            norm,
            input_rms,
            metric,
            from,
            to,
            ramp,
            updates,
            kept: MaskHook::new(mask),
            done: 0,
            error: None,
        }
    }

    /// The pruned fraction the schedule asks for at `progress`.
    pub fn target_at(&self, progress: f64) -> f64 {
        let t = (progress / self.ramp).min(1.0);
        self.to + (self.from - self.to) * (1.0 - t).powi(3)
    }

    /// The final mask, or the error a selection met (an unreachable target).
    pub fn finish(self) -> Result<Mask, PruneError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.kept.into_mask()),
        }
    }
}

impl TrainHook for GradualPruning<'_> {
    fn after_step(&mut self, model: ResNet, step: &Step) -> ResNet {
        // Update k of `updates` falls at progress k/updates * ramp.
        let due = ((step.progress / self.ramp) * self.updates as f64).floor() as usize;
        if due > self.done && self.error.is_none() {
            self.done = due.min(self.updates);
            let target = self.target_at(self.done as f64 / self.updates as f64 * self.ramp);
            let ranked = model.ranked_weights(self.norm, &self.input_rms);
            match self
                .pruner
                .select_from(&ranked, target, self.metric, self.kept.mask())
            {
                Ok(mask) => self.kept = MaskHook::new(mask),
                Err(e) => self.error = Some(e),
            }
        }
        self.kept.after_step(model, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

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
