//! Coefficient encoding of a convolution, the baseline without rotations:
//! Cheetah's HomConv (Huang et al., USENIX Security 2022, section 4.1).
//!
//! The zero-padded input `[C, H+2p, W+2p]` is cut into blocks of `Cw`
//! channels by `Hw x Ww` pixels (`Cw Hw Ww <= N`), overlapping by `k - 1`
//! rows and columns so that each block yields `(Hw-k+1) x (Ww-k+1)`
//! stride-1 outputs. A block is the polynomial with `T[c, i, j]` at the
//! coefficient `c Hw Ww + i Ww + j`; the kernel of output channel `m` over
//! the block's channels is the polynomial with `K[m, c, l, l']` at
//! `O - c Hw Ww - l Ww - l'`, where `O = (Cw-1) Hw Ww + (k-1) Ww + k - 1`.
//! Their negacyclic product holds, at the coefficient `O + i Ww + j`, the
//! sum over the block's channels of the convolution at `(i, j)`: no product
//! of a term that wraps past `N` lands there, since `O + i Ww + j < N`
//! and every exponent sum is below `N + O`. So one plaintext product per
//! (output channel, channel block, spatial block) and the sums over channel
//! blocks compute the layer: no rotation and no Galois key. A stride-`s`
//! layer keeps the stride-1 outputs at multiples of `s` (Cheetah's own
//! answer to strides is the same subsampling of a stride-1 product).
//!
//! The block sizes minimize the products, then the output ciphertexts.

use crate::Error;
use crate::arch::ConvShape;
use crate::cost::LayerCost;
use crate::noise::NoiseDepth;

/// One layer's blocks under coefficient encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoefficientLayout {
    shape: ConvShape,
    poly_degree: usize,
    /// Channels, rows and columns of a block (`c_block h_block w_block <= N`).
    c_block: usize,
    h_block: usize,
    w_block: usize,
    /// How many blocks cover the channels, and the stride-1 output rows and
    /// columns.
    c_parts: usize,
    h_parts: usize,
    w_parts: usize,
}

/// Where a block of the input sits: its channel block and the first padded
/// row and column it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub channels: usize,
    pub row: usize,
    pub col: usize,
}

impl CoefficientLayout {
    /// The blocks of `shape` at ring degree `n` with the fewest products
    /// (then the fewest output ciphertexts); an error when not even one
    /// channel's `k x k` window fits in `n` coefficients.
    pub fn new(shape: &ConvShape, n: usize) -> Result<CoefficientLayout, Error> {
        let (k, p) = (shape.k, shape.padding());
        let (hp, wp) = (shape.h + 2 * p, shape.w + 2 * p);
        let (ho, wo) = (hp - k + 1, wp - k + 1);
        let mut best: Option<CoefficientLayout> = None;
        for h_block in k..=hp {
            for w_block in k..=wp {
                let c_block = (n / (h_block * w_block)).min(shape.c_in);
                if c_block == 0 {
                    continue;
                }
                let layout = CoefficientLayout {
                    shape: shape.clone(),
                    poly_degree: n,
                    c_block,
                    h_block,
                    w_block,
                    c_parts: shape.c_in.div_ceil(c_block),
                    h_parts: ho.div_ceil(h_block - k + 1),
                    w_parts: wo.div_ceil(w_block - k + 1),
                };
                let rank = |l: &CoefficientLayout| (l.cost().pmults, l.output_ciphertexts());
                if best.as_ref().is_none_or(|b| rank(&layout) < rank(b)) {
                    best = Some(layout);
                }
            }
        }
        best.ok_or_else(|| Error::KernelTooLarge {
            layer: shape.name.clone(),
            kernel: k,
            poly_degree: n,
        })
    }

    pub fn shape(&self) -> &ConvShape {
        &self.shape
    }

    pub fn poly_degree(&self) -> usize {
        self.poly_degree
    }

    /// `Cw x Hw x Ww`, for the report.
    pub fn describe(&self) -> String {
        format!(
            "coefficients {}x{}x{}",
            self.c_block, self.h_block, self.w_block
        )
    }

    /// Channels per block.
    pub fn channels_per_block(&self) -> usize {
        self.c_block
    }

    /// How many blocks cover the channels: the products per output.
    pub fn channel_blocks(&self) -> usize {
        self.c_parts
    }

    /// How many blocks cover the output map.
    pub fn spatial_blocks(&self) -> usize {
        self.h_parts * self.w_parts
    }

    /// The input ciphertexts the client sends, in [`Self::blocks`] order.
    pub fn input_ciphertexts(&self) -> usize {
        self.c_parts * self.spatial_blocks()
    }

