//! What the integer model computes between its linear layers, under each
//! [`Requantization`]: how a layer's integer input is formed, how its
//! accumulators (with a residual block's shortcut) become the next
//! layer's input, how pooling rescales, and how the FC layer's
//! accumulators become logits. The forward pass (lib.rs) owns the order of
//! the rounds; this module owns their arithmetic.
//!
//! [`FloatSteps`] carries real values between layers. [`FixedSteps`]
//! carries integers only: each activation at the input scale of the layer
//! that reads it, every rescaling a [`Rescale`] per output channel with the
//! bias at its shift, one rounding (halves up) per output, then ReLU and
//! the reader's clamp.

use rayon::prelude::*;

use crate::fixed::{Rescale, Step, at_shift};
use crate::{QuantizedNet, max_level, quantize};

pub use explore_spec::quant::Requantization;

/// The layer whose input an activation is, or the pooling before the FC
/// layer (at the FC layer's input scale, but not clamped: pooling
/// averages, then clamps).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader {
    Layer(usize),
    Pool,
}

/// A residual block's second term: its shortcut conv's accumulators, or
/// the block's input itself (`input_of` the block's first conv).
pub(crate) enum Shortcut<A> {
    Conv(usize, Vec<Vec<i64>>),
    Identity { input_of: usize, x: Vec<A> },
}

/// The arithmetic between linear layers, over a batch. `Act` is one
/// image's activation between two layers.
pub(crate) trait Steps {
    type Act: Clone + Send + Sync;

    /// A normalized image as the first layer's activation.
    fn input(&self, image: Vec<f64>) -> Self::Act;

    /// The integer inputs of layer `l`.
    fn quantize(&mut self, l: usize, xs: &[Self::Act]) -> Vec<Vec<i64>>;

    /// Layer `l`'s accumulators (`[c_out, h, w]` per image) plus a block's
    /// `shortcut`, through ReLU, as what `reader` reads.
    fn output(
        &self,
        l: usize,
        acc: Vec<Vec<i64>>,
        shortcut: Option<Shortcut<Self::Act>>,
        reader: Reader,
    ) -> Vec<Self::Act>;

    /// The mean of each of `channels` channels.
    fn pool(&self, xs: Vec<Self::Act>, channels: usize) -> Vec<Self::Act>;

    /// The FC layer's accumulators as logits.
    fn logits(&self, acc: Vec<Vec<i64>>) -> Vec<Vec<f64>>;
}

/// Called with (layer index, that layer's real inputs over the batch):
/// the scale of the layer's input.
pub(crate) type ScaleOf<'a> = dyn FnMut(usize, &[Vec<f64>]) -> f64 + 'a;

/// Real values between layers; each layer's input scale from `scale_of`
/// (the calibrated scales, or a calibration that sets them).
pub(crate) struct FloatSteps<'a, 'b> {
    net: &'a QuantizedNet,
    scale_of: &'a mut ScaleOf<'b>,
    /// The scale each layer's input was quantized with.
    used: Vec<f64>,
}

impl<'a, 'b> FloatSteps<'a, 'b> {
    pub fn new(net: &'a QuantizedNet, scale_of: &'a mut ScaleOf<'b>) -> Self {
        FloatSteps {
            used: vec![1.0; net.convs.len() + 1],
            net,
            scale_of,
        }
    }

    /// `acc * input scale * weight scale + bias`, per output channel.
    fn real(&self, l: usize, acc: Vec<Vec<i64>>) -> Vec<Vec<f64>> {
        let layer = self.net.layer(l);
        let hw = layer.shape.out_h() * layer.shape.out_w();
        let scale = self.used[l];
        acc.into_par_iter()
            .map(|acc| {
                acc.into_iter()
                    .enumerate()
                    .map(|(j, a)| {
                        let o = j / hw;
                        a as f64 * scale * layer.weight_scale[o] + layer.bias[o]
                    })
                    .collect()
            })
            .collect()
    }
}

impl Steps for FloatSteps<'_, '_> {
    type Act = Vec<f64>;

    fn input(&self, image: Vec<f64>) -> Vec<f64> {
        image
    }

    fn quantize(&mut self, l: usize, xs: &[Vec<f64>]) -> Vec<Vec<i64>> {
        let scale = (self.scale_of)(l, xs);
        self.used[l] = scale;
        let bits = self.net.config.activation_bits;
        xs.iter().map(|x| quantize(x, scale, bits)).collect()
    }

    fn output(
        &self,
        l: usize,
        acc: Vec<Vec<i64>>,
        shortcut: Option<Shortcut<Vec<f64>>>,
        _: Reader,
    ) -> Vec<Vec<f64>> {
        let mut y = self.real(l, acc);
        let short = match shortcut {
            None => None,
            Some(Shortcut::Conv(s, acc)) => Some(self.real(s, acc)),
            Some(Shortcut::Identity { x, .. }) => Some(x),
        };
        if let Some(short) = short {
            for (y, s) in y.iter_mut().zip(short) {
                y.iter_mut().zip(s).for_each(|(a, s)| *a += s);
            }
        }
        y.iter_mut().flatten().for_each(|v| *v = v.max(0.0));
        y
    }

