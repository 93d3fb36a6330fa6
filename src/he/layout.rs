//! Slot layouts: where each channel and pixel of a conv layer lives in the
//! batching row (Gazelle-style channel packing with output rotations), which
//! plaintext masks the layer multiplies, and the HE prune groups (positional
//! and diagonal) those masks induce. The diagonal (Halevi-Shoup) layout of
//! the final FC layer lives here too.

use serde::{Deserialize, Serialize};

use super::HeError;
use crate::arch::{ConvShape, FcShape};

/// A set of weights whose removal saves a rotation: every weight of one
/// kernel position read from one input ciphertext (positional), or every
/// weight on one channel diagonal of one output ciphertext (diagonal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PruneGroup {
    Positional {
        layer: usize,
        block: usize,
        position: usize,
    },
    Diagonal {
        layer: usize,
        block: usize,
        diagonal: usize,
    },
}

/// One conv layer packed into rows of `slots` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackingLayout {
    name: String,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    k: usize,
    slots: usize,
    footprint: usize,
    cn: usize,
    n_in: usize,
    n_out: usize,
}

impl PackingLayout {
    /// Lays out `shape` (evaluated at stride 1 on its input grid) in rows of
    /// `slots` slots (N/2). Errors when one channel does not fit a row.
    pub fn new(shape: &ConvShape, slots: usize) -> Result<PackingLayout, HeError> {
        let footprint = (shape.h * shape.w).next_power_of_two();
        if footprint > slots {
            return Err(HeError::LayerTooLarge {
                layer: shape.name.clone(),
                footprint,
                poly_degree: 2 * slots,
            });
        }
        let cn = slots / footprint;
        Ok(PackingLayout {
            name: shape.name.clone(),
            c_in: shape.c_in,
            c_out: shape.c_out,
            h: shape.h,
            w: shape.w,
            k: shape.k,
            slots,
            footprint,
            cn,
            n_in: shape.c_in.div_ceil(cn),
            n_out: shape.c_out.div_ceil(cn),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// Slots per channel (`P`, the next power of two of h*w).
    pub fn p(&self) -> usize {
        self.footprint
    }
    /// Channels per ciphertext.
    pub fn cn(&self) -> usize {
        self.cn
    }
    pub fn n_in(&self) -> usize {
        self.n_in
    }
    pub fn n_out(&self) -> usize {
        self.n_out
    }
    pub fn slots(&self) -> usize {
        self.slots
    }
    pub fn c_in(&self) -> usize {
        self.c_in
    }
    pub fn c_out(&self) -> usize {
        self.c_out
    }
    pub fn k(&self) -> usize {
        self.k
    }
    /// Kernel positions `kh * k + kw`.
    pub fn positions(&self) -> usize {
        self.k * self.k
    }
    /// Flattened index of W[o, i, position] in `[c_out, c_in, k, k]`.
    pub fn weight_index(&self, o: usize, i: usize, position: usize) -> usize {
        (o * self.c_in + i) * self.positions() + position
    }

    fn displacement(&self, position: usize) -> (isize, isize) {
        let half = (self.k / 2) as isize;
        (
            (position / self.k) as isize - half,
            (position % self.k) as isize - half,
        )
    }

    /// Left-rotation step that brings input pixel (y+dy, x+dx) to (y, x);
    /// `None` for the centre, which reads in place.
    pub fn positional_step(&self, position: usize) -> Option<usize> {
        let (dy, dx) = self.displacement(position);
        let offset = dy * self.w as isize + dx;
        (offset != 0).then(|| offset.rem_euclid(self.slots as isize) as usize)
    }

    /// Left-rotation step aligning diagonal `d` with the output channels;
    /// `None` for d = 0.
    pub fn diagonal_step(&self, diagonal: usize) -> Option<usize> {
        (diagonal != 0).then(|| diagonal * self.footprint)
    }

    /// Whether some output pixel reads an in-image input pixel at this
    /// position (else every mask at it is zero).
    pub fn position_in_image(&self, position: usize) -> bool {
        let (dy, dx) = self.displacement(position);
        dy.unsigned_abs() < self.h && dx.unsigned_abs() < self.w
    }

    /// Channel pairs (local input slot l, input channel i, output channel o)
    /// that diagonal `d` connects between input block `a` and output block
    /// `b`: output local j meets input local (j + d) mod cn.
    pub fn diagonal_pairs(
        &self,
        a: usize,
        b: usize,
        d: usize,
    ) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.cn).filter_map(move |l| {
            let i = a * self.cn + l;
            let o = b * self.cn + (l + self.cn - d) % self.cn;
            (i < self.c_in && o < self.c_out).then_some((l, i, o))
        })
    }

    /// Whether mask (a, b, d, position) holds any nonzero value, given which
    /// weights are nonzero. Exactly the masks [`Self::mask`] builds nonzero.
    pub fn mask_is_live<T: Copy + Default + PartialEq>(
        &self,
        weights: &[T],
        (a, b, d, position): (usize, usize, usize, usize),
    ) -> bool {
        self.position_in_image(position)
            && self
                .diagonal_pairs(a, b, d)
                .any(|(_, i, o)| weights[self.weight_index(o, i, position)] != T::default())
    }

    /// The plaintext multiplied with input block `a` rotated to `position`,
    /// contributing to diagonal `d` of output block `b`: W[o, i, position] at
    /// every output pixel whose input pixel is inside the image, 0 elsewhere
    /// (borders, padding slots, absent channels).
    pub fn mask(
        &self,
        weights: &[i64],
        (a, b, d, position): (usize, usize, usize, usize),
    ) -> Vec<i64> {
        let (dy, dx) = self.displacement(position);
        let rows = (0..self.h).filter(|&y| (0..self.h as isize).contains(&(y as isize + dy)));
        let cols: Vec<usize> = (0..self.w)
            .filter(|&x| (0..self.w as isize).contains(&(x as isize + dx)))
            .collect();
        let mut v = vec![0i64; self.slots];
        for y in rows {
            for (l, i, o) in self.diagonal_pairs(a, b, d) {
                let wv = weights[self.weight_index(o, i, position)];
                let base = l * self.footprint + y * self.w;
                for &x in &cols {
                    v[base + x] = wv;
                }
            }
        }
        v
    }

    /// Input block `a` of a `[c_in, h, w]` tensor as one row of slots.
    pub fn pack_input(&self, input: &[i64], a: usize) -> Vec<i64> {
        let hw = self.h * self.w;
        let mut v = vec![0i64; self.slots];
        for l in 0..self.cn {
            let i = a * self.cn + l;
            if i < self.c_in {
                v[l * self.footprint..l * self.footprint + hw]
                    .copy_from_slice(&input[i * hw..(i + 1) * hw]);
            }
        }
        v
    }

    /// The row of slots output block `b` must decrypt to, from the stride-1
    /// `[c_out, h, w]` result: channels at j*P, zeros elsewhere.
    pub fn pack_output(&self, output: &[i64], b: usize) -> Vec<i64> {
        let hw = self.h * self.w;
        let mut v = vec![0i64; self.slots];
        for j in 0..self.cn {
            let o = b * self.cn + j;
            if o < self.c_out {
                v[j * self.footprint..j * self.footprint + hw]
                    .copy_from_slice(&output[o * hw..(o + 1) * hw]);
            }
        }
        v
    }

    /// Every prune group of this layer (numbered `layer` in the network)
    /// with the indices of its weights in the `[c_out, c_in, k, k]` vector.
    /// Groups that hold no weight (absent channels) are left out.
    pub fn groups(&self, layer: usize) -> Vec<(PruneGroup, Vec<usize>)> {
        let mut out = Vec::new();
        for block in 0..self.n_in {
            for position in 0..self.positions() {
                let idx: Vec<usize> = (block * self.cn..((block + 1) * self.cn).min(self.c_in))
                    .flat_map(|i| (0..self.c_out).map(move |o| (o, i)))
                    .map(|(o, i)| self.weight_index(o, i, position))
                    .collect();
                out.push((
                    PruneGroup::Positional {
                        layer,
                        block,
                        position,
                    },
                    idx,
                ));
            }
        }
        for block in 0..self.n_out {
            for diagonal in 0..self.cn {
                let idx: Vec<usize> = (0..self.n_in)
                    .flat_map(|a| self.diagonal_pairs(a, block, diagonal))
                    .flat_map(|(_, i, o)| {
                        (0..self.positions()).map(move |p| self.weight_index(o, i, p))
                    })
                    .collect();
                out.push((
                    PruneGroup::Diagonal {
                        layer,
                        block,
                        diagonal,
                    },
                    idx,
                ));
            }
        }
        out.retain(|(_, idx)| !idx.is_empty());
        out
    }
}

/// The FC layer in the diagonal (Halevi-Shoup) method: the input replicated
/// with period `n` across the row, so a left rotation by d reads x[(j+d) mod n].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcLayout {
    in_features: usize,
    out_features: usize,
    n: usize,
}

