//! The tweakable circular correlation-robust hash that half-gates encrypts
//! its tables with: TMMO over fixed-key AES from Guo, Katz, Wang and Yu
//! ("Efficient and secure multiparty computation from fixed-key block
//! ciphers", S&P 2020, eprint 2019/074 §7), `H(x, i) = π(π(x) ⊕ i) ⊕ π(x)`
//! with π AES-128 under one fixed public key, so the key schedule runs once
//! rather than once per gate. It costs two AES calls. The one-call form
//! `π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i` (σ a linear orthomorphism) is circular
//! correlation robust but not tweakable: σ's linearity moves a tweak into
//! the input, `H(x, i) = H(x ⊕ σ⁻¹(i ⊕ i'), i')`, the gap the paper closes.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};

use crate::Block;

/// The public key of π: the first 128 bits of the fractional part of π in
/// hexadecimal, a "nothing up my sleeve" constant. Any public key would do,
/// since the proof models AES under it as a random permutation; what
/// matters is that nobody chose it to suit themselves.
const FIXED_KEY: u128 = 0x243F_6A88_85A3_08D3_1319_8A2E_0370_7344;

/// `H(x, i)`; the tweak `i` keeps the hashes of different half-gates
/// independent even on equal or Δ-related inputs.
#[derive(Clone)]
pub struct FixedKeyHash {
    pi: Aes128,
}

impl Default for FixedKeyHash {
    fn default() -> Self {
        FixedKeyHash::new()
    }
}

impl FixedKeyHash {
    pub fn new() -> Self {
        FixedKeyHash {
            pi: Aes128::new(&FIXED_KEY.to_be_bytes().into()),
        }
    }

    /// `H(x, tweak)` of one block.
    pub fn hash(&self, x: Block, tweak: u64) -> Block {
        let [h] = self.hash_all([x], [tweak]);
        h
    }

    /// `N` blocks through π at once: AES-NI pipelines independent blocks,
    /// so one call on several costs little more than one on one, where
    /// single blocks in turn each wait out the cipher's full latency.
    fn permute_all<const N: usize>(&self, xs: [Block; N]) -> [Block; N] {
        let mut blocks = xs.map(|x| aes::Block::from(x.0.to_le_bytes()));
        self.pi.encrypt_blocks(&mut blocks);
        blocks.map(|b| Block(u128::from_le_bytes(b.into())))
    }

    /// `[H(xs[0], tweaks[0]), ...]`: a half-gate's hashes are independent
    /// of each other, so their AES calls pipeline (four at a time for the
    /// garbler, two for the evaluator and the OT sender).
    pub fn hash_all<const N: usize>(&self, xs: [Block; N], tweaks: [u64; N]) -> [Block; N] {
        let inner = self.permute_all(xs);
        let mut outer = inner;
        for (o, &t) in outer.iter_mut().zip(&tweaks) {
            *o ^= Block(u128::from(t));
        }
        let outer = self.permute_all(outer);
        std::array::from_fn(|i| outer[i] ^ inner[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fixed_across_instances_and_separated_by_tweak_and_input() {
        let mut rng = crate::test_rng();
        let (one, other) = (FixedKeyHash::new(), FixedKeyHash::default());
        for tweak in 0..50 {
            let x = Block::random(&mut rng);
            assert_eq!(one.hash(x, tweak), other.hash(x, tweak));
            assert_ne!(one.hash(x, tweak), one.hash(x, tweak + 1));
            assert_ne!(one.hash(x, tweak), one.hash(x ^ Block(1 << 77), tweak));
        }
    }

    /// `π(π(x) ⊕ i) ⊕ π(x)` spelled out, one AES call at a time.
    fn tmmo(x: Block, tweak: u64) -> Block {
        let pi = Aes128::new(&FIXED_KEY.to_be_bytes().into());
        let permute = |x: Block| {
            let mut block = aes::Block::from(x.0.to_le_bytes());
            pi.encrypt_block(&mut block);
            Block(u128::from_le_bytes(block.into()))
        };
        let inner = permute(x);
        permute(inner ^ Block(u128::from(tweak))) ^ inner
    }

    #[test]
    fn hashing_blocks_together_equals_tmmo_one_block_at_a_time() {
        let mut rng = crate::test_rng();
        let hash = FixedKeyHash::new();
        for round in 0..50u64 {
            let xs: [Block; 4] = std::array::from_fn(|_| Block::random(&mut rng));
            let tweaks = [round, round + 1, 2 * round, u64::MAX - round];
            let together = hash.hash_all(xs, tweaks);
            for i in 0..4 {
                assert_eq!(together[i], tmmo(xs[i], tweaks[i]), "block {i}");
                assert_eq!(hash.hash(xs[i], tweaks[i]), together[i], "block {i} alone");
            }
        }
    }
}
