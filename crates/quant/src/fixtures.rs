//! Test fixtures shared by the crates that run the integer model (this
//! one's tests and the HE executor's): a random folded ResNet-20, random
//! images and a quantization setting. Built for tests and behind the
//! `fixtures` feature only.

use explore_he_model::arch::{Arch, DatasetKind, FoldedConv, FoldedNet, NetSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::QuantConfig;

/// A ResNet-20 at width 0.25 on 28x28 inputs with random folded weights.
pub fn random_net(seed: u64) -> FoldedNet {
    let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
    random_folded(spec, seed)
}

/// `spec` with random folded weights (He-scaled) and biases.
pub fn random_folded(spec: NetSpec, seed: u64) -> FoldedNet {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = |n: usize, s: f32| {
        (0..n)
            .map(|_| rng.random_range(-s..s))
            .collect::<Vec<f32>>()
    };
    let convs = spec
        .convs
        .iter()
        .map(|c| FoldedConv {
            weight: v(c.weight_len(), (2.0 / (c.c_in * c.k * c.k) as f32).sqrt()),
            bias: v(c.c_out, 0.1),
        })
        .collect();
    let fc_weight = v(spec.fc.in_features * spec.fc.out_features, 0.3);
    let fc_bias = v(spec.fc.out_features, 0.1);
    FoldedNet {
        spec,
        convs,
        fc_weight,
        fc_bias,
    }
}

/// `n` random normalized 1x28x28 images.
pub fn images(n: usize, seed: u64) -> Vec<f32> {
    images_of(n, 28 * 28, seed)
}

/// `n` random normalized images of `len` values each.
pub fn images_of(n: usize, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * len).map(|_| rng.random_range(-1.0..2.0)).collect()
}

/// The plaintext prime the HE layers take for `net` at N = 8192 (the
/// narrowest that holds every layer's accumulators at 8 bits).
pub fn plaintext_modulus(net: &crate::QuantizedNet) -> u64 {
    explore_he_model::plaintext::PlaintextModulus::for_layers(
        8192,
        None,
        8,
        8,
        &net.spec.layer_shapes(),
    )
    .expect("a plaintext prime")
    .t
}

/// 8-bit weights and activations, per-channel scales, the max as the
/// activation range.
pub fn config(bits: u32) -> QuantConfig {
    QuantConfig {
        weight_bits: bits,
        activation_bits: bits,
        per_channel: true,
        percentile: 100.0,
        requantization: crate::Requantization::Fixed,
    }
}
