//! Half-gates garbling (Zahur, Rosulek and Evans, Eurocrypt 2015) with
//! free-XOR: the garbler draws a global Δ with its permute bit set and a
//! random zero label per input wire; a wire's one label is its zero label
//! ⊕ Δ. XOR gates XOR labels on both sides. NOT gates are free too: the
//! garbler flips the output's zero label by Δ and the evaluator keeps the
//! label it has, so the evaluator's label now stands for the negated value.
//! Each AND gate is a table of two blocks (TG, TE), one per half-gate,
//! hashed under tweaks 2k and 2k + 1 for the k-th AND gate of the session
//! ([`Tweaks`]): a garbler garbles one circuit per ReLU, and a tweak used
//! once per session keeps the hash's multi-instance bound from shrinking
//! with the number of circuits (Guo, Katz, Wang and Yu, S&P 2020).

use rand::CryptoRng;

use crate::block::{BLOCK_BYTES, blocks_from_bytes, write_blocks};
use crate::circuit::{Circuit, Gate, Wire};
use crate::ot::{ExtSender, ExtendRequest, ExtendResponse};
use crate::{Block, FixedKeyHash, GcError};

/// What the garbler sends: the session index of its first AND gate, one
/// table per AND gate, and the permute bits of the output zero labels with
/// which the evaluator decodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarbledCircuit {
    first_gate: u64,
    tables: Vec<[Block; 2]>,
    decoding: Vec<bool>,
}

/// The garbler's count of AND gates over a session, from which each
/// garbling takes its tweaks, so that no two half-gates of the session are
/// hashed under the same tweak.
#[derive(Debug)]
pub struct Tweaks {
    next_gate: u64,
    /// One past the last gate index this session (or reserved part of
    /// one) may take.
    end: u64,
}

/// AND gates a session may garble: their tweaks 2k + 1 stay below the top
/// bit, which the oblivious transfer's tweaks hold.
const MAX_GATES: u64 = 1 << 62;

impl Default for Tweaks {
    fn default() -> Tweaks {
        Tweaks {
            next_gate: 0,
            end: MAX_GATES,
        }
    }
}

impl Tweaks {
    pub fn new() -> Tweaks {
        Tweaks::default()
    }

    /// A session starting at a random gate index in the lower half of the
    /// range (2^61 gates left to it), so that sessions under the one
    /// fixed AES key rarely hash under the same tweaks: every inference
    /// is a session, and the hash's multi-instance bound counts the
    /// queries per tweak over all of them.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Tweaks {
        Tweaks {
            next_gate: rng.next_u64() % (MAX_GATES / 2),
            end: MAX_GATES,
        }
    }

    /// The next `gates` gate indices as a part of the session on their
    /// own, so that a garbling can run on another thread: no tweak of the
    /// part is taken by the session again.
    pub fn reserve(&mut self, gates: usize) -> Result<Tweaks, GcError> {
        let first = self.take(gates)?;
        Ok(Tweaks {
            next_gate: first,
            end: first + gates as u64,
        })
    }

    /// The first of `gates` fresh gate indices.
    fn take(&mut self, gates: usize) -> Result<u64, GcError> {
        let first = self.next_gate;
        match first.checked_add(gates as u64) {
            Some(next) if next <= self.end => {
                self.next_gate = next;
                Ok(first)
            }
            _ => Err(GcError::TweaksExhausted),
        }
    }
}

/// What the garbler keeps: Δ and the zero labels of the input and output
/// wires. Input labels leave it only through [`Encoding::garbler_labels`]
/// and [`send_evaluator_labels`], the oblivious transfer of the
/// evaluator's labels. Not `Debug`, so that Δ cannot end up in a log.
#[derive(Clone)]
pub struct Encoding {
    delta: Block,
    garbler_inputs: Vec<Block>,
    evaluator_inputs: Vec<Block>,
    outputs: Vec<Block>,
}

/// The tweaks of the session's k-th AND gate's generator and evaluator
/// half-gates.
fn tweaks(gate: u64) -> (u64, u64) {
    (2 * gate, 2 * gate + 1)
}

