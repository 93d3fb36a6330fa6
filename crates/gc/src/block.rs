//! The 128-bit wire label. Under free-XOR a wire's two labels differ by the
//! garbler's global Δ, so labels only ever meet through XOR; the least
//! significant bit is the point-and-permute bit that tells the evaluator
//! which row of a garbled table to use without telling it the wire's value.

use std::ops::{BitXor, BitXorAssign};

use rand::{CryptoRng, Rng};

use crate::GcError;

/// A wire label, or Δ, or a garbled-table entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Block(pub u128);

impl Block {
    pub const ZERO: Block = Block(0);

    /// The point-and-permute bit. Δ has it set, so a wire's two labels
    /// always disagree on it.
    pub fn lsb(self) -> bool {
        self.0 & 1 == 1
    }

    /// A uniformly random block; labels and Δ must come from a
    /// cryptographically secure generator, which the bound enforces.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Block {
        Block(rng.random())
    }

    /// The block times a bit: itself when `bit` is set, zero otherwise
    /// (the `p · Δ` and `s · T` terms of half-gates).
    pub(crate) fn scaled(self, bit: bool) -> Block {
        if bit { self } else { Block::ZERO }
    }
}

/// Labels as bytes, 16 little-endian bytes each, written into `out`
/// (exactly `16 * blocks.len()` bytes): what the garbler sends of its own
/// inputs' labels, and its tables.
pub fn write_blocks(blocks: &[Block], out: &mut [u8]) {
    debug_assert_eq!(out.len(), blocks.len() * BLOCK_BYTES);
    for (b, chunk) in blocks.iter().zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        chunk.copy_from_slice(&b.0.to_le_bytes());
    }
}

/// Labels as a new byte vector ([`write_blocks`]).
pub fn blocks_to_bytes(blocks: &[Block]) -> Vec<u8> {
    let mut out = vec![0u8; blocks.len() * BLOCK_BYTES];
    write_blocks(blocks, &mut out);
    out
}

/// `count` labels from the front of `bytes`, and the bytes after them; too
/// few bytes is an error naming `message`.
pub fn blocks_from_bytes<'b>(
    bytes: &'b [u8],
    count: usize,
    message: &'static str,
) -> Result<(Vec<Block>, &'b [u8]), GcError> {
    let len = count * BLOCK_BYTES;
    if bytes.len() < len {
        return Err(GcError::Message {
            message,
            expected: len,
            got: bytes.len(),
        });
    }
    let (head, rest) = bytes.split_at(len);
    let blocks = head
        .chunks_exact(BLOCK_BYTES)
        .map(|c| Block(u128::from_le_bytes(c.try_into().expect("16 bytes"))))
        .collect();
    Ok((blocks, rest))
}

/// The bytes of a block on the wire.
pub const BLOCK_BYTES: usize = size_of::<Block>();

impl BitXor for Block {
    type Output = Block;

    fn bitxor(self, other: Block) -> Block {
        Block(self.0 ^ other.0)
    }
}

impl BitXorAssign for Block {
    fn bitxor_assign(&mut self, other: Block) {
        self.0 ^= other.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cross_as_bytes_and_a_short_message_is_refused() {
        let mut rng = crate::test_rng();
        let blocks: Vec<Block> = (0..5).map(|_| Block::random(&mut rng)).collect();
        let mut bytes = blocks_to_bytes(&blocks);
        bytes.push(7);
        let (back, rest) = blocks_from_bytes(&bytes, 5, "labels").unwrap();
        assert_eq!((back, rest), (blocks, &[7u8][..]));
        assert_eq!(
            blocks_from_bytes(&bytes[..40], 3, "labels"),
            Err(GcError::Message {
                message: "labels",
                expected: 48,
                got: 40
            })
        );
    }

    #[test]
    fn the_permute_bit_of_a_xor_is_the_xor_of_the_permute_bits() {
        let mut rng = crate::test_rng();
        for _ in 0..100 {
            let (a, b) = (Block::random(&mut rng), Block::random(&mut rng));
            assert_eq!((a ^ b).lsb(), a.lsb() ^ b.lsb());
        }
    }

    #[test]
    fn random_blocks_differ_and_take_both_permute_bits() {
        let mut rng = crate::test_rng();
        let blocks: Vec<Block> = (0..64).map(|_| Block::random(&mut rng)).collect();
        let distinct: std::collections::HashSet<_> = blocks.iter().collect();
        assert_eq!(distinct.len(), blocks.len());
        assert!(blocks.iter().any(|b| b.lsb()) && blocks.iter().any(|b| !b.lsb()));
    }
}
