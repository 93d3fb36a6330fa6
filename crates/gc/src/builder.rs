//! Building circuits gate by gate and word by word. Words are little-endian
//! vectors of wires; operands of different widths are zero-extended to the
//! wider one. Gates on constant operands are folded away as they are asked
//! for, so word helpers given public constants (a modulus, a multiplier, a
//! threshold) pay AND gates only where a secret bit meets a secret bit.

use std::iter;

use crate::circuit::{Circuit, FALSE, Gate, Wire};

/// A circuit under construction.
#[derive(Debug)]
pub struct Builder {
    circuit: Circuit,
    one: Wire,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

/// Bit `i` of a word, zero past its width.
fn bit(word: &[Wire], i: usize) -> Wire {
    word.get(i).copied().unwrap_or(FALSE)
}

impl Builder {
    pub fn new() -> Self {
        let circuit = Circuit {
            wires: 1,
            garbler_inputs: Vec::new(),
            evaluator_inputs: Vec::new(),
            gates: Vec::new(),
            outputs: Vec::new(),
        };
        let mut builder = Builder {
            circuit,
            one: FALSE,
        };
        builder.one = builder.gate(|out| Gate::Not { a: FALSE, out });
        builder
    }

    fn fresh(&mut self) -> Wire {
        self.circuit.wires += 1;
        Wire(self.circuit.wires - 1)
    }

    fn gate(&mut self, gate: impl FnOnce(Wire) -> Gate) -> Wire {
        let out = self.fresh();
        self.circuit.gates.push(gate(out));
        out
    }

    /// The garbler's next `bits` input wires, in input order.
    pub fn garbler_word(&mut self, bits: usize) -> Vec<Wire> {
        let word: Vec<Wire> = (0..bits).map(|_| self.fresh()).collect();
        self.circuit.garbler_inputs.extend(&word);
        word
    }

    /// The evaluator's next `bits` input wires, in input order.
    pub fn evaluator_word(&mut self, bits: usize) -> Vec<Wire> {
        let word: Vec<Wire> = (0..bits).map(|_| self.fresh()).collect();
        self.circuit.evaluator_inputs.extend(&word);
        word
    }

    pub fn zero(&self) -> Wire {
        FALSE
    }

    pub fn one(&self) -> Wire {
        self.one
    }

    /// The public constant `value` on `bits` wires (no gates).
    pub fn constant(&self, value: u64, bits: usize) -> Vec<Wire> {
        let wires = [FALSE, self.one];
        (0..bits)
            .map(|i| wires[usize::from(i < 64 && (value >> i) & 1 == 1)])
            .collect()
    }

    /// `word` truncated or zero-extended to `bits` wires (no gates).
    pub fn resize(&self, word: &[Wire], bits: usize) -> Vec<Wire> {
        (0..bits).map(|i| bit(word, i)).collect()
    }

    pub fn xor(&mut self, a: Wire, b: Wire) -> Wire {
        match (a, b) {
            _ if a == b => FALSE,
            (FALSE, other) | (other, FALSE) => other,
            _ if a == self.one => self.not(b),
            _ if b == self.one => self.not(a),
            _ => self.gate(|out| Gate::Xor { a, b, out }),
        }
    }

    pub fn and(&mut self, a: Wire, b: Wire) -> Wire {
        match (a, b) {
            (FALSE, _) | (_, FALSE) => FALSE,
            _ if a == b || b == self.one => a,
            _ if a == self.one => b,
            _ => self.gate(|out| Gate::And { a, b, out }),
        }
    }

    pub fn not(&mut self, a: Wire) -> Wire {
        match a {
            FALSE => self.one,
            _ if a == self.one => FALSE,
            _ => self.gate(|out| Gate::Not { a, out }),
        }
    }

