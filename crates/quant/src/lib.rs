//! The integer model: a BN-folded ResNet quantized symmetrically (weights per
//! layer to `weight_bits`, each layer's input to `activation_bits` with a
//! scale calibrated on a few images), and its forward pass. Every conv and
//! the FC layer run as exact integer products through [`conv_int`], the same
//! function the HE executor verifies its decryptions against. Between them
//! the model rescales, adds biases, applies ReLU, sums residuals and pools
//! under its [`Requantization`]: in integers only (`fixed`, per output
//! channel a multiplier and shift, [`fixed`]), or in f64 (`float`). The
//! forward pass takes its linear layers round by round from a [`Linear`],
//! so the same code computes them in the clear or has a server compute them
//! on ciphertexts while the client does the rest.

use rayon::prelude::*;

use explore_he_model::arch::{Compaction, ConvShape, FoldedNet, NetSpec};
pub use explore_he_model::reference::{conv_int, max_magnitude};
pub use explore_spec::quant::{BITS, QuantConfig, QuantConfigError};

mod between;
pub mod fixed;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod forward;
mod steps;

use between::{FixedSteps, FloatSteps};
pub use between::{Reader, Requantization, Shortcut, ShortcutKind, Steps};
pub use forward::{Linear, Round, logits_on};
use forward::{forward, images as batch_of};
pub use steps::{InputStep, LogitStep};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantError {
    #[error(
        "layer {layer}: {got} weights, the shape needs {expected}: the checkpoint does not match its NetSpec"
    )]
    WeightLength {
        layer: String,
        expected: usize,
        got: usize,
    },
    #[error(
        "{got} image values is not a positive multiple of one image ({per_image} = c*h*w): pass whole images"
    )]
    ImageLength { per_image: usize, got: usize },
    #[error("{labels} labels for {images} images: pass one label per image")]
    LabelCount { images: usize, labels: usize },
    #[error(transparent)]
    Config(#[from] QuantConfigError),
}

fn max_level(bits: u32) -> f64 {
    max_magnitude(bits) as f64
}

/// One quantized layer (the FC layer is a 1x1 conv on a 1x1 grid).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    pub shape: ConvShape,
    /// `[c_out, c_in, k, k]` integers in the weight range.
    pub weight: Vec<i64>,
    /// Real value of one unit of each output channel's weights.
    pub weight_scale: Vec<f64>,
    /// Real value of one unit of this layer's integer input.
    pub input_scale: f64,
    pub bias: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedNet {
    pub spec: NetSpec,
    pub convs: Vec<QuantizedLayer>,
    pub fc: QuantizedLayer,
    pub config: QuantConfig,
}

/// Symmetric quantization of `[c_out, ...]` weights, per output channel or
/// per layer: the largest |w| of each maps to 2^(bits-1)-1. Zeros stay zero
/// and nonzero weights stay nonzero (at least +-1), so the integer model has
/// exactly the float model's sparsity pattern and the cost model counts the
/// same operations on either. Returns the integers and one scale per output
/// channel.
pub fn quantize_weights(
    weights: &[f32],
    c_out: usize,
    bits: u32,
    per_channel: bool,
) -> (Vec<i64>, Vec<f64>) {
    let per = weights.len() / c_out.max(1);
    let scale_of = |w: &[f32]| {
        let max = w.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        if max > 0.0 {
            max / max_level(bits)
        } else {
            1.0
        }
    };
    let layer_scale = scale_of(weights);
    let scales: Vec<f64> = weights
        .chunks(per.max(1))
        .map(|w| {
            if per_channel {
                scale_of(w)
            } else {
                layer_scale
            }
        })
        .collect();
    let q = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let q = (w as f64 / scales[i / per]).round() as i64;
            if q == 0 && w != 0.0 {
                if w > 0.0 { 1 } else { -1 }
            } else {
                q
            }
        })
        .collect();
    (q, scales)
}

fn quantize(x: &[f64], scale: f64, bits: u32) -> Vec<i64> {
    let m = max_level(bits);
    x.iter()
        .map(|&v| (v / scale).round().clamp(-m, m) as i64)
        .collect()
}

