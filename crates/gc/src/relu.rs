//! The share ReLU of model-private inference. After a linear layer the
//! client holds `a` and the server `b`, additive shares mod an odd t of the
//! layer's output y = (a + b) mod t, read as signed: y > (t − 1)/2 stands
//! for y − t < 0. The circuit reconstructs y, applies ReLU, requantizes a
//! nonnegative y as an integer pipeline would, z = min((y · multiplier +
//! 2^(shift−1)) >> shift, clamp) (round half up; no rounding term when shift
//! is 0), and outputs (z + r) mod t for a fresh mask r of the server's. The
//! client, who evaluates, learns a uniform share and nothing else; the
//! server's share of z is t − r.
//!
//! Inputs: the evaluator's `a`, then the garbler's `b` and `r`, each `bits`
//! bits little-endian and in [0, t); the output is `bits` bits.

use crate::GcError;
use crate::builder::Builder;
use crate::circuit::{Circuit, Wire, to_bits};

/// Checked parameters of [`share_relu`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReluParams {
    modulus: u64,
    bits: usize,
    multiplier: u64,
    shift: u32,
    clamp: u64,
}

/// The number of bits of `value`.
fn bit_len(value: u64) -> usize {
    (u64::BITS - value.leading_zeros()) as usize
}

impl ReluParams {
    /// The modulus must be odd and below 2^bits (bits ≤ 63, so sums of two
    /// shares fit a u64); the clamp below the modulus, so z is a residue;
    /// and y · multiplier plus the rounding term must fit 64 bits for every
    /// nonnegative y.
    pub fn new(
        modulus: u64,
        bits: usize,
        multiplier: u64,
        shift: u32,
        clamp: u64,
    ) -> Result<Self, GcError> {
        let params = ReluParams {
            modulus,
            bits,
            multiplier,
            shift,
            clamp,
        };
        let reject = |why| Err(GcError::ReluParams(why));
        if modulus < 3 || modulus.is_multiple_of(2) {
            return reject("the modulus must be odd and at least 3");
        }
        if bits > 63 || bit_len(modulus) > bits {
            return reject("the modulus must be below 2^bits, bits at most 63");
        }
        if shift >= u64::BITS {
            return reject("the shift must be below 64");
        }
        if clamp >= modulus {
            return reject("the clamp must be below the modulus");
        }
        let scaled = params.half().checked_mul(multiplier);
        if scaled
            .and_then(|v| v.checked_add(params.rounding()))
            .is_none()
        {
            return reject("(t - 1)/2 times the multiplier must fit 64 bits");
        }
        Ok(params)
    }

    /// The largest y read as nonnegative.
    fn half(&self) -> u64 {
        (self.modulus - 1) / 2
    }

    fn rounding(&self) -> u64 {
        if self.shift == 0 {
            0
        } else {
            1 << (self.shift - 1)
        }
    }

    /// The evaluator's input bits: its share.
    pub fn evaluator_bits(&self, share: u64) -> Vec<bool> {
        to_bits(share, self.bits)
    }

    /// The garbler's input bits: its share, then its mask.
    pub fn garbler_bits(&self, share: u64, mask: u64) -> Vec<bool> {
        [to_bits(share, self.bits), to_bits(mask, self.bits)].concat()
    }
}

/// (a + b) mod t for a, b in [0, t): the sum, less t unless that borrows.
fn add_mod(builder: &mut Builder, a: &[Wire], b: &[Wire], params: &ReluParams) -> Vec<Wire> {
    let sum = builder.add(a, b);
    let modulus = builder.constant(params.modulus, sum.len());
    let (reduced, below) = builder.sub(&sum, &modulus);
    // Whichever is chosen is below t < 2^bits: the mux skips the top bit.
    let sum = builder.resize(&sum, params.bits);
    let reduced = builder.resize(&reduced, params.bits);
    builder.mux(below, &sum, &reduced)
}

