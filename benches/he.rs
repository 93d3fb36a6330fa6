//! Encrypted primitives and one dense layer at N = 8192 with fhe.rs: one
//! rotation (key switch), one ct x pt multiply, and the full 16->16 3x3 conv
//! on 32x32 (44 rotations, 576 products) as the executor runs it.

use criterion::{Criterion, criterion_group, criterion_main};
use explore::arch::ConvShape;
use explore::he::{HeContext, HeParams, LayerPlan};

fn layer16() -> ConvShape {
    ConvShape {
        name: "layer1.0.conv1".into(),
        c_in: 16,
        c_out: 16,
        h: 32,
        w: 32,
        k: 3,
        stride: 1,
    }
}

/// Deterministic weights and inputs spread over the 8-bit range.
fn ramp(len: usize, salt: i64) -> Vec<i64> {
    (0..len as i64)
        .map(|i| (i * 37 + salt) % 255 - 127)
        .collect()
}

fn bench(c: &mut Criterion) {
    let shape = layer16();
    let params = HeParams::new(8192, None, 8, 8, std::slice::from_ref(&shape)).expect("parameters");
    let mut ctx = HeContext::new(params);
    let row = ramp(ctx.params().slots(), 1);
    let ct = ctx.encrypt_row(&row).expect("encrypt");
    let pt = ctx.encode_row(&row).expect("encode");
    let ek = std::sync::Arc::clone(&ctx.rotation_keys(&[1]).expect("keys")[&1]);

    let mut g = c.benchmark_group("he_n8192");
    g.bench_function("rotation", |b| {
        b.iter(|| ek.rotates_columns_by(&ct, 1).unwrap())
    });
    g.bench_function("ct_x_pt", |b| b.iter(|| &ct * &pt));
    g.bench_function("ct_plus_ct", |b| b.iter(|| &ct + &ct));

    let weights = ramp(shape.weight_len(), 5);
    let input = ramp(shape.c_in * shape.h * shape.w, 9);
    let plan = LayerPlan::new(&mut ctx, &shape, &weights).expect("plan");
    let inputs = plan.encrypt_input(&mut ctx, &input).expect("encrypt input");
    let (outputs, _) = plan.evaluate(&inputs).expect("evaluate");
    plan.verify(&ctx, &input, &outputs)
        .expect("decrypts to the integer reference");
    g.sample_size(10);
    g.bench_function("dense_conv_16x16_32x32", |b| {
        b.iter(|| plan.evaluate(&inputs).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