    fn pool(&self, xs: Vec<Vec<f64>>, channels: usize) -> Vec<Vec<f64>> {
        xs.iter()
            .map(|v| {
                let hw = v.len() / channels;
                v.chunks(hw)
                    .map(|ch| ch.iter().sum::<f64>() / hw as f64)
                    .collect()
            })
            .collect()
    }

    fn logits(&self, acc: Vec<Vec<i64>>) -> Vec<Vec<f64>> {
        self.real(self.net.convs.len(), acc)
    }
}

/// Integers between layers: every activation already at the input scale of
/// the layer that reads it.
pub(crate) struct FixedSteps<'a> {
    pub net: &'a QuantizedNet,
}

impl FixedSteps<'_> {
    fn max_level(&self) -> i64 {
        max_level(self.net.config.activation_bits) as i64
    }
}

impl Steps for FixedSteps<'_> {
    type Act = Vec<i64>;

    fn input(&self, image: Vec<f64>) -> Vec<i64> {
        let first = self.net.layer(0);
        quantize(&image, first.input_scale, self.net.config.activation_bits)
    }

    fn quantize(&mut self, _: usize, xs: &[Vec<i64>]) -> Vec<Vec<i64>> {
        xs.to_vec()
    }

    fn output(
        &self,
        l: usize,
        acc: Vec<Vec<i64>>,
        shortcut: Option<Shortcut<Vec<i64>>>,
        reader: Reader,
    ) -> Vec<Vec<i64>> {
        let net = self.net;
        let layer = net.layer(l);
        let (target, clamp) = match reader {
            Reader::Layer(k) => (net.layer(k).input_scale, Some(self.max_level())),
            Reader::Pool => (net.fc.input_scale, None),
        };
        // Per output channel: each term's real factor onto the target
        // scale, the biases (a shortcut conv's too) in target units.
        let steps: Vec<Step> = (0..layer.shape.c_out)
            .map(|o| {
                let own = layer.input_scale * layer.weight_scale[o] / target;
                let (short, bias) = match &shortcut {
                    None => (None, layer.bias[o]),
                    Some(Shortcut::Conv(s, _)) => {
                        let s = net.layer(*s);
                        (
                            Some(s.input_scale * s.weight_scale[o] / target),
                            layer.bias[o] + s.bias[o],
                        )
                    }
                    Some(Shortcut::Identity { input_of, .. }) => (
                        Some(net.layer(*input_of).input_scale / target),
                        layer.bias[o],
                    ),
                };
                Step::new(own, short, bias / target, clamp)
            })
            .collect();
        let hw = layer.shape.out_h() * layer.shape.out_w();
        let shorts: Vec<Option<Vec<i64>>> = match shortcut {
            None => vec![None; acc.len()],
            Some(Shortcut::Conv(_, s)) => s.into_iter().map(Some).collect(),
            Some(Shortcut::Identity { x, .. }) => x.into_iter().map(Some).collect(),
        };
        acc.into_par_iter()
            .zip(shorts)
            .map(|(acc, short)| {
                acc.iter()
                    .enumerate()
                    .map(|(j, &a)| steps[j / hw].apply(a, short.as_ref().map_or(0, |s| s[j])))
                    .collect()
            })
            .collect()
    }

    fn pool(&self, xs: Vec<Vec<i64>>, channels: usize) -> Vec<Vec<i64>> {
        let m = self.max_level();
        xs.iter()
            .map(|v| {
                let hw = v.len() / channels;
                let mean = Rescale::of(1.0 / hw as f64);
                v.chunks(hw)
                    .map(|ch| mean.apply(ch.iter().sum()).clamp(-m, m))
                    .collect()
            })
            .collect()
    }

    fn logits(&self, acc: Vec<Vec<i64>>) -> Vec<Vec<f64>> {
        let fc = &self.net.fc;
        // Each logit exactly: (acc * multiplier + bias) / 2^shift.
        let channels: Vec<(Rescale, i64)> = fc
            .weight_scale
            .iter()
            .zip(&fc.bias)
            .map(|(&w, &b)| {
                let r = Rescale::of(fc.input_scale * w);
                (r, at_shift(b, r.shift))
            })
            .collect();
        acc.into_iter()
            .map(|acc| {
                acc.iter()
                    .zip(&channels)
                    .map(|(&a, (r, b))| {
                        (a as i128 * r.multiplier as i128 + *b as i128) as f64
                            / (1u64 << r.shift) as f64
                    })
                    .collect()
            })
            .collect()
    }
}