/// Garbles `circuit` under a fresh Δ and fresh input labels, its AND gates
/// taking the next tweaks of the session; never reuse a garbling for a
/// second evaluation.
pub fn garble<R: CryptoRng + ?Sized>(
    circuit: &Circuit,
    session: &mut Tweaks,
    rng: &mut R,
) -> Result<(GarbledCircuit, Encoding), GcError> {
    let first_gate = session.take(circuit.and_gates())?;
    let hash = FixedKeyHash::new();
    let delta = Block(Block::random(rng).0 | 1);
    let mut zero = vec![Block::ZERO; circuit.wires];
    let inputs = circuit
        .garbler_inputs
        .iter()
        .chain(&circuit.evaluator_inputs);
    for wire in inputs {
        zero[wire.0] = Block::random(rng);
    }
    let mut tables = Vec::new();
    for gate in &circuit.gates {
        match *gate {
            Gate::Xor { a, b, out } => zero[out.0] = zero[a.0] ^ zero[b.0],
            Gate::Not { a, out } => zero[out.0] = zero[a.0] ^ delta,
            Gate::And { a, b, out } => {
                let (a0, b0) = (zero[a.0], zero[b.0]);
                let (pa, pb) = (a0.lsb(), b0.lsb());
                let (j, k) = tweaks(first_gate + tables.len() as u64);
                let [ha0, ha1, hb0, hb1] =
                    hash.hash_all([a0, a0 ^ delta, b0, b0 ^ delta], [j, j, k, k]);
                let generator = ha0 ^ ha1 ^ delta.scaled(pb);
                let evaluator = hb0 ^ hb1 ^ a0;
                let generator_zero = ha0 ^ generator.scaled(pa);
                let evaluator_zero = hb0 ^ (hb0 ^ hb1).scaled(pb);
                tables.push([generator, evaluator]);
                zero[out.0] = generator_zero ^ evaluator_zero;
            }
        }
    }
    let labels = |wires: &[Wire]| wires.iter().map(|w| zero[w.0]).collect::<Vec<_>>();
    let outputs = labels(&circuit.outputs);
    let decoding = outputs.iter().map(|label| label.lsb()).collect();
    let encoding = Encoding {
        delta,
        garbler_inputs: labels(&circuit.garbler_inputs),
        evaluator_inputs: labels(&circuit.evaluator_inputs),
        outputs,
    };
    let garbled = GarbledCircuit {
        first_gate,
        tables,
        decoding,
    };
    Ok((garbled, encoding))
}

/// The evaluator's pass: the label of every output wire from the active
/// labels of the inputs, two hashes per AND gate.
pub fn evaluate(
    circuit: &Circuit,
    garbled: &GarbledCircuit,
    garbler_labels: &[Block],
    evaluator_labels: &[Block],
) -> Result<Vec<Block>, GcError> {
    circuit.check_inputs(garbler_labels.len(), evaluator_labels.len())?;
    let expected = circuit.and_gates();
    if garbled.tables.len() != expected {
        return Err(GcError::TableCount {
            expected,
            got: garbled.tables.len(),
        });
    }
    let hash = FixedKeyHash::new();
    let mut labels = vec![Block::ZERO; circuit.wires];
    let inputs = circuit.garbler_inputs.iter().zip(garbler_labels);
    for (wire, &label) in inputs.chain(circuit.evaluator_inputs.iter().zip(evaluator_labels)) {
        labels[wire.0] = label;
    }
    let mut and_index = 0;
    for gate in &circuit.gates {
        match *gate {
            Gate::Xor { a, b, out } => labels[out.0] = labels[a.0] ^ labels[b.0],
            Gate::Not { a, out } => labels[out.0] = labels[a.0],
            Gate::And { a, b, out } => {
                // In range: the table count was checked against the AND count.
                let [generator, evaluator] = garbled.tables[and_index];
                let (wa, wb) = (labels[a.0], labels[b.0]);
                let (j, k) = tweaks(garbled.first_gate + and_index as u64);
                and_index += 1;
                let [hj, hk] = hash.hash_all([wa, wb], [j, k]);
                let generator_half = hj ^ generator.scaled(wa.lsb());
                let evaluator_half = hk ^ (evaluator ^ wa).scaled(wb.lsb());
                labels[out.0] = generator_half ^ evaluator_half;
            }
        }
    }
    Ok(circuit.outputs.iter().map(|w| labels[w.0]).collect())
}

