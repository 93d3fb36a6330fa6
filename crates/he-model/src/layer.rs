//! A layer's layout under either encoding: packed into batching slots
//! ([`PackingLayout`], the schedules that rotate) or laid out as polynomial
//! coefficients ([`CoefficientLayout`], the baseline without rotations).
//! What a network's counts, the executor and the protocol need of a layer
//! whichever way it is encoded: its shape, its input and output
//! ciphertexts, and how the client reads the outputs it decrypts.

use crate::arch::ConvShape;
use crate::coefficient::CoefficientLayout;
use crate::layout::PackingLayout;

/// How a layer's values sit in a plaintext: what the client encodes its
/// input as and decodes the outputs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Slots,
    Coefficients,
}

/// One layer's layout, under one of the two encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerLayout {
    Slots(PackingLayout),
    Coefficients(CoefficientLayout),
}

impl LayerLayout {
    pub fn shape(&self) -> &ConvShape {
        match self {
            LayerLayout::Slots(l) => l.shape(),
            LayerLayout::Coefficients(l) => l.shape(),
        }
    }

    pub fn name(&self) -> &str {
        &self.shape().name
    }

    pub fn encoding(&self) -> Encoding {
        match self {
            LayerLayout::Slots(_) => Encoding::Slots,
            LayerLayout::Coefficients(_) => Encoding::Coefficients,
        }
    }

    /// The packing, for tables (`bsgs+phases`, `coefficients 3x34x34`).
    pub fn describe(&self) -> String {
        match self {
            LayerLayout::Slots(l) => l.schedule().describe(),
            LayerLayout::Coefficients(l) => l.describe(),
        }
    }

    /// The input ciphertexts the client sends.
    pub fn n_in(&self) -> usize {
        match self {
            LayerLayout::Slots(l) => l.n_in(),
            LayerLayout::Coefficients(l) => l.input_ciphertexts(),
        }
    }

    /// The values of each input block as the layer packs a `[c_in, h, w]`
    /// input: one per input ciphertext. Placement only, so it is linear:
    /// the packings of two shares add up to the packing of their sum.
    pub fn pack_input(&self, input: &[i64]) -> Vec<Vec<i64>> {
        match self {
            LayerLayout::Slots(l) => (0..l.n_in()).map(|a| l.pack_input(input, a)).collect(),
            LayerLayout::Coefficients(l) => l
                .blocks()
                .into_iter()
                .map(|b| l.pack_input(input, b))
                .collect(),
        }
    }

    /// The output ciphertexts the server returns.
    pub fn n_out(&self) -> usize {
        match self {
            LayerLayout::Slots(l) => l.n_out(),
            LayerLayout::Coefficients(l) => l.output_ciphertexts(),
        }
    }

    /// The layer's `[c_out, out_h, out_w]` output from its decrypted output
    /// blocks (decoded in [`Self::encoding`]; `None`: a block known to be
    /// zero).
    pub fn read_output(&self, blocks: &[Option<Vec<i64>>]) -> Vec<i64> {
        match self {
            LayerLayout::Slots(l) => l.read_output(blocks),
            LayerLayout::Coefficients(l) => l.read_output(blocks),
        }
    }

    /// The slot packing, where the layer has one.
    pub fn slots(&self) -> Option<&PackingLayout> {
        match self {
            LayerLayout::Slots(l) => Some(l),
            LayerLayout::Coefficients(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::shape;
    use crate::layout::LayerSchedule;
    use crate::reference::conv_int;

    /// Under both encodings, reading output blocks that hold the reference
    /// at every output position the layout names gives the reference.
    #[test]
    fn both_encodings_read_back_what_their_blocks_hold() {
        let s = shape(4, 3, 6, 3, 2);
        let input: Vec<i64> = (0..s.c_in * s.h * s.w).map(|i| i as i64 % 7 - 3).collect();
        let weights: Vec<i64> = (0..s.weight_len()).map(|i| i as i64 % 5 - 2).collect();
        let want = conv_int(&s, &input, &weights);
        let coefficients = CoefficientLayout::new(&s, 64).unwrap();
        let mut blocks = vec![Some(vec![0; 64]); coefficients.output_ciphertexts()];
        for m in 0..s.c_out {
            for spatial in 0..coefficients.spatial_blocks() {
                let block = blocks[coefficients.output_index(m, spatial)]
                    .as_mut()
                    .unwrap();
                for (at, pixel) in coefficients.outputs(spatial) {
                    block[at] = want[m * s.out_h() * s.out_w() + pixel];
                }
            }
        }
        let layer = LayerLayout::Coefficients(coefficients);
        assert_eq!(layer.read_output(&blocks), want);

        let slots = PackingLayout::new(&s, 4096, LayerSchedule::GAZELLE_CONV).unwrap();
        // The slots hold the convolution the packing computes (stride 1
        // under Gazelle's), which reading subsamples to the layer's stride.
        let computed = conv_int(&slots.computed_shape(), &input, &weights);
        let blocks: Vec<Option<Vec<i64>>> = (0..slots.n_out())
            .map(|b| {
                Some(
                    slots
                        .expected_output(&computed, b)
                        .into_iter()
                        .map(|v| v.unwrap_or(0))
                        .collect(),
                )
            })
            .collect();
        let layer = LayerLayout::Slots(slots);
        assert_eq!(layer.read_output(&blocks), want);
        assert_eq!(layer.encoding(), Encoding::Slots);
    }
}
