//! Base OT: the "simplest OT" of Chou and Orlandi (Latincrypt 2015, eprint
//! 2015/267) over the Ristretto group, in its semi-honest use. The sender
//! draws a and sends A = aG once for the whole batch; for its i-th choice c
//! the receiver draws b and sends B = bG, or A + bG when c = 1. The sender's
//! keys are k0 = H(aB) and k1 = H(a(B − A)) = H(aB − aA), the receiver's
//! k_c = H(bA), which equals the sender's key of its choice: aB = abG when
//! c = 0 and a(B − A) = abG when c = 1. B is uniform whatever c, so the
//! sender learns nothing; the other key is a hash of a CDH value, so the
//! receiver learns nothing about it.
//!
//! H is SHA-256 over a domain tag, the transcript (A, B, the OT's index in
//! the batch) and the shared point, truncated to 128 bits: the transcript
//! makes the keys of different OTs independent even though A is shared.
//! The paper's UC proof has a known gap for a malicious receiver (Genç,
//! Iovino and Rial, "The simplest protocol for oblivious transfer
//! revisited", 2017); it does not touch the semi-honest setting this crate
//! is in, where the receiver draws b and forms B as above.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::CryptoRng;
use sha2::{Digest, Sha256};

use super::{OtError, check_length};
use crate::Block;

/// The number of base OTs the extension needs: the security parameter κ.
pub const KAPPA: usize = 128;

/// The bytes of one compressed Ristretto point.
const POINT_BYTES: usize = 32;

/// A point with its wire encoding, which the key derivation hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Point {
    compressed: CompressedRistretto,
    point: RistrettoPoint,
}

impl Point {
    fn new(point: RistrettoPoint) -> Point {
        Point {
            compressed: point.compress(),
            point,
        }
    }

    fn decode(chunk: &[u8], message: &'static str, index: usize) -> Result<Point, OtError> {
        let compressed = CompressedRistretto(chunk.try_into().expect("a 32-byte chunk"));
        let point = compressed
            .decompress()
            .ok_or(OtError::InvalidPoint { message, index })?;
        Ok(Point { compressed, point })
    }
}

/// A uniform scalar from our rand 0.9 generator: 512 random bits reduced
/// mod the group order, so the bias is about 2^−260.
fn random_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// H(A, B, index, shared), the first 128 bits of a SHA-256.
fn key(a: &Point, b: &Point, index: usize, shared: &RistrettoPoint) -> Block {
    let digest = Sha256::new()
        .chain_update(b"explore-gc CO15 base OT")
        .chain_update(a.compressed.as_bytes())
        .chain_update(b.compressed.as_bytes())
        .chain_update((index as u64).to_le_bytes())
        .chain_update(shared.compress().as_bytes())
        .finalize();
    Block(u128::from_le_bytes(
        digest[..16].try_into().expect("16 of 32 bytes"),
    ))
}

/// The sender's message, A.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderMessage {
    a: Point,
}

impl SenderMessage {
    pub const BYTES: usize = POINT_BYTES;

    pub fn to_bytes(&self) -> Vec<u8> {
        self.a.compressed.to_bytes().to_vec()
    }

    /// Rejects a wrong length, a non-canonical encoding and the identity,
    /// under which every receiver key would be the public H(identity).
    pub fn from_bytes(bytes: &[u8]) -> Result<SenderMessage, OtError> {
        const MESSAGE: &str = "base OT sender message";
        check_length(MESSAGE, bytes, Self::BYTES)?;
        let a = Point::decode(bytes, MESSAGE, 0)?;
        if a.point == RistrettoPoint::identity() {
            return Err(OtError::InvalidPoint {
                message: MESSAGE,
                index: 0,
            });
        }
        Ok(SenderMessage { a })
    }
}

/// The receiver's message, one B per OT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverMessage {
    b: Vec<Point>,
}

impl ReceiverMessage {
    /// The number of OTs it answers.
    pub fn len(&self) -> usize {
        self.b.len()
    }

    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.b
            .iter()
            .flat_map(|b| b.compressed.to_bytes())
            .collect()
    }

    /// The message of `count` OTs, as many as the sender expects.
    pub fn from_bytes(bytes: &[u8], count: usize) -> Result<ReceiverMessage, OtError> {
        const MESSAGE: &str = "base OT receiver message";
        check_length(MESSAGE, bytes, count * POINT_BYTES)?;
        let b = bytes.chunks_exact(POINT_BYTES).enumerate();
        let b = b.map(|(index, chunk)| Point::decode(chunk, MESSAGE, index));
        Ok(ReceiverMessage {
            b: b.collect::<Result<_, _>>()?,
        })
    }
}

