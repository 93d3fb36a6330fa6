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
//! the reader's clamp. The steps themselves are the net's
//! ([`QuantizedNet::steps`]), so that a two-party evaluation on shares
//! implements [`Steps`] with the same arithmetic.

use rayon::prelude::*;

use crate::{QuantizedNet, quantize};

pub use explore_spec::quant::Requantization;

/// The layer whose input an activation is, or the pooling before the FC
/// layer (at the FC layer's input scale, but not clamped: pooling
/// averages, then clamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Layer(usize),
    Pool,
}

/// Where a residual block's second term comes from: its shortcut conv's
/// accumulators, or the block's input itself (`input_of` the block's
/// first conv, whose input scale it is at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortcutKind {
    Conv(usize),
    Identity { input_of: usize },
}

/// A residual block's second term with its values over the batch: the
/// shortcut conv's accumulators, or the block's input activations.
pub enum Shortcut<A, I> {
    Conv(usize, Vec<I>),
    Identity { input_of: usize, x: Vec<A> },
}

impl<A, I> Shortcut<A, I> {
    pub fn kind(&self) -> ShortcutKind {
        match *self {
            Shortcut::Conv(s, _) => ShortcutKind::Conv(s),
            Shortcut::Identity { input_of, .. } => ShortcutKind::Identity { input_of },
        }
    }
}

/// The arithmetic between linear layers, over a batch. `Act` is one
/// image's activation between two layers, `Int` one image's integer input
/// or accumulators of a linear layer (`Vec<i64>` in the clear; shares in a
/// two-party evaluation). `E` is the error of the forward pass it serves
/// (the arithmetic in the clear never fails; a two-party step can).
pub trait Steps<E> {
    type Act: Clone + Send + Sync;
    type Int: Clone + Send + Sync;

    /// A normalized image as the first layer's activation.
    fn input(&mut self, image: Vec<f64>) -> Result<Self::Act, E>;

    /// The integer inputs of layer `l`.
    fn quantize(&mut self, l: usize, xs: &[Self::Act]) -> Result<Vec<Self::Int>, E>;

    /// Layer `l`'s accumulators (`[c_out, h, w]` per image) plus a block's
    /// `shortcut`, through ReLU, as what `reader` reads.
    fn output(
        &mut self,
        l: usize,
        acc: Vec<Self::Int>,
        shortcut: Option<Shortcut<Self::Act, Self::Int>>,
        reader: Reader,
    ) -> Result<Vec<Self::Act>, E>;

    /// The mean of each of `channels` channels.
    fn pool(&mut self, xs: Vec<Self::Act>, channels: usize) -> Result<Vec<Self::Act>, E>;

    /// The FC layer's accumulators as logits.
    fn logits(&mut self, acc: Vec<Self::Int>) -> Result<Vec<Vec<f64>>, E>;
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

impl<E> Steps<E> for FloatSteps<'_, '_> {
    type Act = Vec<f64>;
    type Int = Vec<i64>;

    fn input(&mut self, image: Vec<f64>) -> Result<Vec<f64>, E> {
        Ok(image)
    }

    fn quantize(&mut self, l: usize, xs: &[Vec<f64>]) -> Result<Vec<Vec<i64>>, E> {
        let scale = (self.scale_of)(l, xs);
        self.used[l] = scale;
        let bits = self.net.config.activation_bits;
        Ok(xs.iter().map(|x| quantize(x, scale, bits)).collect())
    }

    fn output(
        &mut self,
        l: usize,
        acc: Vec<Vec<i64>>,
        shortcut: Option<Shortcut<Vec<f64>, Vec<i64>>>,
        _: Reader,
    ) -> Result<Vec<Vec<f64>>, E> {
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
        Ok(y)
    }

    fn pool(&mut self, xs: Vec<Vec<f64>>, channels: usize) -> Result<Vec<Vec<f64>>, E> {
        Ok(xs
            .iter()
            .map(|v| {
                let hw = v.len() / channels;
                v.chunks(hw)
                    .map(|ch| ch.iter().sum::<f64>() / hw as f64)
                    .collect()
            })
            .collect())
    }

    fn logits(&mut self, acc: Vec<Vec<i64>>) -> Result<Vec<Vec<f64>>, E> {
        Ok(self.real(self.net.convs.len(), acc))
    }
}

/// Integers between layers: every activation already at the input scale of
/// the layer that reads it, each step the net's [`Step`](crate::fixed::Step).
pub(crate) struct FixedSteps<'a> {
    pub net: &'a QuantizedNet,
}

impl<E> Steps<E> for FixedSteps<'_> {
    type Act = Vec<i64>;
    type Int = Vec<i64>;

    fn input(&mut self, image: Vec<f64>) -> Result<Vec<i64>, E> {
        Ok(self.net.input(&image))
    }

    fn quantize(&mut self, _: usize, xs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>, E> {
        Ok(xs.to_vec())
    }

    fn output(
        &mut self,
        l: usize,
        acc: Vec<Vec<i64>>,
        shortcut: Option<Shortcut<Vec<i64>, Vec<i64>>>,
        reader: Reader,
    ) -> Result<Vec<Vec<i64>>, E> {
        let steps = self
            .net
            .steps(l, shortcut.as_ref().map(Shortcut::kind), reader);
        let hw = self.net.layer(l).shape.out_h() * self.net.layer(l).shape.out_w();
        let shorts: Vec<Option<Vec<i64>>> = match shortcut {
            None => vec![None; acc.len()],
            Some(Shortcut::Conv(_, s)) => s.into_iter().map(Some).collect(),
            Some(Shortcut::Identity { x, .. }) => x.into_iter().map(Some).collect(),
        };
        Ok(acc
            .into_par_iter()
            .zip(shorts)
            .map(|(acc, short)| {
                acc.iter()
                    .enumerate()
                    .map(|(j, &a)| steps[j / hw].apply(a, short.as_ref().map_or(0, |s| s[j])))
                    .collect()
            })
            .collect())
    }

    fn pool(&mut self, xs: Vec<Vec<i64>>, channels: usize) -> Result<Vec<Vec<i64>>, E> {
        let hw = xs.first().map_or(1, |v| v.len() / channels);
        let step = self.net.pool_step(hw);
        Ok(xs
            .iter()
            .map(|v| {
                v.chunks(hw)
                    .map(|ch| step.apply(ch.iter().sum(), 0))
                    .collect()
            })
            .collect())
    }

    fn logits(&mut self, acc: Vec<Vec<i64>>) -> Result<Vec<Vec<f64>>, E> {
        let logits = self.net.logit_steps();
        Ok(acc
            .into_iter()
            .map(|acc| acc.iter().zip(&logits).map(|(&a, l)| l.apply(a)).collect())
            .collect())
    }
}
