//! `explore count` end to end: a BN-folded checkpoint with one pruned
//! diagonal group is counted from its zero pattern, and a checkpoint of
//! another network is refused with exit code 2.

use std::process::Command;

use explore::arch::{Arch, DatasetKind, FoldedConv, FoldedNet, NetSpec};
use explore::he::{PackingLayout, PruneGroup, dense_network_cost};

fn folded_with_one_pruned_diagonal(spec: &NetSpec, layer: usize) -> FoldedNet {
    let mut convs: Vec<FoldedConv> = spec
        .convs
        .iter()
        .map(|c| FoldedConv {
            weight: vec![0.5; c.weight_len()],
            bias: vec![0.0; c.c_out],
        })
        .collect();
    let layout = PackingLayout::new(&spec.convs[layer], 4096).unwrap();
    let target = PruneGroup::Diagonal {
        layer,
        block: 0,
        diagonal: 1,
    };
    let (_, idx) = layout
        .groups(layer)
        .into_iter()
        .find(|(g, _)| *g == target)
        .unwrap();
    idx.iter().for_each(|&i| convs[layer].weight[i] = 0.0);
    FoldedNet {
        spec: spec.clone(),
        convs,
        fc_weight: vec![0.1; spec.fc.in_features * spec.fc.out_features],
        fc_bias: vec![0.0; spec.fc.out_features],
    }
}

fn count(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_explore"))
        .arg("count")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn count_reads_a_checkpoint_and_rejects_another_network() {
    let spec = NetSpec::new(Arch::ResNet20, DatasetKind::FashionMnist, 0.25).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folded = folded_with_one_pruned_diagonal(&spec, 1);
    std::fs::write(
        dir.path().join("folded.json"),
        serde_json::to_string(&folded).unwrap(),
    )
    .unwrap();
    let ckpt = dir.path().to_str().unwrap();
    let base = [
        "--model",
        "resnet20",
        "--dataset",
        "fashion-mnist",
        "--width",
        "0.25",
    ];

    let out = count(&[&base[..], &["--checkpoint", ckpt, "--format", "json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dense = dense_network_cost(&spec, 8192).unwrap();
    let rot = |v: &serde_json::Value, l: usize| v["layers"][l]["cost"]["rot_diagonal"].as_u64();
    assert_eq!(
        rot(&counted, 1),
        Some(dense.layers[1].cost.rot_diagonal as u64 - 1)
    );
    assert_eq!(
        rot(&counted, 2),
        Some(dense.layers[2].cost.rot_diagonal as u64)
    );

    let out = count(&[
        "--model",
        "resnet20",
        "--dataset",
        "fashion-mnist",
        "--checkpoint",
        ckpt,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("folded.json") && err.contains("width"),
        "{err}"
    );
}