/// The sender between its message and the receiver's reply. Not `Debug`,
/// so that the scalar cannot end up in a log.
pub struct Sender {
    secret: Scalar,
    message: SenderMessage,
}

impl Sender {
    /// Draws a and returns the state with A to send.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R) -> (Sender, SenderMessage) {
        let secret = random_scalar(rng);
        let message = SenderMessage {
            a: Point::new(RistrettoPoint::mul_base(&secret)),
        };
        let sender = Sender {
            secret,
            message: message.clone(),
        };
        (sender, message)
    }

    /// The key pair (k0, k1) of every OT the receiver answered: one scalar
    /// multiplication per OT, since a(B − A) = aB − aA.
    pub fn keys(self, reply: &ReceiverMessage) -> Vec<(Block, Block)> {
        let a = &self.message.a;
        let a_a = self.secret * a.point;
        let pairs = reply.b.iter().enumerate();
        pairs
            .map(|(index, b)| {
                let a_b = self.secret * b.point;
                (key(a, b, index, &a_b), key(a, b, index, &(a_b - a_a)))
            })
            .collect()
    }
}

/// The receiver's side, in one step: the reply to A for `choices` and the
/// key of each choice.
pub fn receive<R: CryptoRng + ?Sized>(
    rng: &mut R,
    choices: &[bool],
    message: &SenderMessage,
) -> (ReceiverMessage, Vec<Block>) {
    let a = &message.a;
    let (b, keys) = choices
        .iter()
        .enumerate()
        .map(|(index, &choice)| {
            let secret = random_scalar(rng);
            let blind = RistrettoPoint::mul_base(&secret);
            // The branch is on the base OTs' choices, which the extension
            // draws at random, never on the evaluator's input bits.
            let b = Point::new(if choice { a.point + blind } else { blind });
            let key = key(a, &b, index, &(secret * a.point));
            (b, key)
        })
        .unzip();
    (ReceiverMessage { b }, keys)
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn the_receiver_key_is_the_sender_key_of_its_choice_and_not_the_other() {
        let mut rng = crate::test_rng();
        let choices: Vec<bool> = (0..KAPPA).map(|_| rng.random()).collect();
        let (sender, message) = Sender::new(&mut rng);
        let (reply, keys) = receive(&mut rng, &choices, &message);
        let pairs = sender.keys(&reply);
        assert_eq!(pairs.len(), KAPPA);
        for ((&choice, key), (k0, k1)) in choices.iter().zip(keys).zip(pairs) {
            let (chosen, other) = if choice { (k1, k0) } else { (k0, k1) };
            assert_eq!(key, chosen);
            assert_ne!(key, other);
        }
        assert!(choices.iter().any(|&c| c) && choices.iter().any(|&c| !c));
    }

    #[test]
    fn messages_survive_their_bytes_and_keys_differ_across_ots() {
        let mut rng = crate::test_rng();
        let (sender, message) = Sender::new(&mut rng);
        let message = SenderMessage::from_bytes(&message.to_bytes()).unwrap();
        let choices = [false, true, false, true];
        let (reply, keys) = receive(&mut rng, &choices, &message);
        let bytes = reply.to_bytes();
        assert_eq!(bytes.len(), 4 * POINT_BYTES);
        let decoded = ReceiverMessage::from_bytes(&bytes, 4).unwrap();
        assert_eq!(decoded, reply);
        let pairs = sender.keys(&decoded);
        let all: std::collections::HashSet<_> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        assert_eq!(all.len(), 8);
        assert_eq!(keys[1], pairs[1].1);
    }

    #[test]
    fn wrong_lengths_invalid_points_and_the_identity_are_rejected() {
        let (_, message) = Sender::new(&mut crate::test_rng());
        let bytes = message.to_bytes();
        assert!(matches!(
            SenderMessage::from_bytes(&bytes[1..]),
            Err(OtError::Length { got: 31, .. })
        ));
        // All-ones is not a canonical field element; all-zeros is the identity.
        for bad in [[0xff; 32], [0; 32]] {
            assert!(matches!(
                SenderMessage::from_bytes(&bad),
                Err(OtError::InvalidPoint { index: 0, .. })
            ));
        }
        let reply = [bytes.clone(), bytes.clone(), vec![0xff; 32]].concat();
        assert!(matches!(
            ReceiverMessage::from_bytes(&reply, 3),
            Err(OtError::InvalidPoint { index: 2, .. })
        ));
        assert!(matches!(
            ReceiverMessage::from_bytes(&reply, 2),
            Err(OtError::Length {
                expected: 64,
                got: 96,
                ..
            })
        ));
    }
}