    /// The carries c_0 = `carry_in`, ..., c_len of a ripple-carry a + b, one
    /// AND each: c_{i+1} = ((a_i ⊕ c_i) ∧ (b_i ⊕ c_i)) ⊕ c_i is the majority.
    fn carries(&mut self, a: &[Wire], b: &[Wire], carry_in: Wire, len: usize) -> Vec<Wire> {
        let mut carries = vec![carry_in];
        for i in 0..len {
            let carry = carries[i];
            let (a_side, b_side) = (self.xor(bit(a, i), carry), self.xor(bit(b, i), carry));
            let both = self.and(a_side, b_side);
            carries.push(self.xor(both, carry));
        }
        carries
    }

    /// The sum bits a_i ⊕ b_i ⊕ c_i for every given carry (free).
    fn sums(&mut self, a: &[Wire], b: &[Wire], carries: &[Wire], width: usize) -> Vec<Wire> {
        (0..width)
            .map(|i| {
                let half = self.xor(bit(a, i), bit(b, i));
                self.xor(half, carries[i])
            })
            .collect()
    }

    /// a + b exactly: one bit wider than the wider operand.
    pub fn add(&mut self, a: &[Wire], b: &[Wire]) -> Vec<Wire> {
        let width = a.len().max(b.len());
        let carries = self.carries(a, b, FALSE, width);
        let mut sum = self.sums(a, b, &carries, width);
        sum.push(carries[width]);
        sum
    }

    /// a + b mod 2^width, saving the AND of the dropped carry.
    pub fn add_wrapping(&mut self, a: &[Wire], b: &[Wire]) -> Vec<Wire> {
        let width = a.len().max(b.len());
        let carries = self.carries(a, b, FALSE, width.saturating_sub(1));
        self.sums(a, b, &carries, width)
    }

    /// ¬b and the carries of a + ¬b + 1, which is a − b mod 2^width; the
    /// last carry is set exactly when a ≥ b.
    fn subtraction_carries(&mut self, a: &[Wire], b: &[Wire]) -> (Vec<Wire>, Vec<Wire>) {
        let width = a.len().max(b.len());
        let not_b: Vec<Wire> = (0..width).map(|i| self.not(bit(b, i))).collect();
        let carries = self.carries(a, &not_b, self.one, width);
        (not_b, carries)
    }

    /// a − b mod 2^width, and the borrow: whether a < b as unsigned words.
    pub fn sub(&mut self, a: &[Wire], b: &[Wire]) -> (Vec<Wire>, Wire) {
        let (not_b, carries) = self.subtraction_carries(a, b);
        let width = not_b.len();
        let difference = self.sums(a, &not_b, &carries, width);
        (difference, self.not(carries[width]))
    }

    /// Whether a < b as unsigned words; with a constant operand, compares
    /// against a public threshold.
    pub fn less_than(&mut self, a: &[Wire], b: &[Wire]) -> Wire {
        let (not_b, carries) = self.subtraction_carries(a, b);
        self.not(carries[not_b.len()])
    }

    /// `if select { a } else { b }` bitwise, one AND per bit:
    /// b ⊕ (select ∧ (a ⊕ b)).
    pub fn mux(&mut self, select: Wire, a: &[Wire], b: &[Wire]) -> Vec<Wire> {
        (0..a.len().max(b.len()))
            .map(|i| {
                let differ = self.xor(bit(a, i), bit(b, i));
                let flip = self.and(select, differ);
                self.xor(bit(b, i), flip)
            })
            .collect()
    }

    /// a · `multiplier` mod 2^bits by shift-and-add: one wrapping addition
    /// per set bit of the multiplier after the first, which is free.
    pub fn mul_const(&mut self, a: &[Wire], multiplier: u64, bits: usize) -> Vec<Wire> {
        let mut product = self.constant(0, bits);
        for shift in (0..bits.min(64)).filter(|&i| (multiplier >> i) & 1 == 1) {
            let shifted: Vec<Wire> = iter::repeat_n(FALSE, shift)
                .chain(a.iter().copied())
                .take(bits)
                .collect();
            product = self.add_wrapping(&product, &shifted);
        }
        product
    }

