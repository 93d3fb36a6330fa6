//! The share ReLU of model-private inference, the integer model's step
//! between linear layers (explore-quant's `fixed::Step`) on shares. After a
//! linear layer the client holds `a` and the server `b`, additive shares mod
//! an odd t of the layer's accumulator y = (a + b) mod t, read as signed:
//! y > (t − 1)/2 stands for y − t < 0. A residual block's second conv adds a
//! second term, the shortcut, shared the same way. The circuit reconstructs
//! each term, multiplies it by its public multiplier, adds the public bias,
//! rounds the sum by a shift (halves up), applies ReLU, clamps, and outputs
//! (z + r) mod t for a fresh mask r of the server's:
//!
//!   z = min(max(⌊(y·m + s·m_s + bias + 2^(shift−1)) / 2^shift⌋, 0), clamp)
//!
//! (no rounding term when shift is 0). The client, who evaluates, learns a
//! uniform share and nothing else; the server's share of z is t − r.
//!
//! Inputs: the evaluator's share of each term, then the garbler's share of
//! each term and its mask, each `bits` bits little-endian and in [0, t);
//! the output is `bits` bits. Each term's value must lie within its
//! stated bound (the integer model's bounds guarantee it): the circuit
//! computes on as few bits as those bounds need.

use crate::builder::Builder;
use crate::circuit::{Circuit, Wire};
use crate::{GcError, ShareInputs};

/// One term of the step: a shared value, read as signed, whose magnitude
/// is at most `bound`, times the public `multiplier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub multiplier: u64,
    pub bound: u64,
}

/// Checked parameters of [`share_relu`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReluParams {
    modulus: u64,
    bits: usize,
    acc: Term,
    short: Option<Term>,
    bias: i64,
    shift: u32,
    clamp: Option<u64>,
    /// Two's complement bits that hold every sum the terms can reach.
    width: usize,
}

/// The rules every circuit on shares mod t keeps: t odd and below 2^bits
/// (bits ≤ 63, so two shares' sum fits a u64), a shift below 64. Returns
/// (t − 1)/2, the largest value read as nonnegative.
pub(crate) fn check_modulus(modulus: u64, bits: usize, shift: u32) -> Result<u64, GcError> {
    let reject = |why| Err(GcError::ReluParams(why));
    if modulus < 3 || modulus.is_multiple_of(2) {
        return reject("the modulus must be odd and at least 3");
    }
    if bits > 63 || bit_len(modulus.into()) > bits {
        return reject("the modulus must be below 2^bits, bits at most 63");
    }
    if shift >= u64::BITS {
        return reject("the shift must be below 64");
    }
    Ok((modulus - 1) / 2)
}

/// The number of bits of `value`.
pub(crate) fn bit_len(value: u128) -> usize {
    (u128::BITS - value.leading_zeros()) as usize
}

impl ReluParams {
    /// The modulus must be odd and below 2^bits (bits ≤ 63, so sums of two
    /// shares fit a u64); each term's bound at most (t − 1)/2; every sum
    /// the terms, bias and rounding can reach must fit 64 bits as two's
    /// complement; and every output, the clamp or the largest unclamped
    /// one, at most (t − 1)/2, so that the next step reads it as
    /// nonnegative.
    pub fn new(
        modulus: u64,
        bits: usize,
        acc: Term,
        short: Option<Term>,
        bias: i64,
        shift: u32,
        clamp: Option<u64>,
    ) -> Result<Self, GcError> {
        let reject = |why| Err(GcError::ReluParams(why));
        let half = check_modulus(modulus, bits, shift)?;
        if [Some(acc), short].iter().flatten().any(|t| t.bound > half) {
            return reject("a term's bound must be at most (t - 1)/2");
        }
        let rounding = if shift == 0 { 0 } else { 1u128 << (shift - 1) };
        let term = |t: Term| u128::from(t.bound) * u128::from(t.multiplier);
        let largest =
            term(acc) + short.map_or(0, term) + u128::from(bias.unsigned_abs()) + rounding;
        let width = bit_len(largest) + 1;
        if width > 64 {
            return reject("the terms' largest sum must fit 64 bits as two's complement");
        }
        let top = clamp.map_or(largest >> shift, u128::from);
        if top > u128::from(half) {
            return reject(
                "the clamp, or without one the largest output, must be at most (t - 1)/2",
            );
        }
        Ok(ReluParams {
            modulus,
            bits,
            acc,
            short,
            bias,
            shift,
            clamp,
            width,
        })
    }

