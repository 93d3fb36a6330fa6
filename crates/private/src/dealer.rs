//! Linear layers on shares from a trusted dealer: each round's inputs
//! reconstructed, convolved exactly in the clear, and the accumulators
//! re-shared under a fresh uniform mask, which is what the server's masked
//! HE replies give the two parties. It measures and tests the nonlinear
//! half alone (the HE layers are measured by explore-he); no deployment
//! has a dealer.

use explore_quant::{QuantizedNet, Round};
use rand::Rng;

use crate::plan::Modulus;
use crate::shared::Shares;

/// A round's accumulators as fresh shares of the exact convolutions of
/// the shared inputs.
pub fn linear<R: Rng>(
    net: &QuantizedNet,
    modulus: Modulus,
    rng: &mut R,
    round: &Round<Shares>,
) -> Vec<Vec<Shares>> {
    round
        .iter()
        .map(|(l, xs)| {
            let plain: Vec<Vec<i64>> = xs.iter().map(|x| x.reveal(modulus)).collect();
            let acc = net.in_the_clear(&[(*l, plain)]).pop().expect("one layer");
            acc.iter().map(|a| Shares::split(a, modulus, rng)).collect()
        })
        .collect()
}
