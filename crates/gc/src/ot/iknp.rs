//! OT extension of Ishai, Kilian, Nissim and Petrank (Crypto 2003),
//! semi-honest: κ = 128 base OTs, run once per session pair, become any
//! number of chosen-message OTs of blocks at a few AES calls each.
//!
//! The base OTs run with the roles reversed. The extension receiver (the
//! evaluator) is their sender, with seed pairs (k_j^0, k_j^1); the
//! extension sender (the garbler) their receiver, with a random choice
//! vector s and seeds k_j^{s_j}, j < κ. For m choices r the receiver
//! expands t_j = G(k_j^0) and sends the columns u_j = t_j ⊕ G(k_j^1) ⊕ r;
//! the sender forms q_j = G(k_j^{s_j}) ⊕ s_j·u_j = t_j ⊕ s_j·r, so the i-th
//! row of Q is q_i = t_i ⊕ r_i·s. It sends y_i^0 = x_i^0 ⊕ H(i, q_i) and
//! y_i^1 = x_i^1 ⊕ H(i, q_i ⊕ s); the receiver, who knows t_i = q_i ⊕ r_i·s,
//! unmasks x_i^{r_i} and nothing else, since the other mask needs s.
//!
//! G is AES-128 in counter mode keyed by the seed, one stream per column
//! read on across extensions, so no PRG output is used twice. H is the
//! crate's [`FixedKeyHash`] with the OT's index as tweak: Guo, Katz, Wang
//! and Yu (S&P 2020) show that IKNP needs H tweakable correlation robust,
//! which their TMMO is, and the tweak stops the multi-instance attack on
//! untweaked fixed-key hashes; it costs two AES calls where SHA-256 would
//! cost a compression function per message. The tweaks carry the top bit,
//! which the garbling's never reach, so the two uses never share one.
//!
//! The session counts its OTs: each extension pads m up to a multiple of
//! 128 rows, and requests must be answered in the order they were made.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use rand::CryptoRng;

use super::base::{self, KAPPA};
use super::{OtError, check_length, u128_from};
use crate::{Block, FixedKeyHash};

/// The rows in one u128 of a column.
const BLOCK_ROWS: usize = 128;

/// The bytes of a block on the wire.
const BLOCK_BYTES: usize = 16;

/// Set in every OT tweak and in no garbling tweak (2k and 2k + 1).
const TWEAK_DOMAIN: u64 = 1 << 63;

fn tweak(first_row: u64, index: usize) -> u64 {
    TWEAK_DOMAIN | (first_row + index as u64)
}

/// The u128 blocks of each column for `count` rows.
fn column_blocks(count: usize) -> usize {
    count.div_ceil(BLOCK_ROWS)
}

/// AES-128 in counter mode under a base-OT key.
struct Prg(Aes128);

impl Prg {
    fn new(seed: Block) -> Prg {
        Prg(Aes128::new(&seed.0.to_le_bytes().into()))
    }

    /// Blocks `first..first + out.len()` of the stream.
    fn fill(&self, first: u64, out: &mut [u128]) {
        let counters = (0..out.len()).map(|i| u128::from(first) + i as u128);
        let mut blocks: Vec<aes::Block> = counters.map(|c| c.to_le_bytes().into()).collect();
        self.0.encrypt_blocks(&mut blocks);
        for (word, block) in out.iter_mut().zip(blocks) {
            *word = u128::from_le_bytes(block.into());
        }
    }
}

/// Transposes a 128 × 128 bit matrix in place, bit j of word i becoming
/// bit i of word j, by Eklundh's block swaps: at widths 64, 32, …, 1 each
/// pair of words `width` apart swaps its off-diagonal halves, seven rounds
/// of 64 word operations instead of 16,384 bit moves.
fn transpose_128(matrix: &mut [u128; 128]) {
    let mut width = 64;
    let mut low = u128::from(u64::MAX);
    while width > 0 {
        for i in (0..128).filter(|i| i & width == 0) {
            let swap = ((matrix[i] >> width) ^ matrix[i + width]) & low;
            matrix[i] ^= swap << width;
            matrix[i + width] ^= swap;
        }
        width /= 2;
        low ^= low << width;
    }
}

