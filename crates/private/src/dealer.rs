//! Linear layers on shares from a trusted dealer, played by the server:
//! the client sends its shares of each round's inputs in the clear, the
//! server reconstructs them, convolves exactly, and re-shares the
//! accumulators under a fresh uniform mask, which is what its masked HE
//! replies give the two parties. It measures and tests the nonlinear half
//! alone (the HE layers are measured by explore-he); it reveals the
//! client's input to the server, so no deployment has one.

use explore_quant::{QuantizedNet, Round, logits_on};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::PrivateError;
use crate::channel::{Channel, Network, two_parties};
use crate::plan::{Modulus, Plan};
use crate::shared::{ClientSteps, ServerSteps, Shares, Traffic};

/// One inference of `image` (`c*h*w`, normalized) on shares, the parties
/// in two threads over `network` and the dealer supplying the linear
/// layers: the client's logits and both parties' traffic. Each party's
/// generator is seeded from `seed`, so a run repeats.
pub fn infer(
    net: &QuantizedNet,
    plan: &Plan,
    network: Network,
    image: &[f32],
    seed: u64,
) -> Result<(Vec<f64>, Traffic), PrivateError> {
    let modulus = plan.modulus;
    let ((logits, client), server) = two_parties(
        network,
        |channel| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut steps = ClientSteps::connect(plan, channel, &mut rng)?;
            let mut logits = logits_on(&plan.spec, image, &mut steps, &mut |round| {
                client(channel, modulus, round)
            })?;
            Ok((logits.pop().expect("one image"), steps.traffic()))
        },
        |channel| {
            let mut rng = StdRng::seed_from_u64(seed ^ 1);
            let mut steps = ServerSteps::connect(plan, channel, &mut rng)?;
            // The server's share of the image is zero; it sees no pixel.
            let zeros = vec![0.0; image.len()];
            logits_on(&plan.spec, &zeros, &mut steps, &mut |round| {
                server(net, channel, modulus, &mut rng, round)
            })?;
            Ok::<_, PrivateError>(steps.traffic())
        },
    )?;
    Ok((logits, client.plus(server)))
}

/// The client's side of a round: its input shares out, its accumulator
/// shares back, layer by layer and image by image.
pub fn client(
    channel: &Channel,
    modulus: Modulus,
    round: &Round<Vec<u64>>,
) -> Result<Vec<Vec<Vec<u64>>>, PrivateError> {
    for (_, xs) in round {
        for x in xs {
            channel.send(modulus.to_bytes(x))?;
        }
    }
    round
        .iter()
        .map(|(_, xs)| {
            xs.iter()
                .map(|_| modulus.from_bytes(&channel.recv()?, "the dealer's shares"))
                .collect()
        })
        .collect()
}

/// The server's side: the exact convolutions of the reconstructed inputs,
/// re-shared; it keeps its shares and sends the client's.
pub fn server<R: Rng>(
    net: &QuantizedNet,
    channel: &Channel,
    modulus: Modulus,
    rng: &mut R,
    round: &Round<Vec<u64>>,
) -> Result<Vec<Vec<Vec<u64>>>, PrivateError> {
    let mut own = Vec::with_capacity(round.len());
    let mut theirs = Vec::new();
    for (l, xs) in round {
        let plain = xs
            .iter()
            .map(|x| {
                let client = modulus.from_bytes(&channel.recv()?, "the client's input shares")?;
                if client.len() != x.len() {
                    return Err(PrivateError::Message(format!(
                        "{} input shares from the client, the server holds {}",
                        client.len(),
                        x.len()
                    )));
                }
                Ok(Shares {
                    client,
                    server: x.clone(),
                }
                .reveal(modulus))
            })
            .collect::<Result<Vec<_>, PrivateError>>()?;
        let acc = net.in_the_clear(&[(*l, plain)]).pop().expect("one layer");
        let shares: Vec<Shares> = acc.iter().map(|a| Shares::split(a, modulus, rng)).collect();
        theirs.extend(shares.iter().map(|s| modulus.to_bytes(&s.client)));
        own.push(shares.into_iter().map(|s| s.server).collect());
    }
    for message in theirs {
        channel.send(message)?;
    }
    Ok(own)
}
