//! Where burn-flex loses to PyTorch inside a training step: each distinct
//! conv shape of ResNet-20 (width 1, CIFAR input) timed alone, forward and
//! forward + backward, on one thread with the batch one replica sees (32 of
//! 64), in burn and, with `-- --pytorch PYTHON`, in PyTorch
//! (`benches/pytorch_train.py --convs`) on the same shapes and thread count,
//! each figure the fastest of `--repeats` (default 5) after a warm-up.
//!
//! ```sh
//! cargo bench --bench conv -- --pytorch /tmp/torchenv/bin/python
//! ```
//!
//! Each row is one shape with the number of layers that have it; the last
//! row weights the shapes by that count, which is the network's convs for
//! one replica's batch.

use std::time::Instant;

#[path = "support/pytorch.rs"]
mod pytorch;

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use explore_he_model::arch::{Arch, ConvShape, DatasetKind, NetSpec};
use explore_train::train::{Backend, device};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let batch: usize = value("--batch").map_or(32, |b| b.parse().expect("--batch N"));
    let repeats: usize = value("--repeats").map_or(5, |r| r.parse().expect("--repeats N"));
    let pytorch = value("--pytorch").or_else(|| std::env::var("EXPLORE_PYTORCH").ok());
    let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).expect("valid spec");
    let mut shapes: Vec<(ConvShape, usize)> = Vec::new();
    for c in &spec.convs {
        let same = |s: &ConvShape| {
            (s.c_in, s.c_out, s.h, s.k, s.stride) == (c.c_in, c.c_out, c.h, c.k, c.stride)
        };
        match shapes.iter_mut().find(|(s, _)| same(s)) {
            Some((_, n)) => *n += 1,
            None => shapes.push((c.clone(), 1)),
        }
    }
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread");
    let dev = device(Backend::Cpu, 0).expect("the cpu device");
    let burn: Vec<(f64, f64)> = one_thread.install(|| {
        shapes
            .iter()
            .map(|(s, _)| time_conv(&dev, s, batch, repeats))
            .collect()
    });
    let torch = pytorch.map(|python| pytorch_side(&python, &shapes, batch, repeats));
    println!(
        "ResNet-20 conv shapes, batch {batch}, one thread, fastest of {repeats}; ms (burn / PyTorch = ratio of speeds)"
    );
    println!(
        "{:<26} {:>3} {:>9} {:>9} {:>6} {:>9} {:>9} {:>6}",
        "shape", "n", "fwd", "torch", "ratio", "fwd+bwd", "torch", "ratio"
    );
    let mut totals = [0.0f64; 4];
    for (i, ((s, n), (fwd, both))) in shapes.iter().zip(&burn).enumerate() {
        let (t_fwd, t_both) = torch.as_ref().map_or((f64::NAN, f64::NAN), |t| t[i]);
        let n_f = *n as f64;
        for (total, v) in totals.iter_mut().zip([fwd, &t_fwd, both, &t_both]) {
            *total += n_f * v;
        }
        let label = format!(
            "{}->{} {}x{} k{} s{}",
            s.c_in, s.c_out, s.h, s.w, s.k, s.stride
        );
        println!(
            "{label:<26} {n:>3} {fwd:>9.2} {t_fwd:>9.2} {:>6.2} {both:>9.2} {t_both:>9.2} {:>6.2}",
            t_fwd / fwd,
            t_both / both
        );
    }
    let [fwd, t_fwd, both, t_both] = totals;
    println!(
        "{:<26} {:>3} {fwd:>9.2} {t_fwd:>9.2} {:>6.2} {both:>9.2} {t_both:>9.2} {:>6.2}",
        "all convs, weighted",
        spec.convs.len(),
        t_fwd / fwd,
        t_both / both
    );
}

/// The fastest forward and forward + backward of `shape` on `batch` random
/// inputs, in ms.
fn time_conv(dev: &Device, shape: &ConvShape, batch: usize, repeats: usize) -> (f64, f64) {
    let noise = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0)
            .collect()
    };
    let x_dims = [batch, shape.c_in, shape.h, shape.w];
    let w_dims = [shape.c_out, shape.c_in, shape.k, shape.k];
    let x = Tensor::<4>::from_data(TensorData::new(noise(x_dims.iter().product()), x_dims), dev);
    let w = Tensor::<4>::from_data(TensorData::new(noise(w_dims.iter().product()), w_dims), dev);
    let p = shape.padding();
    let options = || ConvOptions::new([shape.stride; 2], [p, p], [1, 1], 1);
    let fastest = |f: &dyn Fn()| {
        f();
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                let _ = dev.sync();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    };
    let forward = fastest(&|| {
        let _ = conv2d(x.clone(), w.clone(), None, options())
            .sum()
            .into_scalar::<f32>();
    });
    let both = fastest(&|| {
        let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
        let grads = conv2d(x.clone(), w.clone(), None, options())
            .sum()
            .backward();
        let _ = (x.grad(&grads), w.grad(&grads));
    });
    (forward, both)
}

/// PyTorch's fastest forward and forward + backward of each shape, from
/// `benches/pytorch_train.py --convs`, on one thread.
fn pytorch_side(
    python: &str,
    shapes: &[(ConvShape, usize)],
    batch: usize,
    repeats: usize,
) -> Vec<(f64, f64)> {
    let list: Vec<[usize; 5]> = shapes
        .iter()
        .map(|(s, _)| [s.c_in, s.c_out, s.h, s.k, s.stride])
        .collect();
    let args = [
        "--convs".into(),
        serde_json::to_string(&list).expect("shapes serialize"),
        "--conv-batch".into(),
        batch.to_string(),
        "--repeats".into(),
        repeats.to_string(),
    ];
    serde_json::from_value(pytorch::run(python, &args)).expect("[[forward, both], ...] in ms")
}