impl FcLayout {
    pub fn new(shape: &FcShape, slots: usize) -> Result<FcLayout, HeError> {
        let n = shape
            .in_features
            .max(shape.out_features)
            .next_power_of_two();
        if n > slots {
            return Err(HeError::LayerTooLarge {
                layer: shape.name.clone(),
                footprint: n,
                poly_degree: 2 * slots,
            });
        }
        Ok(FcLayout {
            in_features: shape.in_features,
            out_features: shape.out_features,
            n,
        })
    }

    /// Padded length (the period of the replicated input).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Diagonal `d` holds W[j][(j + d) mod n] at slot j (zero outside the
    /// weight matrix); it is live when any of those weights is nonzero.
    pub fn diagonal_is_live<T: Copy + Default + PartialEq>(&self, weights: &[T], d: usize) -> bool {
        (0..self.out_features).any(|j| {
            let c = (j + d) % self.n;
            c < self.in_features && weights[j * self.in_features + c] != T::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(c_in: usize, c_out: usize, hw: usize, k: usize) -> ConvShape {
        ConvShape {
            name: "t".into(),
            c_in,
            c_out,
            h: hw,
            w: hw,
            k,
            stride: 1,
        }
    }

    #[test]
    fn resnet_first_stage_packs_four_channels_per_row() {
        let l = PackingLayout::new(&shape(16, 16, 32, 3), 4096).unwrap();
        assert_eq!((l.p(), l.cn(), l.n_in(), l.n_out()), (1024, 4, 4, 4));
        // Up-left neighbour: offset -33 rotates left by S - 33.
        assert_eq!(l.positional_step(0), Some(4096 - 33));
        assert_eq!(l.positional_step(4), None);
        assert_eq!(l.positional_step(5), Some(1));
        assert_eq!(l.diagonal_step(3), Some(3072));
    }

    #[test]
    fn a_channel_larger_than_a_row_names_the_degree_that_fits() {
        let e = PackingLayout::new(&shape(3, 16, 64, 3), 2048).unwrap_err();
        assert!(matches!(
            e,
            HeError::LayerTooLarge {
                footprint: 4096,
                ..
            }
        ));
        assert!(e.to_string().contains("8192"), "{e}");
    }

    #[test]
    fn groups_partition_the_weights_twice() {
        // 6 -> 5 channels with cn = 4: partial blocks on both sides.
        let l = PackingLayout::new(&shape(6, 5, 4, 3), 32).unwrap();
        assert_eq!((l.cn(), l.n_in(), l.n_out()), (2, 3, 3));
        let total = 6 * 5 * 9;
        let groups = l.groups(7);
        for positional in [true, false] {
            let mut seen = vec![0; total];
            for (g, idx) in &groups {
                if matches!(g, PruneGroup::Positional { .. }) == positional {
                    idx.iter().for_each(|&i| seen[i] += 1);
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "positional={positional}");
        }
    }

    #[test]
    fn masks_zero_the_border_and_carry_the_paired_weight() {
        let l = PackingLayout::new(&shape(2, 2, 3, 3), 32).unwrap();
        assert_eq!((l.p(), l.cn()), (16, 2));
        let weights: Vec<i64> = (1..=36).collect();
        // Position 0 is (dy, dx) = (-1, -1): row 0 and column 0 read outside.
        let m = l.mask(&weights, (0, 0, 1, 0));
        // Local 0 pairs with output (0 - 1) mod 2 = 1: W[1, 0, 0].
        let w = weights[l.weight_index(1, 0, 0)];
        assert_eq!(&m[..9], &[0, 0, 0, 0, w, w, 0, w, w]);
        assert!(m[9..16].iter().all(|&v| v == 0));
        assert!(l.mask_is_live(&weights, (0, 0, 1, 0)));
        assert!(!l.mask_is_live(&vec![0i64; 36], (0, 0, 1, 0)));
    }

    #[test]
    fn fc_diagonals_cover_the_matrix() {
        let fc = FcLayout::new(
            &FcShape {
                name: "fc".into(),
                in_features: 6,
                out_features: 3,
            },
            64,
        )
        .unwrap();
        assert_eq!(fc.n(), 8);
        let mut w = vec![0.0f32; 18];
        w[2 * 6 + 1] = 1.0; // row 2, column 1: d = (1 - 2) mod 8 = 7
        let live: Vec<usize> = (0..8).filter(|&d| fc.diagonal_is_live(&w, d)).collect();
        assert_eq!(live, vec![7]);
    }
}