    /// One per output channel and spatial block, in
    /// [`Self::output_index`] order.
    pub fn output_ciphertexts(&self) -> usize {
        self.shape.c_out * self.spatial_blocks()
    }

    /// The input blocks, channel block outermost, then rows, then columns.
    pub fn blocks(&self) -> Vec<Block> {
        let k = self.shape.k;
        let mut out = Vec::with_capacity(self.input_ciphertexts());
        for cb in 0..self.c_parts {
            for hb in 0..self.h_parts {
                for wb in 0..self.w_parts {
                    out.push(Block {
                        channels: cb,
                        row: hb * (self.h_block - k + 1),
                        col: wb * (self.w_block - k + 1),
                    });
                }
            }
        }
        out
    }

    /// The input block that output `(m, spatial)` sums over channel block
    /// `cb` takes (an index into [`Self::blocks`]).
    pub fn input_index(&self, cb: usize, spatial: usize) -> usize {
        cb * self.spatial_blocks() + spatial
    }

    /// The output ciphertext of channel `m` and spatial block `spatial`.
    pub fn output_index(&self, m: usize, spatial: usize) -> usize {
        m * self.spatial_blocks() + spatial
    }

    /// What the layer performs: per output ciphertext, one product per
    /// channel block and the sums of those products.
    pub fn cost(&self) -> LayerCost {
        let outputs = self.output_ciphertexts();
        LayerCost {
            pmults: outputs * self.c_parts,
            adds: outputs * (self.c_parts - 1),
            ..LayerCost::default()
        }
    }

    /// Its noise: a sum of `c_parts` products of a fresh input, nothing
    /// rotated.
    pub fn depth(&self) -> NoiseDepth {
        NoiseDepth {
            products: self.c_parts,
            ..NoiseDepth::default()
        }
    }

    /// The coefficients of input block `b` from the `[c_in, h, w]` input
    /// (zero outside the input: the padding, and channels past `c_in`).
    pub fn pack_input(&self, input: &[i64], b: Block) -> Vec<i64> {
        let s = &self.shape;
        let p = s.padding();
        let mut out = vec![0; self.poly_degree];
        for c in 0..self.c_block {
            let ch = b.channels * self.c_block + c;
            if ch >= s.c_in {
                break;
            }
            for i in 0..self.h_block {
                for j in 0..self.w_block {
                    let (y, x) = (b.row + i, b.col + j);
                    if (p..p + s.h).contains(&y) && (p..p + s.w).contains(&x) {
                        out[(c * self.h_block + i) * self.w_block + j] =
                            input[(ch * s.h + y - p) * s.w + x - p];
                    }
                }
            }
        }
        out
    }

    fn offset(&self) -> usize {
        let k = self.shape.k;
        (self.c_block - 1) * self.h_block * self.w_block + (k - 1) * self.w_block + k - 1
    }

    /// The coefficients of output channel `m`'s kernel over channel block
    /// `cb`, from `[c_out, c_in, k, k]` weights.
    pub fn pack_kernel(&self, weights: &[i64], m: usize, cb: usize) -> Vec<i64> {
        let s = &self.shape;
        let (k, o) = (s.k, self.offset());
        let mut out = vec![0; self.poly_degree];
        for c in 0..self.c_block {
            let ch = cb * self.c_block + c;
            if ch >= s.c_in {
                break;
            }
            for l in 0..k {
                for l2 in 0..k {
                    out[o - (c * self.h_block + l) * self.w_block - l2] =
                        weights[((m * s.c_in + ch) * k + l) * k + l2];
                }
            }
        }
        out
    }

    /// The layer's `[c_out, out_h, out_w]` output from its decrypted output
    /// ciphertexts' coefficients, in [`Self::output_index`] order (`None`:
    /// a block known to be zero).
    pub fn read_output(&self, blocks: &[Option<Vec<i64>>]) -> Vec<i64> {
        let s = &self.shape;
        let per_channel = s.out_h() * s.out_w();
        let mut out = vec![0; s.c_out * per_channel];
        for spatial in 0..self.spatial_blocks() {
            let at = self.outputs(spatial);
            for m in 0..s.c_out {
                if let Some(block) = &blocks[self.output_index(m, spatial)] {
                    for &(coefficient, pixel) in &at {
                        out[m * per_channel + pixel] = block[coefficient];
                    }
                }
            }
        }
        out
    }