/// The rows of the matrix whose κ columns of `blocks` words each lie one
/// after the other in `columns`: bit j of row i is bit i of column j.
fn rows(columns: &[u128], blocks: usize) -> Vec<u128> {
    let mut rows = Vec::with_capacity(blocks * BLOCK_ROWS);
    let mut square = [0u128; 128];
    for block in 0..blocks {
        for (j, word) in square.iter_mut().enumerate() {
            *word = columns[j * blocks + block];
        }
        transpose_128(&mut square);
        rows.extend_from_slice(&square);
    }
    rows
}

/// The extension receiver's message: the first OT index, the count, and
/// the κ columns u_j.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendRequest {
    first_row: u64,
    count: usize,
    columns: Vec<u128>,
}

impl ExtendRequest {
    const HEADER: usize = 16;

    /// The number of OTs it asks for.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(Self::HEADER + self.columns.len() * BLOCK_BYTES);
        bytes.extend(self.first_row.to_le_bytes());
        bytes.extend((self.count as u64).to_le_bytes());
        bytes.extend(self.columns.iter().flat_map(|word| word.to_le_bytes()));
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ExtendRequest, OtError> {
        const MESSAGE: &str = "OT extension request";
        let header = bytes.get(..Self::HEADER).ok_or(OtError::Length {
            message: MESSAGE,
            expected: Self::HEADER,
            got: bytes.len(),
        })?;
        let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let count = usize::try_from(word(8)).unwrap_or(usize::MAX);
        let body = (KAPPA * BLOCK_BYTES).saturating_mul(column_blocks(count));
        check_length(MESSAGE, bytes, body.saturating_add(Self::HEADER))?;
        Ok(ExtendRequest {
            first_row: word(0),
            count,
            columns: bytes[Self::HEADER..]
                .chunks_exact(BLOCK_BYTES)
                .map(u128_from)
                .collect(),
        })
    }
}

/// The extension sender's message: the masked pairs (y_i^0, y_i^1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendResponse {
    pairs: Vec<(Block, Block)>,
}

impl ExtendResponse {
    /// The number of OTs it answers.
    pub fn count(&self) -> usize {
        self.pairs.len()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let pairs = self.pairs.iter();
        pairs
            .flat_map(|(y0, y1)| [y0.0.to_le_bytes(), y1.0.to_le_bytes()])
            .flatten()
            .collect()
    }

    /// The response to a request of `count` OTs.
    pub fn from_bytes(bytes: &[u8], count: usize) -> Result<ExtendResponse, OtError> {
        check_length(
            "OT extension response",
            bytes,
            count.saturating_mul(2 * BLOCK_BYTES),
        )?;
        let pairs = bytes.chunks_exact(2 * BLOCK_BYTES).map(|pair| {
            let (y0, y1) = pair.split_at(BLOCK_BYTES);
            (Block(u128_from(y0)), Block(u128_from(y1)))
        });
        Ok(ExtendResponse {
            pairs: pairs.collect(),
        })
    }
}

/// The extension receiver while its base OTs are out. Not `Debug`, as
/// none of the secret-holding states are.
pub struct ReceiverSetup {
    base: base::Sender,
}

impl ReceiverSetup {
    /// Takes the base OTs' reply and derives the seed pairs.
    pub fn finish(self, reply: &base::ReceiverMessage) -> Result<ExtReceiver, OtError> {
        if reply.len() != KAPPA {
            return Err(OtError::Count {
                what: "base OTs in the reply",
                expected: KAPPA,
                got: reply.len(),
            });
        }
        let pairs = self.base.keys(reply).into_iter();
        Ok(ExtReceiver {
            seeds: pairs.map(|(k0, k1)| (Prg::new(k0), Prg::new(k1))).collect(),
            hash: FixedKeyHash::new(),
            next_row: 0,
        })
    }
}

/// The extension receiver of a session: the seed pairs and its OT count.
pub struct ExtReceiver {
    seeds: Vec<(Prg, Prg)>,
    hash: FixedKeyHash,
    next_row: u64,
}

impl ExtReceiver {
    /// Starts the session: the base OTs' sender message to send.
    pub fn setup<R: CryptoRng + ?Sized>(rng: &mut R) -> (ReceiverSetup, base::SenderMessage) {
        let (base, message) = base::Sender::new(rng);
        (ReceiverSetup { base }, message)
    }

