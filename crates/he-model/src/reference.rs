//! The exact integer convolution that defines what every layer computes:
//! the integer model's forward pass runs it, and every encrypted result is
//! decrypted and compared with it slot by slot.

use crate::arch::ConvShape;

/// Largest |value| of a symmetric signed integer of `bits` bits.
pub fn max_magnitude(bits: u32) -> u64 {
    (1u64 << (bits - 1)) - 1
}

/// Exact integer convolution of a `[c_in, h, w]` input with `[c_out, c_in,
/// k, k]` weights, zero padding k/2 and the shape's stride: `[c_out, out_h,
/// out_w]` accumulators.
pub fn conv_int(shape: &ConvShape, input: &[i64], weight: &[i64]) -> Vec<i64> {
    let (c_in, h, w, k, s) = (shape.c_in, shape.h, shape.w, shape.k, shape.stride);
    assert_eq!(
        input.len(),
        c_in * h * w,
        "conv_int: input of {}",
        shape.name
    );
    assert_eq!(
        weight.len(),
        shape.weight_len(),
        "conv_int: weights of {}",
        shape.name
    );
    let pad = shape.padding() as isize;
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let inside = |v: isize, n: usize| (0..n as isize).contains(&v);
    let mut out = vec![0i64; shape.c_out * oh * ow];
    for (o, out_o) in out.chunks_mut(oh * ow).enumerate() {
        for (i, x_i) in input.chunks(h * w).enumerate() {
            for kh in 0..k {
                for kw in 0..k {
                    let wv = weight[((o * c_in + i) * k + kh) * k + kw];
                    if wv == 0 {
                        continue;
                    }
                    for oy in 0..oh {
                        let y = (oy * s + kh) as isize - pad;
                        if !inside(y, h) {
                            continue;
                        }
                        let row = &x_i[y as usize * w..(y as usize + 1) * w];
                        for (ox, acc) in out_o[oy * ow..(oy + 1) * ow].iter_mut().enumerate() {
                            let x = (ox * s + kw) as isize - pad;
                            if inside(x, w) {
                                *acc += wv * row[x as usize];
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_int_matches_a_hand_computed_stride_two_case() {
        let shape = ConvShape {
            name: "t".into(),
            c_in: 1,
            c_out: 1,
            h: 3,
            w: 3,
            k: 3,
            stride: 2,
        };
        let x: Vec<i64> = (1..=9).collect();
        let mut w = vec![0i64; 9];
        w[4] = 2; // centre
        w[8] = -1; // bottom-right neighbour
        // Output (0,0) reads x(0,0)*2 - x(1,1); (0,1): x(0,2)*2 - 0 (outside).
        assert_eq!(conv_int(&shape, &x, &w), vec![2 - 5, 6, 14, 18]);
    }
}
