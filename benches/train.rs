//! Training and inference throughput of ResNet-20 (width 1, batch 64,
//! 3x32x32) on the training device, in images per second.
//!
//! `cargo bench --bench train` (add `-- --batches N` for more batches; the
//! default is a quick 6). The first batch of each phase is a warm-up and is
//! not timed. Run it under `/usr/bin/time -v` to see the CPU utilization,
//! and `RAYON_NUM_THREADS=1` for the one-core figure.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use explore::arch::{Arch, DatasetKind, NetSpec};
use explore::model::ResNet;
use explore::train::device;

const BATCH: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batches = args
        .iter()
        .position(|a| a == "--batches")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse().expect("--batches takes a number"))
        .unwrap_or(6usize);
    let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).expect("valid spec");
    let device = device(0);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "ResNet-20, batch {BATCH}, 3x32x32, {batches} timed batches, rayon threads: {threads}"
    );

    let mut model = ResNet::new(&spec, &device);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .init();
    let loss_fn = CrossEntropyLoss::new(None, &device);
    let mut start = Instant::now();
    for i in 0..=batches {
        if i == 1 {
            start = Instant::now();
        }
        let (x, y) = inputs(&device, i);
        let loss = loss_fn.forward(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
    }
    report("train", batches, start);

    let valid = model.valid();
    let plain = valid.fc.weight.device();
    for i in 0..=batches {
        if i == 1 {
            start = Instant::now();
        }
        let (x, _) = inputs(&plain, i);
        let _ = valid.forward(x).into_data();
    }
    report("inference", batches, start);
}

fn inputs(device: &Device, seed: usize) -> (Tensor<4>, Tensor<1, Int>) {
    let pixels = (0..BATCH * 3 * 32 * 32)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let labels = (0..BATCH).map(|i| ((i + seed) % 10) as i64).collect();
    (
        Tensor::from_data(TensorData::new(pixels, [BATCH, 3, 32, 32]), device),
        Tensor::from_data(TensorData::new(labels, [BATCH]), device),
    )
}

fn report(phase: &str, batches: usize, start: Instant) {
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{phase}: {:.1} img/s ({batches} batches in {seconds:.2} s)",
        (batches * BATCH) as f64 / seconds
    );
}