/// The scale that maps the `percentile` of |x| over `xs` to `bits`' largest
/// level (1 when everything is zero).
pub fn calibrate(xs: &[Vec<f64>], percentile: f64, bits: u32) -> f64 {
    let mut mags: Vec<f64> = xs.iter().flatten().map(|v| v.abs()).collect();
    if mags.is_empty() {
        return 1.0;
    }
    let rank = ((percentile / 100.0) * (mags.len() - 1) as f64).round() as usize;
    let (_, &mut at, _) = mags.select_nth_unstable_by(rank, f64::total_cmp);
    if at > 0.0 { at / max_level(bits) } else { 1.0 }
}

/// [`conv_int`] of every input of a batch. When no partial sum can leave
/// the integers below 2^24 (the bound from the weights' absolute sums and
/// the largest input), f32 arithmetic is exact in any summation order, so
/// the batch runs as one burn convolution on the CPU; otherwise image by
/// image in integers. Either way the result is the exact integer one.
pub fn conv_batch(shape: &ConvShape, inputs: &[Vec<i64>], weight: &[i64]) -> Vec<Vec<i64>> {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Tensor, TensorData};
    const EXACT: i64 = 1 << 24;
    let per_filter = shape.c_in * shape.k * shape.k;
    let filter_sum = weight
        .chunks(per_filter.max(1))
        .map(|f| f.iter().map(|w| w.abs()).sum::<i64>())
        .max()
        .unwrap_or(0);
    let largest = inputs.iter().flatten().map(|x| x.abs()).max().unwrap_or(0);
    if inputs.len() < 2 || filter_sum.saturating_mul(largest) >= EXACT {
        return inputs
            .par_iter()
            .map(|x| conv_int(shape, x, weight))
            .collect();
    }
    let device = Device::flex();
    let n = inputs.len();
    let to_f32 = |v: &[i64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let x = Tensor::<4>::from_data(
        TensorData::new(
            inputs.iter().flat_map(|x| to_f32(x)).collect::<Vec<f32>>(),
            [n, shape.c_in, shape.h, shape.w],
        ),
        &device,
    );
    let w = Tensor::<4>::from_data(
        TensorData::new(to_f32(weight), [shape.c_out, shape.c_in, shape.k, shape.k]),
        &device,
    );
    let p = shape.padding();
    let options = ConvOptions::new([shape.stride; 2], [p, p], [1, 1], 1);
    let out: Vec<f32> = conv2d(x, w, None, options)
        .into_data()
        .try_into_vec()
        .expect("f32 output");
    let per_image = shape.c_out * shape.out_h() * shape.out_w();
    out.chunks(per_image)
        .map(|c| c.iter().map(|&v| v as i64).collect())
        .collect()
}

