//! The GPU path, tested where no GPU exists: burn's `wgpu` backend over
//! Mesa's software Vulkan driver (lavapipe; `apt-get install
//! mesa-vulkan-drivers libvulkan1`). Built only with `--features wgpu`:
//!
//! ```sh
//! cargo test --release --features wgpu --test wgpu
//! ```
//!
//! A tiny ResNet trains on real images and its loss falls; its weights,
//! saved and loaded on the CPU backend, classify the test images as they do
//! on wgpu, up to one image that float rounding may flip.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use explore::arch::{Arch, DatasetKind, NetSpec};
use explore::checkpoint;
use explore::data::{self, DataSpec, Split};
use explore::model::ResNet;
use explore::train::{self, Backend, LrSchedule, NoHook, Phase, TrainConfig};

fn subset(split: Split, size: usize) -> explore::data::Dataset {
    let spec = DataSpec {
        dataset: DatasetKind::FashionMnist,
        path: Some(PathBuf::from("data/fashion-mnist-subset")),
        train_size: Some(size),
        test_size: Some(size),
        seed: 0,
        download: false,
    };
    data::load(&spec, split).unwrap()
}

#[test]
fn a_tiny_resnet_trains_on_wgpu_and_evaluates_as_on_the_cpu() {
    let gpu = train::device(Backend::Wgpu, 0).expect("a wgpu adapter (lavapipe will do)");
    let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.125).unwrap();
    let train_data = subset(Split::Train, 256);
    let test_data = subset(Split::Test, 200);
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 32,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: LrSchedule::Constant,
        augment: false,
        seed: 3,
        replicas: 1,
        device: Backend::Wgpu,
        steps: None,
    };
    let phase = || Phase::with(&mut NoHook);
    let (model, first) = train::train(
        ResNet::new(&spec, &gpu),
        &train_data,
        &cfg,
        phase(),
        "wgpu 1",
    )
    .unwrap();
    let (model, second) = train::train(model, &train_data, &cfg, phase(), "wgpu 2").unwrap();
    let (model, third) = train::train(model, &train_data, &cfg, phase(), "wgpu 3").unwrap();
    eprintln!(
        "wgpu: mean loss per epoch {:.3}, {:.3}, {:.3}",
        first.final_loss, second.final_loss, third.final_loss
    );
    assert!(third.final_loss < first.final_loss);

    let on_gpu = train::evaluate(&model, &test_data, 50, 1);
    let dir = tempfile::tempdir().unwrap();
    checkpoint::save(&model, dir.path()).unwrap();
    let cpu = train::device(Backend::Cpu, 0).unwrap();
    let on_cpu = train::evaluate(
        &checkpoint::load(dir.path(), &spec, &cpu).unwrap(),
        &test_data,
        50,
        1,
    );
    eprintln!(
        "test accuracy on {} images: wgpu {on_gpu}, cpu {on_cpu}",
        test_data.len()
    );
    // Kernels round differently; at most one image may change its class.
    assert!((on_gpu - on_cpu).abs() <= 1.0 / test_data.len() as f64 + 1e-12);
    assert!(on_gpu > 0.3, "it learned something: {on_gpu}");
}
