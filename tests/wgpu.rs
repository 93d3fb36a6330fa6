//! The GPU path, tested where no GPU exists: burn's `wgpu` backend over
//! Mesa's software Vulkan driver (lavapipe; `apt-get install
//! mesa-vulkan-drivers libvulkan1`). Built only with `--features wgpu`:
//!
//! ```sh
//! cargo test --release --features wgpu --test wgpu
//! ```
//!
//! A tiny ResNet trains on real images and its loss falls (three epochs on
//! 256 images: too few for BatchNorm's running statistics to settle, so its
//! test accuracy says little); its weights,
//! saved and loaded on the CPU backend, classify the test images as they do
//! on wgpu, up to one image that float rounding may flip, and give the same
//! logits within 1e-3 of the largest logit.
#![cfg(feature = "wgpu")]

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use explore_data::{self as data, DataSpec, Split};
use explore_he_model::arch::{Arch, DatasetKind, NetSpec};
use explore_train::checkpoint;
use explore_train::model::ResNet;
use explore_train::train::{self, Backend, LrSchedule, NoHook, Phase, TrainConfig};

fn subset(split: Split, size: usize) -> explore_data::Dataset {
    let spec = DataSpec {
        dataset: DatasetKind::FashionMnist,
        path: Some(PathBuf::from("data/fashion-mnist-subset")),
        train_size: Some(size),
        test_size: Some(size),
        validation: None,
        seed: 0,
        download: false,
    };
    data::load(&spec, split).unwrap()
}

/// Eval-mode logits of the first `n` images, row after row.
fn logits(model: &ResNet, data: &explore_data::Dataset, n: usize) -> Vec<f32> {
    let (c, h, w) = data.kind.input_shape();
    let device = model.fc.weight.device();
    let x = TensorData::new(data.images[..n * data.image_len()].to_vec(), [n, c, h, w]);
    let out = model.valid().forward(Tensor::<4>::from_data(x, &device));
    out.into_data().try_to_vec::<f32>().unwrap()
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
        warmup: 0.0,
    };
    let (model, first) = train::train(
        ResNet::new(&spec, &gpu),
        &train_data,
        &cfg,
        Phase::with(&mut NoHook),
        "wgpu 1",
    )
    .unwrap();
    let (model, second) =
        train::train(model, &train_data, &cfg, Phase::with(&mut NoHook), "wgpu 2").unwrap();
    let (model, third) =
        train::train(model, &train_data, &cfg, Phase::with(&mut NoHook), "wgpu 3").unwrap();
    eprintln!(
        "wgpu: mean loss per epoch {:.3}, {:.3}, {:.3}",
        first.final_loss, second.final_loss, third.final_loss
    );
    assert!(third.final_loss < first.final_loss);
    assert!(third.train_accuracy > first.train_accuracy);

    let on_gpu = train::evaluate(&model, &test_data, 50, 1);
    let dir = tempfile::tempdir().unwrap();
    checkpoint::save(&model, dir.path()).unwrap();
    let cpu = train::device(Backend::Cpu, 0).unwrap();
    let loaded = checkpoint::load(dir.path(), &spec, &cpu).unwrap();
    let on_cpu = train::evaluate(&loaded, &test_data, 50, 1);
    eprintln!(
        "test accuracy on {} images: wgpu {on_gpu}, cpu {on_cpu}",
        test_data.len()
    );
    // Kernels round differently; at most one image may change its class.
    assert!((on_gpu - on_cpu).abs() <= 1.0 / test_data.len() as f64 + 1e-12);

    let (gpu_logits, cpu_logits) = (
        logits(&model, &test_data, 50),
        logits(&loaded, &test_data, 50),
    );
    let largest = cpu_logits.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = gpu_logits
        .iter()
        .zip(&cpu_logits)
        .fold(0f32, |m, (g, c)| m.max((g - c).abs()));
    eprintln!(
        "logits of 50 images: largest |wgpu - cpu| {worst:.2e}, largest |logit| {largest:.2}"
    );
    assert!(
        largest > 0.0 && worst <= 1e-3 * largest,
        "{worst} > 1e-3 * {largest}"
    );
}