    /// The largest y read as nonnegative.
    fn half(&self) -> u64 {
        (self.modulus - 1) / 2
    }

    fn terms(&self) -> usize {
        1 + usize::from(self.short.is_some())
    }
}

/// Its shared values are the accumulator, then the shortcut if any.
impl ShareInputs for ReluParams {
    fn share_bits(&self) -> usize {
        self.bits
    }
    fn values(&self) -> usize {
        self.terms()
    }
    fn circuit(&self) -> Circuit {
        share_relu(self)
    }
}

/// (a + b) mod t for a, b in [0, t) of `bits` bits: the sum, less t unless
/// that borrows.
pub(crate) fn add_mod(
    builder: &mut Builder,
    a: &[Wire],
    b: &[Wire],
    modulus: u64,
    bits: usize,
) -> Vec<Wire> {
    let sum = builder.add(a, b);
    let t = builder.constant(modulus, sum.len());
    let (reduced, below) = builder.sub(&sum, &t);
    // Whichever is chosen is below t < 2^bits: the mux skips the top bit.
    let sum = builder.resize(&sum, bits);
    let reduced = builder.resize(&reduced, bits);
    builder.mux(below, &sum, &reduced)
}

/// A term reconstructed from its shares, read as signed, times its
/// multiplier: two's complement on the step's width.
fn product(
    builder: &mut Builder,
    client: &[Wire],
    server: &[Wire],
    term: Term,
    params: &ReluParams,
) -> Vec<Wire> {
    let y = add_mod(builder, client, server, params.modulus, params.bits);
    let half = builder.constant(params.half(), params.bits);
    let negative = builder.less_than(&half, &y);
    // |value| ≤ bound: k bits of two's complement hold it, and on k bits
    // y − t is y + (2^k − t mod 2^k), the constant gated by the sign (free:
    // a constant bit ANDed with a wire is the wire or zero).
    let k = bit_len(term.bound.into()) + 1;
    let low = builder.resize(&y, k);
    let correction = (1u128 << k) - u128::from(params.modulus) % (1u128 << k);
    let correction = builder.constant((correction % (1u128 << k)) as u64, k);
    let correction = builder.mux(negative, &correction, &[]);
    let value = builder.add_wrapping(&low, &correction);
    let sign = value[k - 1];
    let extended: Vec<Wire> = (0..params.width)
        .map(|i| value.get(i).copied().unwrap_or(sign))
        .collect();
    builder.mul_const(&extended, term.multiplier, params.width)
}

/// The share ReLU circuit (see the module documentation).
pub fn share_relu(params: &ReluParams) -> Circuit {
    let mut builder = Builder::new();
    let clients: Vec<Vec<Wire>> = (0..params.terms())
        .map(|_| builder.evaluator_word(params.bits))
        .collect();
    let servers: Vec<Vec<Wire>> = (0..params.terms())
        .map(|_| builder.garbler_word(params.bits))
        .collect();
    let mask = builder.garbler_word(params.bits);

    let width = params.width;
    let mut sum = product(&mut builder, &clients[0], &servers[0], params.acc, params);
    if let Some(short) = params.short {
        let term = product(&mut builder, &clients[1], &servers[1], short, params);
        sum = builder.add_wrapping(&sum, &term);
    }
    // The bias and the rounding term, one constant on the width.
    let rounding = if params.shift == 0 {
        0
    } else {
        1i128 << (params.shift - 1)
    };
    let offset = (i128::from(params.bias) + rounding).rem_euclid(1i128 << width);
    let offset = builder.constant(offset as u64, width);
    let sum = builder.add_wrapping(&sum, &offset);
    let negative = sum[width - 1];
    // Below the sign bit, a nonnegative sum's quotient.
    let quotient = &sum[(params.shift as usize).min(width - 1)..width - 1];
    let bounded = match params.clamp {
        Some(clamp) => {
            let clamp = builder.constant(clamp, bit_len(clamp.into()));
            let above = builder.less_than(&clamp, quotient);
            // Whichever is chosen is at most the clamp: the mux skips the
            // bits above.
            let quotient = builder.resize(quotient, clamp.len());
            builder.mux(above, &clamp, &quotient)
        }
        None => quotient.to_vec(),
    };
    // The empty word is zero: the ReLU of a negative sum.
    let activation = builder.mux(negative, &[], &bounded);
    let activation = builder.resize(&activation, params.bits);

    let share = add_mod(
        &mut builder,
        &activation,
        &mask,
        params.modulus,
        params.bits,
    );
    builder.output(&share);
    builder.finish()
}

