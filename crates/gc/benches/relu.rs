//! The two-party ReLU's parts, timed one share ReLU at a time on this
//! machine (both parties in one thread): garbling, evaluation, and the
//! oblivious transfer of the client's labels, at the parameters of a
//! 20-bit plaintext prime (t = 786433, the one ResNet-20 at 8-bit weights
//! and activations takes) with an 8-bit requantization. Bytes per ReLU are
//! printed once: the garbled tables (32 per AND gate) and the OT messages.
//!
//! `cargo bench -p explore-gc --bench relu`

use criterion::{Criterion, criterion_group, criterion_main};
use explore_gc::{
    ExtReceiver, ExtSender, ReluParams, ShareInputs, Term, Tweaks, evaluate, from_bits, garble,
    send_evaluator_labels, share_relu,
};

fn bench(c: &mut Criterion) {
    let mut rng = rand::rng();
    // The step after a block's first conv: the accumulator at a 16-bit
    // multiplier, a bias, round, ReLU, clamp to 8 bits.
    let acc = Term {
        multiplier: 41_943,
        bound: (786_433 - 1) / 2,
    };
    let params = ReluParams::new(786_433, 20, acc, None, -5_242_880, 22, Some(127))
        .expect("valid parameters");
    let circuit = share_relu(&params);
    let (setup, offer) = ExtReceiver::setup(&mut rng);
    let (mut server, answer) = ExtSender::setup(&mut rng, &offer);
    let mut client = setup.finish(&answer).expect("base OTs");
    let (a, b, mask) = (123_456, 700_000, 42);
    let client_bits = params.evaluator_bits(&[a]);
    let server_bits = params.garbler_bits(&[b], mask);

    let mut session = Tweaks::new();
    let (garbled, encoding) = garble(&circuit, &mut session, &mut rng).expect("tweaks");
    let (request, pending) = client.extend(&client_bits);
    let response = send_evaluator_labels(std::slice::from_ref(&encoding), &mut server, &request)
        .expect("labels by OT");
    let client_labels = pending.finish(&response).expect("OT reply");
    let server_labels = encoding.garbler_labels(&server_bits).expect("labels");
    let outputs = evaluate(&circuit, &garbled, &server_labels, &client_labels).expect("evaluation");
    let share = from_bits(&garbled.decode(&outputs).expect("decoding"));
    assert_eq!(
        share,
        explore_gc::share_relu_reference(&params, &[a], &[b], mask),
        "the garbled ReLU agrees with its reference"
    );
    eprintln!(
        "share ReLU, t = {}: {} AND gates, {} B of tables; OT of {} client bits: {} B up, {} B down",
        786_433,
        circuit.and_gates(),
        32 * circuit.and_gates(),
        client_bits.len(),
        request.to_bytes().len(),
        response.to_bytes().len()
    );

    let mut g = c.benchmark_group("share_relu_t786433");
    g.bench_function("garble", |bench| {
        bench.iter(|| garble(&circuit, &mut session, &mut rand::rng()).unwrap())
    });
    g.bench_function("evaluate", |bench| {
        bench.iter(|| evaluate(&circuit, &garbled, &server_labels, &client_labels).unwrap())
    });
    // A layer's worth of ReLUs shares one extension (padding to 128 OTs
    // once): the time per ReLU is this over 1,000.
    let layer: Vec<_> = (0..1000)
        .map(|_| garble(&circuit, &mut session, &mut rng).expect("tweaks").1)
        .collect();
    let layer_bits: Vec<bool> = (0..layer.len()).flat_map(|_| client_bits.clone()).collect();
    let (request, _) = client.extend(&layer_bits);
    eprintln!(
        "OT of 1,000 share ReLUs' client labels in one extension: {} B up, {} B down",
        request.to_bytes().len(),
        send_evaluator_labels(&layer, &mut server, &request)
            .expect("labels by OT")
            .to_bytes()
            .len()
    );
    g.bench_function("ot_client_labels_1000", |bench| {
        bench.iter(|| {
            let (request, pending) = client.extend(&layer_bits);
            let response = send_evaluator_labels(&layer, &mut server, &request).unwrap();
            pending.finish(&response).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
