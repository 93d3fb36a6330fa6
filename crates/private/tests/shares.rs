//! A forward pass on shares, every step between linear layers a garbled
//! circuit, against the integer model in the clear; each party in its own
//! thread, exchanging bytes only. The linear layers come from a dealer
//! that re-shares each accumulator under a fresh mask, as the server's
//! masked HE replies do: these tests check the nonlinear half, not the HE
//! layers (explore-he's infer tests run both).

use explore_private::{
    ClientSteps, Modulus, Network, Plan, PrivateError, ServerSteps, dealer, two_parties,
};
use explore_quant::{QuantizedNet, Reader, Steps, fixtures};
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

#[test]
fn the_forward_pass_on_shares_computes_the_integer_models_logits_over_either_network() {
    let net = net();
    let modulus = modulus(&net);
    let plan = Plan::new(&net, modulus).unwrap();
    let image = fixtures::images(1, 7);
    let expected = net.logits(&image).unwrap().pop().unwrap();
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
    let mut traffics = Vec::new();
    for network in Network::ALL {
        let started = std::time::Instant::now();
        let (logits, traffic) = dealer::infer(&net, &plan, network, &image, 11).unwrap();
        assert_eq!(logits, expected, "{network}");
        assert_eq!(traffic.relus, relus);
        assert!(traffic.and_gates > 100 * relus);
        // A garbled layer per step, and the output's reveal.
        let layers = net.convs.len() - shortcuts.len() + 1;
        assert_eq!(traffic.rounds, layers + 1);
        eprintln!(
            "{network}, t = {} ({} bits): {traffic:?}, {:.1} s for one image",
            modulus.t,
            modulus.bits,
            started.elapsed().as_secs_f64()
        );
        traffics.push(traffic);
    }
    // The same messages cross either wire.
    let bytes = |t: &explore_private::Traffic| {
        (
            t.offline_bytes,
            t.online_client_bytes,
            t.online_server_bytes,
        )
    };
    assert_eq!(bytes(&traffics[0]), bytes(&traffics[1]));
}

/// What each party holds after the first layer's step is uniform mod t,
/// although the activations themselves are small and mostly zero.
#[test]
fn each_party_holds_only_uniformly_masked_values() {
    let net = net();
    let modulus = modulus(&net);
    let plan = Plan::new(&net, modulus).unwrap();
    let image: Vec<f64> = fixtures::images(1, 5).iter().map(|&v| v as f64).collect();
    let reader = Reader::Layer(net.spec.blocks[0].conv1);
    let (client, server) = two_parties(
        Network::Memory,
        |channel| {
            let mut steps = ClientSteps::connect(&plan, channel, &mut StdRng::seed_from_u64(21))?;
            let x = Steps::<PrivateError>::input(&mut steps, image.clone())?;
            let acc = dealer::client(channel, modulus, &[(0, vec![x])])?.remove(0);
            Steps::<PrivateError>::output(&mut steps, 0, acc, None, reader)
        },
        |channel| {
            let mut rng = StdRng::seed_from_u64(22);
            let mut steps = ServerSteps::connect(&plan, channel, &mut rng)?;
            let x = Steps::<PrivateError>::input(&mut steps, image.clone())?;
            let acc = dealer::server(&net, channel, modulus, &mut rng, &[(0, vec![x])])?.remove(0);
            Steps::<PrivateError>::output(&mut steps, 0, acc, None, reader)
        },
    )
    .unwrap();
    let (client, server) = (&client[0], &server[0]);

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
    let activations: Vec<u64> = client
        .iter()
        .zip(server)
        .map(|(&a, &b)| modulus.add(a, b))
        .collect();
    // 15 degrees of freedom: 37.7 is the 0.999 quantile.
    assert!(chi2(client) < 37.7, "{}", chi2(client));
    assert!(chi2(server) < 37.7, "{}", chi2(server));
    assert!(chi2(&activations) > 1000.0, "the test would see a leak");
    assert!(activations.iter().all(|&v| v <= 127));
}

#[test]
fn a_modulus_too_narrow_for_a_steps_bounds_is_refused_naming_the_layer() {
    let net = net();
    // 20 bits: a step whose accumulator bound passes (t - 1)/2 is refused
    // before anything is garbled for it.
    let error = Plan::new(&net, Modulus::new(786_433).unwrap()).unwrap_err();
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
        .map(|c| explore_he_model::plaintext::accumulator_bound(&net.layer(c).shape, 8, 8))
        .max()
        .unwrap();
    assert!(bound > (786_433 - 1) / 2, "{layer} {channel}: {bound}");
    let message = error.to_string();
    assert!(
        message.contains(layer.as_str()) && message.contains("he.plaintext_bits"),
        "{message}"
    );
}

/// A server whose garbled layer is cut short, or that hangs up, fails the
/// client with an error saying so, never a wrong share.
#[test]
fn a_truncated_or_missing_message_fails_the_client_naming_it() {
    let net = net();
    let modulus = modulus(&net);
    let plan = Plan::new(&net, modulus).unwrap();
    let image: Vec<f64> = fixtures::images(1, 5).iter().map(|&v| v as f64).collect();
    let reader = Reader::Layer(net.spec.blocks[0].conv1);
    for cut in [Some(1000), None] {
        let result = two_parties(
            Network::Memory,
            |channel| {
                let mut steps =
                    ClientSteps::connect(&plan, channel, &mut StdRng::seed_from_u64(1))?;
                let x = Steps::<PrivateError>::input(&mut steps, image.clone())?;
                let acc = dealer::client(channel, modulus, &[(0, vec![x])])?.remove(0);
                Steps::<PrivateError>::output(&mut steps, 0, acc, None, reader)
            },
            |channel| {
                let mut rng = StdRng::seed_from_u64(2);
                let _steps = ServerSteps::connect(&plan, channel, &mut rng)?;
                let x = vec![0u64; image.len()];
                dealer::server(&net, channel, modulus, &mut rng, &[(0, vec![x])])?;
                let _request = channel.recv()?;
                if let Some(bytes) = cut {
                    // The layer's tables and labels cut short, then an
                    // empty OT reply.
                    channel.send(vec![0u8; bytes])?;
                    channel.send(Vec::new())?;
                }
                Ok(Vec::<Vec<u64>>::new())
            },
        );
        let message = result.unwrap_err().to_string();
        let expected = if cut.is_some() {
            "garbled circuits and labels of a layer: 1000 bytes"
        } else {
            "hung up"
        };
        assert!(message.contains(expected), "{message}");
    }
}
