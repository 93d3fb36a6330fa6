//! The integer model's steps between linear layers, as data: per output
//! channel of a layer the [`Step`] that turns its accumulator (and a
//! residual block's shortcut term) into what the next layer reads, the
//! step of pooling, the logits' rescaling, and the bounds of every term.
//! The model's forward pass applies them in the clear; a two-party
//! evaluation builds its circuits from the same values, so that both
//! compute one function.

use crate::between::{Reader, ShortcutKind};
use crate::fixed::{Rescale, Step, at_shift};
use explore_he_model::plaintext::accumulator_bound;

use crate::{QuantizedNet, max_level, quantize};

/// One logit from the FC layer's accumulator, exactly:
/// `(acc * multiplier + bias) / 2^shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogitStep {
    pub rescale: Rescale,
    /// In units of 2^-shift.
    pub bias: i64,
}

impl LogitStep {
    pub fn apply(&self, acc: i64) -> f64 {
        (acc as i128 * self.rescale.multiplier as i128 + self.bias as i128) as f64
            / (1u64 << self.rescale.shift) as f64
    }
}

/// A normalized image as the first layer's integer input: quantized at
/// that layer's input scale to the activation width. The client of a
/// two-party inference applies it to its own image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputStep {
    pub scale: f64,
    pub bits: u32,
}

impl InputStep {
    pub fn apply(&self, image: &[f64]) -> Vec<i64> {
        quantize(image, self.scale, self.bits)
    }
}

impl QuantizedNet {
    /// The largest activation level: every layer's input lies within
    /// ±this (the image by quantization, the rest by the steps' clamps).
    pub fn max_level(&self) -> u64 {
        max_level(self.config.activation_bits) as u64
    }

    /// How an image becomes the first layer's input.
    pub fn input_step(&self) -> InputStep {
        InputStep {
            scale: self.layer(0).input_scale,
            bits: self.config.activation_bits,
        }
    }

    /// A normalized image as the first layer's integer input.
    pub fn input(&self, image: &[f64]) -> Vec<i64> {
        self.input_step().apply(image)
    }

    /// Layer `l`'s step per output channel, with a block's `shortcut`,
    /// onto the scale of what `reader` reads: each term's real factor and
    /// the biases (a shortcut conv's too) in the reader's units; clamped
    /// to the activation range unless pooling reads it.
    pub fn steps(&self, l: usize, shortcut: Option<ShortcutKind>, reader: Reader) -> Vec<Step> {
        let layer = self.layer(l);
        let (target, clamp) = match reader {
            Reader::Layer(k) => (self.layer(k).input_scale, Some(self.max_level() as i64)),
            Reader::Pool => (self.fc.input_scale, None),
        };
        (0..layer.shape.c_out)
            .map(|o| {
                let own = layer.input_scale * layer.weight_scale[o] / target;
                let (short, bias) = match shortcut {
                    None => (None, layer.bias[o]),
                    Some(ShortcutKind::Conv(s)) => {
                        let s = self.layer(s);
                        (
                            Some(s.input_scale * s.weight_scale[o] / target),
                            layer.bias[o] + s.bias[o],
                        )
                    }
                    Some(ShortcutKind::Identity { input_of }) => (
                        Some(self.layer(input_of).input_scale / target),
                        layer.bias[o],
                    ),
                };
                Step::new(own, short, bias / target, clamp)
            })
            .collect()
    }

    /// The bounds of the terms of layer `l`'s steps, per output channel:
    /// its accumulators', and the shortcut's (a conv's accumulators, or
    /// the block's input, within the activation range). An accumulator's
    /// is its layer's worst case, every product at its largest magnitude
    /// (the bound the plaintext modulus is chosen for), not the channel's
    /// sum of |weights|: a circuit's widths then depend on the shapes
    /// alone, so neither its size nor its time says anything about the
    /// weights or their pruning.
    pub fn term_bounds(
        &self,
        l: usize,
        shortcut: Option<ShortcutKind>,
    ) -> (Vec<u64>, Option<Vec<u64>>) {
        let level = self.max_level();
        let worst = |l: usize| {
            let shape = &self.layer(l).shape;
            let bound =
                accumulator_bound(shape, self.config.weight_bits, self.config.activation_bits);
            vec![bound; shape.c_out]
        };
        let own = worst(l);
        let short = shortcut.map(|kind| match kind {
            ShortcutKind::Conv(s) => worst(s),
            ShortcutKind::Identity { .. } => vec![level; own.len()],
        });
        (own, short)
    }

    /// Pooling's step on a channel's sum over `hw` positions: the mean,
    /// rounded, clamped to the activation range (the sum is of ReLU
    /// outputs, so never negative).
    pub fn pool_step(&self, hw: usize) -> Step {
        Step::new(1.0 / hw as f64, None, 0.0, Some(self.max_level() as i64))
    }

    /// Each logit's rescaling of the FC layer's accumulator.
    pub fn logit_steps(&self) -> Vec<LogitStep> {
        let fc = &self.fc;
        fc.weight_scale
            .iter()
            .zip(&fc.bias)
            .map(|(&w, &b)| {
                let rescale = Rescale::of(fc.input_scale * w);
                LogitStep {
                    rescale,
                    bias: at_shift(b, rescale.shift),
                }
            })
            .collect()
    }
}