/// The share ReLU circuit (see the module documentation).
pub fn share_relu(params: &ReluParams) -> Circuit {
    let mut builder = Builder::new();
    let client = builder.evaluator_word(params.bits);
    let server = builder.garbler_word(params.bits);
    let mask = builder.garbler_word(params.bits);

    let y = add_mod(&mut builder, &client, &server, params);
    let half = builder.constant(params.half(), params.bits);
    let negative = builder.less_than(&half, &y);
    // A nonnegative y fits the bits of (t − 1)/2; where a negative y
    // overflows them the ReLU discards the result anyway.
    let magnitude = builder.resize(&y, bit_len(params.half()));
    let width = bit_len(params.half() * params.multiplier + params.rounding());
    let scaled = builder.mul_const(&magnitude, params.multiplier, width);
    let rounding = builder.constant(params.rounding(), width);
    let rounded = builder.add_wrapping(&scaled, &rounding);
    let quotient = &rounded[(params.shift as usize).min(width)..];
    let clamp = builder.constant(params.clamp, bit_len(params.clamp));
    let above = builder.less_than(&clamp, quotient);
    // Whichever is chosen is at most the clamp: the mux skips the bits above.
    let quotient = builder.resize(quotient, clamp.len());
    let clamped = builder.mux(above, &clamp, &quotient);
    // The empty word is zero: the ReLU of a negative y.
    let activation = builder.mux(negative, &[], &clamped);

    let share = add_mod(&mut builder, &activation, &mask, params);
    builder.output(&share);
    builder.finish()
}