/// The class a row of logits picks (the last of equal maxima).
pub fn top1(logits: &[f64]) -> usize {
    (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap_or(0)
}

impl QuantizedNet {
    /// Quantizes `folded` under `config`, calibrating each layer's input
    /// scale on `calibration` (normalized images, `n*c*h*w`) layer by layer:
    /// each layer sees the already-quantized layers before it.
    pub fn new(
        folded: &FoldedNet,
        config: QuantConfig,
        calibration: &[f32],
    ) -> Result<QuantizedNet, QuantError> {
        config.check()?;
        let spec = &folded.spec;
        let layer = |shape: ConvShape, w: &[f32], bias: &[f32]| {
            if w.len() != shape.weight_len() || bias.len() != shape.c_out {
                return Err(QuantError::WeightLength {
                    layer: shape.name.clone(),
                    expected: shape.weight_len() + shape.c_out,
                    got: w.len() + bias.len(),
                });
            }
            let (weight, weight_scale) =
                quantize_weights(w, shape.c_out, config.weight_bits, config.per_channel);
            Ok(QuantizedLayer {
                shape,
                weight,
                weight_scale,
                input_scale: 1.0,
                bias: bias.iter().map(|&b| b as f64).collect(),
            })
        };
        if folded.convs.len() != spec.convs.len() {
            return Err(QuantError::WeightLength {
                layer: "convs".into(),
                expected: spec.convs.len(),
                got: folded.convs.len(),
            });
        }
        let convs = spec
            .convs
            .iter()
            .zip(&folded.convs)
            .map(|(s, c)| layer(s.clone(), &c.weight, &c.bias))
            .collect::<Result<Vec<_>, _>>()?;
        let fc = layer(spec.fc.as_conv(), &folded.fc_weight, &folded.fc_bias)?;
        let mut net = QuantizedNet {
            spec: spec.clone(),
            convs,
            fc,
            config,
        };
        // Calibrated on real values between layers (under either
        // requantization): fixed point then rescales between these scales.
        let batch = batch_of(&net.spec, calibration)?;
        let mut scales = vec![1.0; net.convs.len() + 1];
        let plain = net.clone();
        let mut calibrate_layer = |l: usize, xs: &[Vec<f64>]| {
            scales[l] = calibrate(xs, config.percentile, config.activation_bits);
            scales[l]
        };
        let _: Result<_, std::convert::Infallible> = forward(
            &plain.spec,
            batch,
            &mut FloatSteps::new(&plain, &mut calibrate_layer),
            &mut |round| Ok(plain.in_the_clear(round)),
        );
        for (layer, s) in net.convs.iter_mut().chain([&mut net.fc]).zip(scales) {
            layer.input_scale = s;
        }
        // A shortcut conv reads the block's input, which the integer model
        // quantizes once, at the block's first conv's scale. Calibration
        // finds the same value for both from the same inputs; this makes
        // them one by construction.
        for b in &net.spec.blocks {
            if let Some(s) = b.shortcut {
                net.convs[s].input_scale = net.convs[b.conv1].input_scale;
            }
        }
        Ok(net)
    }

    /// Layer `l` (`convs.len()` is the FC layer).
    pub fn layer(&self, l: usize) -> &QuantizedLayer {
        self.convs.get(l).unwrap_or(&self.fc)
    }

    /// A round's accumulators as exact integer convolutions in the clear.
    pub fn in_the_clear(&self, round: &Round) -> Vec<Vec<Vec<i64>>> {
        round
            .iter()
            .map(|(l, q)| {
                let layer = self.layer(*l);
                conv_batch(&layer.shape, q, &layer.weight)
            })
            .collect()
    }

    /// The forward pass at the calibrated scales, under the model's
    /// requantization.
    fn run<E>(&self, batch: Vec<Vec<f64>>, linear: &mut Linear<E>) -> Result<Vec<Vec<f64>>, E> {
        match self.config.requantization {
            Requantization::Fixed => {
                forward(&self.spec, batch, &mut FixedSteps { net: self }, linear)
            }
            Requantization::Float => {
                let mut calibrated = |l: usize, _: &[Vec<f64>]| self.layer(l).input_scale;
                forward(
                    &self.spec,
                    batch,
                    &mut FloatSteps::new(self, &mut calibrated),
                    linear,
                )
            }
        }
    }

    /// The forward pass of one image (`c*h*w`, normalized) with its linear
    /// layers from `linear`: what a client runs while a server computes the
    /// linear layers.
    pub fn logits_with<E>(&self, image: &[f32], linear: &mut Linear<E>) -> Result<Vec<f64>, E>
    where
        E: From<QuantError>,
    {
        let (c, h, w) = self.spec.dataset.input_shape();
        if image.len() != c * h * w {
            return Err(QuantError::ImageLength {
                per_image: c * h * w,
                got: image.len(),
            }
            .into());
        }
        let batch = batch_of(&self.spec, image)?;
        let mut logits = self.run(batch, linear)?;
        Ok(logits.pop().expect("one image"))
    }

    /// Logits of each image in `images` (`n*c*h*w`, normalized).
    pub fn logits(&self, images: &[f32]) -> Result<Vec<Vec<f64>>, QuantError> {
        let batch = batch_of(&self.spec, images)?;
        self.run(batch, &mut |round| Ok(self.in_the_clear(round)))
    }

    /// Top-1 accuracy of the integer model, in batches of 64 images.
    pub fn accuracy(&self, images: &[f32], labels: &[u16]) -> Result<f64, QuantError> {
        let correct = self.correct(images, labels)?;
        Ok(correct.iter().filter(|&&c| c).count() as f64 / correct.len() as f64)
    }

    /// Whether the integer model classifies each image correctly (its
    /// top-1 class equals the label), in image order.
    pub fn correct(&self, images: &[f32], labels: &[u16]) -> Result<Vec<bool>, QuantError> {
        let (c, h, w) = self.spec.dataset.input_shape();
        let per_image = c * h * w;
        let n = images.len() / per_image.max(1);
        if labels.len() != n {
            return Err(QuantError::LabelCount {
                images: n,
                labels: labels.len(),
            });
        }
        // Batches side by side: the integer model is exact, so the order
        // they finish in changes nothing.
        let batches: Vec<Vec<bool>> = images
            .par_chunks(64 * per_image)
            .zip(labels.par_chunks(64))
            .map(|(chunk, ls)| {
                let logits = self.logits(chunk)?;
                Ok(logits
                    .iter()
                    .zip(ls)
                    .map(|(logits, &label)| top1(logits) == label as usize)
                    .collect())
            })
            .collect::<Result<_, QuantError>>()?;
        Ok(batches.concat())
    }

    /// The integer input of every layer (`[c_in, h, w]`: the convs in
    /// `spec.convs` order, then the FC layer's pooled vector) when the model
    /// runs on one image: what the HE executor encrypts.
    pub fn layer_inputs(&self, image: &[f32]) -> Result<Vec<Vec<i64>>, QuantError> {
        let mut inputs = vec![Vec::new(); self.convs.len() + 1];
        self.logits_with(image, &mut |round: &Round| {
            for (l, q) in round {
                inputs[*l] = q[0].clone();
            }
            Ok::<_, QuantError>(self.in_the_clear(round))
        })?;
        Ok(inputs)
    }

    /// The layers of each round of a forward pass, in order (a round is
    /// the layers that read the same input: a block's first conv and its
    /// shortcut share one). The structure does not depend on the image.
    pub fn rounds(&self) -> Result<Vec<Vec<usize>>, QuantError> {
        let (c, h, w) = self.spec.dataset.input_shape();
        let mut rounds = Vec::new();
        self.logits_with(&vec![0.0; c * h * w], &mut |round: &Round| {
            rounds.push(round.iter().map(|(l, _)| *l).collect());
            Ok::<_, QuantError>(self.in_the_clear(round))
        })?;
        Ok(rounds)
    }

    /// The network as deployed: internal channels that carry nothing
    /// ([`Compaction`]) removed from the convs that hold them. Scales stay as
    /// calibrated on the whole network, so every output is unchanged.
    pub fn deployed(&self) -> QuantizedNet {
        let weights: Vec<Vec<i64>> = self.convs.iter().map(|l| l.weight.clone()).collect();
        let compaction = Compaction::of(&self.spec, &weights);
        if compaction.is_identity(&self.spec) {
            return self.clone();
        }
        let spec = compaction.spec(&self.spec);
        let convs = self
            .convs
            .iter()
            .enumerate()
            .map(|(i, l)| QuantizedLayer {
                shape: spec.convs[i].clone(),
                weight: compaction.weights(&self.spec, i, &l.weight),
                weight_scale: compaction.outputs(&self.spec, i, &l.weight_scale),
                bias: compaction.outputs(&self.spec, i, &l.bias),
                ..l.clone()
            })
            .collect();
        QuantizedNet {
            spec,
            convs,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{config, images, random_net};

    /// A step's bounds, from which the two-party circuits take their
    /// widths, are the same for a network and its pruned copy, and hold
    /// every accumulator either can reach.
    #[test]
    fn the_steps_bounds_depend_on_the_shapes_not_the_weights() {
        let folded = random_net(3);
        let mut pruned = folded.clone();
        for c in &mut pruned.convs {
            c.weight.iter_mut().step_by(2).for_each(|w| *w = 0.0);
        }
        let quantized = |f: &FoldedNet| QuantizedNet::new(f, config(8), &images(4, 1)).unwrap();
        let (dense, pruned) = (quantized(&folded), quantized(&pruned));
        for l in 0..=dense.convs.len() {
            let identity = Some(ShortcutKind::Identity { input_of: l });
            for kind in [None, identity] {
                assert_eq!(dense.term_bounds(l, kind), pruned.term_bounds(l, kind));
            }
            for net in [&dense, &pruned] {
                let layer = net.layer(l);
                let per = layer.weight.len() / layer.shape.c_out;
                let (bounds, _) = net.term_bounds(l, None);
                for (w, bound) in layer.weight.chunks(per).zip(bounds) {
                    let reach: u64 = w.iter().map(|v| v.unsigned_abs()).sum::<u64>() * 127;
                    assert!(reach <= bound, "layer {l}: {reach} > {bound}");
                }
            }
        }
    }

    #[test]
    fn weights_quantize_symmetrically_and_keep_zeros() {
        let (q, s) = quantize_weights(&[0.5, -1.0, 0.0, 0.25], 1, 8, false);
        assert_eq!(q, vec![64, -127, 0, 32]);
        assert!((s[0] - 1.0 / 127.0).abs() < 1e-12);
        // Tiny weights would round to zero and drop operations the float
        // model's pattern still counts: they keep the smallest level.
        let (q, _) = quantize_weights(&[1.0, 1e-4, -1e-4, 0.0], 1, 8, false);
        assert_eq!(q, vec![127, 1, -1, 0]);
        // Per channel, a small filter keeps its resolution: [0.5, -1] and
        // [0.01, 0.02] each map their largest |w| to 127.
        let w = [0.5, -1.0, 0.01, 0.02];
        let (q, s) = quantize_weights(&w, 2, 8, true);
        assert_eq!(q, vec![64, -127, 64, 127]);
        assert!((s[1] / (0.02 / 127.0) - 1.0).abs() < 1e-6);
        let (q, s) = quantize_weights(&w, 2, 8, false);
        assert_eq!((q[2], q[3]), (1, 3));
        assert_eq!(s[0], s[1]);
    }

    #[test]
    fn percentile_calibration_saturates_outliers() {
        let mut xs = vec![(0..1000).map(|i| (i % 10) as f64).collect::<Vec<f64>>()];
        xs[0][0] = 1000.0;
        // The maximum maps to 127; the 99th percentile ignores the outlier.
        assert!((calibrate(&xs, 100.0, 8) - 1000.0 / 127.0).abs() < 1e-12);
        assert!((calibrate(&xs, 99.0, 8) - 9.0 / 127.0).abs() < 1e-12);
        assert_eq!(calibrate(&[vec![0.0; 4]], 99.0, 8), 1.0);
    }

    #[test]
    fn batched_convolution_is_the_exact_integer_one() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (c_in, c_out, hw, k, stride) in [(3, 8, 9, 3, 1), (8, 16, 9, 3, 2), (16, 8, 5, 1, 2)] {
            let shape = ConvShape {
                name: "t".into(),
                c_in,
                c_out,
                h: hw,
                w: hw,
                k,
                stride,
            };
            let w: Vec<i64> = (0..shape.weight_len())
                .map(|_| rng.random_range(-127..=127))
                .collect();
            let xs: Vec<Vec<i64>> = (0..4)
                .map(|_| {
                    (0..c_in * hw * hw)
                        .map(|_| rng.random_range(-127..=127))
                        .collect()
                })
                .collect();
            let batch = conv_batch(&shape, &xs, &w);
            for (x, got) in xs.iter().zip(&batch) {
                assert_eq!(got, &conv_int(&shape, x, &w));
            }
        }
    }

    #[test]
    fn eight_bit_model_tracks_a_sixteen_bit_one() {
        let folded = random_net(1);
        let calib = images(4, 2);
        let q8 = QuantizedNet::new(&folded, config(8), &calib).unwrap();
        let q16 = QuantizedNet::new(&folded, config(16), &calib).unwrap();
        let test = images(3, 3);
        let (a, b) = (q8.logits(&test).unwrap(), q16.logits(&test).unwrap());
        let spread = b.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!(
                (x - y).abs() < 0.2 * spread + 1e-9,
                "{x} vs {y} (spread {spread})"
            );
        }
    }

    #[test]
    fn the_fixed_point_model_tracks_the_float_one() {
        // The same network and calibration: fixed point rounds each
        // output once (halves up) where float keeps it real, and carries
        // the identity shortcuts at their 8-bit grid; the logits stay close
        // and the scales are the same.
        let folded = random_net(2);
        let calib = images(4, 2);
        let fixed = QuantizedNet::new(&folded, config(8), &calib).unwrap();
        let float_config = QuantConfig {
            requantization: Requantization::Float,
            ..config(8)
        };
        let float = QuantizedNet::new(&folded, float_config, &calib).unwrap();
        assert_eq!(
            fixed
                .convs
                .iter()
                .map(|l| l.input_scale)
                .collect::<Vec<_>>(),
            float
                .convs
                .iter()
                .map(|l| l.input_scale)
                .collect::<Vec<_>>()
        );
        let test = images(8, 9);
        let (a, b) = (fixed.logits(&test).unwrap(), float.logits(&test).unwrap());
        let spread = b.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 0.1 * spread, "{x} vs {y} (spread {spread})");
        }
        assert_ne!(a, b, "fixed point rounds where float does not");
    }

    #[test]
    fn a_fixed_point_residual_output_is_the_rounded_real_one() {
        // An identity block: the next block's input is
        // relu(acc2 * s_h * w_o + b_o + x * s_x) / s_next, rounded and
        // clamped; the integer multipliers may move a value that lies
        // within 2^-6 of a half (each 16-bit multiplier is within 2^-16 of
        // its factor), nothing more.
        let q = QuantizedNet::new(&random_net(3), config(8), &images(4, 2)).unwrap();
        let (b, next) = (q.spec.blocks[1], q.spec.blocks[2]);
        assert!(b.shortcut.is_none());
        let mut moved = 0;
        let mut total = 0;
        for seed in 0..3 {
            let inputs = q.layer_inputs(&images(1, 20 + seed)).unwrap();
            let (x, h, out) = (&inputs[b.conv1], &inputs[b.conv2], &inputs[next.conv1]);
            let conv2 = q.layer(b.conv2);
            let acc = conv_int(&conv2.shape, h, &conv2.weight);
            let hw = conv2.shape.out_h() * conv2.shape.out_w();
            let s_next = q.layer(next.conv1).input_scale;
            for (j, &a) in acc.iter().enumerate() {
                let o = j / hw;
                let real = a as f64 * conv2.input_scale * conv2.weight_scale[o]
                    + conv2.bias[o]
                    + x[j] as f64 * q.layer(b.conv1).input_scale;
                let want = (real / s_next).max(0.0);
                let rounded = (want + 0.5).floor().min(127.0) as i64;
                total += 1;
                if out[j] != rounded {
                    moved += 1;
                    assert!(
                        (want - want.floor() - 0.5).abs() < 1.0 / 64.0,
                        "{} for {want}",
                        out[j]
                    );
                }
            }
        }
        assert!(total > 1000 && moved * 100 < total, "{moved} of {total}");
    }

    #[test]
    fn the_deployed_net_drops_dead_channels_and_computes_the_same_logits() {
        let mut folded = random_net(5);
        let b = folded.spec.blocks[3];
        let (c1, c2) = (
            folded.spec.convs[b.conv1].clone(),
            folded.spec.convs[b.conv2].clone(),
        );
        let per = c1.c_in * 9;
        folded.convs[b.conv1].weight[per..2 * per].fill(0.0);
        for o in 0..c2.c_out {
            let start = (o * c2.c_in + 1) * 9;
            folded.convs[b.conv2].weight[start..start + 9].fill(0.0);
        }
        let q = QuantizedNet::new(&folded, config(8), &images(2, 5)).unwrap();
        let d = q.deployed();
        assert_eq!(d.spec.convs[b.conv1].c_out, c1.c_out - 1);
        assert_eq!(
            d.convs[b.conv2].weight.len(),
            d.spec.convs[b.conv2].weight_len()
        );
        let x = images(3, 6);
        assert_eq!(q.logits(&x).unwrap(), d.logits(&x).unwrap());
        assert_eq!(
            d.layer_inputs(&x[..28 * 28]).unwrap()[b.conv2].len(),
            (c2.c_in - 1) * c2.h * c2.w
        );
    }

    #[test]
    fn conv_inputs_are_in_range_and_shaped_like_each_layer() {
        let folded = random_net(4);
        let q = QuantizedNet::new(&folded, config(8), &images(2, 5)).unwrap();
        let inputs = q.layer_inputs(&images(1, 6)).unwrap();
        assert_eq!(inputs.len(), q.convs.len() + 1);
        for (layer, x) in q.convs.iter().chain([&q.fc]).zip(&inputs) {
            assert_eq!(x.len(), layer.shape.c_in * layer.shape.h * layer.shape.w);
            assert!(x.iter().all(|v| v.abs() <= 127));
        }
        assert!(inputs[1].iter().any(|&v| v != 0));
        let labels = [0u16, 1];
        let acc = q.accuracy(&images(2, 7), &labels).unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(matches!(
            q.accuracy(&images(2, 7), &labels[..1]),
            Err(QuantError::LabelCount { .. })
        ));
        assert!(matches!(
            q.layer_inputs(&[0.0; 5]),
            Err(QuantError::ImageLength { .. })
        ));
    }
}
