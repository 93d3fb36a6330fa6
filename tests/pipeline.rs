//! End to end on real data (the committed Fashion-MNIST subset): the
//! proximal group Lasso zeroes the weakest groups exactly and shrinks those
//! it later prunes (the subgradient form only shrinks), gradual pruning with
//! distillation reaches its target and keeps its mask, and
//! quantization-aware training keeps it too.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use explore_data::{self as data, DataSpec, Dataset, Split};
use explore_he::Schedule;
use explore_he_model::arch::*;
use explore_quant::{QuantConfig, QuantizedNet, Requantization};
use explore_train::model::FakeQuant;
use explore_train::model::ResNet;
use explore_train::prune::{
    GradualPruning, GroupWeighting, Mask, MaskHook, Norm, ProximalLasso, Pruner, Strategy,
    TargetMetric,
};
use explore_train::train::{self, Backend, LrSchedule, NoHook, Phase, Teacher, TrainConfig};

fn phase(epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: LrSchedule::Cosine,
        augment: false,
        seed: 1,
        replicas: 2,
        device: Backend::Cpu,
        steps: None,
        warmup: 0.0,
    }
}

fn group_norms(p: &Pruner, weights: &[Vec<f32>]) -> Vec<f64> {
    p.groups.iter().map(|g| g.norm(weights)).collect()
}

fn mean(v: &[f64], idx: &[usize]) -> f64 {
    idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64
}

fn input_rms(model: &ResNet, data: &Dataset) -> Vec<f64> {
    let n = 64;
    let x = Tensor::<4>::from_data(
        TensorData::new(data.images[..n * 28 * 28].to_vec(), [n, 1, 28, 28]),
        &model.fc.weight.device(),
    );
    model.conv_input_rms(x)
}

fn assert_masked(model: &ResNet, mask: &Mask) {
    for (w, m) in model.conv_weight_data().iter().zip(&mask.layers) {
        assert!(
            w.iter().zip(m).all(|(w, m)| *m == 1.0 || *w == 0.0),
            "a masked weight came back"
        );
    }
}

#[test]
fn proximal_lasso_gradual_pruning_and_qat_keep_what_they_prune() {
    let spec = DataSpec {
        dataset: DatasetKind::FashionMnist,
        path: Some(PathBuf::from("data/fashion-mnist-subset")),
        train_size: Some(600),
        test_size: Some(200),
        validation: None,
        seed: 0,
        download: false,
    };
    let train_data = data::load(&spec, Split::Train).unwrap();
    let net = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
    let device = train::device(Backend::Cpu, 0).unwrap();
    let (dense, _) = train::train(
        ResNet::new(&net, &device),
        &train_data,
        &phase(1, 0.05),
        Phase::with(&mut NoHook),
        "dense",
    )
    .unwrap();

    // The paper's setting (every rotation a full key switch), whose layouts
    // the lambda below was sized for.
    let scheduler =
        explore_he_model::fixtures::scheduler(Schedule::Best, explore_he::Hoisting::Off);
    let p = Pruner::new(
        &net,
        Strategy::Diagonal,
        false,
        &scheduler,
        GroupWeighting::HeCost,
    )
    .unwrap();
    let rms = input_rms(&dense, &train_data);
    let norm = Norm::Saliency;
    let mut lasso = ProximalLasso {
        groups: &p.groups,
        lambda: 2.0,
        ramp: 0.5,
        norm,
        input_rms: rms.clone(),
    };
    let (reg, _) = train::train(
        dense.clone(),
        &train_data,
        &phase(1, 0.05),
        Phase::with(&mut lasso),
        "proximal lasso",
    )
    .unwrap();
    let before = group_norms(&p, &dense.ranked_weights(norm, &rms));
    let after = group_norms(&p, &reg.ranked_weights(norm, &rms));
    let zeroed = after.iter().filter(|n| **n == 0.0).count();
    let mut sorted = before.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "saliency quantiles: {:.3} {:.3} {:.3}",
        sorted[sorted.len() / 10],
        sorted[sorted.len() / 2],
        sorted[9 * sorted.len() / 10]
    );
    eprintln!(
        "proximal lasso: {zeroed} of {} groups exactly zero",
        p.groups.len()
    );
    assert!(zeroed > 0, "the proximal step makes exact zeros");

    let mask = p
        .select(&reg.ranked_weights(norm, &rms), 0.7, TargetMetric::Weights)
        .unwrap();
    let pruned: Vec<usize> = (0..p.groups.len())
        .filter(|&g| {
            p.groups[g]
                .parts
                .iter()
                .all(|(l, idx)| idx.iter().all(|&i| mask.layers[*l][i] == 0.0))
        })
        .collect();
    let kept: Vec<usize> = (0..p.groups.len())
        .filter(|g| !pruned.contains(g))
        .collect();
    eprintln!(
        "group saliency: pruned {:.4} -> {:.4}, kept {:.4} -> {:.4}",
        mean(&before, &pruned),
        mean(&after, &pruned),
        mean(&before, &kept),
        mean(&after, &kept)
    );
    assert!(!pruned.is_empty() && !kept.is_empty());
    assert!(mean(&after, &pruned) < mean(&after, &kept));
    // The penalty did the shrinking: the groups it prunes lost saliency.
    assert!(mean(&after, &pruned) < mean(&before, &pruned));

    // Gradually from 0 to 0.7 while distilling from the dense model.
    let teacher = dense.valid();
    let mut gradual = GradualPruning::new(
        &p,
        norm,
        input_rms(&reg, &train_data),
        TargetMetric::Weights,
        (0.0, 0.7),
        (0.5, 4),
        Mask::dense(&net),
    );
    assert!((gradual.target_at(0.0) - 0.0).abs() < 1e-12);
    assert!((gradual.target_at(0.5) - 0.7).abs() < 1e-12);
    assert!(gradual.target_at(0.125) > 0.7 * 0.5, "cubic: fast at first");
    let (tuned, _) = train::train(
        reg,
        &train_data,
        &phase(1, 0.02),
        Phase {
            hook: &mut gradual,
            teacher: Some(Teacher {
                model: &teacher,
                weight: 0.5,
                temperature: 4.0,
                kept: None,
            }),
            fake_quant: None,
            profile: false,
        },
        "gradual",
    )
    .unwrap();
    let mask = gradual.finish().unwrap();
    let sparsity = mask.sparsity(&p.prunable);
    assert!((0.7..0.75).contains(&sparsity), "{sparsity}");
    assert_masked(&tuned, &mask);

    // Quantization-aware training through the integer grid keeps the mask.
    let config = QuantConfig {
        weight_bits: 8,
        activation_bits: 8,
        per_channel: true,
        percentile: 99.99,
        requantization: Requantization::Fixed,
    };
    let calibration = &train_data.images[..64 * 28 * 28];
    let qnet = QuantizedNet::new(&tuned.fold(), config, calibration).unwrap();
    let fake_quant = FakeQuant::of(&qnet);
    let mut keep = MaskHook::new(mask.clone());
    let (qat, _) = train::train(
        tuned,
        &train_data,
        &phase(1, 0.005),
        Phase {
            hook: &mut keep,
            teacher: None,
            fake_quant: Some(&fake_quant),
            profile: false,
        },
        "qat",
    )
    .unwrap();
    assert_masked(&qat, &mask);
}