/// What [`share_relu`] computes, on plain integers in [0, t). Written
/// independently of the circuit's helpers so that a slip in one shows as a
/// mismatch: y is negative when y ≥ t − y, and rounding half up is
/// ⌊(2·y·multiplier + 2^shift) / 2^(shift+1)⌋.
pub fn share_relu_reference(params: &ReluParams, client: u64, server: u64, mask: u64) -> u64 {
    let t = params.modulus;
    let y = (client + server) % t;
    let z = if y >= t - y {
        0
    } else {
        let doubled = 2 * u128::from(y) * u128::from(params.multiplier) + (1 << params.shift);
        // Fits: the parameters bound y · multiplier + rounding by 2^64.
        ((doubled >> (params.shift + 1)) as u64).min(params.clamp)
    };
    (z + mask) % t
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::{
        ExtendRequest, ExtendResponse, Tweaks, evaluate, from_bits, garble, send_evaluator_labels,
    };

    /// The y values where the pipeline changes behaviour: zero, the edges
    /// of the signed range, the first y that reaches the clamp, and the
    /// first whose rounding is a tie.
    fn edge_values(params: &ReluParams) -> Vec<u64> {
        let (t, half) = (params.modulus, params.half());
        let reference = |y| share_relu_reference(params, y, 0, 0);
        let clamped = (0..=half).find(|&y| reference(y) == params.clamp);
        let scale = 1u64 << params.shift;
        let tie =
            (0..=half).find(|&y| params.shift > 0 && 2 * (y * params.multiplier % scale) == scale);
        let mut edges = vec![0, 1, half - 1, half, half + 1, t - 1];
        edges.extend(clamped.into_iter().flat_map(|y| [y.saturating_sub(1), y]));
        edges.extend(tie);
        edges
    }

    #[test]
    fn garbled_share_relu_matches_plain_evaluation_and_the_reference() {
        let mut session = Tweaks::new();
        let mut rng = crate::test_rng();
        // A 20-bit NTT-friendly prime (3 · 2^18 + 1) with an int8-style
        // requantization, a 17-bit one with rounding that rarely clamps,
        // and one without a shift.
        let cases = [
            (786_433, 20, 181, 12, 255),
            (65_537, 17, 3, 1, 60_000),
            (65_537, 17, 1, 0, 127),
        ];
        for (modulus, bits, multiplier, shift, clamp) in cases {
            let params = ReluParams::new(modulus, bits, multiplier, shift, clamp).unwrap();
            let circuit = share_relu(&params);
            eprintln!(
                "share_relu t={modulus} bits={bits}: {} AND gates",
                circuit.and_gates()
            );
            // Uniform y rarely lands below the clamp point, so a third of
            // the samples come from small y.
            let mut ys = edge_values(&params);
            ys.extend((0..150).map(|i| match i % 3 {
                0 => rng.random_range(0..1u64 << 14).min(modulus - 1),
                _ => rng.random_range(0..modulus),
            }));
            for y in ys {
                let client = rng.random_range(0..modulus);
                let server = (y + modulus - client) % modulus;
                let mask = rng.random_range(0..modulus);
                let expected = share_relu_reference(&params, client, server, mask);
                let (garbler_bits, evaluator_bits) = (
                    params.garbler_bits(server, mask),
                    params.evaluator_bits(client),
                );
                let plain = circuit.eval_plain(&garbler_bits, &evaluator_bits).unwrap();
                assert_eq!(from_bits(&plain), expected, "plain, y = {y}");

                let (garbled, encoding) = garble(&circuit, &mut session, &mut rng).unwrap();
                let labels = evaluate(
                    &circuit,
                    &garbled,
                    &encoding.garbler_labels(&garbler_bits).unwrap(),
                    &encoding.evaluator_labels(&evaluator_bits).unwrap(),
                )
                .unwrap();
                assert_eq!(
                    from_bits(&garbled.decode(&labels).unwrap()),
                    expected,
                    "garbled, y = {y}"
                );
            }
        }
    }

    #[test]
    fn the_client_obtains_a_layers_labels_by_one_oblivious_transfer() {
        let mut session = Tweaks::new();
        let mut rng = crate::test_rng();
        let (mut server, mut client, _) = crate::ot::iknp::tests::session(&mut rng);
        let params = ReluParams::new(786_433, 20, 181, 12, 255).unwrap();
        let circuit = share_relu(&params);
        let t = params.modulus;
        // A layer of 40 ReLUs, half of them at small positive values.
        let shares: Vec<(u64, u64, u64)> = (0..40)
            .map(|i| {
                let y = match i % 2 {
                    0 => rng.random_range(0..1u64 << 14),
                    _ => rng.random_range(0..t),
                };
                let a = rng.random_range(0..t);
                (a, (y + t - a) % t, rng.random_range(0..t))
            })
            .collect();
        let (garbled, encodings): (Vec<_>, Vec<_>) = shares
            .iter()
            .map(|_| garble(&circuit, &mut session, &mut rng).unwrap())
            .unzip();
        // One OT session, one extension for the whole layer.
        for round in 0..2 {
            let bits: Vec<bool> = shares
                .iter()
                .flat_map(|&(a, _, _)| params.evaluator_bits(a))
                .collect();
            let (request, pending) = client.extend(&bits);
            let request_bytes = request.to_bytes();
            let request = ExtendRequest::from_bytes(&request_bytes).unwrap();
            let response = send_evaluator_labels(&encodings, &mut server, &request).unwrap();
            let response_bytes = response.to_bytes();
            let response = ExtendResponse::from_bytes(&response_bytes, bits.len()).unwrap();
            let labels = pending.finish(&response).unwrap();
            for (i, (&(a, b, mask), client_labels)) in
                shares.iter().zip(labels.chunks(params.bits)).enumerate()
            {
                let encoding = &encodings[i];
                assert_eq!(
                    client_labels,
                    encoding
                        .evaluator_labels(&params.evaluator_bits(a))
                        .unwrap()
                );
                let server_labels = encoding.garbler_labels(&params.garbler_bits(b, mask));
                let outputs = evaluate(
                    &circuit,
                    &garbled[i],
                    &server_labels.unwrap(),
                    client_labels,
                );
                let share = from_bits(&garbled[i].decode(&outputs.unwrap()).unwrap());
                assert_eq!(share, share_relu_reference(&params, a, b, mask), "ReLU {i}");
            }
            if round == 0 {
                eprintln!(
                    "{} share ReLUs' client labels ({} bits each) by one OT extension: {} B client -> server, {} B server -> client",
                    shares.len(),
                    params.bits,
                    request_bytes.len(),
                    response_bytes.len()
                );
            }
        }
        let (request, _) = client.extend(&[true; 3]);
        assert!(matches!(
            send_evaluator_labels(&encodings[..1], &mut server, &request),
            Err(GcError::InputCount {
                expected: 20,
                got: 3,
                ..
            })
        ));
    }

    #[test]
    fn parameters_that_break_the_circuit_are_rejected() {
        let rejected = [
            (65_536, 17, 1, 0, 127),
            (65_537, 16, 1, 0, 127),
            (65_537, 17, 1, 64, 127),
            (65_537, 17, 1, 0, 65_537),
            (65_537, 17, u64::MAX, 0, 127),
        ];
        for (modulus, bits, multiplier, shift, clamp) in rejected {
            let result = ReluParams::new(modulus, bits, multiplier, shift, clamp);
            assert!(
                matches!(result, Err(GcError::ReluParams(_))),
                "{modulus} {bits} {multiplier} {shift} {clamp}"
            );
        }
    }
}
