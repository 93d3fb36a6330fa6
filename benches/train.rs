//! Training and inference throughput of ResNet-20 (width 1, batch 64 or
//! `--batch N`, 3x32x32; with `--quick` the quick spec's network, width
//! 0.25 on 1x28x28) on the training device, in images per second,
//! through the same `train::train` and `train::evaluate` the tool runs.
//!
//! `cargo bench --bench train` (add `-- --batches N` for more batches, the
//! default being a quick 6, `--replicas R`, default 2, for the number of
//! data-parallel model replicas, and `--device wgpu` or `--device cuda` for
//! a GPU backend, with the binary built by `cargo bench --features wgpu`;
//! `--device libtorch` runs burn on PyTorch's own kernels, built with
//! `--features tch`, see the README).
//! A one-batch warm-up runs first and is not timed. `-- --profile` then
//! trains the same batches once more with every part of a step timed (the
//! device synchronized at each boundary) and prints where a step's time
//! goes. Run it under
//! `/usr/bin/time -v` to see the CPU utilization; `RAYON_NUM_THREADS=1` with
//! `--replicas 1` gives the one-core figure.
//!
//! `-- --pytorch PYTHON` then runs `benches/pytorch_train.py` with that
//! Python (one that has torch) on the same network, batch, batch count and
//! number of threads, on CUDA when burn trains on a GPU, and prints burn's
//! throughput as a ratio of PyTorch's: the side-by-side in one run.
//! (`EXPLORE_PYTORCH=PYTHON` does the same; `scripts/gpu_bench.sh` runs it
//! on a GPU at batches 64, 128 and 512.)

use std::time::Instant;

#[path = "support/pytorch.rs"]
mod pytorch;

use explore_data::Dataset;
use explore_he_model::arch::{Arch, DatasetKind, NetSpec};
use explore_train::model::ResNet;
use explore_train::train::{Backend, LrSchedule, TrainConfig};
use explore_train::train::{NoHook, Phase, device, evaluate, train};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|n| n.parse().expect("a number after the flag"))
            .unwrap_or(default)
    };
    let batches = number("--batches", 6);
    let batch = number("--batch", 64);
    let profile = args.iter().any(|a| a == "--profile");
    let quick = args.iter().any(|a| a == "--quick");
    let (kind, width) = if quick {
        (DatasetKind::FashionMnist, 0.25)
    } else {
        (DatasetKind::Cifar10, 1.0)
    };
    let pytorch = args
        .iter()
        .position(|a| a == "--pytorch")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("EXPLORE_PYTORCH").ok());
    let replicas = number("--replicas", 2);
    let backend: Backend = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .map(|d| {
            d.parse()
                .expect("--device cpu, wgpu, cuda, libtorch or libtorch-cuda")
        })
        .unwrap_or_default();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let (c, h, w) = kind.input_shape();
    println!(
        "ResNet-20 width {width}, batch {batch}, {c}x{h}x{w}, {batches} timed batches, {replicas} replicas, device {backend}, rayon threads: {threads}"
    );
    let spec = NetSpec::new(Arch::ResNet20, kind, width).expect("valid spec");
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: batch,
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: LrSchedule::Constant,
        augment: true,
        seed: 0,
        replicas,
        device: backend,
        steps: None,
        warmup: 0.0,
    };
    let model = ResNet::new(&spec, &device(backend, 0).expect("the device"));
    let (model, _) = train(
        model,
        &images(kind, 1, batch),
        &cfg,
        Phase::with(&mut NoHook),
        "warm-up",
    )
    .expect("trains");
    let data = images(kind, batches, batch);
    let (model, stats) =
        train(model, &data, &cfg, Phase::with(&mut NoHook), "bench").expect("trains");
    println!(
        "train: {:.1} img/s ({batches} batches in {:.2} s)",
        stats.images_per_second, stats.seconds
    );
    let model = if profile {
        let mut hook = NoHook;
        let phase = Phase {
            profile: true,
            ..Phase::with(&mut hook)
        };
        let (model, stats) = train(model, &data, &cfg, phase, "profile").expect("trains");
        let profile = stats.profile.expect("a profiled run");
        println!(
            "where a step's time goes ({} steps, device synchronized at each part, {:.1} img/s):\n{profile}",
            profile.steps, stats.images_per_second
        );
        model
    } else {
        model
    };

    let _ = evaluate(&model, &images(kind, 1, batch), batch, replicas);
    let start = Instant::now();
    let _ = evaluate(&model, &data, batch, replicas);
    let seconds = start.elapsed().as_secs_f64();
    let inference = (batches * batch) as f64 / seconds;
    println!("inference: {inference:.1} img/s ({batches} batches in {seconds:.2} s)");
    if let Some(python) = pytorch {
        // PyTorch on the GPU when burn trains on one.
        let torch_device = if backend.on_gpu() { "cuda" } else { "cpu" };
        let torch = pytorch_side(&python, batches, batch, torch_device, quick);
        println!(
            "PyTorch {} on {torch_device} ({} threads): train {:.1} img/s, inference {:.1} img/s",
            torch.version, torch.threads, torch.train, torch.inference
        );
        println!(
            "burn / PyTorch: train {:.2}x, inference {:.2}x",
            stats.images_per_second / torch.train,
            inference / torch.inference
        );
    }
}

/// PyTorch's side of the comparison, as `benches/pytorch_train.py --json`
/// measured it.
struct Torch {
    version: String,
    threads: usize,
    train: f64,
    inference: f64,
}

/// `benches/pytorch_train.py --json` with `python` on `batches` timed
/// batches of `batch` images on `device` (cpu or cuda), with as many
/// threads as rayon has.
fn pytorch_side(python: &str, batches: usize, batch: usize, device: &str, quick: bool) -> Torch {
    let threads = rayon::current_num_threads();
    let quick = quick.then(|| "--quick".to_string());
    let v = pytorch::run(
        python,
        &[
            "--json".into(),
            "--batches".into(),
            batches.to_string(),
            "--threads".into(),
            threads.to_string(),
            "--batch".into(),
            batch.to_string(),
            "--device".into(),
            device.into(),
        ]
        .into_iter()
        .chain(quick)
        .collect::<Vec<_>>(),
    );
    let number = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"));
    Torch {
        version: v["torch"].as_str().unwrap_or("?").to_string(),
        threads: number("threads") as usize,
        train: number("train"),
        inference: number("inference"),
    }
}

/// `batches * batch` images of `kind`'s shape, of deterministic noise.
fn images(kind: DatasetKind, batches: usize, batch: usize) -> Dataset {
    let n = batches * batch;
    let (c, h, w) = kind.input_shape();
    Dataset {
        kind,
        images: (0..n * c * h * w)
            .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0)
            .collect(),
        labels: (0..n).map(|i| (i % 10) as u16).collect(),
    }
}
