//! A forward pass on shares, every step between linear layers a garbled
//! circuit, against the integer model in the clear. The linear layers come
//! from a dealer that re-shares each accumulator under a fresh mask, as the
//! server's masked HE replies do: these tests check the nonlinear half, not
//! the HE layers (explore-he's infer tests run both).

use explore_private::{Modulus, PrivateError, SharedSteps, Shares};
use explore_quant::{QuantizedNet, Reader, Round, Steps, fixtures};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn net() -> QuantizedNet {
    QuantizedNet::new(
        &fixtures::random_net(3),
        fixtures::config(8),
        &fixtures::images(8, 1),
    )
    .unwrap()
}

/// The plaintext modulus the HE layers would use for this net.
fn modulus(net: &QuantizedNet) -> Modulus {
    Modulus::new(fixtures::plaintext_modulus(net)).unwrap()
}

/// The dealer's linear layers, as the forward pass takes them.
fn dealer(
    net: &QuantizedNet,
    modulus: Modulus,
    rng: &mut StdRng,
    round: &Round<Shares>,
) -> Result<Vec<Vec<Shares>>, PrivateError> {
    Ok(explore_private::dealer::linear(net, modulus, rng, round))
}

#[test]
fn the_forward_pass_on_shares_computes_the_integer_models_logits() {
    let net = net();
    let modulus = modulus(&net);
    let image = fixtures::images(1, 7);
    let mut rng = StdRng::seed_from_u64(11);
    let mut dealer_rng = StdRng::seed_from_u64(12);
    let mut steps = SharedSteps::new(&net, modulus, &mut rng).unwrap();
    let started = std::time::Instant::now();
    let logits = net
        .logits_on(&image, &mut steps, &mut |round: &Round<Shares>| {
            dealer(&net, modulus, &mut dealer_rng, round)
        })
        .unwrap();
    assert_eq!(logits, net.logits(&image).unwrap());

    // One share ReLU per output of every layer whose output a step reads
    // (a shortcut conv's go into its block's second step), and one per
    // pooled channel.
    let shortcuts: Vec<usize> = net.spec.blocks.iter().filter_map(|b| b.shortcut).collect();
    let relus: usize = net
        .convs
        .iter()
        .enumerate()
        .filter(|(l, _)| !shortcuts.contains(l))
        .map(|(_, c)| c.shape.c_out * c.shape.out_h() * c.shape.out_w())
        .sum::<usize>()
        + net.fc.shape.c_in;
    let traffic = steps.traffic;
    assert_eq!(traffic.relus, relus);
    assert!(traffic.and_gates > 100 * relus);
    eprintln!(
        "t = {} ({} bits): {traffic:?}, {:.1} s for one image on both parties",
        modulus.t,
        modulus.bits,
        started.elapsed().as_secs_f64()
    );
}

/// What the client decodes after the first layer's step is uniform mod
/// t, although the activations themselves are small and mostly zero.
#[test]
fn the_client_decodes_only_uniformly_masked_values() {
    let net = net();
    let modulus = modulus(&net);
    let mut rng = StdRng::seed_from_u64(21);
    let mut steps = SharedSteps::new(&net, modulus, &mut rng).unwrap();
    let image: Vec<f64> = fixtures::images(1, 5).iter().map(|&v| v as f64).collect();
    let x = Steps::<PrivateError>::input(&mut steps, image).unwrap();
    let acc = dealer(&net, modulus, &mut rng, &[(0, vec![x])])
        .unwrap()
        .pop()
        .unwrap();
    let reader = Reader::Layer(net.spec.blocks[0].conv1);
    let out = Steps::<PrivateError>::output(&mut steps, 0, acc, None, reader)
        .unwrap()
        .pop()
        .unwrap();

    // Chi-square over 16 equal bins of [0, t).
    let chi2 = |values: &[u64]| {
        let mut bins = [0f64; 16];
        for &v in values {
            bins[(v as u128 * 16 / modulus.t as u128) as usize] += 1.0;
        }
        let expected = values.len() as f64 / 16.0;
        bins.iter()
            .map(|b| (b - expected).powi(2) / expected)
            .sum::<f64>()
    };
    let activations: Vec<u64> = out.reveal(modulus).iter().map(|&v| v as u64).collect();
    // 15 degrees of freedom: 37.7 is the 0.999 quantile.
    assert!(chi2(&out.client) < 37.7, "{}", chi2(&out.client));
    assert!(chi2(&out.server) < 37.7, "{}", chi2(&out.server));
    assert!(chi2(&activations) > 1000.0, "the test would see a leak");
    assert!(activations.iter().all(|&v| v <= 127));
}

#[test]
fn a_modulus_too_narrow_for_a_steps_bounds_is_refused_naming_the_layer() {
    let net = net();
    // 20 bits: a step whose accumulator bound passes (t - 1)/2 is refused
    // before anything is garbled for it.
    let modulus = Modulus::new(786_433).unwrap();
    let mut rng = StdRng::seed_from_u64(31);
    let mut dealer_rng = StdRng::seed_from_u64(32);
    let mut steps = SharedSteps::new(&net, modulus, &mut rng).unwrap();
    let image = fixtures::images(1, 7);
    let result = net.logits_on(&image, &mut steps, &mut |round: &Round<Shares>| {
        dealer(&net, modulus, &mut dealer_rng, round)
    });
    let error = result.unwrap_err();
    let PrivateError::Step { layer, channel, .. } = &error else {
        panic!("{error:?}")
    };
    let l = net
        .convs
        .iter()
        .position(|c| &c.shape.name == layer)
        .unwrap();
    // Its accumulators', or its block's shortcut conv's.
    let shortcut = net
        .spec
        .blocks
        .iter()
        .find(|b| b.conv2 == l)
        .and_then(|b| b.shortcut);
    let bound = [Some(l), shortcut]
        .into_iter()
        .flatten()
        .map(|c| net.layer(c).accumulator_bounds(127)[*channel])
        .max()
        .unwrap();
    assert!(bound > (786_433 - 1) / 2, "{layer} {channel}: {bound}");
    let message = error.to_string();
    assert!(
        message.contains(layer.as_str()) && message.contains("he.plaintext_bits"),
        "{message}"
    );
}