/// The garbler's side of the oblivious transfer of the evaluator's input
/// labels, for any number of garblings at once (a layer's ReLUs): one OT
/// per evaluator input wire, garbling after garbling, with the pairs (zero
/// label, zero label ⊕ Δ), so that the evaluator decodes the label of each
/// of its bits and learns neither the other labels nor any Δ, and the
/// garbler learns none of the bits. The evaluator's request holds its bits
/// in the same order. One extension pads to 128 OTs once, not once per
/// garbling. The OT session serves every batch in turn.
pub fn send_evaluator_labels(
    encodings: &[Encoding],
    sender: &mut ExtSender,
    request: &ExtendRequest,
) -> Result<ExtendResponse, GcError> {
    let expected = encodings.iter().map(|e| e.evaluator_inputs.len()).sum();
    if request.count() != expected {
        return Err(GcError::InputCount {
            owner: "evaluator",
            expected,
            got: request.count(),
        });
    }
    let pairs: Vec<_> = encodings
        .iter()
        .flat_map(|e| {
            e.evaluator_inputs
                .iter()
                .map(|&zero| (zero, zero ^ e.delta))
        })
        .collect();
    Ok(sender.extend(request, &pairs)?)
}

fn check_outputs(expected: usize, got: usize) -> Result<(), GcError> {
    if expected == got {
        Ok(())
    } else {
        Err(GcError::OutputCount { expected, got })
    }
}

impl GarbledCircuit {
    /// The bytes the garbler sends: two blocks per AND gate and a bit per
    /// output (the first gate's index is counted by neither party: a
    /// receiver that tracks the session's tweaks knows it).
    pub fn bytes(&self) -> usize {
        self.tables.len() * 2 * BLOCK_BYTES + self.decoding.len().div_ceil(8)
    }

    /// The bytes of the garbling of `circuit` as sent: its first gate's
    /// index, two blocks per AND gate, a bit per output.
    pub fn wire_len(circuit: &Circuit) -> usize {
        8 + circuit.and_gates() * 2 * BLOCK_BYTES + circuit.outputs.len().div_ceil(8)
    }

    /// The garbling as sent, written into `out` (exactly its
    /// [`GarbledCircuit::wire_len`]): its first gate's index, its tables,
    /// its decoding bits packed little-endian. A layer's garblings are
    /// written side by side, in parallel.
    pub fn write_to(&self, out: &mut [u8]) {
        let (first, rest) = out.split_at_mut(8);
        first.copy_from_slice(&self.first_gate.to_le_bytes());
        let (tables, packed) = rest.split_at_mut(self.tables.len() * 2 * BLOCK_BYTES);
        write_blocks(self.tables.as_flattened(), tables);
        for (byte, bits) in packed.iter_mut().zip(self.decoding.chunks(8)) {
            *byte = bits
                .iter()
                .enumerate()
                .fold(0u8, |byte, (i, &b)| byte | (u8::from(b) << i));
        }
    }

