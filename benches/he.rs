//! Encrypted primitives and one dense layer of each shape of ResNet-20 on
//! CIFAR-10 at N = 8192 with fhe.rs, under every schedule (`best`,
//! `gazelle` and the rotation-free `coefficients`): a rotation (key switch), a row swap, a ct x pt multiply, a
//! ct + ct add, then the stem, a stage-1, stage-2 and stage-3 conv, both
//! stride-2 convs and shortcuts, and the FC layer, each evaluated as the
//! executor runs it (and verified once before timing).

use criterion::{Criterion, criterion_group, criterion_main};
use explore_he::{
    EncryptedLayer, HeContext, HeParamsBuilder, Plan, Role, Rotation, Schedule, Work,
};
use explore_he_model::arch::{Arch, DatasetKind, NetSpec};

/// Deterministic values spread over the 8-bit range.
fn ramp(len: usize, salt: i64) -> Vec<i64> {
    (0..len as i64)
        .map(|i| (i * 37 + salt) % 255 - 127)
        .collect()
}

fn bench(c: &mut Criterion) {
    let spec = NetSpec::new(Arch::ResNet20, DatasetKind::Cifar10, 1.0).expect("valid spec");
    let shapes = spec.layer_shapes();
    let params = HeParamsBuilder::new(8192, &shapes)
        .build()
        .expect("parameters");
    let mut ctx = HeContext::new(params);
    let slots = ramp(8192, 1);
    let ct = ctx.encrypt(&slots).expect("encrypt");
    let pt = ctx.encode(&slots).expect("encode");
    let keys = ctx
        .rotation_keys(&[Rotation::Columns(1), Rotation::Rows])
        .expect("keys");

    let mut g = c.benchmark_group("he_n8192");
    let column = &keys[&Rotation::Columns(1)];
    g.bench_function("rotation", |b| {
        b.iter(|| column.rotates_columns_by(&ct, 1).unwrap())
    });
    let rows = &keys[&Rotation::Rows];
    g.bench_function("row_swap", |b| b.iter(|| rows.rotates_rows(&ct).unwrap()));
    g.bench_function("ct_x_pt", |b| b.iter(|| &ct * &pt));
    g.bench_function("ct_plus_ct", |b| b.iter(|| &ct + &ct));
    g.finish();

    // One layer of each shape: the stem, a stage-1 conv, the stride-2 conv
    // and shortcut into stage 2, a stage-2 conv, the same into stage 3, a
    // stage-3 conv, and the classifier.
    let picks = [
        "conv1",
        "layer1.0.conv1",
        "layer2.0.conv1",
        "layer2.0.shortcut",
        "layer2.1.conv1",
        "layer3.0.conv1",
        "layer3.0.shortcut",
        "layer3.1.conv1",
        "fc",
    ];
    let mut g = c.benchmark_group("resnet20_layers_n8192");
    g.sample_size(10);
    for schedule in Schedule::ALL {
        let scheduler = explore_he_model::fixtures::scheduler(schedule, explore_he::Hoisting::On);
        for name in picks {
            let shape = shapes.iter().find(|s| s.name == name).expect("a layer");
            let role = if name == "fc" { Role::Fc } else { Role::Conv };
            let weights = ramp(shape.weight_len(), 5);
            let input = ramp(shape.c_in * shape.h * shape.w, 9);
            let (layout, _) = scheduler.layer(shape, role, &weights).expect("layout");
            let plan = Plan::new(&mut ctx, layout, &weights, Work::Pruned).expect("plan");
            let inputs = plan.encrypt(&mut ctx, &input).expect("encrypt input");
            let (outputs, _) = plan.evaluate(&inputs).expect("evaluate");
            plan.verify(&ctx, &input, &outputs)
                .expect("decrypts to the integer reference");
            g.bench_function(format!("{schedule}/{name}"), |b| {
                b.iter(|| plan.evaluate(&inputs).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