    /// The request for one OT per choice, and the state that decodes the
    /// response.
    pub fn extend(&mut self, choices: &[bool]) -> (ExtendRequest, PendingExtend) {
        let blocks = column_blocks(choices.len());
        let mut packed = vec![0u128; blocks];
        for (i, &choice) in choices.iter().enumerate() {
            packed[i / BLOCK_ROWS] |= u128::from(choice) << (i % BLOCK_ROWS);
        }
        let first_block = self.next_row / BLOCK_ROWS as u64;
        let (mut t, mut u) = (vec![0u128; KAPPA * blocks], vec![0u128; KAPPA * blocks]);
        let mut other = vec![0u128; blocks];
        for (j, (seed0, seed1)) in self.seeds.iter().enumerate() {
            let column = j * blocks..(j + 1) * blocks;
            seed0.fill(first_block, &mut t[column.clone()]);
            seed1.fill(first_block, &mut other);
            let words = u[column.clone()].iter_mut().zip(&t[column]);
            for ((u, t), (g, r)) in words.zip(other.iter().zip(&packed)) {
                *u = t ^ g ^ r;
            }
        }
        let mut rows = rows(&t, blocks);
        rows.truncate(choices.len());
        let request = ExtendRequest {
            first_row: self.next_row,
            count: choices.len(),
            columns: u,
        };
        let pending = PendingExtend {
            first_row: self.next_row,
            choices: choices.to_vec(),
            rows,
            hash: self.hash.clone(),
        };
        self.next_row += (blocks * BLOCK_ROWS) as u64;
        (request, pending)
    }
}

/// The receiver between its request and the response: its choices and
/// the rows t_i.
pub struct PendingExtend {
    first_row: u64,
    choices: Vec<bool>,
    rows: Vec<u128>,
    hash: FixedKeyHash,
}

impl PendingExtend {
    /// The message of each choice.
    pub fn finish(self, response: &ExtendResponse) -> Result<Vec<Block>, OtError> {
        if response.pairs.len() != self.choices.len() {
            return Err(OtError::Count {
                what: "pairs in the response",
                expected: self.choices.len(),
                got: response.pairs.len(),
            });
        }
        let rows = self.choices.iter().zip(&self.rows).zip(&response.pairs);
        Ok(rows
            .enumerate()
            .map(|(i, ((&choice, &t), &(y0, y1)))| {
                let y = y0 ^ (y0 ^ y1).scaled(choice);
                y ^ self.hash.hash(Block(t), tweak(self.first_row, i))
            })
            .collect())
    }
}

/// The extension sender of a session: s, the seeds k_j^{s_j} and its OT
/// count.
pub struct ExtSender {
    s: Block,
    seeds: Vec<Prg>,
    hash: FixedKeyHash,
    next_row: u64,
}

impl ExtSender {
    /// Answers the receiver's base OT message with a random s.
    pub fn setup<R: CryptoRng + ?Sized>(
        rng: &mut R,
        message: &base::SenderMessage,
    ) -> (ExtSender, base::ReceiverMessage) {
        let s = Block::random(rng);
        let choices: Vec<bool> = (0..KAPPA).map(|j| (s.0 >> j) & 1 == 1).collect();
        let (reply, keys) = base::receive(rng, &choices, message);
        let sender = ExtSender {
            s,
            seeds: keys.into_iter().map(Prg::new).collect(),
            hash: FixedKeyHash::new(),
            next_row: 0,
        };
        (sender, reply)
    }