    /// The garbling as a new byte vector ([`GarbledCircuit::write_to`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; 8 + self.bytes()];
        self.write_to(&mut out);
        out
    }

    /// A garbling of `circuit` from the front of `bytes`, and the bytes
    /// after it.
    pub fn from_bytes<'b>(
        bytes: &'b [u8],
        circuit: &Circuit,
    ) -> Result<(GarbledCircuit, &'b [u8]), GcError> {
        const MESSAGE: &str = "garbled circuit";
        let outputs = circuit.outputs.len();
        let expected = GarbledCircuit::wire_len(circuit);
        if bytes.len() < expected {
            return Err(GcError::Message {
                message: MESSAGE,
                expected,
                got: bytes.len(),
            });
        }
        let first_gate = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        // The tweaks of its gates must lie in a session's range, below the
        // oblivious transfer's.
        if first_gate
            .checked_add(circuit.and_gates() as u64)
            .is_none_or(|end| end > MAX_GATES)
        {
            return Err(GcError::Message {
                message: "garbled circuit (its first gate is past a session's tweaks)",
                expected,
                got: bytes.len(),
            });
        }
        let (tables, rest) = blocks_from_bytes(&bytes[8..], 2 * circuit.and_gates(), MESSAGE)?;
        let (packed, rest) = rest.split_at(outputs.div_ceil(8));
        let decoding = (0..outputs)
            .map(|i| packed[i / 8] >> (i % 8) & 1 == 1)
            .collect();
        Ok((
            GarbledCircuit {
                first_gate,
                tables: tables.chunks_exact(2).map(|t| [t[0], t[1]]).collect(),
                decoding,
            },
            rest,
        ))
    }

    /// The evaluator's decoding: an output label's permute bit against its
    /// zero label's.
    pub fn decode(&self, output_labels: &[Block]) -> Result<Vec<bool>, GcError> {
        check_outputs(self.decoding.len(), output_labels.len())?;
        Ok(output_labels
            .iter()
            .zip(&self.decoding)
            .map(|(label, &d)| label.lsb() ^ d)
            .collect())
    }
}

impl Encoding {
    fn encode(
        &self,
        zero: &[Block],
        bits: &[bool],
        owner: &'static str,
    ) -> Result<Vec<Block>, GcError> {
        if zero.len() != bits.len() {
            return Err(GcError::InputCount {
                owner,
                expected: zero.len(),
                got: bits.len(),
            });
        }
        Ok(zero
            .iter()
            .zip(bits)
            .map(|(&label, &bit)| label ^ self.delta.scaled(bit))
            .collect())
    }

    /// The labels of the garbler's own input bits, sent in the clear.
    pub fn garbler_labels(&self, bits: &[bool]) -> Result<Vec<Block>, GcError> {
        self.encode(&self.garbler_inputs, bits, "garbler")
    }

    /// The labels of the evaluator's input bits, handed over directly: the
    /// tests' shortcut past the oblivious transfer, sound only because one
    /// process plays both parties.
    #[cfg(test)]
    pub(crate) fn evaluator_labels(&self, bits: &[bool]) -> Result<Vec<Block>, GcError> {
        self.encode(&self.evaluator_inputs, bits, "evaluator")
    }