/// What [`share_relu`] computes, on plain integers: each term's shares
/// summed mod t and read as signed, the weighted sum with the bias rounded
/// by floor division of a doubled value (halves up), ReLU, the clamp, the
/// mask. Written independently of the circuit's helpers so that a slip in
/// one shows as a mismatch.
pub fn share_relu_reference(params: &ReluParams, client: &[u64], server: &[u64], mask: u64) -> u64 {
    let t = u128::from(params.modulus);
    let signed = |a: u64, b: u64| {
        let y = (u128::from(a) + u128::from(b)) % t;
        if 2 * y > t {
            y as i128 - t as i128
        } else {
            y as i128
        }
    };
    let terms = [Some(params.acc), params.short];
    let sum: i128 = terms
        .iter()
        .flatten()
        .zip(client.iter().zip(server))
        .map(|(term, (&a, &b))| signed(a, b) * i128::from(term.multiplier))
        .sum::<i128>()
        + i128::from(params.bias);
    let scale = 1i128 << params.shift;
    let z = (2 * sum + scale).div_euclid(2 * scale).max(0);
    let z = params.clamp.map_or(z, |c| z.min(i128::from(c)));
    ((z as u128 + u128::from(mask)) % t) as u64
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::{
        ExtendRequest, ExtendResponse, Tweaks, evaluate, from_bits, garble, send_evaluator_labels,
    };

    /// A 20-bit NTT-friendly prime (3 · 2^18 + 1), the plaintext modulus of
    /// ResNet-20 at 8-bit weights and activations.
    const T: u64 = 786_433;
    const HALF: u64 = (T - 1) / 2;

    /// The integer model's kinds of step at t = 786433: after a block's
    /// first conv (one term, a negative bias, clamped to 8 bits); after its
    /// second conv with the identity shortcut (the block's 8-bit input at a
    /// larger factor); with a conv shortcut, unclamped before pooling; and
    /// a step without a shift.
    fn steps() -> Vec<ReluParams> {
        let whole = |m| Term {
            multiplier: m,
            bound: HALF,
        };
        let cases = [
            (whole(41_943), None, -5_242_880, 22, Some(127)),
            (
                Term {
                    multiplier: 45_000,
                    bound: 1 << 17,
                },
                Some(Term {
                    multiplier: 3_000_000,
                    bound: 127,
                }),
                1_000_000,
                22,
                Some(127),
            ),
            (whole(50_000), Some(whole(40_000)), 12_345, 24, None),
            (whole(1), None, 0, 0, Some(127)),
        ];
        cases
            .into_iter()
            .map(|(acc, short, bias, shift, clamp)| {
                ReluParams::new(T, 20, acc, short, bias, shift, clamp).unwrap()
            })
            .collect()
    }

    /// Values of a term within its bound: the edges, a tie of the rounding
    /// where one exists among small values, values of two small sizes and
    /// uniform ones.
    fn values(params: &ReluParams, term: Term, rng: &mut impl Rng) -> Vec<i64> {
        let b = term.bound as i64;
        let mut v = vec![0, 1, -1, b, -b];
        let scale = 1i64 << params.shift;
        v.extend((-4096..4096).find(|&x| {
            params.shift > 0
                && (x * term.multiplier as i64 + params.bias).rem_euclid(scale) == scale / 2
        }));
        v.extend((0..90).map(|i| match i % 3 {
            0 => rng.random_range(-(b.min(1 << 8))..=b.min(1 << 8)),
            1 => rng.random_range(-(b.min(1 << 12))..=b.min(1 << 12)),
            _ => rng.random_range(-b..=b),
        }));
        v
    }

    /// Shares of `v` mod t.
    fn share(v: i64, rng: &mut impl Rng) -> (u64, u64) {
        let y = v.rem_euclid(T as i64) as u64;
        let a = rng.random_range(0..T);
        (a, (y + T - a) % T)
    }

    #[test]
    fn garbled_share_relu_matches_plain_evaluation_and_the_reference() {
        let mut session = Tweaks::new();
        let mut rng = crate::test_rng();
        for params in steps() {
            let circuit = share_relu(&params);
            eprintln!(
                "share_relu {:?} {:?}: {} AND gates",
                params.acc,
                params.short,
                circuit.and_gates()
            );
            let accs = values(&params, params.acc, &mut rng);
            let shorts = match params.short {
                Some(s) => values(&params, s, &mut rng),
                None => vec![0; accs.len()],
            };
            let mut outputs = std::collections::BTreeSet::new();
            for (&acc, &short) in accs.iter().zip(&shorts) {
                let ((a, b), (c, d)) = (share(acc, &mut rng), share(short, &mut rng));
                let (client, server) = match params.short {
                    Some(_) => (vec![a, c], vec![b, d]),
                    None => (vec![a], vec![b]),
                };
                let mask = rng.random_range(0..T);
                let expected = share_relu_reference(&params, &client, &server, mask);
                outputs.insert((expected + T - mask) % T);
                let (garbler_bits, evaluator_bits) = (
                    params.garbler_bits(&server, mask),
                    params.evaluator_bits(&client),
                );
                let (plain, garbled) = crate::plain_and_garbled(
                    &circuit,
                    &garbler_bits,
                    &evaluator_bits,
                    &mut session,
                    &mut rng,
                );
                assert_eq!(plain, expected, "plain, {acc} {short}");
                assert_eq!(garbled, expected, "garbled, {acc} {short}");
            }
            // The samples reach zero (ReLU), the clamp where there is one,
            // and values between.
            assert!(outputs.contains(&0), "{outputs:?}");
            if let Some(clamp) = params.clamp {
                assert!(outputs.contains(&clamp), "{outputs:?}");
            }
            assert!(outputs.len() > 3, "{outputs:?}");
        }
    }

    #[test]
    fn the_reference_rounds_halves_up_and_reads_shares_as_signed() {
        let p = ReluParams::new(
            T,
            20,
            Term {
                multiplier: 1,
                bound: HALF,
            },
            None,
            0,
            2,
            Some(100),
        )
        .unwrap();
        // 6/4 = 1.5 -> 2; 5/4 -> 1; 10/4 = 2.5 -> 3; 2^20-ish wraps to negative.
        for (y, z) in [(6, 2), (5, 1), (10, 3), (T - 6, 0), (2_000, 100)] {
            assert_eq!(share_relu_reference(&p, &[y], &[0], 0), z, "{y}");
            assert_eq!(share_relu_reference(&p, &[0], &[y], 7), z + 7, "{y}");
        }
    }

    #[test]
    fn the_client_obtains_a_layers_labels_by_one_oblivious_transfer() {
        let mut session = Tweaks::new();
        let mut rng = crate::test_rng();
        let (mut server, mut client, _) = crate::ot::iknp::tests::session(&mut rng);
        let params = steps()[0];
        let circuit = share_relu(&params);
        // A layer of 40 ReLUs, half of them at small values.
        let shares: Vec<(u64, u64, u64)> = (0..40)
            .map(|i| {
                let v = match i % 2 {
                    0 => rng.random_range(-(1i64 << 14)..1 << 14),
                    _ => rng.random_range(-(HALF as i64)..=HALF as i64),
                };
                let (a, b) = share(v, &mut rng);
                (a, b, rng.random_range(0..T))
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
                .flat_map(|&(a, _, _)| params.evaluator_bits(&[a]))
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
                        .evaluator_labels(&params.evaluator_bits(&[a]))
                        .unwrap()
                );
                let server_labels = encoding.garbler_labels(&params.garbler_bits(&[b], mask));
                let outputs = evaluate(
                    &circuit,
                    &garbled[i],
                    &server_labels.unwrap(),
                    client_labels,
                );
                let share = from_bits(&garbled[i].decode(&outputs.unwrap()).unwrap());
                assert_eq!(
                    share,
                    share_relu_reference(&params, &[a], &[b], mask),
                    "ReLU {i}"
                );
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
        let one = |m| Term {
            multiplier: m,
            bound: 100,
        };
        let rejected = [
            (65_536, 17, one(1), None, 0, 0, Some(127)),
            (65_537, 16, one(1), None, 0, 0, Some(127)),
            (65_537, 17, one(1), None, 0, 64, Some(127)),
            // The clamp would read as negative in the next step.
            (65_537, 17, one(1), None, 0, 0, Some(40_000)),
            // Unclamped, the largest output would too.
            (65_537, 17, one(1000), None, 0, 0, None),
            (
                65_537,
                17,
                Term {
                    multiplier: 1,
                    bound: 40_000,
                },
                None,
                0,
                0,
                Some(127),
            ),
            (65_537, 17, one(u64::MAX), None, 0, 0, Some(127)),
        ];
        for (modulus, bits, acc, short, bias, shift, clamp) in rejected {
            let result = ReluParams::new(modulus, bits, acc, short, bias, shift, clamp);
            assert!(
                matches!(result, Err(GcError::ReluParams(_))),
                "{modulus} {bits} {acc:?} {shift} {clamp:?}"
            );
        }
    }
}