    /// The response that gives the receiver `pairs[i].0` or `pairs[i].1`
    /// by its i-th choice.
    pub fn extend(
        &mut self,
        request: &ExtendRequest,
        pairs: &[(Block, Block)],
    ) -> Result<ExtendResponse, OtError> {
        if request.first_row != self.next_row {
            return Err(OtError::OutOfOrder {
                expected: self.next_row,
                got: request.first_row,
            });
        }
        if pairs.len() != request.count {
            return Err(OtError::Count {
                what: "message pairs for the request",
                expected: request.count,
                got: pairs.len(),
            });
        }
        let blocks = column_blocks(request.count);
        let first_block = self.next_row / BLOCK_ROWS as u64;
        let mut q = vec![0u128; KAPPA * blocks];
        for (j, seed) in self.seeds.iter().enumerate() {
            let column = j * blocks..(j + 1) * blocks;
            seed.fill(first_block, &mut q[column.clone()]);
            // All ones where s_j is set, without a branch on it.
            let select = 0u128.wrapping_sub((self.s.0 >> j) & 1);
            for (q, u) in q[column.clone()].iter_mut().zip(&request.columns[column]) {
                *q ^= u & select;
            }
        }
        let rows = rows(&q, blocks);
        let masked = pairs.iter().zip(&rows).enumerate();
        let masked = masked.map(|(i, (&(x0, x1), &q))| {
            let (q, tweak) = (Block(q), tweak(self.next_row, i));
            let [h0, h1] = self.hash.hash_all([q, q ^ self.s], [tweak, tweak]);
            (x0 ^ h0, x1 ^ h1)
        });
        let response = ExtendResponse {
            pairs: masked.collect(),
        };
        self.next_row += (blocks * BLOCK_ROWS) as u64;
        Ok(response)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Instant;

    use rand::Rng;
    use rand::rngs::StdRng;

    use super::*;

    /// A session whose setup messages travel as bytes; the bytes each way.
    pub(crate) fn session(rng: &mut StdRng) -> (ExtSender, ExtReceiver, [usize; 2]) {
        let (setup, message) = ExtReceiver::setup(rng);
        let message = message.to_bytes();
        let parsed = base::SenderMessage::from_bytes(&message).unwrap();
        let (sender, reply) = ExtSender::setup(rng, &parsed);
        let reply = reply.to_bytes();
        let parsed = base::ReceiverMessage::from_bytes(&reply, KAPPA).unwrap();
        let receiver = setup.finish(&parsed).unwrap();
        (sender, receiver, [message.len(), reply.len()])
    }

    fn random_pairs(rng: &mut StdRng, count: usize) -> Vec<(Block, Block)> {
        let pair = |rng: &mut StdRng| (Block::random(rng), Block::random(rng));
        (0..count).map(|_| pair(rng)).collect()
    }

    /// One extension through bytes: the receiver's output, its pending
    /// state's rows, the response, and the bytes each way.
    fn transfer(
        sender: &mut ExtSender,
        receiver: &mut ExtReceiver,
        choices: &[bool],
        pairs: &[(Block, Block)],
    ) -> (Vec<Block>, Vec<u128>, ExtendResponse, [usize; 2]) {
        let (request, pending) = receiver.extend(choices);
        let bytes = request.to_bytes();
        let parsed = ExtendRequest::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, request);
        let response = sender.extend(&parsed, pairs).unwrap();
        let back = response.to_bytes();
        let parsed = ExtendResponse::from_bytes(&back, choices.len()).unwrap();
        assert_eq!(parsed, response);
        let rows = pending.rows.clone();
        let output = pending.finish(&parsed).unwrap();
        (output, rows, response, [bytes.len(), back.len()])
    }

    #[test]
    fn the_eklundh_transpose_is_the_bitwise_transpose() {
        let mut rng = crate::test_rng();
        let mut matrix = [0u128; 128];
        matrix.iter_mut().for_each(|word| *word = rng.random());
        let mut transposed = matrix;
        transpose_128(&mut transposed);
        for (i, j) in (0..128).flat_map(|i| (0..128).map(move |j| (i, j))) {
            assert_eq!((transposed[j] >> i) & 1, (matrix[i] >> j) & 1, "({i}, {j})");
        }
    }

