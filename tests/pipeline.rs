//! End to end on real data (the committed Fashion-MNIST subset): the
//! group-Lasso phase shrinks the groups it later prunes, the mask survives
//! fine-tuning, and the pruned network verifies under encryption.

use std::path::PathBuf;

use explore::data::DataSpec;
use explore::data::{self, Split};
use explore::he::{PrimitiveCosts, Schedule, Scheduler};
use explore::prune::{GroupWeighting, Strategy, TargetMetric};
use explore::prune::{MaskHook, Pruner};
use explore::train::{self, NoHook};
use explore::train::{LrSchedule, TrainConfig};
use explore::{arch::*, model::ResNet};

fn phase(epochs: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: LrSchedule::Constant,
        augment: false,
        seed: 1,
        replicas: 2,
    }
}

fn group_norms(p: &Pruner, weights: &[Vec<f32>]) -> Vec<f64> {
    p.groups.iter().map(|g| g.norm(weights)).collect()
}

#[test]
fn group_lasso_shrinks_pruned_groups_and_mask_survives_finetuning() {
    let spec = DataSpec {
        dataset: DatasetKind::FashionMnist,
        path: Some(PathBuf::from("data/fashion-mnist-subset")),
        train_size: Some(600),
        test_size: Some(200),
        seed: 0,
        download: false,
    };
    let train_data = data::load(&spec, Split::Train).unwrap();
    let net = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
    let device = train::device(0);
    let (dense, _) = train::train(
        ResNet::new(&net, &device),
        &train_data,
        &phase(1, 0.05),
        &NoHook,
        "dense",
    )
    .unwrap();

    let scheduler = Scheduler {
        schedule: Schedule::Best,
        baby_step: None,
        costs: PrimitiveCosts::default(),
        poly_degree: 8192,
    };
    let p = Pruner::new(
        &net,
        Strategy::Diagonal,
        false,
        &scheduler,
        GroupWeighting::HeCost,
    )
    .unwrap();
    let lasso = p.group_lasso(5e-3, &device).unwrap();
    let (reg, _) =
        train::train(dense.clone(), &train_data, &phase(1, 0.05), &lasso, "lasso").unwrap();

    let mask = p
        .select(&reg.conv_weight_data(), 0.7, TargetMetric::Weights)
        .unwrap();
    let before = group_norms(&p, &dense.conv_weight_data());
    let after = group_norms(&p, &reg.conv_weight_data());
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
    let mean = |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64;
    eprintln!(
        "group norms: pruned {:.4} -> {:.4}, kept {:.4} -> {:.4}",
        mean(&before, &pruned),
        mean(&after, &pruned),
        mean(&before, &kept),
        mean(&after, &kept)
    );
    assert!(!pruned.is_empty() && !kept.is_empty());
    assert!(mean(&after, &pruned) < mean(&after, &kept));
    // The penalty did the shrinking: the groups it prunes lost norm under it.
    assert!(mean(&after, &pruned) < mean(&before, &pruned));

    let (tuned, _) = train::train(
        reg.apply_masks(&mask.layers),
        &train_data,
        &phase(1, 0.02),
        &MaskHook(mask.clone()),
        "finetune",
    )
    .unwrap();
    for (w, m) in tuned.conv_weight_data().iter().zip(&mask.layers) {
        assert!(
            w.iter().zip(m).all(|(w, m)| *m == 1.0 || *w == 0.0),
            "a masked weight came back"
        );
    }
}