    /// a >> `shift` reading a as two's complement: the sign bit fills in
    /// from the top, the width stays (no gates).
    pub fn shr_arith(&self, a: &[Wire], shift: usize) -> Vec<Wire> {
        let sign = a.last().copied().unwrap_or(FALSE);
        (0..a.len())
            .map(|i| a.get(i.saturating_add(shift)).copied().unwrap_or(sign))
            .collect()
    }

    /// Appends `word` to the circuit's outputs.
    pub fn output(&mut self, word: &[Wire]) {
        self.circuit.outputs.extend(word);
    }

    pub fn finish(self) -> Circuit {
        self.circuit
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::{from_bits, to_bits};

    const WIDTH: usize = 12;
    const LOW: u64 = (1 << WIDTH) - 1;
    const K: u64 = 0b1010_0110_0101;

    /// Checks `op` on a garbler word x and an evaluator word y against
    /// `reference` on random inputs; the circuit's AND gates.
    fn check(
        op: impl Fn(&mut Builder, &[Wire], &[Wire]) -> Vec<Wire>,
        reference: impl Fn(u64, u64) -> u64,
    ) -> usize {
        let mut builder = Builder::new();
        let (x, y) = (builder.garbler_word(WIDTH), builder.evaluator_word(WIDTH));
        let word = op(&mut builder, &x, &y);
        builder.output(&word);
        let circuit = builder.finish();
        let mut rng = crate::test_rng();
        for _ in 0..200 {
            let (a, b) = (rng.random_range(0..=LOW), rng.random_range(0..=LOW));
            let out = circuit.eval_plain(&to_bits(a, WIDTH), &to_bits(b, WIDTH));
            assert_eq!(
                from_bits(&out.unwrap()),
                reference(a, b),
                "a = {a}, b = {b}"
            );
        }
        circuit.and_gates()
    }

    #[test]
    fn word_operations_match_u64_arithmetic_on_random_inputs() {
        let signed = |v: u64| ((v << (64 - WIDTH)) as i64) >> (64 - WIDTH);
        check(|c, x, y| c.add(x, y), |a, b| a + b);
        check(|c, x, y| c.add_wrapping(x, y), |a, b| (a + b) & LOW);
        check(
            |c, x, y| {
                let (difference, borrow) = c.sub(x, y);
                [difference, vec![borrow]].concat()
            },
            |a, b| (a.wrapping_sub(b) & LOW) | (u64::from(a < b) << WIDTH),
        );
        check(
            |c, x, y| {
                let below = c.less_than(x, y);
                c.mux(below, x, y)
            },
            u64::min,
        );
        check(
            |c, x, _| c.mul_const(x, K, WIDTH + 4),
            |a, _| (a * K) & 0xffff,
        );
        check(
            |c, x, _| c.shr_arith(x, 3),
            |a, _| (signed(a) >> 3) as u64 & LOW,
        );
    }

    #[test]
    fn public_constants_cost_no_and_gates_of_their_own() {
        let mut builder = Builder::new();
        let (x, zero, one) = (builder.garbler_word(1)[0], builder.zero(), builder.one());
        assert_eq!(builder.and(x, one), x);
        assert_eq!(builder.and(x, zero), zero);
        assert_eq!(builder.xor(x, x), zero);
        let free = [
            check(|c, x, _| c.add_wrapping(x, &c.constant(0, WIDTH)), |a, _| a),
            check(|c, x, _| c.mul_const(x, 8, WIDTH), |a, _| (a * 8) & LOW),
            check(
                |c, _, _| c.add(&c.constant(K, WIDTH), &c.constant(K, WIDTH)),
                |_, _| 2 * K,
            ),
        ];
        assert_eq!(free, [0; 3]);
        // Only the borrow through x's bits is left, and its lowest bit folds
        // against the constant carry-in.
        let threshold = check(
            |c, x, _| vec![c.less_than(x, &c.constant(K, WIDTH))],
            |a, _| u64::from(a < K),
        );
        assert_eq!(threshold, WIDTH - 1);
    }
}
