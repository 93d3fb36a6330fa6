//! A layer on ciphertexts under coefficient encoding, the baseline without
//! rotations (Cheetah's HomConv; the blocks, kernels and where outputs lie
//! are the pure [`CoefficientLayout`]): the server encodes one kernel
//! polynomial per output channel and channel block, multiplies each input
//! block by it and sums over channel blocks, one lazy multiply-accumulate
//! per output ciphertext. Nothing is rotated and no Galois key exists.
//!
//! Every product is computed, zero kernels included: the baseline is the
//! dense network under coefficient encoding, whose cost no pruning of
//! single weights changes.

use fhe::bfv::{Ciphertext, Plaintext, dot_product_scalar};
use rayon::prelude::*;

use crate::context::HeContext;
use crate::error::HeError;
use crate::keys::KeySource;
use crate::params::check_weights;
use crate::runner::EncryptedLayer;
use explore_he_model::coefficient::CoefficientLayout;
use explore_he_model::cost::LayerCost;
use explore_he_model::layer::Encoding;
use explore_he_model::reference::conv_int;

/// A layer's encoded kernels, one per output channel and channel block.
pub struct CoefficientPlan {
    layout: CoefficientLayout,
    weights: Vec<i64>,
    /// Kernel `(m, cb)` at `m * channel_blocks + cb`.
    kernels: Vec<Plaintext>,
}

impl CoefficientPlan {
    /// Encodes the kernels of `weights` (`[c_out, c_in, k, k]`) under
    /// `keys`' parameters (no key is asked for: nothing rotates).
    pub fn new(
        keys: &impl KeySource,
        layout: CoefficientLayout,
        weights: &[i64],
    ) -> Result<CoefficientPlan, HeError> {
        let shape = layout.shape();
        let params = keys.params();
        check_weights(shape, weights, params.weight_bits)?;
        let c_parts = layout.channel_blocks();
        let kernels = (0..shape.c_out * c_parts)
            .into_par_iter()
            .map(|i| {
                params.encode_coefficients(&layout.pack_kernel(weights, i / c_parts, i % c_parts))
            })
            .collect::<Result<_, HeError>>()?;
        Ok(CoefficientPlan {
            layout,
            weights: weights.to_vec(),
            kernels,
        })
    }

    pub fn layout(&self) -> &CoefficientLayout {
        &self.layout
    }

    /// The encoded kernels the server holds.
    pub fn plaintexts(&self) -> usize {
        self.kernels.len()
    }
}

impl EncryptedLayer for CoefficientPlan {
    fn name(&self) -> &str {
        &self.layout.shape().name
    }

    fn packing(&self) -> (String, usize) {
        (self.layout.describe(), 0)
    }

    fn encrypt(&self, ctx: &mut HeContext, input: &[i64]) -> Result<Vec<Ciphertext>, HeError> {
        ctx.encrypt_coefficients(&self.layout, input)
    }

    /// Output `(m, spatial)` is the sum over channel blocks of each input
    /// block times its kernel.
    fn evaluate(
        &self,
        inputs: &[Ciphertext],
    ) -> Result<(Vec<Option<Ciphertext>>, LayerCost), HeError> {
        let l = &self.layout;
        let (spatial, c_parts) = (l.spatial_blocks(), l.channel_blocks());
        let outputs = (0..l.output_ciphertexts())
            .into_par_iter()
            .map(|o| {
                let (m, s) = (o / spatial, o % spatial);
                let cts = (0..c_parts).map(|cb| &inputs[l.input_index(cb, s)]);
                let pts = &self.kernels[m * c_parts..(m + 1) * c_parts];
                let mut sum = dot_product_scalar(cts, pts.iter())?;
                // The sum carries the server's weights: constant time on.
                sum.iter_mut()
                    .for_each(|p| p.disallow_variable_time_computations());
                Ok(Some(sum))
            })
            .collect::<Result<Vec<_>, HeError>>()?;
        let n = outputs.len();
        let cost = LayerCost {
            pmults: n * c_parts,
            adds: n * (c_parts - 1),
            ..LayerCost::default()
        };
        Ok((outputs, cost))
    }

    fn verify(
        &self,
        ctx: &HeContext,
        input: &[i64],
        outputs: &[Option<Ciphertext>],
    ) -> Result<i64, HeError> {
        let l = &self.layout;
        let shape = l.shape();
        let reference = conv_int(shape, input, &self.weights);
        let per_channel = shape.out_h() * shape.out_w();
        let spatial = l.spatial_blocks();
        let mut budget = i64::MAX;
        for (o, ct) in outputs.iter().enumerate() {
            let ct = ct.as_ref().expect("every output is computed");
            let (m, s) = (o / spatial, o % spatial);
            let got = ctx.decrypt_as(Encoding::Coefficients, ct)?;
            let block_budget = ctx.noise_budget(ct)?;
            budget = budget.min(block_budget);
            for (at, pixel) in l.outputs(s) {
                let expected = reference[m * per_channel + pixel];
                if got[at] != expected {
                    return Err(HeError::Mismatch {
                        layer: shape.name.clone(),
                        block: o,
                        slot: at,
                        expected,
                        got: got[at],
                        noise_budget_bits: block_budget,
                    });
                }
            }
        }
        Ok(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::run_layer;
    use crate::runner::tests::{context, random};
    use explore_he_model::arch::{Arch, DatasetKind, NetSpec};

    /// ResNet-20's stem, a stride-2 layer, its 1x1 shortcut, a last-stage
    /// layer and the FC layer under coefficient encoding at N = 8192:
    /// every output decrypts to the integer convolution, the executed
    /// counts equal the layout's, and no layer rotates.
    #[test]
    fn resnet20_layers_decrypt_exactly_with_the_layouts_counts() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        let shapes = spec.layer_shapes();
        let picks = [0, 7, 8, 19, shapes.len() - 1];
        let mut ctx = context(&shapes);
        for (n, &i) in picks.iter().enumerate() {
            let s = &shapes[i];
            let layout = CoefficientLayout::new(s, 8192).unwrap();
            let modeled = layout.cost();
            let w = random(s.weight_len(), 8, 2 * n as u64);
            let x = random(s.c_in * s.h * s.w, 8, 2 * n as u64 + 1);
            let plan = CoefficientPlan::new(&ctx, layout, &w).unwrap();
            let run = run_layer(&mut ctx, &plan, &x, 1).unwrap();
            assert_eq!(run.executed, modeled, "{}", s.name);
            assert_eq!(run.executed.rotations(), 0);
            assert!(run.noise_budget_bits > 0, "{}", s.name);
        }
    }

    #[test]
    fn a_wrong_weight_count_is_refused() {
        let s = &NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0)
            .unwrap()
            .layer_shapes()[0];
        let ctx = context(std::slice::from_ref(s));
        let layout = CoefficientLayout::new(s, 8192).unwrap();
        assert!(CoefficientPlan::new(&ctx, layout, &[1, 2, 3]).is_err());
    }
}
