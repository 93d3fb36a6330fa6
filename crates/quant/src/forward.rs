//! The order of a ResNet forward pass: which linear layers form each round
//! (a block's first conv and its shortcut read the same input and share
//! one), and which step between them reads what. It needs the
//! architecture alone, so a party without the weights (the client of a
//! two-party inference) runs the same pass as the model in the clear.

use explore_he_model::arch::NetSpec;

use crate::QuantError;
use crate::between::{Reader, Shortcut, Steps};

/// The linear layers of one round of a forward pass: each layer's index
/// (`convs.len()` is the FC layer) with its quantized inputs over the batch
/// (`I`, one image's: integers in the clear, or shares of them).
/// A block's first conv and its shortcut read the same input and share a
/// round; every other layer has its own.
pub type Round<I = Vec<i64>> = [(usize, Vec<I>)];

/// How a forward pass gets the integer accumulators of a round's layers
/// (each layer's outputs over the batch, `[c_out, out_h, out_w]` per image):
/// computed in the clear, or by a server on ciphertexts.
pub type Linear<'a, E, I = Vec<i64>> = dyn FnMut(&Round<I>) -> Result<Vec<Vec<I>>, E> + 'a;

/// `flat` (`n*c*h*w`, normalized) as one vector per image.
pub(crate) fn images(spec: &NetSpec, flat: &[f32]) -> Result<Vec<Vec<f64>>, QuantError> {
    let (c, h, w) = spec.dataset.input_shape();
    let per_image = c * h * w;
    if flat.is_empty() || !flat.len().is_multiple_of(per_image) {
        return Err(QuantError::ImageLength {
            per_image,
            got: flat.len(),
        });
    }
    Ok(flat
        .chunks(per_image)
        .map(|x| x.iter().map(|&v| v as f64).collect())
        .collect())
}

/// One round over the batch: each layer's integer inputs, and the
/// accumulators `linear` returns for them.
fn round<S: Steps<E>, E>(
    steps: &mut S,
    layers: &[(usize, &[S::Act])],
    linear: &mut Linear<E, S::Int>,
) -> Result<Vec<Vec<S::Int>>, E> {
    let round = layers
        .iter()
        .map(|&(l, xs)| Ok((l, steps.quantize(l, xs)?)))
        .collect::<Result<Vec<_>, E>>()?;
    linear(&round)
}

/// The forward pass of `spec` over a batch, its linear layers from
/// `linear` round by round, the arithmetic between them from `steps`;
/// returns logits.
pub(crate) fn forward<S: Steps<E>, E>(
    spec: &NetSpec,
    batch: Vec<Vec<f64>>,
    steps: &mut S,
    linear: &mut Linear<E, S::Int>,
) -> Result<Vec<Vec<f64>>, E> {
    let one = |out: Vec<Vec<S::Int>>| out.into_iter().next().expect("one layer");
    let blocks = &spec.blocks;
    // Who reads block i's input: its first conv, or after the last block
    // the pooling.
    let reader = |i: usize| {
        blocks
            .get(i)
            .map_or(Reader::Pool, |b| Reader::Layer(b.conv1))
    };
    let image = batch
        .into_iter()
        .map(|x| steps.input(x))
        .collect::<Result<Vec<_>, E>>()?;
    let acc = one(round(steps, &[(0, &image)], linear)?);
    let mut x = steps.output(0, acc, None, reader(0))?;
    for (i, b) in blocks.iter().enumerate() {
        let (acc, shortcut) = match b.shortcut {
            Some(s) => {
                let mut out = round(steps, &[(b.conv1, &x), (s, &x)], linear)?;
                let short = out.pop().expect("the shortcut");
                (one(out), Shortcut::Conv(s, short))
            }
            None => {
                let acc = one(round(steps, &[(b.conv1, &x)], linear)?);
                (
                    acc,
                    Shortcut::Identity {
                        input_of: b.conv1,
                        x,
                    },
                )
            }
        };
        let h = steps.output(b.conv1, acc, None, Reader::Layer(b.conv2))?;
        let acc = one(round(steps, &[(b.conv2, &h)], linear)?);
        x = steps.output(b.conv2, acc, Some(shortcut), reader(i + 1))?;
    }
    let pooled = steps.pool(x, spec.fc.in_features)?;
    let acc = one(round(steps, &[(spec.convs.len(), &pooled)], linear)?);
    steps.logits(acc)
}

/// The forward pass of `spec` over `images` (`n*c*h*w`, normalized) with
/// the arithmetic between linear layers from `steps` and the linear layers
/// from `linear`. `steps` must compute the model's own steps
/// ([`QuantizedNet::steps`](crate::QuantizedNet::steps)): one party's half
/// of a two-party evaluation on shares, say, which needs no weights.
pub fn logits_on<S: Steps<E>, E>(
    spec: &NetSpec,
    images: &[f32],
    steps: &mut S,
    linear: &mut Linear<E, S::Int>,
) -> Result<Vec<Vec<f64>>, E>
where
    E: From<QuantError>,
{
    let batch = self::images(spec, images)?;
    forward(spec, batch, steps, linear)
}
