//! The boolean circuit both parties agree on: numbered wires, XOR, AND and
//! NOT gates in evaluation order, the garbler's and the evaluator's input
//! wires, the output wires, and the plain evaluation that every garbled
//! evaluation must reproduce. Words are little-endian bit vectors
//! ([`to_bits`], [`from_bits`]).

use crate::GcError;

/// A wire of one circuit: an index into its values or labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Wire(pub(crate) usize);

/// Wire 0 of every circuit carries the constant false, with the all-zero
/// block as its only label on both sides. Constants then need no input and
/// no transfer (the constant one is NOT of it, free under free-XOR), and
/// revealing a label of a public constant reveals nothing: the evaluator
/// only ever holds the all-zero label, and Δ, the other one, stays hidden.
/// Explicit constant wires would also work, but would cost the garbler a
/// label per constant in every instance.
pub(crate) const FALSE: Wire = Wire(0);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Gate {
    Xor { a: Wire, b: Wire, out: Wire },
    And { a: Wire, b: Wire, out: Wire },
    Not { a: Wire, out: Wire },
}

/// A circuit in evaluation order; built with [`crate::Builder`].
#[derive(Clone, Debug)]
pub struct Circuit {
    pub(crate) wires: usize,
    pub(crate) garbler_inputs: Vec<Wire>,
    pub(crate) evaluator_inputs: Vec<Wire>,
    pub(crate) gates: Vec<Gate>,
    pub(crate) outputs: Vec<Wire>,
}

impl Circuit {
    pub fn garbler_inputs(&self) -> usize {
        self.garbler_inputs.len()
    }

    pub fn evaluator_inputs(&self) -> usize {
        self.evaluator_inputs.len()
    }

    pub fn outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The AND gates, the only ones that cost anything: each is a garbled
    /// table of two 16-byte blocks sent to the evaluator, and four hashes
    /// to garble, two to evaluate.
    pub fn and_gates(&self) -> usize {
        self.gates
            .iter()
            .filter(|gate| matches!(gate, Gate::And { .. }))
            .count()
    }

    /// The outputs on these inputs, in the clear: the reference for garbled
    /// evaluation.
    pub fn eval_plain(
        &self,
        garbler_bits: &[bool],
        evaluator_bits: &[bool],
    ) -> Result<Vec<bool>, GcError> {
        self.check_inputs(garbler_bits.len(), evaluator_bits.len())?;
        let mut values = vec![false; self.wires];
        let inputs = self.garbler_inputs.iter().zip(garbler_bits);
        for (wire, &bit) in inputs.chain(self.evaluator_inputs.iter().zip(evaluator_bits)) {
            values[wire.0] = bit;
        }
        for gate in &self.gates {
            match *gate {
                Gate::Xor { a, b, out } => values[out.0] = values[a.0] ^ values[b.0],
                Gate::And { a, b, out } => values[out.0] = values[a.0] & values[b.0],
                Gate::Not { a, out } => values[out.0] = !values[a.0],
            }
        }
        Ok(self.outputs.iter().map(|wire| values[wire.0]).collect())
    }

    pub(crate) fn check_inputs(&self, garbler: usize, evaluator: usize) -> Result<(), GcError> {
        let counts = [
            ("garbler", self.garbler_inputs(), garbler),
            ("evaluator", self.evaluator_inputs(), evaluator),
        ];
        match counts
            .into_iter()
            .find(|&(_, expected, got)| expected != got)
        {
            Some((owner, expected, got)) => Err(GcError::InputCount {
                owner,
                expected,
                got,
            }),
            None => Ok(()),
        }
    }
}

/// The low `bits` bits of `value`, least significant first; bits past 64
/// are zero.
pub fn to_bits(value: u64, bits: usize) -> Vec<bool> {
    (0..bits).map(|i| i < 64 && (value >> i) & 1 == 1).collect()
}

/// The value of a little-endian word, modulo 2^64.
pub fn from_bits(bits: &[bool]) -> u64 {
    bits.iter()
        .rev()
        .fold(0, |value, &bit| (value << 1) | u64::from(bit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Builder;

    #[test]
    fn words_round_trip_through_bits() {
        for value in [0, 1, 0x5a5a, u64::MAX] {
            assert_eq!(from_bits(&to_bits(value, 64)), value);
            assert_eq!(from_bits(&to_bits(value, 9)), value & 0x1ff);
        }
    }

    #[test]
    fn plain_evaluation_follows_each_gate_and_checks_input_counts() {
        let mut builder = Builder::new();
        let (x, y) = (builder.garbler_word(1)[0], builder.evaluator_word(1)[0]);
        let (xor, and, not) = (builder.xor(x, y), builder.and(x, y), builder.not(x));
        builder.output(&[xor, and, not]);
        let circuit = builder.finish();
        for (x, y) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(circuit.eval_plain(&[x], &[y]), Ok(vec![x ^ y, x & y, !x]));
        }
        let expected = GcError::InputCount {
            owner: "evaluator",
            expected: 1,
            got: 2,
        };
        assert_eq!(circuit.eval_plain(&[true], &[true, false]), Err(expected));
    }
}