    #[test]
    fn the_receiver_gets_the_message_of_its_choice_and_cannot_unmask_the_other() {
        let mut rng = crate::test_rng();
        let (mut sender, mut receiver, setup) = session(&mut rng);
        // Session reuse: a 1000-OT extension, then smaller ones at later
        // indices of the same streams.
        for m in [1000, 1, 300] {
            let choices: Vec<bool> = (0..m).map(|_| rng.random()).collect();
            let pairs = random_pairs(&mut rng, m);
            let (output, rows, response, bytes) =
                transfer(&mut sender, &mut receiver, &choices, &pairs);
            let first_row = receiver.next_row - (column_blocks(m) * BLOCK_ROWS) as u64;
            for (i, (&choice, &(x0, x1))) in choices.iter().zip(&pairs).enumerate() {
                let (chosen, other) = if choice { (x1, x0) } else { (x0, x1) };
                assert_eq!(output[i], chosen, "OT {i} of {m}");
                // The receiver's own unmasking of the other ciphertext.
                let (y0, y1) = response.pairs[i];
                let y_other = if choice { y0 } else { y1 };
                let guess = y_other ^ receiver.hash.hash(Block(rows[i]), tweak(first_row, i));
                assert_ne!(guess, other, "OT {i} of {m}");
            }
            if m == 1000 {
                eprintln!(
                    "OT setup (128 base OTs): {} B receiver -> sender, {} B sender -> receiver",
                    setup[0], setup[1]
                );
                eprintln!(
                    "{m} extended OTs: {} B receiver -> sender, {} B sender -> receiver",
                    bytes[0], bytes[1]
                );
            }
        }
        assert_eq!(receiver.next_row, sender.next_row);
    }

    #[test]
    fn an_empty_extension_works_and_requests_are_answered_once_in_order() {
        let mut rng = crate::test_rng();
        let (mut sender, mut receiver, _) = session(&mut rng);
        let (output, ..) = transfer(&mut sender, &mut receiver, &[], &[]);
        assert!(output.is_empty());
        let (first, _) = receiver.extend(&[true; 5]);
        let (second, _) = receiver.extend(&[true; 5]);
        let pairs = random_pairs(&mut rng, 5);
        assert_eq!(
            sender.extend(&second, &pairs),
            Err(OtError::OutOfOrder {
                expected: 0,
                got: 128
            })
        );
        sender.extend(&first, &pairs).unwrap();
        assert!(matches!(
            sender.extend(&first, &pairs),
            Err(OtError::OutOfOrder { .. })
        ));
        assert!(matches!(
            sender.extend(&second, &pairs[1..]),
            Err(OtError::Count {
                expected: 5,
                got: 4,
                ..
            })
        ));
    }

    #[test]
    fn messages_of_the_wrong_length_or_count_are_rejected() {
        let mut rng = crate::test_rng();
        let (mut sender, mut receiver, _) = session(&mut rng);
        let (request, pending) = receiver.extend(&[false; 200]);
        let bytes = request.to_bytes();
        assert_eq!(bytes.len(), 16 + 2 * KAPPA * BLOCK_BYTES);
        for cut in [&bytes[..10], &bytes[..bytes.len() - 1]] {
            assert!(matches!(
                ExtendRequest::from_bytes(cut),
                Err(OtError::Length { .. })
            ));
        }
        let mut huge = bytes.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            ExtendRequest::from_bytes(&huge),
            Err(OtError::Length { .. })
        ));
        let response = sender
            .extend(&request, &random_pairs(&mut rng, 200))
            .unwrap();
        let back = response.to_bytes();
        assert!(matches!(
            ExtendResponse::from_bytes(&back, 199),
            Err(OtError::Length { .. })
        ));
        let short = ExtendResponse::from_bytes(&back[32..], 199).unwrap();
        assert!(matches!(pending.finish(&short), Err(OtError::Count { .. })));
        let (setup, message) = ExtReceiver::setup(&mut rng);
        let (reply, _) = base::receive(&mut rng, &[true; 5], &message);
        assert!(matches!(setup.finish(&reply), Err(OtError::Count { .. })));
    }

    #[test]
    fn costs_of_the_base_ots_and_of_an_extension() {
        let mut rng = crate::test_rng();
        let start = Instant::now();
        let (mut sender, mut receiver, _) = session(&mut rng);
        let setup = start.elapsed();
        let m = 10_000;
        let choices: Vec<bool> = (0..m).map(|_| rng.random()).collect();
        let pairs = random_pairs(&mut rng, m);
        let start = Instant::now();
        let (output, ..) = transfer(&mut sender, &mut receiver, &choices, &pairs);
        let extension = start.elapsed();
        assert_eq!(output.len(), m);
        eprintln!(
            "128 base OTs (both parties, one thread): {setup:?}; {m} extended OTs: {extension:?}"
        );
    }
}