    /// Where spatial block `spatial`'s outputs lie: `(coefficient, index
    /// into the layer's [out_h, out_w] map)` for each of its outputs the
    /// layer keeps (inside the map, at multiples of the stride).
    pub fn outputs(&self, spatial: usize) -> Vec<(usize, usize)> {
        let s = &self.shape;
        let (k, stride) = (s.k, s.stride);
        let b = self.blocks()[spatial];
        let (ho, wo) = (s.out_h(), s.out_w());
        let mut out = Vec::new();
        for i in 0..=self.h_block - k {
            for j in 0..=self.w_block - k {
                let (y, x) = (b.row + i, b.col + j);
                if y % stride == 0 && x % stride == 0 && y / stride < ho && x / stride < wo {
                    let at = self.offset() + i * self.w_block + j;
                    out.push((at, (y / stride) * wo + x / stride));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Arch, DatasetKind, NetSpec};
    use crate::fixtures::shape;
    use crate::reference::conv_int;

    /// The negacyclic product `a b mod X^n + 1`, the ring's own.
    fn negacyclic(a: &[i64], b: &[i64]) -> Vec<i64> {
        let n = a.len();
        let mut out = vec![0i64; n];
        for (i, &x) in a.iter().enumerate().filter(|(_, x)| **x != 0) {
            for (j, &y) in b.iter().enumerate().filter(|(_, y)| **y != 0) {
                let (d, sign) = if i + j < n {
                    (i + j, 1)
                } else {
                    (i + j - n, -1)
                };
                out[d] += sign * x * y;
            }
        }
        out
    }

    /// The products and sums the layout prescribes, taken in the ring
    /// itself, give the integer convolution at every output, for blocks
    /// that split channels, rows and columns and for strides 1 and 2.
    #[test]
    fn ring_products_of_the_blocks_are_the_convolution() {
        let cases = [
            (shape(5, 3, 6, 3, 1), 64),
            (shape(5, 3, 6, 3, 2), 64),
            (shape(3, 2, 7, 1, 2), 32),
            (shape(4, 2, 5, 3, 1), 256),
        ];
        for (s, n) in cases {
            let l = CoefficientLayout::new(&s, n).unwrap();
            let input: Vec<i64> = (0..s.c_in * s.h * s.w)
                .map(|i| (i as i64 * 7) % 11 - 5)
                .collect();
            let weights: Vec<i64> = (0..s.weight_len())
                .map(|i| (i as i64 * 5) % 9 - 4)
                .collect();
            let want = conv_int(&s, &input, &weights);
            let blocks = l.blocks();
            let (oh, ow) = (s.out_h(), s.out_w());
            let mut got = vec![None; want.len()];
            for m in 0..s.c_out {
                for spatial in 0..l.spatial_blocks() {
                    let mut sum = vec![0i64; n];
                    for cb in 0..l.c_parts {
                        let x = l.pack_input(&input, blocks[l.input_index(cb, spatial)]);
                        let prod = negacyclic(&x, &l.pack_kernel(&weights, m, cb));
                        sum.iter_mut().zip(prod).for_each(|(a, b)| *a += b);
                    }
                    for (at, pixel) in l.outputs(spatial) {
                        got[m * oh * ow + pixel] = Some(sum[at]);
                    }
                }
            }
            let got: Vec<i64> = got.into_iter().map(|v| v.expect("every output")).collect();
            assert_eq!(got, want, "{s:?} at n = {n}: {}", l.describe());
        }
    }

    #[test]
    fn blocks_fit_the_ring_and_count_one_product_per_channel_block() {
        let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).unwrap();
        for s in spec.layer_shapes() {
            let l = CoefficientLayout::new(&s, 8192).unwrap();
            assert!(
                l.c_block * l.h_block * l.w_block <= 8192,
                "{}",
                l.describe()
            );
            let c = l.cost();
            assert_eq!(c.rotations() + c.keys, 0);
            assert_eq!(c.pmults, l.output_ciphertexts() * l.c_parts);
            assert_eq!(c.adds, c.pmults - l.output_ciphertexts());
        }
        // The stem: 3 channels of 34 x 34 padded pixels fit one block.
        let stem = CoefficientLayout::new(&spec.layer_shapes()[0], 8192).unwrap();
        assert_eq!((stem.c_parts, stem.spatial_blocks()), (1, 1));
        assert_eq!(stem.cost().pmults, 16);
    }

    #[test]
    fn a_window_larger_than_the_ring_is_refused() {
        let e = CoefficientLayout::new(&shape(1, 1, 8, 7, 1), 32).unwrap_err();
        assert!(matches!(e, Error::KernelTooLarge { kernel: 7, .. }), "{e}");
        assert!(e.to_string().contains("7x7 kernel window"), "{e}");
    }
}