    /// The garbler's decoding of output labels the evaluator returns,
    /// for outputs the evaluator must not learn: a label that is neither of
    /// the wire's two labels cannot come from an honest evaluation.
    pub fn decode(&self, output_labels: &[Block]) -> Result<Vec<bool>, GcError> {
        check_outputs(self.outputs.len(), output_labels.len())?;
        let pairs = output_labels.iter().zip(&self.outputs).enumerate();
        pairs
            .map(|(output, (&label, &zero))| {
                if label == zero {
                    Ok(false)
                } else if label == zero ^ self.delta {
                    Ok(true)
                } else {
                    Err(GcError::ForeignLabel { output })
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::Builder;

    const WIDTH: usize = 10;

    /// A circuit of random word operations on two words of each party,
    /// outputting the last few results.
    fn random_circuit(rng: &mut impl Rng) -> Circuit {
        let mut builder = Builder::new();
        let mut words = vec![
            builder.garbler_word(WIDTH),
            builder.garbler_word(WIDTH),
            builder.evaluator_word(WIDTH),
            builder.evaluator_word(WIDTH),
        ];
        for _ in 0..12 {
            let a = words[rng.random_range(0..words.len())].clone();
            let b = words[rng.random_range(0..words.len())].clone();
            let word = match rng.random_range(0..5) {
                0 => builder.add_wrapping(&a, &b),
                1 => builder.sub(&a, &b).0,
                2 => {
                    let select = builder.less_than(&a, &b);
                    builder.mux(select, &a, &b)
                }
                3 => builder.mul_const(&a, rng.random_range(1..1 << WIDTH), WIDTH),
                _ => {
                    let sum = builder.add(&a, &b);
                    let shifted = builder.shr_arith(&sum, rng.random_range(0..WIDTH));
                    builder.resize(&shifted, WIDTH)
                }
            };
            words.push(word);
        }
        for word in &words[words.len() - 3..] {
            builder.output(word);
        }
        builder.finish()
    }

    fn random_bits(rng: &mut impl Rng, count: usize) -> Vec<bool> {
        (0..count).map(|_| rng.random()).collect()
    }

    /// Garbles, encodes both parties' random inputs and evaluates: the
    /// encoding, the plain outputs and the output labels.
    fn run(
        circuit: &Circuit,
        rng: &mut StdRng,
    ) -> (GarbledCircuit, Encoding, Vec<bool>, Vec<Block>) {
        let (garbled, encoding) = garble(circuit, &mut Tweaks::new(), rng).unwrap();
        let garbler_bits = random_bits(rng, circuit.garbler_inputs());
        let evaluator_bits = random_bits(rng, circuit.evaluator_inputs());
        let plain = circuit.eval_plain(&garbler_bits, &evaluator_bits).unwrap();
        let garbler_labels = encoding.garbler_labels(&garbler_bits).unwrap();
        let evaluator_labels = encoding.evaluator_labels(&evaluator_bits).unwrap();
        let labels = evaluate(circuit, &garbled, &garbler_labels, &evaluator_labels).unwrap();
        (garbled, encoding, plain, labels)
    }

    #[test]
    fn garbled_evaluation_matches_plain_evaluation_on_random_circuits() {
        let mut rng = crate::test_rng();
        for _ in 0..30 {
            let circuit = random_circuit(&mut rng);
            for _ in 0..5 {
                let (garbled, _, plain, labels) = run(&circuit, &mut rng);
                assert_eq!(garbled.decode(&labels).unwrap(), plain);
            }
        }
    }

    #[test]
    fn a_garbling_crosses_as_bytes_whole_and_a_truncated_one_is_refused() {
        let mut rng = crate::test_rng();
        for _ in 0..10 {
            let circuit = random_circuit(&mut rng);
            let (garbled, ..) = run(&circuit, &mut rng);
            let mut bytes = garbled.to_bytes();
            assert_eq!(bytes.len(), 8 + garbled.bytes());
            assert_eq!(bytes.len(), GarbledCircuit::wire_len(&circuit));
            bytes.extend([1, 2]);
            let (back, rest) = GarbledCircuit::from_bytes(&bytes, &circuit).unwrap();
            assert_eq!((&back, rest), (&garbled, &[1u8, 2][..]));
            let short = &bytes[..bytes.len() - 3];
            assert!(matches!(
                GarbledCircuit::from_bytes(short, &circuit),
                Err(GcError::Message { .. })
            ));
            // A first gate whose tweaks would pass a session's range.
            if circuit.and_gates() > 0 {
                bytes[..8].copy_from_slice(&(MAX_GATES - 1).to_le_bytes());
                assert!(matches!(
                    GarbledCircuit::from_bytes(&bytes, &circuit),
                    Err(GcError::Message { .. })
                ));
            }
        }
    }

    #[test]
    fn each_output_label_is_the_zero_label_or_the_zero_label_xor_delta() {
        let mut rng = crate::test_rng();
        for _ in 0..10 {
            let circuit = random_circuit(&mut rng);
            let (_, encoding, plain, labels) = run(&circuit, &mut rng);
            for ((&label, &zero), &bit) in labels.iter().zip(&encoding.outputs).zip(&plain) {
                assert_eq!(label, zero ^ encoding.delta.scaled(bit));
            }
            assert_eq!(encoding.decode(&labels).unwrap(), plain);
        }
    }

    #[test]
    fn an_evaluation_under_other_tweaks_decodes_to_garbage_and_sessions_run_out() {
        let mut rng = crate::test_rng();
        let circuit = random_circuit(&mut rng);
        assert!(circuit.and_gates() > 0);
        let (mut garbled, encoding) = garble(&circuit, &mut Tweaks::new(), &mut rng).unwrap();
        let garbler = random_bits(&mut rng, circuit.garbler_inputs());
        let evaluator = random_bits(&mut rng, circuit.evaluator_inputs());
        let (g, e) = (
            encoding.garbler_labels(&garbler).unwrap(),
            encoding.evaluator_labels(&evaluator).unwrap(),
        );
        // The evaluator must hash under the garbler's tweaks: shifted by one
        // gate, an output that goes through an AND gate is no label at all.
        garbled.first_gate += 1;
        let labels = evaluate(&circuit, &garbled, &g, &e).unwrap();
        assert!(matches!(
            encoding.decode(&labels),
            Err(GcError::ForeignLabel { .. })
        ));
        let mut session = Tweaks {
            next_gate: MAX_GATES - 1,
            end: MAX_GATES,
        };
        assert_eq!(
            garble(&circuit, &mut session, &mut rng).err(),
            Some(GcError::TweaksExhausted)
        );
        // A reserved part holds exactly its gates, and the session goes on
        // after them.
        let mut session = Tweaks::new();
        let mut part = session.reserve(circuit.and_gates()).unwrap();
        let (garbled, _) = garble(&circuit, &mut part, &mut rng).unwrap();
        assert_eq!(garbled.first_gate, 0);
        assert_eq!(
            garble(&circuit, &mut part, &mut rng).err(),
            Some(GcError::TweaksExhausted)
        );
        let (next, _) = garble(&circuit, &mut session, &mut rng).unwrap();
        assert_eq!(next.first_gate, circuit.and_gates() as u64);
    }

    #[test]
    fn the_garbler_rejects_an_output_label_that_is_neither_of_its_labels() {
        let mut rng = crate::test_rng();
        let circuit = random_circuit(&mut rng);
        let (_, encoding, _, mut labels) = run(&circuit, &mut rng);
        labels[3] ^= Block(1 << 40);
        assert_eq!(
            encoding.decode(&labels),
            Err(GcError::ForeignLabel { output: 3 })
        );
    }

    #[test]
    fn garbling_the_same_circuit_twice_draws_a_fresh_delta_and_fresh_labels() {
        let mut rng = crate::test_rng();
        let circuit = random_circuit(&mut rng);
        let mut session = Tweaks::new();
        let (first, first_encoding) = garble(&circuit, &mut session, &mut rng).unwrap();
        let (second, second_encoding) = garble(&circuit, &mut session, &mut rng).unwrap();
        // One session: the second garbling's gates take the next tweaks.
        assert_eq!(
            (first.first_gate, second.first_gate),
            (0, circuit.and_gates() as u64)
        );
        assert!(first_encoding.delta.lsb() && second_encoding.delta.lsb());
        assert_ne!(first_encoding.delta, second_encoding.delta);
        assert_ne!(
            first_encoding.garbler_inputs,
            second_encoding.garbler_inputs
        );
        assert_ne!(
            first_encoding.evaluator_inputs,
            second_encoding.evaluator_inputs
        );
        assert_ne!(first.tables, second.tables);
    }

    #[test]
    fn evaluation_and_decoding_reject_mismatched_counts() {
        let mut rng = crate::test_rng();
        let circuit = random_circuit(&mut rng);
        let (mut garbled, encoding, _, labels) = run(&circuit, &mut rng);
        let garbler = encoding
            .garbler_labels(&vec![false; circuit.garbler_inputs()])
            .unwrap();
        let evaluator = encoding
            .evaluator_labels(&vec![true; circuit.evaluator_inputs()])
            .unwrap();
        let short = evaluate(&circuit, &garbled, &garbler, &evaluator[1..]);
        assert!(matches!(
            short,
            Err(GcError::InputCount {
                owner: "evaluator",
                ..
            })
        ));
        assert!(matches!(
            encoding.decode(&labels[1..]),
            Err(GcError::OutputCount { .. })
        ));
        garbled.tables.pop();
        let tables = evaluate(&circuit, &garbled, &garbler, &evaluator);
        assert!(matches!(tables, Err(GcError::TableCount { .. })));
    }
}
